/* test_cgroup.c: containers tracked by their cgroup, without an engine.
 *
 * The tests make their own cgroups (a directory under the cgroup v2 mount
 * and under v1's memory hierarchy, where this host has them), start the
 * dirtier helper in them (moved in before it touches memory), track the
 * directory and hold the figures against the truth the helpers write: K
 * distinct pages a second, and for a shared file written by two of them,
 * each its own half, 2K distinct pages however many processes map them.
 * The allowance is the one of test_accuracy.c: 4.5 standard deviations of
 * the hypergeometric count over several windows, plus the few pages the
 * helpers' own stacks dirty.  Everything made is removed in the fini.
 * test_container.c does the same with a podman container.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <glib.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

static mount_t M;
static char cgs[16][256];
static int ncgs;
static char shared_file[256];

static void up(void)
{
	mount_start(&M, "allow_other");
}

static void down(void)
{
	kill_kept();
	/* A cgroup is removable once its killed processes are reaped. */
	for (int i = ncgs - 1; i >= 0; i--) {
		for (int t = 0; t < 100 && rmdir(cgs[i]) != 0 && errno == EBUSY; t++)
			usleep(20000);
	}
	ncgs = 0;
	if (shared_file[0])
		unlink(shared_file);
	shared_file[0] = '\0';
	mount_stop(&M);
}
TestSuite(cgroup, .init = up, .fini = down, .timeout = 120);

/* A new cgroup under this host's v2 (or v1 memory) hierarchy; skips, saying
 * why, when there is none. */
static const char *make_cgroup(bool v2, const char *leaf)
{
	const char *root = cgroup_root(v2);

	if (!*root) {
		fprintf(stderr, "skipped: this host mounts no cgroup %s\n",
			v2 ? "v2 hierarchy" : "v1 memory hierarchy");
		skip_test_after(down, "no cgroup %s", v2 ? "v2" : "v1 memory hierarchy");
	}
	cr_assert(ncgs < (int)G_N_ELEMENTS(cgs));
	char *d = cgs[ncgs];
	snprintf(d, sizeof(cgs[0]), "%s/memstat-test-%d-%s", root, (int)getpid(), leaf);
	cr_assert(mkdir(d, 0755) == 0, "mkdir %s: %s", d, strerror(errno));
	ncgs++;
	return d;
}

/* A cgroup under parent, removed in the fini before it. */
static const char *make_sub(const char *parent, const char *name)
{
	cr_assert(ncgs < (int)G_N_ELEMENTS(cgs));
	char *d = cgs[ncgs];
	snprintf(d, sizeof(cgs[0]), "%s/%s", parent, name);
	cr_assert(mkdir(d, 0755) == 0, "mkdir %s: %s", d, strerror(errno));
	ncgs++;
	return d;
}

static int track(const char *line)
{
	return write_file(mpath(&M, "track"), line);
}

/* Sample seq of target name, or fails. */
static char *sample_of(const char *name, long seq)
{
	char *text = sample_wait_name(&M, name, seq, 30);
	cr_assert(text, "sample %ld of %s never came", seq, name);
	return text;
}

typedef struct {
	double d, expect, var, noise;
	double rate_sum, truth_sum;
	int samples;
} tally;

/* Samples first..first+count-1 of name against k distinct pages a second
 * dirtied by procs processes (each with a few pages of its own stack). */
static tally collect(const char *name, double k, int processes, long first, int count)
{
	tally t = {0};
	for (long seq = first; seq < first + count; seq++) {
		g_autofree char *text = sample_of(name, seq);
		double N, n, d, ms, rate, lo, hi, p;
		cr_assert(sample_get(text, "pages_population", &N) &&
				  sample_get(text, "pages_sampled", &n) &&
				  sample_get(text, "pages_dirty", &d) &&
				  sample_get(text, "period_ms", &ms) &&
				  sample_get(text, "rate", &rate) &&
				  sample_get(text, "rate_ci95_low", &lo) &&
				  sample_get(text, "rate_ci95_high", &hi) &&
				  sample_get(text, "processes", &p),
			  "sample %ld: %s", seq, text);
		cr_expect_eq((int)p, processes, "sample %ld covered %.0f processes, not %d", seq, p,
			     processes);
		double D = k * ms / 1000.0;
		double frac = MIN(D / N, 1.0);
		double fpc = N > n ? (N - n) / (N - 1) : 0;
		t.d += d;
		t.expect += n * frac;
		t.var += n * frac * (1 - frac) * fpc;
		/* Up to 8 pages of each helper's own a window, seen at n/N. */
		t.noise += 8.0 * processes * n / N;
		double truth = D * 4096 / 1048576.0 / (ms / 1000.0);
		t.rate_sum += rate;
		t.truth_sum += truth;
		t.samples++;
		cr_log_info("%s sample %ld: n=%.0f N=%.0f d=%.0f rate=%.2f [%.2f, %.2f] truth %.2f",
			    name, seq, n, N, d, rate, lo, hi, truth);
	}
	return t;
}

