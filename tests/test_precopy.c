/* test_precopy.c: the pre-copy model (include/memstat/precopy.h) against
 * cases worked out by hand.
 *
 * Every case uses pages of 4096 bytes, so a page costs 4104 bytes on the
 * wire (R3), and a bandwidth of 410400 bytes/s: 100 pages a second, 10 per
 * 100 ms window (R2).  The threshold in pages is then
 * 410400 x downtime_s / 4096 = 100.195 x downtime_s (R4, R5).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <glib.h>
#include <math.h>

#include "memstat/core/precopy.h"

#define PAGE  4096u
#define COST  4104.0
#define BW    410400.0 /* 100 pages/s */
#define MEM   (1000u * PAGE)
static bool CLOSE(double a, double b, double rel)
{
	return fabs(a - b) <= rel * fabs(b) + 1e-9;
}

static ms_precopy_input input(const ms_growth_point *c, size_t n, double downtime_ms)
{
	return (ms_precopy_input){.curve = c,
				  .n = n,
				  .memory_bytes = MEM,
				  .page_size = PAGE,
				  .bandwidth = BW,
				  .downtime_ms = downtime_ms};
}

Test(growth, interpolates_and_extrapolates)
{
	const ms_growth_point c[] = {{1, 10, 8, 12}, {2, 30, 25, 40}};
	cr_expect(CLOSE(ms_growth_at(c, 2, MS_GROWTH_ESTIMATE, 0.5, 1e9), 5, 1e-12));
	cr_expect(CLOSE(ms_growth_at(c, 2, MS_GROWTH_ESTIMATE, 1.5, 1e9), 20, 1e-12));
	/* Beyond the last point: the last slope, 20 pages/s... */
	cr_expect(CLOSE(ms_growth_at(c, 2, MS_GROWTH_ESTIMATE, 3, 1e9), 50, 1e-12));
	/* ...capped at all the pages. */
	cr_expect(CLOSE(ms_growth_at(c, 2, MS_GROWTH_ESTIMATE, 3, 40), 40, 1e-12));
	cr_expect(CLOSE(ms_growth_at(c, 2, MS_GROWTH_LOW, 1.5, 1e9), 16.5, 1e-12));
	cr_expect(CLOSE(ms_growth_at(c, 2, MS_GROWTH_HIGH, 4, 1e9), 96, 1e-12));
	cr_expect_eq(ms_growth_at(c, 2, MS_GROWTH_ESTIMATE, 0, 1e9), 0);
	cr_expect_eq(ms_growth_at(c, 2, MS_GROWTH_ESTIMATE, -1, 1e9), 0);
	/* A flat end stays flat; one point extrapolates from the origin. */
	const ms_growth_point flat[] = {{1, 10, 10, 10}, {2, 10, 10, 10}};
	cr_expect(CLOSE(ms_growth_at(flat, 2, MS_GROWTH_ESTIMATE, 100, 1e9), 10, 1e-12));
	const ms_growth_point one[] = {{0.5, 10, 10, 10}};
	cr_expect(CLOSE(ms_growth_at(one, 1, MS_GROWTH_ESTIMATE, 2, 1e9), 40, 1e-12));
}

Test(precopy, bad_input_is_einval_with_a_reason)
{
	const ms_growth_point good[] = {{1, 10, 10, 10}};
	const ms_growth_point back[] = {{2, 10, 10, 10}, {1, 20, 20, 20}};
	const ms_growth_point wide[] = {{1, 10, 11, 12}};
	const ms_growth_point nan_[] = {{1, NAN, 0, 1}};
	const ms_growth_point zero[] = {{0, 0, 0, 0}};
	ms_precopy_forecast f;
	const char *why;
	ms_precopy_input in[9];
	for (int i = 0; i < 9; i++)
		in[i] = input(good, 1, 300);
	in[0].n = 0;
	in[1].curve = back, in[1].n = 2;
	in[2].curve = wide;
	in[3].curve = nan_;
	in[4].curve = zero;
	in[5].bandwidth = 0;
	in[6].page_size = 3000;
	in[7].downtime_ms = -1;
	in[8].memory_bytes = 100;
	for (int i = 0; i < 9; i++) {
		why = NULL;
		cr_expect_eq(ms_precopy_forecast_compute(&in[i], &f, &why), -EINVAL, "case %d", i);
		cr_expect(why && *why, "case %d gave no reason", i);
	}
}

