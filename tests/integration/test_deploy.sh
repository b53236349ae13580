#!/usr/bin/env bash
# deploy and status on one database: bulk apply, idempotence, Prisma-exact rows,
# failures (transactional and statement by statement), resolve, edited files.
source "$(dirname "$0")/lib.sh"

dir=$(fl_tmpdir)

# --- 300 generated migrations apply, and a second deploy is a no-op ---------
url=$(fl_newdb bulk)
fl_gen_migrations "$dir/bulk" 300
assert_exit 0 "$FLOTILLA" deploy --dir "$dir/bulk" --database-url "$url"
assert_eq "$(grep -c '^applied ' <<<"$OUT")" 300
assert_contains "$OUT" "deployed 300 migrations"
assert_eq "$(fl_psql "$url" "SELECT count(*) FROM _prisma_migrations WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL AND applied_steps_count = 1 AND logs IS NULL")" 300
assert_exit 0 "$FLOTILLA" deploy --dir "$dir/bulk" --database-url "$url"
assert_contains "$OUT" "nothing to deploy"
assert_eq "$(fl_psql "$url" "SELECT count(*) FROM _prisma_migrations")" 300
assert_exit 0 "$FLOTILLA" status --dir "$dir/bulk" --database-url "$url"
assert_contains "$OUT" "300 applied, 0 pending, 0 failed"

# Rows are exactly Prisma's: checksum = sha256 of the file, id a UUID v4.
ids=($(ls "$dir/bulk" | grep -v toml))
first=${ids[0]}
want=$(sha256sum "$dir/bulk/$first/migration.sql" | cut -d' ' -f1)
assert_eq "$(fl_psql "$url" "SELECT checksum FROM _prisma_migrations WHERE migration_name = '$first'")" "$want"
assert_eq "$(fl_psql "$url" "SELECT count(*) FROM _prisma_migrations WHERE id !~ '^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\$'")" 0

# --to stops after the named migration.
url=$(fl_newdb upto)
tenth=${ids[9]}
assert_exit 0 "$FLOTILLA" deploy --dir "$dir/bulk" --database-url "$url" --to "$tenth"
assert_eq "$(fl_psql "$url" "SELECT count(*) FROM _prisma_migrations")" 10
assert_exit 9 "$FLOTILLA" status --dir "$dir/bulk" --database-url "$url"
assert_contains "$OUT" "10 applied, 290 pending"
assert_exit 1 "$FLOTILLA" deploy --dir "$dir/bulk" --database-url "$url" --to 20990101000000_nope
assert_contains "$ERR" "unknown migration '20990101000000_nope'"

# --- a failing transactional migration leaves nothing but a failed row -------
url=$(fl_newdb txfail)
m="$dir/txfail"
mkdir -p "$m/20250101000000_one" "$m/20250102000000_two" "$m/20250103000000_three"
echo 'CREATE TABLE one (id int);' >"$m/20250101000000_one/migration.sql"
printf 'CREATE TABLE two (id int);\nINSERT INTO two VALUES (1);\nSELECT * FROM no_such_table;\n' >"$m/20250102000000_two/migration.sql"
echo 'CREATE TABLE three (id int);' >"$m/20250103000000_three/migration.sql"
assert_exit 4 "$FLOTILLA" deploy --dir "$m" --database-url "$url"
assert_contains "$OUT" "applied   20250101000000_one"
assert_contains "$OUT" "failed    20250102000000_two"
assert_contains "$ERR" "42P01"
assert_eq "$(fl_psql "$url" "SELECT to_regclass('two') IS NULL AND to_regclass('three') IS NULL")" t
assert_eq "$(fl_psql "$url" "SELECT count(*) FROM _prisma_migrations WHERE migration_name = '20250102000000_two' AND finished_at IS NULL AND rolled_back_at IS NULL AND applied_steps_count = 0")" 1
assert_contains "$(fl_psql "$url" "SELECT logs FROM _prisma_migrations WHERE migration_name = '20250102000000_two'")" "42P01"
# The failure blocks later deploys, and status says so.
assert_exit 4 "$FLOTILLA" deploy --dir "$m" --database-url "$url"
assert_contains "$ERR" "resolve --rolled-back 20250102000000_two"
assert_exit 4 "$FLOTILLA" status --dir "$m" --database-url "$url"
assert_contains "$OUT" "failed    20250102000000_two"
# resolve --rolled-back, fix the file, deploy again: Prisma's recovery path.
assert_exit 1 "$FLOTILLA" resolve --dir "$m" --database-url "$url" --rolled-back 20250101000000_one
assert_exit 0 "$FLOTILLA" resolve --dir "$m" --database-url "$url" --rolled-back 20250102000000_two
printf 'CREATE TABLE two (id int);\nINSERT INTO two VALUES (1);\n' >"$m/20250102000000_two/migration.sql"
assert_exit 0 "$FLOTILLA" deploy --dir "$m" --database-url "$url"
assert_eq "$(grep -c '^applied ' <<<"$OUT")" 2
assert_eq "$(fl_psql "$url" "SELECT count(*) FROM two")" 1

