/* hungfs: a FUSE file system whose server stops answering, as a hung FUSE
 * or NFS mount does, or answers slowly, as a slow one does.
 *
 *   hungfs SIZE_MIB MOUNTPOINT [SLOW_MS]     (stays in the foreground)
 *
 * Serves one file, /data, of SIZE_MIB, each page filled with its number.
 * Reads are answered at once until the process gets a signal:
 *   SIGUSR1   no read is answered any more (a process that faults on a page
 *             of /data that is not in the page cache waits), until
 *   SIGUSR2   every read left waiting is answered, and reads are answered
 *             at once again (the mount recovers);
 *   SIGRTMIN  each read is answered SLOW_MS (default 100) after it came: a
 *             reader that needs many reads goes on, slowly (SIGUSR2: at
 *             once again, SIGUSR1: not at all).
 * Other requests are always answered at once.  SIGTERM unmounts; SIGKILL
 * leaves the mount dead, aborting every request still waiting (so the
 * processes that waited go on, with an error).
 */
#define _GNU_SOURCE	 /* ppoll */
#define FUSE_USE_VERSION 312
#include <errno.h>
#include <fuse_lowlevel.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static off_t size;
static int64_t slow_ms = 100;

enum { ANSWER, HANG, SLOW };
static volatile sig_atomic_t mode = ANSWER;
static volatile sig_atomic_t released; /* SIGUSR2 came: answer those waiting */

static void on_signal(int sig)
{
	if (sig == SIGUSR1) {
		mode = HANG;
	} else if (sig == SIGUSR2) {
		mode = ANSWER;
		released = 1;
	} else {
		mode = SLOW;
	}
}

/* Reads not answered yet: answered when due (SLOW) or released (HANG). */
#define MAX_WAITING 4096
static struct waiting {
	fuse_req_t req;
	off_t off;
	size_t n;
	int64_t due_ms; /* INT64_MAX: when released */
} waiting[MAX_WAITING];
static size_t nwaiting;

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void answer(fuse_req_t req, off_t off, size_t want)
{
	static char buf[1 << 20];
	if (off >= size) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	size_t n = want < sizeof(buf) ? want : sizeof(buf);
	if ((off_t)n > size - off)
		n = (size_t)(size - off);
	for (size_t i = 0; i < n; i++)
		buf[i] = (char)(((off + (off_t)i) >> 12) | 1);
	fuse_reply_buf(req, buf, n);
}

/* Answers the waiting reads that are due (all of them when all is set);
 * the poll timeout until the next one is due, or -1. */
static int answer_due(bool all)
{
	int64_t now = now_ms(), next = INT64_MAX;
	size_t k = 0;

	for (size_t i = 0; i < nwaiting; i++) {
		struct waiting *w = &waiting[i];
		if (all || w->due_ms <= now) {
			answer(w->req, w->off, w->n);
			continue;
		}
		if (w->due_ms < next)
			next = w->due_ms;
		waiting[k++] = *w;
	}
	nwaiting = k;
	return next == INT64_MAX ? -1 : (int)(next - now);
}

static void stat_of(fuse_ino_t ino, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	if (ino == FUSE_ROOT_ID) {
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2;
	} else {
		st->st_mode = S_IFREG | 0644;
		st->st_nlink = 1;
		st->st_size = size;
	}
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	if (parent != FUSE_ROOT_ID || strcmp(name, "data") != 0) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	struct fuse_entry_param e = {.ino = 2, .attr_timeout = 3600, .entry_timeout = 3600};
	stat_of(2, &e.attr);
	fuse_reply_entry(req, &e);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat st;
	(void)fi;
	stat_of(ino, &st);
	fuse_reply_attr(req, &st, 3600);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (ino != 2) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	fuse_reply_open(req, fi);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t want, off_t off,
		    struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	if (mode == ANSWER || nwaiting == MAX_WAITING) {
		answer(req, off, want);
		return;
	}
	waiting[nwaiting++] =
		(struct waiting){req, off, want, mode == SLOW ? now_ms() + slow_ms : INT64_MAX};
}

static const struct fuse_lowlevel_ops ops = {
	.lookup = op_lookup,
	.getattr = op_getattr,
	.open = op_open,
	.read = op_read,
};

int main(int argc, char **argv)
{
	if (argc != 3 && argc != 4) {
		fprintf(stderr, "usage: %s SIZE_MIB MOUNTPOINT [SLOW_MS]\n", argv[0]);
		return 2;
	}
	size = (off_t)strtoull(argv[1], NULL, 10) << 20;
	if (argc == 4)
		slow_ms = strtoll(argv[3], NULL, 10);
	char *fargv[] = {argv[0], NULL};
	struct fuse_args args = FUSE_ARGS_INIT(1, fargv);
	struct fuse_session *se = fuse_session_new(&args, &ops, sizeof(ops), NULL);
	if (!se || fuse_set_signal_handlers(se) != 0)
		return 1;
	/* The mode's signals wake the loop only in ppoll: none is lost
	 * between a look at the flags and the wait. */
	struct sigaction sa = {.sa_handler = on_signal};
	sigset_t ours, old;
	sigemptyset(&ours);
	sigaddset(&ours, SIGUSR1);
	sigaddset(&ours, SIGUSR2);
	sigaddset(&ours, SIGRTMIN);
	sigaddset(&ours, SIGTERM); /* fuse_set_signal_handlers': exit */
	sigaddset(&ours, SIGINT);
	sigaddset(&ours, SIGHUP);
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);
	sigaction(SIGRTMIN, &sa, NULL);
	sigprocmask(SIG_BLOCK, &ours, &old);
	if (fuse_session_mount(se, argv[2]) != 0)
		return 1;
	/* One thread: a read left waiting holds nothing here. */
	struct fuse_buf fbuf = {.mem = NULL};
	int r = 0;
	while (!fuse_session_exited(se)) {
		bool all = released;
		released = 0;
		struct pollfd p = {.fd = fuse_session_fd(se), .events = POLLIN};
		int timeout = answer_due(all);
		struct timespec ts = {timeout / 1000, (long)(timeout % 1000) * 1000000};
		int n = ppoll(&p, 1, timeout < 0 ? NULL : &ts, &old);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			break;
		}
		if (n == 0)
			continue;
		int got = fuse_session_receive_buf(se, &fbuf);
		if (got == -EINTR || got == -EAGAIN)
			continue;
		if (got <= 0) {
			r = got;
			break;
		}
		fuse_session_process_buf(se, &fbuf);
	}
	free(fbuf.mem);
	fuse_session_unmount(se);
	fuse_remove_signal_handlers(se);
	fuse_session_destroy(se);
	fuse_opt_free_args(&args);
	return r < 0 ? 1 : 0;
}
