-- flotilla:phase expand
-- Expand only: a nullable column, no backfill, no rewrite; old code keeps working.
-- AlterTable
ALTER TABLE "users" ADD COLUMN "last_login_at" TIMESTAMP(3);
