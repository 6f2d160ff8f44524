/* fs.h: the FUSE layer's own state (private to fs/). */
#pragma once

#include <fuse_lowlevel.h>
#include <glib.h>
#include <pthread.h>
#include <stdbool.h>

#include "memstat/registry.h"

typedef struct {
	struct fuse_session *se;  /* set before the session runs */
	ms_registry *reg;	  /* set once the daemon has forked */
	GPtrArray *meminfo_names; /* file names under meminfo/, fixed at start */
	GPtrArray *memory_names;  /* names a memory/ dir may hold, fixed at start */
	time_t started;

	/* Reads of <name>/rate parked until the target's first figure: one
	 * per request, keyed by fuse_req_t.  Guarded by pending_lock, taken
	 * before any target lock. */
	pthread_mutex_t pending_lock;
	GHashTable *pending;

	/* Open files and directories (a set of file handles), so that the
	 * ones the kernel never released are freed at shutdown. */
	pthread_mutex_t open_lock;
	GHashTable *open;
} ms_fs;

extern const struct fuse_lowlevel_ops ms_fs_ops;
/* The root's own entries: names no target may take. */
extern const char *const ms_fs_reserved_names[];

void ms_fs_init(ms_fs *fs);
/* Registry callback: answers the reads parked on a target. */
void ms_fs_target_settled(uint32_t target_id, void *data);
/* Answers every parked read (at shutdown, after the registry stopped). */
void ms_fs_release_pending(ms_fs *fs, int err);
void ms_fs_clear(ms_fs *fs);
