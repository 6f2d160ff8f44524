/* test_units.c: the parsers and the statistics, on inputs the tests make. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <math.h>
#include <pthread.h>
#include <string.h>
#include <grp.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "memstat/core/metrics.h"
#include "memstat/core/settings.h"
#include "memstat/methods/measurement.h"
#include "memstat/methods/meminfo.h"
#include "memstat/methods/pagemap.h"
#include "memstat/methods/userfault.h"
#include "memstat/methods/pages.h"
#include "memstat/methods/procfs.h"
#include "memstat/sources/access.h"
#include "memstat/sources/process.h"

static int track(const char *s, ms_track_request *r)
{
	g_autofree char *why = NULL;
	return ms_parse_track(s, strlen(s), r, &why);
}

Test(settings, track_lines)
{
	ms_track_request r;

	cr_assert_eq(track("4242\n", &r), 0);
	cr_expect_eq(r.source, &ms_process_source);
	cr_expect_str_eq(r.target, "4242");
	cr_expect_not(r.change.has_period || r.change.has_mode || r.change.has_sample_pages);
	cr_assert_eq(track("4242\r\n", &r), 0);
	cr_expect_str_eq(r.target, "4242");
	cr_assert_eq(track(" 7 period=60 sample_pages=128 mode=page-sampling\n", &r), 0);
	cr_expect(r.change.has_period && r.change.v.period_s == 60);
	cr_expect(r.change.has_sample_pages && r.change.v.sample_pages == 128);
	cr_expect(r.change.has_mode && strcmp(r.change.v.mode, "page-sampling") == 0);
	const char *bad[] = {"",
			     " ",
			     "x",
			     "-4",
			     "0",
			     "4194305",
			     "1 2",
			     "1 period",
			     "1 =3",
			     "1 period=1x",
			     "1 period=99999999999999999999",
			     "1 mode=",
			     "1 sample_pages=16385",
			     "1 period=1 period=1"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
		cr_expect_eq(track(bad[i], &r), -EINVAL, "<%s>", bad[i]);
	/* Embedded NUL and over-long writes. */
	const char why_nul[] = "12\0 period=3";
	g_autofree char *why = NULL;
	cr_expect_eq(ms_parse_track(why_nul, sizeof(why_nul) - 1, &r, &why), -EINVAL);
	char big[MS_WRITE_MAX + 2];
	memset(big, ' ', sizeof(big));
	big[0] = '1';
	cr_expect_eq(ms_parse_track(big, sizeof(big), &r, &why), -EINVAL);
}

Test(settings, single_values)
{
	ms_settings_change c;
	g_autofree char *why = NULL;

	cr_expect_eq(ms_parse_setting("period", "5\n", 2, &c, &why), 0);
	cr_expect(c.has_period && c.v.period_s == 5);
	cr_expect_eq(ms_parse_setting("period", "5 6", 3, &c, &why), -EINVAL);
	cr_expect_eq(ms_parse_setting("mode", "page-sampling", 13, &c, &why), 0);
	cr_expect_eq(ms_parse_setting("mode", "nope", 4, &c, &why), -EINVAL);
	char name[16];
	cr_expect_eq(ms_parse_name(" 123\n", 5, name, sizeof(name), &why), 0);
	cr_expect_str_eq(name, "123");
	cr_expect_eq(ms_parse_name("a/b", 3, name, sizeof(name), &why), -EINVAL);
}

Test(procfs, maps_lines)
{
	ms_vma v;
	cr_expect_eq(ms_parse_maps_line("7f00-7f10 rw-p 00000000 00:00 0\n", &v), 1);
	cr_expect(v.start == 0x7f00 && v.end == 0x7f10 && !v.shared);
	cr_expect_eq(ms_parse_maps_line("1000-2000 rw-s 0 00:01 5 /memfd:x (deleted)", &v), 1);
	cr_expect(v.shared);
	cr_expect_eq(ms_parse_maps_line("1000-2000 r-xp 0 00:01 5 /bin/x", &v), 0);
	cr_expect_eq(
		ms_parse_maps_line("ffffffffff600000-ffffffffff601000 --xp 0 0:0 0 [vsyscall]", &v),
		0);
	cr_expect_eq(ms_parse_maps_line("2000-1000 rw-p 0 0:0 0", &v), -EINVAL);
	cr_expect_eq(ms_parse_maps_line("zz-1000 rw-p", &v), -EINVAL);
	cr_expect_eq(ms_parse_maps_line("1000-2000 rw", &v), -EINVAL);
	cr_expect_eq(ms_parse_maps_line("10000000000000000-2 rw-p 0", &v), -EINVAL);
	int err = 0;
	GArray *a = ms_parse_maps(
		"1000-3000 rw-p 0 0:0 0\n5000-6000 r--p 0 0:0 0\n7000-8000 rw-s 0 0:0 0 [x]\n",
		&err);
	cr_assert(a);
	cr_expect_eq(a->len, 2);
	g_array_unref(a);
}

Test(procfs, stat_with_awkward_comm)
{
	ms_proc_stat st;
	const char *s =
		"77 (a) b (c)) S 1 77 77 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 123456 1000 50";
	cr_assert_eq(ms_parse_stat(s, &st), 0);
	cr_expect_eq(st.pid, 77);
	cr_expect_eq(st.state, 'S');
	cr_expect_eq(st.flags, 4194560);
	cr_expect_eq(st.starttime, 123456);
	cr_expect_eq(ms_parse_stat("77 (x) S 1", &st), -EINVAL);
	cr_expect_eq(ms_parse_stat("garbage", &st), -EINVAL);
}

Test(procfs, field_names)
{
	char out[64];
	const char *pairs[][2] = {{"Committed_AS", "committed_as"},
				  {"Active(anon)", "active_anon"},
				  {"Inactive(file)", "inactive_file"},
				  {"HugePages_Total", "hugepages_total"},
				  {"VmRSS", "vmrss"}};
	for (size_t i = 0; i < 5; i++) {
		cr_assert(ms_field_file_name(pairs[i][0], out, sizeof(out)));
		cr_expect_str_eq(out, pairs[i][1]);
	}
	cr_expect_not(ms_field_file_name("abcdef", out, 3));
}

static const char meminfo_text[] = "MemTotal:       24000000 kB\n"
				   "MemFree:        20000000 kB\n"
				   "MemAvailable:   22000000 kB\n"
				   "Active(anon):       1508 kB\n"
				   "HugePages_Total:       0\n"
				   "CommitLimit:    12000000 kB\n"
				   "Committed_AS:     300000 kB\n";

