#!/usr/bin/env bash
# systemd's readiness protocol (Type=notify, lib/sd_notify.c): with NOTIFY_SOCKET set, the
# coordinator says READY=1 once its endpoints listen, RELOADING=1 then READY=1 on SIGHUP and
# STOPPING=1 on SIGTERM; the agent says READY=1 once it is open (config, keys, state dir,
# tenants), and the same on SIGHUP and SIGTERM. fl-notify-listen stands in for systemd: it
# prints each datagram, and for the coordinator whether its admin endpoint accepted a
# connection at the moment the datagram came (probe=up).
. "$(dirname "$0")/lib.sh"

[ -n "${FL_NOTIFY_LISTEN:-}" ] || fl_fail "FL_NOTIFY_LISTEN is not set (run through ctest)"
fleet_test_init
fleet_add_agent n1 2 0

listen() { # NAME [--probe PATH]: a notify socket; its lines in $FLEET_DIR/NAME.notify
	local name=$1
	shift
	"$FL_NOTIFY_LISTEN" "$FLEET_DIR/$name.sock" "$@" >"$FLEET_DIR/$name.notify" 2>&1 &
	echo "$!" >>"$FLEET_DIR/pids"
	wait_for 10 test -S "$FLEET_DIR/$name.sock"
}
lines() { cat "$FLEET_DIR/$1.notify"; }
count() { grep -c -- "$2" "$FLEET_DIR/$1.notify" || true; }

fl_log "coordinator: READY=1 comes once the admin endpoint listens"
listen coord --probe "$FLEET_DIR/admin.ipc"
NOTIFY_SOCKET=$FLEET_DIR/coord.sock fleet_start_coordinator
wait_for 30 "grep -q '^READY=1' '$FLEET_DIR/coord.notify'"
assert_eq "$(lines coord)" "READY=1 probe=up" "the coordinator's notifications at start"

fl_log "coordinator: SIGHUP reloads between RELOADING=1 and READY=1"
kill -HUP "${FLEET_PID[coordinator]}"
wait_for 30 "[ \"\$(count coord READY=1)\" = 2 ]"
assert_eq "$(lines coord | cut -d' ' -f1 | tr '\n' ' ')" "READY=1 RELOADING=1 READY=1 " \
	"the coordinator's notifications after SIGHUP"
fleet_cli agents list >/dev/null || fl_fail "the coordinator does not answer after SIGHUP"

fl_log "agent: READY=1 once open, then the coordinator sees its tenants"
listen agent
NOTIFY_SOCKET=$FLEET_DIR/agent.sock fleet_start_agent n1
wait_for 30 "grep -q '^READY=1' '$FLEET_DIR/agent.notify'"
fleet_wait_tenants 2
kill -HUP "${FLEET_PID[n1]}"
wait_for 30 "[ \"\$(count agent READY=1)\" = 2 ]"
assert_eq "$(lines agent | tr '\n' ' ')" "READY=1 RELOADING=1 READY=1 " \
	"the agent's notifications after SIGHUP"

fl_log "SIGTERM: STOPPING=1 from both, and both exit 0"
fleet_stop n1
fleet_stop coordinator
assert_eq "$(lines agent | tail -n 1)" "STOPPING=1" "the agent's last notification"
assert_eq "$(lines coord | tail -n 1 | cut -d' ' -f1)" "STOPPING=1" \
	"the coordinator's last notification"
fleet_pass
