#!/usr/bin/env bash
# `rollout start --wait` (and `rollout watch`) exit codes, end to end, as CI relies on them:
# 0 completed, 15 halted (here by an operator while it waits), 16 rolled back, 17 the order
# expired first (an order signed to expire after a minute, held at a manual gate).
. "$(dirname "$0")/lib.sh"

FLEET_POLL_HOLD=1s
fleet_test_init
fleet_add_agent w1 2 1
fleet_start_coordinator
fleet_start_agent w1
fleet_wait_tenants 2

start_wait() { # EXPECTED-EXIT ARGS...: rollout start --wait
	assert_exit "$1" fleet_cli rollout start --release "$FLEET_RELEASE_FILE" \
		--policy "$FLEET_POLICY" --release-key "$FLEET_RELEASE_KEY" --all --wait \
		--interval 200ms "${@:2}"
}
latest() {
	fleet_cli rollout list --all --json | grep -o '"id":"r-[0-9]*"' | awk 'NR == 1' | cut -d'"' -f4
}

fl_log "0: completed"
fleet_policy auto <<'EOF2'
name: auto
waves:
  - {name: all, select: {percent: 100}, max_parallel: 2}
EOF2
fleet_migrations 1
fleet_release "$FLEET_MIGS" 1 v1
start_wait 0
assert_contains "$ERR" "ended completed"

fl_log "15: halted by an operator while --wait waits"
fleet_policy gated <<'EOF2'
name: gated
waves:
  - {name: canary, select: {labels: {ring: canary}}, max_parallel: 1, gate: manual}
  - {name: rest, select: {percent: 100}, max_parallel: 1}
EOF2
fleet_migrations 2
fleet_release "$FLEET_MIGS" 2 v2
out=$(fl_tmpdir)
fleet_cli rollout start --release "$FLEET_RELEASE_FILE" --policy "$FLEET_POLICY" \
	--release-key "$FLEET_RELEASE_KEY" --all --wait --interval 200ms >"$out/out" 2>"$out/err" &
waiter=$!
wait_for 30 "[ -n \"\$(latest)\" ] && [ \"\$(fleet_wave_field 0 state \$(latest))\" = awaiting-promote ]"
assert_exit 0 fleet_cli rollout halt "$(latest)" --reason "test: stop waiting"
rc=0
wait "$waiter" || rc=$?
assert_eq "$rc" 15 "exit of rollout start --wait once halted"

fl_log "16: rolled back"
FLEET_ROLLOUT=$(latest)
assert_exit 0 fleet_cli rollout rollback "$FLEET_ROLLOUT" --release-key "$FLEET_RELEASE_KEY" \
	--reason "test: undo" --wait --interval 200ms
assert_exit 16 fleet_cli rollout watch "$FLEET_ROLLOUT" --interval 200ms

fl_log "17: the order expired at the gate (a minute)"
fleet_migrations 3
fleet_release "$FLEET_MIGS" 3 v3
start_wait 17 --expires 1m
assert_contains "$ERR" "its order expired"
fleet_pass
