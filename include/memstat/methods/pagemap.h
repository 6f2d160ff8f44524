/* pagemap.h: /proc/PID/pagemap: its entries (pure functions, for the
 * methods, the tests and the fuzzers), the PAGEMAP_SCAN ioctl, and the runs
 * of pages of a process's writable mappings that are resident or
 * soft-dirty. */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define MS_PM_PRESENT	 (1ULL << 63)
#define MS_PM_SWAPPED	 (1ULL << 62)
#define MS_PM_SOFT_DIRTY (1ULL << 55)
/* Bits 0-54: the page frame, when present (0 unless CAP_SYS_ADMIN). */
#define MS_PM_PFN_MASK ((1ULL << 55) - 1)

/* Pages written since soft-dirty was last cleared: entries with bit 55 that
 * are resident or swapped.  (A mapping created after the clear reads as
 * soft-dirty whole, including pages never touched: those do not count.) */
uint64_t ms_pagemap_soft_dirty_pages(const uint64_t *entries, size_t n);

/* An fd on /proc/PID/pagemap, or -errno (-ESRCH when the process is gone)
 * with *why. */
int ms_open_pagemap(pid_t pid, char **why);

/* The pagemap entries of page-aligned addresses sorted ascending.
 * 0 or -errno. */
int ms_pagemap_lookup(int fd, const uint64_t *addrs, size_t count, uint32_t page_size,
		      uint64_t *entries);

/* A run of pages [start, end), page aligned. */
typedef struct {
	uint64_t start, end;
} ms_range;

/* Whether this kernel has PAGEMAP_SCAN (probed once, on ourselves;
 * MEMSTATFS_NO_PAGEMAP_SCAN in the environment says no). */
bool ms_pagemap_scan_supported(void);
/* Whether PAGEMAP_SCAN also knows the soft-dirty category (probed apart:
 * kernels differ in the categories they know). */
bool ms_pagemap_scan_soft_dirty_supported(void);
/* Why PAGEMAP_SCAN is not used: 0 when it is, else the probe's errno
 * (ENOTTY: no such ioctl; EPERM, EACCES, ENOSYS: refused by a filter). */
int ms_pagemap_scan_errno(void);

/* Appends the resident runs of [start, end) to ranges (GArray of ms_range,
 * adjacent runs merged), using PAGEMAP_SCAN on fd.  Pages mapped to the
 * shared zero page do not count.  0 or -errno. */
int ms_pagemap_scan_present(int fd, uint64_t start, uint64_t end, GArray *ranges);

/* Which pages ms_pagemap_runs finds. */
typedef enum {
	MS_RUNS_SCAN,	    /* resident, by PAGEMAP_SCAN: zero page excluded */
	MS_RUNS_PAGEMAP,    /* resident, by reading pagemap entries */
	MS_RUNS_WHOLE,	    /* no look: the mappings whole */
	MS_RUNS_SOFT_DIRTY, /* soft-dirty and resident or swapped (PAGEMAP_SCAN
			     * where the kernel has it, else the entries) */
} ms_runs_how;

/* The runs of vmas (GArray of ms_vma, procfs.h) of process pid, per how
 * (MS_RUNS_SCAN needs ms_pagemap_scan_supported()): a GArray of ms_range,
 * sorted, adjacent runs merged.  0, -ESRCH or -errno with *why. */
int ms_pagemap_runs(pid_t pid, GArray *vmas, ms_runs_how how, GArray **out, char **why);

/* Pages in runs. */
uint64_t ms_runs_pages(const GArray *runs, uint32_t page_size);

/* Turns idx[0..n), indices of pages in runs (ascending, each below
 * ms_runs_pages), into those pages' addresses, in place. */
void ms_runs_addresses(const GArray *runs, uint32_t page_size, uint64_t *idx, size_t n);

/* Pages in b that are in no run of a; both sorted and disjoint. */
uint64_t ms_ranges_pages_not_in(const GArray *b, const GArray *a, uint32_t page_size);

/* The pagemap entries of every page of runs (GArray of ms_range, sorted),
 * in order, into entries (ms_runs_pages(runs) of them): read in chunks, not
 * page by page.  0 or -errno (-ESRCH when the process is gone). */
int ms_pagemap_entries_of_runs(int fd, const GArray *runs, uint32_t page_size, uint64_t *entries);
