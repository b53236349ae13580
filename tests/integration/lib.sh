# shellcheck shell=bash
# Helpers for tests/integration/test_*.sh. Source it first thing:
#
#   . "$(dirname "$0")/lib.sh"
#
# Each test script runs under `deploy/pg-throwaway.sh run --` (see tests/CMakeLists.txt), so
# DATABASE_URL, PGHOST, PGPORT, PGUSER, PGDATABASE, FL_PG_HOST, FL_PG_PORT, FL_PG_BINDIR,
# FL_PG_DATA and FL_PG_LOG point at a private server; ctest also sets FLOTILLA (the built
# binary), FL_TEST_DATA and FL_SOURCE_DIR.
#
# Sourcing turns on `set -euo pipefail` and installs an EXIT trap that ends the script's
# background jobs and removes every fl_tmpdir. Do not replace that trap: register extra
# cleanup with fl_on_exit. Assertions print file:line of the failing call and exit 1.
# Never sleep a fixed time to wait for something: use wait_for.

set -euo pipefail

FL_SOURCE_DIR=${FL_SOURCE_DIR:-$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd)}
FL_TEST_DATA=${FL_TEST_DATA:-$FL_SOURCE_DIR/tests/data}
FL_PG_THROWAWAY=$FL_SOURCE_DIR/deploy/pg-throwaway.sh
export FL_SOURCE_DIR FL_TEST_DATA FL_PG_THROWAWAY

[ -n "${DATABASE_URL:-}" ] || {
	echo "lib.sh: DATABASE_URL is not set: run under deploy/pg-throwaway.sh run --" >&2
	exit 1
}

# All temp dirs live under one root, so that fl_tmpdir works inside $(...) too.
FL_TMP_ROOT=$(mktemp -d "${TMPDIR:-/tmp}/fltest.XXXXXXXX")
_fl_exit_hooks=()

