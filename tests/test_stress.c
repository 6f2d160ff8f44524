/* test_stress.c: the daemon under load, for STRESS_SECONDS (60 by default).
 *
 * 64 reader threads loop over rate, status, samples/ and meminfo/ of
 * whatever is tracked; a churn thread keeps starting processes, tracking
 * them, killing and untracking them; a settings thread changes period,
 * sample_pages and mode underneath.  At the end: every value read parsed
 * and was one a sample really held (no torn reads), the daemon's file
 * descriptors and memory did not grow, its thread count stayed bounded.
 * The figures are printed for the README's reliability section.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <math.h>
#include <stdarg.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define READERS 64
#define SLOTS	8 /* targets alive at once */

static mount_t M;

/* The targets being churned: slot i holds pid[i] (0 when empty).  Readers
 * pick any slot; a pid read there may be gone by the time it is used, which
 * is part of the test. */
static atomic_int slot_pid[SLOTS];
static atomic_bool stop;

static atomic_long n_reads, n_errors_expected, n_torn, n_bad_parse, n_tracked, n_untracked,
	n_settings;
static char first_problem[512];
static pthread_mutex_t problem_lock = PTHREAD_MUTEX_INITIALIZER;

static void problem(atomic_long *counter, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void problem(atomic_long *counter, const char *fmt, ...)
{
	va_list ap;
	atomic_fetch_add(counter, 1);
	pthread_mutex_lock(&problem_lock);
	if (!first_problem[0]) {
		va_start(ap, fmt);
		vsnprintf(first_problem, sizeof(first_problem), fmt, ap);
		va_end(ap);
	}
	pthread_mutex_unlock(&problem_lock);
}

/* Reads a whole file with one open; 0, or the errno. */
static int slurp(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_NONBLOCK);
	if (fd < 0)
		return errno;
	size_t got = 0;
	ssize_t n;
	while (got + 1 < len && (n = read(fd, buf + got, len - 1 - got)) > 0)
		got += (size_t)n;
	int e = n < 0 ? errno : 0;
	close(fd);
	buf[got] = '\0';
	return e;
}

/* Errors a reader may meet because a target came or went meanwhile. */
static bool expected_errno(int e)
{
	return e == ENOENT || e == ESRCH || e == EAGAIN || e == EIO;
}

static bool is_number(const char *s, bool decimals)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end != '\n' || end[1] != '\0' || v < 0)
		return false;
	return decimals || strchr(s, '.') == NULL;
}

/* A sample file must hold every key, its seq must be its name, and its
 * rate must be what its counts say: a torn read would break one of them. */
static void check_sample(const char *text, long seq)
{
	static const char *const keys[] = {
		"seq",		 "start_ms",	"period_ms",	 "mode",
		"method",	 "page_size",	"pages_total",	 "pages_population",
		"pages_sampled", "pages_dirty", "pages_new",	 "pages_unmapped",
		"memory_mib",	 "rate",	"rate_ci95_low", "rate_ci95_high",
		"exact"};
	double v[G_N_ELEMENTS(keys)];
	for (size_t i = 0; i < G_N_ELEMENTS(keys); i++) {
		if (i == 3 || i == 4)
			continue; /* words */
		if (!sample_get(text, keys[i], &v[i])) {
			problem(&n_bad_parse, "sample %ld without %s:\n%s", seq, keys[i], text);
			return;
		}
	}
	if ((long)v[0] != seq)
		problem(&n_torn, "samples/%ld says seq %ld", seq, (long)v[0]);
	/* rate = (dirty / sampled * population + new) * page / 2^20 / period */
	double sampled = v[8], pop = v[7], dirty = v[9], fresh = v[10], page = v[5], ms = v[2];
	if (sampled > 0 && ms > 0) {
		double r = (dirty / sampled * pop + fresh) * page / 1048576.0 / (ms / 1000.0);
		if (fabs(r - v[13]) > 0.01 + 1e-6 * r)
			problem(&n_torn, "samples/%ld: rate %.2f but its counts give %.2f", seq,
				v[13], r);
	}
}

