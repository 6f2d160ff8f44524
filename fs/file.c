/* file.c: open files and parked reads (file.h).
 *
 * Every file but a sample is direct_io: its content is rendered into a
 * per-open buffer when it is read at offset 0, and later offsets are served
 * from that buffer.  A node flagged MS_NODE_CACHED (a sample) never changes
 * once it exists: its size is exact and the kernel keeps its pages cached.
 */
#define _GNU_SOURCE
#include "file.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#include "inode.h"
#include "poll.h"

static void handle_free(ms_open_obj *o)
{
	ms_handle *h = (ms_handle *)o;

	g_free(h->content);
	if (h->ph) /* only at shutdown: released handles have none */
		fuse_pollhandle_destroy(h->ph);
	pthread_mutex_destroy(&h->lock);
	g_free(h);
}

/* Keeps text (taken) as the handle's content, rendered at version. */
static void handle_set(ms_handle *h, char *text, uint64_t version)
{
	pthread_mutex_lock(&h->lock);
	g_free(h->content);
	h->content = text;
	h->len = strlen(text);
	h->seen = version;
	pthread_mutex_unlock(&h->lock);
}

/* A read that failed for good (not -EAGAIN) has seen that version too:
 * poll() does not call the reader back for the same error. */
static void handle_seen(ms_handle *h, uint64_t version)
{
	pthread_mutex_lock(&h->lock);
	h->seen = version;
	pthread_mutex_unlock(&h->lock);
}

static bool handle_has_content(ms_handle *h)
{
	pthread_mutex_lock(&h->lock);
	bool has = h->content != NULL;
	pthread_mutex_unlock(&h->lock);
	return has;
}

/* Replies with size bytes of the handle's content from off, copied out so
 * that no lock is held across the reply. */
static void reply_slice(fuse_req_t req, ms_handle *h, size_t size, off_t off)
{
	g_autofree char *copy = NULL;
	size_t n = 0;

	pthread_mutex_lock(&h->lock);
	if (h->content && off >= 0 && (size_t)off < h->len) {
		n = MIN(size, h->len - (size_t)off);
		copy = g_memdup2(h->content + off, n);
	}
	pthread_mutex_unlock(&h->lock);
	fuse_reply_buf(req, copy, n);
}

void ms_op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	ms_fs *fs = ms_fs_of(req);
	ms_node_ref n = ms_node_of(ino);
	struct stat st;
	uint64_t generation;
	int acc = fi->flags & O_ACCMODE;

	if (ms_stat_node(fs, n, &st, &generation) < 0) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	const ms_node *row = ms_tree_node(n);
	if (S_ISDIR(st.st_mode)) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	/* Written only by its write function, read only where its mode says
	 * anyone may (untrack is write-only). */
	if ((acc != O_RDONLY && !row->write) || (acc != O_WRONLY && !(row->mode & 0444))) {
		fuse_reply_err(req, EACCES);
		return;
	}
	ms_caller c = ms_caller_for(req, n);
	int r = ms_tree_may_enter(fs->reg, n, &c);
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	if ((row->flags & MS_NODE_PRIVATE) && !ms_tree_may_read(fs->reg, n, &c)) {
		fuse_reply_err(req, EACCES);
		return;
	}
	ms_handle *h = g_new0(ms_handle, 1);
	h->n = n;
	h->flags = fi->flags;
	h->seen = MS_TREE_NEVER_READ;
	/* metrics checks every target, VMs' sockets among them. */
	h->caller = c; /* with its groups where n needs them (ms_tree_needs_groups) */
	pthread_mutex_init(&h->lock, NULL);
	h->base.free = handle_free;
	fi->fh = ms_open_add(fs, &h->base);
	/* A sample never changes once published and its size is known: the
	 * kernel may keep it in the page cache (no read reaches the daemon
	 * after the first, and cat's end-of-file read is answered by the
	 * kernel).  Every other file is read afresh, whole, per open. */
	if (row->flags & MS_NODE_CACHED)
		fi->keep_cache = 1;
	else
		fi->direct_io = 1;
	fuse_reply_open(req, fi);
}

void ms_op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	ms_poll_forget(ms_fs_of(req), (ms_handle *)(uintptr_t)fi->fh);
	ms_open_remove(ms_fs_of(req), fi->fh);
	fuse_reply_err(req, 0);
}

/* A read of `rate` waiting for the first figure. */
typedef struct {
	fuse_req_t req;
	ms_handle *h;
	size_t size;
} parked;

