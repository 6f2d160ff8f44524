/* test_tree.c: the mounted tree, driven as a user would with open, read and
 * write, against a real daemon and real processes. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

static mount_t M;

static void up(void)
{
	mount_start(&M, NULL);
}

static void down(void)
{
	kill_kept();
	mount_stop(&M);
}

static int track(pid_t pid, const char *settings)
{
	return track_pid(&M, pid, settings);
}

TestSuite(tree, .init = up, .fini = down, .timeout = 60);

Test(tree, root_lists_control_files)
{
	char *p = mpath(&M, ".");
	DIR *d = opendir(p);
	int seen = 0;
	struct dirent *e;

	cr_assert(d);
	while ((e = readdir(d)))
		seen |= (strcmp(e->d_name, "track") == 0) |
			(strcmp(e->d_name, "untrack") == 0) << 1 |
			(strcmp(e->d_name, "meminfo") == 0) << 2;
	closedir(d);
	free(p);
	cr_assert_eq(seen, 7);
	struct stat st;
	p = mpath(&M, "track");
	cr_assert(stat(p, &st) == 0 && (st.st_mode & 07777) == 0644);
	free(p);
	p = mpath(&M, "untrack");
	cr_assert(stat(p, &st) == 0 && (st.st_mode & 07777) == 0200);
	cr_assert(open(p, O_RDONLY) < 0 && errno == EACCES, "untrack is write-only");
	free(p);
}

/* ---- track: every error a write can get ----
 * (A write of 0 bytes never reaches a file system: write(2) returns 0.) */

Test(tree, status_goes_measuring_measured_exited)
{
	pid_t pid = keep(dirtier_start(16, 16, 256, NULL));

	cr_assert_eq(track(pid, "period=2"), 0);
	char *s = mread(&M, "%d/status", (int)pid);
	cr_expect_str_eq(s, "measuring\n");
	free(s);
	char *p = mpath(&M, "%d/status", (int)pid);
	cr_expect(wait_content(p, "measured\n", 10));
	proc_kill(pid);
	cr_expect(wait_content(p, "exited\n", 10));
	free(p);
	/* Samples stay readable after exit; the live rate is gone. */
	char *latest = mread(&M, "%d/samples/latest", (int)pid);
	cr_expect(latest && strstr(latest, "mode page-sampling"));
	free(latest);
	p = mpath(&M, "%d/rate", (int)pid);
	cr_expect(read_file(p) == NULL && errno == ESRCH);
	free(p);
	/* Tracking the same pid again names the old, exited process. */
	cr_expect_eq(track(pid, NULL), ESRCH);
}

typedef struct {
	char *path;
	char *text;
	int err;
	double took;
} reader;

static void *read_thread(void *arg)
{
	reader *r = arg;
	double t0 = now_s();
	r->text = read_file(r->path);
	r->err = r->text ? 0 : errno;
	r->took = now_s() - t0;
	return NULL;
}

Test(tree, rate_blocks_until_the_first_figure)
{
	pid_t pid = keep(dirtier_start(16, 16, 256, NULL));
	reader r = {.path = mpath(&M, "%d/rate", (int)pid)};
	pthread_t th;

	cr_assert_eq(track(pid, "period=3"), 0);
	/* Before the first figure, a non-blocking read says so at once. */
	int fd = open(r.path, O_RDONLY | O_NONBLOCK);
	char buf[32];
	cr_assert(fd >= 0);
	cr_expect(read(fd, buf, sizeof(buf)) < 0 && errno == EAGAIN);
	close(fd);

	double t0 = now_s();
	pthread_create(&th, NULL, read_thread, &r);
	pthread_join(th, NULL);
	cr_assert_eq(r.err, 0, "read: %s", strerror(r.err));
	/* It returned a figure, and only once a period had passed. */
	char *end;
	double rate = strtod(r.text, &end);
	cr_expect(end != r.text && *end == '\n' && rate >= 0, "rate <%s>", r.text);
	cr_expect_geq(now_s() - t0, 2.5, "returned after %.2f s, before the first window closed",
		      now_s() - t0);
	char *status = mread(&M, "%d/status", (int)pid);
	cr_expect_str_eq(status, "measured\n");
	free(status);
	free(r.text);
	free(r.path);
}

static void on_usr1(int sig)
{
	(void)sig;
}

