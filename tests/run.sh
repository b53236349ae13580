#!/usr/bin/env bash
# THE test command (CI runs it through .ci/run): dependencies, format check, then build and
# ctest twice: build/ (RelWithDebInfo) and build-asan/ (ASan + UBSan, leak checks on); then
# build-fuzz/ (clang) and every libFuzzer target at once for FL_FUZZ_SECONDS (default 60).
#
#   tests/run.sh           everything (the fault suite, ctest label `faults`, in the build/ pass)
#   tests/run.sh --quick   skip the sanitizer pass, fuzzing and the fault suite
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

# build_and_test DIR CTEST-ENV... -- CMAKE-ARGS...; CTEST_ARGS: more ctest arguments.
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
	# shellcheck disable=SC2086 # CTEST_ARGS: words
	(cd "$root/$dir" && env "${env[@]}" ctest --output-on-failure -j2 ${CTEST_ARGS:-})
}

# Fuzzing: every tests/fuzz/fuzz_<name>.c, all at once, each from a copy of its seed corpus
# (what the fuzzer adds stays out of the tree), bounded in time. A crash, leak, timeout or
# runaway memory fails the run; libFuzzer saves the input under build-fuzz/crashes/<name>/.
fuzz_all() {
	local fuzz_seconds=${FL_FUZZ_SECONDS:-60} names pids fuzz_failed name src log input i
	# Global, for the EXIT trap: the copies are removed however the run ends.
	stage "configure build-fuzz"
	CC=clang cmake -S "$root" -B "$root/build-fuzz" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFL_FUZZ=ON \
		>/dev/null
	stage "build build-fuzz"
	cmake --build "$root/build-fuzz" -j "$jobs" --target fuzz
	stage "fuzz ${fuzz_seconds}s each"
	fuzz_work=$(mktemp -d)
	trap 'rm -rf "$fuzz_work"' EXIT
	names=() pids=()
	for src in "$root"/tests/fuzz/fuzz_*.c; do
		name=$(basename "$src" .c)
		name=${name#fuzz_}
		mkdir -p "$fuzz_work/$name" "$root/build-fuzz/crashes/$name"
		cp -R "$root/tests/fuzz/corpus/$name/." "$fuzz_work/$name/"
		"$root/build-fuzz/tests/fuzz/fuzz_$name" "$fuzz_work/$name" \
			-max_total_time="$fuzz_seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
			-artifact_prefix="$root/build-fuzz/crashes/$name/" >"$root/build-fuzz/fuzz-$name.log" 2>&1 &
		names+=("$name")
		pids+=($!)
	done
	fuzz_failed=0
	for i in "${!names[@]}"; do
		name=${names[$i]} log="$root/build-fuzz/fuzz-${names[$i]}.log"
		if wait "${pids[$i]}"; then
			echo "fuzz_$name: $(grep -ao 'number_of_executed_units: [0-9]*' "$log" | grep -o '[0-9]*') runs," \
				"$(grep -ao 'cov: [0-9]*' "$log" | tail -n 1), no crash" >&2
			continue
		fi
		fuzz_failed=1
		input=$(grep -ao "Test unit written to .*" "$log" | tail -n 1 | sed 's/^Test unit written to //')
		grep -av -e '^#' -e '^INFO' "$log" | tail -n 60 >&2
		echo "run.sh: fuzz_$name failed (log: build-fuzz/fuzz-$name.log); the input is saved at" >&2
		echo "  ${input:-(none: see the log)}" >&2
		echo "  reproduce: build-fuzz/tests/fuzz/fuzz_$name ${input:-INPUT}" >&2
		echo "  keep it, so every build runs it (ctest fuzz/replay_$name): fix the bug, then" >&2
		echo "  cp ${input:-INPUT} tests/fuzz/crashes/$name/" >&2
	done
	[ "$fuzz_failed" = 0 ] || exit 1
}

# The fault suite (tests/faults, about 4 minutes, alone) runs in the full mode, here only: under the
# sanitizers it would be slower than its bound, and its clock shim cannot be preloaded there.
CTEST_ARGS=''
[ "$quick" = 0 ] || CTEST_ARGS='-LE faults'
build_and_test build -- -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFL_SANITIZE=OFF
[ "$quick" = 1 ] && exit 0
CTEST_ARGS='-LE faults'

fuzz_all

# Last, so that the run ends with ctest's summary line.
build_and_test build-asan \
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	-- -DCMAKE_BUILD_TYPE=Debug -DFL_SANITIZE=ON
