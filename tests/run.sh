#!/usr/bin/env bash
# THE test command (CI runs it through .ci/run): dependencies, format check, then build and
# ctest twice: build/ (RelWithDebInfo) and build-asan/ (ASan + UBSan, leak checks on).
#
#   tests/run.sh           everything
#   tests/run.sh --quick   skip the sanitizer pass
#
# Works from any cwd, needs no stdin; exits non-zero as soon as a stage fails.
set -euo pipefail

usage() {
	echo "usage: tests/run.sh [--quick]" >&2
	exit 2
}

quick=0
for arg in "$@"; do
	case $arg in
	--quick) quick=1 ;;
	-h | --help) usage ;;
	*)
		echo "run.sh: unknown option '$arg'" >&2
		usage
		;;
	esac
done

root=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
exec </dev/null
jobs=$(nproc 2>/dev/null || echo 2)
t0=$(date +%s)

stage() {
	echo "==> $* ($(($(date +%s) - t0))s)" >&2
}

stage "dependencies"
./deploy/install-deps.sh

# Formatting first: the cheapest failure. Files git tracks, plus new ones it does not ignore
# (on CI's clean clone: exactly the tracked ones); build trees never count.
stage "format check (clang-format $(clang-format --version | grep -o '[0-9][0-9.]*' | head -n 1))"
sources=()
if git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	while IFS= read -r -d '' f; do
		[[ $f == build*/* ]] || [ ! -f "$f" ] || sources+=("$f")
	done < <(git -C "$root" ls-files -z --cached --others --exclude-standard -- '*.c' '*.h')
else
	while IFS= read -r -d '' f; do
		sources+=("${f#./}")
	done < <(find . -path './build*' -prune -o -type f \( -name '*.c' -o -name '*.h' \) -print0)
fi
if [ ${#sources[@]} -gt 0 ]; then
	printf '%s\0' "${sources[@]}" | sort -zu | xargs -0 -n 50 clang-format --dry-run -Werror || {
		echo "run.sh: the files above are not formatted: run clang-format -i on them" >&2
		exit 1
	}
fi

# build_and_test DIR CTEST-ENV... -- CMAKE-ARGS...
build_and_test() {
	local dir=$1 env=()
	shift
	while [ $# -gt 0 ] && [ "$1" != -- ]; do
		env+=("$1")
		shift
	done
	shift
	stage "configure $dir"
	cmake -S "$root" -B "$root/$dir" "$@" >/dev/null
	stage "build $dir"
	cmake --build "$root/$dir" -j "$jobs"
	stage "test $dir"
	(cd "$root/$dir" && env "${env[@]}" ctest --output-on-failure -j2)
}

build_and_test build -- -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFL_SANITIZE=OFF
[ "$quick" = 1 ] && exit 0

build_and_test build-asan \
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	-- -DCMAKE_BUILD_TYPE=Debug -DFL_SANITIZE=ON
