#!/bin/sh
# libvirtd.sh DIR: runs Debian's libvirtd (and its QEMU driver) in the
# foreground for the tests, without systemd and without touching the host's
# libvirt: in a private mount namespace whose /etc/libvirt, /run and /var are
# DIR's, with the users and groups Debian's package expects added to private
# copies of /etc/passwd and /etc/group.  Its socket is DIR/sock/libvirt-sock
# (reach it with qemu+unix:///system?socket=DIR/sock/libvirt-sock); guests'
# RAM files are under DIR/ram, their logs under DIR/var/log/libvirt/qemu.
# Exits 77 (skip) when libvirtd or its QEMU driver is not installed.
set -eu
dir=$1
command -v libvirtd >/dev/null 2>&1 || { echo "libvirtd is not installed (apt-get install libvirt-daemon)"; exit 77; }
ls /usr/lib/*/libvirt/connection-driver/libvirt_driver_qemu.so >/dev/null 2>&1 ||
	{ echo "libvirt's QEMU driver is not installed (apt-get install libvirt-daemon-driver-qemu)"; exit 77; }
mkdir -p "$dir/etc/qemu" "$dir/run" "$dir/var/log/libvirt/qemu" "$dir/var/lib/libvirt/qemu" \
	"$dir/var/cache/libvirt" "$dir/var/tmp" "$dir/sock" "$dir/ram"
chmod 0755 "$dir" "$dir/sock" "$dir/ram"
cat > "$dir/etc/qemu.conf" <<CONF
user = "root"
group = "root"
dynamic_ownership = 0
cgroup_controllers = [ ]
security_driver = "none"
stdio_handler = "file"
memory_backing_dir = "$dir/ram"
CONF
cat > "$dir/etc/libvirtd.conf" <<CONF
unix_sock_dir = "$dir/sock"
unix_sock_group = "root"
unix_sock_rw_perms = "0770"
unix_sock_ro_perms = "0777"
auth_unix_rw = "none"
auth_unix_ro = "none"
log_outputs = "3:file:$dir/libvirtd.log"
CONF
cp /etc/passwd "$dir/passwd"
cp /etc/group "$dir/group"
getent group kvm >/dev/null || echo "kvm:x:64990:" >> "$dir/group"
getent group libvirt >/dev/null || echo "libvirt:x:64991:" >> "$dir/group"
getent group libvirt-qemu >/dev/null || echo "libvirt-qemu:x:64992:" >> "$dir/group"
getent passwd libvirt-qemu >/dev/null ||
	echo "libvirt-qemu:x:64992:64992:Libvirt Qemu:/var/lib/libvirt:/usr/sbin/nologin" >> "$dir/passwd"
exec unshare -m --propagation private sh -c '
	set -e
	d=$1
	mount --bind "$d/etc" /etc/libvirt
	mount --bind "$d/passwd" /etc/passwd
	mount --bind "$d/group" /etc/group
	mount --bind "$d/run" /run
	mount --bind "$d/var" /var
	exec libvirtd -f "$d/etc/libvirtd.conf"
' libvirtd "$dir"