Test(tree, blocked_rate_read_is_interruptible)
{
	pid_t pid = keep(dirtier_start(16, 16, 256, NULL));
	char *path = mpath(&M, "%d/rate", (int)pid);
	int pfd[2];

	cr_assert_eq(track(pid, "period=30"), 0);
	cr_assert(pipe(pfd) == 0);
	pid_t child = fork();
	if (child == 0) {
		struct sigaction sa = {.sa_handler = on_usr1}; /* no SA_RESTART */
		sigaction(SIGUSR1, &sa, NULL);
		int fd = open(path, O_RDONLY);
		char buf[32];
		int e = 0;
		if (write(pfd[1], "x", 1) != 1)
			_exit(3);
		if (read(fd, buf, sizeof(buf)) < 0)
			e = errno;
		_exit(e == EINTR ? 0 : 1);
	}
	char x;
	cr_assert(read(pfd[0], &x, 1) == 1);
	usleep(300000); /* let it block */
	kill(child, SIGUSR1);
	int st;
	double t0 = now_s();
	while (waitpid(child, &st, WNOHANG) == 0 && now_s() - t0 < 10)
		usleep(10000);
	cr_assert(now_s() - t0 < 10, "reader still blocked after a signal");
	cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "read did not fail with EINTR");
	/* The daemon goes on answering. */
	char *s = mread(&M, "%d/status", (int)pid);
	cr_expect_str_eq(s, "measuring\n");
	free(s);
	free(path);
}

Test(tree, rate_read_fails_esrch_when_the_process_exits_first)
{
	pid_t pid = keep(dirtier_start(16, 16, 256, NULL));
	reader r = {.path = mpath(&M, "%d/rate", (int)pid)};
	pthread_t th;

	cr_assert_eq(track(pid, "period=3"), 0);
	pthread_create(&th, NULL, read_thread, &r);
	usleep(300000);
	proc_kill(pid);
	pthread_join(th, NULL);
	cr_expect_null(r.text);
	cr_expect_eq(r.err, ESRCH, "read: %s", strerror(r.err));
	free(r.path);
}

Test(tree, untrack_and_rmdir_remove_the_directory)
{
	pid_t a = keep(sleeper_start(0)), b = keep(sleeper_start(0));
	char name[16];
	struct stat st;

	cr_assert_eq(track(a, NULL), 0);
	cr_assert_eq(track(b, NULL), 0);
	snprintf(name, sizeof(name), "%d\n", (int)a);
	cr_assert_eq(mwrite(&M, "untrack", name), 0);
	char *p = mpath(&M, "%d", (int)a);
	cr_expect(stat(p, &st) < 0 && errno == ENOENT);
	free(p);
	cr_expect_eq(mwrite(&M, "untrack", name), ENOENT);
	cr_expect_eq(mwrite(&M, "untrack", "a b\n"), EINVAL);
	cr_expect_eq(mwrite(&M, "untrack", "\n"), EINVAL);
	p = mpath(&M, "%d", (int)b);
	cr_assert_eq(rmdir(p), 0);
	cr_expect(stat(p, &st) < 0 && errno == ENOENT);
	free(p);
	p = mpath(&M, "meminfo");
	cr_expect(rmdir(p) < 0 && errno == EPERM);
	free(p);
	char *list = mread(&M, "track");
	cr_expect_str_empty(list);
	free(list);
}

Test(tree, settings_files_read_and_write)
{
	pid_t pid = keep(sleeper_start(0));

	cr_assert_eq(track(pid, NULL), 0);
	char *v = mread(&M, "%d/period", (int)pid);
	cr_expect_str_eq(v, "1\n");
	free(v);
	v = mread(&M, "%d/sample_pages", (int)pid);
	cr_expect_str_eq(v, "512\n");
	free(v);
	v = mread(&M, "%d/mode", (int)pid);
	cr_expect_str_eq(v, "page-sampling\n");
	free(v);

	char rel[64];
	snprintf(rel, sizeof(rel), "%d/period", (int)pid);
	cr_expect_eq(mwrite(&M, rel, "7\n"), 0);
	cr_expect_eq(mwrite(&M, rel, "0\n"), EINVAL);
	cr_expect_eq(mwrite(&M, rel, "61"), EINVAL);
	cr_expect_eq(mwrite(&M, rel, "7 8"), EINVAL);
	cr_expect_eq(mwrite(&M, rel, "period=7"), EINVAL);
	v = mread(&M, "%s", rel);
	cr_expect_str_eq(v, "7\n", "a bad write changed nothing");
	free(v);
	snprintf(rel, sizeof(rel), "%d/sample_pages", (int)pid);
	cr_expect_eq(mwrite(&M, rel, "16384"), 0);
	cr_expect_eq(mwrite(&M, rel, "100"), EINVAL);
	v = mread(&M, "%s", rel);
	cr_expect_str_eq(v, "16384\n");
	free(v);
	snprintf(rel, sizeof(rel), "%d/mode", (int)pid);
	cr_expect_eq(mwrite(&M, rel, "page-sampling\n"), 0);
	cr_expect_eq(mwrite(&M, rel, "dirty-everything\n"), EINVAL);
	snprintf(rel, sizeof(rel), "%d/status", (int)pid);
	cr_expect_eq(mwrite(&M, rel, "measured\n"), EACCES);
}

