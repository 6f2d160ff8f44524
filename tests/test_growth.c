/* test_growth.c: the growth curve f(t) (<pid>/growth) against the truth of
 * the dirtier helper, which writes exactly K distinct pages a second
 * cycling through its touched pages in a fixed order, so that the distinct
 * pages written within t seconds are min(K t, touched pages); and the
 * migration/ files: settings, errors, verdicts far from the boundary,
 * metrics. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <glib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

static mount_t M;
static pid_t helper;
static void up(void)
{
	mount_start(&M, NULL);
}
static void down(void)
{
	proc_kill(helper);
	helper = 0;
	mount_stop(&M);
}
TestSuite(growth, .init = up, .fini = down, .timeout = 120);

#define MAXPTS 16
typedef struct {
	int n;
	double t[MAXPTS], pages[MAXPTS], mib[MAXPTS], lo[MAXPTS], hi[MAXPTS];
} curve;

/* Parses a growth file; false when it has no line yet. */
static bool parse(const char *text, curve *c)
{
	memset(c, 0, sizeof(*c));
	g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
	for (char **l = lines; *l && **l; l++) {
		cr_assert_lt(c->n, MAXPTS, "too many lines: %s", text);
		int k = c->n;
		cr_assert_eq(sscanf(*l, "%lf %lf %lf %lf %lf", &c->t[k], &c->pages[k], &c->mib[k],
				    &c->lo[k], &c->hi[k]),
			     5, "not \"t_s pages mib ci95_low ci95_high\": %s", *l);
		cr_expect(c->lo[k] <= c->pages[k] && c->pages[k] <= c->hi[k], "%s", *l);
		cr_expect(k == 0 || c->t[k] > c->t[k - 1], "t not increasing: %s", text);
		cr_expect(k == 0 || c->pages[k] >= c->pages[k - 1], "f not monotone: %s", text);
		cr_expect(fabs(c->mib[k] - c->pages[k] * 4096 / 1048576.0) < 0.01, "%s", *l);
		c->n++;
	}
	return c->n > 0;
}

/* Waits for a curve other than the one in *last (text): a new window's. */
static void next_curve(pid_t pid, char **last, curve *c)
{
	g_autofree char *path = mpath(&M, "%d/growth", (int)pid);
	for (double t0 = now_s(); now_s() - t0 < 40;) {
		char *text = read_file(path);
		cr_assert(text, "read %s: %s", path, strerror(errno));
		if (parse(text, c) && (!*last || strcmp(text, *last) != 0)) {
			free(*last);
			*last = text;
			cr_log_info("curve:\n%s", text);
			return;
		}
		free(text);
		usleep(200000);
	}
	cr_assert_fail("no new growth curve within 40 s");
}

/* Averages `windows` curves of pid; per point, the truth min(k t, touched)
 * must be within 4.5 standard errors of the mean (the standard error from
 * the reported intervals, sigma = half-width / 1.96), plus slack pages a
 * window for what the helper's stack and libc dirty, 3%, and the pages of
 * a 50 ms lag: the helper catches up when it was not run on time, and it
 * and the daemon's looks share two busy cores (the 20 ms wake-up grid,
 * a look's own length). */
static void check_truth(pid_t pid, unsigned k, double touched, int windows, double slack,
			bool exact)
{
	curve c, sum = {0};
	double var[MAXPTS] = {0};
	char *last = NULL;

	next_curve(pid, &last, &c); /* the first may predate the settings */
	for (int w = 0; w < windows; w++) {
		next_curve(pid, &last, &c);
		cr_assert_geq(c.n, 5, "a ladder from 0.1 s to 4 periods has 6 steps");
		sum.n = w == 0 ? c.n : MIN(sum.n, c.n);
		for (int i = 0; i < c.n; i++) {
			sum.t[i] += c.t[i];
			sum.pages[i] += c.pages[i];
			double s = (c.hi[i] - c.lo[i]) / 2 / 1.96;
			var[i] += s * s;
			if (exact)
				cr_expect_eq(c.lo[i], c.hi[i], "an exact curve has no interval");
		}
	}
	free(last);
	cr_expect(fabs(sum.t[0] / windows - 0.1) < 0.1, "the ladder starts near 0.1 s");
	for (int i = 0; i < sum.n; i++) {
		double t = sum.t[i] / windows, f = sum.pages[i] / windows;
		double se = sqrt(var[i]) / windows;
		double truth = MIN(k * t, touched);
		/* Past the plateau by more than the lag, every page is dirty
		 * whatever the lag. */
		double lag = k * t < touched + k * 0.05 ? k * 0.05 : 0;
		double tol = 4.5 * se + slack + 0.03 * truth + lag;
		cr_log_info("t %.3f: f %.0f, truth %.0f, se %.1f", t, f, truth, se);
		cr_expect(fabs(f - truth) <= tol, "f(%.3f) = %.0f, truth %.0f (tolerance %.0f)", t,
			  f, truth, tol);
	}
}

