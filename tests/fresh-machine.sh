#!/usr/bin/env bash
# tests/fresh-machine.sh: the README's first command as a newcomer meets it,
# on a bare Debian 12.  As root; a phase of contrib/test.sh.
#
#   1. a minbase Debian 12 root made by Debian's debootstrap from the mirror
#      this machine's apt uses, cached as a tarball (tests/debian-root.sh),
#      with the .deb files apt fetches into it cached beside it;
#   2. a copy of it, with this checkout's files copied in (those git tracks,
#      and new ones it does not ignore: what a clone would hold);
#   3. in private mount and pid namespaces, a chroot with /proc, /sys, the
#      basic /dev nodes and /dev/fuse: ./contrib/quickstart.sh, then
#      meminfo/committed_as is read, a process is tracked and its rate read,
#      and fusermount3 -u stops the daemon;
#   4. the namespaces end with the script (every process in them is killed
#      and every mount in them goes), and the copy is removed.
# Each step prints its seconds.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
debs=${MEMSTATFS_ROOT_CACHE:-/var/cache/memstatfs-tests}/apt-archives

say() { printf 'fresh-machine: %s\n' "$*"; }
die() { say "$*" >&2; exit 1; }
t0=$SECONDS
step() { say "$1 ($((SECONDS - t0)) s)"; t0=$SECONDS; }

((EUID == 0)) || die "needs root (debootstrap, chroot, mounts)"
[[ -c /dev/fuse ]] || die "needs /dev/fuse"

mkdir -p "$debs"
base=$("$src/tests/debian-root.sh") || die "no bare Debian 12 root (above)"
step "bare root: $base"

work=$(mktemp -d "${TMPDIR:-/tmp}/memstatfs-fresh.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/root
mkdir "$root"
tar -C "$root" -xf "$base"
cp /etc/resolv.conf "$root/etc/resolv.conf"
mkdir -p "$root/root/memstatfs"
if git -C "$src" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	git -C "$src" ls-files -z --cached --others --exclude-standard |
		(cd "$src" && tar --null --ignore-failed-read -T - -cf -) | tar -C "$root/root/memstatfs" -xf -
else
	tar -C "$src" --exclude='./build*' -cf - . | tar -C "$root/root/memstatfs" -xf -
fi
[[ ! -e $root/root/memstatfs/build ]] || die "the copy has a build directory: not a clean checkout"
step "copied the bare root and the checkout"

# What runs inside, as root in the bare system: the README's first command,
# then a newcomer's first look.
cat >"$root/root/first-steps.sh" <<'EOF'
set -u
cd /root/memstatfs
t=$SECONDS
./contrib/quickstart.sh /mnt/memstat || { echo "quickstart failed"; exit 1; }
echo "fresh-machine: quickstart done in $((SECONDS - t)) s"
fail=0
c=$(cat /mnt/memstat/meminfo/committed_as) || fail=1
k=$(awk '$1 == "Committed_AS:" { print $2 }' /proc/meminfo)
echo "fresh-machine: meminfo/committed_as $c kB (/proc/meminfo says $k kB)"
[[ $c =~ ^[0-9]+$ ]] && ((c > 0)) || { echo "committed_as is not a number"; fail=1; }
# A process that dirties 64 MiB at random, in the tools a bare root has.
perl -e '$s = "x" x (64 << 20); while (1) { substr($s, int(rand(length $s)), 1) = "y" }' &
p=$!
echo $p >/mnt/memstat/track || { echo "tracking $p failed"; fail=1; }
r=$(cat /mnt/memstat/$p/rate) || { echo "reading $p/rate failed"; fail=1; }
s=$(head -n1 /mnt/memstat/$p/status)
echo "fresh-machine: tracked pid $p: rate $r MiB/s, status $s"
[[ $r =~ ^[0-9]+\.[0-9]{2}$ && $r != 0.00 && $s == measured ]] ||
	{ echo "a dirtying process must show a rate above 0 and status measured"; fail=1; }
kill $p

# Again over what a failure leaves behind: each run must go through.
daemons() { cat /proc/[0-9]*/comm 2>/dev/null | grep -cx memstatfs; } # no procps here
again() { # what was left, then quickstart must mount a working tree again
	./contrib/quickstart.sh /mnt/memstat >/dev/null &&
		[[ $(cat /mnt/memstat/meminfo/committed_as) =~ ^[0-9]+$ ]] && (($(daemons) == 1)) &&
		echo "fresh-machine: quickstart again after $1: ok" ||
		{ echo "quickstart again after $1: failed"; fail=1; }
}
again "a run that left it mounted"
for c in /proc/[0-9]*/comm; do
	grep -qx memstatfs "$c" 2>/dev/null && kill -9 "$(basename "$(dirname "$c")")"
done
sleep 0.5
again "a killed daemon (a dead mount)"
rm build/build.ninja
again "a half-made build directory"
# A step that cannot go through says what failed and what to do.
fusermount3 -u /mnt/memstat
mount -t tmpfs tmpfs /mnt/memstat
msg=$(./contrib/quickstart.sh /mnt/memstat 2>&1) && { echo "quickstart took a mountpoint in use"; fail=1; }
echo "fresh-machine: quickstart on a mountpoint in use by tmpfs: ${msg//$'\n'/ | }"
[[ $msg == *"already has a tmpfs file system mounted"*"unmount it"* ]] ||
	{ echo "that failure did not say what failed and how to fix it"; fail=1; }
umount /mnt/memstat
./contrib/quickstart.sh /mnt/memstat >/dev/null || { echo "quickstart after tmpfs: failed"; fail=1; }

fusermount3 -u /mnt/memstat || { echo "fusermount3 -u failed"; fail=1; }
for _ in $(seq 50); do (($(daemons) == 0)) && break; sleep 0.1; done
(($(daemons) == 0)) || { echo "the daemon did not exit after fusermount3 -u"; fail=1; }
! grep -q ' fuse.memstatfs ' /proc/self/mounts || { echo "still mounted"; fail=1; }
exit $fail
EOF

# pid 1 of the new pid namespace is this bash: when it ends, everything in
# the namespace is killed and its private mounts go with it.
r=0
unshare --mount --propagation private --pid --fork bash -s "$root" "$debs" <<'EOF' || r=$?
set -e
root=$1 debs=$2
mount -t proc proc "$root/proc"
mount -t sysfs sysfs "$root/sys"
mount -t tmpfs -o mode=0755 tmpfs "$root/dev"
for n in null zero full random urandom tty fuse; do
	touch "$root/dev/$n"
	mount --bind "/dev/$n" "$root/dev/$n"
done
ln -s /proc/self/fd "$root/dev/fd"
mkdir "$root/dev/pts" "$root/dev/shm"
mount -t tmpfs tmpfs "$root/dev/shm"
mount --bind "$debs" "$root/var/cache/apt/archives"
set +e
chroot "$root" /usr/bin/env -i HOME=/root TERM=dumb LANG=C.UTF-8 \
	PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
	bash /root/first-steps.sh
EOF
step "quickstart and first steps in the bare root (exit $r)"
((r == 0)) || die "the README's first command failed on a bare Debian 12 (output above)"
say "passed"
