CLUSTER users USING users_pkey;
CREATE TABLE t (id int);
CLUSTER t USING t_pkey;
