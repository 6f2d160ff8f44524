/* tree_files.c: what the tree's nodes show (tree_files.h).
 *
 * Files are rendered whole per open (the FUSE layer keeps the text for the
 * reads that follow); a sample's text was rendered once when it was
 * published.
 */
#include "memstat/core/tree_files.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "memstat/core/metrics.h"
#include "memstat/methods/meminfo.h"
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
		ms_target_get_view(t, &v);
		g_string_append(s, ms_target_ident(t)->key);
		if (ms_target_source(t)->named)
			g_string_append_printf(s, " name=%s", ms_target_name(t));
		g_string_append_printf(s, " period=%u sample_pages=%u mode=%s\n",
				       v.settings.period_s, v.settings.sample_pages,
				       v.settings.mode);
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
		add(ms_target_name(t), (ms_node_ref){c->row, ms_target_id(t), 0}, S_IFDIR, data);
	}
}

int ms_lookup_target(ms_node_ctx *c, const char *name, uint32_t *id, uint32_t *idx)
{
	g_autoptr(ms_target) t = c->reg ? ms_registry_lookup(c->reg, name) : NULL;

	if (!t)
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

int ms_render_libvirt_qemu_pid(ms_node_ctx *c, char **out)
{
	*out = g_strdup_printf("%d\n", (int)ms_libvirt_qemu_pid(ms_target_state(c->t)));
	return 0;
}

int ms_render_qemu_pid(ms_node_ctx *c, char **out)
{
	*out = g_strdup_printf("%d\n", (int)ms_qemu_pid(ms_target_state(c->t)));
	return 0;
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
