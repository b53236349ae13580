-- a
SELECT 1;
