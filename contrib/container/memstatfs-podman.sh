#!/usr/bin/env bash
# contrib/container/memstatfs-podman.sh: memstatfs as a sidecar with podman,
# in one command.  As root.
#
#   memstatfs-podman.sh image                 build localhost/memstatfs from this checkout
#   memstatfs-podman.sh up DIR [NAME]         run the sidecar NAME (memstatfs-sidecar),
#                                             mounting memstatfs on DIR for the host and
#                                             for application containers
#   memstatfs-podman.sh app NAME -- CMD...    print the podman run line for an application
#                                             container that sees the mount and shares the
#                                             sidecar's pid namespace
#   memstatfs-podman.sh down DIR [NAME]       stop the sidecar so that it unmounts
#   memstatfs-podman.sh kube up|down [YAML]   podman kube play/down of pod.yaml, in the
#                                             order that leaves no dead mount
#
# What a user of podman meets, and what this does about it:
# - The mount reaches the host and other containers only through a shared
#   mount (Bidirectional/rshared on the sidecar's side, HostToContainer/rslave
#   on the application's).  Where / is a private mount (hosts whose init is
#   not systemd), DIR is first bind-mounted on itself and made rshared; for
#   `kube play` the same is done to podman's volumes directory, where emptyDir
#   volumes live.  Without it nothing fails: the mount just never appears.
# - Stopping: `podman stop` (SIGTERM, then SIGKILL after -t seconds) lets the
#   daemon unmount.  `podman rm -f -t 0`, and `podman kube down` of a running
#   pod, kill it: the host then keeps a dead mount ("Transport endpoint is not
#   connected") until the next `up`, which detaches it.  podman runs no
#   preStop hook, and `podman pod stop` kills a sidecar that shares the pod's
#   pid namespace (its pid 1, the infra container, stops at the same time):
#   `kube down` here stops the sidecar container alone first.
# - After the sidecar died, `up` again detaches the dead mount and the new
#   sidecar mounts on the same shared directory: the host and containers whose
#   volume was bound before the mount get the new mount.  A container started
#   after the mount holds a bind of the mount itself, which stays dead
#   ("Transport endpoint is not connected"): restart it (the README's "What
#   consumers see when the daemon dies").
# - Hosts with hybrid cgroups (v1 controllers plus v2 at
#   /sys/fs/cgroup/unified) need runc (crun refuses them), and where root
#   lacks CAP_SYS_RESOURCE podman cannot raise its default rlimits: a
#   containers.conf saying so is written to $MEMSTATFS_PODMAN_STATE
#   (/run/memstatfs-podman) and used through CONTAINERS_CONF, only then.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
state=${MEMSTATFS_PODMAN_STATE:-/run/memstatfs-podman}
image=${MEMSTATFS_IMAGE:-localhost/memstatfs:latest}

die() { echo "memstatfs-podman: $*" >&2; exit 1; }
command -v podman >/dev/null || die "podman is not installed (Debian: apt-get install podman)"
((EUID == 0)) || die "run as root: the sidecar mounts FUSE and the shared directory needs mount(8)"

