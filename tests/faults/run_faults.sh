#!/usr/bin/env bash
# The fault suite: one rollout over hundreds of tenants (databases, and schemas of one
# database) while the fleet is treated as production treats it, then the invariants.
#
# Faults, at random points drawn from a seed (printed; FL_FAULT_SEED=N replays it):
#   - agents SIGKILLed and started again (FL_FAULT_AGENT_KILLS, default 20), some while a
#     `no-transaction` migration's statement runs, some while the canary wave bakes;
#   - the coordinator SIGKILLed and started again (FL_FAULT_COORD_KILLS, default 5), once
#     while wave 0 bakes, once after it stored a report whose reply was dropped on the way
#     (a blackhole route to the agents: the store written, the reply lost; the agents'
#     resends arrive late, sealed again), once right after it logged an operator's pause;
#   - PostgreSQL restarted (pg_ctl restart -m fast) while migrations run;
#   - the agents cut off from the coordinator for 30 s: they run in a network namespace,
#     joined to ours by a veth pair whose end here goes down (skipped, with the reason,
#     when namespaces cannot be made); on that path every packet is also delayed, some
#     duplicated and reordered, where the kernel has netem (the table says);
#   - delayed, reordered and duplicated messages, whatever the kernel: the agents reach the
#     coordinator through tests/tools/fl_chaos_proxy.c, which holds each nng message
#     5-35 ms and sends 2% of them twice (netem's duplicates never reach the programs: TCP
#     drops them);
#   - a replayed envelope (fl-testclient --send-twice) as an approved agent;
#   - a rogue coordinator (tests/tools/rogue_coordinator) handing an agent of its own
#     assignments outside the signed order; an agent whose clock is 10 minutes ahead (an
#     LD_PRELOAD shim, clock_skew.c: faketime is not installed, the code has no clock hook);
#   - the coordinator's store on a small tmpfs, filled while it writes (reports, and a 2 MB
#     release pushed), then freed: the push refused, then taken.
# Invariants, after the rollout ended and the fleet settled:
#   - every tenant's _prisma_migrations agrees with its schema (a finished row has its
#     table, columns and valid index; an unfinished one exactly what its statements did);
#   - no migration ran twice: one history row per migration, at most one successful apply
#     per tenant in the agents' logs;
#   - the coordinator's view (fleet status --json) equals each tenant's history;
#   - no report lost: every assignment of the rollout in the store is reported or withdrawn;
#     every tenant the coordinator calls applied holds the target;
#   - nothing ran that no release manager signed: the rogue's and the skewed agent's
#     tenants untouched, every rogue assignment refused;
#   - the rollout ends completed or halted exactly as its policy says (its waves' budgets).
# It prints a table (faults injected, tenants checked, violations) and exits 1 on any
# violation, or when it could not inject the faults it promised.
#
# Size: FL_FAULT_TENANTS (databases, default 500, over 4 agents) and FL_FAULT_SCHEMAS
# (schemas of one database, one agent, default 100). FL_FAULT_SOAK=1 (or --soak): 4x the
# kills, 1000 databases, 200 schemas, by hand. Runs under deploy/pg-throwaway.sh run --, as
# root for the namespaces and the tmpfs (ctest: `ctest -L faults`).
. "$(dirname "$0")/../integration/fleet/lib.sh"
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

for arg in "$@"; do
	case $arg in
	--soak) FL_FAULT_SOAK=1 ;;
	*) fl_fail "usage: run_faults.sh [--soak]" ;;
	esac
done
soak=${FL_FAULT_SOAK:-0}
if [ "$soak" = 1 ]; then
	n_db=${FL_FAULT_TENANTS:-1000} n_schema=${FL_FAULT_SCHEMAS:-200}
	agent_kills=${FL_FAULT_AGENT_KILLS:-80} coord_kills=${FL_FAULT_COORD_KILLS:-20}
else
	n_db=${FL_FAULT_TENANTS:-500} n_schema=${FL_FAULT_SCHEMAS:-100}
	agent_kills=${FL_FAULT_AGENT_KILLS:-20} coord_kills=${FL_FAULT_COORD_KILLS:-5}
fi
[ "$agent_kills" -ge 6 ] && [ "$coord_kills" -ge 3 ] || fl_fail "at least 6 agent and 3 coordinator kills"
seed=${FL_FAULT_SEED:-$(od -An -N3 -tu4 /dev/urandom | tr -d ' ')}
RANDOM=$seed
echo "faults: seed $seed (FL_FAULT_SEED=$seed replays it): $n_db databases, $n_schema schemas," \
	"$agent_kills agent kills, $coord_kills coordinator kills" >&2
T0=$SECONDS
: "${FL_TESTCLIENT:?run under ctest (FL_TESTCLIENT)}" "${FL_ROGUE:?run under ctest (FL_ROGUE)}"

# ---- the fleet ----------------------------------------------------------------------------
# shellcheck disable=SC2034 # fleet.sh's
FLEET_POLL_HOLD=2s FLEET_OFFLINE_AFTER=10s FLEET_MAX_PARALLEL=4
fleet_test_init
fl_on_exit 'fleet_stop chaos-proxy; fleet_cleanup; ff_tmpfs_teardown; ff_netns_teardown'
ff_netns_setup
if [ -n "$FF_NS" ]; then
	fl_log "agents in network namespace $FF_NS, the coordinator on $FF_COORD_IP; netem: $FF_NETEM"
else
	echo "faults: SKIPPED the network cut (and netem): $FF_NETNS_WHY" >&2
