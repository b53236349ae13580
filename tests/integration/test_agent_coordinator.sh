#!/usr/bin/env bash
# flotilla-agent end to end against the real flotilla-coordinator (engineer E's; the
# scheduler comes later, so no work is handed out yet): the agent's Hello is reconciled
# (fleet status shows its tenants' histories and fingerprints as the databases have them), its
# polls are held and a SIGTERM still ends it at once, an unapproved agent enrolls with a token
# made by an admin, and after the coordinator restarts the agent says Hello again with what
# changed meanwhile (a migration applied by hand: an external change).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent_lib.sh"

C=${FLOTILLA_COORDINATOR_BIN:-}
T=${FL_TESTCLIENT:-}
[ -x "$C" ] || fl_fail "FLOTILLA_COORDINATOR_BIN is not an executable: '$C'"
[ -x "$T" ] || fl_fail "FL_TESTCLIENT is not an executable: '$T'"

M1=20250101000000_users
M2=20250102000000_projects
ag_keys
"$FLOTILLA" keygen --kind operator --out "$AG/admin.key" >/dev/null
"$FLOTILLA" keygen --kind agent --out "$AG/agent2.key" >/dev/null
ag_migration $M1 "CREATE TABLE users (id int PRIMARY KEY);" "DROP TABLE users;"
ag_migration $M2 "CREATE TABLE projects (id int PRIMARY KEY);" "DROP TABLE projects;"
acme=$(ag_tenant_db acme)
beta=$(ag_tenant_db beta)
"$FLOTILLA" deploy --dir "$AG/migrations" --database-url "$acme" >/dev/null
"$FLOTILLA" deploy --dir "$AG/migrations" --to $M1 --database-url "$beta" >/dev/null

CDIR=$AG/coordinator
mkdir -p "$CDIR"
CPID=''
# shellcheck disable=SC2016
fl_on_exit '[ -z "$CPID" ] || kill -KILL "$CPID" 2>/dev/null'
coord_config() {
	cat >"$CDIR/c.yaml" <<EOF
key_file: $AG/coord.key
project_id: acme-app
agent_listen: tcp://127.0.0.1:$1
admin_listen: tcp://127.0.0.1:0
store: $CDIR/store.db
peers_state_file: $CDIR/peers.seq
poll_hold: 20s
trusted_release_keys: ["$(ag_pub "$AG/release.key")"]
operators:
  - {name: admin, public_key: "$(ag_pub "$AG/admin.key")", role: admin}
agents:
  - {name: db-eu-1, public_key: "$(ag_pub "$AG/agent.key")", labels: {region: eu}}
EOF
	chmod 600 "$CDIR/c.yaml"
}
coord_start() {
	rm -f "$CDIR/ready"
	"$C" --config "$CDIR/c.yaml" --ready-file "$CDIR/ready" >>"$CDIR/log" 2>&1 &
	CPID=$!
	wait_for 30 "test -s '$CDIR/ready' || ! kill -0 $CPID"
	kill -0 "$CPID" 2>/dev/null || fl_fail "the coordinator did not start: $(tail -n 20 "$CDIR/log")"
	# shellcheck disable=SC1091
	. "$CDIR/ready"
}
coord_stop() {
	kill -TERM "$CPID"
	wait "$CPID" || fl_fail "the coordinator did not stop cleanly"
	CPID=''
}
# fl-testclient is a tool here, not what is tested: its own leaks (token-create, in E's
# tests/tools today) do not fail this test under ASan
op() {
	ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 "$T" --url "tcp://127.0.0.1:$admin_port" --coordinator-key "$(ag_pub "$AG/coord.key")" \
		--key "$AG/admin.key" "$@" </dev/null
}
value() {
	sed -n "s/^$(printf '%s' "$1" | sed 's/[].[]/\\&/g') = //p" <<<"$OUT" | head -n 1
}
# tenant_value ID PATH: PATH of tenant-show ID.
tenant_value() {
	OUT=$(op tenant-show "$1" 2>/dev/null) || true
	value "admin_response.tenant_show.$2"
}

