#!/usr/bin/env bash
# SIGINT and SIGTERM during `flotilla deploy`: the statement is canceled on the server and
# rolled back, the lock released, the process says so and exits 128 + the signal, and the
# application is not left queuing behind a migration nobody runs. SIGPIPE does not kill a
# deploy halfway.
source "$(dirname "$0")/lib.sh"
fl_need_flotilla

dir=$(fl_tmpdir)

# A shell starts background jobs with SIGINT ignored, and flotilla keeps a signal that was
# ignored when it started ignored (the convention): run it as a terminal's foreground job
# would, with the default disposition.
# (env execs flotilla, so $! is flotilla's pid.)
flotilla=(env --default-signal=INT,TERM "$FLOTILLA")

active_sql="SELECT count(*) FROM pg_stat_activity WHERE application_name = 'flotilla' AND state = 'active' AND query LIKE '%fl_signal_sleeper%'"

# --- a signal while a migration runs, holding the application's table -------------------
for sig in INT TERM; do
	url=$(fl_newdb "signal_${sig,,}")
	mig=$dir/$sig
	mkdir -p "$mig/20250101000000_hot" "$mig/20250102000000_slow"
	echo 'CREATE TABLE hot (id int); INSERT INTO hot SELECT generate_series(1, 10);' \
		>"$mig/20250101000000_hot/migration.sql"
	# ACCESS EXCLUSIVE on hot for as long as the migration runs: ten minutes.
	echo 'ALTER TABLE hot ADD COLUMN note text; SELECT pg_sleep(600) AS fl_signal_sleeper;' \
		>"$mig/20250102000000_slow/migration.sql"

	"${flotilla[@]}" deploy --dir "$mig" --database-url "$url" >"$dir/$sig.out" 2>"$dir/$sig.err" &
	pid=$!
	wait_for 30 "[ \"\$(fl_psql '$url' \"$active_sql\")\" = 1 ]"
	assert_eq "$(fl_psql "$url" "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted")" 2 \
		"advisory locks held while the migration runs"

	kill -s "$sig" "$pid"
	wait_for 20 fl_pid_gone "$pid" # far less than the migration's ten minutes
	if wait "$pid"; then rc=0; else rc=$?; fi
	assert_eq "$rc" $((128 + $(kill -l "$sig"))) "exit status after SIG$sig"
	err=$(cat "$dir/$sig.err")
	assert_contains "$err" "interrupted by SIG$sig: migration '20250102000000_slow' failed"
	assert_contains "$(cat "$dir/$sig.out")" "applied   20250101000000_hot"

	# Nothing of ours runs or holds anything on the server any more.
	wait_for 10 "[ \"\$(fl_psql '$url' \"SELECT count(*) FROM pg_stat_activity WHERE application_name = 'flotilla'\")\" = 0 ]"
	assert_eq "$(fl_psql "$url" "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")" 0 \
		"advisory locks left"
	# The application reads the table at once (a stalled read would hit the timeout).
	assert_eq "$(PGOPTIONS='-c statement_timeout=2000' fl_psql "$url" "SELECT count(*) FROM hot")" 10
	# The migration's transaction was rolled back on the server.
	assert_eq "$(fl_psql "$url" "SELECT count(*) FROM information_schema.columns WHERE table_name = 'hot' AND column_name = 'note'")" 0
done

# --- a signal while waiting for another deployer's lock -------------------------------------
url=$(fl_newdb signal_lockwait)
fl_gen_migrations "$dir/lockwait" 2
fl_psql_bg "$url" prisma "SELECT pg_advisory_lock(72707369), pg_sleep(600)"
wait_for 10 "[ \"\$(fl_psql '$url' \"SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 72707369 AND granted\")\" = 1 ]"
"${flotilla[@]}" deploy --dir "$dir/lockwait" --database-url "$url" --lock-wait 10m \
	>"$dir/lockwait.out" 2>"$dir/lockwait.err" &
pid=$!
wait_for 30 "[ \"\$(fl_psql '$url' \"SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) WHERE a.application_name = 'flotilla' AND l.locktype = 'advisory' AND NOT l.granted\")\" = 1 ]"
kill -s TERM "$pid"
wait_for 20 fl_pid_gone "$pid"
if wait "$pid"; then rc=0; else rc=$?; fi
assert_eq "$rc" 143 "exit status after SIGTERM in the lock wait"
assert_contains "$(cat "$dir/lockwait.err")" "interrupted by SIGTERM: canceled while waiting for the migration lock"
wait_for 10 "[ \"\$(fl_psql '$url' \"SELECT count(*) FROM pg_stat_activity WHERE application_name = 'flotilla'\")\" = 0 ]"
assert_eq "$(fl_psql "$url" "SELECT to_regclass('_prisma_migrations') IS NULL")" t
fl_psql "$url" "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'prisma'" >/dev/null

# --- SIGPIPE: the reader of stdout goes away mid-deploy --------------------------------------
url=$(fl_newdb signal_pipe)
mkdir -p "$dir/pipe/20250101000000_a" "$dir/pipe/20250102000000_gate" "$dir/pipe/20250103000000_c"
echo 'CREATE TABLE a (id int);' >"$dir/pipe/20250101000000_a/migration.sql"
# Waits for the test's advisory lock 4242: the test decides when it goes on.
echo 'SELECT pg_advisory_xact_lock(4242); CREATE TABLE gate (id int);' \
	>"$dir/pipe/20250102000000_gate/migration.sql"
echo 'CREATE TABLE c (id int);' >"$dir/pipe/20250103000000_c/migration.sql"
fl_psql_bg "$url" gatekeeper "SELECT pg_advisory_lock(4242), pg_sleep(600)"
wait_for 10 "[ \"\$(fl_psql '$url' \"SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 4242 AND granted\")\" = 1 ]"
mkfifo "$dir/stdout.fifo"
# The shell opens the fifo for flotilla's stdout, waiting for a reader: ours, below.
"${flotilla[@]}" deploy --dir "$dir/pipe" --database-url "$url" --lock-timeout 1h \
	>"$dir/stdout.fifo" 2>"$dir/pipe.err" &
pid=$!
exec 3<"$dir/stdout.fifo"
wait_for 30 "[ \"\$(fl_psql '$url' \"SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) WHERE a.application_name = 'flotilla' AND l.locktype = 'advisory' AND l.objid = 4242 AND NOT l.granted\")\" = 1 ]"
exec 3<&- # the reader goes away; every later write gets EPIPE
fl_psql "$url" "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'gatekeeper'" >/dev/null
wait_for 30 fl_pid_gone "$pid"
if wait "$pid"; then rc=0; else rc=$?; fi
assert_eq "$rc" 0 "exit status with stdout gone (141 is death by SIGPIPE)"
assert_eq "$(fl_psql "$url" "SELECT count(*) FROM _prisma_migrations WHERE finished_at IS NOT NULL")" 3
assert_eq "$(fl_psql "$url" "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")" 0
fl_pass
