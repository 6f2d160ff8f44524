#!/bin/bash
# The benchmark suite: every figure of BENCHMARKS.md, measured side by side
# in one run on this machine.  Needs root (FUSE mounts, tracking).
#
#   tests/bench/run.sh [BUILD_DIR]         (default: build)
#   BENCH_QUICK=1 tests/bench/run.sh ...   (a short run: fewer reads, smaller
#                                           targets; what the test suite runs)
#
# or `meson test -C build --benchmark`.  Starts, on temporary mountpoints:
# memstatfs, the FUSE floor (tests/bench/fuse_floor_hl.c: libfuse's
# high-level API serving one static file; tests/bench/fuse_floor.c: the same
# through the low-level API, from the page cache and again with direct_io) and LXCFS (Debian's lxcfs package; skipped, saying so, when it
# is not installed).  Prints Markdown tables; asserts nothing about speed,
# but fails when a benchmark cannot run.
set -euo pipefail

src=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-$src/build}" && pwd)
quick=${BENCH_QUICK:-}
reads=20000 seconds=5 sizes="1 4 16" targets=1000 watch=20 wmib=1024
timing="1024:102400 4096:102400" tsamples=5
if [ -n "$quick" ]; then
	reads=2000 seconds=1 sizes="0.25" targets=100 watch=3 wmib=256
	timing="128:12800" tsamples=2
fi
[ "$(id -u)" = 0 ] || { echo "run.sh: needs root (FUSE mounts)" >&2; exit 1; }