coord_config 0
coord_start
port=$agent_port
coord_stop
coord_config "$port" # the same address from now on, so the agent finds it again
coord_start
mkdir -p "$AG_ROGUE_DIR"
echo "tcp://127.0.0.1:$agent_port" >"$AG_ROGUE_DIR/url"
ag_config 'tenants:
  - {id: acme, server: main, database: acme, labels: {ring: canary}}
  - {id: beta, server: main, database: beta, labels: {ring: main}}'

fl_log "Hello: the coordinator's fleet shows the tenants as their databases have them"
"$FLOTILLA_AGENT" --config "$AG/agent.yaml" 2>>"$AG_LOG" &
AG_PID=$!
wait_for 30 "[ \"\$(tenant_value acme tenant.applied_count)\" = 2 ]"
assert_eq "$(tenant_value acme tenant.head_migration_id)" $M2 "acme head"
assert_eq "$(tenant_value acme tenant.fingerprint)" \
	"$("$FLOTILLA" fingerprint --database-url "$acme" | tail -n 1 | awk '{print $NF}')" \
	"acme fingerprint, as flotilla fingerprint computes it"
assert_eq "$(tenant_value beta tenant.applied_count)" 1 "beta applied"
assert_eq "$(tenant_value beta tenant.agent_id)" db-eu-1 "beta's agent"
assert_contains "$(cat "$AG_LOG")" "hello accepted: 2 tenants, as 'db-eu-1'"

fl_log "polls are held; SIGTERM still ends the agent at once"
t0=$(date +%s)
ag_stop TERM
assert_eq "$AG_RC" 0 "exit status"
[ $(($(date +%s) - t0)) -lt 10 ] || fl_fail "SIGTERM took $(($(date +%s) - t0))s"

fl_log "an agent nobody approved enrolls with an admin's token, once"
assert_exit 0 op token-create db-us-1
token=$(value admin_response.enrollment_token_create.token)
[[ $token == fle1.* ]] || fl_fail "not a token: '$token'"
cp "$AG/agent.yaml" "$AG/agent2.yaml"
sed -i "s|^key_file: .*|key_file: $AG/agent2.key|; s|^state_dir: .*|state_dir: $AG/state2|;
	s|^peers_state_file: .*|peers_state_file: $AG/peers2.seq|; s|^agent_name: .*|agent_name: newbie|" \
	"$AG/agent2.yaml"
sed -i '/^tenants:/,$d' "$AG/agent2.yaml"
cat >>"$AG/agent2.yaml" <<EOF
tenants:
  - {id: gamma, server: main, database: beta}
enrollment_token: $token
EOF
"$FLOTILLA_AGENT" --config "$AG/agent2.yaml" 2>>"$AG/agent2.log" &
A2=$!
wait_for 30 "grep -q 'enrolled with the coordinator' '$AG/agent2.log'"
wait_for 30 "[ \"\$(tenant_value gamma tenant.agent_id)\" = db-us-1 ]"
[ -e "$AG/state2/enrolled" ] || fl_fail "no enrolled marker"
kill -TERM "$A2"
wait "$A2" || fl_fail "agent2 exit status"

fl_log "the coordinator restarts; a migration applied by hand meanwhile shows up"
coord_stop
"$FLOTILLA" deploy --dir "$AG/migrations" --database-url "$beta" >/dev/null
"$FLOTILLA_AGENT" --config "$AG/agent.yaml" 2>>"$AG_LOG" &
AG_PID=$!
wait_for 60 grep -q "cannot\\|unreachable\\|timed out\\|no connection" "$AG_LOG"
coord_start
wait_for 60 "[ \"\$(tenant_value beta tenant.applied_count)\" = 2 ]"
assert_eq "$(tenant_value beta tenant.external_changes)" true "beta's change by hand"
ag_stop TERM
assert_eq "$AG_RC" 0 "exit status"
coord_stop
fl_pass
