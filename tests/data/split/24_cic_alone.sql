-- Prisma lets this one run outside a transaction
CREATE INDEX CONCURRENTLY "User_email_idx" ON "User"("email");