Test(meminfo, values_from_text)
{
	const char *oc[3] = {"0\n", "50\n", "0\n"};
	char *t = NULL;
	cr_assert_eq(ms_meminfo_value_from("used", meminfo_text, oc, &t), 0);
	cr_expect_str_eq(t, "2000000\n");
	g_free(t);
	cr_assert_eq(ms_meminfo_value_from("commit_percent", meminfo_text, oc, &t), 0);
	cr_expect_str_eq(t, "2.50\n");
	g_free(t);
	cr_assert_eq(ms_meminfo_value_from("active_anon", meminfo_text, oc, &t), 0);
	cr_expect_str_eq(t, "1508\n");
	g_free(t);
	cr_assert_eq(ms_meminfo_value_from("hugepages_total", meminfo_text, oc, &t), 0);
	cr_expect_str_eq(t, "0\n");
	g_free(t);
	cr_assert_eq(ms_meminfo_value_from("overcommit_ratio", meminfo_text, oc, &t), 0);
	cr_expect_str_eq(t, "50\n");
	g_free(t);
	cr_expect_eq(ms_meminfo_value_from("nonesuch", meminfo_text, oc, &t), -ENOENT);
	/* CommitLimit 0 (overcommit_ratio=0, no swap) counts as 1 kB. */
	cr_assert_eq(ms_meminfo_value_from("commit_percent",
					   "CommitLimit: 0 kB\nCommitted_AS: 5 kB\n", oc, &t),
		     0);
	cr_expect_str_eq(t, "500.00\n");
	g_free(t);
	cr_assert_eq(ms_meminfo_value_from("commit_percent",
					   "CommitLimit: 0 kB\nCommitted_AS: 0 kB\n", oc, &t),
		     0);
	cr_expect_str_eq(t, "0.00\n");
	g_free(t);
	t = NULL;
	/* Missing inputs: no such figure; not a number: EIO. */
	cr_expect_eq(ms_meminfo_value_from("used", "MemTotal: 5 kB\n", oc, &t), -ENOENT);
	cr_expect_eq(ms_meminfo_value_from("commit_percent", "CommitLimit: 5 kB\n", oc, &t),
		     -ENOENT);
	/* (A line whose value is not digits is no field at all.) */
	cr_expect_eq(ms_meminfo_value_from("used", "MemTotal: 5 kB\nMemAvailable: -1 kB\n", oc, &t),
		     -ENOENT);
	cr_expect_eq(
		ms_meminfo_value_from(
			"used", "MemTotal: 5 kB\nMemAvailable: 99999999999999999999 kB\n", oc, &t),
		-EIO);
	cr_expect_eq(ms_meminfo_value_from("commit_percent",
					   "CommitLimit: 18446744073709551616 kB\n"
					   "Committed_AS: 1 kB\n",
					   oc, &t),
		     -EIO);
	cr_expect_null(t);
}

Test(stats, wilson_interval_known_values)
{
	double lo, hi;
	/* 50 of 100 from an effectively infinite population: [0.404, 0.596] */
	ms_proportion_interval(50, 100, 1000000000, 1.959964, &lo, &hi);
	cr_expect(fabs(lo - 0.4038) < 0.001 && fabs(hi - 0.5962) < 0.001, "[%f, %f]", lo, hi);
	/* 0 of 100: [0, 0.037] */
	ms_proportion_interval(0, 100, 1000000000, 1.959964, &lo, &hi);
	cr_expect(lo == 0 && fabs(hi - 0.0370) < 0.001, "[%f, %f]", lo, hi);
	/* A census has no interval. */
	ms_proportion_interval(30, 100, 100, 1.959964, &lo, &hi);
	cr_expect(lo == 0.3 && hi == 0.3);
}

/* The pages a precision needs: the least n whose interval is that narrow
 * (the Wilson interval with the finite population correction, the one
 * published), bounded by the minimum and the population. */
Test(stats, precision_pages_inverts_the_interval)
{
	const double z = 1.959964;
	struct {
		double p, h;
		uint64_t N;
	} cases[] = {{0.5, 0.05, 1000000},
		     {0.0625, 0.00625, 65536},
		     {0.01, 0.05, 1044},
		     {0.3, 0.01, 4096},
		     {0.001, 0.0005, 262144}};
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		uint64_t n = ms_precision_pages(cases[i].p, cases[i].N, cases[i].h, 32);
		double at = ms_proportion_half_width(cases[i].p, n, cases[i].N, z);
		cr_expect(at <= cases[i].h, "p %g h %g: n %" PRIu64 " gives %g", cases[i].p,
			  cases[i].h, n, at);
		if (n > 32 && n < cases[i].N)
			cr_expect(ms_proportion_half_width(cases[i].p, n - 1, cases[i].N, z) >
					  cases[i].h,
				  "p %g h %g: %" PRIu64 " is not the least", cases[i].p, cases[i].h,
				  n);
	}
	/* Without a population to speak of: about z^2 p (1 - p) / h^2. */
	uint64_t n = ms_precision_pages(0.5, UINT64_MAX / 2, 0.05, 32);
	cr_expect(n >= 380 && n <= 390, "n %" PRIu64, n);
	/* The minimum, and a census when nothing smaller does. */
	cr_expect_eq(ms_precision_pages(0.5, 100000, 0.9, 32), 32);
	cr_expect_eq(ms_precision_pages(0.5, 1000, 1e-9, 32), 1000);
	cr_expect_eq(ms_precision_pages(0.5, 20, 0.1, 32), 20);
}

