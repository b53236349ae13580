#!/usr/bin/env bash
# Webhooks (coordinator/webhooks.c): a real rollout's transitions reach an HTTP receiver in
# order, each body signed with HMAC-SHA-256 under the configured secret; the first POST is
# answered 500 and the same event comes again; every attempt is in the audit log. Then the
# receiver goes away, the rollout is rolled back, the coordinator is killed (SIGKILL) with
# those events undelivered, and after a restart, with the receiver back on its port, they
# arrive.
#
# fl-webhook-recv prints one line per request: "STATUS sig=ok|bad event=NAME id=ID BODY".
. "$(dirname "$0")/lib.sh"

[ -n "${FL_WEBHOOK_RECV:-}" ] || fl_fail "FL_WEBHOOK_RECV is not set (run through ctest)"
FLEET_POLL_HOLD=1s
fleet_test_init
fleet_add_agent w1 4 1

secret=$FLEET_DIR/webhook.secret
printf 'a test secret\n' >"$secret"
chmod 600 "$secret"
recv=$FLEET_DIR/recv.out
receiver() { # [PORT-FILE-CONTENT]: start the receiver; $port is its port
	rm -f "$FLEET_DIR/recv.port"
	"$FL_WEBHOOK_RECV" --secret "$secret" --port-file "$FLEET_DIR/recv.port" "$@" >>"$recv" 2>&1 &
	RECV_PID=$!
	echo "$RECV_PID" >>"$FLEET_DIR/pids"
	wait_for 10 test -s "$FLEET_DIR/recv.port"
	port=$(cat "$FLEET_DIR/recv.port")
}
delivered() { grep '^204 ' "$recv" | cut -d' ' -f3 | cut -d= -f2 | tr '\n' ' '; }

receiver --fail-first 1
FLEET_COORDINATOR_EXTRA="webhooks:
  - {url: \"http://127.0.0.1:$port/hooks/flotilla\", secret_file: \"$secret\", attempts: 10, timeout: 30s}"
fleet_start_coordinator
fleet_start_agent w1
fleet_wait_tenants 4

fleet_policy gated <<'EOF2'
name: gated
waves:
  - {name: canary, select: {labels: {ring: canary}}, max_parallel: 1, gate: manual}
  - {name: rest, select: {percent: 100}, max_parallel: 4}
EOF2
fleet_migrations 1
fleet_release "$FLEET_MIGS" 1 v1
fleet_start --release "$FLEET_RELEASE_FILE" --policy "$FLEET_POLICY" --all

fl_log "the rollout waits at the gate; the receiver has been told"
wait_for 60 "grep -q '^204 .*event=gate_waiting' '$recv'"
assert_exit 0 fleet_cli rollout promote "$FLEET_ROLLOUT"
fleet_wait_rollout completed -t 60
wait_for 60 "grep -q '^204 .*event=completed' '$recv'"

fl_log "in order, signed, and the first one again after its 500"
expected="started wave_started gate_waiting wave_completed wave_started wave_completed completed "
assert_eq "$(delivered)" "$expected" "events delivered"
assert_eq "$(grep -c 'sig=ok' "$recv")" "$(wc -l <"$recv")" "requests with a good signature"
assert_eq "$(head -n 1 "$recv" | cut -d' ' -f1,3,4)" "500 event=started $(sed -n 2p "$recv" | cut -d' ' -f4)" \
	"the first request (500) and the second (the same event again)"
first=$(grep '^204 ' "$recv" | head -n 1)
assert_contains "$first" "\"event\":\"started\",\"rollout_id\":\"$FLEET_ROLLOUT\",\"state\":\"running\""
assert_contains "$first" '"tenants_total":4,"time":"'
assert_contains "$(grep '^204 .*event=completed' "$recv")" '"tenants":{"pending":0,"assigned":0,"applied":4,'
ids=$(grep '^204 ' "$recv" | cut -d' ' -f4 | cut -d= -f2)
assert_eq "$ids" "$(printf '%s\n' "$ids" | sort -n -u)" "event ids, increasing"

fl_log "every attempt is in the audit log"
n=$(grep -c '^204 ' "$recv")
wait_for 30 "[ \"\$(fleet_cli audit --since 1h | grep -c 'webhook_delivered')\" = $n ]"
audit=$(fleet_cli audit --since 1h)
assert_eq "$(printf '%s\n' "$audit" | grep -c 'webhook_failed')" 1 "failed attempts audited"
assert_contains "$(printf '%s\n' "$audit" | grep webhook_failed)" \
	"'started' to 'http://127.0.0.1:$port/hooks/flotilla': attempt 1 of 10: HTTP 500; next in 1000ms"
assert_contains "$(printf '%s\n' "$audit" | grep webhook_delivered | head -n 1)" "attempt 2 of 10: HTTP 204"
assert_contains "$(printf '%s\n' "$audit" | grep webhook_event | head -n 1)" \
	"to 'http://127.0.0.1:$port/hooks/flotilla': {\"event\":\"started\",\"rollout_id\":\"$FLEET_ROLLOUT\""

fl_log "receiver down, rollout rolled back, coordinator killed: nothing is lost"
kill "$RECV_PID"
wait "$RECV_PID" 2>/dev/null || true
: >"$recv"
assert_exit 0 fleet_cli rollout rollback "$FLEET_ROLLOUT" --release-key "$FLEET_RELEASE_KEY" \
	--reason "webhook test"
fleet_wait_rollout rolled-back -t 60 # its events are committed with the state
fleet_stop coordinator KILL            # long before 10 attempts could give up
receiver --port "$port"
fleet_start_coordinator
wait_for 60 "grep -q '^204 .*event=rolled_back' '$recv'"
assert_eq "$(delivered)" "rolling_back rolled_back " "events delivered after the restart"
assert_eq "$(grep -c 'sig=ok' "$recv")" "$(wc -l <"$recv")" "requests with a good signature"
assert_contains "$(head -n 1 "$recv")" "\"event\":\"rolling_back\",\"rollout_id\":\"$FLEET_ROLLOUT\""
fleet_stop coordinator # it was killed once: its exit status then is not this test's

fleet_pass
