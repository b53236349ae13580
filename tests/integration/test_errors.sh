#!/usr/bin/env bash
# Bad input: one clear line on stderr naming what is wrong, a distinct
# non-zero exit code, and nothing applied.
source "$(dirname "$0")/lib.sh"

dir=$(fl_tmpdir)
url=$(fl_newdb errors)

one_line() { assert_eq "$(printf '%s\n' "$ERR" | grep -c .)" 1; }

# An empty folder is no error, as in `prisma migrate deploy`: nothing to do.
mkdir -p "$dir/empty"
assert_exit 0 "$FLOTILLA" deploy --dir "$dir/empty" --database-url "$url"
assert_contains "$OUT" "no migration found in '$dir/empty'"
assert_contains "$OUT" "nothing to deploy"
assert_exit 0 "$FLOTILLA" status --dir "$dir/empty" --database-url "$url"
assert_contains "$OUT" "0 applied, 0 pending"

assert_exit 3 "$FLOTILLA" deploy --dir "$dir/nowhere" --database-url "$url"
assert_contains "$ERR" "$dir/nowhere"; one_line

mkdir -p "$dir/nosql/20250101000000_a"
assert_exit 3 "$FLOTILLA" deploy --dir "$dir/nosql" --database-url "$url"
assert_contains "$ERR" "20250101000000_a/migration.sql"; one_line

# A file that cannot be read is an invalid folder too (a directory where
# migration.sql should be: tests may run as root, which reads any file).
mkdir -p "$dir/unreadable/20250101000000_a/migration.sql"
assert_exit 3 "$FLOTILLA" deploy --dir "$dir/unreadable" --database-url "$url"
assert_contains "$ERR" "20250101000000_a/migration.sql"; one_line
mkdir -p "$dir/unreadable_down/20250101000000_a/down.sql"
echo 'SELECT 1;' >"$dir/unreadable_down/20250101000000_a/migration.sql"
assert_exit 3 "$FLOTILLA" status --dir "$dir/unreadable_down" --database-url "$url"
assert_contains "$ERR" "20250101000000_a/down.sql"; one_line

# A symlinked migration folder is skipped, as Prisma skips it, but not in silence.
mkdir -p "$dir/linked/20250101000000_a" "$dir/elsewhere/20250102000000_b"
echo 'SELECT 1;' >"$dir/linked/20250101000000_a/migration.sql"
echo 'CREATE TABLE linked_b (id int);' >"$dir/elsewhere/20250102000000_b/migration.sql"
ln -s "$dir/elsewhere/20250102000000_b" "$dir/linked/20250102000000_b"
linked=$(fl_newdb linked)
assert_exit 0 "$FLOTILLA" deploy --dir "$dir/linked" --database-url "$linked"
assert_contains "$ERR" "'$dir/linked/20250102000000_b' is a symbolic link to a folder"
assert_eq "$(grep -c '^applied ' <<<"$OUT")" 1
assert_eq "$(fl_psql "$linked" "SELECT to_regclass('linked_b') IS NULL")" t

mkdir -p "$dir/cycle/20250101000000_a" "$dir/cycle/20250102000000_b"
printf -- '-- flotilla:requires 20250102000000_b\nSELECT 1;\n' >"$dir/cycle/20250101000000_a/migration.sql"
echo 'SELECT 1;' >"$dir/cycle/20250102000000_b/migration.sql"
assert_exit 3 "$FLOTILLA" deploy --dir "$dir/cycle" --database-url "$url"
assert_contains "$ERR" "cycle"; assert_contains "$ERR" "20250101000000_a"; one_line

mkdir -p "$dir/utf8/20250101000000_a"
printf 'SELECT 1;\nSELECT \xff\xfe;\n' >"$dir/utf8/20250101000000_a/migration.sql"
assert_exit 3 "$FLOTILLA" deploy --dir "$dir/utf8" --database-url "$url"
assert_contains "$ERR" "UTF-8"; assert_contains "$ERR" "20250101000000_a/migration.sql"; one_line

