# shellcheck shell=bash
# What the fleet tests share. Source it first thing:
#
#   . "$(dirname "$0")/lib.sh"
#
# It sources tests/integration/lib.sh (assertions, wait_for, temp dirs, the EXIT trap) and
# deploy/fleet-demo/fleet.sh (a throwaway coordinator and agents), and stops the fleet when
# the test exits, printing the daemons' logs when it failed. Each test builds its own fleet:
#
#   fleet_test_init                      a fleet folder, keys, the coordinator's config
#   fleet_add_agent a1 6 2               6 tenant databases a1_t001.., 2 of them canaries
#   fleet_start_coordinator; fleet_start_agent a1; fleet_wait_tenants 6
#   fleet_policy NAME <<'EOF' ... EOF    a policy file, path in $FLEET_POLICY
#   fleet_migrations N                   the first N demo migrations in a folder: $FLEET_MIGS
#   fleet_release "$FLEET_MIGS" 1        build, sign, push
#   fleet_start ARGS...                  rollout start (signed) --json: $FLEET_ROLLOUT is its id
#   fleet_wait_rollout STATE... [-t SECONDS]
#
# Tenants are the agents' databases (or schemas); fleet_applied TENANT MIGRATION counts the
# history rows of a migration in the tenant's own _prisma_migrations.

. "$(dirname -- "${BASH_SOURCE[0]}")/../lib.sh"
# shellcheck source=../../../deploy/fleet-demo/fleet.sh
. "$FL_SOURCE_DIR/deploy/fleet-demo/fleet.sh"

FLEET_DEMO=$FL_SOURCE_DIR/deploy/fleet-demo
FLEET_POLICY=''
FLEET_MIGS=''
FLEET_ROLLOUT=''

_fleet_test_exit() {
	local f
	fleet_cleanup
	# shellcheck disable=SC2154 # rc is _fl_exit's
	if [ "${rc:-0}" -ne 0 ] && [ -n "$FLEET_DIR" ] && [ -d "$FLEET_DIR/logs" ]; then
		for f in "$FLEET_DIR"/logs/*.log; do
			echo "--- $(basename -- "$f") (last 40 lines)" >&2
			tail -n 40 -- "$f" >&2
		done
	fi
}
fl_on_exit _fleet_test_exit

fleet_test_init() {
	FLEET_POLL_HOLD=${FLEET_POLL_HOLD:-2s}
	FLEET_OFFLINE_AFTER=${FLEET_OFFLINE_AFTER:-6s}
	fleet_init "$(fl_tmpdir)" acme
}

# fleet_pass: the last line of a fleet test that got to its end: stop the fleet and check
# that every daemon stopped cleanly (exit 0 on SIGTERM), and that no sanitizer (an ASan
# build) reported anything in any daemon's log.
fleet_pass() {
	local name f
	fleet_cleanup
	for name in coordinator "${FLEET_AGENTS[@]}"; do
		[ "${FLEET_EXIT[$name]:-0}" = 0 ] ||
			fl_fail "$name exited ${FLEET_EXIT[$name]} when stopped: $(tail -n 5 "$FLEET_DIR/logs/$name.log")"
	done
	for f in "$FLEET_DIR"/logs/*.log; do
		if grep -q -E 'ERROR: (Address|Leak|Thread)Sanitizer|runtime error:' "$f"; then
			fl_fail "a sanitizer reported in $(basename -- "$f"):
$(grep -E -A 20 'ERROR: (Address|Leak|Thread)Sanitizer|runtime error:' "$f" | head -n 40)"
		fi
	done
	fl_pass
}

# fleet_policy NAME: the policy on stdin into a file; its path in FLEET_POLICY.
fleet_policy() {
	FLEET_POLICY=$FLEET_DIR/$1.yaml
	cat >"$FLEET_POLICY"
}

# fleet_migrations N [EXTRA_DIR...]: a folder with the first N demo migrations (and the
# migration folders given); its path in FLEET_MIGS.
fleet_migrations() {
	local n=$1 m i=0
	shift
	FLEET_MIGS=$(fl_tmpdir)
	cp "$FLEET_DEMO/migrations/migration_lock.toml" "$FLEET_MIGS/"
	for m in "$FLEET_DEMO"/migrations/2*/; do
		[ "$i" -lt "$n" ] || break
		cp -R "$m" "$FLEET_MIGS/"
		i=$((i + 1))
	done
	for m in "$@"; do
		cp -R "$m" "$FLEET_MIGS/"
	done
}