static void *reader(void *data)
{
	unsigned seed = (unsigned)(uintptr_t)data;
	char path[512], buf[8192], link[64];

	while (!atomic_load(&stop)) {
		int pid = atomic_load(&slot_pid[rand_r(&seed) % SLOTS]);
		int what = rand_r(&seed) % 5;
		int e = 0;
		if (what == 0 || pid == 0) {
			snprintf(path, sizeof(path), "%s/meminfo/%s", M.mnt,
				 rand_r(&seed) % 2 ? "committed_as" : "commit_percent");
			e = slurp(path, buf, sizeof(buf));
			if (!e && !is_number(buf, true))
				problem(&n_bad_parse, "%s: %s", path, buf);
		} else if (what == 1) {
			snprintf(path, sizeof(path), "%s/%d/status", M.mnt, pid);
			e = slurp(path, buf, sizeof(buf));
			if (!e && strncmp(buf, "measuring", 9) && strncmp(buf, "measured", 8) &&
			    strncmp(buf, "exited", 6) && strncmp(buf, "error", 5))
				problem(&n_bad_parse, "%s: %s", path, buf);
		} else if (what == 2) {
			/* The rate must be the rate line of a sample kept. */
			snprintf(path, sizeof(path), "%s/%d/rate", M.mnt, pid);
			e = slurp(path, buf, sizeof(buf));
			if (!e && !is_number(buf, true)) {
				problem(&n_bad_parse, "%s: %s", path, buf);
			} else if (!e) {
				snprintf(path, sizeof(path), "%s/%d/samples/latest", M.mnt, pid);
				ssize_t n = readlink(path, link, sizeof(link) - 1);
				if (n > 0) {
					link[n] = '\0';
					char sample[8192], want[64];
					snprintf(path, sizeof(path), "%s/%d/samples/%s", M.mnt, pid,
						 link);
					snprintf(want, sizeof(want), "\nrate %.*s",
						 (int)strlen(buf) - 1, buf);
					/* The latest, or one before it (a newer one may
					 * have come between the two reads). */
					bool found = false;
					for (long s = atol(link);
					     s > atol(link) - 5 && s > 0 && !found; s--) {
						snprintf(path, sizeof(path), "%s/%d/samples/%ld",
							 M.mnt, pid, s);
						found = slurp(path, sample, sizeof(sample)) == 0 &&
							strstr(sample, want);
					}
					if (!found && readlink(path, link, sizeof(link) - 1) > 0)
						/* Still tracked, yet no kept sample
						 * holds the figure read. */
						problem(&n_torn,
							"rate %.*s is in none of the last samples "
							"of %d",
							(int)strlen(buf) - 1, buf, pid);
				}
			}
		} else {
			snprintf(path, sizeof(path), "%s/%d/samples", M.mnt, pid);
			DIR *d = opendir(path);
			if (!d) {
				e = errno;
			} else {
				struct dirent *de;
				long seqs[128];
				int n = 0;
				while ((de = readdir(d)) && n < 128)
					if (de->d_name[0] >= '1' && de->d_name[0] <= '9')
						seqs[n++] = atol(de->d_name);
				closedir(d);
				if (n > 0) {
					long seq = seqs[rand_r(&seed) % n];
					snprintf(path, sizeof(path), "%s/%d/samples/%ld", M.mnt,
						 pid, seq);
					e = slurp(path, buf, sizeof(buf));
					if (!e)
						check_sample(buf, seq);
				}
			}
		}
		if (e && !expected_errno(e))
			problem(&n_bad_parse, "%s: unexpected %s", path, strerror(e));
		else if (e)
			atomic_fetch_add(&n_errors_expected, 1);
		atomic_fetch_add(&n_reads, 1);
	}
	return NULL;
}

static void *churn(void *data)
{
	unsigned seed = 7;
	char path[512], line[64];
	(void)data;

	while (!atomic_load(&stop)) {
		int i = rand_r(&seed) % SLOTS;
		int old = atomic_exchange(&slot_pid[i], 0);
		if (old) {
			/* Kill it, then untrack it (sometimes before the daemon
			 * noticed, sometimes after). */
			kill(old, SIGKILL);
			waitpid(old, NULL, 0);
			if (rand_r(&seed) % 2)
				usleep(200000);
			snprintf(path, sizeof(path), "%s/untrack", M.mnt);
			snprintf(line, sizeof(line), "%d\n", old);
			if (write_file(path, line) == 0)
				atomic_fetch_add(&n_untracked, 1);
		}
		pid_t pid =
			rand_r(&seed) % 3 ? dirtier_start(16, 16, 1024, NULL) : sleeper_start(0);
		const char *modes[] = {"", " mode=full-scan", " sample_pages=16384", " period=2"};
		snprintf(path, sizeof(path), "%s/track", M.mnt);
		snprintf(line, sizeof(line), "%d%s\n", (int)pid, modes[rand_r(&seed) % 4]);
		if (write_file(path, line) == 0)
			atomic_fetch_add(&n_tracked, 1);
		atomic_store(&slot_pid[i], pid);
		usleep(100000);
	}
	return NULL;
}

static void *settings(void *data)
{
	unsigned seed = 11;
	char path[512];
	(void)data;

	while (!atomic_load(&stop)) {
		int pid = atomic_load(&slot_pid[rand_r(&seed) % SLOTS]);
		if (pid) {
			static const char *const files[] = {"period", "sample_pages", "mode"};
			static const char *const values[][3] = {
				{"1\n", "2\n", "1\n"},
				{"512\n", "4096\n", "128\n"},
				{"page-sampling\n", "full-scan\n", "page-sampling\n"}};
			int f = rand_r(&seed) % 3;
			snprintf(path, sizeof(path), "%s/%d/%s", M.mnt, pid, files[f]);
			if (write_file(path, values[f][rand_r(&seed) % 3]) == 0)
				atomic_fetch_add(&n_settings, 1);
		}
		usleep(20000);
	}
	return NULL;
}