Test(tree, memory_files_match_proc_status)
{
	pid_t pid = keep(dirtier_start(64, 32, 0, NULL));
	char path[64];

	cr_assert_eq(track(pid, NULL), 0);
	char *vmrss = mread(&M, "%d/memory/vmrss", (int)pid);
	char *vmsize = mread(&M, "%d/memory/vmsize", (int)pid);
	cr_assert(vmrss && vmsize);
	cr_expect_eq(strtol(vmsize, NULL, 10), proc_status_kb(pid, "VmSize"));
	long rss = strtol(vmrss, NULL, 10);
	cr_expect(labs(rss - proc_status_kb(pid, "VmRSS")) < 1024, "vmrss %ld", rss);
	cr_expect_geq(rss, 32 * 1024);
	snprintf(path, sizeof(path), "%d/memory", (int)pid);
	char *p = mpath(&M, "%s", path);
	DIR *d = opendir(p);
	struct dirent *e;
	int n = 0;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.') {
			n++;
			cr_expect(strncmp(e->d_name, "vm", 2) == 0 ||
					  strncmp(e->d_name, "rss", 3) == 0,
				  "%s", e->d_name);
		}
	closedir(d);
	free(p);
	cr_expect_geq(n, 10);
	free(vmrss);
	free(vmsize);
}

Test(tree, samples_directory_keeps_history_with_latest)
{
	mount_start(&M, "history=3");
	pid_t pid = keep(dirtier_start(16, 16, 256, NULL));
	char *dir = mpath(&M, "%d/samples", (int)pid);

	cr_assert_eq(track(pid, NULL), 0);
	char *fifth = sample_wait(&M, pid, 5, 20);
	cr_assert(fifth, "no 5th sample");
	free(fifth);

	char target[32];
	char *p = mpath(&M, "%d/samples/latest", (int)pid);
	ssize_t n = readlink(p, target, sizeof(target) - 1);
	cr_assert(n > 0);
	target[n] = '\0';
	free(p);
	long latest = strtol(target, NULL, 10);
	cr_expect_geq(latest, 5);

	DIR *d = opendir(dir);
	struct dirent *e;
	int count = 0;
	long lo = LONG_MAX, hi = 0;
	bool has_latest = false;
	while ((e = readdir(d))) {
		if (strcmp(e->d_name, "latest") == 0) {
			has_latest = true;
		} else if (e->d_name[0] != '.') {
			long s = strtol(e->d_name, NULL, 10);
			lo = s < lo ? s : lo;
			hi = s > hi ? s : hi;
			count++;
		}
	}
	closedir(d);
	cr_expect(has_latest);
	cr_expect_eq(count, 3, "history=3 keeps 3 samples, not %d", count);
	cr_expect_eq(hi - lo, 2);
	/* Old samples are gone for good; the numbers are not reused. */
	p = mpath(&M, "%d/samples/1", (int)pid);
	cr_expect(access(p, F_OK) != 0);
	free(p);

	char *text = mread(&M, "%d/samples/%ld", (int)pid, hi);
	cr_assert(text);
	const char *keys[] = {"seq",	     "start_ms",      "period_ms",     "mode",
			      "pages_total", "pages_sampled", "pages_dirty",   "memory_mib",
			      "rate",	     "rate_ci95_low", "rate_ci95_high"};
	for (size_t i = 0; i < sizeof(keys) / sizeof(*keys); i++) {
		char k[40];
		snprintf(k, sizeof(k), "\n%s ", keys[i]);
		cr_expect(strstr(text, k) || strncmp(text, k + 1, strlen(k) - 1) == 0,
			  "no %s in\n%s", keys[i], text);
	}
	double seq, lo_r, rate, hi_r, start;
	cr_expect(sample_get(text, "seq", &seq) && seq == (double)hi);
	cr_expect(sample_get(text, "rate", &rate) && sample_get(text, "rate_ci95_low", &lo_r) &&
		  sample_get(text, "rate_ci95_high", &hi_r));
	cr_expect(lo_r <= rate && rate <= hi_r, "%f <= %f <= %f", lo_r, rate, hi_r);
	cr_expect(sample_get(text, "start_ms", &start));
	cr_expect(fabs(start / 1000.0 - (double)time(NULL)) < 60, "start_ms is Unix ms");
	free(text);
	free(dir);
}

