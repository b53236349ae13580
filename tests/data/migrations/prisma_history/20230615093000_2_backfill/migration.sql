-- 2_backfill
SELECT 1;
