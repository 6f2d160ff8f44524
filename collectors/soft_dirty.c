/* soft_dirty.c: the kernel's own write tracking.
 *
 * Writing 4 to /proc/PID/clear_refs clears the soft-dirty bit of every page
 * of the process and write-protects them; the next write to a page sets the
 * bit again (pagemap bit 55).  A window is: clear, wait, count.  The count is
 * exact: pages written, whatever was written.  It resets soft-dirty state for
 * the whole process, which disturbs anyone else using it (CRIU), and it
 * needs CONFIG_MEM_SOFT_DIRTY, which some kernels lack: supported() finds out
 * by trying it on ourselves.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "memstat/procfs.h"
#include "pagemap_scan.h"
#include "process.h"

uint64_t ms_pagemap_soft_dirty_pages(const uint64_t *entries, size_t n)
{
	uint64_t pages = 0;
	for (size_t i = 0; i < n; i++)
		pages += (entries[i] & MS_PM_SOFT_DIRTY) &&
			 (entries[i] & (MS_PM_PRESENT | MS_PM_SWAPPED));
	return pages;
}

static int write_clear_refs(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/clear_refs", (int)pid);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	int r = write(fd, "4", 1) == 1 ? 0 : -errno;
	close(fd);
	return r;
}

/* ---- does this kernel track soft-dirty? ---- */

static bool sd_ok;
static char sd_why[200];

static void probe(void)
{
	long ps = sysconf(_SC_PAGESIZE);
	volatile char *page =
		mmap(NULL, (size_t)ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint64_t entry = 0;
	int fd = -1;

	if (page == MAP_FAILED) {
		snprintf(sd_why, sizeof(sd_why), "cannot map a page to test soft-dirty");
		return;
	}
	page[0] = 1;
	if (write_clear_refs(getpid()) < 0) {
		snprintf(sd_why, sizeof(sd_why), "cannot write /proc/self/clear_refs");
		goto out;
	}
	page[0] = 2; /* sets the bit, where the kernel tracks it */
	fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (fd < 0 ||
	    pread(fd, &entry, sizeof(entry), (off_t)((uintptr_t)page / (uintptr_t)ps * 8)) != 8) {
		snprintf(sd_why, sizeof(sd_why), "cannot read /proc/self/pagemap");
		goto out;
	}
	sd_ok = (entry & MS_PM_SOFT_DIRTY) != 0;
	if (!sd_ok)
		snprintf(sd_why, sizeof(sd_why),
			 "this kernel does not track soft-dirty pages (CONFIG_MEM_SOFT_DIRTY is "
			 "off: "
			 "after clear_refs=4 and a write, pagemap bit 55 stays clear)");
out:
	if (fd >= 0)
		close(fd);
	munmap((void *)page, (size_t)ps);
}

static int sd_supported(char **why)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, probe);
	if (sd_ok)
		return 0;
	*why = g_strdup(sd_why);
	return -EOPNOTSUPP;
}

/* ---- measuring ---- */

typedef struct {
	pid_t pid;
	const ms_proc_id *id;
	uint32_t page_size;
	bool open;
	int64_t start_wall_ms, start_mono_us;
} sd_state;

static void *sd_open(const ms_proc_id *id, int *err, char **why)
{
	char path[64];

	if ((*err = sd_supported(why)) < 0)
		return NULL;
	snprintf(path, sizeof(path), "/proc/%d/clear_refs", (int)id->pid);
	if (access(path, W_OK) != 0) {
		*err = errno == ENOENT ? -ESRCH : -errno;
		*why = g_strdup_printf("cannot write %s: %s", path, g_strerror(-*err));
		return NULL;
	}
	sd_state *s = g_new0(sd_state, 1);
	s->pid = id->pid;
	s->id = id;
	s->page_size = (uint32_t)sysconf(_SC_PAGESIZE);
	return s;
}

static void sd_close(void *state)
{
	g_free(state);
}

/* Soft-dirty pages of [start, end): PAGEMAP_SCAN where the kernel has it,
 * else the pagemap entries. */
