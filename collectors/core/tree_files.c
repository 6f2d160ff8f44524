/* tree_files.c: what the tree's nodes show (tree_files.h).
 *
 * Files are rendered whole per open (the FUSE layer keeps the text for the
 * reads that follow); a sample's text was rendered once when it was
 * published.
 */
#include "memstat/core/tree_files.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "memstat/core/forecast.h"
#include "memstat/core/metrics.h"
#include "memstat/methods/meminfo.h"
#include "memstat/sources/cgroup.h"
#include "memstat/sources/process.h"
#include "memstat/sources/libvirt.h"
#include "memstat/sources/qemu.h"

/* The meminfo/ names, fixed at start. */
static GPtrArray *meminfo_names;

static void read_names(void)
{
	meminfo_names = ms_meminfo_names();
	if (!meminfo_names)
		meminfo_names = g_ptr_array_new_with_free_func(g_free);
	ms_process_memory_names();
}

void ms_files_init(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, read_names);
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

/* ---- the root ---- */

int ms_render_track(ms_node_ctx *c, char **out)
{
	GString *s = g_string_new(NULL);
	g_autoptr(GPtrArray) all = c->reg ? ms_registry_list(c->reg) : g_ptr_array_new();

	/* Each line is a valid write to track. */
	for (guint i = 0; i < all->len; i++) {
		ms_target *t = g_ptr_array_index(all, i);
		ms_target_view v;
		if (!ms_target_visible(t, c->caller))
			continue;
		ms_target_get_view(t, &v);
		g_string_append(s, ms_target_ident(t)->key);
		if (ms_target_source(t)->named)
			g_string_append_printf(s, " name=%s", ms_target_name(t));
		g_string_append_printf(s, " period=%u sample_pages=%u", v.settings.period_s,
				       v.settings.sample_pages);
		/* Only a process's page-sampling has a precision to ask. */
		char pr[64];
		if (ms_target_source(t)->bit & MS_KIND_PROCESS)
			g_string_append_printf(
				s, " precision=%s",
				ms_precision_format(&v.settings.precision, pr, sizeof(pr)));
		g_string_append_printf(s, " mode=%s\n", v.settings.mode);
	}
	*out = g_string_free(s, FALSE);
	return 0;
}

int ms_render_metrics(ms_node_ctx *c, char **out)
{
	*out = ms_metrics_render(c->reg, c->caller);
	return 0;
}

void ms_list_targets(ms_node_ctx *c, ms_entry_fn add, void *data)
{
	g_autoptr(GPtrArray) all = c->reg ? ms_registry_list(c->reg) : g_ptr_array_new();
	for (guint i = 0; i < all->len; i++) {
		ms_target *t = g_ptr_array_index(all, i);
		if (ms_target_visible(t, c->caller))
			add(ms_target_name(t), (ms_node_ref){c->row, ms_target_id(t), 0}, S_IFDIR,
			    data);
	}
}

int ms_lookup_target(ms_node_ctx *c, const char *name, uint32_t *id, uint32_t *idx)
{
	g_autoptr(ms_target) t = c->reg ? ms_registry_lookup(c->reg, name) : NULL;

	if (!t || !ms_target_visible(t, c->caller))
		return -ENOENT;
	*id = ms_target_id(t);
	*idx = 0;
	return 0;
}

/* ---- meminfo/ ---- */

int ms_render_meminfo(ms_node_ctx *c, char **out)
{
	if (c->idx >= meminfo_names->len)
		return -ENOENT;
	int r = ms_meminfo_value(g_ptr_array_index(meminfo_names, c->idx), out);
	return r < 0 ? (r == -ENOENT ? -ENOENT : -EIO) : 0;
}

void ms_list_meminfo(ms_node_ctx *c, ms_entry_fn add, void *data)
{
	for (guint i = 0; i < meminfo_names->len; i++)
		add(g_ptr_array_index(meminfo_names, i), (ms_node_ref){c->row, 0, i}, S_IFREG,
		    data);
}

int ms_lookup_meminfo(ms_node_ctx *c, const char *name, uint32_t *id, uint32_t *idx)
{
	(void)c;
	*id = 0;
	return index_of(meminfo_names, name, idx) ? 0 : -ENOENT;
}

