/* kernel.h: the optional kernel interfaces the daemon uses, what it does
 * without each, and the start-up log of which are in use.
 *
 * Any of them may be missing from an older kernel (ENOSYS, ENOTTY, EINVAL)
 * or refused by a seccomp filter or an LSM (EPERM, EACCES, or ENOSYS, as
 * container runtimes' default profiles answer what they do not know).  A
 * refusal is treated as the interface's absence wherever there is a way
 * without it:
 *   pidfd_open        without: a process is told from a later one with its
 *                     pid by its start time (ms_proc_alive)
 *   PAGEMAP_SCAN      without: /proc/PID/pagemap read entry by entry
 *                     (each category used is probed, pagemap.h)
 *   clear_refs        without: mode soft-dirty is refused (EOPNOTSUPP,
 *                     with the reason)
 *   CPU clock         without: page-sampling does without the target's
 *                     CPU time (clock_getcpuclockid)
 *   /proc/PID/mem     (pread, how pages are read: pages.h) no way
 *                     without: measuring a process's pages fails with
 *                     its errno, the reason in status; process_vm_readv
 *                     is not used, and a filter refusing it changes
 *                     nothing
 */
#pragma once

#include <sys/types.h>

/* pidfd_open(pid, 0): the pidfd; -ESRCH (no such process); -ENOSYS when
 * this daemon cannot have pidfds (the kernel lacks the call, or a filter
 * refuses it with ENOSYS, EPERM or EACCES): go on without one; another
 * -errno (-EMFILE...). */
int ms_pidfd_open(pid_t pid);

/* Probes each interface on the daemon itself and logs, one line each,
 * whether it is in use and, if not, why and what is done instead. */
void ms_kernel_log_interfaces(void);
