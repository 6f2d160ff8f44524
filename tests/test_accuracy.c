/* test_accuracy.c: measured dirty rates against the truth.
 *
 * The truth is the dirtier helper: exactly K distinct pages per second in a
 * resident region of known size.  A measurement samples n of the process's
 * N writable pages; the number found dirty is hypergeometric, so over several
 * samples sum(d) has mean sum(n_i * D_i / N_i) and a variance we can compute.
 * Each test allows 4.5 standard deviations (a correct build fails about once
 * in 150,000 runs) plus the few pages the helper's own stack and libc dirty,
 * and 1% for the helper writing in 1 ms steps.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <math.h>
#include <signal.h>
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
TestSuite(accuracy, .init = up, .fini = down, .timeout = 90);

typedef struct {
	double d, expect, var;
	double fresh, fresh_truth; /* pages counted exactly (pages_new) */
	bool scanned;		   /* the kernel's PAGEMAP_SCAN was used */
	double rate_sum, truth_sum;
	int samples;
	int inside_ci;
	double n_sum, N_sum;
	int precision_met; /* windows whose half-width met the precision asked */
	double n_max;	   /* the most pages a window drew */
	double old_rule;   /* the most sample_pages=512 would have drawn */
} tally;

/* The precision a collect checks, or none (rel and abs 0). */
static double asked_rel, asked_abs;

/* Waits for samples first..first+count-1 and adds them up against a truth
 * of k pages per second. */
static tally collect(pid_t pid, unsigned k, long first, int count)
{
	tally t = {0};
	for (long seq = first; seq < first + count; seq++) {
		char *text = sample_wait(&M, pid, seq, 30);
		cr_assert(text, "sample %ld never came", seq);
		double N, n, d, ms, rate, lo, hi, mib;
		cr_assert(sample_get(text, "pages_population", &N) &&
			  sample_get(text, "pages_sampled", &n) &&
			  sample_get(text, "pages_dirty", &d) &&
			  sample_get(text, "period_ms", &ms) && sample_get(text, "rate", &rate) &&
			  sample_get(text, "rate_ci95_low", &lo) &&
			  sample_get(text, "rate_ci95_high", &hi) &&
			  sample_get(text, "memory_mib", &mib));
		double D = k * ms / 1000.0; /* pages dirtied in this window */
		double fresh;
		cr_assert(sample_get(text, "pages_new", &fresh));
		t.fresh += fresh;
		t.fresh_truth += D;
		t.scanned = strstr(text, "method pagemap_scan") != NULL;
		double frac = D / N;
		double fpc = N > n ? (N - n) / (N - 1) : 0;
		t.d += d;
		t.expect += n * frac;
		t.var += n * frac * (1 - frac) * fpc;
		double truth = D * 4096 / 1048576.0 / (ms / 1000.0);
		t.rate_sum += rate;
		t.truth_sum += truth;
		t.inside_ci += lo <= truth && truth <= hi;
		t.samples++;
		t.n_sum += n;
		t.N_sum += N;
		t.n_max = fmax(t.n_max, n);
		/* sample_pages=512's rule (ms_sample_count): 512 per GiB, at
		 * least 256. */
		t.old_rule =
			fmax(t.old_rule, fmin(N, fmax(256, ceil(N * 4096 * 512 / 1073741824.0))));
		double half = fmax(rate - lo, hi - rate);
		bool met = half <= fmax(asked_rel * rate, asked_abs) + 0.005; /* 2 decimals */
		t.precision_met += met;
		if (asked_rel > 0 || asked_abs > 0)
			cr_log_info("sample %ld: half-width %.2f MiB/s, asked %.2f: %s", seq, half,
				    fmax(asked_rel * rate, asked_abs), met ? "met" : "not met");
		cr_log_info(
			"sample %ld: n=%.0f N=%.0f d=%.0f rate=%.2f [%.2f, %.2f] truth %.2f MiB/s",
			seq, n, N, d, rate, lo, hi, truth);
		free(text);
	}
	return t;
}

