/* cgroup_files.c: what a cgroup target's files read (cgroup.h):
 * memory/ from the cgroup's memory controller (v2's names, v1's mapped to
 * them where they mean the same) and pressure/ from v2's memory.pressure.
 * Each read is fresh from the cgroup's own files; nothing is cached.
 */
#define _GNU_SOURCE
#include "memstat/sources/cgroup.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "memstat/methods/fail.h"
#include "memstat/methods/proc.h"

#include "cgroup_state.h"

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
