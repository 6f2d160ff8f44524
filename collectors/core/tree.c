/* tree.c: the table of nodes, and the walks over it (tree.h).
 *
 * Rows are listed in the order a directory lists them.  A row's children
 * are the rows whose parent it is; a named child has its parent's target
 * and index, a family's entries get theirs from its lookup and list.  What
 * a node shows is in tree_files.c (reads) and tree_control.c (writes); a
 * source's own files call that source's readers.
 */
#include "memstat/core/tree.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "memstat/core/tree_control.h"
#include "memstat/core/tree_files.h"
#include "memstat/methods/fail.h"

/* Rows, by index: parents are named by these. */
enum {
	N_ROOT,
	N_TRACK,
	N_UNTRACK,
	N_MEMINFO_DIR,
	N_MEMINFO,
	N_METRICS,
	N_TARGET,
	N_STATUS,
	N_RATE,
	N_PERIOD,
	N_SAMPLE_PAGES,
	N_MODE,
	N_MEMORY_DIR,
	N_MEMORY,
	N_SAMPLES_DIR,
	N_SAMPLE,
	N_LATEST,
	N_QEMU_PID,
	N_SOCKET,
	N_VCPU_DIR,
	N_VCPU,
	N_VCPU_RATE,
	N_PIDS,
	N_CG_MEMORY_DIR,
	N_CG_MEMORY,
	N_PRESSURE_DIR,
	N_PRESSURE,
	N_GROWTH,
	N_MIGRATION_DIR,
	N_MIG_BANDWIDTH,
	N_MIG_DOWNTIME_MS,
	N_MIG_LINK_BANDWIDTH,
	N_MIG_MAX_TOTAL_S,
	N_MIG_VERDICT,
	N_MIG_ITERATIONS,
	N_MIG_TOTAL_S,
	N_MIG_DOWNTIME_EXPECTED,
	N_MIG_TRANSFERRED,
	N_MIG_MIN_BANDWIDTH,
	N_MIG_MIN_DOWNTIME_MS,
	N_MIG_MODEL,
	N_LIBVIRT_QEMU_PID,
	N_PRECISION,
	N_COUNT
};

#define DIR  (S_IFDIR | 0555)
#define FILE (S_IFREG | 0444)
#define CTRL (S_IFREG | 0644)
#define ALL  MS_KIND_ALL
/* Kinds whose sources measure a growth curve (growth.h): every kind (a
 * cgroup's over the union of its members' frames; a VM's and a libvirt
 * domain's of its QEMU process, from outside). */
#define FORECAST ALL
#define VM	 MS_KIND_VM
#define LV	 MS_KIND_LIBVIRT
#define PROC	 MS_KIND_PROCESS
#define CG	 MS_KIND_CGROUP
#define PRIV	 MS_NODE_PRIVATE
#define OWN	 MS_NODE_OWNED
#define SAMPLE	 MS_CHANGES_SAMPLE
#define STATE	 MS_CHANGES_STATE
#define WHY	 MS_CHANGES_WHY
#define GROWTH	 MS_CHANGES_GROWTH