Test(settings, precision_parses_and_prints)
{
	struct {
		const char *in, *out;
	} good[] = {{"10%", "10%"},
		    {"2MiB/s", "2MiB/s"},
		    {"2.5%,512KiB/s", "2.5%,0.5MiB/s"},
		    {"1GiB/s,100%", "100%,1024MiB/s"},
		    {"off", "off"},
		    {"1048576B/s", "1MiB/s"}};
	for (size_t i = 0; i < sizeof(good) / sizeof(*good); i++) {
		ms_precision pr;
		g_autofree char *why = NULL;
		char buf[64];
		cr_assert_eq(
			ms_parse_precision(good[i].in, good[i].in + strlen(good[i].in), &pr, &why),
			0, "%s: %s", good[i].in, why);
		cr_expect_str_eq(ms_precision_format(&pr, buf, sizeof(buf)), good[i].out);
	}
	const char *bad[] = {"",     "%",    "0%",     "100.5%", "10",
			     "10 %", "1MiB", "x%",     "1%,2%",	 "1MiB/s,2MiB/s",
			     "1%,",  ",1%",  "2TiB/s", "ON",	 "1e3MiB/s"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		ms_precision pr;
		g_autofree char *why = NULL;
		cr_expect_eq(ms_parse_precision(bad[i], bad[i] + strlen(bad[i]), &pr, &why),
			     -EINVAL, "<%s> accepted", bad[i]);
		cr_expect(why && strstr(why, "precision"), "<%s>: %s", bad[i], why);
	}
}

Test(stats, measurement_scales_like_qemu)
{
	/* QEMU: rate = dirty * total_MiB * 1000 / (samples * period_ms) */
	ms_measurement m = {.period_ms = 1000,
			    .page_size = 4096,
			    .pages_total = 262144,
			    .pages_population = 262144,
			    .pages_sampled = 512,
			    .pages_dirty = 64};
	ms_measurement_finish(&m);
	cr_expect(fabs(m.memory_mib - 1024) < 1e-9);
	cr_expect(fabs(m.rate - 64.0 * 1024 * 1000 / (512 * 1000)) < 1e-9, "rate %f", m.rate);
	cr_expect(m.rate_lo < m.rate && m.rate < m.rate_hi);
	cr_expect_not(m.exact);
	/* Fresh pages counted exactly add to the rate and to both bounds. */
	ms_measurement f = m;
	f.pages_new = 256; /* 1 MiB */
	ms_measurement_finish(&f);
	cr_expect(fabs(f.rate - m.rate - 1.0) < 1e-9 && fabs(f.rate_lo - m.rate_lo - 1.0) < 1e-9 &&
		  fabs(f.rate_hi - m.rate_hi - 1.0) < 1e-9);
	/* A census is exact. */
	ms_measurement c = m;
	c.pages_population = c.pages_sampled;
	ms_measurement_finish(&c);
	cr_expect(c.exact && c.rate_lo == c.rate && c.rate_hi == c.rate);
}

/* The interval's coverage, checked by simulation with a fixed seed (so the
 * test is deterministic): draw n of N pages without replacement, D dirty. */
Test(stats, interval_covers_95_percent)
{
	GRand *r = g_rand_new_with_seed(12345);
	const uint32_t N = 20000, n = 1250;
	const uint32_t Ds[] = {200, 1000, 5000};
	uint32_t *perm = g_new(uint32_t, N);

	for (size_t k = 0; k < 3; k++) {
		int covered = 0, trials = 2000;
		double p = (double)Ds[k] / N;
		for (int t = 0; t < trials; t++) {
			for (uint32_t i = 0; i < N; i++)
				perm[i] = i;
			uint32_t d = 0;
			for (uint32_t i = 0; i < n; i++) {
				uint32_t j = i + (uint32_t)g_rand_int_range(r, 0, (gint32)(N - i));
				uint32_t x = perm[j];
				perm[j] = perm[i];
				perm[i] = x;
				d += x < Ds[k];
			}
			double lo, hi;
			ms_proportion_interval(d, n, N, 1.959964, &lo, &hi);
			covered += lo <= p && p <= hi;
		}
		double cov = (double)covered / trials;
		cr_expect(cov > 0.93 && cov < 0.975, "D=%u: coverage %.3f", Ds[k], cov);
	}
	g_free(perm);
	g_rand_free(r);
}

/* Soft-dirty counting on pagemap entries the test builds: bit 55 counts
 * only on resident or swapped pages (a new mapping reads soft-dirty whole). */
Test(pagemap, soft_dirty_counting)
{
	const uint64_t P = MS_PM_PRESENT, S = MS_PM_SWAPPED, D = MS_PM_SOFT_DIRTY;
	uint64_t e[] = {P | D | 1234, P | 99, S | D, D, 0, P | D, S, P | S | D};
	cr_expect_eq(ms_pagemap_soft_dirty_pages(e, 8), 4);
	cr_expect_eq(ms_pagemap_soft_dirty_pages(e, 0), 0);
	uint64_t all[1000];
	for (int i = 0; i < 1000; i++)
		all[i] = (i % 3 == 0 ? D : 0) | (i % 2 ? P : 0);
	/* i divisible by 3 and odd: 167 of them */
	cr_expect_eq(ms_pagemap_soft_dirty_pages(all, 1000), 167);
}

/* Runs read in one order land at the indices given (full-scan reads its
 * chunks in a random order into arrays in address order): the same hashes,
 * readability and read times as reading them in address order, a hole
 * (an unmapped page) included. */
Test(process, hash_runs_at_lands_each_run_at_its_index)
{
	long ps = sysconf(_SC_PAGESIZE);
	const int N = 12;
	char *m = mmap(NULL, N * (size_t)ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		       -1, 0);
	cr_assert(m != MAP_FAILED);
	for (int i = 0; i < N; i++)
		memset(m + i * ps, 'A' + i, (size_t)ps);
	munmap(m + 5 * ps, (size_t)ps); /* page 5 goes away */

	ms_page_reader rd;
	ms_page_reader_init(&rd, getpid());
	/* Address order: one run of all N pages. */
	GArray *whole = g_array_new(FALSE, FALSE, sizeof(ms_range));
	ms_range all = {(uintptr_t)m, (uintptr_t)m + N * (uint64_t)ps};
	g_array_append_val(whole, all);
	uint64_t h[12], h2[12];
	bool ok[12], ok2[12];
	int64_t t2[12];
	cr_assert_eq(ms_hash_runs(&rd, whole, h, ok), 0);
	/* Runs of 4, 3, 5 pages (pages 8-11, 0-2, 3-7), read in that order. */
	GArray *runs = g_array_new(FALSE, FALSE, sizeof(ms_range));
	const int from[] = {8, 0, 3}, to[] = {12, 3, 8};
	uint64_t first[3];
	for (int r = 0; r < 3; r++) {
		ms_range x = {(uintptr_t)m + from[r] * (uint64_t)ps,
			      (uintptr_t)m + to[r] * (uint64_t)ps};
		g_array_append_val(runs, x);
		first[r] = (uint64_t)from[r];
	}
	for (int i = 0; i < N; i++)
		h2[i] = 0, ok2[i] = true, t2[i] = -1;
	rd.times = t2;
	cr_assert_eq(ms_hash_runs_at(&rd, runs, first, h2, ok2), 0);
	rd.times = NULL;
	for (int i = 0; i < N; i++) {
		cr_expect_eq(ok2[i], i != 5, "page %d readable %d", i, ok2[i]);
		cr_expect_eq(ok2[i], ok[i], "page %d", i);
		if (ok[i])
			cr_expect_eq(h2[i], h[i], "page %d hashed alike", i);
		cr_expect(t2[i] > 0, "page %d has its read's time", i);
	}
	/* Pages 8-11 were read first, 0-2 after them. */
	cr_expect(t2[8] <= t2[0] && t2[0] <= t2[3]);
	g_array_unref(runs);
	g_array_unref(whole);
	munmap(m, N * (size_t)ps);
}

