-- CreateTable

-- flotilla:lock-timout 5s
CREATE TABLE t (id int);
