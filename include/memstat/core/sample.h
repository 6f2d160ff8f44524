/* sample.h: one finished measurement as the registry publishes it.
 *
 * A published ms_sample is immutable and reference counted: readers take a
 * reference and never see it change.
 */
#pragma once

#include <glib.h>
#include <stddef.h>
#include <stdint.h>

#include "memstat/core/ref.h"
#include "memstat/methods/measurement.h"

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

/* Makes a published sample: copies m (and its vcpu array), renders its
 * texts once. */
ms_sample *ms_sample_new(uint64_t seq, const ms_measurement *m);
ms_sample *ms_sample_ref(ms_sample *s);
void ms_sample_unref(ms_sample *s);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ms_sample, ms_sample_unref)

/* The figure of vCPU id in s (NULL-safe), or NULL. */
const ms_vcpu_rate *ms_sample_vcpu(const ms_sample *s, uint32_t id);