static void check(const tally *t)
{
	double sd = sqrt(t->var);
	double tol = 4.5 * sd + 0.01 * t->expect;
	cr_log_info("dirty %.0f, expected %.1f (+ %.1f noise), sd %.1f; mean rate %.2f, truth %.2f",
		    t->d, t->expect, t->noise, sd, t->rate_sum / t->samples,
		    t->truth_sum / t->samples);
	cr_expect(t->d >= t->expect - tol && t->d <= t->expect + t->noise + tol,
		  "found %.0f dirty pages, the truth says %.1f +- %.1f (sd %.1f)", t->d, t->expect,
		  tol, sd);
}

static void one_dirtier(bool v2)
{
	const char *cg = make_cgroup(v2, "one");
	const char *in[] = {cg, NULL};
	const unsigned k = 2000;

	keep(dirtier_start_in(in, 64, 32, k, NULL));
	g_autofree char *line = g_strdup_printf("%s name=one sample_pages=16384", cg);
	cr_assert_eq(track(line), 0);
	tally t = collect("one", k, 1, 2, 5);
	check(&t);
	g_autofree char *metrics = read_file(mpath(&M, "metrics"));
	cr_expect(metrics && strstr(metrics, "target=\"one\",kind=\"container\""),
		  "metrics: kind=\"container\"");

	/* The cgroup's own figures. */
	g_autofree char *cur = read_file(mpath(&M, "one/memory/current"));
	g_autofree char *anon = read_file(mpath(&M, "one/memory/anon"));
	if (v2 && !cur) {
		/* Hybrid hosts: v2 without the memory controller, and no v1
		 * memory directory of that name. */
		cr_log_info("no memory/current: no memory controller for %s", cg);
	} else {
		cr_assert(cur && anon, "memory/current and memory/anon of %s", cg);
		cr_expect(strtoull(anon, NULL, 10) >= 32ull << 20,
			  "memory/anon %s: the 32 MiB the dirtier touched are charged here", anon);
	}
}

Test(cgroup, a_v2_cgroup_dirtier_within_its_interval)
{
	one_dirtier(true);
	if (*cgroup_root(true)) {
		/* PSI where the kernel has it: the eight figures. */
		g_autofree char *p = g_strdup_printf("%s/memory.pressure", cgs[0]);
		if (access(p, R_OK) == 0) {
			g_autofree char *v = read_file(mpath(&M, "one/pressure/some_avg10"));
			g_autofree char *tot = read_file(mpath(&M, "one/pressure/full_total"));
			cr_expect(v && tot, "pressure/some_avg10 and full_total");
		}
	}
}

Test(cgroup, a_v1_memory_cgroup_dirtier_within_its_interval)
{
	one_dirtier(false);
	g_autofree char *max = read_file(mpath(&M, "one/memory/max"));
	cr_expect(max && strcmp(max, "max\n") == 0, "v1's unlimited memory/max reads max: %s", max);
}

Test(cgroup, without_pagemap_scan_as_before_linux_6_7)
{
	/* A daemon that takes the path of kernels without PAGEMAP_SCAN. */
	mount_stop(&M);
	setenv("MEMSTATFS_NO_PAGEMAP_SCAN", "1", 1);
	mount_start(&M, "allow_other");
	unsetenv("MEMSTATFS_NO_PAGEMAP_SCAN");
	one_dirtier(true);
	g_autofree char *text = sample_of("one", 6);
	cr_expect(strstr(text, "method cgroup+pagemap+pfn"), "%s", text);
}

