#!/usr/bin/env bash
# contrib/quickstart.sh [MOUNTPOINT]: from a fresh clone on Debian 12, as root:
# installs what building and running need (nothing for the tests), builds,
# mounts memstatfs (default /mnt/memstat) and says how to use it.
#
# Every step that fails says what failed and how to go on; running it again
# after any failure goes through (a half-made build directory is made anew, a
# memstatfs already mounted there is replaced, a dead mount is detached).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
mnt=${1:-/mnt/memstat}
log=$(mktemp /tmp/memstatfs-quickstart.XXXXXX) || exit 1
trap 'rm -f "$log"' EXIT

fail() { # what failed, how to fix it; the step's output first
	echo "quickstart: $1" >&2
	if [[ -s $log ]]; then
		echo "---- its output (last 30 lines) ----" >&2
		tail -n 30 "$log" >&2
		echo "----" >&2
	fi
	echo "quickstart: $2" >&2
	exit 1
}

contrib/install-deps.sh >"$log" 2>&1 ||
	fail "installing the build dependencies failed" \
		"run contrib/install-deps.sh as root on Debian 12 (it uses apt-get), then this again"

# A build directory that meson did not finish (its build.ninja missing) is
# made anew; a finished one is reused, whatever made it.
if [[ -d build && ! -f build/build.ninja ]]; then
	rm -rf build
fi
if [[ ! -d build ]]; then
	meson setup build --buildtype=release -Dtests=disabled >"$log" 2>&1 ||
		{ rm -rf build; fail "meson setup failed" "fix what meson says above, then run this again"; }
fi
ninja -C build memstatfs >"$log" 2>&1 ||
	fail "building memstatfs failed" "fix what the compiler says above, or 'rm -rf build' and run this again"
: >"$log"

mkdir -p "$mnt" || fail "cannot make $mnt" "give another mountpoint: $0 DIR"
# What is mounted there now: a memstatfs (live or dead) is replaced; anything
# else is left alone.
fstype=$(awk -v m="$mnt" '$2 == m { t = $3 } END { print t }' /proc/self/mounts)
case $fstype in
"") ;;
fuse.memstatfs)
	fusermount3 -u "$mnt" 2>/dev/null || umount -l "$mnt" ||
		fail "cannot unmount the memstatfs on $mnt" "a process may be using it: fuser -vm $mnt"
	;;
*)
	fail "$mnt already has a $fstype file system mounted" "unmount it, or give another mountpoint: $0 DIR"
	;;
esac

# It daemonizes once mounted, so its exit status says whether the mount
# worked; its own message is on stderr until then.
build/memstatfs "$mnt" >"$log" 2>&1 ||
	fail "memstatfs could not mount $mnt" "run 'build/memstatfs -f $mnt' to see why in the foreground"
for _ in $(seq 50); do mountpoint -q "$mnt" && break; sleep 0.1; done
mountpoint -q "$mnt" ||
	fail "memstatfs did not mount on $mnt" "run 'build/memstatfs -f $mnt' to see why in the foreground"

cat <<TXT
memstatfs is mounted on $mnt.

    cat $mnt/meminfo/committed_as        # kB promised to processes
    cat $mnt/meminfo/commit_percent      # of CommitLimit
    echo PID > $mnt/track                # start measuring a process
    cat $mnt/PID/rate                    # MiB/s dirtied (waits for the first figure)
    cat $mnt/PID/status                  # measuring | measured | exited | error
    ls $mnt/PID/samples/                 # one file per measurement, and latest
    echo PID > $mnt/untrack              # stop

Stop it with: fusermount3 -u $mnt    (the daemon logs to syslog/the journal)
TXT
