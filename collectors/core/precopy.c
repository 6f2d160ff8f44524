/* precopy.c: the pre-copy forecast of precopy.h.  Rules R1-R7 and
 * assumptions A1-A3 are numbered as there.  No state, no locks. */
#include "memstat/core/precopy.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>

/* A safety net for the simulation: dirty syncs in one run. */
#define MAX_SYNCS_HARD 100000u
/* Where the searches for min_bandwidth and min_downtime_ms give up. */
#define MAX_BANDWIDTH_SEARCH 1e15
#define MAX_DOWNTIME_SEARCH	 1e9

static const char *const verdict_names[_MS_PRECOPY_VERDICT_MAX] = {
	[MS_PRECOPY_CONVERGES] = "converges",
	[MS_PRECOPY_DOES_NOT_CONVERGE] = "does-not-converge",
	[MS_PRECOPY_NOT_ENOUGH_DATA] = "not-enough-data",
};

static const char *const end_names[_MS_PRECOPY_END_MAX] = {
	[MS_PRECOPY_END_CONVERGED] = "converged",
	[MS_PRECOPY_END_LIMIT] = "limit",
	[MS_PRECOPY_END_STALLED] = "stalled",
};

const char *ms_precopy_verdict_to_string(ms_precopy_verdict v)
{
	return (unsigned)v < _MS_PRECOPY_VERDICT_MAX ? verdict_names[v] : NULL;
}

const char *ms_precopy_end_to_string(ms_precopy_end e)
{
	return (unsigned)e < _MS_PRECOPY_END_MAX ? end_names[e] : NULL;
}

static double point_value(const ms_growth_point *p, ms_growth_which which)
{
	switch (which) {
	case MS_GROWTH_LOW:
		return p->ci95_low;
	case MS_GROWTH_HIGH:
		return p->ci95_high;
	default:
		return p->pages;
	}
}

int ms_growth_check(const ms_growth_point *curve, size_t n, const char **why)
{
	if (!curve || n == 0) {
		*why = "the growth curve has no points";
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		const ms_growth_point *p = &curve[i];
		if (!isfinite(p->t_s) || p->t_s <= 0 || (i > 0 && p->t_s <= curve[i - 1].t_s)) {
			*why = "growth curve times must be positive and increasing";
			return -EINVAL;
		}
		if (!isfinite(p->pages) || !isfinite(p->ci95_low) || !isfinite(p->ci95_high) ||
		    p->ci95_low < 0 || p->ci95_low > p->pages || p->pages > p->ci95_high) {
			*why = "growth curve points need 0 <= ci95_low <= pages <= ci95_high";
			return -EINVAL;
		}
	}
	return 0;
}

/* The last segment's slope, pages/s (A1). */
static double last_slope(const ms_growth_point *c, size_t n, ms_growth_which which)
{
	if (n == 1)
		return point_value(&c[0], which) / c[0].t_s;
	return (point_value(&c[n - 1], which) - point_value(&c[n - 2], which)) /
	       (c[n - 1].t_s - c[n - 2].t_s);
}

double ms_growth_at(const ms_growth_point *c, size_t n, ms_growth_which which, double t,
		    double max_pages)
{
	double f;

	if (t <= 0)
		return 0;
	if (t <= c[0].t_s) {
		f = point_value(&c[0], which) * t / c[0].t_s;
	} else if (t >= c[n - 1].t_s) {
		double s = last_slope(c, n, which);
		f = point_value(&c[n - 1], which) + (s > 0 ? s : 0) * (t - c[n - 1].t_s);
	} else {
		size_t lo = 0, hi = n - 1; /* c[lo].t_s < t < c[hi].t_s */
		while (hi - lo > 1) {
			size_t mid = lo + (hi - lo) / 2;
			if (c[mid].t_s <= t)
				lo = mid;
			else
				hi = mid;
		}
		double a = point_value(&c[lo], which), b = point_value(&c[hi], which);
		f = a + (b - a) * (t - c[lo].t_s) / (c[hi].t_s - c[lo].t_s);
	}
	return f < max_pages ? f : max_pages;
}

static int check_input(const ms_precopy_input *in, const char **why)
{
	int r = ms_growth_check(in->curve, in->n, why);
	if (r < 0)
		return r;
	if (in->page_size == 0 || (in->page_size & (in->page_size - 1)) != 0) {
		*why = "page size must be a power of two";
		return -EINVAL;
	}
	if (in->memory_bytes < in->page_size) {
		*why = "memory to send must be at least one page";
		return -EINVAL;
	}
	if (!isfinite(in->bandwidth) || in->bandwidth <= 0) {
		*why = "bandwidth must be a positive number of bytes/s";
		return -EINVAL;
	}
	if (!isfinite(in->downtime_ms) || in->downtime_ms < 0) {
		*why = "downtime must be a number of milliseconds >= 0";
		return -EINVAL;
	}
	if (!isfinite(in->link_bandwidth) || in->link_bandwidth < 0 || !isfinite(in->max_total_s) ||
	    in->max_total_s < 0) {
		*why = "link bandwidth and time limit must be numbers >= 0";
		return -EINVAL;
	}
	return 0;
}

