#!/usr/bin/env bash
# flotilla's benchmarks (issue 9), not a test: ctest never runs this.
#
#   tests/bench/run.sh [--quick] [--json FILE] [--parallel P] [--tenants N] [--agents N]
#                      [--only agent,fleet,schemas,scale] [--durable]
#   tests/bench/run.sh --compare-agent BINARY [--rounds K] [--quick] [--tenants N] ...
#
# Sizes: 1,000 tenants and 10,000 simulated agents; --quick 200 and 1,000. P (default 8)
# is the parallelism every fleet-apply method gets. Prints one table; --json FILE writes
# every figure and ratio (the first: fleet_apply.ratio_to_lower_bound). Installs nothing
# but node-pg-migrate (and its driver, pg) from the npm registry into
# ${XDG_CACHE_HOME:-~/.cache}/flotilla-bench/npm; when that fails the method is skipped
# with a note. Everything runs inside one deploy/pg-throwaway.sh server, which runs with
# fsync and synchronous_commit off unless --durable turns them on, as a production server
# has them: every method's commits then wait for the WAL on disk, as flotilla's agent
# waits for its ledger (each fleet section records which in its "server_durable").
#
# Method.
# 1. fleet_apply: N tenant databases on the throwaway PostgreSQL, a release of 20 small
#    migrations (tables, indexes, foreign keys, columns, an enum, a view, a 500-row seed
#    and a backfill UPDATE of it). Each method starts from empty tenants (bench_apply
#    --reset, then CHECKPOINT) and is checked afterwards (every tenant has the last
#    migration's view), at parallelism P:
#      lower_bound  build/tests/bench/bench_apply: P threads applying the files with
#                   libpq, no coordination; per migration one round trip of BEGIN, the
#                   _prisma_migrations INSERT, the script, the row's UPDATE, COMMIT, which
#                   is the bookkeeping flotilla's agent does. Run before and after
#                   flotilla; their mean is the bound (both are in the JSON).
#      flotilla     coordinator and one agent owning the N tenants (deploy/fleet-demo/
#                   fleet.sh, real envelopes over ipc), agent max_parallel P, a one-wave
#                   policy with max_parallel P and per_agent_parallel P, no bake, no
#                   health checks; the time from just before `flotilla rollout start` to
#                   the wave's finished_at_ms on the coordinator (signing the order and
#                   the CLI's start included). Run twice: with fleet.sh's poll_hold 5s
#                   (the figure the ratios use) and with poll_hold 1s (the least allowed):
#                   a report answers the agent's held poll at once, so the two should
#                   agree; a gap between them says freed slots wait out the hold again.
#      psql_loop    xargs -P P over the tenants, `psql -1 -f` per migration per tenant.
#      node_pg_migrate  xargs -P P over the tenants, `node-pg-migrate up` per tenant on
#                   the same files as SQL migrations (its defaults: one transaction for
#                   all pending migrations, its advisory lock, its pgmigrations table;
#                   with schema tenants a --lock-value per schema, else they serialize).
# 2. fleet_apply_schemas: the same with N schemas of one database (Prisma's ?schema=):
#    the agent's discovery kind schemas; search_path for bench_apply and psql,
#    --schema/--migrations-schema for node-pg-migrate.
# 3. coordinator_scale: build/tests/bench/bench_load simulates A agents (distinct keys
#    from `fl-testclient flood-keys`, each with one tenant) against a flotilla-coordinator
#    over tcp: real envelopes, real nng, A/10 connections, in processes of at most 2,500
#    agents (latency quantiles are over every request of every process). See
#    bench_load.c's header for its phases; the coordinator's RSS is read from /proc before the Hellos and once
#    every agent holds a long poll: memory per tenant = delta / tenants.
# 4. agent overhead per migration, two ways: (flotilla - lower bound) * P / (N * 20), what
#    the coordination and the agent cost per migration beyond the SQL and its bookkeeping,
#    per worker (also for the 1s hold); and from the agent's own log, the mean time from
#    taking an assignment to its "applied" line (one tenant's 20 migrations, no waiting on
#    the coordinator) less the lower bound's time per tenant (its total * P / N), / 20;
#    agent_single does the same with one worker (P = 1) on 20 tenants, no contention.
# --compare-agent: instead of all that, flotilla's fleet apply on N tenant databases with
#    this build's agent (A) and with BINARY (B), K rounds of both, in turns (AB, BA, AB...)
#    on one server: what a change to the agent does, measured against itself in one run
#    rather than across runs of a noisy machine. Prints each run (its wall time and the CPU
#    it cost per tenant: agent, coordinator, server), the means and B / A of both.
# 5. CPU per tenant, in ms, for the bound and flotilla: the server's (its backends that
#    exited meanwhile: the postmaster's children's time), bench_apply's own, and the agent's
#    and the coordinator's (from /proc). On this machine every method is CPU-bound, so what
#    flotilla costs beyond the bound shows here first, and says where.
set -euo pipefail

root=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd)
self=$root/tests/bench/run.sh
QUICK=0
JSON=''
P=8
N=''
A=''
ONLY='agent,fleet,schemas,scale'
DURABLE=0
COMPARE_AGENT=''
ROUNDS=3
ARGS=("$@")
while [ $# -gt 0 ]; do
	case $1 in
	--quick) QUICK=1 ;;
	--json)
		JSON=${2:?--json FILE}
		shift
		;;
	--parallel)
		P=${2:?--parallel P}
		shift
		;;
	--tenants)
		N=${2:?--tenants N}
		shift
		;;
	--agents)
		A=${2:?--agents N}
		shift
		;;
	--only)
		ONLY=${2:?--only PARTS}
		shift
		;;
	--durable) DURABLE=1 ;;
	--compare-agent)
		COMPARE_AGENT=${2:?--compare-agent BINARY}
		shift
		;;
	--rounds)
		ROUNDS=${2:?--rounds K}
		shift
		;;
	-h | --help)
		sed -n '2,16p' "$self" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "run.sh: unknown argument '$1' (see --help)" >&2
		exit 2
		;;
	esac
	shift
done
[ -n "$N" ] || N=$((QUICK ? 200 : 1000))
[ -n "$A" ] || A=$((QUICK ? 1000 : 10000))
for v in N A P ROUNDS; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || {
		echo "run.sh: $v must be a positive integer, not '${!v}'" >&2
		exit 2
	}
