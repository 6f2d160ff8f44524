/* pagemap.c: /proc/PID/pagemap: entries, PAGEMAP_SCAN, and the runs of
 * pages it finds (resident, soft-dirty). */
#define _GNU_SOURCE
#include "memstat/methods/pagemap.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/ioctl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "memstat/methods/progress.h"

#include "memstat/methods/fail.h"
#include "memstat/methods/procfs.h"

/* The PAGEMAP_SCAN ioctl (Linux 6.7+, include/uapi/linux/fs.h).  Debian
 * 12's headers (6.1) lack it, so the definitions are carried here under our
 * own names; the layout is the kernel's ABI. */
#define MS_PAGE_IS_PRESENT    (1ULL << 3)
#define MS_PAGE_IS_SWAPPED    (1ULL << 4)
#define MS_PAGE_IS_PFNZERO    (1ULL << 5)
#define MS_PAGE_IS_SOFT_DIRTY (1ULL << 7)

struct ms_page_region {
	uint64_t start;
	uint64_t end; /* exclusive */
	uint64_t categories;
};

struct ms_pm_scan_arg {
	uint64_t size; /* sizeof(struct ms_pm_scan_arg) */
	uint64_t flags;
	uint64_t start;
	uint64_t end;
	uint64_t walk_end; /* out: where the walk stopped */
	uint64_t vec;	   /* struct ms_page_region[] */
	uint64_t vec_len;
	uint64_t max_pages;
	uint64_t category_inverted;
	uint64_t category_mask;
	uint64_t category_anyof_mask;
	uint64_t return_mask;
};

#define MS_PAGEMAP_SCAN _IOWR('f', 16, struct ms_pm_scan_arg)

uint64_t ms_pagemap_soft_dirty_pages(const uint64_t *entries, size_t n)
{
	uint64_t pages = 0;
	for (size_t i = 0; i < n; i++)
		pages += (entries[i] & MS_PM_SOFT_DIRTY) &&
			 (entries[i] & (MS_PM_PRESENT | MS_PM_SWAPPED));
	return pages;
}

int ms_open_pagemap(pid_t pid, char **why)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/pagemap", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno == ENOENT ? ESRCH : errno;
		return ms_fail(why, -e, "cannot open %s: %s", path, g_strerror(e));
	}
	return fd;
}

int ms_pagemap_lookup(int fd, const uint64_t *addrs, size_t count, uint32_t page_size,
		      uint64_t *entries)
{
	uint64_t chunk[512];
	uint64_t first = 0;
	size_t have = 0;

	for (size_t i = 0; i < count; i++) {
		uint64_t idx = addrs[i] / page_size;

		if (have == 0 || idx < first || idx >= first + have) {
			ssize_t r =
				pread(fd, chunk, sizeof(chunk), (off_t)(idx * sizeof(uint64_t)));
			ms_read_returned();
			if (r < 0)
				return errno == ENOENT ? -ESRCH : -errno;
			first = idx;
			have = (size_t)r / sizeof(uint64_t);
			if (have == 0) {
				/* Past the end of the address space, or the mm is gone. */
				entries[i] = 0;
				continue;
			}
		}
		entries[i] = chunk[idx - first];
	}
	return 0;
}

static void range_append(GArray *ranges, uint64_t start, uint64_t end)
{
	if (ranges->len) {
		ms_range *last = &g_array_index(ranges, ms_range, ranges->len - 1);
		if (last->end == start) {
			last->end = end;
			return;
		}
	}
	ms_range r = {start, end};
	g_array_append_val(ranges, r);
}

/* One PAGEMAP_SCAN walk of [start, end): the runs of pages in the categories
 * of arg (mask, inverted, anyof), appended to ranges, adjacent ones merged. */
static int scan(int fd, uint64_t start, uint64_t end, struct ms_pm_scan_arg *arg, GArray *ranges)
{
	struct ms_page_region vec[512];

	/* Zeroed once so that valgrind, which does not know this ioctl fills
	 * vec, sees it as defined. */
	memset(vec, 0, sizeof(vec));
	arg->size = sizeof(*arg);
	arg->vec = (uint64_t)(uintptr_t)vec;
	arg->vec_len = G_N_ELEMENTS(vec);
	while (start < end) {
		arg->start = start;
		arg->end = end;
		arg->walk_end = 0;
		int n = ioctl(fd, MS_PAGEMAP_SCAN, arg);
		ms_read_returned();
		if (n < 0)
			return errno == ENOENT ? -ESRCH : -errno;
		for (int i = 0; i < n; i++)
			range_append(ranges, vec[i].start, vec[i].end);
		/* walk_end < end only when vec filled up. */
		if (arg->walk_end <= start)
			break;
		start = arg->walk_end;
	}
	return 0;
}