# --- resolve --applied after fixing the database by hand ---------------------
url=$(fl_newdb resolveapplied)
printf 'CREATE TABLE two (id int);\nSELECT 1/0;\n' >"$m/20250102000000_two/migration.sql"
assert_exit 4 "$FLOTILLA" deploy --dir "$m" --database-url "$url"
assert_contains "$ERR" "22012"
fl_psql "$url" "CREATE TABLE two (id int)" >/dev/null
assert_exit 0 "$FLOTILLA" resolve --dir "$m" --database-url "$url" --applied 20250102000000_two
assert_exit 1 "$FLOTILLA" resolve --dir "$m" --database-url "$url" --applied 20250102000000_two
assert_contains "$ERR" "already"
assert_exit 0 "$FLOTILLA" deploy --dir "$m" --database-url "$url"
assert_eq "$(grep -c '^applied ' <<<"$OUT")" 1
assert_exit 0 "$FLOTILLA" status --dir "$m" --database-url "$url"

# --- no-transaction: failing at statement 3 of 5 ------------------------------
url=$(fl_newdb stmtfail)
m="$dir/stmtfail"
mkdir -p "$m/20250101000000_steps" "$m/20250102000000_next"
cat >"$m/20250101000000_steps/migration.sql" <<'SQL'
-- flotilla:no-transaction
CREATE TABLE s1 (id int);
CREATE TABLE s2 (id int);
INSERT INTO s_missing VALUES (1);
CREATE TABLE s4 (id int);
CREATE TABLE s5 (id int);
SQL
echo 'CREATE TABLE nxt (id int);' >"$m/20250102000000_next/migration.sql"
assert_exit 4 "$FLOTILLA" deploy --dir "$m" --database-url "$url"
assert_contains "$ERR" "statement 3"
assert_eq "$(fl_psql "$url" "SELECT to_regclass('s1') IS NOT NULL AND to_regclass('s2') IS NOT NULL AND to_regclass('s4') IS NULL")" t
assert_eq "$(fl_psql "$url" "SELECT applied_steps_count FROM _prisma_migrations WHERE migration_name = '20250101000000_steps' AND finished_at IS NULL")" 2
assert_contains "$(fl_psql "$url" "SELECT logs FROM _prisma_migrations WHERE migration_name = '20250101000000_steps'")" "statement 3"
assert_exit 4 "$FLOTILLA" deploy --dir "$m" --database-url "$url"
assert_eq "$(fl_psql "$url" "SELECT to_regclass('nxt') IS NULL")" t
# resolve --applied would call it done with statements 3..5 never run: refused
# unless confirmed, saying how many ran.
assert_exit 1 "$FLOTILLA" resolve --applied 20250101000000_steps --dir "$m" --database-url "$url"
assert_contains "$ERR" "only partly applied: 2 of 5 statements ran"
assert_contains "$ERR" "--force"
assert_eq "$(fl_psql "$url" "SELECT count(*) FROM _prisma_migrations WHERE finished_at IS NOT NULL")" 0
assert_exit 2 "$FLOTILLA" resolve --rolled-back 20250101000000_steps --force --dir "$m" --database-url "$url"
assert_exit 0 "$FLOTILLA" resolve --applied 20250101000000_steps --force --dir "$m" --database-url "$url"
assert_exit 0 "$FLOTILLA" deploy --dir "$m" --database-url "$url"
assert_eq "$(fl_psql "$url" "SELECT to_regclass('nxt') IS NOT NULL")" t