Test(cgroup, shared_pages_count_once)
{
	const char *cg = make_cgroup(true, "shared");
	const char *in[] = {cg, NULL};
	const unsigned k = 1000;

	/* One 32 MiB file (shmem where TMPDIR is a tmpfs, the page cache
	 * otherwise), mapped whole by both, each writing its own half. */
	snprintf(shared_file, sizeof(shared_file), "%s/memstat-shared-%d", tmp_dir(),
		 (int)getpid());
	cr_assert(sh_out(NULL, "truncate -s 32M %s", shared_file) == 0);
	g_autofree char *a = g_strdup_printf("file=%s,part=0/2", shared_file);
	g_autofree char *b = g_strdup_printf("file=%s,part=1/2", shared_file);
	keep(dirtier_start_in(in, 32, 32, k, a));
	keep(dirtier_start_in(in, 32, 32, k, b));
	g_autofree char *line = g_strdup_printf("%s name=shared sample_pages=16384", cg);
	cr_assert_eq(track(line), 0);
	tally t = collect("shared", 2.0 * k, 2, 2, 5);
	check(&t);
	/* The 8192 pages are one population, not one per process. */
	g_autofree char *text = sample_of("shared", 6);
	double N;
	cr_assert(sample_get(text, "pages_population", &N));
	cr_expect(N >= 8192 && N < 8192 * 1.5, "population %.0f pages: the file's 8192 once", N);
}

Test(cgroup, full_scan_counts_shared_pages_once_exactly)
{
	const char *cg = make_cgroup(true, "exact");
	const char *in[] = {cg, NULL};
	const unsigned k = 1000;

	snprintf(shared_file, sizeof(shared_file), "%s/memstat-shared-%d", tmp_dir(),
		 (int)getpid());
	cr_assert(sh_out(NULL, "truncate -s 16M %s", shared_file) == 0);
	g_autofree char *a = g_strdup_printf("file=%s,part=0/2", shared_file);
	g_autofree char *b = g_strdup_printf("file=%s,part=1/2", shared_file);
	keep(dirtier_start_in(in, 16, 16, k, a));
	keep(dirtier_start_in(in, 16, 16, k, b));
	g_autofree char *line = g_strdup_printf("%s name=exact mode=full-scan", cg);
	cr_assert_eq(track(line), 0);
	double dirty = 0, truth = 0;
	for (long seq = 2; seq < 6; seq++) {
		g_autofree char *text = sample_of("exact", seq);
		double d, fresh, ms, exact, n, N, wmin, wmax;
		cr_assert(sample_get(text, "pages_dirty", &d) &&
			  sample_get(text, "pages_new", &fresh) &&
			  sample_get(text, "period_ms", &ms) && sample_get(text, "exact", &exact) &&
			  sample_get(text, "pages_sampled", &n) &&
			  sample_get(text, "pages_population", &N) &&
			  sample_get(text, "window_min_ms", &wmin) &&
			  sample_get(text, "window_max_ms", &wmax));
		/* Every read is timed: the 8192 mappings' reads spread the
		 * frames' windows (tens of ms here), and a census is exact
		 * only when they agree within 2% (usually not, here). */
		cr_expect(wmin < wmax, "a census's reads were not timed:\n%s", text);
		cr_expect_eq(exact, wmax - wmin <= 0.02 * ms, "%s", text);
		cr_expect_eq(n, N, "full-scan looks at every distinct frame");
		cr_expect(N >= 4096 && N < 4096 * 1.5, "population %.0f: the file's 4096 once", N);
		dirty += d + fresh;
		truth += 2.0 * k * ms / 1000.0;
	}
	/* 2% of the truth (the helpers write in 1 ms steps, and the frames'
	 * windows spread by a few %, read in a random order: about as many
	 * pages too many as too few), and a few pages of their own stacks a
	 * window each. */
	cr_expect(fabs(dirty - truth) <= 0.02 * truth + 4 * 2 * 8, "%.0f dirty pages, truth %.0f",
		  dirty, truth);
	cr_log_info("full-scan: %.0f dirty pages in 4 windows, truth %.0f", dirty, truth);
}

