/* frames.h: many processes measured as one population of physical frames,
 * in windows (a cgroup's members: sources/cgroup.h).
 *
 * One population, the union: each window finds every member's resident
 * pages of its writable mappings (PAGEMAP_SCAN where the kernel has it,
 * else pagemap entries), and each page's physical frame (pagemap's PFN,
 * bits 0-54, which only CAP_SYS_ADMIN reads; without it every page is a
 * frame of its own, and shared pages are not told apart).  A frame that
 * several members map (shmem, a memfd, a shared file mapping, an anonymous
 * page still shared after fork) is one page of the population, whatever
 * number of processes map it.  Page-sampling draws pages from the distinct
 * frames (QEMU's rule, as for one process: ms_sample_count), an exact
 * window takes them all; each drawn frame is hashed through one member that
 * maps it.  At the close, every mapping the frame had at the open that is
 * still resident (in a member still there) is hashed again: the frame is
 * dirty when any of them differs, so a write that copied a page shared
 * after fork (the writer's mapping now holds a new frame with new content)
 * counts too, once.  Pages resident at the close that were neither resident
 * at the same address of the same member nor one of the open's frames are
 * new (counted exactly, deduplicated by frame, as pages_new).  Each member's
 * pages are read in a random order (of single pages when sampled, of chunks
 * of MS_SCAN_CHUNK pages when every frame is looked at), every read timed:
 * a frame's window runs from its read at the open to its read at the close
 * (the last of its mappings), so a member writing its memory in address
 * order is not followed by the look (ms_measurement_windows).  The interval
 * is the one of a sample drawn from that one population, widened by the
 * spread of the frames' windows (ms_measurement_finish).  The close's look
 * at the members is kept for an open that comes right after it: one look a
 * step, not two; after a census (full-scan) so is what it read, so that a
 * census reads each page once a period and its windows cover all the time,
 * as a process's full-scan (full_scan.c).
 *
 * Not thread-safe: one worker at a time owns an ms_frames (source.h).
 */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#include "memstat/methods/growth.h"
#include "memstat/methods/measurement.h"

struct ms_frame_mapping;
struct ms_frame_carry;

typedef struct {
	uint32_t ps; /* page size, bytes */
	GRand *rand;

	/* The open window. */
	bool open;
	const char *mode;		   /* static: the samples' mode name */
	GArray *members;		   /* one look per member (pid ascending), at the open */
	struct ms_frame_mapping *mappings; /* sorted by frame */
	size_t nmappings;
	uint64_t *frame_keys;  /* distinct frames, ascending */
	uint32_t *frame_first; /* index in mappings of each frame's first */
	size_t nframes;
	size_t n;	  /* frames drawn */
	uint64_t *drawn;  /* their indices in frame_keys */
	uint64_t *hashes; /* at the open */
	bool *readable;
	int64_t *start_times; /* when each was read (CLOCK_MONOTONIC µs) */
	uint64_t refused;     /* pages userfaultfd refused at the open (pages.h) */
	int64_t start_wall_ms, start_mid_us;
	int64_t last_end_us;  /* the last window's end, for coverage; 0: none */
	uint32_t order_chunk; /* pages read in a random order of chunks of this
			       * many: 1 when sampled, MS_SCAN_CHUNK for a
			       * census (a read per chunk, not per page) */

	/* What the last close found of its members, taken over by the open
	 * that comes right after it; NULL otherwise.  After a census, carry
	 * (GArray of struct ms_frame_carry) holds the pages that close read,
	 * their hashes and times: a census opened right after it starts
	 * those frames' windows there instead of reading them again. */
	GArray *next;
	GArray *carry;
	int64_t next_us;
} ms_frames;

/* A new state, no window open. */
void ms_frames_init(ms_frames *f);
/* Drops the open window and the kept look (a mode change, a rest). */
void ms_frames_rest(ms_frames *f);
/* ms_frames_rest, and frees what init made. */
void ms_frames_clear(ms_frames *f);
/* Drops the open window's data. */
void ms_frames_free_window(ms_frames *f);

/* Opens a window over the processes pids (GArray of pid_t, ascending):
 * sample_pages per GiB of the distinct frames, or every frame when exact;
 * mode is the samples' mode name (static).  0, or -errno with *why. */
int ms_frames_open(ms_frames *f, GArray *pids, const char *mode, bool exact, const ms_params *p,
		   char **why);
/* Closes the open window into *out: 1, or -errno with *why.  Members that
 * left meanwhile are looked at no more (their pages count as unmapped). */
int ms_frames_close(ms_frames *f, ms_measurement *out, char **why);

/* Looks again at the open window's drawn frames idx[0..count) (indices of
 * the drawn, ascending): changed[j] when a mapping the frame had at the
 * open, in a member that is still the same process and still resident at
 * that address, reads otherwise than at the open (a write, or a write
 * that copied a frame shared after fork, seen through the writer).  A
 * member that left is looked at no more; pages that became resident
 * elsewhere are not counted (growth.h).  *read is added the pages read.
 * 0, or -errno with *why. */
int ms_frames_look(ms_frames *f, const size_t *idx, size_t count, bool *changed, uint64_t *read,
		   char **why);

/* A growth probe (growth.h) over the union of a set of processes' frames:
 * each window draws from the distinct frames of the members given last
 * (ms_frames_growth_members), as a rate window does (a frame that several
 * members map is one page), and each look re-reads the drawn frames not
 * dirty yet through every mapping they had (ms_frames_look).  Never NULL;
 * free it with ms_growth_probe_free. */
ms_growth_probe *ms_frames_growth_new(void);
/* The members (GArray of pid_t, ascending; a reference is taken) the
 * next window of g (made by ms_frames_growth_new) opens over. */
void ms_frames_growth_members(ms_growth_probe *g, GArray *pids);