# --- an edited applied migration is reported modified and blocks deploy -----
url=$(fl_newdb edited)
m="$dir/edited"
mkdir -p "$m/20250101000000_a"
echo 'CREATE TABLE a (id int);' >"$m/20250101000000_a/migration.sql"
assert_exit 0 "$FLOTILLA" deploy --dir "$m" --database-url "$url"
echo 'CREATE TABLE a (id bigint);' >"$m/20250101000000_a/migration.sql"
mkdir -p "$m/20250102000000_b"
echo 'CREATE TABLE b (id int);' >"$m/20250102000000_b/migration.sql"
assert_exit 5 "$FLOTILLA" status --dir "$m" --database-url "$url"
assert_contains "$OUT" "modified  20250101000000_a"
assert_exit 5 "$FLOTILLA" deploy --dir "$m" --database-url "$url"
assert_contains "$ERR" "'20250101000000_a' was modified after it was applied"
assert_eq "$(fl_psql "$url" "SELECT to_regclass('b') IS NULL")" t
assert_exit 5 "$FLOTILLA" status --json --dir "$m" --database-url "$url"
assert_contains "$OUT" '"state":"modified"'

# A migration applied but gone from the folder is reported missing.
rm -r "$m/20250101000000_a"
assert_exit 5 "$FLOTILLA" status --dir "$m" --database-url "$url"
assert_contains "$OUT" "missing   20250101000000_a"

# --- any unfinished row blocks deploy (Prisma's P3009), even beside a finished one
url=$(fl_newdb p3009)
fl_gen_migrations "$dir/p3009" 2
assert_exit 0 "$FLOTILLA" deploy --dir "$dir/p3009" --database-url "$url" --to "$(ls "$dir/p3009" | grep -v toml | sed -n 1p)"
fl_psql "$url" "INSERT INTO _prisma_migrations (id, checksum, migration_name) SELECT gen_random_uuid(), checksum, migration_name FROM _prisma_migrations" >/dev/null
assert_exit 4 "$FLOTILLA" deploy --dir "$dir/p3009" --database-url "$url"
assert_contains "$ERR" "failed"
assert_eq "$(fl_psql "$url" "SELECT count(*) FROM _prisma_migrations")" 2

# --- a schema with objects but no history: baseline first (Prisma's P3005) --
url=$(fl_newdb baseline)
m="$dir/baseline"
mkdir -p "$m/20250101000000_init" "$m/20250102000000_more"
echo 'CREATE TABLE legacy (id int);' >"$m/20250101000000_init/migration.sql"
echo 'CREATE TABLE more (id int);' >"$m/20250102000000_more/migration.sql"
fl_psql "$url" "CREATE TABLE legacy (id int)" >/dev/null
assert_exit 1 "$FLOTILLA" deploy --dir "$m" --database-url "$url"
assert_contains "$ERR" "not empty but has no migration history"
assert_eq "$(fl_psql "$url" "SELECT to_regclass('_prisma_migrations') IS NULL AND to_regclass('more') IS NULL")" t
assert_exit 1 "$FLOTILLA" deploy --dir "$m" --database-url "$url"
assert_exit 0 "$FLOTILLA" resolve --applied 20250101000000_init --dir "$m" --database-url "$url"
assert_exit 0 "$FLOTILLA" deploy --dir "$m" --database-url "$url"
assert_eq "$(grep '^applied' <<<"$OUT" | awk '{print $2}')" 20250102000000_more

