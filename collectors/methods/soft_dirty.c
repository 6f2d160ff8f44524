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
#include "memstat/methods/soft_dirty.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "memstat/methods/fail.h"
#include "memstat/methods/pagemap.h"

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
	int e = write_clear_refs(getpid());
	if (e < 0) {
		/* EACCES, EPERM: an LSM refuses it; no soft-dirty then. */
		snprintf(sd_why, sizeof(sd_why), "cannot write /proc/self/clear_refs: %s",
			 g_strerror(-e));
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
	return sd_ok ? 0 : ms_fail(why, -EOPNOTSUPP, "%s", sd_why);
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
		*err = ms_fail(why, errno == ENOENT ? -ESRCH : -errno, "cannot write %s: %s", path,
			       g_strerror(errno == ENOENT ? ESRCH : errno));
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

/* Closes the window: counts the pages written since the clear. */
static int sd_close_window(void *state, ms_measurement *out, char **why)
{
	sd_state *s = state;
	g_autoptr(GArray) vmas = NULL;
	g_autoptr(GArray) dirty = NULL;
	int r = ms_proc_writable_vmas(s->pid, &vmas, why);
	int64_t mono = ms_now_us(CLOCK_MONOTONIC);

	if (r < 0)
		return r;
	if ((r = ms_pagemap_runs(s->pid, vmas, MS_RUNS_SOFT_DIRTY, &dirty, why)) < 0)
		return r;
	ms_measurement_begin(out, ms_soft_dirty.mode,
			     ms_pagemap_scan_soft_dirty_supported() ? "clear_refs+pagemap_scan"
								    : "clear_refs+pagemap",
			     s->start_wall_ms, s->start_mono_us, mono, s->page_size);
	for (guint i = 0; i < vmas->len; i++) {
		const ms_vma *v = &g_array_index(vmas, ms_vma, i);
		out->pages_total += (v->end - v->start) / s->page_size;
	}
	out->pages_dirty = ms_runs_pages(dirty, s->page_size);
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

/* A window opens by clearing the bits. */
static int sd_open_window(void *state, const ms_params *p, char **why)
{
	sd_state *s = state;

	(void)p;
	s->start_wall_ms = ms_now_us(CLOCK_REALTIME) / 1000;
	s->start_mono_us = ms_now_us(CLOCK_MONOTONIC);
	int r = write_clear_refs(s->pid);
	if (r < 0)
		return r == -ESRCH
			       ? r
			       : ms_fail(why, r, "cannot clear soft-dirty bits of process %d: %s",
					 (int)s->pid, g_strerror(-r));
	s->open = true;
	return 0;
}

static void sd_free_window(void *state)
{
	((sd_state *)state)->open = false;
}

const ms_method ms_soft_dirty = {
	.mode = "soft-dirty",
	.supported = sd_supported,
	.open = sd_open,
	.is_open = sd_is_open,
	.close_window = sd_close_window,
	.open_window = sd_open_window,
	.free_window = sd_free_window,
	.close = sd_close,
};
