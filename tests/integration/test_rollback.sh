#!/usr/bin/env bash
# rollback with down.sql: reverse order, history rows gone (so Prisma agrees
# they are not applied), re-deploy restores the same schema fingerprint;
# refused up front when a down.sql is missing.
source "$(dirname "$0")/lib.sh"

dir=$(fl_tmpdir)
url=$(fl_newdb rollback)
fl_gen_migrations "$dir/m" 6
ids=($(ls "$dir/m" | grep -v toml))

assert_exit 0 "$FLOTILLA" deploy --dir "$dir/m" --database-url "$url"
assert_exit 0 "$FLOTILLA" fingerprint --database-url "$url"
fp_full=$OUT
assert_eq "${#fp_full}" 64

assert_exit 0 "$FLOTILLA" rollback --steps 2 --dir "$dir/m" --database-url "$url"
# Newest first.
assert_eq "$(grep '^reverted' <<<"$OUT" | awk '{print $2}' | paste -sd' ')" "${ids[5]} ${ids[4]}"
assert_eq "$(fl_psql "$url" "SELECT count(*) FROM _prisma_migrations WHERE migration_name IN ('${ids[4]}', '${ids[5]}')")" 0
assert_eq "$(fl_psql "$url" "SELECT count(*) FROM _flotilla.events WHERE event = 'rolled_back' AND schema_name = 'public'")" 2
# flotilla's own records never sit in the application's schema, where Prisma
# would introspect them (db pull would add a model, migrate dev call it drift).
assert_eq "$(fl_psql "$url" "SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relname LIKE '%flotilla%'")" 0
assert_exit 9 "$FLOTILLA" status --dir "$dir/m" --database-url "$url"
assert_contains "$OUT" "4 applied, 2 pending"
assert_exit 0 "$FLOTILLA" fingerprint --database-url "$url"
[ "$OUT" != "$fp_full" ] || fl_fail "fingerprint unchanged after rollback"

assert_exit 0 "$FLOTILLA" rollback --to "${ids[1]}" --dir "$dir/m" --database-url "$url"
assert_eq "$(grep -c '^reverted' <<<"$OUT")" 2
assert_eq "$(fl_psql "$url" "SELECT string_agg(migration_name, ' ' ORDER BY migration_name) FROM _prisma_migrations")" "${ids[0]} ${ids[1]}"
assert_exit 0 "$FLOTILLA" rollback --to "${ids[1]}" --dir "$dir/m" --database-url "$url"
assert_contains "$OUT" "nothing to roll back"

# Re-deploy: the same schema as before, to the byte.
assert_exit 0 "$FLOTILLA" deploy --dir "$dir/m" --database-url "$url"
assert_eq "$(grep -c '^applied ' <<<"$OUT")" 4
assert_exit 0 "$FLOTILLA" fingerprint --database-url "$url"
assert_eq "$OUT" "$fp_full"

# A migration without down.sql: refused before anything runs.
rm "$dir/m/${ids[3]}/down.sql"
before=$(fl_psql "$url" "SELECT count(*) FROM _prisma_migrations")
assert_exit 1 "$FLOTILLA" rollback --steps 4 --dir "$dir/m" --database-url "$url"
assert_contains "$ERR" "no down.sql for '${ids[3]}'"
assert_eq "$(fl_psql "$url" "SELECT count(*) FROM _prisma_migrations")" "$before"
assert_exit 0 "$FLOTILLA" fingerprint --database-url "$url"
assert_eq "$OUT" "$fp_full"

