-- Comments below the first statement are fine: -- flotilla: inside text is not a directive line
REINDEX INDEX "User_email_key";
-- a plain comment after a statement
