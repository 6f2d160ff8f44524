/* fs.c: the FUSE layer's state, callers, open handles and operation table
 * (fs.h). */
#define _GNU_SOURCE
#include "fs.h"

#include <string.h>

#include "control.h"
#include "dir.h"
#include "file.h"
#include "inode.h"
#include "poll.h"

ms_fs *ms_fs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

ms_caller ms_caller_of(fuse_req_t req)
{
	const struct fuse_ctx *c = fuse_req_ctx(req);
	return (ms_caller){.uid = c->uid, .gid = c->gid, .pid = c->pid};
}

ms_caller ms_caller_with_groups(fuse_req_t req)
{
	ms_caller caller = ms_caller_of(req);
	int n = fuse_req_getgroups(req, MS_CALLER_GROUPS_MAX, caller.groups);
	caller.ngroups = n > 0 && n <= MS_CALLER_GROUPS_MAX ? n : 0;
	return caller;
}

ms_caller ms_caller_for(fuse_req_t req, ms_node_ref n)
{
	return ms_tree_needs_groups(ms_fs_of(req)->reg, n) ? ms_caller_with_groups(req)
							   : ms_caller_of(req);
}

uint64_t ms_open_add(ms_fs *fs, ms_open_obj *o)
{
	pthread_mutex_lock(&fs->open_lock);
	g_hash_table_add(fs->open, o);
	pthread_mutex_unlock(&fs->open_lock);
	return (uint64_t)(uintptr_t)o;
}

void ms_open_remove(ms_fs *fs, uint64_t fh)
{
	ms_open_obj *o = (ms_open_obj *)(uintptr_t)fh;

	pthread_mutex_lock(&fs->open_lock);
	g_hash_table_remove(fs->open, o);
	pthread_mutex_unlock(&fs->open_lock);
	o->free(o);
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	/* Only samples are cached in pages, and they never change. */
	conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
}

const struct fuse_lowlevel_ops ms_fs_ops = {
	.init = op_init,
	.lookup = ms_op_lookup,
	.getattr = ms_op_getattr,
	.setattr = ms_op_setattr,
	.readlink = ms_op_readlink,
	.mknod = ms_op_mknod,
	.mkdir = ms_op_mkdir,
	.unlink = ms_op_unlink,
	.rmdir = ms_op_rmdir,
	.open = ms_op_open,
	.read = ms_op_read,
	.write = ms_op_write,
	.release = ms_op_release,
	.poll = ms_op_poll,
	.opendir = ms_op_opendir,
	.readdir = ms_op_readdir,
	.releasedir = ms_op_releasedir,
	.create = ms_op_create,
	.symlink = ms_op_symlink,
	.link = ms_op_link,
	.rename = ms_op_rename,
};

void ms_fs_init(ms_fs *fs)
{
	memset(fs, 0, sizeof(*fs));
	fs->started = time(NULL);
	ms_tree_init();
	pthread_mutex_init(&fs->pending_lock, NULL);
	fs->pending = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, g_free);
	pthread_mutex_init(&fs->poll_lock, NULL);
	fs->polled = g_hash_table_new(g_direct_hash, g_direct_equal);
	pthread_mutex_init(&fs->open_lock, NULL);
	fs->open = g_hash_table_new(g_direct_hash, g_direct_equal);
}

void ms_fs_clear(ms_fs *fs)
{
	GHashTableIter it;
	gpointer o;

	/* What the kernel never released (the daemon was stopped first). */
	g_hash_table_iter_init(&it, fs->open);
	while (g_hash_table_iter_next(&it, &o, NULL))
		((ms_open_obj *)o)->free(o);
	g_hash_table_destroy(fs->open);
	pthread_mutex_destroy(&fs->open_lock);
	g_hash_table_destroy(fs->polled);
	pthread_mutex_destroy(&fs->poll_lock);
	g_hash_table_destroy(fs->pending);
	pthread_mutex_destroy(&fs->pending_lock);
}
