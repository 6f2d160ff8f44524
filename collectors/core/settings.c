/* settings.c: parsing what is written to track, untrack and the settings
 * files.  Pure functions over a bounded buffer: no I/O. */
#include "memstat/core/settings.h"

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "memstat/methods/fail.h"
#include "memstat/methods/kernel.h"
#include "memstat/sources/access.h"

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* An unsigned decimal in [min, max], the whole of [p, end). */
static bool parse_uint(const char *p, const char *end, uint64_t min, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (p == end)
		return false;
	for (; p < end; p++) {
		if (!isdigit((unsigned char)*p))
			return false;
		v = v * 10 + (uint64_t)(*p - '0');
		if (v > max)
			return false;
	}
	if (v < min)
		return false;
	*out = v;
	return true;
}

static int parse_period(const char *v, const char *vend, ms_settings_change *c, char **why)
{
	uint64_t n;

	if (!parse_uint(v, vend, MS_PERIOD_MIN, MS_PERIOD_MAX, &n))
		return ms_fail(why, -EINVAL, "period must be whole seconds from 1 to 60");
	c->has_period = true;
	c->v.period_s = (uint32_t)n;
	return 0;
}

static int parse_sample_pages(const char *v, const char *vend, ms_settings_change *c, char **why)
{
	uint64_t n;

	if (!parse_uint(v, vend, MS_SAMPLE_PAGES_MIN, MS_SAMPLE_PAGES_MAX, &n))
		return ms_fail(why, -EINVAL,
			       "sample_pages must be from 128 to 16384 (pages per GiB)");
	c->has_sample_pages = true;
	c->v.sample_pages = (uint32_t)n;
	return 0;
}

/* A decimal ("10", "2.5", ".5") at the start of [p, end): its value and
 * where it ends, or false. */
static bool parse_decimal(const char *p, const char *end, double *out, const char **stop)
{
	double v = 0, scale = 1;
	bool digits = false, point = false;

	for (; p < end; p++) {
		if (*p == '.' && !point) {
			point = true;
		} else if (isdigit((unsigned char)*p)) {
			digits = true;
			if (point)
				v += (*p - '0') * (scale /= 10);
			else
				v = v * 10 + (*p - '0');
			if (v > 1e15)
				return false;
		} else {
			break;
		}
	}
	*out = v;
	*stop = p;
	return digits;
}

/* One part of a precision: "10%" or "2MiB/s". */
static int parse_precision_part(const char *p, const char *end, ms_precision *out, char **why)
{
	/* The units the rate files print (MiB/s) and their kin. */
	static const struct {
		const char *unit;
		double mib; /* one unit in MiB/s */
	} units[] = {
		{"B/s", 1.0 / 1048576},	 {"KiB/s", 1.0 / 1024},	  {"MiB/s", 1.0},
		{"GiB/s", 1024.0},	 {"TiB/s", 1048576.0},	  {"kB/s", 1e3 / 1048576},
		{"KB/s", 1e3 / 1048576}, {"MB/s", 1e6 / 1048576}, {"GB/s", 1e9 / 1048576},
	};
	const char *u;
	double v;

	if (!parse_decimal(p, end, &v, &u))
		return ms_fail(why, -EINVAL, "precision: a number expected, as in 10%% or 2MiB/s");
	size_t ulen = (size_t)(end - u);
	if (ulen == 1 && *u == '%') {
		if (out->rel > 0)
			return ms_fail(why, -EINVAL, "precision: a relative part given twice");
		if (!(v > 0 && v <= 100))
			return ms_fail(why, -EINVAL,
				       "precision: a relative half-width must be above 0%% and at "
				       "most 100%%");
		out->rel = v / 100.0;
		return 0;
	}
	for (size_t i = 0; i < G_N_ELEMENTS(units); i++) {
		if (strlen(units[i].unit) != ulen || memcmp(units[i].unit, u, ulen) != 0)
			continue;
		if (out->abs_mib_s > 0)
			return ms_fail(why, -EINVAL, "precision: an absolute part given twice");
		double mib = v * units[i].mib;
		if (!(mib > 0 && mib <= MS_PRECISION_ABS_MAX))
			return ms_fail(why, -EINVAL,
				       "precision: an absolute half-width must be above 0 and at "
				       "most 1TiB/s");
		out->abs_mib_s = mib;
		return 0;
	}
	return ms_fail(why, -EINVAL,
		       "precision: unknown unit (%% of the rate, or B/s KiB/s MiB/s GiB/s TiB/s "
		       "kB/s MB/s GB/s)");
}

