-- flotilla:lock-timeout 2s
CREATE TABLE t (id int);

-- flotilla:no-transaction
