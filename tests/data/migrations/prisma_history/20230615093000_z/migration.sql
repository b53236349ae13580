-- z
SELECT 1;