/* Hashing runs of our own memory, with a hole where a page was unmapped:
 * the hole reads as unreadable and the pages around it are still hashed,
 * in one call or across calls. */
Test(process, hash_runs_skips_an_unmapped_page)
{
	long ps = sysconf(_SC_PAGESIZE);
	char *m = mmap(NULL, 4 * (size_t)ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		       -1, 0);
	cr_assert(m != MAP_FAILED);
	for (int i = 0; i < 4; i++)
		memset(m + i * ps, 'a' + i, (size_t)ps);
	munmap(m + ps, (size_t)ps); /* page 1 goes away */

	ms_page_reader rd;
	ms_page_reader_init(&rd, getpid());
	GArray *runs = g_array_new(FALSE, FALSE, sizeof(ms_range));
	ms_range whole = {(uintptr_t)m, (uintptr_t)m + 4 * (uint64_t)ps};
	g_array_append_val(runs, whole);
	uint64_t h[4];
	bool ok[4];
	cr_assert_eq(ms_hash_runs(&rd, runs, h, ok), 0);
	cr_expect(ok[0] && !ok[1] && ok[2] && ok[3]);
	cr_expect(h[0] != h[2] && h[2] != h[3]);

	/* The same pages one by one give the same hashes. */
	uint64_t addrs[3] = {(uintptr_t)m, (uintptr_t)m + 2 * (uint64_t)ps,
			     (uintptr_t)m + 3 * (uint64_t)ps};
	uint64_t h1[3];
	bool ok1[3];
	cr_assert_eq(ms_hash_pages(&rd, addrs, 3, h1, ok1), 0);
	cr_expect(ok1[0] && ok1[1] && ok1[2]);
	cr_expect(h1[0] == h[0] && h1[1] == h[2] && h1[2] == h[3]);
	g_array_unref(runs);
	munmap(m, 4 * (size_t)ps);
}

/* A look told which pages a scan just found resident reads only the others'
 * pagemap entries, and says of every page what a look that reads them all
 * says: resident pages (in the runs) read and hashed, a page the runs do
 * not hold looked up (one unmapped, one never touched). */
Test(process, a_look_told_the_resident_pages_says_what_one_that_reads_every_entry_says)
{
	long ps = sysconf(_SC_PAGESIZE);
	char *m = mmap(NULL, 6 * (size_t)ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		       -1, 0);
	cr_assert(m != MAP_FAILED);
	for (int i = 0; i < 4; i++)
		memset(m + i * ps, 'a' + i, (size_t)ps);
	munmap(m + ps, (size_t)ps); /* page 1 goes away; 4 and 5 never touched */
	uint64_t addrs[5];
	int pages[5] = {0, 1, 2, 3, 5};
	for (int i = 0; i < 5; i++)
		addrs[i] = (uintptr_t)m + (uint64_t)pages[i] * (uint64_t)ps;

	ms_page_reader rd;
	ms_page_reader_init(&rd, getpid());
	bool p0[5], r0[5], p1[5], r1[5];
	uint64_t h0[5], h1[5];
	char *why = NULL;
	cr_assert_eq(ms_look_pages(&rd, addrs, 5, p0, r0, h0, NULL, &why), 0, "%s", why);
	/* The runs a scan would find: pages 0, 2 and 3 (page 3 left out, as
	 * if the scan had ended before it: looked up instead). */
	GArray *runs = g_array_new(FALSE, FALSE, sizeof(ms_range));
	ms_range a = {addrs[0], addrs[0] + (uint64_t)ps}, b = {addrs[2], addrs[2] + (uint64_t)ps};
	g_array_append_val(runs, a);
	g_array_append_val(runs, b);
	rd.resident = runs;
	cr_assert_eq(ms_look_pages(&rd, addrs, 5, p1, r1, h1, NULL, &why), 0, "%s", why);
	rd.resident = NULL;
	for (int i = 0; i < 5; i++) {
		cr_expect_eq(p1[i], p0[i], "page %d: present %d, %d", pages[i], p1[i], p0[i]);
		cr_expect_eq(r1[i], r0[i], "page %d: readable %d, %d", pages[i], r1[i], r0[i]);
		cr_expect_eq(h1[i], h0[i], "page %d: hash", pages[i]);
	}
	cr_expect(p0[0] && !p0[1] && p0[2] && p0[3] && !p0[4]);
	cr_expect(!r0[1] && !r0[4], "unmapped, never touched: neither resident nor swapped");
	g_array_unref(runs);
	munmap(m, 6 * (size_t)ps);
}

