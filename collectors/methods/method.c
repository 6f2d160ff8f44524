/* method.c: the step every windowed method takes (method.h). */
#include <errno.h>
#include <glib.h>

#include "memstat/methods/method.h"

int ms_method_supported(const ms_method *m, char **why)
{
	return m->supported ? m->supported(why) : 0;
}

/* -ESRCH from a read of a process that is still alive: what went away was
 * the address space the read was bound to, not the process.  An exec
 * replaces it, and a /proc file (pagemap, maps) opened just before the exec
 * then answers ESRCH for the old one.  The window is lost, not the target. */
static bool mm_replaced(int r, const ms_proc_id *id, char **why)
{
	if (r != -ESRCH || !ms_proc_alive(id))
		return false;
	g_debug("process %d: its address space was replaced (exec) during a read: window dropped",
		(int)id->pid);
	g_clear_pointer(why, g_free);
	return true;
}

int ms_method_step(const ms_method *m, void *state, const ms_proc_id *id, const ms_params *p,
		   ms_measurement *out, char **why)
{
	int produced = 0;

	if (m->is_open(state)) {
		produced = m->close_window(state, out, why);
		m->free_window(state);
		if (mm_replaced(produced, id, why))
			produced = 0;
		if (produced < 0)
			return produced;
	}
	int r = m->open_window(state, p, why);
	if (r < 0) {
		m->free_window(state);
		/* The next step opens anew; a finished window is kept. */
		if ((produced == 1 && r != -ESRCH) || mm_replaced(r, id, why)) {
			g_clear_pointer(why, g_free);
			return produced;
		}
		return r;
	}
	if (!ms_proc_alive(id))
		return -ESRCH;
	return produced;
}
