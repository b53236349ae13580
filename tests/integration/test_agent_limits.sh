#!/usr/bin/env bash
# What a hostile or broken coordinator cannot make the agent do to the database host it runs
# on: fill its disk with reports it never acknowledges.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent_lib.sh"

ag_keys
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

ag_stop TERM
assert_eq "$AG_RC" 0 "exit status"
fl_pass