/* smaps: whether the mapping holding an address is userfaultfd's. */
Test(process, smaps_says_which_mappings_userfaultfd_serves)
{
	const char *text = "7f0000000000-7f0000100000 rw-p 00000000 00:00 0 \n"
			   "Size:               1024 kB\n"
			   "Anonymous:          1024 kB\n"
			   "VmFlags: rd wr mr mw me um ac nh \n"
			   "7f0000100000-7f0000200000 rw-p 00000000 00:00 0 \n"
			   "Size:               1024 kB\n"
			   "VmFlags: rd wr mr mw me ac\n"
			   "7f0000200000-7f0000300000 rw-p 00000000 00:00 0\n"
			   "VmFlags: rd wr mr mw me ac uw\n"
			   "7f0000300000-7f0000400000 rw-p 00000000 00:00 0\n"
			   "VmFlags: rd wr mr mw me umx ac\n";
	cr_expect_eq(ms_parse_smaps_uffd(text, 0x7f0000000000), 1);
	cr_expect_eq(ms_parse_smaps_uffd(text, 0x7f00000fffff), 1);
	cr_expect_eq(ms_parse_smaps_uffd(text, 0x7f0000100000), 0);
	cr_expect_eq(ms_parse_smaps_uffd(text, 0x7f0000250000), 1, "uw at the end of the line");
	cr_expect_eq(ms_parse_smaps_uffd(text, 0x7f0000300000), 0, "not a flag of its own");
	cr_expect_eq(ms_parse_smaps_uffd(text, 0x7f0000400000), 0, "no mapping there");
	cr_expect_eq(ms_parse_smaps_uffd("7f00-zz rw-p\n", 0x7f00), -EINVAL);
	cr_expect_eq(ms_parse_smaps_uffd("", 0), 0);
	GArray *uffd = ms_parse_smaps_uffd_ranges(text);
	cr_assert(uffd);
	cr_assert_eq(uffd->len, 2);
	cr_expect_eq(g_array_index(uffd, ms_vma, 0).start, 0x7f0000000000);
	cr_expect_eq(g_array_index(uffd, ms_vma, 0).end, 0x7f0000100000);
	cr_expect_eq(g_array_index(uffd, ms_vma, 1).start, 0x7f0000200000);
	g_array_unref(uffd);
	cr_expect_null(ms_parse_smaps_uffd_ranges("7f00-zz rw-p\n"));
}

/* /proc/PID/task/TID/status: the count that shows a thread has not run. */
Test(process, voluntary_switches_from_status)
{
	uint64_t n = 0;
	cr_expect_eq(ms_parse_voluntary_switches("Name:\tx\nvoluntary_ctxt_switches:\t42\n"
						 "nonvoluntary_ctxt_switches:\t7\n",
						 &n),
		     0);
	cr_expect_eq(n, 42);
	cr_expect_eq(ms_parse_voluntary_switches("nonvoluntary_ctxt_switches:\t7\n", &n), -EINVAL,
		     "only the nonvoluntary count");
	cr_expect_eq(ms_parse_voluntary_switches("voluntary_ctxt_switches:\tx\n", &n), -EINVAL);
	cr_expect_eq(ms_parse_voluntary_switches("", &n), -EINVAL);
}

/* A thread waiting in handle_userfault, one fault the handler never
 * answers: not at the first look, yes at a look a second later, with the
 * thread named; and no longer once the handler answers (UFFDIO_WAKE). */
static char *uf_mem;
static volatile pid_t uf_tid;
static void *uf_touch(void *arg)
{
	(void)arg;
	uf_tid = (pid_t)syscall(SYS_gettid);
	return (void *)(uintptr_t)(unsigned char)((volatile char *)uf_mem)[0];
}

/* Waits until the thread of uf_touch waits in handle_userfault (its wchan
 * says so), up to 5 s. */
static bool uf_waits(void)
{
	bool waiting = false;
	for (int i = 0; i < 500 && !waiting; i++, usleep(10000)) {
		char path[64], wchan[64] = {0};
		snprintf(path, sizeof(path), "/proc/self/task/%d/wchan", (int)uf_tid);
		int fd = uf_tid ? open(path, O_RDONLY) : -1;
		if (fd >= 0) {
			waiting = read(fd, wchan, sizeof(wchan) - 1) > 0 &&
				  strncmp(wchan, "handle_userfault", 16) == 0;
			close(fd);
		}
	}
	return waiting;
}

