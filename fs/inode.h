/* inode.h: inode numbers, lookups, attributes, links, and the changes the
 * tree refuses. */
#pragma once

#include "fs.h"

/* Inode numbers encode what a node is (memstat/core/tree.h), so the FUSE
 * layer keeps no per-inode state: bits 56..63 the node's row, 32..55 its
 * target's id, 0..31 its index.  The root is FUSE_ROOT_ID. */
fuse_ino_t ms_ino_of(ms_node_ref n);
ms_node_ref ms_node_of(fuse_ino_t ino);

/* Stats n into *st: 0 or -ENOENT. */
int ms_stat_node(ms_fs *fs, ms_node_ref n, struct stat *st, uint64_t *generation);

void ms_op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name);
void ms_op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void ms_op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		   struct fuse_file_info *fi);
void ms_op_readlink(fuse_req_t req, fuse_ino_t ino);
void ms_op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev);
void ms_op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode);
void ms_op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name);
void ms_op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		  struct fuse_file_info *fi);
void ms_op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name);
void ms_op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t parent, const char *name);
void ms_op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		  const char *newname, unsigned int flags);
