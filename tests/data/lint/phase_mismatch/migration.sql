-- flotilla:phase expand
ALTER TABLE "User" DROP COLUMN "legacy";