Test(process, userfault_unanswered_is_seen_at_two_looks)
{
	size_t ps = (size_t)sysconf(_SC_PAGESIZE);
	uf_mem = mmap(NULL, ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert(uf_mem != MAP_FAILED);
	int uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (uffd < 0)
		cr_skip_test("this kernel refuses userfaultfd to the tests (%s)", strerror(errno));
	struct uffdio_api api = {.api = UFFD_API};
	struct uffdio_register reg = {.range = {(uintptr_t)uf_mem, ps},
				      .mode = UFFDIO_REGISTER_MODE_MISSING};
	cr_assert(ioctl(uffd, UFFDIO_API, &api) == 0 && ioctl(uffd, UFFDIO_REGISTER, &reg) == 0);
	char *seen = NULL;
	cr_expect_eq(ms_userfault_unanswered(getpid(), &seen), 0, "nobody waits yet");
	pthread_t t;
	cr_assert(pthread_create(&t, NULL, uf_touch, NULL) == 0);
	cr_assert(uf_waits(), "the thread never waited in handle_userfault");
	cr_expect_eq(ms_userfault_unanswered(getpid(), &seen), 0, "a first look proves nothing");
	usleep(MS_UFFD_UNANSWERED_US + 100000);
	cr_expect_eq(ms_userfault_unanswered(getpid(), &seen), 1, "waited a second in one fault");
	cr_expect(seen && strstr(seen, "handle_userfault"), "%s", seen ? seen : "(null)");
	free(seen);
	seen = NULL;
	/* The handler answers: the thread runs on, and no wait is left. */
	struct uffdio_zeropage zero = {.range = {(uintptr_t)uf_mem, ps}};
	cr_assert(ioctl(uffd, UFFDIO_ZEROPAGE, &zero) == 0);
	pthread_join(t, NULL);
	cr_expect_eq(ms_userfault_unanswered(getpid(), &seen), 0, "answered");
	close(uffd);
	munmap(uf_mem, ps);
}

/* A page missing from our own userfaultfd-registered memory: the reader
 * does not wait for it, counts it refused and not readable, and hashes the
 * others.  Refused is not failed: only once a thread of ours has waited for
 * the handler (this test) in one fault for a second does the read fail,
 * saying which page and what was seen. */
Test(process, hash_runs_never_waits_for_userfaultfd, .timeout = 20)
{
	long ps = sysconf(_SC_PAGESIZE);
	char *m = mmap(NULL, 4 * (size_t)ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		       -1, 0);
	cr_assert(m != MAP_FAILED);
	for (int i = 0; i < 4; i++)
		memset(m + i * ps, 'a' + i, (size_t)ps);
	int uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (uffd < 0)
		cr_skip_test("this kernel refuses userfaultfd here: %s", strerror(errno));
	struct uffdio_api api = {.api = UFFD_API};
	cr_assert_eq(ioctl(uffd, UFFDIO_API, &api), 0, "UFFDIO_API: %s", strerror(errno));
	struct uffdio_register reg = {.range = {(uintptr_t)m, 4 * (uint64_t)ps},
				      .mode = UFFDIO_REGISTER_MODE_MISSING};
	cr_assert_eq(ioctl(uffd, UFFDIO_REGISTER, &reg), 0, "UFFDIO_REGISTER: %s", strerror(errno));
	madvise(m + 2 * ps, (size_t)ps, MADV_DONTNEED); /* page 2 is missing now */

	ms_page_reader rd;
	ms_page_reader_init(&rd, getpid());
	GArray *runs = g_array_new(FALSE, FALSE, sizeof(ms_range));
	ms_range whole = {(uintptr_t)m, (uintptr_t)m + 4 * (uint64_t)ps};
	g_array_append_val(runs, whole);
	uint64_t h[4];
	bool ok[4];
	cr_expect_eq(ms_hash_runs(&rd, runs, h, ok), 0, "nobody waits for the handler");
	cr_expect(ok[0] && ok[1] && !ok[2] && ok[3]);
	cr_expect_eq(rd.refused, 1);
	cr_expect_eq(rd.stalled_at, 0);

	/* A thread of ours touches page 2 and waits for the handler. */
	pthread_t t;
	uf_mem = m + 2 * ps;
	cr_assert(pthread_create(&t, NULL, uf_touch, NULL) == 0);
	cr_assert(uf_waits(), "the thread never waited in handle_userfault");
	cr_expect_eq(ms_hash_runs(&rd, runs, h, ok), 0, "a first look proves nothing");
	usleep(MS_UFFD_UNANSWERED_US + 100000);
	cr_expect_eq(ms_hash_runs(&rd, runs, h, ok), -EIO, "a second in one fault");
	cr_expect_eq(rd.stalled_at, (uintptr_t)m + 2 * (uint64_t)ps);
	cr_expect(ok[0] && ok[1] && !ok[2] && ok[3]);
	cr_expect_eq(rd.refused, 3);
	const char *why = ms_page_read_strerror(-EIO);
	cr_expect(strstr(why, "userfaultfd") && strstr(why, "does not answer") &&
			  strstr(why, "handle_userfault"),
		  "%s", why);
	struct uffdio_zeropage zero = {.range = {(uintptr_t)m + 2 * (uint64_t)ps, (uint64_t)ps}};
	cr_assert(ioctl(uffd, UFFDIO_ZEROPAGE, &zero) == 0);
	pthread_join(t, NULL);
	g_array_unref(runs);
	close(uffd);
	munmap(m, 4 * (size_t)ps);
}

Test(metrics, host_figures_in_base_units)
{
	const char *meminfo = "MemTotal:       16000 kB\nMemFree:  1000 kB\n"
			      "MemAvailable:   12000 kB\nShmem: 10 kB\nSwapTotal: 0 kB\n"
			      "SwapFree: 0 kB\nCommitLimit:    8000 kB\nCommitted_AS:   2000 kB\n";
	const char *const oc[3] = {"2\n", "50\n", "0\n"};
	char *text = ms_metrics_render_from(NULL, NULL, meminfo, oc);

	cr_expect(strstr(text, "# TYPE memstat_committed_bytes gauge\n"
			       "memstat_committed_bytes 2048000\n"),
		  "%s", text);
	cr_expect(strstr(text, "memstat_commit_limit_bytes 8192000\n"));
	cr_expect(strstr(text, "memstat_memory_used_bytes 4096000\n"));
	cr_expect(strstr(text, "memstat_overcommit_memory 2\n"));
	cr_expect(strstr(text, "memstat_overcommit_ratio 0.5\n"));
	cr_expect(strstr(text, "memstat_targets 0\n"));
	/* Every family has HELP then TYPE, once. */
	g_auto(GStrv) helps = g_strsplit(text, "# HELP ", -1);
	g_auto(GStrv) types = g_strsplit(text, "# TYPE ", -1);
	cr_expect_eq(g_strv_length(helps), g_strv_length(types));
	g_free(text);
}

/* ---- who sees what (access.h) ---- */

Test(access, proc_view_from_mountinfo)
{
	ms_proc_view v;
	const char *base = "22 27 0:21 / /proc rw,relatime - proc proc rw\n"
			   "23 27 0:22 / /sys rw,relatime - sysfs sysfs rw\n";

	cr_expect_eq(ms_proc_view_parse(base, "/proc", &v), 0);
	cr_expect_eq(v.hidepid, MS_HIDEPID_OFF);
	cr_expect_not(v.has_gid);
	/* The last mount on /proc is the one seen; named and numeric values;
	 * gid=; optional fields before the separator. */
	const struct {
		const char *line;
		ms_hidepid want;
		bool has_gid;
	} cases[] = {
		{"67 22 0:40 / /proc rw,relatime - proc proc rw,gid=27,hidepid=invisible\n",
		 MS_HIDEPID_INVISIBLE, true},
		{"67 22 0:40 / /proc rw shared:5 - proc proc rw,hidepid=2\n", MS_HIDEPID_INVISIBLE,
		 false},
		{"67 22 0:40 / /proc rw - proc proc rw,hidepid=1\n", MS_HIDEPID_NOACCESS, false},
		{"67 22 0:40 / /proc rw - proc proc rw,hidepid=noaccess\n", MS_HIDEPID_NOACCESS,
		 false},
		{"67 22 0:40 / /proc rw - proc proc rw,hidepid=ptraceable,gid=5\n",
		 MS_HIDEPID_PTRACEABLE, true},
		{"67 22 0:40 / /proc rw - proc proc rw,hidepid=4\n", MS_HIDEPID_PTRACEABLE, false},
		{"67 22 0:40 / /proc rw - proc proc rw,hidepid=off\n", MS_HIDEPID_OFF, false},
		/* Another file system over /proc: no proc there, nothing hidden. */
		{"67 22 0:40 / /proc rw - tmpfs tmpfs rw\n", MS_HIDEPID_OFF, false},
		/* A proc elsewhere is not /proc. */
		{"67 22 0:40 / /proc\\040x rw - proc proc rw,hidepid=2\n", MS_HIDEPID_OFF, false},
	};
	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autofree char *text = g_strconcat(base, cases[i].line, NULL);
		cr_expect_eq(ms_proc_view_parse(text, "/proc", &v), 0, "%s", cases[i].line);
		cr_expect_eq(v.hidepid, cases[i].want, "%s: %d", cases[i].line, v.hidepid);
		cr_expect_eq(v.has_gid, cases[i].has_gid, "%s", cases[i].line);
	}
	cr_expect_eq(ms_proc_view_parse("1 0 0:1 / /proc rw - proc proc rw,gid=27,hidepid=2\n",
					"/proc", &v),
		     0);
	cr_expect_eq(v.gid, 27);
	/* A value not known here hides rather than shows. */
	cr_expect_eq(
		ms_proc_view_parse("1 0 0:1 / /proc rw - proc proc rw,hidepid=9\n", "/proc", &v),
		-EINVAL);
	cr_expect_eq(v.hidepid, MS_HIDEPID_INVISIBLE);
	/* Garbage lines are skipped. */
	cr_expect_eq(ms_proc_view_parse("x\n\n1 2\n", "/proc", &v), 0);
	cr_expect_eq(v.hidepid, MS_HIDEPID_OFF);
}

