#!/usr/bin/env bash
# contrib/container/memstatfs-podman.sh: memstatfs as a sidecar with podman,
# in one command.  As root.
#
#   memstatfs-podman.sh image                 build localhost/memstatfs from this checkout
#   memstatfs-podman.sh up DIR [NAME]         run the sidecar NAME (memstatfs-sidecar),
#                                             mounting memstatfs on DIR for the host and
#                                             for application containers
#   memstatfs-podman.sh app [NAME]            print the podman run options of an application
#                                             container: podman run $(memstatfs-podman.sh app)
#                                             IMAGE CMD reads the tree at /mnt/memstat
#   memstatfs-podman.sh down DIR [NAME]       stop the sidecar so that it unmounts
#   memstatfs-podman.sh kube up|down [YAML]   podman kube play/down of pod.yaml, in the
#                                             order that leaves no dead mount
#
# What a user of podman meets, and what this does about it:
# - The mount reaches the host and other containers only through a shared
#   mount (Bidirectional/rshared on the sidecar's side, HostToContainer/rslave
#   on the application's).  Where / is a private mount (hosts whose init is
#   not systemd) nothing fails without one: the mount just never appears.
# - The sidecar mounts the tree in a subdirectory of a shared directory, and
#   the applications get that directory, not the mount: a bind of a mount
#   copies it, and a copy of a dead mount stays dead, while a shared
#   directory receives the next mount.  `up` makes $MEMSTATFS_PODMAN_STATE/NAME
#   (/run/memstatfs-podman/NAME) a bind on itself, rshared, with the tree in
#   its subdirectory memstat; DIR is a bind of that subdirectory, so the host
#   reads DIR as before.  Both containers see the directory at /mnt and the
#   tree at /mnt/memstat.  For `kube play` podman's volumes directory
#   (emptyDir volumes live there) and every hostPath directory are made
#   shared the same way.
# - The pid namespace is shared through a pod (NAME-pod, sharing nothing
#   else), not with --pid container:NAME: the pod's infra container is pid 1
#   of the namespace, so a sidecar that dies takes no application with it
#   (the kernel kills a pid namespace whose pid 1 exits, and podman refuses
#   `rm` of a container that others share a namespace with).
# - Stopping: `podman stop` (SIGTERM, then SIGKILL after -t seconds) lets the
#   daemon unmount.  `podman rm -f -t 0`, and `podman kube down` of a running
#   pod, kill it: the host then keeps a dead mount ("Transport endpoint is not
#   connected") until the next `up`, which detaches it.  podman runs no
#   preStop hook, and `podman pod stop` kills a sidecar that shares the pod's
#   pid namespace (its pid 1, the infra container, stops at the same time):
#   `kube down` here stops the sidecar container alone first.
# - After the sidecar died, `up` again detaches the dead mount (everywhere
#   it propagated) and the new sidecar mounts in the same shared directory:
#   the host and the application containers, old and new, get the new mount
#   (an application re-opens its files: an open file, or a working directory
#   inside the tree, stays on the dead mount).  In a kube pod podman restarts
#   a sidecar that died (restartPolicy Always) but not one stopped or killed
#   with podman: `podman start POD-memstatfs` then.
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

top_mount() { # "MAJOR:MINOR ROOT" of the mount last mounted on dir, or nothing
	awk -v d="$1" '$5 == d { t = $3 " " $4 } END { print t }' /proc/self/mountinfo
}

# A memstatfs mount on dir whose daemon is gone: detach it.
clear_dead_mount() {
	local dir=$1
	if [[ $(top_fstype "$dir") == fuse.memstatfs ]] && ! stat -f "$dir" >/dev/null 2>&1; then
		echo "memstatfs-podman: detaching the dead mount on $dir (its daemon was killed)"
		umount -l "$dir"
	fi
}

# The same on dir and everything under it.
clear_dead_mounts_under() {
	local dir=$1 m
	awk -v d="$dir" '$3 == "fuse.memstatfs" && ($2 == d || index($2, d "/") == 1) { print $2 }' \
		/proc/self/mounts | sort -u | while read -r m; do clear_dead_mount "$m"; done
}

wait_mounted() { # dir: up to 30 s for the sidecar's mount to show
	local dir=$1
	for _ in $(seq 300); do
		[[ $(top_fstype "$dir") == fuse.memstatfs ]] && stat -f "$dir" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}

# Sidecar NAME's shared directory (the tree in its subdirectory memstat),
# and its pod.
shared_of() { echo "$state/$1"; }
pod_of() { echo "$1-pod"; }