fi
port=$(ff_free_port $((30000 + $$ % 20000)))
FLEET_AGENT_URL=tcp://$FF_COORD_IP:$port
# The agents dial the chaos proxy, on our side of the veth, which dials the coordinator.
pport=$(ff_free_port $((port + 1)))
: "${FL_CHAOS_PROXY:?run under ctest (FL_CHAOS_PROXY)}"
CHAOS_STATS=$FLEET_DIR/chaos.stats
_fleet_spawn chaos-proxy "$FL_CHAOS_PROXY" --listen "$FF_COORD_IP:$pport" \
	--to "$FF_COORD_IP:$port" --seed "$seed" --delay 5-35 --duplicate 2 --stats "$CHAOS_STATS"
FLEET_AGENT_DIAL_URL=tcp://$FF_COORD_IP:$pport
ff_tmpfs_setup "$FLEET_DIR/coordinator" 48m
[ -n "$FF_TMPFS" ] || echo "faults: SKIPPED the full disk: $FF_TMPFS_WHY" >&2

db_agents=(a1 a2 a3 a4)
per=$(((n_db + 3) / 4))
left=$n_db
fl_log "creating $n_db tenant databases and $n_schema schemas"
for a in "${db_agents[@]}"; do
	n=$((left < per ? left : per))
	fleet_add_agent "$a" "$n" 2
	declare "N_$a=$n"
	left=$((left - n))
done
fleet_add_agent_schemas s1 fl_schemas "$n_schema" 2
N_s1=$n_schema
main_agents=("${db_agents[@]}" s1)
fleet_add_agent skewed 3 0 # its clock 10 minutes ahead: the coordinator must refuse it
fleet_add_agent rogue 3 0  # talks to the rogue coordinator only
fleet_add_agent ghost 0 0  # an approved identity fl-testclient replays envelopes as
total=$((n_db + n_schema))

# ff_start_agent NAME [SKEW_MS]: the agent in the agents' namespace, its clock skewed.
ff_start_agent() {
	local name=$1 skew=${2:-0}
	if [ "$skew" != 0 ]; then
		_fleet_spawn "$name" ff_in_ns env LD_PRELOAD="$FL_CLOCK_SKEW_LIB" FL_FAULT_SKEW_MS="$skew" \
			"$FL_AGENT_BIN" --config "$FLEET_DIR/$name/agent.yaml"
	else
		_fleet_spawn "$name" ff_in_ns "$FL_AGENT_BIN" --config "$FLEET_DIR/$name/agent.yaml"
	fi
}

skew_ok=1
if [ -z "${FL_CLOCK_SKEW_LIB:-}" ] || [ ! -f "$FL_CLOCK_SKEW_LIB" ] ||
	ldd "$FL_AGENT_BIN" 2>/dev/null | grep -q libasan; then
	skew_ok=0
	echo "faults: SKIPPED the skewed clocks: no clock shim, or a sanitizer build (ASan must come first)" >&2
fi

fleet_start_coordinator
for a in "${main_agents[@]}"; do
	ff_start_agent "$a"
done
fleet_wait_tenants "$total" 300
fl_log "the coordinator knows $total tenants ($((SECONDS - T0))s)"

# ---- release, policy ------------------------------------------------------------------------
S1=${FL_FAULT_SLEEP1:-0.5} # the no-transaction migration's first statement
S2=${FL_FAULT_SLEEP2:-1.0} # the transactional migration's
MIG_A=20260101000000_fk_table
MIG_B=20260101000100_fk_nontx
MIG_C=20260101000200_fk_tx
FLEET_MIGS=$(fl_tmpdir)
cp "$FLEET_DEMO/migrations/migration_lock.toml" "$FLEET_MIGS/"
fleet_migration "$FLEET_MIGS" $MIG_A 'CREATE TABLE "fk" (id int PRIMARY KEY, v text);'
fleet_migration "$FLEET_MIGS" $MIG_B "-- flotilla:no-transaction
SELECT 'fk_nontx', pg_sleep($S1);
ALTER TABLE \"fk\" ADD COLUMN w int;
CREATE INDEX CONCURRENTLY \"fk_w\" ON \"fk\" (w);"
fleet_migration "$FLEET_MIGS" $MIG_C "ALTER TABLE \"fk\" ADD COLUMN c int;
SELECT 'fk_tx', pg_sleep($S2);"
fleet_release "$FLEET_MIGS" 1 v1
CANARY_BUDGET=6
REST_RATE=0.15
fleet_policy faults <<EOF
name: faults
waves:
  - {name: canary, select: {labels: {ring: canary}}, max_parallel: 4, max_failures: $CANARY_BUDGET, bake: 20s}
  - {name: rest, select: {percent: 100}, max_parallel: 16, max_failure_rate: $REST_RATE}
per_agent_parallel: 4
health:
  interval: 5s
  checks:
    - {name: fk-readable, sql: "SELECT count(*) >= 0 FROM fk", timeout: 5s}
on_failure: halt
EOF

# ---- helpers the faults use -----------------------------------------------------------------
running_stmt() { # a database where a statement with TEXT runs now (its datname), or nothing
	psql -X -A -t -q -d postgres -c "SELECT datname FROM pg_stat_activity
		WHERE query LIKE '%$1%' AND pid <> pg_backend_pid() AND state = 'active' LIMIT 1" 2>/dev/null
}
agent_of_db() { # a1_t001 -> a1; fl_schemas -> s1
	case $1 in
	fl_schemas) echo s1 ;;
	*) echo "${1%%_t*}" ;;
	esac
}
rollout_state() {
	fleet_rollout_state 2>/dev/null || echo unknown
}
rollout_over() {
	case $(rollout_state) in
	completed | halted | rolled_back) return 0 ;;
	esac
	return 1
}
restart_coordinator() { # the coordinator is gone (killed): reap it and start it again
	fleet_stop coordinator KILL
	fleet_start_coordinator
}
coord_lines() {
	wc -l <"$FLEET_DIR/logs/coordinator.log"
}

