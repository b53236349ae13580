-- alpha
SELECT 1;
