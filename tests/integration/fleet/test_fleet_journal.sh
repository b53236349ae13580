#!/usr/bin/env bash
# The coordinator stops while agents work: they finish, keep their reports in their
# journals, and deliver them once it is back; the rollout completes, and the coordinator
# holds each tenant's apply report exactly once.
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

fl_log "reports written while the coordinator is down"
fleet_migration "$FLEET_MIGS" 20250321000000_slow_two "SELECT 'slow_two', pg_sleep(3);"
fleet_release "$FLEET_MIGS" 1 v1
fleet_start --release "$FLEET_RELEASE_FILE" --policy "$FLEET_POLICY" --all
r2=$FLEET_ROLLOUT
wait_for 60 "[ \"\$(sleeping slow_two)\" = 6 ]"
fleet_stop coordinator TERM
for t in $tenants; do
	wait_for 60 "[ \"\$(fleet_applied $t 20250321000000_slow_two)\" = 1 ]"
done
fl_log "every tenant finished while the coordinator was down"
fleet_start_coordinator
fleet_wait_rollout completed -t 90
for t in $tenants; do
	assert_exit 0 fleet_cli tenant show "$t" --json --reports 100
	n=$(printf '%s' "$OUT" | grep -o "\"rollout_id\":\"$r2\",\"assignment_id\":[0-9]*,\"kind\":\"apply\",\"outcome\":\"applied\"" | wc -l)
	assert_eq "$n" 1 "apply reports of $r2 the coordinator holds for $t"
done

fleet_pass
