/* poll.h: readers waiting in poll(), select() or epoll for something new in
 * a file that changes with its target's samples (a row with `changes` in
 * the core's table: rate, status, growth, ...).
 *
 * What is new for an open file is the core's to say (ms_tree_watch, against
 * the version the handle last read); this keeps the kernel's poll handles
 * and wakes them.  Events, as a kernel pseudo-file gives them:
 *   something new                 POLLIN | POLLRDNORM | POLLPRI (once per
 *                                 change: reading it clears it)
 *   nothing new will come         POLLHUP (its target exited; persistent,
 *                                 as a pipe whose writer closed)
 *   the file is gone (untracked)  POLLIN | POLLRDNORM | POLLPRI | POLLERR, as
 *                                 sysfs for a removed file; the read fails
 *                                 with ENOENT
 *   a file that never notifies    POLLIN | POLLRDNORM | POLLOUT | POLLWRNORM
 *                                 (always ready: the kernel's answer for a
 *                                 file system without poll)
 * At daemon stop every waiter is woken and every handle freed.
 */
#pragma once

#include "file.h"

void ms_op_poll(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
		struct fuse_pollhandle *ph);

/* Registry callback (on_changed): wakes the waiters on target_id's files
 * that have something new (or are gone). */
void ms_fs_target_changed(uint32_t target_id, void *data);
/* Forgets h's poll handle (h is being released). */
void ms_poll_forget(ms_fs *fs, ms_handle *h);
/* Wakes every waiter and frees every poll handle (daemon stop, while the
 * connection is there). */
void ms_fs_release_polls(ms_fs *fs);