int ms_attr_meminfo(ms_node_ctx *c, ms_node_attr *a)
{
	(void)a;
	return c->idx < meminfo_names->len ? 0 : -ENOENT;
}

/* ---- a target's own files ---- */

int ms_render_status(ms_node_ctx *c, char **out)
{
	ms_target_view v;

	ms_target_get_view(c->t, &v);
	/* The state, then why (an error, or a passing condition). */
	*out = v.why[0] ? g_strdup_printf("%s\n%s\n", ms_state_name(v.state), v.why)
			: g_strdup_printf("%s\n", ms_state_name(v.state));
	return 0;
}

int ms_render_rate(ms_node_ctx *c, char **out)
{
	ms_target_view v;

	ms_target_get_view(c->t, &v);
	/* A live figure: once the target is gone there is none (its last one
	 * stays in samples/). */
	if (v.state == MS_STATE_EXITED)
		return -ESRCH;
	g_autoptr(ms_sample) s = ms_target_get_sample(c->t, 0);
	if (s) {
		*out = g_strdup(s->rate_text);
		return 0;
	}
	return v.state == MS_STATE_ERROR ? -EIO : -EAGAIN;
}

int ms_render_period(ms_node_ctx *c, char **out)
{
	ms_target_view v;

	ms_target_get_view(c->t, &v);
	*out = g_strdup_printf("%u\n", v.settings.period_s);
	return 0;
}

int ms_render_precision(ms_node_ctx *c, char **out)
{
	ms_target_view v;
	char buf[64];

	ms_target_get_view(c->t, &v);
	*out = g_strdup_printf("%s\n",
			       ms_precision_format(&v.settings.precision, buf, sizeof(buf)));
	return 0;
}

int ms_render_sample_pages(ms_node_ctx *c, char **out)
{
	ms_target_view v;

	ms_target_get_view(c->t, &v);
	*out = g_strdup_printf("%u\n", v.settings.sample_pages);
	return 0;
}

int ms_render_mode(ms_node_ctx *c, char **out)
{
	ms_target_view v;

	ms_target_get_view(c->t, &v);
	*out = g_strdup_printf("%s\n", v.settings.mode);
	return 0;
}

/* ---- samples/ ---- */

int ms_render_sample(ms_node_ctx *c, char **out)
{
	g_autoptr(ms_sample) s = ms_target_get_sample(c->t, c->idx);

	if (!s)
		return -ENOENT;
	*out = g_strdup(s->text);
	return 0;
}

void ms_list_samples(ms_node_ctx *c, ms_entry_fn add, void *data)
{
	ms_target_view v;

	if (!c->t)
		return;
	ms_target_get_view(c->t, &v);
	for (uint64_t seq = v.first_seq; seq && seq <= v.last_seq; seq++) {
		char name[24];
		snprintf(name, sizeof(name), "%" PRIu64, seq);
		add(name, (ms_node_ref){c->row, ms_target_id(c->t), (uint32_t)seq}, S_IFREG, data);
	}
}

int ms_lookup_sample(ms_node_ctx *c, const char *name, uint32_t *id, uint32_t *idx)
{
	(void)c;
	(void)id;
	return parse_seq(name, idx) ? 0 : -ENOENT;
}

int ms_attr_sample(ms_node_ctx *c, ms_node_attr *a)
{
	g_autoptr(ms_sample) s = ms_target_get_sample(c->t, c->idx);

	if (!s)
		return -ENOENT;
	a->mtime = (time_t)(s->m.start_ms / 1000);
	a->size = (off_t)s->text_len;
	return 0;
}

int ms_render_latest(ms_node_ctx *c, char **out)
{
	g_autoptr(ms_sample) s = ms_target_get_sample(c->t, 0);

	if (!s)
		return -ENOENT;
	*out = g_strdup_printf("%" PRIu64, s->seq);
	return 0;
}

int ms_attr_latest(ms_node_ctx *c, ms_node_attr *a)
{
	g_autoptr(ms_sample) s = ms_target_get_sample(c->t, 0);

	if (!s)
		return -ENOENT;
	a->mtime = (time_t)(s->m.start_ms / 1000);
	a->size = snprintf(NULL, 0, "%" PRIu64, s->seq);
	return 0;
}