# As a release manager watching the rollout: a pause for an inconclusive health check (what
# the coordinator does when a check cannot run: PostgreSQL restarted under it) is looked at
# and resumed; any other pause is not ours to lift.
resume_if_inconclusive() {
	local json reason
	json=$(fleet_rollout_json 2>/dev/null) || return 0
	[ "$(printf '%s' "$json" | jq -r .state)" = paused ] || return 0
	reason=$(printf '%s' "$json" | jq -r .state_reason)
	case $reason in
	*inconclusive*)
		fl_log "paused: $reason: resumed"
		fleet_cli rollout resume "$FLEET_ROLLOUT" --timeout 10s >/dev/null 2>&1 &&
			ff_count operator_resumed_inconclusive_pause
		;;
	esac
	return 0
}

kill_agent() { # NAME [SKEW_MS]
	fleet_stop "$1" KILL
	ff_count agent_kill
	ff_start_agent "$1" "${2:-0}"
}

f_agent_kill() {
	local a=${main_agents[$(ff_rand ${#main_agents[@]})]}
	kill_agent "$a"
}

f_agent_kill_nontx() {
	local db='' deadline=$((SECONDS + 30))
	while [ -z "$db" ] && [ "$SECONDS" -lt "$deadline" ]; do
		db=$(running_stmt fk_nontx)
		[ -n "$db" ] || sleep 0.05
	done
	if [ -z "$db" ]; then
		fl_log "no no-transaction statement ran within 30s: a plain agent kill instead"
		f_agent_kill
		return
	fi
	kill_agent "$(agent_of_db "$db")"
	ff_count agent_kill_mid_nontx
}

f_agent_kill_bake() {
	local a=${main_agents[$(ff_rand ${#main_agents[@]})]}
	[ "$(fleet_wave_field 0 state 2>/dev/null)" = baking ] || {
		fl_log "wave 0 is not baking: a plain agent kill"
		kill_agent "$a"
		return
	}
	kill_agent "$a"
	ff_count agent_kill_in_bake
}

f_coord_kill() {
	fleet_stop coordinator KILL
	ff_count coord_kill
	fleet_start_coordinator
}

f_coord_kill_bake() {
	[ "$(fleet_wave_field 0 state 2>/dev/null)" = baking ] && ff_count coord_kill_in_bake
	f_coord_kill
}

# The coordinator's replies to the agents dropped (their requests still arrive), a report
# stored, then SIGKILL: for the agents, the coordinator died between the store write and the
# reply. The agents resend later (a delayed, duplicated report, sealed again).
f_coord_kill_replylost() {
	local n0
	if [ -z "$FF_NS" ]; then
		f_coord_kill_logged_report
		return
	fi
	n0=$(grep -c ': report [0-9]*: tenant' "$FLEET_DIR/logs/coordinator.log" || true)
	ff_replies down
	if (wait_for 60 "[ \$(grep -c ': report [0-9]*: tenant' '$FLEET_DIR/logs/coordinator.log' || true) -gt $n0 ]") 2>/dev/null; then
		ff_count coord_kill_reply_lost
	else
		fl_log "no report stored within 60s of the replies being dropped"
	fi
	fleet_stop coordinator KILL
	ff_replies up
	ff_count coord_kill
	fleet_start_coordinator
}

# SIGKILL as soon as a report is logged (stored, the reply maybe not yet sent).
f_coord_kill_logged_report() {
	local n0
	n0=$(coord_lines)
	wait_for 60 "tail -n +$((n0 + 1)) '$FLEET_DIR/logs/coordinator.log' | grep -q ': report [0-9]*: tenant'"
	fleet_stop coordinator KILL
	ff_count coord_kill
	ff_count coord_kill_after_report_logged
	fleet_start_coordinator
}

# An operator's pause, the coordinator SIGKILLed as soon as it logged it: after the restart
# the rollout is paused if the operator heard "ok"; then resumed.
f_coord_kill_admin() {
	local n0 pid rc st
	n0=$(coord_lines)
	fleet_cli rollout pause "$FLEET_ROLLOUT" --reason "faults: pause" --timeout 5s \
		>"$FLEET_DIR/pause.out" 2>&1 &
	pid=$!
	wait_for 30 "tail -n +$((n0 + 1)) '$FLEET_DIR/logs/coordinator.log' | grep -q 'admin rollout_pause'"
	fleet_stop coordinator KILL
	rc=0
	wait "$pid" || rc=$?
	ff_count coord_kill
	ff_count coord_kill_after_admin_logged
	fleet_start_coordinator
	st=$(rollout_state)
	if [ "$rc" = 0 ] && [ "$st" != paused ] && ! rollout_over; then
		ff_violation "the operator's pause was answered ok, yet after the coordinator's restart the rollout is '$st' (seed $seed)"
	fi
	fl_log "pause (exit $rc, the operator $([ "$rc" = 0 ] && echo heard ok || echo heard nothing)); after the restart: $st"
	if [ "$st" = paused ]; then
		assert_exit 0 fleet_cli rollout resume "$FLEET_ROLLOUT" --timeout 10s
	fi
}

f_pg_restart() {
	local db='' deadline=$((SECONDS + 30))
	while [ -z "$db" ] && [ "$SECONDS" -lt "$deadline" ]; do
		db=$(running_stmt pg_sleep)
		[ -n "$db" ] || sleep 0.05
	done
	fl_pg_restart
	ff_count pg_restart
	[ -z "$db" ] || ff_count pg_restart_mid_apply
}

HEAL_PID=''
f_net_cut() {
	[ -n "$FF_NS" ] || return 0
	ff_link down
	ff_count net_cut_30s
	fl_log "agents cut off for 30s"
	(
		sleep 30
		ip link set dev "$FF_VETH_ROOT" up
	) &
	HEAL_PID=$!
}

f_replay() {
	local pub out
	pub=$FLEET_COORDINATOR_PUB
	out=$("$FL_TESTCLIENT" --url "$FLEET_AGENT_URL" --key "$FLEET_DIR/keys/ghost.key" \
		--coordinator-key "$pub" --timeout 5000 --send-twice hello --agent-id ghost 2>&1 || true)
	case $out in
	*"replay: refused"*) ;;
	*"replay: accepted"*) ff_violation "a replayed Hello was accepted (seed $seed): $out" ;;
	*) fl_log "the replay got no answer (the coordinator away?): $out" ;;
	esac
	ff_count replayed_envelope
}

DISK_NOTE='not run'
# The coordinator's disk full: it keeps storing reports, and an operator pushes a release
# (2 MB) that cannot fit: refused, or taken in room the store freed itself, or the coordinator
# stops cleanly; never a crash; once the space is back it takes the same push, and (the
# invariants) lost nothing.
f_disk_full() {
	local dir=$FLEET_DIR/coordinator n0 pid st how big rc=0
	[ -n "$FF_TMPFS" ] || return 0
	big=$FLEET_DIR/big-migs
	if [ ! -d "$big" ]; then
		cp -R "$FLEET_MIGS" "$big"
		mkdir -p "$big/20260102000000_big"
		{
			echo "CREATE TABLE big (id int);"
			for ((i = 0; i < 20000; i++)); do
				printf -- '-- %0100d\n' "$i"
			done
		} >"$big/20260102000000_big/migration.sql"
		"$FLOTILLA" release build --dir "$big" --project "$FLEET_PROJECT" --sequence 2 \
			--out "$FLEET_DIR/releases/big.release" >/dev/null
		"$FLOTILLA" release sign --key "$FLEET_RELEASE_KEY" "$FLEET_DIR/releases/big.release" >/dev/null
	fi
	n0=$(coord_lines)
	ff_fill "$dir"
	ff_count disk_full
	pid=${FLEET_PID[coordinator]}
	fleet_cli release push "$FLEET_DIR/releases/big.release" --name big --timeout 20s \
		>"$FLEET_DIR/big.out" 2>&1 || rc=$?
	# Accepted is no violation by itself: the store may have found room (SQLite truncates its
	# WAL after a checkpoint, giving the space back). The push after the space is back, and
	# the invariants, say whether anything was lost.
	# It writes at every report too: wait until it says it cannot, or stops.
	if ! (wait_for 20 "fl_pid_gone $pid || tail -n +$((n0 + 1)) '$FLEET_DIR/logs/coordinator.log' | grep -q -i -E 'no space|full|cannot (store|commit|write)|disk'") 2>/dev/null; then
		how="said nothing within 20s"
	elif fl_pid_gone "$pid"; then
		st=0
		wait "$pid" 2>/dev/null || st=$?
		unset "FLEET_PID[coordinator]"
		how="stopped (exit $st)"
		[ "$st" -lt 128 ] || ff_violation "the coordinator died of signal $((st - 128)) on a full disk (seed $seed): $(tail -n 5 "$FLEET_DIR/logs/coordinator.log")"
	else
		how="kept running, saying: $(tail -n +$((n0 + 1)) "$FLEET_DIR/logs/coordinator.log" | grep -i -E 'no space|full|cannot|disk' | head -n 1)"
	fi
	how+="; the push exited $rc: $(head -c 200 "$FLEET_DIR/big.out")"
	ff_unfill "$dir"
	DISK_NOTE=$how
	fl_log "disk full: the coordinator $how; space back"
	if [ -z "${FLEET_PID[coordinator]:-}" ]; then
		fleet_start_coordinator
	fi
	fleet_cli release push "$FLEET_DIR/releases/big.release" --name big --timeout 30s >"$FLEET_DIR/big.out" 2>&1 ||
		ff_violation "the release push fails after the space came back (seed $seed): $(cat "$FLEET_DIR/big.out")"
}

# The rogue coordinator and its agent: assignments no release manager signed.
ROGUE_DIR=$FLEET_DIR/rogue-coord
f_rogue() {
	local rk=$FLEET_DIR/keys/rogue-coord.key ev=$FLEET_DIR/keys/evil-release.key
	mkdir -p "$ROGUE_DIR"
	"$FLOTILLA" keygen --kind coordinator --out "$rk" >/dev/null
	"$FLOTILLA" keygen --kind release --out "$ev" >/dev/null
	"$FL_ROGUE" order --release "$FLEET_RELEASE_FILE" --policy "$FLEET_POLICY" --target $MIG_C \
		--key "$FLEET_RELEASE_KEY" --project "$FLEET_PROJECT" --tenants rogue_t001 \
		--out "$ROGUE_DIR/ok.order" >/dev/null
	"$FL_ROGUE" order --release "$FLEET_RELEASE_FILE" --policy "$FLEET_POLICY" --target $MIG_C \
		--key "$ev" --project "$FLEET_PROJECT" --all --out "$ROGUE_DIR/evil.order" >/dev/null
	"$FL_ROGUE" serve --listen tcp://127.0.0.1:0 --key "$rk" \
		--agent "$(_fleet_pub "$FLEET_DIR/keys/rogue.key")" --dir "$ROGUE_DIR" \
		2>>"$FLEET_DIR/logs/rogue-coordinator.log" &
	FLEET_PID['rogue-coordinator']=$!
	echo "$!" >>"$FLEET_DIR/pids"
	wait_for 10 test -s "$ROGUE_DIR/url"
	sed -i -e "s|^coordinator_url: .*|coordinator_url: $(cat "$ROGUE_DIR/url")|" \
		-e "/^coordinator_public_keys:/{n;s|.*|  - $(_fleet_pub "$rk")|}" "$FLEET_DIR/rogue/agent.yaml"
	{
		echo "release $FLEET_RELEASE_FILE"
		# a tenant the signed order does not select
		echo "assign 9001 apply rogue_t002 1 order $MIG_C $ROGUE_DIR/ok.order r-rogue"
		# an order signed by a key nobody trusts
		echo "assign 9002 apply rogue_t003 1 order $MIG_C $ROGUE_DIR/evil.order r-rogue"
		# a target that is not the order's
		echo "assign 9003 apply rogue_t001 1 order $MIG_A $ROGUE_DIR/ok.order r-rogue"
		# a revert nobody signed
		echo "assign 9004 revert rogue_t001 1 order - $ROGUE_DIR/ok.order r-rogue"
	} >>"$ROGUE_DIR/commands"
	_fleet_spawn rogue "$FL_AGENT_BIN" --config "$FLEET_DIR/rogue/agent.yaml"
	ff_count rogue_assignments
	ff_count rogue_assignments
	ff_count rogue_assignments
	ff_count rogue_assignments
}

# ---- the rollout, and the faults --------------------------------------------------------------
if [ "$skew_ok" = 1 ]; then
	_fleet_spawn skewed env LD_PRELOAD="$FL_CLOCK_SKEW_LIB" FL_FAULT_SKEW_MS=600000 \
		"$FL_AGENT_BIN" --config "$FLEET_DIR/skewed/agent.yaml"
	ff_count agent_clock_10min_ahead
fi

fleet_start --release "$FLEET_RELEASE_FILE" --policy "$FLEET_POLICY" --all
fl_log "rollout $FLEET_ROLLOUT started ($((SECONDS - T0))s)"
f_rogue

# The canary wave: an agent killed mid-statement of the no-transaction migration, then
# kills while it bakes.
f_agent_kill_nontx
if (wait_for 180 "[ \"\$(fleet_wave_field 0 state)\" = baking ]") 2>/dev/null; then
	f_agent_kill_bake
	f_agent_kill_bake
	f_coord_kill_bake
else
	fl_log "wave 0 never baked within 180s: it is $(fleet_wave_field 0 state 2>/dev/null)"
fi

# (No agent restarted with its clock skewed inside the window: the LD_PRELOAD shim moves what
# the agent reads, not the deadlines it hands the kernel, so its realtime timed waits would
# last the skew longer: the agent would go silent for reasons no skewed host has. The agent 10
# minutes ahead is refused at its first envelope, before any timed wait matters.)
schedule=(agent_kill_nontx agent_kill_nontx agent_kill_nontx agent_kill agent_kill
	coord_kill_replylost coord_kill_admin coord_kill_logged_report pg_restart net_cut replay replay
	disk_full)
for ((i = 7; i < agent_kills; i++)); do schedule+=(agent_kill); done
for ((i = 4; i < coord_kills; i++)); do schedule+=(coord_kill); done
# shuffle (Fisher-Yates with the seeded RANDOM)
for ((i = ${#schedule[@]} - 1; i > 0; i--)); do
	j=$(ff_rand $((i + 1)))
	tmp=${schedule[i]}
	schedule[i]=${schedule[j]}
	schedule[j]=$tmp
done
# Wait for the rest wave, then one fault at a time at random moments.
wait_for 240 "[ \"\$(fleet_wave_field 1 state)\" != pending ] || [ \"\$(fleet_rollout_state)\" != running ]"
not_done=()
for f in "${schedule[@]}"; do
	if rollout_over; then
		not_done+=("$f")
		continue
	fi
	gap=$((200 + $(ff_rand 1500)))
	sleep "$((gap / 1000)).$(printf '%03d' $((gap % 1000)))" # a random point, not a wait for a state
	resume_if_inconclusive
	fl_log "fault: $f ($((SECONDS - T0))s, $(rollout_state))"
	"f_$f"
done
[ -z "$HEAL_PID" ] || wait "$HEAL_PID" || true
[ -z "$FF_NS" ] || ff_link up
fl_log "faults done ($((SECONDS - T0))s); waiting for the rollout to end"
progress() {
	local json
	json=$(fleet_rollout_json 2>/dev/null) || return 0
	fl_log "$((SECONDS - T0))s: $(printf '%s' "$json" | jq -r '"\(.state): " + ([.waves[] | "\(.name) \(.state) applied \(.tenants_applied) skipped \(.tenants_skipped) failed \(.tenants_failed) running \(.tenants_running) pending \(.tenants_pending) unreachable \(.tenants_unreachable)"] | join(", "))')"
}
deadline=$((SECONDS + 600)) last_progress=$SECONDS
while :; do
	st=$(rollout_state)
	case $st in
	completed | halted) break ;;
	paused) resume_if_inconclusive ;;
	esac
	if [ "$SECONDS" -ge "$deadline" ]; then
		ff_violation "rollout $FLEET_ROLLOUT neither completed nor halted within 600s: $st ($(fleet_rollout_json 2>/dev/null | jq -r .state_reason))"
		break
	fi
	if [ $((SECONDS - last_progress)) -ge 30 ]; then
		progress
		last_progress=$SECONDS
	fi
	sleep 0.5 # polling the state
done
end_state=$(rollout_state)
fl_log "rollout $FLEET_ROLLOUT: $end_state ($((SECONDS - T0))s)"

# ---- settle ------------------------------------------------------------------------------------
# Every agent running (each Hello brings its tenants' histories), nothing outstanding.
for a in "${main_agents[@]}"; do
	fleet_running "$a" || ff_start_agent "$a"
done
settled() {
	local json
	json=$(fleet_rollout_json) || return 1
	[ "$(printf '%s' "$json" | jq '[.waves[].tenants_running] | add')" = 0 ]
}
wait_for 120 settled

# ---- invariants ----------------------------------------------------------------------------------
TRUTH=$FLEET_DIR/truth.txt
: >"$TRUTH"
truth_sql() {
	cat <<EOF
SELECT to_regclass('_prisma_migrations') IS NOT NULL AS has \gset
\if :has
SELECT concat_ws('|',
 (SELECT count(*) FROM _prisma_migrations WHERE migration_name = '$MIG_A'),
 (SELECT count(*) FROM _prisma_migrations WHERE migration_name = '$MIG_A' AND finished_at IS NOT NULL AND rolled_back_at IS NULL),
 (SELECT count(*) FROM _prisma_migrations WHERE migration_name = '$MIG_B'),
 (SELECT count(*) FROM _prisma_migrations WHERE migration_name = '$MIG_B' AND finished_at IS NOT NULL AND rolled_back_at IS NULL),
 (SELECT coalesce(max(applied_steps_count), 0) FROM _prisma_migrations WHERE migration_name = '$MIG_B'),
 (SELECT count(*) FROM _prisma_migrations WHERE migration_name = '$MIG_C'),
 (SELECT count(*) FROM _prisma_migrations WHERE migration_name = '$MIG_C' AND finished_at IS NOT NULL AND rolled_back_at IS NULL),
 to_regclass('fk') IS NOT NULL,
 EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('fk') AND attname = 'w' AND NOT attisdropped),
 EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('fk') AND attname = 'c' AND NOT attisdropped),
 coalesce((SELECT CASE WHEN indisvalid THEN 'valid' ELSE 'invalid' END FROM pg_index WHERE indexrelid = to_regclass('fk_w')), 'none'),
 coalesce((SELECT migration_name FROM _prisma_migrations WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL ORDER BY migration_name DESC LIMIT 1), ''),
 (SELECT count(*) FROM _prisma_migrations WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL),
 (SELECT count(*) FROM (SELECT migration_name FROM _prisma_migrations GROUP BY 1 HAVING count(*) > 1) d));
\else
SELECT concat_ws('|', 0, 0, 0, 0, 0, 0, 0, to_regclass('fk') IS NOT NULL, false, false, 'none', '', 0, 0);
\endif
EOF
}
tenant_truth() { # TENANT [DB SCHEMA]: one line "tenant|fields..."
	local t=$1 db=${2:-$1} schema=${3:-} line
	line=$(truth_sql | PGOPTIONS=${schema:+-c search_path=$schema} psql -X -A -t -q -v ON_ERROR_STOP=1 -d "$db" 2>&1) ||
		line="ERROR $line"
	printf '%s|%s\n' "$t" "$line"
}
fl_log "reading every tenant's history and schema"
export MIG_A MIG_B MIG_C
export -f truth_sql tenant_truth
{
	for a in "${db_agents[@]}"; do
		n_var=N_$a
		for t in $(fleet_tenants "$a" "${!n_var}"); do
			echo "$t $t"
		done
	done
	for t in $(fleet_tenants s1 "$N_s1"); do
		echo "$t fl_schemas $t"
	done
} | xargs -P 3 -L 1 bash -c 'tenant_truth "$@"' _ | sort >"$TRUTH"
checked=$(wc -l <"$TRUTH")

mkdir -p "$FLEET_DIR/evidence"
evidence() { # TENANT: its history rows, and what the coordinator holds about it
	local t=$1 db=$1 schema=''
	case $t in s1_*) db=fl_schemas schema=$t ;; esac
	PGOPTIONS=${schema:+-c search_path=$schema} psql -X -q -d "$db" -c "SELECT migration_name,
		started_at, finished_at, rolled_back_at, applied_steps_count, logs FROM _prisma_migrations
		ORDER BY started_at" >"$FLEET_DIR/evidence/$t.history" 2>&1 || true
	fleet_cli tenant show "$t" --json --reports 30 --timeout 10s >"$FLEET_DIR/evidence/$t.coordinator.json" 2>&1 || true
	grep -h "tenant '$t'" "$FLEET_DIR"/logs/*.log >"$FLEET_DIR/evidence/$t.agent.log" 2>/dev/null || true
}

# 1. history agrees with schema; 2. no migration twice
while IFS='|' read -r t ra fa rb fb sb rc fc tab w c idx head cnt dups; do
	if [[ $ra == ERROR* ]]; then
		ff_violation "$t: cannot read its history: $ra"
		continue
	fi
	bad=''
	[ "$ra" -le 1 ] && [ "$rb" -le 1 ] && [ "$rc" -le 1 ] && [ "$dups" = 0 ] ||
		bad+=" a migration has $ra/$rb/$rc rows ($dups duplicated);"
	[ "$tab" = "$([ "$fa" = 1 ] && echo t || echo f)" ] || bad+=" table fk $tab but $MIG_A finished=$fa;"
	if [ "$fb" = 1 ]; then
		[ "$w" = t ] && [ "$idx" = valid ] || bad+=" $MIG_B finished but column w=$w, index $idx;"
	elif [ "$rb" = 1 ]; then
		[ "$w" = "$([ "$sb" -ge 2 ] && echo t || echo f)" ] ||
			bad+=" $MIG_B unfinished with $sb statements applied but column w=$w;"
		# CREATE INDEX CONCURRENTLY cannot share a transaction with the row's step count:
		# an agent killed while it ran leaves 2 counted whether the server finished it
		# (valid), stopped it (invalid) or never began it (none). The row stays failed
		# for a human to resolve, who looks (docs/OPERATIONS.md).
		if [ "$sb" -ge 3 ]; then
			[ "$idx" = valid ] || bad+=" $MIG_B unfinished with $sb statements applied but its index is $idx;"
		elif [ "$sb" -le 1 ]; then
			[ "$idx" = none ] || bad+=" $MIG_B unfinished with $sb statements applied but its index is $idx;"
		fi
	else
		[ "$w" = f ] && [ "$idx" = none ] || bad+=" no $MIG_B row but column w=$w, index $idx;"
	fi
	[ "$c" = "$([ "$fc" = 1 ] && echo t || echo f)" ] || bad+=" column c $c but $MIG_C finished=$fc;"
	[ "$rc" = 0 ] || [ "$fb" = 1 ] || bad+=" $MIG_C has a row though $MIG_B is not finished;"
	if [ -n "$bad" ]; then
		ff_violation "$t: history and schema disagree:$bad"
		evidence "$t"
	fi
done <"$TRUTH"

# 2b. one successful apply per tenant in the agents' logs
for a in "${main_agents[@]}"; do
	grep -o "\"context\":\"tenant '[^']*'\",\"msg\":\"assignment [0-9]* (apply, rollout '$FLEET_ROLLOUT'): applied\"" \
		"$FLEET_DIR/logs/$a.log" | cut -d"'" -f2 | sort | uniq -d | while read -r t; do
		echo "$t"
	done
done >"$FLEET_DIR/twice.txt"
while read -r t; do
	ff_violation "$t: the agents' logs show more than one successful apply in $FLEET_ROLLOUT"
done <"$FLEET_DIR/twice.txt"

# 3. the coordinator's view equals the tenants' truth (after reconciliation: wait for it)
view_matches() {
	fleet_cli fleet status --json --timeout 30s >"$FLEET_DIR/view.json" 2>/dev/null || return 1
	jq -r '.tenants[] | "\(.tenant_id)|\(.head_migration_id)|\(.applied_count)"' "$FLEET_DIR/view.json" |
		sort >"$FLEET_DIR/view.txt"
	awk -F'|' '{print $1 "|" $13 "|" $14}' "$TRUTH" | sort >"$FLEET_DIR/truth_view.txt"
	comm -23 "$FLEET_DIR/truth_view.txt" "$FLEET_DIR/view.txt" >"$FLEET_DIR/view_diff.txt"
	[ ! -s "$FLEET_DIR/view_diff.txt" ]
}
if ! (wait_for 60 view_matches) 2>/dev/null; then
	view_matches || true
	while IFS='|' read -r t head cnt; do
		evidence "$t"
		ff_violation "$t: the coordinator's view ($(grep "^$t|" "$FLEET_DIR/view.txt" | cut -d'|' -f2-)) is not its history (head '$head', $cnt applied), 60s after the rollout ended"
	done <"$FLEET_DIR/view_diff.txt"
	# Does a fresh Hello (the agents started again) put it right? Said, for the bug report.
	for a in $(cut -d'|' -f1 "$FLEET_DIR/view_diff.txt" | sed 's/_t[0-9]*$//' | sort -u); do
		fleet_stop "$a"
		ff_start_agent "$a"
	done
	if (wait_for 120 view_matches) 2>/dev/null; then
		fl_log "the agents' fresh Hellos put the coordinator's view right"
	else
		ff_violation "the coordinator's view is still not the tenants' history after their agents said Hello again: $(tr '\n' ' ' <"$FLEET_DIR/view_diff.txt")"
	fi
fi

# 6. the end the policy says (rollout status, while the coordinator runs)
fleet_rollout_json >"$FLEET_DIR/rollout.json"
budget_broken=$(jq --argjson cb "$CANARY_BUDGET" --argjson rr "$REST_RATE" '
	[.waves[] | if .index == 0 then (.tenants_failed > $cb)
		else (.tenants_failed > ($rr * .tenants_total)) end] | any' "$FLEET_DIR/rollout.json")
case $end_state:$budget_broken in
completed:false) ;;
halted:true) ;;
*) ff_violation "the rollout ended '$end_state' while a wave over its budget is '$budget_broken' (seed $seed): $(jq -c '[.waves[] | {name, state, tenants_total, tenants_failed, tenants_applied, tenants_skipped}]' "$FLEET_DIR/rollout.json")" ;;
esac

# 5. nothing unsigned ran: the rogue's tenants and the skewed agent's untouched
for i in 9001 9002 9003 9004; do
	if ! (wait_for 60 grep -q "^report assignment=$i .*outcome=refused" "$ROGUE_DIR/reports.log") 2>/dev/null; then
		ff_violation "rogue assignment $i was not refused: $(grep "assignment=$i " "$ROGUE_DIR/reports.log" 2>/dev/null | head -n 1)"
	fi
done
for t in rogue_t001 rogue_t002 rogue_t003 skewed_t001 skewed_t002 skewed_t003; do
	[ "$(psql -X -A -t -q -d "$t" -c "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")" = 0 ] ||
		ff_violation "$t holds tables though nobody signed work for it"
	checked=$((checked + 1))
done
if [ "$skew_ok" = 1 ]; then
	jq -r '.tenants[].tenant_id' "$FLEET_DIR/view.json" | grep -q '^skewed_' &&
		ff_violation "the coordinator took the tenants of an agent 10 minutes ahead"
	grep -q -i 'skew' "$FLEET_DIR/logs/coordinator.log" "$FLEET_DIR/logs/skewed.log" ||
		ff_violation "nobody said the skewed agent's clock was off"
fi

# 4. no report lost: each agent, stopped, has no report left in its journal (the coordinator
# acknowledged every one); the store, read with the coordinator stopped, has no assignment
# of the rollout still out.
for a in "${main_agents[@]}"; do
	fleet_stop "$a"
	left=$(grep -o '"msg":"stopped: [0-9]* reports left' "$FLEET_DIR/logs/$a.log" | tail -n 1 | grep -o '[0-9]*')
	[ "${left:-x}" = 0 ] || ff_violation "agent $a stopped with '${left:-?}' reports left in its journal"
done
fleet_stop coordinator
store=$FLEET_DIR/coordinator/store.db
q() { sqlite3 -readonly "$store" "$1"; }
out=$(q "SELECT count(*) FROM assignments WHERE rollout_id = '$FLEET_ROLLOUT' AND state = 1")
[ "$out" = 0 ] || ff_violation "$out assignments of $FLEET_ROLLOUT neither reported nor withdrawn: $(q "SELECT id, tenant_id, kind FROM assignments WHERE rollout_id = '$FLEET_ROLLOUT' AND state = 1 LIMIT 5")"
q "SELECT tenant_id FROM rollout_tenants WHERE rollout_id = '$FLEET_ROLLOUT' AND state IN (3, 5)" | sort >"$FLEET_DIR/coord_applied.txt"
while read -r t; do
	f=$(grep "^$t|" "$TRUTH" | cut -d'|' -f8)
	[ "$f" = 1 ] || ff_violation "$t: the coordinator calls it applied in $FLEET_ROLLOUT, but $MIG_C is not finished there"
done <"$FLEET_DIR/coord_applied.txt"
# and the other way: a tenant holding the target that the coordinator calls failed (a lost APPLIED)
q "SELECT tenant_id FROM rollout_tenants WHERE rollout_id = '$FLEET_ROLLOUT' AND state = 4" | sort >"$FLEET_DIR/coord_failed.txt"
n_failed=$(wc -l <"$FLEET_DIR/coord_failed.txt")
n_applied=$(wc -l <"$FLEET_DIR/coord_applied.txt")
if [ "$end_state" = completed ]; then
	pending=$(q "SELECT count(*) FROM rollout_tenants WHERE rollout_id = '$FLEET_ROLLOUT' AND state NOT IN (3, 4, 5)")
	[ "$pending" = 0 ] || ff_violation "$pending tenants of the completed $FLEET_ROLLOUT are neither applied nor failed"
fi

# What the chaos proxy did (it writes its counts when told to stop).
fleet_stop chaos-proxy
if [ -s "$CHAOS_STATS" ]; then
	for k in delayed reordered duplicated; do
		n=$(awk -v k="$k" '$1 == k { print $2 }' "$CHAOS_STATS")
		[ "${n:-0}" = 0 ] || FF_COUNT[message_$k]=$n
	done
else
	ff_violation "the chaos proxy left no counts (it died?)"
fi
[ "${FF_COUNT[message_duplicated]:-0}" -gt 0 ] && [ "${FF_COUNT[message_reordered]:-0}" -gt 0 ] ||
	fl_fail "the chaos proxy duplicated ${FF_COUNT[message_duplicated]:-0} and reordered ${FF_COUNT[message_reordered]:-0} messages: too few to count"

# ---- the table -----------------------------------------------------------------------------------
{
	echo
	echo "fault suite: seed $seed, rollout $FLEET_ROLLOUT ended $end_state in $((SECONDS - T0))s" \
		"($n_db databases + $n_schema schemas; $n_applied applied, $n_failed failed)"
	printf '  %-34s %s\n' "fault" "injected"
	for k in $(printf '%s\n' "${!FF_COUNT[@]}" | sort); do
		printf '  %-34s %s\n' "$k" "${FF_COUNT[$k]}"
	done
	printf '  %-34s %s\n' "network" "${FF_NS:+netns $FF_NS, netem: $FF_NETEM}${FF_NETNS_WHY:+cut SKIPPED: $FF_NETNS_WHY}"
	printf '  %-34s %s\n' "disk full" "${FF_TMPFS_WHY:+SKIPPED: $FF_TMPFS_WHY}${FF_TMPFS:+the coordinator $DISK_NOTE}"
	[ ${#not_done[@]} = 0 ] || printf '  %-34s %s\n' "NOT INJECTED (rollout over)" "${not_done[*]}"
	printf '  %-34s %s\n' "tenants checked" "$checked"
	printf '  %-34s %s\n' "violations" "$FF_VIOLATIONS"
} >&2
[ "$FF_VIOLATIONS" = 0 ] || {
	printf 'violations:\n%s' "$FF_VIOLATION_LOG" >&2
	keep=${FL_FAULT_ARTIFACTS:-$PWD/faults-seed-$seed}
	rm -rf -- "$keep"
	mkdir -p "$keep"
	cp -R "$FLEET_DIR/logs" "$FLEET_DIR"/*.txt "$FLEET_DIR"/*.json "$FLEET_DIR/evidence" "$keep/" 2>/dev/null || true
	cp "$FLEET_DIR/coordinator/store.db" "$keep/" 2>/dev/null || true
	printf '%s' "$FF_VIOLATION_LOG" >"$keep/violations.txt"
	echo "faults: logs, store and evidence kept in $keep" >&2
	exit 1
}
[ "${FF_COUNT[agent_kill]:-0}" -ge "$agent_kills" ] && [ "${FF_COUNT[coord_kill]:-0}" -ge "$coord_kills" ] ||
	fl_fail "fewer faults than promised: ${FF_COUNT[agent_kill]:-0} agent kills, ${FF_COUNT[coord_kill]:-0} coordinator kills (the rollout ended first: make it longer, FL_FAULT_SLEEP1/2)"
fleet_pass