int ms_parse_precision(const char *p, const char *end, ms_precision *out, char **why)
{
	ms_precision pr = {0};
	int r;

	if (end - p == 3 && memcmp(p, "off", 3) == 0) {
		*out = pr;
		return 0;
	}
	const char *comma = memchr(p, ',', (size_t)(end - p));
	if ((r = parse_precision_part(p, comma ? comma : end, &pr, why)) < 0)
		return r;
	if (comma && (r = parse_precision_part(comma + 1, end, &pr, why)) < 0)
		return r;
	pr.asked = true;
	*out = pr;
	return 0;
}

static int parse_precision(const char *v, const char *vend, ms_settings_change *c, char **why)
{
	int r = ms_parse_precision(v, vend, &c->v.precision, why);
	if (r < 0)
		return r;
	c->has_precision = true;
	return 0;
}

static int parse_mode(const char *v, const char *vend, ms_settings_change *c, char **why)
{
	size_t len = (size_t)(vend - v);

	if (len == 0 || len >= sizeof(c->v.mode))
		return ms_fail(why, -EINVAL, "unknown mode");
	memcpy(c->v.mode, v, len);
	c->v.mode[len] = '\0';
	if (!ms_mode_known(c->v.mode))
		return ms_fail(why, -EINVAL, "unknown mode");
	c->has_mode = true;
	return 0;
}

bool ms_parse_bandwidth(const char *p, const char *end, bool zero_ok, uint64_t *out)
{
	static const struct {
		const char *suffix;
		uint64_t mult;
	} units[] = {
		{"Ki", 1ull << 10},   {"Mi", 1ull << 20},      {"Gi", 1ull << 30},
		{"Ti", 1ull << 40},   {"K", 1000ull},	       {"M", 1000000ull},
		{"G", 1000000000ull}, {"T", 1000000000000ull},
	};
	uint64_t mult = 1, v;
	const char *num_end = p;

	while (num_end < end && isdigit((unsigned char)*num_end))
		num_end++;
	if (num_end != end) {
		size_t slen = (size_t)(end - num_end);
		size_t i;
		for (i = 0; i < G_N_ELEMENTS(units); i++)
			if (strlen(units[i].suffix) == slen &&
			    memcmp(units[i].suffix, num_end, slen) == 0)
				break;
		if (i == G_N_ELEMENTS(units))
			return false;
		mult = units[i].mult;
	}
	if (!parse_uint(p, num_end, 0, MS_BANDWIDTH_MAX, &v) || v > MS_BANDWIDTH_MAX / mult)
		return false;
	v *= mult;
	if ((v == 0 && !zero_ok) || v > MS_BANDWIDTH_MAX)
		return false;
	*out = v;
	return true;
}

static int parse_bandwidth(const char *v, const char *vend, ms_settings_change *c, char **why)
{
	if (!ms_parse_bandwidth(v, vend, false, &c->v.bandwidth))
		return ms_fail(why, -EINVAL,
			       "bandwidth must be bytes per second from 1 to 1P, with an optional "
			       "K M G T (powers of 1000) or Ki Mi Gi Ti (of 1024)");
	c->has_bandwidth = true;
	return 0;
}

static int parse_link_bandwidth(const char *v, const char *vend, ms_settings_change *c, char **why)
{
	if (!ms_parse_bandwidth(v, vend, true, &c->v.link_bandwidth))
		return ms_fail(why, -EINVAL,
			       "link_bandwidth must be bytes per second up to 1P (0: the "
			       "bandwidth), with an optional K M G T or Ki Mi Gi Ti");
	c->has_link_bandwidth = true;
	return 0;
}

static int parse_downtime_ms(const char *v, const char *vend, ms_settings_change *c, char **why)
{
	uint64_t n;

	if (!parse_uint(v, vend, 0, MS_DOWNTIME_MS_MAX, &n))
		return ms_fail(why, -EINVAL, "downtime_ms must be whole ms from 0 to 2000000");
	c->has_downtime_ms = true;
	c->v.downtime_ms = (uint32_t)n;
	return 0;
}

static int parse_max_total_s(const char *v, const char *vend, ms_settings_change *c, char **why)
{
	uint64_t n;

	if (!parse_uint(v, vend, 0, MS_MAX_TOTAL_S_MAX, &n))
		return ms_fail(why, -EINVAL, "max_total_s must be whole seconds from 0 to 86400");
	c->has_max_total_s = true;
	c->v.max_total_s = (uint32_t)n;
	return 0;
}

