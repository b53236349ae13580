#!/usr/bin/env bash
# A manual gate holds the next wave until `rollout promote`, and pause holds new work until
# `rollout resume`; work under way finishes either way.
#
# 1 agent, 6 tenants (2 canaries); the canary wave has gate: manual; the rest go one at a
# time through a migration that sleeps 1 s. While the rollout waits at the gate (and later
# while it is paused), the test watches for a few seconds, several of the agent's polls, and
# asserts nothing new started: no history row appears on a tenant of the next wave.
. "$(dirname "$0")/lib.sh"

FLEET_POLL_HOLD=1s
fleet_test_init
fleet_add_agent g1 6 2
fleet_start_coordinator
fleet_start_agent g1
fleet_wait_tenants 6
rest="g1_t003 g1_t004 g1_t005 g1_t006"

fleet_policy gated <<'EOF2'
name: gated
waves:
  - {name: canary, select: {labels: {ring: canary}}, max_parallel: 2, gate: manual}
  - {name: rest, select: {percent: 100}, max_parallel: 1}
per_agent_parallel: 2
EOF2
slow=20250320000000_slow
fleet_migrations 1
fleet_migration "$FLEET_MIGS" "$slow" "SELECT pg_sleep(1);"
fleet_release "$FLEET_MIGS" 1 v1
fleet_start --release "$FLEET_RELEASE_FILE" --policy "$FLEET_POLICY" --all

rows_in() { # history rows of the slow migration on these tenants
	local t n=0
	for t in "$@"; do
		n=$((n + $(fleet_rows "$t" "$slow")))
	done
	echo "$n"
}
held() { # SECONDS: the rollout stays as it is and no new row appears on $rest
	local before deadline=$((SECONDS + $1))
	before=$(rows_in $rest)
	while [ "$SECONDS" -lt "$deadline" ]; do
		assert_eq "$(rows_in $rest)" "$before" "history rows on the next wave's tenants"
		sleep 0.2
	done
}

fl_log "the canaries apply, then the rollout waits at the gate"
wait_for 60 "[ \"\$(fleet_wave_field 0 state)\" = awaiting-promote ]"
assert_eq "$(fleet_applied g1_t001 "$slow")$(fleet_applied g1_t002 "$slow")" 11 "canaries applied"
assert_eq "$(rows_in $rest)" 0 "rows on the next wave's tenants at the gate"
assert_exit 18 fleet_cli rollout watch "$FLEET_ROLLOUT" --exit-on-blocked --interval 100ms
held 3
assert_eq "$(fleet_wave_field 1 state)" pending "the next wave, before promote"

fl_log "promote only the wave waiting at its gate"
assert_exit 14 fleet_cli rollout promote "$FLEET_ROLLOUT" --wave rest
assert_exit 0 fleet_cli rollout promote "$FLEET_ROLLOUT" --reason "canaries look fine"
assert_contains "$OUT" "past the gate of wave 1/2"
wait_for 30 "[ \"\$(fleet_wave_field 1 tenants_applied)\" -ge 1 ]"

fl_log "pause mid-wave: work under way finishes, nothing new starts"
assert_exit 0 fleet_cli rollout pause "$FLEET_ROLLOUT" --reason "look first"
assert_eq "$(fleet_rollout_state)" paused "state after pause"
wait_for 30 "[ \"\$(fleet_wave_field 1 tenants_running)\" = 0 ]"
applied=$(fleet_wave_field 1 tenants_applied)
[ "$applied" -lt 4 ] || fl_fail "the wave finished before the pause took effect"
held 3
assert_eq "$(fleet_wave_field 1 tenants_applied)" "$applied" "applied while paused"
assert_eq "$(fleet_rollout_state)" paused "state while paused"
assert_exit 14 fleet_cli rollout promote "$FLEET_ROLLOUT"

fl_log "resume: the wave completes"
assert_exit 0 fleet_cli rollout resume "$FLEET_ROLLOUT"
fleet_wait_rollout completed -t 60
for t in $(fleet_tenants g1 6); do
	assert_eq "$(fleet_rows "$t" "$slow")" 1 "history rows of $slow on $t"
	assert_eq "$(fleet_applied "$t" "$slow")" 1 "$slow applied on $t"
done
fleet_pass