_fl_exit() {
	local rc=$? h pids
	set +e
	for ((h = ${#_fl_exit_hooks[@]} - 1; h >= 0; h--)); do
		eval "${_fl_exit_hooks[h]}"
	done
	pids=$(jobs -pr)
	if [ -n "$pids" ]; then
		# shellcheck disable=SC2086
		kill $pids 2>/dev/null
		wait 2>/dev/null
	fi
	rm -rf -- "$FL_TMP_ROOT"
	exit "$rc"
}
trap _fl_exit EXIT

# fl_on_exit 'shell code': run at exit (last registered runs first), before temp dirs go.
fl_on_exit() {
	_fl_exit_hooks+=("$1")
}

# fl_tmpdir: print the path of a new empty directory, removed when the script exits.
fl_tmpdir() {
	mktemp -d "$FL_TMP_ROOT/d.XXXXXX"
}

# file:line of the innermost caller outside this file.
_fl_where() {
	local i
	for ((i = 1; i < ${#BASH_SOURCE[@]}; i++)); do
		if [ "${BASH_SOURCE[i]}" != "${BASH_SOURCE[0]}" ]; then
			echo "${BASH_SOURCE[i]}:${BASH_LINENO[i - 1]}"
			return
		fi
	done
	echo "?:?"
}

# fl_fail MESSAGE...: print "file:line: FAIL: MESSAGE" and exit 1.
fl_fail() {
	echo "$(_fl_where): FAIL: $*" >&2
	exit 1
}

# fl_log MESSAGE...: a progress line on stderr (shown by ctest --output-on-failure).
fl_log() {
	echo "-- $*" >&2
}

_fl_urlenc() {
	local LC_ALL=C s=$1 out='' c i
	for ((i = 0; i < ${#s}; i++)); do
		c=${s:i:1}
		case $c in
		[A-Za-z0-9._~-]) out+=$c ;;
		*) out+=$(printf '%%%02X' "'$c") ;;
		esac
	done
	printf '%s' "$out"
}

# fl_url_db URL DBNAME: URL with its database swapped.
fl_url_db() {
	local url=$1 name=$2 head query=''
	head=${url%%\?*}
	[ "$head" = "$url" ] || query="?${url#*\?}"
	printf '%s/%s%s\n' "${head%/*}" "$(_fl_urlenc "$name")" "$query"
}

# fl_url_user URL USER [PASSWORD]: URL with its user (and password) swapped.
fl_url_user() {
	local url=$1 user scheme rest
	user=$(_fl_urlenc "$2")
	[ $# -lt 3 ] || user+=:$(_fl_urlenc "$3")
	scheme=${url%%://*}
	rest=${url#*://}
	rest=${rest#*@}
	printf '%s://%s@%s\n' "$scheme" "$user" "$rest"
}

# fl_newdb NAME: create database NAME on the throwaway server, print its URL.
fl_newdb() {
	local out
	out=$(createdb -- "$1" 2>&1) || fl_fail "cannot create database '$1': $out"
	fl_url_db "$DATABASE_URL" "$1"
}

# fl_psql URL SQL: run SQL, print unaligned tuples only; exits the test on any SQL error.
fl_psql() {
	psql -X -A -t -q -v ON_ERROR_STOP=1 -d "$1" -c "$2"
}

# fl_psql_bg URL APPNAME SQL: run SQL in a background psql session whose application_name is
# APPNAME, e.g. to hold a lock; end it with pg_terminate_backend (find it by APPNAME in
# pg_stat_activity). Output dropped; killed at exit if still running. Sets FL_BG_PID.
FL_BG_PID=''
fl_psql_bg() {
	PGAPPNAME=$2 psql -X -q -d "$1" -c "$3" </dev/null >/dev/null 2>&1 &
	# shellcheck disable=SC2034 # for the caller
	FL_BG_PID=$!
}

# fl_pass: the last line of a test that got to its end.
fl_pass() {
	echo "PASS $(basename -- "$0")"
}

# assert_eq ACTUAL EXPECTED [WHAT]
assert_eq() {
	[ "$1" = "$2" ] && return 0
	fl_fail "${3:-value}: expected '$2', got '$1'"
}

# assert_ne ACTUAL UNEXPECTED [WHAT]
assert_ne() {
	[ "$1" != "$2" ] && return 0
	fl_fail "${3:-value}: expected anything but '$2'"
}

# assert_contains HAYSTACK NEEDLE [WHAT]
assert_contains() {
	case $1 in
	*"$2"*) return 0 ;;
	esac
	fl_fail "${3:-output}: expected to contain '$2', got: $1"
}

# assert_not_contains HAYSTACK NEEDLE [WHAT]
assert_not_contains() {
	case $1 in
	*"$2"*) fl_fail "${3:-output}: expected not to contain '$2', got: $1" ;;
	esac
	return 0
}

# assert_exit CODE CMD [ARGS...]: run CMD (stdin from /dev/null), keep its stdout in $OUT
# and stderr in $ERR (trailing newlines dropped), check its exit status. CODE is a number
# or `nonzero`.
OUT=''
ERR=''
RC=0
assert_exit() {
	local want=$1 f
	shift
	f=$(mktemp "$FL_TMP_ROOT/exit.XXXXXX")
	if "$@" </dev/null >"$f.out" 2>"$f.err"; then RC=0; else RC=$?; fi
	OUT=$(cat "$f.out")
	ERR=$(cat "$f.err")
	rm -f -- "$f" "$f.out" "$f.err"
	if [ "$want" = nonzero ]; then
		[ "$RC" -ne 0 ] && return 0
	elif [ "$RC" -eq "$want" ]; then
		return 0
	fi
	fl_fail "$(printf 'exit status %s, expected %s: %s\n--- stdout ---\n%s\n--- stderr ---\n%s' \
		"$RC" "$want" "$*" "$OUT" "$ERR")"
}

# wait_for SECONDS CMD [ARGS...] | wait_for SECONDS 'SHELL EXPRESSION': poll until the command
# (or, given one argument, the eval'd expression) succeeds; fail after SECONDS (an integer).
# Polls quickly at first, then every 200 ms.
#   wait_for 10 test -s "$dir/pid"
#   wait_for 10 "[ \"\$(fl_psql '$url' 'SELECT count(*) FROM t')\" = 3 ]"
wait_for() {
	local timeout=$1 start now delay=0.01
	shift
	start=$(date +%s%N)
	while ! _fl_try "$@" >/dev/null 2>&1; do
		now=$(date +%s%N)
		[ $(((now - start) / 1000000)) -lt $((timeout * 1000)) ] ||
			fl_fail "timed out after ${timeout}s waiting for: $*"
		sleep "$delay"
		case $delay in
		0.01) delay=0.05 ;;
		0.05) delay=0.2 ;;
		esac
	done
}

# fl_wait_exit PID SECONDS WHAT: wait for child PID to exit; its status in FL_RC. A child
# still there after SECONDS is a hang: its threads' stacks go to stderr (gdb, where
# installed), it is killed, and the test fails naming WHAT, instead of waiting out ctest.
fl_wait_exit() {
	local pid=$1 what=$3 state
	FL_RC=0
	[ -n "$pid" ] || return 0
	_fl_gone() {
		state=$(sed -n 's/^[0-9]* ([^)]*) \(.\).*/\1/p' "/proc/$pid/stat" 2>/dev/null)
		[ -z "$state" ] || [ "$state" = Z ]
	}
	if ! (wait_for "$2" _fl_gone) 2>/dev/null; then
		echo "-- $what (pid $pid) did not exit within $2 s; its threads:" >&2
		if command -v gdb >/dev/null; then
			gdb -batch -p "$pid" -ex 'thread apply all bt 25' 2>/dev/null | grep -E '^#|^Thread' >&2
		fi
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		fl_fail "$what did not exit within $2 s"
	fi
	if wait "$pid"; then FL_RC=0; else FL_RC=$?; fi
}

_fl_try() {
	if [ $# -eq 1 ]; then
		eval "$1"
	else
		"$@"
	fi
}

# fl_gen_migrations DIR N [FIRST]: write migrations FIRST..FIRST+N-1 (default FIRST=1) into
# the Prisma folder DIR, with migration_lock.toml. Ids are 14-digit timestamps one minute
# apart, so a later call with FIRST=N+1 appends in order. Every third migration adds a column
# to the table of the one before; the others create table t_<i>. Each has a down.sql.
fl_gen_migrations() {
	local dir=$1 n=$2 first=${3:-1} i id name base=1735725600 # 2025-01-01 10:00:00 UTC
	mkdir -p -- "$dir"
	[ -f "$dir/migration_lock.toml" ] || printf '%s\n' \
		'# Please do not edit this file manually' \
		'# It should be added in your version-control system (e.g., Git)' \
		'provider = "postgresql"' >"$dir/migration_lock.toml"
	for ((i = first; i < first + n; i++)); do
		TZ=UTC printf -v id '%(%Y%m%d%H%M%S)T' $((base + i * 60))
		if ((i % 3 == 0)); then
			name=${id}_add_c_${i}
			mkdir -p -- "$dir/$name"
			printf 'ALTER TABLE "t_%d" ADD COLUMN "c_%d" integer NOT NULL DEFAULT 0;\n' \
				$((i - 1)) "$i" >"$dir/$name/migration.sql"
			printf 'ALTER TABLE "t_%d" DROP COLUMN "c_%d";\n' $((i - 1)) "$i" >"$dir/$name/down.sql"
		else
			name=${id}_create_t_${i}
			mkdir -p -- "$dir/$name"
			printf 'CREATE TABLE "t_%d" (\n    "id" SERIAL NOT NULL,\n    "name" TEXT NOT NULL DEFAULT '"''"',\n    CONSTRAINT "t_%d_pkey" PRIMARY KEY ("id")\n);\n' \
				"$i" "$i" >"$dir/$name/migration.sql"
			printf 'DROP TABLE "t_%d";\n' "$i" >"$dir/$name/down.sql"
		fi
	done
}

# fl_pg_ctl ARGS...: pg_ctl on this test's server, as the user that owns it.
fl_pg_ctl() {
	if [ "$(id -u)" -eq 0 ]; then
		(cd / && runuser -u postgres -- "$FL_PG_BINDIR/pg_ctl" -D "$FL_PG_DATA" "$@")
	else
		"$FL_PG_BINDIR/pg_ctl" -D "$FL_PG_DATA" "$@"
	fi
}

# fl_pg_restart: restart this test's server (same socket and port); returns when it is ready.
fl_pg_restart() {
	fl_pg_ctl restart -m fast -w -t 60 -l "$FL_PG_LOG" >/dev/null ||
		fl_fail "cannot restart the server; log: $(tail -n 20 "$FL_PG_LOG")"
}

# fl_pid_gone PID: true when process PID no longer runs (a zombie awaiting its reaper counts
# as gone: orphans are reaped by init, on its own schedule).
fl_pid_gone() {
	local st
	st=$(ps -o stat= -p "$1" 2>/dev/null) || return 0
	[[ $st == Z* ]]
}

# fl_need_flotilla: fail unless $FLOTILLA is an executable.
fl_need_flotilla() {
	if [ -z "${FLOTILLA:-}" ] || [ ! -x "$FLOTILLA" ]; then
		fl_fail "FLOTILLA is not an executable: '${FLOTILLA:-}'"
	fi
}
