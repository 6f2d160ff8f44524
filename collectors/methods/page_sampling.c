/* page_sampling.c: QEMU's page-sampling dirty rate, for any process.
 *
 * Each window picks pages at random, without replacement, from all writable
 * mappings together, hashes them, and at the end of the window hashes them
 * again: a page whose hash changed is dirty.  Pages that are not resident
 * are never read, so measuring does not change the target's RSS.
 *
 * Where the kernel has PAGEMAP_SCAN, the pages are drawn from the resident
 * ones only (a process that reserves terabytes and uses megabytes, as
 * sanitizers, JVMs and Go do, is sampled where its memory is), and the
 * pages that became resident elsewhere during the window are counted
 * exactly from a second scan.  Without it, the pages are drawn from all
 * writable memory and a drawn page that became resident counts as dirty.
 *
 * A process that used no CPU time since its pages were looked at cannot have
 * written its private memory: such a window is closed without reading
 * anything (method "idle", 0 pages dirty, exact), and the next one keeps the
 * same pages and hashes, still true.  Its CPU time is the kernel's, to the
 * nanosecond, for all its threads, live and gone (clock_getcpuclockid), and
 * none of its threads may be running or in D at the close (a running
 * thread's time is counted only at ticks and switches; a thread in D may be
 * waiting for a vfork child or a device that writes for it).  Not when it
 * has shared writable memory, which others can write.  What is not seen
 * then: another process writing into the private memory of one that is
 * asleep (process_vm_writev, a debugger, a userfaultfd monitor, a process
 * sharing its memory with CLONE_VM) or a device doing so by itself.
 *
 * Asked a precision (ms_params.precision: the 95% interval's half-width at
 * most a share of the rate or so many MiB/s), a window draws the pages it
 * needs instead of sample_pages per GiB: the Wilson interval with the
 * finite population correction that measurement.c publishes, inverted
 * (ms_precision_pages) at the dirty fraction the last windows measured
 * (their counts pooled, each window weighing 3/4 of the one after it; at
 * the end of that pooled fraction's 95% interval that needs the most
 * pages: the upper end, nearest a half, for an absolute precision, the
 * lower end for a relative one).  The first windows, with nothing learned
 * yet, draw by sample_pages.
 *
 * Carried forward: when the resident pages at a close are those the
 * window was drawn from (the same runs), the close draws the next window
 * too: three quarters of the window's pages, at random, kept, and the
 * rest drawn afresh from the pages not kept, read in the same look as the
 * window's own (one pagemap lookup and one pass of reads a period, not
 * two).  The next window takes the close's hashes and read times as its
 * open's: each page's window starts where it was last read (back to back,
 * timed per page), and a kept page costs one read a period, not two.  A uniform subset of
 * a uniform sample, with a uniform draw from the rest, is a uniform
 * sample: each window's sample is as random as a fresh one; a quarter of
 * the pages, at least, is new in every window, so no page stays longer
 * than a few windows on average (a kept page is kept again with
 * probability 3/4: 4 windows on average).
 */
#define _GNU_SOURCE
#include "memstat/methods/page_sampling.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "memstat/methods/fail.h"
#include "memstat/methods/pagemap.h"
#include "memstat/methods/pages.h"