done

if [ "${FL_BENCH_INSIDE:-}" != 1 ]; then
	BUILD=${BUILD:-$root/build}
	echo "==> building in $BUILD" >&2
	cmake -S "$root" -B "$BUILD" >/dev/null
	cmake --build "$BUILD" -j 2 --target flotilla flotilla-coordinator flotilla-agent \
		fl-testclient bench_apply bench_load >/dev/null
	NPM_DIR=${XDG_CACHE_HOME:-$HOME/.cache}/flotilla-bench/npm
	NPG=''
	if [ -x "$NPM_DIR/node_modules/.bin/node-pg-migrate" ]; then
		NPG=$NPM_DIR/node_modules/.bin/node-pg-migrate
	elif command -v npm >/dev/null 2>&1 && command -v node >/dev/null 2>&1; then
		echo "==> npm install node-pg-migrate pg into $NPM_DIR" >&2
		mkdir -p "$NPM_DIR"
		if timeout 300 npm install --no-audit --no-fund --prefix "$NPM_DIR" node-pg-migrate@9 pg \
			>"$NPM_DIR/install.log" 2>&1; then
			NPG=$NPM_DIR/node_modules/.bin/node-pg-migrate
		else
			echo "note: npm install failed (see $NPM_DIR/install.log): node-pg-migrate skipped" >&2
		fi
	else
		echo "note: no node/npm: node-pg-migrate skipped" >&2
	fi
	[ -z "$JSON" ] || JSON=$(cd -- "$(dirname -- "$JSON")" && pwd)/$(basename -- "$JSON")
	[ -z "$COMPARE_AGENT" ] || COMPARE_AGENT=$(cd -- "$(dirname -- "$COMPARE_AGENT")" && pwd)/$(basename -- "$COMPARE_AGENT")
	export FL_BENCH_INSIDE=1 BUILD NPG
	# The arguments again, --json FILE with FILE made absolute.
	set -- "${ARGS[@]}"
	ARGS=()
	while [ $# -gt 0 ]; do
		if [ "$1" = --json ]; then
			shift
		else
			ARGS+=("$1")
		fi
		shift
	done
	exec "$root/deploy/pg-throwaway.sh" run -- bash "$self" "${ARGS[@]}" ${JSON:+--json "$JSON"}
fi

# --- inside the throwaway server -------------------------------------------------------
if [ "$DURABLE" = 1 ]; then
	psql -X -q -c 'ALTER SYSTEM SET fsync = on' -c 'ALTER SYSTEM SET synchronous_commit = on' \
		-c 'SELECT pg_reload_conf()' >/dev/null
fi
BUILD=$(cd -- "$BUILD" && pwd)
APPLY=$BUILD/tests/bench/bench_apply
LOAD=$BUILD/tests/bench/bench_load
T=$BUILD/tests/tools/fl-testclient
export FLOTILLA=$BUILD/coordinator/cli/flotilla
# FL_BENCH_COORDINATOR, FL_BENCH_AGENT: other binaries (to try a change, or to profile one)
export FL_COORDINATOR_BIN=${FL_BENCH_COORDINATOR:-$BUILD/coordinator/flotilla-coordinator}
export FL_AGENT_BIN=${FL_BENCH_AGENT:-$BUILD/agent/flotilla-agent}
work=$(mktemp -d "${TMPDIR:-/tmp}/flbench.XXXXXX")
# shellcheck source=deploy/fleet-demo/fleet.sh
. "$root/deploy/fleet-demo/fleet.sh"
LOAD_PIDS=()
cleanup() {
	local p
	for p in "${LOAD_PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
	fleet_cleanup 2>/dev/null || true
	# FL_BENCH_KEEP=DIR: keep the logs and files of the run there
	[ -z "${FL_BENCH_KEEP:-}" ] || cp -R -- "$work" "$FL_BENCH_KEEP" 2>/dev/null || true
	rm -rf -- "$work"
}
trap cleanup EXIT

declare -A R=() # every figure, by its JSON path
say() { echo "bench: $*" >&2; }
now_ms() { date +%s%3N; }
# per_tenant MS [RUNS]: MS (the total of RUNS runs, default 1) in ms per tenant of one run
per_tenant() { awk -v a="$1" -v k="${2:-1}" -v n="$N" 'BEGIN { printf "%.1f", a / k / n }'; }

# --- the release: 20 migrations, as Prisma folders and as node-pg-migrate files -----------
MIGS=$work/migrations
NPG_MIGS=$work/npg-migrations
mkdir -p "$MIGS" "$NPG_MIGS"
printf '%s\n' '# Please do not edit this file manually' \
	'# It should be added in your version-control system (e.g., Git)' \
	'provider = "postgresql"' >"$MIGS/migration_lock.toml"
mig_i=0
mig() { # NAME SQL
	local id
	mig_i=$((mig_i + 1))
	TZ=UTC printf -v id '%(%Y%m%d%H%M%S)T' $((1735725600 + mig_i * 60))
	mkdir "$MIGS/${id}_$1"
	printf '%s\n' "$2" >"$MIGS/${id}_$1/migration.sql"
	printf -- '-- Up Migration\n%s\n\n-- Down Migration\n' "$2" >"$NPG_MIGS/${id}000_$1.sql"
}
mig init "CREATE TABLE users (id bigserial PRIMARY KEY, email text NOT NULL, name text,
  created_at timestamptz NOT NULL DEFAULT now());
CREATE UNIQUE INDEX users_email_key ON users (email);
INSERT INTO users (email, name)
  SELECT 'user' || g || '@example.com', CASE WHEN g % 3 = 0 THEN NULL ELSE 'User ' || g END
  FROM generate_series(1, 500) g;"
mig orgs "CREATE TABLE orgs (id bigserial PRIMARY KEY, name text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now());"
mig users_org "ALTER TABLE users ADD COLUMN org_id bigint REFERENCES orgs (id) ON DELETE SET NULL;"
mig users_org_idx "CREATE INDEX users_org_id_idx ON users (org_id);"
mig projects "CREATE TABLE projects (id bigserial PRIMARY KEY,
  org_id bigint NOT NULL REFERENCES orgs (id) ON DELETE CASCADE, name text NOT NULL,
  archived boolean NOT NULL DEFAULT false, created_at timestamptz NOT NULL DEFAULT now());"
