-- hand-written hotfix, before Prisma's timestamps were used here
UPDATE "User" SET "name" = NULL WHERE "name" = '';