typedef struct {
	pid_t pid;
	const ms_proc_id *id;
	GRand *rand;
	ms_page_reader rd;

	/* The open window; n == 0 when none is open. */
	GArray *population; /* ms_range: where pages were drawn from */
	bool scanned;	    /* population is the resident pages (PAGEMAP_SCAN) */
	size_t n;
	uint64_t *addrs; /* sorted */
	uint64_t *hashes;
	bool *present; /* resident when the window opened */
	bool *readable;
	/* When each page was looked at (read, or its pagemap entry read for a
	 * page not resident). */
	int64_t *times;
	int64_t last_end_us;	   /* the last window's end (CLOCK_MONOTONIC) */
	uint64_t pages_total;	   /* writable */
	uint64_t pages_population; /* in population */
	int64_t start_wall_ms;
	int64_t start_mid_us; /* middle of the first look */
	bool open;

	/* What the close of the last window found (the writable mappings and,
	 * with PAGEMAP_SCAN, the resident pages), taken over by the next
	 * window's open, which comes right after it: one look at the
	 * mappings and one scan a step, not two.  NULL otherwise. */
	GArray *next_vmas, *next_population;
	int64_t next_us;     /* when they were found (CLOCK_MONOTONIC) */
	int64_t next_cpu_ns; /* the process's CPU time before they were found */

	/* Precision (ms_params.precision): what the last windows found,
	 * pooled, each weighing half the next (0 before the first). */
	double hist_dirty, hist_sampled;
	uint64_t *idx;	    /* the window's pages as indices in population */
	bool census_needed; /* the precision asked needed half the population
			     * or more (ps_plan) */
	ms_precision asked; /* the window's precision */
	uint32_t asked_sample_pages;
	uint32_t asked_period_ms;
	/* The next window, drawn and read by the last close (the head): its
	 * pages' indices in carry_population (sorted), their hashes, read
	 * times, residency; what it was planned for.  next_n 0: none. */
	GArray *carry_population;
	size_t next_n;
	bool next_census;
	ms_precision next_asked;
	uint32_t next_period_ms;
	uint64_t *carry_idx, *carry_hashes;
	int64_t *carry_times;
	bool *carry_present, *carry_readable;

	/* Idle windows. */
	clockid_t cpu_clock; /* the process's CPU-time clock */
	bool has_cpu_clock;
	bool private_only; /* no shared writable mapping when the window opened */
	int64_t cpu_ns;	   /* its CPU time before the window's first look, or -1 */
	bool keep;	   /* the next window keeps this one's pages and hashes */
} ps_state;