/* ---- a process's memory/ ---- */

int ms_render_memory(ms_node_ctx *c, char **out)
{
	GPtrArray *names = ms_process_memory_names();
	g_autofree char *status = NULL;
	int r;

	if (c->idx >= names->len)
		return -ENOENT;
	if ((r = ms_process_status_text(ms_target_state(c->t), &status)) < 0)
		return r;
	return ms_status_memory_value(status, g_ptr_array_index(names, c->idx), out);
}

void ms_list_memory(ms_node_ctx *c, ms_entry_fn add, void *data)
{
	GPtrArray *known = ms_process_memory_names();
	g_autofree char *status = NULL;

	if (!c->t || ms_process_status_text(ms_target_state(c->t), &status) < 0)
		return; /* the process is gone: nothing to show */
	g_autoptr(GPtrArray) names = ms_status_memory_names(status);
	for (guint i = 0; i < names->len; i++) {
		uint32_t idx;
		if (index_of(known, g_ptr_array_index(names, i), &idx))
			add(g_ptr_array_index(names, i),
			    (ms_node_ref){c->row, ms_target_id(c->t), idx}, S_IFREG, data);
	}
}

int ms_lookup_memory(ms_node_ctx *c, const char *name, uint32_t *id, uint32_t *idx)
{
	g_autofree char *status = NULL;
	g_autofree char *value = NULL;

	(void)id;
	if (!c->t || !index_of(ms_process_memory_names(), name, idx))
		return -ENOENT;
	/* Only the fields this process shows now. */
	if (ms_process_status_text(ms_target_state(c->t), &status) < 0 ||
	    ms_status_memory_value(status, name, &value) < 0)
		return -ENOENT;
	return 0;
}

int ms_attr_memory(ms_node_ctx *c, ms_node_attr *a)
{
	(void)a;
	return c->idx < ms_process_memory_names()->len ? 0 : -ENOENT;
}

/* ---- a VM's files ---- */

/* QEMU's pid as the caller's own /proc would let it know it: 0 (as for a
 * QEMU the daemon cannot see) when /proc's hidepid= hides that process
 * from the caller. */
static int render_pid(ms_node_ctx *c, pid_t pid, char **out)
{
	if (pid > 0 && c->caller && !ms_target_owned_by(c->t, c->caller) &&
	    ms_caller_may_see_process(pid, c->caller, false) < 0)
		pid = 0;
	*out = g_strdup_printf("%d\n", (int)pid);
	return 0;
}

int ms_render_libvirt_qemu_pid(ms_node_ctx *c, char **out)
{
	return render_pid(c, ms_libvirt_qemu_pid(ms_target_state(c->t)), out);
}

int ms_render_qemu_pid(ms_node_ctx *c, char **out)
{
	return render_pid(c, ms_qemu_pid(ms_target_state(c->t)), out);
}

int ms_render_socket(ms_node_ctx *c, char **out)
{
	*out = g_strdup_printf("%s\n", ms_qemu_socket(ms_target_state(c->t)));
	return 0;
}

void ms_list_vcpus(ms_node_ctx *c, ms_entry_fn add, void *data)
{
	g_autoptr(ms_sample) s = c->t ? ms_target_get_sample(c->t, 0) : NULL;

	for (uint32_t i = 0; s && i < s->m.vcpus; i++) {
		char name[16];
		snprintf(name, sizeof(name), "%" PRIu32, s->m.vcpu[i].id);
		add(name, (ms_node_ref){c->row, ms_target_id(c->t), s->m.vcpu[i].id}, S_IFDIR,
		    data);
	}
}

int ms_lookup_vcpu(ms_node_ctx *c, const char *name, uint32_t *id, uint32_t *idx)
{
	(void)c;
	(void)id;
	if (strcmp(name, "0") == 0) {
		*idx = 0;
		return 0;
	}
	return parse_seq(name, idx) ? 0 : -ENOENT;
}

int ms_attr_vcpu(ms_node_ctx *c, ms_node_attr *a)
{
	g_autoptr(ms_sample) s = ms_target_get_sample(c->t, 0);

	(void)a;
	return ms_sample_vcpu(s, c->idx) ? 0 : -ENOENT;
}