# This host's quirks, only where it has them.
host_conf() {
	local conf=() capeff
	[[ -n ${CONTAINERS_CONF:-} ]] && return 0 # the user's own choice
	if [[ $(stat -f -c %T /sys/fs/cgroup) != cgroup2fs ]] && command -v runc >/dev/null; then
		conf+=("[engine]" 'runtime = "runc"')
	fi
	capeff=$(awk '/^CapEff:/ { print $2 }' /proc/self/status)
	if (((0x$capeff >> 24 & 1) == 0)); then # CAP_SYS_RESOURCE
		conf=('[containers]' 'default_ulimits = ["nofile=1024:1024", "nproc=32768:32768"]' "${conf[@]}")
	fi
	((${#conf[@]})) || return 0
	mkdir -p "$state"
	printf '%s\n' "${conf[@]}" >"$state/containers.conf"
	export CONTAINERS_CONF=$state/containers.conf
}

# Makes dir a shared mount (a bind mount on itself first when it is none).
make_shared() {
	local dir=$1
	mkdir -p "$dir"
	if ! findmnt -n -M "$dir" >/dev/null; then
		mount --bind "$dir" "$dir"
	fi
	mount --make-rshared "$dir"
}

top_fstype() { # the file system mounted last on dir
	awk -v d="$1" '$2 == d { t = $3 } END { print t }' /proc/self/mounts
}

# A memstatfs mount on dir whose daemon is gone: detach it.
clear_dead_mount() {
	local dir=$1
	if [[ $(top_fstype "$dir") == fuse.memstatfs ]] && ! stat -f "$dir" >/dev/null 2>&1; then
		echo "memstatfs-podman: detaching the dead mount on $dir (its daemon was killed)"
		umount -l "$dir"
	fi
}

wait_mounted() { # dir: up to 30 s for the sidecar's mount to show
	local dir=$1
	for _ in $(seq 300); do
		[[ $(top_fstype "$dir") == fuse.memstatfs ]] && stat -f "$dir" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}

cmd_image() {
	podman build -f "$here/Dockerfile" -t "$image" "$src"
}

cmd_up() {
	local dir=${1:?usage: up DIR [NAME]} name=${2:-memstatfs-sidecar}
	dir=$(realpath -m "$dir")
	podman image exists "$image" || cmd_image
	clear_dead_mount "$dir"
	make_shared "$dir"
	podman rm -f -t 10 "$name" >/dev/null 2>&1 || true
	podman run -d --name "$name" ${MEMSTATFS_PODMAN_LABEL:+--label "$MEMSTATFS_PODMAN_LABEL"} \
		--device /dev/fuse --cap-add SYS_ADMIN,SYS_PTRACE \
		-v "$dir:/mnt/memstat:rshared" "$image" >/dev/null
	wait_mounted "$dir" || die "the sidecar did not mount $dir; its log: $(podman logs "$name" 2>&1 | tail -5)"
	echo "memstatfs is mounted on $dir (sidecar $name)."
	echo "An application container that reads it: $(cmd_app "$dir" "$name" -- sh)"
}

cmd_app() { # dir name -- cmd...: the run line, with the mount and the pid namespace
	local dir=$1 name=$2
	shift 2
	[[ ${1:-} == -- ]] && shift
	printf 'podman run --rm --pid container:%s -v %s:/mnt/memstat:rslave IMAGE %s' \
		"$name" "$(realpath -m "$dir")" "$*"
}

cmd_down() {
	local dir=${1:?usage: down DIR [NAME]} name=${2:-memstatfs-sidecar}
	dir=$(realpath -m "$dir")
	# SIGTERM: the daemon unmounts and exits 0; SIGKILL only after 10 s.
	podman stop -t 10 "$name" >/dev/null 2>&1 || true
	podman rm -f "$name" >/dev/null 2>&1 || true
	clear_dead_mount "$dir"
}

cmd_kube() {
	local what=${1:?usage: kube up|down [YAML]} yaml=${2:-$here/pod.yaml} pod vols
	yaml=$(realpath "$yaml")
	pod=$(awk '/^metadata:/ { m = 1 } m && /^  name:/ { print $2; exit }' "$yaml")
	case $what in
	up)
		# Again: the running pod is stopped the clean way first.
		podman pod exists "$pod" && cmd_kube down "$yaml"
		podman image exists "$image" || cmd_image
		vols=$(podman info --format '{{.Store.VolumePath}}')
		# Dead mounts a killed sidecar left in the volumes.
		awk -v d="$vols/" '$3 == "fuse.memstatfs" && index($2, d) == 1 { print $2 }' \
			/proc/self/mounts | while read -r m; do clear_dead_mount "$m"; done
		make_shared "$vols"
		# hostPath directories (a DaemonSet's /run/memstat): shared too,
		# as the kubelet makes them for Bidirectional propagation.
		awk '/hostPath:/ { h = 1; next } h && /path:/ { print $2; h = 0 }' "$yaml" |
			while read -r d; do
				[[ -c $d || -b $d || -f $d ]] && continue
				clear_dead_mount "$d"
				make_shared "$d"
			done
		# From /: kube play builds an image instead of using it when the
		# working directory has a directory named like the image.
		(cd / && podman kube play "$yaml" >/dev/null)
		echo "pod $pod is running"
		;;
	down)
		# The sidecar first, alone: SIGTERM, and it unmounts.  `kube
		# down` kills it; so does `pod stop`, which stops the infra
		# container, pid 1 of a pod that shares its pid namespace, at
		# the same time: the kernel then kills every process in the
		# namespace.  Either leaves a dead mount.
		podman stop -t 10 "$pod-memstatfs" >/dev/null 2>&1 || true
		podman pod stop -t 10 "$pod" >/dev/null 2>&1 || true
		(cd / && podman kube down "$yaml" >/dev/null)
		;;
	*) die "kube up|down" ;;
	esac
}

host_conf
sub=${1:-}
shift || true
case $sub in
image) cmd_image ;;
up) cmd_up "$@" ;;
app) cmd_app "$@"; echo ;;
down) cmd_down "$@" ;;
kube) cmd_kube "$@" ;;
*) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
