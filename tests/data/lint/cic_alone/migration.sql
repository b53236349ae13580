-- Prisma runs a lone statement outside a transaction block
CREATE INDEX CONCURRENTLY "User_email_idx" ON "User"("email");
