/* test_meminfo.c: meminfo/ against /proc/meminfo, /proc/sys/vm and free(1). */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <ctype.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "harness.h"

static mount_t M;
static void up(void)
{
	mount_start(&M, NULL);
}
static void down(void)
{
	mount_stop(&M);
}
TestSuite(meminfo, .init = up, .fini = down, .timeout = 30);

/* The file name rule, written out independently of the daemon's code. */
static void file_name(const char *field, char *out)
{
	size_t n = 0;
	for (; *field; field++)
		out[n++] = (*field == '(' || *field == ')') ? '_' : (char)tolower(*field);
	while (n && out[n - 1] == '_')
		n--;
	out[n] = '\0';
}

static long ours(const char *name)
{
	char *p = mpath(&M, "meminfo/%s", name);
	char *t = read_file(p);
	cr_assert(t, "meminfo/%s: %m", name);
	char *end;
	long v = strtol(t, &end, 10);
	cr_assert(*end == '\n' && end[1] == '\0', "meminfo/%s holds <%s>", name, t);
	free(t);
	free(p);
	return v;
}

static long kernels(const char *field)
{
	char *t = read_file("/proc/meminfo");
	size_t n = strlen(field);
	long v = -1;
	for (char *l = t; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
		if (strncmp(l, field, n) == 0 && l[n] == ':')
			v = strtol(l + n + 1, NULL, 10);
	free(t);
	return v;
}

Test(meminfo, every_field_has_a_file_and_the_names_follow_the_rule)
{
	char *t = read_file("/proc/meminfo");
	int fields = 0;
	cr_assert(t);
	for (char *l = t; *l; l = strchr(l, '\n') + 1) {
		char field[64], name[64];
		if (sscanf(l, "%63[^:]:", field) != 1)
			break;
		file_name(field, name);
		char *p = mpath(&M, "meminfo/%s", name);
		cr_expect(access(p, R_OK) == 0, "no meminfo/%s for %s", name, field);
		free(p);
		fields++;
		if (!strchr(l, '\n'))
			break;
	}
	free(t);
	cr_expect_geq(fields, 30);
	char *p = mpath(&M, "meminfo/active_anon");
	cr_expect(access(p, R_OK) == 0);
	free(p);
}

Test(meminfo, steady_values_equal_the_kernels)
{
	const char *fields[] = {"MemTotal",	   "SwapTotal",	   "CommitLimit",
				"HugePages_Total", "Hugepagesize", "VmallocTotal"};
	for (size_t i = 0; i < sizeof(fields) / sizeof(*fields); i++) {
		char name[64];
		file_name(fields[i], name);
		long k = kernels(fields[i]);
		if (k < 0)
			continue;
		cr_expect_eq(ours(name), k, "%s", fields[i]);
	}
}

Test(meminfo, moving_values_are_read_fresh)
{
	/* Bracket our read between two of the kernel's. */
	const char *fields[] = {"Committed_AS", "MemAvailable", "MemFree", "Active(anon)"};
	for (size_t i = 0; i < sizeof(fields) / sizeof(*fields); i++) {
		char name[64];
		file_name(fields[i], name);
		long a = kernels(fields[i]);
		long o = ours(name);
		long b = kernels(fields[i]);
		long lo = (a < b ? a : b), hi = (a > b ? a : b);
		long slack = 4096 + hi / 100;
		cr_expect(o >= lo - slack && o <= hi + slack, "%s: ours %ld, kernel %ld..%ld",
			  fields[i], o, lo, hi);
	}
	/* A mapping that commits memory moves committed_as by its size. */
	long before = ours("committed_as");
	size_t len = 512 << 20;
	void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert(m != MAP_FAILED);
	long after = ours("committed_as");
	munmap(m, len);
	cr_expect(labs(after - before - 512 * 1024) < 64 * 1024,
		  "committed_as moved by %ld kB for a 512 MiB mapping", after - before);
}

Test(meminfo, overcommit_files_equal_proc_sys_vm)
{
	const char *names[] = {"overcommit_memory", "overcommit_ratio", "overcommit_kbytes"};
	for (int i = 0; i < 3; i++) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/sys/vm/%s", names[i]);
		char *k = read_file(path);
		char *p = mpath(&M, "meminfo/%s", names[i]);
		char *o = read_file(p);
		cr_expect_str_eq(o, k, "%s", names[i]);
		free(k);
		free(o);
		free(p);
	}
}

Test(meminfo, used_matches_free_and_commit_percent_its_definition)
{
	FILE *f = popen("free -k", "r");
	char line[256];
	long total = -1, used = -1;
	cr_assert(f);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Mem: %ld %ld", &total, &used) == 2)
			break;
	pclose(f);
	cr_assert_gt(used, 0, "could not parse free -k");
	long o = ours("used");
	cr_expect(labs(o - used) < 32 * 1024, "used: ours %ld kB, free says %ld kB", o, used);
	cr_expect_eq(ours("memtotal"), total);

	char *p = mpath(&M, "meminfo/commit_percent");
	char *t = read_file(p);
	double pct = strtod(t, NULL);
	cr_expect(strchr(t, '.') && strlen(strchr(t, '.')) == 4, "two decimals: <%s>", t);
	double want = 100.0 * (double)kernels("Committed_AS") / (double)kernels("CommitLimit");
	cr_expect(fabs(pct - want) < 0.5, "commit_percent %f, want %f", pct, want);
	free(t);
	free(p);
}
