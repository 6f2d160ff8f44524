/* settings.c: parsing what is written to track, untrack and the settings
 * files.  Pure functions over a bounded buffer: no I/O, no allocation. */
#include "memstat/settings.h"

#include <ctype.h>
#include <errno.h>
#include <string.h>

#include "memstat/collector.h"
#include "memstat/vm.h"

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

static int parse_kv(const char *key, size_t klen, const char *v, const char *vend,
		    ms_settings_change *c, const char **why)
{
	uint64_t n;

	if (klen == 6 && memcmp(key, "period", 6) == 0) {
		if (c->has_period)
			return *why = "period given twice", -EINVAL;
		if (!parse_uint(v, vend, MS_PERIOD_MIN, MS_PERIOD_MAX, &n))
			return *why = "period must be whole seconds from 1 to 60", -EINVAL;
		c->has_period = true;
		c->v.period_s = (uint32_t)n;
		return 0;
	}
	if (klen == 12 && memcmp(key, "sample_pages", 12) == 0) {
		if (c->has_sample_pages)
			return *why = "sample_pages given twice", -EINVAL;
		if (!parse_uint(v, vend, MS_SAMPLE_PAGES_MIN, MS_SAMPLE_PAGES_MAX, &n))
			return *why = "sample_pages must be from 128 to 16384 (pages per GiB)",
			       -EINVAL;
		c->has_sample_pages = true;
		c->v.sample_pages = (uint32_t)n;
		return 0;
	}
	if (klen == 4 && memcmp(key, "mode", 4) == 0) {
		size_t len = (size_t)(vend - v);
		if (c->has_mode)
			return *why = "mode given twice", -EINVAL;
		if (len == 0 || len >= sizeof(c->v.mode))
			return *why = "unknown mode", -EINVAL;
		memcpy(c->v.mode, v, len);
		c->v.mode[len] = '\0';
		if (!ms_collector_find(c->v.mode) && !ms_vm_mode_known(c->v.mode))
			return *why = "unknown mode", -EINVAL;
		c->has_mode = true;
		return 0;
	}
	return *why = "unknown setting (period=, sample_pages=, mode=)", -EINVAL;
}

/* Trims white space and checks there is no NUL inside. */
static int bounded(const char **buf, size_t *len, const char **why)
{
	const char *p = *buf, *end = *buf + *len;

	if (*len > MS_WRITE_MAX)
		return *why = "write too long", -EINVAL;
	if (memchr(p, '\0', *len))
		return *why = "NUL byte in write", -EINVAL;
	while (p < end && is_space(*p))
		p++;
	while (end > p && is_space(end[-1]))
		end--;
	if (p == end)
		return *why = "empty write", -EINVAL;
	*buf = p;
	*len = (size_t)(end - p);
	return 0;
}

int ms_parse_track(const char *buf, size_t len, ms_track_request *out, const char **why)
{
	int r = bounded(&buf, &len, why);
	const char *p = buf, *end = buf + len;
	uint64_t pid;

	if (r < 0)
		return r;
	memset(out, 0, sizeof(*out));
	const char *w = p;
	while (p < end && !is_space(*p))
		p++;
	if (*w == '/') {
		if ((size_t)(p - w) >= sizeof(out->socket))
			return *why = "socket path too long", -ENAMETOOLONG;
		memcpy(out->socket, w, (size_t)(p - w));
	} else if (parse_uint(w, p, 1, 4194304 /* PID_MAX_LIMIT */, &pid)) {
		out->pid = (pid_t)pid;
	} else {
		return *why = "not a pid or an absolute socket path", -EINVAL;
	}
	while (p < end) {
		while (p < end && is_space(*p))
			p++;
		w = p;
		while (p < end && !is_space(*p))
			p++;
		const char *eq = memchr(w, '=', (size_t)(p - w));
		if (!eq)
			return *why = "expected key=value after the target", -EINVAL;
		if (eq - w == 4 && memcmp(w, "name", 4) == 0) {
			size_t nlen = (size_t)(p - eq - 1);
			if (!out->socket[0])
				return *why = "name= is for VMs: a process is named by its pid",
				       -EINVAL;
			if (out->name[0])
				return *why = "name given twice", -EINVAL;
			if (nlen >= sizeof(out->name))
				return *why = "name too long", -EINVAL;
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
		     const char **why)
{
	int r = bounded(&buf, &len, why);

	if (r < 0)
		return r;
	memset(change, 0, sizeof(*change));
	for (size_t i = 0; i < len; i++)
		if (is_space(buf[i]))
			return *why = "one value per write", -EINVAL;
	return parse_kv(key, strlen(key), buf, buf + len, change, why);
}

int ms_parse_name(const char *buf, size_t len, char *out, size_t outlen, const char **why)
{
	int r = bounded(&buf, &len, why);

	if (r < 0)
		return r;
	if (len >= outlen)
		return *why = "name too long", -EINVAL;
	for (size_t i = 0; i < len; i++)
		if (is_space(buf[i]) || buf[i] == '/')
			return *why = "one name per write", -EINVAL;
	memcpy(out, buf, len);
	out[len] = '\0';
	return 0;
}

int ms_check_name(const char *name, const char **why)
{
	size_t len = strlen(name);

	if (len == 0)
		return *why = "empty name", -EINVAL;
	if (len >= MS_NAME_MAX)
		return *why = "name too long", -EINVAL;
	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return *why = "name may not be . or ..", -EINVAL;
	/* A name lands in file names, shell scripts, Prometheus labels and
	 * plot titles: letters, digits and a few marks only. */
	for (const unsigned char *c = (const unsigned char *)name; *c; c++) {
		if (!isalnum(*c) && !strchr("._-@+:", *c))
			return *why = "a name is letters, digits and . _ - @ + : only", -EINVAL;
	}
	return 0;
}

void ms_settings_apply(ms_settings *s, const ms_settings_change *c)
{
	if (c->has_period)
		s->period_s = c->v.period_s;
	if (c->has_sample_pages)
		s->sample_pages = c->v.sample_pages;
	if (c->has_mode)
		memcpy(s->mode, c->v.mode, sizeof(s->mode));
}
