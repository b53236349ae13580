-- add_users
SELECT 1;
