/* measurement.h: one finished measurement, as a method or a source hands it
 * over, and the statistics that turn counted pages into a rate.
 *
 * Nothing here knows about targets, threads or files.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

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
	uint32_t page_size;
	double memory_mib;	 /* pages_total * page_size / 2^20 */
	double rate;		 /* MiB/s */
	double rate_lo, rate_hi; /* 95% confidence interval, MiB/s */
	bool exact;		 /* every page was looked at: no interval */
	uint32_t processes;	 /* processes a container's sample covered;
				  * 0 for one process or a VM */
	uint32_t vcpus;		 /* entries in vcpu (VMs in dirty-ring mode) */
	ms_vcpu_rate *vcpu;	 /* owned by the measurement: g_free it */
} ms_measurement;

/* What one window is asked to be. */
typedef struct {
	uint32_t period_ms;    /* how long the window being opened should last */
	uint32_t sample_pages; /* pages per GiB to sample */
	uint32_t growth_ms;    /* someone wants the growth curve (growth.h) up to
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
 * period_ms) and sets memory_mib, rate, rate_lo, rate_hi, exact:
 *   dirty pages = pages_dirty / pages_sampled * pages_population + pages_new
 * with the interval of the sampled part. */
void ms_measurement_finish(ms_measurement *m);

/* Wilson score interval for a proportion d/n drawn without replacement from
 * a population of N, at z standard errors.  Writes the bounds of the
 * proportion. */
void ms_proportion_interval(uint64_t d, uint64_t n, uint64_t N, double z, double *lo, double *hi);

/* clock_gettime(clk) in microseconds. */
int64_t ms_now_us(clockid_t clk);
