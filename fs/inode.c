/* inode.c: inode numbers, lookups, attributes, links, and the changes the
 * tree refuses (inode.h).
 *
 * Target ids are not reused before 16M others, and a reused one comes with
 * another generation (fuse_entry_param), so the kernel never serves a
 * cached sample of one target for another's.
 */
#define _GNU_SOURCE
#include "inode.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

fuse_ino_t ms_ino_of(ms_node_ref n)
{
	if (n.node == 0)
		return FUSE_ROOT_ID;
	return ((fuse_ino_t)n.node << 56) | ((fuse_ino_t)(n.id & 0xffffff) << 32) | n.idx;
}

ms_node_ref ms_node_of(fuse_ino_t ino)
{
	if (ino == FUSE_ROOT_ID)
		return (ms_node_ref){0, 0, 0};
	return (ms_node_ref){(uint8_t)(ino >> 56), (uint32_t)(ino >> 32) & 0xffffff, (uint32_t)ino};
}

int ms_stat_node(ms_fs *fs, ms_node_ref n, struct stat *st, uint64_t *generation)
{
	ms_node_attr a;
	int r = ms_tree_stat(fs->reg, n, &a, generation);

	memset(st, 0, sizeof(*st));
	if (r < 0)
		return r;
	st->st_ino = ms_ino_of(n);
	st->st_mode = a.mode;
	st->st_nlink = S_ISDIR(a.mode) ? 2 : 1;
	st->st_uid = a.uid;
	st->st_size = a.size;
	st->st_mtime = st->st_ctime = st->st_atime = a.mtime ? a.mtime : fs->started;
	st->st_blksize = 4096;
	return 0;
}

static void reply_entry(fuse_req_t req, ms_node_ref n)
{
	struct fuse_entry_param e = {0};
	uint64_t generation = 0;
	int r = ms_stat_node(ms_fs_of(req), n, &e.attr, &generation);

	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	e.ino = e.attr.st_ino;
	/* A reused target id makes the same inode numbers: the generation
	 * makes the kernel drop what it cached (samples' pages) for the old
	 * target's. */
	e.generation = generation;
	e.attr_timeout = 1.0;
	/* A lookup answered for one caller is not the kernel's to reuse for
	 * another when what a target shows depends on who asks (hidepid=,
	 * libvirt's visibility). */
	e.entry_timeout = ms_tree_per_caller(ms_fs_of(req)->reg, n) ? 0.0 : 1.0;
	fuse_reply_entry(req, &e);
}

void ms_op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	ms_node_ref child, p = ms_node_of(parent);
	ms_caller c = ms_caller_for(req, p);
	int r = ms_tree_lookup(ms_fs_of(req)->reg, p, name, &c, &child);

	if (r < 0)
		fuse_reply_err(req, -r);
	else
		reply_entry(req, child);
}

void ms_op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat st;
	uint64_t generation;
	int r = ms_stat_node(ms_fs_of(req), ms_node_of(ino), &st, &generation);

	(void)fi;
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_attr(req, &st, 1.0);
}

void ms_op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		   struct fuse_file_info *fi)
{
	const ms_node *row = ms_tree_node(ms_node_of(ino));

	(void)attr;
	/* `echo x > file` opens with O_TRUNC: a size change on a control file
	 * is harmless; anything else is not ours to change. */
	if (to_set & ~(FUSE_SET_ATTR_SIZE | FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME |
		       FUSE_SET_ATTR_ATIME_NOW | FUSE_SET_ATTR_MTIME_NOW | FUSE_SET_ATTR_CTIME)) {
		fuse_reply_err(req, EPERM);
		return;
	}
	if ((to_set & FUSE_SET_ATTR_SIZE) && !(row && row->write)) {
		fuse_reply_err(req, EACCES);
		return;
	}
	ms_op_getattr(req, ino, fi);
}

void ms_op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	ms_fs *fs = ms_fs_of(req);
	ms_node_ref n = ms_node_of(ino);
	const ms_node *row = ms_tree_node(n);
	g_autofree char *target = NULL;

	if (!row || !S_ISLNK(row->mode)) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	ms_caller c = ms_caller_for(req, n);
	int r = ms_tree_may_enter(fs->reg, n, &c);
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	if (!ms_tree_may_read(fs->reg, n, &c)) {
		fuse_reply_err(req, EACCES);
		return;
	}
	r = ms_tree_render(fs->reg, n, &c, &target);
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_readlink(req, target);
}

/* Nothing is made, linked or renamed here: targets come by `track`. */
void ms_op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	(void)parent;
	(void)name;
	(void)mode;
	fuse_reply_err(req, EPERM);
}

void ms_op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	ms_op_mkdir(req, parent, name, 0);
}

void ms_op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		  struct fuse_file_info *fi)
{
	(void)fi;
	ms_op_mkdir(req, parent, name, mode);
}

void ms_op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	(void)rdev;
	ms_op_mkdir(req, parent, name, mode);
}

void ms_op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	(void)link;
	ms_op_mkdir(req, parent, name, 0);
}

void ms_op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t parent, const char *name)
{
	(void)ino;
	ms_op_mkdir(req, parent, name, 0);
}

void ms_op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		  const char *newname, unsigned int flags)
{
	(void)newparent;
	(void)newname;
	(void)flags;
	ms_op_mkdir(req, parent, name, 0);
}
