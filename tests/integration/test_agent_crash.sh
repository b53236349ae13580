#!/usr/bin/env bash
# Stopping and crashing: SIGTERM in the middle of a migration with shutdown.mode cancel (the
# transaction rolls back, CANCELED reported, exit 0); shutdown.mode finish (the migration
# completes first, unless a second SIGTERM comes); SIGKILL in the middle of one (after a
# restart, CANCELED with the tenant's history as it is, never run again); reports made
# while the coordinator is down, delivered exactly once when it is back; and a tenant whose
# migration was canceled is never reported at the target.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent_lib.sh"

M1=20250101000000_users
M2=20250102000000_slow
ag_keys
ag_migration $M1 "CREATE TABLE users (id int PRIMARY KEY);" "DROP TABLE users;"
# slow enough to be caught in the middle; the sleep is the test's, not the agent's
ag_migration $M2 "CREATE TABLE slow (id int); SELECT pg_sleep(30);" "DROP TABLE slow;"
ag_release "$AG/rel.release" acme-app 1
ag_policy simple 'name: simple
waves:
  - {name: all, select: {percent: 100}}'
ag_order "$AG/order.bin" "$AG/rel.release" simple $M2 --all
mkdir -p "$AG/quick"
cp -r "$AG/migrations/$M1" "$AG/quick/"
mkdir -p "$AG/quick/$M2"
echo "CREATE TABLE slow (id int); SELECT pg_sleep(2);" >"$AG/quick/$M2/migration.sql"
echo "DROP TABLE slow;" >"$AG/quick/$M2/down.sql"

tenants='tenants:'
for t in c1 c2 c3 c4; do
	ag_tenant_db "$t" >/dev/null
	tenants+="
  - {id: $t, server: main, database: $t}"
done
url() { fl_url_db "$DATABASE_URL" "$1"; }

# running TENANT: wait until the slow migration runs on TENANT (the server says so).
running() {
	wait_for 30 "[ \"\$(fl_psql '$DATABASE_URL' \"SELECT count(*) FROM pg_stat_activity WHERE datname = '$1' AND query LIKE '%pg_sleep%' AND state = 'active'\")\" = 1 ]"
}

# Coordinator on a unix socket, so that it can come back at the same address.
AG_IPC="ipc://$AG/coord.ipc"
rogue_start_ipc() {
	rm -f "$AG_ROGUE_DIR/url"
	# a new coordinator process: the commands so far were handed out already
	[ ! -f "$AG_ROGUE_DIR/commands" ] || mv "$AG_ROGUE_DIR/commands" "$AG_ROGUE_DIR/commands.$$.$RANDOM"
	"$FL_ROGUE" serve --listen "$AG_IPC" --key "$AG/coord.key" \
		--agent "$(ag_pub "$AG/agent.key")" --dir "$AG_ROGUE_DIR" 2>>"$AG/rogue.log" &
	AG_ROGUE_PID=$!
	wait_for 10 test -s "$AG_ROGUE_DIR/url"
}
rogue_start_ipc
ag_config "$tenants
shutdown:
  mode: cancel
  timeout: 30s"
ag_start
ag_cmd "release $AG/rel.release"

fl_log "SIGTERM mid-migration, shutdown.mode cancel: rolled back, CANCELED, exit 0"
ag_cmd "assign 1 apply c1 0 order $M2 $AG/order.bin r-1"
running c1
t0=$(date +%s)
ag_stop TERM
assert_eq "$AG_RC" 0 "exit status"
[ $(($(date +%s) - t0)) -lt 20 ] || fl_fail "SIGTERM took $(($(date +%s) - t0))s: not canceled"
assert_eq "$(ag_applied "$(url c1)")" $M1 "c1: M1 applied, M2 not"
assert_eq "$(ag_has_table "$(url c1)" slow)" f "c1: the canceled migration left nothing"
r=$(ag_report 1)
assert_eq "$(ag_field "$r" outcome)" canceled "outcome ($r)"
assert_contains "$(ag_field "$r" migrations)" "$M2:canceled"

fl_log "shutdown.mode finish: the running migration completes, then exit 0"
"$FLOTILLA" release build --dir "$AG/quick" --project acme-app --sequence 2 \
	--out "$AG/quick.release" >/dev/null
"$FLOTILLA" release sign --key "$AG/release.key" "$AG/quick.release" >/dev/null
ag_order "$AG/quick.bin" "$AG/quick.release" simple $M2 --all
ag_config "$tenants
shutdown:
  mode: finish
  timeout: 30s"
ag_start
ag_cmd "release $AG/quick.release"
ag_cmd "assign 2 apply c2 0 order $M2 $AG/quick.bin r-2"
running c2
ag_stop TERM
assert_eq "$AG_RC" 0 "exit status"
assert_eq "$(ag_applied "$(url c2)")" "$M1,$M2" "c2: finished before the exit"
r=$(ag_report 2)
assert_eq "$(ag_field "$r" outcome)" applied "outcome ($r)"