# The shared directory s, a bind on itself, rshared, with s/memstat; dir a
# bind of s/memstat (made before the sidecar mounts there, it is a peer of
# s: each mount made on s/memstat appears on dir too).
share() {
	local s=$1 dir=$2 want root
	clear_dead_mounts_under "$s"
	clear_dead_mount "$dir"
	make_shared "$s"
	mkdir -p "$s/memstat" "$dir"
	read -r want root <<<"$(top_mount "$s")"
	want="$want ${root%/}/memstat"
	[[ $(top_mount "$dir") == "$want" ]] || mount --bind "$s/memstat" "$dir"
}

# Undoes share(), once no application container is left to hold s.
unshare_dir() {
	local s=$1 dir=$2 want root
	if findmnt -n -M "$s" >/dev/null; then
		read -r want root <<<"$(top_mount "$s")"
		want="$want ${root%/}/memstat"
		[[ $(top_mount "$dir") == "$want" ]] && umount -l "$dir"
		umount -l "$s"
	fi
	rmdir "$s/memstat" "$s" 2>/dev/null || true
}

cmd_image() {
	podman build -f "$here/Dockerfile" -t "$image" "$src"
}

cmd_up() {
	local dir=${1:?usage: up DIR [NAME]} name=${2:-memstatfs-sidecar} s pod
	dir=$(realpath -m "$dir")
	s=$(shared_of "$name")
	pod=$(pod_of "$name")
	podman image exists "$image" || cmd_image
	# A running sidecar: SIGTERM, and it unmounts; SIGKILL after 10 s.
	podman rm -f -t 10 "$name" >/dev/null 2>&1 || true
	share "$s" "$dir"
	# The pod holds the pid namespace the sidecar and the applications
	# share, and outlives a sidecar that dies.
	podman pod exists "$pod" ||
		podman pod create --name "$pod" --share pid \
			${MEMSTATFS_PODMAN_LABEL:+--label "$MEMSTATFS_PODMAN_LABEL"} >/dev/null
	podman run -d --name "$name" --pod "$pod" \
		${MEMSTATFS_PODMAN_LABEL:+--label "$MEMSTATFS_PODMAN_LABEL"} \
		--device /dev/fuse --cap-add SYS_ADMIN,SYS_PTRACE \
		-v "$s:/mnt:rshared" "$image" /mnt/memstat >/dev/null
	wait_mounted "$dir" || die "the sidecar did not mount $dir; its log: $(podman logs "$name" 2>&1 | tail -5)"
	echo "memstatfs is mounted on $dir (sidecar $name)."
	echo "An application container that reads it at /mnt/memstat: podman run $(cmd_app "$name") IMAGE CMD"
}

cmd_app() { # [name]: the run options, with the shared directory and the pid namespace
	local name=${1:-memstatfs-sidecar}
	printf -- '--pod %s -v %s:/mnt:rslave' "$(pod_of "$name")" "$(shared_of "$name")"
}

cmd_down() {
	local dir=${1:?usage: down DIR [NAME]} name=${2:-memstatfs-sidecar} s pod n
	dir=$(realpath -m "$dir")
	s=$(shared_of "$name")
	pod=$(pod_of "$name")
	# SIGTERM: the daemon unmounts and exits 0; SIGKILL only after 10 s.
	podman stop -t 10 "$name" >/dev/null 2>&1 || true
	podman rm -f "$name" >/dev/null 2>&1 || true
	clear_dead_mounts_under "$s"
	clear_dead_mount "$dir"
	# The pod and the shared directory go once only the infra container
	# is left; applications keep them, for the next `up`.
	if podman pod exists "$pod"; then
		n=$(podman pod inspect --format '{{.NumContainers}}' "$pod")
		if ((n > 1)); then
			echo "memstatfs-podman: application containers are left in pod $pod; the next up reaches them (podman pod rm -f $pod when done)"
			return 0
		fi
		podman pod rm -f -t 10 "$pod" >/dev/null
	fi
	unshare_dir "$s" "$dir"
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
		clear_dead_mounts_under "$vols"
		make_shared "$vols"
		# hostPath directories (a DaemonSet's /run/memstatfs): shared
		# too, as the kubelet makes them for Bidirectional propagation.
		awk '/hostPath:/ { h = 1; next } h && /path:/ { print $2; h = 0 }' "$yaml" |
			while read -r d; do
				[[ -c $d || -b $d || -f $d ]] && continue
				clear_dead_mounts_under "$d"
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
*) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
