#!/bin/sh
# contrib/container/entrypoint.sh: the image's entrypoint.  Runs memstatfs in
# the foreground (its log on standard error, for the engine), for every user,
# with the arguments the container is given (CMD: the mountpoint, options).
#
# The mountpoint is made first when it is missing: the recipes give the
# container a directory at /mnt that it shares with the applications (an
# emptyDir, a hostPath, a host directory) and mount the tree in /mnt/memstat,
# a subdirectory, so that the mount of a restarted sidecar reaches the
# applications that started before it (README: "What consumers see when the
# daemon dies").  Such a directory starts empty.
mnt=
skip=
for a in "$@"; do
	if [ -n "$skip" ]; then
		skip=
		continue
	fi
	case $a in
	-o) skip=1 ;;
	-*) ;;
	*)
		mnt=$a
		break
		;;
	esac
done
# A dead mount a killed sidecar left there makes mkdir fail (the daemon
# detaches it and says so); any other fault the daemon reports itself.
[ -n "$mnt" ] && mkdir -p "$mnt" 2>/dev/null
exec /usr/sbin/memstatfs -f -o allow_other "$@"
