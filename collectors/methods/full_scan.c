/* full_scan.c: the exact dirty count of a process, by content.
 *
 * At the start of a window every resident page of the writable mappings is
 * hashed; at the end the pages still resident are hashed again.  Dirty pages
 * are those whose content changed plus those that became resident.  Resident
 * pages are found with PAGEMAP_SCAN (Linux 6.7+) or, where it is missing,
 * by reading pagemap entries; a page that is not resident is never read.
 * A page rewritten with identical bytes reads as clean: this counts content
 * changes, not writes.
 *
 * The look that closes a window opens the next: one pass over the memory a
 * period, and the windows follow each other without a gap.  A pass reads
 * its pages in chunks of MS_SCAN_CHUNK in a random order, never in address
 * order: a writer that walks its memory in address order (a ring buffer, a
 * streaming copy, a log) would otherwise move with the scan or against it,
 * and its pages would be looked at later or earlier than the window says,
 * for a count too high or too low by up to the length of a pass.  Each read is timed: a
 * page's window runs from its read in the first pass to its read in the
 * second, the rate divides by the mean of those windows, and the sample's
 * window_min_ms/window_max_ms say how far they spread (measurement.h).
 */
#define _GNU_SOURCE
#include "memstat/methods/full_scan.h"

#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "memstat/methods/fail.h"
#include "memstat/methods/pagemap.h"
#include "memstat/methods/pages.h"

typedef struct {
	pid_t pid;
	const ms_proc_id *id;
	ms_page_reader rd;
	ms_runs_how how;
	GRand *rand;
	int64_t last_end_us; /* the last window's end (mean of its second reads) */

	/* The open window. */
	bool open;
	GArray *resident; /* ms_range */
	uint64_t pages;	  /* in resident */
	uint64_t *hashes; /* one per page of resident, in order */
	bool *readable;
	int64_t *times; /* when each page of resident was read */
	uint64_t pages_total;
	int64_t start_wall_ms;
	int64_t start_mid_us; /* middle of the first hashing pass */
	uint64_t refused;     /* pages of the first pass userfaultfd refused */

	/* The last close's look, which the next open takes over when it comes
	 * straight after (NULL otherwise). */
	GArray *next_resident;
	uint64_t *next_hashes;
	bool *next_readable;
	int64_t *next_times;
	uint64_t next_total;
	int64_t next_wall_ms, next_mid_us;
	int64_t next_us; /* when it ended (CLOCK_MONOTONIC) */
	uint64_t next_refused;
} fs_state;

static void fs_drop_next(fs_state *s)
{
	g_clear_pointer(&s->next_resident, g_array_unref);
	g_clear_pointer(&s->next_hashes, g_free);
	g_clear_pointer(&s->next_readable, g_free);
	g_clear_pointer(&s->next_times, g_free);
}

static void *fs_open(const ms_proc_id *id, int *err, char **why)
{
	int r = ms_check_memory_access(id->pid, why);
	if (r < 0) {
		*err = r;
		return NULL;
	}
	fs_state *s = g_new0(fs_state, 1);
	s->pid = id->pid;
	s->id = id;
	s->how = ms_pagemap_scan_supported() ? MS_RUNS_SCAN : MS_RUNS_PAGEMAP;
	s->rand = g_rand_new();
	ms_page_reader_init(&s->rd, id->pid);
	return s;
}

static void fs_free_window(void *state)
{
	fs_state *s = state;
	g_clear_pointer(&s->resident, g_array_unref);
	g_clear_pointer(&s->hashes, g_free);
	g_clear_pointer(&s->readable, g_free);
	g_clear_pointer(&s->times, g_free);
	s->open = false;
}

static void fs_close(void *state)
{
	fs_state *s = state;
	if (!s)
		return;
	fs_free_window(s);
	fs_drop_next(s);
	g_rand_free(s->rand);
	g_free(s);
}

/* The resident runs of the writable mappings now, and their page count. */
static int fs_resident(fs_state *s, GArray **runs, uint64_t *pages_total, char **why)
{
	g_autoptr(GArray) vmas = NULL;
	int r = ms_proc_writable_vmas(s->pid, &vmas, why);

	if (r < 0)
		return r;
	*pages_total = 0;
	for (guint i = 0; i < vmas->len; i++) {
		const ms_vma *v = &g_array_index(vmas, ms_vma, i);
		*pages_total += (v->end - v->start) / s->rd.page_size;
	}
	return ms_pagemap_runs(s->pid, vmas, s->how, runs, why);
}

/* Hashes every page of runs, as ms_hash_runs, into hashes, readable and
 * times at each page's index in runs' order, reading chunks of
 * MS_SCAN_CHUNK pages in a random order. */
