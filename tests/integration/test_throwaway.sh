#!/usr/bin/env bash
# The harness itself: the throwaway server is reachable, private and fast, and
# deploy/pg-throwaway.sh leaves nothing behind however its command ends.
# shellcheck disable=SC2016 # the nested commands expand their own variables
. "$(dirname -- "$0")/lib.sh"

fl_log "server"
assert_eq "$(fl_psql "$DATABASE_URL" "SELECT current_setting('server_version_num')::int >= 130000")" t \
	"server is PostgreSQL 13 or newer"
assert_eq "$(fl_psql "$DATABASE_URL" "SELECT current_user || '/' || current_database()")" postgres/postgres
assert_eq "$(fl_psql "$DATABASE_URL" "SHOW listen_addresses")" "" "listen_addresses"
assert_eq "$(fl_psql "$DATABASE_URL" "SHOW fsync")" off fsync
assert_eq "$(fl_psql "$DATABASE_URL" "SHOW max_connections")" 300 max_connections
assert_eq "$FL_PG_HOST" "$PGHOST" "FL_PG_HOST = PGHOST"
assert_eq "$FL_PG_PORT" "$PGPORT" "FL_PG_PORT = PGPORT"
[ -S "$FL_PG_HOST/.s.PGSQL.$FL_PG_PORT" ] || fl_fail "no socket in '$FL_PG_HOST'"
[ -x "$FL_PG_BINDIR/postgres" ] || fl_fail "FL_PG_BINDIR '$FL_PG_BINDIR' has no postgres"
assert_eq "$(psql -X -Atc 'SELECT 1')" 1 "psql through PG* variables"

fl_log "fl_newdb"
url=$(fl_newdb "smoke db")
assert_eq "$(fl_psql "$url" "SELECT current_database()")" "smoke db"
url=$(fl_newdb smoke2)
assert_eq "$(fl_psql "$url" "SELECT current_database()")" smoke2
assert_exit nonzero fl_psql "$url" "SELECT * FROM no_such_table"
assert_contains "$ERR" 'relation "no_such_table" does not exist'

fl_log "scram-sha-256 for roles other than postgres"
fl_psql "$url" "CREATE ROLE alice LOGIN PASSWORD 'right horse'"
assert_exit 0 fl_psql "$(fl_url_user "$url" alice 'right horse')" "SELECT current_user"
assert_eq "$OUT" alice
assert_exit nonzero fl_psql "$(fl_url_user "$url" alice wrong)" "SELECT 1"
assert_contains "$ERR" "password authentication failed"

fl_log "fl_gen_migrations"
dir=$(fl_tmpdir)
fl_gen_migrations "$dir/m" 4
fl_gen_migrations "$dir/m" 2 5
mapfile -t names < <(cd "$dir/m" && ls -d -- */)
assert_eq "${#names[@]}" 6 "migration count"
assert_eq "${names[0]}" "20250101100100_create_t_1/"
assert_eq "${names[2]}" "20250101100300_add_c_3/"
assert_eq "${names[5]}" "20250101100600_add_c_6/"
for m in "$dir"/m/*/; do
	fl_psql "$url" "$(cat "$m/migration.sql")"
done
assert_eq "$(fl_psql "$url" "SELECT count(*) FROM information_schema.columns WHERE table_name = 't_5' AND column_name = 'c_6'")" 1
for ((i = ${#names[@]} - 1; i >= 0; i--)); do
	fl_psql "$url" "$(cat "$dir/m/${names[i]}down.sql")"
done
assert_eq "$(fl_psql "$url" "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")" 0 "tables left by down.sql"

# A nested cluster's dir must be gone and its postmaster dead once pg-throwaway.sh has
# returned or, after a SIGKILL, soon after.
gone() { # DIR PID
	[ ! -e "$1" ] && fl_pid_gone "$2"
}

fl_log "nested run: exit status propagated, everything cleaned up"
f=$(fl_tmpdir)
assert_exit 3 "$FL_PG_THROWAWAY" run -- bash -c \
	'echo "$FL_PG_HOST" >"$0/host"; head -n 1 "$FL_PG_DATA/postmaster.pid" >"$0/pid"; exit 3' "$f"
host=$(cat "$f/host")
pid=$(cat "$f/pid")
assert_ne "$host" "$FL_PG_HOST" "nested cluster has its own dir"
gone "$host" "$pid" || fl_fail "nested cluster left behind: dir '$host', postmaster $pid"

fl_log "nested run: SIGTERM to pg-throwaway.sh ends CMD and cleans up"
f=$(fl_tmpdir)
"$FL_PG_THROWAWAY" run -- bash -c \
	'echo "$FL_PG_HOST" >"$0/host"; head -n 1 "$FL_PG_DATA/postmaster.pid" >"$0/pid"; echo $$ >"$0/cmd"; exec sleep 600' \
	"$f" </dev/null >/dev/null 2>&1 &
wrapper=$!
wait_for 60 test -s "$f/cmd"
host=$(cat "$f/host")
pid=$(cat "$f/pid")
cmd=$(cat "$f/cmd")
kill -TERM "$wrapper"
rc=0
wait "$wrapper" || rc=$?
assert_eq "$rc" 143 "exit status after SIGTERM"
gone "$host" "$pid" || fl_fail "SIGTERM left behind: dir '$host', postmaster $pid"
fl_pid_gone "$cmd" || fl_fail "SIGTERM left CMD $cmd running"

fl_log "nested run: SIGKILL to pg-throwaway.sh (ctest's timeout): the watchdog cleans up"
f=$(fl_tmpdir)
"$FL_PG_THROWAWAY" run -- bash -c \
	'echo "$FL_PG_HOST" >"$0/host"; head -n 1 "$FL_PG_DATA/postmaster.pid" >"$0/pid"; echo $$ >"$0/cmd"; exec sleep 600' \
	"$f" </dev/null >/dev/null 2>&1 &
wrapper=$!
wait_for 60 test -s "$f/cmd"
host=$(cat "$f/host")
pid=$(cat "$f/pid")
cmd=$(cat "$f/cmd")
kill -KILL "$wrapper"
wait "$wrapper" 2>/dev/null || true
wait_for 60 gone "$host" "$pid"
wait_for 10 fl_pid_gone "$cmd"

fl_pass
