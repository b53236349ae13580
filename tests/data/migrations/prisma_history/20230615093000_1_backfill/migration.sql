-- 1_backfill
SELECT 1;