/* The settings a track line and the settings files take: key, where the
 * change says it is set, and its parser (which checks range and syntax). */
static const struct {
	const char *key;
	size_t has; /* offsetof the bool in ms_settings_change */
	int (*parse)(const char *v, const char *vend, ms_settings_change *c, char **why);
} settings_keys[] = {
	{"period", offsetof(ms_settings_change, has_period), parse_period},
	{"sample_pages", offsetof(ms_settings_change, has_sample_pages), parse_sample_pages},
	{"mode", offsetof(ms_settings_change, has_mode), parse_mode},
	{"precision", offsetof(ms_settings_change, has_precision), parse_precision},
	{"bandwidth", offsetof(ms_settings_change, has_bandwidth), parse_bandwidth},
	{"downtime_ms", offsetof(ms_settings_change, has_downtime_ms), parse_downtime_ms},
	{"link_bandwidth", offsetof(ms_settings_change, has_link_bandwidth), parse_link_bandwidth},
	{"max_total_s", offsetof(ms_settings_change, has_max_total_s), parse_max_total_s},
};

static int parse_kv(const char *key, size_t klen, const char *v, const char *vend,
		    ms_settings_change *c, char **why)
{
	g_autoptr(GString) keys = g_string_new(NULL);

	for (size_t i = 0; i < G_N_ELEMENTS(settings_keys); i++) {
		const char *k = settings_keys[i].key;
		g_string_append_printf(keys, "%s%s=", keys->len ? ", " : "", k);
		if (strlen(k) != klen || memcmp(key, k, klen) != 0)
			continue;
		if (*(bool *)((char *)c + settings_keys[i].has))
			return ms_fail(why, -EINVAL, "%s given twice", k);
		return settings_keys[i].parse(v, vend, c, why);
	}
	return ms_fail(why, -EINVAL, "unknown setting (%s)", keys->str);
}

/* Trims white space and checks there is no NUL inside. */
static int bounded(const char **buf, size_t *len, char **why)
{
	const char *p = *buf, *end = *buf + *len;

	if (*len > MS_WRITE_MAX)
		return ms_fail(why, -EINVAL, "write too long");
	if (memchr(p, '\0', *len))
		return ms_fail(why, -EINVAL, "NUL byte in write");
	while (p < end && is_space(*p))
		p++;
	while (end > p && is_space(end[-1]))
		end--;
	if (p == end)
		return ms_fail(why, -EINVAL, "empty write");
	*buf = p;
	*len = (size_t)(end - p);
	return 0;
}

int ms_parse_track(const char *buf, size_t len, ms_track_request *out, char **why)
{
	int r = bounded(&buf, &len, why);
	const char *p = buf, *end = buf + len;

	if (r < 0)
		return r;
	memset(out, 0, sizeof(*out));
	const char *w = p;
	while (p < end && !is_space(*p))
		p++;
	if ((r = ms_source_parse(w, (size_t)(p - w), &out->source, out->target, why)) < 0)
		return r;
	while (p < end) {
		while (p < end && is_space(*p))
			p++;
		w = p;
		while (p < end && !is_space(*p))
			p++;
		const char *eq = memchr(w, '=', (size_t)(p - w));
		if (!eq)
			return ms_fail(why, -EINVAL, "expected key=value after the target");
		if (eq - w == 4 && memcmp(w, "name", 4) == 0) {
			size_t nlen = (size_t)(p - eq - 1);
			if (!out->source->named)
				return ms_fail(why, -EINVAL,
					       "name= is not for a %s: it is named by %s",
					       out->source->noun, out->source->syntax);
			if (out->name[0])
				return ms_fail(why, -EINVAL, "name given twice");
			if (nlen >= sizeof(out->name))
				return ms_fail(why, -EINVAL, "name too long");
			memcpy(out->name, eq + 1, nlen);
			if ((r = ms_check_name(out->name, why)) < 0)
				return r;
			continue;
		}
		r = parse_kv(w, (size_t)(eq - w), eq + 1, p, &out->change, why);
		if (r < 0)
			return r;
	}
	return 0;
}

int ms_parse_setting(const char *key, const char *buf, size_t len, ms_settings_change *change,
		     char **why)
{
	int r = bounded(&buf, &len, why);

	if (r < 0)
		return r;
	memset(change, 0, sizeof(*change));
	for (size_t i = 0; i < len; i++)
		if (is_space(buf[i]))
			return ms_fail(why, -EINVAL, "one value per write");
	return parse_kv(key, strlen(key), buf, buf + len, change, why);
}