static int fs_hash_pass(fs_state *s, const GArray *runs, uint64_t *hashes, bool *readable,
			int64_t *times)
{
	const uint32_t ps = s->rd.page_size;
	g_autoptr(GArray) order = g_array_new(FALSE, FALSE, sizeof(ms_range));
	g_autoptr(GArray) first = g_array_new(FALSE, FALSE, sizeof(uint64_t));
	uint64_t pages = 0;

	/* The chunks, each with the index of its first page in runs' order. */
	for (guint i = 0; i < runs->len; i++) {
		const ms_range *x = &g_array_index(runs, ms_range, i);
		for (uint64_t at = x->start; at < x->end;) {
			ms_range c = {at, MIN(x->end, at + (uint64_t)MS_SCAN_CHUNK * ps)};
			g_array_append_val(order, c);
			g_array_append_val(first, pages);
			pages += (c.end - c.start) / ps;
			at = c.end;
		}
	}
	/* Fisher-Yates, on both arrays alike. */
	for (guint i = order->len; i > 1; i--) {
		guint j = (guint)g_rand_int_range(s->rand, 0, (gint32)i);
		ms_range t = g_array_index(order, ms_range, i - 1);
		g_array_index(order, ms_range, i - 1) = g_array_index(order, ms_range, j);
		g_array_index(order, ms_range, j) = t;
		uint64_t f = g_array_index(first, uint64_t, i - 1);
		g_array_index(first, uint64_t, i - 1) = g_array_index(first, uint64_t, j);
		g_array_index(first, uint64_t, j) = f;
	}
	s->rd.times = times;
	s->rd.refused = 0;
	int err = ms_hash_runs_at(&s->rd, order, (const uint64_t *)(void *)first->data, hashes,
				  readable);
	s->rd.times = NULL;
	return err;
}

/* A fresh first look: the resident pages now, hashed. */
static int fs_open_window(fs_state *s, char **why)
{
	/* The close of the last window looked at every resident page a
	 * moment ago: that look opens this one (one pass a period, not two,
	 * and no time between windows left unmeasured). */
	if (s->next_resident && ms_now_us(CLOCK_MONOTONIC) - s->next_us <= 50000) {
		s->resident = g_steal_pointer(&s->next_resident);
		s->hashes = g_steal_pointer(&s->next_hashes);
		s->readable = g_steal_pointer(&s->next_readable);
		s->times = g_steal_pointer(&s->next_times);
		s->pages = ms_runs_pages(s->resident, s->rd.page_size);
		s->pages_total = s->next_total;
		s->start_wall_ms = s->next_wall_ms;
		s->start_mid_us = s->next_mid_us;
		s->refused = s->next_refused;
		s->open = true;
		return 0;
	}
	fs_drop_next(s);
	s->start_wall_ms = ms_now_us(CLOCK_REALTIME) / 1000;
	int r = fs_resident(s, &s->resident, &s->pages_total, why);
	if (r < 0)
		return r;
	s->pages = ms_runs_pages(s->resident, s->rd.page_size);
	s->hashes = g_new(uint64_t, MAX(s->pages, 1));
	s->readable = g_new(bool, MAX(s->pages, 1));
	s->times = g_new(int64_t, MAX(s->pages, 1));
	s->open = true;
	int64_t t0 = ms_now_us(CLOCK_MONOTONIC);
	r = fs_hash_pass(s, s->resident, s->hashes, s->readable, s->times);
	s->start_mid_us = (t0 + ms_now_us(CLOCK_MONOTONIC)) / 2;
	s->refused = s->rd.refused;
	if (r < 0 && r != -ESRCH)
		return ms_fail(why, r, "cannot read the memory of process %d: %s", (int)s->pid,
			       ms_page_read_strerror(r));
	return r;
}

/* Runs in both a and b, each with the index of its first page in a's page
 * order and in b's (GArray of ms_range, two GArrays of uint64_t). */
static void intersect(const GArray *a, const GArray *b, uint32_t ps, GArray *both, GArray *index_a,
		      GArray *index_b)
{
	guint i = 0, j = 0;
	uint64_t before_a = 0, before_b = 0; /* pages of a before run i, of b before run j */

	while (i < a->len && j < b->len) {
		const ms_range *x = &g_array_index(a, ms_range, i);
		const ms_range *y = &g_array_index(b, ms_range, j);
		uint64_t lo = MAX(x->start, y->start), hi = MIN(x->end, y->end);
		if (lo < hi) {
			ms_range r = {lo, hi};
			uint64_t first_a = before_a + (lo - x->start) / ps;
			uint64_t first_b = before_b + (lo - y->start) / ps;
			g_array_append_val(both, r);
			g_array_append_val(index_a, first_a);
			g_array_append_val(index_b, first_b);
		}
		if (x->end <= y->end) {
			before_a += (x->end - x->start) / ps;
			i++;
		} else {
			before_b += (y->end - y->start) / ps;
			j++;
		}
	}
}