tmp=$(mktemp -d /tmp/memstatfs-bench-XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for m in "$tmp"/ms "$tmp"/floor_hl "$tmp"/floor "$tmp"/floor_dio "$tmp"/lxcfs; do
		mountpoint -q "$m" 2>/dev/null && umount -l "$m"
	done
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT

wait_mount() { # MOUNTPOINT PID
	for _ in $(seq 100); do
		mountpoint -q "$1" && return 0
		kill -0 "$2" 2>/dev/null || { echo "run.sh: the daemon for $1 died" >&2; return 1; }
		sleep 0.1
	done
	echo "run.sh: $1 never mounted" >&2
	return 1
}

mkdir -p "$tmp"/ms "$tmp"/floor_hl "$tmp"/floor "$tmp"/floor_dio "$tmp"/lxcfs
"$build"/memstatfs -f "$tmp"/ms 2>"$tmp"/memstatfs.log &
ms=$!; pids+=("$ms")
"$build"/tests/fuse_floor_hl -f -o max_threads=10 "$tmp"/floor_hl &
floor_hl=$!; pids+=("$floor_hl")
"$build"/tests/fuse_floor "$tmp"/floor &
floor=$!; pids+=("$floor")
"$build"/tests/fuse_floor -o direct_io "$tmp"/floor_dio &
floor_dio=$!; pids+=("$floor_dio")
wait_mount "$tmp"/ms "$ms"
wait_mount "$tmp"/floor_hl "$floor_hl"
wait_mount "$tmp"/floor "$floor"
wait_mount "$tmp"/floor_dio "$floor_dio"
lxcfs=
if command -v lxcfs >/dev/null; then
	# Its own pid file: Debian's lxcfs.service may hold the default one.
	lxcfs -f -p "$tmp"/lxcfs.pid "$tmp"/lxcfs >"$tmp"/lxcfs.log 2>&1 &
	lxcfs=$!; pids+=("$lxcfs")
	if ! wait_mount "$tmp"/lxcfs "$lxcfs" 2>/dev/null; then
		echo "run.sh: LXCFS did not start (skipped): $(tail -1 "$tmp"/lxcfs.log)" >&2
		lxcfs=
	fi
fi

# A target with figures: 64 MiB, 256 pages written a second.
"$build"/tests/dirtier 64 64 256 >/dev/null &
target=$!; pids+=("$target")
sleep 0.2
echo "$target" > "$tmp"/ms/track
for _ in $(seq 100); do
	[ -e "$tmp/ms/$target/samples/2" ] && break
	sleep 0.1
done
cat "$tmp/ms/$target/samples/2" >/dev/null

echo "## Machine"
echo
echo "- $(nproc) CPUs: $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)$(grep -q hypervisor /proc/cpuinfo && echo ', virtual machine')"
echo "- $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) of memory, Linux $(uname -r)"
echo "- $(. /etc/os-release && echo "$PRETTY_NAME"), libfuse $(pkg-config --modversion fuse3 2>/dev/null || echo '?')$( [ -n "$lxcfs" ] && echo ", LXCFS $(dpkg-query -W -f '${Version}' lxcfs 2>/dev/null || lxcfs --version)")"
echo "- memstatfs $(git -C "$src" describe --always --dirty 2>/dev/null || echo '?'), $(grep -o '"buildtype", "value": "[a-z]*"' "$build"/meson-info/intro-buildoptions.json 2>/dev/null | sed 's/.*"\([a-z]*\)"$/buildtype \1/')"
[ -n "$quick" ] && echo "- BENCH_QUICK: a short run, figures rougher than BENCHMARKS.md's"
echo

echo "## 1. Read latency: open, read to the end, close (what cat does)"
echo
rows=(kernel=/proc/meminfo floor_hl="$tmp"/floor_hl/value floor="$tmp"/floor/value
	floor_dio="$tmp"/floor_dio/value)
[ -n "$lxcfs" ] && rows+=(lxcfs="$tmp"/lxcfs/proc/meminfo)
rows+=(committed_as="$tmp"/ms/meminfo/committed_as rate="$tmp/ms/$target/rate"
	sample="$tmp/ms/$target/samples/2" latest="$tmp/ms/$target/samples/latest")
"$build"/tests/read_bench latency "$reads" "${rows[@]}" | sed "s|$tmp|MNT|g"
echo

echo "## 2. Throughput: readers looping, and the daemon's CPU"
echo
rows=(floor_hl="$floor_hl:$tmp/floor_hl/value" floor="$floor:$tmp/floor/value")
[ -n "$lxcfs" ] && rows+=(lxcfs="$lxcfs:$tmp/lxcfs/proc/meminfo")
rows+=(committed_as="$ms:$tmp/ms/meminfo/committed_as" rate="$ms:$tmp/ms/$target/rate")
"$build"/tests/read_bench throughput "$seconds" 1,8,64 "${rows[@]}"
echo

echo "## 3. One measurement's cost, by resident size"
echo
# shellcheck disable=SC2086
"$build"/tests/measure_bench $sizes
echo

echo "## 4. Many targets at the default period (1 s)"
echo
"$build"/tests/targets_bench "$tmp"/ms "$ms" "$targets" "$watch" 4
echo
"$build"/tests/targets_bench "$tmp"/ms "$ms" "$targets" "$watch" 4 active | tail -1
# The same writers drawn as before the precision (sample_pages per GiB), and
# at a tighter precision than the default, side by side.
"$build"/tests/targets_bench "$tmp"/ms "$ms" "$targets" "$watch" 4 active precision=off | tail -1
"$build"/tests/targets_bench "$tmp"/ms "$ms" "$targets" "$watch" 4 active precision=0.25MiB/s |
	tail -1
echo

echo "## 5. The measured process's own speed"
echo
"$build"/tests/overhead_bench "$tmp"/ms "$seconds" "$wmib"
echo
kill -0 "$ms" || { echo "run.sh: memstatfs died" >&2; exit 1; }

echo "## 6. The writer's order: figures against the truth, by size"
echo
# 400 MiB/s in 1 GiB and in 4 GiB: a full-scan look takes a large part of
# the period (a third of it for 1 GiB here).
# shellcheck disable=SC2086
# A container of the same writer too, where the host mounts cgroup v2.
TIMING_CGROUP=$(findmnt -rn -t cgroup2 -o TARGET | head -n1) \
	"$build"/tests/timing_bench "$tmp"/ms "$build"/tests/dirtier "$tsamples" $timing
echo

echo "## 7. Will it migrate? The pre-copy forecast beside QEMU's migrations"
echo
# Real migrations of the test guest (tests/migrate_rig.h); needs QEMU and
# the guest (gcc-multilib), skipped saying so without them.
mig_args=(30)
[ -n "$quick" ] && mig_args=(12 hot-24M-1000ms hot-96M-20ms)
rc=0
MEMSTATFS="$build"/memstatfs "$build"/tests/migration_bench "$build"/tests/guest.elf "${mig_args[@]}" || rc=$?
[ "$rc" = 0 ] || [ "$rc" = 77 ] || { echo "run.sh: migration_bench failed" >&2; exit 1; }
