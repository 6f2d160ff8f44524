/* tree_control.c: the control files (tree_control.h). */
#include "memstat/core/tree_control.h"

#include <errno.h>

#include "memstat/methods/fail.h"

int ms_write_track(ms_node_ctx *c, const char *buf, size_t len, char **why)
{
	ms_track_request tr;
	g_autofree char *inner = NULL;

	int r = ms_parse_track(buf, len, &tr, &inner);
	if (r < 0)
		return ms_fail(why, r, "track: %s", inner);
	r = ms_registry_track(c->reg, &tr, c->caller, &inner);
	if (r < 0)
		return ms_fail(why, r, "track %s: %s", tr.target, inner ? inner : "");
	g_message("track %s: done (uid %u)", tr.target, (unsigned)c->caller->uid);
	return 0;
}

int ms_write_untrack(ms_node_ctx *c, const char *buf, size_t len, char **why)
{
	char name[MS_NAME_MAX];
	g_autofree char *inner = NULL;

	int r = ms_parse_name(buf, len, name, sizeof(name), &inner);
	if (r < 0)
		return ms_fail(why, r, "untrack: %s", inner);
	g_autoptr(ms_target) t = ms_registry_lookup(c->reg, name);
	if (t && !ms_target_visible(t, c->caller))
		return ms_fail(why, -ENOENT, "untrack %s: not tracked", name);
	r = ms_registry_untrack(c->reg, name, c->caller, &inner);
	if (r < 0)
		return ms_fail(why, r, "untrack %s: %s", name, inner ? inner : "");
	g_message("untracked %s (uid %u)", name, (unsigned)c->caller->uid);
	g_strlcpy(c->gone, name, sizeof(c->gone));
	return 0;
}

int ms_write_setting(ms_node_ctx *c, const char *buf, size_t len, char **why)
{
	const char *key = c->node->name;
	ms_settings_change change;
	g_autofree char *inner = NULL;

	int r = ms_parse_setting(key, buf, len, &change, &inner);
	if (r == 0)
		r = ms_target_set(c->reg, c->t, &change, c->caller, &inner);
	if (r < 0)
		return ms_fail(why, r, "%s/%s: %s", ms_target_name(c->t), key, inner ? inner : "");
	return 0;
}