static void check(const tally *t, double n_per_page_noise)
{
	double sd = sqrt(t->var);
	/* The helper's stack and libc: a handful of pages per window. */
	double noise = n_per_page_noise;
	double tol = 4.5 * sd + 0.01 * t->expect;
	cr_log_info("dirty samples %.0f, expected %.1f (+ up to %.1f noise), sd %.1f, mean rate "
		    "%.2f, truth %.2f",
		    t->d, t->expect, noise, sd, t->rate_sum / t->samples,
		    t->truth_sum / t->samples);
	cr_expect(t->d >= t->expect - tol && t->d <= t->expect + noise + tol,
		  "found %.0f dirty samples, truth says %.1f +- %.1f (sd %.1f)", t->d, t->expect,
		  tol, sd);
}

static void run(unsigned region_mib, unsigned k, bool shared)
{
	helper = dirtier_start(region_mib, region_mib, k, shared ? "shared" : NULL);
	cr_assert_eq(track_pid(&M, helper, "sample_pages=16384"), 0);
	/* Skip sample 1: it may have started while tracking was set up. */
	tally t = collect(helper, k, 2, 5);
	/* Noise: up to 8 pages of its own per window, seen with probability n/N. */
	double n_over_N = 16384.0 / 262144.0;
	check(&t, 5 * 8 * n_over_N * 4);
}

Test(accuracy, low_rate_4_mib_s)
{
	run(1024, 1024, false);
}

Test(accuracy, high_rate_256_mib_s)
{
	run(1024, 65536, false);
}

Test(accuracy, shared_memfd_region)
{
	run(512, 8192, true);
}

Test(accuracy, non_resident_memory_stays_non_resident)
{
	/* 64 GiB reserved, 32 MiB of it resident. */
	helper = dirtier_start(64 << 10, 32, 256, NULL);
	long before = proc_status_kb(helper, "VmRSS");
	cr_assert_eq(track_pid(&M, helper, "sample_pages=16384"), 0);
	tally t = collect(helper, 256, 1, 3);
	long after = proc_status_kb(helper, "VmRSS");
	/* Nothing new became resident either. */
	cr_expect_lt(t.fresh, 3 * 16, "%.0f pages counted as newly resident", t.fresh);
	/* Reading the ~15,000 sampled non-resident pages would add ~60 MiB. */
	cr_expect(after - before < 1024, "VmRSS went from %ld to %ld kB", before, after);
	/* Untouched pages are not dirty: the rate stays that of the 256
	 * pages/s. */
	check(&t, 5 * 8 * 16384.0 / 262144.0 * 3);
}

Test(accuracy, growing_process_counts_new_pages)
{
	/* 2560 fresh pages a second (10 MiB/s) into untouched memory. */
	const unsigned k = 2560;
	helper = dirtier_start(1024, 16, k, "grow");
	cr_assert_eq(track_pid(&M, helper, "sample_pages=16384"), 0);
	tally t = collect(helper, k, 2, 4);
	if (!t.scanned) {
		/* Without PAGEMAP_SCAN the fresh pages are found by sampling
		 * the whole 1 GiB. */
		cr_log_info("no PAGEMAP_SCAN on this kernel: fresh pages are sampled");
		return;
	}
	/* Exact: the window's length times the rate, to the 1 ms steps and the
	 * few pages the helper's stack and libc add. */
	cr_log_info("pages_new %.0f, truth %.0f", t.fresh, t.fresh_truth);
	cr_expect(fabs(t.fresh - t.fresh_truth) <= 0.01 * t.fresh_truth + 4 * 16,
		  "counted %.0f new pages, truth %.0f", t.fresh, t.fresh_truth);
	/* And the rate says so: 10 MiB/s. */
	double rate = t.rate_sum / t.samples;
	cr_expect(fabs(rate - 10.0) < 0.3, "mean rate %.2f MiB/s for 10", rate);
}

