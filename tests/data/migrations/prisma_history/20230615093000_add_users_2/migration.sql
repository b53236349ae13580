-- add_users_2
SELECT 1;
