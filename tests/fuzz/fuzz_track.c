/* fuzz_track.c: the control-file grammar (include/memstat/core/settings.h).
 *
 * Every input goes, as the bytes of one write (not NUL-terminated), to
 * ms_parse_track, to ms_parse_setting for each settings file, to
 * ms_parse_name; and, NUL-terminated, to ms_check_name.  A parsed track
 * request is written back out and parsed again: it must come back the same.
 */
#include <errno.h>
#include <inttypes.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "memstat/core/settings.h"
#include "memstat/sources/cgroup.h"
#include "memstat/sources/libvirt.h"
#include "memstat/sources/process.h"
#include "memstat/sources/qemu.h"

static bool terminated(const char *s, size_t size)
{
	return memchr(s, '\0', size) != NULL;
}

static void check_change(const ms_settings_change *c)
{
	if (c->has_period)
		FUZZ_CHECK(c->v.period_s >= MS_PERIOD_MIN && c->v.period_s <= MS_PERIOD_MAX);
	if (c->has_sample_pages)
		FUZZ_CHECK(c->v.sample_pages >= MS_SAMPLE_PAGES_MIN &&
			   c->v.sample_pages <= MS_SAMPLE_PAGES_MAX);
	if (c->has_mode) {
		FUZZ_CHECK(terminated(c->v.mode, sizeof(c->v.mode)));
		FUZZ_CHECK(c->v.mode[0] != '\0');
		FUZZ_CHECK(ms_mode_known(c->v.mode));
	}
}

static bool same_change(const ms_settings_change *a, const ms_settings_change *b)
{
	return a->has_period == b->has_period && a->has_sample_pages == b->has_sample_pages &&
	       a->has_mode == b->has_mode && (!a->has_period || a->v.period_s == b->v.period_s) &&
	       (!a->has_sample_pages || a->v.sample_pages == b->v.sample_pages) &&
	       (!a->has_mode || strcmp(a->v.mode, b->v.mode) == 0) &&
	       a->has_bandwidth == b->has_bandwidth && a->has_downtime_ms == b->has_downtime_ms &&
	       a->has_link_bandwidth == b->has_link_bandwidth &&
	       (!a->has_bandwidth || a->v.bandwidth == b->v.bandwidth) &&
	       (!a->has_downtime_ms || a->v.downtime_ms == b->v.downtime_ms) &&
	       (!a->has_link_bandwidth || a->v.link_bandwidth == b->v.link_bandwidth) &&
	       a->has_max_total_s == b->has_max_total_s &&
	       (!a->has_max_total_s || a->v.max_total_s == b->v.max_total_s);
}

/* The request as a user would write it. */
static char *unparse(const ms_track_request *r)
{
	GString *s = g_string_new(NULL);

	g_string_append(s, r->target);
	if (r->name[0])
		g_string_append_printf(s, " name=%s", r->name);
	if (r->change.has_mode)
		g_string_append_printf(s, "\tmode=%s", r->change.v.mode);
	if (r->change.has_sample_pages)
		g_string_append_printf(s, " sample_pages=%u", r->change.v.sample_pages);
	if (r->change.has_period)
		g_string_append_printf(s, " period=%u", r->change.v.period_s);
	if (r->change.has_bandwidth)
		g_string_append_printf(s, " bandwidth=%" PRIu64, r->change.v.bandwidth);
	if (r->change.has_downtime_ms)
		g_string_append_printf(s, " downtime_ms=%u", r->change.v.downtime_ms);
	if (r->change.has_link_bandwidth)
		g_string_append_printf(s, " link_bandwidth=%" PRIu64, r->change.v.link_bandwidth);
	if (r->change.has_max_total_s)
		g_string_append_printf(s, " max_total_s=%u", r->change.v.max_total_s);
	g_string_append_c(s, '\n');
	return g_string_free(s, FALSE);
}

static void fuzz_track(const char *buf, size_t size)
{
	ms_track_request req, again;
	g_autofree char *why = NULL;
	int r = ms_parse_track(buf, size, &req, &why);

	if (r < 0) {
		FUZZ_CHECK(r == -EINVAL || r == -ENAMETOOLONG);
		FUZZ_CHECK(why != NULL);
		return;
	}
	FUZZ_CHECK(r == 0);
	FUZZ_CHECK(terminated(req.target, sizeof(req.target)));
	FUZZ_CHECK(terminated(req.name, sizeof(req.name)));
	FUZZ_CHECK(strcspn(req.target, " \t\n\r\v\f") == strlen(req.target));
	if (req.source == &ms_qemu_source || req.source == &ms_cgroup_source) {
		FUZZ_CHECK(req.target[0] == '/');
		FUZZ_CHECK(req.source == &ms_qemu_source || strlen(req.target) < 2 ||
			   req.target[strlen(req.target) - 1] != '/');
	} else if (req.source == &ms_libvirt_source) {
		/* libvirt:NAME, the domain's name checked when it is tracked. */
		FUZZ_CHECK(strncmp(req.target, "libvirt:", 8) == 0 && req.target[8] != '\0');
	} else {
		FUZZ_CHECK(req.source == &ms_process_source);
		long pid = strtol(req.target, NULL, 10);
		FUZZ_CHECK(pid >= 1 && pid <= 4194304);
		FUZZ_CHECK(req.name[0] == '\0');
	}
	if (req.name[0]) {
		g_autofree char *nwhy = NULL;
		FUZZ_CHECK(ms_check_name(req.name, &nwhy) == 0);
	}
	check_change(&req.change);

	char *text = unparse(&req);
	g_clear_pointer(&why, g_free);
	r = ms_parse_track(text, strlen(text), &again, &why);
	if (r != 0)
		fprintf(stderr, "round trip: \"%s\" refused: %s\n", text, why ? why : "?");
	FUZZ_CHECK(r == 0);
	FUZZ_CHECK(again.source == req.source);
	FUZZ_CHECK(strcmp(again.target, req.target) == 0);
	FUZZ_CHECK(strcmp(again.name, req.name) == 0);
	FUZZ_CHECK(same_change(&again.change, &req.change));
	g_free(text);
}

