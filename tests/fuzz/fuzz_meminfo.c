/* fuzz_meminfo.c: /proc/meminfo and the overcommit settings, as the
 * meminfo/ files (ms_meminfo_value_from) and the metrics file
 * (ms_metrics_render_texts, without a registry or caller) read them, and
 * /proc/pressure/memory (PSI) as the metrics file reads it.
 *
 * The input is up to five texts separated by NUL bytes: /proc/meminfo, then
 * /proc/sys/vm/overcommit_memory, overcommit_ratio and overcommit_kbytes,
 * then /proc/pressure/memory (missing ones are NULL, as when they cannot be
 * read).  Every name asked
 * for: the file name of each field of the input, the derived names, and one
 * that does not exist.
 */
#include <errno.h>
#include <math.h>
#include <glib.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "memstat/methods/meminfo.h"
#include "memstat/core/metrics.h"
#include "memstat/methods/procfs.h"

#define MAX_NAMES 64

static void value(const char *name, const char *meminfo, const char *const oc[3])
{
	char *text = NULL;
	int r = ms_meminfo_value_from(name, meminfo, oc, &text);

	FUZZ_CHECK(r == 0 || r == -ENOENT || r == -EIO);
	if (r < 0) {
		FUZZ_CHECK(text == NULL);
		return;
	}
	size_t len = strlen(text);
	FUZZ_CHECK(len >= 2 && text[len - 1] == '\n');
	FUZZ_CHECK(memchr(text, '\n', len - 1) == NULL);
	/* A derived figure is a plain number: digits, at most one point
	 * (never inf, nan or a sign), whatever its inputs. */
	if (strcmp(name, "used") == 0 || strcmp(name, "commit_percent") == 0) {
		size_t digits = strspn(text, "0123456789");
		FUZZ_CHECK(digits > 0);
		if (text[digits] == '.')
			digits += 1 + strspn(text + digits + 1, "0123456789");
		FUZZ_CHECK(text[digits] == '\n');
	}
	g_free(text);
}

/* A field's value as meminfo/ parses it: 1 with *v, 0 when missing or not
 * a number. */
static int number(GArray *fields, const char *kname, unsigned long long *v)
{
	const ms_field *f = ms_fields_find(fields, kname);
	char *end;

	if (!f || f->value[0] < '0' || f->value[0] > '9')
		return 0;
	errno = 0;
	*v = strtoull(f->value, &end, 10);
	return !*end && !errno;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = fuzz_cstr(data, size);
	const char *meminfo = buf;
	const char *more[4] = {NULL, NULL, NULL, NULL};
	const char *p = buf + strlen(buf);

	for (int i = 0; i < 4 && p < buf + size; i++) {
		more[i] = p + 1;
		p = more[i] + strlen(more[i]);
	}
	const char *oc[3] = {more[0], more[1], more[2]};

	static const char *const derived[] = {"overcommit_memory", "overcommit_ratio",
					      "overcommit_kbytes", "used", "commit_percent",
					      "no_such_field"};
	for (size_t i = 0; i < G_N_ELEMENTS(derived); i++)
		value(derived[i], meminfo, oc);
	GArray *fields = ms_parse_fields(meminfo);
	for (guint i = 0; i < fields->len && i < MAX_NAMES; i++) {
		char name[64];
		if (ms_field_file_name(g_array_index(fields, ms_field, i).name, name, sizeof(name)))
			value(name, meminfo, oc);
	}
	/* Inputs at their edges give a figure, never an error: a CommitLimit
	 * of 0 (overcommit_ratio=0 without swap), a MemAvailable above
	 * MemTotal, values up to 64 bits. */
	unsigned long long a, b;
	char *t = NULL;
	if (number(fields, "Committed_AS", &a) && number(fields, "CommitLimit", &b)) {
		FUZZ_CHECK(ms_meminfo_value_from("commit_percent", meminfo, oc, &t) == 0);
		g_free(t);
		t = NULL;
	}
	if (number(fields, "MemTotal", &a) && number(fields, "MemAvailable", &b)) {
		FUZZ_CHECK(ms_meminfo_value_from("used", meminfo, oc, &t) == 0);
		FUZZ_CHECK(strtoull(t, NULL, 10) == (a > b ? a - b : 0));
		g_free(t);
	}
	g_array_unref(fields);

	ms_metrics_texts in = {
		.meminfo = meminfo, .overcommit = {oc[0], oc[1], oc[2]}, .pressure = more[3]};
	char *metrics = ms_metrics_render_texts(NULL, NULL, &in);
	FUZZ_CHECK(metrics != NULL);
	/* Every line a comment or "name value", newline-terminated. */
	size_t mlen = strlen(metrics);
	FUZZ_CHECK(mlen > 0 && metrics[mlen - 1] == '\n');
	for (const char *l = metrics; *l; l = strchr(l, '\n') + 1) {
		FUZZ_CHECK(l[0] == '#' || strncmp(l, "memstat_", 8) == 0);
		if (l[0] == '#')
			continue;
		/* The value: a number Prometheus reads; no host figure is NaN
		 * or negative, however large or odd its input. */
		const char *nl = strchr(l, '\n'), *sp = nl;
		while (sp > l && sp[-1] != ' ')
			sp--;
		FUZZ_CHECK(sp > l && sp < nl);
		char *end;
		double v = g_ascii_strtod(sp, &end);
		FUZZ_CHECK(end == nl || strncmp(sp, "+Inf\n", 5) == 0);
		FUZZ_CHECK(!isnan(v) && v >= 0);
	}
	g_free(metrics);
	free(buf);
	return 0;
}
