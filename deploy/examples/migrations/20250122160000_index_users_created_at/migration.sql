-- flotilla:no-transaction
-- CONCURRENTLY does not block writes while the index builds, and cannot run in a transaction.
-- CreateIndex
CREATE INDEX CONCURRENTLY "users_created_at_idx" ON "users"("created_at");