mig projects_org_idx "CREATE INDEX projects_org_id_idx ON projects (org_id);"
mig users_display_name "ALTER TABLE users ADD COLUMN display_name text;"
mig backfill_display_name "UPDATE users SET display_name = coalesce(name, split_part(email, '@', 1));"
mig memberships "CREATE TYPE member_role AS ENUM ('owner', 'admin', 'member');
CREATE TABLE memberships (user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  project_id bigint NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
  role member_role NOT NULL DEFAULT 'member', PRIMARY KEY (user_id, project_id));"
mig api_keys "CREATE TABLE api_keys (id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE, hash bytea NOT NULL,
  last_used_at timestamptz);"
mig api_keys_user_idx "CREATE INDEX api_keys_user_id_idx ON api_keys (user_id);"
mig projects_slug "ALTER TABLE projects ADD COLUMN slug text;
CREATE UNIQUE INDEX projects_org_slug_key ON projects (org_id, slug);"
mig users_updated_at "ALTER TABLE users ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();"
mig audit_events "CREATE TABLE audit_events (id bigserial PRIMARY KEY,
  actor_id bigint REFERENCES users (id) ON DELETE SET NULL, action text NOT NULL,
  payload jsonb NOT NULL DEFAULT '{}', created_at timestamptz NOT NULL DEFAULT now());"
mig audit_events_created_idx "CREATE INDEX audit_events_created_at_idx ON audit_events (created_at DESC);"
mig display_name_not_null "ALTER TABLE users ALTER COLUMN display_name SET NOT NULL;"
mig invoices "CREATE TABLE invoices (id bigserial PRIMARY KEY,
  org_id bigint NOT NULL REFERENCES orgs (id), amount_cents bigint NOT NULL CHECK (amount_cents >= 0),
  currency char(3) NOT NULL DEFAULT 'EUR', issued_at timestamptz);"
mig invoices_org_idx "CREATE INDEX invoices_org_issued_idx ON invoices (org_id, issued_at);"
mig orgs_plan "ALTER TABLE orgs ADD COLUMN plan text NOT NULL DEFAULT 'free';"
mig active_projects "CREATE VIEW active_projects AS SELECT id, org_id, name, slug FROM projects WHERE NOT archived;"
N_MIGS=$mig_i
MIG_FILES=("$MIGS"/2*/migration.sql)

# --- the methods ---------------------------------------------------------------------
# TARGETS: one tenant a line, "DB" or "DB SCHEMA" (bench_apply's format).

reset_tenants() {
	"$APPLY" --reset --targets "$TARGETS" --parallel "$P" >/dev/null
	[ "$MODE" = databases ] || psql -X -q -d "$SCHEMA_DB" -c 'SET client_min_messages = warning' -c 'DROP SCHEMA IF EXISTS _flotilla CASCADE'
	psql -X -q -c CHECKPOINT
}

