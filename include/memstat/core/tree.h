/* tree.h: the file tree as one table of nodes, and the walks over it that
 * the FUSE layer turns into its operations.
 *
 * Every node is a row (tree.c): its name (or, for a family of entries such
 * as samples/<seq>, functions that list and find them), its directory, its
 * mode, which kinds of target have it, its flags, and the functions that
 * render, write, list and stat it.  A node is named by its row, the target
 * it is under and an index (a field, a sample's sequence number, a vCPU's
 * id): ms_node_ref, which the FUSE layer encodes into an inode number.
 * Adding a file is a row and its render (or write) function.
 *
 * Every value comes from here: the FUSE layer reads no /proc file.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "memstat/core/registry.h"

/* A node: a row of the table (0: the root), a target (0: none) and an
 * index. */
typedef struct {
	uint8_t node;
	uint32_t id;  /* 24 bits */
	uint32_t idx; /* inherited by the node's children */
} ms_node_ref;

typedef enum {
	MS_NODE_PRIVATE = 1u << 0, /* only for who may read the target
				    * (ms_target_may_read) */
	MS_NODE_CACHED = 1u << 1,  /* never changes once it exists, its size
				    * is exact: the kernel may keep its pages */
	MS_NODE_OWNED = 1u << 2,   /* owned by the target's owner (st_uid) */
	MS_NODE_GROUPS = 1u << 3,  /* its render checks callers with their
				    * supplementary groups */
} ms_node_flags;

/* What makes a file show something new (a row's `changes`): readers may
 * wait for it in poll() (ms_tree_watch).  A row with none is read afresh
 * at each open but gives no notice (metrics, memory/: always readable). */
typedef enum {
	MS_CHANGES_SAMPLE = 1u << 0, /* a new sample of its target */
	MS_CHANGES_STATE = 1u << 1,  /* its target's state */
	MS_CHANGES_WHY = 1u << 2,    /* why it is in that state (status's
				      * second line) */
	MS_CHANGES_GROWTH = 1u << 3, /* a new growth curve */
} ms_node_changes;

/* What a reader waiting on a file may learn (ms_tree_watch), as bits. */
typedef enum {
	MS_WATCH_NEW = 1u << 0,	  /* something new to read since it last read */
	MS_WATCH_FINAL = 1u << 1, /* nothing new will ever come (its target
				   * exited) */
	MS_WATCH_GONE = 1u << 2,  /* the file is gone (untracked): a read fails
				   * with ENOENT */
} ms_watch;

struct ms_node;

/* What a node's functions are called with. */
typedef struct {
	ms_registry *reg;
	const struct ms_node *node;
	uint8_t row;		 /* the node's row: families' entries are of it */
	ms_target *t;		 /* the target it is under, or NULL */
	uint32_t idx;		 /* the node's index */
	const ms_caller *caller; /* render and write: who asks */
	char gone[MS_NAME_MAX];	 /* write: a root entry that went away, or "" */
} ms_node_ctx;

/* What a stat shows beyond the row's mode. */
typedef struct {
	mode_t mode;
	uid_t uid;
	off_t size;   /* 0 for files rendered per open (direct I/O) */
	time_t mtime; /* 0: when the daemon started */
} ms_node_attr;

/* Receives one entry of a listing. */
typedef void (*ms_entry_fn)(const char *name, ms_node_ref ref, mode_t mode, void *data);

typedef struct ms_node {
	const char *name; /* NULL: a family (list, lookup) */
	uint8_t parent;	  /* the row of its directory */
	mode_t mode;	  /* S_IFDIR | 0555, S_IFREG | 0644, ... */
	unsigned kinds;	  /* MS_KIND_* bits of the targets that have it; 0:
			   * outside any target */
	unsigned flags;	  /* ms_node_flags */
	unsigned changes; /* ms_node_changes: what makes it show something new */

	/* A file's content (a link's target): 0 with *out, or -errno;
	 * -EAGAIN: no figure yet (a blocking read waits for the first). */
	int (*render)(ms_node_ctx *c, char **out);
	/* A control file takes one whole command per write: 0 or -errno with
	 * *why.  NULL: read-only. */
	int (*write)(ms_node_ctx *c, const char *buf, size_t len, char **why);
	/* A family's entries now. */
	void (*list)(ms_node_ctx *c, ms_entry_fn add, void *data);
	/* A family's entry called name: 0 with *id and *idx, or -ENOENT. */
	int (*lookup)(ms_node_ctx *c, const char *name, uint32_t *id, uint32_t *idx);
	/* 0 when the node exists now (filling size and mtime), else -ENOENT.
	 * NULL: it exists while its target does. */
	int (*attr)(ms_node_ctx *c, ms_node_attr *a);
} ms_node;

