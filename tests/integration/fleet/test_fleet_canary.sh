#!/usr/bin/env bash
# The quickstart's two stories as assertions, on a smaller fleet (2 agents, 8 tenant
# databases each, 3 canaries):
#  1. release 1 (3 migrations) goes canary -> 25% -> rest and completes: every tenant's own
#     _prisma_migrations holds each migration exactly once, applied;
#  2. release 2 renames users.email, which the policy's health check reads: the check fails
#     on the canary wave, the wave is rolled back (on_failure: rollback-wave), the rollout
#     ends halted or rolled back (exit 15 or 16 of `rollout start --wait`), the canaries hold
#     the migration no more, and no tenant outside the canary wave has a row of it at all.
. "$(dirname "$0")/lib.sh"

fleet_test_init
fleet_add_agent a1 8 2 region=eu
fleet_add_agent a2 8 1 region=us
fleet_start_coordinator
fleet_start_agent a1
fleet_start_agent a2
fleet_wait_tenants 16

fleet_policy canary <<'EOF2'
name: test-canary
waves:
  - {name: canary, select: {labels: {ring: canary}}, max_parallel: 3, max_failures: 0, bake: 1s}
  - {name: early, select: {percent: 25}, max_parallel: 4, max_failures: 0}
  - {name: rest, select: {percent: 100}, max_parallel: 16}
per_agent_parallel: 4
health:
  interval: 1s
  checks:
    - {name: users-email-readable, sql: "SELECT count(email) >= 0 FROM users", timeout: 2s}
on_failure: rollback-wave
EOF2

tenants=$(fleet_tenants a1 8; fleet_tenants a2 8)
canaries="a1_t001 a1_t002 a2_t001"
v1=(20250301090000_init 20250302090000_add_orgs 20250303090000_index_users_created_at)
bad=20250310090000_rename_users_email

fl_log "release 1: canary -> 25% -> rest"
fleet_migrations 3
fleet_release "$FLEET_MIGS" 1 v1
assert_exit 0 fleet_cli rollout start --release "$FLEET_RELEASE_FILE" --policy "$FLEET_POLICY" \
	--all --release-key "$FLEET_RELEASE_KEY" --reason "test: release 1" --wait --interval 200ms
assert_contains "$OUT" "wave 1/3 canary: completed, 3/3 done"
assert_contains "$OUT" "rollout r"
for t in $tenants; do
	for m in "${v1[@]}"; do
		assert_eq "$(fleet_rows "$t" "$m")" 1 "history rows of $m on $t"
		assert_eq "$(fleet_applied "$t" "$m")" 1 "$m applied on $t"
	done
done
assert_exit 0 fleet_cli fleet status --json
assert_contains "$OUT" '"total_count":16'
n=$(printf '%s' "$OUT" | grep -o "\"head_migration_id\":\"${v1[2]}\"" | wc -l)
assert_eq "$n" 16 "tenants at release 1's head in fleet status"

fl_log "release 2: the canaries' health check fails; their wave is rolled back"
fleet_migrations 4
fleet_release "$FLEET_MIGS" 2 v2
assert_exit nonzero fleet_cli rollout start --release "$FLEET_RELEASE_FILE" \
	--policy "$FLEET_POLICY" --all --release-key "$FLEET_RELEASE_KEY" \
	--reason "test: release 2" --wait --interval 200ms
case $RC in
15 | 16) ;;
*) fl_fail "rollout start --wait exited $RC, expected 15 (halted) or 16 (rolled back): $ERR" ;;
esac
for t in $tenants; do
	case " $canaries " in
	*" $t "*)
		assert_eq "$(fleet_applied "$t" "$bad")" 0 "$bad applied on canary $t after the rollback"
		assert_eq "$(fleet_tenant_psql "$t" "SELECT count(*) FROM information_schema.columns
			WHERE table_name = 'users' AND column_name = 'email'")" 1 "users.email on $t"
		;;
	*)
		assert_eq "$(fleet_rows "$t" "$bad")" 0 "rows of $bad on $t, outside the canary wave"
		;;
	esac
	for m in "${v1[@]}"; do
		assert_eq "$(fleet_applied "$t" "$m")" 1 "$m still applied on $t"
	done
done
assert_exit 0 fleet_cli fleet status --json
n=$(printf '%s' "$OUT" | grep -o "\"head_migration_id\":\"${v1[2]}\"" | wc -l)
assert_eq "$n" 16 "tenants back at release 1's head in fleet status"
# The canary whose check failed first says why; the others' checks may have been canceled
# by the halt (inconclusive) before they ran.
failed=0
for t in $canaries; do
	assert_exit 0 fleet_cli tenant show "$t" --json
	case $OUT in *'"outcome":"health-failed"'*) failed=$((failed + 1)) ;; esac
done
[ "$failed" -ge 1 ] || fl_fail "no canary's reports say health-failed"

fleet_pass
