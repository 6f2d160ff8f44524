/* pages.c: reading pages of another process and hashing them, in
 * batches.
 *
 * Pages are read with pread of /proc/PID/mem, never with process_vm_readv:
 * a reader must never be held by its target.  Both reach the page through
 * get_user_pages on the target's mm, but process_vm_readv lets the fault
 * wait and retry (FAULT_FLAG_ALLOW_RETRY): a page missing from a mapping
 * that userfaultfd serves makes it wait in handle_userfault for the
 * target's handler, for ever if that never answers, in a sleep only
 * SIGKILL ends.  /proc/PID/mem (access_remote_vm) does not allow the retry,
 * and userfaultfd fails such a fault at once: the read ends with EIO.
 *
 * A page refused so was resident at the look that found it and dropped
 * since (MADV_DONTNEED, a lazy restore's or a pager's eviction): like a
 * page unmapped meanwhile it is not readable, and the window goes on
 * without it (rd->refused counts it).  Whether the handler answers is not
 * the refused read's to say (userfault.c): the target fails only when one
 * of its own threads is seen waiting for the handler in one fault for a
 * window (ms_userfault_unanswered).
 */
#define _GNU_SOURCE
#include "memstat/methods/pages.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "memstat/methods/fail.h"
#include "memstat/methods/measurement.h"
#include "memstat/methods/procfs.h"
#include "memstat/methods/progress.h"
#include "memstat/methods/userfault.h"

int ms_hash_pages(ms_page_reader *rd, const uint64_t *addrs, size_t count, uint64_t *hashes,
		  bool *readable)
{
	g_autoptr(GArray) runs = g_array_sized_new(FALSE, FALSE, sizeof(ms_range), (guint)count);

	/* One run per page, or per pages next to each other in addrs' order:
	 * one read for them. */
	for (size_t i = 0; i < count; i++) {
		ms_range *last = runs->len ? &g_array_index(runs, ms_range, runs->len - 1) : NULL;
		if (last && last->end == addrs[i] &&
		    (last->end - last->start) / rd->page_size < MS_READ_BATCH) {
			last->end += rd->page_size;
			continue;
		}
		ms_range r = {addrs[i], addrs[i] + rd->page_size};
		g_array_append_val(runs, r);
	}
	return ms_hash_runs(rd, runs, hashes, readable);
}

/* ms_hash_pages in addrs' order (any order), pages next to each other read
 * together only within a chunk of chunk pages of addrs (addrs[0..chunk),
 * [chunk..2 chunk), ...): a chunk is one read at most. */
static int ms_hash_pages_chunked(ms_page_reader *rd, const uint64_t *addrs, size_t count,
				 size_t chunk, uint64_t *hashes, bool *readable)
{
	g_autoptr(GArray) runs = g_array_sized_new(FALSE, FALSE, sizeof(ms_range), (guint)count);

	for (size_t i = 0; i < count; i++) {
		ms_range *last = runs->len ? &g_array_index(runs, ms_range, runs->len - 1) : NULL;
		if (i % chunk != 0 && last && last->end == addrs[i]) {
			last->end += rd->page_size;
			continue;
		}
		ms_range r = {addrs[i], addrs[i] + rd->page_size};
		g_array_append_val(runs, r);
	}
	return ms_hash_runs(rd, runs, hashes, readable);
}

void ms_page_reader_init(ms_page_reader *rd, pid_t pid)
{
	rd->pid = pid;
	rd->page_size = (uint32_t)sysconf(_SC_PAGESIZE);
	rd->stalled_at = 0;
	rd->refused = 0;
	rd->times = NULL;
	rd->order_chunk = 0;
	rd->resident = NULL;
}

/* Why the last -EIO of ms_hash_runs on this thread: what was seen of the
 * handler (ms_page_read_strerror hands it out, as dlerror does). */
static GPrivate unanswered = G_PRIVATE_INIT(g_free);

const char *ms_page_read_strerror(int err)
{
	if (err == -EIO) {
		const char *seen = g_private_get(&unanswered);
		return seen ? seen
			    : "a page of it is missing from a mapping that userfaultfd serves, "
			      "and its handler does not answer";
	}
	return g_strerror(-err);
}

/* The buffer pages are read into: one per thread, not one per target (a
 * thousand targets would hold a GiB), freed when the thread ends.  Page
 * aligned: the kernel's copy into it and the hashing of it cost 5-10% more
 * at the 16 bytes off a page that malloc's header leaves (BENCHMARKS.md 3). */
static GPrivate read_buffer = G_PRIVATE_INIT(free);

