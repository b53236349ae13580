VACUUM (FULL, ANALYZE) users, orders;