/* One simulation of QEMU's migration thread (R1-R7) at bandwidth bw and
 * downtime-limit dl_ms; fills all of *out but min_bandwidth and
 * min_downtime_ms. */
static void simulate(const ms_precopy_input *in, ms_growth_which which, double bw, double dl_ms,
		     ms_precopy_run *out)
{
	const double W_S = MS_PRECOPY_WINDOW_S;
	const double P = in->page_size, cost = P + MS_PRECOPY_PAGE_HEADER; /* R3 */
	const double N = floor((double)in->memory_bytes / P);
	/* A link slower than the rate limit is the bandwidth (R4 measures). */
	const double link = in->link_bandwidth > 0 ? in->link_bandwidth : bw;
	if (link < bw)
		bw = link;
	const double per_window = bw * W_S / cost; /* pages a window allows, R2 */
	const double thr = bw * dl_ms / 1000 / P;  /* R4, in pages (R5 compares
						    * page_size per page) */
	const double limit = in->max_total_s > 0 ? in->max_total_s : INFINITY;
	/* A2: the working set. */
	double W = last_slope(in->curve, in->n, which) > 0
			   ? N
			   : fmin(point_value(&in->curve[in->n - 1], which), N);
	double waiting_w = W, waiting_o = N - W; /* R1: everything */
	double t = 0, last_sync = 0, sent = 0, best = INFINITY;
	double win_start = 0, budget = per_window;
	uint32_t syncs = 1, stalled = 0;

	*out = (ms_precopy_run){.end = MS_PRECOPY_END_LIMIT};
	for (;;) {
		double waiting = waiting_w + waiting_o;
		/* R4: no threshold before the first window is over. */
		double thr_now = t >= W_S * (1 - 1e-9) ? thr : 0;
		if (t > 0 && (waiting < thr_now || waiting <= 0)) {
			/* R5: sync. */
			double dirtied = ms_growth_at(in->curve, in->n, which, t - last_sync, N);
			last_sync = t;
			syncs++;
			if (W > 0)
				waiting_w += dirtied * (1 - waiting_w / W); /* A2 */
			if (waiting_w > W)
				waiting_w = W;
			waiting = waiting_w + waiting_o;
			if (waiting < thr_now || waiting <= 0) { /* R6 */
				syncs++;
				out->end = MS_PRECOPY_END_CONVERGED;
				out->converges = true;
				out->downtime_ms = waiting * cost / link * 1000;
				sent += waiting;
				t += out->downtime_ms / 1000;
				break;
			}
			if (waiting < best - 0.5) {
				best = waiting;
				stalled = 0;
			} else if (++stalled >= MS_PRECOPY_STALL_SYNCS) {
				out->end = MS_PRECOPY_END_STALLED;
				break;
			}
			if ((in->max_syncs && syncs >= in->max_syncs) || syncs >= MAX_SYNCS_HARD)
				break;
		}
		/* R2: whole windows while what waits stays at or above the
		 * threshold (no sync between them)... */
		double n = budget >= per_window * (1 - 1e-12) && waiting - per_window >= thr
				   ? floor((waiting - thr) / per_window)
				   : 0;
		/* (n is 0 when waiting - per_window only rounds to thr: then
		 * the window below, else the loop would never move on.) */
		if (n >= 1) {
			if (win_start + n * W_S >= limit) { /* R7 */
				sent += (limit - win_start) / W_S * per_window;
				t = limit;
				break;
			}
			double keep = (waiting - n * per_window) / waiting; /* A2 */
			waiting_w *= keep;
			waiting_o *= keep;
			sent += n * per_window;
			t = win_start = win_start + n * W_S;
			continue;
		}
		/* ...else what the window still allows, at the link's speed. */
		double s = fmin(waiting, budget), dt = s * cost / link;
		if (t + dt >= limit) {
			sent += (limit - t) * link / cost;
			t = limit;
			break;
		}
		double keep = waiting > 0 ? (waiting - s) / waiting : 0;
		waiting_w *= keep;
		waiting_o *= keep;
		sent += s;
		t += dt;
		budget -= s;
		if (budget <= per_window * 1e-12 || t >= win_start + W_S) {
			/* Rate limited: sleep out the window; a new one begins. */
			t = fmax(t, win_start + W_S);
			if (t >= limit) {
				t = limit;
				break;
			}
			win_start = t;
			budget = per_window;
		}
	}
	out->iterations = syncs;
	out->total_s = t;
	out->transferred_bytes = sent * cost;
}

