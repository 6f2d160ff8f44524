/* kernel.c: the optional kernel interfaces, probed on the daemon itself
 * (kernel.h). */
#define _GNU_SOURCE
#include "memstat/methods/kernel.h"

#include <errno.h>
#include <glib.h>
#include <sys/syscall.h>
#include <sys/uio.h>
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

	static volatile char probe[64] = {1};
	char local[64];
	struct iovec l = {local, sizeof(local)}, r = {(void *)probe, sizeof(probe)};
	e = process_vm_readv(getpid(), &l, 1, &r, 1, 0) == (ssize_t)sizeof(local) ? 0 : errno;
	report("process_vm_readv", e,
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