/* ---- the growth curve over the members' union ---- */

/* Averages `windows` growth curves of name (after the first, which may
 * predate the helpers' steady state); per point, the truth
 * n_procs x min(k t, own) must be within 4.5 standard errors of the mean
 * (sigma = half the reported 95% interval / 1.96), plus 3%, slack pages
 * a window (the helpers' stacks and libc) and a 50 ms lag per helper (as
 * test_growth.c).  An exact curve has no interval. */
static void growth_truth(const char *name, int procs, double k, double own, int windows,
			 double slack, bool exact)
{
	double t[GROWTH_MAX_STEPS], f[GROWTH_MAX_STEPS], var[GROWTH_MAX_STEPS];
	g_autofree char *path = mpath(&M, "%s/growth", name);
	int n = growth_mean(path, windows, 60, exact, t, f, var);
	cr_assert_geq(n, 5, "a ladder from 0.1 s to 4 periods has 6 steps");
	for (int i = 0; i < n; i++) {
		double truth = procs * MIN(k * t[i], own);
		double lag = k * t[i] < own + k * 0.05 ? procs * k * 0.05 : 0;
		double tol = 4.5 * sqrt(var[i]) + 0.03 * truth + slack + lag;
		cr_log_info("%s t %.3f: f %.0f, truth %.0f, tolerance %.0f", name, t[i], f[i],
			    truth, tol);
		cr_expect(fabs(f[i] - truth) <= tol,
			  "%s: f(%.3f) = %.0f, truth %.0f (tolerance %.0f)", name, t[i], f[i],
			  truth, tol);
	}
}

/* Two members, each writing 2000 distinct pages a second of its own 32 MiB
 * (8192 pages): the union dirties 4000 t pages within t (12800 at 3.2 s,
 * under the 16384 they touch).  The forecast is there for a cgroup too. */
Test(cgroup, growth_of_two_members_holds_the_truth)
{
	const char *cg = make_cgroup(true, "growth");
	const char *in[] = {cg, NULL};

	keep(dirtier_start_in(in, 32, 32, 2000, NULL));
	keep(dirtier_start_in(in, 32, 32, 2000, NULL));
	g_autofree char *line = g_strdup_printf("%s name=grow sample_pages=16384 bandwidth=1G", cg);
	cr_assert_eq(track(line), 0);
	growth_truth("grow", 2, 2000, 8192, 2, 2 * 24, false);
	/* 64 MiB at 1 GB/s, 16 MB/s dirtied: converges. */
	g_autofree char *vpath = mpath(&M, "grow/migration/verdict");
	g_autofree char *tpath = mpath(&M, "grow/migration/total_s");
	g_autofree char *mpath_ = mpath(&M, "metrics");
	g_autofree char *verdict = read_file(vpath);
	cr_expect(verdict && strcmp(verdict, "converges\n") == 0, "verdict at 1 GB/s: %s", verdict);
	g_autofree char *total = read_file(tpath);
	cr_expect(total && atof(total) > 0, "migration/total_s: %s", total);
	g_autofree char *metrics = read_file(mpath_);
	cr_expect(metrics && strstr(metrics, "memstat_migration_verdict{target=\"grow\","
					     "kind=\"container\""),
		  "memstat_migration_verdict of the cgroup in metrics");
}

/* A file shared by two members, each writing 1000 distinct pages a second
 * of its own half (2048 pages): the union holds the file's 4096 frames
 * once, so f plateaus at 4096 (8192 if each member's mappings counted),
 * exactly in full-scan. */
Test(cgroup, growth_counts_shared_pages_once)
{
	const char *cg = make_cgroup(true, "gshared");
	const char *in[] = {cg, NULL};

	snprintf(shared_file, sizeof(shared_file), "%s/memstat-shared-%d", tmp_dir(),
		 (int)getpid());
	cr_assert(sh_out(NULL, "truncate -s 16M %s", shared_file) == 0);
	g_autofree char *a = g_strdup_printf("file=%s,part=0/2", shared_file);
	g_autofree char *b = g_strdup_printf("file=%s,part=1/2", shared_file);
	keep(dirtier_start_in(in, 16, 16, 1000, a));
	keep(dirtier_start_in(in, 16, 16, 1000, b));
	g_autofree char *line = g_strdup_printf("%s name=gshared mode=full-scan bandwidth=1G", cg);
	cr_assert_eq(track(line), 0);
	growth_truth("gshared", 2, 1000, 2048, 2, 2 * 24, true);
}

