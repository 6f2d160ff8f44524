/* fuse_floor: the least a libfuse daemon can do to serve a small file, for
 * the read benchmarks to compare memstatfs against (the FUSE floor).
 *
 *   fuse_floor [-o direct_io] [-s] MOUNTPOINT    (stays in the foreground)
 *
 * One file, /value, holding "1234567\n": a static content of known size,
 * served from the page cache as libfuse's hello_ll example does (with
 * "-o direct_io", every read is a request, as memstatfs's files are).  The
 * same libfuse calls as memstatfs: the low-level API, fuse_session_loop_mt
 * (or the single-threaded loop with -s), entry and attribute timeouts of 1 s.
 */
#define FUSE_USE_VERSION 312
#include <errno.h>
#include <fuse_lowlevel.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char content[] = "1234567\n";
static int direct_io;

static void stat_of(fuse_ino_t ino, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	if (ino == FUSE_ROOT_ID) {
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2;
	} else {
		st->st_mode = S_IFREG | 0444;
		st->st_nlink = 1;
		st->st_size = (off_t)strlen(content);
	}
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	if (parent != FUSE_ROOT_ID || strcmp(name, "value") != 0) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	struct fuse_entry_param e = {.ino = 2, .attr_timeout = 1.0, .entry_timeout = 1.0};
	stat_of(2, &e.attr);
	fuse_reply_entry(req, &e);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat st;
	(void)fi;
	stat_of(ino, &st);
	fuse_reply_attr(req, &st, 1.0);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (ino != 2) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	fi->direct_io = direct_io;
	fuse_reply_open(req, fi);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	size_t len = strlen(content);
	(void)ino;
	(void)fi;
	if (off < 0 || (size_t)off >= len)
		fuse_reply_buf(req, NULL, 0);
	else
		fuse_reply_buf(req, content + off,
			       size < len - (size_t)off ? size : len - (size_t)off);
}

static const struct fuse_lowlevel_ops ops = {
	.lookup = op_lookup,
	.getattr = op_getattr,
	.open = op_open,
	.read = op_read,
};

static const struct fuse_opt opts[] = {{"direct_io", 0, 1}, FUSE_OPT_END};

int main(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct fuse_cmdline_opts cmd;
	int ret = 1;

	if (fuse_parse_cmdline(&args, &cmd) != 0 || !cmd.mountpoint) {
		fprintf(stderr, "usage: %s [-o direct_io] [-s] MOUNTPOINT\n", argv[0]);
		return 2;
	}
	if (fuse_opt_parse(&args, &direct_io, opts, NULL) != 0)
		return 2;
	struct fuse_session *se = fuse_session_new(&args, &ops, sizeof(ops), NULL);
	if (!se)
		goto out;
	if (fuse_set_signal_handlers(se) != 0)
		goto out_session;
	if (fuse_session_mount(se, cmd.mountpoint) != 0)
		goto out_signals;
	if (cmd.singlethread) {
		ret = fuse_session_loop(se);
	} else {
		struct fuse_loop_config *loop = fuse_loop_cfg_create();
		fuse_loop_cfg_set_max_threads(loop, cmd.max_threads);
		ret = fuse_session_loop_mt(se, loop);
		fuse_loop_cfg_destroy(loop);
	}
	ret = ret < 0 ? 1 : 0;
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out_session:
	fuse_session_destroy(se);
out:
	free(cmd.mountpoint);
	fuse_opt_free_args(&args);
	return ret;
}
