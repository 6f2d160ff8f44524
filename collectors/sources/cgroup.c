/* cgroup.c: the cgroup source (cgroup.h).
 *
 * A target is a cgroup directory: cgroup v2, or a hierarchy of v1 (told by
 * statfs's magic).  Its members are the processes in cgroup.procs of the
 * directory and of every directory under it, read again at every window's
 * open: a process that joins is measured from the next window on, one that
 * leaves is not looked at again.
 *
 * One population, the union: each window finds every member's resident
 * pages of its writable mappings (PAGEMAP_SCAN where the kernel has it,
 * else pagemap entries), and each page's physical frame (pagemap's PFN,
 * bits 0-54, which only CAP_SYS_ADMIN reads: the daemon is root).  A frame
 * that several members map (shmem, a memfd, a shared file mapping, an
 * anonymous page still shared after fork) is one page of the population,
 * whatever number of processes map it.  Page-sampling draws pages from the
 * distinct frames (QEMU's rule, as for one process: ms_sample_count),
 * full-scan takes them all; each drawn frame is hashed through one member
 * that maps it.  At the close, every mapping the frame had at the open that
 * is still resident (in a member still there) is hashed again: the frame is
 * dirty when any of them differs, so a write that copied a page shared
 * after fork (the writer's mapping now holds a new frame with new content)
 * counts too, once.  Pages resident at the close that were neither resident
 * at the same address of the same member nor one of the open's frames are
 * new (counted exactly, deduplicated by frame, as pages_new).  The interval
 * is the one of a sample drawn from that one population
 * (ms_measurement_finish).
 *
 * Soft-dirty is refused: a set of processes would need every member's bits
 * cleared at once, and a frame's writes seen through any of its mappings.
 *
 * The state's paths are immutable after admission; the window is the
 * worker's (source.h).
 */
#define _GNU_SOURCE
#include "memstat/sources/cgroup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "memstat/methods/fail.h"
#include "memstat/methods/page_sampling.h"
#include "memstat/methods/pagemap.h"
#include "memstat/methods/pages.h"
#include "memstat/methods/proc.h"
#include "memstat/methods/soft_dirty.h"

#define CGROUP_SUPER_MAGIC  0x27e0eb
#define CGROUP2_SUPER_MAGIC 0x63677270
#define CG_DEPTH_MAX	    64 /* directories below the tracked one */

/* One member's resident pages at one look: addresses ascending, and each
 * page's frame key (its PFN, or a key of its own where none is readable). */
typedef struct {
	pid_t pid;
	unsigned long long starttime;
	GArray *addrs; /* uint64_t */
	GArray *keys;  /* uint64_t */
} cg_look;

/* One mapping of a frame: which member, which of its pages. */
typedef struct {
	uint64_t key;
	uint32_t member;
	uint32_t page;
} cg_mapping;

typedef struct {
	char path[MS_KEY_MAX];
	bool v2;
	dev_t dev;
	ino_t ino;
	char *v2_dir;  /* the matching v2 directory, or NULL */
	char *mem_dir; /* where memory/ reads: a v2 directory with the memory
			* controller, else v1's memory directory, or NULL */
	bool mem_v2;
	ms_caller tracker; /* who tracked it: checked on every member */
	uint32_t ps;
	GRand *rand;

	/* The open window (the worker's). */
	bool open;
	const char *mode;
	GArray *members;      /* cg_look, at the open */
	cg_mapping *mappings; /* sorted by key */
	size_t nmappings;
	uint64_t *frame_keys;  /* distinct keys, ascending */
	uint32_t *frame_first; /* index in mappings of each frame's first */
	size_t nframes;
	size_t n;	  /* frames drawn */
	uint64_t *drawn;  /* their indices in frame_keys */
	uint64_t *hashes; /* at the open */
	bool *readable;
	int64_t start_wall_ms, start_mid_us;

	/* What the last close found of its members, taken over by the open
	 * that comes right after it: one look a step, not two.  NULL
	 * otherwise. */
	GArray *next; /* cg_look, by pid */
	int64_t next_us;

	bool had_members;
	bool empty_before; /* the last step found no member */
} cg_state;

static int soft_dirty_supported(char **why)
{
	return ms_method_supported(&ms_soft_dirty, why);
}

static const ms_mode modes[] = {
	{"page-sampling", "frames drawn at random from the members' union, hashed at both ends",
	 NULL, NULL},
	{"full-scan", "every distinct resident frame of the members hashed at both ends", NULL,
	 NULL},
	{"soft-dirty", "not for a cgroup (it refuses it, saying why)", soft_dirty_supported, NULL},
	{NULL, NULL, NULL, NULL},
};

/* ---- paths ---- */

static long fs_magic(const char *path)
{
	struct statfs sf;
	return statfs(path, &sf) == 0 ? (long)sf.f_type : -1;
}

static bool is_cgroup_magic(long m)
{
	return m == CGROUP_SUPER_MAGIC || m == CGROUP2_SUPER_MAGIC;
}

/* The cgroup mounts of this mount namespace: mount point, whether v2, and
 * for v1 its super options (the controllers). */
typedef struct {
	char *point;
	bool v2;
	char *opts;
} cg_mount;

static void cg_mount_clear(gpointer p)
{
	cg_mount *m = p;
	g_free(m->point);
	g_free(m->opts);
}

