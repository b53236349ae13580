# shellcheck shell=bash
# A throwaway fleet: one flotilla-coordinator and a few flotilla-agents on the
# throwaway PostgreSQL that deploy/pg-throwaway.sh runs, every key made on the
# fly, each agent owning tenants it discovers on that server. The quickstart
# (deploy/quickstart.sh) and the fleet tests (tests/integration/fleet/) share it.
#
#   . deploy/fleet-demo/fleet.sh
#   fleet_init DIR [PROJECT]          keys and folders in DIR (which must exist)
#   fleet_add_agent NAME N CANARIES [k=v,...]
#                                     N tenant databases NAME_t001.. (the first
#                                     CANARIES labelled ring=canary) and the agent's config
#   fleet_add_agent_schemas NAME DB N CANARIES [k=v,...]
#                                     the same with N schemas of one database DB
#   fleet_start_coordinator           start it and wait until it answers
#   fleet_start_agent NAME            start it (fleet_wait_tenants: until it reported)
#   fleet_stop NAME [SIGNAL]          stop "coordinator" or an agent (default SIGTERM);
#                                     FLEET_EXIT[NAME] is then its exit status
#   fleet_cli ARGS...                 flotilla with this fleet's coordinator and operator key
#   fleet_release DIR SEQUENCE [NAME] build, sign and push a release: FLEET_RELEASE_FILE,
#                                     FLEET_RELEASE_HASH
#   fleet_wait_tenants N [SECONDS]    until the coordinator knows N tenants
#   fleet_cleanup                     stop everything; call it when the caller exits
#
# The coordinator listens for agents on FLEET_AGENT_URL (fleet_init sets an ipc:// one);
# agents dial FLEET_AGENT_DIAL_URL when set (a proxy in between, say), else that.
#
# Binaries: $FLOTILLA, $FL_COORDINATOR_BIN, $FL_AGENT_BIN, else found under $BUILD (default
# ./build). Needs the variables pg-throwaway.sh exports (PGHOST, PGPORT, PGUSER).
# Logs: DIR/logs/<name>.log (agents log JSON lines, with times to the millisecond).
#
# Cleanup: fleet_cleanup stops every daemon this library started. Should the caller die
# without running it (SIGKILL), a watchdog outside its process tree, holding the read end of
# a pipe only the caller writes to, sees the pipe close and kills what is left.

FLEET_SELF_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
FLEET_DIR=''
FLEET_PROJECT=''
FLEET_AGENTS=()
declare -A FLEET_PID=()
declare -A FLEET_EXIT=() # how each daemon ended when fleet_stop stopped it
FLEET_POLL_HOLD=${FLEET_POLL_HOLD:-5s}
FLEET_OFFLINE_AFTER=${FLEET_OFFLINE_AFTER:-15s}
FLEET_MAX_PARALLEL=${FLEET_MAX_PARALLEL:-8}
FLEET_RELEASE_FILE=''
FLEET_RELEASE_HASH=''

_fleet_die() {
	echo "fleet: $*" >&2
	exit 1
}

_fleet_bin() { # VAR NAME: $VAR, else the binary NAME under $BUILD
	local var=$1 name=$2 path
	path=${!var:-}
	if [ -z "$path" ]; then
		path=$(find "${BUILD:-$FLEET_SELF_DIR/../../build}" -type f -name "$name" -perm -u+x \
			2>/dev/null | awk 'NR == 1')
	fi
	[ -n "$path" ] && [ -x "$path" ] || _fleet_die "no $name binary (set $var or BUILD)"
	printf -v "$var" '%s' "$path"
	export "${var?}"
}

_fleet_pub() { # the public key line of a secret key file
	sed -n 's/^public: //p' "$1"
}

_fleet_keygen() { # KIND NAME
	"$FLOTILLA" keygen --kind "$1" --out "$FLEET_DIR/keys/$2.key" >/dev/null ||
		_fleet_die "keygen $1 $2 failed"
}

# _fleet_render TEMPLATE OUT NAME=VALUE...: replace each @NAME@.
_fleet_render() {
	local tpl=$1 out=$2 text kv
	shift 2
	text=$(cat "$tpl")
	for kv in "$@"; do
		text=${text//@${kv%%=*}@/${kv#*=}}
	done
	case $text in
	*@[A-Z_]*@*) _fleet_die "$tpl: a field is left unfilled" ;;
	esac
	(umask 077 && printf '%s\n' "$text" >"$out")
}

_fleet_watchdog() {
	local fifo=$FLEET_DIR/.watchdog
	mkfifo -m 600 "$fifo"
	# shellcheck disable=SC2016
	setsid bash -c '
		exec 0<"$2"
		while read -r _; do :; done
		while read -r pid; do kill -KILL "$pid" 2>/dev/null; done <"$1"
	' fleet-watchdog "$FLEET_DIR/pids" "$fifo" </dev/null >/dev/null 2>&1 &
	exec {FLEET_WATCHDOG_FD}>"$fifo"
	rm -f -- "$fifo"
}

