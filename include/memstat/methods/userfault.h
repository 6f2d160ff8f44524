/* userfault.h: whether the userfaultfd handler of a process answers its
 * faults, from what the kernel shows of the process's threads
 * (userfault.c says why this signal and not another). */
#pragma once

#include <stdint.h>
#include <sys/types.h>

/* How long a thread must be seen waiting in one userfaultfd fault, at two
 * looks at least this far apart, for its handler to count as not answering:
 * a second, the shortest period (a live handler answers in microseconds, or
 * milliseconds for a page over the network). */
#define MS_UFFD_UNANSWERED_US 1000000

/* Looks at the threads of process pid: which wait in handle_userfault
 * (/proc/PID/task/TID/wchan) and their voluntary_ctxt_switches
 * (.../status), and remembers them for the next look at pid (any caller,
 * any thread: the looks are the process's, not a target's).  1 when a
 * thread was seen waiting at an earlier look at least MS_UFFD_UNANSWERED_US
 * ago and has not run since (same count): one fault left unanswered all
 * that time; *seen (g_free) then says which thread and for how long.
 * 0 when none has (yet), -ESRCH when the process is gone, -errno when its
 * task directory cannot be read.  Thread-safe; a few small reads of /proc
 * per thread of the process, so call it only after a read was refused in a
 * userfaultfd mapping (pages.c). */
int ms_userfault_unanswered(pid_t pid, char **seen);

/* The voluntary_ctxt_switches of the text of /proc/PID/task/TID/status into
 * *out: 0, or -EINVAL when the field is missing or not a number. */
int ms_parse_voluntary_switches(const char *status, uint64_t *out);
