#!/usr/bin/env bash
# The rollout scheduler inside flotilla-coordinator, through real envelopes:
# tests/tools/fl-testclient plays two agents with 30 simulated tenants each
# (Hello, Poll with free slots and running ids, Report), the flotilla CLI is
# the release manager (release push, rollout start signed with a release key).
#
# 1. A canary wave, then the rest; the coordinator is killed with SIGKILL in
#    the middle of the second wave and started again: outstanding work is
#    sent again with the same ids to the agent that lost it, never replaced,
#    nothing is sent again to the agent that lists it as running, and no
#    tenant is ever given APPLY twice.
# 2. A bad migration: the canary's health check fails, the budget trips,
#    the failing wave is reverted (on_failure: rollback-wave) and the rollout
#    halts; no tenant outside the canary wave is ever handed work.
# shellcheck source=tests/integration/lib.sh disable=SC2154 # pub_* are set with printf -v
. "$(dirname "$0")/lib.sh"

C=${FLOTILLA_COORDINATOR_BIN:-}
T=${FL_TESTCLIENT:-}
fl_need_flotilla
[ -x "$C" ] || fl_fail "FLOTILLA_COORDINATOR_BIN is not an executable: '$C'"
[ -x "$T" ] || fl_fail "FL_TESTCLIENT is not an executable: '$T'"

dir=$(fl_tmpdir)
cd "$dir" || exit 1
N=30 # tenants per agent

for k in coord:coordinator a1:agent a2:agent admin:operator rel:release; do
	"$FLOTILLA" keygen --kind "${k#*:}" --out "${k%%:*}.key" >/dev/null
	printf -v "pub_${k%%:*}" '%s' "$("$T" pubkey "${k%%:*}.key" "${k#*:}")"
done
printf '%s\n' "key_file: coord.key" "project_id: acme" \
	"agent_listen: tcp://127.0.0.1:0" "admin_listen: tcp://127.0.0.1:0" \
	"store: store.db" "peers_state_file: peers.seq" "poll_hold: 2s" \
	"agent_offline_after: 60s" "trusted_release_keys: [\"$pub_rel\"]" "agents:" \
	"  - {name: a1, public_key: \"$pub_a1\"}" "  - {name: a2, public_key: \"$pub_a2\"}" \
	"operators:" "  - {name: admin, public_key: \"$pub_admin\", role: admin}" >c.yaml

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
# shellcheck disable=SC2016 # expanded at exit
fl_on_exit '[ -z "$CPID" ] || kill -KILL "$CPID" 2>/dev/null
	[ "$rc" = 0 ] || { echo "--- coord.log (end) ---"; tail -n 80 "$dir/coord.log"; } >&2'

agent() {
	"$T" --url "tcp://127.0.0.1:$agent_port" --coordinator-key "$pub_coord" --key "$1.key" "${@:2}"
}
cli() {
	FLOTILLA_COORDINATOR="tcp://127.0.0.1:$admin_port" FLOTILLA_COORDINATOR_KEY=$pub_coord \
		FLOTILLA_KEY=admin.key "$FLOTILLA" "$@"
}
value() {
	sed -n "s/^$(printf '%s' "$1" | sed 's/[].[]/\\&/g') = //p" <<<"$OUT" | head -n 1
}

# A migration folder: m1 (the tenants have it), m2, and a bad m3 (its own release).
mkdir -p migs/20250101000000_init migs/20250102000000_add_email
echo "CREATE TABLE users (id int);" >migs/20250101000000_init/migration.sql
echo "DROP TABLE users;" >migs/20250101000000_init/down.sql
echo "ALTER TABLE users ADD COLUMN email text;" >migs/20250102000000_add_email/migration.sql
echo "ALTER TABLE users DROP COLUMN email;" >migs/20250102000000_add_email/down.sql
M1=20250101000000_init
M2=20250102000000_add_email
M3=20250103000000_bad_index

release() { # DIR SEQ: build, sign, push; the hash into $HASH
	out=$("$FLOTILLA" release build --dir "$1" --project acme --sequence "$2" --out "r$2.rel")
	HASH=$(printf '%s\n' "$out" | sed -n 's/^hash: //p')
	[ -n "$HASH" ] || fl_fail "no hash from release build: $out"
	"$FLOTILLA" release sign --key rel.key "r$2.rel" >/dev/null
	assert_exit 0 cli release push "r$2.rel"
}

# hello AGENT HEAD: the agent's N tenants at HEAD; the first two of each are canaries.
hello() {
	local a=$1 i args=()
	for ((i = 1; i <= N; i++)); do
		if [ "$i" -le 2 ]; then
			args+=(--tenant "${a}_t$(printf %02d "$i") labels=ring=canary applied=$2")
		else
			args+=(--tenant "${a}_t$(printf %02d "$i") applied=$2")
		fi
	done
	assert_exit 0 agent "$a" hello "${args[@]}"
}

# What each agent holds: "ID TENANT KIND ROLLOUT" lines in held.AGENT; every
# assignment ever received in seen.AGENT ("ID TENANT KIND").
: >held.a1
: >held.a2
: >seen.a1
: >seen.a2

# poll AGENT FREE [RUNNING...]: one poll; new lines in held.AGENT; resent ids
# (already seen) counted in $RESENT, new ones in $NEW, halts in $HALTS.
poll() {
	local a=$1 free=$2 running ids i id tenant kind rollout
	shift 2
	running=$(
		IFS=,
		echo "$*"
	)
	if [ -n "$running" ]; then
		assert_exit 0 agent "$a" poll --free-slots "$free" --max-wait 300 --running "$running"
	else
		assert_exit 0 agent "$a" poll --free-slots "$free" --max-wait 300
	fi
	RESENT=0
	NEW=0
	HALTS=$(grep -c '^poll_reply.halts\[[0-9]*\].rollout_id = ' <<<"$OUT" || true)
	ids=$(grep -c '^poll_reply.assignments\[[0-9]*\].assignment_id = ' <<<"$OUT" || true)
	for ((i = 0; i < ids; i++)); do
		id=$(value "poll_reply.assignments[$i].assignment_id")
		tenant=$(value "poll_reply.assignments[$i].tenant_id")
		kind=$(value "poll_reply.assignments[$i].kind")
		rollout=$(value "poll_reply.assignments[$i].rollout_id")
		if grep -q "^$id " "seen.$a"; then
			RESENT=$((RESENT + 1))
		else
			NEW=$((NEW + 1))
			echo "$id $tenant $kind" >>"seen.$a"
		fi
		grep -q "^$id " "held.$a" || echo "$id $tenant $kind $rollout" >>"held.$a"
	done
}

JOURNAL=0
# report_all AGENT OUTCOME_FN: report everything AGENT holds; OUTCOME_FN TENANT KIND
# prints the outcome (applied, healthy, rolled-back, health-failed...).
report_all() {
	local a=$1 fn=$2 id tenant kind rollout outcome k
	while read -r id tenant kind rollout; do
		outcome=$("$fn" "$tenant" "$kind")
		k=apply
		case $kind in
		WORK_KIND_REVERT) k=revert ;;
		WORK_KIND_CHECK) k=check ;;
		esac
		JOURNAL=$((JOURNAL + 1))
		case $outcome in
		applied | health-failed)
			assert_exit 0 agent "$a" report --tenant "$tenant" --assignment "$id" \
				--journal "$JOURNAL" --rollout "$rollout" --kind "$k" --outcome "$outcome" \
				--migrations "$TARGET" --head "$TARGET" --applied-count 3
			;;
		*)
			assert_exit 0 agent "$a" report --tenant "$tenant" --assignment "$id" \
				--journal "$JOURNAL" --rollout "$rollout" --kind "$k" --outcome "$outcome"
			;;
		esac
	done <"held.$a"
	: >"held.$a"
}
all_ok() {
	case $2 in
	WORK_KIND_APPLY) echo applied ;;
	WORK_KIND_CHECK) echo healthy ;;
	*) echo rolled-back ;;
	esac
}
held_ids() { cut -d' ' -f1 "held.$1"; }