int ms_render_vcpu_rate(ms_node_ctx *c, char **out)
{
	ms_target_view v;

	ms_target_get_view(c->t, &v);
	if (v.state == MS_STATE_EXITED)
		return -ESRCH;
	g_autoptr(ms_sample) s = ms_target_get_sample(c->t, 0);
	const ms_vcpu_rate *cpu = ms_sample_vcpu(s, c->idx);
	if (!cpu)
		return -ENOENT;
	*out = g_strdup_printf("%.2f\n", cpu->rate);
	return 0;
}

/* ---- a container's files ---- */

int ms_render_pids(ms_node_ctx *c, char **out)
{
	return ms_cgroup_pids_text(ms_target_state(c->t), out);
}

/* memory/'s names as seen so far, for indices: only ever appended to. */
static GPtrArray *cg_names;
static GMutex cg_names_lock; /* guards cg_names */

static uint32_t cg_name_index(const char *name)
{
	uint32_t idx;

	g_mutex_lock(&cg_names_lock);
	if (!cg_names)
		cg_names = g_ptr_array_new_with_free_func(g_free);
	if (!index_of(cg_names, name, &idx)) {
		idx = cg_names->len;
		g_ptr_array_add(cg_names, g_strdup(name));
	}
	g_mutex_unlock(&cg_names_lock);
	return idx;
}

static char *cg_name_at(uint32_t idx)
{
	char *name = NULL;

	g_mutex_lock(&cg_names_lock);
	if (cg_names && idx < cg_names->len)
		name = g_strdup(g_ptr_array_index(cg_names, idx));
	g_mutex_unlock(&cg_names_lock);
	return name;
}

int ms_render_cgroup_memory(ms_node_ctx *c, char **out)
{
	g_autofree char *name = cg_name_at(c->idx);

	return name ? ms_cgroup_memory_value(ms_target_state(c->t), name, out) : -ENOENT;
}

void ms_list_cgroup_memory(ms_node_ctx *c, ms_entry_fn add, void *data)
{
	if (!c->t)
		return;
	g_autoptr(GPtrArray) names = ms_cgroup_memory_names(ms_target_state(c->t));
	for (guint i = 0; i < names->len; i++) {
		const char *n = g_ptr_array_index(names, i);
		add(n, (ms_node_ref){c->row, ms_target_id(c->t), cg_name_index(n)}, S_IFREG, data);
	}
}

int ms_lookup_cgroup_memory(ms_node_ctx *c, const char *name, uint32_t *id, uint32_t *idx)
{
	g_autofree char *value = NULL;

	(void)id;
	if (!c->t || ms_cgroup_memory_value(ms_target_state(c->t), name, &value) < 0)
		return -ENOENT;
	*idx = cg_name_index(name);
	return 0;
}

int ms_render_pressure(ms_node_ctx *c, char **out)
{
	if (c->idx >= g_strv_length((char **)ms_cgroup_pressure_names))
		return -ENOENT;
	return ms_cgroup_pressure_value(ms_target_state(c->t), ms_cgroup_pressure_names[c->idx],
					out);
}

void ms_list_pressure(ms_node_ctx *c, ms_entry_fn add, void *data)
{
	if (!c->t || !ms_cgroup_has_pressure(ms_target_state(c->t)))
		return;
	for (uint32_t i = 0; ms_cgroup_pressure_names[i]; i++)
		add(ms_cgroup_pressure_names[i], (ms_node_ref){c->row, ms_target_id(c->t), i},
		    S_IFREG, data);
}

int ms_lookup_pressure(ms_node_ctx *c, const char *name, uint32_t *id, uint32_t *idx)
{
	(void)id;
	if (!c->t || !ms_cgroup_has_pressure(ms_target_state(c->t)))
		return -ENOENT;
	for (uint32_t i = 0; ms_cgroup_pressure_names[i]; i++)
		if (strcmp(ms_cgroup_pressure_names[i], name) == 0) {
			*idx = i;
			return 0;
		}
	return -ENOENT;
}

/* ---- growth and migration/ ---- */

