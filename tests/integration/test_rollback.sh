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
assert_eq "$(fl_psql "$url" "SELECT count(*) FROM _flotilla_events WHERE event = 'rolled_back'")" 2
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
fl_pass
