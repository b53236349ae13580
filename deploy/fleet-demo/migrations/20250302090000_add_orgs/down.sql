ALTER TABLE "users" DROP COLUMN "org_id";
DROP TABLE "orgs";
