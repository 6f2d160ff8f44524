/* growth.c: the dirty-set growth curve, from one window, over the pages
 * of one process (here) or of any backend (frames.c: a cgroup's members);
 * growth.h says how and what it costs. */
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
#include "memstat/methods/page_sampling.h"
#include "memstat/methods/pagemap.h"
#include "memstat/methods/pages.h"
#include "memstat/methods/proc.h"

/* ---- the pages of one process ---- */

typedef struct {
	ms_page_reader rd;
	GRand *rand;
	size_t n;
	uint64_t *addrs;  /* sorted */
	uint64_t *hashes; /* at the first look (0: not resident then) */
	bool *present;	  /* resident (and read) at the first look */
} proc_pages;

static void proc_close(void *b)
{
	proc_pages *pp = b;
	g_clear_pointer(&pp->addrs, g_free);
	g_clear_pointer(&pp->hashes, g_free);
	g_clear_pointer(&pp->present, g_free);
	pp->n = 0;
}

static void proc_free(void *b)
{
	proc_pages *pp = b;
	proc_close(pp);
	g_rand_free(pp->rand);
	g_free(pp);
}

/* Looks at the pages of idx (count of them): residency (and read) into
 * present, hashes of the resident ones into hashes. */
static int proc_look_at(proc_pages *pp, const size_t *idx, size_t count, bool *present,
			uint64_t *hashes, uint64_t *read, char **why)
{
	g_autofree uint64_t *addrs = g_new(uint64_t, MAX(count, 1));
	g_autofree bool *readable = g_new(bool, MAX(count, 1));

	for (size_t i = 0; i < count; i++)
		addrs[i] = pp->addrs[idx ? idx[i] : i];
	int r = ms_look_pages(&pp->rd, addrs, count, present, readable, hashes, read, why);
	if (r < 0)
		return r;
	for (size_t i = 0; i < count; i++)
		present[i] = present[i] && readable[i]; /* unmapped meanwhile */
	return 0;
}

static int proc_open(void *b, uint32_t sample_pages, bool exact, ms_growth_drawn *out,
		     char **why)
{
	proc_pages *pp = b;
	g_autoptr(GArray) vmas = NULL;
	g_autoptr(GArray) runs = NULL;
	const uint32_t ps = pp->rd.page_size;
	int r;

	if ((r = ms_proc_writable_vmas(pp->rd.pid, &vmas, why)) < 0)
		return r;
	bool scanned = ms_pagemap_scan_supported();
	if ((r = ms_pagemap_runs(pp->rd.pid, vmas, scanned ? MS_RUNS_SCAN : MS_RUNS_WHOLE, &runs,
				 why)) < 0)
		return r;
	uint64_t population = ms_runs_pages(runs, ps);
	pp->n = ms_growth_sample_count(population, ps, sample_pages, &exact);
	pp->addrs = pp->n ? ms_pick_indices(pp->rand, population, pp->n) : g_new(uint64_t, 1);
	ms_runs_addresses(runs, ps, pp->addrs, pp->n);
	pp->hashes = g_new(uint64_t, MAX(pp->n, 1));
	pp->present = g_new(bool, MAX(pp->n, 1));
	int64_t t0 = ms_now_us(CLOCK_MONOTONIC);
	r = proc_look_at(pp, NULL, pp->n, pp->present, pp->hashes, &out->read, why);
	out->mid_us = (t0 + ms_now_us(CLOCK_MONOTONIC)) / 2;
	out->n = pp->n;
	out->population = population;
	out->page_size = ps;
	return r;
}

static int proc_look(void *b, const size_t *idx, size_t count, bool *changed, uint64_t *read,
		     char **why)
{
	proc_pages *pp = b;
	g_autofree bool *present = g_new(bool, MAX(count, 1));
	g_autofree uint64_t *hashes = g_new(uint64_t, MAX(count, 1));

	int r = proc_look_at(pp, idx, count, present, hashes, read, why);
	if (r < 0)
		return r;
	for (size_t j = 0; j < count; j++) {
		size_t i = idx[j];
		/* Became resident: touched for the first time (or swapped
		 * in); resident and changed: written.  Not resident now: as it
		 * was, as far as we know. */
		changed[j] = pp->present[i] ? present[j] && hashes[j] != pp->hashes[i] : present[j];
	}
	return 0;
}

