#!/usr/bin/env bash
# A throwaway PostgreSQL for tests, benchmarks and the quickstart.
#
#   pg-throwaway.sh run -- CMD [ARGS...]   fresh cluster, run CMD against it, remove it
#   pg-throwaway.sh start DIR              create a cluster in DIR, print its URL, leave it running
#   pg-throwaway.sh stop DIR               stop the cluster in DIR and delete DIR
#
# The server listens only on a unix socket inside its own directory (listen_addresses=''),
# so clusters never collide; the port number only names the socket. Settings trade
# durability for speed (fsync=off...): never point this at data you want to keep.
#
# `run` exports to CMD: DATABASE_URL, FL_PG_HOST, FL_PG_PORT, FL_PG_BINDIR, FL_PG_DATA,
# FL_PG_LOG, PGHOST, PGPORT, PGUSER=postgres, PGDATABASE=postgres, and puts the server's
# bindir first in PATH (psql, createdb, pg_dump of the server's own version).
#
# Cleanup invariant of `run`: whatever happens to CMD (exit, crash, signal) and to this
# script (exit, SIGINT/SIGTERM/SIGHUP), the server is stopped and the directory removed.
# Even a SIGKILL of this script (ctest kills timed-out tests that way) leaves nothing: a
# detached watchdog, outside our process tree, holds the read end of a pipe that only this
# script writes to; when the script is gone it reads EOF and cleans up whatever is left.
#
# As root, initdb/pg_ctl/postgres run as the `postgres` system user (runuser).
set -euo pipefail

prog=pg-throwaway
SELF=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)/$(basename -- "${BASH_SOURCE[0]}")
MARKER=.pg-throwaway

die() {
	echo "$prog: $*" >&2
	exit 1
}

usage() {
	cat >&2 <<EOF
usage: $prog run -- CMD [ARGS...]
       $prog start DIR
       $prog stop DIR
EOF
	exit 2
}