Test(precopy, strings)
{
	cr_expect_str_eq(ms_precopy_verdict_to_string(MS_PRECOPY_CONVERGES), "converges");
	cr_expect_str_eq(ms_precopy_verdict_to_string(MS_PRECOPY_DOES_NOT_CONVERGE),
			 "does-not-converge");
	cr_expect_str_eq(ms_precopy_verdict_to_string(MS_PRECOPY_NOT_ENOUGH_DATA),
			 "not-enough-data");
	cr_expect_null(ms_precopy_verdict_to_string(_MS_PRECOPY_VERDICT_MAX));
	cr_expect_str_eq(ms_precopy_end_to_string(MS_PRECOPY_END_STALLED), "stalled");
	const char *m = ms_precopy_model_text();
	cr_expect(m && strstr(m, "ram_save_pending") && strstr(m, "postcopy") &&
		  m[strlen(m) - 1] == '\n');
}

/* A guest that dirties nothing, downtime-limit 5 s: threshold 500.98
 * pages.  The first round sends until fewer than that wait: floor((1000 -
 * 500.98) / 10) + 1 = 50 windows, 500 pages, 5 s.  Sync 2 finds nothing
 * new; 500 < 500.98: stop-and-copy, sync 3, 500 pages at 100 pages/s = 5 s
 * of downtime.  Total 10 s, 1000 pages x 4104 bytes. */
Test(precopy, an_idle_guest)
{
	const ms_growth_point c[] = {{1, 0, 0, 0}};
	ms_precopy_input in = input(c, 1, 5000);
	ms_precopy_forecast f;
	const char *why;
	cr_assert_eq(ms_precopy_forecast_compute(&in, &f, &why), 0);
	cr_expect_eq(f.verdict, MS_PRECOPY_CONVERGES);
	ms_precopy_run *r = &f.run[MS_GROWTH_ESTIMATE];
	cr_expect_eq(r->iterations, 3);
	cr_expect(CLOSE(r->downtime_ms, 5000, 1e-9), "downtime %g", r->downtime_ms);
	cr_expect(CLOSE(r->total_s, 10, 1e-9), "total %g", r->total_s);
	cr_expect(CLOSE(r->transferred_bytes, 1000 * COST, 1e-9));
	/* Nothing dirtied: any bandwidth and any downtime-limit converge. */
	cr_expect_lt(r->min_bandwidth, 1);
	cr_expect_lt(r->min_downtime_ms, 0.01);
	/* A faster link for stop-and-copy (R6): 500 pages at 1000 pages/s. */
	in.link_bandwidth = 10 * BW;
	cr_assert_eq(ms_precopy_forecast_compute(&in, &f, &why), 0);
	cr_expect(CLOSE(f.run[MS_GROWTH_ESTIMATE].downtime_ms, 500, 1e-9));
	cr_expect(CLOSE(f.run[MS_GROWTH_ESTIMATE].total_s, 5.5, 1e-9));
}

/* Uniform over all memory, 50 pages/s, never flattening (so the working
 * set is all 1000 pages, A2); downtime-limit 1 s: threshold 100.195 pages.
 *   waiting before sync        sync  dirtied f(dt) x (1 - waiting/1000)
 *   1000 - 90 windows = 100    2     f(9.0)=450 x 0.9      = 405     -> 505
 *   505  - 41 windows = 95     3     f(4.1)=205 x 0.905    = 185.525 -> 280.525
 *   280.525 - 19      = 90.525 4     f(1.9)=95 x 0.909475  = 86.400  -> 176.925
 *   176.925 - 8       = 96.925 5     f(0.8)=40 x 0.903075  = 36.123  -> 133.048
 *   133.048 - 4       = 93.048 6     f(0.4)=20 x 0.906952  = 18.139  -> 111.187
 *   111.187 - 2       = 91.187 7     f(0.2)=10 x 0.908813  = 9.088   -> 100.275
 *   100.275 - 1       = 90.275 8     f(0.1)=5 x 0.909725   = 4.549   -> 94.824
 * 94.824 < 100.195: stop-and-copy (sync 9), 948.2 ms at 100 pages/s.
 * Windows: 90+41+19+8+4+2+1 = 165, 16.5 s; total 17.448 s; pages sent
 * 1650 + 94.824 = 1744.824, x 4104 = 7160758 bytes. */
