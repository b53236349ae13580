#!/usr/bin/env bash
# A tenant whose tables stay locked past the policy's retries is busy, not failed: the APPLY
# reports BUSY (the migration's own result too), nothing of it is applied or recorded in the
# tenant's history, and once the lock is gone the same work applies. Busy is not a failure a
# wave's budget counts: the coordinator tries the tenant again later. A database server that
# cannot be reached is tried again within the assignment (a restart takes a moment), then BUSY;
# one that comes back meanwhile is applied; a database that does not exist FAILS at once.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent_lib.sh"

M1=20250101000000_alter
ag_keys
ag_migration $M1 "ALTER TABLE ctl.busy_t ADD COLUMN x int;" "ALTER TABLE ctl.busy_t DROP COLUMN x;"
ag_release "$AG/rel.release" acme-app 1
ag_policy quick 'name: quick
waves:
  - {name: all, select: {percent: 100}}
lock_timeout: 100ms
retry: {attempts: 2, backoff: 10ms}'
ag_order "$AG/quick.bin" "$AG/rel.release" quick $M1 --all

B1=$(ag_tenant_db b1)
fl_psql "$B1" "CREATE SCHEMA ctl; CREATE TABLE ctl.busy_t (id int)" >/dev/null

ag_tenant_db b2 >/dev/null
ag_tenant_db b3 >/dev/null
# "flaky" reaches the server through a socket directory of our own: empty, it is down
FLAKY=$AG/flaky
mkdir -p "$FLAKY"
ag_rogue_start
ag_config "  - name: flaky
    host: $FLAKY
    port: $FL_PG_PORT
    user: ${PGUSER:-postgres}
    connect_timeout: 2s
tenants:
  - {id: b1, server: main, database: b1}
  - {id: b2, server: flaky, database: b2}
  - {id: b3, server: flaky, database: b3}
  - {id: b4, server: main, database: no_such_db}"
ag_start
ag_cmd "release $AG/rel.release"

fl_log "the table stays locked past the retries: BUSY, nothing applied or recorded"
fl_psql_bg "$B1" fl_locker "BEGIN; LOCK TABLE ctl.busy_t IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(600);"
locker=$FL_BG_PID
wait_for 30 "[ \"\$(fl_psql '$B1' \"SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)
	WHERE a.application_name = 'fl_locker' AND l.relation = 'ctl.busy_t'::regclass AND l.granted\")\" = 1 ]"
ag_cmd "assign 1 apply b1 0 order $M1 $AG/quick.bin r-busy"
r=$(ag_report 1)
assert_eq "$(ag_field "$r" outcome)" busy "assignment 1 ($r)"
assert_contains "$(ag_field "$r" migrations)" "$M1:busy" "the migration's result"
assert_contains "$(ag_field "$r" message)" "was not applied"
assert_eq "$(fl_psql "$B1" "SELECT count(*) FROM _prisma_migrations WHERE migration_name = '$M1'" 2>/dev/null || echo 0)" 0 \
	"history rows of $M1 on b1"
assert_eq "$(fl_psql "$B1" "SELECT count(*) FROM information_schema.columns WHERE table_schema = 'ctl' AND table_name = 'busy_t' AND column_name = 'x'")" 0 \
	"column x on b1"

fl_log "the lock gone, the coordinator's next try applies"
fl_psql "$DATABASE_URL" "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'fl_locker'" >/dev/null
wait "$locker" 2>/dev/null || true
ag_cmd "assign 2 apply b1 0 order $M1 $AG/quick.bin r-busy"
r=$(ag_report 2)
assert_eq "$(ag_field "$r" outcome)" applied "assignment 2 ($r)"
assert_eq "$(ag_applied "$B1")" $M1 "b1 history"

fl_log "the server cannot be reached: tried again within the assignment, then BUSY"
ag_cmd "assign 3 apply b2 0 order $M1 $AG/quick.bin r-busy"
r=$(ag_report 3)
assert_eq "$(ag_field "$r" outcome)" busy "assignment 3 ($r)"
assert_contains "$(ag_field "$r" message)" "the database is unreachable (tried 5 times)"
assert_eq "$(grep -c "tenant 'b2'.*trying again" "$AG_LOG")" 4 "tries after the first"

fl_log "the server comes back while the assignment tries again: applied"
fl_psql "$(fl_url_db "$DATABASE_URL" b3)" "CREATE SCHEMA ctl; CREATE TABLE ctl.busy_t (id int)" >/dev/null
ag_cmd "assign 4 apply b3 0 order $M1 $AG/quick.bin r-busy"
wait_for 60 grep -q "tenant 'b3'.*trying again" "$AG_LOG"
ln -s "$FL_PG_HOST/.s.PGSQL.$FL_PG_PORT" "$FLAKY/.s.PGSQL.$FL_PG_PORT"
r=$(ag_report 4)
assert_eq "$(ag_field "$r" outcome)" applied "assignment 4 ($r)"
assert_eq "$(ag_applied "$(fl_url_db "$DATABASE_URL" b3)")" $M1 "b3 history"

fl_log "a database that does not exist is no passing fault: FAILED at once"
ag_cmd "assign 5 apply b4 0 order $M1 $AG/quick.bin r-busy"
r=$(ag_report 5)
assert_eq "$(ag_field "$r" outcome)" failed "assignment 5 ($r)"
assert_contains "$(ag_field "$r" message)" "does not exist"
assert_eq "$(grep -c "tenant 'b4'.*trying again" "$AG_LOG" || true)" 0 "no tries again"

ag_stop TERM
assert_eq "$AG_RC" 0 "exit status"
fl_pass
