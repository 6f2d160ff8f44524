/* source.c: the table of sources and what is asked of all of them alike. */
#include "memstat/sources/source.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include "memstat/methods/fail.h"
#include "memstat/sources/cgroup.h"
#include "memstat/sources/libvirt.h"
#include "memstat/sources/process.h"
#include "memstat/sources/qemu.h"

const ms_source *const ms_sources[] = {
	&ms_process_source,
	&ms_cgroup_source, /* tells its paths by what they are: before QMP's */
	&ms_qemu_source,
	&ms_libvirt_source,
	NULL,
};

int ms_source_option_set(const char *arg, char **why)
{
	const char *eq = strchr(arg, '=');

	if (!eq)
		return 0;
	for (const ms_source *const *s = ms_sources; *s; s++)
		for (const ms_source_option *o = (*s)->options; o && o->key; o++)
			if (strlen(o->key) == (size_t)(eq - arg) &&
			    strncmp(o->key, arg, (size_t)(eq - arg)) == 0)
				return o->set(eq + 1, why) < 0 ? -EINVAL : 1;
	return 0;
}

char *ms_source_options_help(void)
{
	GString *help = g_string_new(NULL);

	for (const ms_source *const *s = ms_sources; *s; s++)
		for (const ms_source_option *o = (*s)->options; o && o->key; o++)
			g_string_append_printf(help, "    %s\n", o->help);
	return g_string_free(help, FALSE);
}

int ms_source_parse(const char *word, size_t len, const ms_source **src, char key[MS_KEY_MAX],
		    char **why)
{
	g_autoptr(GString) kinds = g_string_new(NULL);

	for (const ms_source *const *s = ms_sources; *s; s++) {
		int r = (*s)->parse(word, len, key, why);
		if (r < 0)
			return r;
		if (r > 0) {
			*src = *s;
			return 0;
		}
		g_string_append_printf(kinds, "%s%s", kinds->len ? " or " : "", (*s)->syntax);
	}
	return ms_fail(why, -EINVAL, "not %s", kinds->str);
}

const ms_mode *ms_source_mode(const ms_source *src, const char *mode)
{
	for (const ms_mode *m = src->modes; m->name; m++)
		if (strcmp(m->name, mode) == 0)
			return m;
	return NULL;
}

bool ms_mode_known(const char *mode)
{
	for (const ms_source *const *s = ms_sources; *s; s++)
		if (ms_source_mode(*s, mode))
			return true;
	return false;
}

char *ms_source_mode_names(const ms_source *src)
{
	GString *names = g_string_new(NULL);

	for (const ms_mode *m = src->modes; m->name; m++)
		g_string_append_printf(names, "%s%s", names->len ? ", " : "", m->name);
	return g_string_free(names, FALSE);
}

int ms_source_check_mode(const ms_source *src, const char *mode, char **why)
{
	const ms_mode *m = ms_source_mode(src, mode);

	if (!m) {
		g_autofree char *names = ms_source_mode_names(src);
		return ms_fail(why, -EINVAL, "mode %s is not one a %s is measured in (%s)", mode,
			       src->noun, names);
	}
	return m->supported ? m->supported(why) : 0;
}

void ms_source_growth_tick(ms_growth_probe *g, uint32_t growth_ms, const ms_params *p, bool exact,
			   int64_t rate_due_us, ms_step *out, const char *who)
{
	ms_growth_curve curve;
	int64_t due = 0;
	g_autofree char *why = NULL;

	int r = ms_growth_tick(g, growth_ms, p->sample_pages, exact, &curve, &due, &why);
	if (r == 1)
		out->growth = g_memdup2(&curve, sizeof(curve));
	else if (r < 0 && r != -ESRCH)
		g_debug("%s: growth: %s", who, why ? why : "");
	if (growth_ms) {
		int64_t next = due && due < rate_due_us ? due : rate_due_us;
		int64_t now = ms_now_us(CLOCK_MONOTONIC);
		out->again_ms = next > now ? (uint32_t)((next - now + 999) / 1000) : 1;
	}
}
