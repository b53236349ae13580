REINDEX INDEX users_email_idx;
REINDEX TABLE users;
REINDEX (VERBOSE) TABLE app.orders;
CREATE TABLE t (id int);
CREATE INDEX t_id_idx ON t (id);
REINDEX TABLE t;
REINDEX INDEX t_id_idx;
