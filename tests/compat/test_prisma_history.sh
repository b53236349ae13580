#!/usr/bin/env bash
# flotilla and the real Prisma CLI (pinned in package-lock.json) read and continue each
# other's history in _prisma_migrations: deploys, failures, resolve, rollback. Each
# scenario runs in a database of its own on the throwaway server.
. "$(dirname "$0")/lib.sh"

# A history as real Prisma projects have one: 8- and 14-digit prefixes, a name with a
# space, strings and a $$ body holding ';', a lone CREATE INDEX CONCURRENTLY, a file that
# brings its own BEGIN/COMMIT, an enum.
real_world_history() {
	compat_migration 20200101_init 'CREATE TABLE "Org" (
    "id" SERIAL NOT NULL,
    "name" TEXT NOT NULL,
    CONSTRAINT "Org_pkey" PRIMARY KEY ("id")
);'
	compat_migration 20210101000000_users 'CREATE TABLE "User" (
    "id" SERIAL NOT NULL,
    "email" TEXT NOT NULL,
    "bio" TEXT DEFAULT '"'it''s; fine'"',
    "orgId" INTEGER,
    CONSTRAINT "User_pkey" PRIMARY KEY ("id")
);
ALTER TABLE "User" ADD CONSTRAINT "User_orgId_fkey" FOREIGN KEY ("orgId") REFERENCES "Org"("id") ON DELETE SET NULL ON UPDATE CASCADE;
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW."email" := lower(NEW."email"); -- a ; inside
  RETURN NEW;
END $$;'
	compat_migration "20210301000000_index concurrently" \
		'CREATE INDEX CONCURRENTLY "User_email_idx" ON "User"("email");'
	compat_migration 20210401000000_own_tx 'BEGIN;
ALTER TABLE "User" ADD COLUMN "title" TEXT;
COMMIT;'
	compat_migration 20210501000000_enum 'CREATE TYPE "Role" AS ENUM ('"'USER', 'ADMIN'"');
ALTER TABLE "User" ADD COLUMN "role" "Role" NOT NULL DEFAULT '"'USER'"';' \
		'ALTER TABLE "User" DROP COLUMN "role";
DROP TYPE "Role";'
}
REAL_WORLD_IDS='20200101_init,20210101000000_users,20210301000000_index concurrently,20210401000000_own_tx,20210501000000_enum'

# What a schema holds, for comparing two databases: tables and columns, indexes,
# constraints, types. The history table is compared column by column, its rows apart.
# flotilla's own _flotilla_events is left out: it is flotilla's, Prisma never creates it.
# (DESIGN.md wants it outside the application's schema; today it is created there.)
schema_dump() {
	fl_psql "$DB_URL" "
	SELECT * FROM (
	SELECT 'col ' || table_name || '.' || column_name || ' ' || data_type || ' ' ||
	       coalesce(character_maximum_length::text, '-') || ' ' || is_nullable || ' ' ||
	       coalesce(column_default, '-')
	  FROM information_schema.columns WHERE table_schema = '$SCHEMA'
	UNION ALL
	SELECT 'idx ' || indexname || ' ' || regexp_replace(indexdef, ' ON [^ ]+\\.', ' ON ')
	  FROM pg_indexes WHERE schemaname = '$SCHEMA'
	UNION ALL
	SELECT 'con ' || conrelid::regclass::text || ' ' || conname || ' ' || pg_get_constraintdef(c.oid)
	  FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace WHERE n.nspname = '$SCHEMA'
	UNION ALL
	SELECT 'typ ' || t.typname || ' ' || string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder)
	  FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid JOIN pg_namespace n ON n.oid = t.typnamespace
	 WHERE n.nspname = '$SCHEMA' GROUP BY t.typname
	) s(line) WHERE line !~ '_flotilla_events'
	ORDER BY 1"
}

# --- flotilla deploys; Prisma finds nothing to do -----------------------------------------
compat_scenario by_flotilla app
real_world_history
assert_exit 0 "$FLOTILLA" deploy
assert_eq "$(grep -c '^applied' <<<"$OUT")" 5 "migrations flotilla applied"
prisma_diagnose 0
assert_eq "$DIAG" "$FL_UP_TO_DATE" "prisma migrate status after flotilla deploy"
assert_contains "$OUT" "Database schema is up to date"
rows_before=$(compat_rows)
assert_exit 0 prisma migrate deploy
assert_contains "$OUT" "No pending migrations to apply"
assert_eq "$(compat_rows)" "$rows_before" "history after a prisma deploy with nothing to do"
flotilla_rows=$rows_before
flotilla_schema=$(schema_dump)
assert_eq "$(fl_psql "$DB_URL" "SELECT to_regclass('public._prisma_migrations') IS NULL")" t \
	"no history outside the schema of ?schema=app"

