#!/usr/bin/env bash
# flotilla's fleet in two minutes: build it, start a throwaway PostgreSQL with 200 tenant
# databases, a coordinator and 4 agents (50 tenants each, 5 of them canaries), then roll two
# releases across the fleet in canary waves:
#   release 1 (3 migrations) goes canary -> 10% -> everyone and completes;
#   release 2 renames a column the health check reads: it fails on the canary wave, the
#   rollout rolls that wave back and halts, and no other tenant is touched.
# Keys are made on the fly. Needs no input. Everything it starts is stopped and deleted when
# it ends, also on Ctrl-C or failure.
#
#   deploy/quickstart.sh            (BUILD=dir to use another build directory)
set -euo pipefail

root=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$root/build}
export BUILD

if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then
	bold=$'\033[1m' dim=$'\033[2m' off=$'\033[0m'
else
	bold='' dim='' off=''
fi

# Second half: runs inside `pg-throwaway.sh run`, with PGHOST, PGPORT, PGUSER set.
if [ "${1:-}" = --inside ]; then
	demo=$root/deploy/fleet-demo
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/flotilla-quickstart.XXXXXX")
	t0=$SECONDS

	# shellcheck source=fleet-demo/fleet.sh
	. "$demo/fleet.sh"

	finish() {
		local rc=$?
		trap - EXIT INT TERM
		fleet_cleanup
		if [ "$rc" -ne 0 ] && [ -d "$tmp/logs" ]; then
			echo "quickstart: failed (exit $rc); the last lines of each log:" >&2
			for f in "$tmp"/logs/*.log; do
				echo "--- $(basename -- "$f")" >&2
				tail -n 5 -- "$f" >&2
			done
		fi
		rm -rf -- "$tmp"
		exit "$rc"
	}
	trap finish EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM

	step=0
	say() {
		step=$((step + 1))
		printf '\n%s%d. %s%s %s(%ds)%s\n' "$bold" "$step" "$*" "$off" "$dim" \
			$((SECONDS - t0)) "$off"
	}
	show() { # the command, then its output
		printf '%s$ flotilla %s%s\n' "$dim" "$*" "$off"
		fleet_cli "$@"
	}

	say "A fleet: 200 tenant databases on one throwaway PostgreSQL, a coordinator, 4 agents"
	FLEET_POLL_HOLD=1s # agents ask again every second when idle: snappier for a demo
	fleet_init "$tmp" acme
	fleet_add_agent eu1 50 2 region=eu
	fleet_add_agent eu2 50 1 region=eu
	fleet_add_agent us1 50 1 region=us
	fleet_add_agent us2 50 1 region=us
	echo "   keys made just now: coordinator, 4 agents, an operator (admin), a release key"
	echo "   agents discover their databases (eu1_t001 ... us2_t050); 5 carry ring=canary"
	fleet_start_coordinator
	for a in eu1 eu2 us1 us2; do
		fleet_start_agent "$a"
	done
	fleet_wait_tenants 200 90
	show agents list

	say "Release 1: three migrations, built, signed with the release key, pushed"
	mkdir "$tmp/v1" "$tmp/v2"
	cp -R "$demo/migrations/migration_lock.toml" "$demo/migrations/20250301090000_init" \
		"$demo/migrations/20250302090000_add_orgs" \
		"$demo/migrations/20250303090000_index_users_created_at" "$tmp/v1/"
	cp -R "$demo/migrations/." "$tmp/v2/"
	fleet_release "$tmp/v1" 1 v1
	"$FLOTILLA" release show "$FLEET_RELEASE_FILE" | sed -n '1,8p'
	v1=$FLEET_RELEASE_FILE

	say "The plan (a dry run): canary -> 10% -> everyone, health-checked"
	show rollout plan --release "$v1" --policy "$demo/policies/canary.yaml" --all

	say "Start it, signed with the release key, and watch it to the end"
	show rollout start --release "$v1" --policy "$demo/policies/canary.yaml" --all \
		--release-key "$FLEET_RELEASE_KEY" --reason "quickstart: release 1" --wait \
		--interval 500ms
	show fleet status

	say "Release 2 renames users.email; lint calls it breaking, the plan says so"
	fleet_release "$tmp/v2" 2 v2
	v2=$FLEET_RELEASE_FILE
	show rollout plan --release "$v2" --policy "$demo/policies/canary.yaml" --all

	say "Start it anyway: the canaries' health check fails, their wave is rolled back"
	rc=0
	show rollout start --release "$v2" --policy "$demo/policies/canary.yaml" --all \
		--release-key "$FLEET_RELEASE_KEY" --reason "quickstart: release 2" --wait \
		--interval 500ms || rc=$?
	case $rc in
	15) echo "   exit 15: the rollout halted" ;;
	16) echo "   exit 16: the rollout was rolled back" ;;
	*)
		echo "quickstart: release 2's rollout exited $rc, expected 15 or 16" >&2
		exit 1
		;;
	esac

	say "The fleet now: every tenant on release 1, nobody on the bad migration"
	show fleet status
	canary=eu1_t001
	show tenant show "$canary" --reports 3 | sed -n '1,24p'
	touched=0
	for db in $(psql -X -A -t -q -d postgres -c \
		"SELECT datname FROM pg_database WHERE datname ~ '^(eu|us)[12]_t[0-9]+$' ORDER BY 1"); do
		n=$(psql -X -A -t -q -d "$db" -c \
			"SELECT count(*) FROM _prisma_migrations WHERE migration_name LIKE '%rename_users_email'
			 AND finished_at IS NOT NULL AND rolled_back_at IS NULL")
		[ "$n" = 0 ] || touched=$((touched + 1))
	done
	echo "   tenants with 20250310090000_rename_users_email applied, by their own history: $touched of 200"
	[ "$touched" = 0 ] || {
		echo "quickstart: $touched tenants still hold release 2's migration" >&2
		exit 1
	}
	printf '%s$ flotilla audit --all | grep -v (reads)%s\n' "$dim" "$off"
	fleet_cli audit --all | grep -v -E ' (agent_list|fleet_status|rollout_status|tenant_show|release_list|audit_query) ' || true

	cat <<EOF

${bold}What happened${off} ($((SECONDS - t0))s)
  - Agents next to the databases dialed the coordinator (no inbound port on database hosts),
    said Hello with every tenant's _prisma_migrations history, and long-polled for work.
  - Each rollout was a signed order: project, release, target, the tenants it may touch and
    the whole policy (waves, health checks, on_failure: rollback-wave). The release key that
    signed it never reached the coordinator; agents checked every assignment against it.
  - Release 2's health check failed on the canary wave. The failure budget (max_failures: 0)
    tripped, agents reverted the canaries with down.sql as the signed policy allows, and the
    rollout stopped: the other 195 tenants never saw release 2.

Next: README.md "The fleet" (every command), docs/POLICY.md (policies), docs/WIRE.md (trust).
Everything started here is being stopped and deleted now.
EOF
	exit 0
fi

echo "==> installing dependencies (Debian packages)" >&2
"$root/deploy/install-deps.sh"
echo "==> building flotilla, flotilla-coordinator and flotilla-agent in $BUILD" >&2
cmake -S "$root" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j "$(nproc 2>/dev/null || echo 2)" \
	--target flotilla flotilla-coordinator flotilla-agent >/dev/null
echo "==> starting a throwaway PostgreSQL" >&2
exec "$root/deploy/pg-throwaway.sh" run -- "$root/deploy/quickstart.sh" --inside
