#!/usr/bin/env bash
# Rough figures for the coordinator's HTTP endpoint (not a test; ctest does not run it): a
# throwaway fleet of one agent with N tenant databases (default 200) completes a rollout,
# then each path is fetched 21 times with curl and the median time printed.
#
#   deploy/pg-throwaway.sh run -- env N=200 FL_SOURCE_DIR=$PWD FLOTILLA=build/coordinator/cli/flotilla \
#       FL_COORDINATOR_BIN=build/coordinator/flotilla-coordinator \
#       FL_AGENT_BIN=build/agent/flotilla-agent bash tests/tools/measure_http.sh
. "$FL_SOURCE_DIR/tests/integration/fleet/lib.sh"
N=${N:-200}
FLEET_COORDINATOR_EXTRA='http_listen: http://127.0.0.1:0'
fleet_test_init
fleet_add_agent m1 "$N" 10
fleet_start_coordinator
fleet_start_agent m1
fleet_wait_tenants "$N"
port=$(sed -n 's/.*http on .* (port \([0-9][0-9]*\)).*/\1/p' "$FLEET_DIR/logs/coordinator.log" | tail -n 1)
B=http://127.0.0.1:$port
fleet_policy p <<'EOF2'
name: p
waves:
  - {name: canary, select: {labels: {ring: canary}}, max_parallel: 10}
  - {name: rest, select: {percent: 100}, max_parallel: 20}
per_agent_parallel: 20
EOF2
fleet_migrations 2
fleet_release "$FLEET_MIGS" 1 v1
fleet_start --release "$FLEET_RELEASE_FILE" --policy "$FLEET_POLICY" --all
fleet_wait_rollout completed -t 600
median() { # PATH: the median of 21 requests, in ms
	local i
	for i in $(seq 21); do curl -s -o /dev/null -w '%{time_total}\n' "$B$1"; done |
		sort -n | awk 'NR == 11 { printf "%.1f ms", $1 * 1000 }'
}
size() { curl -s "$B$1" | wc -c; }
echo "tenants: $N"
for p in /metrics '/api/v1/tenants?limit=500' '/api/v1/rollouts?all=1' /api/v1/tenants/m1_t001 /; do
	echo "$p: $(median "$p") ($(size "$p") bytes)"
done
fleet_pass
