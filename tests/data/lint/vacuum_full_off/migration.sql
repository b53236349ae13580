VACUUM (FULL false, ANALYZE) users;
