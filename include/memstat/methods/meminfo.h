/* meminfo.h: the host's memory state, one value per name, read fresh. */
#pragma once

#include <glib.h>

/* The file names under meminfo/: one per /proc/meminfo field (as the
 * running kernel prints them), then overcommit_memory, overcommit_ratio,
 * overcommit_kbytes, and used and commit_percent where the kernel prints
 * the fields they come from.  NULL on failure. */
GPtrArray *ms_meminfo_names(void);

/* The value of one name, read now, as text with a trailing newline.
 * 0, -ENOENT for an unknown name (or a derived one whose fields the
 * kernel does not print), -EIO for a field that is not a number, or
 * -errno.  Derived figures, at the edges of their inputs:
 *   used = MemTotal - MemAvailable, kB; 0 when MemAvailable is larger.
 *   commit_percent = Committed_AS x 100 / CommitLimit, 2 decimals; a
 *   CommitLimit of 0 counts as 1 kB (0.00 when nothing is committed).
 * Fields of up to 64 bits (UINT64_MAX kB) give exact figures. */
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
