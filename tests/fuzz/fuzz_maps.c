/* fuzz_maps.c: /proc/PID/maps (ms_parse_maps, ms_parse_maps_line).
 *
 * The input is the file's text, NUL-terminated as ms_read_file gives it.
 * The whole-file parser must agree with the line parser run line by line:
 * it fails exactly when some line is malformed, and otherwise keeps the
 * writable, non-empty mappings, in order.
 */
#include <errno.h>
#include <glib.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "memstat/methods/procfs.h"

/* The same text as /proc/PID/smaps: the mappings userfaultfd serves agree
 * with the one-address question. */
static void check_smaps_uffd(const char *text)
{
	GArray *uffd = ms_parse_smaps_uffd_ranges(text);
	if (!uffd) {
		FUZZ_CHECK(ms_parse_smaps_uffd(text, 0) == -EINVAL);
		return;
	}
	for (guint i = 0; i < uffd->len; i++) {
		const ms_vma *v = &g_array_index(uffd, ms_vma, i);
		if (v->start < v->end)
			FUZZ_CHECK(ms_parse_smaps_uffd(text, v->start) == 1);
	}
	g_array_unref(uffd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_cstr(data, size);
	check_smaps_uffd(text);
	int err = 0;
	GArray *vmas = ms_parse_maps(text, &err);

	/* The same, one line at a time. */
	GArray *expect = g_array_new(FALSE, FALSE, sizeof(ms_vma));
	bool malformed = false;
	for (const char *line = text; *line;) {
		ms_vma v;
		int r = ms_parse_maps_line(line, &v);
		FUZZ_CHECK(r == 1 || r == 0 || r == -EINVAL);
		if (r < 0) {
			malformed = true;
			break;
		}
		if (r == 1) {
			FUZZ_CHECK(v.end >= v.start);
			if (v.end > v.start)
				g_array_append_val(expect, v);
		}
		const char *nl = strchr(line, '\n');
		if (!nl)
			break;
		line = nl + 1;
	}

	if (malformed) {
		FUZZ_CHECK(vmas == NULL);
		FUZZ_CHECK(err == -EINVAL);
	} else {
		FUZZ_CHECK(vmas != NULL);
		FUZZ_CHECK(vmas->len == expect->len);
		for (guint i = 0; i < vmas->len; i++) {
			const ms_vma *a = &g_array_index(vmas, ms_vma, i);
			const ms_vma *b = &g_array_index(expect, ms_vma, i);
			FUZZ_CHECK(a->start == b->start && a->end == b->end &&
				   a->shared == b->shared);
			FUZZ_CHECK(a->end > a->start);
		}
		g_array_unref(vmas);
	}
	g_array_unref(expect);
	free(text);
	return 0;
}
