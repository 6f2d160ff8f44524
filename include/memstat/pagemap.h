/* pagemap.h: pure functions over /proc/PID/pagemap data (for the
 * collectors, the tests and the fuzzers). */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define MS_PM_PRESENT	 (1ULL << 63)
#define MS_PM_SWAPPED	 (1ULL << 62)
#define MS_PM_SOFT_DIRTY (1ULL << 55)

/* Pages written since soft-dirty was last cleared: entries with bit 55 that
 * are resident or swapped.  (A mapping created after the clear reads as
 * soft-dirty whole, including pages never touched: those do not count.) */
uint64_t ms_pagemap_soft_dirty_pages(const uint64_t *entries, size_t n);
