-- Built without locking writes, which cannot run in a transaction.
-- flotilla:no-transaction
-- flotilla:phase expand

CREATE INDEX CONCURRENTLY "Post_title_idx" ON "Post"("title");
