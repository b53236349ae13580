#!/usr/bin/env bash
# Deployers exclude each other with Prisma's advisory lock; a migration waiting
# for a table lock gives up after the lock timeout and retries, so the
# application's queries on that table never queue behind it for long.
source "$(dirname "$0")/lib.sh"

dir=$(fl_tmpdir)

# --- two concurrent deploys apply each migration exactly once ---------------
url=$(fl_newdb race)
fl_gen_migrations "$dir/race" 60
"$FLOTILLA" deploy --dir "$dir/race" --database-url "$url" >"$dir/a.out" 2>"$dir/a.err" &
pa=$!
"$FLOTILLA" deploy --dir "$dir/race" --database-url "$url" >"$dir/b.out" 2>"$dir/b.err" &
pb=$!
wait $pa || fl_fail "first deploy failed: $(cat "$dir/a.err")"
wait $pb || fl_fail "second deploy failed: $(cat "$dir/b.err")"
assert_eq "$(cat "$dir/a.out" "$dir/b.out" | grep -c '^applied ')" 60
assert_eq "$(fl_psql "$url" "SELECT count(*) || ' ' || count(DISTINCT migration_name) FROM _prisma_migrations")" "60 60"

# --- a deployer that cannot get the migration lock gives up with exit 7 -----
fl_psql_bg "$url" locker "SELECT pg_advisory_lock(72707369), pg_sleep(120)"
wait_for 10 "[ \"\$(fl_psql '$url' \"SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 72707369 AND granted\")\" = 1 ]"
assert_exit 7 "$FLOTILLA" deploy --dir "$dir/race" --database-url "$url" --lock-wait 300ms
assert_contains "$ERR" "72707369"
fl_psql "$url" "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'locker'" >/dev/null

# --- lock timeout: retried, readers never blocked for long ------------------
url=$(fl_newdb locks)
mkdir -p "$dir/locks/20250101000000_hot"
echo 'CREATE TABLE hot (id int); INSERT INTO hot SELECT generate_series(1, 100);' >"$dir/locks/20250101000000_hot/migration.sql"
assert_exit 0 "$FLOTILLA" deploy --dir "$dir/locks" --database-url "$url"
mkdir -p "$dir/locks/20250102000000_alter_hot"
echo 'ALTER TABLE hot ADD COLUMN note text;' >"$dir/locks/20250102000000_alter_hot/migration.sql"

# A long transaction holds a weak lock on the table, as a slow report would.
fl_psql_bg "$url" holder "BEGIN; LOCK TABLE hot IN ACCESS SHARE MODE; SELECT pg_sleep(120)"
wait_for 10 "[ \"\$(fl_psql '$url' \"SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) WHERE a.application_name = 'holder' AND l.relation = 'hot'::regclass AND l.granted\")\" = 1 ]"

# An observer on the server notes every moment at which the reader is blocked by the
# deployer while the deployer itself waits for its lock: evidence, from the server's side,
# that the reads overlapped the lock wait (not inferred from timing).
fl_psql "$url" "CREATE TABLE overlap (at timestamptz, reader int, deployer int)" >/dev/null
fl_psql "$url" "CREATE PROCEDURE observe() LANGUAGE plpgsql AS \$\$
BEGIN
	LOOP
		INSERT INTO overlap SELECT clock_timestamp(), r.pid, d.pid
		FROM pg_stat_activity r JOIN pg_stat_activity d ON d.pid = ANY (pg_blocking_pids(r.pid))
		WHERE r.application_name = 'reader' AND d.application_name = 'flotilla'
			AND d.wait_event_type = 'Lock' AND r.wait_event_type = 'Lock';
		COMMIT;
		PERFORM pg_sleep(0.005);
	END LOOP;
END \$\$" >/dev/null
fl_psql_bg "$url" observer "CALL observe()"
wait_for 10 "[ \"\$(fl_psql '$url' \"SELECT count(*) FROM pg_stat_activity WHERE application_name = 'observer' AND state = 'active'\")\" = 1 ]"

