/* pagemap_scan.h: the PAGEMAP_SCAN ioctl on /proc/PID/pagemap (Linux 6.7+,
 * include/uapi/linux/fs.h).  Debian 12's headers (6.1) lack it, so the
 * definitions are carried here under our own names; the layout is the
 * kernel's ABI. */
#pragma once

#include <linux/ioctl.h>
#include <stdint.h>

#define MS_PAGE_IS_PRESENT    (1ULL << 3)
#define MS_PAGE_IS_SWAPPED    (1ULL << 4)
#define MS_PAGE_IS_PFNZERO    (1ULL << 5)
#define MS_PAGE_IS_SOFT_DIRTY (1ULL << 7)

#define MS_PM_SCAN_MAX_REGIONS 512

struct ms_page_region {
	uint64_t start;
	uint64_t end; /* exclusive */
	uint64_t categories;
};

struct ms_pm_scan_arg {
	uint64_t size; /* sizeof(struct ms_pm_scan_arg) */
	uint64_t flags;
	uint64_t start;
	uint64_t end;
	uint64_t walk_end; /* out: where the walk stopped */
	uint64_t vec;	   /* struct ms_page_region[] */
	uint64_t vec_len;
	uint64_t max_pages;
	uint64_t category_inverted;
	uint64_t category_mask;
	uint64_t category_anyof_mask;
	uint64_t return_mask;
};

#define MS_PAGEMAP_SCAN _IOWR('f', 16, struct ms_pm_scan_arg)
