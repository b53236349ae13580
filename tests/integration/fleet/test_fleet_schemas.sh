#!/usr/bin/env bash
# Schema-per-tenant: an agent discovers 6 tenants as the schemas of one database and
# migrates them in parallel, each in its own schema.
#
# Parallel is proved from the server's side: each tenant's _prisma_migrations records when
# the slow migration (1 s of pg_sleep) started and finished, and the intervals overlap.
# Prisma's lock in shared mode plus one lock per schema (docs/ARCHITECTURE.md) is what lets
# them; Prisma's exclusive lock alone would have run them one after another.
. "$(dirname "$0")/lib.sh"

fleet_test_init
fleet_add_agent_schemas s1 shared 6 0
fleet_start_coordinator
fleet_start_agent s1
fleet_wait_tenants 6

fleet_policy wide <<'EOF2'
name: wide
waves:
  - {name: all, select: {percent: 100}, max_parallel: 6}
per_agent_parallel: 6
EOF2
slow=$(fl_tmpdir)
fleet_migration "$slow" 20250320000000_slow "SELECT pg_sleep(1);"
fleet_migrations 1 "$slow/20250320000000_slow"
fleet_release "$FLEET_MIGS" 1 v1
assert_exit 0 fleet_cli rollout start --release "$FLEET_RELEASE_FILE" --policy "$FLEET_POLICY" \
	--all --release-key "$FLEET_RELEASE_KEY" --wait --interval 200ms

for t in $(fleet_tenants s1 6); do
	assert_eq "$(fleet_applied "shared.$t" 20250301090000_init)" 1 "init in schema $t"
	assert_eq "$(fleet_applied "shared.$t" 20250320000000_slow)" 1 "slow in schema $t"
	assert_eq "$(psql -X -A -t -q -d shared -c "SELECT count(*) FROM pg_tables
		WHERE schemaname = '$t' AND tablename = 'users'")" 1 "users in schema $t"
done
assert_eq "$(psql -X -A -t -q -d shared -c "SELECT count(*) FROM pg_tables
	WHERE schemaname = 'public' AND tablename IN ('users', '_prisma_migrations')")" 0 \
	"tables in the public schema"

# Overlap: the latest start of the slow migration is before the earliest finish.
q=""
for t in $(fleet_tenants s1 6); do
	q+="${q:+ UNION ALL }SELECT started_at, finished_at FROM \"$t\"._prisma_migrations
		WHERE migration_name = '20250320000000_slow'"
done
overlap=$(psql -X -A -t -q -d shared -c "SELECT max(started_at) < min(finished_at) FROM ($q) m")
peak=$(psql -X -A -t -q -d shared -c "SELECT max(n) FROM (SELECT (SELECT count(*) FROM ($q) o
	WHERE o.started_at <= m.started_at AND o.finished_at > m.started_at) AS n FROM ($q) m) x")
fl_log "at most $peak schemas migrated at once"
[ "$peak" -ge 2 ] || fl_fail "the schemas were migrated one at a time"
[ "$overlap" = t ] || fl_log "(not all 6 at once: fine, the agent caps its own work)"
fleet_pass
