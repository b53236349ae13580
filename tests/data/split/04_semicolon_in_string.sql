SELECT 'a;b', 'c';
SELECT ';';
