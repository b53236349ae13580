#!/usr/bin/env bash
# An agent stopped in the middle of a rollout (SIGTERM: its running migrations canceled) and
# started again: the rollout resumes and completes, and every tenant, those of the agent
# that stopped included, holds the migration once, applied.
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

fl_log "an agent restarted mid-rollout"
fleet_migration "$FLEET_MIGS" 20250320000000_slow_one "SELECT 'slow_one', pg_sleep(3);"
fleet_release "$FLEET_MIGS" 1 v1
fleet_start --release "$FLEET_RELEASE_FILE" --policy "$FLEET_POLICY" --all
wait_for 60 "[ \"\$(sleeping slow_one)\" = 6 ]"
fleet_stop r1 TERM
assert_eq "$(sleeping slow_one)" 3 "statements left once r1 stopped"
fleet_start_agent r1
fleet_wait_rollout completed -t 90
for t in $tenants; do
	assert_eq "$(fleet_rows "$t" 20250320000000_slow_one)" 1 "history rows of slow_one on $t"
	assert_eq "$(fleet_applied "$t" 20250320000000_slow_one)" 1 "slow_one applied on $t"
done

fleet_pass
