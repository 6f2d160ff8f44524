/* growth.c: the dirty-set growth curve of a process, from one window
 * (growth.h says how and what it costs). */
#define _GNU_SOURCE
#include "memstat/methods/growth.h"

#include <errno.h>
#include <inttypes.h>
#include <glib.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

#include "memstat/methods/fail.h"
#include "memstat/methods/measurement.h"
#include "memstat/methods/pagemap.h"
#include "memstat/methods/pages.h"
#include "memstat/methods/proc.h"

#define MIN_SAMPLES 256u       /* as page-sampling's */
#define MAX_SAMPLES (1u << 20) /* as page-sampling's */

struct ms_growth_probe {
	pid_t pid;
	ms_page_reader rd;
	GRand *rand;

	/* The open window; open false when none. */
	bool open, exact;
	size_t n;
	uint64_t *addrs;  /* sorted */
	uint64_t *hashes; /* at the first look (0: not resident then) */
	bool *present;	  /* resident at the first look */
	bool *dirty;	  /* dirty since the window opened */
	size_t ndirty;
	uint64_t population;
	uint32_t steps;	 /* ladder steps */
	int64_t mid0_us; /* middle of the first look */
	ms_growth_curve curve;
};

ms_growth_probe *ms_growth_probe_new(pid_t pid)
{
	ms_growth_probe *g = g_new0(ms_growth_probe, 1);

	g->pid = pid;
	g->rand = g_rand_new();
	ms_page_reader_init(&g->rd, pid);
	return g;
}

void ms_growth_close(ms_growth_probe *g)
{
	g_clear_pointer(&g->addrs, g_free);
	g_clear_pointer(&g->hashes, g_free);
	g_clear_pointer(&g->present, g_free);
	g_clear_pointer(&g->dirty, g_free);
	g->open = false;
	g->n = 0;
}

void ms_growth_probe_free(ms_growth_probe *g)
{
	if (!g)
		return;
	ms_growth_close(g);
	g_rand_free(g->rand);
	g_free(g);
}

bool ms_growth_is_open(const ms_growth_probe *g)
{
	return g->open;
}

/* When look k (1-based) is due. */
static int64_t due_of(const ms_growth_probe *g, uint32_t k)
{
	return g->mid0_us + (int64_t)MS_GROWTH_FIRST_MS * 1000 * ((int64_t)1 << (k - 1));
}