int ms_pagemap_scan_present(int fd, uint64_t start, uint64_t end, GArray *ranges)
{
	struct ms_pm_scan_arg arg = {
		/* Present, and not the shared zero page: reading memory that
		 * was never written maps the zero page, and that is neither
		 * resident memory of the process nor dirty. */
		.category_mask = MS_PAGE_IS_PRESENT | MS_PAGE_IS_PFNZERO,
		.category_inverted = MS_PAGE_IS_PFNZERO,
		.return_mask = MS_PAGE_IS_PRESENT,
	};
	return scan(fd, start, end, &arg, ranges);
}

/* Set once by probe_scan. */
static bool scan_supported, scan_soft_dirty;
static int scan_errno; /* why not, when not: ENOTTY, EINVAL, EPERM... */

static void probe_scan(void)
{
	/* The tests use this to run the path of kernels before 6.7. */
	if (getenv("MEMSTATFS_NO_PAGEMAP_SCAN")) {
		scan_errno = ENOTTY;
		return;
	}
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	GArray *r = g_array_new(FALSE, FALSE, sizeof(ms_range));
	static char probe[4096];

	probe[0] = 1; /* one resident page of ours to look at */
	if (fd < 0) {
		scan_errno = errno;
	} else {
		/* Each category used, not the ioctl once: kernels differ in
		 * which they know (an unknown one is EINVAL), and a filter
		 * (seccomp, an LSM) may refuse the ioctl (EPERM, EACCES,
		 * ENOSYS): then the pagemap is read entry by entry. */
		uint64_t a = (uint64_t)(uintptr_t)probe & ~(uint64_t)4095;
		int e = ms_pagemap_scan_present(fd, a, a + 4096, r);
		scan_supported = e == 0;
		scan_errno = -e;
		struct ms_pm_scan_arg sd = {
			.category_mask = MS_PAGE_IS_SOFT_DIRTY,
			.category_anyof_mask = MS_PAGE_IS_PRESENT | MS_PAGE_IS_SWAPPED,
			.return_mask = MS_PAGE_IS_SOFT_DIRTY,
		};
		scan_soft_dirty = scan_supported && scan(fd, a, a + 4096, &sd, r) == 0;
		close(fd);
	}
	g_array_unref(r);
}

static pthread_once_t scan_once = PTHREAD_ONCE_INIT;

bool ms_pagemap_scan_supported(void)
{
	pthread_once(&scan_once, probe_scan);
	return scan_supported;
}

bool ms_pagemap_scan_soft_dirty_supported(void)
{
	pthread_once(&scan_once, probe_scan);
	return scan_soft_dirty;
}

int ms_pagemap_scan_errno(void)
{
	pthread_once(&scan_once, probe_scan);
	return scan_errno;
}

uint64_t ms_ranges_pages_not_in(const GArray *b, const GArray *a, uint32_t page_size)
{
	uint64_t pages = 0;
	guint j = 0;

	for (guint i = 0; i < b->len; i++) {
		const ms_range *rb = &g_array_index(b, ms_range, i);
		uint64_t pos = rb->start;
		while (pos < rb->end) {
			while (j < a->len && g_array_index(a, ms_range, j).end <= pos)
				j++;
			if (j == a->len || g_array_index(a, ms_range, j).start >= rb->end) {
				pages += (rb->end - pos) / page_size;
				break;
			}
			const ms_range *ra = &g_array_index(a, ms_range, j);
			if (ra->start > pos)
				pages += (ra->start - pos) / page_size;
			pos = ra->end;
		}
	}
	return pages;
}

/* Resident runs of [start, end) from pagemap entries, read in chunks. */

/* Runs of [start, end) whose pagemap entries have mask (soft-dirty: as
 * ms_pagemap_soft_dirty_pages counts), read in chunks. */