/* Fixes what the tree shows for the daemon's life (the meminfo/ and
 * memory/ names): call once at start. */
void ms_tree_init(void);

/* The row of a node. */
const ms_node *ms_tree_node(ms_node_ref n);
/* Names the tree keeps for itself (the root's own entries). */
extern const char *const ms_tree_reserved_names[];

/* The child of parent called name, as caller sees the tree (a target it
 * may not know of is not there; inside a target it may not enter,
 * ms_tree_may_enter's errno): 0, -ENOENT, -ENOTDIR, -EPERM. */
int ms_tree_lookup(ms_registry *reg, ms_node_ref parent, const char *name, const ms_caller *caller,
		   ms_node_ref *child);
/* 0 with *a and *generation (the target's, 0 outside targets) when n
 * exists now, else -ENOENT. */
int ms_tree_stat(ms_registry *reg, ms_node_ref n, ms_node_attr *a, uint64_t *generation);
/* The entries of directory n (without . and ..) that caller may know of:
 * 0, -ENOENT, -ENOTDIR, or ms_tree_may_enter's errno. */
int ms_tree_list(ms_registry *reg, ms_node_ref n, const ms_caller *caller, ms_entry_fn add,
		 void *data);
/* Whether caller may open n (MS_NODE_PRIVATE). */
bool ms_tree_may_read(ms_registry *reg, ms_node_ref n, const ms_caller *caller);
/* Whether caller may see n if it is inside a target's directory (the
 * target directory itself included, not its entry in the root): 0, or
 * -EPERM or -ENOENT (ms_target_may_enter: a process's /proc/PID under
 * hidepid=). */
int ms_tree_may_enter(ms_registry *reg, ms_node_ref n, const ms_caller *caller);
/* Whether what n shows depends on who asks, beyond a private file's open
 * (a lookup answered for one caller must not be cached for another). */
bool ms_tree_per_caller(ms_registry *reg, ms_node_ref n);
/* Whether checking a caller on n needs its supplementary groups (also
 * whenever /proc's gid= exempts a group from hidepid=). */
bool ms_tree_needs_groups(ms_registry *reg, ms_node_ref n);
/* n's content now: 0 with *out, or -errno (-EAGAIN: no figure yet). */
int ms_tree_render(ms_registry *reg, ms_node_ref n, const ms_caller *caller, char **out);
/* One write to control file n: 0 or -errno (logged, with why).  *gone: a
 * root entry that went away (its cached name is stale), or "". */
int ms_tree_write(ms_registry *reg, ms_node_ref n, const ms_caller *caller, const char *buf,
		  size_t len, char gone[MS_NAME_MAX]);
/* rmdir of name in parent: untracks a target.  0, -EPERM, -ENOENT,
 * -EACCES (logged). */
int ms_tree_rmdir(ms_registry *reg, ms_node_ref parent, const char *name, const ms_caller *caller);

/* Waiting for something new (poll):
 * ms_tree_version: a number that grows whenever n may show something new
 * (what its row's `changes` name; 0 for a row with none), to be taken just
 * before a render whose result the reader sees: 0 with *version, or
 * -ENOENT once n is gone. */
int ms_tree_version(ms_registry *reg, ms_node_ref n, uint64_t *version);
#define MS_TREE_NEVER_READ UINT64_MAX
/* ms_tree_watch: what a reader of n who last read it at version seen
 * (MS_TREE_NEVER_READ: a fresh open, to which whatever it can read is new)
 * may learn now, as ms_watch bits; 0: nothing yet (wait).  NEW
 * only when a read would not answer -EAGAIN (before the first figure,
 * `rate` has nothing new).  A row with no `changes` is always NEW (a plain
 * file is always readable).  Renders n as caller: no lock may be held
 * that a render takes (tree.c's order: the caller's locks first). */
unsigned ms_tree_watch(ms_registry *reg, ms_node_ref n, const ms_caller *caller, uint64_t seen);
/* Whether n can ever tell a waiting reader of something new (a row with
 * `changes`, under a target): else no notice needs keeping for it. */
bool ms_tree_changes(ms_node_ref n);