static char *latest_sample(const char *name)
{
	return read_file(mpath(&M, "%s/samples/latest", name)); /* a link to it */
}

/* Waits for a sample of name that covered n processes. */
static bool wait_processes(const char *name, int n, double seconds)
{
	for (double end = now_s() + seconds; now_s() < end; usleep(100000)) {
		g_autofree char *text = latest_sample(name);
		double p;
		if (text && sample_get(text, "processes", &p) && (int)p == n)
			return true;
	}
	return false;
}

static int count_lines(const char *text)
{
	int n = 0;
	for (const char *c = text; c && *c; c++)
		n += *c == '\n';
	return n;
}

Test(cgroup, processes_that_join_and_leave_are_followed)
{
	const char *cg = make_cgroup(true, "members");
	const char *in[] = {cg, NULL};

	pid_t first = keep(dirtier_start_in(in, 4, 4, 100, NULL));
	g_autofree char *line = g_strdup_printf("%s name=members", cg);
	cr_assert_eq(track(line), 0);
	g_autofree char *pids = read_file(mpath(&M, "members/pids"));
	g_autofree char *want = g_strdup_printf("%d\n", (int)first);
	cr_assert_str_eq(pids, want);
	cr_assert(wait_processes("members", 1, 10), "no sample of 1 process");

	pid_t second = keep(dirtier_start_in(in, 4, 4, 100, NULL));
	g_autofree char *two = read_file(mpath(&M, "members/pids"));
	cr_expect_eq(count_lines(two), 2, "pids: %s", two);
	cr_expect(wait_processes("members", 2, 10), "no sample of 2 processes");

	proc_kill(second);
	g_autofree char *one = read_file(mpath(&M, "members/pids"));
	cr_expect_str_eq(one, want);
	cr_expect(wait_processes("members", 1, 10), "no sample of 1 process after one left");
	g_autofree char *status = read_file(mpath(&M, "members/status"));
	cr_expect(status && g_str_has_prefix(status, "measured"), "status %s", status);
}

Test(cgroup, a_cgroup_emptied_for_a_period_has_exited)
{
	const char *cg = make_cgroup(true, "empty");
	const char *in[] = {cg, NULL};

	pid_t p = keep(dirtier_start_in(in, 4, 4, 100, NULL));
	g_autofree char *line = g_strdup_printf("%s name=empty", cg);
	cr_assert_eq(track(line), 0);
	free(sample_of("empty", 1));
	proc_kill(p);
	cr_assert(wait_content(mpath(&M, "empty/status"), "exited", 10));
	g_autofree char *status = read_file(mpath(&M, "empty/status"));
	cr_expect(strstr(status, "no process for a whole period"), "status: %s", status);
}

Test(cgroup, a_removed_cgroup_has_exited)
{
	const char *cg = make_cgroup(true, "removed");

	g_autofree char *line = g_strdup_printf("%s name=removed", cg);
	cr_assert_eq(track(line), 0);
	cr_assert(rmdir(cg) == 0);
	ncgs--;
	cr_assert(wait_content(mpath(&M, "removed/status"), "exited", 10));
	g_autofree char *status = read_file(mpath(&M, "removed/status"));
	cr_expect(strstr(status, "was removed"), "status: %s", status);
}

Test(cgroup, bad_paths_get_their_errnos)
{
	const char *cg = make_cgroup(true, "bad");
	const char *other = make_cgroup(true, "bad2");

	cr_expect_eq(track("/etc"), EINVAL, "a directory of no cgroup file system");
	g_autofree char *missing = g_strdup_printf("%s/none", cg);
	cr_expect_eq(track(missing), ENOENT);
	g_autofree char *file = g_strdup_printf("%s/cgroup.procs", cg);
	cr_expect_eq(track(file), ENOTDIR);
	g_autofree char *a = g_strdup_printf("%s name=taken", cg);
	g_autofree char *b = g_strdup_printf("%s name=taken", other);
	cr_assert_eq(track(a), 0);
	cr_expect_eq(track(b), EEXIST, "the name is taken");
	g_autofree char *sd = g_strdup_printf("%s name=sd mode=soft-dirty", other);
	cr_expect_eq(track(sd), EOPNOTSUPP);
}