/* Samples are cached by the kernel (they never change): the size is the
 * content's, a second read is the same, and a pid tracked again is a new
 * target whose sample 1 is its own, not the page cache of the old one. */
Test(tree, samples_are_cached_and_never_mixed_up)
{
	mount_start(&M, NULL);
	pid_t pid = keep(dirtier_start(16, 16, 256, NULL));
	char line[32];
	snprintf(line, sizeof(line), "%d\n", (int)pid);

	cr_assert_eq(track(pid, NULL), 0);
	char *first = sample_wait(&M, pid, 1, 20);
	cr_assert(first);
	char *p = mpath(&M, "%d/samples/1", (int)pid);
	struct stat st;
	cr_assert_eq(stat(p, &st), 0);
	cr_expect_eq((size_t)st.st_size, strlen(first), "size %lld for %zu bytes",
		     (long long)st.st_size, strlen(first));
	char *again = read_file(p);
	cr_expect_str_eq(again, first);
	free(again);

	cr_assert_eq(mwrite(&M, "untrack", line), 0);
	cr_assert_eq(track(pid, NULL), 0);
	char *renewed = sample_wait(&M, pid, 1, 20);
	cr_assert(renewed);
	double s1, s2;
	cr_assert(sample_get(first, "start_ms", &s1) && sample_get(renewed, "start_ms", &s2));
	cr_expect_gt(s2, s1, "the new target's sample 1 is the old one's:\n%s", renewed);
	/* The same name opened afresh, and with the old size cached or not. */
	char *direct = read_file(p);
	cr_expect_str_eq(direct, renewed);
	free(direct);
	free(renewed);
	free(first);
	free(p);
}

/* What readers of a live figure rely on, as for a sysfs attribute: a file
 * kept open and read again at offset 0 gives the latest figure, and a read
 * in pieces gives one figure even when a new one is published between the
 * pieces.  (Why `rate` is read with direct_io, not from the page cache:
 * BENCHMARKS.md, "The read path".) */
Test(tree, rate_kept_open_reads_the_latest_and_pieces_are_one_figure)
{
	mount_start(&M, NULL);
	pid_t pid = keep(dirtier_start(16, 16, 256, NULL));
	cr_assert_eq(track(pid, NULL), 0);
	free(sample_wait(&M, pid, 1, 20));
	char *p = mpath(&M, "%d/rate", (int)pid);
	int fd = open(p, O_RDONLY);
	cr_assert(fd >= 0, "%s: %s", p, strerror(errno));

	int rounds = 0, differed = 0;
	for (int round = 0; round < 4; round++) {
		/* The whole figure, then its first byte alone, with no
		 * sample between the two (else try again). */
		char *whole = NULL, buf[64];
		long seq;
		do {
			free(whole);
			seq = sample_latest_seq(&M, pid);
			whole = read_file(p);
			cr_assert(whole);
			cr_assert_eq(pread(fd, buf, 1, 0), 1);
			cr_assert_eq(lseek(fd, 1, SEEK_SET), 1);
		} while (sample_latest_seq(&M, pid) != seq);
		/* A new sample, then the rest of the figure. */
		double deadline = now_s() + 20;
		while (sample_latest_seq(&M, pid) == seq && now_s() < deadline)
			usleep(20000);
		cr_assert_gt(sample_latest_seq(&M, pid), seq, "no new sample in 20 s");
		ssize_t n, len = 1;
		while ((n = read(fd, buf + len, 1)) > 0 && len < (ssize_t)sizeof(buf) - 1)
			len += n;
		cr_assert_geq(n, 0, "read: %s", strerror(errno));
		buf[len] = '\0';
		cr_expect_str_eq(buf, whole,
				 "read a byte at a time across sample %ld: <%s>, the figure "
				 "at the first byte <%s>",
				 seq + 1, buf, whole);
		/* The same open file at 0 again: the new figure. */
		char *now = read_file(p);
		n = pread(fd, buf, sizeof(buf) - 1, 0);
		cr_assert_gt(n, 0);
		buf[n] = '\0';
		if (sample_latest_seq(&M, pid) == seq + 1)
			cr_expect_str_eq(buf, now,
					 "the open file read again at 0: <%s>, the latest <%s>",
					 buf, now);
		rounds++;
		differed += strcmp(now, whole) != 0;
		free(now);
		free(whole);
	}
	/* The figures moved, or the pieces could not have been mixed. */
	cr_log_info("%d of %d rounds crossed a change of the figure", differed, rounds);
	close(fd);
	free(p);
}

