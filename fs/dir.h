/* dir.h: directories: a listing is a snapshot taken at opendir. */
#pragma once

#include "fs.h"

void ms_op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void ms_op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		   struct fuse_file_info *fi);
void ms_op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
/* rmdir of a target's directory untracks it. */
void ms_op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name);