# Asking for more than is applied, or a target that is not applied.
assert_exit 1 "$FLOTILLA" rollback --steps 7 --dir "$dir/m" --database-url "$url"
assert_contains "$ERR" "only 6 applied"
assert_exit 2 "$FLOTILLA" rollback --dir "$dir/m" --database-url "$url"
assert_exit 2 "$FLOTILLA" rollback --steps zero --dir "$dir/m" --database-url "$url"
# --- a history Prisma started: our events table is added, resolve and rollback work ---
url=$(fl_newdb prisma_started)
fl_psql "$url" 'CREATE TABLE "_prisma_migrations" ("id" VARCHAR(36) NOT NULL, "checksum" VARCHAR(64) NOT NULL, "finished_at" TIMESTAMPTZ, "migration_name" VARCHAR(255) NOT NULL, "logs" TEXT, "rolled_back_at" TIMESTAMPTZ, "started_at" TIMESTAMPTZ NOT NULL DEFAULT now(), "applied_steps_count" INTEGER NOT NULL DEFAULT 0, CONSTRAINT "_prisma_migrations_pkey" PRIMARY KEY ("id"))' >/dev/null
p="$dir/prisma_started"
mkdir -p "$p/20250101000000_a" "$p/20250102000000_b"
echo 'CREATE TABLE a (id int, x int);' >"$p/20250101000000_a/migration.sql"
echo 'DROP TABLE a;' >"$p/20250101000000_a/down.sql"
printf -- '-- flotilla:no-transaction\nCREATE TABLE b (id int, y int);\nSELECT 1/0;\n' >"$p/20250102000000_b/migration.sql"
echo 'DROP TABLE b;' >"$p/20250102000000_b/down.sql"
assert_exit 4 "$FLOTILLA" deploy --dir "$p" --database-url "$url"
assert_exit 0 "$FLOTILLA" resolve --rolled-back 20250102000000_b --dir "$p" --database-url "$url"
fl_psql "$url" "DROP TABLE b" >/dev/null
printf -- '-- flotilla:no-transaction\nCREATE TABLE b (id int, y int);\n' >"$p/20250102000000_b/migration.sql"
assert_exit 0 "$FLOTILLA" deploy --dir "$p" --database-url "$url"
assert_exit 0 "$FLOTILLA" rollback --steps 1 --dir "$p" --database-url "$url"
assert_eq "$(fl_psql "$url" "SELECT to_regclass('b') IS NULL")" t
assert_exit 9 "$FLOTILLA" status --dir "$p" --database-url "$url"
assert_contains "$OUT" "pending   20250102000000_b"

# --- a down.sql with its own BEGIN..COMMIT, run statement by statement, that
# meets a lock: not retried halfway, so its block is undone as a whole ---
printf -- '-- flotilla:no-transaction\nCREATE TABLE b (id int, y int);\n' >"$p/20250102000000_b/migration.sql"
printf 'BEGIN;\nALTER TABLE a DROP COLUMN x;\nALTER TABLE b DROP COLUMN y;\nCOMMIT;\nDROP TABLE b;\n' >"$p/20250102000000_b/down.sql"
assert_exit 0 "$FLOTILLA" deploy --dir "$p" --database-url "$url"
fl_psql_bg "$url" holder "BEGIN; LOCK TABLE b IN ACCESS SHARE MODE; SELECT pg_sleep(120)"
wait_for 10 "[ \"\$(fl_psql '$url' \"SELECT count(*) FROM pg_locks l JOIN pg_stat_activity s USING (pid) WHERE s.application_name = 'holder' AND l.relation = 'b'::regclass AND l.granted\")\" = 1 ]"
assert_exit 4 "$FLOTILLA" rollback --steps 1 --lock-timeout 100ms --dir "$p" --database-url "$url"
assert_contains "$ERR" "not retried, as the file manages its own transaction"
assert_eq "$(fl_psql "$url" "SELECT count(*) FROM information_schema.columns WHERE (table_name, column_name) IN (('a', 'x'), ('b', 'y'))")" 2
assert_eq "$(fl_psql "$url" "SELECT count(*) FROM _prisma_migrations WHERE migration_name = '20250102000000_b'")" 1
fl_psql "$url" "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'holder'" >/dev/null
assert_exit 0 "$FLOTILLA" rollback --steps 1 --dir "$p" --database-url "$url"
assert_eq "$(fl_psql "$url" "SELECT count(*) FROM information_schema.columns WHERE table_name = 'a' AND column_name = 'x'")" 0

