-- Add posts
SELECT 1;
