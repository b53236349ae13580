#!/usr/bin/env bash
# flotilla in two minutes: build it, start a throwaway PostgreSQL, deploy the example Prisma
# migrations (deploy/examples/migrations) into a fresh database and show their status.
# Nothing is left behind: the server and its data are deleted when the script ends.
#
#   deploy/quickstart.sh            (BUILD=dir to use another build directory)
set -euo pipefail

root=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$root/build}
MIGRATIONS=$root/deploy/examples/migrations
export BUILD MIGRATIONS

say() {
	if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then
		printf '\n\033[1m%s\033[0m\n' "$*"
	else
		printf '\n%s\n' "$*"
	fi
}

# Second half: runs inside `pg-throwaway.sh run`, with DATABASE_URL and PG* set.
if [ "${1:-}" = --inside ]; then
	flotilla=$BUILD/coordinator/cli/flotilla
	[ -x "$flotilla" ] || flotilla=$(find "$BUILD" -type f -name flotilla -perm -u+x | head -n 1)
	if [ -z "$flotilla" ] || [ ! -x "$flotilla" ]; then
		echo "quickstart: no flotilla binary under '$BUILD'" >&2
		exit 1
	fi

	createdb quickstart
	url=${DATABASE_URL%%\?*}
	url="${url%/*}/quickstart?${DATABASE_URL#*\?}"

	say "1. A throwaway PostgreSQL is running; the database 'quickstart' is empty:"
	echo "   $url"

	say "2. flotilla deploy --dir deploy/examples/migrations"
	"$flotilla" deploy --dir "$MIGRATIONS" --database-url "$url"

	say "3. flotilla status"
	rc=0
	"$flotilla" status --dir "$MIGRATIONS" --database-url "$url" || rc=$?

	say "4. What the database now holds (psql \\dt and Prisma's history table):"
	psql -X -q -d "$url" -c '\dt'
	psql -X -q -d "$url" -c 'SELECT migration_name, applied_steps_count AS steps,
		finished_at IS NOT NULL AS finished FROM _prisma_migrations ORDER BY started_at, migration_name'

	say "5. Deploy again: already up to date, nothing to do"
	"$flotilla" deploy --dir "$MIGRATIONS" --database-url "$url"

	cat <<'EOF'

What happened:
  - flotilla read a Prisma migrations folder (one folder per migration, migration.sql
    inside, plus optional down.sql for rollback and verify.sql for a post-apply check).
  - It took Prisma's advisory lock, so it and `prisma migrate deploy` never run at once,
    then applied each pending migration in its own transaction, history row included.
  - 20250122160000_index_users_created_at starts with `-- flotilla:no-transaction`: its
    CREATE INDEX CONCURRENTLY ran outside a transaction, without blocking writes.
  - 20250201120000_add_projects has a verify.sql (SELECT count(*) >= 0 FROM users) that
    had to return true for the migration to count as applied.
  - History went into _prisma_migrations exactly as Prisma writes it, so
    `prisma migrate status` agrees with `flotilla status`.

Next: `flotilla rollback` (runs down.sql), `flotilla lint`, `flotilla graph`, `flotilla new`;
`flotilla --help` for the rest. The server and its data are deleted now.
EOF
	if [ "$rc" -ne 0 ]; then
		echo "quickstart: flotilla status exited with $rc" >&2
		exit "$rc"
	fi
	exit 0
fi

echo "==> installing dependencies (Debian packages)" >&2
"$root/deploy/install-deps.sh"
echo "==> building flotilla in $BUILD" >&2
cmake -S "$root" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j "$(nproc 2>/dev/null || echo 2)" --target flotilla >/dev/null
echo "==> starting a throwaway PostgreSQL" >&2
exec "$root/deploy/pg-throwaway.sh" run -- "$root/deploy/quickstart.sh" --inside
