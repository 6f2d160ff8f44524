/* cgroup.h: the cgroup source: a target is a container, named by the
 * absolute path of its cgroup directory (cgroup v2, or a v1 hierarchy),
 * measured as one memory: the distinct physical frames that the processes
 * of the cgroup and of its descendants map writable, each counted once
 * however many of them map it (collectors/sources/cgroup.c says how).
 *
 * Its own files read the cgroup's files as they are now; what they need of
 * the state (the paths) is immutable after admission, so any thread may
 * call these.
 */
#pragma once

#include <glib.h>
#include <sys/types.h>

#include "memstat/sources/source.h"

extern const ms_source ms_cgroup_source;

/* The processes of the cgroup and its descendants now, one pid a line,
 * ascending (pids of the daemon's pid namespace).  0 with *text, or
 * -ESRCH (the cgroup is gone). */
int ms_cgroup_pids_text(void *state, char **text);

/* The names memory/ shows now: "current", "max", "swap.current" and every
 * field of memory.stat (v2's names; v1's equivalents under v2's names where
 * they mean the same).  Never NULL (free it: g_ptr_array_unref). */
GPtrArray *ms_cgroup_memory_names(void *state);

/* memory/<name> now, with its newline: 0 with *out, -ENOENT (no such
 * figure here), -ESRCH (the cgroup is gone). */
int ms_cgroup_memory_value(void *state, const char *name, char **out);

/* pressure/'s names (some_avg10 ... full_total), NULL-terminated. */
extern const char *const ms_cgroup_pressure_names[];

/* Whether the cgroup has memory.pressure (a v2 directory on a kernel with
 * PSI). */
bool ms_cgroup_has_pressure(void *state);

/* pressure/<name> now, from memory.pressure: 0 with *out, -ENOENT, -ESRCH. */
int ms_cgroup_pressure_value(void *state, const char *name, char **out);
