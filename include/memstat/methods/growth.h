/* growth.h: the dirty-set growth curve f(t), measured: the distinct pages
 * dirtied within t seconds, for a ladder of t, from one window, over the
 * pages of a backend (ms_growth_pages): one process's (here), or the union
 * of many processes' physical frames (frames.h: a cgroup's members).
 *
 * A method-level capability beside the rate methods (method.h), for any
 * source whose targets are processes (a process; a cgroup's members; a
 * QEMU process measured from outside): it knows nothing of targets, files
 * or threads.  One worker at a time calls ms_growth_step when
 * ms_growth_due_us says; no thread waits between the looks.
 *
 * How: at the window's open, draw pages (sample_pages per GiB of the
 * resident writable pages, at least 256, as page-sampling does; or all of
 * them, exact, as full-scan does, up to MS_GROWTH_EXACT_MAX_PAGES) and hash
 * them (XXH3).  At each step of
 * the ladder t_k = 0.1 s x 2^k (up to the horizon), look again at the
 * pages that are not dirty yet (a page changed once stays dirty: each
 * keeps a "dirty since the window opened" bit) and re-hash only those:
 *   f(t_k) = dirty_k / sampled x population
 * with the Wilson interval of dirty_k / sampled (finite-population
 * correction), as the rate's (measurement.h).  t_k is measured, from the
 * middle of the first look to the middle of the k-th.  A page that is not
 * resident at a look is not read (it stays as it was); one drawn
 * non-resident (no PAGEMAP_SCAN) that becomes resident counts as dirtied.
 *
 * Cost: the first look hashes every drawn page; look k re-hashes the
 * pages not dirty by look k-1: at most (ladder steps) x (drawn pages)
 * page reads per window, far fewer for a target whose drawn pages get
 * dirty early.  Limits as page-sampling's (a page rewritten with the same
 * bytes reads as clean; pages that become resident outside the drawn
 * population are not counted).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define MS_GROWTH_FIRST_MS  100 /* the ladder's first step */
#define MS_GROWTH_MAX_STEPS 16	/* 0.1 s x 2^15 = 3277 s: beyond any horizon */
/* Exact (every page) only up to this many pages (256 MiB of 4 KiB pages):
 * beyond, a look at every page at 0.1 s steps would take longer than the
 * step (and delay the rate's windows, which the same worker steps), so
 * the curve is sampled at this many pages per GiB (QEMU's maximum). */
#define MS_GROWTH_EXACT_MAX_PAGES    65536
#define MS_GROWTH_EXACT_ELSE_PER_GIB 16384

/* One point: t_s strictly increasing, 0 <= ci95_low <= pages <= ci95_high. */
typedef struct {
	double t_s;
	double pages;
	double ci95_low, ci95_high;
} ms_growth_step_point;

/* One window's curve. */
typedef struct {
	int64_t start_ms;	   /* Unix ms, when the window opened */
	uint32_t page_size;	   /* bytes */
	uint64_t pages_population; /* what the pages were drawn from */
	uint64_t pages_sampled;	   /* drawn */
	bool exact;		   /* every page of the population */
	uint64_t pages_read;	   /* page reads the window took (its cost) */
	uint64_t look_us;	   /* time spent looking (its cost), us */
	uint32_t n;		   /* points */
	ms_growth_step_point point[MS_GROWTH_MAX_STEPS];
} ms_growth_curve;

typedef struct ms_growth_probe ms_growth_probe;

/* What a window's open drew. */
typedef struct {
	size_t n;	     /* pages drawn */
	uint64_t population; /* pages they were drawn from */
	uint32_t page_size;  /* bytes */
	int64_t mid_us;	     /* CLOCK_MONOTONIC, the middle of the first look */
	uint64_t read;	     /* pages the first look read */
} ms_growth_drawn;

/* The pages a probe looks at, one kind per population (the pages of one
 * process here; the union of many processes' frames: frames.h).  Called
 * by the stepping worker only.  b is the backend's state. */
typedef struct {
	/* Draws the window's pages (ms_growth_sample_count) and takes the
	 * first look (residency and hashes): 0, -ESRCH, or -errno with
	 * *why. */
	int (*open)(void *b, uint32_t sample_pages, bool exact, ms_growth_drawn *out,
		    char **why);
	/* Looks again at the drawn pages idx[0..count) (ascending indices):
	 * changed[j] when page idx[j] was written since the open (it became
	 * resident, or its content differs; not resident now: as it was).
	 * *read is added the pages read.  0, -ESRCH, or -errno with *why. */
	int (*look)(void *b, const size_t *idx, size_t count, bool *changed, uint64_t *read,
		    char **why);
	/* Drops the open window's data. */
	void (*close)(void *b);
	void (*free)(void *b);
} ms_growth_pages;

/* How many pages a window draws of population pages of page_size bytes:
 * sample_pages per GiB, at least 256, as page-sampling (ms_sample_count);
 * all of them when *exact, up to MS_GROWTH_EXACT_MAX_PAGES (beyond, *exact
 * becomes false and MS_GROWTH_EXACT_ELSE_PER_GIB per GiB are drawn). */
size_t ms_growth_sample_count(uint64_t population, uint32_t page_size, uint32_t sample_pages,
			      bool *exact);

/* A probe of process pid (the caller checked access).  Never NULL. */
ms_growth_probe *ms_growth_probe_new(pid_t pid);
/* A probe over the pages of backend b (ops static; the probe owns b and
 * frees it with ops->free).  Never NULL. */
ms_growth_probe *ms_growth_probe_new_of(const ms_growth_pages *ops, void *b);
/* The backend state of a probe made by ms_growth_probe_new_of. */
void *ms_growth_probe_backend(ms_growth_probe *g);
void ms_growth_probe_free(ms_growth_probe *g);

/* Opens a window: sample_pages pages per GiB of the population, or all of
 * it when exact; the ladder runs up to horizon_ms (at least the first
 * step).  0, or -ESRCH / -errno with *why. */
int ms_growth_open(ms_growth_probe *g, uint32_t sample_pages, bool exact, uint32_t horizon_ms,
		   char **why);
/* Whether a window is open. */
bool ms_growth_is_open(const ms_growth_probe *g);
/* CLOCK_MONOTONIC us when the next look is due (open window only). */
int64_t ms_growth_due_us(const ms_growth_probe *g);
/* Takes the look that is due (none when it is not due yet): 1 with *out
 * when it was the ladder's last (the window is then closed), 0 when more
 * are to come, -ESRCH / -errno with *why (the window is closed). */
int ms_growth_step(ms_growth_probe *g, ms_growth_curve *out, char **why);
/* Drops the open window, if any. */
void ms_growth_close(ms_growth_probe *g);

/* What a source's step calls, every step, to keep a growth window going
 * while someone wants it (p->growth_ms > 0, ladder horizon): opens a
 * window when none is open, takes the look that is due, hands a finished
 * curve out and opens the next at once; when nobody wants it, drops the
 * window (and costs nothing more).  1 with *out (a finished curve), 0, or
 * -errno with *why (the next call opens anew).  *due_us: when the next
 * look is due (0 when none is open). */
int ms_growth_tick(ms_growth_probe *g, uint32_t growth_ms, uint32_t sample_pages, bool exact,
		   ms_growth_curve *out, int64_t *due_us, char **why);