# check_tenants METHOD: every tenant has the release's last migration.
check_tenants() {
	local bad db
	if [ "$MODE" = databases ]; then
		bad=$(while read -r db; do
			psql -X -A -t -q -d "$db" -c "SELECT to_regclass('public.active_projects') IS NULL"
		done <"$TARGETS" | grep -c t || true)
	else
		bad=$(psql -X -A -t -q -d "$SCHEMA_DB" -c "SELECT count(*) FROM pg_namespace n
			WHERE n.nspname LIKE 'fa\_t%' AND NOT EXISTS (SELECT 1 FROM pg_class c
			WHERE c.relnamespace = n.oid AND c.relname = 'active_projects')")
	fi
	[ "$bad" = 0 ] || {
		say "$1: $bad tenant(s) lack the last migration"
		exit 1
	}
}

# server_cpu_ms: the CPU time, in ms, of the PostgreSQL backends that have exited (the
# postmaster reaps them: its children's user and system time).
server_cpu_ms() {
	cpu_ms "$(head -n 1 "$FL_PG_DATA/postmaster.pid")" children
}
# cpu_ms PID [children]: the process's own CPU time (every thread's), or with "children"
# that of its children it reaped, in ms (/proc/PID/stat: utime stime cutime cstime).
cpu_ms() {
	awk -v hz="$(getconf CLK_TCK)" -v f=$([ "${2:-}" = children ] && echo 14 || echo 12) \
		'{ sub(/^.*\) /, ""); printf "%.0f\n", ($f + $(f + 1)) * 1000 / hz }' "/proc/$1/stat"
}

# time_lower_bound: prints "MS CLIENT_CPU_MS SERVER_CPU_MS".
time_lower_bound() {
	local out s0
	s0=$(server_cpu_ms)
	out=$("$APPLY" --targets "$TARGETS" --parallel "$P" --dir "$MIGS")
	echo "$(sed -n 's/^ms=\([0-9.]*\).*/\1/p' <<<"$out")" \
		"$(sed -n 's/.*cpu_ms=\([0-9]*\).*/\1/p' <<<"$out")" $(($(server_cpu_ms) - s0))
}

psql_tenant() { # DB [SCHEMA]
	local f
	for f in "${MIG_FILES[@]}"; do
		PGOPTIONS=${2:+"-c search_path=$2"} psql -X -q -v ON_ERROR_STOP=1 -1 -d "$1" -f "$f" \
			>/dev/null || return 255
	done
}
npg_tenant() { # DB [SCHEMA]
	local err
	# Schemas of one database: node-pg-migrate's advisory lock is one per database unless
	# told otherwise; a lock value per schema lets the tenants run in parallel.
	err=$(DATABASE_URL="postgres://${PGUSER:-postgres}@localhost:$PGPORT/$1?host=$PGHOST" \
		"$NPG" up -m "$NPG_MIGS" --no-verbose --no-check-order \
		${2:+--schema "$2" --migrations-schema "$2" --lock-value "$(cksum <<<"$2" | cut -d' ' -f1)"} \
		2>&1 >/dev/null) || {
		printf '%s\n' "$err" >&2
		return 255
	}
}
export -f psql_tenant npg_tenant
export NPG NPG_MIGS work

time_xargs() { # FN
	local t0 t1
	export MIG_FILES_LIST="${MIG_FILES[*]}"
	t0=$(now_ms)
	# shellcheck disable=SC2016
	xargs -P "$P" -L 1 bash -c 'MIG_FILES=($MIG_FILES_LIST); '"$1"' "$@"' _ <"$TARGETS"
	t1=$(now_ms)
	echo $((t1 - t0))
}

# fleet_setup KEY MODE: the fleet (coordinator, one agent) and N empty tenants of MODE.
fleet_setup() {
	local key=$1
	MODE=$2
	# shellcheck disable=SC2034 # fleet.sh reads them
	FLEET_MAX_PARALLEL=$P FLEET_POLL_HOLD=5s FLEET_AGENTS=()
	mkdir -p "$work/$key"
	fleet_init "$work/$key" acme
	TARGETS=$work/$key/targets
	say "$key: creating $N tenants"
	if [ "$MODE" = databases ]; then
		fleet_add_agent fa "$N" 0
		psql -X -A -t -q -c "SELECT datname FROM pg_database WHERE datname LIKE 'fa\_t%' ORDER BY 1" >"$TARGETS"
	else
		SCHEMA_DB=fas
		fleet_add_agent_schemas fa "$SCHEMA_DB" "$N" 0
		psql -X -A -t -q -d "$SCHEMA_DB" -c "SELECT '$SCHEMA_DB ' || nspname FROM pg_namespace
			WHERE nspname LIKE 'fa\_t%' ORDER BY 1" >"$TARGETS"
	fi
	[ "$(wc -l <"$TARGETS")" = "$N" ] || {
		say "$key: $(wc -l <"$TARGETS") tenants made, not $N"
		exit 1
	}
	psql -X -q -c CHECKPOINT

	cat >"$work/$key/policy.yaml" <<EOF
name: bench
waves:
  - {name: all, select: {percent: 100}, max_parallel: $P}
per_agent_parallel: $P
EOF
}

# fleet_apply KEY MODE: the four methods on N tenants; figures under R[KEY.*].
fleet_apply() {
	local key=$1 lb1 lb1c lb1s lb2 lb2c lb2s fl fla flc fls fl1 am
	fleet_setup "$key" "$2"

	say "$key: lower bound (1)"
	read -r lb1 lb1c lb1s <<<"$(time_lower_bound)"
	check_tenants lower_bound
	reset_tenants

	say "$key: flotilla (poll_hold 5s)"
	read -r fl fla flc fls <<<"$(flotilla_run "$key" 5s 1)"
	say "$key: flotilla (poll_hold 1s)"
	read -r fl1 _ <<<"$(flotilla_run "$key" 1s 2)"
	R[$key.flotilla_poll_hold_1s_ms]=$fl1

	say "$key: lower bound (2)"
	read -r lb2 lb2c lb2s <<<"$(time_lower_bound)"
	check_tenants lower_bound
	reset_tenants

	say "$key: psql loop"
	R[$key.psql_loop_ms]=$(time_xargs psql_tenant)
	check_tenants psql_loop
	reset_tenants

	if [ -n "${NPG:-}" ]; then
		say "$key: node-pg-migrate"
		R[$key.node_pg_migrate_ms]=$(time_xargs npg_tenant)
		check_tenants node_pg_migrate
		reset_tenants
	fi

	R[$key.tenants]=$N
	R[$key.server_durable]=$([ "$DURABLE" = 1 ] && echo true || echo false)
	read -r am _ <<<"$(agent_apply_ms "$FLEET_DIR/logs/fa.log")"
	R[$key.migrations]=$N_MIGS
	R[$key.parallel]=$P
	R[$key.flotilla_ms]=$fl
	# CPU per tenant, in ms: where the time beyond the bound goes on a machine this busy
	R[$key.cpu_ms_per_tenant_lower_bound_server]=$(per_tenant $((lb1s + lb2s)) 2)
	R[$key.cpu_ms_per_tenant_lower_bound_client]=$(per_tenant $((lb1c + lb2c)) 2)
	R[$key.cpu_ms_per_tenant_flotilla_server]=$(per_tenant "$fls")
	R[$key.cpu_ms_per_tenant_flotilla_agent]=$(per_tenant "$fla")
	R[$key.cpu_ms_per_tenant_flotilla_coordinator]=$(per_tenant "$flc")
	R[$key.lower_bound_ms]=$(awk -v a="$lb1" -v b="$lb2" 'BEGIN { printf "%.0f", (a + b) / 2 }')
	R[$key.lower_bound_runs_ms]="[$(printf '%.0f' "$lb1"), $(printf '%.0f' "$lb2")]"
	R[$key.ratio_to_lower_bound]=$(awk -v f="$fl" -v l="${R[$key.lower_bound_ms]}" \
		'BEGIN { printf "%.3f", f / l }')
	R[$key.ratio_to_lower_bound_poll_hold_1s]=$(awk -v f="${R[$key.flotilla_poll_hold_1s_ms]}" \
		-v l="${R[$key.lower_bound_ms]}" 'BEGIN { printf "%.3f", f / l }')
	R[$key.speedup_vs_psql_loop]=$(awk -v f="$fl" -v l="${R[$key.psql_loop_ms]}" \
		'BEGIN { printf "%.2f", l / f }')
	[ -z "${R[$key.node_pg_migrate_ms]:-}" ] ||
		R[$key.speedup_vs_node_pg_migrate]=$(awk -v f="$fl" -v l="${R[$key.node_pg_migrate_ms]}" \
			'BEGIN { printf "%.2f", l / f }')
	R[$key.agent_apply_ms_per_tenant]=$am
	R[$key.lower_bound_ms_per_tenant]=$(awk -v l="${R[$key.lower_bound_ms]}" -v p="$P" -v n="$N" \
		'BEGIN { printf "%.1f", l * p / n }')
	R[$key.agent_work_overhead_ms_per_migration]=$(awk -v a="$am" \
		-v b="${R[$key.lower_bound_ms_per_tenant]}" -v m="$N_MIGS" 'BEGIN { printf "%.2f", (a - b) / m }')
	R[$key.agent_overhead_ms_per_migration_poll_hold_1s]=$(awk -v f="${R[$key.flotilla_poll_hold_1s_ms]}" \
		-v l="${R[$key.lower_bound_ms]}" -v p="$P" -v n="$N" -v m="$N_MIGS" \
		'BEGIN { printf "%.3f", (f - l) * p / (n * m) }')
	R[$key.agent_overhead_ms_per_migration]=$(awk -v f="$fl" -v l="${R[$key.lower_bound_ms]}" \
		-v p="$P" -v n="$N" -v m="$N_MIGS" 'BEGIN { printf "%.3f", (f - l) * p / (n * m) }')
	if [ "$MODE" = databases ]; then
		fleet_drop_databases
	else
		dropdb "$SCHEMA_DB"
	fi
}

# flotilla_run KEY HOLD RUN: the fleet's rollout of the release on the (empty) tenants with
# the coordinator's poll_hold HOLD; prints the milliseconds from just before `rollout
# start` to the wave's finished_at_ms, then the CPU ms the agent, the coordinator and the
# server's backends spent from then until the fleet stopped ("MS AGENT COORDINATOR SERVER").
# The fleet is stopped, checked and reset after.
flotilla_run() {
	local key=$1 hold=$2 run=$3 t0 t_end json hellos a0 c0 s0 a1 c1
	# shellcheck disable=SC2034 # fleet.sh reads it
	FLEET_POLL_HOLD=$hold
	fleet_start_coordinator
	hellos=$(grep -c 'hello accepted' "$FLEET_DIR/logs/fa.log" 2>/dev/null || true)
	fleet_start_agent fa
	_fleet_wait 600 _bench_hello_after "${hellos:-0}" || {
		say "$key: the agent did not say Hello"
		exit 1
	}
	fleet_wait_tenants "$N" 600
	fleet_release "$MIGS" 1 v1
	psql -X -q -c CHECKPOINT
	a0=$(cpu_ms "${FLEET_PID[fa]}") c0=$(cpu_ms "${FLEET_PID[coordinator]}") s0=$(server_cpu_ms)
	t0=$(now_ms)
	fleet_cli rollout start --release "$FLEET_RELEASE_FILE" --policy "$work/$key/policy.yaml" \
		--all --release-key "$FLEET_RELEASE_KEY" --wait --interval 100ms --json \
		>"$work/$key/start.$run.json" || {
		say "$key: the rollout did not complete; agent log:"
		tail -n 20 "$FLEET_DIR/logs/fa.log" >&2
		exit 1
	}
	json=$(fleet_cli rollout status --json --timeout 10s "$(grep -o '"rollout_id":"[^"]*"' \
		"$work/$key/start.$run.json" | awk 'NR == 1' | cut -d'"' -f4)")
	t_end=$(grep -o '"finished_at_ms":[0-9]*' <<<"$json" | awk 'NR == 1' | cut -d: -f2)
	[ -n "$t_end" ] && [ "$t_end" -gt "$t0" ] || t_end=$(now_ms)
	a1=$(cpu_ms "${FLEET_PID[fa]}") c1=$(cpu_ms "${FLEET_PID[coordinator]}")
	fleet_cleanup
	echo $((t_end - t0)) $((a1 - a0)) $((c1 - c0)) $(($(server_cpu_ms) - s0))
	check_tenants flotilla >&2
	reset_tenants >&2
}
_bench_hello_after() { # COUNT: the agent's log has more than COUNT accepted Hellos
	[ "$(grep -c 'hello accepted' "$FLEET_DIR/logs/fa.log")" -gt "$1" ]
}

# agent_apply_ms LOG: the mean time, in ms, from an agent's "assignment N: apply" log line to
# its "assignment N (apply ...): applied" line: what one tenant's 20 migrations cost inside
# the agent (connection, lock, history, the SQL, fingerprint, journal), with no waiting on
# the coordinator. Prints "MS COUNT".
agent_apply_ms() {
	# shellcheck disable=SC2016
	awk '
function t(line,   ts, h, m, s) {
	match(line, /"ts":"[^"]*"/); ts = substr(line, RSTART + 6, RLENGTH - 7)
	h = substr(ts, 12, 2); m = substr(ts, 15, 2); s = substr(ts, 18, 6)
	return h * 3600 + m * 60 + s
}
/"msg":"assignment [0-9]+: apply/ { match($0, /assignment [0-9]+/); start[substr($0, RSTART + 11, RLENGTH - 11)] = t($0) }
/"msg":"assignment [0-9]+ \(apply[^"]*\): applied"/ {
	match($0, /assignment [0-9]+/); id = substr($0, RSTART + 11, RLENGTH - 11)
	if (id in start) { sum += t($0) - start[id]; n++ }
}
END { if (n) printf "%.1f %d\n", sum / n * 1000, n }
' "$1"
}

