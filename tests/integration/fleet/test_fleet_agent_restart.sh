#!/usr/bin/env bash
# An agent stopped in the middle of a rollout (SIGTERM: its running migrations canceled) and
# started again: the rollout resumes and completes, and every tenant, those of the agent
# that stopped included, holds the migration once, applied (not "skipped: at the target
# already" because the canceled run left something behind).
#
# The migration waits on a gate the test holds (a session named fl_gate, seen in
# pg_stat_activity from every database), so that nothing depends on how fast the machine is:
# the test waits for all six to be inside it, stops r1, waits for r1's to be gone while r2's
# still wait, starts r1 again, waits for its reissued work to be back inside the migration,
# and only then opens the gate.
. "$(dirname "$0")/lib.sh"

fleet_test_init
fleet_add_agent r1 3 0
fleet_add_agent r2 3 0
fleet_start_coordinator
fleet_start_agent r1
fleet_start_agent r2
fleet_wait_tenants 6 120
tenants=$(fleet_tenants r1 3; fleet_tenants r2 3)

waiting() { # tenant sessions running migration slow_one now (all databases)
	psql -X -A -t -q -d postgres -c "SELECT count(*) FROM pg_stat_activity
		WHERE state = 'active' AND query LIKE '%slow_one gate%' AND datname LIKE '$1%'
		AND pid <> pg_backend_pid()"
}
gate_open() {
	psql -X -A -t -q -d postgres -c "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE application_name = 'fl_gate'" >/dev/null
	wait_for 30 "[ \"\$(psql -X -A -t -q -d postgres -c \"SELECT count(*) FROM pg_stat_activity
		WHERE application_name = 'fl_gate'\")\" = 0 ]"
}
fl_psql_bg "$DATABASE_URL" fl_gate "SELECT pg_sleep(600)"
fl_on_exit gate_open
wait_for 30 "[ \"\$(psql -X -A -t -q -d postgres -c \"SELECT count(*) FROM pg_stat_activity
	WHERE application_name = 'fl_gate' AND state = 'active'\")\" = 1 ]"

fleet_migrations 1
fleet_policy wide <<'EOF2'
name: wide
waves:
  - {name: all, select: {percent: 100}, max_parallel: 6}
per_agent_parallel: 3
EOF2

fl_log "an agent restarted mid-rollout"
fleet_migration "$FLEET_MIGS" 20250320000000_slow_one "DO \$\$ BEGIN -- slow_one gate
  WHILE EXISTS (SELECT 1 FROM pg_stat_activity WHERE application_name = 'fl_gate') LOOP
    PERFORM pg_stat_clear_snapshot();
    PERFORM pg_sleep(0.1);
  END LOOP;
  CREATE TABLE slow_one (id int);
END \$\$;"
fleet_release "$FLEET_MIGS" 1 v1
fleet_start --release "$FLEET_RELEASE_FILE" --policy "$FLEET_POLICY" --all
wait_for 120 "[ \"\$(waiting r1_)\" = 3 ] && [ \"\$(waiting r2_)\" = 3 ]"

fleet_stop r1 TERM
assert_eq "${FLEET_EXIT[r1]}" 0 "r1's exit status on SIGTERM"
grep -q 'canceled' "$FLEET_DIR/logs/r1.log" || fl_fail "r1 logged no canceled assignment"
wait_for 60 "[ \"\$(waiting r1_)\" = 0 ]"
assert_eq "$(waiting r2_)" 3 "r2's sessions still in the migration once r1 stopped"
for t in $(fleet_tenants r1 3); do
	assert_eq "$(fleet_applied "$t" 20250320000000_slow_one)" 0 "slow_one applied on $t once r1 stopped"
done

fl_log "r1 started again: its tenants get the migration again, and run it"
fleet_start_agent r1
wait_for 120 "[ \"\$(waiting r1_)\" = 3 ]"
assert_eq "$(fleet_rollout_state)" running "the rollout before the gate opens"
gate_open
fleet_wait_rollout completed -t 120
for t in $tenants; do
	assert_eq "$(fleet_rows "$t" 20250320000000_slow_one)" 1 "history rows of slow_one on $t"
	assert_eq "$(fleet_applied "$t" 20250320000000_slow_one)" 1 "slow_one applied on $t"
	assert_eq "$(fleet_tenant_psql "$t" "SELECT count(*) FROM pg_tables WHERE tablename = 'slow_one'")" 1 \
		"table slow_one on $t"
done

fleet_pass
