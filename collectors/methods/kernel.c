/* kernel.c: the optional kernel interfaces, probed on the daemon itself
 * (kernel.h). */
#define _GNU_SOURCE
#include "memstat/methods/kernel.h"

#include <errno.h>
#include <glib.h>
#include <sys/syscall.h>
#include <fcntl.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include "memstat/methods/method.h"
#include "memstat/methods/pagemap.h"
#include "memstat/methods/soft_dirty.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

/* What a filter answers for a call it refuses, or a kernel that lacks it. */
static bool refused(int e)
{
	return e == ENOSYS || e == EPERM || e == EACCES;
}

int ms_pidfd_open(pid_t pid)
{
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);

	if (fd >= 0)
		return fd;
	int e = errno;
	return e == ESRCH ? -ESRCH : refused(e) ? -ENOSYS : -e;
}

static void report(const char *name, int e, const char *instead)
{
	if (e == 0)
		g_message("kernel interface %s: in use", name);
	else
		g_message("kernel interface %s: not in use (%s%s): %s", name, g_strerror(e),
			  refused(e) && e != ENOSYS ? ", refused by a filter or an LSM" : "",
			  instead);
}

void ms_kernel_log_interfaces(void)
{
	int e = 0;

	int fd = (int)syscall(SYS_pidfd_open, getpid(), 0);
	if (fd >= 0)
		close(fd);
	report("pidfd_open", fd >= 0 ? 0 : errno,
	       "a process is told from a later one with its pid by its start time");

	report("PAGEMAP_SCAN", ms_pagemap_scan_errno(), "/proc/PID/pagemap is read entry by entry");
	if (ms_pagemap_scan_supported() && !ms_pagemap_scan_soft_dirty_supported())
		g_message("kernel interface PAGEMAP_SCAN: without the soft-dirty category: "
			  "soft-dirty reads /proc/PID/pagemap entry by entry");

	/* Pages are read with pread of /proc/PID/mem (pages.h), not
	 * process_vm_readv: an LSM may refuse the open, a filter the call. */
	static volatile char probe[64] = {1};
	char local[64];
	int mem = open("/proc/self/mem", O_RDONLY | O_CLOEXEC);
	e = mem < 0 ? errno
	    : pread(mem, local, sizeof(local), (off_t)(uintptr_t)probe) == (ssize_t)sizeof(local)
		    ? 0
		    : errno;
	if (mem >= 0)
		close(mem);
	report("/proc/PID/mem", e,
	       "modes that read pages (page-sampling, full-scan) fail with this error; "
	       "soft-dirty does without it");

	g_autofree char *why = NULL;
	if (ms_method_supported(&ms_soft_dirty, &why) < 0)
		g_message("kernel interface clear_refs (soft-dirty): not in use: %s; mode "
			  "soft-dirty is refused",
			  why);
	else
		g_message("kernel interface clear_refs (soft-dirty): in use");

	clockid_t clock;
	struct timespec ts;
	e = clock_getcpuclockid(getpid(), &clock);
	if (e == 0 && clock_gettime(clock, &ts) != 0)
		e = errno;
	report("per-process CPU clock", e, "page-sampling does without the target's CPU time");
}