static int count_dir(const char *path)
{
	DIR *d = opendir(path);
	int n = 0;
	if (!d)
		return -1;
	while (readdir(d))
		n++;
	closedir(d);
	return n - 2;
}

/* Whether pid runs with AddressSanitizer's runtime. */
static bool sanitized(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	char *maps = read_file(path);
	bool asan = maps && strstr(maps, "libasan");
	free(maps);
	return asan;
}

static long daemon_field(const char *field)
{
	return proc_status_kb(M.daemon, field);
}

static void down(void)
{
	mount_stop(&M);
}

/* The daemon is stopped (and its log checked) even when the test fails. */
TestSuite(stress, .fini = down);

Test(stress, readers_churn_and_settings, .timeout = 600)
{
	double seconds = getenv("STRESS_SECONDS") ? atof(getenv("STRESS_SECONDS")) : 60;
	char fdpath[64];

	mount_start(&M, "history=10");
	snprintf(fdpath, sizeof(fdpath), "/proc/%d/fd", (int)M.daemon);
	int fds_before = count_dir(fdpath);
	long rss_before = daemon_field("VmRSS");

	pthread_t readers[READERS], churner, setter;
	for (int i = 0; i < READERS; i++)
		cr_assert(pthread_create(&readers[i], NULL, reader, (void *)(uintptr_t)(i + 1)) ==
			  0);
	cr_assert(pthread_create(&churner, NULL, churn, NULL) == 0);
	cr_assert(pthread_create(&setter, NULL, settings, NULL) == 0);

	long threads_max = 0;
	double start = now_s(), rss_mid = 0;
	while (now_s() - start < seconds) {
		usleep(250000);
		threads_max = MAX(threads_max, daemon_field("Threads"));
		if (rss_mid == 0 && now_s() - start > seconds / 2)
			rss_mid = (double)daemon_field("VmRSS");
	}
	atomic_store(&stop, true);
	for (int i = 0; i < READERS; i++)
		pthread_join(readers[i], NULL);
	pthread_join(churner, NULL);
	pthread_join(setter, NULL);
	double elapsed = now_s() - start;

	/* Clear everything: the daemon must be back where it started. */
	for (int i = 0; i < SLOTS; i++) {
		int pid = atomic_exchange(&slot_pid[i], 0);
		if (pid) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
		}
	}
	char *track = mpath(&M, "track");
	char *list = read_file(track);
	char *untrack = mpath(&M, "untrack");
	for (char *l = list; l && *l;) {
		char *nl = strchr(l, '\n');
		char name[32];
		snprintf(name, sizeof(name), "%.*s", (int)strcspn(l, " "), l);
		write_file(untrack, name);
		l = nl ? nl + 1 : NULL;
	}
	free(list);
	sleep(1);
	int fds_after = count_dir(fdpath);
	long rss_after = daemon_field("VmRSS");
	long threads_after = daemon_field("Threads");

	fprintf(stderr,
		"stress: %.0f s, %d readers: %ld reads (%.0f/s), %ld tracked, %ld untracked, "
		"%ld settings changed; %ld reads met a target that had just gone; "
		"%ld torn, %ld unparsable; daemon fds %d -> %d, RSS %ld -> %.0f (middle) -> %ld "
		"kB, "
		"threads at most %ld, %ld at the end\n",
		elapsed, READERS, atomic_load(&n_reads), atomic_load(&n_reads) / elapsed,
		atomic_load(&n_tracked), atomic_load(&n_untracked), atomic_load(&n_settings),
		atomic_load(&n_errors_expected), atomic_load(&n_torn), atomic_load(&n_bad_parse),
		fds_before, fds_after, rss_before, rss_mid, rss_after, threads_max, threads_after);

	cr_expect_eq(atomic_load(&n_torn), 0, "torn: %s", first_problem);
	cr_expect_eq(atomic_load(&n_bad_parse), 0, "bad: %s", first_problem);
	/* That the load ran, not how fast (speed is for the benchmarks): the
	 * churn went round every slot, every reader read. */
	cr_expect_geq(atomic_load(&n_tracked), SLOTS, "the churn did not churn");
	cr_expect_geq(atomic_load(&n_reads), READERS, "the readers did not read");
	cr_expect_eq(fds_after, fds_before, "file descriptors grew");
	/* Memory: the allocator's arenas fill up in the first half and are
	 * kept; a leak per read, per target or per setting would go on
	 * growing through the second half (a third of a million reads).
	 * Under AddressSanitizer freed memory sits in its quarantine (and
	 * LeakSanitizer checks for leaks at exit instead). */
	if (!sanitized(M.daemon))
		cr_expect_lt(rss_after - (long)rss_mid, 8 * 1024,
			     "RSS grew by %ld kB in the second half", rss_after - (long)rss_mid);
	/* workers (at most 8) + libfuse's (max_threads 10 by default) + main. */
	cr_expect_leq(threads_max, 8 + 10 + 2, "threads: %ld", threads_max);
	free(track);
	free(untrack);
}