Test(precopy, uniform_dirtying_converges_geometrically)
{
	const ms_growth_point c[] = {{1, 50, 45, 55}, {10, 500, 450, 550}};
	ms_precopy_input in = input(c, 2, 1000);
	ms_precopy_forecast f;
	const char *why;
	cr_assert_eq(ms_precopy_forecast_compute(&in, &f, &why), 0);
	ms_precopy_run *r = &f.run[MS_GROWTH_ESTIMATE];
	cr_expect_eq(f.verdict, MS_PRECOPY_CONVERGES);
	cr_expect_eq(r->iterations, 9);
	cr_expect(CLOSE(r->downtime_ms, 948.24, 1e-4), "downtime %g", r->downtime_ms);
	cr_expect(CLOSE(r->total_s, 17.448, 1e-4), "total %g", r->total_s);
	cr_expect(CLOSE(r->transferred_bytes, 7160758, 1e-4), "bytes %g", r->transferred_bytes);
	/* The low curve dirties less: sooner; the high one later. */
	cr_expect_lt(f.run[MS_GROWTH_LOW].total_s, r->total_s);
	cr_expect_gt(f.run[MS_GROWTH_HIGH].total_s, r->total_s);
	/* Convergence needs the bandwidth to beat the dirtying: 50 pages/s
	 * x 4104 = 205200 bytes/s less what lands on pages already waiting
	 * (about 5%): between 190 and 215 kB/s. */
	cr_expect(r->min_bandwidth > 190000 && r->min_bandwidth < 215000, "min bandwidth %g",
		  r->min_bandwidth);
	/* ...and the figures say what they mean: just above converges, just
	 * below does not. */
	ms_precopy_run probe;
	in.bandwidth = r->min_bandwidth * 1.01;
	cr_assert_eq(ms_precopy_run_one(&in, MS_GROWTH_ESTIMATE, &probe, &why), 0);
	cr_expect(probe.converges);
	in.bandwidth = r->min_bandwidth * 0.99;
	cr_assert_eq(ms_precopy_run_one(&in, MS_GROWTH_ESTIMATE, &probe, &why), 0);
	cr_expect_not(probe.converges);
	cr_expect_eq(probe.end, MS_PRECOPY_END_STALLED);
}

/* The user gives up after 3 s (R7): 30 windows, 300 pages sent. */
Test(precopy, a_time_limit_ends_it)
{
	const ms_growth_point c[] = {{1, 50, 50, 50}, {10, 500, 500, 500}};
	ms_precopy_input in = input(c, 2, 1000);
	in.max_total_s = 3;
	ms_precopy_forecast f;
	const char *why;
	cr_assert_eq(ms_precopy_forecast_compute(&in, &f, &why), 0);
	ms_precopy_run *r = &f.run[MS_GROWTH_ESTIMATE];
	cr_expect_eq(f.verdict, MS_PRECOPY_DOES_NOT_CONVERGE);
	cr_expect_eq(r->end, MS_PRECOPY_END_LIMIT);
	cr_expect(CLOSE(r->total_s, 3, 1e-9));
	cr_expect(CLOSE(r->transferred_bytes, 300 * COST, 1e-9));
	cr_expect_eq(r->iterations, 1);
	cr_expect_eq(r->downtime_ms, 0);
	/* The least bandwidth that stops within 3 s sends all but a threshold
	 * (bw x 1 s / 4096 pages) in 3 s: (1000 - bw / 4096) x 4104 / bw <= 3,
	 * bw >= 1025590 bytes/s, and a little more for what is dirtied. */
	cr_expect(r->min_bandwidth > 1025590 && r->min_bandwidth < 1200000, "min bandwidth %g",
		  r->min_bandwidth);
	in.max_syncs = 4; /* or after 4 dirty syncs */
	in.max_total_s = 0;
	cr_assert_eq(ms_precopy_run_one(&in, MS_GROWTH_ESTIMATE, r, &why), 0);
	cr_expect_eq(r->end, MS_PRECOPY_END_LIMIT);
	cr_expect_eq(r->iterations, 4);
	cr_expect(CLOSE(r->total_s, 15.0, 1e-9), "total %g", r->total_s);
}

/* A hot set of 300 pages, each rewritten within 0.1 s, and 1000 MiB/s of
 * dirtying: a rate says never.  The curve says: converges once the
 * threshold holds the hot set, 300 pages = 300 x 4096 bytes, i.e. a
 * downtime-limit of 300 x 4096 / 410400 = 2.994 s at this bandwidth, or a
 * bandwidth of 300 x 4096 / 1 s = 1228800 bytes/s at 1 s (a little more:
 * the last pages outside the hot set wait too). */
