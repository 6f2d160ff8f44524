/* process.h: the process source: a target is one process, named by its pid
 * (in the writer's pid namespace), measured by one of the methods of
 * collectors/methods/ (its modes). */
#pragma once

#include <glib.h>

#include "memstat/sources/source.h"

extern const ms_source ms_process_source;

/* The file names memory/ may hold: this kernel's Vm and Rss fields of
 * /proc/PID/status, in its order (read once, from our own).  Never NULL;
 * do not free. */
GPtrArray *ms_process_memory_names(void);

/* The /proc/PID/status text of the target's process (state: a process
 * source's), read now and still that process's.  0, or -ESRCH (gone) or
 * -errno. */
int ms_process_status_text(void *state, char **text);
