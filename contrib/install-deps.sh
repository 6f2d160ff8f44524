#!/usr/bin/env bash
# contrib/install-deps.sh [--test]: installs, with Debian's apt, what building
# memstatfs needs (and with --test, what its test suite needs) when it is
# missing.  Run as root on Debian 12.
set -euo pipefail

pkgs=(meson ninja-build pkg-config gcc libc6-dev libfuse3-dev fuse3 libglib2.0-dev libjson-glib-dev libxxhash-dev)
if [[ ${1:-} == --test ]]; then
	pkgs+=(libcriterion-dev procps util-linux valgrind qemu-system-x86 gcc-multilib
		prometheus prometheus-node-exporter gnuplot-nox man-db clang libclang-rt-14-dev lxcfs debootstrap
		podman runc catatonit uidmap slirp4netns containernetworking-plugins iptables python3-yaml
		libvirt-dev libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients libseccomp-dev)
fi

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
((${#missing[@]})) || exit 0
if ((EUID != 0)); then
	echo "install-deps: missing ${missing[*]}; run as root to install them" >&2
	exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
