#!/usr/bin/env bash
# Schema-per-tenant locking against the real Prisma CLI. flotilla takes Prisma's migration
# lock, pg_advisory_lock(72707369), in SHARED mode plus an exclusive lock of its own per
# schema: flotilla tenants in different schemas of one database migrate in parallel, two
# deploys of one schema exclude each other, and `prisma migrate deploy`, which takes
# 72707369 exclusively, excludes every one of them and is excluded by them.
#
# Waiting is proven from the server's side (a lock in pg_locks not granted), never by
# timing. A migration is held open by a "gate": it begins with pg_advisory_xact_lock(4242)
# while a psql session of the test holds 4242; ending that session opens the gate.
#
# Prisma gives up on its lock after 10 s (P1002, not configurable); the test opens the gate
# as soon as it has seen Prisma wait.
. "$(dirname "$0")/lib.sh"

GATE=4242
KEY=72707369

compat_scenario tenants
db_url=$DB_URL
gated=$PWD
compat_migration 20250101000000_gated "-- flotilla:lock-timeout 10m
SELECT pg_advisory_xact_lock($GATE);
CREATE TABLE t (id int);"
plain=$(fl_tmpdir)/plain
compat_project "$plain"
mkdir -p "$plain/prisma/migrations/20250101000000_gated"
echo 'CREATE TABLE t (id int);' >"$plain/prisma/migrations/20250101000000_gated/migration.sql"
for s in a b c d e f; do
	fl_psql "$db_url" "CREATE SCHEMA tenant_$s" >/dev/null
done

# tenant_url SCHEMA APP: the URL of schema SCHEMA, its sessions named APP.
tenant_url() {
	printf '%s&schema=%s&application_name=%s' "$db_url" "$1" "$2"
}

# count_locks APP GRANTED [MODE [WHICH]]: advisory locks of sessions named APP in state
# GRANTED (t or f), of MODE (ShareLock, ExclusiveLock; any when empty); WHICH is prisma
# (the key 72707369), gate, other (any other key) or any.
count_locks() {
	local app=$1 granted=$2 mode=${3:-} which=${4:-any} key_sql
	case $which in
	prisma) key_sql="l.classid = 0 AND l.objid = $KEY AND l.objsubid = 1" ;;
	gate) key_sql="l.classid = 0 AND l.objid = $GATE AND l.objsubid = 1" ;;
	other) key_sql="NOT (l.classid = 0 AND l.objid IN ($KEY, $GATE) AND l.objsubid = 1)" ;;
	any) key_sql=true ;;
	esac
	fl_psql "$db_url" "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)
		WHERE a.application_name = '$app' AND l.locktype = 'advisory' AND l.granted = '$granted'
		AND ($key_sql) ${mode:+AND l.mode = '$mode'}"
}

# locks_are APP GRANTED MODE WHICH N: true when count_locks says N.
locks_are() {
	[ "$(count_locks "$1" "$2" "$3" "$4")" = "$5" ]
}

close_gate() {
	fl_psql_bg "$db_url" gate "SELECT pg_advisory_lock($GATE), pg_sleep(600)"
	wait_for 30 locks_are gate t ExclusiveLock gate 1
}
open_gate() {
	fl_psql "$db_url" "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE application_name = 'gate'" >/dev/null
}

