#!/usr/bin/env bash
# Rough figures for flotilla-coordinator (not a test; ctest does not run it):
#   - memory per held poll: N agents (keys from `fl-testclient flood-keys`, listed
#     in the config) say Hello, then each parks a long poll; the coordinator's
#     resident memory is read after the Hellos and again once it holds N polls;
#   - Poll requests per second: polls answered at once (max-wait 0), from one
#     agent sending one at a time, then from 4 agents (4 processes) at once.
#
#   tests/tools/measure_coordinator.sh BUILD_DIR [AGENTS [SOCKETS]]
#
# AGENTS defaults to 2000, SOCKETS (connections the agents share) to AGENTS/10.
# Needs an open-file limit above SOCKETS*2. Prints one "key: value" line each.
set -euo pipefail

build=$(cd -- "${1:?usage: measure_coordinator.sh BUILD_DIR [AGENTS [SOCKETS]]}" && pwd)
agents=${2:-2000}
sockets=${3:-$((agents / 10 > 0 ? agents / 10 : 1))}
C=$build/coordinator/flotilla-coordinator
T=$build/tests/tools/fl-testclient
F=$build/coordinator/cli/flotilla

dir=$(mktemp -d)
cpid=''
cleanup() {
	[ -z "$cpid" ] || kill -KILL "$cpid" 2>/dev/null || true
	rm -rf -- "$dir"
}
trap cleanup EXIT
cd "$dir"

"$F" keygen --kind coordinator --out coord.key >/dev/null
coord=$("$T" pubkey coord.key coordinator)
for i in 0 1 2 3; do
	"$F" keygen --kind agent --out "b$i.key" >/dev/null
done
{
	printf '%s\n' "key_file: coord.key" "project_id: acme" "agent_listen: tcp://127.0.0.1:0" \
		"admin_listen: tcp://127.0.0.1:0" "store: store.db" "poll_hold: 5m" \
		"max_held_polls: $((agents + 100))"
	"$T" flood-keys "$agents" measure
	for i in 0 1 2 3; do
		printf '%s\n' "  - {name: bench$i, public_key: \"$("$T" pubkey "b$i.key" agent)\"}"
	done
} >c.yaml

"$C" --config c.yaml --ready-file ready >coord.log 2>&1 &
cpid=$!
for _ in $(seq 1 600); do [ -s ready ] && break; sleep 0.05; done
# shellcheck disable=SC1091
. ./ready
# shellcheck disable=SC2154 # from ./ready
url=tcp://127.0.0.1:$agent_port
rss() { awk '/^VmRSS/ {print $2}' "/proc/$cpid/status"; }
held() {
	kill -USR1 "$cpid"
	sleep 0.3
	grep -ao 'held polls: [0-9]*' coord.log | tail -n 1 | grep -o '[0-9]*$'
}

empty=$(rss)
"$T" --url "$url" --coordinator-key "$coord" flood --agents "$agents" --seed measure \
	--sockets "$sockets" --window 16 --hello-only >/dev/null
before=$(rss)
"$T" --url "$url" --coordinator-key "$coord" flood --agents "$agents" --seed measure \
	--sockets "$sockets" --max-wait 240000 >flood.out &
flood=$!
for _ in $(seq 1 600); do
	[ "$(held 2>/dev/null || echo 0)" = "$agents" ] && break
	sleep 0.2
done
after=$(rss)
echo "agents: $agents over $sockets connections"
echo "held polls: $(held)"
echo "rss at start: ${empty} KiB"
echo "rss after every agent said Hello: ${before} KiB"
echo "rss with every poll held: ${after} KiB"
echo "memory per held poll: $(((after - before) * 1024 / agents)) bytes"
echo "memory per agent (model, hello, held poll): $(((after - empty) * 1024 / agents)) bytes"
kill -TERM "$cpid"
wait "$cpid" || true
cpid=''
wait "$flood" || true
echo "flood: $(tail -n 1 flood.out)"

rm -f ready
"$C" --config c.yaml --ready-file ready --log-level warn >>coord.log 2>&1 &
cpid=$!
for _ in $(seq 1 600); do [ -s ready ] && break; sleep 0.05; done
# shellcheck disable=SC1091
. ./ready
url=tcp://127.0.0.1:$agent_port
for i in 0 1 2 3; do
	"$T" --url "$url" --coordinator-key "$coord" --key "b$i.key" hello >/dev/null
done
echo "poll, 1 agent: $("$T" --url "$url" --coordinator-key "$coord" --key b0.key --times 4000 \
	poll --max-wait 0 2>&1 >/dev/null | tail -n 1)"
pids=()
for i in 0 1 2 3; do
	"$T" --url "$url" --coordinator-key "$coord" --key "b$i.key" --times 4000 \
		poll --max-wait 0 2>"rate$i" >/dev/null &
	pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || true; done
echo "poll, 4 agents at once: $(cat rate0 rate1 rate2 rate3 | awk -F'rate=' \
	'{split($0, a, " "); for (k in a) if (a[k] ~ /^errors=/) e += substr(a[k], 8); r += $2}
	 END {printf "rate=%d errors=%d", r, e}')"
kill -TERM "$cpid"
wait "$cpid" || true
cpid=''