state() { # ROLLOUT: its state, as the CLI says it
	cli rollout status "$1" --json --timeout 5s | grep -o '^{"id":"[^"]*","state":"[^"]*"' |
		cut -d'"' -f8
}

start
hello a1 "$M1"
hello a2 "$M1"
release migs 1
TARGET=$M2

cat >policy.yaml <<'EOF'
name: canary-then-rest
waves:
  - {name: canary, select: {labels: {ring: canary}}, max_parallel: 4, max_failures: 0}
  - {name: rest, select: {percent: 100}, max_parallel: 6, max_failure_rate: 0.1}
per_agent_parallel: 3
EOF

fl_log "plan: waves and migrations, nothing started"
assert_exit 0 cli rollout plan --release "$HASH" --policy policy.yaml --all --json
assert_contains "$OUT" '"tenant_count":4'
assert_contains "$OUT" "$M2"

fl_log "start; the canaries first, only them"
assert_exit 0 cli rollout start --release "$HASH" --policy policy.yaml --all \
	--release-key rel.key --reason "OPS-1" --json
R1=$(printf '%s' "$OUT" | grep -o '"rollout_id":"[^"]*"' | head -n 1 | cut -d'"' -f4)
[ "$R1" = r-1 ] || fl_fail "rollout id: '$R1'"
poll a1 10
poll a2 10
assert_eq "$(cat held.a1 held.a2 | wc -l)" 4 "canaries handed out"
if cut -d' ' -f2 held.a1 held.a2 | grep -qv '_t0[12]$'; then
	fl_fail "a tenant outside the canary wave got work: $(cat held.a1 held.a2)"
fi
report_all a1 all_ok
report_all a2 all_ok

