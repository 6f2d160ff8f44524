/* test_poll.c: readers that wait in poll(), epoll or select for a figure,
 * against the real daemon: they sleep until there is something new (no
 * spinning), are woken once per new sample, and are woken, never left
 * hanging, when a target exits, is untracked or the daemon stops. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
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

TestSuite(poll, .init = up, .fini = down, .timeout = 120);

/* Polls fd for POLLIN|POLLPRI until an event or deadline: the revents,
 * with *calls the number of poll() calls that returned (0 timeouts of the
 * loop count too: a spinning poll returns at once, again and again). */
static short poll_until(int fd, double seconds, int *calls)
{
	struct pollfd p = {.fd = fd, .events = POLLIN | POLLPRI};
	double start = now_s(), end = start + seconds;
	short ev = 0;

	*calls = 0;
	while (now_s() < end) {
		int r = poll(&p, 1, 1000);
		++*calls;
		if (r > 0) {
			ev = p.revents;
			break;
		}
		cr_assert(r == 0 || errno == EINTR, "poll: %s", strerror(errno));
	}
	/* Each call ends on an event or its 1 s timeout: a poll that
	 * spins returns thousands of times a second. */
	cr_expect_leq(*calls, (int)(now_s() - start) + 3, "poll returned %d times in %.1f s",
		      *calls, now_s() - start);
	return ev;
}

/* One whole read at offset 0: its length, or -errno. */
static ssize_t read_at0(int fd, char *buf, size_t size)
{
	ssize_t n = pread(fd, buf, size - 1, 0);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return n;
}

Test(poll, nonblocking_rate_waits_in_poll_for_the_first_figure_then_each_next)
{
	pid_t pid = keep(dirtier_start(16, 16, 256, NULL));
	cr_assert_eq(track_pid(&M, pid, "period=2"), 0);
	char *path = mpath(&M, "%d/rate", (int)pid);
	int fd = open(path, O_RDONLY | O_NONBLOCK);
	char buf[128];
	int calls;

	cr_assert(fd >= 0, "open %s: %s", path, strerror(errno));
	/* Before the first figure, read says EAGAIN and poll sleeps (it
	 * spun 95,595 times in 3 s when it said readable here). */
	cr_assert_eq(read_at0(fd, buf, sizeof(buf)), -EAGAIN);
	short ev = poll_until(fd, 60, &calls);
	long seq = sample_latest_seq(&M, pid);
	cr_assert(ev & POLLIN, "no POLLIN within 60 s (revents %#x)", ev);
	cr_expect(ev & POLLPRI, "revents %#x: a new figure is POLLPRI too", ev);
	cr_expect(!(ev & (POLLERR | POLLHUP)), "revents %#x", ev);
	cr_expect_geq(seq, 1, "poll said readable with no sample published");
	cr_log_info("first figure after %d poll calls (1 s timeouts)", calls);
	ssize_t n = read_at0(fd, buf, sizeof(buf));
	cr_assert_gt(n, 0, "read after POLLIN: %s", n < 0 ? strerror((int)-n) : "empty");
	char *end;
	double rate = strtod(buf, &end);
	cr_expect(end != buf && *end == '\n' && rate >= 0, "rate <%s>", buf);

	/* Read, the figure is old: nothing new until the next sample. */
	long before = sample_latest_seq(&M, pid);
	cr_assert_geq(read_at0(fd, buf, sizeof(buf)), 0);
	struct pollfd p = {.fd = fd, .events = POLLIN | POLLPRI};
	int r = poll(&p, 1, 0);
	if (sample_latest_seq(&M, pid) == before)
		cr_expect_eq(r, 0, "readable again (revents %#x) with no new sample", p.revents);
	/* The next sample wakes it, once. */
	ev = poll_until(fd, 60, &calls);
	cr_assert(ev & POLLIN, "no POLLIN for the next sample (revents %#x)", ev);
	cr_expect_gt(sample_latest_seq(&M, pid), before, "woken with no new sample");
	cr_expect_gt(read_at0(fd, buf, sizeof(buf)), 0);
	close(fd);
	free(path);
}

