#!/usr/bin/env bash
# contrib/test.sh: from a fresh clone on Debian 12, as root: installs what is
# missing, builds with warnings as errors and runs the whole suite four ways:
#   1. plain (build/)
#   2. AddressSanitizer + UndefinedBehaviorSanitizer (build-asan/)
#   3. ThreadSanitizer (build-tsan/): the threaded registry test, and the tree
#      and VM tests against the TSan daemon (Criterion cannot itself run
#      under TSan)
#   4. the tree and VM tests against the daemon under valgrind's memcheck
#   5. a short run of each libFuzzer harness (build-fuzz/, clang), from the
#      seed corpus in tests/fuzz/corpus
#   6. a short run of the benchmark suite (BENCH_QUICK=1): its figures are
#      printed, never judged; it fails only when a benchmark cannot run
# A sanitizer report or valgrind error in the daemon's log fails the test.
set -uo pipefail
cd "$(dirname "$0")/.."

contrib/install-deps.sh --test || exit 1

log=$(mktemp)
trap 'rm -f "$log"' EXIT
failed_phases=()

setup() { # dir, meson options...
	local dir=$1
	shift
	if [[ -d $dir ]]; then
		meson setup --reconfigure "$dir" --werror "$@" >/dev/null
	else
		meson setup "$dir" --werror "$@" >/dev/null
	fi && ninja -C "$dir" >/dev/null
}

phase() { # name, command...
	local name=$1
	shift
	echo "== $name"
	if ! "$@" 2>&1 | tee -a "$log"; then
		failed_phases+=("$name")
	fi
}

run_meson() { # dir: its tests, and their Criterion summaries into the log
	local r=0
	meson test -C "$1" --print-errorlogs --no-rebuild || r=1
	grep -hE "Synthesis: Tested:|^registry: [0-9]+ passed" "$1/meson-logs/testlog.txt" || true
	return $r
}

# Criterion binaries of the plain build against another daemon.
against() { # daemon, wrapper ("" for none), test...
	local daemon=$1 wrapper=$2 t r=0
	shift 2
	for t in "$@"; do
		MEMSTATFS=$daemon MEMSTATFS_WRAPPER=$wrapper DIRTIER=build/tests/dirtier \
			GUEST=$(ls build/tests/guest.elf 2>/dev/null) build/tests/test_$t --jobs 1 || r=1
	done
	return $r
}

setup build --buildtype=debugoptimized || exit 1
phase "plain" run_meson build

setup build-asan --buildtype=debug -Db_sanitize=address,undefined -Db_lundef=false || exit 1
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
phase "asan+ubsan" run_meson build-asan
unset ASAN_OPTIONS UBSAN_OPTIONS

setup build-tsan --buildtype=debugoptimized -Db_sanitize=thread -Db_lundef=false || exit 1
export TSAN_OPTIONS=halt_on_error=0:second_deadlock_stack=1
# GLib's slice allocator recycles memory between threads where TSan cannot
# see it; plain malloc keeps its reports about our code.
export G_SLICE=always-malloc
phase "tsan registry" run_meson build-tsan
phase "tsan daemon" against build-tsan/memstatfs "" tree vm
unset TSAN_OPTIONS G_SLICE

phase "valgrind daemon" against build/memstatfs \
	"valgrind --quiet --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite" tree vm

# Fuzzing: clang, libFuzzer, ASan+UBSan; MEMSTATFS_FUZZ_SECONDS each (10).
run_fuzz() {
	local out r
	out=$(mktemp)
	meson test -C build-fuzz --suite fuzz --print-errorlogs --no-rebuild | tee "$out"
	r=${PIPESTATUS[0]}
	awk '/^ *[0-9]+\/[0-9]+ .*fuzz_/ { if ($0 ~ / OK /) p++; else f++ }
		END { printf "fuzz: %d passed, %d failed\n", p, f }' "$out"
	rm -f "$out"
	return "$r"
}
if [[ -d build-fuzz ]]; then
	CC=clang meson setup --reconfigure build-fuzz >/dev/null
else
	CC=clang meson setup build-fuzz -Dfuzz=true -Db_sanitize=address,undefined \
		-Db_lundef=false -Dc_args=-fsanitize=fuzzer-no-link >/dev/null
fi && ninja -C build-fuzz >/dev/null || exit 1
phase "fuzz" run_fuzz

run_bench() {
	local r=0
	BENCH_QUICK=1 meson test -C build --benchmark --no-rebuild --print-errorlogs || r=1
	echo "bench: $((1 - r)) passed, $r failed"
	return $r
}
phase "bench" run_bench

# One closing line over every Criterion run, the registry tests, the fuzzers
# and the benchmark run.
read -r passed failed < <(awk '
	/Synthesis: Tested:/ { for (i = 1; i <= NF; i++) { if ($i == "Passing:") p += $(i+1); if ($i == "Failing:" || $i == "Crashing:") f += $(i+1) } }
	/^(registry|fuzz|bench): [0-9]+ passed, [0-9]+ failed$/ { p += $2; f += $4 }
	END { print p + 0, f + 0 }' "$log")
if ((${#failed_phases[@]})); then
	echo "failed phases: ${failed_phases[*]}"
	((failed == 0)) && failed=${#failed_phases[@]}
fi
echo "memstatfs: $passed passed, $failed failed"
((${#failed_phases[@]} == 0 && failed == 0))