/* A file of the tree, read whole (caller frees), or NULL with errno. */
static char *rd(const char *fmt, int pid)
{
	g_autofree char *rel = g_strdup_printf(fmt, pid);
	g_autofree char *path = mpath(&M, "%s", rel);
	return read_file(path);
}

static void track(pid_t pid, const char *settings)
{
	int e = track_pid(&M, pid, settings);
	cr_assert_eq(e, 0, "track %d %s: %s", (int)pid, settings, strerror(e));
}

/* Uniform: 2000 distinct pages a second over 32 MiB (8192 pages): f grows
 * as 2000 t over the whole ladder (3.2 s: 6400 pages). */
Test(growth, uniform_page_sampling_follows_k_t)
{
	helper = dirtier_start(64, 32, 2000, NULL);
	track(helper, "sample_pages=16384");
	check_truth(helper, 2000, 8192, 3, 24, false);
}

Test(growth, uniform_full_scan_is_exact)
{
	helper = dirtier_start(64, 32, 2000, NULL);
	track(helper, "mode=full-scan");
	check_truth(helper, 2000, 8192, 2, 24, true);
}

/* A hot set: 8000 pages a second over 4 MiB (1024 pages), rewritten every
 * 0.128 s: f reaches the plateau of 1024 pages from the second step on,
 * far below the rate x t (25600 pages at 3.2 s). */
Test(growth, hot_set_shows_the_plateau)
{
	helper = dirtier_start(64, 4, 8000, NULL);
	track(helper, "sample_pages=16384");
	check_truth(helper, 8000, 1024, 3, 24, false);
	curve c;
	char *last = NULL;
	next_curve(helper, &last, &c);
	free(last);
	cr_expect(c.pages[c.n - 1] < 1.5 * 1024, "no plateau: f(%.1f) = %.0f", c.t[c.n - 1],
		  c.pages[c.n - 1]);
}

static void expect_write(pid_t pid, const char *file, const char *text, int err)
{
	g_autofree char *path = mpath(&M, "%d/migration/%s", (int)pid, file);
	int e = write_file(path, text);
	cr_expect_eq(e, err, "write \"%s\" to %s: %s, expected %s", text, file, strerror(e),
		     strerror(err));
}

static void expect_content(pid_t pid, const char *file, const char *want)
{
	g_autofree char *path = mpath(&M, "%d/migration/%s", (int)pid, file);
	g_autofree char *got = read_file(path);
	cr_assert(got, "read %s: %s", path, strerror(errno));
	cr_expect_str_eq(got, want, "%s", file);
}

