CREATE TABLE app.t (a int);
CREATE INDEX ON app.t (a);
CREATE INDEX ON t (a);
CREATE INDEX ON other.t (a);
