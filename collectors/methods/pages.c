/* pages.c: reading pages of another process and hashing them, in
 * batches. */
#define _GNU_SOURCE
#include "memstat/methods/pages.h"

#include <errno.h>
#include <sys/uio.h>
#include <unistd.h>
#include <xxhash.h>

#include "memstat/methods/fail.h"

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

int ms_look_pages(ms_page_reader *rd, const uint64_t *addrs, size_t count, bool *present,
		  bool *readable, uint64_t *hashes, uint64_t *read, char **why)
{
	g_autofree uint64_t *entries = g_new(uint64_t, MAX(count, 1));
	g_autofree uint64_t *resident = g_new(uint64_t, MAX(count, 1));
	g_autofree size_t *where = g_new(size_t, MAX(count, 1));
	g_autofree uint64_t *rh = g_new(uint64_t, MAX(count, 1));
	g_autofree bool *rok = g_new(bool, MAX(count, 1));
	size_t k = 0;

	if (count == 0)
		return 0;
	int fd = ms_open_pagemap(rd->pid, why);
	if (fd < 0)
		return fd;
	int r = ms_pagemap_lookup(fd, addrs, count, rd->page_size, entries);
	close(fd);
	if (r < 0)
		return ms_fail(why, r, "cannot read the pagemap of process %d: %s", (int)rd->pid,
			       g_strerror(-r));
	for (size_t i = 0; i < count; i++) {
		present[i] = (entries[i] & MS_PM_PRESENT) != 0;
		hashes[i] = 0;
		/* Neither resident nor swapped: not mapped (any more). */
		readable[i] = (entries[i] & (MS_PM_PRESENT | MS_PM_SWAPPED)) != 0;
		if (present[i]) {
			resident[k] = addrs[i];
			where[k++] = i;
		}
	}
	r = ms_hash_pages(rd, resident, k, rh, rok);
	if (r < 0)
		return r == -ESRCH ? r
				   : ms_fail(why, r, "cannot read the memory of process %d: %s",
					     (int)rd->pid, g_strerror(-r));
	for (size_t j = 0; j < k; j++) {
		hashes[where[j]] = rh[j];
		readable[where[j]] = rok[j];
	}
	if (read)
		*read += k;
	return 0;
}
