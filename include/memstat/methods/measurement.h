/* measurement.h: one finished measurement, as a method or a source hands it
 * over, and the statistics that turn counted pages into a rate.
 *
 * Nothing here knows about targets, threads or files.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* A precision asked of a rate: its 95% interval's half-width at most
 * max(rel * rate, abs_mib_s), the looser of the two (either may be 0, not
 * both).  asked false: none (the sample_pages rule). */
typedef struct {
	bool asked;
	double rel;	  /* a fraction of the rate: 0.1 for "10%", or 0 */
	double abs_mib_s; /* MiB/s, or 0 */
} ms_precision;

/* The daemon's default precision: 25% of the rate or 1 MiB/s, whichever
 * is looser (README, "Precision"). */
#define MS_PRECISION_DEFAULT ((ms_precision){.asked = true, .rel = 0.25, .abs_mib_s = 1.0})

/* One vCPU's figure (QEMU's dirty-ring mode). */
typedef struct {
	uint32_t id;
	double rate; /* MiB/s */
} ms_vcpu_rate;

typedef struct {
	int64_t start_ms;	   /* Unix time, ms, when the window opened */
	uint32_t period_ms;	   /* measured length of the window */
	const char *mode;	   /* "page-sampling", ... (static string) */
	const char *method;	   /* kernel interfaces used (static string) */
	uint64_t pages_total;	   /* writable pages of the process */
	uint64_t pages_population; /* pages the sample was drawn from */
	uint64_t pages_sampled;	   /* pages looked at */
	uint64_t pages_dirty;	   /* of those, dirtied in the window */
	uint64_t pages_new;	   /* outside the population, became resident:
				    * counted exactly, not sampled */
	uint64_t pages_unmapped;   /* sampled pages that went away meanwhile */
	uint64_t pages_refused;	   /* reads of the window's two looks refused by
				    * userfaultfd (a page missing when read,
				    * which a live handler serves when the
				    * process touches it), counted per look:
				    * such a page is not readable, so clean
				    * (pages_unmapped, unless another read of
				    * it succeeded) */
	uint32_t page_size;
	double memory_mib;	 /* pages_total * page_size / 2^20 */
	double rate;		 /* MiB/s */
	double rate_lo, rate_hi; /* 95% confidence interval, MiB/s */
	bool exact;		 /* every page was looked at and every page's own
				  * window is the sample's to 2%: the count is the
				  * window's for any order of writes */
	/* When each page was read (ms_measurement_windows): every page's own
	 * window, from its read in the first look to its read in the second,
	 * contains [window_min_ms] (the end of the first look to the start of
	 * the second) and lies within window_max_ms (the start of the first
	 * look to the end of the second).  Both are period_ms when the reads
	 * were not timed (one instant, or QEMU's figure). */
	uint32_t window_min_ms, window_max_ms;
	uint32_t order_chunk;	/* pages read in a random order, in chunks of
				 * this many pages (full-scan 16, page-sampling
				 * 1), or 0 */
	double coverage;	/* the fraction of the time since the previous
				 * window's end that this window covers (1: it
				 * began where the last one ended; less: the mode
				 * cannot keep up with the period) */
	ms_precision precision; /* what was asked (page-sampling of a process),
				 * or none */
	bool precision_census;	/* asked, and it needed half the population
				 * or more, more than sample_pages would
				 * have drawn (a relative precision at a
				 * rate near 0) */
	uint32_t processes;	/* processes a container's sample covered;
				 * 0 for one process or a VM */
	uint32_t vcpus;		/* entries in vcpu (VMs in dirty-ring mode) */
	ms_vcpu_rate *vcpu;	/* owned by the measurement: g_free it */
} ms_measurement;

/* What one window is asked to be. */
typedef struct {
	uint32_t period_ms;	/* how long the window being opened should last */
	uint32_t sample_pages;	/* pages per GiB to sample */
	ms_precision precision; /* page-sampling of a process: draws the pages
				 * this needs instead of sample_pages per GiB */
	uint32_t growth_ms;	/* someone wants the growth curve (growth.h) up to
				 * this window length, ms; 0: nobody, and the
				 * rate path runs as it would without it */
} ms_params;

