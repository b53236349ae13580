#!/usr/bin/env bash
# The failure budget counts exactly: with max_failures: 1, the first failed tenant is
# within budget and the rollout goes on to complete; a second failure halts it there.
#
# One agent, 8 tenant databases, one wave taking one tenant at a time. A migration fails on
# a tenant where the table it creates exists already (made by hand beforehand).
. "$(dirname "$0")/lib.sh"

fleet_test_init
fleet_add_agent b1 8 0
fleet_start_coordinator
fleet_start_agent b1
fleet_wait_tenants 8

fleet_policy budget <<'EOF'
name: budget-one
waves:
  - {name: all, select: {percent: 100}, max_parallel: 1, max_failures: 1}
per_agent_parallel: 1
on_failure: halt
EOF
wait_start() { # start a rollout and wait for its end; RC is --wait's exit code
	assert_exit "$1" fleet_cli rollout start --release "$FLEET_RELEASE_FILE" \
		--policy "$FLEET_POLICY" --release-key "$FLEET_RELEASE_KEY" --wait --interval 200ms \
		"${@:2}"
	FLEET_ROLLOUT=$(fleet_cli rollout list --all --json | grep -o '"id":"r-[0-9]*"' |
		awk 'NR == 1' | cut -d'"' -f4)
}

fl_log "release 1 everywhere"
fleet_migrations 1
fleet_release "$FLEET_MIGS" 1 v1
wait_start 0 --all

fl_log "release 2: one tenant fails, within the budget: the rollout completes"
fleet_tenant_psql b1_t002 "CREATE TABLE widgets (id int)"
fleet_migration "$FLEET_MIGS" 20250321000000_widgets "CREATE TABLE widgets (id int PRIMARY KEY);" \
	"DROP TABLE widgets;"
fleet_release "$FLEET_MIGS" 2 v2
wait_start 0 --all
assert_eq "$(fleet_rollout_state)" completed "rollout state"
assert_eq "$(fleet_wave_field 0 tenants_failed)" 1 "failed tenants"
assert_eq "$(fleet_wave_field 0 tenants_applied)" 7 "applied tenants"
assert_eq "$(fleet_applied b1_t002 20250321000000_widgets)" 0 "widgets on the failed tenant"
for t in b1_t001 b1_t003 b1_t004 b1_t005 b1_t006 b1_t007 b1_t008; do
	assert_eq "$(fleet_applied "$t" 20250321000000_widgets)" 1 "widgets on $t"
done

fl_log "release 3: two tenants fail: the second failure halts the rollout"
fleet_tenant_psql b1_t003 "CREATE TABLE gadgets (id int)"
fleet_tenant_psql b1_t004 "CREATE TABLE gadgets (id int)"
fleet_migration "$FLEET_MIGS" 20250322000000_gadgets "CREATE TABLE gadgets (id int PRIMARY KEY);" \
	"DROP TABLE gadgets;"
fleet_release "$FLEET_MIGS" 3 v3
# b1_t002 holds a failed migration, which blocks it: leave it out.
args=()
for t in b1_t001 b1_t003 b1_t004 b1_t005 b1_t006 b1_t007 b1_t008; do
	args+=(--tenant "$t")
done
wait_start 15 "${args[@]}"
assert_eq "$(fleet_rollout_state)" halted "rollout state"
assert_eq "$(fleet_wave_field 0 tenants_failed)" 2 "failed tenants when it halted"
assert_contains "$(fleet_rollout_json)" "2 of 7 failed, max_failures 1"
applied=$(fleet_wave_field 0 tenants_applied)
n=0
for t in b1_t001 b1_t005 b1_t006 b1_t007 b1_t008; do
	n=$((n + $(fleet_applied "$t" 20250322000000_gadgets)))
done
assert_eq "$n" "$applied" "tenants holding gadgets, by their own history"
fl_log "halted after 2 failures with $applied of 5 healthy tenants done"
fleet_pass