static GArray *cgroup_mounts(void)
{
	GArray *out = g_array_new(FALSE, TRUE, sizeof(cg_mount));
	g_autofree char *text = NULL;

	g_array_set_clear_func(out, cg_mount_clear);
	if (ms_read_file("/proc/self/mountinfo", &text, NULL) < 0)
		return out;
	g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
	for (char **l = lines; *l; l++) {
		g_auto(GStrv) f = g_strsplit(*l, " ", -1);
		guint n = g_strv_length(f), dash = 0;
		for (guint i = 6; i < n; i++)
			if (strcmp(f[i], "-") == 0) {
				dash = i;
				break;
			}
		if (!dash || dash + 3 >= n)
			continue; /* not "... - fstype source super-options" */
		bool v2 = strcmp(f[dash + 1], "cgroup2") == 0;
		if (!v2 && strcmp(f[dash + 1], "cgroup") != 0)
			continue;
		cg_mount m = {g_strcompress(f[4]), v2, g_strdup(f[dash + 3])};
		g_array_append_val(out, m);
	}
	return out;
}

/* Whether opts (a v1 mount's super options) name controller. */
static bool has_option(const char *opts, const char *controller)
{
	g_auto(GStrv) o = g_strsplit(opts, ",", -1);
	return g_strv_contains((const char *const *)o, controller);
}

/* The path of path's cgroup relative to its mount ("" for the root, else
 * starting with '/'): NULL when no cgroup mount holds it. */
static const char *relative_to_mount(GArray *mounts, const char *path, const cg_mount **which)
{
	size_t best = 0;

	*which = NULL;
	for (guint i = 0; i < mounts->len; i++) {
		const cg_mount *m = &g_array_index(mounts, cg_mount, i);
		size_t len = strlen(m->point);
		if (len >= best && strncmp(path, m->point, len) == 0 &&
		    (path[len] == '/' || path[len] == '\0')) {
			best = len;
			*which = m;
		}
	}
	return *which ? path + best : NULL;
}

/* The directory rel under the first mount that matches, if it exists. */
static char *dir_under(GArray *mounts, bool v2, const char *controller, const char *rel)
{
	for (guint i = 0; i < mounts->len; i++) {
		const cg_mount *m = &g_array_index(mounts, cg_mount, i);
		struct stat st;
		if (m->v2 != v2 || (controller && !has_option(m->opts, controller)))
			continue;
		char *d = g_strconcat(m->point, rel, NULL);
		if (stat(d, &st) == 0 && S_ISDIR(st.st_mode))
			return d;
		g_free(d);
	}
	return NULL;
}

/* ---- members ---- */

static int cmp_pid(const void *a, const void *b)
{
	pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
	return (x > y) - (x < y);
}

static int add_procs(int dirfd, GArray *pids, int depth)
{
	int fd = openat(dirfd, "cgroup.procs", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	FILE *f = fdopen(fd, "r");
	if (!f) {
		close(fd);
		return -ENOMEM;
	}
	long v;
	while (fscanf(f, "%ld", &v) == 1) {
		pid_t p = (pid_t)v;
		if (p > 0)
			g_array_append_val(pids, p);
	}
	fclose(f);
	if (depth >= CG_DEPTH_MAX)
		return 0;
	int dup_fd = dup(dirfd);
	DIR *d = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
	if (!d) {
		if (dup_fd >= 0)
			close(dup_fd);
		return -errno;
	}
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_type != DT_DIR || e->d_name[0] == '.')
			continue;
		int sub = openat(dirfd, e->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (sub < 0)
			continue; /* removed meanwhile */
		add_procs(sub, pids, depth + 1);
		close(sub);
	}
	closedir(d);
	return 0;
}

/* The cgroup's processes now (GArray of pid_t, ascending, no duplicates):
 * 0, or -ESRCH with *why when the directory is gone (or is another now). */
