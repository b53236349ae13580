-- flotilla:phase expand
ALTER TABLE "User" ADD COLUMN "nick" TEXT;
