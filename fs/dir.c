/* dir.c: directories (dir.h). */
#define _GNU_SOURCE
#include "dir.h"

#include <errno.h>
#include <sys/stat.h>

#include "inode.h"

/* A directory listing, snapshot at opendir. */
typedef struct {
	ms_open_obj base;
	fuse_req_t req; /* the opendir's, while listing */
	char *buf;
	size_t len, cap;
	GArray *ends; /* size_t: where each entry ends, i.e. the next one's offset */
} dirbuf;

static void dir_add_ino(dirbuf *d, const char *name, fuse_ino_t ino, mode_t mode)
{
	struct stat st = {.st_ino = ino, .st_mode = mode};
	size_t need = fuse_add_direntry(d->req, NULL, 0, name, NULL, 0);

	if (d->len + need > d->cap) {
		d->cap = MAX(d->cap * 2, d->len + need + 1024);
		d->buf = g_realloc(d->buf, d->cap);
	}
	/* Offsets are positions in this snapshot: the next entry's start. */
	fuse_add_direntry(d->req, d->buf + d->len, need, name, &st, (off_t)(d->len + need));
	d->len += need;
	g_array_append_val(d->ends, d->len);
}

static void dir_add(const char *name, ms_node_ref ref, mode_t mode, void *data)
{
	dir_add_ino(data, name, ms_ino_of(ref), mode & S_IFMT);
}

static void dirbuf_free(ms_open_obj *o)
{
	dirbuf *d = (dirbuf *)o;

	g_array_unref(d->ends);
	g_free(d->buf);
	g_free(d);
}

void ms_op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	ms_fs *fs = ms_fs_of(req);
	ms_node_ref n = ms_node_of(ino);
	const ms_node *row = ms_tree_node(n);

	if (row && (row->flags & MS_NODE_PRIVATE)) {
		ms_caller c = ms_caller_for(req, n);
		if (!ms_tree_may_read(fs->reg, n, &c)) {
			fuse_reply_err(req, EACCES);
			return;
		}
	}
	dirbuf *d = g_new0(dirbuf, 1);
	d->base.free = dirbuf_free;
	d->req = req;
	d->ends = g_array_new(FALSE, FALSE, sizeof(size_t));
	dir_add_ino(d, ".", ms_ino_of(n), S_IFDIR);
	dir_add_ino(d, "..", FUSE_ROOT_ID, S_IFDIR);
	ms_caller c = ms_caller_for(req, n);
	int r = ms_tree_list(fs->reg, n, &c, dir_add, d);
	d->req = NULL;
	if (r < 0) {
		dirbuf_free(&d->base);
		fuse_reply_err(req, -r);
		return;
	}
	fi->fh = ms_open_add(fs, &d->base);
	fuse_reply_open(req, fi);
}

void ms_op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		   struct fuse_file_info *fi)
{
	dirbuf *d = (dirbuf *)(uintptr_t)fi->fh;

	(void)ino;
	if (off < 0 || (size_t)off >= d->len) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	/* Whole entries only, as many as fit, from the first entry that
	 * starts at or after off (an offset inside an entry, from a stray
	 * lseek, moves on to the next one). */
	size_t start = 0, end = 0;
	bool started = off == 0;
	for (guint i = 0; i < d->ends->len; i++) {
		size_t e = g_array_index(d->ends, size_t, i);
		if (!started) {
			if (e >= (size_t)off) {
				started = true;
				start = end = e;
			}
			continue;
		}
		if (e - start > size)
			break;
		end = e;
	}
	/* A copy: once the reply is out, the reader may close the directory
	 * and another thread free d while this one is still returning from
	 * the write (ThreadSanitizer sees the buffer read after the call). */
	g_autofree char *copy = g_memdup2(d->buf + start, end - start);
	fuse_reply_buf(req, copy, end - start);
}

void ms_op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	ms_open_remove(ms_fs_of(req), fi->fh);
	fuse_reply_err(req, 0);
}

void ms_op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	ms_caller c = ms_caller_of(req);

	fuse_reply_err(req, -ms_tree_rmdir(ms_fs_of(req)->reg, ms_node_of(parent), name, &c));
}
