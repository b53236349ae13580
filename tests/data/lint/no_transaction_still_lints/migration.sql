-- flotilla:no-transaction
ALTER TABLE t DROP COLUMN c;
CREATE INDEX i ON t (a);