# --- a role without CREATE on the database cannot make '_flotilla': refused
# before down.sql runs, naming the privilege; granted, it works ---
url=$(fl_newdb noschema)
fl_psql "$url" "CREATE ROLE tenant_role LOGIN PASSWORD 'tenant-secret'; GRANT USAGE, CREATE ON SCHEMA public TO tenant_role" >/dev/null
turl=$(fl_url_user "$url" tenant_role tenant-secret)
fl_gen_migrations "$dir/noschema" 2
assert_exit 0 "$FLOTILLA" deploy --dir "$dir/noschema" --database-url "$turl"
assert_exit 1 "$FLOTILLA" rollback --steps 1 --dir "$dir/noschema" --database-url "$turl"
assert_contains "$ERR" "cannot create schema '_flotilla'"
assert_contains "$ERR" "permission denied for database 'noschema'"
assert_contains "$ERR" "needs CREATE on the database"
assert_eq "$(fl_psql "$url" "SELECT to_regclass('t_2') IS NOT NULL")" t
assert_eq "$(fl_psql "$url" "SELECT count(*) FROM _prisma_migrations")" 2
assert_eq "$(fl_psql "$url" "SELECT count(*) FROM pg_namespace WHERE nspname = '_flotilla'")" 0
assert_exit 1 "$FLOTILLA" resolve --rolled-back "$(ls "$dir/noschema" | grep -v toml | tail -n 1)" --dir "$dir/noschema" --database-url "$turl"
assert_exit 1 "$FLOTILLA" resolve --applied "$(ls "$dir/noschema" | grep -v toml | tail -n 1)" --dir "$dir/noschema" --database-url "$turl"
fl_psql "$url" "GRANT CREATE ON DATABASE noschema TO tenant_role" >/dev/null
assert_exit 0 "$FLOTILLA" rollback --steps 1 --dir "$dir/noschema" --database-url "$turl"
assert_eq "$(fl_psql "$url" "SELECT to_regclass('t_2') IS NULL")" t
assert_eq "$(fl_psql "$url" "SELECT schema_name || ' ' || event FROM _flotilla.events")" "public rolled_back"
# A second tenant role of the same database needs rights on what the first made.
fl_psql "$url" "CREATE ROLE other_role LOGIN PASSWORD 'other-secret'; CREATE SCHEMA other AUTHORIZATION other_role; GRANT CREATE ON DATABASE noschema TO other_role" >/dev/null
ourl="$(fl_url_user "$url" other_role other-secret)&schema=other"
assert_exit 0 "$FLOTILLA" deploy --dir "$dir/noschema" --database-url "$ourl"
assert_exit 1 "$FLOTILLA" rollback --steps 1 --dir "$dir/noschema" --database-url "$ourl"
assert_contains "$ERR" "needs USAGE on schema '_flotilla'"
fl_psql "$url" "GRANT USAGE ON SCHEMA _flotilla TO other_role" >/dev/null
assert_exit 1 "$FLOTILLA" rollback --steps 1 --dir "$dir/noschema" --database-url "$ourl"
assert_contains "$ERR" "needs INSERT on table '_flotilla.events'"
assert_eq "$(fl_psql "$url" "SELECT to_regclass('other.t_2') IS NOT NULL")" t
fl_psql "$url" "GRANT INSERT ON _flotilla.events TO other_role" >/dev/null
assert_exit 0 "$FLOTILLA" rollback --steps 1 --dir "$dir/noschema" --database-url "$ourl"
assert_eq "$(fl_psql "$url" "SELECT string_agg(schema_name, ',' ORDER BY id) FROM _flotilla.events")" "public,other"

# --- older flotilla kept _flotilla_events beside _prisma_migrations: a writer
# moves its rows into _flotilla.events and drops it; a reader warns ---
url=$(fl_newdb legacy)
fl_gen_migrations "$dir/legacy" 2
assert_exit 0 "$FLOTILLA" deploy --dir "$dir/legacy" --to "$(ls "$dir/legacy" | grep -v toml | head -n 1)" --database-url "$url"
fl_psql "$url" "CREATE TABLE _flotilla_events (id BIGSERIAL PRIMARY KEY, at TIMESTAMPTZ NOT NULL DEFAULT now(), migration_name VARCHAR(255) NOT NULL, event TEXT NOT NULL, checksum VARCHAR(64), detail TEXT); INSERT INTO _flotilla_events (migration_name, event, detail) VALUES ('20240101000000_old', 'rolled_back', 'from before')" >/dev/null
assert_exit 9 "$FLOTILLA" status --dir "$dir/legacy" --database-url "$url"
assert_contains "$ERR" "holds '_flotilla_events' from an older flotilla"
assert_eq "$(fl_psql "$url" "SELECT to_regclass('_flotilla_events') IS NOT NULL")" t
assert_exit 0 "$FLOTILLA" deploy --dir "$dir/legacy" --database-url "$url"
assert_eq "$(fl_psql "$url" "SELECT to_regclass('_flotilla_events') IS NULL")" t
assert_eq "$(fl_psql "$url" "SELECT schema_name || ' ' || migration_name || ' ' || detail FROM _flotilla.events")" "public 20240101000000_old from before"
assert_exit 0 "$FLOTILLA" status --dir "$dir/legacy" --database-url "$url"
assert_eq "$ERR" ""
fl_pass
