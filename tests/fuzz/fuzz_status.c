/* fuzz_status.c: /proc/PID/status and the "Name: value [kB]" field syntax
 * it shares with /proc/meminfo (ms_parse_fields, ms_fields_find,
 * ms_field_file_name, ms_parse_status_ids, ms_status_memory_names,
 * ms_status_memory_value).
 *
 * The input is the file's text, NUL-terminated as ms_read_file gives it.
 * Every name ms_status_memory_names lists must have a value.
 */
#include <ctype.h>
#include <errno.h>
#include <glib.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "memstat/methods/meminfo.h"
#include "memstat/methods/procfs.h"
#include "memstat/methods/userfault.h"

/* ms_field_file_name into a buffer of exactly outlen bytes. */
static void check_file_name(const char *field, size_t outlen)
{
	char *out = malloc(outlen);
	if (!ms_field_file_name(field, out, outlen)) {
		free(out);
		return;
	}
	size_t n = strnlen(out, outlen);
	FUZZ_CHECK(n > 0 && n < outlen);
	FUZZ_CHECK(out[n - 1] != '_');
	for (size_t i = 0; i < n; i++)
		FUZZ_CHECK(out[i] != '(' && out[i] != ')' && !isupper((unsigned char)out[i]));
	free(out);
}

static void check_fields(const char *text)
{
	GArray *fields = ms_parse_fields(text);

	for (guint i = 0; i < fields->len && i < 256; i++) {
		const ms_field *f = &g_array_index(fields, ms_field, i);
		FUZZ_CHECK(memchr(f->name, '\0', sizeof(f->name)) && f->name[0] != '\0');
		FUZZ_CHECK(memchr(f->value, '\0', sizeof(f->value)) && f->value[0] != '\0');
		FUZZ_CHECK(strchr(f->name, '\n') == NULL && strchr(f->name, ':') == NULL);
		for (const char *v = f->value; *v; v++)
			FUZZ_CHECK(isdigit((unsigned char)*v));
		const ms_field *found = ms_fields_find(fields, f->name);
		FUZZ_CHECK(found && found <= f && strcmp(found->name, f->name) == 0);
		check_file_name(f->name, 64);
		check_file_name(f->name, 6);
	}
	FUZZ_CHECK(ms_fields_find(fields, "") == NULL);
	g_array_unref(fields);
}

static void check_memory(const char *text)
{
	GPtrArray *names = ms_status_memory_names(text);

	for (guint i = 0; i < names->len && i < 256; i++) {
		const char *name = g_ptr_array_index(names, i);
		char *value = NULL;
		FUZZ_CHECK(ms_status_memory_value(text, name, &value) == 0);
		size_t len = strlen(value);
		FUZZ_CHECK(len >= 2 && value[len - 1] == '\n');
		g_free(value);
	}
	g_ptr_array_unref(names);
	char *value = NULL;
	FUZZ_CHECK(ms_status_memory_value(text, "no_such_field", &value) == -ENOENT);
	FUZZ_CHECK(value == NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_cstr(data, size);

	check_fields(text);
	check_memory(text);
	static const char *const keys[] = {"Uid", "Gid"};
	for (size_t k = 0; k < G_N_ELEMENTS(keys); k++) {
		unsigned ids[4];
		int r = ms_parse_status_ids(text, keys[k], ids);
		FUZZ_CHECK(r == 0 || r == -EINVAL);
	}
	uint64_t switches;
	int v = ms_parse_voluntary_switches(text, &switches);
	FUZZ_CHECK(v == 0 || v == -EINVAL);
	/* The whole input as a field name, into buffers of several sizes. */
	for (size_t outlen = 0; outlen <= 64; outlen += outlen < 4 ? 1 : 20)
		check_file_name(text, outlen);
	free(text);
	return 0;
}
