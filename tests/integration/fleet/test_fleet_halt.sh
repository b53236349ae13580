#!/usr/bin/env bash
# `flotilla rollout halt` reaches every agent at once, and their running work stops.
#
# 4 agents, 3 tenants each, all of them busy in one migration that sleeps 60 s (policy
# on_halt: cancel). From the moment the halt command is sent, the test measures, per agent,
# how long until the agent logs the halt (its JSON log line's own timestamp), and how long
# until no tenant database runs the migration any more (pg_stat_activity, polled). It prints
# the figures; it asserts the halt reached every agent and every statement was canceled
# (the wide bound of 10 s is there only so that a lost halt fails the test, not for speed),
# that the rollout is halted, and that no tenant holds the migration.
. "$(dirname "$0")/lib.sh"

FLEET_POLL_HOLD=25s # the default: a halt must not wait for polls to come back
fleet_test_init
for a in h1 h2 h3 h4; do
	fleet_add_agent "$a" 3 0
done
fleet_start_coordinator
for a in h1 h2 h3 h4; do
	fleet_start_agent "$a"
done
fleet_wait_tenants 12

fleet_policy all <<'EOF'
name: all-at-once
waves:
  - {name: all, select: {percent: 100}, max_parallel: 12}
per_agent_parallel: 3
on_failure: halt
on_halt: cancel
EOF
slow=$(fl_tmpdir)
fleet_migration "$slow" 20250320000000_slow "SELECT pg_sleep(60);"
fleet_migrations 1 "$slow/20250320000000_slow"
fleet_release "$FLEET_MIGS" 1 v1
fleet_start --release "$FLEET_RELEASE_FILE" --policy "$FLEET_POLICY" --all

sleeping() {
	psql -X -A -t -q -d postgres -c "SELECT count(*) FROM pg_stat_activity
		WHERE query LIKE '%pg_sleep(60)%' AND pid <> pg_backend_pid()"
}
wait_for 60 "[ \"\$(sleeping)\" = 12 ]"
fl_log "12 tenants on 4 agents are in the migration; halting"

t0=$(date +%s%3N)
assert_exit 0 fleet_cli rollout halt "$FLEET_ROLLOUT" --reason "test: halt now"
t_cmd=$(date +%s%3N)
# Statements canceled: poll the server until none is left.
while [ "$(sleeping)" != 0 ]; do
	[ $(($(date +%s%3N) - t0)) -lt 10000 ] || fl_fail "still $(sleeping) statements after 10s"
	sleep 0.01
done
t_db=$(date +%s%3N)

worst=0
for a in h1 h2 h3 h4; do
	wait_for 10 grep -q "rollout '$FLEET_ROLLOUT' halted" "$FLEET_DIR/logs/$a.log"
	ts=$(grep "rollout '$FLEET_ROLLOUT' halted" "$FLEET_DIR/logs/$a.log" | awk 'NR == 1' |
		grep -o '"ts":"[^"]*"' | cut -d'"' -f4)
	t_agent=$(date -d "$ts" +%s%3N)
	d=$((t_agent - t0))
	fl_log "halt reached $a in ${d} ms"
	[ "$d" -lt 10000 ] || fl_fail "the halt took ${d} ms to reach $a"
	[ "$d" -le "$worst" ] || worst=$d
done
fl_log "halt propagation: slowest agent ${worst} ms after the command was sent" \
	"(the command returned after $((t_cmd - t0)) ms); every statement canceled after" \
	"$((t_db - t0)) ms"

fleet_wait_rollout halted
for a in h1 h2 h3 h4; do
	fl_log "$a logged the halt $(grep -c "rollout '$FLEET_ROLLOUT' halted" "$FLEET_DIR/logs/$a.log") times"
done
for a in h1 h2 h3 h4; do
	for t in $(fleet_tenants "$a" 3); do
		assert_eq "$(fleet_applied "$t" 20250320000000_slow)" 0 "the slow migration on $t"
	done
done
fleet_pass
