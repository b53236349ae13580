-- flotilla:phase expand
-- CreateTable
CREATE TABLE "orgs" (
    "id" BIGSERIAL NOT NULL,
    "name" TEXT NOT NULL,
    CONSTRAINT "orgs_pkey" PRIMARY KEY ("id")
);

-- AlterTable
ALTER TABLE "users" ADD COLUMN "org_id" BIGINT;

-- AddForeignKey
ALTER TABLE "users" ADD CONSTRAINT "users_org_id_fkey" FOREIGN KEY ("org_id") REFERENCES "orgs"("id") ON DELETE SET NULL ON UPDATE CASCADE NOT VALID;