fleet_drop_databases() {
	local db
	while read -r db; do
		printf 'DROP DATABASE "%s";\n' "$db"
	done <"$TARGETS" | psql -X -q -d postgres >/dev/null
}

# --- coordinator scale ---------------------------------------------------------------
line_of() { # FILE WORD: the first line of FILE starting with WORD
	awk -v w="$2" '$1 == w { print; exit }' "$1"
}
field() { # LINE KEY: the value of KEY=VALUE in LINE
	tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p" | awk 'NR == 1'
}
wait_line() { # FILE WORD SECONDS PID
	local deadline=$((SECONDS + $3))
	until [ -n "$(line_of "$1" "$2")" ]; do
		if [ "$SECONDS" -ge "$deadline" ] || ! kill -0 "$4" 2>/dev/null; then
			say "bench_load: no '$2' line after $3s; its output:"
			cat "$1" "$1.err" >&2
			return 1
		fi
		sleep 0.05
	done
}
# The phase lines of every bench_load process (in the current folder or $d).
phase_lines() { cat "$d"/load.*.out 2>/dev/null | awk -v w="$1" '$1 == w'; }
sum_field() { # PHASE KEY: the sum over the processes
	local l
	phase_lines "$1" | while read -r l; do field "$l" "$2"; done | awk '{ s += $1 } END { printf "%.0f", s }'
}
max_field() {
	local l
	phase_lines "$1" | while read -r l; do field "$l" "$2"; done | sort -n | tail -n 1
}
min_field() {
	local l
	phase_lines "$1" | while read -r l; do field "$l" "$2"; done | sort -n | head -n 1
}
pct() { # FILES... Q: the Q-quantile of every latency in FILES (1: the largest)
	local q=${*: -1}
	cat "${@:1:$#-1}" | sort -n | awk -v q="$q" '{ a[NR] = $1 } END {
		if (NR == 0) { print 0; exit }
		i = int((NR - 1) * q) + 1; printf "%.2f", a[i] }'
}
coordinator_scale() {
	local d=$work/scale k p pub_coord pub_op pub_rel cpid rss0 rss1 rss2 rid t0 seconds procs
	local -a cli_env lpids=()
	mkdir -p "$d/migs/20250101000000_init"
	cd "$d" || exit 1
	for k in coord:coordinator op:operator rel:release; do
		"$FLOTILLA" keygen --kind "${k#*:}" --out "${k%%:*}.key" >/dev/null
	done
	pub_coord=$("$T" pubkey coord.key coordinator)
	pub_op=$("$T" pubkey op.key operator)
	pub_rel=$("$T" pubkey rel.key release)
	say "coordinator_scale: $A agents, one tenant each"
	{
		printf '%s\n' "key_file: coord.key" "project_id: acme" "agent_listen: tcp://127.0.0.1:0" \
			"admin_listen: tcp://127.0.0.1:0" "store: store.db" "peers_state_file: peers.seq" \
			"poll_hold: 5m" "agent_offline_after: 10m" "max_held_polls: $((A + 1000))" \
			"trusted_release_keys: [\"$pub_rel\"]" "operators:" \
			"  - {name: admin, public_key: \"$pub_op\", role: admin}"
		"$T" flood-keys "$A" bench
	} >c.yaml
	"$FL_COORDINATOR_BIN" --config c.yaml --ready-file ready --log-level warn >coord.log 2>&1 &
	cpid=$!
	LOAD_PIDS+=("$cpid")
	for _ in $(seq 1 1200); do [ -s ready ] && break; sleep 0.05; done
	[ -s ready ] || {
		say "the coordinator did not start: $(tail -n 5 coord.log)"
		exit 1
	}
	# shellcheck disable=SC1091
	. ./ready
	# shellcheck disable=SC2154 # agent_port, admin_port: from ./ready
	cli_env=(FLOTILLA_COORDINATOR="tcp://127.0.0.1:$admin_port" FLOTILLA_COORDINATOR_KEY="$pub_coord"
		FLOTILLA_KEY=op.key)
	echo "CREATE TABLE bench_scale (id int);" >migs/20250101000000_init/migration.sql
	"$FLOTILLA" release build --dir migs --project acme --sequence 1 --out r1.rel >/dev/null
	"$FLOTILLA" release sign --key rel.key r1.rel >/dev/null
	env "${cli_env[@]}" "$FLOTILLA" release push r1.rel >/dev/null
	printf '%s\n' "name: scale" "waves:" "  - {name: all, select: {percent: 100}, max_parallel: $A}" \
		"per_agent_parallel: 1" >policy.yaml
	rss() { awk '/^VmRSS/ { print $2 }' "/proc/$cpid/status"; }
	rss0=$(rss)
	seconds=$((QUICK ? 5 : 10))
	# At most 2,500 agents a process (bench_load.c says why); the rate is shared out.
	procs=$(((A + 2499) / 2500))
	mkdir -p barrier
	for ((k = 0; k < procs; k++)); do
		# shellcheck disable=SC2154 # from ./ready
		"$LOAD" --url "tcp://127.0.0.1:$agent_port" --coordinator-key "$pub_coord" \
			--agents $(((A * (k + 1)) / procs - (A * k) / procs)) --first $(((A * k) / procs)) \
			--procs "$procs" --barrier barrier --latencies "lat.$k" --seed bench \
			--rate $((2000 / procs)) --seconds "$seconds" >"load.$k.out" 2>"load.$k.out.err" &
		lpids+=($!)
		LOAD_PIDS+=($!)
	done
	all_lines() { # WORD SECONDS
		local k
		for ((k = 0; k < procs; k++)); do
			wait_line "load.$k.out" "$1" "$2" "${lpids[k]}" || exit 1
		done
	}
	all_lines hello 900
	rss1=$(rss)
	all_lines held 300
	rss2=$(rss)
	env "${cli_env[@]}" "$FLOTILLA" rollout start --release r1.rel --policy policy.yaml --all \
		--release-key rel.key --json >start.json
	rid=$(grep -o '"rollout_id":"[^"]*"' start.json | awk 'NR == 1' | cut -d'"' -f4)
	all_lines assigned 600
	t0=$(now_ms)
	env "${cli_env[@]}" "$FLOTILLA" rollout halt "$rid" --reason bench >/dev/null
	all_lines halted 300
	all_lines reports 300
	for p in "${lpids[@]}"; do
		wait "$p" || say "bench_load reported errors: $(cat load.*.out.err | head -n 5)"
	done
	kill -TERM "$cpid" 2>/dev/null || true
	wait "$cpid" 2>/dev/null || true
	cd "$work" || exit 1

	R[coordinator_scale.agents]=$A
	R[coordinator_scale.tenants]=$A
	R[coordinator_scale.load_processes]=$procs
	R[coordinator_scale.hello_per_s]=$(max_field hello ms | awk -v a="$A" '{ printf "%.0f", a * 1000 / $1 }')
	R[coordinator_scale.hello_p99_ms]=$(pct "$d"/lat.*.hello 0.99)
	R[coordinator_scale.target_requests_per_s]=$(((2000 / procs) * procs))
	R[coordinator_scale.requests_per_s]=$(sum_field rate achieved)
	R[coordinator_scale.requests]=$(sum_field rate requests)
	R[coordinator_scale.requests_skipped]=$(sum_field rate skipped)
	R[coordinator_scale.p50_ms]=$(pct "$d"/lat.*.rate 0.50)
	R[coordinator_scale.p99_ms]=$(pct "$d"/lat.*.rate 0.99)
	R[coordinator_scale.max_ms]=$(pct "$d"/lat.*.rate 1)
	R[coordinator_scale.request_errors]=$(sum_field rate errors)
	R[coordinator_scale.reports_per_s]=$(sum_field reports rate)
	R[coordinator_scale.report_p50_ms]=$(pct "$d"/lat.*.reports 0.50)
	R[coordinator_scale.report_p99_ms]=$(pct "$d"/lat.*.reports 0.99)
	R[coordinator_scale.halted_agents]=$(sum_field halted agents)
	R[coordinator_scale.halt_to_all_agents_ms]=$(($(max_field halted last_ms) - t0))
	R[coordinator_scale.halt_to_first_agent_ms]=$(($(min_field halted first_ms) - t0))
	R[coordinator_scale.rss_start_kib]=$rss0
	R[coordinator_scale.rss_after_hello_kib]=$rss1
	R[coordinator_scale.rss_polls_held_kib]=$rss2
	R[coordinator_scale.bytes_per_tenant]=$(((rss2 - rss0) * 1024 / A))
	R[coordinator_scale.bytes_per_tenant_without_held_polls]=$(((rss1 - rss0) * 1024 / A))
}
print_scale() {
	printf '\ncoordinator_scale: %s simulated agents (one tenant each), real envelopes over tcp\n' \
		"$(get coordinator_scale.agents)"
	printf '  requests/s %s (target %s, %s sent, %s skipped), p50 %s ms, p99 %s ms, max %s ms (target p99 < 50)\n' \
		"$(get coordinator_scale.requests_per_s)" "$(get coordinator_scale.target_requests_per_s)" \
		"$(get coordinator_scale.requests)" "$(get coordinator_scale.requests_skipped)" \
		"$(get coordinator_scale.p50_ms)" "$(get coordinator_scale.p99_ms)" "$(get coordinator_scale.max_ms)"
	printf '  hello %s/s (p99 %s ms); reports %s/s (p50 %s ms, p99 %s ms)\n' \
		"$(get coordinator_scale.hello_per_s)" "$(get coordinator_scale.hello_p99_ms)" \
		"$(get coordinator_scale.reports_per_s)" "$(get coordinator_scale.report_p50_ms)" \
		"$(get coordinator_scale.report_p99_ms)"
	printf '  halt to all %s agents: %s ms (first %s ms; target < 2000)\n' \
		"$(get coordinator_scale.halted_agents)" "$(get coordinator_scale.halt_to_all_agents_ms)" \
		"$(get coordinator_scale.halt_to_first_agent_ms)"
	printf '  memory per tenant: %s bytes with its poll held, %s without (target < 4096)\n' \
		"$(get coordinator_scale.bytes_per_tenant)" \
		"$(get coordinator_scale.bytes_per_tenant_without_held_polls)"
}