fleet_init() {
	FLEET_DIR=$(cd -- "$1" && pwd)
	FLEET_PROJECT=${2:-acme}
	_fleet_bin FLOTILLA flotilla
	_fleet_bin FL_COORDINATOR_BIN flotilla-coordinator
	_fleet_bin FL_AGENT_BIN flotilla-agent
	mkdir -p "$FLEET_DIR/keys" "$FLEET_DIR/logs" "$FLEET_DIR/coordinator" "$FLEET_DIR/releases"
	chmod 700 "$FLEET_DIR/keys"
	: >"$FLEET_DIR/pids"
	_fleet_watchdog
	_fleet_keygen coordinator coordinator
	_fleet_keygen operator operator
	_fleet_keygen operator viewer
	_fleet_keygen release release
	FLEET_COORDINATOR_PUB=$(_fleet_pub "$FLEET_DIR/keys/coordinator.key")
	FLEET_RELEASE_PUB=$(_fleet_pub "$FLEET_DIR/keys/release.key")
	FLEET_RELEASE_KEY=$FLEET_DIR/keys/release.key
	FLEET_OPERATOR_KEY=$FLEET_DIR/keys/operator.key
	FLEET_VIEWER_KEY=$FLEET_DIR/keys/viewer.key
	FLEET_AGENT_URL=ipc://$FLEET_DIR/agents.ipc
	FLEET_ADMIN_URL=ipc://$FLEET_DIR/admin.ipc
}

# _fleet_labels_yaml k=v,k=v: {k: v, k: v}
_fleet_labels_yaml() {
	local IFS=, kv out=''
	for kv in $1; do
		[ -n "$kv" ] || continue
		out+="${out:+, }${kv%%=*}: \"${kv#*=}\""
	done
	printf '{%s}' "$out"
}

_fleet_agent_config() { # NAME KIND DISCOVERY-YAML
	local name=$1
	mkdir -p "$FLEET_DIR/$name"
	chmod 700 "$FLEET_DIR/$name"
	_fleet_keygen agent "$name"
	_fleet_render "$FLEET_SELF_DIR/agent.yaml.in" "$FLEET_DIR/$name/agent.yaml" \
		"DIR=$FLEET_DIR" "NAME=$name" "PROJECT=$FLEET_PROJECT" \
		"AGENT_URL=${FLEET_AGENT_DIAL_URL:-$FLEET_AGENT_URL}" \
		"COORDINATOR_PUB=$FLEET_COORDINATOR_PUB" "RELEASE_PUB=$FLEET_RELEASE_PUB" \
		"MAX_PARALLEL=$FLEET_MAX_PARALLEL" "PGHOST=$PGHOST" "PGPORT=$PGPORT" \
		"PGUSER=${PGUSER:-postgres}" "KIND=$2" "DISCOVERY=$3"
	FLEET_AGENTS+=("$name")
}

_fleet_discovery() { # NAME N CANARIES LABELS: the like/id/labels/rules lines
	local name=$1 n=$2 canaries=$3 labels=$4 i
	printf "    like: '%s_t%%'\n    id: \"{name}\"\n    labels: %s\n    rules:\n" \
		"$name" "$(_fleet_labels_yaml "agent=$name${labels:+,$labels}")"
	for ((i = 1; i <= canaries && i <= n; i++)); do
		printf "      - {match: '%s_t%03d', labels: {ring: canary}}\n" "$name" "$i"
	done
	[ "$canaries" -gt 0 ] || printf "      []\n"
}

fleet_add_agent() {
	local name=$1 n=$2 canaries=$3 labels=${4:-} i
	for ((i = 1; i <= n; i++)); do
		printf 'CREATE DATABASE "%s_t%03d";\n' "$name" "$i"
	done | psql -X -q -v ON_ERROR_STOP=1 -d postgres >/dev/null ||
		_fleet_die "cannot create the tenant databases of $name"
	_fleet_agent_config "$name" databases "$(_fleet_discovery "$name" "$n" "$canaries" "$labels")"
}

fleet_add_agent_schemas() {
	local name=$1 db=$2 n=$3 canaries=$4 labels=${5:-} i disc
	createdb -- "$db" || _fleet_die "cannot create database $db"
	for ((i = 1; i <= n; i++)); do
		printf 'CREATE SCHEMA "%s_t%03d";\n' "$name" "$i"
	done | psql -X -q -v ON_ERROR_STOP=1 -d "$db" >/dev/null ||
		_fleet_die "cannot create the tenant schemas of $name"
	disc=$(printf '    database: %s\n' "$db"; _fleet_discovery "$name" "$n" "$canaries" "$labels")
	_fleet_agent_config "$name" schemas "$disc"
}

_fleet_spawn() { # NAME CMD...: start a daemon, its output to DIR/logs/NAME.log
	local name=$1
	shift
	"$@" </dev/null >>"$FLEET_DIR/logs/$name.log" 2>&1 {FLEET_WATCHDOG_FD}>&- &
	FLEET_PID[$name]=$!
	echo "$!" >>"$FLEET_DIR/pids"
}

