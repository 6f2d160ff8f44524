/* control.h: writes to control files (track, untrack, a target's
 * settings): each write is one whole command, like a cgroup file's. */
#pragma once

#include "fs.h"

void ms_op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		 struct fuse_file_info *fi);
