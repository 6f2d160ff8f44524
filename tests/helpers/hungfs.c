/* hungfs: a FUSE file system whose server stops answering, as a hung FUSE
 * or NFS mount does.
 *
 *   hungfs SIZE_MIB MOUNTPOINT     (stays in the foreground)
 *
 * Serves one file, /data, of SIZE_MIB, each page filled with its number.
 * Reads are answered until the process gets SIGUSR1; from then on no read
 * is ever answered (a process that faults on a page of /data that is not in
 * the page cache waits for ever).  Other requests are still answered.
 * SIGTERM unmounts; SIGKILL leaves the mount dead, aborting every request
 * still waiting (so the processes that waited go on, with an error).
 */
#define FUSE_USE_VERSION 312
#include <errno.h>
#include <fuse_lowlevel.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static off_t size;
static volatile sig_atomic_t hung;

static void on_usr1(int sig)
{
	(void)sig;
	hung = 1;
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
	static char buf[1 << 20];
	(void)ino;
	(void)fi;
	if (hung)
		return; /* never answered */
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

static const struct fuse_lowlevel_ops ops = {
	.lookup = op_lookup,
	.getattr = op_getattr,
	.open = op_open,
	.read = op_read,
};

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: %s SIZE_MIB MOUNTPOINT\n", argv[0]);
		return 2;
	}
	size = (off_t)strtoull(argv[1], NULL, 10) << 20;
	char *fargv[] = {argv[0], NULL};
	struct fuse_args args = FUSE_ARGS_INIT(1, fargv);
	struct fuse_session *se = fuse_session_new(&args, &ops, sizeof(ops), NULL);
	if (!se || fuse_set_signal_handlers(se) != 0)
		return 1;
	signal(SIGUSR1, on_usr1);
	if (fuse_session_mount(se, argv[2]) != 0)
		return 1;
	/* One thread: a read left unanswered holds nothing here. */
	int r = fuse_session_loop(se);
	fuse_session_unmount(se);
	fuse_remove_signal_handlers(se);
	fuse_session_destroy(se);
	fuse_opt_free_args(&args);
	return r < 0 ? 1 : 0;
}
