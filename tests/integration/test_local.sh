#!/usr/bin/env bash
# The commands that need no database: new, graph, lint.
source "$(dirname "$0")/lib.sh"

dir=$(fl_tmpdir)
cd "$dir"

# new: a 14-digit UTC timestamp, a snake_case name, a lock file for a new folder.
assert_exit 0 "$FLOTILLA" new "Add Users table" --down
created=$OUT
[[ "$created" =~ ^migrations/[0-9]{14}_add_users_table$ ]] || fl_fail "unexpected folder '$created'"
[ -f "$created/migration.sql" ] && [ -f "$created/down.sql" ] || fl_fail "files missing in $created"
assert_contains "$(cat migrations/migration_lock.toml)" 'provider = "postgresql"'
assert_exit 2 "$FLOTILLA" new "!!!"
assert_exit 2 "$FLOTILLA" new
echo 'CREATE TABLE users (id bigint PRIMARY KEY);' >"$created/migration.sql"
echo 'DROP TABLE users;' >"$created/down.sql"

# graph: apply order with requires edges; dot for Graphviz.
mkdir -p migrations/20990101000000_b migrations/20990102000000_c
echo 'SELECT 1;' >migrations/20990101000000_b/migration.sql
printf -- '-- flotilla:requires %s\nSELECT 1;\n' "$(basename "$created")" >migrations/20990102000000_c/migration.sql
assert_exit 0 "$FLOTILLA" graph
assert_eq "$(grep -c . <<<"$OUT")" 3
assert_contains "$OUT" "20990102000000_c"
assert_exit 0 "$FLOTILLA" graph --dot
assert_contains "$OUT" "digraph"
assert_contains "$OUT" "\"$(basename "$created")\" -> \"20990102000000_c\""
assert_exit 0 "$FLOTILLA" graph --json
assert_contains "$OUT" "{\"id\":\"20990102000000_c\",\"checksum\":"
assert_contains "$OUT" "\"depends_on\":[\"20990101000000_b\",\"$(basename "$created")\"]"
assert_exit 2 "$FLOTILLA" graph --json --dot

# lint: rules on the parse tree; errors exit 8; each migration classified.
assert_exit 0 "$FLOTILLA" lint --rules
assert_contains "$OUT" "drop-column"
assert_contains "$OUT" "create-index-not-concurrently"
mkdir -p lint/20250101000000_init lint/20250102000000_drop lint/20250103000000_index
echo 'CREATE TABLE users (id bigint PRIMARY KEY, email text, legacy text);' >lint/20250101000000_init/migration.sql
echo 'DROP TABLE users;' >lint/20250101000000_init/down.sql
printf -- '-- a comment\nALTER TABLE users DROP COLUMN legacy;\n' >lint/20250102000000_drop/migration.sql
echo 'CREATE INDEX users_email ON users (email);' >lint/20250103000000_index/migration.sql
assert_exit 8 "$FLOTILLA" lint --dir lint
assert_contains "$OUT" "lint/20250102000000_drop/migration.sql:2: error: drop-column"
assert_contains "$OUT" "20250102000000_drop: contract (breaking)"
assert_contains "$OUT" "warning: create-index-not-concurrently"
assert_contains "$OUT" "20250103000000_index: expand (backward-compatible)"
assert_contains "$OUT" "20250102000000_drop/migration.sql:2"
assert_exit 0 "$FLOTILLA" lint --dir lint 20250101000000_init
assert_contains "$OUT" "1 migration linted: 0 errors"
assert_exit 0 "$FLOTILLA" lint --dir lint 20250103000000_index --json
assert_contains "$OUT" '"rule":"create-index-not-concurrently"'
assert_contains "$OUT" '"breaking":false'
assert_exit 2 "$FLOTILLA" lint --dir lint 20990101000000_nope
fl_pass