static int read_members(const cg_state *s, GArray **out, char **why)
{
	struct stat st;
	int dirfd = open(s->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (dirfd < 0 || fstat(dirfd, &st) < 0 || st.st_ino != s->ino || st.st_dev != s->dev) {
		if (dirfd >= 0)
			close(dirfd);
		return ms_fail(why, -ESRCH, "the cgroup %s was removed", s->path);
	}
	GArray *pids = g_array_new(FALSE, FALSE, sizeof(pid_t));
	int r = add_procs(dirfd, pids, 0);
	close(dirfd);
	if (r < 0) {
		g_array_unref(pids);
		return r == -ENOENT || r == -ENODEV
			       ? ms_fail(why, -ESRCH, "the cgroup %s was removed", s->path)
			       : ms_fail(why, r, "cannot read %s/cgroup.procs: %s", s->path,
					 g_strerror(-r));
	}
	g_array_sort(pids, cmp_pid);
	guint u = 0;
	for (guint i = 0; i < pids->len; i++)
		if (u == 0 || g_array_index(pids, pid_t, i) != g_array_index(pids, pid_t, u - 1))
			g_array_index(pids, pid_t, u++) = g_array_index(pids, pid_t, i);
	g_array_set_size(pids, u);
	*out = pids;
	return 0;
}

/* 0 when c could read the memory of every process in pids on its own, else
 * -EACCES (or another -errno) with *why naming the first it could not. */
static int check_members(GArray *pids, const ms_caller *c, char **why)
{
	for (guint i = 0; i < pids->len; i++) {
		pid_t pid = g_array_index(pids, pid_t, i);
		g_autofree char *pwhy = NULL;
		uid_t owner;
		int r = ms_caller_may_read_process(pid, c, &owner, &pwhy);
		if (r < 0 && r != -ESRCH) /* one that left meanwhile is no member */
			return ms_fail(why, r, "process %d of the cgroup: %s", (int)pid,
				       pwhy ? pwhy : g_strerror(-r));
	}
	return 0;
}

/* ---- looking at members' pages ---- */

static void look_clear(gpointer p)
{
	cg_look *l = p;
	g_clear_pointer(&l->addrs, g_array_unref);
	g_clear_pointer(&l->keys, g_array_unref);
}

/* pid's resident pages of its writable mappings now, with their frames:
 * 0, -ESRCH (gone), or -errno with *why. */
static int look_at(pid_t pid, uint32_t ps, cg_look *out, char **why)
{
	g_autoptr(GArray) vmas = NULL;
	g_autoptr(GArray) runs = NULL;
	ms_proc_stat st;
	int r;

	if (ms_proc_stat_read(pid, &st) < 0 || st.state == 'Z' || st.state == 'X')
		return -ESRCH;
	if (st.flags & MS_PF_KTHREAD)
		return -ESRCH; /* no memory of its own: not a member to measure */
	if ((r = ms_proc_writable_vmas(pid, &vmas, why)) < 0)
		return r;
	if ((r = ms_pagemap_runs(pid, vmas,
				 ms_pagemap_scan_supported() ? MS_RUNS_SCAN : MS_RUNS_PAGEMAP,
				 &runs, why)) < 0)
		return r;
	uint64_t pages = ms_runs_pages(runs, ps);
	g_autofree uint64_t *entries = g_new(uint64_t, MAX(pages, 1));
	int fd = ms_open_pagemap(pid, why);
	if (fd < 0)
		return fd;
	r = ms_pagemap_entries_of_runs(fd, runs, ps, entries);
	close(fd);
	if (r < 0)
		return r == -ESRCH ? r
				   : ms_fail(why, r, "cannot read the pagemap of process %d: %s",
					     (int)pid, g_strerror(-r));
	out->pid = pid;
	out->starttime = st.starttime;
	out->addrs = g_array_sized_new(FALSE, FALSE, sizeof(uint64_t), (guint)pages);
	out->keys = g_array_sized_new(FALSE, FALSE, sizeof(uint64_t), (guint)pages);
	uint64_t k = 0;
	for (guint i = 0; i < runs->len; i++) {
		const ms_range *x = &g_array_index(runs, ms_range, i);
		for (uint64_t a = x->start; a < x->end; a += ps, k++) {
			if (!(entries[k] & MS_PM_PRESENT))
				continue; /* went away between the scan and the read */
			uint64_t pfn = entries[k] & MS_PM_PFN_MASK;
			/* Without a frame (a daemon without CAP_SYS_ADMIN): a
			 * key of this page's own, never shared. */
			uint64_t key =
				pfn ? pfn : (1ULL << 63) | (((uint64_t)pid << 36) ^ (a / ps));
			g_array_append_val(out->addrs, a);
			g_array_append_val(out->keys, key);
		}
	}
	return 0;
}

static bool find_u64(const uint64_t *v, size_t n, uint64_t x, size_t *at)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (v[mid] < x)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (at)
		*at = lo;
	return lo < n && v[lo] == x;
}