static const ms_growth_pages proc_pages_ops = {
	.open = proc_open,
	.look = proc_look,
	.close = proc_close,
	.free = proc_free,
};

/* ---- the ladder, over any pages ---- */

struct ms_growth_probe {
	const ms_growth_pages *ops;
	void *b;

	/* The open window; open false when none. */
	bool open, exact;
	size_t n;
	bool *dirty; /* dirty since the window opened */
	size_t ndirty;
	uint64_t population;
	uint32_t steps;	 /* ladder steps */
	int64_t mid0_us; /* middle of the first look */
	ms_growth_curve curve;
};

size_t ms_growth_sample_count(uint64_t population, uint32_t page_size, uint32_t sample_pages,
			      bool *exact)
{
	if (*exact && population > MS_GROWTH_EXACT_MAX_PAGES) {
		*exact = false; /* too dear to look at whole at each step */
		sample_pages = MS_GROWTH_EXACT_ELSE_PER_GIB;
	}
	if (*exact)
		return (size_t)population;
	size_t n = ms_sample_count(population, page_size, sample_pages);
	*exact = n == population;
	return n;
}

ms_growth_probe *ms_growth_probe_new_of(const ms_growth_pages *ops, void *b)
{
	ms_growth_probe *g = g_new0(ms_growth_probe, 1);

	g->ops = ops;
	g->b = b;
	return g;
}

ms_growth_probe *ms_growth_probe_new(pid_t pid)
{
	proc_pages *pp = g_new0(proc_pages, 1);

	pp->rand = g_rand_new();
	ms_page_reader_init(&pp->rd, pid);
	return ms_growth_probe_new_of(&proc_pages_ops, pp);
}

void *ms_growth_probe_backend(ms_growth_probe *g)
{
	return g->b;
}

void ms_growth_close(ms_growth_probe *g)
{
	g->ops->close(g->b);
	g_clear_pointer(&g->dirty, g_free);
	g->open = false;
	g->n = 0;
}

void ms_growth_probe_free(ms_growth_probe *g)
{
	if (!g)
		return;
	ms_growth_close(g);
	g->ops->free(g->b);
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

int ms_growth_open(ms_growth_probe *g, uint32_t sample_pages, bool exact, uint32_t horizon_ms,
		   char **why)
{
	ms_growth_drawn d = {0};

	ms_growth_close(g);
	memset(&g->curve, 0, sizeof(g->curve));
	g->curve.start_ms = ms_now_us(CLOCK_REALTIME) / 1000;
	int64_t t0 = ms_now_us(CLOCK_MONOTONIC);
	int r = g->ops->open(g->b, sample_pages, exact, &d, why);
	g->curve.look_us += (uint64_t)(ms_now_us(CLOCK_MONOTONIC) - t0);
	g->curve.pages_read += d.read;
	if (r < 0) {
		ms_growth_close(g);
		return r;
	}
	g_debug("growth window: %zu of %" PRIu64 " pages, opened in %" PRIu64 " us", d.n,
		d.population, g->curve.look_us);
	g->n = d.n;
	g->population = d.population;
	g->exact = d.n == d.population;
	g->mid0_us = d.mid_us;
	g->steps = 1;
	while (g->steps < MS_GROWTH_MAX_STEPS &&
	       (uint64_t)MS_GROWTH_FIRST_MS << g->steps <= (uint64_t)horizon_ms)
		g->steps++;
	g->dirty = g_new0(bool, MAX(g->n, 1));
	g->ndirty = 0;
	g->curve.page_size = d.page_size;
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
	g_autofree bool *changed = g_new(bool, MAX(count, 1));
	int r = g->ops->look(g->b, idx, count, changed, &g->curve.pages_read, why);
	int64_t t1 = ms_now_us(CLOCK_MONOTONIC);
	g->curve.look_us += (uint64_t)(t1 - now);
	if (r < 0) {
		ms_growth_close(g);
		return r;
	}
	for (size_t j = 0; j < count; j++)
		if (changed[j]) {
			g->dirty[idx[j]] = true;
			g->ndirty++;
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
