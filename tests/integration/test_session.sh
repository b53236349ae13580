#!/usr/bin/env bash
# What the CLI does around one database session: exit codes for bad and unreachable URLs,
# timeouts refused rather than clamped, libpq's environment kept out (or let in), the
# migration lock per schema (tenants of one database side by side, Prisma excluded and
# excluding), and `status` telling a running migration from a failed one.
source "$(dirname "$0")/lib.sh"
fl_need_flotilla

dir=$(fl_tmpdir)
fl_gen_migrations "$dir/two" 2

# Server-side evidence, by application_name.
locks() { # URL WHERE: count of advisory locks matching WHERE, held or wanted by flotilla
	fl_psql "$1" "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) WHERE a.application_name = 'flotilla' AND l.locktype = 'advisory' AND $2"
}

# --- URLs: malformed is a usage error (2), unreachable is 6 ----------------------------
for bad in "postgresql://u@localhost:notaport/db" "postgresql://u@localhost:99999/db" \
	"postgresql://u@localhost/db?sslmode=bogus" "postgresql://u:p%zzSECRET@localhost/db" \
	"postgresql://u@localhost/db?schema=%zz" "postgres://app:Se?cr3tSECRET@127.0.0.1:1/db"; do
	assert_exit 2 "$FLOTILLA" status --dir "$dir/two" --database-url "$bad"
	assert_contains "$ERR" "malformed database URL"
	assert_not_contains "$ERR" "SECRET"
done
assert_exit 6 "$FLOTILLA" status --dir "$dir/two" --database-url "postgresql://u@/db?host=$dir/nowhere&port=1"
assert_contains "$ERR" "cannot connect"
assert_exit 6 "$FLOTILLA" status --dir "$dir/two" --connect-timeout 300ms \
	--database-url "postgresql://u@/db?host=$dir/nowhere&port=1"

# --- timeouts: 0 and the absurd are refused, not clamped ---------------------------------
url=$(fl_newdb session_flags)
for arg in "--lock-timeout 0" "--lock-timeout 0s" "--lock-timeout 2h" "--lock-timeout off" \
	"--statement-timeout 0" "--statement-timeout 600h" "--lock-wait 600h" "--connect-timeout 0"; do
	# shellcheck disable=SC2086 # word splitting wanted
	assert_exit 2 "$FLOTILLA" deploy --dir "$dir/two" --database-url "$url" $arg
	assert_contains "$ERR" "${arg%% *}"
done
assert_exit 2 "$FLOTILLA" deploy --dir "$dir/two" --database-url "$url" --lock-timeout 0
assert_contains "$ERR" "would turn the lock timeout off"
assert_eq "$(fl_psql "$url" "SELECT to_regclass('_prisma_migrations') IS NULL")" t
assert_exit 0 "$FLOTILLA" deploy --dir "$dir/two" --database-url "$url" --lock-timeout 1h

# --- libpq's environment: ignored by default, as Prisma ignores it; --libpq-env lets it in -
url=$(fl_newdb session_env)
fl_psql "$url" "CREATE SCHEMA evil" >/dev/null
PGOPTIONS='-c search_path=evil' assert_exit 0 "$FLOTILLA" deploy --dir "$dir/two" --database-url "$url" --to 20250101100100_create_t_1
assert_eq "$(fl_psql "$url" "SELECT relnamespace::regnamespace FROM pg_class WHERE relname = 't_1'")" public
PGOPTIONS='-c search_path=evil' assert_exit 0 "$FLOTILLA" deploy --dir "$dir/two" --database-url "$url" --libpq-env
assert_eq "$(fl_psql "$url" "SELECT relnamespace::regnamespace FROM pg_class WHERE relname = 't_2'")" evil
fl_psql "$url" "CREATE ROLE session_env_app LOGIN PASSWORD 'Env-Pw-1'; GRANT SELECT ON ALL TABLES IN SCHEMA public TO session_env_app" >/dev/null
app_url="postgresql://session_env_app@/session_env?host=$FL_PG_HOST&port=$FL_PG_PORT"
PGPASSWORD=Env-Pw-1 assert_exit 6 "$FLOTILLA" status --dir "$dir/two" --database-url "$app_url"
assert_contains "$ERR" "PGPASSWORD"
PGPASSWORD=Env-Pw-1 assert_exit 0 "$FLOTILLA" status --dir "$dir/two" --database-url "$app_url" --libpq-env
PGTZ=Asia/Tokyo assert_exit 2 "$FLOTILLA" status --dir "$dir/two" --database-url "$url"
assert_contains "$ERR" "PGTZ is set in the environment"

