/* method.c: the step every windowed method takes (method.h). */
#include <errno.h>
#include <glib.h>

#include "memstat/methods/method.h"

int ms_method_supported(const ms_method *m, char **why)
{
	return m->supported ? m->supported(why) : 0;
}

int ms_method_step(const ms_method *m, void *state, const ms_proc_id *id, const ms_params *p,
		   ms_measurement *out, char **why)
{
	int produced = 0;

	if (m->is_open(state)) {
		produced = m->close_window(state, out, why);
		m->free_window(state);
		if (produced < 0)
			return produced;
	}
	int r = m->open_window(state, p, why);
	if (r < 0) {
		m->free_window(state);
		if (produced == 1 && r != -ESRCH) {
			g_clear_pointer(why, g_free);
			return produced;
		}
		return r;
	}
	if (!ms_proc_alive(id))
		return -ESRCH;
	return produced;
}
