/* ref.h: atomic reference counts, in our own code so that ThreadSanitizer
 * sees the synchronisation (GLib's are in an uninstrumented library). */
#pragma once

#include <stdbool.h>

typedef struct {
	int n;
} ms_ref;

static inline void ms_ref_init(ms_ref *r)
{
	__atomic_store_n(&r->n, 1, __ATOMIC_RELAXED);
}

static inline void ms_ref_get(ms_ref *r)
{
	__atomic_fetch_add(&r->n, 1, __ATOMIC_RELAXED);
}

/* True when that was the last reference: the caller frees. */
static inline bool ms_ref_put(ms_ref *r)
{
	return __atomic_sub_fetch(&r->n, 1, __ATOMIC_ACQ_REL) == 0;
}
