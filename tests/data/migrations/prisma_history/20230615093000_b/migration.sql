-- b
SELECT 1;
