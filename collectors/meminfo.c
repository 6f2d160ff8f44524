/* meminfo.c: /proc/meminfo and the overcommit settings, one value per name. */
#include "memstat/meminfo.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "memstat/procfs.h"

static const char *const overcommit_files[3] = {
	"/proc/sys/vm/overcommit_memory",
	"/proc/sys/vm/overcommit_ratio",
	"/proc/sys/vm/overcommit_kbytes",
};
static const char *const overcommit_names[3] = {
	"overcommit_memory",
	"overcommit_ratio",
	"overcommit_kbytes",
};

GPtrArray *ms_meminfo_names(void)
{
	g_autofree char *text = NULL;

	if (ms_read_file("/proc/meminfo", &text, NULL) < 0)
		return NULL;
	g_autoptr(GArray) fields = ms_parse_fields(text);
	GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
	for (guint i = 0; i < fields->len; i++) {
		char name[64];
		if (ms_field_file_name(g_array_index(fields, ms_field, i).name, name, sizeof(name)))
			g_ptr_array_add(names, g_strdup(name));
	}
	for (int i = 0; i < 3; i++)
		g_ptr_array_add(names, g_strdup(overcommit_names[i]));
	g_ptr_array_add(names, g_strdup("used"));
	g_ptr_array_add(names, g_strdup("commit_percent"));
	return names;
}

/* The field whose file name is name, or NULL. */
static const ms_field *find_by_file_name(GArray *fields, const char *name)
{
	for (guint i = 0; i < fields->len; i++) {
		const ms_field *f = &g_array_index(fields, ms_field, i);
		char fname[64];
		if (ms_field_file_name(f->name, fname, sizeof(fname)) && strcmp(fname, name) == 0)
			return f;
	}
	return NULL;
}

static bool field_u64(GArray *fields, const char *kname, uint64_t *out)
{
	const ms_field *f = ms_fields_find(fields, kname);
	char *end;

	if (!f)
		return false;
	*out = strtoull(f->value, &end, 10);
	return *end == '\0';
}

int ms_meminfo_value_from(const char *name, const char *meminfo, const char *const overcommit[3],
			  char **text)
{
	g_autoptr(GArray) fields = ms_parse_fields(meminfo);
	const ms_field *f;
	uint64_t a, b;

	for (int i = 0; i < 3; i++) {
		if (strcmp(name, overcommit_names[i]) == 0) {
			const char *v = overcommit[i] ? overcommit[i] : "";
			size_t len = strcspn(v, "\n");
			if (len == 0)
				return -EIO;
			*text = g_strdup_printf("%.*s\n", (int)len, v);
			return 0;
		}
	}
	if (strcmp(name, "used") == 0) {
		/* procps 4's free: used = MemTotal - MemAvailable */
		if (!field_u64(fields, "MemTotal", &a) || !field_u64(fields, "MemAvailable", &b))
			return -EIO;
		*text = g_strdup_printf("%" PRIu64 "\n", a > b ? a - b : 0);
		return 0;
	}
	if (strcmp(name, "commit_percent") == 0) {
		if (!field_u64(fields, "Committed_AS", &a) ||
		    !field_u64(fields, "CommitLimit", &b) || b == 0)
			return -EIO;
		*text = g_strdup_printf("%.2f\n", (double)a * 100.0 / (double)b);
		return 0;
	}
	f = find_by_file_name(fields, name);
	if (!f)
		return -ENOENT;
	*text = g_strdup_printf("%s\n", f->value);
	return 0;
}

int ms_meminfo_value(const char *name, char **text)
{
	g_autofree char *meminfo = NULL;
	char *oc[3] = {NULL, NULL, NULL};
	int r = ms_read_file("/proc/meminfo", &meminfo, NULL);

	if (r < 0)
		return r;
	for (int i = 0; i < 3; i++)
		if (strcmp(name, overcommit_names[i]) == 0 &&
		    (r = ms_read_file(overcommit_files[i], &oc[i], NULL)) < 0)
			return r;
	r = ms_meminfo_value_from(name, meminfo, (const char *const *)oc, text);
	for (int i = 0; i < 3; i++)
		g_free(oc[i]);
	return r;
}

static bool is_memory_field(const char *kname)
{
	return g_str_has_prefix(kname, "Vm") || g_str_has_prefix(kname, "Rss");
}

GPtrArray *ms_status_memory_names(const char *status_text)
{
	g_autoptr(GArray) fields = ms_parse_fields(status_text);
	GPtrArray *names = g_ptr_array_new_with_free_func(g_free);

	for (guint i = 0; i < fields->len; i++) {
		const ms_field *f = &g_array_index(fields, ms_field, i);
		char name[64];
		if (is_memory_field(f->name) && ms_field_file_name(f->name, name, sizeof(name)))
			g_ptr_array_add(names, g_strdup(name));
	}
	return names;
}

int ms_status_memory_value(const char *status_text, const char *name, char **text)
{
	g_autoptr(GArray) fields = ms_parse_fields(status_text);

	for (guint i = 0; i < fields->len; i++) {
		const ms_field *f = &g_array_index(fields, ms_field, i);
		char fname[64];
		if (is_memory_field(f->name) && ms_field_file_name(f->name, fname, sizeof(fname)) &&
		    strcmp(fname, name) == 0) {
			*text = g_strdup_printf("%s\n", f->value);
			return 0;
		}
	}
	return -ENOENT;
}
