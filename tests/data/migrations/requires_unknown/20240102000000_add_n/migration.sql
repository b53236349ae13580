-- flotilla:requires 20240101000000_iinit
ALTER TABLE t ADD COLUMN n int;
