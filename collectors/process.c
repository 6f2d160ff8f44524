/* process.c: what every process collector shares: finding a collector by
 * mode, telling whether a pidfd's process is alive, reading the writable
 * mappings, residency from pagemap and hashing pages in batches. */
#define _GNU_SOURCE
#include "process.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/ioctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>
#include <xxhash.h>

#include "memstat/procfs.h"
#include "pagemap_scan.h"

static const ms_collector_ops *const collectors[] = {
	&ms_page_sampling,
	&ms_full_scan,
	&ms_soft_dirty,
};

const ms_collector_ops *ms_collector_find(const char *mode)
{
	for (size_t i = 0; i < G_N_ELEMENTS(collectors); i++)
		if (strcmp(collectors[i]->mode, mode) == 0)
			return collectors[i];
	return NULL;
}

bool ms_proc_alive(const ms_proc_id *id)
{
	if (id->pidfd >= 0) {
		struct pollfd p = {.fd = id->pidfd, .events = POLLIN};
		int r;

		do
			r = poll(&p, 1, 0);
		while (r < 0 && errno == EINTR);
		/* A pidfd polls readable once its process has exited. */
		return r == 0;
	}
	ms_proc_stat st;
	return ms_proc_stat_read(id->pid, &st) == 0 && st.starttime == id->starttime &&
	       st.state != 'Z' && st.state != 'X';
}

int ms_proc_writable_vmas(pid_t pid, GArray **out, char **why)
{
	char path[64];
	g_autofree char *text = NULL;
	int err = 0;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	int r = ms_read_file(path, &text, NULL);
	if (r == -ENOENT || r == -ESRCH)
		return -ESRCH;
	if (r < 0) {
		*why = g_strdup_printf("cannot read %s: %s", path, g_strerror(-r));
		return r;
	}
	*out = ms_parse_maps(text, &err);
	if (!*out) {
		*why = g_strdup_printf("cannot parse %s", path);
		return err;
	}
	return 0;
}

int ms_check_memory_access(pid_t pid, char **why)
{
	char path[64];

	/* /proc/PID/mem asks the same question process_vm_readv does (may this
	 * task attach to that one), and opening it answers it at no cost. */
	snprintf(path, sizeof(path), "/proc/%d/mem", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno == ENOENT ? ESRCH : errno;
		*why = g_strdup_printf("cannot read the memory of process %d: %s", (int)pid,
				       g_strerror(e));
		return -e;
	}
	close(fd);
	return 0;
}

int ms_open_pagemap(pid_t pid, char **why)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/pagemap", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno == ENOENT ? ESRCH : errno;
		*why = g_strdup_printf("cannot open %s: %s", path, g_strerror(e));
		return -e;
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

int ms_hash_pages(ms_page_reader *rd, const uint64_t *addrs, size_t count, uint64_t *hashes,
		  bool *readable)
{
	g_autoptr(GArray) runs = g_array_sized_new(FALSE, FALSE, sizeof(ms_range), (guint)count);

	/* One run a page; ms_hash_runs reads many runs per call. */
	for (size_t i = 0; i < count; i++) {
		ms_range r = {addrs[i], addrs[i] + rd->page_size};
		g_array_append_val(runs, r);
	}
	return ms_hash_runs(rd, runs, hashes, readable);
}

/* The state of one thread (or of a single-threaded process) from its stat
 * file, or 0. */
static char stat_state(const char *path, long *threads)
{
	g_autofree char *text = NULL;
	ms_proc_stat st;

	if (ms_read_file(path, &text, NULL) < 0 || ms_parse_stat(text, &st) < 0)
		return 0;
	if (threads)
		*threads = st.num_threads;
	return st.state;
}

bool ms_proc_any_thread_busy(pid_t pid)
{
	char path[64];
	long threads = 0;

	/* One thread: the process's own stat says it. */
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	char state = stat_state(path, &threads);
	if (state == 0 || state == 'R' || state == 'D')
		return true;
	if (threads == 1)
		return false;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	DIR *d = opendir(path);
	struct dirent *e;
	bool busy = d == NULL;

	while (!busy && (e = readdir(d))) {
		char stat_path[sizeof(path) + sizeof(e->d_name) + 8];
		if (e->d_name[0] == '.')
			continue;
		snprintf(stat_path, sizeof(stat_path), "%s/%s/stat", path, e->d_name);
		/* 0: a thread gone since readdir, which ran; say so. */
		state = stat_state(stat_path, NULL);
		busy = state == 0 || state == 'R' || state == 'D';
	}
	if (d)
		closedir(d);
	return busy;
}

