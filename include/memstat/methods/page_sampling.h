/* page_sampling.h: the page-sampling method (collectors/methods/page_sampling.c says how it
 * measures). */
#pragma once

#include <glib.h>
#include <stddef.h>
#include <stdint.h>

#include "memstat/methods/method.h"

extern const ms_method ms_page_sampling;

/* How many pages a window samples from a population of pages_total pages
 * of page_size bytes at per_gib pages per GiB: QEMU's rule (rounded up),
 * at least 256 (or all of them), at most 2^20. */
size_t ms_sample_count(uint64_t pages_total, uint32_t page_size, uint32_t per_gib);

/* n distinct indices in [0, total), sorted ascending (g_free them). */
uint64_t *ms_pick_indices(GRand *r, uint64_t total, size_t n);
