#pragma once
/* cgroup_state.h: a cgroup target's state, shared by the source
 * (cgroup.c) and what its files read (cgroup_files.c); private to the
 * cgroup source.
 *
 * The paths are immutable after admission; the window and the growth
 * probe are the worker's (source.h).
 */
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "memstat/methods/frames.h"
#include "memstat/methods/growth.h"
#include "memstat/sources/source.h"

typedef struct {
	char path[MS_KEY_MAX];
	bool v2;
	dev_t dev;
	ino_t ino;
	char *v2_dir;  /* the matching v2 directory, or NULL */
	char *mem_dir; /* where memory/ reads: a v2 directory with the memory
			* controller, else v1's memory directory, or NULL */
	bool mem_v2;
	ms_caller tracker; /* who tracked it: checked on every member */
	ms_frames w;	   /* the window over the members' frames (the worker's) */
	/* The growth curve over the same union (frames.h), while someone
	 * wants it: the rate's windows close when due (rate_due_us), the
	 * growth looks between (the worker's). */
	ms_growth_probe *growth;
	int64_t rate_due_us; /* CLOCK_MONOTONIC; 0: at the next step */

	bool had_members;
	bool empty_before; /* the last step found no member */
} cg_state;
