/* control.c: writes to control files (control.h). */
#define _GNU_SOURCE
#include "control.h"

#include <errno.h>
#include <string.h>

#include "file.h"

void ms_op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		 struct fuse_file_info *fi)
{
	ms_fs *fs = ms_fs_of(req);
	ms_handle *h = (ms_handle *)(uintptr_t)fi->fh;
	ms_caller c = ms_caller_with_groups(req); /* a track line may name a socket */
	char gone[MS_NAME_MAX];

	(void)ino;
	(void)off; /* like a cgroup file: each write is one whole command */
	int r = ms_tree_write(fs->reg, h->n, &c, buf, size, gone);
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	/* The kernel may have the name cached for entry_timeout: drop it now.
	 * (The writer holds no lock on the root, so this cannot deadlock.) */
	if (gone[0] && fs->se)
		fuse_lowlevel_notify_inval_entry(fs->se, FUSE_ROOT_ID, gone, strlen(gone));
	fuse_reply_write(req, size);
}
