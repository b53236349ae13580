#!/usr/bin/env bash
# A tenant whose tables stay locked past the policy's retries is busy, not failed: the APPLY
# reports BUSY (the migration's own result too), nothing of it is applied or recorded in the
# tenant's history, and once the lock is gone the same work applies. Busy is not a failure a
# wave's budget counts: the coordinator tries the tenant again later.
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

ag_rogue_start
ag_config 'tenants:
  - {id: b1, server: main, database: b1}'
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

ag_stop TERM
assert_eq "$AG_RC" 0 "exit status"
fl_pass
