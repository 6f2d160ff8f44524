/* tree.c: the file tree, as FUSE low-level operations.
 *
 * Inode numbers encode what a node is, so the tree keeps no per-inode state:
 *   bits 56..63 node kind, 32..55 target id, 0..31 index (a meminfo or
 *   memory field, a sample's sequence number, or a vCPU's id).  The root is
 *   FUSE_ROOT_ID.
 * Every file but a sample is direct_io: its content is rendered into a
 * per-open buffer when it is read at offset 0, and later offsets are served
 * from that buffer, so a reader never sees two versions mixed.  A sample
 * (samples/<seq>) never changes once published: its size is exact and the
 * kernel keeps its pages cached.
 *
 * Target ids are not reused before 16M others, and a reused one comes with
 * another generation (fuse_entry_param), so the kernel never serves a
 * cached sample of one target for another's.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs.h"
#include "memstat/collector.h"
#include "memstat/meminfo.h"
#include "memstat/metrics.h"
#include "memstat/procfs.h"

enum kind {
	K_ROOT = 1,
	K_TRACK,
	K_UNTRACK,
	K_MEMINFO_DIR,
	K_MEMINFO,
	K_TARGET_DIR,
	K_STATUS,
	K_RATE,
	K_PERIOD,
	K_SAMPLE_PAGES,
	K_MODE,
	K_MEMORY_DIR,
	K_MEMORY,
	K_SAMPLES_DIR,
	K_SAMPLE,
	K_LATEST,
	K_QEMU_PID,
	K_SOCKET,
	K_VCPU_DIR,
	K_VCPU,
	K_VCPU_RATE,
	K_METRICS,
};

typedef struct {
	enum kind kind;
	uint32_t id;  /* target */
	uint32_t idx; /* field index or sample seq */
} node;

static fuse_ino_t ino_of(enum kind k, uint32_t id, uint32_t idx)
{
	if (k == K_ROOT)
		return FUSE_ROOT_ID;
	return ((fuse_ino_t)k << 56) | ((fuse_ino_t)(id & 0xffffff) << 32) | idx;
}

static node node_of(fuse_ino_t ino)
{
	if (ino == FUSE_ROOT_ID)
		return (node){K_ROOT, 0, 0};
	return (node){(enum kind)(ino >> 56), (uint32_t)(ino >> 32) & 0xffffff, (uint32_t)ino};
}

/* Which targets an entry of a target directory is for. */
#define FOR_PROCESS 1u
#define FOR_VM	    2u

/* Fixed entries of the root and of a target directory. */
typedef struct {
	const char *name;
	enum kind kind;
	mode_t mode;
	unsigned targets; /* FOR_PROCESS | FOR_VM */
} entry;

static const entry root_entries[] = {
	{"track", K_TRACK, S_IFREG | 0644, 0},
	{"untrack", K_UNTRACK, S_IFREG | 0200, 0},
	{"meminfo", K_MEMINFO_DIR, S_IFDIR | 0555, 0},
	{"metrics", K_METRICS, S_IFREG | 0444, 0},
};

/* Names a VM may not take. */
const char *const ms_fs_reserved_names[] = {"track", "untrack", "meminfo", "metrics", NULL};

static const entry target_entries[] = {
	{"status", K_STATUS, S_IFREG | 0444, FOR_PROCESS | FOR_VM},
	{"rate", K_RATE, S_IFREG | 0444, FOR_PROCESS | FOR_VM},
	{"period", K_PERIOD, S_IFREG | 0644, FOR_PROCESS | FOR_VM},
	{"sample_pages", K_SAMPLE_PAGES, S_IFREG | 0644, FOR_PROCESS | FOR_VM},
	{"mode", K_MODE, S_IFREG | 0644, FOR_PROCESS | FOR_VM},
	{"memory", K_MEMORY_DIR, S_IFDIR | 0555, FOR_PROCESS},
	{"samples", K_SAMPLES_DIR, S_IFDIR | 0555, FOR_PROCESS | FOR_VM},
	{"qemu_pid", K_QEMU_PID, S_IFREG | 0444, FOR_VM},
	{"socket", K_SOCKET, S_IFREG | 0444, FOR_VM},
	{"vcpu", K_VCPU_DIR, S_IFDIR | 0555, FOR_VM},
};

static unsigned target_kind(const ms_target *t)
{
	return ms_target_socket(t) ? FOR_VM : FOR_PROCESS;
}

/* Whether a node of kind k can be found under target t. */
static bool kind_fits(enum kind k, const ms_target *t)
{
	for (size_t i = 0; i < G_N_ELEMENTS(target_entries); i++)
		if (target_entries[i].kind == k)
			return (target_entries[i].targets & target_kind(t)) != 0;
	if (k == K_MEMORY)
		return target_kind(t) == FOR_PROCESS;
	if (k == K_VCPU || k == K_VCPU_RATE)
		return target_kind(t) == FOR_VM;
	return true;
}