# agent_single: one agent with one worker (max_parallel 1) on 20 tenant databases, P = 1 for
# the lower bound too: the agent's own time per tenant (agent_apply_ms) against the bound's.
agent_single() {
	local key=agent_single n=20 lb am
	# shellcheck disable=SC2034 # fleet.sh reads them
	FLEET_MAX_PARALLEL=1 FLEET_POLL_HOLD=1s FLEET_AGENTS=()
	MODE=databases
	mkdir -p "$work/$key"
	fleet_init "$work/$key" acme
	TARGETS=$work/$key/targets
	say "$key: $n tenants, one worker"
	fleet_add_agent fa "$n" 0
	psql -X -A -t -q -c "SELECT datname FROM pg_database WHERE datname LIKE 'fa\_t%' ORDER BY 1" >"$TARGETS"
	printf '%s\n' "name: bench" "waves:" "  - {name: all, select: {percent: 100}, max_parallel: 1}" \
		"per_agent_parallel: 1" >"$work/$key/policy.yaml"
	psql -X -q -c CHECKPOINT
	lb=$("$APPLY" --targets "$TARGETS" --parallel 1 --dir "$MIGS" | sed -n 's/^ms=\([0-9.]*\).*/\1/p')
	check_tenants lower_bound
	reset_tenants
	N=$n flotilla_run "$key" 1s 1 >/dev/null
	read -r am _ <<<"$(agent_apply_ms "$FLEET_DIR/logs/fa.log")"
	fleet_drop_databases
	R[$key.tenants]=$n
	R[$key.lower_bound_ms_per_tenant]=$(awk -v l="$lb" -v n="$n" 'BEGIN { printf "%.1f", l / n }')
	R[$key.agent_apply_ms_per_tenant]=$am
	R[$key.agent_overhead_ms_per_migration]=$(awk -v a="$am" -v l="$lb" -v n="$n" -v m="$N_MIGS" \
		'BEGIN { printf "%.2f", (a - l / n) / m }')
}

