/* test_exact.c: the exact modes (full-scan, soft-dirty) against the truth
 * of the dirtier helper, which writes exactly K distinct pages a second. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
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
TestSuite(exact, .init = up, .fini = down, .timeout = 90);

static void track(pid_t pid, const char *settings)
{
	int e = track_pid(&M, pid, settings);
	cr_assert_eq(e, 0, "track %d %s: %s", (int)pid, settings, strerror(e));
}

typedef struct {
	double dirty, fresh, truth; /* pages */
	double width;		    /* sum of the samples' sigmas, MiB/s */
	bool scanned;
} totals;

/* Adds up samples first..first+count-1 of pid against k pages a second. */
static totals collect(pid_t pid, unsigned k, long first, int count)
{
	totals t = {0};
	for (long seq = first; seq < first + count; seq++) {
		char *text = sample_wait(&M, pid, seq, 30);
		cr_assert(text, "sample %ld never came", seq);
		double d, fresh, ms, exact, lo, hi, rate;
		cr_assert(sample_get(text, "pages_dirty", &d) &&
			  sample_get(text, "pages_new", &fresh) &&
			  sample_get(text, "period_ms", &ms) && sample_get(text, "exact", &exact) &&
			  sample_get(text, "rate", &rate) &&
			  sample_get(text, "rate_ci95_low", &lo) &&
			  sample_get(text, "rate_ci95_high", &hi));
		cr_expect(strstr(text, "mode full-scan") || strstr(text, "mode soft-dirty"), "%s",
			  text);
		/* No sampling error: the interval is the timing's alone (the
		 * reads of a look took a while); `exact 1` claims 2%. */
		double truth_rate = k * 4096 / 1048576.0;
		if (exact == 1)
			cr_expect(fabs(rate - truth_rate) <=
					  0.02 * truth_rate + 16 * 4096 / 1048576.0 / (ms / 1000.0),
				  "a sample says exact but is %.2f MiB/s for %.2f:\n%s", rate,
				  truth_rate, text);
		t.width += (hi - lo) / 2 / 1.959964;
		t.dirty += d;
		t.fresh += fresh;
		t.truth += k * ms / 1000.0;
		t.scanned = strstr(text, "method pagemap_scan") != NULL;
		cr_log_info("sample %ld: dirty %.0f new %.0f in %.0f ms, truth %.0f", seq, d, fresh,
			    ms, k * ms / 1000.0);
		free(text);
	}
	return t;
}

/* Within 2% of the truth, plus the few pages a window of the helper's own
 * stack and libc dirty, plus 4.5 times the timing's sigma the samples
 * reported (sigma_mib: their sum, MiB/s over about a second each, so
 * about 256 pages per MiB/s). */
static void expect_close_within(double got, double truth, int windows, double sigma_mib)
{
	cr_expect(fabs(got - truth) <= 0.02 * truth + 16.0 * windows + 4.5 * sigma_mib * 256.0,
		  "counted %.0f dirty pages, truth %.0f (%+.2f%%)", got, truth,
		  100.0 * (got - truth) / truth);
}
#define expect_close(got, truth, windows) expect_close_within(got, truth, windows, t.width)

static void full_scan(unsigned region_mib, unsigned k, const char *how)
{
	helper = dirtier_start(region_mib, region_mib, k, how);
	track(helper, "mode=full-scan");
	totals t = collect(helper, k, 2, 3);
	expect_close(t.dirty + t.fresh, t.truth, 3);
}

Test(exact, full_scan_1024_pages_per_second)
{
	full_scan(256, 1024, NULL);
}

Test(exact, full_scan_16384_pages_per_second)
{
	full_scan(256, 16384, NULL);
}

Test(exact, full_scan_65536_pages_per_second_in_1_gib)
{
	full_scan(1024, 65536, NULL);
}

Test(exact, full_scan_shared_memfd)
{
	full_scan(256, 8192, "shared");
}

Test(exact, full_scan_counts_a_growing_region)
{
	helper = dirtier_start(1024, 16, 4096, "grow");
	track(helper, "mode=full-scan");
	totals t = collect(helper, 4096, 2, 3);
	cr_expect_gt(t.fresh, 0.9 * t.truth, "fresh pages are counted as new");
	expect_close(t.dirty + t.fresh, t.truth, 3);
}

