#!/usr/bin/env bash
# The coordinator killed with SIGKILL in the middle of a wave, and started again: it resumes
# where it was; no tenant is given the work twice (one apply per tenant in the agents' own
# logs), and every tenant's history holds the migration exactly once.
. "$(dirname "$0")/lib.sh"

fleet_test_init
fleet_add_agent r1 3 0
fleet_add_agent r2 3 0
fleet_start_coordinator
fleet_start_agent r1
fleet_start_agent r2
fleet_wait_tenants 6
tenants=$(fleet_tenants r1 3; fleet_tenants r2 3)

sleeping() { # statements in the sleep of migration $1 now
	psql -X -A -t -q -d postgres -c "SELECT count(*) FROM pg_stat_activity
		WHERE query LIKE '%$1%' AND query LIKE '%pg_sleep%' AND pid <> pg_backend_pid()"
}
fleet_migrations 1
fleet_policy wide <<'EOF2'
name: wide
waves:
  - {name: all, select: {percent: 100}, max_parallel: 6}
per_agent_parallel: 3
EOF2

fl_log "the coordinator killed with SIGKILL mid-wave"
fleet_policy narrow <<'EOF2'
name: narrow
waves:
  - {name: all, select: {percent: 100}, max_parallel: 2}
per_agent_parallel: 1
EOF2
fleet_migration "$FLEET_MIGS" 20250322000000_slow_three "SELECT 'slow_three', pg_sleep(2);"
fleet_release "$FLEET_MIGS" 1 v1
fleet_start --release "$FLEET_RELEASE_FILE" --policy "$FLEET_POLICY" --all
r3=$FLEET_ROLLOUT
# A release manager watching it sees the coordinator go and come back, and the end.
w=$(fl_tmpdir)
fleet_cli rollout watch "$r3" --interval 200ms --timeout 10s >"$w/out" 2>"$w/err" &
watcher=$!
wait_for 60 "[ -s '$w/out' ]" # it saw the rollout before the coordinator goes
wait_for 60 "[ \"\$(sleeping slow_three)\" = 2 ]"
fleet_stop coordinator KILL
if ! (wait_for 30 grep -q "still trying" "$w/err") 2>/dev/null; then
	fl_fail "the watcher did not say it keeps trying within 30s; it printed: $(cat "$w/err" "$w/out")$(kill -0 "$watcher" 2>/dev/null && echo ' (and runs on)')"
fi
fleet_start_coordinator
fleet_wait_rollout completed -t 120
rc=0
wait "$watcher" || rc=$?
assert_eq "$rc" 0 "rollout watch's exit across the coordinator's restart"
assert_contains "$(cat "$w/err")" "the coordinator answers again"
for t in $tenants; do
	assert_eq "$(fleet_rows "$t" 20250322000000_slow_three)" 1 "history rows of slow_three on $t"
	a=${t%%_*}
	n=$(grep -c "\"context\":\"tenant '$t'\",\"msg\":\"assignment [0-9]*: apply to [^ ]* (rollout '$r3'" \
		"$FLEET_DIR/logs/$a.log" || true)
	assert_eq "$n" 1 "applies of $r3 that $a started on $t"
done
fleet_pass
