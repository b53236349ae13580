#!/usr/bin/env bash
# flotilla-coordinator as a separate process, on free ports, spoken to with
# tests/tools/fl-testclient (real nng, real envelopes): refusals, reconcile,
# reports bound to their assignment, the admin roles and audit log, releases,
# revocation, enrollment tokens across a restart, SIGHUP reloads, SIGKILL, and
# a clean SIGTERM with a poll held.
# shellcheck source=tests/integration/lib.sh disable=SC2154 # pub_* are set with printf -v
. "$(dirname "$0")/lib.sh"

C=${FLOTILLA_COORDINATOR_BIN:-}
T=${FL_TESTCLIENT:-}
fl_need_flotilla
[ -x "$C" ] || fl_fail "FLOTILLA_COORDINATOR_BIN is not an executable: '$C'"
[ -x "$T" ] || fl_fail "FL_TESTCLIENT is not an executable: '$T'"

dir=$(fl_tmpdir)
cd "$dir" || exit 1

for k in coord:coordinator a1:agent a2:agent a3:agent new:agent admin:operator viewer:operator \
	rm:operator rel:release rel2:release; do
	"$FLOTILLA" keygen --kind "${k#*:}" --out "${k%%:*}.key" >/dev/null
	printf -v "pub_${k%%:*}" '%s' "$("$T" pubkey "${k%%:*}.key" "${k#*:}")"
done

# write_config [EXTRA YAML LINES...]: the config, operators admin and viewer.
write_config() {
	{
		printf '%s\n' "key_file: coord.key" "project_id: acme" \
			"agent_listen: tcp://127.0.0.1:0" "admin_listen: tcp://127.0.0.1:0" \
			"store: store.db" "peers_state_file: peers.seq" "poll_hold: 20s" \
			"trusted_release_keys: [\"$pub_rel\"]" "agents:" \
			"  - {name: a1, public_key: \"$pub_a1\", labels: {region: eu}}" \
			"  - {name: a2, public_key: \"$pub_a2\"}"
		printf '%s\n' "$@"
	} >c.yaml.new
	mv c.yaml.new c.yaml
}
ops_default=("operators:" "  - {name: admin, public_key: \"$pub_admin\", role: admin}"
	"  - {name: viewer, public_key: \"$pub_viewer\", role: viewer}")
write_config "${ops_default[@]}"

CPID=''
start() {
	rm -f ready
	"$C" --config c.yaml --ready-file ready >>coord.log 2>&1 &
	CPID=$!
	wait_for 30 "test -s ready || ! kill -0 $CPID"
	kill -0 "$CPID" 2>/dev/null || fl_fail "the coordinator did not start: $(tail -n 20 coord.log)"
	# shellcheck disable=SC1091
	. ./ready
}
stop() {
	local rc=0
	kill -TERM "$CPID"
	wait "$CPID" || rc=$?
	assert_eq "$rc" 0 "coordinator exit status after SIGTERM"
	CPID=''
}
# shellcheck disable=SC2016 # expanded at exit ($rc: the script's status, lib.sh)
fl_on_exit '[ -z "$CPID" ] || kill -KILL "$CPID" 2>/dev/null
	[ "$rc" = 0 ] || { echo "--- coord.log (end) ---"; tail -n 60 "$dir/coord.log"; } >&2'

# agent KEY ARGS...; op KEY ARGS...: fl-testclient on either endpoint.
agent() {
	"$T" --url "tcp://127.0.0.1:$agent_port" --coordinator-key "$pub_coord" --key "$1.key" "${@:2}"
}
op() {
	"$T" --url "tcp://127.0.0.1:$admin_port" --coordinator-key "$pub_coord" --key "$1.key" "${@:2}"
}
# value PATH: the value of "PATH = value" in $OUT.
value() {
	sed -n "s/^$(printf '%s' "$1" | sed 's/[].[]/\\&/g') = //p" <<<"$OUT" | head -n 1
}

fl_log "--check-config"
assert_exit 0 "$C" --config c.yaml --check-config
assert_contains "$OUT" "ok"
printf '%s\n' "key_file: coord.key" "project_id: acme" "pol_hold: 5s" >bad.yaml
assert_exit 2 "$C" --config bad.yaml --check-config
assert_contains "$ERR" "'bad.yaml':3:1: unknown key 'pol_hold'"
printf '%s\n' "key_file: coord.key" "project_id: acme" "operators:" \
	"  - {name: x, public_key: \"$pub_admin\", role: root}" >bad.yaml
assert_exit 2 "$C" --config bad.yaml --check-config
assert_contains "$ERR" "'bad.yaml':4:"

start

fl_log "an unknown agent gets nothing"
assert_exit 4 agent a3 hello --tenant "x1"
assert_contains "$ERR" "refused"

fl_log "an approved agent is reconciled"
assert_exit 3 agent a1 poll
assert_eq "$(value error.message)" "hello first"
assert_exit 0 agent a1 hello --tenant "acme labels=ring=canary applied=m1,m2 fingerprint=f1" \
	--tenant "beta applied=m1,m2 fingerprint=f1" --tenant "gamma applied=m1 fingerprint=g"
assert_eq "$(value hello_reply.accepted)" true
assert_eq "$(value hello_reply.agent_name)" a1
assert_exit 0 op admin fleet-status
assert_eq "$(value admin_response.fleet_status.total_count)" 3
assert_eq "$(value 'admin_response.fleet_status.tenants[0].tenant_id')" acme
assert_eq "$(value 'admin_response.fleet_status.tenants[0].agent_id')" a1
assert_eq "$(value 'admin_response.fleet_status.tenants[0].state')" TENANT_STATE_IDLE
assert_eq "$(value 'admin_response.fleet_status.tenants[0].external_changes')" false
assert_exit 0 op admin fleet-status --labels ring=canary
assert_eq "$(value admin_response.fleet_status.total_count)" 1
assert_exit 0 op admin fleet-status --limit 2
assert_eq "$(value admin_response.fleet_status.next_after_tenant_id)" beta
assert_exit 0 op admin fleet-status --after beta
assert_eq "$(value 'admin_response.fleet_status.tenants[0].tenant_id')" gamma

fl_log "a migration applied by hand shows up; tenants no longer listed are gone; drift"
assert_exit 0 agent a1 hello --tenant "acme labels=ring=canary applied=m1,m2,m3 fingerprint=f1" \
	--tenant "beta applied=m1,m2 fingerprint=f1" --tenant "delta applied=m1,m2 fingerprint=f9" \
	--tenant "eps applied=m1,m2 fingerprint=f1"
assert_exit 0 op admin fleet-status
assert_eq "$(value admin_response.fleet_status.total_count)" 4
assert_eq "$(value 'admin_response.fleet_status.tenants[0].external_changes')" true
assert_not_contains "$OUT" "tenant_id = gamma"
assert_exit 0 op admin tenant-show gamma
assert_eq "$(value admin_response.tenant_show.tenant.tenant_id)" gamma
assert_exit 0 op admin tenant-show acme
assert_eq "$(value 'admin_response.tenant_show.applied[2].id')" m3
assert_exit 0 op admin fleet-drift
assert_eq "$(value admin_response.fleet_drift.drifted_tenants)" 1
assert_eq "$(value 'admin_response.fleet_drift.groups[0].fingerprint')" f1
assert_eq "$(value 'admin_response.fleet_drift.groups[0].majority')" true
assert_eq "$(value 'admin_response.fleet_drift.groups[1].tenant_ids[0]')" delta
assert_exit 3 op admin tenant-show nobody
assert_eq "$(value admin_response.status.code)" STATUS_CODE_NOT_FOUND

fl_log "a tenant id claimed by a second agent is refused for it"
assert_exit 0 agent a2 hello --tenant "acme applied=m1" --tenant "zeta applied=m1"
assert_exit 0 op admin tenant-show acme
assert_eq "$(value admin_response.tenant_show.tenant.agent_id)" a1
assert_exit 0 op admin tenant-show zeta
assert_eq "$(value admin_response.tenant_show.tenant.agent_id)" a2
assert_contains "$(cat coord.log)" "tenant 'acme' refused: it is agent 'a1''s"

fl_log "the wrong project, or protocol, is turned away"
assert_exit 3 agent a1 hello --project other
assert_eq "$(value hello_reply.accepted)" false
assert_contains "$(value hello_reply.reason)" "project 'other'"

fl_log "roles: a viewer cannot approve agents; an agent key cannot run admin commands"
assert_exit 3 op viewer agent-approve "$pub_a3" sneaky
assert_eq "$(value admin_response.status.code)" STATUS_CODE_PERMISSION_DENIED
assert_exit 0 op viewer agent-list
assert_exit 4 op a1 --key-kind agent agent-list
assert_exit 4 agent admin --key-kind operator poll
assert_exit 0 op admin audit
assert_contains "$OUT" "command = agent_approve"
audit=$OUT
grep -q "actor_name = viewer" <<<"$audit" || fl_fail "the viewer's refused call is not audited"
assert_contains "$(grep -A6 'command = agent_approve' <<<"$audit" | head -n 3)" PERMISSION_DENIED
assert_contains "$audit" "actor_name = a1"
assert_exit 0 op admin agent-list
assert_eq "$(value admin_response.agent_list.agents.count)" 2

fl_log "releases: pushed once, merged, and refused when untrusted or of another project"
mkdir -p mig/20250101000000_init mig/20250102000000_more
echo 'CREATE TABLE t (id int);' >mig/20250101000000_init/migration.sql
echo 'DROP TABLE t;' >mig/20250101000000_init/down.sql
echo 'ALTER TABLE t ADD COLUMN x int;' >mig/20250102000000_more/migration.sql
hash=$("$T" make-release --dir mig --project acme --sequence 1 --key rel.key --out r1.rel)
"$T" make-release --dir mig --project acme --sequence 1 --key rel2.key --out untrusted.rel >/dev/null
"$T" make-release --dir mig --project other --sequence 2 --key rel.key --out other.rel >/dev/null
"$T" make-release --dir mig --project acme --sequence 1 --key rel.key --key rel2.key \
	--out both.rel >/dev/null
assert_exit 3 op viewer release-push r1.rel
assert_eq "$(value admin_response.status.code)" STATUS_CODE_PERMISSION_DENIED
assert_exit 0 op admin release-push r1.rel --name v1
assert_eq "$(value admin_response.release_push.release_hash)" "$hash"
assert_eq "$(value admin_response.release_push.already_present)" false
assert_eq "$(value admin_response.release_push.release.migration_count)" 2
assert_exit 3 op admin release-push untrusted.rel
assert_eq "$(value admin_response.status.code)" STATUS_CODE_FAILED_PRECONDITION
assert_contains "$(value admin_response.status.message)" "not signed by a trusted key"
assert_exit 3 op admin release-push other.rel
assert_contains "$(value admin_response.status.message)" "project 'other', not 'acme'"
assert_exit 0 op admin release-push r1.rel
assert_eq "$(value admin_response.release_push.already_present)" true
assert_exit 0 op admin release-push both.rel
assert_eq "$(value admin_response.release_push.release.signer_key_ids.count)" 2
assert_exit 0 op viewer release-list
assert_eq "$(value admin_response.release_list.releases.count)" 1
assert_exit 0 agent a1 fetch "$hash" --out fetched.rel
"$FLOTILLA" release verify --trust "$pub_rel" fetched.rel >/dev/null ||
	fl_fail "the fetched release does not verify"
assert_exit 3 agent a1 fetch "$(printf '0%.0s' {1..64})"
assert_eq "$(value error.code)" STATUS_CODE_NOT_FOUND

fl_log "rollout commands reach the scheduler"
assert_exit 0 op admin rollout-status
assert_eq "$(value admin_response.rollout_status.rollouts.count)" 0

fl_log "enrollment token, created before a restart"
assert_exit 0 op admin token-create newbie --labels region=us
token=$(value admin_response.enrollment_token_create.token)
[[ $token == fle1.* ]] || fl_fail "not a token: '$token'"
assert_exit 3 op admin token-create a1
assert_eq "$(value admin_response.status.code)" STATUS_CODE_ALREADY_EXISTS

fl_log "reports: bound to their assignment, stored once"
stop
assignment=$("$T" store-assign store.db --rollout r-1 --release "$hash" --tenant acme \
	--agent-key "$pub_a1" --target 20250102000000_more)
[ -n "$assignment" ] || fl_fail "no assignment id"
start
assert_exit 0 agent a1 hello --tenant "acme labels=ring=canary applied=m1,m2,m3 fingerprint=f1" \
	--tenant "beta applied=m1,m2 fingerprint=f1" --tenant "delta applied=m1,m2 fingerprint=f9" \
	--tenant "eps applied=m1,m2 fingerprint=f1"
assert_exit 0 agent a1 report --tenant acme --assignment "$assignment" --journal 101 \
	--migrations 20250102000000_more --applied-count 4 --fingerprint f5
assert_eq "$(value 'report_ack.journal_ids[0]')" 101
assert_exit 0 agent a1 report --tenant acme --assignment "$assignment" --journal 101 \
	--migrations 20250102000000_more --applied-count 4 --fingerprint f5
assert_eq "$(value 'report_ack.journal_ids[0]')" 101
assert_exit 0 agent a1 --send-twice report --tenant acme --assignment "$assignment" \
	--journal 101 --migrations 20250102000000_more
assert_contains "$OUT" "replay: refused"
assert_exit 3 agent a2 report --tenant acme --assignment "$assignment" --journal 7
assert_eq "$(value error.code)" STATUS_CODE_PERMISSION_DENIED
assert_contains "$(value error.message)" "not this agent's"
assert_exit 3 agent a1 report --tenant beta --assignment "$assignment" --journal 102
assert_contains "$(value error.message)" "was not issued to this agent for tenant 'beta'"
assert_exit 0 op admin tenant-show acme --reports 10
assert_eq "$(value admin_response.tenant_show.reports.count)" 1 "reports stored for journal 101"
assert_eq "$(value admin_response.tenant_show.tenant.head_migration_id)" 20250102000000_more
assert_eq "$(value admin_response.tenant_show.tenant.fingerprint)" f5
# what flotilla applied is not an external change: m3 still is
assert_exit 0 agent a1 hello --tenant \
	"acme labels=ring=canary applied=m1,m2,m3,20250102000000_more fingerprint=f5"
assert_exit 0 op admin tenant-show acme
assert_eq "$(value admin_response.tenant_show.tenant.external_changes)" true
assert_not_contains "$(cat coord.log)" "migration '20250102000000_more' was applied outside"
assert_contains "$(cat coord.log)" "migration 'm3' was applied outside flotilla"

fl_log "the token enrolls a new agent once, after the restart"
assert_exit 0 agent new hello --token "$token" --tenant "nu applied=m1"
assert_eq "$(value hello_reply.agent_name)" newbie
assert_exit 4 agent a3 hello --token "$token"
assert_exit 0 agent new hello --tenant "nu applied=m1"
assert_exit 0 op admin agent-list
assert_contains "$OUT" "name = newbie"
assert_contains "$OUT" "approved_by = token"
assert_exit 4 agent a3 hello --token "fle1.$(printf 'A%.0s' {1..43})"

fl_log "revocation takes effect at once and lasts"
assert_exit 0 op admin agent-revoke "$pub_a2" --reason "lost laptop"
assert_eq "$(value admin_response.agent_revoke.agent.state)" AGENT_STATE_REVOKED
assert_exit 4 agent a2 hello
assert_exit 0 op admin agent-list --all
assert_contains "$OUT" "state = AGENT_STATE_REVOKED"
assert_exit 3 op admin agent-approve "$pub_a2" again
assert_eq "$(value admin_response.status.code)" STATUS_CODE_FAILED_PRECONDITION

fl_log "SIGHUP: operators reloaded; a bad reload keeps the running config"
assert_exit 4 op rm release-list
write_config "operators:" "  - {name: admin, public_key: \"$pub_admin\", role: admin}" \
	"  - {name: rm, public_key: \"$pub_rm\", role: release-manager}"
kill -HUP "$CPID"
wait_for 20 "op rm release-list >/dev/null 2>&1"
assert_exit 3 op viewer release-list
assert_eq "$(value admin_response.status.code)" STATUS_CODE_PERMISSION_DENIED
sed -i 's/^store: store.db$/store: other.db/' c.yaml
kill -HUP "$CPID"
wait_for 20 "grep -q \"'store' cannot change on reload\" coord.log"
echo "pol_hold: 5s" >>c.yaml
kill -HUP "$CPID"
wait_for 20 "grep -q \"'c.yaml':[0-9]*:1: unknown key 'pol_hold'\" coord.log"
assert_exit 0 op rm release-list
assert_exit 0 op admin agent-list
write_config "operators:" "  - {name: admin, public_key: \"$pub_admin\", role: admin}" \
	"  - {name: rm, public_key: \"$pub_rm\", role: release-manager}"

fl_log "SIGKILL loses nothing committed"
assert_exit 0 op admin token-create survivor
token2=$(value admin_response.enrollment_token_create.token)
assert_exit 0 op admin audit --limit 10000
audits_before=$(value admin_response.audit_query.entries.count)
kill -KILL "$CPID"
wait "$CPID" 2>/dev/null || true
CPID=''
start
assert_exit 0 op rm release-list
assert_eq "$(value 'admin_response.release_list.releases[0].release_hash')" "$hash"
assert_exit 0 op admin audit --limit 10000
[ "$(value admin_response.audit_query.entries.count)" -gt "$audits_before" ] ||
	fl_fail "audit entries lost across SIGKILL"
assert_exit 4 agent a2 hello
assert_exit 0 agent a3 hello --token "$token2"
assert_eq "$(value hello_reply.agent_name)" survivor
assert_exit 0 op admin tenant-show acme --reports 10
assert_eq "$(value admin_response.tenant_show.reports.count)" 1

fl_log "SIGTERM answers a held poll at once and exits 0"
assert_exit 0 agent a1 hello --tenant "acme applied=m1"
agent a1 poll --max-wait 60000 >poll.out 2>&1 &
poll_pid=$!
wait_for 20 "kill -USR1 $CPID && grep -q 'held polls: 1,' coord.log"
t0=$(date +%s)
stop
wait "$poll_pid" || fl_fail "the held poll failed: $(cat poll.out)"
assert_contains "$(cat poll.out)" "poll_reply.assignments.count = 0"
[ $(($(date +%s) - t0)) -lt 30 ] || fl_fail "the held poll was not answered at shutdown"
assert_contains "$(cat coord.log)" "stopped:"

fl_pass
