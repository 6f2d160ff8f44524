/* progress.h: how far the calling thread's reads of other processes have
 * got, for telling a step that is long from one that waits.
 *
 * Each read of another process that returns (a pread of /proc/PID/mem in
 * pages.c; a pread of /proc/PID/pagemap or a PAGEMAP_SCAN in pagemap.c),
 * with data or with an error, bumps a count of the calling thread.  A read
 * that never returns (a page of a file mapping on a mount whose server does
 * not answer) leaves it where it is.
 *
 * Ownership: the count is the thread's own (thread-local), written by that
 * thread alone (ms_read_returned, relaxed atomic stores).  Another thread
 * may load it (__atomic_load_n, __ATOMIC_RELAXED) through the pointer
 * ms_read_progress returned in the owning thread, for as long as that
 * thread lives and no longer.  The scheduler's watchdog does
 * (core/scheduler.c); nothing in methods/ knows of it. */
#pragma once

#include <stdint.h>

/* The calling thread's count of reads returned (never NULL). */
const uint64_t *ms_read_progress(void);

/* A read of another process made by the calling thread has returned. */
void ms_read_returned(void);
