-- flotilla:phase expand
-- CreateIndex (alone in its file, so it runs outside a transaction, as Prisma runs it)
CREATE INDEX CONCURRENTLY "users_created_at_idx" ON "users"("created_at");
