#!/usr/bin/env bash
# Health checks and backups as the agent runs them: a check that returns false, one that
# tries to write (READ ONLY), one of two statements (extended protocol: refused by the
# server), one past its timeout, one as a role that does not exist (inconclusive, not
# failed), one that cannot connect; a backup command that gets the tenant's connection in its
# environment and never on its command line, one that fails (the tenant untouched), a wave
# asking for a backup from an agent without a command.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent_lib.sh"

M1=20250101000000_users
ag_keys
ag_migration $M1 "CREATE TABLE users (id int PRIMARY KEY); INSERT INTO users VALUES (1);" \
	"DROP TABLE users;"
ag_release "$AG/rel.release" acme-app 1

# policy NAME CHECK-YAML [WAVE-EXTRA]
policy() {
	ag_policy "$1" "name: $1
waves:
  - {name: all, select: {percent: 100}${3:-}}
health:
  checks:
$2"
	ag_order "$AG/$1.bin" "$AG/rel.release" "$1" $M1 --all
}
policy ok '    - {name: one-user, sql: "SELECT count(*) = 1 FROM users", timeout: 5s}'
policy false '    - {name: no-users, sql: "SELECT count(*) = 0 FROM users", timeout: 5s}'
policy write '    - {name: writes, sql: "WITH d AS (DELETE FROM users RETURNING 1) SELECT count(*) >= 0 FROM d", timeout: 5s}'
policy two '    - {name: two, sql: "SELECT true; SELECT true", timeout: 5s}'
policy slow '    - {name: slow, sql: "SELECT pg_sleep(5) IS NOT NULL", timeout: 200ms}'
policy shape '    - {name: shape, sql: "SELECT 1", timeout: 5s}
    - {name: nullish, sql: "SELECT NULL::bool", timeout: 5s}
    - {name: rows, sql: "SELECT true FROM generate_series(1, 2)", timeout: 5s}'
policy backup '    - {name: one-user, sql: "SELECT count(*) = 1 FROM users", timeout: 5s}' \
	', backup: true'

for t in h1 h2 h3 h4 h5 h6 h7 h8 h9 h10; do
	ag_tenant_db "$t" >/dev/null
done
fl_psql "$DATABASE_URL" "CREATE ROLE flotilla_health NOLOGIN; GRANT flotilla_health TO CURRENT_USER"
mkdir -p "$AG/backups"
cat >"$AG/backup.sh" <<'EOF'
#!/bin/sh
# what the agent gives a backup command: its environment, never its arguments
env | grep -E '^(PG|FLOTILLA_)' | sort >"$FLOTILLA_BACKUP_PATH.env"
echo "args: $#" >>"$FLOTILLA_BACKUP_PATH.env"
pg_dump -Fc -f "$FLOTILLA_BACKUP_PATH"
EOF
chmod 755 "$AG/backup.sh"

tenants='tenants:'
for t in h1 h2 h3 h4 h5 h6 h7 h8 h9 h10; do
	tenants+="
  - {id: $t, server: main, database: $t}"
done
ag_rogue_start
export FL_TEST_PGPASS='s3cret-Pa55 word'
ag_config "    password_env: FL_TEST_PGPASS
$tenants
backup:
  command: $AG/backup.sh
  dir: $AG/backups
  timeout: 1m"
ag_start
ag_cmd "release $AG/rel.release"

# run ID TENANT ORDER: apply, print the report line.
run() {
	ag_cmd "assign $1 apply $2 0 order $M1 $AG/$3.bin r-$1"
	ag_report "$1"
}

fl_log "a check that passes"
r=$(run 1 h1 ok)
assert_eq "$(ag_field "$r" outcome)" applied "ok ($r)"
assert_eq "$(ag_field "$r" health)" one-user:ok "ok health"

fl_log "a check that returns false: health failed (the migration stays applied)"
r=$(run 2 h2 false)
assert_eq "$(ag_field "$r" outcome)" health_failed "false ($r)"
assert_contains "$r" "[no-users: returned false]"
assert_eq "$(ag_applied "$(fl_url_db "$DATABASE_URL" h2)")" $M1 "h2 applied"

fl_log "a check that writes: refused by READ ONLY, failed, nothing deleted"
r=$(run 3 h3 write)
assert_eq "$(ag_field "$r" outcome)" health_failed "write ($r)"
assert_contains "$r" "read-only transaction"
assert_eq "$(fl_psql "$(fl_url_db "$DATABASE_URL" h3)" "SELECT count(*) FROM users")" 1 "h3 users"

fl_log "two statements: never run as a script"
r=$(run 4 h4 two)
assert_eq "$(ag_field "$r" outcome)" health_failed "two ($r)"
assert_contains "$r" "multiple commands"

fl_log "past its timeout: failed, saying so"
r=$(run 5 h5 slow)
assert_eq "$(ag_field "$r" outcome)" health_failed "slow ($r)"
assert_contains "$r" "timeout after 200ms"