static int count_range(int fd, uint64_t start, uint64_t end, uint32_t ps, uint64_t *pages)
{
	if (ms_pagemap_scan_supported()) {
		struct ms_page_region vec[MS_PM_SCAN_MAX_REGIONS];
		struct ms_pm_scan_arg arg = {
			.size = sizeof(arg),
			.vec = (uint64_t)(uintptr_t)vec,
			.vec_len = G_N_ELEMENTS(vec),
			.category_mask = MS_PAGE_IS_SOFT_DIRTY,
			.category_anyof_mask = MS_PAGE_IS_PRESENT | MS_PAGE_IS_SWAPPED,
			.return_mask = MS_PAGE_IS_SOFT_DIRTY,
		};
		memset(vec, 0, sizeof(vec));
		while (start < end) {
			arg.start = start;
			arg.end = end;
			int n = ioctl(fd, MS_PAGEMAP_SCAN, &arg);
			if (n < 0)
				return -errno;
			for (int i = 0; i < n; i++)
				*pages += (vec[i].end - vec[i].start) / ps;
			if (arg.walk_end <= start)
				break;
			start = arg.walk_end;
		}
		return 0;
	}
	uint64_t entries[4096];
	for (uint64_t a = start; a < end;) {
		size_t want = (size_t)MIN((end - a) / ps, (uint64_t)G_N_ELEMENTS(entries));
		ssize_t r = pread(fd, entries, want * 8, (off_t)(a / ps * 8));
		if (r <= 0)
			return r < 0 ? -errno : 0;
		*pages += ms_pagemap_soft_dirty_pages(entries, (size_t)r / 8);
		a += (uint64_t)r / 8 * ps;
	}
	return 0;
}

static int sd_count(sd_state *s, ms_measurement *out, char **why)
{
	g_autoptr(GArray) vmas = NULL;
	int r = ms_proc_writable_vmas(s->pid, &vmas, why);
	int64_t mono = ms_now_us(CLOCK_MONOTONIC);

	if (r < 0)
		return r;
	int fd = ms_open_pagemap(s->pid, why);
	if (fd < 0)
		return fd;
	memset(out, 0, sizeof(*out));
	for (guint i = 0; i < vmas->len && r == 0; i++) {
		const ms_vma *v = &g_array_index(vmas, ms_vma, i);
		out->pages_total += (v->end - v->start) / s->page_size;
		r = count_range(fd, v->start, v->end, s->page_size, &out->pages_dirty);
	}
	close(fd);
	if (r < 0) {
		*why = g_strdup_printf("cannot read the pagemap of process %d: %s", (int)s->pid,
				       g_strerror(-r));
		return r;
	}
	out->start_ms = s->start_wall_ms;
	out->period_ms = (uint32_t)MAX((mono - s->start_mono_us + 500) / 1000, 1);
	out->mode = "soft-dirty";
	out->method =
		ms_pagemap_scan_supported() ? "clear_refs+pagemap_scan" : "clear_refs+pagemap";
	out->page_size = s->page_size;
	/* Every page was looked at: a census of what was written. */
	out->pages_population = out->pages_dirty;
	out->pages_sampled = out->pages_dirty;
	ms_measurement_finish(out);
	out->exact = true;
	return 1;
}

static bool sd_is_open(void *state)
{
	return ((sd_state *)state)->open;
}

static int sd_close_window(void *state, ms_measurement *out, char **why)
{
	return sd_count(state, out, why);
}

/* A window opens by clearing the bits. */
static int sd_open_window(void *state, const ms_params *p, char **why)
{
	sd_state *s = state;

	(void)p;
	s->start_wall_ms = ms_now_us(CLOCK_REALTIME) / 1000;
	s->start_mono_us = ms_now_us(CLOCK_MONOTONIC);
	int r = write_clear_refs(s->pid);
	if (r < 0) {
		if (r != -ESRCH)
			*why = g_strdup_printf("cannot clear soft-dirty bits of process %d: %s",
					       (int)s->pid, g_strerror(-r));
		return r;
	}
	s->open = true;
	return 0;
}

static void sd_free_window(void *state)
{
	((sd_state *)state)->open = false;
}

static const ms_window_ops sd_windows = {
	.is_open = sd_is_open,
	.close_window = sd_close_window,
	.open_window = sd_open_window,
	.free_window = sd_free_window,
};

static int sd_step(void *state, const ms_params *p, ms_measurement *out, char **why)
{
	return ms_window_step(state, &sd_windows, ((sd_state *)state)->id, p, out, why);
}

const ms_collector_ops ms_soft_dirty = {
	.mode = "soft-dirty",
	.supported = sd_supported,
	.open = sd_open,
	.step = sd_step,
	.close = sd_close,
};
