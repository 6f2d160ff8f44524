#!/usr/bin/env bash
# contrib/test.sh [--without-kvm]: from a fresh clone on Debian 12, as root:
# installs what is missing, builds with warnings as errors and runs the whole
# suite:
#   0. every build type the project's own files make builds warning-free
#      (release, as quickstart and the Dockerfile build it, without tests)
#   1. plain (build/)
#   2. AddressSanitizer + UndefinedBehaviorSanitizer (build-asan/)
#   3. ThreadSanitizer (build-tsan/): the threaded registry test, and the tree,
#      VM and cgroup tests against the TSan daemon (Criterion cannot itself run
#      under TSan)
#   4. the tree and VM tests against the daemon under valgrind's memcheck
#   5. a short run of each libFuzzer harness (build-fuzz/, clang), from the
#      seed corpus in tests/fuzz/corpus
#   6. a short run of the benchmark suite (BENCH_QUICK=1): its figures are
#      printed, never judged; it fails only when a benchmark cannot run
#   7. a fresh machine: ./contrib/quickstart.sh in a bare Debian 12 root
#      (tests/fresh-machine.sh)
#   8. nothing left behind: no daemon, process, mount or container of this
#      run remains
# A sanitizer report or valgrind error in the daemon's log fails the test.
#
# --without-kvm runs it all with /dev/kvm hidden (a private mount namespace
# with /dev made anew without it), as on a machine that has no KVM.
set -uo pipefail
self=$(readlink -f "$0")
cd "$(dirname "$self")/.." || exit 1

if [[ ${1:-} == --without-kvm ]]; then
	shift
	if [[ -e /dev/kvm && -z ${MEMSTATFS_KVM_HIDDEN:-} ]]; then
		exec env MEMSTATFS_KVM_HIDDEN=1 unshare --mount --propagation private bash -c '
			set -e
			mkdir -p /run/memstatfs-dev
			mount --bind /dev /run/memstatfs-dev
			mount -t tmpfs -o mode=0755,nosuid devtmpfs /dev
			for e in /run/memstatfs-dev/* /run/memstatfs-dev/.[!.]*; do
				n=/dev/${e##*/}
				[[ -e $e || -L $e ]] || continue
				[[ $n == /dev/kvm ]] && continue
				if [[ -L $e ]]; then cp -a "$e" "$n"
				elif [[ -d $e ]]; then mkdir "$n"; mount --rbind "$e" "$n"
				else touch "$n"; mount --bind "$e" "$n"; fi
			done
			[[ ! -e /dev/kvm ]]
			echo "test.sh: /dev/kvm hidden for this run"
			exec "$0" "$@"' "$self" "$@"
	fi
fi

contrib/install-deps.sh --test || exit 1

# Everything this run starts carries MEMSTATFS_TEST_RUN in its environment
# and makes its files and mounts under its own TMPDIR; what is left of either
# at the end is swept away, and is a failure (phase 8), also when a test
# failed, timed out or the run was interrupted.
run_id=$$.$(date +%s)
export MEMSTATFS_TEST_RUN=$run_id
run_tmp=$(mktemp -d /tmp/memstatfs-run.XXXXXX) || exit 1
chmod 0755 "$run_tmp" # other users reach the mountpoints (allow_other tests)
export TMPDIR=$run_tmp

