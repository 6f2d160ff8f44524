/* sample.h: one finished measurement, as collectors hand it over and as the
 * registry publishes it.
 *
 * A published ms_sample is immutable and reference counted: readers take a
 * reference and never see it change.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#include "ref.h"

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
	uint32_t vcpus;		 /* entries in vcpu (VMs in dirty-ring mode) */
	ms_vcpu_rate *vcpu;	 /* owned by the measurement: g_free it */
} ms_measurement;

typedef struct {
	ms_ref ref;
	uint64_t seq; /* never reused within a target */
	ms_measurement m;
	char rate_text[32]; /* "12.50\n" */
	char *text;	    /* the sample file, rendered once */
	size_t text_len;
	/* Running totals over this target's samples up to and including this
	 * one (Prometheus counters): the bytes their rates account for,
	 * sum(rate * 2^20 * period), and the seconds they cover,
	 * sum(period).  Set by the registry before it publishes the sample. */
	double dirty_bytes_total;
	double seconds_total;
} ms_sample;

/* Derives rate and interval from the counts in m (pages_*, page_size,
 * period_ms) and sets memory_mib, rate, rate_lo, rate_hi, exact:
 *   dirty pages = pages_dirty / pages_sampled * pages_population + pages_new
 * with the interval of the sampled part. */
void ms_measurement_finish(ms_measurement *m);

/* Wilson score interval for a proportion d/n drawn without replacement from
 * a population of N, at z standard errors.  Writes the bounds of the
 * proportion. */
void ms_proportion_interval(uint64_t d, uint64_t n, uint64_t N, double z, double *lo, double *hi);

/* Makes a published sample: copies m (and its vcpu array), renders its
 * texts once. */
ms_sample *ms_sample_new(uint64_t seq, const ms_measurement *m);
ms_sample *ms_sample_ref(ms_sample *s);
void ms_sample_unref(ms_sample *s);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ms_sample, ms_sample_unref)
