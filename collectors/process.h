/* process.h: helpers shared by the collectors that measure a process
 * (private to collectors/). */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "memstat/collector.h"
#include "memstat/pagemap.h"

#define MS_READ_BATCH 256 /* pages per process_vm_readv */

/* The writable mappings of pid (GArray of ms_vma).  0, -ESRCH, or -errno
 * with *why. */
int ms_proc_writable_vmas(pid_t pid, GArray **out, char **why);

/* Whether a thread of pid is running or waiting to run (state R), whose CPU
 * time the kernel may not have counted yet (it does at each tick and each
 * switch), or in uninterruptible sleep (D: waiting for a vfork child, or for
 * I/O that a device may be writing into its memory).  true when it cannot
 * tell. */
bool ms_proc_any_thread_busy(pid_t pid);

/* 0 when this daemon may read pid's memory, else -EACCES/-EPERM/-ESRCH. */
int ms_check_memory_access(pid_t pid, char **why);

/* An fd on /proc/PID/pagemap, or -errno with *why. */
int ms_open_pagemap(pid_t pid, char **why);

/* The pagemap entries of page-aligned addresses sorted ascending.
 * 0 or -errno. */
int ms_pagemap_lookup(int fd, const uint64_t *addrs, size_t count, uint32_t page_size,
		      uint64_t *entries);

/* A run of pages [start, end), page aligned. */
typedef struct {
	uint64_t start, end;
} ms_range;

/* Whether this kernel has PAGEMAP_SCAN (probed once, on ourselves). */
bool ms_pagemap_scan_supported(void);

/* Appends the resident runs of [start, end) to ranges (GArray of ms_range,
 * adjacent runs merged), using PAGEMAP_SCAN on fd.  Pages mapped to the
 * shared zero page do not count.  0 or -errno. */
int ms_pagemap_scan_present(int fd, uint64_t start, uint64_t end, GArray *ranges);

typedef struct {
	pid_t pid;
	uint32_t page_size;
} ms_page_reader;

/* How ms_resident_runs finds resident pages. */
typedef enum {
	MS_RUNS_SCAN,	 /* PAGEMAP_SCAN: resident pages, zero page excluded */
	MS_RUNS_PAGEMAP, /* reading pagemap entries: resident pages */
	MS_RUNS_WHOLE,	 /* no look: the mappings whole */
} ms_runs_how;

/* The runs of vmas (GArray of ms_vma) to look at, per how (MS_RUNS_SCAN
 * needs ms_pagemap_scan_supported()).  0, -ESRCH or -errno with *why. */
int ms_resident_runs(pid_t pid, GArray *vmas, ms_runs_how how, GArray **out, char **why);

/* Pages in runs. */
uint64_t ms_runs_pages(const GArray *runs, uint32_t page_size);

/* Hashes every page of runs, in order, into hashes (readable[i] false for a
 * page that could not be read).  Reads up to MS_READ_BATCH pages per
 * process_vm_readv, one iovec per run.  0, -ESRCH or -errno. */
int ms_hash_runs(ms_page_reader *rd, const GArray *runs, uint64_t *hashes, bool *readable);

/* Pages in b that are in no run of a; both sorted and disjoint. */
uint64_t ms_ranges_pages_not_in(const GArray *b, const GArray *a, uint32_t page_size);

void ms_page_reader_init(ms_page_reader *rd, pid_t pid);

/* Hashes the pages at addrs (resident ones only: reading faults pages in).
 * readable[i] is false for a page that could not be read (unmapped since).
 * 0, -ESRCH, or -errno. */
int ms_hash_pages(ms_page_reader *rd, const uint64_t *addrs, size_t count, uint64_t *hashes,
		  bool *readable);

/* clock_gettime in microseconds. */
int64_t ms_now_us(clockid_t clk);

/* A collector that measures in windows, one after the other. */
typedef struct {
	bool (*is_open)(void *state);
	/* Closes the open window into *out: 1, or a negative errno. */
	int (*close_window)(void *state, ms_measurement *out, char **why);
	/* Opens the next window: 0, or a negative errno. */
	int (*open_window)(void *state, const ms_params *p, char **why);
	/* Drops the window's data (after a close, or a failed open). */
	void (*free_window)(void *state);
} ms_window_ops;

/* The step of such a collector (ms_collector_ops.step): closes the open
 * window into *out, opens the next, and checks the process is still alive
 * afterwards, so that what was read was its memory.  When only opening the
 * next window fails (not -ESRCH), the finished one is kept and the next step
 * opens anew. */
int ms_window_step(void *state, const ms_window_ops *w, const ms_proc_id *id, const ms_params *p,
		   ms_measurement *out, char **why);
