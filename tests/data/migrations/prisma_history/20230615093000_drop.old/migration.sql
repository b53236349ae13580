-- flotilla:phase contract
-- flotilla:requires 20220101000000_add name with spaces
-- flotilla:requires 20230615093000_addIndex
ALTER TABLE "User" DROP COLUMN "name";
