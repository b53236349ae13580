-- 10_backfill
SELECT 1;