# --- a busy table outlasting the retries: nothing applied, so no failed row
# blocks the next deploy; a distinct exit code says to run again ------------
url=$(fl_newdb busy)
m="$dir/busy"
mkdir -p "$m/20250101000000_hot" "$m/20250102000000_alter" "$m/20250103000000_steps"
echo 'CREATE TABLE hot (id int);' >"$m/20250101000000_hot/migration.sql"
echo 'ALTER TABLE hot ADD COLUMN x int;' >"$m/20250102000000_alter/migration.sql"
printf -- '-- flotilla:no-transaction\nALTER TABLE hot ADD COLUMN y int;\nCREATE TABLE after_y (id int);\n' >"$m/20250103000000_steps/migration.sql"
assert_exit 0 "$FLOTILLA" deploy --dir "$m" --database-url "$url" --to 20250101000000_hot
fl_psql_bg "$url" holder "BEGIN; LOCK TABLE hot IN ACCESS SHARE MODE; SELECT pg_sleep(600)"
wait_for 10 "[ \"\$(fl_psql '$url' \"SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) WHERE a.application_name = 'holder' AND l.relation = 'hot'::regclass AND l.granted\")\" = 1 ]"
assert_exit 20 "$FLOTILLA" deploy --dir "$m" --database-url "$url" --lock-timeout 50ms --retry-attempts 2
assert_contains "$ERR" "migration '20250102000000_alter' was not applied: gave up after 2 attempts"
assert_contains "$ERR" "run deploy again"
assert_eq "$(fl_psql "$url" "SELECT count(*) FROM _prisma_migrations")" 1
assert_exit 9 "$FLOTILLA" status --dir "$m" --database-url "$url"
# The same for a no-transaction migration whose first statement never ran.
assert_exit 0 "$FLOTILLA" resolve --applied 20250102000000_alter --dir "$m" --database-url "$url"
assert_exit 20 "$FLOTILLA" deploy --dir "$m" --database-url "$url" --lock-timeout 50ms --retry-attempts 2
assert_contains "$ERR" "'20250103000000_steps' was not applied"
assert_eq "$(fl_psql "$url" "SELECT count(*) FROM _prisma_migrations WHERE migration_name = '20250103000000_steps'")" 0
fl_psql "$url" "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'holder'" >/dev/null
assert_exit 0 "$FLOTILLA" deploy --dir "$m" --database-url "$url"
assert_eq "$(fl_psql "$url" "SELECT to_regclass('after_y') IS NOT NULL")" t

# --- the deployer's connection drops while a second deployer waits for the
# lock: the second applies everything; the first, back with the lock, reads
# the history again and finds nothing left to do (it used to run its
# migration again and leave a false failed row blocking every deploy) ---
url=$(fl_newdb replan)
m="$dir/replan"
mkdir -p "$m/20250101000000_gated" "$m/20250102000000_b" "$m/20250103000000_c"
# It waits for a gate: an advisory lock the test holds.
cat >"$m/20250101000000_gated/migration.sql" <<'SQL'
-- flotilla:lock-timeout 10m
CREATE TABLE gated (id int);
SELECT pg_advisory_xact_lock(4242);
SQL
echo 'CREATE TABLE b (id int);' >"$m/20250102000000_b/migration.sql"
echo 'CREATE TABLE c (id int);' >"$m/20250103000000_c/migration.sql"
fl_psql_bg "$url" gate "SELECT pg_advisory_lock(4242), pg_sleep(600)"
wait_for 10 "[ \"\$(fl_psql '$url' \"SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 4242 AND granted\")\" = 1 ]"
"$FLOTILLA" deploy -v --dir "$m" --database-url "$url" >"$dir/first.out" 2>"$dir/first.err" &
first=$!
running="SELECT pid FROM pg_stat_activity WHERE application_name = 'flotilla' AND wait_event_type = 'Lock' AND query LIKE '%4242%'"
wait_for 30 "[ -n \"\$(fl_psql '$url' \"$running\")\" ]"
pid=$(fl_psql "$url" "$running")
"$FLOTILLA" deploy --dir "$m" --database-url "$url" >"$dir/second.out" 2>"$dir/second.err" &
second=$!
wait_for 30 "[ \"\$(fl_psql '$url' \"SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = 1718382452 AND NOT granted\")\" = 1 ]"
fl_psql "$url" "SELECT pg_terminate_backend($pid)" >/dev/null
fl_psql "$url" "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'gate'" >/dev/null
wait $second || fl_fail "second deploy failed: $(cat "$dir/second.err")"
wait $first || fl_fail "first deploy failed: $(cat "$dir/first.err")"
assert_contains "$(cat "$dir/second.out")" "deployed 3 migrations"
assert_contains "$(cat "$dir/first.err")" "reading the migration history again"
assert_contains "$(cat "$dir/first.out")" "nothing to deploy"
assert_eq "$(fl_psql "$url" "SELECT string_agg(migration_name || ':' || (finished_at IS NOT NULL), ' ' ORDER BY migration_name) FROM _prisma_migrations")" \
	"20250101000000_gated:true 20250102000000_b:true 20250103000000_c:true"