/* The rows: a named node, or a family (list, lookup) of entries. */
// clang-format off
static const ms_node table[N_COUNT] = {
	[N_ROOT]         = {.name = "", .parent = N_ROOT, .mode = DIR, .flags = MS_NODE_GROUPS},
	[N_TRACK]        = {.name = "track", .parent = N_ROOT, .mode = CTRL,
			    .render = ms_render_track, .write = ms_write_track},
	[N_UNTRACK]      = {.name = "untrack", .parent = N_ROOT, .mode = S_IFREG | 0200,
			    .write = ms_write_untrack},
	[N_MEMINFO_DIR]  = {.name = "meminfo", .parent = N_ROOT, .mode = DIR},
	[N_MEMINFO]      = {.parent = N_MEMINFO_DIR, .mode = FILE, .render = ms_render_meminfo,
			    .list = ms_list_meminfo, .lookup = ms_lookup_meminfo,
			    .attr = ms_attr_meminfo},
	[N_METRICS]      = {.name = "metrics", .parent = N_ROOT, .mode = FILE,
			    .flags = MS_NODE_GROUPS, .render = ms_render_metrics},
	[N_TARGET]       = {.parent = N_ROOT, .mode = DIR, .kinds = ALL, .flags = OWN,
			    .list = ms_list_targets, .lookup = ms_lookup_target},
	[N_STATUS]       = {.name = "status", .parent = N_TARGET, .mode = FILE, .kinds = ALL,
			    .changes = STATE | WHY, .render = ms_render_status},
	[N_RATE]         = {.name = "rate", .parent = N_TARGET, .mode = FILE, .kinds = ALL,
			    .flags = PRIV, .changes = SAMPLE | STATE, .render = ms_render_rate},
	[N_PERIOD]       = {.name = "period", .parent = N_TARGET, .mode = CTRL, .kinds = ALL,
			    .flags = OWN, .render = ms_render_period, .write = ms_write_setting},
	[N_SAMPLE_PAGES] = {.name = "sample_pages", .parent = N_TARGET, .mode = CTRL, .kinds = ALL,
			    .flags = OWN, .render = ms_render_sample_pages,
			    .write = ms_write_setting},
	[N_PRECISION]    = {.name = "precision", .parent = N_TARGET, .mode = CTRL, .kinds = PROC,
			    .flags = OWN, .render = ms_render_precision, .write = ms_write_setting},
	[N_MODE]         = {.name = "mode", .parent = N_TARGET, .mode = CTRL, .kinds = ALL,
			    .flags = OWN, .render = ms_render_mode, .write = ms_write_setting},
	[N_MEMORY_DIR]   = {.name = "memory", .parent = N_TARGET, .mode = DIR, .kinds = PROC,
			    .flags = OWN},
	[N_MEMORY]       = {.parent = N_MEMORY_DIR, .mode = FILE, .kinds = PROC,
			    .render = ms_render_memory, .list = ms_list_memory,
			    .lookup = ms_lookup_memory, .attr = ms_attr_memory},
	[N_SAMPLES_DIR]  = {.name = "samples", .parent = N_TARGET, .mode = DIR, .kinds = ALL,
			    .flags = OWN | PRIV},
	[N_SAMPLE]       = {.parent = N_SAMPLES_DIR, .mode = FILE, .kinds = ALL,
			    .flags = PRIV | MS_NODE_CACHED, .render = ms_render_sample,
			    .list = ms_list_samples, .lookup = ms_lookup_sample,
			    .attr = ms_attr_sample},
	[N_LATEST]       = {.name = "latest", .parent = N_SAMPLES_DIR, .mode = S_IFLNK | 0777,
			    .kinds = ALL, .flags = PRIV, .render = ms_render_latest,
			    .attr = ms_attr_latest},
	[N_QEMU_PID]     = {.name = "qemu_pid", .parent = N_TARGET, .mode = FILE, .kinds = VM,
			    .render = ms_render_qemu_pid},
	[N_SOCKET]       = {.name = "socket", .parent = N_TARGET, .mode = FILE, .kinds = VM,
			    .render = ms_render_socket},
	[N_VCPU_DIR]     = {.name = "vcpu", .parent = N_TARGET, .mode = DIR, .kinds = VM | LV,
			    .flags = PRIV},
	[N_VCPU]         = {.parent = N_VCPU_DIR, .mode = DIR, .kinds = VM | LV, .flags = PRIV,
			    .list = ms_list_vcpus, .lookup = ms_lookup_vcpu, .attr = ms_attr_vcpu},
	[N_VCPU_RATE]    = {.name = "rate", .parent = N_VCPU, .mode = FILE, .kinds = VM | LV,
			    .flags = PRIV, .changes = SAMPLE | STATE, .render = ms_render_vcpu_rate,
			    .attr = ms_attr_vcpu},
	[N_PIDS]         = {.name = "pids", .parent = N_TARGET, .mode = FILE, .kinds = CG,
			    .flags = PRIV, .render = ms_render_pids},
	[N_CG_MEMORY_DIR] = {.name = "memory", .parent = N_TARGET, .mode = DIR, .kinds = CG,
			    .flags = OWN},
	[N_CG_MEMORY]    = {.parent = N_CG_MEMORY_DIR, .mode = FILE, .kinds = CG,
			    .render = ms_render_cgroup_memory, .list = ms_list_cgroup_memory,
			    .lookup = ms_lookup_cgroup_memory},
	[N_PRESSURE_DIR] = {.name = "pressure", .parent = N_TARGET, .mode = DIR, .kinds = CG,
			    .flags = OWN},
	[N_PRESSURE]     = {.parent = N_PRESSURE_DIR, .mode = FILE, .kinds = CG,
			    .render = ms_render_pressure, .list = ms_list_pressure,
			    .lookup = ms_lookup_pressure},
	[N_GROWTH]       = {.name = "growth", .parent = N_TARGET, .mode = FILE, .kinds = FORECAST,
			    .flags = PRIV, .changes = GROWTH | STATE, .render = ms_render_growth},
	[N_MIGRATION_DIR] = {.name = "migration", .parent = N_TARGET, .mode = DIR, .kinds = FORECAST,
			    .flags = OWN | PRIV},
#define MIG_SETTING(n, s) [n] = {.name = s, .parent = N_MIGRATION_DIR, .mode = CTRL, .kinds = FORECAST, \
			    .flags = OWN, .render = ms_render_migration_setting, .write = ms_write_setting}