# A migration that waits for the test's advisory lock 4242 (shared: many may wait at once).
gated() { # DIR [no-transaction]
	mkdir -p "$1/20250101000000_base" "$1/20250102000000_gated"
	echo 'CREATE TABLE base (id int);' >"$1/20250101000000_base/migration.sql"
	if [ "${2:-}" = no-transaction ]; then
		printf -- '-- flotilla:no-transaction\nSELECT pg_advisory_lock_shared(4242);\nSELECT pg_advisory_unlock_shared(4242);\n' \
			>"$1/20250102000000_gated/migration.sql"
	else
		echo 'SELECT pg_advisory_xact_lock_shared(4242); CREATE TABLE gated (id int);' \
			>"$1/20250102000000_gated/migration.sql"
	fi
}
gate_close() { # URL
	fl_psql_bg "$1" gatekeeper "SELECT pg_advisory_lock(4242), pg_sleep(600)"
	wait_for 10 "[ \"\$(fl_psql '$1' \"SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 4242 AND granted\")\" = 1 ]"
}
gate_open() { # URL
	fl_psql "$1" "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'gatekeeper'" >/dev/null
}
waiting_at_gate() { # URL N: N flotilla sessions wait for the gate
	wait_for 30 "[ \"\$(locks '$1' 'l.objid = 4242 AND NOT l.granted')\" = $2 ]"
}

# --- tenants in two schemas of one database deploy side by side ---------------------------
url=$(fl_newdb session_schemas)
gated "$dir/gated"
gate_close "$url"
"$FLOTILLA" deploy --dir "$dir/gated" --database-url "$url&schema=tenant_a" --lock-timeout 1h >"$dir/a.out" 2>"$dir/a.err" &
pa=$!
"$FLOTILLA" deploy --dir "$dir/gated" --database-url "$url&schema=tenant_b" --lock-timeout 1h >"$dir/b.out" 2>"$dir/b.err" &
pb=$!
waiting_at_gate "$url" 2
# Overlap, from the server's side: both deployers hold their schema keys and Prisma's key
# (shared) at the same moment, each in its own backend.
assert_eq "$(locks "$url" "l.granted AND l.classid = 1718382452 AND l.objsubid = 2")" 2
assert_eq "$(locks "$url" "l.granted AND l.objid = 72707369 AND l.mode = 'ShareLock'")" 2
assert_eq "$(fl_psql "$url" "SELECT count(DISTINCT pid) FROM pg_locks WHERE locktype = 'advisory' AND classid = 1718382452 AND granted")" 2
# ...while `status` of a tenant says nothing failed: its migration is pending or running.
assert_exit 9 "$FLOTILLA" status --dir "$dir/gated" --database-url "$url&schema=tenant_a"
gate_open "$url"
wait $pa || fl_fail "tenant_a deploy failed: $(cat "$dir/a.err")"
wait $pb || fl_fail "tenant_b deploy failed: $(cat "$dir/b.err")"
for s in tenant_a tenant_b; do
	assert_eq "$(fl_psql "$url" "SELECT count(*) FROM $s._prisma_migrations WHERE finished_at IS NOT NULL")" 2
done

# --- two deployers of one schema exclude each other -----------------------------------------
url=$(fl_newdb session_same)
gate_close "$url"
"$FLOTILLA" deploy --dir "$dir/gated" --database-url "$url" --lock-timeout 1h >"$dir/c.out" 2>"$dir/c.err" &
pc=$!
waiting_at_gate "$url" 1
"$FLOTILLA" deploy --dir "$dir/gated" --database-url "$url" --lock-timeout 1h >"$dir/d.out" 2>"$dir/d.err" &
pd=$!
# The second waits for the schema key the first holds.
wait_for 30 "[ \"\$(locks '$url' 'l.classid = 1718382452 AND NOT l.granted')\" = 1 ]"
assert_eq "$(locks "$url" "l.classid = 1718382452 AND l.granted")" 1
gate_open "$url"
wait $pc || fl_fail "first deploy failed: $(cat "$dir/c.err")"
wait $pd || fl_fail "second deploy failed: $(cat "$dir/d.err")"
assert_eq "$(fl_psql "$url" "SELECT count(*) || ' ' || count(DISTINCT migration_name) FROM _prisma_migrations")" "2 2"