# --- Prisma deploys; flotilla finds nothing to do -----------------------------------------
compat_scenario by_prisma app
real_world_history
assert_exit 0 prisma migrate deploy
assert_contains "$OUT" "All migrations have been successfully applied"
assert_exit 0 "$FLOTILLA" status
assert_contains "$OUT" "5 applied, 0 pending"
rows_before=$(compat_rows)
assert_exit 0 "$FLOTILLA" deploy
assert_eq "$(compat_rows)" "$rows_before" "history after a flotilla deploy with nothing to do"

# Both left the same schema and the same history, the random ids and times aside.
assert_eq "$(schema_dump)" "$flotilla_schema" "schema after prisma deploy vs flotilla deploy"
assert_eq "$(compat_rows)" "$flotilla_rows" "history rows after prisma deploy vs flotilla deploy"
assert_eq "$(cut -d' ' -f1 <<<"$flotilla_rows" | paste -sd,)" "${REAL_WORLD_IDS// concurrently/}" \
	"order of the history"

# --- failures: each reads the other's failed row as failed --------------------------------
# The failing migration fails on data, as in production: a row breaks its CHECK. Repairing
# the data by hand lets the same file apply after `resolve --rolled-back` (Prisma reports a
# migration whose file changed after its failure as edited, so the tests do not edit it).
bad_history() {
	compat_migration 20250101000000_a 'CREATE TABLE a (id int);'
	compat_migration 20250102000000_bad 'CREATE TABLE b (id int);
ALTER TABLE a ADD CONSTRAINT a_positive CHECK (id > 0);'
}
break_data() {
	fl_psql "$DB_URL" "INSERT INTO \"$SCHEMA\".a VALUES (0)" >/dev/null
}
repair_data() {
	fl_psql "$DB_URL" "DELETE FROM \"$SCHEMA\".a WHERE id <= 0" >/dev/null
}

# flotilla fails: Prisma refuses to deploy (P3009) and names the migration.
compat_scenario failed_in_flotilla
bad_history
assert_exit 0 "$FLOTILLA" deploy --to 20250101000000_a
break_data
assert_exit 4 "$FLOTILLA" deploy
assert_contains "$ERR" "a_positive"
prisma_diagnose 1
assert_eq "$DIAG" "table=yes history=none unapplied= unpersisted= failed=20250102000000_bad edited=" \
	"prisma migrate status after a failure in flotilla"
assert_contains "$OUT$ERR" "Following migration have failed"
assert_exit 1 prisma migrate deploy
assert_contains "$OUT$ERR" "P3009"
assert_contains "$OUT$ERR" "20250102000000_bad"
assert_eq "$(fl_psql "$DB_URL" "SELECT to_regclass('b') IS NULL")" t "table of the failed migration"

# Prisma fails: flotilla reports it failed and refuses to deploy past it. (The native
# engine words this P3018; the WebAssembly one, "external connector error". The history
# row is what matters, and it is the same.)
compat_scenario failed_in_prisma
compat_migration 20250101000000_a 'CREATE TABLE a (id int);'
assert_exit 0 prisma migrate deploy
break_data
bad_history
assert_exit 1 prisma migrate deploy
assert_contains "$ERR" "a_positive"
assert_contains "$ERR" "20250102000000_bad"
assert_eq "$(compat_rows | cut -d' ' -f1,3-)" "20250101000000_a 1 true false false
20250102000000_bad 0 false false true" "history after a failure in prisma"
assert_exit 4 "$FLOTILLA" status
assert_contains "$OUT" "failed"
assert_contains "$OUT" "20250102000000_bad"
assert_exit 4 "$FLOTILLA" deploy
assert_contains "$ERR" "20250102000000_bad"
assert_contains "$ERR" "resolve"

