-- flotilla:phase contract
ALTER TABLE "User" DROP COLUMN "legacy";