assert_exit 0 "$FLOTILLA" status --dir "$m" --database-url "$url"

# --- interrupted (SIGTERM: a background job of a script ignores SIGINT, and
# so does flotilla then) in the middle of a no-transaction migration: the
# error and the history row say how far it got, and resolve --applied wants
# --force to call it done ---
url=$(fl_newdb interrupted)
m="$dir/interrupted"
mkdir -p "$m/20250101000000_nt"
printf -- '-- flotilla:no-transaction\nCREATE TABLE n1 (id int);\nCREATE TABLE n2 (id int);\nSELECT pg_sleep(600);\nCREATE TABLE n4 (id int);\n' >"$m/20250101000000_nt/migration.sql"
"$FLOTILLA" deploy --dir "$m" --database-url "$url" >"$dir/int.out" 2>"$dir/int.err" &
deployer=$!
wait_for 30 "[ \"\$(fl_psql '$url' \"SELECT count(*) FROM pg_stat_activity WHERE application_name = 'flotilla' AND query LIKE '%pg_sleep(600)%' AND state = 'active'\")\" = 1 ]"
kill -TERM "$deployer"
wait_for 60 fl_pid_gone "$deployer"
rc=0
wait "$deployer" || rc=$?
assert_eq "$rc" 143 "exit status after SIGTERM"
want="interrupted during statement 3 of 4 (line 4): 2 applied; "
assert_contains "$(cat "$dir/int.err")" "$want"
assert_eq "$(fl_psql "$url" "SELECT applied_steps_count || ' ' || (logs LIKE '$want%') FROM _prisma_migrations")" "2 true"
assert_exit 1 "$FLOTILLA" resolve --applied 20250101000000_nt --dir "$m" --database-url "$url"
assert_contains "$ERR" "only partly applied: 2 of 4 statements ran"

# --- every migration starts from the same session state: a SET search_path
# or SET ROLE in one does not leak into the next, so one deploy and the same
# history in two steps give the same schema ---
m="$dir/leaky"
mkdir -p "$m/20250101000000_leak" "$m/20250102000000_next"
cat >"$m/20250101000000_leak/migration.sql" <<'SQL'
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'fl_leaky_role') THEN
    CREATE ROLE fl_leaky_role;
  END IF;
END $$;
GRANT USAGE, CREATE ON SCHEMA public TO fl_leaky_role;
GRANT SELECT, INSERT, UPDATE ON _prisma_migrations TO fl_leaky_role;
CREATE SCHEMA side AUTHORIZATION fl_leaky_role;
CREATE TABLE first_one (id int);
SET search_path = side, public;
SET ROLE fl_leaky_role;
SQL
# Unqualified, and named after whoever runs it.
cat >"$m/20250102000000_next/migration.sql" <<'SQL'
DO $$ BEGIN EXECUTE format('CREATE TABLE %I (id int)', 'made_by_' || current_user); END $$;
CREATE TABLE second_one (id int);
SQL
one=$(fl_newdb leaky_one)
two=$(fl_newdb leaky_two)
assert_exit 0 "$FLOTILLA" deploy --dir "$m" --database-url "$one"
assert_exit 0 "$FLOTILLA" deploy --dir "$m" --database-url "$two" --to 20250101000000_leak
assert_exit 0 "$FLOTILLA" deploy --dir "$m" --database-url "$two"
assert_exit 0 "$FLOTILLA" fingerprint --database-url "$one"
fp_one=$OUT
assert_exit 0 "$FLOTILLA" fingerprint --database-url "$two"
assert_eq "$fp_one" "$OUT" "fingerprint of one deploy vs two"
assert_eq "$(fl_psql "$one" "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename IN ('second_one', 'made_by_' || current_user)")" 2
fl_pass