Test(precopy, a_hot_set_needs_a_threshold_that_holds_it)
{
	const ms_growth_point c[] = {{0.1, 300, 300, 300}, {1, 300, 300, 300}, {10, 300, 300, 300}};
	ms_precopy_input in = input(c, 3, 1000);
	ms_precopy_forecast f;
	const char *why;
	cr_assert_eq(ms_precopy_forecast_compute(&in, &f, &why), 0);
	ms_precopy_run *r = &f.run[MS_GROWTH_ESTIMATE];
	cr_expect_eq(f.verdict, MS_PRECOPY_DOES_NOT_CONVERGE);
	cr_expect_eq(r->end, MS_PRECOPY_END_STALLED);
	cr_expect(r->min_downtime_ms > 2994 && r->min_downtime_ms < 3100, "min downtime %g",
		  r->min_downtime_ms);
	cr_expect(r->min_bandwidth > 1228800 && r->min_bandwidth < 1270000, "min bandwidth %g",
		  r->min_bandwidth);
	/* With a downtime-limit of 4 s (threshold 400.78 pages): converges.
	 * Round 1: floor((1000 - 400.78) / 10) + 1 = 60 windows, 400 pages
	 * left, of which 120 hot (A2: the scan sends hot and other pages in
	 * proportion).  Each sync then adds 300 x (1 - hot waiting / 300):
	 *   sync  added -> waiting  windows  left (hot)      t
	 *   2     180   -> 580      18       400 (206.90)    7.8
	 *   3     93.10 -> 493.10   10       393.10 (239.16) 8.8
	 *   4     60.84 -> 453.94   6        393.94 (260.35) 9.4
	 *   5     39.65 -> 433.59   4        393.59 (272.32) 9.8
	 *   6     27.68 -> 421.27   3        391.27 (278.64) 10.1
	 *   7     21.36 -> 412.63   2        392.63 (285.46) 10.3
	 *   8     14.54 -> 407.17   1        397.17 (292.63) 10.4
	 *   9     7.37  -> 404.54   1        394.54 (292.58) 10.5
	 *   10    7.42  -> 401.96   1        391.96 (292.54) 10.6
	 *   11    7.46  -> 399.42 < 400.78: stop-and-copy, sync 12,
	 * 399.42 pages at 100 pages/s: 3994.2 ms; total 14.594 s. */
	in.downtime_ms = 4000;
	cr_assert_eq(ms_precopy_forecast_compute(&in, &f, &why), 0);
	cr_expect_eq(f.verdict, MS_PRECOPY_CONVERGES);
	cr_expect_eq(r->iterations, 12);
	cr_expect(CLOSE(r->total_s, 14.594, 1e-4), "total %g", r->total_s);
	cr_expect(CLOSE(r->downtime_ms, 3994.2, 1e-4), "downtime %g", r->downtime_ms);
}

/* The interval straddles the boundary: the low curve (50 hot pages)
 * converges at 1.5 s (threshold 150.3 pages), the high one (300) does not. */
Test(precopy, an_interval_across_the_boundary_is_not_enough_data)
{
	const ms_growth_point c[] = {{0.1, 100, 50, 300}, {10, 100, 50, 300}};
	ms_precopy_input in = input(c, 2, 1500);
	ms_precopy_forecast f;
	const char *why;
	cr_assert_eq(ms_precopy_forecast_compute(&in, &f, &why), 0);
	cr_expect_eq(f.verdict, MS_PRECOPY_NOT_ENOUGH_DATA);
	cr_expect(f.run[MS_GROWTH_LOW].converges);
	cr_expect(f.run[MS_GROWTH_ESTIMATE].converges);
	cr_expect_not(f.run[MS_GROWTH_HIGH].converges);
	cr_expect_lt(f.run[MS_GROWTH_LOW].min_downtime_ms,
		     f.run[MS_GROWTH_HIGH].min_downtime_ms);
	/* Far from it on both sides, the verdict is firm. */
	in.downtime_ms = 6000;
	cr_assert_eq(ms_precopy_forecast_compute(&in, &f, &why), 0);
	cr_expect_eq(f.verdict, MS_PRECOPY_CONVERGES);
	in.downtime_ms = 200;
	cr_assert_eq(ms_precopy_forecast_compute(&in, &f, &why), 0);
	cr_expect_eq(f.verdict, MS_PRECOPY_DOES_NOT_CONVERGE);
}

/* QEMU sends each window's allowance as fast as the link goes, then
 * sleeps (R2).  A hot set of 5 pages, dirty within 5 ms (f(t) = 1000 t up
 * to 5), downtime-limit 30 ms: threshold 3.006 pages, less than the hot
 * set.  At the rate limit's pace (no faster link) sending 5 pages takes
 * 50 ms, in which all 5 are dirtied again: it never converges.  With a
 * link 100 times faster (41.04 MB/s):
 *   fast-forward: floor((1000 - 3.006) / 10) = 99 windows, t = 9.9 s,
 *   10 pages left; sent in 1 ms, then the window is slept out (t = 10);
 *   sync 2: f(10) = 5 -> 5 waiting; sent in 0.5 ms (t = 10.0005) with the
 *   window's allowance left, so sync 3 at once: f(0.0005) = 0.5 < 3.006:
 *   stop-and-copy (sync 4), 0.5 pages, 0.05 ms; total 10.00055 s;
 *   990 + 10 + 5 + 0.5 = 1005.5 pages, 4126572 bytes. */