# The server binaries: pg_config's bindir when it has initdb (it may belong to a libpq-dev of
# another version), else the newest /usr/lib/postgresql/*/bin. PATH is not trusted.
find_bindir() {
	local d v best='' bestv=-1
	if command -v pg_config >/dev/null 2>&1; then
		d=$(pg_config --bindir 2>/dev/null || true)
		if [ -n "$d" ] && [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then
			echo "$d"
			return 0
		fi
	fi
	for d in /usr/lib/postgresql/*/bin; do
		if [ ! -x "$d/initdb" ] || [ ! -x "$d/pg_ctl" ]; then
			continue
		fi
		v=$(basename -- "$(dirname -- "$d")")
		v=${v%%.*}
		[[ $v =~ ^[0-9]+$ ]] || continue
		if [ "$v" -gt "$bestv" ]; then
			best=$d
			bestv=$v
		fi
	done
	[ -n "$best" ] || die "cannot find PostgreSQL server binaries (initdb): install postgresql"
	echo "$best"
}

# Run a server command as the cluster's owner: `postgres` when we are root, else ourselves.
# From / so that an unreadable cwd (root's home) does not trouble initdb or pg_ctl.
as_owner() {
	if [ "$(id -u)" -eq 0 ]; then
		(cd / && runuser -u postgres -- "$@")
	else
		(cd / && "$@")
	fi
}

check_owner() {
	[ "$(id -u)" -eq 0 ] || return 0
	id -u postgres >/dev/null 2>&1 || die "running as root needs a 'postgres' system user (install postgresql)"
	command -v runuser >/dev/null 2>&1 || die "running as root needs runuser (util-linux)"
}

# Give DIR to the cluster owner; fail if that user cannot reach it (e.g. under /root).
own_dir() {
	local dir=$1
	chmod 0755 "$dir"
	if [ "$(id -u)" -eq 0 ]; then
		chown postgres: "$dir"
		runuser -u postgres -- test -w "$dir" 2>/dev/null
	fi
}

# A unix socket path is at most 107 bytes: DIR/.s.PGSQL.NNNNN must fit.
socket_dir_ok() {
	[ $((${#1} + 15)) -le 107 ]
}

urlencode() {
	local LC_ALL=C s=$1 out='' c i
	for ((i = 0; i < ${#s}; i++)); do
		c=${s:i:1}
		case $c in
		[A-Za-z0-9/._~-]) out+=$c ;;
		*) out+=$(printf '%%%02X' "'$c") ;;
		esac
	done
	printf '%s' "$out"
}

db_url() { # DIR PORT
	printf 'postgresql://postgres@/postgres?host=%s&port=%s' "$(urlencode "$1")" "$2"
}

# initdb into DIR/data with test-only settings; the socket lives in DIR itself.
init_cluster() { # DIR BINDIR
	local dir=$1 bindir=$2 out
	if ! out=$(as_owner "$bindir/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 \
		--no-locale --no-sync 2>&1); then
		printf '%s\n' "$out" >&2
		die "initdb failed in '$dir/data'"
	fi
	cat >>"$dir/data/postgresql.conf" <<EOF

# --- pg-throwaway: test-only settings, unsafe for real data ---
listen_addresses = ''
unix_socket_directories = '$dir'
unix_socket_permissions = 0777
max_connections = 300
shared_buffers = 32MB
fsync = off
synchronous_commit = off
full_page_writes = off
password_encryption = 'scram-sha-256'
autovacuum = off
jit = off
lc_messages = 'C'
timezone = 'UTC'
log_min_messages = warning
EOF
	cat >"$dir/data/pg_hba.conf" <<EOF
# pg-throwaway: unix socket only; the superuser needs no password, every other role does.
local all postgres trust
local all all scram-sha-256
EOF
}

# Start the server on a random port in 20000-60000 (retrying: the port also keys System V
# resources), wait until it accepts connections. Sets PORT.
start_server() { # DIR BINDIR
	local dir=$1 bindir=$2 attempt
	PORT=''
	for attempt in 1 2 3 4 5; do
		local p=$((20000 + (RANDOM * 32768 + RANDOM) % 40001))
		: >"$dir/server.log"
		[ "$(id -u)" -ne 0 ] || chown postgres: "$dir/server.log"
		if as_owner "$bindir/pg_ctl" start -w -t 60 -D "$dir/data" -l "$dir/server.log" \
			-o "-p $p" >"$dir/pg_ctl.out" 2>&1 && as_owner "$bindir/pg_isready" -q -h "$dir" -p "$p" -t 10; then
			PORT=$p
			return 0
		fi
		# A half-started server must not linger before the next attempt.
		as_owner "$bindir/pg_ctl" stop -m immediate -w -D "$dir/data" >/dev/null 2>&1 || true
		[ "$attempt" -lt 5 ] && echo "$prog: server start on port $p failed, retrying" >&2
	done
	{
		echo "$prog: --- pg_ctl output ---"
		cat "$dir/pg_ctl.out" 2>/dev/null || true
		echo "$prog: --- server log ($dir/server.log) ---"
		cat "$dir/server.log" 2>/dev/null || true
	} >&2
	return 1
}

# Stop the server in DIR (if any) and delete DIR. Idempotent; safe on a half-made DIR.
destroy() { # DIR BINDIR MODE
	local dir=$1 bindir=$2 mode=${3:-immediate}
	[ -n "$dir" ] && [ -d "$dir" ] || return 0
	if [ -f "$dir/data/postmaster.pid" ]; then
		as_owner "$bindir/pg_ctl" stop -m "$mode" -w -t 60 -D "$dir/data" >/dev/null 2>&1 ||
			as_owner "$bindir/pg_ctl" stop -m immediate -w -t 60 -D "$dir/data" >/dev/null 2>&1 || true
	fi
	rm -rf -- "$dir"
}

# ---------------------------------------------------------------------------------------
# run

RUN_DIR=''
RUN_BINDIR=''
CHILD=''
CHILD_GROUP=0
WATCH_FD=''

run_cleanup() {
	local rc=$?
	trap - EXIT
	trap '' INT TERM HUP
	set +e
	destroy "$RUN_DIR" "$RUN_BINDIR" immediate
	RUN_DIR=''
	exit "$rc"
}

# End CMD: SIGTERM to its whole process group when it has its own (see cmd_run), else to
# CMD alone; SIGKILL whatever is still there after 5 s.
end_cmd() { # PID OWNGROUP
	local target=$1 i
	[ "$2" = 1 ] && target=-$1
	kill -TERM -- "$target" 2>/dev/null || return 0
	for ((i = 0; i < 50; i++)); do
		kill -0 -- "$target" 2>/dev/null || return 0
		sleep 0.1
	done
	kill -KILL -- "$target" 2>/dev/null || true
}

# Forward the signal to CMD as SIGTERM, then clean up (EXIT trap) with status 128+signo.
run_signal() { # SIGNO
	local rc=$((128 + $1))
	trap '' INT TERM HUP
	set +e
	if [ -n "$CHILD" ]; then
		end_cmd "$CHILD" "$CHILD_GROUP"
		wait "$CHILD" 2>/dev/null
	fi
	exit "$rc"
}

# The detached watchdog: wait for EOF on stdin (our parent run is gone), then end what CMD
# left in its process group, stop the server and delete the directory.
watchdog() { # DIR BINDIR
	local pgid=''
	trap '' INT TERM HUP
	cat >/dev/null || true
	[ -f "$1/cmd.pgid" ] && pgid=$(cat "$1/cmd.pgid" 2>/dev/null || true)
	if [[ $pgid =~ ^[0-9]+$ ]]; then
		kill -KILL -- "-$pgid" 2>/dev/null || true
	fi
	destroy "$1" "$2" immediate
}

pick_base() {
	local base=${TMPDIR:-/tmp}
	base=${base%/}
	# The socket path must stay short, and the postgres user must reach it when we are root.
	if ! socket_dir_ok "$base/flpg.XXXXXXXXXX" || [ ! -d "$base" ] || [ ! -w "$base" ]; then
		base=/tmp
	fi
	echo "$base"
}

cmd_run() {
	[ $# -ge 1 ] && [ "$1" = -- ] && shift
	[ $# -ge 1 ] || usage
	check_owner
	RUN_BINDIR=$(find_bindir)

	trap run_cleanup EXIT
	trap 'run_signal 2' INT
	trap 'run_signal 15' TERM
	trap 'run_signal 1' HUP

	local base
	base=$(pick_base)
	RUN_DIR=$(mktemp -d "$base/flpg.XXXXXXXXXX") || die "cannot create a temp dir in '$base'"
	if ! own_dir "$RUN_DIR"; then
		rm -rf -- "$RUN_DIR"
		RUN_DIR=$(mktemp -d /tmp/flpg.XXXXXXXXXX) || die "cannot create a temp dir in '/tmp'"
		own_dir "$RUN_DIR" || die "user postgres cannot write to '$RUN_DIR'"
	fi
	: >"$RUN_DIR/$MARKER"

	# Watchdog: detached (own session, parent init), so a kill of our process tree misses it.
	exec {WATCH_FD}> >(exec setsid -f "$SELF" __watchdog "$RUN_DIR" "$RUN_BINDIR" \
		>/dev/null 2>&1)

	init_cluster "$RUN_DIR" "$RUN_BINDIR" {WATCH_FD}>&-
	start_server "$RUN_DIR" "$RUN_BINDIR" {WATCH_FD}>&- || die "cannot start PostgreSQL in '$RUN_DIR'"

	export DATABASE_URL FL_PG_HOST FL_PG_PORT FL_PG_BINDIR FL_PG_DATA FL_PG_LOG
	DATABASE_URL=$(db_url "$RUN_DIR" "$PORT")
	FL_PG_HOST=$RUN_DIR
	FL_PG_PORT=$PORT
	FL_PG_BINDIR=$RUN_BINDIR
	FL_PG_DATA=$RUN_DIR/data
	FL_PG_LOG=$RUN_DIR/server.log
	unset PGHOSTADDR PGSERVICE PGSERVICEFILE PGPASSWORD PGSSLMODE PGREQUIRESSL PGGSSENCMODE \
		PGOPTIONS PGTARGETSESSIONATTRS PGDATA PGCLUSTER
	export PGHOST=$RUN_DIR PGPORT=$PORT PGUSER=postgres PGDATABASE=postgres
	export PATH="$RUN_BINDIR:$PATH"

	# In the background so that our traps run while CMD does; SIGINT/SIGQUIT set back to
	# default (bash ignores them in background jobs), stdin passed through explicitly.
	# Without a terminal, CMD gets a session (process group) of its own, so that whatever
	# it starts in the background can be ended with it. On a terminal it stays in ours, so
	# that interactive programs keep job control and Ctrl-C.
	if [ -t 0 ]; then
		(
			trap - INT QUIT TERM HUP
			exec "$@"
		) <&0 {WATCH_FD}>&- &
		CHILD=$!
		CHILD_GROUP=0
	else
		(
			trap - INT QUIT TERM HUP
			exec setsid -w "$@"
		) <&0 {WATCH_FD}>&- &
		CHILD=$!
		CHILD_GROUP=1
		echo "$CHILD" >"$RUN_DIR/cmd.pgid"
	fi
	local rc=0
	wait "$CHILD" || rc=$?
	# Leftovers of CMD (background daemons a test forgot) must not outlive the server.
	[ "$CHILD_GROUP" = 0 ] || end_cmd "$CHILD" 1
	CHILD=''
	exit "$rc"
}

# ---------------------------------------------------------------------------------------
# start / stop

cmd_start() {
	[ $# -eq 1 ] || usage
	check_owner
	local dir=$1 bindir
	bindir=$(find_bindir)
	if [ -e "$dir" ]; then
		[ -d "$dir" ] || die "'$dir' exists and is not a directory"
		[ -z "$(ls -A -- "$dir")" ] || die "'$dir' is not empty"
	else
		mkdir -p -- "$dir" || die "cannot create '$dir'"
	fi
	dir=$(cd -- "$dir" && pwd)
	socket_dir_ok "$dir" || die "'$dir' is too long for a unix socket path (max 92 bytes)"
	own_dir "$dir" || die "user postgres cannot write to '$dir'"
	: >"$dir/$MARKER"
	init_cluster "$dir" "$bindir"
	if ! start_server "$dir" "$bindir"; then
		destroy "$dir" "$bindir" immediate
		die "cannot start PostgreSQL in '$dir'"
	fi
	local url
	url=$(db_url "$dir" "$PORT")
	cat >"$dir/env" <<EOF
export DATABASE_URL='$url'
export FL_PG_HOST='$dir' FL_PG_PORT=$PORT FL_PG_BINDIR='$bindir'
export FL_PG_DATA='$dir/data' FL_PG_LOG='$dir/server.log'
export PGHOST='$dir' PGPORT=$PORT PGUSER=postgres PGDATABASE=postgres
EOF
	echo "$url"
}

cmd_stop() {
	[ $# -eq 1 ] || usage
	local dir=$1
	[ -d "$dir" ] || die "no cluster in '$dir': not a directory"
	[ -f "$dir/$MARKER" ] || die "'$dir' was not made by '$prog start': refusing to delete it"
	check_owner
	destroy "$(cd -- "$dir" && pwd)" "$(find_bindir)" fast
}

[ $# -ge 1 ] || usage
verb=$1
shift
case $verb in
run) cmd_run "$@" ;;
start) cmd_start "$@" ;;
stop) cmd_stop "$@" ;;
__watchdog) watchdog "$@" ;;
-h | --help | help) usage ;;
*) die "unknown command '$verb' (run, start or stop)" ;;
esac