Test(cgroup, runtime_cgroups_are_named_by_their_container_id)
{
	static const char id[] = "3f2a9c81d0e4b7aa55c2d94e0d8f1c2b3a4b5c6d7e8f90a1b2c3d4e5f6a7b8c9";
	static const char *const forms[] = {"docker-%s.scope", "libpod-%s.scope",
					    "cri-containerd-%s.scope", "crio-%s.scope",
					    "libpod-%s"};
	const char *top = make_cgroup(true, "names");

	for (size_t i = 0; i < G_N_ELEMENTS(forms); i++) {
		g_autofree char *leaf = g_strdup_printf(forms[i], id);
		const char *d = make_sub(top, leaf);
		cr_assert_eq(track(d), 0, "track %s", d);
		g_autofree char *status = read_file(mpath(&M, "3f2a9c81d0e4/status"));
		cr_expect(status, "%s is not named 3f2a9c81d0e4", leaf);
		cr_assert_eq(write_file(mpath(&M, "untrack"), "3f2a9c81d0e4"), 0);
	}
	/* Docker's cgroupfs form: /docker/<id>. */
	const char *docker = make_sub(top, "docker");
	const char *d = make_sub(docker, id);
	cr_assert_eq(track(d), 0);
	cr_expect(read_file(mpath(&M, "3f2a9c81d0e4/status")), "/docker/<id> named by its id");
	/* Anything else: the directory's name. */
	const char *plain = make_sub(top, "web.slice");
	cr_assert_eq(track(plain), 0);
	cr_expect(read_file(mpath(&M, "web.slice/status")), "named after its directory");
}

Test(cgroup, a_caller_tracks_only_what_it_could_read)
{
	const uid_t nobody = 65534;
	const char *cg = make_cgroup(true, "trust");
	g_autofree char *procs_path = g_strdup_printf("%s/cgroup.procs", cg);
	g_autofree char *line = g_strdup_printf("%s name=trust", cg);

	/* Its own process: it may. */
	pid_t mine = keep(sleeper_start(nobody));
	g_autofree char *pid_text = g_strdup_printf("%d", (int)mine);
	cr_assert_eq(write_file(procs_path, pid_text), 0);
	cr_assert_eq(write_file_as(nobody, mpath(&M, "track"), line), 0);
	cr_assert(wait_content(mpath(&M, "trust/status"), "measured", 10));

	/* A root process joins: no figure for nobody, and why. */
	pid_t root = keep(sleeper_start(0));
	g_autofree char *root_text = g_strdup_printf("%d", (int)root);
	cr_assert_eq(write_file(procs_path, root_text), 0);
	cr_assert(wait_content(mpath(&M, "trust/status"), "error", 10));
	g_autofree char *status = read_file(mpath(&M, "trust/status"));
	g_autofree char *who = g_strdup_printf("process %d", (int)root);
	cr_expect(strstr(status, who), "status: %s", status);

	/* And a cgroup with root's process in it: refused. */
	const char *cg2 = make_cgroup(true, "trust2");
	g_autofree char *procs2 = g_strdup_printf("%s/cgroup.procs", cg2);
	cr_assert_eq(write_file(procs2, root_text), 0);
	g_autofree char *line2 = g_strdup_printf("%s name=trust2", cg2);
	cr_expect_eq(write_file_as(nobody, mpath(&M, "track"), line2), EACCES);
}

/* ---- a podman container, tracked by its cgroup ---- */

static char label[128]; /* on every container this suite starts */
static bool mounted;	/* this suite's daemon runs */

#define PODMAN                                                                                     \
	"[ -f /run/memstatfs-podman/containers.conf ] && "                                         \
	"export CONTAINERS_CONF=/run/memstatfs-podman/containers.conf; podman "