/* ---- a precision asked ---- */

/* precision= ASKED on a process dirtying k of the pages of region_mib a
 * second: windows 3..8 (1 draws by sample_pages, 2 is planned from 1 alone)
 * against the truth, each window's half-width against the precision, and
 * the pages drawn against sample_pages=512's. */
static tally run_precision(unsigned region_mib, unsigned k, const char *asked)
{
	char line[64];

	helper = dirtier_start(region_mib, region_mib, k, NULL);
	snprintf(line, sizeof(line), "precision=%s", asked);
	cr_assert_eq(track_pid(&M, helper, line), 0);
	tally t = collect(helper, k, 3, 6);
	char *text = sample_wait(&M, helper, 8, 30);
	cr_assert(text);
	snprintf(line, sizeof(line), "\nprecision %s\n", asked);
	cr_expect(strstr(text, line), "the sample does not say the precision asked:\n%s", text);
	free(text);
	/* The helper's stack and libc: up to 8 pages a window, seen as often
	 * as a page is drawn. */
	check(&t, t.samples * 8 * t.n_sum / t.N_sum);
	/* A window's own fraction may come out above what the last ones
	 * found (then its interval is wider than planned): at most one of
	 * the six. */
	cr_expect_geq(t.precision_met, t.samples - 1, "%d of %d windows met precision=%s",
		      t.precision_met, t.samples, asked);
	return t;
}

/* 10% of 16 MiB/s: 1.6 MiB/s, met by reading about a tenth of 256 MiB. */
Test(accuracy, precision_relative_is_met)
{
	asked_rel = 0.10, asked_abs = 0;
	tally t = run_precision(256, 4096, "10%");
	cr_expect_lt(t.n_max, t.N_sum / t.samples / 2, "drew %.0f pages of %.0f", t.n_max,
		     t.N_sum / t.samples);
}

/* 1 MiB/s of a 16 MiB process writing 0.25 MiB/s: a quarter of the 256
 * pages sample_pages=512 draws at the least. */
Test(accuracy, precision_absolute_draws_fewer_pages)
{
	asked_rel = 0, asked_abs = 1.0;
	tally t = run_precision(16, 64, "1MiB/s");
	cr_expect_lt(t.n_max, t.old_rule, "drew up to %.0f pages, sample_pages=512 draws %.0f",
		     t.n_max, t.old_rule);
}

/* A relative precision of a rate near 0 needs (nearly) every page: drawn,
 * and said in status. */
Test(accuracy, precision_relative_at_rate_zero_says_what_it_costs)
{
	helper = dirtier_start(64, 64, 0, NULL);
	cr_assert_eq(track_pid(&M, helper, "precision=10%"), 0);
	char *text = sample_wait(&M, helper, 4, 30);
	cr_assert(text, "sample 4 never came");
	double N, n;
	cr_assert(sample_get(text, "pages_population", &N) &&
		  sample_get(text, "pages_sampled", &n));
	cr_expect_geq(n, N / 2, "drew %.0f of %.0f pages", n, N);
	free(text);
	/* A window that could not keep the period says that instead (a
	 * starved daemon): one of five windows saying it is enough. */
	char *status = NULL;
	bool said = false;
	for (long seq = 4; seq <= 8 && !said; seq++) {
		free(sample_wait(&M, helper, seq, 30));
		free(status);
		status = mread(&M, "%d/status", (int)helper);
		said = status && strstr(status, "precision 10% needs") &&
		       strstr(status, "an absolute part");
	}
	cr_expect(said, "status: %s", status);
	free(status);
}

/* Kernels before 6.7: drawn from all writable memory, residency from
 * pagemap entries. */