static bool converges_at(const ms_precopy_input *in, ms_growth_which which, double bw,
			 double dl_ms)
{
	ms_precopy_run r;
	simulate(in, which, bw, dl_ms, &r);
	return r.converges;
}

/* The least bandwidth (over_bandwidth) or downtime-limit at which the
 * model converges, the other held at the input's, assuming convergence
 * holds from there on up: doubling from start up to limit, then bisection
 * to a relative 1e-4.  INFINITY when not even at limit. */
static double least(const ms_precopy_input *in, ms_growth_which which, bool over_bandwidth,
		    double start, double limit)
{
	double lo = 0, hi = start > 0 ? start : 1;
#define OK(x)                                                                   \
	(over_bandwidth ? converges_at(in, which, (x), in->downtime_ms) \
			: converges_at(in, which, in->bandwidth, (x)))
	while (!OK(hi)) {
		lo = hi;
		if (hi >= limit)
			return INFINITY;
		hi = fmin(hi * 2, limit);
	}
	for (int i = 0; i < 100 && hi - lo > hi * 1e-4; i++) {
		double mid = (lo + hi) / 2;
		if (OK(mid))
			hi = mid;
		else
			lo = mid;
	}
#undef OK
	return hi;
}

int ms_precopy_run_one(const ms_precopy_input *in, ms_growth_which which, ms_precopy_run *out,
		       const char **why)
{
	int r = check_input(in, why);
	if (r < 0)
		return r;
	if ((unsigned)which >= _MS_GROWTH_MAX) {
		*why = "no such curve";
		return -EINVAL;
	}
	simulate(in, which, in->bandwidth, in->downtime_ms, out);
	out->min_bandwidth = least(in, which, true, in->bandwidth, MAX_BANDWIDTH_SEARCH);
	out->min_downtime_ms = least(in, which, false, in->downtime_ms, MAX_DOWNTIME_SEARCH);
	return 0;
}

int ms_precopy_forecast_compute(const ms_precopy_input *in, ms_precopy_forecast *out,
				const char **why)
{
	for (int w = 0; w < _MS_GROWTH_MAX; w++) {
		int r = ms_precopy_run_one(in, (ms_growth_which)w, &out->run[w], why);
		if (r < 0)
			return r;
	}
	bool lo = out->run[MS_GROWTH_LOW].converges, hi = out->run[MS_GROWTH_HIGH].converges;
	out->verdict = lo != hi ? MS_PRECOPY_NOT_ENOUGH_DATA
		       : lo	? MS_PRECOPY_CONVERGES
				: MS_PRECOPY_DOES_NOT_CONVERGE;
	return 0;
}

const char *ms_precopy_model_text(void)
{
	return "pre-copy as QEMU 7.2 runs it (qemu/qemu migration/ram.c, migration/migration.c)\n"
	       "f(t): distinct pages dirtied within t s; linear between points, from (0,0) to the "
	       "first, the last slope beyond the last point, capped at all pages\n"
	       "setup syncs the dirty bitmap with every page set: the first round sends all "
	       "non-zero pages (ram_init_bitmaps)\n"
	       "sending is rate limited to bandwidth in 100 ms windows; a window's allowance goes "
	       "out at the link's speed, then the rest of the window is slept out "
	       "(migrate_fd_connect, migration_rate_limit, ram_save_iterate)\n"
	       "a page costs page_size + 8 bytes of header; zero pages are not counted "
	       "(save_page_header, save_zero_page)\n"
	       "threshold = bandwidth x downtime_limit, 0 until the first window ends "
	       "(migration_update_counters)\n"
	       "the bitmap is synced only when what remains is below the threshold, adding the "
	       "pages dirtied since the last sync that are not already waiting "
	       "(ram_save_pending)\n"
	       "pages dirtied between syncs fall on the working set (the curve's plateau, or all "
	       "pages) independently of the scan, which sends waiting pages in proportion\n"
	       "when what remains after a sync is below the threshold: stop-and-copy without "
	       "rate limit, one more sync (migration_iteration_run, migration_completion, "
	       "ram_save_complete); the gap before the stop, and the time a sync takes, are not "
	       "modelled\n"
	       "iterations = dirty syncs (query-migrate ram.dirty-sync-count)\n"
	       "QEMU never gives up; does-not-converge = the user's time or sync limit reached, "
	       "or no new low of what remains for 200 syncs\n"
	       "left out: XBZRLE, compression, multifd, auto-converge and dirty-limit throttling, "
	       "postcopy, avail-switchover-bandwidth (8.2+), setup time, device state\n"
	       "figures on the estimate, the ci95 low and high curves; not-enough-data when low "
	       "and high disagree\n";
}