static int pagemap_runs(int fd, uint64_t start, uint64_t end, uint32_t ps, uint64_t mask,
			GArray *ranges)
{
	uint64_t entries[4096];

	for (uint64_t a = start; a < end;) {
		size_t want = (size_t)MIN((end - a) / ps, (uint64_t)G_N_ELEMENTS(entries));
		ssize_t r = pread(fd, entries, want * sizeof(uint64_t),
				  (off_t)(a / ps * sizeof(uint64_t)));
		ms_read_returned();
		if (r < 0)
			return errno == ENOENT ? -ESRCH : -errno;
		size_t got = (size_t)r / sizeof(uint64_t);
		if (got == 0)
			break;
		for (size_t i = 0; i < got; i++) {
			bool in = mask == MS_PM_SOFT_DIRTY
					  ? ms_pagemap_soft_dirty_pages(&entries[i], 1)
					  : (entries[i] & mask) != 0;
			if (in)
				range_append(ranges, a + i * ps, a + (i + 1) * ps);
		}
		a += got * ps;
	}
	return 0;
}

int ms_pagemap_runs(pid_t pid, GArray *vmas, ms_runs_how how, GArray **out, char **why)
{
	g_autoptr(GArray) runs = g_array_new(FALSE, FALSE, sizeof(ms_range));
	uint32_t ps = (uint32_t)sysconf(_SC_PAGESIZE);
	bool scanning = ms_pagemap_scan_soft_dirty_supported();
	int fd = -1, r = 0;

	if (how != MS_RUNS_WHOLE && (fd = ms_open_pagemap(pid, why)) < 0)
		return fd;
	for (guint i = 0; i < vmas->len && r == 0; i++) {
		const ms_vma *v = &g_array_index(vmas, ms_vma, i);
		switch (how) {
		case MS_RUNS_SCAN:
			r = ms_pagemap_scan_present(fd, v->start, v->end, runs);
			break;
		case MS_RUNS_PAGEMAP:
			r = pagemap_runs(fd, v->start, v->end, ps, MS_PM_PRESENT, runs);
			break;
		case MS_RUNS_SOFT_DIRTY:
			if (scanning) {
				struct ms_pm_scan_arg arg = {
					.category_mask = MS_PAGE_IS_SOFT_DIRTY,
					.category_anyof_mask =
						MS_PAGE_IS_PRESENT | MS_PAGE_IS_SWAPPED,
					.return_mask = MS_PAGE_IS_SOFT_DIRTY,
				};
				r = scan(fd, v->start, v->end, &arg, runs);
			} else {
				r = pagemap_runs(fd, v->start, v->end, ps, MS_PM_SOFT_DIRTY, runs);
			}
			break;
		case MS_RUNS_WHOLE: {
			ms_range whole = {v->start, v->end};
			g_array_append_val(runs, whole);
			break;
		}
		}
	}
	if (fd >= 0)
		close(fd);
	if (r < 0)
		return r == -ESRCH ? r
				   : ms_fail(why, r, "cannot read the pagemap of process %d: %s",
					     (int)pid, g_strerror(-r));
	*out = g_steal_pointer(&runs);
	return 0;
}

uint64_t ms_runs_pages(const GArray *runs, uint32_t page_size)
{
	uint64_t pages = 0;
	for (guint i = 0; i < runs->len; i++) {
		const ms_range *r = &g_array_index(runs, ms_range, i);
		pages += (r->end - r->start) / page_size;
	}
	return pages;
}

void ms_runs_addresses(const GArray *runs, uint32_t page_size, uint64_t *idx, size_t n)
{
	guint v = 0;
	uint64_t before = 0; /* pages in runs before v */

	for (size_t i = 0; i < n; i++) {
		for (;;) {
			const ms_range *m = &g_array_index(runs, ms_range, v);
			uint64_t pages = (m->end - m->start) / page_size;
			if (idx[i] < before + pages) {
				idx[i] = m->start + (idx[i] - before) * page_size;
				break;
			}
			before += pages;
			v++;
		}
	}
}

int ms_pagemap_entries_of_runs(int fd, const GArray *runs, uint32_t page_size, uint64_t *entries)
{
	size_t k = 0;

	for (guint i = 0; i < runs->len; i++) {
		const ms_range *x = &g_array_index(runs, ms_range, i);
		for (uint64_t a = x->start; a < x->end;) {
			size_t want = (size_t)MIN((x->end - a) / page_size, (uint64_t)4096);
			ssize_t r = pread(fd, entries + k, want * sizeof(uint64_t),
					  (off_t)(a / page_size * sizeof(uint64_t)));
			ms_read_returned();
			if (r < 0)
				return errno == ENOENT ? -ESRCH : -errno;
			size_t got = (size_t)r / sizeof(uint64_t);
			if (got == 0) {
				/* The mm is gone: nothing resident any more. */
				for (; a < x->end; a += page_size)
					entries[k++] = 0;
				break;
			}
			k += got;
			a += got * page_size;
		}
	}
	return 0;
}
