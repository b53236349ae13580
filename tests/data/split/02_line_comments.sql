-- leading comment
-- another; with a semicolon
CREATE TABLE a (id int); -- trailing; comment

-- between
CREATE TABLE b (id int);
-- at the end