static mode_t mode_of(enum kind k)
{
	for (size_t i = 0; i < G_N_ELEMENTS(root_entries); i++)
		if (root_entries[i].kind == k)
			return root_entries[i].mode;
	for (size_t i = 0; i < G_N_ELEMENTS(target_entries); i++)
		if (target_entries[i].kind == k)
			return target_entries[i].mode;
	switch (k) {
	case K_ROOT:
	case K_TARGET_DIR:
	case K_VCPU:
		return S_IFDIR | 0555;
	case K_LATEST:
		return S_IFLNK | 0777;
	default:
		return S_IFREG | 0444;
	}
}

static ms_fs *fs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/* Who asks: uid, gid, pid from the request. */
static ms_caller caller_of(fuse_req_t req)
{
	const struct fuse_ctx *c = fuse_req_ctx(req);
	return (ms_caller){.uid = c->uid, .gid = c->gid, .pid = c->pid};
}

/* The same with the supplementary groups, for acting with the caller's
 * rights on a VM's socket.  (libfuse reads them from /proc: only where they
 * are needed.)  None when they cannot be read: fewer rights, not more. */
static ms_caller caller_with_groups(fuse_req_t req)
{
	ms_caller caller = caller_of(req);
	int n = fuse_req_getgroups(req, MS_CALLER_GROUPS_MAX, caller.groups);
	caller.ngroups = n > 0 && n <= MS_CALLER_GROUPS_MAX ? n : 0;
	return caller;
}

/* Logs why a request failed and answers it with err (negative errno). */
static void fail(fuse_req_t req, int err, const char *what, const char *why)
{
	if (why)
		g_message("%s: %s (%s)", what, why, g_strerror(-err));
	fuse_reply_err(req, -err);
}

/* ---- nodes: existence and attributes ---- */

/* The target a node belongs to, or NULL when it is gone. */
static ms_target *target_of(ms_fs *fs, node n)
{
	return fs->reg ? ms_registry_lookup_id(fs->reg, n.id) : NULL;
}

/* Reads /proc/PID/status of t, making sure it is still t's process. */
static int target_status_text(ms_target *t, char **text)
{
	char path[64];

	if (ms_target_pid(t) <= 0)
		return -ESRCH;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)ms_target_pid(t));
	int r = ms_read_file(path, text, NULL);
	if (r == -ENOENT || (r == 0 && !ms_target_alive(t))) {
		if (r == 0)
			g_clear_pointer(text, g_free);
		return -ESRCH;
	}
	return r;
}

static bool memory_field_exists(ms_target *t, const char *name)
{
	g_autofree char *status = NULL;
	g_autofree char *value = NULL;

	return target_status_text(t, &status) == 0 &&
	       ms_status_memory_value(status, name, &value) == 0;
}

/* The latest figure of vCPU id in s, or NULL. */
static const ms_vcpu_rate *vcpu_of(const ms_sample *s, uint32_t id)
{
	for (uint32_t i = 0; s && i < s->m.vcpus; i++)
		if (s->m.vcpu[i].id == id)
			return &s->m.vcpu[i];
	return NULL;
}

/* 0 when the node exists now, else -ENOENT; fills st. */
static int stat_node(ms_fs *fs, node n, struct stat *st)
{
	g_autoptr(ms_target) t = NULL;

	memset(st, 0, sizeof(*st));
	st->st_ino = ino_of(n.kind, n.id, n.idx);
	st->st_mode = mode_of(n.kind);
	st->st_nlink = S_ISDIR(st->st_mode) ? 2 : 1;
	st->st_mtime = st->st_ctime = st->st_atime = fs->started;
	st->st_blksize = 4096;

	switch (n.kind) {
	case K_ROOT:
	case K_TRACK:
	case K_UNTRACK:
	case K_MEMINFO_DIR:
	case K_METRICS:
		return 0;
	case K_MEMINFO:
		return n.idx < fs->meminfo_names->len ? 0 : -ENOENT;
	default:
		break;
	}
	t = target_of(fs, n);
	if (!t || !kind_fits(n.kind, t))
		return -ENOENT;
	if (n.kind == K_VCPU || n.kind == K_VCPU_RATE) {
		g_autoptr(ms_sample) s = ms_target_get_sample(t, 0);
		if (!vcpu_of(s, n.idx))
			return -ENOENT;
	}
	if (n.kind == K_TARGET_DIR || n.kind == K_SAMPLES_DIR || n.kind == K_MEMORY_DIR ||
	    n.kind == K_PERIOD || n.kind == K_SAMPLE_PAGES || n.kind == K_MODE) {
		st->st_uid = ms_target_owner(t);
	}
	if (n.kind == K_MEMORY && n.idx >= fs->memory_names->len)
		return -ENOENT;
	if (n.kind == K_SAMPLE || n.kind == K_LATEST) {
		g_autoptr(ms_sample) s = ms_target_get_sample(t, n.kind == K_SAMPLE ? n.idx : 0);
		if (!s)
			return -ENOENT;
		st->st_mtime = st->st_ctime = st->st_atime = (time_t)(s->m.start_ms / 1000);
		if (n.kind == K_SAMPLE)
			st->st_size = (off_t)s->text_len;
		else
			st->st_size = snprintf(NULL, 0, "%" PRIu64, s->seq);
	}
	return 0;
}

