SET lock_timeout = '5s';
SET LOCAL statement_timeout = 0;
LOCK TABLE t IN ACCESS EXCLUSIVE MODE;
NOTIFY ch;
SHOW search_path;
RESET ALL;
