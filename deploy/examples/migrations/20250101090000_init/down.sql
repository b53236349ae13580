-- Undo 20250101090000_init: the indexes, keys and the foreign key go with their tables.
DROP TABLE "users";
DROP TABLE "orgs";
DROP TYPE "Role";