Test(exact, full_scan_never_faults_pages_in)
{
	/* 64 GiB reserved, 32 MiB resident. */
	helper = dirtier_start(64 << 10, 32, 256, NULL);
	long before = proc_status_kb(helper, "VmRSS");
	track(helper, "mode=full-scan");
	totals t = collect(helper, 256, 1, 3);
	long after = proc_status_kb(helper, "VmRSS");
	cr_expect(after - before < 1024, "VmRSS went from %ld to %ld kB", before, after);
	cr_expect_lt(t.fresh, 3 * 16.0);
}

Test(exact, mode_switch_takes_effect_at_the_next_period)
{
	helper = dirtier_start(64, 64, 2048, NULL);
	track(helper, "");
	free(sample_wait(&M, helper, 2, 10));
	char *mode = mpath(&M, "%d/mode", (int)helper);
	cr_assert_eq(write_file(mode, "full-scan\n"), 0);
	char *latest = mpath(&M, "%d/samples/latest", (int)helper);
	cr_expect(wait_content(mode, "full-scan\n", 1));
	bool switched = false;
	for (double end = now_s() + 10; now_s() < end && !switched; usleep(100000)) {
		char *t = read_file(latest);
		double n = 0, N = -1;
		/* A census (exact 1 only when its reads were quick, too). */
		switched = t && strstr(t, "mode full-scan") && sample_get(t, "pages_sampled", &n) &&
			   sample_get(t, "pages_population", &N) && n == N;
		free(t);
	}
	cr_expect(switched, "no full-scan sample after switching");
	free(mode);
	free(latest);
}

Test(exact, process_exiting_mid_scan_ends_exited)
{
	/* A 1 GiB scan takes a good fraction of a second here: kill the
	 * process at different points of it. */
	for (int i = 0; i < 3; i++) {
		helper = dirtier_start(1024, 1024, 4096, NULL);
		track(helper, "mode=full-scan");
		usleep(150000 + 230000 * (useconds_t)i);
		pid_t gone = helper;
		proc_kill(helper);
		helper = 0;
		char *st = mpath(&M, "%d/status", (int)gone);
		cr_expect(wait_content(st, "exited\n", 10), "pid %d did not end exited", (int)gone);
		free(st);
	}
	/* And the daemon is fine. */
	char *p = mpath(&M, "meminfo/memtotal");
	char *t = read_file(p);
	cr_expect(t && atol(t) > 0);
	free(t);
	free(p);
}

Test(exact, soft_dirty_is_offered_only_where_the_kernel_tracks_it)
{
	bool has = kernel_has_soft_dirty();
	helper = dirtier_start(64, 64, 2048, NULL);
	int e = track_pid(&M, helper, "mode=soft-dirty");
	if (!has) {
		/* Printed whatever the verbosity: the live test did not run. */
		fprintf(stderr, "exact: this kernel does not track soft-dirty; checking that the "
				"mode is refused instead of measuring with it\n");
		cr_expect_eq(e, EOPNOTSUPP, "track mode=soft-dirty: %s", strerror(e));
		char *log = read_file(M.log);
		cr_expect(log && strstr(log, "soft-dirty") && strstr(log, "CONFIG_MEM_SOFT_DIRTY"),
			  "the log says why: %s", log);
		free(log);
		/* Nor can a tracked target switch to it. */
		track(helper, "");
		char *mode = mpath(&M, "%d/mode", (int)helper);
		cr_expect_eq(write_file(mode, "soft-dirty\n"), EOPNOTSUPP);
		char *m = read_file(mode);
		cr_expect_str_eq(m, "page-sampling\n");
		free(m);
		free(mode);
		return;
	}
	cr_assert_eq(e, 0, "track mode=soft-dirty: %s", strerror(e));
	totals t = collect(helper, 2048, 2, 3);
	expect_close(t.dirty, t.truth, 3);
}

/* Kernels before 6.7 have no PAGEMAP_SCAN: resident pages come from reading
 * pagemap entries instead.  The daemon takes that path when told to. */
Test(exact, full_scan_without_pagemap_scan)
{
	setenv("MEMSTATFS_NO_PAGEMAP_SCAN", "1", 1);
	mount_start(&M, NULL);
	unsetenv("MEMSTATFS_NO_PAGEMAP_SCAN");
	helper = dirtier_start(256, 256, 16384, NULL);
	track(helper, "mode=full-scan");
	totals t = collect(helper, 16384, 2, 3);
	cr_expect_not(t.scanned, "the pagemap path was used");
	expect_close(t.dirty + t.fresh, t.truth, 3);
}
