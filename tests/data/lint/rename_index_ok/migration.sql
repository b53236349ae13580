-- RenameIndex
ALTER INDEX "User_email_key" RENAME TO "User_mail_key";
ALTER SEQUENCE s RENAME TO s2;
