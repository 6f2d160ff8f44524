/* meminfo.h: the host's memory state, one value per name, read fresh. */
#pragma once

#include <glib.h>

/* The file names under meminfo/: one per /proc/meminfo field (as the
 * running kernel prints them), then overcommit_memory, overcommit_ratio,
 * overcommit_kbytes, used and commit_percent.  NULL on failure. */
GPtrArray *ms_meminfo_names(void);

/* The value of one name, read now, as text with a trailing newline.
 * 0, -ENOENT for an unknown name, or -errno. */
int ms_meminfo_value(const char *name, char **text);

/* The same from given file contents (for tests and fuzzing): meminfo is
 * /proc/meminfo's text; overcommit[3] the texts of
 * /proc/sys/vm/overcommit_{memory,ratio,kbytes}. */
int ms_meminfo_value_from(const char *name, const char *meminfo, const char *const overcommit[3],
			  char **text);

/* The memory/ file names of a process: its /proc/PID/status fields that
 * start with Vm or Rss, in the kernel's order. */
GPtrArray *ms_status_memory_names(const char *status_text);

/* The value of one memory/ file in /proc/PID/status text; -ENOENT when
 * absent. */
int ms_status_memory_value(const char *status_text, const char *name, char **text);
