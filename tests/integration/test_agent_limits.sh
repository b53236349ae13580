#!/usr/bin/env bash
# What a hostile or broken coordinator cannot make the agent do to the database host it runs
# on: fill its disk with reports it never acknowledges; spin (and fill its log) answering
# halts of rollouts it has nothing of, or redirects, at once and forever; write lines of its
# choosing into the agent's log. And what a database host gone silent cannot do: hold up a
# SIGTERM while the agent reads its tenants for a Hello.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent_lib.sh"

ag_keys
"$FLOTILLA" keygen --kind coordinator --out "$AG/unpinned.key" >/dev/null
ag_migration 20250101000000_users "CREATE TABLE users (id int PRIMARY KEY);"
ag_release "$AG/rel.release" acme-app 1
ag_policy simple 'name: simple
waves:
  - {name: all, select: {percent: 100}}'
ag_order "$AG/order.bin" "$AG/rel.release" simple 20250101000000_users --all
ag_tenant_db t1 >/dev/null

ag_rogue_start
ag_config 'tenants:
  - {id: t1, server: main, database: t1}
poll.max_pending_reports: 3'
ag_start
ag_cmd "release $AG/rel.release"

# polls_after N: wait until the coordinator has seen N more polls than now
polls_after() {
	local now
	now=$(wc -l <"$AG_ROGUE_DIR/polls.log")
	wait_for 60 "[ \$(wc -l <'$AG_ROGUE_DIR/polls.log') -ge $((now + $1)) ]"
}

fl_log "reports never acknowledged: past max_pending_reports the agent takes no work"
ag_cmd "ack off"
for id in 1 2 3; do
	ag_cmd "assign $id check ghost 0 order - $AG/order.bin r-1"
	assert_eq "$(ag_field "$(ag_report $id)" outcome)" refused "assignment $id"
done
polls_after 2
ag_cmd "assign 4 check ghost 0 order - $AG/order.bin r-1"
polls_after 2
ag_cmd "assign 5 check ghost 0 order - $AG/order.bin r-1"
polls_after 4
assert_eq "$(ag_reports 4)" 0 "assignment 4 was taken"
assert_eq "$(ag_reports 5)" 0 "assignment 5 was taken"
assert_contains "$(tail -n 2 "$AG_ROGUE_DIR/polls.log")" "poll free=0"
assert_contains "$(cat "$AG_LOG")" "3 reports (" "the warning"
assert_contains "$(cat "$AG_LOG")" "not acknowledged by the coordinator: taking no new work"

fl_log "acknowledged again: the reports drain, work is taken again"
ag_cmd "ack on"
wait_for 60 grep -q "reports acknowledged: taking work again" "$AG_LOG" ||
	fl_fail "the journal did not drain: $(tail -n 20 "$AG_LOG")"
ag_cmd "assign 4 check ghost 0 order - $AG/order.bin r-1"
assert_eq "$(ag_field "$(ag_report 4)" outcome)" refused "assignment 4, sent again"

# span KIND N: ms between the first and the N-th "KIND sent at=MS" line of the rogue from the
# mark on (the rogue's clock)
span() {
	local at
	at=$(tail -n +"$MARK" "$AG_ROGUE_DIR/polls.log" | sed -n "s/^$1 sent at=//p" | head -n "$2")
	echo $(($(echo "$at" | tail -n 1) - $(echo "$at" | head -n 1)))
}
sent() {
	tail -n +"$MARK" "$AG_ROGUE_DIR/polls.log" | grep -c "^$1 sent" || true
}
mark() {
	MARK=$(($(wc -l <"$AG_ROGUE_DIR/polls.log") + 1))
}

fl_log "halts of a rollout the agent has nothing of, in every reply: paced, no warning each"
mark
ag_cmd "halt-always r-ghost flood"
wait_for 60 "[ \$(sent halts) -ge 21 ]"
ag_cmd "halt-off"
[ "$(span halts 21)" -ge 900 ] || fl_fail "21 halted replies in $(span halts 21) ms: not paced"
if grep -q "warning: agent: rollout 'r-ghost' halted" "$AG_LOG"; then
	fl_fail "a warning for each halt of nothing"
fi

fl_log "redirected to itself, again and again: backs off"
mark
ag_cmd "agent-name evil%0Aflotilla:%20agent:%20FORGED%20NAME"
ag_cmd "redirect-always $(cat "$AG_ROGUE_DIR/url") $(ag_pub "$AG/coord.key")"
wait_for 60 "[ \$(sent redirect) -ge 8 ]"
[ "$(span redirect 8)" -ge 2000 ] || fl_fail "8 redirects in $(span redirect 8) ms: no backoff"
assert_contains "$(cat "$AG_LOG")" "times in a row: backing off"

fl_log "redirected to a key the agent does not pin, again and again: backs off too"
mark
ag_cmd "redirect-always tcp://127.0.0.1:1%0Aflotilla:%20agent:%20FORGED%20URL $(ag_pub "$AG/unpinned.key")"
wait_for 60 "[ \$(sent redirect) -ge 6 ]"
[ "$(span redirect 6)" -ge 1500 ] || fl_fail "6 redirects in $(span redirect 6) ms: no backoff"

fl_log "the coordinator's text in the agent's log is quoted: no line of its making"
ag_cmd "redirect-off"
wait_for 60 grep -q "hello accepted: 1 tenant, as 'evil" "$AG_LOG"
if grep -q "^flotilla: agent: FORGED" "$AG_LOG"; then
	fl_fail "a forged log line: $(grep "^flotilla: agent: FORGED" "$AG_LOG")"
fi
assert_contains "$(cat "$AG_LOG")" "as 'evil\\x0aflotilla: agent: FORGED NAME'"
assert_contains "$(cat "$AG_LOG")" "not following a redirect to 'tcp://127.0.0.1:1\\x0aflotilla"
ag_cmd "assign 9 check ghost 0 order - $AG/order.bin r-1"
assert_eq "$(ag_field "$(ag_report 9)" outcome)" refused "polling again after the redirects"

ag_stop TERM
assert_eq "$AG_RC" 0 "exit status"

fl_log "SIGTERM while the Hello reads 100 tenants of a silent server (2 s each, 4 at a time)"
mkdir -p "$AG/silent"
"$FL_ROGUE" silent --dir "$AG/silent" 2>>"$AG/rogue.log" &
SILENT_PID=$!
fl_on_exit 'kill -TERM $SILENT_PID 2>/dev/null || true'
wait_for 10 test -s "$AG/silent/port"
tenants='tenants:'
for i in $(seq 1 100); do
	tenants+="
  - {id: s$i, server: silent, database: s$i}"
done
ag_config "  - name: silent
    host: 127.0.0.1
    port: $(cat "$AG/silent/port")
    user: flotilla
    connect_timeout: 2s
$tenants"
hellos=$(grep -c '^hello ' "$AG_ROGUE_DIR/hellos.log")
"$FLOTILLA_AGENT" --config "$AG/agent.yaml" 2>>"$AG_LOG" &
AG_PID=$!
wait_for 30 "[ \$(grep -c . '$AG/silent/silent.log' 2>/dev/null || echo 0) -ge 4 ]"
t0=$(date +%s)
ag_stop TERM
assert_eq "$AG_RC" 0 "exit status"
[ $(($(date +%s) - t0)) -lt 20 ] || fl_fail "SIGTERM took $(($(date +%s) - t0)) s"
assert_eq "$(grep -c '^hello ' "$AG_ROGUE_DIR/hellos.log")" "$hellos" "no Hello after SIGTERM"
fl_pass