static uint8_t *thread_read_buffer(size_t page_size)
{
	void *buf = g_private_get(&read_buffer);

	if (!buf) {
		if (posix_memalign(&buf, page_size, page_size * MS_READ_BATCH) != 0)
			g_error("out of memory for a page-read buffer");
		g_private_set(&read_buffer, buf);
	}
	return buf;
}

/* How many of the pages at addrs, which reads of /proc/PID/mem refused
 * with EIO though they were resident a moment before, lie in a mapping
 * userfaultfd serves, and the first of them in *first.  The others were
 * unmapped or made unreadable meanwhile.  smaps says which (at the cost of a
 * walk of the process's page tables: only on this path). */
static size_t served_by_userfaultfd(pid_t pid, const GArray *addrs, uint64_t *first)
{
	char path[64];
	g_autofree char *text = NULL;
	g_autoptr(GArray) uffd = NULL;
	size_t n = 0;

	snprintf(path, sizeof(path), "/proc/%d/smaps", (int)pid);
	if (addrs->len == 0 || ms_read_file(path, &text, NULL) < 0 ||
	    !(uffd = ms_parse_smaps_uffd_ranges(text)))
		return 0;
	for (guint i = 0; i < addrs->len; i++) {
		uint64_t a = g_array_index(addrs, uint64_t, i);
		for (guint j = 0; j < uffd->len; j++) {
			const ms_vma *m = &g_array_index(uffd, ms_vma, j);
			if (m->start <= a && a < m->end) {
				if (n++ == 0)
					*first = a;
				break;
			}
		}
	}
	return n;
}

int ms_hash_runs(ms_page_reader *rd, const GArray *runs, uint64_t *hashes, bool *readable)
{
	return ms_hash_runs_at(rd, runs, NULL, hashes, readable);
}

int ms_hash_runs_at(ms_page_reader *rd, const GArray *runs, const uint64_t *first, uint64_t *hashes,
		    bool *readable)
{
	const size_t ps = rd->page_size;
	uint8_t *buf = thread_read_buffer(ps);
	char path[64];
	size_t k = 0; /* index of the next page */
	g_autoptr(GArray) refused = g_array_new(FALSE, FALSE, sizeof(uint64_t)); /* EIO */

	rd->stalled_at = 0;
	g_private_replace(&unanswered, NULL); /* never another call's reason */
	if (runs->len == 0)
		return 0;
	/* Opened for each pass: what it reads is the mm of the process at the
	 * open, and a pass takes a period at most. */
	snprintf(path, sizeof(path), "/proc/%d/mem", (int)rd->pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT || errno == ESRCH ? -ESRCH : -errno;
	for (guint i = 0; i < runs->len; i++) {
		const ms_range *x = &g_array_index(runs, ms_range, i);
		uint64_t at = x->start;
		if (first)
			k = first[i];
		while (at < x->end) {
			size_t want = (size_t)MIN((x->end - at) / ps, (uint64_t)MS_READ_BATCH);
			ssize_t r = pread(fd, buf, want * ps, (off_t)at);
			ms_read_returned();
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0 && errno != EIO) {
				int e = errno;
				close(fd);
				return -e;
			}
			if (r == 0) {
				/* Nothing at all: the mm this fd reads is gone,
				 * by exit (a zombie too) or exec.  The pass is
				 * over either way: ESRCH, which ends the target
				 * when the process is gone and drops the window
				 * when it lives on (method.h). */
				close(fd);
				return -ESRCH;
			}
			size_t full = r > 0 ? (size_t)r / ps : 0;
			if (rd->times) {
				int64_t now = ms_now_us(CLOCK_MONOTONIC);
				for (size_t j = 0; j < MAX(full, 1); j++)
					rd->times[k + j] = now;
			}
			for (size_t j = 0; j < full; j++) {
				hashes[k + j] = XXH3_64bits(buf + j * ps, ps);
				readable[k + j] = true;
			}
			k += full;
			at += full * ps;
			if (full == 0) {
				/* The page that stopped the read (the next read
				 * starts there after a short one): unmapped
				 * since the runs were found, or one the kernel
				 * would have to wait for (EIO).  Skip it. */
				if (r < 0)
					g_array_append_val(refused, at);
				hashes[k] = 0;
				readable[k] = false;
				k++;
				at += ps;
			}
		}
	}
	close(fd);
	uint64_t first_refused = 0;
	size_t n = served_by_userfaultfd(rd->pid, refused, &first_refused);
	if (n == 0)
		return 0;
	rd->refused += n;
	/* Refused by userfaultfd: fail only when the handler is seen not to
	 * answer the process's own faults (userfault.c). */
	g_autofree char *seen = NULL;
	int r = ms_userfault_unanswered(rd->pid, &seen);
	if (r == -ESRCH)
		return -ESRCH;
	if (r <= 0)
		return 0; /* none of its threads waits: measured as usual */
	rd->stalled_at = first_refused;
	g_private_replace(&unanswered,
			  g_strdup_printf("a page of it is missing from a mapping that userfaultfd "
					  "serves, and its handler does not answer: %s",
					  seen));
	return -EIO;
}