# --- resolve: each tool's resolve, read by the other --------------------------------------
# Prisma's `resolve --rolled-back` after its own failure: flotilla sees the migration
# pending and, the data repaired, applies it; Prisma agrees.
assert_exit 0 prisma migrate resolve --rolled-back 20250102000000_bad
assert_contains "$OUT" "Migration 20250102000000_bad marked as rolled back"
prisma_diagnose 0 # see resolve_across below
assert_eq "$DIAG" "$FL_UP_TO_DATE" "prisma migrate status after its own resolve --rolled-back"
assert_exit 9 "$FLOTILLA" status
assert_contains "$OUT" "1 applied, 1 pending"
repair_data
assert_exit 0 "$FLOTILLA" deploy
assert_contains "$OUT" "applied   20250102000000_bad"
prisma_diagnose 0
assert_eq "$DIAG" "$FL_UP_TO_DATE" "prisma migrate status after prisma resolve --rolled-back, flotilla deploy"

# flotilla's `resolve --applied` after its own failure, the change made by hand (a
# hotfix): Prisma agrees it is applied and has nothing to do.
compat_migration 20250103000000_hotfix 'CREATE TABLE c (id int);
SELECT 1/0;'
assert_exit 4 "$FLOTILLA" deploy
fl_psql "$DB_URL" 'CREATE TABLE c (id int)' >/dev/null
assert_exit 0 "$FLOTILLA" resolve --applied 20250103000000_hotfix
prisma_diagnose 0
assert_eq "$DIAG" "$FL_UP_TO_DATE" "prisma migrate status after flotilla resolve --applied"
assert_exit 0 prisma migrate deploy
assert_contains "$OUT" "No pending migrations to apply"

# The other way round: flotilla's `resolve --rolled-back`, read by Prisma, which then
# applies the migration; Prisma's `resolve --applied`, read by flotilla.
compat_scenario resolve_across
bad_history
assert_exit 0 "$FLOTILLA" deploy --to 20250101000000_a
break_data
assert_exit 4 "$FLOTILLA" deploy
assert_exit 0 "$FLOTILLA" resolve --rolled-back 20250102000000_bad
# Prisma's own quirk: `migrate status` counts a migration whose only rows are rolled back
# as present in the database, and says nothing; `migrate deploy` applies it again. It
# says the same after its own `resolve --rolled-back` (see failed_in_prisma above, where
# flotilla, like `migrate deploy`, calls it pending).
prisma_diagnose 0
assert_eq "$DIAG" "$FL_UP_TO_DATE" "prisma migrate status after flotilla resolve --rolled-back"
repair_data
assert_exit 0 prisma migrate deploy
assert_contains "$OUT" "20250102000000_bad"
assert_exit 0 "$FLOTILLA" status
assert_contains "$OUT" "2 applied, 0 pending"

compat_migration 20250103000000_hotfix 'CREATE TABLE c (id int);
SELECT 1/0;'
assert_exit 1 prisma migrate deploy
assert_contains "$ERR" "division by zero"
fl_psql "$DB_URL" 'CREATE TABLE c (id int)' >/dev/null
assert_exit 0 prisma migrate resolve --applied 20250103000000_hotfix
assert_contains "$OUT" "Migration 20250103000000_hotfix marked as applied"
assert_exit 0 "$FLOTILLA" status
assert_contains "$OUT" "3 applied, 0 pending"
rows_before=$(compat_rows)
assert_exit 0 "$FLOTILLA" deploy
assert_eq "$(compat_rows)" "$rows_before" "history after flotilla deploy past prisma resolve --applied"

# --- rollback: flotilla undoes, Prisma sees it not applied and applies it again -----------
compat_scenario rollback app
real_world_history
assert_exit 0 prisma migrate deploy
assert_exit 0 "$FLOTILLA" rollback --steps 1
assert_contains "$OUT" "20210501000000_enum"
assert_eq "$(fl_psql "$DB_URL" "SELECT to_regtype('app.\"Role\"') IS NULL")" t "type dropped by down.sql"
prisma_diagnose 1
assert_eq "$DIAG" "table=yes history=databaseIsBehind unapplied=20210501000000_enum unpersisted= failed= edited=" \
	"prisma migrate status after flotilla rollback"
assert_contains "$OUT" "20210501000000_enum"
assert_exit 0 prisma migrate deploy
assert_contains "$OUT" "20210501000000_enum"
assert_eq "$(fl_psql "$DB_URL" "SELECT to_regtype('app.\"Role\"') IS NOT NULL")" t "type created again"
prisma_diagnose 0
assert_eq "$DIAG" "$FL_UP_TO_DATE" "prisma migrate status after re-applying"
assert_exit 0 "$FLOTILLA" status
assert_contains "$OUT" "5 applied, 0 pending"
fl_pass
