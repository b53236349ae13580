# shellcheck shell=bash
# Helpers for tests/integration/test_agent*.sh: keys, a release, policies and orders, a rogue
# coordinator (tests/tools/rogue_coordinator.c) and flotilla-agent, all in one temp folder.
# Source it after lib.sh:
#
#   . "$(dirname "$0")/lib.sh"
#   . "$(dirname "$0")/agent_lib.sh"
#
# ctest sets FLOTILLA_AGENT and FL_ROGUE (the built binaries). Every process started here is
# ended at exit (lib.sh's trap ends background jobs; ag_stop_all ends them by pid first).

: "${FLOTILLA:?run under ctest (FLOTILLA, FLOTILLA_AGENT, FL_ROGUE)}"
: "${FLOTILLA_AGENT:?}" "${FL_ROGUE:?}"

AG=$(fl_tmpdir)          # everything of this test
AG_ROGUE_DIR=$AG/rogue   # the rogue coordinator's commands and logs
AG_STATE=$AG/state       # the agent's state_dir
AG_LOG=$AG/agent.log     # the agent's stderr
AG_PID=''
AG_ROGUE_PID=''
mkdir -p "$AG_ROGUE_DIR" "$AG/migrations"
chmod 700 "$AG"

ag_stop_all() {
	[ -z "$AG_PID" ] || kill -KILL "$AG_PID" 2>/dev/null || true
	[ -z "$AG_ROGUE_PID" ] || kill -TERM "$AG_ROGUE_PID" 2>/dev/null || true
}
fl_on_exit ag_stop_all
# on failure, what the agent and the rogue said (rc is _fl_exit's)
# shellcheck disable=SC2016
fl_on_exit '[ "${rc:-0}" = 0 ] || { echo "--- agent log (tail) ---"; tail -n 80 "$AG_LOG"; echo "--- rogue ---"; tail -n 20 "$AG/rogue.log"; } >&2 2>/dev/null'

# ag_pub KEYFILE: its public key.
ag_pub() {
	sed -n 's/^public: //p' "$1"
}

# Keys: the coordinator's, the agent's, a trusted release key and an untrusted one.
ag_keys() {
	local k
	for k in coordinator:coord agent:agent release:release release:evil; do
		"$FLOTILLA" keygen --kind "${k%%:*}" --out "$AG/${k#*:}.key" >/dev/null
	done
}

