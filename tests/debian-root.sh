#!/usr/bin/env bash
# tests/debian-root.sh: prints the path of a tarball of a bare (minbase)
# Debian 12 root, made once with Debian's debootstrap from the mirror this
# machine's apt uses and cached in $MEMSTATFS_ROOT_CACHE
# (/var/cache/memstatfs-tests).  As root.  The fresh-machine phase copies it;
# the container tests import it as the debian:12 image where no registry can
# be reached.
set -euo pipefail
cache=${MEMSTATFS_ROOT_CACHE:-/var/cache/memstatfs-tests}
base=$cache/bookworm-minbase.tar
die() { echo "debian-root: $*" >&2; exit 1; }

# The Debian mirror this machine's apt uses for bookworm (deb822 or
# one-line format).
mirror() {
	local f
	for f in /etc/apt/sources.list.d/*.sources; do
		[[ -f $f ]] || continue
		awk 'BEGIN { RS = ""; FS = "\n" }
			/(^|\n)Suites:[^\n]*bookworm( |\n|$)/ && /(^|\n)Components:[^\n]*main/ {
				for (i = 1; i <= NF; i++) if ($i ~ /^URIs:/) { split($i, u, " "); print u[2]; exit }
			}' "$f"
	done
	cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
		awk '$1 == "deb" && $3 == "bookworm" && / main/ { print $2 }'
}

if [[ ! -s $base ]]; then
	((EUID == 0)) || die "needs root (debootstrap)"
	command -v debootstrap >/dev/null || die "needs debootstrap (contrib/install-deps.sh --test)"
	url=$(mirror | grep -m1 -v security || true)
	[[ -n $url ]] || die "no Debian bookworm mirror in /etc/apt/sources.list*: debootstrap needs one"
	mkdir -p "$cache"
	echo "debian-root: making the bare Debian 12 root (debootstrap --variant=minbase bookworm), once" >&2
	made=$(mktemp -d "$cache/root.XXXXXX")
	if ! debootstrap --variant=minbase bookworm "$made/root" "$url" >"$made/log" 2>&1; then
		tail -n 20 "$made/log" >&2
		rm -rf "$made"
		die "debootstrap failed (log above)"
	fi
	tar -C "$made/root" -cf "$made/base.tar" .
	mv "$made/base.tar" "$base"
	rm -rf "$made"
fi
echo "$base"
