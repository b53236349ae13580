ALTER TABLE people ADD COLUMN full_name text;
UPDATE people SET full_name = first || ' ' || last;
ALTER TABLE people DROP COLUMN first;
