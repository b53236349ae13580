/* header */
-- flotilla:no-transaction
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS i ON t (a) -- why
/* end */