/* test_track.c: what `track` takes and refuses, with the errno a kernel
 * pseudo-file would use, against a real daemon and real processes. */
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

TestSuite(track, .init = up, .fini = down, .timeout = 60);

Test(track, rejects_malformed_lines_with_einval)
{
	pid_t pid = keep(sleeper_start(0));
	char line[64];
	const char *bad[] = {
		"\n",	     "   \n", "abc\n",	 "-1\n",
		"0\n",	     "+5\n",  "12abc\n", "99999999999999999999\n",
		"4194305\n",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
		cr_expect_eq(mwrite(&M, "track", bad[i]), EINVAL, "track <%s>", bad[i]);
	const char *bad_settings[] = {
		"period=0",
		"period=61",
		"period=1.5",
		"period=",
		"sample_pages=127",
		"sample_pages=16385",
		"mode=bogus",
		"mode=",
		"colour=red",
		"period=2 period=3",
		"nokey",
		"123",
		"precision=",
		"precision=0%",
		"precision=101%",
		"precision=2MiB",
		"precision=-1%",
		"precision=10%,20%",
		"precision=0MiB/s",
		"precision=1.5.5%",
		"precision=10%,",
		"precision=on",
	};
	for (size_t i = 0; i < sizeof(bad_settings) / sizeof(*bad_settings); i++) {
		snprintf(line, sizeof(line), "%d %s\n", (int)pid, bad_settings[i]);
		cr_expect_eq(mwrite(&M, "track", line), EINVAL, "track <%s>", line);
	}
	/* Two pids in one write. */
	snprintf(line, sizeof(line), "%d %d\n", (int)pid, (int)getpid());
	cr_expect_eq(mwrite(&M, "track", line), EINVAL);
	/* Nothing got tracked by any of that. */
	char *list = mread(&M, "track");
	cr_assert(list);
	cr_expect_str_empty(list);
	free(list);
	/* And the reason is in the log. */
	char *log = read_file(M.log);
	cr_expect(log && strstr(log, "not a pid"), "log: %s", log);
	free(log);
}

Test(track, accepts_white_space_and_settings)
{
	pid_t pid = keep(sleeper_start(0));
	char line[128];

	snprintf(line, sizeof(line), "  %d\tperiod=3 sample_pages=1024 mode=page-sampling \n",
		 (int)pid);
	cr_assert_eq(mwrite(&M, "track", line), 0);
	char *list = mread(&M, "track");
	/* sample_pages given alone: it decides, not a precision. */
	snprintf(line, sizeof(line),
		 "%d period=3 sample_pages=1024 precision=off mode=page-sampling\n", (int)pid);
	cr_expect_str_eq(list, line);
	/* The listing is itself a valid write: writing it back changes nothing. */
	cr_expect_eq(mwrite(&M, "track", list), 0);
	free(list);
	/* Tracking again applies only the settings given. */
	cr_assert_eq(track(pid, "period=5"), 0);
	char *period = mread(&M, "%d/period", (int)pid);
	char *pages = mread(&M, "%d/sample_pages", (int)pid);
	cr_expect_str_eq(period, "5\n");
	cr_expect_str_eq(pages, "1024\n");
	free(period);
	free(pages);
}

/* precision: the default, what a write sets, what sample_pages does to it,
 * and a bad value refused with the reason in the log. */
Test(track, precision_setting)
{
	pid_t pid = keep(sleeper_start(0));

	cr_assert_eq(track(pid, NULL), 0);
	char *v = mread(&M, "%d/precision", (int)pid);
	cr_expect_str_eq(v, "25%,1MiB/s\n");
	free(v);
	char path[64];
	snprintf(path, sizeof(path), "%d/precision", (int)pid);
	cr_expect_eq(mwrite(&M, path, "10%\n"), 0);
	v = mread(&M, "%d/precision", (int)pid);
	cr_expect_str_eq(v, "10%\n");
	free(v);
	cr_expect_eq(mwrite(&M, path, "512KiB/s,2.5%"), 0);
	v = mread(&M, "%d/precision", (int)pid);
	cr_expect_str_eq(v, "2.5%,0.5MiB/s\n");
	free(v);
	const char *bad[] = {"0%", "150%", "2MiB", "fast", "1%,2%", "10% 2MiB/s", "0B/s"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
		cr_expect_eq(mwrite(&M, path, bad[i]), EINVAL, "precision <%s>", bad[i]);
	v = mread(&M, "%d/precision", (int)pid);
	cr_expect_str_eq(v, "2.5%,0.5MiB/s\n", "a refused write changes nothing");
	free(v);
	char *log = read_file(M.log);
	cr_expect(log && strstr(log, "precision: unknown unit"), "log: %s", log);
	cr_expect(log && strstr(log, "at most 100%"), "log: %s", log);
	free(log);
	/* sample_pages written alone turns the precision off; precision= back on. */
	cr_assert_eq(track(pid, "sample_pages=4096"), 0);
	v = mread(&M, "%d/precision", (int)pid);
	cr_expect_str_eq(v, "off\n");
	free(v);
	cr_assert_eq(track(pid, "precision=1MiB/s"), 0);
	v = mread(&M, "%d/precision", (int)pid);
	cr_expect_str_eq(v, "1MiB/s\n");
	free(v);
}

/* A pid that no process has: the highest free one below pid_max. */
static pid_t unused_pid(void)
{
	char *t = read_file("/proc/sys/kernel/pid_max");
	long max = t ? strtol(t, NULL, 10) : 32768;
	free(t);
	for (long p = max - 1; p > 300; p--) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/%ld", p);
		if (access(path, F_OK) != 0)
			return (pid_t)p;
	}
	return 0;
}

Test(track, missing_process_is_esrch)
{
	pid_t p = unused_pid();
	cr_assert(p > 0);
	cr_expect_eq(track(p, NULL), ESRCH);
	/* A process that has exited (a zombie not yet reaped) is gone too. */
	pid_t z = fork();
	if (z == 0)
		_exit(0);
	usleep(100000);
	cr_expect_eq(track(z, NULL), ESRCH);
	waitpid(z, NULL, 0);
}

/* A kernel thread visible here, or 0. */
static pid_t kernel_thread(void)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	pid_t found = 0;

	while (!found && (e = readdir(d))) {
		char path[300];
		long pid = strtol(e->d_name, NULL, 10);
		if (pid <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
		char *t = read_file(path);
		char *close = t ? strrchr(t, ')') : NULL;
		unsigned long flags = 0;
		if (close && sscanf(close + 2, "%*c %*d %*d %*d %*d %*d %lu", &flags) == 1 &&
		    (flags & 0x00200000))
			found = (pid_t)pid;
		free(t);
	}
	closedir(d);
	return found;
}

Test(track, kernel_thread_is_einval)
{
	pid_t k = kernel_thread();
	if (!k)
		skip_test_after(down, "no kernel thread is visible in this pid namespace");
	cr_expect_eq(track(k, NULL), EINVAL);
	char *log = read_file(M.log);
	cr_expect(log && strstr(log, "kernel thread"), "log: %s", log);
	free(log);
}

Test(track, beyond_max_targets_is_enospc)
{
	mount_start(&M, "max_targets=2");
	pid_t a = keep(sleeper_start(0)), b = keep(sleeper_start(0)), c = keep(sleeper_start(0));
	cr_assert_eq(track(a, NULL), 0);
	cr_assert_eq(track(b, NULL), 0);
	cr_expect_eq(track(c, NULL), ENOSPC);
	/* Re-tracking one already tracked is still fine when full. */
	cr_expect_eq(track(a, "period=2"), 0);
	cr_assert_eq(mwrite(&M, "untrack", "1\n"), ENOENT);
	char name[16];
	snprintf(name, sizeof(name), "%d", (int)a);
	cr_assert_eq(mwrite(&M, "untrack", name), 0);
	cr_expect_eq(track(c, NULL), 0);
}

Test(track, needs_the_callers_own_access)
{
	mount_start(&M, "allow_other");
	pid_t roots = keep(sleeper_start(0));
	pid_t nobodys = keep(sleeper_start(65534));
	char line[32], *p = mpath(&M, "track");

	/* uid 65534 may not measure root's process... */
	snprintf(line, sizeof(line), "%d\n", (int)roots);
	cr_expect_eq(write_file_as(65534, p, line), EACCES);
	char *log = read_file(M.log);
	cr_expect(log && strstr(log, "may not read the memory"), "log: %s", log);
	free(log);
	/* ...but may measure its own. */
	snprintf(line, sizeof(line), "%d\n", (int)nobodys);
	cr_expect_eq(write_file_as(65534, p, line), 0);
	free(p);
	/* The directory belongs to the target's owner; others may not change
	 * it. */
	struct stat st;
	p = mpath(&M, "%d", (int)nobodys);
	cr_assert(stat(p, &st) == 0);
	cr_expect_eq(st.st_uid, 65534);
	free(p);
	snprintf(line, sizeof(line), "%d\n", (int)roots);
	cr_assert_eq(track(roots, NULL), 0);
	p = mpath(&M, "%d/period", (int)roots);
	cr_expect_eq(write_file_as(65534, p, "5\n"), EACCES);
	free(p);
	p = mpath(&M, "untrack");
	cr_expect_eq(write_file_as(65534, p, line), EACCES);
	free(p);
}

/* ---- lifecycle ---- */
