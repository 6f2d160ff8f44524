#!/usr/bin/env bash
# contrib/quickstart.sh [MOUNTPOINT]: from a fresh clone on Debian 12, as root:
# installs what is missing, builds, mounts memstatfs (default /mnt/memstat)
# and says how to use it.
set -euo pipefail
cd "$(dirname "$0")/.."
mnt=${1:-/mnt/memstat}

contrib/install-deps.sh
[[ -d build ]] || meson setup build --buildtype=release >/dev/null
ninja -C build memstatfs >/dev/null

mkdir -p "$mnt"
if mountpoint -q "$mnt" 2>/dev/null; then
	fusermount3 -u "$mnt" 2>/dev/null || umount -l "$mnt"
fi
build/memstatfs "$mnt"   # daemonizes; a stale mount left by a killed daemon is replaced
for _ in $(seq 50); do mountpoint -q "$mnt" && break; sleep 0.1; done
mountpoint -q "$mnt" || { echo "quickstart: memstatfs did not mount on $mnt" >&2; exit 1; }

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
