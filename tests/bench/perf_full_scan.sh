#!/bin/bash
# perf_full_scan.sh: where a full-scan pass's CPU goes (BENCHMARKS.md 3).
#
#   tests/bench/perf_full_scan.sh BUILD_DIR [GIB...]     (default: 0.25 1 4)
#
# Runs measure_bench's full-scan steps alone under `perf record -g` (as
# root; needs perf: Debian's linux-perf) and sorts the measuring process's
# samples by their stack into the shares of BENCHMARKS.md's table: the
# kernel's read of /proc/PID/mem (its copies, get_user_pages, per read),
# the hashing, PAGEMAP_SCAN, the rest.  Prints figures, asserts nothing.
set -euo pipefail
build=${1:?usage: perf_full_scan.sh BUILD_DIR [GIB...]}
shift
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(0.25 1 4)
command -v perf >/dev/null || { echo "perf_full_scan.sh: no perf (apt-get install linux-perf)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for gib in "${sizes[@]}"; do
	perf record -q -F 2000 -g -o "$tmp/perf.data" \
		"$build"/tests/measure_bench full-scan 6 "$gib" >"$tmp/out" 2>/dev/null
	pid=$(sed -n 's/^measuring process \([0-9]*\),.*/\1/p' "$tmp/out")
	echo "## $(sed 's/^measuring process [0-9]*, //' "$tmp/out")"
	echo
	perf script -i "$tmp/perf.data" --pid "$pid" 2>/dev/null | awk '
	BEGIN { RS = "" }
	{  # the steps (the process sleeps while the child sets up)
		n++
		split($0, L, "\n"); leaf = L[2]
		if ($0 ~ /mem_rw/) {
			if (leaf ~ /memcpy/) c = "kernel: each page copied into a bounce page"
			else if (leaf ~ /copy_to_user|copy_user|check_object_size|virt_addr_valid|check_heap_object/)
				c = "kernel: the bounce page copied to our buffer"
			else if ($0 ~ /get_user_pages/ || leaf ~ /mtree_load|mt_find|find_vma|vma_lookup/)
				c = "kernel: get_user_pages, a page at a time, and VMA lookups"
			else c = "kernel: per read (syscall, mem_rw, bounce page, mmap_lock)"
		} else if ($0 ~ /pagemap/) c = "finding the resident pages (PAGEMAP_SCAN, pagemap)"
		else if (leaf ~ /libxxhash|XXH/) c = "hashing (XXH3)"
		else if ($0 ~ /exc_page_fault/) c = "page faults"
		else if (leaf ~ /\[kernel/) c = "kernel: other"
		else c = "ours: loop, arrays, compare"
		k[c]++
	}
	END {
		for (c in k) printf "| %s | %.1f |\n", c, 100 * k[c] / n
		printf "| all (%d samples) | 100.0 |\n", n
	}' | sort -t'|' -k3 -rn | sed '1i| share of a pass | % |\n| --- | ---: |'
	echo
done