int ms_parse_name(const char *buf, size_t len, char *out, size_t outlen, char **why)
{
	int r = bounded(&buf, &len, why);

	if (r < 0)
		return r;
	if (len >= outlen)
		return ms_fail(why, -EINVAL, "name too long");
	for (size_t i = 0; i < len; i++)
		if (is_space(buf[i]) || buf[i] == '/')
			return ms_fail(why, -EINVAL, "one name per write");
	memcpy(out, buf, len);
	out[len] = '\0';
	return 0;
}

int ms_check_name(const char *name, char **why)
{
	size_t len = strlen(name);

	if (len == 0)
		return ms_fail(why, -EINVAL, "empty name");
	if (len >= MS_NAME_MAX)
		return ms_fail(why, -EINVAL, "name too long");
	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return ms_fail(why, -EINVAL, "name may not be . or ..");
	/* A name lands in file names, shell scripts, Prometheus labels and
	 * plot titles: letters, digits and a few marks only. */
	for (const unsigned char *c = (const unsigned char *)name; *c; c++) {
		if (!isalnum(*c) && !strchr("._-@+:", *c))
			return ms_fail(why, -EINVAL,
				       "a name is letters, digits and . _ - @ + : only");
	}
	return 0;
}

void ms_settings_apply(ms_settings *s, const ms_settings_change *c)
{
	if (c->has_period)
		s->period_s = c->v.period_s;
	if (c->has_sample_pages)
		s->sample_pages = c->v.sample_pages;
	/* Two ways of saying how many pages to draw: the one written last
	 * holds (both in one write: the precision). */
	if (c->has_precision)
		s->precision = c->v.precision;
	else if (c->has_sample_pages)
		s->precision = (ms_precision){0};
	if (c->has_mode)
		memcpy(s->mode, c->v.mode, sizeof(s->mode));
	if (c->has_bandwidth)
		s->bandwidth = c->v.bandwidth;
	if (c->has_downtime_ms)
		s->downtime_ms = c->v.downtime_ms;
	if (c->has_link_bandwidth)
		s->link_bandwidth = c->v.link_bandwidth;
	if (c->has_max_total_s)
		s->max_total_s = c->v.max_total_s;
	if (c->has_bandwidth || c->has_downtime_ms || c->has_link_bandwidth || c->has_max_total_s)
		s->forecast = true;
}

const char *ms_default_mode(void)
{
	return ms_sources[0]->modes[0].name;
}

int ms_check_default_mode(const char *mode, char **why)
{
	if (strlen(mode) >= MS_MODE_MAX)
		return ms_fail(why, -EINVAL, "unknown mode %s", mode);
	for (const ms_source *const *src = ms_sources; *src; src++) {
		g_autofree char *inner = NULL;
		if (!ms_source_mode(*src, mode))
			continue;
		int r = ms_source_check_mode(*src, mode, &inner);
		return r < 0 ? ms_fail(why, r, "mode %s: %s", mode, inner) : 0;
	}
	return ms_fail(why, -EINVAL, "unknown mode %s", mode);
}

void ms_log_mode_support(void)
{
	ms_kernel_log_interfaces();
	/* The /proc view, looked at now: its watch on the mount table is
	 * opened at start, not by the first request. */
	ms_proc_view v = ms_proc_view_get();
	if (v.hidepid != MS_HIDEPID_OFF)
		g_message("/proc has hidepid=%d (gid=%u): each caller sees the process targets "
			  "its own /proc would show",
			  (int)v.hidepid, v.has_gid ? (unsigned)v.gid : 0u);
	for (const ms_source *const *src = ms_sources; *src; src++) {
		for (const ms_mode *m = (*src)->modes; m->name; m++) {
			g_autofree char *why = NULL;
			if (m->supported && m->supported(&why) < 0)
				g_message("mode %s is not available: %s", m->name, why);
		}
	}
}

char *ms_modes_help(void)
{
	GString *s = g_string_new(NULL);

	for (const ms_source *const *src = ms_sources; *src; src++) {
		g_string_append_printf(s, "\nmodes of a %s (mode=):\n", (*src)->noun);
		for (const ms_mode *m = (*src)->modes; m->name; m++)
			g_string_append_printf(s, "    %-22s %s\n", m->name, m->help);
	}
	return g_string_free(s, FALSE);
}
