DO $outer$
BEGIN
  EXECUTE $inner$ CREATE TABLE x (a text DEFAULT ';') $inner$;
  RAISE NOTICE $q$ $$ ; $$ $q$;
END
$outer$;
SELECT 1;
