/* measurement.c: from counted pages to a rate and its confidence interval. */
#include "memstat/methods/measurement.h"

#include <math.h>
#include <string.h>

#include <glib.h>

/* The Wilson interval around p for n drawn of N (ms_proportion_interval). */
static void wilson(double p, uint64_t n, uint64_t N, double z, double *lo, double *hi)
{
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

void ms_proportion_interval(uint64_t d, uint64_t n, uint64_t N, double z, double *lo, double *hi)
{
	if (n == 0) {
		*lo = 0.0;
		*hi = 1.0;
		return;
	}
	wilson((double)d / (double)n, n, N, z, lo, hi);
}

double ms_proportion_half_width(double p, uint64_t n, uint64_t N, double z)
{
	double lo, hi;

	if (n == 0)
		return 1.0;
	wilson(fmin(fmax(p, 0.0), 1.0), n, N, z, &lo, &hi);
	return fmax(hi - p, p - lo);
}

uint64_t ms_precision_pages(double p, uint64_t N, double h, uint64_t min)
{
	if (min >= N)
		return N;
	if (ms_proportion_half_width(p, min, N, 1.959964) <= h)
		return min;
	/* The half-width shrinks as n grows (and is 0 at N): the least n in
	 * (min, N] that meets h. */
	uint64_t lo = min, hi = N;
	while (hi - lo > 1) {
		uint64_t mid = lo + (hi - lo) / 2;
		if (ms_proportion_half_width(p, mid, N, 1.959964) <= h)
			hi = mid;
		else
			lo = mid;
	}
	return hi;
}

char *ms_precision_format(const ms_precision *pr, char *buf, size_t len)
{
	char rel[24] = "", abs[24] = "";

	if (!pr->asked) {
		g_strlcpy(buf, "off", len);
		return buf;
	}
	if (pr->rel > 0)
		g_snprintf(rel, sizeof(rel), "%g%%", pr->rel * 100.0);
	if (pr->abs_mib_s > 0)
		g_snprintf(abs, sizeof(abs), "%gMiB/s", pr->abs_mib_s);
	g_snprintf(buf, len, "%s%s%s", rel, rel[0] && abs[0] ? "," : "", abs);
	return buf;
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

	/* The windows every page's own window lies between (measurement.h). */
	double shortest = m->window_min_ms ? m->window_min_ms / 1000.0 : seconds;
	double longest = m->window_max_ms ? m->window_max_ms / 1000.0 : seconds;
	shortest = fmin(shortest, seconds);
	longest = fmax(longest, seconds);

	m->memory_mib = (double)m->pages_total * page_mib;
	m->exact = n >= m->pages_population && longest - shortest <= 0.02 * seconds;
	if (n > 0) {
		p = (double)m->pages_dirty / (double)n;
		ms_proportion_interval(m->pages_dirty, n, m->pages_population, 1.959964, &lo, &hi);
	}
	m->rate = (p * pop_mib + new_mib) / seconds;
	m->rate_lo = (lo * pop_mib + new_mib) / longest;
	m->rate_hi = (hi * pop_mib + new_mib) / shortest;
	if (m->order_chunk && n > 0 && shortest > 0) {
		/* measurement.h: of the pages looked at, those written while
		 * the looks ran are at most R (longest - shortest), R at most
		 * dirty / shortest; each counts or not at random, a chunk at
		 * a time.  Scaled to the population, beside the sampling
		 * error. */
		bool census = n >= m->pages_population;
		double scale = census ? 1.0 : (double)m->pages_population / (double)n;
		double dirty = (double)m->pages_dirty + (census ? (double)m->pages_new : 0.0);
		double var = m->order_chunk / 4.0 * dirty * (longest - shortest) / shortest;
		double timing = 1.959964 * sqrt(var) * scale * page_mib / seconds;
		double below = m->rate - (lo * pop_mib + new_mib) / seconds;
		double above = (hi * pop_mib + new_mib) / seconds - m->rate;
		m->rate_lo = fmax(m->rate_lo, m->rate - sqrt(below * below + timing * timing));
		m->rate_hi = fmin(m->rate_hi, m->rate + sqrt(above * above + timing * timing));
	}
}

int64_t ms_measurement_windows(ms_measurement *m, const int64_t *first, const int64_t *second,
			       size_t count, int64_t fallback_end_us)
{
	if (count == 0)
		return fallback_end_us;
	int64_t first_lo = first[0], first_hi = first[0], second_lo = second[0],
		second_hi = second[0];
	double sum = 0, end = 0;
	for (size_t i = 0; i < count; i++) {
		first_lo = MIN(first_lo, first[i]);
		first_hi = MAX(first_hi, first[i]);
		second_lo = MIN(second_lo, second[i]);
		second_hi = MAX(second_hi, second[i]);
		sum += (double)(second[i] - first[i]);
		end += (double)second[i];
	}
	m->period_ms = (uint32_t)MAX((int64_t)(sum / (double)count / 1000.0 + 0.5), 1);
	m->window_min_ms = (uint32_t)MAX((second_lo - first_hi + 500) / 1000, 1);
	m->window_max_ms = (uint32_t)MAX((second_hi - first_lo + 500) / 1000, m->period_ms);
	m->window_min_ms = MIN(m->window_min_ms, m->period_ms);
	return (int64_t)(end / (double)count);
}

void ms_measurement_coverage(ms_measurement *m, int64_t prev_end_us, int64_t end_us)
{
	m->coverage = 1.0;
	if (prev_end_us > 0 && end_us > prev_end_us)
		m->coverage = fmin(1.0, m->period_ms * 1000.0 / (double)(end_us - prev_end_us));
}

void ms_measurement_begin(ms_measurement *m, const char *mode, const char *method, int64_t start_ms,
			  int64_t mono_start_us, int64_t mono_end_us, uint32_t page_size)
{
	memset(m, 0, sizeof(*m));
	m->start_ms = start_ms;
	m->period_ms = (uint32_t)MAX((mono_end_us - mono_start_us + 500) / 1000, 1);
	m->window_min_ms = m->window_max_ms = m->period_ms;
	m->coverage = 1.0;
	m->mode = mode;
	m->method = method;
	m->page_size = page_size;
}

int64_t ms_now_us(clockid_t clk)
{
	struct timespec ts;
	clock_gettime(clk, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}