Test(accuracy, page_sampling_without_pagemap_scan)
{
	setenv("MEMSTATFS_NO_PAGEMAP_SCAN", "1", 1);
	mount_start(&M, NULL);
	unsetenv("MEMSTATFS_NO_PAGEMAP_SCAN");
	run(1024, 16384, false);
}

/* ---- a process that does not run ---- */

/* Sample seq of the helper, with its method. */
static char *sample_method(long seq, char *method, size_t len)
{
	char *text = sample_wait(&M, helper, seq, 30);
	cr_assert(text, "sample %ld never came", seq);
	const char *m = strstr(text, "\nmethod ");
	cr_assert(m);
	snprintf(method, len, "%.*s", (int)strcspn(m + 8, "\n"), m + 8);
	return text;
}

/* Stopped (SIGSTOP), the helper uses no CPU time: its windows are closed
 * without reading its memory, with 0 pages dirty.  Running again, it is
 * measured as before, against the pages and hashes kept meanwhile. */
Test(accuracy, a_stopped_process_is_idle_then_measured_again)
{
	/* 2560 pages/s of 16384: 10 MiB/s. */
	helper = dirtier_start(64, 64, 2560, NULL);
	cr_assert_eq(track_pid(&M, helper, "sample_pages=16384"), 0);
	char method[64];
	free(sample_method(2, method, sizeof(method)));
	cr_expect_str_neq(method, "idle", "a running process's window was idle");

	kill(helper, SIGSTOP);
	usleep(1500 * 1000);
	long from = sample_latest_seq(&M, helper) + 1; /* opened after the stop */
	for (long seq = from; seq < from + 2; seq++) {
		char *text = sample_method(seq, method, sizeof(method));
		double rate, dirty, sampled, exact;
		cr_assert(sample_get(text, "rate", &rate) &&
			  sample_get(text, "pages_dirty", &dirty) &&
			  sample_get(text, "pages_sampled", &sampled) &&
			  sample_get(text, "exact", &exact));
		cr_expect_str_eq(method, "idle", "stopped, sample %ld:\n%s", seq, text);
		cr_expect(rate == 0 && dirty == 0 && exact == 1, "stopped, sample %ld:\n%s", seq,
			  text);
		cr_expect_gt(sampled, 0);
		free(text);
	}

	long resumed = sample_latest_seq(&M, helper) + 1; /* open (kept, idle) at the SIGCONT */
	kill(helper, SIGCONT);
	/* It catches up on the writes it missed at once: that window, read
	 * against the pages and hashes kept while it was stopped, sees them. */
	char *text = sample_method(resumed, method, sizeof(method));
	if (strcmp(method, "idle") == 0) { /* it closed between readlink and kill */
		free(text);
		text = sample_method(++resumed, method, sizeof(method));
	}
	double dirty = 0;
	cr_expect(sample_get(text, "pages_dirty", &dirty) && dirty > 0,
		  "the first window after SIGCONT saw no writes:\n%s", text);
	cr_expect_str_neq(method, "idle");
	free(text);
	long next = resumed + 1;
	tally t = collect(helper, 2560, next, 4);
	free(sample_method(next, method, sizeof(method)));
	cr_expect_str_neq(method, "idle", "running again, still idle");
	check(&t, 4 * 8 * (16384.0 / 262144.0) * 4);
}

/* Shared writable memory can be written by others: never taken as idle. */
Test(accuracy, a_stopped_process_with_shared_memory_is_still_read)
{
	helper = dirtier_start(16, 16, 256, "shared");
	cr_assert_eq(track_pid(&M, helper, NULL), 0);
	free(sample_wait(&M, helper, 1, 30));
	kill(helper, SIGSTOP);
	usleep(1500 * 1000);
	long seq = sample_latest_seq(&M, helper) + 1;
	char method[64];
	free(sample_method(seq, method, sizeof(method)));
	cr_expect_str_neq(method, "idle");
	kill(helper, SIGCONT);
}
