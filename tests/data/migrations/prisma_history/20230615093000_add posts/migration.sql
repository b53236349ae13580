-- add posts
SELECT 1;
