-- flotilla:requires 20240103000000_c
CREATE TABLE a (id int);
