-- crlf file
CREATE TABLE t (
  id int
);

SELECT 1;