# ag_migration ID SQL [DOWN]: a migration folder in $AG/migrations.
ag_migration() {
	mkdir -p "$AG/migrations/$1"
	printf '%s\n' "$2" >"$AG/migrations/$1/migration.sql"
	[ $# -lt 3 ] || printf '%s\n' "$3" >"$AG/migrations/$1/down.sql"
}

# ag_release OUT PROJECT SEQUENCE [KEY]: build and sign a release of $AG/migrations; its hash
# in $AG_HASH.
AG_HASH=''
ag_release() {
	AG_HASH=$("$FLOTILLA" release build --dir "$AG/migrations" --project "$2" --sequence "$3" \
		--out "$1" --json | sed -n 's/.*"hash":"\([0-9a-f]*\)".*/\1/p')
	[ -n "$AG_HASH" ] || fl_fail "release build printed no hash"
	"$FLOTILLA" release sign --key "${4:-$AG/release.key}" "$1" >/dev/null
}

# ag_policy NAME YAML: a policy file $AG/NAME.yaml.
ag_policy() {
	printf '%s\n' "$2" >"$AG/$1.yaml"
}

# ag_order OUT RELEASE POLICY TARGET [rogue order options...]: a signed rollout order.
ag_order() {
	local out=$1 rel=$2 pol=$3 target=$4
	shift 4
	"$FL_ROGUE" order --release "$rel" --policy "$AG/$pol.yaml" --target "$target" \
		--key "$AG/release.key" --out "$out" "$@" >/dev/null
}

# ag_config [EXTRA YAML]: $AG/agent.yaml for the throwaway server (static tenants and/or
# discovery come in EXTRA), pinning the coordinator key and trusting release.key.
ag_config() {
	cat >"$AG/agent.yaml" <<EOF
key_file: $AG/agent.key
coordinator_url: $(cat "$AG_ROGUE_DIR/url" 2>/dev/null || echo tcp://127.0.0.1:1)
coordinator_public_keys: [${AG_PINNED:-$(ag_pub "$AG/coord.key")}]
trusted_release_keys: [$(ag_pub "$AG/release.key")]
peers_state_file: $AG/peers.seq
project_id: acme-app
agent_name: test-agent
state_dir: $AG_STATE
max_parallel: 4
poll:
  wait: 1s
  reconnect_max: 1s
  request_timeout: 10s
log:
  level: debug
databases:
  - name: main
    host: $FL_PG_HOST
    port: $FL_PG_PORT
    user: ${PGUSER:-postgres}
${1:-}
EOF
	chmod 600 "$AG/agent.yaml"
}

# ag_rogue_start: the rogue coordinator, for the agent's key; waits for its URL.
ag_rogue_start() {
	rm -f "$AG_ROGUE_DIR/url"
	"$FL_ROGUE" serve --listen tcp://127.0.0.1:0 --key "$AG/coord.key" \
		--agent "$(ag_pub "$AG/agent.key")" --dir "$AG_ROGUE_DIR" \
		2>>"$AG/rogue.log" &
	AG_ROGUE_PID=$!
	wait_for 10 test -s "$AG_ROGUE_DIR/url"
}

ag_rogue_stop() {
	kill -TERM "$AG_ROGUE_PID" 2>/dev/null || true
	fl_wait_exit "$AG_ROGUE_PID" 120 "the rogue coordinator"
	AG_ROGUE_PID=''
}

# ag_cmd LINE: a command for the rogue coordinator.
ag_cmd() {
	printf '%s\n' "$*" >>"$AG_ROGUE_DIR/commands"
}

# ag_start: flotilla-agent on $AG/agent.yaml, in the background; waits for its Hello.
ag_start() {
	local hellos
	hellos=$(grep -c '^hello ' "$AG_ROGUE_DIR/hellos.log" 2>/dev/null || true)
	"$FLOTILLA_AGENT" --config "$AG/agent.yaml" 2>>"$AG_LOG" &
	AG_PID=$!
	wait_for 30 "[ \$(grep -c '^hello ' '$AG_ROGUE_DIR/hellos.log' 2>/dev/null || echo 0) -gt ${hellos:-0} ]" ||
		fl_fail "no hello from the agent: $(tail -n 20 "$AG_LOG")"
}

# ag_stop [SIGNAL]: stop the agent (SIGTERM by default) and wait for it; its status in $AG_RC.
AG_RC=0
ag_stop() {
	kill -"${1:-TERM}" "$AG_PID" 2>/dev/null || true
	fl_wait_exit "$AG_PID" 120 "the agent"
	AG_RC=$FL_RC
	AG_PID=''
}

# ag_report ID: wait for the report of assignment ID and print its line.
ag_report() {
	wait_for "${2:-60}" grep -q "^report assignment=$1 " "$AG_ROGUE_DIR/reports.log" ||
		fl_fail "no report for assignment $1: $(tail -n 30 "$AG_LOG")"
	grep "^report assignment=$1 " "$AG_ROGUE_DIR/reports.log" | tail -n 1
}

# ag_field LINE KEY: the value of KEY=... in a report or hello line (message: the rest).
ag_field() {
	case $2 in
	message | error) printf '%s\n' "${1#* $2=}" ;;
	*) printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n 1 ;;
	esac
}

# ag_reports ID: how many reports for assignment ID arrived.
ag_reports() {
	grep -c "^report assignment=$1 " "$AG_ROGUE_DIR/reports.log" 2>/dev/null || true
}

# ag_tenant_db NAME: create database NAME, print its URL.
ag_tenant_db() {
	fl_newdb "$1"
}

# ag_applied URL: the migrations recorded applied in URL's _prisma_migrations ("" if none).
ag_applied() {
	fl_psql "$1" "SELECT coalesce(string_agg(migration_name, ',' ORDER BY started_at), '')
		FROM _prisma_migrations WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL" \
		2>/dev/null || true
}

# ag_has_table URL TABLE: "t" or "f".
ag_has_table() {
	fl_psql "$1" "SELECT to_regclass('$2') IS NOT NULL"
}
