/* collector.h: the interface between the registry and one way of measuring.
 *
 * A collector measures one process in consecutive windows.  It knows nothing
 * about FUSE, files or threads: the registry calls step() once per period
 * from a worker thread, never twice at once for the same state.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "sample.h"

/* A process, told apart from any later one that gets its pid. */
typedef struct {
	pid_t pid;
	int pidfd;		      /* -1 where pidfd_open is missing */
	unsigned long long starttime; /* field 22 of /proc/PID/stat */
} ms_proc_id;

/* Whether the process is still alive: its pidfd does not poll readable, or
 * (without a pidfd) its pid still has the same start time.  What was read
 * from /proc or the process's memory before a true answer belonged to it:
 * a pid is not reused before its process has exited. */
bool ms_proc_alive(const ms_proc_id *id);

typedef struct {
	uint32_t period_ms;    /* how long the window being opened should last */
	uint32_t sample_pages; /* pages per GiB to sample */
} ms_params;

typedef struct {
	const char *mode; /* the name users write to <pid>/mode */

	/* 0 when this kernel supports the mode, else -EOPNOTSUPP and *why. */
	int (*supported)(char **why);

	/* Prepares to measure the process (id stays valid for the state's
	 * life).  Checks that the memory can be read.  Returns NULL with
	 * *err = -ESRCH, -EACCES, -EPERM, -EINVAL... and *why set. */
	void *(*open)(const ms_proc_id *id, int *err, char **why);

	/* Closes the open window, if any, into *out (returns 1; 0 when there
	 * was none) and opens the next one with params.  Returns -ESRCH when
	 * the process is gone, another -errno with *why on failure. */
	int (*step)(void *state, const ms_params *params, ms_measurement *out, char **why);

	void (*close)(void *state);
} ms_collector_ops;

extern const ms_collector_ops ms_page_sampling;
extern const ms_collector_ops ms_full_scan;
extern const ms_collector_ops ms_soft_dirty;

/* The collector for a mode name, or NULL. */
const ms_collector_ops *ms_collector_find(const char *mode);
