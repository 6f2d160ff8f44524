/* method.h: one way of measuring a process's dirty rate, in windows.
 *
 * A method knows nothing about targets, files or threads: the process
 * source calls ms_method_step once per period from one worker at a time.
 * One vtable per method (page_sampling.h, full_scan.h, soft_dirty.h); the
 * step around the windows is the same for all of them (ms_method_step).
 */
#pragma once

#include <stdbool.h>

#include "memstat/methods/measurement.h"
#include "memstat/methods/proc.h"

typedef struct ms_method {
	const char *mode; /* the name users write to <pid>/mode */

	/* 0 when this kernel supports the method, else -EOPNOTSUPP and
	 * *why.  NULL: always. */
	int (*supported)(char **why);

	/* Prepares to measure the process (id stays valid for the state's
	 * life).  Checks that the memory can be read.  Returns NULL with
	 * *err = -ESRCH, -EACCES, -EPERM, -EINVAL... and *why set. */
	void *(*open)(const ms_proc_id *id, int *err, char **why);

	/* Whether a window is open. */
	bool (*is_open)(void *state);
	/* Closes the open window into *out: 1, or a negative errno (-ESRCH:
	 * the process is gone) with *why. */
	int (*close_window)(void *state, ms_measurement *out, char **why);
	/* Opens the next window: 0, or a negative errno with *why. */
	int (*open_window)(void *state, const ms_params *p, char **why);
	/* Drops the window's data (after a close, or a failed open). */
	void (*free_window)(void *state);

	void (*close)(void *state);
} ms_method;

/* 0 when this kernel supports m, else -EOPNOTSUPP with *why. */
int ms_method_supported(const ms_method *m, char **why);

/* One step: closes the open window into *out (returns 1; 0 when there was
 * none), opens the next, and checks the process is still alive afterwards,
 * so that what was read was its memory (-ESRCH when it is gone).  When only
 * opening the next window fails (not -ESRCH), the finished one is kept and
 * the next step opens anew.  -ESRCH from a method while the process still
 * lives (pidfd) means an exec replaced its address space during a read: the
 * window is dropped (0 or the finished one's 1), never -ESRCH.  Another
 * -errno with *why on failure. */
int ms_method_step(const ms_method *m, void *state, const ms_proc_id *id, const ms_params *p,
		   ms_measurement *out, char **why);
