#!/bin/sh
# run.sh: runs one libFuzzer harness for a while from its committed seed
# corpus.  meson test runs it for each harness (suite "fuzz"):
#
#   run.sh FUZZER SEED_CORPUS_DIR [libFuzzer options...]
#
# Environment:
#   MEMSTATFS_FUZZ_SECONDS    how long to fuzz (default 10)
#   MEMSTATFS_FUZZ_SEED       libFuzzer's -seed (default 1: the same run
#                             each time, as far as timing allows; 0: random)
#   MEMSTATFS_FUZZ_CORPUS     a directory to keep what the run finds in
#                             (DIR/NAME/); by default a temporary directory,
#                             removed afterwards
#   MEMSTATFS_FUZZ_ARTIFACTS  where crashes, leaks and timeouts are written
#                             (default: fuzz-artifacts/ in the working
#                             directory, the build directory under meson)
#
# libFuzzer writes new inputs into the first corpus directory it is given:
# that is the scratch (or kept) directory, never the committed seeds.
#
# The reproducers of findings, crashes/NAME-* beside corpus/, are run first:
# a finding fails the test until it is fixed, and stays a regression test
# after.
set -eu

fuzzer=$1
seeds=$2
shift 2
name=$(basename "$fuzzer")
name=${name#fuzz_}

seconds=${MEMSTATFS_FUZZ_SECONDS:-10}
seed=${MEMSTATFS_FUZZ_SEED:-1}
artifacts=${MEMSTATFS_FUZZ_ARTIFACTS:-$PWD/fuzz-artifacts}
mkdir -p "$artifacts"

# GLib 2.74's slice allocator hides json-glib's nodes from ASan and LSan.
export G_SLICE="${G_SLICE:-always-malloc}"
# UBSan only prints by default: make undefined behaviour a finding.
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:abort_on_error=1:print_stacktrace=1}"

known=
if crashes=$(cd "$(dirname "$seeds")/../crashes" 2>/dev/null && pwd); then
	for f in "$crashes/$name"-*; do
		if [ -f "$f" ]; then
			known="$known $f"
		fi
	done
fi
if [ -n "$known" ]; then
	echo "replaying the reproducers of findings:$known" >&2
	# shellcheck disable=SC2086 # one argument per file (no spaces in names)
	if ! "$fuzzer" -rss_limit_mb=2048 -timeout=25 $known; then
		echo "fuzz_$name: a finding in $crashes still reproduces (tests/fuzz/README.md)" >&2
		exit 1
	fi
fi

scratch=
if [ -n "${MEMSTATFS_FUZZ_CORPUS:-}" ]; then
	corpus=$MEMSTATFS_FUZZ_CORPUS/$name
	mkdir -p "$corpus"
else
	scratch=$(mktemp -d "${TMPDIR:-/tmp}/memstatfs-fuzz-$name.XXXXXX")
	corpus=$scratch
fi
# shellcheck disable=SC2317 # run by the traps
cleanup() {
	if [ -n "$scratch" ]; then
		rm -rf "$scratch"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "fuzzing $name for ${seconds}s (seed $seed): corpus $corpus + $seeds, artifacts in $artifacts" >&2
status=0
"$fuzzer" "$corpus" "$seeds" \
	-max_total_time="$seconds" \
	-seed="$seed" \
	-timeout=25 \
	-rss_limit_mb=2048 \
	-print_final_stats=1 \
	-artifact_prefix="$artifacts/$name-" \
	"$@" || status=$?
# libFuzzer's exit code for a finding is 77 (-error_exitcode), which meson
# reads as "skipped": a finding must fail the test.
if [ "$status" -eq 77 ]; then
	status=1
fi
if [ "$status" -ne 0 ]; then
	echo "fuzz_$name failed (exit $status): the input is in $artifacts/$name-*;" \
		"reproduce with: $fuzzer $artifacts/$name-<file>" >&2
fi
exit "$status"