Test(growth, settings_take_suffixes_and_refuse_bad_values)
{
	helper = dirtier_start(16, 8, 100, NULL);
	track(helper, NULL);
	expect_content(helper, "bandwidth", "33554432\n"); /* QEMU 7.2's default */
	expect_content(helper, "downtime_ms", "300\n");
	expect_content(helper, "link_bandwidth", "0\n");
	static const struct {
		const char *in, *out;
	} ok[] = {{"10G\n", "10000000000\n"}, {"1Gi", "1073741824\n"},	 {"125M", "125000000\n"},
		  {"64Ki", "65536\n"},	      {"3T", "3000000000000\n"}, {"1", "1\n"},
		  {"2Ti", "2199023255552\n"}};
	for (size_t i = 0; i < G_N_ELEMENTS(ok); i++) {
		expect_write(helper, "bandwidth", ok[i].in, 0);
		expect_content(helper, "bandwidth", ok[i].out);
	}
	static const char *const bad[] = {"0",	  "abc", "10Q",	  "1.5G",    "-1",  "G",
					  "10 G", "10g", "2000T", "10G 20G", "1KiB"};
	for (size_t i = 0; i < G_N_ELEMENTS(bad); i++)
		expect_write(helper, "bandwidth", bad[i], EINVAL);
	expect_content(helper, "bandwidth", "2199023255552\n"); /* unchanged */
	expect_write(helper, "downtime_ms", "2000000", 0);
	expect_write(helper, "downtime_ms", "2000001", EINVAL);
	expect_write(helper, "downtime_ms", "1s", EINVAL);
	expect_write(helper, "downtime_ms", "0", 0);
	expect_content(helper, "downtime_ms", "0\n");
	expect_write(helper, "link_bandwidth", "0", 0);
	expect_write(helper, "link_bandwidth", "1G", 0);
	expect_content(helper, "link_bandwidth", "1000000000\n");
	expect_content(helper, "max_total_s", "0\n");
	expect_write(helper, "max_total_s", "600", 0);
	expect_content(helper, "max_total_s", "600\n");
	expect_write(helper, "max_total_s", "86401", EINVAL);
	expect_write(helper, "max_total_s", "1.5", EINVAL);
	/* A track line takes them too. */
	track(helper, "bandwidth=5Mi downtime_ms=50");
	expect_content(helper, "bandwidth", "5242880\n");
	expect_content(helper, "downtime_ms", "50\n");
	cr_expect_eq(track_pid(&M, helper, "bandwidth=x"), EINVAL);
	/* Results before the first curve. */
	g_autofree char *model = rd("%d/migration/model", (int)helper);
	cr_expect(model && strstr(model, "pre-copy"), "%s", model);
}

/* 2000 pages a second over 32 MiB: 7.8 MiB/s, a plateau-free curve.  At
 * 1 GB/s the migration converges in well under a second; at 1 MB/s the
 * first round alone takes 33 s, by when every page is dirty again. */
Test(growth, verdicts_far_from_the_boundary_and_metrics)
{
	helper = dirtier_start(64, 32, 2000, NULL);
	track(helper, "sample_pages=16384 bandwidth=1G downtime_ms=300");
	g_autofree char *vpath = mpath(&M, "%d/migration/verdict", (int)helper);
	g_autofree char *verdict = NULL;
	cr_expect(wait_content(vpath, "converges", 30), "verdict never converges");
	g_autofree char *total = rd("%d/migration/total_s", (int)helper);
	double e, lo, hi;
	cr_assert(total && sscanf(total, "%lf %lf %lf", &e, &lo, &hi) == 3, "%s", total);
	cr_expect(e > 0 && e < 5, "total_s %s", total);
	g_autofree char *bytes = rd("%d/migration/transferred_bytes", (int)helper);
	cr_assert(bytes && sscanf(bytes, "%lf %lf %lf", &e, &lo, &hi) == 3, "%s", bytes);
	/* At least the first round: all resident writable pages, with headers. */
	cr_expect(e >= 32 * 1048576.0, "transferred %s", bytes);
	g_autofree char *metrics = rd("metrics", 0);
	g_autofree char *want = g_strdup_printf(
		"memstat_migration_verdict{target=\"%d\",kind=\"process\",verdict=\"converges\"} 1",
		(int)helper);
	cr_expect(metrics && strstr(metrics, want), "metrics lack %s", want);

	expect_write(helper, "bandwidth", "1M", 0);
	cr_expect(wait_content(vpath, "does-not-converge", 5), "verdict at 1 MB/s: %s",
		  (verdict = read_file(vpath)));
	g_autofree char *minbw = rd("%d/migration/min_bandwidth", (int)helper);
	cr_assert(minbw && sscanf(minbw, "%lf", &e) == 1, "%s", minbw);
	/* Between the bandwidth that does not converge and the one that does. */
	cr_expect(e > 1e6 && e < 1e9, "min_bandwidth %s", minbw);
}

/* Nobody asks: no growth is measured (the files exist; growth is empty). */
Test(growth, nothing_measured_until_asked)
{
	helper = dirtier_start(16, 8, 100, NULL);
	track(helper, NULL);
	free(sample_wait(&M, helper, 3, 30));
	g_autofree char *metrics = rd("metrics", 0);
	cr_expect(metrics && !strstr(metrics, "memstat_migration_verdict{"), "%s", metrics);
	g_autofree char *g = rd("%d/growth", (int)helper);
	cr_expect(g && g[0] == '\0', "a growth curve nobody asked for: %s", g);
	g_autofree char *total = rd("%d/migration/total_s", (int)helper);
	cr_expect(!total && errno == ENODATA, "total_s before a curve: %s", strerror(errno));
}
