-- Alpha
SELECT 1;