/* ---- the daemon ---- */

Test(tree, sigterm_unmounts_and_exits_zero)
{
	pid_t pid = keep(sleeper_start(0));
	cr_assert_eq(track(pid, NULL), 0);
	int status = mount_stop(&M);
	cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %#x", status);
	cr_expect_not(is_mounted(M.mnt));
}

Test(tree, fusermount_u_stops_the_daemon)
{
	char cmd[400];
	int status = -1;

	snprintf(cmd, sizeof(cmd), "fusermount3 -u '%s'", M.mnt);
	cr_assert_eq(system(cmd), 0);
	for (double end = now_s() + 10; now_s() < end; usleep(10000))
		if (waitpid(M.daemon, &status, WNOHANG) == M.daemon)
			break;
	cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %#x", status);
	M.daemon = 0;
}

Test(tree, threads_stay_bounded_with_many_targets)
{
	enum { N = 40 };
	pid_t p[N];
	char path[64];

	for (int i = 0; i < N; i++) {
		p[i] = sleeper_start(0);
		cr_assert_eq(track(p[i], NULL), 0);
	}
	sleep(2);
	snprintf(path, sizeof(path), "/proc/%d/task", (int)M.daemon);
	DIR *d = opendir(path);
	int threads = 0;
	while (readdir(d))
		threads++;
	closedir(d);
	threads -= 2;
	for (int i = 0; i < N; i++)
		proc_kill(p[i]);
	/* main + scheduler + workers (<= 8) + libfuse's (<= 10 by default) */
	cr_expect_leq(threads, 20, "%d threads for %d targets", threads, N);
}

Test(tree, nonblocking_set_after_open_and_reads_at_offsets)
{
	pid_t pid = keep(sleeper_start(0));
	cr_assert_eq(track(pid, "period=30"), 0);
	char *p = mpath(&M, "%d/rate", (int)pid);
	int fd = open(p, O_RDONLY);
	cr_assert(fd >= 0);
	/* O_NONBLOCK set after the open counts too. */
	cr_assert(fcntl(fd, F_SETFL, O_NONBLOCK) == 0);
	char buf[32];
	cr_expect(read(fd, buf, sizeof(buf)) < 0 && errno == EAGAIN);
	close(fd);
	free(p);

	/* A first read at an offset reads from that offset. */
	p = mpath(&M, "%d/period", (int)pid);
	fd = open(p, O_RDONLY);
	cr_assert(fd >= 0);
	memset(buf, 0, sizeof(buf));
	cr_expect_eq(pread(fd, buf, sizeof(buf), 1), 2, "\"30\\n\" from offset 1 is 2 bytes");
	cr_expect(memcmp(buf, "0\n", 2) == 0);
	cr_expect_eq(pread(fd, buf, sizeof(buf), 3), 0);
	close(fd);
	free(p);
}

Test(tree, the_tree_cannot_be_rearranged)
{
	char *a = mpath(&M, "track"), *b = mpath(&M, "renamed"), *c = mpath(&M, "newdir");
	cr_expect(rename(a, b) < 0 && errno == EPERM);
	cr_expect(symlink("track", b) < 0 && errno == EPERM);
	cr_expect(link(a, b) < 0 && errno == EPERM);
	cr_expect(mkdir(c, 0755) < 0 && errno == EPERM);
	cr_expect(unlink(a) < 0 && errno == EPERM);
	cr_expect(open(b, O_CREAT | O_WRONLY, 0644) < 0 && errno == EPERM);
	free(a);
	free(b);
	free(c);
}