Test(poll, status_is_readable_at_open_then_waits_for_a_change)
{
	pid_t pid = keep(dirtier_start(16, 16, 256, NULL));
	cr_assert_eq(track_pid(&M, pid, "period=2"), 0);
	char *path = mpath(&M, "%d/status", (int)pid);
	int fd = open(path, O_RDONLY);
	char buf[512];
	int calls;

	cr_assert(fd >= 0);
	/* A fresh open has something to read (as any file). */
	struct pollfd p = {.fd = fd, .events = POLLIN};
	cr_assert_eq(poll(&p, 1, 0), 1);
	cr_assert_gt(read_at0(fd, buf, sizeof(buf)), 0);
	if (strcmp(buf, "measuring\n") == 0) {
		/* measuring -> measured wakes it. */
		short ev = poll_until(fd, 60, &calls);
		cr_assert(ev & POLLIN, "revents %#x", ev);
		cr_assert_gt(read_at0(fd, buf, sizeof(buf)), 0);
		cr_expect_str_eq(buf, "measured\n");
	}
	/* The process exits: exited, and nothing more will come (POLLHUP,
	 * which stays). */
	proc_kill(pid);
	short ev = poll_until(fd, 60, &calls);
	cr_assert(ev & POLLIN, "revents %#x", ev);
	cr_assert_gt(read_at0(fd, buf, sizeof(buf)), 0);
	cr_expect(strncmp(buf, "exited\n", 7) == 0, "status <%s>", buf);
	ev = poll_until(fd, 60, &calls);
	cr_expect(ev & POLLHUP, "revents %#x after exit", ev);
	cr_expect(!(ev & POLLPRI), "revents %#x: nothing new after it was read", ev);

	/* rate too: POLLHUP, and its read says the process is gone. */
	char *rpath = mpath(&M, "%d/rate", (int)pid);
	int rfd = open(rpath, O_RDONLY | O_NONBLOCK);
	cr_assert(rfd >= 0);
	ev = poll_until(rfd, 60, &calls);
	cr_expect(ev & POLLHUP, "rate revents %#x after exit", ev);
	cr_expect_eq(read_at0(rfd, buf, sizeof(buf)), -ESRCH);
	close(rfd);
	free(rpath);
	close(fd);
	free(path);
}

Test(poll, epoll_level_and_edge_triggered_wake_once_per_sample)
{
	pid_t pid = keep(dirtier_start(16, 16, 256, NULL));
	cr_assert_eq(track_pid(&M, pid, "period=1"), 0);
	char *path = mpath(&M, "%d/rate", (int)pid);
	int lt = open(path, O_RDONLY | O_NONBLOCK), et = open(path, O_RDONLY | O_NONBLOCK);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	char buf[128];

	cr_assert(lt >= 0 && et >= 0 && ep >= 0);
	struct epoll_event e = {.events = EPOLLIN | EPOLLPRI, .data.fd = lt};
	cr_assert_eq(epoll_ctl(ep, EPOLL_CTL_ADD, lt, &e), 0, "%s", strerror(errno));
	e = (struct epoll_event){.events = EPOLLIN | EPOLLPRI | EPOLLET, .data.fd = et};
	cr_assert_eq(epoll_ctl(ep, EPOLL_CTL_ADD, et, &e), 0, "%s", strerror(errno));

	/* Three samples: each wakes both once they have read the last. */
	int waits = 0, lt_events = 0, et_events = 0;
	long first = 0, last = 0;
	for (double end = now_s() + 90; now_s() < end && (lt_events < 3 || et_events < 3);) {
		struct epoll_event got[2];
		int n = epoll_wait(ep, got, 2, 1000);
		waits++;
		for (int i = 0; i < n; i++) {
			int fd = got[i].data.fd;
			long seq = sample_latest_seq(&M, pid);
			cr_assert_geq(seq, 1, "woken before the first sample");
			first = first ? first : seq;
			last = seq;
			if (fd == lt && lt_events < 3) {
				lt_events++;
				cr_expect_gt(read_at0(lt, buf, sizeof(buf)), 0);
			} else if (fd == et && et_events < 3) {
				et_events++;
				cr_expect_gt(read_at0(et, buf, sizeof(buf)), 0);
			} else if (fd == lt) {
				/* Done with it: a level-triggered file not read
				 * stays ready. */
				epoll_ctl(ep, EPOLL_CTL_DEL, lt, NULL);
			}
		}
	}
	cr_expect_eq(lt_events, 3);
	cr_expect_eq(et_events, 3, "edge-triggered: %d events", et_events);
	/* Each loop turn ends on an event or a 1 s timeout: a spinning epoll
	 * would turn thousands of times. */
	cr_expect_leq(waits, 100, "%d epoll_wait calls for samples %ld..%ld", waits, first, last);
	cr_log_info("%d epoll_wait calls for samples %ld..%ld", waits, first, last);
	close(ep);
	close(lt);
	close(et);
	free(path);
}

