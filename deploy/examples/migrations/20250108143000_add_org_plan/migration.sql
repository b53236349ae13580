-- AlterTable
ALTER TABLE "orgs" ADD COLUMN "plan" TEXT NOT NULL DEFAULT 'free';