static void fuzz_settings(const char *buf, size_t size)
{
	static const char *const keys[] = {"period",	  "sample_pages", "mode",
					   "bandwidth", "downtime_ms",	"link_bandwidth",
					   "max_total_s"};

	for (size_t k = 0; k < G_N_ELEMENTS(keys); k++) {
		ms_settings_change c;
		g_autofree char *why = NULL;
		int r = ms_parse_setting(keys[k], buf, size, &c, &why);
		if (r < 0) {
			FUZZ_CHECK(r == -EINVAL && why != NULL);
			continue;
		}
		FUZZ_CHECK(r == 0);
		/* Exactly the key's field is set. */
		FUZZ_CHECK(c.has_period == (k == 0));
		FUZZ_CHECK(c.has_sample_pages == (k == 1));
		FUZZ_CHECK(c.has_mode == (k == 2));
		FUZZ_CHECK(c.has_bandwidth == (k == 3));
		FUZZ_CHECK(c.has_downtime_ms == (k == 4));
		FUZZ_CHECK(c.has_link_bandwidth == (k == 5));
		FUZZ_CHECK(c.has_max_total_s == (k == 6));
		FUZZ_CHECK(!c.has_max_total_s || c.v.max_total_s <= MS_MAX_TOTAL_S_MAX);
		FUZZ_CHECK(!c.has_bandwidth ||
			   (c.v.bandwidth >= MS_BANDWIDTH_MIN && c.v.bandwidth <= MS_BANDWIDTH_MAX));
		FUZZ_CHECK(!c.has_downtime_ms || c.v.downtime_ms <= MS_DOWNTIME_MS_MAX);
		FUZZ_CHECK(!c.has_link_bandwidth || c.v.link_bandwidth <= MS_BANDWIDTH_MAX);
		check_change(&c);
		ms_settings s = {.period_s = 1, .sample_pages = 512, .mode = "page-sampling"};
		ms_settings_apply(&s, &c);
		FUZZ_CHECK(terminated(s.mode, sizeof(s.mode)));
	}
	/* Not a settings file: always refused. */
	ms_settings_change c;
	g_autofree char *why = NULL;
	FUZZ_CHECK(ms_parse_setting("name", buf, size, &c, &why) == -EINVAL && why);
}

static void fuzz_name(const char *buf, size_t size)
{
	/* The output buffer is exactly outlen bytes: ASan sees any overrun. */
	static const size_t outlens[] = {MS_NAME_MAX, 1, 8};

	for (size_t i = 0; i < G_N_ELEMENTS(outlens); i++) {
		char *out = malloc(outlens[i]);
		g_autofree char *why = NULL;
		int r = ms_parse_name(buf, size, out, outlens[i], &why);
		if (r == 0) {
			size_t len = strnlen(out, outlens[i]);
			FUZZ_CHECK(len > 0 && len < outlens[i]);
			FUZZ_CHECK(strcspn(out, " \t\n\r\v\f/") == len);
		} else {
			FUZZ_CHECK(r == -EINVAL && why != NULL);
		}
		free(out);
	}
}

static void fuzz_check_name(const uint8_t *data, size_t size)
{
	char *name = fuzz_cstr(data, size);
	g_autofree char *why = NULL;
	int r = ms_check_name(name, &why);

	if (r == 0) {
		size_t len = strlen(name);
		FUZZ_CHECK(len >= 1 && len < MS_NAME_MAX);
		FUZZ_CHECK(strcmp(name, ".") != 0 && strcmp(name, "..") != 0);
		for (size_t i = 0; i < len; i++)
			FUZZ_CHECK(name[i] != '/' && (unsigned char)name[i] > ' ' &&
				   name[i] != 0x7f);
	} else {
		FUZZ_CHECK(r == -EINVAL && why != NULL);
	}
	free(name);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = fuzz_copy(data, size);

	fuzz_track(buf, size);
	fuzz_settings(buf, size);
	fuzz_name(buf, size);
	fuzz_check_name(data, size);
	free(buf);
	return 0;
}