/* Renders the file afresh, keeps it in the handle, replies from off. */
static int answer(fuse_req_t req, ms_fs *fs, ms_handle *h, size_t size, off_t off)
{
	char *text = NULL;
	uint64_t version;
	/* Taken before the render: a change in between is seen as new. */
	int r = ms_tree_version(fs->reg, h->n, &version);

	if (r == 0)
		r = ms_tree_render(fs->reg, h->n, &h->caller, &text);
	if (r < 0) {
		if (r != -EAGAIN)
			handle_seen(h, version);
		return r;
	}
	handle_set(h, text, version);
	reply_slice(req, h, size, off);
	return 0;
}

static void on_interrupt(fuse_req_t req, void *data)
{
	ms_fs *fs = data;

	pthread_mutex_lock(&fs->pending_lock);
	parked *p = g_hash_table_lookup(fs->pending, req);
	if (p)
		g_hash_table_steal(fs->pending, req);
	pthread_mutex_unlock(&fs->pending_lock);
	if (p) {
		fuse_reply_err(req, EINTR);
		g_free(p);
	}
}

/* Parks a read until the first figure, unless it can be answered now.  The
 * interrupt handler is registered first; whoever removes the read from
 * fs->pending answers it. */
static void park_read(fuse_req_t req, ms_fs *fs, ms_handle *h, size_t size)
{
	fuse_req_interrupt_func(req, on_interrupt, fs);
	pthread_mutex_lock(&fs->pending_lock);
	char *text = NULL;
	uint64_t version;
	int r = ms_tree_version(fs->reg, h->n, &version);
	if (r == 0)
		r = ms_tree_render(fs->reg, h->n, &h->caller, &text);
	if (r == -EAGAIN && !fuse_req_interrupted(req)) {
		parked *p = g_new(parked, 1);
		*p = (parked){req, h, size};
		g_hash_table_insert(fs->pending, req, p);
		pthread_mutex_unlock(&fs->pending_lock);
		return;
	}
	pthread_mutex_unlock(&fs->pending_lock);
	if (r == -EAGAIN)
		r = -EINTR;
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	handle_set(h, text, version);
	reply_slice(req, h, size, 0);
}

void ms_fs_target_settled(uint32_t target_id, void *data)
{
	ms_fs *fs = data;
	GHashTableIter it;
	gpointer v;
	g_autoptr(GPtrArray) ready = g_ptr_array_new_with_free_func(g_free);

	pthread_mutex_lock(&fs->pending_lock);
	g_hash_table_iter_init(&it, fs->pending);
	while (g_hash_table_iter_next(&it, NULL, &v)) {
		parked *p = v;
		if (p->h->n.id == target_id) {
			g_hash_table_iter_steal(&it);
			g_ptr_array_add(ready, p);
		}
	}
	pthread_mutex_unlock(&fs->pending_lock);
	for (guint i = 0; i < ready->len; i++) {
		parked *p = g_ptr_array_index(ready, i);
		int r = answer(p->req, fs, p->h, p->size, 0);
		if (r < 0)
			fuse_reply_err(p->req, r == -EAGAIN ? EIO : -r);
	}
}

void ms_fs_release_pending(ms_fs *fs, int err)
{
	GHashTableIter it;
	gpointer v;

	pthread_mutex_lock(&fs->pending_lock);
	g_hash_table_iter_init(&it, fs->pending);
	while (g_hash_table_iter_next(&it, NULL, &v)) {
		parked *p = v;
		g_hash_table_iter_steal(&it);
		fuse_reply_err(p->req, err);
		g_free(p);
	}
	pthread_mutex_unlock(&fs->pending_lock);
}

void ms_op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	ms_fs *fs = ms_fs_of(req);
	ms_handle *h = (ms_handle *)(uintptr_t)fi->fh;

	(void)ino;
	if (off > 0 && handle_has_content(h)) {
		reply_slice(req, h, size, off);
		return;
	}
	int r = answer(req, fs, h, size, off);
	if (r == -EAGAIN && off > 0) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	if (r == -EAGAIN) {
		/* The flags of this read: O_NONBLOCK may have been set with
		 * fcntl since the open. */
		if (fi->flags & O_NONBLOCK)
			fuse_reply_err(req, EAGAIN);
		else
			park_read(req, fs, h, size);
		return;
	}
	if (r < 0)
		fuse_reply_err(req, -r);
}