# compare_agents: flotilla with this build's agent (A) and COMPARE_AGENT (B), in turns: the
# wall time of each run and the CPU it cost per tenant (agent + coordinator + server), which
# drifts less than the wall time on a shared machine.
compare_agents() {
	local key=compare a_bin=$FL_AGENT_BIN r who ms ag co sv order
	local -A wall=([A]=0 [B]=0) cpu=([A]=0 [B]=0) # totals over the rounds, in ms
	fleet_setup "$key" databases
	for r in $(seq 1 "$ROUNDS"); do
		order="A B"
		[ $((r % 2)) = 1 ] || order="B A"
		for who in $order; do
			FL_AGENT_BIN=$a_bin
			[ "$who" = A ] || FL_AGENT_BIN=$COMPARE_AGENT
			say "compare: round $r, agent $who"
			read -r ms ag co sv <<<"$(flotilla_run "$key" 5s "$r$who")"
			printf '  round %s agent %s: %s ms; CPU per tenant %s ms (agent %s, coordinator %s, server %s)\n' \
				"$r" "$who" "$ms" "$(per_tenant $((ag + co + sv)))" "$(per_tenant "$ag")" \
				"$(per_tenant "$co")" "$(per_tenant "$sv")"
			wall[$who]=$((wall[$who] + ms))
			cpu[$who]=$((cpu[$who] + ag + co + sv))
		done
	done
	FL_AGENT_BIN=$a_bin
	printf '\ncompare: %s tenant databases, P=%s, %s rounds\n' "$N" "$P" "$ROUNDS"
	printf '  A %s: mean %s ms, CPU per tenant %s ms\n' "$a_bin" $((wall[A] / ROUNDS)) \
		"$(per_tenant "${cpu[A]}" "$ROUNDS")"
	printf '  B %s: mean %s ms, CPU per tenant %s ms\n' "$COMPARE_AGENT" $((wall[B] / ROUNDS)) \
		"$(per_tenant "${cpu[B]}" "$ROUNDS")"
	printf '  B / A %s (CPU %s)\n' \
		"$(awk -v a="${wall[A]}" -v b="${wall[B]}" 'BEGIN { printf "%.3f", b / a }')" \
		"$(awk -v a="${cpu[A]}" -v b="${cpu[B]}" 'BEGIN { printf "%.3f", b / a }')"
}
if [ -n "$COMPARE_AGENT" ]; then
	compare_agents
	exit 0