void ms_page_reader_init(ms_page_reader *rd, pid_t pid)
{
	rd->pid = pid;
	rd->page_size = (uint32_t)sysconf(_SC_PAGESIZE);
}

/* The buffer pages are read into: one per thread, not one per target (a
 * thousand targets would hold a GiB), freed when the thread ends. */
static GPrivate read_buffer = G_PRIVATE_INIT(g_free);

static uint8_t *thread_read_buffer(size_t page_size)
{
	uint8_t *buf = g_private_get(&read_buffer);

	if (!buf) {
		buf = g_malloc(page_size * MS_READ_BATCH);
		g_private_set(&read_buffer, buf);
	}
	return buf;
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

int ms_pagemap_scan_present(int fd, uint64_t start, uint64_t end, GArray *ranges)
{
	struct ms_page_region vec[512];
	struct ms_pm_scan_arg arg = {
		.size = sizeof(arg),
		.vec = (uint64_t)(uintptr_t)vec,
		.vec_len = G_N_ELEMENTS(vec),
		/* Present, and not the shared zero page: reading memory that
		 * was never written maps the zero page, and that is neither
		 * resident memory of the process nor dirty. */
		.category_mask = MS_PAGE_IS_PRESENT | MS_PAGE_IS_PFNZERO,
		.category_inverted = MS_PAGE_IS_PFNZERO,
		.return_mask = MS_PAGE_IS_PRESENT,
	};

	/* Zeroed once so that valgrind, which does not know this ioctl fills
	 * vec, sees it as defined. */
	memset(vec, 0, sizeof(vec));
	while (start < end) {
		arg.start = start;
		arg.end = end;
		arg.walk_end = 0;
		int n = ioctl(fd, MS_PAGEMAP_SCAN, &arg);
		if (n < 0)
			return errno == ENOENT ? -ESRCH : -errno;
		for (int i = 0; i < n; i++)
			range_append(ranges, vec[i].start, vec[i].end);
		/* walk_end < end only when vec filled up. */
		if (arg.walk_end <= start)
			break;
		start = arg.walk_end;
	}
	return 0;
}

static bool scan_supported;

static void probe_scan(void)
{
	/* The tests use this to run the path of kernels before 6.7. */
	if (getenv("MEMSTATFS_NO_PAGEMAP_SCAN"))
		return;
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	GArray *r = g_array_new(FALSE, FALSE, sizeof(ms_range));
	static char probe[4096];

	probe[0] = 1; /* one resident page of ours to look at */
	if (fd >= 0) {
		uint64_t a = (uint64_t)(uintptr_t)probe & ~(uint64_t)4095;
		scan_supported = ms_pagemap_scan_present(fd, a, a + 4096, r) == 0;
		close(fd);
	}
	g_array_unref(r);
}

bool ms_pagemap_scan_supported(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, probe_scan);
	return scan_supported;
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
static int pagemap_present(int fd, uint64_t start, uint64_t end, uint32_t ps, GArray *ranges)
{
	uint64_t entries[4096];

	for (uint64_t a = start; a < end;) {
		size_t want = (size_t)MIN((end - a) / ps, (uint64_t)G_N_ELEMENTS(entries));
		ssize_t r = pread(fd, entries, want * sizeof(uint64_t),
				  (off_t)(a / ps * sizeof(uint64_t)));
		if (r < 0)
			return errno == ENOENT ? -ESRCH : -errno;
		size_t got = (size_t)r / sizeof(uint64_t);
		if (got == 0)
			break;
		for (size_t i = 0; i < got; i++)
			if (entries[i] & MS_PM_PRESENT)
				range_append(ranges, a + i * ps, a + (i + 1) * ps);
		a += got * ps;
	}
	return 0;
}

int ms_resident_runs(pid_t pid, GArray *vmas, ms_runs_how how, GArray **out, char **why)
{
	g_autoptr(GArray) runs = g_array_new(FALSE, FALSE, sizeof(ms_range));
	uint32_t ps = (uint32_t)sysconf(_SC_PAGESIZE);
	int fd = -1, r = 0;

	if (how != MS_RUNS_WHOLE && (fd = ms_open_pagemap(pid, why)) < 0)
		return fd;
	for (guint i = 0; i < vmas->len && r == 0; i++) {
		const ms_vma *v = &g_array_index(vmas, ms_vma, i);
		if (how == MS_RUNS_SCAN) {
			r = ms_pagemap_scan_present(fd, v->start, v->end, runs);
		} else if (how == MS_RUNS_PAGEMAP) {
			r = pagemap_present(fd, v->start, v->end, ps, runs);
		} else {
			ms_range whole = {v->start, v->end};
			g_array_append_val(runs, whole);
		}
	}
	if (fd >= 0)
		close(fd);
	if (r < 0) {
		if (r != -ESRCH)
			*why = g_strdup_printf("cannot read the pagemap of process %d: %s",
					       (int)pid, g_strerror(-r));
		return r;
	}
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

/* Where ms_hash_runs has got to: run index and address in it. */
typedef struct {
	const GArray *runs;
	guint run;
	uint64_t at;
} run_cursor;

static void cursor_advance(run_cursor *c, size_t pages, size_t ps)
{
	while (pages > 0 && c->run < c->runs->len) {
		const ms_range *x = &g_array_index(c->runs, ms_range, c->run);
		size_t step = (size_t)MIN((x->end - c->at) / ps, (uint64_t)pages);
		c->at += step * ps;
		pages -= step;
		if (c->at >= x->end && ++c->run < c->runs->len)
			c->at = g_array_index(c->runs, ms_range, c->run).start;
	}
}

int ms_hash_runs(ms_page_reader *rd, const GArray *runs, uint64_t *hashes, bool *readable)
{
	const size_t ps = rd->page_size;
	uint8_t *buf = thread_read_buffer(ps);
	run_cursor c = {runs, 0, runs->len ? g_array_index(runs, ms_range, 0).start : 0};
	size_t k = 0; /* index of the page at the cursor */

	while (c.run < runs->len) {
		/* Up to MS_READ_BATCH pages per call, from as many runs as that
		 * takes: one iovec per run. */
		struct iovec local[MS_READ_BATCH], remote[MS_READ_BATCH];
		size_t iov = 0, pages = 0;
		run_cursor next = c;
		while (next.run < runs->len && pages < MS_READ_BATCH) {
			const ms_range *x = &g_array_index(runs, ms_range, next.run);
			size_t take = (size_t)MIN((x->end - next.at) / ps,
						  (uint64_t)(MS_READ_BATCH - pages));
			local[iov] = (struct iovec){buf + pages * ps, take * ps};
			remote[iov] = (struct iovec){(void *)(uintptr_t)next.at, take * ps};
			iov++;
			pages += take;
			cursor_advance(&next, take, ps);
		}
		ssize_t r = process_vm_readv(rd->pid, local, iov, remote, iov, 0);
		if (r < 0) {
			if (errno == ESRCH)
				return -ESRCH;
			if (errno != EFAULT)
				return -errno;
			r = 0;
		}
		size_t full = (size_t)r / ps;
		for (size_t j = 0; j < full; j++) {
			hashes[k + j] = XXH3_64bits(buf + j * ps, ps);
			readable[k + j] = true;
		}
		k += full;
		cursor_advance(&c, full, ps);
		if (full < pages) {
			/* The page that stopped the read is gone (unmapped
			 * since the runs were found): skip it and go on. */
			hashes[k] = 0;
			readable[k] = false;
			k++;
			cursor_advance(&c, 1, ps);
		}
	}
	return 0;
}

int64_t ms_now_us(clockid_t clk)
{
	struct timespec ts;
	clock_gettime(clk, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int ms_window_step(void *state, const ms_window_ops *w, const ms_proc_id *id, const ms_params *p,
		   ms_measurement *out, char **why)
{
	int produced = 0;

	if (w->is_open(state)) {
		produced = w->close_window(state, out, why);
		w->free_window(state);
		if (produced < 0)
			return produced;
	}
	int r = w->open_window(state, p, why);
	if (r < 0) {
		w->free_window(state);
		if (produced == 1 && r != -ESRCH) {
			g_clear_pointer(why, g_free);
			return produced;
		}
		return r;
	}
	if (!ms_proc_alive(id))
		return -ESRCH;
	return produced;
}