run_procs() { # this run's processes, but this shell and its own children
	local e p ppid
	for e in /proc/[0-9]*/environ; do
		p=${e#/proc/}
		p=${p%/environ}
		[[ $p == "$$" || $p == "$BASHPID" ]] && continue
		# Its children now are this check's own pipeline (tee, a
		# subshell); what a test left was reparented away from it.
		ppid=$(awk '{ sub(/.*\) /, ""); print $2 }' "/proc/$p/stat" 2>/dev/null)
		[[ $ppid == "$$" || $ppid == "$BASHPID" ]] && continue
		grep -qsz "^MEMSTATFS_TEST_RUN=$run_id\$" "$e" && echo "$p"
	done
}
podman_env() { # the settings contrib/container/memstatfs-podman.sh chose for this host
	[[ -f /run/memstatfs-podman/containers.conf ]] &&
		export CONTAINERS_CONF=/run/memstatfs-podman/containers.conf
	return 0
}
run_containers() { # podman containers the run's tests labelled
	command -v podman >/dev/null || return 0
	podman_env
	podman ps -aq --filter "label=memstatfs.test-run=$run_id" 2>/dev/null
}
run_pods() { # podman pods the run's tests labelled (memstatfs-podman.sh up makes one)
	command -v podman >/dev/null || return 0
	podman_env
	podman pod ps -q --filter "label=memstatfs.test-run=$run_id" 2>/dev/null
}
run_mounts() { # this run's mounts, deepest first
	awk -v d="$run_tmp/" 'index($2, d) == 1 { print $2 }' /proc/self/mounts | sort -r
}
sweep() { # kills and unmounts what is left of this run
	local pids m c
	c=$(run_containers)
	[[ -n $c ]] && (podman_env && podman rm -f -t 5 $c >/dev/null 2>&1)
	c=$(run_pods)
	[[ -n $c ]] && (podman_env && podman pod rm -f -t 5 $c >/dev/null 2>&1)
	pids=$(run_procs)
	if [[ -n $pids ]]; then
		kill -TERM $pids 2>/dev/null
		sleep 2
		pids=$(run_procs)
		[[ -n $pids ]] && kill -KILL $pids 2>/dev/null
	fi
	for m in $(run_mounts); do
		fusermount3 -uz "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
	done
}
cleanup() {
	sweep
	rm -rf "$run_tmp" "$log"
}
log=$(mktemp)
trap cleanup EXIT
trap 'echo "test.sh: interrupted" >&2; exit 130' INT TERM
failed_phases=()

setup() { # dir, meson options...: configures (anew when half-made) and builds
	local dir=$1 out r=0
	shift
	out=$(mktemp)
	[[ -d $dir && ! -f $dir/build.ninja ]] && rm -rf "$dir"
	if [[ -d $dir ]]; then
		meson setup --reconfigure "$dir" --werror "$@" >"$out" 2>&1
	else
		meson setup "$dir" --werror "$@" >"$out" 2>&1
	fi && ninja -C "$dir" >>"$out" 2>&1 || {
		r=1
		echo "test.sh: building $dir failed:" >&2
		tail -n 40 "$out" >&2
	}
	rm -f "$out"
	return $r
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
	# A failed test's summary (Criterion's, the registry's), printed with its log, is
	# counted once: from the grep below.
	meson test -C "$1" --print-errorlogs --no-rebuild 2>&1 |
		grep --line-buffered -vE "Synthesis: Tested:|^registry: [0-9]+ passed"
	((PIPESTATUS[0] == 0)) || r=1
	grep -hE "Synthesis: Tested:|^registry: [0-9]+ passed" "$1/meson-logs/testlog.txt" || true
	return $r
}

# Criterion binaries of the plain build against another daemon.
against() { # daemon, wrapper ("" for none), test...
	local daemon=$1 wrapper=$2 t r=0
	shift 2
	for t in "$@"; do
		# Absolute paths, as meson gives them (a container mounts the
		# helper's directory).
		MEMSTATFS=$daemon MEMSTATFS_WRAPPER=$wrapper DIRTIER=$PWD/build/tests/dirtier \
			STALLED=$PWD/build/tests/stalled HUNGFS=$PWD/build/tests/hungfs \
			SRCDIR=$PWD GUEST=$(ls "$PWD"/build/tests/guest.elf 2>/dev/null) \
			build/tests/test_$t --jobs 1 || r=1
	done
	return $r
}

# 0. The builds that quickstart and the Dockerfile make, warning-free.
release_build() {
	setup build-release --buildtype=release -Dtests=disabled &&
		echo "release build: warning-free" && echo "release: 1 passed, 0 failed"
}
phase "release build" release_build

setup build --buildtype=debugoptimized -Dtests=enabled || exit 1
phase "plain" run_meson build

setup build-asan --buildtype=debug -Dtests=enabled -Db_sanitize=address,undefined -Db_lundef=false || exit 1
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
phase "asan+ubsan" run_meson build-asan
unset ASAN_OPTIONS UBSAN_OPTIONS

setup build-tsan --buildtype=debugoptimized -Dtests=enabled -Db_sanitize=thread -Db_lundef=false || exit 1
export TSAN_OPTIONS=halt_on_error=0:second_deadlock_stack=1
# GLib's slice allocator recycles memory between threads where TSan cannot
# see it; plain malloc keeps its reports about our code.
export G_SLICE=always-malloc
phase "tsan registry" run_meson build-tsan
phase "tsan daemon" against build-tsan/memstatfs "" tree track access poll stall vm cgroup
unset TSAN_OPTIONS G_SLICE

phase "valgrind daemon" against build/memstatfs \
	"valgrind --quiet --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite" tree track vm

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
CC=clang setup build-fuzz -Dfuzz=true -Dtests=disabled -Db_sanitize=address,undefined \
	-Db_lundef=false -Dc_args=-fsanitize=fuzzer-no-link || exit 1
phase "fuzz" run_fuzz

run_bench() {
	local r=0
	BENCH_QUICK=1 meson test -C build --benchmark --no-rebuild --print-errorlogs || r=1
	echo "bench: $((1 - r)) passed, $r failed"
	return $r
}
phase "bench" run_bench

# 7. A newcomer's first command on a bare Debian 12 (debootstrap, cached).
run_fresh() {
	local r=0
	tests/fresh-machine.sh || r=1
	echo "fresh-machine: $((1 - r)) passed, $r failed"
	return $r
}
phase "fresh machine" run_fresh

# 8. Nothing of this run may remain.
check_leftovers() {
	local pids mounts containers pods
	pids=$(run_procs)
	mounts=$(run_mounts)
	containers=$(run_containers)
	pods=$(run_pods)
	if [[ -z $pids && -z $mounts && -z $containers && -z $pods ]]; then
		echo "leftovers: none"
		echo "leftovers: 1 passed, 0 failed"
		return 0
	fi
	echo "leftovers: the run left these behind (now removed):"
	[[ -n $pids ]] && ps -o pid,ppid,args -p "$(echo $pids | tr ' ' ,)"
	[[ -n $mounts ]] && printf '  mount %s\n' $mounts
	[[ -n $containers ]] && printf '  container %s\n' $containers
	[[ -n $pods ]] && printf '  pod %s\n' $pods
	sweep
	echo "leftovers: 0 passed, 1 failed"
	return 1
}
phase "leftovers" check_leftovers

# One closing line over every Criterion run, the registry tests, the fuzzers
# and the benchmark run.
read -r passed failed < <(awk '
	/Synthesis: Tested:/ { for (i = 1; i <= NF; i++) { if ($i == "Passing:") p += $(i+1); if ($i == "Failing:" || $i == "Crashing:") f += $(i+1) } }
	/^(registry|fuzz|bench|release|fresh-machine|leftovers): [0-9]+ passed, [0-9]+ failed$/ { p += $2; f += $4 }
	END { print p + 0, f + 0 }' "$log")
if ((${#failed_phases[@]} || failed)); then
	# What failed, again at the end, where a reader of the run's tail
	# (CI shows only that) finds it: Criterion's failed assertions and
	# tests, meson's failed tests, the fuzzers' findings.
	echo "== what failed"
	grep -E '^\[(----|FAIL)\]|^ *[0-9]+/[0-9]+ +[^ ]+ +(FAIL|TIMEOUT|ERROR)|harness check failed|^test\.sh: ' \
		"$log" | tail -n 80
fi
if ((${#failed_phases[@]})); then
	echo "failed phases: ${failed_phases[*]}"
	((failed == 0)) && failed=${#failed_phases[@]}
fi
echo "memstatfs: $passed passed, $failed failed"
((${#failed_phases[@]} == 0 && failed == 0))
