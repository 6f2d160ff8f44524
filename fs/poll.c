/* poll.c: readers waiting for something new (poll.h).
 *
 * The kernel sends a poll request with a handle when a waiter wants to be
 * told (poll, select, epoll): the handle of an open file's last poll is
 * kept in fs->polled until its file has something new, then notified and
 * freed; the kernel polls again and sends a new one.  Notices go out with
 * no lock held.
 */
#define _GNU_SOURCE
#include "poll.h"

#include <poll.h>

/* What poll answers for what the core says (poll.h). */
static unsigned events_of(const ms_handle *h, unsigned w)
{
	unsigned ev = 0;

	/* A file that gives no notice answers as if there were no poll at
	 * all (the kernel's default mask): readable and writable. */
	if (!ms_tree_changes(h->n) && !(w & MS_WATCH_GONE))
		return POLLIN | POLLRDNORM | POLLOUT | POLLWRNORM;
	if (w & MS_WATCH_GONE)
		return POLLIN | POLLRDNORM | POLLPRI | POLLERR;
	if (w & MS_WATCH_NEW)
		ev |= POLLIN | POLLRDNORM | POLLPRI;
	if (w & MS_WATCH_FINAL)
		ev |= POLLHUP;
	return ev;
}

/* Under poll_lock: what h's reader may learn now. */
static unsigned watch_locked(ms_fs *fs, ms_handle *h)
{
	pthread_mutex_lock(&h->lock);
	uint64_t seen = h->seen;
	pthread_mutex_unlock(&h->lock);
	return ms_tree_watch(fs->reg, h->n, &h->caller, seen);
}

/* Under poll_lock: takes h's handle out. */
static struct fuse_pollhandle *take_locked(ms_fs *fs, ms_handle *h)
{
	struct fuse_pollhandle *ph = h->ph;

	h->ph = NULL;
	g_hash_table_remove(fs->polled, h);
	return ph;
}

void ms_op_poll(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
		struct fuse_pollhandle *ph)
{
	ms_fs *fs = ms_fs_of(req);
	ms_handle *h = (ms_handle *)(uintptr_t)fi->fh;
	struct fuse_pollhandle *old = NULL;

	(void)ino;
	pthread_mutex_lock(&fs->poll_lock);
	/* The event is taken under poll_lock: a change published after it
	 * finds the handle kept below and notifies it. */
	unsigned w = fs->reg ? watch_locked(fs, h) : MS_WATCH_NEW;
	/* Kept even when something is new now: an edge-triggered epoll polls
	 * again only when told, so the next change must find it. */
	if (ph && fs->reg && ms_tree_changes(h->n)) {
		old = h->ph;
		h->ph = ph;
		g_hash_table_add(fs->polled, h);
		ph = NULL;
	}
	pthread_mutex_unlock(&fs->poll_lock);
	if (old)
		fuse_pollhandle_destroy(old);
	if (ph)
		fuse_pollhandle_destroy(ph);
	fuse_reply_poll(req, events_of(h, w));
}

/* Wakes the pollers of target_id whose watched file has something new (or
 * every poller, when all): their handles are taken under poll_lock and
 * notified after it, each once. */
static void wake_polls(ms_fs *fs, bool all, uint32_t target_id)
{
	GHashTableIter it;
	gpointer k;
	g_autoptr(GPtrArray) wake = g_ptr_array_new();

	pthread_mutex_lock(&fs->poll_lock);
	g_hash_table_iter_init(&it, fs->polled);
	while (g_hash_table_iter_next(&it, &k, NULL)) {
		ms_handle *h = k;
		if (!all && (h->n.id != target_id || !watch_locked(fs, h)))
			continue;
		g_ptr_array_add(wake, h->ph);
		h->ph = NULL;
		g_hash_table_iter_remove(&it);
	}
	pthread_mutex_unlock(&fs->poll_lock);
	for (guint i = 0; i < wake->len; i++) {
		struct fuse_pollhandle *ph = g_ptr_array_index(wake, i);
		fuse_lowlevel_notify_poll(ph);
		fuse_pollhandle_destroy(ph);
	}
}

void ms_fs_target_changed(uint32_t target_id, void *data)
{
	wake_polls(data, false, target_id);
}

void ms_poll_forget(ms_fs *fs, ms_handle *h)
{
	pthread_mutex_lock(&fs->poll_lock);
	struct fuse_pollhandle *ph = take_locked(fs, h);
	pthread_mutex_unlock(&fs->poll_lock);
	if (ph)
		fuse_pollhandle_destroy(ph);
}

void ms_fs_release_polls(ms_fs *fs)
{
	wake_polls(fs, true, 0);
}
