/* pages.h: reading the pages of another process (pread of /proc/PID/mem,
 * which never waits for a userfaultfd handler: pages.c) and hashing them
 * (xxh3), for the methods that compare contents. */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "memstat/methods/pagemap.h"

#define MS_READ_BATCH 256 /* most pages per read */
/* Pages per chunk of a census read in a random order of chunks (full-scan,
 * a container's exact window): 64 KiB, small enough that a pass is many
 * chunks, big enough that a read costs little more than its pages. */
#define MS_SCAN_CHUNK 16

typedef struct {
	pid_t pid;
	uint32_t page_size;
	uint64_t stalled_at;	/* after -EIO: the page userfaultfd would serve */
	uint64_t refused;	/* pages refused in a mapping userfaultfd serves
				 * (missing when read: not readable), added by
				 * every call; the caller zeroes it */
	int64_t *times;		/* when not NULL: ms_hash_runs writes, at each
				 * page's index, when its read returned
				 * (CLOCK_MONOTONIC µs; per read of up to
				 * MS_READ_BATCH pages), and ms_look_pages at
				 * each address's index (for a page not read,
				 * when its pagemap entry was read).  Owned by
				 * the caller, as long as the call. */
	uint32_t order_chunk;	/* 0, or ms_look_pages reads the resident
				 * pages in chunks of this many (in address
				 * order, a read each at most), the chunks in a
				 * random order: not in address order, which a
				 * writer walking its memory could follow
				 * (page_sampling.c 1, frames.c) */
	const GArray *resident; /* NULL, or runs (ms_range, sorted) a
				 * PAGEMAP_SCAN of this same look found
				 * resident: ms_look_pages takes a page in them
				 * as resident without reading its pagemap
				 * entry, and reads the entries of the others
				 * only.  Borrowed, as long as the call. */
} ms_page_reader;

void ms_page_reader_init(ms_page_reader *rd, pid_t pid);

/* Hashes every page of runs (GArray of ms_range), in order, into hashes
 * (readable[i] false for a page that could not be read: unmapped since the
 * runs were found, or missing from a mapping userfaultfd serves, which
 * rd->refused counts).  Reads up to MS_READ_BATCH pages per pread of
 * /proc/PID/mem (opened for the call), into a buffer of the calling
 * thread.  Never waits for the target.  When a page was refused by
 * userfaultfd and a thread of the process has waited for the handler in
 * one fault for MS_UFFD_UNANSWERED_US (userfault.h: the handler does not
 * answer), fails with -EIO and the first such page in rd->stalled_at, after
 * the other pages were read.  A file mapping whose page must be read from a
 * hung mount is the one wait left (the kernel gives no way to refuse it).
 * 0, -ESRCH, -EIO or -errno: ms_page_read_strerror says why. */
int ms_hash_runs(ms_page_reader *rd, const GArray *runs, uint64_t *hashes, bool *readable);

/* ms_hash_runs, the pages of run i written from index first[i] of hashes,
 * readable (and rd->times) on, not after the run before: runs read in one
 * order (full-scan's random order of chunks) land in another (the address
 * order), with no copy.  first NULL: ms_hash_runs. */
int ms_hash_runs_at(ms_page_reader *rd, const GArray *runs, const uint64_t *first, uint64_t *hashes,
		    bool *readable);

/* Hashes the pages at addrs (resident ones only: reading faults pages in),
 * as ms_hash_runs; pages next to each other are read together.
 * readable[i] is false for a page that could not be read (unmapped since).
 * 0, -ESRCH, -EIO or -errno. */
int ms_hash_pages(ms_page_reader *rd, const uint64_t *addrs, size_t count, uint64_t *hashes,
		  bool *readable);

/* A look at the pages of rd's process at addrs (page-aligned, ascending,
 * count of them): from its pagemap (or rd->resident), present[i] (resident now) and
 * readable[i] (mapped: resident or swapped; false too for a resident page
 * that could not be read, unmapped meanwhile); the resident ones read and
 * hashed into hashes (0 for the others).  *read (may be NULL) is added the
 * pages read.  Shared by page-sampling, the growth probe and the frames'
 * growth looks.  0, -ESRCH (gone), or -errno with *why. */
int ms_look_pages(ms_page_reader *rd, const uint64_t *addrs, size_t count, bool *present,
		  bool *readable, uint64_t *hashes, uint64_t *read, char **why);

/* The reason for an error of ms_hash_runs or ms_hash_pages, to follow
 * "cannot read the memory of process N: ".  For -EIO: what was seen of the
 * handler at the calling thread's last -EIO (valid until its next one).
 * Not to be freed. */
const char *ms_page_read_strerror(int err);
