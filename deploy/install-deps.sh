#!/usr/bin/env bash
# Install every build, test and run dependency of flotilla from Debian packages.
# Idempotent: installs only what is missing; runs `apt-get update` only when needed.
# Runs as root (CI) or through sudo; never asks a question.
set -euo pipefail

packages=(
	build-essential cmake pkg-config clang-format
	libpq-dev postgresql postgresql-client
	libnng-dev protobuf-c-compiler libprotobuf-c-dev
	libsodium-dev check libpg-query-dev libyaml-dev libsqlite3-dev
	clang libclang-rt-14-dev
	# tests only: promtool checks /metrics (prometheus), headless chromium loads the
	# dashboard (tests/integration/fleet/test_fleet_http.sh)
	prometheus chromium
)

missing=()
for p in "${packages[@]}"; do
	status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	[ "$status" = installed ] || missing+=("$p")
done
# Node.js and npm, for the real Prisma CLI of tests/compat (prisma 6 needs node >= 18.18;
# Debian 12 has 18.20). Checked by command, not by package: a node from elsewhere (e.g.
# NodeSource's nodejs, which bundles npm and conflicts with Debian's npm) is kept.
node_ok() {
	local v
	command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || return 1
	v=$(node -p 'process.versions.node' 2>/dev/null) || return 1
	[ "$(printf '%s\n' 18.18.0 "$v" | sort -V | head -n 1)" = 18.18.0 ]
}
node_ok || missing+=(nodejs npm)
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=()
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
	sudo=(sudo -n)
fi
export DEBIAN_FRONTEND=noninteractive
echo "install-deps: installing ${missing[*]}" >&2
# A fresh image has empty package lists; an old one may be stale. Update once, retry once.
if ! "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null >/dev/null 2>&1; then
	"${sudo[@]}" apt-get update -q </dev/null >/dev/null
	"${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
fi