#define MIG_RESULT(n, s) [n] = {.name = s, .parent = N_MIGRATION_DIR, .mode = FILE, .kinds = FORECAST, \
			    .flags = PRIV, .changes = SAMPLE | GROWTH | STATE, .render = ms_render_migration}
	MIG_SETTING(N_MIG_BANDWIDTH, "bandwidth"),
	MIG_SETTING(N_MIG_DOWNTIME_MS, "downtime_ms"),
	MIG_SETTING(N_MIG_LINK_BANDWIDTH, "link_bandwidth"),
	MIG_SETTING(N_MIG_MAX_TOTAL_S, "max_total_s"),
	MIG_RESULT(N_MIG_VERDICT, "verdict"),
	MIG_RESULT(N_MIG_ITERATIONS, "iterations"),
	MIG_RESULT(N_MIG_TOTAL_S, "total_s"),
	MIG_RESULT(N_MIG_DOWNTIME_EXPECTED, "downtime_ms_expected"),
	MIG_RESULT(N_MIG_TRANSFERRED, "transferred_bytes"),
	MIG_RESULT(N_MIG_MIN_BANDWIDTH, "min_bandwidth"),
	MIG_RESULT(N_MIG_MIN_DOWNTIME_MS, "min_downtime_ms"),
	[N_MIG_MODEL]    = {.name = "model", .parent = N_MIGRATION_DIR, .mode = FILE, .kinds = FORECAST,
			    .changes = SAMPLE | GROWTH | STATE, .render = ms_render_migration},
	[N_LIBVIRT_QEMU_PID] = {.name = "qemu_pid", .parent = N_TARGET, .mode = FILE, .kinds = LV,
			    .render = ms_render_libvirt_qemu_pid},
};
// clang-format on

const char *const ms_tree_reserved_names[] = {"track", "untrack", "meminfo", "metrics", NULL};

void ms_tree_init(void)
{
	ms_files_init();
}

const ms_node *ms_tree_node(ms_node_ref n)
{
	return n.node < N_COUNT ? &table[n.node] : NULL;
}

/* The target n is under, when its row is under one: a reference, or NULL
 * (then *gone says whether it should have one). */
static ms_target *target_of(ms_registry *reg, ms_node_ref n, bool *gone)
{
	const ms_node *row = ms_tree_node(n);
	ms_target *t = row && row->kinds && reg ? ms_registry_lookup_id(reg, n.id) : NULL;

	*gone = !row || (row->kinds && (!t || !(ms_target_source(t)->bit & row->kinds)));
	return t;
}

int ms_tree_stat(ms_registry *reg, ms_node_ref n, ms_node_attr *a, uint64_t *generation)
{
	bool gone;
	g_autoptr(ms_target) t = target_of(reg, n, &gone);
	const ms_node *row = ms_tree_node(n);

	if (gone)
		return -ENOENT;
	*a = (ms_node_attr){.mode = row->mode};
	if (t && (row->flags & MS_NODE_OWNED))
		a->uid = ms_target_owner(t);
	*generation = t ? ms_target_generation(t) : 0;
	ms_node_ctx c = {.reg = reg, .node = row, .row = n.node, .t = t, .idx = n.idx};
	return row->attr && row->attr(&c, a) < 0 ? -ENOENT : 0;
}

/* Whether row can be a child of a directory under t: any row outside a
 * target (t NULL: the root's, or a target gone), else a row for t's kind. */