fl_log "a result of another shape: not a boolean, NULL, two rows: failed"
r=$(run 6 h6 shape)
assert_eq "$(ag_field "$r" health)" "shape:failed,nullish:failed,rows:failed" "shape ($r)"
assert_contains "$r" "[nullish: returned NULL]"
assert_contains "$r" "[rows: expected one row, got 2]"

fl_log "backup: connection details in the environment only, then the apply"
r=$(run 7 h7 backup)
assert_eq "$(ag_field "$r" outcome)" applied "backup ($r)"
dump=$(ls "$AG/backups"/h7-*.dump)
[ -s "$dump" ] || fl_fail "no dump written"
env=$(cat "$dump.env")
assert_contains "$env" "PGDATABASE=h7"
assert_contains "$env" "FLOTILLA_TENANT=h7"
assert_contains "$env" "FLOTILLA_RELEASE="
assert_contains "$env" "args: 0"
assert_contains "$env" "PGPASSWORD=s3cret-Pa55 word"
assert_not_contains "$(cat "$AG_LOG")" "s3cret" "the agent's log"
assert_eq "$(ag_applied "$(fl_url_db "$DATABASE_URL" h7)")" $M1 "h7 applied after its backup"

fl_log "a failing backup: backup failed, the tenant untouched"
cat >"$AG/backup.sh" <<'EOF'
#!/bin/sh
echo "disk full, sorry" >&2
exit 3
EOF
r=$(run 8 h8 backup)
assert_eq "$(ag_field "$r" outcome)" backup_failed "failing backup ($r)"
assert_contains "$(ag_field "$r" message)" "exited with status 3: disk full, sorry"
assert_eq "$(ag_has_table "$(fl_url_db "$DATABASE_URL" h8)" users)" f "h8 untouched"

fl_log "a health-check role that does not exist: inconclusive, not failed"
ag_stop TERM
ag_config "$tenants
health_check_role: no_such_role"
ag_start
r=$(run 9 h9 ok)
assert_eq "$(ag_field "$r" outcome)" inconclusive "missing role ($r)"
assert_eq "$(ag_field "$r" health)" one-user:inconclusive "missing role health"
assert_contains "$r" "cannot run as role 'no_such_role'"

fl_log "a role that exists: the check runs as it"
ag_stop TERM
ag_config "$tenants
health_check_role: flotilla_health"
policy whoami '    - {name: whoami, sql: "SELECT current_user = '"'"'flotilla_health'"'"'", timeout: 5s}'
ag_start
ag_cmd "assign 10 check h1 0 order - $AG/whoami.bin r-10"
r=$(ag_report 10)
assert_eq "$(ag_field "$r" outcome)" healthy "as the role ($r)"

fl_log "a wave asking for a backup from an agent with no backup.command"
r=$(run 11 h8 backup)
assert_eq "$(ag_field "$r" outcome)" backup_failed "no command ($r)"
assert_contains "$(ag_field "$r" message)" "no backup.command"
assert_eq "$(ag_has_table "$(fl_url_db "$DATABASE_URL" h8)" users)" f "h8 still untouched"

fl_log "verify.sql that is not true: verify failed, the migration rolled back"
mkdir -p "$AG/verify/20250101000000_checked"
echo "CREATE TABLE checked (id int);" >"$AG/verify/20250101000000_checked/migration.sql"
echo "SELECT count(*) = 1 FROM checked;" >"$AG/verify/20250101000000_checked/verify.sql"
"$FLOTILLA" release build --dir "$AG/verify" --project acme-app --sequence 3 \
	--out "$AG/verify.release" >/dev/null
"$FLOTILLA" release sign --key "$AG/release.key" "$AG/verify.release" >/dev/null
ag_order "$AG/verify.bin" "$AG/verify.release" ok 20250101000000_checked --all
ag_cmd "release $AG/verify.release"
ag_cmd "assign 13 apply h10 0 order 20250101000000_checked $AG/verify.bin r-13"
r=$(ag_report 13)
assert_eq "$(ag_field "$r" outcome)" verify_failed "verify ($r)"
assert_eq "$(ag_field "$r" migrations)" "20250101000000_checked:verify_failed" "verify migration"
assert_eq "$(ag_has_table "$(fl_url_db "$DATABASE_URL" h10)" checked)" f "h10 rolled back"

fl_log "a check that cannot connect: inconclusive"
fl_psql "$DATABASE_URL" "ALTER DATABASE h1 WITH ALLOW_CONNECTIONS false"
ag_cmd "assign 12 check h1 0 order - $AG/ok.bin r-12"
r=$(ag_report 12)
assert_eq "$(ag_field "$r" outcome)" inconclusive "cannot connect ($r)"
assert_contains "$r" "cannot connect"
ag_stop TERM
fl_pass