static void podman_up(void)
{
	char *out = NULL;

	if (sh_out(NULL, "podman --version >/dev/null 2>&1") != 0) {
		fprintf(stderr, "skipped: podman is not installed\n");
		cr_skip_test("podman is not installed");
	}
	const char *run = getenv("MEMSTATFS_TEST_RUN");
	snprintf(label, sizeof(label), "memstatfs.test-run=%s", run ? run : "none");
	/* The host's settings (runc on hybrid cgroups, ulimits), as the
	 * container tests have them. */
	sh_out(NULL, "%s/contrib/container/memstatfs-podman.sh >/dev/null 2>&1", src_dir());
	int r = podman_debian12_image(&out);
	cr_assert_eq(r, 0, "could not make the debian:12 image: %s", out);
	free(out);
	mount_start(&M, NULL);
	mounted = true;
}

static void podman_down(void)
{
	sh_out(NULL, PODMAN "rm -f -t 0 $(" PODMAN "ps -aq --filter label=%s) >/dev/null 2>&1",
	       label);
	if (mounted)
		mount_stop(&M);
	mounted = false;
}
TestSuite(cgroup_podman, .init = podman_up, .fini = podman_down, .timeout = 180);

Test(cgroup_podman, a_container_tracked_by_its_cgroup_then_stopped)
{
	const unsigned k = 2000;
	char *out = NULL;
	const char *v2 = cgroup_root(true), *v1 = cgroup_root(false);

	/* The dirtier of this build, in a debian:12 container (the same
	 * glibc), its build directory mounted read-only. */
	g_autofree char *bin = g_path_get_dirname(getenv("DIRTIER"));
	int r = sh_out(&out,
		       PODMAN "run -d --label %s -v %s:/t:ro docker.io/library/debian:12 "
			      "/t/dirtier 64 32 %u 2>&1",
		       label, bin, k);
	cr_assert_eq(r, 0, "podman run: %s", out);
	char id[80] = "";
	sscanf(out, "%79s", id);
	free(out);
	r = sh_out(&out, PODMAN "inspect --format '{{.State.CgroupPath}}' %s", id);
	cr_assert_eq(r, 0, "podman inspect: %s", out);
	g_autofree char *cgpath = g_strdup(g_strstrip(out));
	free(out);
	cr_log_info("container %.12s, cgroup %s", id, cgpath);
	char short_id[13];
	g_strlcpy(short_id, id, sizeof(short_id));

	/* By the v2 path if the container has one, named by its id; by the
	 * v1 memory path too where this host has v1. */
	int tracked = 0;
	char v1_name[32];
	snprintf(v1_name, sizeof(v1_name), "%s-v1", short_id);
	if (*v2) {
		g_autofree char *p = g_strdup_printf("%s%s", v2, cgpath);
		if (access(p, F_OK) == 0) {
			cr_assert_eq(track(p), 0, "track %s", p);
			tally t = collect(short_id, k, 1, 2, 5);
			check(&t);
			tracked++;
		}
	}
	if (*v1) {
		g_autofree char *p = g_strdup_printf("%s%s name=%s", v1, cgpath, v1_name);
		cr_assert_eq(track(p), 0, "track %s", p);
		tally t = collect(v1_name, k, 1, 2, 5);
		check(&t);
		g_autofree char *anon = read_file(mpath(&M, "%s/memory/anon", v1_name));
		cr_expect(anon && strtoull(anon, NULL, 10) >= 32ull << 20,
			  "memory/anon %s: the container's 32 MiB", anon);
		tracked++;
	}
	cr_assert(tracked > 0, "the container's cgroup %s is under no hierarchy here", cgpath);

	/* Stopped: its cgroup goes, and the targets say so. */
	cr_assert_eq(sh_out(NULL, PODMAN "stop -t 1 %s >/dev/null 2>&1", id), 0);
	if (*v1)
		cr_expect(wait_content(mpath(&M, "%s/status", v1_name), "exited", 10));
	g_autofree char *two = g_strdup_printf("%s/status", short_id);
	if (*v2 && access(mpath(&M, "%s", two), F_OK) == 0)
		cr_expect(wait_content(mpath(&M, "%s", two), "exited", 10));
}