static gint cmp_u64_fn(gconstpointer a, gconstpointer b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

static int cmp_mapping(const void *a, const void *b)
{
	const cg_mapping *x = a, *y = b;
	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	if (x->member != y->member)
		return x->member < y->member ? -1 : 1;
	return (x->page > y->page) - (x->page < y->page);
}

/* What to read through one member: addresses, and for each the slot of
 * the drawn frame it belongs to. */
typedef struct {
	uint64_t addr;
	size_t slot;
} cg_read;

typedef struct {
	GArray *pairs; /* cg_read */
} cg_reads;

static gint cmp_read(gconstpointer a, gconstpointer b)
{
	const cg_read *x = a, *y = b;
	return (x->addr > y->addr) - (x->addr < y->addr);
}

/* Hashes the pages of reads (per member of looks), in address order, and
 * hands each result to fn(slot, hash, readable). */
static int hash_reads(GArray *looks, cg_reads *reads, uint32_t ps,
		      void (*fn)(cg_state *s, size_t slot, uint64_t h, bool ok, void *data),
		      cg_state *s, void *data, char **why)
{
	for (guint m = 0; m < looks->len; m++) {
		GArray *pairs = reads[m].pairs;
		size_t n = pairs ? pairs->len : 0;
		if (n == 0)
			continue;
		g_array_sort(pairs, cmp_read);
		g_autofree uint64_t *addrs = g_new(uint64_t, n);
		g_autofree uint64_t *h = g_new(uint64_t, n);
		g_autofree bool *ok = g_new(bool, n);
		for (size_t i = 0; i < n; i++)
			addrs[i] = g_array_index(pairs, cg_read, i).addr;
		ms_page_reader reader;
		ms_page_reader_init(&reader, g_array_index(looks, cg_look, m).pid);
		reader.page_size = ps;
		int r = ms_hash_pages(&reader, addrs, n, h, ok);
		if (r == -ESRCH) {
			memset(ok, 0, n * sizeof(*ok)); /* left meanwhile */
		} else if (r < 0) {
			return ms_fail(why, r, "cannot read the memory of process %d: %s",
				       (int)g_array_index(looks, cg_look, m).pid, g_strerror(-r));
		}
		for (size_t i = 0; i < n; i++)
			fn(s, g_array_index(pairs, cg_read, i).slot, h[i], ok[i], data);
	}
	return 0;
}

static void reads_free(cg_reads *reads, guint n)
{
	for (guint i = 0; i < n; i++)
		g_clear_pointer(&reads[i].pairs, g_array_unref);
	g_free(reads);
}

static void reads_add(cg_reads *rd, uint64_t addr, size_t slot)
{
	cg_read one = {addr, slot};

	if (!rd->pairs)
		rd->pairs = g_array_new(FALSE, FALSE, sizeof(cg_read));
	g_array_append_val(rd->pairs, one);
}

static void free_window(cg_state *s)
{
	g_clear_pointer(&s->members, g_array_unref);
	g_clear_pointer(&s->mappings, g_free);
	g_clear_pointer(&s->frame_keys, g_free);
	g_clear_pointer(&s->frame_first, g_free);
	g_clear_pointer(&s->drawn, g_free);
	g_clear_pointer(&s->hashes, g_free);
	g_clear_pointer(&s->readable, g_free);
	s->nmappings = s->nframes = s->n = 0;
	s->open = false;
}

/* known's look of pid (known is ascending by pid), taken over, when pid is
 * still that process. */
static bool take_known(GArray *known, pid_t pid, cg_look *out)
{
	ms_proc_stat st;
	guint lo = 0, hi = known ? known->len : 0;

	while (lo < hi) {
		guint mid = lo + (hi - lo) / 2;
		if (g_array_index(known, cg_look, mid).pid < pid)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!known || lo == known->len)
		return false;
	cg_look *k = &g_array_index(known, cg_look, lo);
	if (k->pid != pid || !k->addrs)
		return false;
	if (ms_proc_stat_read(pid, &st) < 0 || st.starttime != k->starttime)
		return false;
	*out = *k;
	k->addrs = k->keys = NULL;
	return true;
}

/* The member looks of pids (those still there), ascending by pid; known:
 * looks just taken (or NULL). */
static int look_all(cg_state *s, GArray *pids, GArray *known, GArray **out, char **why)
{
	GArray *looks = g_array_new(FALSE, TRUE, sizeof(cg_look));

	g_array_set_clear_func(looks, look_clear);
	for (guint i = 0; i < pids->len; i++) {
		cg_look l = {0};
		if (take_known(known, g_array_index(pids, pid_t, i), &l)) {
			g_array_append_val(looks, l);
			continue;
		}
		int r = look_at(g_array_index(pids, pid_t, i), s->ps, &l, why);
		if (r == -ESRCH) {
			g_clear_pointer(why, g_free);
			continue; /* left meanwhile */
		}
		if (r < 0) {
			g_array_unref(looks);
			return r;
		}
		g_array_append_val(looks, l);
	}
	*out = looks;
	return 0;
}

static void set_start(cg_state *s, size_t slot, uint64_t h, bool ok, void *data)
{
	(void)data;
	s->hashes[slot] = h;
	s->readable[slot] = ok;
}

static int open_window(cg_state *s, GArray *pids, const char *mode, const ms_params *p, char **why)
{
	int r;

	g_autoptr(GArray) known = g_steal_pointer(&s->next);

	/* Only straight after a close (not after a failed step retried). */
	if (ms_now_us(CLOCK_MONOTONIC) - s->next_us > 50000)
		g_clear_pointer(&known, g_array_unref);
	s->start_wall_ms = ms_now_us(CLOCK_REALTIME) / 1000;
	if ((r = look_all(s, pids, known, &s->members, why)) < 0)
		return r;
	s->mode = ms_source_mode(&ms_cgroup_source, mode)->name;
	/* Every mapping, then the distinct frames. */
	size_t total = 0;
	for (guint m = 0; m < s->members->len; m++)
		total += g_array_index(s->members, cg_look, m).addrs->len;
	s->mappings = g_new(cg_mapping, MAX(total, 1));
	for (guint m = 0; m < s->members->len; m++) {
		const cg_look *l = &g_array_index(s->members, cg_look, m);
		for (guint j = 0; j < l->keys->len; j++)
			s->mappings[s->nmappings++] =
				(cg_mapping){g_array_index(l->keys, uint64_t, j), m, j};
	}
	qsort(s->mappings, s->nmappings, sizeof(cg_mapping), cmp_mapping);
	s->frame_keys = g_new(uint64_t, MAX(total, 1));
	s->frame_first = g_new(uint32_t, MAX(total, 1));
	for (size_t i = 0; i < s->nmappings; i++) {
		if (s->nframes && s->frame_keys[s->nframes - 1] == s->mappings[i].key)
			continue;
		s->frame_keys[s->nframes] = s->mappings[i].key;
		s->frame_first[s->nframes++] = (uint32_t)i;
	}
	bool full = strcmp(s->mode, "full-scan") == 0;
	s->n = full ? s->nframes : ms_sample_count(s->nframes, s->ps, p->sample_pages);
	s->drawn = s->n ? ms_pick_indices(s->rand, s->nframes, s->n) : g_new(uint64_t, 1);
	s->hashes = g_new0(uint64_t, MAX(s->n, 1));
	s->readable = g_new0(bool, MAX(s->n, 1));
	s->open = true;

	/* Each drawn frame through its first mapping. */
	cg_reads *reads = g_new0(cg_reads, MAX(s->members->len, 1));
	for (size_t i = 0; i < s->n; i++) {
		const cg_mapping *mp = &s->mappings[s->frame_first[s->drawn[i]]];
		const cg_look *l = &g_array_index(s->members, cg_look, mp->member);
		reads_add(&reads[mp->member], g_array_index(l->addrs, uint64_t, mp->page), i);
	}
	int64_t t0 = ms_now_us(CLOCK_MONOTONIC);
	r = hash_reads(s->members, reads, s->ps, set_start, s, NULL, why);
	s->start_mid_us = (t0 + ms_now_us(CLOCK_MONOTONIC)) / 2;
	reads_free(reads, s->members->len);
	return r;
}

/* What the close found of each drawn frame. */
typedef struct {
	bool *seen;    /* some mapping still resident and readable */
	bool *changed; /* some mapping's content differs */
} cg_close;

static void set_end(cg_state *s, size_t slot, uint64_t h, bool ok, void *data)
{
	cg_close *c = data;
	if (!ok)
		return;
	c->seen[slot] = true;
	c->changed[slot] |= h != s->hashes[slot];
}

static int close_window(cg_state *s, ms_measurement *out, char **why)
{
	g_autoptr(GArray) pids = g_array_new(FALSE, FALSE, sizeof(pid_t));
	g_autoptr(GArray) now = NULL;
	int r;

	/* The open's members that are still the same processes. */
	for (guint m = 0; m < s->members->len; m++)
		g_array_append_val(pids, g_array_index(s->members, cg_look, m).pid);
	if ((r = look_all(s, pids, NULL, &now, why)) < 0)
		return r;
	/* now[i] for member m, or -1 when m has left (or its pid is another's). */
	g_autofree int *now_of = g_new(int, MAX(s->members->len, 1));
	for (guint m = 0, i = 0; m < s->members->len; m++) {
		const cg_look *l = &g_array_index(s->members, cg_look, m);
		now_of[m] = -1;
		while (i < now->len && g_array_index(now, cg_look, i).pid < l->pid)
			i++;
		if (i < now->len && g_array_index(now, cg_look, i).pid == l->pid &&
		    g_array_index(now, cg_look, i).starttime == l->starttime)
			now_of[m] = (int)i;
	}
	cg_reads *reads = g_new0(cg_reads, MAX(now->len, 1));
	for (size_t i = 0; i < s->n; i++) {
		size_t f = s->drawn[i];
		size_t end = f + 1 < s->nframes ? s->frame_first[f + 1] : s->nmappings;
		for (size_t k = s->frame_first[f]; k < end; k++) {
			const cg_mapping *mp = &s->mappings[k];
			if (now_of[mp->member] < 0)
				continue;
			const cg_look *was = &g_array_index(s->members, cg_look, mp->member);
			const cg_look *is = &g_array_index(now, cg_look, now_of[mp->member]);
			uint64_t addr = g_array_index(was->addrs, uint64_t, mp->page);
			if (find_u64((uint64_t *)(void *)is->addrs->data, is->addrs->len, addr,
				     NULL))
				reads_add(&reads[now_of[mp->member]], addr, i);
		}
	}
	g_autofree bool *seen = g_new0(bool, MAX(s->n, 1));
	g_autofree bool *changed = g_new0(bool, MAX(s->n, 1));
	cg_close c = {seen, changed};
	int64_t t0 = ms_now_us(CLOCK_MONOTONIC);
	r = hash_reads(now, reads, s->ps, set_end, s, &c, why);
	int64_t mid = (t0 + ms_now_us(CLOCK_MONOTONIC)) / 2;
	reads_free(reads, now->len);
	if (r < 0)
		return r;

	ms_measurement_begin(out, s->mode,
			     ms_pagemap_scan_supported()
				     ? "cgroup+pagemap_scan+pfn+process_vm_readv"
				     : "cgroup+pagemap+pfn+process_vm_readv",
			     s->start_wall_ms, s->start_mid_us, mid, s->ps);
	out->processes = s->members->len;
	out->pages_total = s->nframes;
	out->pages_population = s->nframes;
	out->pages_sampled = s->n;
	for (size_t i = 0; i < s->n; i++) {
		if (!s->readable[i] || !seen[i])
			out->pages_unmapped++;
		else if (changed[i])
			out->pages_dirty++;
	}
	/* New: resident now at an address of a member that had none there,
	 * in a frame that was not one of the open's; each frame once. */
	g_autoptr(GArray) fresh = g_array_new(FALSE, FALSE, sizeof(uint64_t));
	for (guint m = 0; m < s->members->len; m++) {
		if (now_of[m] < 0)
			continue;
		const cg_look *was = &g_array_index(s->members, cg_look, m);
		const cg_look *is = &g_array_index(now, cg_look, now_of[m]);
		for (guint j = 0; j < is->addrs->len; j++) {
			uint64_t a = g_array_index(is->addrs, uint64_t, j);
			uint64_t key = g_array_index(is->keys, uint64_t, j);
			if (!find_u64((uint64_t *)(void *)was->addrs->data, was->addrs->len, a,
				      NULL) &&
			    !find_u64(s->frame_keys, s->nframes, key, NULL))
				g_array_append_val(fresh, key);
		}
	}
	g_array_sort(fresh, cmp_u64_fn);
	for (guint j = 0; j < fresh->len; j++)
		out->pages_new += j == 0 || g_array_index(fresh, uint64_t, j) !=
						    g_array_index(fresh, uint64_t, j - 1);
	ms_measurement_finish(out);
	g_clear_pointer(&s->next, g_array_unref);
	s->next = g_steal_pointer(&now);
	s->next_us = ms_now_us(CLOCK_MONOTONIC);
	return 1;
}

/* ---- the source ---- */

/* Claims a directory (a socket never is one) or a path under a cgroup
 * file system; what it is is told in resolve, as the caller sees it (the
 * daemon's own look here must not tell a caller about paths it could not
 * reach: the answer is the same either way). */
static int parse(const char *word, size_t len, char key[MS_KEY_MAX], char **why)
{
	char path[MS_KEY_MAX];
	struct stat st;

	(void)why;
	if (len == 0 || word[0] != '/')
		return 0;
	while (len > 1 && word[len - 1] == '/')
		len--;
	if (len >= MS_KEY_MAX)
		return 0; /* the socket source says it is too long */
	memcpy(path, word, len);
	path[len] = '\0';
	g_autofree char *parent = g_path_get_dirname(path);
	if (stat(path, &st) == 0 ? !S_ISDIR(st.st_mode) && !is_cgroup_magic(fs_magic(path))
				 : !is_cgroup_magic(fs_magic(parent)))
		return 0;
	memcpy(key, path, len + 1);
	return 1;
}

/* What path is, as the caller sees it: 0 with *st for a cgroup directory,
 * else -ENOENT, -EACCES, -ENOTDIR (a cgroup's file), -EINVAL (a directory
 * of another file system) with *why. */
static int cgroup_dir(const char *path, const ms_caller *c, struct stat *st, char **why)
{
	int r = ms_stat_as(path, c, st);

	if (r == -ENOENT)
		return ms_fail(why, r, "no cgroup %s", path);
	if (r < 0)
		return ms_fail(why, r, "%s: %s", path, g_strerror(-r));
	bool cg = is_cgroup_magic(fs_magic(path));
	if (!S_ISDIR(st->st_mode))
		return ms_fail(why, cg ? -ENOTDIR : -EINVAL,
			       cg ? "%s is a file of a cgroup, not its directory"
				  : "%s is not a cgroup directory",
			       path);
	if (!cg)
		return ms_fail(why, -EINVAL, "%s is a directory, but not of a cgroup file system",
			       path);
	return 0;
}

static int resolve(const char *key, const ms_caller *c, ms_ident *out, char **why)
{
	struct stat st;
	int r;

	if ((r = cgroup_dir(key, c, &st, why)) < 0)
		return r;
	if (c->uid != 0) {
		/* Only a caller who could read every member's memory itself. */
		cg_state probe = {.dev = st.st_dev, .ino = st.st_ino};
		g_autoptr(GArray) pids = NULL;
		g_strlcpy(probe.path, key, sizeof(probe.path));
		if ((r = read_members(&probe, &pids, why)) < 0)
			return r == -ESRCH ? ms_fail(why, -ENOENT, "no cgroup %s", key) : r;
		if ((r = check_members(pids, c, why)) < 0)
			return r;
	}
	g_strlcpy(out->key, key, sizeof(out->key));
	/* A cgroup removed and made again is another one (v2: the inode is
	 * the cgroup's id). */
	out->instance = (uint64_t)st.st_ino;
	return 0;
}

/* The container id of the runtimes' cgroup names: docker-<id>.scope,
 * libpod-<id>.scope, cri-containerd-<id>.scope, crio-<id>.scope,
 * /docker/<id>, podman's cgroupfs libpod-<id> (under libpod_parent):
 * its first 12 characters, as `docker ps` and `podman ps` show it. */
static bool container_id(const char *path, char name[MS_NAME_MAX])
{
	static const char *const prefixes[] = {"docker-", "libpod-", "cri-containerd-", "crio-"};
	g_autofree char *base = g_path_get_basename(path);
	g_autofree char *parent_dir = g_path_get_dirname(path);
	g_autofree char *parent = g_path_get_basename(parent_dir);
	const char *id = NULL;
	size_t len = strlen(base);

	if (g_str_has_suffix(base, ".scope"))
		base[len -= 6] = '\0';
	for (size_t i = 0; i < G_N_ELEMENTS(prefixes) && !id; i++)
		if (g_str_has_prefix(base, prefixes[i]))
			id = base + strlen(prefixes[i]);
	if (!id && strcmp(parent, "docker") == 0)
		id = base;
	if (!id || strlen(id) < 12 || strspn(id, "0123456789abcdef") != strlen(id))
		return false;
	g_strlcpy(name, id, MIN((size_t)13, (size_t)MS_NAME_MAX));
	return true;
}

static void free_state(void *state)
{
	cg_state *s = state;

	free_window(s);
	g_clear_pointer(&s->next, g_array_unref);
	g_free(s->v2_dir);
	g_free(s->mem_dir);
	if (s->rand)
		g_rand_free(s->rand);
	g_free(s);
}

static int admit(const ms_ident *id, const ms_caller *c, const char *mode, ms_admitted *out,
		 char **why)
{
	struct stat st;
	const cg_mount *mnt;

	(void)mode;
	if (stat(id->key, &st) < 0 || (uint64_t)st.st_ino != id->instance)
		return ms_fail(why, -ENOENT, "no cgroup %s", id->key);
	cg_state *s = g_new0(cg_state, 1);
	g_strlcpy(s->path, id->key, sizeof(s->path));
	s->dev = st.st_dev;
	s->ino = st.st_ino;
	s->v2 = fs_magic(s->path) == CGROUP2_SUPER_MAGIC;
	s->tracker = *c;
	s->ps = (uint32_t)sysconf(_SC_PAGESIZE);
	s->rand = g_rand_new();

	/* The same cgroup in the other hierarchies: v2's (pressure, memory
	 * where v2 has the controller) and v1's memory (where it is v1's). */
	g_autoptr(GArray) mounts = cgroup_mounts();
	const char *rel = relative_to_mount(mounts, s->path, &mnt);
	if (rel) {
		s->v2_dir = s->v2 ? g_strdup(s->path) : dir_under(mounts, true, NULL, rel);
		g_autofree char *cur =
			s->v2_dir ? g_build_filename(s->v2_dir, "memory.current", NULL) : NULL;
		if (cur && access(cur, R_OK) == 0) {
			s->mem_dir = g_strdup(s->v2_dir);
			s->mem_v2 = true;
		} else {
			s->mem_dir = dir_under(mounts, false, "memory", rel);
		}
	}
	out->state = s;
	out->owner = st.st_uid;
	if (!container_id(s->path, out->name)) {
		g_autofree char *base = g_path_get_basename(s->path);
		g_strlcpy(out->name, base, sizeof(out->name));
	}
	out->default_mode = NULL;
	return 0;
}

static int mode_ok(void *state, const char *mode, char **why)
{
	(void)state;
	if (strcmp(mode, "soft-dirty") == 0) {
		int r = soft_dirty_supported(why);
		if (r < 0)
			return r;
		return ms_fail(why, -EOPNOTSUPP,
			       "soft-dirty is not for a cgroup: its members' bits cannot be "
			       "cleared at one moment, nor a shared frame's writes told once");
	}
	return 0;
}

static bool alive(void *state)
{
	(void)state;
	return true; /* step says when the cgroup has gone, and why */
}

static int check_caller(void *state, const ms_caller *c, char **why)
{
	cg_state *s = state;
	g_autoptr(GArray) pids = NULL;

	if (c->uid == 0)
		return 0;
	int r = read_members(s, &pids, why);
	return r < 0 ? r : check_members(pids, c, why);
}

static void rest(void *state)
{
	cg_state *s = state;

	free_window(s);
	g_clear_pointer(&s->next, g_array_unref);
}

static int step(void *state, const char *mode, const ms_params *p, ms_step *out, char **why)
{
	cg_state *s = state;
	g_autoptr(GArray) pids = NULL;
	int produced = 0, r;

	if ((r = read_members(s, &pids, why)) < 0)
		return r;
	if (pids->len == 0) {
		/* Empty at two steps in a row: a whole period without a
		 * process, after having had some. */
		bool gone = s->had_members && s->empty_before;
		s->empty_before = true;
		free_window(s);
		if (gone)
			return ms_fail(why, -ESRCH,
				       "the cgroup %s has had no process for a whole period",
				       s->path);
		return 0; /* no figure: nothing to measure */
	}
	s->had_members = true;
	s->empty_before = false;
	/* Never a figure of a process the tracker could not read itself. */
	if (s->tracker.uid != 0 && (r = check_members(pids, &s->tracker, why)) < 0) {
		free_window(s);
		return r;
	}
	/* A new mode starts with a window of its own. */
	if (s->open && strcmp(s->mode, mode) == 0) {
		produced = close_window(s, &out->m, why);
		if (produced < 0) {
			free_window(s);
			return produced;
		}
	}
	free_window(s);
	r = open_window(s, pids, mode, p, why);
	if (r < 0) {
		free_window(s);
		if (produced == 1) {
			g_clear_pointer(why, g_free);
			return produced;
		}
		return r;
	}
	return produced;
}

const ms_source ms_cgroup_source = {
	.kind = "container",
	.noun = "cgroup",
	.bit = MS_KIND_CGROUP,
	.syntax = "a cgroup directory",
	.named = true,
	.needs_groups = false,
	.modes = modes,
	.parse = parse,
	.resolve = resolve,
	.admit = admit,
	.mode_ok = mode_ok,
	.step = step,
	.alive = alive,
	.check_caller = check_caller,
	.rest = rest,
	.free = free_state,
};

/* ---- what its files read ---- */

int ms_cgroup_pids_text(void *state, char **text)
{
	cg_state *s = state;
	g_autoptr(GArray) pids = NULL;

	if (read_members(s, &pids, NULL) < 0)
		return -ESRCH;
	GString *t = g_string_new(NULL);
	for (guint i = 0; i < pids->len; i++)
		g_string_append_printf(t, "%d\n", (int)g_array_index(pids, pid_t, i));
	*text = g_string_free(t, FALSE);
	return 0;
}

/* v1's memory.stat fields under v2's names where they mean the same (the
 * hierarchical total_ ones: v2's count descendants too); the others keep
 * v1's names, without total_. */
static const char *const v1_names[][2] = {
	{"rss", "anon"},
	{"cache", "file"},
	{"mapped_file", "file_mapped"},
	{"dirty", "file_dirty"},
	{"writeback", "file_writeback"},
	{"rss_huge", "anon_thp"},
};

/* The cgroup's memory figures now: name -> value (both owned). */
static GHashTable *memory_figures(cg_state *s, GPtrArray *order)
{
	GHashTable *h = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	g_autofree char *stat_path = NULL;
	g_autofree char *text = NULL;
	static const char *const v2_files[][2] = {
		{"memory.current", "current"},
		{"memory.max", "max"},
		{"memory.swap.current", "swap.current"},
	};
	static const char *const v1_files[][2] = {
		{"memory.usage_in_bytes", "current"},
		{"memory.limit_in_bytes", "max"},
	};

	if (!s->mem_dir)
		return h;
	const char *const(*files)[2] = s->mem_v2 ? v2_files : v1_files;
	size_t nfiles = s->mem_v2 ? G_N_ELEMENTS(v2_files) : G_N_ELEMENTS(v1_files);
	for (size_t i = 0; i < nfiles; i++) {
		g_autofree char *p = g_build_filename(s->mem_dir, files[i][0], NULL);
		g_autofree char *v = NULL;
		if (ms_read_file(p, &v, NULL) < 0)
			continue;
		g_strstrip(v);
		/* v1's "no limit" is the largest page count's bytes. */
		if (!s->mem_v2 && strcmp(files[i][1], "max") == 0 &&
		    g_ascii_strtoull(v, NULL, 10) >= (1ULL << 62)) {
			g_free(v);
			v = g_strdup("max");
		}
		g_hash_table_replace(h, g_strdup(files[i][1]), g_strdup(v));
		if (order)
			g_ptr_array_add(order, g_strdup(files[i][1]));
	}
	if (!s->mem_v2) {
		/* memsw counts memory and swap: the swap is the difference. */
		g_autofree char *mp =
			g_build_filename(s->mem_dir, "memory.memsw.usage_in_bytes", NULL);
		g_autofree char *mv = NULL;
		const char *cur = g_hash_table_lookup(h, "current");
		if (cur && ms_read_file(mp, &mv, NULL) == 0) {
			uint64_t both = g_ascii_strtoull(mv, NULL, 10),
				 mem = g_ascii_strtoull(cur, NULL, 10);
			g_hash_table_replace(
				h, g_strdup("swap.current"),
				g_strdup_printf("%" PRIu64, both > mem ? both - mem : 0));
			if (order)
				g_ptr_array_add(order, g_strdup("swap.current"));
		}
	}
	stat_path = g_build_filename(s->mem_dir, "memory.stat", NULL);
	if (ms_read_file(stat_path, &text, NULL) < 0)
		return h;
	g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
	for (char **l = lines; *l; l++) {
		char name[64], value[32];
		if (sscanf(*l, "%63s %31s", name, value) != 2)
			continue;
		const char *shown = name;
		if (!s->mem_v2) {
			if (!g_str_has_prefix(name, "total_"))
				continue; /* the cgroup alone: v2 shows descendants too */
			shown = name + 6;
			for (size_t i = 0; i < G_N_ELEMENTS(v1_names); i++)
				if (strcmp(shown, v1_names[i][0]) == 0)
					shown = v1_names[i][1];
		}
		if (g_hash_table_contains(h, shown))
			continue;
		g_hash_table_replace(h, g_strdup(shown), g_strdup(value));
		if (order)
			g_ptr_array_add(order, g_strdup(shown));
	}
	return h;
}

GPtrArray *ms_cgroup_memory_names(void *state)
{
	GPtrArray *order = g_ptr_array_new_with_free_func(g_free);
	g_hash_table_unref(memory_figures(state, order));
	return order;
}

int ms_cgroup_memory_value(void *state, const char *name, char **out)
{
	cg_state *s = state;
	struct stat st;

	if (stat(s->path, &st) < 0 || st.st_ino != s->ino)
		return -ESRCH;
	g_autoptr(GHashTable) h = memory_figures(s, NULL);
	const char *v = g_hash_table_lookup(h, name);
	if (!v)
		return -ENOENT;
	*out = g_strdup_printf("%s\n", v);
	return 0;
}

const char *const ms_cgroup_pressure_names[] = {
	"some_avg10", "some_avg60",  "some_avg300", "some_total", "full_avg10",
	"full_avg60", "full_avg300", "full_total",  NULL,
};

bool ms_cgroup_has_pressure(void *state)
{
	cg_state *s = state;
	g_autofree char *p =
		s->v2_dir ? g_build_filename(s->v2_dir, "memory.pressure", NULL) : NULL;
	return p && access(p, R_OK) == 0;
}

int ms_cgroup_pressure_value(void *state, const char *name, char **out)
{
	cg_state *s = state;
	g_autofree char *text = NULL;
	char kind[8], field[8];

	if (!s->v2_dir)
		return -ENOENT;
	g_autofree char *p = g_build_filename(s->v2_dir, "memory.pressure", NULL);
	int r = ms_read_file(p, &text, NULL);
	if (r < 0)
		return r == -ENOENT || r == -ENODEV ? -ESRCH : r;
	if (sscanf(name, "%7[a-z]_%7[a-z0-9]", kind, field) != 2)
		return -ENOENT;
	g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
	for (char **l = lines; *l; l++) {
		if (!g_str_has_prefix(*l, kind) || (*l)[strlen(kind)] != ' ')
			continue;
		g_auto(GStrv) words = g_strsplit(*l + strlen(kind) + 1, " ", -1);
		for (char **w = words; *w; w++) {
			size_t fl = strlen(field);
			if (strncmp(*w, field, fl) == 0 && (*w)[fl] == '=') {
				*out = g_strdup_printf("%s\n", *w + fl + 1);
				return 0;
			}
		}
	}
	return -ENOENT;
}