/* Zeroes *m and fills the fields every method sets alike: start_ms (wall
 * clock, ms), period_ms (from mono_start_us to mono_end_us, CLOCK_MONOTONIC
 * microseconds, rounded, at least 1), mode, method (static strings) and
 * page_size. */
void ms_measurement_begin(ms_measurement *m, const char *mode, const char *method, int64_t start_ms,
			  int64_t mono_start_us, int64_t mono_end_us, uint32_t page_size);

/* Derives rate and interval from the counts in m (pages_*, page_size,
 * period_ms, window_min_ms, window_max_ms) and sets memory_mib, rate,
 * rate_lo, rate_hi, exact:
 *   dirty pages = pages_dirty / pages_sampled * pages_population + pages_new
 *   rate = dirty pages / period_ms (the mean of the pages' own windows)
 * The interval is that of the sampled part (Wilson, below) over the
 * timing's: for a writer that dirties R distinct pages in any stretch of
 * time of length L (R L), a count over windows that all contain
 * [window_min_ms] and lie within window_max_ms is between R window_min and
 * R window_max, whatever order the pages are written in; so the low end
 * divides by window_max_ms and the high end by window_min_ms.  Pages read
 * in a random order of chunks (order_chunk pages each) narrow that to a
 * 95% interval: a page's window then does not depend on when it is
 * written, the count's mean is R period_ms, and only the pages written
 * while the looks ran (at most R (window_max - window_min)) are counted or
 * not at random, a chunk at a time, for a variance of at most
 * order_chunk / 4 times their number (scaled to the population and added
 * to the sampling error's, when sampled).  exact: a
 * census (pages_sampled >= pages_population) whose window_max_ms -
 * window_min_ms is at most 2% of period_ms. */
void ms_measurement_finish(ms_measurement *m);

/* The windows of a measurement whose pages were read at known times:
 * first[i] and second[i] (CLOCK_MONOTONIC microseconds) are page i's reads
 * in the look that opened the window and in the one that closed it, for
 * the count pages that were looked at both times.  Sets period_ms (the
 * mean of second[i] - first[i], at least 1), window_min_ms (min(second) -
 * max(first), at least 1) and window_max_ms (max(second) - min(first)).
 * Returns the mean of second[] (the window's end, for coverage), or
 * fallback_end_us when count is 0 (period_ms then stays as begun). */
int64_t ms_measurement_windows(ms_measurement *m, const int64_t *first, const int64_t *second,
			       size_t count, int64_t fallback_end_us);

/* coverage: m's period_ms over the time from prev_end_us (the previous
 * window's end, CLOCK_MONOTONIC µs; 0: none, coverage 1) to end_us, at
 * most 1. */
void ms_measurement_coverage(ms_measurement *m, int64_t prev_end_us, int64_t end_us);

/* Wilson score interval for a proportion d/n drawn without replacement from
 * a population of N, at z standard errors.  Writes the bounds of the
 * proportion. */
void ms_proportion_interval(uint64_t d, uint64_t n, uint64_t N, double z, double *lo, double *hi);

/* The half-width, as a proportion, of ms_proportion_interval's interval
 * around a proportion p (0..1, not only d/n) for n pages drawn of N: the
 * larger of its two halves. */
double ms_proportion_half_width(double p, uint64_t n, uint64_t N, double z);

/* The fewest pages, at least min (or N when fewer), of a population of N
 * for which the 95% interval of a proportion p has a half-width
 * (ms_proportion_half_width) of at most h: the Wilson interval with the
 * finite population correction, inverted by bisection.  N when no smaller
 * sample does (a census has no sampling error). */
uint64_t ms_precision_pages(double p, uint64_t N, double h, uint64_t min);

/* The precision as written: "25%,0.25MiB/s", "10%", "2MiB/s", "off".
 * Into buf (at least 48 bytes); returns buf. */
char *ms_precision_format(const ms_precision *pr, char *buf, size_t len);

/* clock_gettime(clk) in microseconds. */
int64_t ms_now_us(clockid_t clk);
