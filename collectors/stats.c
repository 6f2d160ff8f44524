/* stats.c: from counted pages to a rate and its confidence interval. */
#include <math.h>

#include "memstat/sample.h"

void ms_proportion_interval(uint64_t d, uint64_t n, uint64_t N, double z, double *lo, double *hi)
{
	if (n == 0) {
		*lo = 0.0;
		*hi = 1.0;
		return;
	}
	double p = (double)d / (double)n;
	/* Sampling without replacement: the finite population correction
	 * shrinks the variance by (N - n) / (N - 1); a census has none. */
	double fpc = (N > 1 && N > n) ? (double)(N - n) / (double)(N - 1) : 0.0;
	double z2 = z * z * fpc;
	double nn = (double)n;
	double denom = 1.0 + z2 / nn;
	double center = (p + z2 / (2.0 * nn)) / denom;
	double half = sqrt(z2) / denom * sqrt(p * (1.0 - p) / nn + z2 / (4.0 * nn * nn));

	*lo = fmax(0.0, center - half);
	*hi = fmin(1.0, center + half);
	/* Guard against rounding putting the point estimate outside. */
	if (*lo > p)
		*lo = p;
	if (*hi < p)
		*hi = p;
}

void ms_measurement_finish(ms_measurement *m)
{
	const double mib = 1024.0 * 1024.0;
	double seconds = m->period_ms > 0 ? m->period_ms / 1000.0 : 1.0;
	double page_mib = m->page_size / mib;
	double pop_mib = (double)m->pages_population * page_mib;
	double new_mib = (double)m->pages_new * page_mib;
	uint64_t n = m->pages_sampled;
	double p = 0.0, lo = 0.0, hi = 0.0;

	m->memory_mib = (double)m->pages_total * page_mib;
	m->exact = n >= m->pages_population;
	if (n > 0) {
		p = (double)m->pages_dirty / (double)n;
		ms_proportion_interval(m->pages_dirty, n, m->pages_population, 1.959964, &lo, &hi);
	}
	m->rate = (p * pop_mib + new_mib) / seconds;
	m->rate_lo = (lo * pop_mib + new_mib) / seconds;
	m->rate_hi = (hi * pop_mib + new_mib) / seconds;
}
