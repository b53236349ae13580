-- flotilla:no-transaction
CREATE TABLE audit (id int);
CREATE INDEX CONCURRENTLY "User_email_idx" ON "User"("email");
