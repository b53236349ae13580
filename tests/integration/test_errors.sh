#!/usr/bin/env bash
# Bad input: one clear line on stderr naming what is wrong, a distinct
# non-zero exit code, and nothing applied.
source "$(dirname "$0")/lib.sh"

dir=$(fl_tmpdir)
url=$(fl_newdb errors)

one_line() { assert_eq "$(printf '%s\n' "$ERR" | grep -c .)" 1; }

mkdir -p "$dir/empty"
assert_exit 3 "$FLOTILLA" deploy --dir "$dir/empty" --database-url "$url"
assert_contains "$ERR" "no migrations in '$dir/empty'"; one_line

assert_exit 3 "$FLOTILLA" deploy --dir "$dir/nowhere" --database-url "$url"
assert_contains "$ERR" "$dir/nowhere"; one_line

mkdir -p "$dir/nosql/20250101000000_a"
assert_exit 3 "$FLOTILLA" deploy --dir "$dir/nosql" --database-url "$url"
assert_contains "$ERR" "20250101000000_a/migration.sql"; one_line

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