# start NAME DIR TOOL SCHEMA: deploy SCHEMA's tenant from project DIR with TOOL (flotilla
# or prisma) in the background, its sessions named NAME; its pid in PID_<NAME>, its output
# in $out/NAME.{out,err}.
out=$(fl_tmpdir)
start() {
	local name=$1 dir=$2 cmd
	case $3 in
	flotilla) cmd=("$FLOTILLA" deploy --lock-wait 10m) ;;
	prisma) cmd=("${PRISMA_CMD[@]}" migrate deploy) ;;
	esac
	(cd "$dir" && DATABASE_URL=$(tenant_url "$4" "$name") exec "${cmd[@]}") \
		</dev/null >"$out/$name.out" 2>"$out/$name.err" &
	printf -v "PID_$name" '%s' $!
}
# finish NAME CODE: wait for NAME to end, assert its exit status.
finish() {
	local pid_var=PID_$1 rc=0
	wait "${!pid_var}" || rc=$?
	[ "$rc" = "$2" ] || fl_fail "$1 exited $rc, expected $2
--- stdout ---
$(cat "$out/$1.out")
--- stderr ---
$(cat "$out/$1.err")"
}
history_of() { # SCHEMA: names of finished migrations, or "none" without a history table
	if [ "$(fl_psql "$db_url" "SELECT to_regclass('$1._prisma_migrations') IS NULL")" = t ]; then
		echo none
		return
	fi
	fl_psql "$db_url" "SELECT coalesce(string_agg(migration_name, ','), '')
		FROM $1._prisma_migrations WHERE finished_at IS NOT NULL"
}

# --- flotilla holds its locks: other schemas proceed, the same schema and Prisma wait -----
fl_log "flotilla holds its locks"
close_gate
start flotilla_a "$gated" flotilla tenant_a
# flotilla_a is inside its migration, waiting at the gate, holding its locks.
wait_for 60 locks_are flotilla_a f ExclusiveLock gate 1
assert_eq "$(count_locks flotilla_a t ShareLock prisma)" 1 "flotilla_a: 72707369 shared, granted"
assert_eq "$(count_locks flotilla_a t ExclusiveLock other)" 1 "flotilla_a: its per-schema key, granted"
assert_eq "$(count_locks flotilla_a t ExclusiveLock prisma)" 0 "flotilla_a: 72707369 not exclusive"

# Another schema: in parallel, to the end, while tenant_a is held.
start flotilla_b "$plain" flotilla tenant_b
finish flotilla_b 0
assert_eq "$(history_of tenant_b)" 20250101000000_gated "tenant_b deployed while tenant_a is held"
assert_eq "$(history_of tenant_a)" '' "tenant_a still inside its migration"

# The same schema again (a second deployer of tenant_a): waits on the per-schema key.
start flotilla_a2 "$gated" flotilla tenant_a
wait_for 60 locks_are flotilla_a2 f ExclusiveLock other 1

# Prisma, on a schema of its own: waits for 72707369, exclusive, having done nothing.
start prisma_c "$plain" prisma tenant_c
wait_for 30 locks_are prisma_c f ExclusiveLock prisma 1
assert_eq "$(history_of tenant_c)" none "prisma waits before it creates its history table"

open_gate
finish flotilla_a 0
finish flotilla_a2 0
finish prisma_c 0
assert_contains "$(cat "$out/prisma_c.out")" "20250101000000_gated"
assert_eq "$(history_of tenant_a)" 20250101000000_gated "tenant_a after the gate opened"
assert_eq "$(history_of tenant_c)" 20250101000000_gated "tenant_c after flotilla let go"
assert_contains "$(cat "$out/flotilla_a2.out")" "nothing to deploy" "the second deployer of tenant_a"

# --- Prisma holds its lock: flotilla waits, in every schema ------------------------------
fl_log "prisma holds its lock"
close_gate
start prisma_d "$gated" prisma tenant_d
wait_for 60 locks_are prisma_d f ExclusiveLock gate 1
assert_eq "$(count_locks prisma_d t ExclusiveLock prisma)" 1 "prisma_d: 72707369 exclusive, granted"

start flotilla_e "$plain" flotilla tenant_e
start flotilla_f "$plain" flotilla tenant_f
wait_for 60 locks_are flotilla_e f ShareLock prisma 1
wait_for 60 locks_are flotilla_f f ShareLock prisma 1
assert_eq "$(history_of tenant_e)" none "flotilla waits before it creates its history table"
assert_eq "$(history_of tenant_f)" none "flotilla waits before it creates its history table"

open_gate
finish prisma_d 0
finish flotilla_e 0
finish flotilla_f 0
for s in d e f; do
	assert_eq "$(history_of tenant_$s)" 20250101000000_gated "tenant_$s at the end"
done
fl_pass
