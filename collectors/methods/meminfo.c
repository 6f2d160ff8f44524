/* meminfo.c: /proc/meminfo and the overcommit settings, one value per name. */
#include "memstat/methods/meminfo.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "memstat/methods/procfs.h"

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

/* /proc/meminfo stays open, read again from offset 0 each time: a third
 * cheaper than opening it every time, and `meminfo/` files are the most
 * read in the tree.  One descriptor for every thread (the kernel serializes
 * reads of it), opened once, never closed. */
static int meminfo_fd = -1;
static pthread_once_t meminfo_once = PTHREAD_ONCE_INIT;

static void open_meminfo(void)
{
	meminfo_fd = open("/proc/meminfo", O_RDONLY | O_CLOEXEC);
}

static int read_meminfo(char **out)
{
	char buf[16384];

	pthread_once(&meminfo_once, open_meminfo);
	ssize_t n = meminfo_fd < 0 ? -1 : pread(meminfo_fd, buf, sizeof(buf) - 1, 0);
	if (n < 0 || (size_t)n >= sizeof(buf) - 1) /* an error, or more than fits */
		return ms_read_file("/proc/meminfo", out, NULL);
	*out = g_strndup(buf, (gsize)n);
	return 0;
}

/* The value of the field kname (a kernel name): 0, -ENOENT when there is
 * no such field, -EIO when it is not a number of at most 64 bits. */
static int field_u64(GArray *fields, const char *kname, uint64_t *out)
{
	const ms_field *f = ms_fields_find(fields, kname);
	char *end;

	if (!f)
		return -ENOENT;
	if (!g_ascii_isdigit(f->value[0]))
		return -EIO;
	errno = 0;
	*out = strtoull(f->value, &end, 10);
	return *end == '\0' && errno == 0 ? 0 : -EIO;
}

GPtrArray *ms_meminfo_names(void)
{
	g_autofree char *text = NULL;

	if (read_meminfo(&text) < 0)
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
	/* The derived figures where this kernel has what they come from. */
	uint64_t v;
	if (field_u64(fields, "MemTotal", &v) != -ENOENT &&
	    field_u64(fields, "MemAvailable", &v) != -ENOENT)
		g_ptr_array_add(names, g_strdup("used"));
	if (field_u64(fields, "Committed_AS", &v) != -ENOENT &&
	    field_u64(fields, "CommitLimit", &v) != -ENOENT)
		g_ptr_array_add(names, g_strdup("commit_percent"));
	return names;
}

/* The field of one line of meminfo whose file name is name, parsed by the
 * same rules as every other (ms_parse_fields), without parsing the rest:
 * most lines are told apart by their first letter. */
static bool field_named(const char *meminfo, const char *name, ms_field *out)
{
	for (const char *line = meminfo; line && *line;) {
		const char *nl = strchr(line, '\n');
		if (tolower((unsigned char)line[0]) == name[0]) {
			g_autofree char *one =
				nl ? g_strndup(line, (gsize)(nl - line)) : g_strdup(line);
			g_autoptr(GArray) f = ms_parse_fields(one);
			char fname[64];
			if (f->len == 1 &&
			    ms_field_file_name(g_array_index(f, ms_field, 0).name, fname,
					       sizeof(fname)) &&
			    strcmp(fname, name) == 0) {
				*out = g_array_index(f, ms_field, 0);
				return true;
			}
		}
		line = nl ? nl + 1 : NULL;
	}
	return false;
}

/* The values of the fields named ka and kb (kernel names): 0, -ENOENT
 * (one is missing: the kernel has no such figure, so neither has the one
 * derived from it), -EIO (one is not a number). */
static int two_fields(const char *meminfo, const char *ka, const char *kb, uint64_t *a, uint64_t *b)
{
	g_autoptr(GArray) fields = ms_parse_fields(meminfo);
	int r = field_u64(fields, ka, a);

	return r < 0 ? r : field_u64(fields, kb, b);
}

int ms_meminfo_value_from(const char *name, const char *meminfo, const char *const overcommit[3],
			  char **text)
{
	uint64_t a, b;
	ms_field one;

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
	int r;
	if (strcmp(name, "used") == 0) {
		/* procps 4's free: used = MemTotal - MemAvailable (0 when
		 * MemAvailable is larger, as free prints it) */
		if ((r = two_fields(meminfo, "MemTotal", "MemAvailable", &a, &b)) < 0)
			return r;
		*text = g_strdup_printf("%" PRIu64 "\n", a > b ? a - b : 0);
		return 0;
	}
	if (strcmp(name, "commit_percent") == 0) {
		/* Committed_AS x 100 / CommitLimit.  A CommitLimit of 0
		 * (vm.overcommit_ratio=0 without swap, overcommit_kbytes
		 * unset) counts as 1 kB, the least meminfo can show: 0.00
		 * when nothing is committed, else a figure far above 100,
		 * which is where the commit stands against that limit.  The
		 * file stays a number for scripts and alerts (never EIO, inf
		 * or nan). */
		if ((r = two_fields(meminfo, "Committed_AS", "CommitLimit", &a, &b)) < 0)
			return r;
		*text = g_strdup_printf("%.2f\n", (double)a * 100.0 / (double)(b ? b : 1));
		return 0;
	}
	if (!field_named(meminfo, name, &one))
		return -ENOENT;
	*text = g_strdup_printf("%s\n", one.value);
	return 0;
}

int ms_meminfo_value(const char *name, char **text)
{
	g_autofree char *meminfo = NULL;
	char *oc[3] = {NULL, NULL, NULL};
	int r = read_meminfo(&meminfo);

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
