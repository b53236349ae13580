-- nothing here
/* nor; here */
-- flotilla:no-transaction
