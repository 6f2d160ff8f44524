/* test_meminfo.c: meminfo/ against /proc/meminfo, /proc/sys/vm and free(1). */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
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

/* Reads path; 0 or the errno. */
static int read_errno(const char *path)
{
	char buf[256];
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return errno;
	int r = read(fd, buf, sizeof(buf)) < 0 ? errno : 0;
	close(fd);
	return r;
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

/* The file's value as text read through fd in pieces of `piece` bytes
 * from where fd stands, up to end of file (at most size - 1 bytes). */
static void read_pieces(int fd, char *buf, size_t size, size_t piece, size_t *len)
{
	ssize_t n;
	while (*len + 1 < size &&
	       (n = read(fd, buf + *len, piece < size - 1 - *len ? piece : size - 1 - *len)) > 0)
		*len += (size_t)n;
	cr_assert(n >= 0 || *len + 1 == size, "read: %s", strerror(errno));
	buf[*len] = '\0';
}

/* What /proc/meminfo's readers rely on: a file kept open and read again at
 * offset 0 (as free(1) and top do) gives the value now, and a read in
 * pieces gives one value, even when the value moves between the pieces
 * (the kernel's seq_file renders at offset 0 and serves the rest from
 * that). */
Test(meminfo, a_kept_open_file_reads_afresh_at_0_and_pieces_are_one_value)
{
	char *p = mpath(&M, "meminfo/committed_as");
	int fd = open(p, O_RDONLY);
	char buf[64];
	size_t len = 0;
	size_t map = 512 << 20;

	cr_assert(fd >= 0, "%s: %s", p, strerror(errno));
	cr_assert_gt(pread(fd, buf, sizeof(buf) - 1, 0), 0);
	long before = strtol(buf, NULL, 10);
	void *m = mmap(NULL, map, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert(m != MAP_FAILED);
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	cr_assert_gt(n, 0);
	buf[n] = '\0';
	long mapped = strtol(buf, NULL, 10);
	cr_expect(labs(mapped - before - 512 * 1024) < 64 * 1024,
		  "the same open file read again at 0 moved by %ld kB for a 512 MiB mapping",
		  mapped - before);

	/* Two bytes, then the value moves by 512 MiB, then the rest. */
	cr_assert_eq(lseek(fd, 0, SEEK_SET), 0);
	read_pieces(fd, buf, 3, 2, &len);
	cr_assert_eq(len, 2);
	munmap(m, map);
	long unmapped = ours("committed_as");
	read_pieces(fd, buf, sizeof(buf), 2, &len);
	char *end;
	long pieces = strtol(buf, &end, 10);
	cr_expect(*end == '\n' && end[1] == '\0', "pieces make <%s>", buf);
	/* A value mixed of the two differs from both by at least 400 MiB
	 * (the digits after the second are the other value's). */
	cr_expect(labs(pieces - mapped) < 64 * 1024,
		  "read in pieces: %ld kB, with the mapping %ld, after it %ld", pieces, mapped,
		  unmapped);
	close(fd);
	free(p);
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

/* Writes text over path in place (the daemon keeps /proc/meminfo open and
 * reads it again from offset 0). */
static void rewrite(const char *path, const char *text)
{
	FILE *f = fopen(path, "r+");
	cr_assert(f, "%s: %m", path);
	cr_assert(ftruncate(fileno(f), 0) == 0);
	cr_assert(fputs(text, f) >= 0);
	cr_assert(fclose(f) == 0);
}

static char *ours_text(const char *name)
{
	char *p = mpath(&M, "meminfo/%s", name);
	char *t = read_file(p);
	free(p);
	return t;
}

/* The value of one metrics family without labels, as Prometheus parses
 * it; NAN when it is not there. */
static double metric(const char *text, const char *name)
{
	size_t n = strlen(name);
	for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
		if (strncmp(l, name, n) == 0 && l[n] == ' ')
			return strncmp(l + n + 1, "+Inf", 4) == 0 ? INFINITY
								  : strtod(l + n + 1, NULL);
	return NAN;
}

/* The derived figures at the edges of their inputs, from a /proc/meminfo
 * and a vm.overcommit_ratio the test writes: bind-mounted over the real
 * ones in this test's own mount namespace (criterion runs each test in a
 * process of its own), where the daemon is started. */
Test(meminfo, derived_figures_at_the_edges_of_their_inputs)
{
	char dir[512], fake[600], ratio[600];
	snprintf(dir, sizeof(dir), "%s/meminfo-edges-XXXXXX", tmp_dir());
	cr_assert(mkdtemp(dir));
	snprintf(fake, sizeof(fake), "%s/meminfo", dir);
	snprintf(ratio, sizeof(ratio), "%s/overcommit_ratio", dir);
	/* A kernel without MemAvailable (before 3.14): no `used`. */
	close(open(fake, O_CREAT | O_WRONLY, 0644));
	close(open(ratio, O_CREAT | O_WRONLY, 0644));
	rewrite(fake, "MemTotal:        1000 kB\n"
		      "MemFree:          400 kB\n"
		      "CommitLimit:        0 kB\n"
		      "Committed_AS:    1234 kB\n");
	rewrite(ratio, "0\n");
	cr_assert(unshare(CLONE_NEWNS) == 0, "unshare: %m");
	cr_assert(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0);
	cr_assert(mount(fake, "/proc/meminfo", NULL, MS_BIND, NULL) == 0, "bind: %m");
	cr_assert(mount(ratio, "/proc/sys/vm/overcommit_ratio", NULL, MS_BIND, NULL) == 0);
	mount_start(&M, NULL);

	char *p = mpath(&M, "meminfo/used");
	cr_expect(access(p, F_OK) < 0 && errno == ENOENT, "used without MemAvailable: %m");
	free(p);
	char *t = mpath(&M, "meminfo");
	char *ls = NULL;
	cr_assert_eq(sh_out(&ls, "ls '%s'", t), 0);
	cr_expect(!strstr(ls, "used\n"), "listed: %s", ls);
	cr_expect(strstr(ls, "commit_percent\n"), "listed: %s", ls);
	free(ls);
	free(t);

	/* vm.overcommit_ratio=0 without swap: CommitLimit 0.  It counts as
	 * 1 kB: a figure far above 100, never EIO. */
	t = ours_text("commit_percent");
	cr_expect_str_eq(t ? t : "(EIO)", "123400.00\n");
	free(t);
	t = ours_text("overcommit_ratio");
	cr_expect_str_eq(t ? t : "(none)", "0\n");
	free(t);
	rewrite(fake,
		"MemTotal:        1000 kB\nCommitLimit:        0 kB\nCommitted_AS:       0 kB\n");
	t = ours_text("commit_percent");
	cr_expect_str_eq(t ? t : "(EIO)", "0.00\n");
	free(t);
	t = mread(&M, "metrics");
	cr_assert(t);
	cr_expect_eq(metric(t, "memstat_commit_limit_bytes"), 0);
	cr_expect_eq(metric(t, "memstat_overcommit_ratio"), 0);
	free(t);

	/* A kernel with MemAvailable (the names are the running kernel's,
	 * taken at start): a daemon started afresh. */
	rewrite(fake, "MemTotal:        1000 kB\nMemAvailable:    400 kB\n"
		      "CommitLimit:     2000 kB\nCommitted_AS:    1000 kB\n");
	mount_start(&M, NULL);
	t = ours_text("used");
	cr_expect_str_eq(t ? t : "(none)", "600\n");
	free(t);
	/* MemAvailable above MemTotal (a kernel's estimate can be): used 0,
	 * as free prints it. */
	rewrite(fake, "MemTotal:        1000 kB\nMemAvailable:    5000 kB\n"
		      "CommitLimit:     2000 kB\nCommitted_AS:    1000 kB\n");
	t = ours_text("used");
	cr_expect_str_eq(t ? t : "(none)", "0\n");
	free(t);
	t = ours_text("commit_percent");
	cr_expect_str_eq(t ? t : "(EIO)", "50.00\n");
	free(t);

	/* 64-bit fields: exact in meminfo/, no wrap in metrics' bytes. */
	rewrite(fake, "MemTotal:       18446744073709551615 kB\n"
		      "MemAvailable:   0 kB\n"
		      "CommitLimit:    1 kB\n"
		      "Committed_AS:   18446744073709551615 kB\n"
		      "Hugepagesize:   18446744073709551615 kB\n"
		      "HugePages_Total: 18446744073709551615\n");
	t = ours_text("used");
	cr_expect_str_eq(t ? t : "(none)", "18446744073709551615\n");
	free(t);
	t = ours_text("commit_percent");
	cr_expect_str_eq(t ? t : "(EIO)", "1844674407370955161600.00\n");
	free(t);
	t = mread(&M, "metrics");
	cr_assert(t);
	double total = metric(t, "memstat_memory_total_bytes");
	cr_expect(fabs(total / (18446744073709551615.0 * 1024) - 1) < 1e-12, "%g", total);
	double pool = metric(t, "memstat_hugepages_total_bytes");
	cr_expect(fabs(pool / (18446744073709551615.0 * 1024 * 18446744073709551615.0) - 1) < 1e-12,
		  "hugepages: %g", pool);
	free(t);

	/* A field beyond 64 bits: its file shows it as printed, a figure
	 * derived from it is EIO (nothing half-read), metrics has its bytes
	 * as a double.  One that is not a number is no field (as if missing:
	 * ENOENT), and metrics leaves its family out. */
	rewrite(fake, "MemTotal:        1000 kB\nMemAvailable:    x kB\n"
		      "CommitLimit:     99999999999999999999999 kB\nCommitted_AS:    1 kB\n");
	p = mpath(&M, "meminfo/used");
	cr_expect_eq(read_errno(p), ENOENT);
	free(p);
	p = mpath(&M, "meminfo/commit_percent");
	cr_expect_eq(read_errno(p), EIO);
	free(p);
	t = mread(&M, "metrics");
	cr_assert(t);
	double limit = metric(t, "memstat_commit_limit_bytes");
	cr_expect(fabs(limit / (99999999999999999999999.0 * 1024) - 1) < 1e-12, "%g", limit);
	cr_expect(isnan(metric(t, "memstat_memory_available_bytes")), "%s", t);
	free(t);

	mount_stop(&M);
	umount2("/proc/meminfo", MNT_DETACH);
	umount2("/proc/sys/vm/overcommit_ratio", MNT_DETACH);
	unlink(fake);
	unlink(ratio);
	rmdir(dir);
}