static bool fits(const ms_node *row, const ms_target *t)
{
	return !t || !row->kinds || (ms_target_source(t)->bit & row->kinds);
}

int ms_tree_lookup(ms_registry *reg, ms_node_ref p, const char *name, const ms_caller *caller,
		   ms_node_ref *child)
{
	const ms_node *prow = ms_tree_node(p);
	bool gone;

	if (!prow || !S_ISDIR(prow->mode))
		return -ENOTDIR;
	g_autoptr(ms_target) t = target_of(reg, p, &gone);
	int r = t && caller ? ms_target_may_enter(t, caller) : 0;
	if (r < 0)
		return r;
	/* Named rows first, then families; a name may have a row per kind of
	 * target. */
	for (uint8_t i = 1; i < N_COUNT; i++) {
		const ms_node *row = &table[i];
		if (row->parent == p.node && row->name && strcmp(row->name, name) == 0 &&
		    fits(row, t)) {
			*child = (ms_node_ref){i, p.id, p.idx};
			return 0;
		}
	}
	for (uint8_t i = 1; i < N_COUNT; i++) {
		const ms_node *row = &table[i];
		uint32_t id = p.id, idx = p.idx;
		ms_node_ctx c = {
			.reg = reg, .node = row, .row = i, .t = t, .idx = p.idx, .caller = caller};
		if (row->parent == p.node && !row->name && fits(row, t) &&
		    row->lookup(&c, name, &id, &idx) == 0) {
			*child = (ms_node_ref){i, id, idx};
			return 0;
		}
	}
	return -ENOENT;
}

int ms_tree_list(ms_registry *reg, ms_node_ref n, const ms_caller *caller, ms_entry_fn add,
		 void *data)
{
	ms_node_attr a;
	uint64_t generation;
	bool gone;

	if (ms_tree_stat(reg, n, &a, &generation) < 0)
		return -ENOENT;
	if (!S_ISDIR(a.mode))
		return -ENOTDIR;
	g_autoptr(ms_target) t = target_of(reg, n, &gone);
	int r = t && caller ? ms_target_may_enter(t, caller) : 0;
	if (r < 0)
		return r;
	for (uint8_t i = 1; i < N_COUNT; i++) {
		const ms_node *row = &table[i];
		ms_node_ctx c = {
			.reg = reg, .node = row, .row = i, .t = t, .idx = n.idx, .caller = caller};
		ms_node_attr ca = {.mode = row->mode};
		if (row->parent != n.node || !fits(row, t))
			continue;
		if (!row->name)
			row->list(&c, add, data);
		else if (!row->attr || row->attr(&c, &ca) == 0)
			add(row->name, (ms_node_ref){i, n.id, n.idx}, row->mode, data);
	}
	return 0;
}

bool ms_tree_may_read(ms_registry *reg, ms_node_ref n, const ms_caller *caller)
{
	g_autoptr(ms_target) t = reg ? ms_registry_lookup_id(reg, n.id) : NULL;
	const ms_node *row = ms_tree_node(n);

	return !row || !(row->flags & MS_NODE_PRIVATE) || !t || ms_target_may_read(t, caller);
}

int ms_tree_may_enter(ms_registry *reg, ms_node_ref n, const ms_caller *caller)
{
	bool gone;
	g_autoptr(ms_target) t = target_of(reg, n, &gone);

	return t ? ms_target_may_enter(t, caller) : 0;
}

bool ms_tree_per_caller(ms_registry *reg, ms_node_ref n)
{
	bool gone;
	g_autoptr(ms_target) t = target_of(reg, n, &gone);

	return t && ms_target_per_caller(t);
}

bool ms_tree_needs_groups(ms_registry *reg, ms_node_ref n)
{
	if (ms_proc_view_get().hidepid != MS_HIDEPID_OFF)
		return true; /* gid= (or group 0): the caller's groups decide */

	g_autoptr(ms_target) t = reg && n.id ? ms_registry_lookup_id(reg, n.id) : NULL;
	const ms_node *row = ms_tree_node(n);

	return (row && (row->flags & MS_NODE_GROUPS)) || (t && ms_target_source(t)->needs_groups);
}