fi

case ",$ONLY," in *,agent,*) agent_single ;; esac
case ",$ONLY," in *,fleet,*) fleet_apply fleet_apply databases ;; esac
case ",$ONLY," in *,schemas,*) fleet_apply fleet_apply_schemas schemas ;; esac
case ",$ONLY," in *,scale,*) coordinator_scale ;; esac

# --- the table and the JSON ---------------------------------------------------------
get() { printf '%s' "${R[$1]:-}"; }
print_table() {
	local k
	printf '\n%s\n' "flotilla benchmarks: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), PostgreSQL $(psql -X -A -t -c 'SHOW server_version') (fsync $(psql -X -A -t -c 'SHOW fsync'), synchronous_commit $(psql -X -A -t -c 'SHOW synchronous_commit')), P=$P"
	for k in fleet_apply fleet_apply_schemas; do
		[ -n "$(get "$k.flotilla_ms")" ] || continue
		printf '\n%s: %s tenants x %s migrations, parallelism %s\n' "$k" "$(get "$k.tenants")" \
			"$(get "$k.migrations")" "$P"
		printf '  %-18s %10s %12s\n' method "ms" "vs flotilla"
		printf '  %-18s %10s %12s\n' flotilla "$(get "$k.flotilla_ms")" 1.00
		printf '  %-18s %10s %12s   (the coordinator holding polls 1s, not 5s)\n' "flotilla, hold 1s" \
			"$(get "$k.flotilla_poll_hold_1s_ms")" \
			"$(awk -v a="$(get "$k.flotilla_poll_hold_1s_ms")" -v f="$(get "$k.flotilla_ms")" 'BEGIN { printf "%.2f", a / f }')"
		printf '  %-18s %10s %12s   (runs %s)\n' "lower bound" "$(get "$k.lower_bound_ms")" \
			"$(awk -v a="$(get "$k.lower_bound_ms")" -v f="$(get "$k.flotilla_ms")" 'BEGIN { printf "%.2f", a / f }')" \
			"$(get "$k.lower_bound_runs_ms")"
		printf '  %-18s %10s %12s\n' "psql loop" "$(get "$k.psql_loop_ms")" \
			"$(awk -v a="$(get "$k.psql_loop_ms")" -v f="$(get "$k.flotilla_ms")" 'BEGIN { printf "%.2f", a / f }')"
		if [ -n "$(get "$k.node_pg_migrate_ms")" ]; then
			printf '  %-18s %10s %12s\n' node-pg-migrate "$(get "$k.node_pg_migrate_ms")" \
				"$(awk -v a="$(get "$k.node_pg_migrate_ms")" -v f="$(get "$k.flotilla_ms")" 'BEGIN { printf "%.2f", a / f }')"
		else
			printf '  %-18s %10s\n' node-pg-migrate skipped
		fi
		printf '  flotilla / lower bound %sx (target <= 1.15); psql loop %sx slower (>= 5); node-pg-migrate %sx slower (>= 1.5)\n' \
			"$(get "$k.ratio_to_lower_bound")" "$(get "$k.speedup_vs_psql_loop")" \
			"$(get "$k.speedup_vs_node_pg_migrate")"
		printf '  agent overhead per migration: %s ms ((flotilla - lower bound) x P / (N x 20)), %s ms with hold 1s\n' \
			"$(get "$k.agent_overhead_ms_per_migration")" "$(get "$k.agent_overhead_ms_per_migration_poll_hold_1s")"
		printf '  inside the agent: %s ms per tenant (lower bound %s): %s ms per migration beyond the SQL\n' \
			"$(get "$k.agent_apply_ms_per_tenant")" "$(get "$k.lower_bound_ms_per_tenant")" \
			"$(get "$k.agent_work_overhead_ms_per_migration")"
		printf '  CPU ms per tenant: lower bound %s server + %s client; flotilla %s server + %s agent + %s coordinator\n' \
			"$(get "$k.cpu_ms_per_tenant_lower_bound_server")" "$(get "$k.cpu_ms_per_tenant_lower_bound_client")" \
			"$(get "$k.cpu_ms_per_tenant_flotilla_server")" "$(get "$k.cpu_ms_per_tenant_flotilla_agent")" \
			"$(get "$k.cpu_ms_per_tenant_flotilla_coordinator")"
	done
	if [ -n "$(get agent_single.tenants)" ]; then
		printf '\nagent_single: one worker, %s tenants: %s ms per tenant in the agent, lower bound %s: %s ms per migration beyond the SQL\n' \
			"$(get agent_single.tenants)" "$(get agent_single.agent_apply_ms_per_tenant)" \
			"$(get agent_single.lower_bound_ms_per_tenant)" "$(get agent_single.agent_overhead_ms_per_migration)"
	fi
	if [ -n "$(get coordinator_scale.agents)" ]; then
		print_scale
	fi
}
write_json() {
	local k sect prev='' first=1 v
	# Sections in a fixed order, fleet_apply first and its ratio first inside it.
	{
		printf '{\n'
		for sect in fleet_apply fleet_apply_schemas coordinator_scale agent_single; do
			first=1
			for k in $( (printf '%s\n' "$sect.ratio_to_lower_bound"; printf '%s\n' "${!R[@]}" | sort) |
				awk -v s="$sect." 'index($0, s) == 1 && !seen[$0]++'); do
				[ -n "${R[$k]:-}" ] || continue
				if [ "$first" = 1 ]; then
					[ -z "$prev" ] || printf ',\n'
					printf '  "%s": {\n' "$sect"
					prev=$sect
				else
					printf ',\n'
				fi
				v=${R[$k]}
				[[ $v =~ ^-?[0-9.]+$ || $v == \[* || $v == true || $v == false ]] || v="\"$v\""
				printf '    "%s": %s' "${k#"$sect".}" "$v"
				first=0
			done
			[ "$first" = 1 ] || printf '\n  }'
		done
		printf '\n}\n'
	} >"$JSON"
}
print_table
[ -z "$JSON" ] || {
	write_json
	say "figures in $JSON"
}