mkdir -p "$dir/directive/20250101000000_a"
printf -- '-- flotilla:lock-timeout soon\nSELECT 1;\n' >"$dir/directive/20250101000000_a/migration.sql"
assert_exit 3 "$FLOTILLA" deploy --dir "$dir/directive" --database-url "$url"
assert_contains "$ERR" "migration.sql':1"; one_line

fl_gen_migrations "$dir/good" 2
assert_exit 6 "$FLOTILLA" deploy --dir "$dir/good" --database-url "postgresql://postgres@/postgres?host=$dir/no-such-socket-dir&port=5"
assert_contains "$ERR" "cannot connect"; one_line

fl_psql "$url" "CREATE ROLE app LOGIN PASSWORD 'right-secret'" >/dev/null
bad="postgresql://app:wrong-secret@/errors?host=$FL_PG_HOST&port=$FL_PG_PORT"
assert_exit 6 "$FLOTILLA" deploy --dir "$dir/good" --database-url "$bad"
assert_contains "$ERR" "password authentication failed"; one_line
case "$ERR$OUT" in *wrong-secret*) fl_fail "the password was printed: $ERR" ;; esac
# A password with an unencoded '?': libpq splits the URL elsewhere and would
# quote pieces of it; we name the fix and print none of it.
assert_exit 2 "$FLOTILLA" deploy --dir "$dir/good" --database-url "postgresql://app:Se?cr3t@127.0.0.1:1/errors"
assert_contains "$ERR" "percent-encode"; one_line
case "$ERR$OUT" in *cr3t* | *'"Se"'*) fl_fail "a piece of the password was printed: $ERR" ;; esac
assert_exit 6 "$FLOTILLA" deploy --dir "$dir/good" --database-url "postgresql://app@/errors?host=$dir/none&pass%77ord=hunter2"
case "$ERR$OUT" in *hunter2*) fl_fail "the password was printed: $ERR" ;; esac

# The database refusing flotilla's own bookkeeping is not a failed migration.
locked=$(fl_newdb bookkeeping)
assert_exit 0 "$FLOTILLA" deploy --dir "$dir/good" --database-url "$locked"
fl_psql "$locked" "CREATE ROLE reader LOGIN PASSWORD 'reader-secret'" >/dev/null
assert_exit 1 "$FLOTILLA" status --dir "$dir/good" --database-url "$(fl_url_user "$locked" reader reader-secret)"
assert_contains "$ERR" "permission denied"; one_line
# Allowed to read the history but not to write it: deploy refuses with 1, not
# 4 ("failed"), the migration never ran and no row claims it did.
fl_psql "$locked" "GRANT SELECT ON _prisma_migrations TO reader; GRANT CREATE ON SCHEMA public TO reader" >/dev/null
fl_gen_migrations "$dir/good" 1 3
assert_exit 1 "$FLOTILLA" deploy --dir "$dir/good" --database-url "$(fl_url_user "$locked" reader reader-secret)"
assert_contains "$ERR" "permission denied for table _prisma_migrations"
assert_eq "$(fl_psql "$locked" "SELECT count(*) FROM _prisma_migrations")" 2
assert_eq "$(fl_psql "$locked" "SELECT count(*) FROM information_schema.columns WHERE column_name = 'c_3'")" 0

# Nothing of the above touched the database.
assert_eq "$(fl_psql "$url" "SELECT to_regclass('_prisma_migrations') IS NULL")" t

# Usage errors.
assert_exit 2 "$FLOTILLA"
assert_exit 2 "$FLOTILLA" frobnicate
assert_exit 2 "$FLOTILLA" deploy --no-such-flag
assert_exit 2 "$FLOTILLA" deploy --lock-timeout forever --dir "$dir/good" --database-url "$url"
assert_contains "$ERR" "--lock-timeout"
(unset DATABASE_URL; assert_exit 2 "$FLOTILLA" deploy --dir "$dir/good")
assert_exit 2 "$FLOTILLA" deploy --dir "$dir/good" --database-url "mysql://localhost/x"
assert_exit 0 "$FLOTILLA" deploy --help
assert_contains "$OUT" "usage: flotilla deploy"
fl_pass
