/* full_scan.c: the exact dirty count of a process, by content.
 *
 * At the start of a window every resident page of the writable mappings is
 * hashed; at the end the pages still resident are hashed again.  Dirty pages
 * are those whose content changed plus those that became resident.  Resident
 * pages are found with PAGEMAP_SCAN (Linux 6.7+) or, where it is missing,
 * by reading pagemap entries; a page that is not resident is never read.
 * A page rewritten with identical bytes reads as clean: this counts content
 * changes, not writes.
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

	/* The open window. */
	bool open;
	GArray *resident; /* ms_range */
	uint64_t pages;	  /* in resident */
	uint64_t *hashes; /* one per page of resident, in order */
	bool *readable;
	uint64_t pages_total;
	int64_t start_wall_ms;
	int64_t start_mid_us; /* middle of the first hashing pass */
} fs_state;

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
	ms_page_reader_init(&s->rd, id->pid);
	return s;
}

static void fs_free_window(void *state)
{
	fs_state *s = state;
	g_clear_pointer(&s->resident, g_array_unref);
	g_clear_pointer(&s->hashes, g_free);
	g_clear_pointer(&s->readable, g_free);
	s->open = false;
}

static void fs_close(void *state)
{
	fs_state *s = state;
	if (!s)
		return;
	fs_free_window(s);
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

static int fs_open_window(fs_state *s, char **why)
{
	s->start_wall_ms = ms_now_us(CLOCK_REALTIME) / 1000;
	int r = fs_resident(s, &s->resident, &s->pages_total, why);
	if (r < 0)
		return r;
	s->pages = ms_runs_pages(s->resident, s->rd.page_size);
	s->hashes = g_new(uint64_t, MAX(s->pages, 1));
	s->readable = g_new(bool, MAX(s->pages, 1));
	s->open = true;
	int64_t t0 = ms_now_us(CLOCK_MONOTONIC);
	r = ms_hash_runs(&s->rd, s->resident, s->hashes, s->readable);
	s->start_mid_us = (t0 + ms_now_us(CLOCK_MONOTONIC)) / 2;
	if (r < 0 && r != -ESRCH)
		return ms_fail(why, r, "cannot read the memory of process %d: %s", (int)s->pid,
			       ms_page_read_strerror(r));
	return r;
}

/* Runs in both a and b, each with the index, in a's page order, of its
 * first page (GArray of ms_range, GArray of uint64_t). */
static void intersect(const GArray *a, const GArray *b, uint32_t ps, GArray *both, GArray *index)
{
	guint i = 0, j = 0;
	uint64_t before = 0; /* pages of a before run i */

	while (i < a->len && j < b->len) {
		const ms_range *x = &g_array_index(a, ms_range, i);
		const ms_range *y = &g_array_index(b, ms_range, j);
		uint64_t lo = MAX(x->start, y->start), hi = MIN(x->end, y->end);
		if (lo < hi) {
			ms_range r = {lo, hi};
			uint64_t first = before + (lo - x->start) / ps;
			g_array_append_val(both, r);
			g_array_append_val(index, first);
		}
		if (x->end <= y->end) {
			before += (x->end - x->start) / ps;
			i++;
		} else {
			j++;
		}
	}
}

static int fs_close_window(void *state, ms_measurement *out, char **why)
{
	fs_state *s = state;
	const uint32_t ps = s->rd.page_size;
	g_autoptr(GArray) now = NULL;
	g_autoptr(GArray) both = g_array_new(FALSE, FALSE, sizeof(ms_range));
	g_autoptr(GArray) index = g_array_new(FALSE, FALSE, sizeof(uint64_t));
	uint64_t total_now;
	int r = fs_resident(s, &now, &total_now, why);

	if (r < 0)
		return r;
	intersect(s->resident, now, ps, both, index);
	uint64_t kept = ms_runs_pages(both, ps);
	g_autofree uint64_t *hashes = g_new(uint64_t, MAX(kept, 1));
	g_autofree bool *readable = g_new(bool, MAX(kept, 1));
	int64_t t0 = ms_now_us(CLOCK_MONOTONIC);
	r = ms_hash_runs(&s->rd, both, hashes, readable);
	int64_t mid = (t0 + ms_now_us(CLOCK_MONOTONIC)) / 2;
	if (r < 0)
		return r == -ESRCH ? r
				   : ms_fail(why, r, "cannot read the memory of process %d: %s",
					     (int)s->pid, ms_page_read_strerror(r));

	/* Each page's window runs from its first hashing to its second; on
	 * average that is from the middle of one pass to the middle of the
	 * other, which the passes' own lengths do not bias. */
	ms_measurement_begin(out, ms_full_scan.mode,
			     s->how == MS_RUNS_SCAN ? "pagemap_scan+proc_mem"
						    : "pagemap+proc_mem",
			     s->start_wall_ms, s->start_mid_us, mid, ps);
	out->pages_total = s->pages_total;
	out->pages_population = s->pages;
	out->pages_sampled = s->pages;
	/* Pages resident at both ends: dirty when the content changed. */
	uint64_t k = 0;
	for (guint i = 0; i < both->len; i++) {
		const ms_range *run = &g_array_index(both, ms_range, i);
		uint64_t first = g_array_index(index, uint64_t, i);
		uint64_t pages = (run->end - run->start) / ps;
		for (uint64_t p = 0; p < pages; p++, k++) {
			uint64_t at = first + p;
			if (!s->readable[at] || !readable[k])
				out->pages_unmapped++;
			else if (hashes[k] != s->hashes[at])
				out->pages_dirty++;
		}
	}
	/* Resident at the start but not now: swapped out or unmapped. */
	out->pages_unmapped += s->pages - kept;
	/* Resident now but not at the start: new memory, written. */
	out->pages_new = ms_ranges_pages_not_in(now, s->resident, ps);
	ms_measurement_finish(out);
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
