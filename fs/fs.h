/* fs.h: the FUSE layer's own state and what its files share (private to
 * fs/).
 *
 * fs/ is the only place that includes libfuse.  It turns FUSE requests into
 * walks over the core's table of nodes (memstat/core/tree.h) and knows
 * nothing of how a figure is measured:
 *   fs.c       the state, the callers, open handles, the operation table
 *   inode.c    inode numbers, lookup, attributes, links, refused changes
 *   dir.c      directories
 *   file.c     files, and reads parked until a first figure
 *   poll.c     poll(): readers waiting for something new
 *   control.c  writes to control files
 *   main.c     options, mount, daemon life
 *
 * Locks, always taken in this order: pending_lock, then poll_lock, then
 * open_lock or a handle's lock, then the core's (registry.c).  None is held across a
 * reply.
 */
#pragma once

#include <fuse_lowlevel.h>
#include <glib.h>
#include <pthread.h>
#include <stdbool.h>

#include "memstat/core/registry.h"
#include "memstat/core/tree.h"

typedef struct {
	struct fuse_session *se; /* set before the session runs */
	ms_registry *reg;	 /* set once the daemon has forked */
	time_t started;

	/* Reads of <name>/rate parked until the target's first figure: one
	 * per request, keyed by fuse_req_t.  Guarded by pending_lock, taken
	 * before any target lock. */
	pthread_mutex_t pending_lock;
	GHashTable *pending;

	/* Open files whose reader waits in poll(): each holds the kernel's
	 * poll handle of its last poll (ms_handle.ph), to be notified once
	 * its file shows something new.  A set of ms_handle; it and every
	 * handle's ph guarded by poll_lock, taken before a handle's lock. */
	pthread_mutex_t poll_lock;
	GHashTable *polled;

	/* Open files and directories (a set of file handles), so that the
	 * ones the kernel never released are freed at shutdown. */
	pthread_mutex_t open_lock;
	GHashTable *open;
} ms_fs;

extern const struct fuse_lowlevel_ops ms_fs_ops;

void ms_fs_init(ms_fs *fs);
void ms_fs_clear(ms_fs *fs);

ms_fs *ms_fs_of(fuse_req_t req);

/* Who asks: uid, gid, pid from the request. */
ms_caller ms_caller_of(fuse_req_t req);
/* The same with the supplementary groups, for acting with the caller's
 * rights on a socket.  (libfuse reads them from /proc: only where they are
 * needed.)  None when they cannot be read: fewer rights, not more. */
ms_caller ms_caller_with_groups(fuse_req_t req);
/* The caller as n needs it checked (ms_tree_needs_groups). */
ms_caller ms_caller_for(fuse_req_t req, ms_node_ref n);

/* The first member of what a file handle points to. */
typedef struct ms_open_obj {
	void (*free)(struct ms_open_obj *o);
} ms_open_obj;

/* Keeps o among the open handles: its file handle. */
uint64_t ms_open_add(ms_fs *fs, ms_open_obj *o);
/* Forgets and frees the handle. */
void ms_open_remove(ms_fs *fs, uint64_t fh);