static void reply_entry(fuse_req_t req, node n)
{
	struct fuse_entry_param e = {0};
	int r = stat_node(fs_of(req), n, &e.attr);

	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	e.ino = e.attr.st_ino;
	/* A reused target id makes the same inode numbers: the generation
	 * makes the kernel drop what it cached (samples' pages) for the old
	 * target's. */
	g_autoptr(ms_target) t = n.id ? target_of(fs_of(req), n) : NULL;
	e.generation = t ? ms_target_generation(t) : 0;
	e.attr_timeout = 1.0;
	e.entry_timeout = 1.0;
	fuse_reply_entry(req, &e);
}

static bool index_of(GPtrArray *names, const char *name, uint32_t *idx)
{
	for (guint i = 0; i < names->len; i++) {
		if (strcmp(g_ptr_array_index(names, i), name) == 0) {
			*idx = i;
			return true;
		}
	}
	return false;
}

/* A decimal sequence number without sign or leading zeros. */
static bool parse_seq(const char *name, uint32_t *seq)
{
	char *end;

	if (name[0] < '1' || name[0] > '9')
		return false;
	errno = 0;
	unsigned long long v = strtoull(name, &end, 10);
	if (errno || *end || v > UINT32_MAX)
		return false;
	*seq = (uint32_t)v;
	return true;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	ms_fs *fs = fs_of(req);
	node p = node_of(parent);
	uint32_t idx;

	switch (p.kind) {
	case K_ROOT: {
		for (size_t i = 0; i < G_N_ELEMENTS(root_entries); i++)
			if (strcmp(name, root_entries[i].name) == 0) {
				reply_entry(req, (node){root_entries[i].kind, 0, 0});
				return;
			}
		g_autoptr(ms_target) t = fs->reg ? ms_registry_lookup(fs->reg, name) : NULL;
		if (t) {
			reply_entry(req, (node){K_TARGET_DIR, ms_target_id(t), 0});
			return;
		}
		break;
	}
	case K_MEMINFO_DIR:
		if (index_of(fs->meminfo_names, name, &idx)) {
			reply_entry(req, (node){K_MEMINFO, 0, idx});
			return;
		}
		break;
	case K_TARGET_DIR:
		for (size_t i = 0; i < G_N_ELEMENTS(target_entries); i++)
			if (strcmp(name, target_entries[i].name) == 0) {
				reply_entry(req, (node){target_entries[i].kind, p.id, 0});
				return;
			}
		break;
	case K_VCPU_DIR:
		/* vCPU ids count from 0; parse_seq takes no leading zero. */
		if (strcmp(name, "0") == 0)
			idx = 0;
		else if (!parse_seq(name, &idx))
			break;
		reply_entry(req, (node){K_VCPU, p.id, idx});
		return;
	case K_VCPU:
		if (strcmp(name, "rate") == 0) {
			reply_entry(req, (node){K_VCPU_RATE, p.id, p.idx});
			return;
		}
		break;
	case K_MEMORY_DIR:
		if (index_of(fs->memory_names, name, &idx)) {
			g_autoptr(ms_target) t = target_of(fs, p);
			if (t && memory_field_exists(t, name)) {
				reply_entry(req, (node){K_MEMORY, p.id, idx});
				return;
			}
		}
		break;
	case K_SAMPLES_DIR:
		if (strcmp(name, "latest") == 0) {
			reply_entry(req, (node){K_LATEST, p.id, 0});
			return;
		}
		if (parse_seq(name, &idx)) {
			reply_entry(req, (node){K_SAMPLE, p.id, idx});
			return;
		}
		break;
	default:
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	fuse_reply_err(req, ENOENT);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat st;
	int r = stat_node(fs_of(req), node_of(ino), &st);

	(void)fi;
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_attr(req, &st, 1.0);
}

static bool is_writable(enum kind k)
{
	return k == K_TRACK || k == K_UNTRACK || k == K_PERIOD || k == K_SAMPLE_PAGES ||
	       k == K_MODE;
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		       struct fuse_file_info *fi)
{
	node n = node_of(ino);

	(void)attr;
	/* `echo x > file` opens with O_TRUNC: a size change on a control file
	 * is harmless; anything else is not ours to change. */
	if (to_set & ~(FUSE_SET_ATTR_SIZE | FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME |
		       FUSE_SET_ATTR_ATIME_NOW | FUSE_SET_ATTR_MTIME_NOW | FUSE_SET_ATTR_CTIME)) {
		fuse_reply_err(req, EPERM);
		return;
	}
	if ((to_set & FUSE_SET_ATTR_SIZE) && !is_writable(n.kind)) {
		fuse_reply_err(req, EACCES);
		return;
	}
	op_getattr(req, ino, fi);
}

/* Files that show what a target's memory does: only for those who may
 * read the target (ms_target_may_read). */
static bool is_private(enum kind k)
{
	return k == K_RATE || k == K_SAMPLE || k == K_LATEST || k == K_SAMPLES_DIR ||
	       k == K_VCPU_DIR || k == K_VCPU || k == K_VCPU_RATE;
}

static bool may_read(ms_fs *fs, node n, fuse_req_t req)
{
	g_autoptr(ms_target) t = target_of(fs, n);
	if (!t)
		return true;
	ms_caller c = ms_target_socket(t) ? caller_with_groups(req) : caller_of(req);
	return ms_target_may_read(t, &c);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	node n = node_of(ino);
	g_autoptr(ms_target) t = target_of(fs_of(req), n);
	g_autoptr(ms_sample) s = t ? ms_target_get_sample(t, 0) : NULL;
	char buf[32];

	if (n.kind != K_LATEST) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if (!may_read(fs_of(req), n, req)) {
		fuse_reply_err(req, EACCES);
		return;
	}
	if (!s) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	snprintf(buf, sizeof(buf), "%" PRIu64, s->seq);
	fuse_reply_readlink(req, buf);
}

/* ---- open files and directories ---- */

/* The first member of what a file handle points to. */
typedef struct open_obj {
	void (*free)(struct open_obj *o);
} open_obj;

static uint64_t open_add(ms_fs *fs, open_obj *o)
{
	pthread_mutex_lock(&fs->open_lock);
	g_hash_table_add(fs->open, o);
	pthread_mutex_unlock(&fs->open_lock);
	return (uint64_t)(uintptr_t)o;
}

static void open_remove(ms_fs *fs, uint64_t fh)
{
	open_obj *o = (open_obj *)(uintptr_t)fh;

	pthread_mutex_lock(&fs->open_lock);
	g_hash_table_remove(fs->open, o);
	pthread_mutex_unlock(&fs->open_lock);
	o->free(o);
}

/* ---- directories ---- */

/* A directory listing, snapshot at opendir. */
typedef struct {
	open_obj base;
	char *buf;
	size_t len, cap;
	GArray *ends; /* size_t: where each entry ends, i.e. the next one's offset */
} dirbuf;

static void dir_add(fuse_req_t req, dirbuf *d, const char *name, fuse_ino_t ino, mode_t mode)
{
	struct stat st = {.st_ino = ino, .st_mode = mode};
	size_t need = fuse_add_direntry(req, NULL, 0, name, NULL, 0);

	if (d->len + need > d->cap) {
		d->cap = MAX(d->cap * 2, d->len + need + 1024);
		d->buf = g_realloc(d->buf, d->cap);
	}
	/* Offsets are positions in this snapshot: the next entry's start. */
	fuse_add_direntry(req, d->buf + d->len, need, name, &st, (off_t)(d->len + need));
	d->len += need;
	g_array_append_val(d->ends, d->len);
}

static void dirbuf_free(open_obj *o)
{
	dirbuf *d = (dirbuf *)o;

	g_array_unref(d->ends);
	g_free(d->buf);
	g_free(d);
}

static int list_dir(fuse_req_t req, node n, dirbuf *d)
{
	ms_fs *fs = fs_of(req);
	struct stat st;

	if (stat_node(fs, n, &st) < 0)
		return -ENOENT;
	dir_add(req, d, ".", st.st_ino, S_IFDIR);
	dir_add(req, d, "..", FUSE_ROOT_ID, S_IFDIR);
	switch (n.kind) {
	case K_ROOT: {
		for (size_t i = 0; i < G_N_ELEMENTS(root_entries); i++)
			dir_add(req, d, root_entries[i].name, ino_of(root_entries[i].kind, 0, 0),
				root_entries[i].mode);
		g_autoptr(GPtrArray) all = fs->reg ? ms_registry_list(fs->reg) : g_ptr_array_new();
		for (guint i = 0; i < all->len; i++) {
			ms_target *t = g_ptr_array_index(all, i);
			dir_add(req, d, ms_target_name(t), ino_of(K_TARGET_DIR, ms_target_id(t), 0),
				S_IFDIR);
		}
		return 0;
	}
	case K_MEMINFO_DIR:
		for (guint i = 0; i < fs->meminfo_names->len; i++)
			dir_add(req, d, g_ptr_array_index(fs->meminfo_names, i),
				ino_of(K_MEMINFO, 0, i), S_IFREG);
		return 0;
	case K_TARGET_DIR: {
		g_autoptr(ms_target) t = target_of(fs, n);
		for (size_t i = 0; t && i < G_N_ELEMENTS(target_entries); i++)
			if (target_entries[i].targets & target_kind(t))
				dir_add(req, d, target_entries[i].name,
					ino_of(target_entries[i].kind, n.id, 0),
					target_entries[i].mode);
		return 0;
	}
	case K_VCPU_DIR: {
		g_autoptr(ms_target) t = target_of(fs, n);
		g_autoptr(ms_sample) s = t ? ms_target_get_sample(t, 0) : NULL;
		for (uint32_t i = 0; s && i < s->m.vcpus; i++) {
			char name[16];
			snprintf(name, sizeof(name), "%" PRIu32, s->m.vcpu[i].id);
			dir_add(req, d, name, ino_of(K_VCPU, n.id, s->m.vcpu[i].id), S_IFDIR);
		}
		return 0;
	}
	case K_VCPU:
		dir_add(req, d, "rate", ino_of(K_VCPU_RATE, n.id, n.idx), S_IFREG);
		return 0;
	case K_MEMORY_DIR: {
		g_autoptr(ms_target) t = target_of(fs, n);
		g_autofree char *status = NULL;
		if (!t || target_status_text(t, &status) < 0)
			return 0; /* the process is gone: nothing to show */
		g_autoptr(GPtrArray) names = ms_status_memory_names(status);
		for (guint i = 0; i < names->len; i++) {
			uint32_t idx;
			if (index_of(fs->memory_names, g_ptr_array_index(names, i), &idx))
				dir_add(req, d, g_ptr_array_index(names, i),
					ino_of(K_MEMORY, n.id, idx), S_IFREG);
		}
		return 0;
	}
	case K_SAMPLES_DIR: {
		g_autoptr(ms_target) t = target_of(fs, n);
		ms_target_view v;
		if (!t)
			return -ENOENT;
		ms_target_get_view(t, &v);
		for (uint64_t seq = v.first_seq; seq && seq <= v.last_seq; seq++) {
			char name[24];
			snprintf(name, sizeof(name), "%" PRIu64, seq);
			dir_add(req, d, name, ino_of(K_SAMPLE, n.id, (uint32_t)seq), S_IFREG);
		}
		if (v.last_seq)
			dir_add(req, d, "latest", ino_of(K_LATEST, n.id, 0), S_IFLNK);
		return 0;
	}
	default:
		return -ENOTDIR;
	}
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (is_private(node_of(ino).kind) && !may_read(fs_of(req), node_of(ino), req)) {
		fuse_reply_err(req, EACCES);
		return;
	}
	dirbuf *d = g_new0(dirbuf, 1);
	d->base.free = dirbuf_free;
	d->ends = g_array_new(FALSE, FALSE, sizeof(size_t));
	int r = list_dir(req, node_of(ino), d);

	if (r < 0) {
		dirbuf_free(&d->base);
		fuse_reply_err(req, -r);
		return;
	}
	fi->fh = open_add(fs_of(req), &d->base);
	fuse_reply_open(req, fi);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	dirbuf *d = (dirbuf *)(uintptr_t)fi->fh;

	(void)ino;
	if (off < 0 || (size_t)off >= d->len) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	/* Whole entries only, as many as fit, from the first entry that
	 * starts at or after off (an offset inside an entry, from a stray
	 * lseek, moves on to the next one). */
	size_t start = 0, end = 0;
	bool started = off == 0;
	for (guint i = 0; i < d->ends->len; i++) {
		size_t e = g_array_index(d->ends, size_t, i);
		if (!started) {
			if (e >= (size_t)off) {
				started = true;
				start = end = e;
			}
			continue;
		}
		if (e - start > size)
			break;
		end = e;
	}
	/* A copy: once the reply is out, the reader may close the directory
	 * and another thread free d while this one is still returning from
	 * the write (ThreadSanitizer sees the buffer read after the call). */
	g_autofree char *copy = g_memdup2(d->buf + start, end - start);
	fuse_reply_buf(req, copy, end - start);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	open_remove(fs_of(req), fi->fh);
	fuse_reply_err(req, 0);
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	ms_fs *fs = fs_of(req);
	ms_caller c = caller_of(req);
	g_autofree char *why = NULL;

	if (node_of(parent).kind != K_ROOT || !fs->reg) {
		fuse_reply_err(req, EPERM);
		return;
	}
	g_autoptr(ms_target) t = ms_registry_lookup(fs->reg, name);
	if (!t) {
		fuse_reply_err(req, strcmp(name, "meminfo") == 0 ? EPERM : ENOENT);
		return;
	}
	int r = ms_registry_untrack(fs->reg, name, &c, &why);
	if (r < 0) {
		fail(req, r, "rmdir", why);
		return;
	}
	g_message("untracked %s (rmdir by uid %u)", name, (unsigned)c.uid);
	fuse_reply_err(req, 0);
}

/* ---- files ---- */

/* An open file: what it showed at the last read at offset 0. */
typedef struct {
	open_obj base;
	node n;
	int flags;
	ms_caller caller;     /* who opened it */
	pthread_mutex_t lock; /* guards content and len */
	char *content;	      /* NULL until the first read */
	size_t len;
} handle;

/* Keeps text (taken) as the handle's content. */
static void handle_free(open_obj *o)
{
	handle *h = (handle *)o;

	g_free(h->content);
	pthread_mutex_destroy(&h->lock);
	g_free(h);
}

static void handle_set(handle *h, char *text)
{
	pthread_mutex_lock(&h->lock);
	g_free(h->content);
	h->content = text;
	h->len = strlen(text);
	pthread_mutex_unlock(&h->lock);
}

static bool handle_has_content(handle *h)
{
	pthread_mutex_lock(&h->lock);
	bool has = h->content != NULL;
	pthread_mutex_unlock(&h->lock);
	return has;
}

/* Replies with size bytes of the handle's content from off, copied out so
 * that no lock is held across the reply. */
static void reply_slice(fuse_req_t req, handle *h, size_t size, off_t off)
{
	g_autofree char *copy = NULL;
	size_t n = 0;

	pthread_mutex_lock(&h->lock);
	if (h->content && off >= 0 && (size_t)off < h->len) {
		n = MIN(size, h->len - (size_t)off);
		copy = g_memdup2(h->content + off, n);
	}
	pthread_mutex_unlock(&h->lock);
	fuse_reply_buf(req, copy, n);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	ms_fs *fs = fs_of(req);
	node n = node_of(ino);
	struct stat st;
	int acc = fi->flags & O_ACCMODE;

	if (stat_node(fs, n, &st) < 0) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if (S_ISDIR(st.st_mode)) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	if ((acc != O_RDONLY && !is_writable(n.kind)) || (acc != O_WRONLY && n.kind == K_UNTRACK)) {
		fuse_reply_err(req, EACCES);
		return;
	}
	if (is_private(n.kind) && !may_read(fs, n, req)) {
		fuse_reply_err(req, EACCES);
		return;
	}
	handle *h = g_new0(handle, 1);
	h->n = n;
	h->flags = fi->flags;
	/* metrics checks every target, VMs' sockets among them. */
	h->caller = n.kind == K_METRICS ? caller_with_groups(req) : caller_of(req);
	pthread_mutex_init(&h->lock, NULL);
	h->base.free = handle_free;
	fi->fh = open_add(fs, &h->base);
	/* A sample never changes once published and its size is known: the
	 * kernel may keep it in the page cache (no read reaches the daemon
	 * after the first, and cat's end-of-file read is answered by the
	 * kernel).  Every other file is read afresh, whole, per open. */
	if (n.kind == K_SAMPLE) {
		fi->keep_cache = 1;
	} else {
		fi->direct_io = 1;
	}
	fuse_reply_open(req, fi);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	open_remove(fs_of(req), fi->fh);
	fuse_reply_err(req, 0);
}

static char *render_track(ms_fs *fs)
{
	GString *s = g_string_new(NULL);
	g_autoptr(GPtrArray) all = fs->reg ? ms_registry_list(fs->reg) : g_ptr_array_new();

	/* Each line is a valid write to track. */
	for (guint i = 0; i < all->len; i++) {
		ms_target *t = g_ptr_array_index(all, i);
		ms_target_view v;
		ms_target_get_view(t, &v);
		if (ms_target_socket(t))
			g_string_append_printf(s, "%s name=%s", ms_target_socket(t),
					       ms_target_name(t));
		else
			g_string_append(s, ms_target_name(t));
		g_string_append_printf(s, " period=%u sample_pages=%u mode=%s\n",
				       v.settings.period_s, v.settings.sample_pages,
				       v.settings.mode);
	}
	return g_string_free(s, FALSE);
}

/* Renders the content of a file; -errno when it cannot be read now.
 * -EAGAIN from `rate` means "no figure yet". */
static int render(ms_fs *fs, node n, const ms_caller *c, char **out)
{
	g_autoptr(ms_target) t = NULL;
	ms_target_view v;
	char *text = NULL;
	int r;

	switch (n.kind) {
	case K_TRACK:
		*out = render_track(fs);
		return 0;
	case K_METRICS:
		*out = ms_metrics_render(fs->reg, c);
		return 0;
	case K_MEMINFO:
		if (n.idx >= fs->meminfo_names->len)
			return -ENOENT;
		r = ms_meminfo_value(g_ptr_array_index(fs->meminfo_names, n.idx), &text);
		if (r < 0)
			return r == -ENOENT ? -ENOENT : -EIO;
		*out = text;
		return 0;
	default:
		break;
	}
	t = target_of(fs, n);
	if (!t || !kind_fits(n.kind, t))
		return -ENOENT;
	ms_target_get_view(t, &v);
	switch (n.kind) {
	case K_STATUS:
		/* The state, then why (an error, or a passing condition). */
		text = v.why[0] ? g_strdup_printf("%s\n%s\n", ms_state_name(v.state), v.why)
				: g_strdup_printf("%s\n", ms_state_name(v.state));
		break;
	case K_QEMU_PID:
		text = g_strdup_printf("%d\n", (int)ms_target_pid(t));
		break;
	case K_SOCKET:
		text = g_strdup_printf("%s\n", ms_target_socket(t));
		break;
	case K_VCPU_RATE: {
		if (v.state == MS_STATE_EXITED)
			return -ESRCH;
		g_autoptr(ms_sample) s = ms_target_get_sample(t, 0);
		const ms_vcpu_rate *cpu = vcpu_of(s, n.idx);
		if (!cpu)
			return -ENOENT;
		text = g_strdup_printf("%.2f\n", cpu->rate);
		break;
	}
	case K_RATE: {
		/* A live figure: once the process is gone there is none (its
		 * last one stays in samples/). */
		if (v.state == MS_STATE_EXITED)
			return -ESRCH;
		g_autoptr(ms_sample) s = ms_target_get_sample(t, 0);
		if (s) {
			text = g_strdup(s->rate_text);
			break;
		}
		if (v.state == MS_STATE_ERROR)
			return -EIO;
		return -EAGAIN;
	}
	case K_PERIOD:
		text = g_strdup_printf("%u\n", v.settings.period_s);
		break;
	case K_SAMPLE_PAGES:
		text = g_strdup_printf("%u\n", v.settings.sample_pages);
		break;
	case K_MODE:
		text = g_strdup_printf("%s\n", v.settings.mode);
		break;
	case K_MEMORY: {
		g_autofree char *status = NULL;
		if (n.idx >= fs->memory_names->len)
			return -ENOENT;
		if ((r = target_status_text(t, &status)) < 0)
			return r;
		r = ms_status_memory_value(status, g_ptr_array_index(fs->memory_names, n.idx),
					   &text);
		if (r < 0)
			return r;
		break;
	}
	case K_SAMPLE: {
		g_autoptr(ms_sample) s = ms_target_get_sample(t, n.idx);
		if (!s)
			return -ENOENT;
		text = g_strdup(s->text);
		break;
	}
	default:
		return -EINVAL;
	}
	*out = text;
	return 0;
}

/* A read of `rate` waiting for the first figure. */
typedef struct {
	fuse_req_t req;
	handle *h;
	size_t size;
} parked;

/* Renders the file afresh, keeps it in the handle, replies from off. */
static int answer(fuse_req_t req, ms_fs *fs, handle *h, size_t size, off_t off)
{
	char *text = NULL;
	int r = render(fs, h->n, &h->caller, &text);

	if (r < 0)
		return r;
	handle_set(h, text);
	reply_slice(req, h, size, off);
	return 0;
}

static void on_interrupt(fuse_req_t req, void *data)
{
	ms_fs *fs = data;

	pthread_mutex_lock(&fs->pending_lock);
	parked *p = g_hash_table_lookup(fs->pending, req);
	if (p)
		g_hash_table_steal(fs->pending, req);
	pthread_mutex_unlock(&fs->pending_lock);
	if (p) {
		fuse_reply_err(req, EINTR);
		g_free(p);
	}
}

/* Parks a read of `rate` until the first figure, unless it can be answered
 * now.  The interrupt handler is registered first; whoever removes the read
 * from fs->pending answers it. */
static void park_rate_read(fuse_req_t req, ms_fs *fs, handle *h, size_t size)
{
	fuse_req_interrupt_func(req, on_interrupt, fs);
	pthread_mutex_lock(&fs->pending_lock);
	char *text = NULL;
	int r = render(fs, h->n, &h->caller, &text);
	if (r == -EAGAIN && !fuse_req_interrupted(req)) {
		parked *p = g_new(parked, 1);
		*p = (parked){req, h, size};
		g_hash_table_insert(fs->pending, req, p);
		pthread_mutex_unlock(&fs->pending_lock);
		return;
	}
	pthread_mutex_unlock(&fs->pending_lock);
	if (r == -EAGAIN)
		r = -EINTR;
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	handle_set(h, text);
	reply_slice(req, h, size, 0);
}

void ms_fs_target_settled(uint32_t target_id, void *data)
{
	ms_fs *fs = data;
	GHashTableIter it;
	gpointer v;
	g_autoptr(GPtrArray) ready = g_ptr_array_new_with_free_func(g_free);

	pthread_mutex_lock(&fs->pending_lock);
	g_hash_table_iter_init(&it, fs->pending);
	while (g_hash_table_iter_next(&it, NULL, &v)) {
		parked *p = v;
		if (p->h->n.id == target_id) {
			g_hash_table_iter_steal(&it);
			g_ptr_array_add(ready, p);
		}
	}
	pthread_mutex_unlock(&fs->pending_lock);
	for (guint i = 0; i < ready->len; i++) {
		parked *p = g_ptr_array_index(ready, i);
		int r = answer(p->req, fs, p->h, p->size, 0);
		if (r < 0)
			fuse_reply_err(p->req, r == -EAGAIN ? EIO : -r);
	}
}

void ms_fs_release_pending(ms_fs *fs, int err)
{
	GHashTableIter it;
	gpointer v;

	pthread_mutex_lock(&fs->pending_lock);
	g_hash_table_iter_init(&it, fs->pending);
	while (g_hash_table_iter_next(&it, NULL, &v)) {
		parked *p = v;
		g_hash_table_iter_steal(&it);
		fuse_reply_err(p->req, err);
		g_free(p);
	}
	pthread_mutex_unlock(&fs->pending_lock);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	ms_fs *fs = fs_of(req);
	handle *h = (handle *)(uintptr_t)fi->fh;

	(void)ino;
	if (off > 0 && handle_has_content(h)) {
		reply_slice(req, h, size, off);
		return;
	}
	int r = answer(req, fs, h, size, off);
	if (r == -EAGAIN && off > 0) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	if (r == -EAGAIN) {
		/* The flags of this read: O_NONBLOCK may have been set with
		 * fcntl since the open. */
		if (fi->flags & O_NONBLOCK)
			fuse_reply_err(req, EAGAIN);
		else
			park_rate_read(req, fs, h, size);
		return;
	}
	if (r < 0)
		fuse_reply_err(req, -r);
}

static int write_track(ms_fs *fs, const ms_caller *c, const char *buf, size_t size)
{
	ms_track_request tr;
	const char *perr = NULL;
	g_autofree char *why = NULL;

	int r = ms_parse_track(buf, size, &tr, &perr);
	if (r < 0) {
		g_message("track: %s (%s)", perr, g_strerror(-r));
		return r;
	}
	char what[MS_SOCKET_MAX];
	if (tr.socket[0])
		g_strlcpy(what, tr.socket, sizeof(what));
	else
		snprintf(what, sizeof(what), "%d", (int)tr.pid);
	r = ms_registry_track(fs->reg, &tr, c, &why);
	if (r < 0) {
		g_message("track %s: %s (%s)", what, why ? why : "", g_strerror(-r));
		return r;
	}
	g_message("track %s: done (uid %u)", what, (unsigned)c->uid);
	return 0;
}

static int write_untrack(ms_fs *fs, const ms_caller *c, const char *buf, size_t size)
{
	char name[64];
	const char *perr = NULL;
	g_autofree char *why = NULL;

	int r = ms_parse_name(buf, size, name, sizeof(name), &perr);
	if (r < 0) {
		g_message("untrack: %s (%s)", perr, g_strerror(-r));
		return r;
	}
	r = ms_registry_untrack(fs->reg, name, c, &why);
	if (r < 0) {
		g_message("untrack %s: %s (%s)", name, why ? why : "", g_strerror(-r));
		return r;
	}
	g_message("untracked %s (uid %u)", name, (unsigned)c->uid);
	/* The kernel may have the name cached for entry_timeout: drop it now.
	 * (The writer holds no lock on the root, so this cannot deadlock.) */
	if (fs->se)
		fuse_lowlevel_notify_inval_entry(fs->se, FUSE_ROOT_ID, name, strlen(name));
	return 0;
}

static int write_setting(ms_fs *fs, const ms_caller *c, node n, const char *buf, size_t size)
{
	const char *key = n.kind == K_PERIOD	     ? "period"
			  : n.kind == K_SAMPLE_PAGES ? "sample_pages"
						     : "mode";
	ms_settings_change change;
	const char *perr = NULL;
	g_autofree char *why = NULL;
	g_autoptr(ms_target) t = target_of(fs, n);

	if (!t)
		return -ENOENT;
	int r = ms_parse_setting(key, buf, size, &change, &perr);
	if (r < 0) {
		g_message("%s/%s: %s (%s)", ms_target_name(t), key, perr, g_strerror(-r));
		return r;
	}
	r = ms_target_set(fs->reg, t, &change, c, &why);
	if (r < 0)
		g_message("%s/%s: %s (%s)", ms_target_name(t), key, why ? why : "", g_strerror(-r));
	return r;
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	ms_fs *fs = fs_of(req);
	handle *h = (handle *)(uintptr_t)fi->fh;
	ms_caller c = caller_with_groups(req); /* a track line may name a socket */
	int r;

	(void)ino;
	(void)off; /* like a cgroup file: each write is one whole command */
	if (!fs->reg) {
		fuse_reply_err(req, EAGAIN);
		return;
	}
	switch (h->n.kind) {
	case K_TRACK:
		r = write_track(fs, &c, buf, size);
		break;
	case K_UNTRACK:
		r = write_untrack(fs, &c, buf, size);
		break;
	case K_PERIOD:
	case K_SAMPLE_PAGES:
	case K_MODE:
		r = write_setting(fs, &c, h->n, buf, size);
		break;
	default:
		r = -EACCES;
	}
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_write(req, size);
}

static void op_deny(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	(void)parent;
	(void)name;
	(void)mode;
	fuse_reply_err(req, EPERM);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	op_deny(req, parent, name, 0);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      struct fuse_file_info *fi)
{
	(void)fi;
	op_deny(req, parent, name, mode);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	(void)rdev;
	op_deny(req, parent, name, mode);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	(void)link;
	op_deny(req, parent, name, 0);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t parent, const char *name)
{
	(void)ino;
	op_deny(req, parent, name, 0);
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		      const char *newname, unsigned int flags)
{
	(void)newparent;
	(void)newname;
	(void)flags;
	op_deny(req, parent, name, 0);
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	/* Only samples are cached in pages, and they never change. */
	conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
}

const struct fuse_lowlevel_ops ms_fs_ops = {
	.init = op_init,
	.lookup = op_lookup,
	.getattr = op_getattr,
	.setattr = op_setattr,
	.readlink = op_readlink,
	.mknod = op_mknod,
	.mkdir = op_deny,
	.unlink = op_unlink,
	.rmdir = op_rmdir,
	.open = op_open,
	.read = op_read,
	.write = op_write,
	.release = op_release,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.releasedir = op_releasedir,
	.create = op_create,
	.symlink = op_symlink,
	.link = op_link,
	.rename = op_rename,
};

void ms_fs_init(ms_fs *fs)
{
	g_autofree char *status = NULL;

	memset(fs, 0, sizeof(*fs));
	fs->started = time(NULL);
	fs->meminfo_names = ms_meminfo_names();
	if (!fs->meminfo_names)
		fs->meminfo_names = g_ptr_array_new_with_free_func(g_free);
	/* This kernel's Vm and Rss fields, from our own status. */
	if (ms_read_file("/proc/self/status", &status, NULL) == 0)
		fs->memory_names = ms_status_memory_names(status);
	else
		fs->memory_names = g_ptr_array_new_with_free_func(g_free);
	pthread_mutex_init(&fs->pending_lock, NULL);
	fs->pending = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, g_free);
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
		((open_obj *)o)->free(o);
	g_hash_table_destroy(fs->open);
	pthread_mutex_destroy(&fs->open_lock);
	g_hash_table_destroy(fs->pending);
	pthread_mutex_destroy(&fs->pending_lock);
	g_ptr_array_unref(fs->meminfo_names);
	g_ptr_array_unref(fs->memory_names);
}