int ms_render_growth(ms_node_ctx *c, char **out)
{
	ms_forecast_view fv;
	GString *s = g_string_new(NULL);

	ms_target_forecast(c->t, true, &fv);
	for (uint32_t i = 0; fv.have_curve && i < fv.curve.n; i++) {
		const ms_growth_step_point *p = &fv.curve.point[i];
		g_string_append_printf(s, "%.3f %.0f %.2f %.0f %.0f\n", p->t_s, p->pages,
				       p->pages * fv.curve.page_size / 1048576.0, p->ci95_low,
				       p->ci95_high);
	}
	*out = g_string_free(s, FALSE);
	return 0;
}

int ms_render_migration_setting(ms_node_ctx *c, char **out)
{
	ms_target_view v;
	const char *n = c->node->name;

	ms_target_get_view(c->t, &v);
	if (strcmp(n, "bandwidth") == 0)
		*out = g_strdup_printf("%" PRIu64 "\n", v.settings.bandwidth);
	else if (strcmp(n, "downtime_ms") == 0)
		*out = g_strdup_printf("%u\n", v.settings.downtime_ms);
	else if (strcmp(n, "max_total_s") == 0)
		*out = g_strdup_printf("%u\n", v.settings.max_total_s);
	else
		*out = g_strdup_printf("%" PRIu64 "\n", v.settings.link_bandwidth);
	return 0;
}

/* A figure: "inf" when the model found none. */
static void figure(GString *s, double v, int decimals)
{
	if (isinf(v))
		g_string_append(s, "inf");
	else
		g_string_append_printf(s, "%.*f", decimals, v);
}

typedef double (*run_field)(const ms_precopy_run *r);
static double f_iterations(const ms_precopy_run *r)
{
	return r->iterations;
}
static double f_total_s(const ms_precopy_run *r)
{
	return r->total_s;
}
static double f_downtime(const ms_precopy_run *r)
{
	return r->downtime_ms;
}
static double f_transferred(const ms_precopy_run *r)
{
	return r->transferred_bytes;
}
static double f_min_bandwidth(const ms_precopy_run *r)
{
	return r->min_bandwidth;
}
static double f_min_downtime(const ms_precopy_run *r)
{
	return r->min_downtime_ms;
}

/* The results: "ESTIMATE LOW HIGH", the model run on the curve's
 * estimates, on its ci95_low bounds (optimistic) and its ci95_high ones. */
static const struct {
	const char *name;
	run_field get;
	int decimals;
} results[] = {
	{"iterations", f_iterations, 0},	 {"total_s", f_total_s, 2},
	{"downtime_ms_expected", f_downtime, 1}, {"transferred_bytes", f_transferred, 0},
	{"min_bandwidth", f_min_bandwidth, 0},	 {"min_downtime_ms", f_min_downtime, 1},
};

int ms_render_migration(ms_node_ctx *c, char **out)
{
	const char *n = c->node->name;
	ms_forecast_view fv;

	if (strcmp(n, "model") == 0) {
		*out = g_strdup(ms_precopy_model_text());
		return 0;
	}
	ms_target_forecast(c->t, true, &fv);
	if (strcmp(n, "verdict") == 0) {
		ms_precopy_verdict v = fv.have_forecast ? fv.f.verdict : MS_PRECOPY_NOT_ENOUGH_DATA;
		*out = g_strdup_printf("%s\n", ms_precopy_verdict_to_string(v));
		return 0;
	}
	for (size_t i = 0; i < G_N_ELEMENTS(results); i++) {
		if (strcmp(n, results[i].name) != 0)
			continue;
		if (!fv.have_forecast)
			return -ENODATA;
		GString *s = g_string_new(NULL);
		const ms_growth_which order[] = {MS_GROWTH_ESTIMATE, MS_GROWTH_LOW, MS_GROWTH_HIGH};
		for (size_t w = 0; w < G_N_ELEMENTS(order); w++) {
			if (w)
				g_string_append_c(s, ' ');
			figure(s, results[i].get(&fv.f.run[order[w]]), results[i].decimals);
		}
		g_string_append_c(s, '\n');
		*out = g_string_free(s, FALSE);
		return 0;
	}
	return -ENOENT;
}