int ms_tree_render(ms_registry *reg, ms_node_ref n, const ms_caller *caller, char **out)
{
	bool gone;
	g_autoptr(ms_target) t = target_of(reg, n, &gone);
	const ms_node *row = ms_tree_node(n);

	if (gone)
		return -ENOENT;
	if (!row->render)
		return -EINVAL;
	ms_node_ctx c = {
		.reg = reg, .node = row, .row = n.node, .t = t, .idx = n.idx, .caller = caller};
	return row->render(&c, out);
}

int ms_tree_write(ms_registry *reg, ms_node_ref n, const ms_caller *caller, const char *buf,
		  size_t len, char gone_name[MS_NAME_MAX])
{
	bool gone;
	g_autoptr(ms_target) t = target_of(reg, n, &gone);
	const ms_node *row = ms_tree_node(n);
	g_autofree char *why = NULL;

	gone_name[0] = '\0';
	if (!reg)
		return -EAGAIN;
	if (!row || !row->write)
		return -EACCES;
	if (gone)
		return -ENOENT;
	ms_node_ctx c = {
		.reg = reg, .node = row, .row = n.node, .t = t, .idx = n.idx, .caller = caller};
	int r = row->write(&c, buf, len, &why);
	if (r < 0)
		g_message("%s (%s)", why ? why : row->name, g_strerror(-r));
	g_strlcpy(gone_name, c.gone, MS_NAME_MAX);
	return r;
}

int ms_tree_rmdir(ms_registry *reg, ms_node_ref parent, const char *name, const ms_caller *caller)
{
	g_autofree char *why = NULL;
	ms_node_ref child;

	if (parent.node != N_ROOT || !reg)
		return -EPERM;
	g_autoptr(ms_target) t = ms_registry_lookup(reg, name);
	if (t && !ms_target_visible(t, caller))
		return -ENOENT;
	if (!t)
		/* The tree's own directories stay. */
		return ms_tree_lookup(reg, parent, name, caller, &child) == 0 ? -EPERM : -ENOENT;
	int r = ms_registry_untrack(reg, name, caller, &why);
	if (r < 0)
		g_message("rmdir: %s (%s)", why, g_strerror(-r));
	else
		g_message("untracked %s (rmdir by uid %u)", name, (unsigned)caller->uid);
	return r;
}

bool ms_tree_changes(ms_node_ref n)
{
	const ms_node *row = ms_tree_node(n);

	return row && row->changes && row->kinds && n.id;
}

/* The sum of the counters row->changes names: each only grows. */
static uint64_t version_of(const ms_node *row, const ms_target_view *v)
{
	return ((row->changes & MS_CHANGES_SAMPLE) ? v->last_seq : 0) +
	       ((row->changes & MS_CHANGES_STATE) ? v->state_changes : 0) +
	       ((row->changes & MS_CHANGES_WHY) ? v->why_changes : 0) +
	       ((row->changes & MS_CHANGES_GROWTH) ? v->growth_changes : 0);
}

int ms_tree_version(ms_registry *reg, ms_node_ref n, uint64_t *version)
{
	bool gone;
	g_autoptr(ms_target) t = target_of(reg, n, &gone);
	ms_target_view v;

	*version = 0;
	if (gone)
		return -ENOENT;
	if (!t || !ms_tree_changes(n))
		return 0;
	ms_target_get_view(t, &v);
	*version = version_of(ms_tree_node(n), &v);
	return 0;
}

unsigned ms_tree_watch(ms_registry *reg, ms_node_ref n, const ms_caller *caller, uint64_t seen)
{
	bool gone;
	g_autoptr(ms_target) t = target_of(reg, n, &gone);
	const ms_node *row = ms_tree_node(n);
	ms_target_view v;

	if (gone)
		return MS_WATCH_GONE;
	if (!t || !ms_tree_changes(n))
		return MS_WATCH_NEW;
	ms_target_get_view(t, &v);
	if (v.removed)
		return MS_WATCH_GONE;
	unsigned w = v.state == MS_STATE_EXITED ? MS_WATCH_FINAL : 0;
	if (version_of(row, &v) == seen)
		return w;
	/* Something changed; is there something to read (a first figure)? */
	g_autofree char *text = NULL;
	ms_node_ctx c = {
		.reg = reg, .node = row, .row = n.node, .t = t, .idx = n.idx, .caller = caller};
	return row->render && row->render(&c, &text) == -EAGAIN ? w : w | MS_WATCH_NEW;
}