typedef struct {
	int fd;
	short revents;
	int err;
} waiter;

static void *wait_thread(void *data)
{
	waiter *w = data;
	struct pollfd p = {.fd = w->fd, .events = POLLIN | POLLPRI};

	/* A bound so that a broken daemon fails the test rather than hangs
	 * it: 60 s, far beyond the wake-up expected at once. */
	int r = poll(&p, 1, 60000);
	w->err = r < 0 ? errno : 0;
	w->revents = r > 0 ? p.revents : 0;
	return NULL;
}

Test(poll, untrack_wakes_a_waiting_poller_with_pollerr)
{
	pid_t pid = keep(sleeper_start(0));
	cr_assert_eq(track_pid(&M, pid, "period=30"), 0);
	char *path = mpath(&M, "%d/rate", (int)pid);
	waiter w = {.fd = open(path, O_RDONLY | O_NONBLOCK)};
	pthread_t th;
	char buf[64];

	cr_assert(w.fd >= 0);
	pthread_create(&th, NULL, wait_thread, &w);
	/* The thread is in poll() (a 30 s period: no figure comes); give it
	 * time to get there: either way untrack must end it. */
	usleep(300000);
	char line[32];
	snprintf(line, sizeof(line), "%d\n", (int)pid);
	cr_assert_eq(mwrite(&M, "untrack", line), 0);
	pthread_join(th, NULL);
	cr_assert_eq(w.err, 0, "poll: %s", strerror(w.err));
	cr_assert(w.revents & POLLERR, "revents %#x: untracked is POLLERR, as sysfs", w.revents);
	cr_expect(w.revents & POLLIN);
	cr_expect_eq(read_at0(w.fd, buf, sizeof(buf)), -ENOENT);
	close(w.fd);
	free(path);
}

Test(poll, select_waits_too)
{
	pid_t pid = keep(dirtier_start(16, 16, 256, NULL));
	cr_assert_eq(track_pid(&M, pid, "period=1"), 0);
	char *path = mpath(&M, "%d/rate", (int)pid);
	int fd = open(path, O_RDONLY | O_NONBLOCK);
	int calls = 0, ready = 0;
	char buf[128];

	cr_assert(fd >= 0);
	for (double end = now_s() + 60; now_s() < end && !ready; calls++) {
		fd_set rd;
		FD_ZERO(&rd);
		FD_SET(fd, &rd);
		struct timeval tv = {.tv_sec = 1};
		ready = select(fd + 1, &rd, NULL, NULL, &tv) > 0 && FD_ISSET(fd, &rd);
	}
	cr_assert(ready);
	cr_expect_geq(sample_latest_seq(&M, pid), 1);
	cr_expect_leq(calls, 62, "%d select calls", calls);
	cr_expect_gt(read_at0(fd, buf, sizeof(buf)), 0);
	close(fd);
	free(path);
}

