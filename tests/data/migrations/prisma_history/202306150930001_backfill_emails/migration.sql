UPDATE "User" SET "email" = lower("email");
