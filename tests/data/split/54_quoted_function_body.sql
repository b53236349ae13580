CREATE FUNCTION f() RETURNS int AS 'select 1; select 2' LANGUAGE sql;
SELECT 3;