/* The process's CPU time (all threads), in ns, or -1. */
static int64_t process_cpu_ns(const ps_state *s)
{
	struct timespec ts;

	if (!s->has_cpu_clock || clock_gettime(s->cpu_clock, &ts) != 0)
		return -1;
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void *ps_open(const ms_proc_id *id, int *err, char **why)
{
	pid_t pid = id->pid;
	int r = ms_check_memory_access(pid, why);
	if (r < 0) {
		*err = r;
		return NULL;
	}
	int fd = ms_open_pagemap(pid, why);
	if (fd < 0) {
		*err = fd;
		return NULL;
	}
	close(fd);

	ps_state *s = g_new0(ps_state, 1);
	s->pid = pid;
	s->id = id;
	s->rand = g_rand_new();
	s->has_cpu_clock = clock_getcpuclockid(pid, &s->cpu_clock) == 0;
	s->cpu_ns = -1;
	ms_page_reader_init(&s->rd, pid);
	/* A look reads its pages in a random order: a page's window then
	 * does not depend on where it is, so a writer walking its memory in
	 * address order does not move with the look (measurement.h). */
	s->rd.order_chunk = 1;
	return s;
}

static void ps_free_window(void *state)
{
	ps_state *s = state;
	if (s->keep) /* an idle window: the next one takes it over */
		return;
	g_clear_pointer(&s->population, g_array_unref);
	g_clear_pointer(&s->addrs, g_free);
	g_clear_pointer(&s->hashes, g_free);
	g_clear_pointer(&s->present, g_free);
	g_clear_pointer(&s->readable, g_free);
	g_clear_pointer(&s->times, g_free);
	g_clear_pointer(&s->idx, g_free);
	s->n = 0;
	s->open = false;
}

static void ps_drop_carry(ps_state *s)
{
	g_clear_pointer(&s->carry_population, g_array_unref);
	g_clear_pointer(&s->carry_idx, g_free);
	g_clear_pointer(&s->carry_hashes, g_free);
	g_clear_pointer(&s->carry_times, g_free);
	g_clear_pointer(&s->carry_present, g_free);
	g_clear_pointer(&s->carry_readable, g_free);
	s->next_n = 0;
}

static void ps_close(void *state)
{
	ps_state *s = state;

	if (!s)
		return;
	s->keep = false;
	ps_free_window(s);
	ps_drop_carry(s);
	g_clear_pointer(&s->next_vmas, g_array_unref);
	g_clear_pointer(&s->next_population, g_array_unref);
	g_rand_free(s->rand);
	g_free(s);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static int cmp_size(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	return x < y ? -1 : x > y;
}

static uint64_t rand_below(GRand *r, uint64_t bound)
{
	uint64_t v = ((uint64_t)g_rand_int(r) << 32) | g_rand_int(r);
	return v % bound; /* bias below 2^-20 for any real address space */
}

/* n distinct page indices in [0, total), sorted: draw, sort, drop
 * duplicates, draw the shortfall again.  n is at most total / 16 for any
 * sizeable process, so a round leaves few duplicates. */
uint64_t *ms_pick_indices(GRand *r, uint64_t total, size_t n)
{
	uint64_t *idx = g_new(uint64_t, n);
	size_t have = 0;

	if ((uint64_t)n == total) {
		for (size_t i = 0; i < n; i++)
			idx[i] = i;
		return idx;
	}
	while (have < n) {
		for (size_t i = have; i < n; i++)
			idx[i] = rand_below(r, total);
		qsort(idx, n, sizeof(*idx), cmp_u64);
		size_t u = 0;
		for (size_t i = 0; i < n; i++)
			if (u == 0 || idx[i] != idx[u - 1])
				idx[u++] = idx[i];
		have = u;
	}
	return idx;
}

/* At most this many pages per window: 4 GiB of resident memory at the
 * highest density.  Only reached without PAGEMAP_SCAN, by processes with
 * huge reservations; their figures get a wider interval. */
#define MS_MAX_SAMPLES (1u << 20)

/* At least this many pages per window (or all of them): QEMU's rule alone
 * gives a 4 MiB process two samples, which says little. */
#define MS_MIN_SAMPLES 256u

size_t ms_sample_count(uint64_t pages_total, uint32_t page_size, uint32_t per_gib)
{
	if (pages_total == 0)
		return 0;
	/* QEMU: bytes * sample_pages >> 30, per RAM block; rounded up here. */
	long double want = (long double)pages_total * page_size * per_gib / (1024.0L * 1024 * 1024);
	uint64_t n = (uint64_t)want;
	if ((long double)n < want)
		n++;
	n = MAX(n, MS_MIN_SAMPLES);
	return (size_t)MIN(MIN(n, pages_total), MS_MAX_SAMPLES);
}

/* At least this many pages per window when a precision decides (or all of
 * them): below it the interval's normal approximation is poor. */
#define MS_PRECISION_MIN_SAMPLES 32u

/* Planning leaves this share of the asked half-width to the timing's part
 * of the interval (looks that take a while), added in quadrature. */
#define MS_PRECISION_PLAN_SHARE 0.9

/* Each window's counts weigh this much less than the next one's in what
 * the windows learned: about four windows' worth. */
#define MS_PRECISION_DECAY 0.75

/* How many pages the next window draws from a population of N: by
 * sample_pages, or, with a precision asked and a window measured, the
 * fewest that meet it at the fraction the last windows found
 * (page_sampling.c's head).  *census: the precision needed half of N or
 * more, and more than sample_pages would have drawn. */
static size_t ps_plan(const ps_state *s, const ms_params *p, uint64_t N, bool *census)
{
	const ms_precision *pr = &p->precision;
	size_t by_rule = ms_sample_count(N, s->rd.page_size, p->sample_pages);

	*census = false;
	if (!pr->asked || s->hist_sampled < 1 || N == 0)
		return by_rule;
	/* The pooled fraction and its interval, windows apart: no finite
	 * population correction. */
	double lo, hi;
	ms_proportion_interval((uint64_t)(s->hist_dirty + 0.5), (uint64_t)(s->hist_sampled + 0.5),
			       UINT64_MAX, 1.959964, &lo, &hi);
	double pop_mib = (double)N * s->rd.page_size / 1048576.0;
	double seconds = MAX(p->period_ms, 1) / 1000.0;
	uint64_t n = N;
	if (pr->abs_mib_s > 0) {
		/* The half-width grows with the fraction up to a half. */
		double pvar = hi < 0.5 ? hi : (lo > 0.5 ? lo : 0.5);
		double h = MS_PRECISION_PLAN_SHARE * pr->abs_mib_s * seconds / pop_mib;
		n = MIN(n, ms_precision_pages(pvar, N, h, MS_PRECISION_MIN_SAMPLES));
	}
	if (pr->rel > 0 && lo > 0) {
		/* The relative half-width grows as the fraction falls. */
		double h = MS_PRECISION_PLAN_SHARE * pr->rel * lo;
		n = MIN(n, ms_precision_pages(lo, N, h, MS_PRECISION_MIN_SAMPLES));
	}
	*census = n >= N / 2 && n > by_rule;
	return (size_t)MIN(n, MS_MAX_SAMPLES);
}

static bool precision_eq(const ms_precision *a, const ms_precision *b)
{
	return a->asked == b->asked && a->rel == b->rel && a->abs_mib_s == b->abs_mib_s;
}

static bool same_runs(const GArray *a, const GArray *b)
{
	return a && b && a->len == b->len &&
	       memcmp(a->data, b->data, (size_t)a->len * sizeof(ms_range)) == 0;
}

/* The pages of the window (n of them) the next one keeps: min(next, 3/4
 * of n) of them at random, their slots (ascending) into *slot. */
static size_t ps_choose_kept(ps_state *s, size_t next, size_t **slot)
{
	size_t n = s->n, k = MIN(next, n - (n + 3) / 4);
	size_t *perm = g_new(size_t, MAX(n, 1));

	for (size_t i = 0; i < n; i++)
		perm[i] = i;
	for (size_t i = 0; i < k; i++) { /* a partial Fisher-Yates shuffle */
		size_t j = i + (size_t)rand_below(s->rand, n - i);
		size_t t = perm[i];
		perm[i] = perm[j];
		perm[j] = t;
	}
	qsort(perm, k, sizeof(*perm), cmp_size);
	*slot = perm;
	return k;
}

/* m more indices of [0, N), none in kept[0..k) (sorted), sorted: drawn from
 * the N - k others, uniformly. */
static uint64_t *ps_pick_others(GRand *r, uint64_t N, const uint64_t *kept, size_t k, size_t m)
{
	uint64_t *f = ms_pick_indices(r, N - k, m);
	size_t j = 0;

	/* The f-th index not in kept: f plus the kept ones at or below it. */
	for (size_t i = 0; i < m; i++) {
		while (j < k && kept[j] <= f[i] + j)
			j++;
		f[i] += j;
	}
	return f;
}

/* Residency and content of the window's pages, into present/hashes/readable,
 * and when each was looked at into times. */
static int ps_look(ps_state *s, bool *present, uint64_t *hashes, bool *readable, int64_t *times,
		   char **why)
{
	s->rd.times = times;
	int r = ms_look_pages(&s->rd, s->addrs, s->n, present, readable, hashes, NULL, why);
	s->rd.times = NULL;
	return r;
}

/* The runs to draw from: the resident pages of the writable mappings where
 * PAGEMAP_SCAN can tell, else the writable mappings whole. */
static int ps_population(ps_state *s, GArray *vmas, GArray **out, char **why)
{
	return ms_pagemap_runs(s->pid, vmas, s->scanned ? MS_RUNS_SCAN : MS_RUNS_WHOLE, out, why);
}

static int ps_open_window(void *state, const ms_params *p, char **why)
{
	ps_state *s = state;
	g_autoptr(GArray) vmas = g_steal_pointer(&s->next_vmas);
	g_autoptr(GArray) found = g_steal_pointer(&s->next_population);
	const uint32_t ps = s->rd.page_size;
	int r;

	s->rd.refused = 0; /* the window's two looks' */
	/* After an idle window, unless the settings changed: the same pages,
	 * whose hashes are still true (the process has not run since). */
	if (s->keep) {
		s->keep = false;
		bool same = p->precision.asked
				    ? precision_eq(&p->precision, &s->asked)
				    : !s->asked.asked && p->sample_pages == s->asked_sample_pages;
		if (same) {
			s->start_wall_ms = ms_now_us(CLOCK_REALTIME) / 1000;
			s->start_mid_us = ms_now_us(CLOCK_MONOTONIC);
			/* Unchanged until now: their windows start now. */
			for (size_t i = 0; i < s->n; i++)
				s->times[i] = s->start_mid_us;
			s->open = true;
			return 0;
		}
		ps_free_window(s);
	}
	/* Only straight after a close (not after a failed step retried later). */
	if (ms_now_us(CLOCK_MONOTONIC) - s->next_us > 50000) {
		g_clear_pointer(&vmas, g_array_unref);
		g_clear_pointer(&found, g_array_unref);
	}
	/* The CPU time before anything this window relies on was seen (the
	 * mappings, the resident pages, the look): if it has not changed at
	 * the close, none of that can have changed either. */
	s->cpu_ns = vmas ? s->next_cpu_ns : process_cpu_ns(s);

	if (!vmas && (r = ms_proc_writable_vmas(s->pid, &vmas, why)) < 0)
		return r;
	s->pages_total = 0;
	s->private_only = true;
	for (guint i = 0; i < vmas->len; i++) {
		const ms_vma *v = &g_array_index(vmas, ms_vma, i);
		s->pages_total += (v->end - v->start) / ps;
		s->private_only &= !v->shared;
	}
	s->scanned = ms_pagemap_scan_supported();
	s->start_wall_ms = ms_now_us(CLOCK_REALTIME) / 1000;
	bool after_close = found && s->scanned;
	if (found && s->scanned)
		s->population = g_steal_pointer(&found);
	else if ((r = ps_population(s, vmas, &s->population, why)) < 0)
		return r;
	s->pages_population = ms_runs_pages(s->population, ps);
	s->asked = p->precision;
	s->asked_sample_pages = p->sample_pages;
	s->asked_period_ms = p->period_ms;
	/* Carried forward (the head): the next window the last close drew
	 * and read, straight after it, with the same resident pages and the
	 * same settings. */
	if (after_close && s->next_n && same_runs(s->carry_population, s->population) &&
	    precision_eq(&p->precision, &s->next_asked) && p->period_ms == s->next_period_ms) {
		s->n = s->next_n;
		s->census_needed = s->next_census;
		s->idx = g_steal_pointer(&s->carry_idx);
		s->hashes = g_steal_pointer(&s->carry_hashes);
		s->times = g_steal_pointer(&s->carry_times);
		s->present = g_steal_pointer(&s->carry_present);
		s->readable = g_steal_pointer(&s->carry_readable);
		ps_drop_carry(s);
		s->addrs = g_memdup2(s->idx, MAX(s->n, 1) * sizeof(uint64_t));
		ms_runs_addresses(s->population, ps, s->addrs, s->n);
		double sum = 0;
		for (size_t i = 0; i < s->n; i++)
			sum += (double)s->times[i];
		/* The window began, on average, when its pages were read. */
		int64_t now = ms_now_us(CLOCK_MONOTONIC);
		s->start_mid_us = s->n ? (int64_t)(sum / (double)s->n) : now;
		s->start_wall_ms = (ms_now_us(CLOCK_REALTIME) - (now - s->start_mid_us)) / 1000;
		s->open = true;
		return 0;
	}
	ps_drop_carry(s);
	s->n = ps_plan(s, p, s->pages_population, &s->census_needed);
	s->idx = s->n ? ms_pick_indices(s->rand, s->pages_population, s->n) : g_new(uint64_t, 1);
	s->addrs = g_memdup2(s->idx, MAX(s->n, 1) * sizeof(uint64_t));
	ms_runs_addresses(s->population, ps, s->addrs, s->n);
	s->hashes = g_new(uint64_t, MAX(s->n, 1));
	s->present = g_new(bool, MAX(s->n, 1));
	s->readable = g_new(bool, MAX(s->n, 1));
	s->times = g_new(int64_t, MAX(s->n, 1));
	s->open = true;
	int64_t t0 = ms_now_us(CLOCK_MONOTONIC);
	/* Resident as the scan of this open just found them (not a close's,
	 * which may be older): their pagemap entries need no second read. */
	s->rd.resident = s->scanned && !after_close ? s->population : NULL;
	r = ps_look(s, s->present, s->hashes, s->readable, s->times, why);
	s->rd.resident = NULL;
	s->start_mid_us = (t0 + ms_now_us(CLOCK_MONOTONIC)) / 2;
	return r;
}

/* Pages resident now that were outside the window's population.  What was
 * found is kept for the next window's open. */
static int ps_new_resident(ps_state *s, int64_t cpu_ns, uint64_t *pages, char **why)
{
	g_autoptr(GArray) vmas = NULL;
	g_autoptr(GArray) now = NULL;
	int r;

	*pages = 0;
	if (!s->scanned)
		return 0; /* drawn pages that became resident count instead */
	if ((r = ms_proc_writable_vmas(s->pid, &vmas, why)) < 0)
		return r;
	if ((r = ps_population(s, vmas, &now, why)) < 0)
		return r;
	*pages = ms_ranges_pages_not_in(now, s->population, s->rd.page_size);
	g_clear_pointer(&s->next_vmas, g_array_unref);
	g_clear_pointer(&s->next_population, g_array_unref);
	s->next_vmas = g_steal_pointer(&vmas);
	s->next_population = g_steal_pointer(&now);
	s->next_us = ms_now_us(CLOCK_MONOTONIC);
	s->next_cpu_ns = cpu_ns;
	return 0;
}

/* Closes a window in which the process did not run: nothing read. */
static int ps_close_idle(ps_state *s, ms_measurement *out)
{
	int64_t end = ms_now_us(CLOCK_MONOTONIC);
	ms_measurement_begin(out, ms_page_sampling.mode, "idle", s->start_wall_ms, s->start_mid_us,
			     end, s->rd.page_size);
	ms_measurement_coverage(out, s->last_end_us, end);
	s->last_end_us = end;
	out->pages_total = s->pages_total;
	out->pages_population = s->pages_population;
	out->pages_sampled = s->n;
	out->precision = s->asked;
	ms_measurement_finish(out);
	/* Not sampled: known. */
	out->exact = true;
	out->rate = out->rate_lo = out->rate_hi = 0;
	s->keep = true;
	return 1;
}

static int ps_close_window(void *state, ms_measurement *out, char **why)
{
	ps_state *s = state;
	int64_t cpu = process_cpu_ns(s);

	/* The kernel counts a running thread's time at ticks and switches: a
	 * thread running now may have run unseen (on a tickless CPU, for a
	 * second), one that stopped running has been counted.  So: no thread
	 * running (or in D: a vfork child or a device may be writing for it),
	 * then, after that look, the CPU time unchanged. */
	if (cpu >= 0 && cpu == s->cpu_ns && s->private_only && !ms_proc_any_thread_busy(s->pid)) {
		cpu = process_cpu_ns(s);
		if (cpu >= 0 && cpu == s->cpu_ns)
			return ps_close_idle(s, out);
	}
	g_autofree uint64_t *hashes = g_new(uint64_t, MAX(s->n, 1));
	g_autofree bool *present = g_new(bool, MAX(s->n, 1));
	g_autofree bool *readable = g_new(bool, MAX(s->n, 1));
	g_autofree int64_t *times = g_new(int64_t, MAX(s->n, 1));
	uint64_t fresh = 0;
	int r = ps_new_resident(s, cpu, &fresh, why);
	if (r < 0)
		return r;
	ps_drop_carry(s);
	/* With a precision, and the resident pages those the window was drawn
	 * from: the next window is drawn now, its fresh pages read in this
	 * look (the head). */
	size_t next = 0, k = 0, m = 0;
	bool next_census = false;
	g_autofree size_t *slot = NULL;
	g_autofree uint64_t *kept = NULL, *fresh_idx = NULL;
	if (s->asked.asked && s->scanned && s->idx &&
	    same_runs(s->next_population, s->population)) {
		ms_params np = {.period_ms = s->asked_period_ms,
				.sample_pages = s->asked_sample_pages,
				.precision = s->asked};
		next = ps_plan(s, &np, s->pages_population, &next_census);
		k = ps_choose_kept(s, next, &slot);
		kept = g_new(uint64_t, MAX(k, 1));
		for (size_t i = 0; i < k; i++)
			kept[i] = s->idx[slot[i]];
		m = next - k;
		fresh_idx = m ? ps_pick_others(s->rand, s->pages_population, kept, k, m) : NULL;
	}
	/* What this look reads: the window's pages and the fresh ones, merged
	 * (a fresh page may be one of the window's not kept). */
	size_t u = 0;
	g_autofree uint64_t *uidx = g_new(uint64_t, MAX(s->n + m, 1));
	g_autofree size_t *pos_s = g_new(size_t, MAX(s->n, 1));
	g_autofree size_t *pos_f = g_new(size_t, MAX(m, 1));
	for (size_t i = 0, j = 0; i < s->n || j < m;) {
		uint64_t x = i < s->n ? s->idx[i] : UINT64_MAX;
		uint64_t y = j < m ? fresh_idx[j] : UINT64_MAX;
		uint64_t v = MIN(x, y);
		if (x == v)
			pos_s[i++] = u;
		if (y == v)
			pos_f[j++] = u;
		uidx[u++] = v;
	}
	g_autofree uint64_t *uaddr = g_memdup2(uidx, MAX(u, 1) * sizeof(uint64_t));
	g_autofree uint64_t *uh = g_new(uint64_t, MAX(u, 1));
	g_autofree bool *up = g_new(bool, MAX(u, 1));
	g_autofree bool *ur = g_new(bool, MAX(u, 1));
	g_autofree int64_t *ut = g_new(int64_t, MAX(u, 1));
	ms_runs_addresses(s->population, s->rd.page_size, uaddr, u);
	int64_t t0 = ms_now_us(CLOCK_MONOTONIC);
	s->rd.times = ut;
	/* The scan of this look (ps_new_resident, just before) says which of
	 * them are resident: only the others' pagemap entries are read. */
	s->rd.resident = s->scanned ? s->next_population : NULL;
	r = u ? ms_look_pages(&s->rd, uaddr, u, up, ur, uh, NULL, why) : 0;
	s->rd.resident = NULL;
	s->rd.times = NULL;
	int64_t mid = (t0 + ms_now_us(CLOCK_MONOTONIC)) / 2;
	if (r < 0)
		return r;
	/* A next window drawn: the open that follows takes it, however long
	 * the look took (pages made resident meanwhile count in its
	 * pages_new). */
	if (next)
		s->next_us = ms_now_us(CLOCK_MONOTONIC);
	for (size_t i = 0; i < s->n; i++) {
		size_t x = pos_s[i];
		hashes[i] = uh[x], present[i] = up[x], readable[i] = ur[x], times[i] = ut[x];
	}
	if (next) {
		/* The next window: the kept pages and the fresh, merged. */
		s->carry_idx = g_new(uint64_t, MAX(next, 1));
		s->carry_hashes = g_new(uint64_t, MAX(next, 1));
		s->carry_times = g_new(int64_t, MAX(next, 1));
		s->carry_present = g_new(bool, MAX(next, 1));
		s->carry_readable = g_new(bool, MAX(next, 1));
		for (size_t i = 0, a = 0, b = 0; i < next; i++) {
			bool from_kept = a < k && (b >= m || kept[a] < fresh_idx[b]);
			size_t x = from_kept ? pos_s[slot[a++]] : pos_f[b++];
			s->carry_idx[i] = uidx[x];
			s->carry_hashes[i] = uh[x];
			s->carry_times[i] = ut[x];
			s->carry_present[i] = up[x];
			s->carry_readable[i] = ur[x];
		}
		s->carry_population = g_array_ref(s->population);
		s->next_n = next;
		s->next_census = next_census;
		s->next_asked = s->asked;
		s->next_period_ms = s->asked_period_ms;
	}
	/* Each drawn page's own window, from its look in the first to its look
	 * in the second: their mean is the window's length, and how far they
	 * spread (a look preempted half-way) widens the interval
	 * (ms_measurement_windows). */
	ms_measurement_begin(out, ms_page_sampling.mode,
			     s->scanned ? "pagemap_scan+proc_mem" : "pagemap+proc_mem",
			     s->start_wall_ms, s->start_mid_us, mid, s->rd.page_size);
	out->pages_total = s->pages_total;
	out->pages_population = s->pages_population;
	out->pages_new = fresh;
	out->pages_sampled = s->n;
	out->pages_refused = s->rd.refused;
	out->order_chunk = 1;
	int64_t end = ms_measurement_windows(out, s->times, times, s->n, mid);
	ms_measurement_coverage(out, s->last_end_us, end);
	s->last_end_us = end;
	for (size_t i = 0; i < s->n; i++) {
		if (!s->present[i]) {
			/* Became resident: touched for the first time, or
			 * swapped back in. */
			out->pages_dirty += present[i];
		} else if (!s->readable[i] || !readable[i]) {
			out->pages_unmapped++;
		} else if (present[i] && hashes[i] != s->hashes[i]) {
			out->pages_dirty++;
		}
		/* Resident then swapped out: unchanged as far as we know. */
	}
	out->precision = s->asked;
	out->precision_census = s->census_needed;
	ms_measurement_finish(out);
	if (s->asked.asked) {
		s->hist_dirty = s->hist_dirty * MS_PRECISION_DECAY + (double)out->pages_dirty;
		s->hist_sampled = s->hist_sampled * MS_PRECISION_DECAY + (double)s->n;
	}
	return 1;
}

static bool ps_is_open(void *state)
{
	return ((ps_state *)state)->open;
}

const ms_method ms_page_sampling = {
	.mode = "page-sampling",
	.open = ps_open,
	.is_open = ps_is_open,
	.close_window = ps_close_window,
	.open_window = ps_open_window,
	.free_window = ps_free_window,
	.close = ps_close,
};