fleet_start_coordinator() {
	local agents='' name pub
	for name in "${FLEET_AGENTS[@]}"; do
		pub=$(_fleet_pub "$FLEET_DIR/keys/$name.key")
		agents+="  - {name: $name, public_key: $pub, labels: {agent: $name}}"$'\n'
	done
	[ -n "$agents" ] || agents='  []'
	_fleet_render "$FLEET_SELF_DIR/coordinator.yaml.in" "$FLEET_DIR/coordinator/coordinator.yaml" \
		"DIR=$FLEET_DIR" "PROJECT=$FLEET_PROJECT" "AGENT_URL=$FLEET_AGENT_URL" \
		"ADMIN_URL=$FLEET_ADMIN_URL" "RELEASE_PUB=$FLEET_RELEASE_PUB" \
		"POLL_HOLD=$FLEET_POLL_HOLD" "OFFLINE_AFTER=$FLEET_OFFLINE_AFTER" \
		"OPERATOR_PUB=$(_fleet_pub "$FLEET_OPERATOR_KEY")" \
		"VIEWER_PUB=$(_fleet_pub "$FLEET_VIEWER_KEY")" "AGENTS=${agents%$'\n'}"
	# FLEET_COORDINATOR_EXTRA: more config lines, as YAML (tests: http_listen, webhooks)
	[ -z "${FLEET_COORDINATOR_EXTRA:-}" ] ||
		printf '%s\n' "$FLEET_COORDINATOR_EXTRA" >>"$FLEET_DIR/coordinator/coordinator.yaml"
	_fleet_spawn coordinator "$FL_COORDINATOR_BIN" --config "$FLEET_DIR/coordinator/coordinator.yaml"
	_fleet_wait 30 fleet_cli agents list --timeout 2s ||
		_fleet_die "the coordinator did not answer within 30s; its log:
$(tail -n 20 "$FLEET_DIR/logs/coordinator.log")"
}

fleet_start_agent() {
	_fleet_spawn "$1" "$FL_AGENT_BIN" --config "$FLEET_DIR/$1/agent.yaml"
}

# fleet_running NAME: whether the daemon is alive.
fleet_running() {
	local pid=${FLEET_PID[$1]:-}
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

fleet_stop() {
	local name=$1 sig=${2:-TERM} pid i
	pid=${FLEET_PID[$name]:-}
	[ -n "$pid" ] || return 0
	kill -"$sig" "$pid" 2>/dev/null || true
	for ((i = 0; i < 200; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	if kill -0 "$pid" 2>/dev/null; then
		echo "fleet: $name did not stop within 10s of SIG$sig; killing it" >&2
		kill -KILL "$pid" 2>/dev/null || true
	fi
	FLEET_EXIT[$name]=0
	wait "$pid" 2>/dev/null || FLEET_EXIT[$name]=$?
	unset "FLEET_PID[$name]"
}

fleet_cleanup() {
	local name
	for name in "${FLEET_AGENTS[@]}"; do
		fleet_stop "$name"
	done
	fleet_stop coordinator
	if [ -n "${FLEET_WATCHDOG_FD:-}" ]; then
		exec {FLEET_WATCHDOG_FD}>&-
		FLEET_WATCHDOG_FD=''
	fi
}

fleet_cli() {
	FLOTILLA_COORDINATOR=$FLEET_ADMIN_URL FLOTILLA_COORDINATOR_KEY=$FLEET_COORDINATOR_PUB \
		FLOTILLA_KEY=$FLEET_OPERATOR_KEY "$FLOTILLA" "$@"
}

fleet_release() {
	local dir=$1 seq=$2 name=${3:-v$2} file out
	file=$FLEET_DIR/releases/$name.release
	out=$("$FLOTILLA" release build --dir "$dir" --project "$FLEET_PROJECT" --sequence "$seq" \
		--out "$file") || _fleet_die "release build of $dir failed"
	FLEET_RELEASE_HASH=$(printf '%s\n' "$out" | sed -n 's/^hash: //p')
	"$FLOTILLA" release sign --key "$FLEET_RELEASE_KEY" "$file" >/dev/null ||
		_fleet_die "release sign failed"
	fleet_cli release push "$file" --name "$name" >/dev/null || _fleet_die "release push failed"
	FLEET_RELEASE_FILE=$file
}

# fleet_tenant_count: the tenants the coordinator knows.
fleet_tenant_count() {
	fleet_cli fleet status --json --timeout 5s 2>/dev/null |
		grep -o '"total_count":[0-9]*' | awk 'NR == 1' | cut -d: -f2
}

_fleet_wait() { # SECONDS CMD...: poll until CMD succeeds
	local deadline=$((SECONDS + $1))
	shift
	until "$@" >/dev/null 2>&1; do
		[ "$SECONDS" -lt "$deadline" ] || return 1
		sleep 0.1
	done
}

_fleet_has_tenants() {
	local n
	n=$(fleet_tenant_count)
	[ -n "$n" ] && [ "$n" -ge "$1" ]
}

fleet_wait_tenants() {
	_fleet_wait "${2:-60}" _fleet_has_tenants "$1" ||
		_fleet_die "the coordinator knows $(fleet_tenant_count) tenants, not $1, after ${2:-60}s"
}