"$FLOTILLA" deploy -v --dir "$dir/locks" --database-url "$url" --lock-timeout 200ms \
	--retry-attempts 50 --retry-budget 60s >"$dir/deploy.out" 2>"$dir/deploy.err" &
deployer=$!

# The application keeps reading the table, one short transaction per query.
reader_sql="$dir/reader.sql"
{ echo '\timing on'; for _ in $(seq 500); do echo 'SELECT count(*) FROM hot;'; echo 'SELECT pg_sleep(0.01);'; done; } >"$reader_sql"
PGAPPNAME=reader psql -X -q -d "$url" -f "$reader_sql" >"$dir/reader.out" 2>&1 &
reader=$!

# Let the migration time out and retry a few times while the reader runs, until the server
# has seen a read queued behind the waiting migration; then end the long transaction.
wait_for 30 "[ \$(grep -ci 'retry' '$dir/deploy.err') -ge 3 ]"
wait_for 60 "[ \"\$(fl_psql '$url' 'SELECT count(*) > 0 FROM overlap')\" = t ]"
fl_psql "$url" "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name IN ('holder', 'observer')" >/dev/null
wait $deployer || fl_fail "deploy failed: $(cat "$dir/deploy.err")"
wait $reader || fl_fail "reader failed: $(cat "$dir/reader.out")"

assert_contains "$(cat "$dir/deploy.out")" "applied   20250102000000_alter_hot"
assert_eq "$(fl_psql "$url" "SELECT count(*) FROM information_schema.columns WHERE table_name = 'hot' AND column_name = 'note'")" 1
# The slowest read waited about one lock timeout (200 ms), never the holder's 120 s.
max_ms=$(grep -o 'Time: [0-9.]* ms' "$dir/reader.out" | awk '{print $2}' | sort -n | tail -1)
echo "slowest read while the migration waited: ${max_ms} ms"
awk -v m="$max_ms" 'BEGIN { exit !(m < 1000) }' || fl_fail "a reader waited ${max_ms} ms behind the migration"
echo "moments the server saw a read queued behind the waiting migration: $(fl_psql "$url" "SELECT count(*) FROM overlap")"
# --- CREATE INDEX CONCURRENTLY waits for older transactions, as with Prisma:
# no short lock timeout and no retry, which would leave an invalid index ---
url=$(fl_newdb cic)
mkdir -p "$dir/cic/20250101000000_t" "$dir/cic/20250102000000_t_v_idx"
echo 'CREATE TABLE t (id int, v int);' >"$dir/cic/20250101000000_t/migration.sql"
echo 'CREATE INDEX CONCURRENTLY t_v_idx ON t (v);' >"$dir/cic/20250102000000_t_v_idx/migration.sql"
assert_exit 0 "$FLOTILLA" deploy --dir "$dir/cic" --database-url "$url" --to 20250101000000_t
fl_psql_bg "$url" writer "BEGIN; INSERT INTO t VALUES (1, 1); SELECT pg_sleep(120)"
wait_for 10 "[ \"\$(fl_psql '$url' \"SELECT count(*) FROM pg_stat_activity WHERE application_name = 'writer' AND state = 'active'\")\" = 1 ]"
"$FLOTILLA" deploy -v --dir "$dir/cic" --database-url "$url" --lock-timeout 100ms \
	>"$dir/cic.out" 2>"$dir/cic.err" &
deployer=$!
# The index build is waiting for the writer's transaction, well past 100 ms.
wait_for 30 "[ \"\$(fl_psql '$url' \"SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'CREATE INDEX CONCURRENTLY%' AND wait_event_type = 'Lock'\")\" = 1 ]"
fl_psql "$url" "SELECT pg_sleep(0.5)" >/dev/null # several lock timeouts' worth
fl_psql "$url" "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'writer'" >/dev/null
wait $deployer || fl_fail "deploy failed: $(cat "$dir/cic.err")"
assert_eq "$(fl_psql "$url" "SELECT indisvalid FROM pg_index WHERE indexrelid = 't_v_idx'::regclass")" t
assert_not_contains "$(cat "$dir/cic.err")" "retrying"
fl_pass
