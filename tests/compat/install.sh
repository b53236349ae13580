#!/usr/bin/env bash
# Install the pinned Prisma CLI for the compatibility tests, once, and print where it is.
#
#   tests/compat/install.sh      prints the install folder (it holds node_modules/)
#
# What is installed is exactly tests/compat/package-lock.json (`npm ci`), with install
# scripts off (`--ignore-scripts`): @prisma/engines' postinstall would download native
# engines from binaries.prisma.sh, which the tests never use (they run Prisma's
# WebAssembly schema engine through @prisma/adapter-pg; see prisma.config.ts).
#
# The folder is $FL_COMPAT_CACHE/<hash of package.json and package-lock.json>, where
# FL_COMPAT_CACHE defaults to ${XDG_CACHE_HOME:-~/.cache}/flotilla/prisma-compat: never the
# repository. Concurrent runs wait on a lock, and an install is moved into place only when
# complete, so a half-made one is never used. Installs of other lockfiles that no run has
# used for 30 days are removed; any install may be deleted by hand between runs.
#
# Exit status: 0 installed (or already there); 77 skipped: node/npm missing or the npm
# registry unreachable (the message says which); 1 anything else (npm ci failing against a
# reachable registry is a real failure).
set -euo pipefail

here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
prog=compat/install.sh

skip() {
	echo "$prog: SKIP: $*" >&2
	exit 77
}

for tool in node npm sha256sum flock; do
	command -v "$tool" >/dev/null 2>&1 ||
		skip "'$tool' is not installed (deploy/install-deps.sh installs node and npm)"
done

root=${FL_COMPAT_CACHE:-${XDG_CACHE_HOME:-${HOME:?}/.cache}/flotilla/prisma-compat}
key=$(cat "$here/package.json" "$here/package-lock.json" | sha256sum | cut -c1-16)
dest=$root/$key

if [ -f "$dest/.complete" ]; then
	touch -- "$dest/.complete" 2>/dev/null || true # marks it used
	echo "$dest"
	exit 0
fi

mkdir -p -- "$root" || {
	echo "$prog: cannot create '$root' (set FL_COMPAT_CACHE)" >&2
	exit 1
}
exec {lock}>"$root/.lock"
flock "$lock"
if [ -f "$dest/.complete" ]; then # installed by whoever held the lock before us
	echo "$dest"
	exit 0
fi

export npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
registry=$(npm config get registry 2>/dev/null || echo 'the npm registry')
if ! timeout 60 npm ping --fetch-retries=1 --fetch-retry-mintimeout=2000 --fetch-timeout=20000 \
	>/dev/null 2>&1; then
	skip "cannot reach $registry to install the pinned Prisma CLI; the compatibility" \
		"tests did NOT run (install once online, or point FL_COMPAT_CACHE at an install)"
fi

# Leftovers of an install that was killed: nobody else installs while we hold the lock.
rm -rf -- "$root"/.install.*
work=$(mktemp -d "$root/.install.XXXXXX")
trap 'rm -rf -- "$work"' EXIT
cp -- "$here/package.json" "$here/package-lock.json" "$work/"
echo "$prog: installing prisma from package-lock.json into '$dest'" >&2
if ! (cd "$work" && timeout 600 npm ci --ignore-scripts --no-audit --no-fund --loglevel=error \
	</dev/null >npm.log 2>&1); then
	cat "$work/npm.log" >&2
	echo "$prog: npm ci failed in '$work' although $registry answers" >&2
	exit 1
fi
[ -f "$work/node_modules/prisma/build/index.js" ] || {
	echo "$prog: npm ci finished but node_modules/prisma/build/index.js is missing" >&2
	exit 1
}
: >"$work/.complete"
find "$root" -mindepth 2 -maxdepth 2 -name .complete -mtime +30 -printf '%h\0' |
	xargs -0 -r rm -rf --
rm -rf -- "$dest" # an incomplete one: never used, since it has no .complete
mv -- "$work" "$dest"
trap - EXIT
echo "$dest"
