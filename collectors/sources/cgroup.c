/* cgroup.c: the cgroup source (cgroup.h).
 *
 * A target is a cgroup directory: cgroup v2, or a hierarchy of v1 (told by
 * statfs's magic).  Its members are the processes in cgroup.procs of the
 * directory and of every directory under it, read again at every window's
 * open: a process that joins is measured from the next window on, one that
 * leaves is not looked at again.
 *
 * One population, the union of the members' physical frames: memory that
 * several members map counts once (methods/frames.h says how).
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
#include "memstat/methods/frames.h"
#include "memstat/methods/page_sampling.h"
#include "memstat/methods/proc.h"
#include "memstat/methods/soft_dirty.h"

#include "cgroup_state.h"

#define CGROUP_SUPER_MAGIC  0x27e0eb
#define CGROUP2_SUPER_MAGIC 0x63677270
#define CG_DEPTH_MAX	    64 /* directories below the tracked one */

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

	ms_frames_clear(&s->w);
	ms_growth_probe_free(s->growth);
	g_free(s->v2_dir);
	g_free(s->mem_dir);
	g_free(s);
}

static int mode_ok(void *state, const char *mode, char **why);

static int admit(const ms_ident *id, const ms_caller *c, const char *mode, ms_admitted *out,
		 char **why)
{
	struct stat st;
	const cg_mount *mnt;

	if (stat(id->key, &st) < 0 || (uint64_t)st.st_ino != id->instance)
		return ms_fail(why, -ENOENT, "no cgroup %s", id->key);
	cg_state *s = g_new0(cg_state, 1);
	g_strlcpy(s->path, id->key, sizeof(s->path));
	s->dev = st.st_dev;
	s->ino = st.st_ino;
	s->v2 = fs_magic(s->path) == CGROUP2_SUPER_MAGIC;
	/* Yama's relation is checked on the members at track (check_caller),
	 * as ptrace checks it when a tracer attaches; the members checked at
	 * every step after, those that joined among them, get ptrace's own
	 * rule (uids, dumpable) only: the writer of the track line has often
	 * exited, and its pid may name another process by then. */
	s->tracker = *c;
	s->tracker.attached = true;
	ms_frames_init(&s->w);

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
	out->owner = 0; /* owning its directory gives no right to members' memory */
	if (!container_id(s->path, out->name)) {
		g_autofree char *base = g_path_get_basename(s->path);
		g_strlcpy(out->name, base, sizeof(out->name));
	}
	/* The daemon's default mode may be one a cgroup refuses (soft-dirty):
	 * then its first mode, unless the line asked for it (mode_ok says why
	 * not). */
	out->default_mode = mode_ok(NULL, mode, NULL) < 0 ? modes[0].name : NULL;
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

	ms_frames_rest(&s->w);
	g_clear_pointer(&s->growth, ms_growth_probe_free);
	s->rate_due_us = 0;
}

/* The rate's step: closes the open window into out->m, opens the next. */
static int rate_step(cg_state *s, GArray *pids, const char *mode, const ms_params *p, ms_step *out,
		     char **why)
{
	int produced = 0, r;

	/* A new mode starts with a window of its own. */
	if (s->w.open && strcmp(s->w.mode, mode) == 0) {
		produced = ms_frames_close(&s->w, &out->m, why);
		if (produced < 0) {
			ms_frames_free_window(&s->w);
			return produced;
		}
	}
	ms_frames_free_window(&s->w);
	const char *name = ms_source_mode(&ms_cgroup_source, mode)->name;
	r = ms_frames_open(&s->w, pids, name, strcmp(name, "full-scan") == 0, p, why);
	if (r < 0) {
		ms_frames_free_window(&s->w);
		if (produced == 1) {
			g_clear_pointer(why, g_free);
			return produced;
		}
		return r;
	}
	return produced;
}

/* The workers' wake-up grid (scheduler.c): a rate window due within it is
 * closed now. */
#define GRID_US 20000

static int step(void *state, const char *mode, const ms_params *p, ms_step *out, char **why)
{
	cg_state *s = state;
	g_autoptr(GArray) pids = NULL;
	int64_t now = ms_now_us(CLOCK_MONOTONIC);
	int r = 0;

	/* Nobody wants the growth curve: every step is the rate's, as it was. */
	bool rate_due = p->growth_ms == 0 || s->rate_due_us == 0 || now + GRID_US >= s->rate_due_us;

	if ((r = read_members(s, &pids, why)) < 0)
		return r;
	if (pids->len == 0) {
		/* Empty at two rate steps in a row: a whole period without a
		 * process, after having had some. */
		bool gone = s->had_members && s->empty_before && rate_due;
		if (rate_due) {
			s->empty_before = true;
			s->rate_due_us = now + (int64_t)p->period_ms * 1000;
		}
		ms_frames_free_window(&s->w);
		if (s->growth)
			ms_growth_close(s->growth);
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
		ms_frames_free_window(&s->w);
		if (s->growth)
			ms_growth_close(s->growth);
		return r;
	}
	if (rate_due) {
		r = rate_step(s, pids, mode, p, out, why);
		if (r < 0)
			return r;
		s->rate_due_us = now + (int64_t)p->period_ms * 1000;
	}
	if (p->growth_ms == 0 && !s->growth)
		return r;
	if (!s->growth)
		s->growth = ms_frames_growth_new();
	ms_frames_growth_members(s->growth, pids);
	ms_source_growth_tick(s->growth, p->growth_ms, p, strcmp(mode, "full-scan") == 0,
			      s->rate_due_us, out, s->path);
	return r;
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
