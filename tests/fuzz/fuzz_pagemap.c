/* fuzz_pagemap.c: /proc/PID/pagemap records (ms_pagemap_soft_dirty_pages).
 *
 * The input is read as the kernel's 64-bit records (host byte order; a
 * trailing partial record is dropped, as the collector drops a short read's
 * remainder), and the count is checked against a plain re-statement of
 * the rule: soft-dirty, and present or swapped.  Counting the two halves
 * separately must add up to the whole.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "memstat/methods/pagemap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t n = size / sizeof(uint64_t);
	/* Exactly n records on the heap: ASan sees a read past the last. */
	uint64_t *entries = malloc(n * sizeof(uint64_t));
	uint64_t expect = 0;

	if (n)
		memcpy(entries, data, n * sizeof(uint64_t));
	for (size_t i = 0; i < n; i++) {
		uint64_t e = entries[i];
		bool dirty = (e >> 55) & 1;
		bool present = (e >> 63) & 1, swapped = (e >> 62) & 1;
		expect += dirty && (present || swapped);
	}
	uint64_t all = ms_pagemap_soft_dirty_pages(entries, n);
	FUZZ_CHECK(all == expect);
	FUZZ_CHECK(all <= n);
	FUZZ_CHECK(ms_pagemap_soft_dirty_pages(entries, n / 2) +
			   ms_pagemap_soft_dirty_pages(entries + n / 2, n - n / 2) ==
		   all);
	free(entries);
	return 0;
}