/* A process of uid that sleeps (a child of this test); killed with it. */
static pid_t sleeper_as(uid_t uid)
{
	pid_t parent = getpid(), pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		if (setgroups(0, NULL) != 0 || setresgid(uid, uid, uid) != 0 ||
		    setresuid(uid, uid, uid) != 0)
			_exit(126);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(0);
		execlp("sleep", "sleep", "60", (char *)NULL);
		_exit(127);
	}
	/* Until it is sleep (dumpable again after the exec). */
	char exe[64], link[256];
	snprintf(exe, sizeof(exe), "/proc/%d/exe", (int)pid);
	for (int i = 0; i < 5000; i++, usleep(1000)) {
		ssize_t n = readlink(exe, link, sizeof(link) - 1);
		if (n > 0 && (link[n] = '\0', strstr(link, "sleep")))
			break;
	}
	return pid;
}

/* Yama's ptrace_scope, taken on the value read: this kernel may have no
 * Yama (then /proc/sys/kernel/yama/ptrace_scope is missing and the scope is
 * 0), so the test points ms_yama_ptrace_scope at a file it writes, and the
 * access rule is asked with each value. */
Test(access, yama_ptrace_scope_decides_on_the_value_read)
{
	g_autofree char *dir = g_build_filename(g_get_tmp_dir(), "memstatfs-yama-XXXXXX", NULL);
	cr_assert(g_mkdtemp(dir));
	g_autofree char *path = g_strdup_printf("%s/ptrace_scope", dir);
	const uid_t uid = 60001;
	pid_t child = sleeper_as(uid), other = sleeper_as(uid);
	/* The same uid as both, and this test's process: child is its
	 * descendant; from other's side, child is not. */
	ms_caller parent_side = {.uid = uid, .gid = uid, .pid = getpid()};
	ms_caller sibling = {.uid = uid, .gid = uid, .pid = other};
	ms_caller attached = {.uid = uid, .gid = uid, .pid = other, .attached = true};
	ms_caller root = {.uid = 0, .pid = other};
	const struct {
		const char *value; /* NULL: no such file (no Yama) */
		int parent, sibling, attached, root;
	} cases[] = {
		{NULL, 0, 0, 0, 0},
		{"0\n", 0, 0, 0, 0},
		{"1\n", 0, -EACCES, 0, 0},
		{"2\n", -EACCES, -EACCES, 0, 0},
		{"3\n", -EACCES, -EACCES, 0, -EACCES},
		{"junk\n", -EACCES, -EACCES, 0, -EACCES}, /* unreadable: as 3 */
	};
	ms_yama_set_path(path);
	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		unlink(path);
		if (cases[i].value)
			cr_assert(g_file_set_contents(path, cases[i].value, -1, NULL));
		uid_t owner;
		g_autofree char *w1 = NULL, *w2 = NULL, *w3 = NULL, *w4 = NULL;
		const char *v = cases[i].value ? cases[i].value : "(none)\n";
		cr_expect_eq(ms_caller_may_read_process(child, &parent_side, &owner, &w1),
			     cases[i].parent, "scope %s: ancestor: %s", v, w1 ? w1 : "ok");
		cr_expect_eq(ms_caller_may_read_process(child, &sibling, &owner, &w2),
			     cases[i].sibling, "scope %s: sibling: %s", v, w2 ? w2 : "ok");
		cr_expect_eq(ms_caller_may_read_process(child, &attached, &owner, &w3),
			     cases[i].attached, "scope %s: attached: %s", v, w3 ? w3 : "ok");
		cr_expect_eq(ms_caller_may_read_process(child, &root, &owner, &w4), cases[i].root,
			     "scope %s: root: %s", v, w4 ? w4 : "ok");
		if (cases[i].sibling)
			cr_expect(w2 && strstr(w2, "ptrace_scope"), "the reason names Yama: %s",
				  w2 ? w2 : "");
	}
	/* Another uid: refused by ptrace's own rule, whatever Yama says. */
	unlink(path);
	ms_caller stranger = {.uid = uid + 1, .gid = uid + 1, .pid = getpid()};
	uid_t owner;
	g_autofree char *why = NULL;
	cr_expect_eq(ms_caller_may_read_process(child, &stranger, &owner, &why), -EACCES);
	ms_yama_set_path(NULL);
	kill(child, SIGKILL);
	kill(other, SIGKILL);
	waitpid(child, NULL, 0);
	waitpid(other, NULL, 0);
	rmdir(dir);
}

/* A sample's figures at the edges of their inputs: nothing sampled, a
 * census, every page dirty, no population, 64-bit counts, a period of 0
 * (a clock that did not move) and of a day: rate and its interval are
 * numbers, never NaN or negative, with low <= rate <= high. */
Test(stats, a_sample_at_the_edges_of_its_inputs)
{
	const uint64_t counts[] = {0, 1, 512, UINT64_MAX / 2};
	const uint32_t periods[] = {0, 1, 1000, 86400000};
	for (size_t a = 0; a < G_N_ELEMENTS(counts); a++) /* population */
		for (size_t b = 0; b <= a; b++)		  /* sampled <= population */
			for (size_t c = 0; c <= b; c++)	  /* dirty <= sampled */
				for (size_t d = 0; d < G_N_ELEMENTS(periods); d++) {
					ms_measurement m = {0};
					m.page_size = 4096;
					m.pages_total = counts[a];
					m.pages_population = counts[a];
					m.pages_sampled = counts[b];
					m.pages_dirty = counts[c];
					m.pages_new = counts[c];
					m.period_ms = periods[d];
					ms_measurement_finish(&m);
					cr_expect(isfinite(m.rate) && isfinite(m.rate_lo) &&
							  isfinite(m.rate_hi) && m.rate_lo >= 0 &&
							  m.rate_lo <= m.rate &&
							  m.rate <= m.rate_hi,
						  "N %llu n %llu d %llu period %u: %g [%g, %g]",
						  (unsigned long long)counts[a],
						  (unsigned long long)counts[b],
						  (unsigned long long)counts[c], periods[d], m.rate,
						  m.rate_lo, m.rate_hi);
					cr_expect(isfinite(m.memory_mib) && m.memory_mib >= 0);
				}
}