Test(precopy, a_fast_link_sends_each_window_in_a_burst)
{
	const ms_growth_point c[] = {{0.005, 5, 5, 5}, {1, 5, 5, 5}};
	ms_precopy_input in = input(c, 2, 30);
	ms_precopy_run r;
	const char *why;
	cr_assert_eq(ms_precopy_run_one(&in, MS_GROWTH_ESTIMATE, &r, &why), 0);
	cr_expect_not(r.converges);
	cr_expect_eq(r.end, MS_PRECOPY_END_STALLED);
	in.link_bandwidth = 100 * BW;
	cr_assert_eq(ms_precopy_run_one(&in, MS_GROWTH_ESTIMATE, &r, &why), 0);
	cr_expect(r.converges);
	cr_expect_eq(r.iterations, 4);
	cr_expect(CLOSE(r.total_s, 10.00055, 1e-7), "total %.6f", r.total_s);
	cr_expect(CLOSE(r.downtime_ms, 0.05, 1e-6), "downtime %g", r.downtime_ms);
	cr_expect(CLOSE(r.transferred_bytes, 4126572, 1e-6), "bytes %g", r.transferred_bytes);
}

/* Every figure of migration/ at the edges of its inputs (one page of
 * memory and a petabyte; 1 byte/s and 1 PB/s; no downtime and the most
 * allowed; a curve of nothing, of one page, and of more pages than there
 * are): a verdict, and figures that are numbers or +inf (never NaN,
 * negative or -inf), from every run. */
Test(precopy, edges_of_the_inputs_give_defined_figures, .timeout = 120)
{
	const double mems[] = {PAGE, 1e15};
	const double bws[] = {1, BW, 1e15};
	const double downs[] = {0, 300, 2000000};
	const double limits[] = {0, 86400};
	const double links[] = {0, 1e15};
	const ms_growth_point idle[] = {{1, 0, 0, 0}};
	const ms_growth_point one[] = {{0.001, 1, 1, 1}};
	const ms_growth_point all[] = {{1, 1e15, 1e15, 1e15}, {2, 2e15, 2e15, 2e15}};
	const ms_growth_point flat[] = {{1e-9, 1e3, 0, 1e12}, {1e9, 1e3, 0, 1e12}};
	const struct {
		const ms_growth_point *c;
		size_t n;
	} curves[] = {{idle, 1}, {one, 1}, {all, 2}, {flat, 2}};

	for (size_t m = 0; m < G_N_ELEMENTS(mems); m++)
		for (size_t b = 0; b < G_N_ELEMENTS(bws); b++)
			for (size_t d = 0; d < G_N_ELEMENTS(downs); d++)
				for (size_t l = 0; l < G_N_ELEMENTS(limits); l++)
					for (size_t k = 0; k < G_N_ELEMENTS(curves) * 2; k++) {
						ms_precopy_input in = {
							.link_bandwidth = links[k % 2],
							.curve = curves[k / 2].c,
							.n = curves[k / 2].n,
							.memory_bytes = (uint64_t)mems[m],
							.page_size = PAGE,
							.bandwidth = bws[b],
							.downtime_ms = downs[d],
							.max_total_s = limits[l]};
						ms_precopy_forecast f;
						const char *why = NULL;
						int r = ms_precopy_forecast_compute(&in, &f, &why);
						cr_assert_eq(r, 0,
							     "mem %g bw %g down %g limit %g curve "
							     "%zu: %s",
							     mems[m], bws[b], downs[d], limits[l],
							     k, why ? why : "");
						cr_expect_lt((int)f.verdict,
							     (int)_MS_PRECOPY_VERDICT_MAX);
						for (int w = 0; w < _MS_GROWTH_MAX; w++) {
							const ms_precopy_run *x = &f.run[w];
							const double v[] = {x->total_s,
									    x->downtime_ms,
									    x->transferred_bytes,
									    x->min_bandwidth,
									    x->min_downtime_ms};
							for (size_t i = 0; i < G_N_ELEMENTS(v); i++)
								cr_expect(!isnan(v[i]) && v[i] >= 0,
									  "mem %g bw %g down %g "
									  "limit %g "
									  "curve %zu run %d figure "
									  "%zu: %g",
									  mems[m], bws[b], downs[d],
									  limits[l], k, w, i, v[i]);
						}
					}
}