fl_log "shutdown.mode finish, then SIGTERM again: the running migration is canceled at once"
ag_tenant_db c5 >/dev/null
ag_config "$tenants
  - {id: c5, server: main, database: c5}
shutdown:
  mode: finish
  timeout: 5m"
ag_start
ag_cmd "assign 5 apply c5 0 order $M2 $AG/order.bin r-5"
running c5
stops=$(grep -c "SIGTERM: stopping" "$AG_LOG" || true)
kill -TERM "$AG_PID"
wait_for 30 "[ \$(grep -c 'SIGTERM: stopping' '$AG_LOG') -gt $stops ]"
running c5 # still: it finishes unless told again
t0=$(date +%s)
ag_stop TERM
assert_eq "$AG_RC" 0 "exit status"
[ $(($(date +%s) - t0)) -lt 20 ] || fl_fail "the second SIGTERM took $(($(date +%s) - t0))s"
assert_contains "$(cat "$AG_LOG")" "SIGTERM again: canceling running work"
assert_eq "$(ag_has_table "$(url c5)" slow)" f "c5: the canceled migration left nothing"
r=$(ag_report 5)
assert_eq "$(ag_field "$r" outcome)" canceled "outcome ($r)"

fl_log "SIGKILL mid-migration: after a restart, CANCELED with the history as it is"
ag_config "$tenants"
ag_start
ag_cmd "assign 3 apply c3 0 order $M2 $AG/order.bin r-3"
running c3
ag_stop KILL
fl_psql "$DATABASE_URL" "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'c3' AND pid <> pg_backend_pid()" >/dev/null
ag_start
r=$(ag_report 3)
assert_eq "$(ag_field "$r" outcome)" canceled "outcome ($r)"
assert_contains "$(ag_field "$r" message)" "the agent stopped while this ran"
assert_eq "$(ag_field "$r" head)" $M1 "history as it is: M1"
assert_eq "$(ag_field "$r" applied)" 1 "applied count"
assert_contains "$(ag_field "$r" migrations)" "$M1:applied"
fl_log "...and never run again under its id"
ag_cmd "assign 3 apply c3 0 order $M2 $AG/order.bin r-3"
wait_for 30 "[ \$(ag_reports 3) -ge 2 ]"
assert_eq "$(ag_has_table "$(url c3)" slow)" f "c3: M2 not run again"

fl_log "reports made while the coordinator is down arrive once it is back, exactly once"
ag_cmd "assign 4 apply c4 0 order $M2 $AG/quick.bin r-4"
running c4
ag_rogue_stop
wait_for 30 "[ \"\$(ag_applied '$(url c4)')\" = '$M1,$M2' ]"
[ "$(ag_reports 4)" = 0 ] || fl_fail "report 4 arrived while the coordinator was down"
wait_for 60 grep -q "sending reports" "$AG_LOG"
rogue_start_ipc
r=$(ag_report 4)
assert_eq "$(ag_field "$r" outcome)" applied "outcome ($r)"
# the agent goes on polling; the report does not come again
polls=$(wc -l <"$AG_ROGUE_DIR/polls.log")
wait_for 30 "[ \$(wc -l <'$AG_ROGUE_DIR/polls.log') -ge $((polls + 5)) ]"
assert_eq "$(ag_reports 4)" 1 "report 4 delivered once"
ag_stop TERM
assert_eq "$AG_RC" 0 "exit status"

fl_log "the journal is empty after a clean stop with the coordinator up"
ag_start
wait_for 10 "tail -n 1 '$AG_ROGUE_DIR/polls.log' | grep -q 'running=\$'"
ag_stop TERM
assert_contains "$(tail -n 3 "$AG_LOG")" "0 reports left in the journal"

fl_log "the tenant whose migration was canceled is not at the target: sent again, not skipped"
# c1's canceled M2 left a failed row; a new assignment must not call c1 done
failed_rows=$(fl_psql "$(url c1)" "SELECT count(*) FROM _prisma_migrations
	WHERE migration_name = '$M2' AND finished_at IS NULL AND rolled_back_at IS NULL")
ag_start
ag_cmd "assign 6 apply c1 0 order $M2 $AG/order.bin r-6"
r=$(ag_report 6)
if [ "$failed_rows" -gt 0 ]; then
	assert_eq "$(ag_field "$r" outcome)" failed "outcome ($r)"
	assert_contains "$(ag_field "$r" message)" "migration '$M2' failed"
else
	assert_eq "$(ag_field "$r" outcome)" applied "outcome ($r)"
fi
assert_not_contains "$(ag_field "$r" message)" "at the target already"
ag_stop TERM
assert_eq "$AG_RC" 0 "exit status"
fl_pass