int64_t ms_growth_due_us(const ms_growth_probe *g)
{
	return due_of(g, g->curve.n + 1);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* n distinct indices in [0, total), sorted. */
static uint64_t *pick(GRand *r, uint64_t total, size_t n)
{
	uint64_t *idx = g_new(uint64_t, MAX(n, 1));
	size_t have = 0;

	if ((uint64_t)n == total) {
		for (size_t i = 0; i < n; i++)
			idx[i] = i;
		return idx;
	}
	while (have < n) {
		for (size_t i = have; i < n; i++)
			idx[i] = (((uint64_t)g_rand_int(r) << 32) | g_rand_int(r)) % total;
		qsort(idx, n, sizeof(*idx), cmp_u64);
		size_t u = 0;
		for (size_t i = 0; i < n; i++)
			if (u == 0 || idx[i] != idx[u - 1])
				idx[u++] = idx[i];
		have = u;
	}
	return idx;
}

/* Looks at the pages of idx (count of them): residency into present (may
 * be NULL), hashes of the resident ones into hashes. */
static int look(ms_growth_probe *g, const size_t *idx, size_t count, bool *present,
		uint64_t *hashes, char **why)
{
	g_autofree uint64_t *addrs = g_new(uint64_t, MAX(count, 1));
	g_autofree uint64_t *entries = g_new(uint64_t, MAX(count, 1));
	g_autofree uint64_t *res = g_new(uint64_t, MAX(count, 1));
	g_autofree size_t *where = g_new(size_t, MAX(count, 1));
	g_autofree uint64_t *rh = g_new(uint64_t, MAX(count, 1));
	g_autofree bool *rok = g_new(bool, MAX(count, 1));
	size_t k = 0;

	for (size_t i = 0; i < count; i++)
		addrs[i] = g->addrs[idx[i]];
	int fd = ms_open_pagemap(g->pid, why);
	if (fd < 0)
		return fd;
	int r = ms_pagemap_lookup(fd, addrs, count, g->rd.page_size, entries);
	close(fd);
	if (r < 0)
		return ms_fail(why, r, "cannot read the pagemap of process %d: %s", (int)g->pid,
			       g_strerror(-r));
	for (size_t i = 0; i < count; i++) {
		bool p = (entries[i] & MS_PM_PRESENT) != 0;
		if (present)
			present[i] = p;
		hashes[i] = 0;
		if (p) {
			res[k] = addrs[i];
			where[k++] = i;
		}
	}
	r = ms_hash_pages(&g->rd, res, k, rh, rok);
	if (r < 0)
		return r == -ESRCH ? r
				   : ms_fail(why, r, "cannot read the memory of process %d: %s",
					     (int)g->pid, ms_page_read_strerror(r));
	for (size_t j = 0; j < k; j++) {
		hashes[where[j]] = rh[j];
		if (present && !rok[j])
			present[where[j]] = false; /* unmapped meanwhile */
	}
	g->curve.pages_read += k;
	return 0;
}

int ms_growth_open(ms_growth_probe *g, uint32_t sample_pages, bool exact, uint32_t horizon_ms,
		   char **why)
{
	g_autoptr(GArray) vmas = NULL;
	g_autoptr(GArray) runs = NULL;
	const uint32_t ps = g->rd.page_size;
	int r;

	ms_growth_close(g);
	if ((r = ms_proc_writable_vmas(g->pid, &vmas, why)) < 0)
		return r;
	bool scanned = ms_pagemap_scan_supported();
	if ((r = ms_pagemap_runs(g->pid, vmas, scanned ? MS_RUNS_SCAN : MS_RUNS_WHOLE, &runs,
				 why)) < 0)
		return r;
	memset(&g->curve, 0, sizeof(g->curve));
	g->population = ms_runs_pages(runs, ps);
	if (exact && g->population > MS_GROWTH_EXACT_MAX_PAGES) {
		exact = false; /* too dear to look at whole at each step */
		sample_pages = MS_GROWTH_EXACT_ELSE_PER_GIB;
	}
	if (exact) {
		g->n = (size_t)g->population;
	} else {
		long double want = (long double)g->population * ps * sample_pages / 1073741824.0L;
		uint64_t n = (uint64_t)ceill(want);
		n = MAX(n, MIN_SAMPLES);
		g->n = (size_t)MIN(MIN(n, g->population), MAX_SAMPLES);
	}
	g->exact = g->n == g->population;
	g->addrs = pick(g->rand, MAX(g->population, 1), g->n);
	guint v = 0;
	uint64_t before = 0;
	for (size_t i = 0; i < g->n; i++) {
		for (;;) {
			const ms_range *m = &g_array_index(runs, ms_range, v);
			uint64_t pages = (m->end - m->start) / ps;
			if (g->addrs[i] < before + pages) {
				g->addrs[i] = m->start + (g->addrs[i] - before) * ps;
				break;
			}
			before += pages;
			v++;
		}
	}
	g->steps = 1;
	while (g->steps < MS_GROWTH_MAX_STEPS &&
	       (uint64_t)MS_GROWTH_FIRST_MS << g->steps <= (uint64_t)horizon_ms)
		g->steps++;
	g->hashes = g_new(uint64_t, MAX(g->n, 1));
	g->present = g_new(bool, MAX(g->n, 1));
	g->dirty = g_new0(bool, MAX(g->n, 1));
	g->ndirty = 0;
	g_autofree size_t *all = g_new(size_t, MAX(g->n, 1));
	for (size_t i = 0; i < g->n; i++)
		all[i] = i;
	g->curve.start_ms = ms_now_us(CLOCK_REALTIME) / 1000;
	int64_t t0 = ms_now_us(CLOCK_MONOTONIC);
	r = look(g, all, g->n, g->present, g->hashes, why);
	int64_t t1 = ms_now_us(CLOCK_MONOTONIC);
	g->mid0_us = (t0 + t1) / 2;
	g->curve.look_us += (uint64_t)(t1 - t0);
	g_debug("process %d: growth window: %zu of %" PRIu64 " pages, first look %" PRId64 " us",
		(int)g->pid, g->n, g->population, t1 - t0);
	if (r < 0) {
		ms_growth_close(g);
		return r;
	}
	g->curve.page_size = ps;
	g->curve.pages_population = g->population;
	g->curve.pages_sampled = g->n;
	g->curve.exact = g->exact;
	g->open = true;
	return 0;
}

int ms_growth_step(ms_growth_probe *g, ms_growth_curve *out, char **why)
{
	if (!g->open)
		return ms_fail(why, -EINVAL, "no growth window is open");
	int64_t now = ms_now_us(CLOCK_MONOTONIC);
	if (now < ms_growth_due_us(g))
		return 0;

	/* The pages not dirty yet. */
	size_t count = 0;
	g_autofree size_t *idx = g_new(size_t, MAX(g->n - g->ndirty, 1));
	for (size_t i = 0; i < g->n; i++)
		if (!g->dirty[i])
			idx[count++] = i;
	g_autofree bool *present = g_new(bool, MAX(count, 1));
	g_autofree uint64_t *hashes = g_new(uint64_t, MAX(count, 1));
	int r = look(g, idx, count, present, hashes, why);
	int64_t t1 = ms_now_us(CLOCK_MONOTONIC);
	g->curve.look_us += (uint64_t)(t1 - now);
	if (r < 0) {
		ms_growth_close(g);
		return r;
	}
	for (size_t j = 0; j < count; j++) {
		size_t i = idx[j];
		/* Became resident: touched for the first time (or swapped
		 * in); resident and changed: written.  Not resident now: as it
		 * was, as far as we know. */
		bool d = g->present[i] ? present[j] && hashes[j] != g->hashes[i] : present[j];
		if (d) {
			g->dirty[i] = true;
			g->ndirty++;
		}
	}

	ms_growth_step_point *p = &g->curve.point[g->curve.n];
	double t = (double)((now + t1) / 2 - g->mid0_us) / 1e6;
	double prev = g->curve.n ? g->curve.point[g->curve.n - 1].t_s : 0;
	p->t_s = t > prev ? t : prev + 1e-6;
	if (g->exact || g->n == 0) {
		p->pages = p->ci95_low = p->ci95_high = (double)g->ndirty;
	} else {
		double lo, hi, N = (double)g->population;
		ms_proportion_interval(g->ndirty, g->n, g->population, 1.96, &lo, &hi);
		p->pages = (double)g->ndirty / (double)g->n * N;
		p->ci95_low = MIN(lo * N, p->pages);
		p->ci95_high = MAX(hi * N, p->pages);
	}
	/* Monotone: a page dirty stays dirty, and so do the bounds. */
	if (g->curve.n) {
		const ms_growth_step_point *q = p - 1;
		p->ci95_low = MAX(p->ci95_low, MIN(q->ci95_low, p->pages));
		p->ci95_high = MAX(p->ci95_high, q->ci95_high);
	}
	g->curve.n++;
	if (g->curve.n < g->steps)
		return 0;
	*out = g->curve;
	ms_growth_close(g);
	return 1;
}

int ms_growth_tick(ms_growth_probe *g, uint32_t growth_ms, uint32_t sample_pages, bool exact,
		   ms_growth_curve *out, int64_t *due_us, char **why)
{
	int r = 0;

	*due_us = 0;
	if (growth_ms == 0) {
		ms_growth_close(g);
		return 0;
	}
	if (g->open && (r = ms_growth_step(g, out, why)) < 0)
		return r;
	if (!g->open) {
		int o = ms_growth_open(g, sample_pages, exact, growth_ms, why);
		if (o < 0 && r != 1)
			return o;
		if (o < 0) { /* the finished curve stands; the next call opens anew */
			g_clear_pointer(why, g_free);
			return r;
		}
	}
	*due_us = ms_growth_due_us(g);
	return r;
}
