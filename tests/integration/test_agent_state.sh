#!/usr/bin/env bash
# The agent's state_dir as an operator may find it: a ledger that is missing, emptied or
# damaged in the middle, or a state_dir another user owns, makes the agent refuse to start
# (exit 1, one line saying what and how to go on) rather than forget (or let someone make it
# forget) which assignments it ran and which release each tenant runs; put back, the agent
# goes on where it was.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent_lib.sh"

M1=20250101000000_users
M2=20250102000000_projects
ag_keys
ag_migration $M1 "CREATE TABLE users (id int PRIMARY KEY);" "DROP TABLE users;"
ag_migration $M2 "CREATE TABLE projects (id int PRIMARY KEY);" "DROP TABLE projects;"
ag_release "$AG/rel.release" acme-app 3
ag_policy simple 'name: simple
waves:
  - {name: all, select: {percent: 100}}'
ag_order "$AG/order.bin" "$AG/rel.release" simple $M2 --all
ag_tenant_db t1 >/dev/null
ag_tenant_db t2 >/dev/null

ag_rogue_start
ag_config 'tenants:
  - {id: t1, server: main, database: t1}
  - {id: t2, server: main, database: t2}'
ag_start
ag_cmd "release $AG/rel.release"
ag_cmd "assign 1 apply t1 0 order $M2 $AG/order.bin r-1"
assert_eq "$(ag_field "$(ag_report 1)" outcome)" applied "assignment 1"
ag_cmd "assign 2 check t2 0 order - $AG/order.bin r-1"
assert_eq "$(ag_field "$(ag_report 2)" outcome)" healthy "assignment 2"
ag_stop TERM
assert_eq "$AG_RC" 0 "exit status"
cp "$AG_STATE/ledger" "$AG/ledger.good"

# refused WHAT: the agent exits 1 at once, its error holding WHAT
refused() {
	local rc=0
	timeout 60 "$FLOTILLA_AGENT" --config "$AG/agent.yaml" 2>"$AG/start.err" || rc=$?
	assert_eq "$rc" 1 "exit status ($(cat "$AG/start.err"))"
	assert_contains "$(cat "$AG/start.err")" "$1"
	[ "$(grep -c . "$AG/start.err")" = 1 ] || fl_fail "not one line: $(cat "$AG/start.err")"
}

fl_log "the ledger moved away: refused, and not created empty"
mv "$AG_STATE/ledger" "$AG/ledger.moved"
refused "the ledger is missing or empty, but the journal says this agent ran before"
[ ! -e "$AG_STATE/ledger" ] || fl_fail "an empty ledger was created"
refused "the ledger is missing or empty"

fl_log "the ledger emptied: refused"
: >"$AG_STATE/ledger"
refused "the ledger is missing or empty"

fl_log "a record in the middle damaged: refused, with where to cut on purpose"
cp "$AG/ledger.good" "$AG_STATE/ledger"
# flip a byte inside the first record's payload (16-byte magic, 20-byte record header)
printf '\xff' | dd of="$AG_STATE/ledger" bs=1 seek=40 conv=notrunc 2>/dev/null
refused "is damaged (checksum mismatch) and good records follow it"
assert_contains "$(cat "$AG/start.err")" "truncate -s 16 "
cmp -s "$AG_STATE/ledger" "$AG/ledger.good" && fl_fail "the damage was not made"
[ "$(stat -c %s "$AG_STATE/ledger")" = "$(stat -c %s "$AG/ledger.good")" ] ||
	fl_fail "the damaged ledger was cut"

if [ "$(id -u)" = 0 ]; then
	fl_log "a state_dir owned by another user (who could reset the ledger): refused"
	cp "$AG/ledger.good" "$AG_STATE/ledger"
	chown 65534 "$AG_STATE"
	refused "refusing state_dir '$AG_STATE': owned by uid 65534, neither this agent's user"
	chown 0 "$AG_STATE"
fi

fl_log "put back: the agent starts, remembers what it ran and the tenant's release"
cp "$AG/ledger.good" "$AG_STATE/ledger"
ag_start
ag_cmd "assign 1 apply t2 0 order $M2 $AG/order.bin r-1"
wait_for 30 "[ \$(ag_reports 1) -ge 2 ]"
assert_eq "$(ag_field "$(ag_report 1)" tenant)" t1 "assignment 1 answered from the ledger"
assert_eq "$(ag_has_table "$(fl_url_db "$DATABASE_URL" t2)" users)" f "t2 untouched"
assert_contains "$(grep '^tenant id=t1 ' "$AG_ROGUE_DIR/hellos.log" | tail -n 1)" "sequence=3"
ag_stop TERM
assert_eq "$AG_RC" 0 "exit status"
fl_pass