fl_log "the second wave, within its limits"
poll a1 10
poll a2 10
n1=$(wc -l <held.a1)
n2=$(wc -l <held.a2)
[ "$n1" -le 3 ] && [ "$n2" -le 3 ] || fl_fail "per_agent_parallel 3 exceeded: $n1, $n2"
[ $((n1 + n2)) -le 6 ] || fl_fail "max_parallel 6 exceeded: $((n1 + n2))"
[ "$n1" -gt 0 ] && [ "$n2" -gt 0 ] || fl_fail "both agents should have work: $n1, $n2"

fl_log "SIGKILL with work out; a2's reply was lost with it"
kill -KILL "$CPID"
wait "$CPID" 2>/dev/null || true
CPID=''
lost=$(held_ids a2 | sort | tr '\n' ' ')
kept=$(held_ids a1 | sort | tr '\n' ' ')
start
# both say Hello again ("hello first"); a1 lists its work as running: nothing
# again; a2 lists nothing: the same ids again
assert_exit 3 agent a1 poll
assert_eq "$(value error.message)" "hello first"
hello a1 "$M1"
hello a2 "$M1"
# shellcheck disable=SC2046
poll a1 0 $(held_ids a1)
assert_eq "$RESENT" 0 "a1 was sent again what it runs"
: >held.a2
poll a2 "$n2"
assert_eq "$RESENT" "$n2" "a2's lost work sent again"
assert_eq "$NEW" 0 "a2 got new work in place of its lost work"
assert_eq "$(held_ids a2 | sort | tr '\n' ' ')" "$lost"
assert_eq "$(held_ids a1 | sort | tr '\n' ' ')" "$kept"

fl_log "to the end, then each tenant had exactly one APPLY"
for ((round = 0; round < 100; round++)); do
	report_all a1 all_ok
	report_all a2 all_ok
	poll a1 10
	poll a2 10
	[ -s held.a1 ] || [ -s held.a2 ] || break
done
wait_for 30 "[ \"\$(state r-1)\" = completed ]" || fl_fail "r-1 is $(state r-1), not completed"
applies=$(cat seen.a1 seen.a2 | grep -c WORK_KIND_APPLY)
tenants=$(cat seen.a1 seen.a2 | grep WORK_KIND_APPLY | cut -d' ' -f2 | sort -u | wc -l)
assert_eq "$applies" $((2 * N)) "APPLY assignments"
assert_eq "$tenants" $((2 * N)) "tenants given APPLY"
assert_exit 0 cli rollout status r-1 --json
assert_contains "$OUT" '"state":"completed"'

fl_log "a bad migration: the canary trips, its wave is reverted, the fleet halts"
mkdir -p "migs/$M3"
echo "CREATE INDEX users_email ON users (email);" >"migs/$M3/migration.sql"
echo "DROP INDEX users_email;" >"migs/$M3/down.sql"
hello a1 "$M1,$M2"
hello a2 "$M1,$M2"
release migs 2
TARGET=$M3
cat >policy2.yaml <<'EOF'
name: careful
waves:
  - {name: canary, select: {labels: {ring: canary}}, max_parallel: 4, max_failures: 0}
  - {name: rest, select: {percent: 100}, max_parallel: 10}
per_agent_parallel: 4
health:
  interval: 1s
  checks:
    - {name: users-readable, sql: "SELECT count(*) >= 0 FROM users", timeout: 1s}
on_failure: rollback-wave
EOF
: >seen.a1
: >seen.a2
assert_exit 0 cli rollout start --release "$HASH" --policy policy2.yaml --all \
	--release-key rel.key --json
R2=$(printf '%s' "$OUT" | grep -o '"rollout_id":"[^"]*"' | head -n 1 | cut -d'"' -f4)
[ "$R2" = r-2 ] || fl_fail "rollout id: '$R2'"
bad_first() { # the first canary's health check fails after apply; the rest apply
	case $2 in
	WORK_KIND_APPLY)
		if [ "$1" = a1_t01 ]; then echo health-failed; else echo applied; fi
		;;
	WORK_KIND_CHECK) echo healthy ;;
	*) echo rolled-back ;;
	esac
}
for ((round = 0; round < 30; round++)); do
	poll a1 10
	poll a2 10
	report_all a1 bad_first
	report_all a2 bad_first
	s=$(state r-2)
	[ "$s" = halted ] && break
done
assert_eq "$(state r-2)" halted
assert_exit 0 cli rollout status r-2 --json
assert_contains "$OUT" "rolled back"
reverts=$(cat seen.a1 seen.a2 | grep -c WORK_KIND_REVERT || true)
[ "$reverts" -ge 1 ] || fl_fail "no REVERT was handed out: $(cat seen.a1 seen.a2)"
if cut -d' ' -f2 seen.a1 seen.a2 | grep -qv '_t0[12]$'; then
	fl_fail "a tenant outside the canary wave was touched: $(cat seen.a1 seen.a2)"
fi
assert_exit 0 cli audit --json
assert_contains "$OUT" "wave_failed"

fl_pass
