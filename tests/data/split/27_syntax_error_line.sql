CREATE TABLE t (id int);

-- comment
SELECT FROM WHERE;