# --- prisma migrate deploy (exclusive 72707369) and flotilla exclude each other -----------
url=$(fl_newdb session_prisma)
fl_psql_bg "$url" prisma "SELECT pg_advisory_lock(72707369), pg_sleep(600)"
wait_for 10 "[ \"\$(fl_psql '$url' \"SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 72707369 AND granted\")\" = 1 ]"
"$FLOTILLA" deploy --dir "$dir/gated" --database-url "$url" --lock-wait 1m >"$dir/e.out" 2>"$dir/e.err" &
pe=$!
wait_for 30 "[ \"\$(locks '$url' \"l.objid = 72707369 AND l.mode = 'ShareLock' AND NOT l.granted\")\" = 1 ]"
assert_exit 7 "$FLOTILLA" deploy --dir "$dir/gated" --database-url "$url&schema=elsewhere" --lock-wait 300ms
assert_contains "$ERR" "pg_advisory_lock 72707369"
fl_psql "$url" "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'prisma'" >/dev/null
wait $pe || fl_fail "deploy after prisma failed: $(cat "$dir/e.err")"

url=$(fl_newdb session_prisma2)
gate_close "$url"
"$FLOTILLA" deploy --dir "$dir/gated" --database-url "$url" --lock-timeout 1h >"$dir/f.out" 2>"$dir/f.err" &
pf=$!
waiting_at_gate "$url" 1
fl_psql_bg "$url" prisma "SELECT pg_advisory_lock(72707369), pg_sleep(600)"
wait_for 30 "[ \"\$(fl_psql '$url' \"SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) WHERE a.application_name = 'prisma' AND l.objid = 72707369 AND NOT l.granted\")\" = 1 ]"
gate_open "$url"
wait $pf || fl_fail "deploy failed: $(cat "$dir/f.err")"
wait_for 30 "[ \"\$(fl_psql '$url' \"SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) WHERE a.application_name = 'prisma' AND l.objid = 72707369 AND l.granted\")\" = 1 ]"
fl_psql "$url" "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'prisma'" >/dev/null

# --- status: running while a deploy holds the lock, failed when nobody does --------------
url=$(fl_newdb session_status)
gated "$dir/nt" no-transaction
gate_close "$url"
"$FLOTILLA" deploy --dir "$dir/nt" --database-url "$url" --lock-timeout 1h >"$dir/g.out" 2>"$dir/g.err" &
pg=$!
waiting_at_gate "$url" 1
# The migration's row is written (started, not finished), as Prisma writes it.
assert_eq "$(fl_psql "$url" "SELECT count(*) FROM _prisma_migrations WHERE migration_name = '20250102000000_gated' AND finished_at IS NULL")" 1
assert_exit 11 "$FLOTILLA" status --dir "$dir/nt" --database-url "$url"
assert_contains "$OUT" "running   20250102000000_gated"
assert_contains "$OUT" "0 failed"
assert_not_contains "$OUT" "resolve"
assert_exit 11 "$FLOTILLA" status --json --dir "$dir/nt" --database-url "$url"
assert_contains "$OUT" '"id":"20250102000000_gated","state":"running"'
assert_contains "$OUT" '"failed":0'
assert_contains "$OUT" '"running":1'
gate_open "$url"
wait $pg || fl_fail "deploy failed: $(cat "$dir/g.err")"
assert_exit 0 "$FLOTILLA" status --dir "$dir/nt" --database-url "$url"
# The same row with nobody holding the lock is a failure, as before.
fl_psql "$url" "UPDATE _prisma_migrations SET finished_at = NULL WHERE migration_name = '20250102000000_gated'" >/dev/null
assert_exit 4 "$FLOTILLA" status --dir "$dir/nt" --database-url "$url"
assert_contains "$OUT" "failed    20250102000000_gated"
assert_contains "$OUT" "resolve"
fl_pass