/* The pagemap entries of addrs (ascending) into entries: those in
 * rd->resident as present (MS_PM_PRESENT alone), the others read from the
 * pagemap, which is not opened when there are none.  0, or -errno with
 * *why. */
static int look_entries(ms_page_reader *rd, const uint64_t *addrs, size_t count, uint64_t *entries,
			char **why)
{
	g_autofree uint64_t *rest = NULL;
	g_autofree size_t *at = NULL;
	size_t n = 0;

	if (rd->resident) {
		const GArray *runs = rd->resident;
		rest = g_new(uint64_t, count);
		at = g_new(size_t, count);
		guint j = 0;
		for (size_t i = 0; i < count; i++) {
			while (j < runs->len && g_array_index(runs, ms_range, j).end <= addrs[i])
				j++;
			if (j < runs->len && g_array_index(runs, ms_range, j).start <= addrs[i]) {
				entries[i] = MS_PM_PRESENT;
			} else {
				rest[n] = addrs[i];
				at[n++] = i;
			}
		}
		if (n == 0)
			return 0;
	}
	int fd = ms_open_pagemap(rd->pid, why);
	if (fd < 0)
		return fd;
	g_autofree uint64_t *got = rest ? g_new(uint64_t, n) : NULL;
	int r = rest ? ms_pagemap_lookup(fd, rest, n, rd->page_size, got)
		     : ms_pagemap_lookup(fd, addrs, count, rd->page_size, entries);
	close(fd);
	if (r < 0)
		return ms_fail(why, r, "cannot read the pagemap of process %d: %s", (int)rd->pid,
			       g_strerror(-r));
	for (size_t k = 0; rest && k < n; k++)
		entries[at[k]] = got[k];
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
	int64_t *times = rd->times;
	g_autofree int64_t *rt = times ? g_new(int64_t, MAX(count, 1)) : NULL;
	size_t k = 0;

	if (count == 0)
		return 0;
	int r = look_entries(rd, addrs, count, entries, why);
	if (r < 0)
		return r;
	if (times) {
		int64_t now = ms_now_us(CLOCK_MONOTONIC);
		for (size_t i = 0; i < count; i++)
			times[i] = now;
	}
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
	const size_t chunk = rd->order_chunk;
	if (chunk) {
		/* The chunks of chunk pages (in address order) in a random
		 * order (Fisher-Yates), each page carrying its index. */
		size_t nchunks = (k + chunk - 1) / chunk;
		g_autofree size_t *perm = g_new(size_t, MAX(nchunks, 1));
		g_autofree uint64_t *ra = g_new(uint64_t, MAX(k, 1));
		g_autofree size_t *rw = g_new(size_t, MAX(k, 1));
		for (size_t c = 0; c < nchunks; c++)
			perm[c] = c;
		for (size_t j = nchunks; j > 1; j--) {
			size_t x = (size_t)g_random_int_range(0, (gint32)j);
			size_t c = perm[j - 1];
			perm[j - 1] = perm[x], perm[x] = c;
		}
		size_t at = 0;
		for (size_t c = 0; c < nchunks; c++)
			for (size_t i = perm[c] * chunk; i < MIN(k, (perm[c] + 1) * chunk); i++)
				ra[at] = resident[i], rw[at++] = where[i];
		memcpy(resident, ra, k * sizeof(*ra));
		memcpy(where, rw, k * sizeof(*rw));
	}
	rd->times = rt; /* by the index among the pages read */
	r = chunk ? ms_hash_pages_chunked(rd, resident, k, chunk, rh, rok)
		  : ms_hash_pages(rd, resident, k, rh, rok);
	rd->times = times;
	if (r < 0)
		return r == -ESRCH ? r
				   : ms_fail(why, r, "cannot read the memory of process %d: %s",
					     (int)rd->pid, ms_page_read_strerror(r));
	for (size_t j = 0; j < k; j++) {
		hashes[where[j]] = rh[j];
		readable[where[j]] = rok[j];
		if (times)
			times[where[j]] = rt[j];
	}
	if (read)
		*read += k;
	return 0;
}