Test(poll, daemon_stop_ends_a_waiting_poller)
{
	pid_t pid = keep(sleeper_start(0));
	cr_assert_eq(track_pid(&M, pid, "period=30"), 0);
	char *path = mpath(&M, "%d/rate", (int)pid);
	int pfd[2];
	pid_t parent = getpid();

	cr_assert_eq(pipe(pfd), 0);
	pid_t child = fork();
	cr_assert(child >= 0);
	if (child == 0) {
		die_with_parent(parent, SIGKILL);
		close(pfd[0]);
		int fd = open(path, O_RDONLY | O_NONBLOCK);
		if (fd < 0)
			_exit(2);
		if (write(pfd[1], "o", 1) != 1)
			_exit(3);
		struct pollfd p = {.fd = fd, .events = POLLIN | POLLPRI};
		int r = poll(&p, 1, -1); /* no bound: the daemon's stop must end it */
		int perr = r < 0 ? errno : 0;
		char buf[64], rep[48];
		int rerr = pread(fd, buf, sizeof(buf), 0) < 0 ? errno : 0;
		int len = snprintf(rep, sizeof(rep), "%d %d %#x %d\n", r, perr,
				   r > 0 ? p.revents : 0, rerr);
		if (write(pfd[1], rep, (size_t)len) != len)
			_exit(4);
		close(fd);
		_exit(0);
	}
	close(pfd[1]);
	char c;
	cr_assert_eq(read(pfd[0], &c, 1), 1, "the poller could not open rate");
	usleep(300000); /* into poll(); if not yet, it polls a dead mount */

	int status = mount_stop(&M);
	cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "daemon status %#x", status);
	/* The poller returns: bounded wait on its report, then on its exit. */
	struct pollfd p = {.fd = pfd[0], .events = POLLIN};
	int r = poll(&p, 1, 30000);
	char rep[64] = "";
	ssize_t n = r > 0 ? read(pfd[0], rep, sizeof(rep) - 1) : -1;
	int cst = 0;
	pid_t got = 0;
	for (double end = now_s() + 10; now_s() < end && got == 0; usleep(10000))
		got = waitpid(child, &cst, WNOHANG);
	if (got == 0) {
		kill(child, SIGKILL);
		waitpid(child, &cst, 0);
	}
	close(pfd[0]);
	cr_assert_gt(n, 0, "the poller never returned after the daemon stopped");
	rep[n] = '\0';
	cr_log_info("poller after daemon stop: r errno revents read-errno = %s", rep);
	cr_expect_eq(got, child, "the poller did not exit");
	cr_expect(WIFEXITED(cst) && WEXITSTATUS(cst) == 0, "poller status %#x", cst);
	int pr = 0, perr = 0, rerr = 0;
	unsigned rev = 0;
	cr_assert_eq(sscanf(rep, "%d %d %x %d", &pr, &perr, &rev, &rerr), 4, "<%s>", rep);
	/* Woken with an error: the file's server is gone, and so reads say. */
	cr_expect(pr > 0 && (rev & (POLLERR | POLLHUP)), "poll %d errno %d revents %#x", pr, perr,
		  rev);
	cr_expect_eq(rerr, ENOTCONN, "read after the stop: %s", strerror(rerr));
	free(path);
}

Test(poll, files_that_give_no_notice_are_always_ready)
{
	pid_t pid = keep(sleeper_start(0));
	cr_assert_eq(track_pid(&M, pid, "period=30"), 0);
	const struct {
		const char *rel;
		int flags;
		short events;
	} files[] = {
		{"meminfo/committed_as", O_RDONLY, POLLIN},
		{"metrics", O_RDONLY, POLLIN},
		{"track", O_WRONLY, POLLOUT},
		{"%d/period", O_RDWR, POLLIN | POLLOUT},
	};

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		char *rel = g_strdup_printf(files[i].rel, (int)pid);
		char *path = mpath(&M, "%s", rel);
		int fd = open(path, files[i].flags | O_NONBLOCK);
		cr_assert(fd >= 0, "%s: %s", rel, strerror(errno));
		struct pollfd p = {.fd = fd, .events = files[i].events};
		/* Ready at once, as a plain file (before any figure). */
		cr_expect_eq(poll(&p, 1, 0), 1, "%s: not ready", rel);
		cr_expect_eq(p.revents, files[i].events, "%s: revents %#x", rel, p.revents);
		close(fd);
		free(path);
		g_free(rel);
	}
}
