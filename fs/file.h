/* file.h: open files: a file's content is rendered at a read at offset 0
 * and kept for the reads that follow, so a reader never sees two versions
 * mixed; a read with no figure yet waits, parked, without a thread. */
#pragma once

#include "fs.h"

/* An open file: what it showed at the last read at offset 0. */
typedef struct {
	ms_open_obj base;
	ms_node_ref n;
	int flags;
	ms_caller caller;     /* who opened it */
	pthread_mutex_t lock; /* guards content, len and seen */
	char *content;	      /* NULL until the first read */
	size_t len;
	/* The version (ms_tree_version) of the last read at offset 0 that
	 * answered, or MS_TREE_NEVER_READ: what poll() compares. */
	uint64_t seen;
	struct fuse_pollhandle *ph; /* guarded by ms_fs.poll_lock (poll.c) */
} ms_handle;

void ms_op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void ms_op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi);
void ms_op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);

/* Registry callback: answers the reads parked on a target. */
void ms_fs_target_settled(uint32_t target_id, void *data);
/* Answers every parked read (at shutdown, after the registry stopped). */
void ms_fs_release_pending(ms_fs *fs, int err);
