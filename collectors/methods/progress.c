/* progress.c: the calling thread's count of reads returned (progress.h). */
#include "memstat/methods/progress.h"

/* Written by its thread alone (atomically, for the threads that load it). */
static __thread uint64_t reads_returned;

const uint64_t *ms_read_progress(void)
{
	return &reads_returned;
}

void ms_read_returned(void)
{
	__atomic_store_n(&reads_returned, reads_returned + 1, __ATOMIC_RELAXED);
}
