#!/usr/bin/env bash
# Reports and held polls in flotilla-coordinator, through real envelopes:
# tests/tools/fl-testclient plays an agent with four tenants (and a second
# one with one tenant), the flotilla CLI is the release manager.
#
# 1. A Report answers the agent's held poll at once (its slot is free).
# 2. tenant show lists what a report applied before the next Hello.
# 3. A report for an assignment the scheduler withdrew still counts: the
#    migrations it applied are flotilla's (a later Hello is no external
#    change) and a rollback reverts that tenant.
# 4. Revoking an agent answers its held poll with the refusal at once.
# 5. A halt reaches the agent once: its next poll is held, not answered at
#    once with the same halt.
# shellcheck source=tests/integration/lib.sh disable=SC2154 # pub_* are set with printf -v
. "$(dirname "$0")/lib.sh"

C=${FLOTILLA_COORDINATOR_BIN:-}
T=${FL_TESTCLIENT:-}
fl_need_flotilla
[ -x "$C" ] || fl_fail "FLOTILLA_COORDINATOR_BIN is not an executable: '$C'"
[ -x "$T" ] || fl_fail "FL_TESTCLIENT is not an executable: '$T'"

dir=$(fl_tmpdir)
cd "$dir" || exit 1

for k in coord:coordinator a1:agent a2:agent admin:operator rel:release; do
	"$FLOTILLA" keygen --kind "${k#*:}" --out "${k%%:*}.key" >/dev/null
	printf -v "pub_${k%%:*}" '%s' "$("$T" pubkey "${k%%:*}.key" "${k#*:}")"
done
# A long hold: a poll answered within the test's waits was answered by the
# event under test, not by the end of its hold.
printf '%s\n' "key_file: coord.key" "project_id: acme" \
	"agent_listen: tcp://127.0.0.1:0" "admin_listen: tcp://127.0.0.1:0" \
	"store: store.db" "peers_state_file: peers.seq" "poll_hold: 300s" \
	"agent_offline_after: 900s" "trusted_release_keys: [\"$pub_rel\"]" "agents:" \
	"  - {name: a1, public_key: \"$pub_a1\"}" "  - {name: a2, public_key: \"$pub_a2\"}" \
	"operators:" "  - {name: admin, public_key: \"$pub_admin\", role: admin}" >c.yaml

CPID=''
BG=''
start() {
	rm -f ready
	"$C" --config c.yaml --ready-file ready >>coord.log 2>&1 &
	CPID=$!
	wait_for 30 "test -s ready || ! kill -0 $CPID"
	kill -0 "$CPID" 2>/dev/null || fl_fail "the coordinator did not start: $(tail -n 20 coord.log)"
	# shellcheck disable=SC1091
	. ./ready
}
# shellcheck disable=SC2016 # expanded at exit
fl_on_exit '[ -z "$BG" ] || kill -KILL "$BG" 2>/dev/null
	[ -z "$CPID" ] || kill -KILL "$CPID" 2>/dev/null
	[ "$rc" = 0 ] || { echo "--- coord.log (end) ---"; tail -n 80 "$dir/coord.log"; } >&2'

agent() {
	"$T" --url "tcp://127.0.0.1:$agent_port" --coordinator-key "$pub_coord" --key "$1.key" "${@:2}"
}
op() {
	"$T" --url "tcp://127.0.0.1:$admin_port" --coordinator-key "$pub_coord" --key "$1.key" "${@:2}"
}
cli() {
	FLOTILLA_COORDINATOR="tcp://127.0.0.1:$admin_port" FLOTILLA_COORDINATOR_KEY=$pub_coord \
		FLOTILLA_KEY=admin.key "$FLOTILLA" "$@"
}
value() {
	sed -n "s/^$(printf '%s' "$1" | sed 's/[].[]/\\&/g') = //p" <<<"$OUT" | head -n 1
}
# held N: the coordinator holds N polls now (its counters, on SIGUSR1).
held() {
	wait_for 30 "kill -USR1 $CPID && tail -n 1 coord.log | grep -q 'held polls: $1,'" ||
		fl_fail "the coordinator does not hold $1 poll(s): $(tail -n 1 coord.log)"
}
# bg_poll OUTFILE AGENT ARGS...: a poll in the background (its pid in $BG).
bg_poll() {
	agent "$2" --timeout 600000 poll --max-wait 290000 "${@:3}" >"$1" 2>&1 &
	BG=$!
}
# bg_done SECONDS: the background poll ended within SECONDS; its status in $BG_RC.
bg_done() {
	wait_for "$1" "! kill -0 $BG 2>/dev/null" || return 1
	BG_RC=0
	wait "$BG" || BG_RC=$?
	BG=''
}

mkdir -p migs/20250101000000_init migs/20250102000000_add_email
echo "CREATE TABLE users (id int);" >migs/20250101000000_init/migration.sql
echo "DROP TABLE users;" >migs/20250101000000_init/down.sql
echo "ALTER TABLE users ADD COLUMN email text;" >migs/20250102000000_add_email/migration.sql
echo "ALTER TABLE users DROP COLUMN email;" >migs/20250102000000_add_email/down.sql
M1=20250101000000_init
M2=20250102000000_add_email

start
tenants=(--tenant "t1 applied=$M1" --tenant "t2 applied=$M1" --tenant "t3 applied=$M1"
	--tenant "t4 applied=$M1")
assert_exit 0 agent a1 hello "${tenants[@]}"
out=$("$FLOTILLA" release build --dir migs --project acme --sequence 1 --out r1.rel)
HASH=$(printf '%s\n' "$out" | sed -n 's/^hash: //p')
"$FLOTILLA" release sign --key rel.key r1.rel >/dev/null
assert_exit 0 cli release push r1.rel
cat >policy.yaml <<'EOF'
name: one-at-a-time
waves:
  - {name: all, select: {percent: 100}, max_parallel: 1, max_failures: 5}
per_agent_parallel: 1
EOF
assert_exit 0 cli rollout start --release "$HASH" --policy policy.yaml --all \
	--release-key rel.key --json
assert_contains "$OUT" '"rollout_id":"r-1"'

# take: one poll with a free slot, the APPLY it carries into $ID and $TENANT.
take() {
	assert_exit 0 agent a1 poll --free-slots 1 --max-wait 5000 "$@"
	ID=$(value "poll_reply.assignments[0].assignment_id")
	TENANT=$(value "poll_reply.assignments[0].tenant_id")
	[ -n "$ID" ] || fl_fail "no assignment: $OUT"
}

fl_log "a report answers the agent's held poll at once"
take
A1=$ID
T1=$TENANT
bg_poll poll1.out a1 --free-slots 0 --running "$A1"
held 1
assert_exit 0 agent a1 report --tenant "$T1" --assignment "$A1" --journal 1 \
	--migrations "$M2" --head "$M2" --applied-count 2 --fingerprint "$(printf 'ab%.0s' {1..32})"
bg_done 60 || fl_fail "the held poll was not answered after the report"
assert_eq "$BG_RC" 0 "the held poll's exit status ($(cat poll1.out))"
assert_contains "$(cat poll1.out)" "poll_reply"

fl_log "tenant show has the report's migration before the next Hello"
assert_exit 0 op admin tenant-show "$T1"
assert_eq "$(value admin_response.tenant_show.tenant.head_migration_id)" "$M2"
assert_eq "$(value 'admin_response.tenant_show.applied[1].id')" "$M2"
assert_eq "$(value admin_response.tenant_show.applied.count)" 2

fl_log "a late report for withdrawn work counts"
take
A2=$ID
T2=$TENANT
[ "$T2" != "$T1" ] || fl_fail "the same tenant twice: $T2"
assert_exit 0 cli rollout halt r-1 --reason "test"
# the halt reaches the agent once: its next poll, still running A2, is held
assert_exit 0 agent a1 poll --free-slots 0 --running "$A2" --max-wait 5000
assert_eq "$(value poll_reply.halts.count)" 1 "halts in the first poll after the halt"
bg_poll poll3.out a1 --free-slots 0 --running "$A2"
held 1
kill "$BG"
wait "$BG" 2>/dev/null || true
BG=''
# the agent restarts without it: the halted rollout withdraws it
hello2=()
for t in t1 t2 t3 t4; do
	if [ "$t" = "$T1" ]; then
		hello2+=(--tenant "$t applied=$M1,$M2")
	else
		hello2+=(--tenant "$t applied=$M1")
	fi
done
assert_exit 0 agent a1 hello "${hello2[@]}"
assert_exit 0 agent a1 poll --free-slots 1 --max-wait 3000
wait_for 10 "grep -q 'assignment $A2 .*withdrawn' coord.log" ||
	fl_fail "assignment $A2 was not withdrawn"
# ... and its work had been done after all
assert_exit 0 agent a1 report --tenant "$T2" --assignment "$A2" --journal 2 \
	--migrations "$M2" --head "$M2" --applied-count 2
for i in "${!hello2[@]}"; do
	[ "${hello2[$i]}" != "$T2 applied=$M1" ] || hello2[i]="$T2 applied=$M1,$M2"
done
assert_exit 0 agent a1 hello "${hello2[@]}"
assert_exit 0 op admin tenant-show "$T2"
assert_eq "$(value admin_response.tenant_show.tenant.head_migration_id)" "$M2"
assert_not_contains "$OUT" "external_changes = true" \
	"external_changes of '$T2' (flotilla applied $M2)"
assert_exit 0 cli rollout rollback r-1 --release-key rel.key --reason "back" --json
reverted=''
for ((i = 0; i < 10; i++)); do
	assert_exit 0 agent a1 poll --free-slots 1 --max-wait 3000
	id=$(value "poll_reply.assignments[0].assignment_id")
	[ -n "$id" ] || break
	t=$(value "poll_reply.assignments[0].tenant_id")
	assert_eq "$(value "poll_reply.assignments[0].kind")" WORK_KIND_REVERT
	reverted+=" $t"
	assert_exit 0 agent a1 report --tenant "$t" --assignment "$id" --journal $((10 + i)) \
		--kind revert --outcome rolled-back --head "$M1" --applied-count 1
done
assert_contains "$reverted" " $T2"
assert_contains "$reverted" " $T1"

fl_log "revoking an agent answers its held poll with the refusal at once"
assert_exit 0 agent a2 hello --tenant "u1 applied=$M1"
bg_poll poll2.out a2 --free-slots 1
held 1
assert_exit 0 op admin agent-revoke "$pub_a2" --reason "lost laptop"
bg_done 60 || fl_fail "the held poll of the revoked agent was not answered"
assert_eq "$BG_RC" 4 "the revoked agent's held poll ($(cat poll2.out))"

kill -TERM "$CPID"
wait "$CPID" || fl_fail "the coordinator did not exit 0"
CPID=''
fl_pass