/* The second look: every page resident now, hashed (and kept as the next
 * window's first look); the pages resident at both looks compared. */
static int fs_close_window(void *state, ms_measurement *out, char **why)
{
	fs_state *s = state;
	const uint32_t ps = s->rd.page_size;
	g_autoptr(GArray) now = NULL;
	g_autoptr(GArray) both = g_array_new(FALSE, FALSE, sizeof(ms_range));
	g_autoptr(GArray) index_a = g_array_new(FALSE, FALSE, sizeof(uint64_t));
	g_autoptr(GArray) index_b = g_array_new(FALSE, FALSE, sizeof(uint64_t));
	uint64_t total_now;
	int64_t wall_ms = ms_now_us(CLOCK_REALTIME) / 1000;
	int r = fs_resident(s, &now, &total_now, why);

	if (r < 0)
		return r;
	uint64_t pages_now = ms_runs_pages(now, ps);
	g_autofree uint64_t *hashes = g_new(uint64_t, MAX(pages_now, 1));
	g_autofree bool *readable = g_new(bool, MAX(pages_now, 1));
	g_autofree int64_t *times = g_new(int64_t, MAX(pages_now, 1));
	int64_t t0 = ms_now_us(CLOCK_MONOTONIC);
	r = fs_hash_pass(s, now, hashes, readable, times);
	int64_t mid = (t0 + ms_now_us(CLOCK_MONOTONIC)) / 2;
	if (r < 0)
		return r == -ESRCH ? r
				   : ms_fail(why, r, "cannot read the memory of process %d: %s",
					     (int)s->pid, ms_page_read_strerror(r));
	intersect(s->resident, now, ps, both, index_a, index_b);
	uint64_t kept = ms_runs_pages(both, ps);
	g_autofree int64_t *before = g_new(int64_t, MAX(kept, 1));
	g_autofree int64_t *after = g_new(int64_t, MAX(kept, 1));

	/* Each page's window runs from its read in the first look to its read
	 * in the second (ms_measurement_windows, below). */
	ms_measurement_begin(out, ms_full_scan.mode,
			     s->how == MS_RUNS_SCAN ? "pagemap_scan+proc_mem" : "pagemap+proc_mem",
			     s->start_wall_ms, s->start_mid_us, mid, ps);
	out->pages_total = s->pages_total;
	out->pages_population = s->pages;
	out->pages_sampled = s->pages;
	out->pages_refused = s->refused + s->rd.refused;
	/* Pages resident at both ends: dirty when the content changed. */
	uint64_t timed = 0;
	for (guint i = 0; i < both->len; i++) {
		const ms_range *run = &g_array_index(both, ms_range, i);
		uint64_t first_a = g_array_index(index_a, uint64_t, i);
		uint64_t first_b = g_array_index(index_b, uint64_t, i);
		uint64_t pages = (run->end - run->start) / ps;
		for (uint64_t p = 0; p < pages; p++) {
			uint64_t at = first_a + p, k = first_b + p;
			if (!s->readable[at] || !readable[k]) {
				out->pages_unmapped++;
				continue;
			}
			before[timed] = s->times[at];
			after[timed++] = times[k];
			if (hashes[k] != s->hashes[at])
				out->pages_dirty++;
		}
	}
	int64_t end = ms_measurement_windows(out, before, after, timed, mid);
	ms_measurement_coverage(out, s->last_end_us, end);
	s->last_end_us = end;
	/* Resident at the start but not now: swapped out or unmapped. */
	out->pages_unmapped += s->pages - kept;
	/* Resident now but not at the start: new memory, written. */
	out->pages_new = ms_ranges_pages_not_in(now, s->resident, ps);
	out->order_chunk = MS_SCAN_CHUNK;
	ms_measurement_finish(out);

	/* This look opens the next window (fs_open_window). */
	fs_drop_next(s);
	s->next_resident = g_steal_pointer(&now);
	s->next_hashes = g_steal_pointer(&hashes);
	s->next_readable = g_steal_pointer(&readable);
	s->next_times = g_steal_pointer(&times);
	s->next_total = total_now;
	s->next_wall_ms = wall_ms;
	s->next_mid_us = mid;
	s->next_refused = s->rd.refused;
	s->next_us = ms_now_us(CLOCK_MONOTONIC);
	return 1;
}

static bool fs_is_open(void *state)
{
	return ((fs_state *)state)->open;
}

static int fs_open_window_cb(void *state, const ms_params *p, char **why)
{
	(void)p;
	return fs_open_window(state, why);
}

const ms_method ms_full_scan = {
	.mode = "full-scan",
	.open = fs_open,
	.is_open = fs_is_open,
	.close_window = fs_close_window,
	.open_window = fs_open_window_cb,
	.free_window = fs_free_window,
	.close = fs_close,
};
