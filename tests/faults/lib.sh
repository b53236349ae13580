# shellcheck shell=bash
# Helpers of the fault suite (run_faults.sh): the network namespace the agents live in, the
# coordinator's small disk, a seeded random source, and the fault counters. Sourced after
# tests/integration/fleet/lib.sh.

declare -A FF_COUNT=()   # faults injected, by kind
FF_VIOLATIONS=0          # invariant violations found
FF_VIOLATION_LOG=''      # one line per violation, also printed as found
FF_NS=''                 # the agents' network namespace ('' : none, agents in ours)
FF_VETH_ROOT=''          # our end of the veth pair
FF_COORD_IP=127.0.0.1    # where the coordinator listens for agents
FF_AGENT_IP=''           # the agents' address in their namespace
FF_NETNS_WHY=''          # why there is no namespace, when there is none
FF_NETEM=''              # the netem settings on the veth, or why none
FF_TMPFS=''              # the coordinator's folder, when a tmpfs is mounted on it
FF_TMPFS_WHY=''

# ff_rand N: a number in [0, N) from bash's RANDOM (seeded once from FL_FAULT_SEED).
ff_rand() {
	echo $(((RANDOM * 32768 + RANDOM) % $1))
}

# ff_free_port FROM: the first TCP port from FROM on that nothing listens on.
ff_free_port() {
	local port=$1
	while [ -n "$(ss -Hltn "sport = :$port" 2>/dev/null)" ]; do
		port=$((port + 1))
	done
	echo "$port"
}

# ff_count KIND: one more fault of that kind injected.
ff_count() {
	FF_COUNT[$1]=$((${FF_COUNT[$1]:-0} + 1))
}

# ff_violation WHAT...: an invariant broke. Printed now, counted, listed in the table.
ff_violation() {
	FF_VIOLATIONS=$((FF_VIOLATIONS + 1))
	FF_VIOLATION_LOG+="$*"$'\n'
	echo "faults: VIOLATION: $*" >&2
}

# ff_netns_setup: a namespace with a veth pair to ours (10.R.S.1 here, .2 there); agents run
# there, the coordinator listens on our end. Without the privilege, says why and leaves the
# agents in our namespace with the coordinator on 127.0.0.1.
ff_netns_setup() {
	local id=$(($$ % 60000)) out
	local a=$((200 + id / 250 % 50)) b=$((id % 250))
	FF_NS=flf$id
	FF_VETH_ROOT=flfr$id
	if ! out=$(ip netns add "$FF_NS" 2>&1); then
		FF_NETNS_WHY="ip netns add failed: $out"
		FF_NS=''
		return 0
	fi
	if ! out=$({
		ip link add "$FF_VETH_ROOT" type veth peer name flfp$id &&
			ip link set flfp$id netns "$FF_NS" &&
			ip addr add "10.$a.$b.1/30" dev "$FF_VETH_ROOT" &&
			ip link set "$FF_VETH_ROOT" up &&
			ip netns exec "$FF_NS" ip addr add "10.$a.$b.2/30" dev flfp$id &&
			ip netns exec "$FF_NS" ip link set flfp$id up &&
			ip netns exec "$FF_NS" ip link set lo up
	} 2>&1); then
		FF_NETNS_WHY="cannot set up the veth pair: $out"
		ip netns del "$FF_NS" 2>/dev/null || true
		ip link del "$FF_VETH_ROOT" 2>/dev/null || true
		FF_NS=''
		return 0
	fi
	FF_COORD_IP=10.$a.$b.1
	FF_AGENT_IP=10.$a.$b.2
	# Delayed, duplicated and reordered packets on the whole path, both ways.
	if out=$({
		tc qdisc add dev "$FF_VETH_ROOT" root netem delay 20ms 15ms duplicate 2% reorder 5% &&
			ip netns exec "$FF_NS" tc qdisc add dev flfp$id root netem delay 20ms 15ms duplicate 2% reorder 5%
	} 2>&1); then
		FF_NETEM='delay 20ms±15ms, duplicate 2%, reorder 5%, both ways'
	else
		FF_NETEM="none: tc netem failed: $out"
	fi
}

ff_netns_teardown() {
	[ -n "$FF_NS" ] || return 0
	ff_replies up
	ip netns del "$FF_NS" 2>/dev/null || true
	ip link del "$FF_VETH_ROOT" 2>/dev/null || true
}

# ff_in_ns CMD...: exec CMD in the agents' namespace (or here when there is none). It execs:
# _fleet_spawn runs it as a background subshell, whose pid becomes the agent's, so that a
# SIGKILL reaches the agent itself.
ff_in_ns() {
	if [ -n "$FF_NS" ]; then
		exec ip netns exec "$FF_NS" "$@"
	else
		exec "$@"
	fi
}

# ff_link up|down: the agents' link to the coordinator.
ff_link() {
	ip link set dev "$FF_VETH_ROOT" "$1"
}

# ff_replies up|down: down drops every packet from here to the agents (a blackhole route to
# their address) while theirs still arrive: requests are received and answered, the answers
# lost. (No netem or iptables needed.)
ff_replies() {
	if [ "$1" = down ]; then
		ip route add blackhole "$FF_AGENT_IP/32"
	else
		ip route del blackhole "$FF_AGENT_IP/32" 2>/dev/null || true
	fi
}

# ff_tmpfs_setup DIR SIZE: a tmpfs on DIR (the coordinator's store folder).
ff_tmpfs_setup() {
	local out
	if out=$(mount -t tmpfs -o "size=$2,mode=0700" flf-coord "$1" 2>&1); then
		FF_TMPFS=$1
	else
		FF_TMPFS_WHY="cannot mount a tmpfs: $out"
	fi
}

ff_tmpfs_teardown() {
	[ -n "$FF_TMPFS" ] || return 0
	umount "$FF_TMPFS" 2>/dev/null || umount -l "$FF_TMPFS" 2>/dev/null || true
	FF_TMPFS=''
}

# ff_fill DIR: fill the file system of DIR (a file DIR/.filler) until it has no space left.
ff_fill() {
	dd if=/dev/zero of="$1/.filler" bs=64k status=none 2>/dev/null || true
	# What dd could not take in whole blocks, a byte at a time would; small blocks suffice.
	dd if=/dev/zero of="$1/.filler2" bs=512 status=none 2>/dev/null || true
}

ff_unfill() {
	rm -f -- "$1/.filler" "$1/.filler2"
}
