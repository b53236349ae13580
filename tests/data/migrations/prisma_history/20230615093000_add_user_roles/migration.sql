-- add_user_roles
SELECT 1;
