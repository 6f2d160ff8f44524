/* test_trust.c: what a shared machine needs from memstatfs: other users see
 * no more than /proc shows them, a pid that is reused is never measured
 * under the old target, a killed daemon can be restarted in place, and
 * writes of any shape get an errno. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <glib.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

static mount_t M;

static void down(void)
{
	kill_kept();
	mount_stop(&M);
}

TestSuite(trust, .fini = down, .timeout = 90);

/* Reads path as uid (in a child); returns 0 or the errno. */
static int read_as(uid_t uid, const char *path)
{
	pid_t pid = fork();
	if (pid == 0) {
		if (setgid(uid) != 0 || setuid(uid) != 0)
			_exit(126);
		int fd = open(path, O_RDONLY | O_NONBLOCK);
		char buf[4096];
		if (fd < 0 || read(fd, buf, sizeof(buf)) < 0)
			_exit(errno);
		_exit(0);
	}
	int status;
	waitpid(pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int readlink_as(uid_t uid, const char *path)
{
	pid_t pid = fork();
	if (pid == 0) {
		char buf[64];
		if (setgid(uid) != 0 || setuid(uid) != 0)
			_exit(126);
		_exit(readlink(path, buf, sizeof(buf)) < 0 ? errno : 0);
	}
	int status;
	waitpid(pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* The target's status says it is measured. */
static void expect_measured(pid_t pid)
{
	char *p = mpath(&M, "%d/status", (int)pid);
	char *st = read_file(p);
	cr_expect(st && strncmp(st, "measured", 8) == 0, "status: %s", st);
	free(st);
	free(p);
}

Test(trust, other_users_see_no_more_than_proc_shows)
{
	mount_start(&M, "allow_other");
	pid_t roots = keep(sleeper_start(0));
	cr_assert_eq(track_pid(&M, roots, NULL), 0);
	free(sample_wait(&M, roots, 1, 10));
	char *p;

	/* What /proc shows everyone about a process: yes. */
	p = mpath(&M, "%d/status", (int)roots);
	cr_expect_eq(read_as(65534, p), 0);
	free(p);
	p = mpath(&M, "%d/memory/vmrss", (int)roots);
	cr_expect_eq(read_as(65534, p), 0);
	free(p);
	/* What its memory does (only ptrace could tell): no. */
	p = mpath(&M, "%d/rate", (int)roots);
	cr_expect_eq(read_as(65534, p), EACCES);
	free(p);
	p = mpath(&M, "%d/samples/1", (int)roots);
	cr_expect_eq(read_as(65534, p), EACCES);
	free(p);
	p = mpath(&M, "%d/samples", (int)roots);
	cr_expect_eq(read_as(65534, p), EACCES, "listing samples/");
	free(p);
	p = mpath(&M, "%d/samples/latest", (int)roots);
	cr_expect_eq(readlink_as(65534, p), EACCES);
	free(p);
	/* Nor its growth curve and migration forecast; nor may it change the
	 * forecast's settings. */
	static const char *const forecast[] = {"%d/growth", "%d/migration/verdict",
					       "%d/migration/total_s", "%d/migration"};
	for (size_t i = 0; i < sizeof(forecast) / sizeof(forecast[0]); i++) {
		p = mpath(&M, forecast[i], (int)roots);
		cr_expect_eq(read_as(65534, p), EACCES, "%s", p);
		free(p);
	}
	p = mpath(&M, "%d/migration/bandwidth", (int)roots);
	cr_expect_eq(write_file_as(65534, p, "1G"), EACCES, "%s", p);
	free(p);
	/* Nor through metrics. */
	pid_t nobodys = keep(sleeper_start(65534));
	cr_assert_eq(track_pid(&M, nobodys, NULL), 0);
	free(sample_wait(&M, nobodys, 1, 10));
	int pfd[2];
	cr_assert(pipe(pfd) == 0);
	pid_t kid = fork();
	if (kid == 0) {
		if (setgid(65534) != 0 || setuid(65534) != 0)
			_exit(126);
		char *m = mpath(&M, "metrics");
		char *text = read_file(m);
		if (text && write(pfd[1], text, strlen(text)) < 0)
			_exit(1);
		_exit(text ? 0 : 1);
	}
	close(pfd[1]);
	char buf[65536];
	ssize_t n, len = 0;
	while ((n = read(pfd[0], buf + len, sizeof(buf) - 1 - (size_t)len)) > 0)
		len += n;
	buf[len] = '\0';
	close(pfd[0]);
	waitpid(kid, NULL, 0);
	char mine[64], theirs[64];
	snprintf(mine, sizeof(mine), "target=\"%d\"", (int)nobodys);
	snprintf(theirs, sizeof(theirs), "target=\"%d\"", (int)roots);
	cr_expect(strstr(buf, mine), "uid 65534 does not see its own process:\n%s", buf);
	cr_expect(!strstr(buf, theirs), "uid 65534 sees root's process:\n%s", buf);
	/* Its own process, tracked by root: yes. */
	p = mpath(&M, "%d/rate", (int)nobodys);
	cr_expect_eq(read_as(65534, p), 0);
	free(p);
}

/* Starts a sleeper whose pid is want, by setting ns_last_pid; 0 when the
 * pid could not be had (another process took it first). */
static pid_t sleeper_with_pid(pid_t want)
{
	for (int attempt = 0; attempt < 50; attempt++) {
		FILE *f = fopen("/proc/sys/kernel/ns_last_pid", "w");
		if (!f)
			return 0;
		fprintf(f, "%d", (int)want - 1);
		fclose(f);
		pid_t parent = getpid();
		pid_t pid = fork();
		if (pid == 0) {
			die_with_parent(parent, SIGKILL);
			execlp("sleep", "sleep", "600", (char *)NULL);
			_exit(127);
		}
		if (pid == want)
			return pid;
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	return 0;
}

Test(trust, a_reused_pid_is_never_measured_under_the_old_target)
{
	mount_start(&M, NULL);
	pid_t old = sleeper_start(0);
	cr_assert_eq(track_pid(&M, old, "period=1"), 0);
	free(sample_wait(&M, old, 1, 10));
	kill(old, SIGKILL);
	waitpid(old, NULL, 0);
	/* The new process gets the old one's pid before the target's next
	 * step notices. */
	pid_t reused = keep(sleeper_with_pid(old));
	if (!reused) {
		fprintf(stderr, "skipped: could not get pid %d again\n", (int)old);
		cr_skip_test("could not get pid %d again", (int)old);
	}
	char *p = mpath(&M, "%d/status", (int)old);
	cr_expect(wait_content(p, "exited", 5), "the target did not notice its process left");
	free(p);
	char *rate = mpath(&M, "%d/rate", (int)old);
	cr_expect_null(read_file(rate));
	cr_expect_eq(errno, ESRCH);
	/* No sample is taken of the new process. */
	sleep(2);
	char *last = mpath(&M, "%d/samples/3", (int)old);
	cr_expect_null(read_file(last), "a sample was taken after the pid was reused");
	/* Tracking the pid again names the old target: untrack it first. */
	cr_expect_eq(track_pid(&M, reused, NULL), EEXIST);
	char *u = mpath(&M, "untrack");
	char line[32];
	snprintf(line, sizeof(line), "%d", (int)old);
	cr_expect_eq(write_file(u, line), 0);
	cr_expect_eq(track_pid(&M, reused, NULL), 0);
	free(u);
	free(last);
	free(rate);
}

Test(trust, a_killed_daemon_restarts_on_the_same_mountpoint)
{
	mount_start(&M, NULL);
	pid_t pid = keep(sleeper_start(0));
	cr_assert_eq(track_pid(&M, pid, NULL), 0);
	mount_kill_and_restart(&M, NULL);
	/* A fresh daemon: nothing tracked, everything works. */
	char *p = mpath(&M, "track");
	char *list = read_file(p);
	cr_expect_str_eq(list, "");
	free(list);
	free(p);
	cr_expect_eq(track_pid(&M, pid, NULL), 0);
	free(sample_wait(&M, pid, 1, 10));
	p = mpath(&M, "meminfo/committed_as");
	char *v = read_file(p);
	cr_expect(v && atol(v) > 0);
	free(v);
	free(p);
	char *log = read_file(M.log);
	cr_expect(log && strstr(log, "stale"),
		  "the restart did not say it replaced the dead mount: %s", log);
	free(log);
}

/* Opens path for writing and writes len bytes of buf in one call; returns
 * 0 or the errno. */
static int write_bytes(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY);
	if (fd < 0)
		return errno;
	ssize_t n = write(fd, buf, len);
	int e = n < 0 ? errno : ((size_t)n == len ? 0 : EIO);
	close(fd);
	return e;
}

Test(trust, writes_of_any_shape_get_an_errno)
{
	mount_start(&M, NULL);
	pid_t pid = keep(sleeper_start(0));
	cr_assert_eq(track_pid(&M, pid, NULL), 0);
	const char *files[] = {"track",
			       "untrack",
			       "%d/period",
			       "%d/sample_pages",
			       "%d/mode",
			       "%d/migration/bandwidth",
			       "%d/migration/downtime_ms",
			       "%d/migration/link_bandwidth",
			       "%d/migration/max_total_s"};
	size_t big = 1 << 20;
	char *junk = malloc(big);
	unsigned seed = 12345;
	for (size_t i = 0; i < big; i++)
		junk[i] = (char)(rand_r(&seed) & 0xff);
	char *as = malloc(big);
	memset(as, 'a', big);

	for (size_t f = 0; f < sizeof(files) / sizeof(files[0]); f++) {
		char *p = mpath(&M, files[f], (int)pid);
		/* Nothing: write(2) returns 0 without asking the file system. */
		cr_expect_eq(write_bytes(p, "", 0), 0, "%s: empty", p);
		cr_expect_eq(write_bytes(p, as, big), EINVAL, "%s: 1 MiB", p);
		cr_expect_eq(write_bytes(p, junk, big), EINVAL, "%s: 1 MiB binary", p);
		cr_expect_eq(write_bytes(p, junk, 100), EINVAL, "%s: binary", p);
		cr_expect_eq(write_bytes(p, "\0\0\0", 3), EINVAL, "%s: NULs", p);
		cr_expect_eq(write_bytes(p, "\n", 1), EINVAL, "%s: a newline", p);
		free(p);
	}
	/* Without a newline, and in pieces: each write is one whole command,
	 * as in cgroup files. */
	char *period = mpath(&M, "%d/period", (int)pid);
	cr_expect_eq(write_bytes(period, "7", 1), 0);
	int fd = open(period, O_WRONLY);
	cr_assert(fd >= 0);
	cr_expect_eq(write(fd, "3", 1), 1);
	cr_expect_eq(write(fd, "0\n", 2), -1, "\"0\\n\" alone is out of range");
	cr_expect_eq(errno, EINVAL);
	close(fd);
	char *v = read_file(period);
	cr_expect_str_eq(v, "3\n");
	free(v);
	free(period);
	/* The daemon is still there and still right. */
	char *rate = mpath(&M, "%d/rate", (int)pid);
	v = read_file(rate);
	cr_expect(v != NULL);
	free(v);
	free(rate);
	free(junk);
	free(as);
}

Test(trust, exec_during_measurement_ends_in_a_clear_state)
{
	mount_start(&M, NULL);
	const char *dirtier = getenv("DIRTIER");
	cr_assert(dirtier);
	/* A shell that becomes a 128 MiB dirtier a second and a half in. */
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid == 0) {
		die_with_parent(parent, SIGKILL);
		char cmd[512];
		snprintf(cmd, sizeof(cmd), "sleep 1.5; exec %s 128 128 2560 >/dev/null", dirtier);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	keep(pid);
	cr_assert_eq(track_pid(&M, pid, "mode=full-scan"), 0);
	/* Windows across the exec, then after it. */
	char *s = sample_wait(&M, pid, 5, 20);
	cr_expect(s, "no samples after the exec");
	double rate = 0;
	cr_expect(s && sample_get(s, "rate", &rate));
	free(s);
	expect_measured(pid);
	/* 2560 pages/s is 10 MiB/s; full-scan is exact. */
	s = sample_wait(&M, pid, 6, 10);
	cr_expect(s && sample_get(s, "rate", &rate) && rate > 9 && rate < 11, "rate after exec %f",
		  rate);
	free(s);
}

/* A process whose address space is replaced again and again (an exec every
 * few ms, as `cmd & echo $! > track` meets when the shell's child has not
 * exec'd yet) is never reported exited while it lives: a read bound to the
 * old address space fails with ESRCH, and that is the window's loss, not the
 * target's.  Once it settles it is measured. */
static void execs_are_not_exits(const char *mode)
{
	char settings[64], cmdline[64];
	snprintf(settings, sizeof(settings), "mode=%s", mode);
	pid_t pid = keep(dirtier_start(8, 8, 2560, "exec=1500"));
	cr_assert_eq(track_pid(&M, pid, settings), 0);
	snprintf(cmdline, sizeof(cmdline), "/proc/%d/cmdline", (int)pid);
	int looks = 0;
	bool settled = false;
	for (double end = now_s() + 60; !settled && now_s() < end; usleep(10000), looks++) {
		char *st = mread(&M, "%d/status", (int)pid);
		cr_assert(st && strncmp(st, "exited", 6) != 0, "%s: pid %d, alive, reported %s",
			  mode, (int)pid, st);
		free(st);
		/* The last incarnation runs with exec=0 (arguments are
		 * NUL-separated: the fifth is the mode). */
		gchar *args = NULL;
		gsize len = 0;
		if (g_file_get_contents(cmdline, &args, &len, NULL))
			for (gsize off = 0, n = 0; off < len && n < 5; off += strlen(args + off) + 1, n++)
				if (n == 4)
					settled = strcmp(args + off, "exec=0") == 0;
		g_free(args);
	}
	cr_assert(settled, "%s: the helper never finished its execs", mode);
	/* Settled: two whole windows later it is measured. */
	char *latest = mread(&M, "%d/samples/latest", (int)pid);
	char *s = NULL;
	double seq = 0;
	if (latest && sample_get(latest, "seq", &seq))
		s = sample_wait(&M, pid, (long)seq + 2, 30);
	else
		s = sample_wait(&M, pid, 2, 30);
	fprintf(stderr, "%s: %d looks at status while pid %d exec'd 1500 times: never exited\n",
		mode, looks, (int)pid);
	cr_expect(s, "%s: no figures once the execs were over", mode);
	free(latest);
	free(s);
	expect_measured(pid);
}

Test(trust, a_process_that_execs_again_and_again_is_never_exited)
{
	mount_start(&M, NULL);
	execs_are_not_exits("page-sampling");
	execs_are_not_exits("full-scan");
}

Test(trust, memory_unmapped_during_passes_ends_in_a_clear_state)
{
	mount_start(&M, NULL);
	/* 256 MiB, half of it unmapped and mapped again every 50 ms. */
	pid_t pid = keep(dirtier_start(256, 256, 2560, "remap"));
	cr_assert_eq(track_pid(&M, pid, "mode=full-scan"), 0);
	for (long seq = 1; seq <= 3; seq++) {
		char *s = sample_wait(&M, pid, seq, 20);
		double unmapped = -1;
		cr_expect(s && sample_get(s, "pages_unmapped", &unmapped), "full-scan sample %ld",
			  seq);
		free(s);
	}
	char *mode = mpath(&M, "%d/mode", (int)pid);
	cr_assert_eq(write_file(mode, "page-sampling\n"), 0);
	free(mode);
	char *s = sample_wait(&M, pid, 6, 20);
	cr_expect(s && strstr(s, "mode page-sampling"), "%s", s);
	free(s);
	expect_measured(pid);
	/* Killed in the middle of all that: exited, and the daemon answers. */
	proc_kill(pid);
	char *p = mpath(&M, "%d/status", (int)pid);
	cr_expect(wait_content(p, "exited", 5));
	free(p);
}