/* A writer of R distinct pages a second in address order, reverse or
 * strided order, and a full-scan's two looks over N pages in a random order
 * of 16-page chunks (full_scan.c's), each look taking a third of the window (as 1 GiB does
 * here): the count of pages changed in their own windows, over the mean of
 * those windows, with its interval (ms_measurement_windows,
 * ms_measurement_finish).  Simulated with a fixed seed: the interval covers
 * the truth in at least 93% of windows, and a look in address order (the
 * old scan) would have been far off. */
static double simulate_scan(GRand *r, int order, bool shuffled, double *lo, double *hi)
{
	const uint32_t N = 32768, chunk = 16, chunks = N / 16;
	const double R = 12800, C = N / R; /* a sweep every 2.56 s */
	const double S = 0.33, T = 1.0;	   /* look length, window */
	double phase = g_rand_double(r) * C;
	static uint32_t perm[2][2048];
	g_autofree int64_t *t1 = g_new(int64_t, N);
	g_autofree int64_t *t2 = g_new(int64_t, N);
	uint64_t dirty = 0;

	for (int k = 0; k < 2; k++) {
		for (uint32_t j = 0; j < chunks; j++)
			perm[k][j] = j;
		for (uint32_t j = chunks; shuffled && j > 1; j--) {
			uint32_t x = (uint32_t)g_rand_int_range(r, 0, (gint32)j),
				 y = perm[k][j - 1];
			perm[k][j - 1] = perm[k][x];
			perm[k][x] = y;
		}
	}
	for (uint32_t pos = 0; pos < chunks; pos++)
		for (uint32_t p = 0; p < chunk; p++) {
			uint32_t a = perm[0][pos] * chunk + p, b = perm[1][pos] * chunk + p;
			t1[a] = (int64_t)(1e6 * (S * pos / chunks));
			t2[b] = (int64_t)(1e6 * (T + S * pos / chunks));
		}
	for (uint32_t i = 0; i < N; i++) {
		/* When the writer comes to page i in its sweep. */
		uint32_t at = order == 0   ? i
			      : order == 1 ? N - 1 - i
					   : (i % 16) * (N / 16) + i / 16;
		double first = phase + at / R, from = t1[i] / 1e6, to = t2[i] / 1e6;
		double n = ceil((from - first) / C);
		dirty += first + n * C <= to;
	}
	ms_measurement m = {.page_size = 4096, .period_ms = 1000};
	m.pages_total = m.pages_population = m.pages_sampled = N;
	m.pages_dirty = dirty;
	ms_measurement_windows(&m, t1, t2, N, 0);
	m.order_chunk = chunk;
	ms_measurement_finish(&m);
	*lo = m.rate_lo;
	*hi = m.rate_hi;
	return m.rate;
}

Test(stats, a_random_order_of_reads_is_not_biased_by_the_order_of_writes)
{
	GRand *r = g_rand_new_with_seed(4242);
	const double truth = 12800 * 4096 / 1048576.0; /* 50 MiB/s */
	const char *names[] = {"address", "reverse", "strided"};

	for (int order = 0; order < 3; order++) {
		int covered = 0, trials = 400;
		double sq = 0, sq_in_address = 0;
		for (int t = 0; t < trials; t++) {
			double lo, hi, rate = simulate_scan(r, order, true, &lo, &hi);
			covered += lo <= truth && truth <= hi;
			sq += (rate - truth) * (rate - truth);
			rate = simulate_scan(r, order, false, &lo, &hi);
			sq_in_address += (rate - truth) * (rate - truth);
		}
		double cov = (double)covered / trials, rms = sqrt(sq / trials),
		       rms_in_address = sqrt(sq_in_address / trials);
		cr_log_info("%s order: interval coverage %.3f, rms error %.2f MiB/s (a scan in "
			    "address order: %.2f)",
			    names[order], cov, rms, rms_in_address);
		cr_expect(cov >= 0.93, "%s order: coverage %.3f", names[order], cov);
		cr_expect(rms < 0.015 * truth, "%s order: rms error %.2f MiB/s", names[order], rms);
		/* A writer in address order moves with a scan in address order
		 * (or against it): the old scan's error. */
		if (order < 2)
			cr_expect(rms_in_address > 2 * rms, "%s: %.2f, %.2f", names[order],
				  rms_in_address, rms);
	}
	g_rand_free(r);
}

/* exact: a census whose reads all fell within 2% of the window. */
Test(stats, exact_only_when_the_reads_were_quick)
{
	ms_measurement m = {.page_size = 4096,
			    .pages_total = 1000,
			    .pages_population = 1000,
			    .pages_sampled = 1000,
			    .pages_dirty = 100,
			    .period_ms = 1000,
			    .window_min_ms = 995,
			    .window_max_ms = 1005};
	ms_measurement_finish(&m);
	cr_expect(m.exact && m.rate_lo <= m.rate && m.rate <= m.rate_hi);
	m.window_min_ms = 900;
	m.window_max_ms = 1100;
	ms_measurement_finish(&m);
	cr_expect_not(m.exact);
	/* The low end over the longest window, the high over the shortest. */
	double c = 100 * 4096 / 1048576.0;
	cr_expect(fabs(m.rate_lo - c / 1.1) < 1e-9 && fabs(m.rate_hi - c / 0.9) < 1e-9, "[%f, %f]",
		  m.rate_lo, m.rate_hi);
	/* Coverage: the window over the time since the last one ended. */
	ms_measurement_coverage(&m, 1000000, 3000000);
	cr_expect(fabs(m.coverage - 0.5) < 1e-9);
	ms_measurement_coverage(&m, 0, 3000000);
	cr_expect(m.coverage == 1);
}