# fleet_migration DIR ID SQL [DOWN]: write a migration folder DIR/ID.
fleet_migration() {
	mkdir -p "$1/$2"
	printf '%s\n' "$3" >"$1/$2/migration.sql"
	[ $# -lt 4 ] || printf '%s\n' "$4" >"$1/$2/down.sql"
}

# fleet_start ARGS...: `rollout start --json` signed with the release key; FLEET_ROLLOUT
# gets the rollout's id.
fleet_start() {
	assert_exit 0 fleet_cli rollout start --json --release-key "$FLEET_RELEASE_KEY" "$@"
	FLEET_ROLLOUT=$(printf '%s' "$OUT" | grep -o '"rollout_id":"[^"]*"' | awk 'NR == 1' | cut -d'"' -f4)
	[ -n "$FLEET_ROLLOUT" ] || fl_fail "no rollout id in: $OUT"
}

# fleet_rollout_json [ID]: the rollout's status document.
fleet_rollout_json() {
	fleet_cli rollout status "${1:-$FLEET_ROLLOUT}" --json --timeout 5s
}

# fleet_rollout_state [ID]: running, completed, halted...
fleet_rollout_state() {
	fleet_rollout_json "$@" | grep -o '^{"id":"[^"]*","state":"[^"]*"' | cut -d'"' -f8
}

# fleet_wave_field WAVE FIELD [ID]: a number or state of wave WAVE (from 0), e.g.
# fleet_wave_field 1 tenants_applied.
fleet_wave_field() {
	local json w
	json=$(fleet_rollout_json "${3:-$FLEET_ROLLOUT}") || return 1
	json=${json#*\"waves\":\[} # the waves only, not the rollout's own fields
	w=$(printf '%s' "$json" | sed 's/},{"index":/}\n{"index":/g' | grep "\"index\":$1,\"name\"")
	printf '%s' "$w" | grep -o "\"$2\":\\(\"[^\"]*\"\\|[0-9]*\\)" | awk 'NR == 1' | cut -d: -f2 | tr -d '"'
}

_fleet_state_is() {
	local s want
	s=$(fleet_rollout_state) || return 1
	for want in "$@"; do
		[ "$s" = "$want" ] && return 0
	done
	return 1
}

# fleet_wait_rollout STATE... [-t SECONDS]: until the rollout is in one of the states.
fleet_wait_rollout() {
	local t=90 states=()
	while [ $# -gt 0 ]; do
		if [ "$1" = -t ]; then
			t=$2
			shift 2
		else
			states+=("$1")
			shift
		fi
	done
	wait_for "$t" _fleet_state_is "${states[@]}" ||
		fl_fail "rollout $FLEET_ROLLOUT is $(fleet_rollout_state), not ${states[*]}, after ${t}s"
}

# fleet_tenant_psql TENANT SQL: run SQL in a tenant's database (schema tenants: DB.SCHEMA).
fleet_tenant_psql() {
	local db=$1 schema=''
	case $db in
	*.*)
		schema=${db#*.}
		db=${db%%.*}
		;;
	esac
	PGOPTIONS=${schema:+-c search_path=$schema} psql -X -A -t -q -v ON_ERROR_STOP=1 -d "$db" -c "$2"
}

# fleet_applied TENANT MIGRATION: how many rows of MIGRATION the tenant's history holds that
# count as applied (finished, not rolled back); fleet_rows: every row of it, whatever state.
fleet_applied() {
	fleet_tenant_psql "$1" "SELECT count(*) FROM _prisma_migrations WHERE migration_name = '$2'
		AND finished_at IS NOT NULL AND rolled_back_at IS NULL" 2>/dev/null || echo 0
}

fleet_rows() {
	fleet_tenant_psql "$1" "SELECT count(*) FROM _prisma_migrations WHERE migration_name = '$2'" \
		2>/dev/null || echo 0
}

# fleet_tenants AGENT N: the agent's tenant ids AGENT_t001..AGENT_tN.
fleet_tenants() {
	local i
	for ((i = 1; i <= $2; i++)); do
		printf '%s_t%03d\n' "$1" "$i"
	done
}
