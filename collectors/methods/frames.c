/* frames.c: many processes measured as one population of physical frames
 * (frames.h). */
#define _GNU_SOURCE
#include "memstat/methods/frames.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "memstat/methods/fail.h"
#include "memstat/methods/page_sampling.h"
#include "memstat/methods/pagemap.h"
#include "memstat/methods/pages.h"
#include "memstat/methods/proc.h"
#include "memstat/methods/procfs.h"

/* One member's resident pages at one look: addresses ascending, and each
 * page's frame key (its PFN, or a key of its own where none is readable). */
typedef struct {
	pid_t pid;
	unsigned long long starttime;
	GArray *addrs; /* uint64_t */
	GArray *keys;  /* uint64_t */
} cg_look;

/* One mapping of a frame: which member, which of its pages. */
typedef struct ms_frame_mapping {
	uint64_t key;
	uint32_t member;
	uint32_t page;
} cg_mapping;

/* ---- looking at members' pages ---- */

static void look_clear(gpointer p)
{
	cg_look *l = p;
	g_clear_pointer(&l->addrs, g_array_unref);
	g_clear_pointer(&l->keys, g_array_unref);
}

/* pid's resident pages of its writable mappings now, with their frames:
 * 0, -ESRCH (gone), or -errno with *why. */
static int look_at(pid_t pid, uint32_t ps, cg_look *out, char **why)
{
	g_autoptr(GArray) vmas = NULL;
	g_autoptr(GArray) runs = NULL;
	ms_proc_stat st;
	int r;

	if (ms_proc_stat_read(pid, &st) < 0 || st.state == 'Z' || st.state == 'X')
		return -ESRCH;
	if (st.flags & MS_PF_KTHREAD)
		return -ESRCH; /* no memory of its own: not a member to measure */
	if ((r = ms_proc_writable_vmas(pid, &vmas, why)) < 0)
		return r;
	if ((r = ms_pagemap_runs(pid, vmas,
				 ms_pagemap_scan_supported() ? MS_RUNS_SCAN : MS_RUNS_PAGEMAP,
				 &runs, why)) < 0)
		return r;
	uint64_t pages = ms_runs_pages(runs, ps);
	g_autofree uint64_t *entries = g_new(uint64_t, MAX(pages, 1));
	int fd = ms_open_pagemap(pid, why);
	if (fd < 0)
		return fd;
	r = ms_pagemap_entries_of_runs(fd, runs, ps, entries);
	close(fd);
	if (r < 0)
		return r == -ESRCH ? r
				   : ms_fail(why, r, "cannot read the pagemap of process %d: %s",
					     (int)pid, g_strerror(-r));
	out->pid = pid;
	out->starttime = st.starttime;
	out->addrs = g_array_sized_new(FALSE, FALSE, sizeof(uint64_t), (guint)pages);
	out->keys = g_array_sized_new(FALSE, FALSE, sizeof(uint64_t), (guint)pages);
	uint64_t k = 0;
	for (guint i = 0; i < runs->len; i++) {
		const ms_range *x = &g_array_index(runs, ms_range, i);
		for (uint64_t a = x->start; a < x->end; a += ps, k++) {
			if (!(entries[k] & MS_PM_PRESENT))
				continue; /* went away between the scan and the read */
			uint64_t pfn = entries[k] & MS_PM_PFN_MASK;
			/* Without a frame (a daemon without CAP_SYS_ADMIN): a
			 * key of this page's own, never shared. */
			uint64_t key =
				pfn ? pfn : (1ULL << 63) | (((uint64_t)pid << 36) ^ (a / ps));
			g_array_append_val(out->addrs, a);
			g_array_append_val(out->keys, key);
		}
	}
	return 0;
}

static bool find_u64(const uint64_t *v, size_t n, uint64_t x, size_t *at)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (v[mid] < x)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (at)
		*at = lo;
	return lo < n && v[lo] == x;
}

static gint cmp_u64_fn(gconstpointer a, gconstpointer b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

static int cmp_mapping(const void *a, const void *b)
{
	const cg_mapping *x = a, *y = b;
	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	if (x->member != y->member)
		return x->member < y->member ? -1 : 1;
	return (x->page > y->page) - (x->page < y->page);
}

/* A page read at a census's close, kept for the open that comes right after
 * it: one pass over the memory a period, not two (as full_scan.c). */
typedef struct {
	uint64_t addr, hash;
	int64_t time; /* when its read returned (CLOCK_MONOTONIC µs) */
} cg_carried;

/* One member's pages read at that close. */
typedef struct ms_frame_carry {
	pid_t pid;
	unsigned long long starttime;
	GArray *pages; /* cg_carried, ascending by addr: the readable ones */
} cg_carry;

static void carry_clear(gpointer p)
{
	g_clear_pointer(&((cg_carry *)p)->pages, g_array_unref);
}

/* What to read through one member: addresses, and for each the slot of
 * the drawn frame it belongs to. */
typedef struct {
	uint64_t addr;
	size_t slot;
} cg_read;

typedef struct {
	GArray *pairs; /* cg_read */
} cg_reads;

static gint cmp_read(gconstpointer a, gconstpointer b)
{
	const cg_read *x = a, *y = b;
	return (x->addr > y->addr) - (x->addr < y->addr);
}

/* Looks at the pages of reads (per member of looks): the ones still
 * resident at their address are read, each member's in a random order of
 * chunks of chunk pages (a
 * writer walking its memory in address order must not move with the look:
 * measurement.h), and each result handed to fn(slot, hash, ok), ok false for
 * a page not resident or not readable any more.  times (may be NULL; one
 * per slot, zeroed by the caller) gets, for each slot, when the last of its
 * pages was read (CLOCK_MONOTONIC µs).  *read (may be NULL) is added the
 * pages read, *refused (may be NULL) the pages userfaultfd refused
 * (pages.h).  carry (may be NULL; a GArray of cg_carry) gets each member's
 * readable pages, their hashes and times (carry needs times).  0, or -errno
 * with *why. */
static int hash_reads(GArray *looks, cg_reads *reads, uint32_t ps, uint32_t chunk,
		      void (*fn)(ms_frames *s, size_t slot, uint64_t h, bool ok, void *data),
		      ms_frames *s, void *data, int64_t *times, uint64_t *read, uint64_t *refused,
		      GArray *carry, char **why)
{
	for (guint m = 0; m < looks->len; m++) {
		GArray *pairs = reads[m].pairs;
		size_t n = pairs ? pairs->len : 0;
		if (n == 0)
			continue;
		g_array_sort(pairs, cmp_read); /* ms_look_pages takes them ascending */
		g_autofree uint64_t *addrs = g_new(uint64_t, n);
		g_autofree uint64_t *h = g_new(uint64_t, n);
		g_autofree bool *ok = g_new(bool, n);
		g_autofree bool *present = g_new(bool, n);
		g_autofree int64_t *t = times ? g_new(int64_t, n) : NULL;
		for (size_t i = 0; i < n; i++)
			addrs[i] = g_array_index(pairs, cg_read, i).addr;
		ms_page_reader reader;
		ms_page_reader_init(&reader, g_array_index(looks, cg_look, m).pid);
		reader.page_size = ps;
		reader.order_chunk = chunk;
		reader.times = t;
		int r = ms_look_pages(&reader, addrs, n, present, ok, h, read, why);
		if (refused)
			*refused += reader.refused;
		if (r == -ESRCH) {
			g_clear_pointer(why, g_free);
			memset(ok, 0, n * sizeof(*ok)); /* left meanwhile */
			memset(h, 0, n * sizeof(*h));
			if (t)
				for (size_t i = 0; i < n; i++)
					t[i] = ms_now_us(CLOCK_MONOTONIC);
		} else if (r < 0) {
			return r;
		}
		cg_carry kept = {0};
		if (carry && t) {
			const cg_look *l = &g_array_index(looks, cg_look, m);
			kept = (cg_carry){
				l->pid, l->starttime,
				g_array_sized_new(FALSE, FALSE, sizeof(cg_carried), (guint)n)};
		}
		for (size_t i = 0; i < n; i++) {
			size_t slot = g_array_index(pairs, cg_read, i).slot;
			if (times)
				times[slot] = MAX(times[slot], t[i]);
			fn(s, slot, h[i], ok[i] && present[i], data);
			if (kept.pages && ok[i] && present[i]) {
				cg_carried c = {addrs[i], h[i], t[i]};
				g_array_append_val(kept.pages, c);
			}
		}
		if (kept.pages)
			g_array_append_val(carry, kept);
	}
	return 0;
}

/* The hash and read time of pid's page at addr, as the last census's close
 * read it, when pid is still that process (l). */
static bool carried(GArray *carry, const cg_look *l, uint64_t addr, uint64_t *h, int64_t *t)
{
	guint lo = 0, hi = carry ? carry->len : 0;

	while (lo < hi) {
		guint mid = lo + (hi - lo) / 2;
		if (g_array_index(carry, cg_carry, mid).pid < l->pid)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!carry || lo == carry->len)
		return false;
	const cg_carry *c = &g_array_index(carry, cg_carry, lo);
	if (c->pid != l->pid || c->starttime != l->starttime)
		return false;
	size_t a = 0, b = c->pages->len;
	while (a < b) {
		size_t mid = a + (b - a) / 2;
		if (g_array_index(c->pages, cg_carried, mid).addr < addr)
			a = mid + 1;
		else
			b = mid;
	}
	if (a == c->pages->len || g_array_index(c->pages, cg_carried, a).addr != addr)
		return false;
	*h = g_array_index(c->pages, cg_carried, a).hash;
	*t = g_array_index(c->pages, cg_carried, a).time;
	return true;
}

static void reads_free(cg_reads *reads, guint n)
{
	for (guint i = 0; i < n; i++)
		g_clear_pointer(&reads[i].pairs, g_array_unref);
	g_free(reads);
}

static void reads_add(cg_reads *rd, uint64_t addr, size_t slot)
{
	cg_read one = {addr, slot};

	if (!rd->pairs)
		rd->pairs = g_array_new(FALSE, FALSE, sizeof(cg_read));
	g_array_append_val(rd->pairs, one);
}

void ms_frames_free_window(ms_frames *s)
{
	g_clear_pointer(&s->members, g_array_unref);
	g_clear_pointer(&s->mappings, g_free);
	g_clear_pointer(&s->frame_keys, g_free);
	g_clear_pointer(&s->frame_first, g_free);
	g_clear_pointer(&s->drawn, g_free);
	g_clear_pointer(&s->hashes, g_free);
	g_clear_pointer(&s->readable, g_free);
	g_clear_pointer(&s->start_times, g_free);
	s->nmappings = s->nframes = s->n = 0;
	s->open = false;
}

/* known's look of pid (known is ascending by pid), taken over, when pid is
 * still that process. */
static bool take_known(GArray *known, pid_t pid, cg_look *out)
{
	ms_proc_stat st;
	guint lo = 0, hi = known ? known->len : 0;

	while (lo < hi) {
		guint mid = lo + (hi - lo) / 2;
		if (g_array_index(known, cg_look, mid).pid < pid)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!known || lo == known->len)
		return false;
	cg_look *k = &g_array_index(known, cg_look, lo);
	if (k->pid != pid || !k->addrs)
		return false;
	if (ms_proc_stat_read(pid, &st) < 0 || st.starttime != k->starttime)
		return false;
	*out = *k;
	k->addrs = k->keys = NULL;
	return true;
}

/* The member looks of pids (those still there), ascending by pid; known:
 * looks just taken (or NULL). */
static int look_all(ms_frames *s, GArray *pids, GArray *known, GArray **out, char **why)
{
	GArray *looks = g_array_new(FALSE, TRUE, sizeof(cg_look));

	g_array_set_clear_func(looks, look_clear);
	for (guint i = 0; i < pids->len; i++) {
		cg_look l = {0};
		if (take_known(known, g_array_index(pids, pid_t, i), &l)) {
			g_array_append_val(looks, l);
			continue;
		}
		int r = look_at(g_array_index(pids, pid_t, i), s->ps, &l, why);
		if (r == -ESRCH) {
			g_clear_pointer(why, g_free);
			continue; /* left meanwhile */
		}
		if (r < 0) {
			g_array_unref(looks);
			return r;
		}
		g_array_append_val(looks, l);
	}
	*out = looks;
	return 0;
}

static void set_start(ms_frames *s, size_t slot, uint64_t h, bool ok, void *data)
{
	(void)data;
	s->hashes[slot] = h;
	s->readable[slot] = ok;
}

/* The open's first half: the members' looks, their mappings sorted by
 * frame and the distinct frames; the window is open, nothing drawn. */
static int gather(ms_frames *s, GArray *pids, const char *mode, char **why)
{
	int r;

	g_autoptr(GArray) known = g_steal_pointer(&s->next);

	/* Only straight after a close (not after a failed step retried). */
	if (ms_now_us(CLOCK_MONOTONIC) - s->next_us > 50000) {
		g_clear_pointer(&known, g_array_unref);
		g_clear_pointer(&s->carry, g_array_unref);
	}
	s->start_wall_ms = ms_now_us(CLOCK_REALTIME) / 1000;
	if ((r = look_all(s, pids, known, &s->members, why)) < 0)
		return r;
	s->mode = mode;
	/* Every mapping, then the distinct frames. */
	size_t total = 0;
	for (guint m = 0; m < s->members->len; m++)
		total += g_array_index(s->members, cg_look, m).addrs->len;
	s->mappings = g_new(cg_mapping, MAX(total, 1));
	for (guint m = 0; m < s->members->len; m++) {
		const cg_look *l = &g_array_index(s->members, cg_look, m);
		for (guint j = 0; j < l->keys->len; j++)
			s->mappings[s->nmappings++] =
				(cg_mapping){g_array_index(l->keys, uint64_t, j), m, j};
	}
	qsort(s->mappings, s->nmappings, sizeof(cg_mapping), cmp_mapping);
	s->frame_keys = g_new(uint64_t, MAX(total, 1));
	s->frame_first = g_new(uint32_t, MAX(total, 1));
	for (size_t i = 0; i < s->nmappings; i++) {
		if (s->nframes && s->frame_keys[s->nframes - 1] == s->mappings[i].key)
			continue;
		s->frame_keys[s->nframes] = s->mappings[i].key;
		s->frame_first[s->nframes++] = (uint32_t)i;
	}
	s->open = true;
	return 0;
}

/* The open's second half: draws n of the distinct frames and hashes each
 * through its first mapping. */
static int draw(ms_frames *s, size_t n, char **why)
{
	s->n = n;
	s->drawn = s->n ? ms_pick_indices(s->rand, s->nframes, s->n) : g_new(uint64_t, 1);
	s->hashes = g_new0(uint64_t, MAX(s->n, 1));
	s->readable = g_new0(bool, MAX(s->n, 1));
	s->start_times = g_new0(int64_t, MAX(s->n, 1));

	/* A census straight after a census's close: the frames that close
	 * read start from that read (their windows begin where the last ones
	 * ended); only the others are read now. */
	g_autoptr(GArray) carry = g_steal_pointer(&s->carry);
	if (s->n < s->nframes)
		g_clear_pointer(&carry, g_array_unref);
	cg_reads *reads = g_new0(cg_reads, MAX(s->members->len, 1));
	for (size_t i = 0; i < s->n; i++) {
		const cg_mapping *mp = &s->mappings[s->frame_first[s->drawn[i]]];
		const cg_look *l = &g_array_index(s->members, cg_look, mp->member);
		uint64_t addr = g_array_index(l->addrs, uint64_t, mp->page);
		if (carried(carry, l, addr, &s->hashes[i], &s->start_times[i])) {
			s->readable[i] = true;
			continue;
		}
		reads_add(&reads[mp->member], addr, i);
	}
	int64_t t0 = ms_now_us(CLOCK_MONOTONIC);
	s->refused = 0;
	int r = hash_reads(s->members, reads, s->ps, s->order_chunk, set_start, s, NULL,
			   s->start_times, NULL, &s->refused, NULL, why);
	s->start_mid_us = (t0 + ms_now_us(CLOCK_MONOTONIC)) / 2;
	reads_free(reads, s->members->len);
	return r;
}

int ms_frames_open(ms_frames *s, GArray *pids, const char *mode, bool exact, const ms_params *p,
		   char **why)
{
	int r = gather(s, pids, mode, why);
	if (r < 0)
		return r;
	s->order_chunk = exact ? MS_SCAN_CHUNK : 1;
	return draw(s, exact ? s->nframes : ms_sample_count(s->nframes, s->ps, p->sample_pages),
		    why);
}

/* What a look again found: changed[j] for the drawn frame idx[j]. */
typedef struct {
	const size_t *idx;
	bool *changed;
} cg_relook;

static void set_relook(ms_frames *s, size_t slot, uint64_t h, bool ok, void *data)
{
	cg_relook *c = data;
	if (ok && h != s->hashes[c->idx[slot]])
		c->changed[slot] = true;
}

int ms_frames_look(ms_frames *s, const size_t *idx, size_t count, bool *changed, uint64_t *read,
		   char **why)
{
	guint nm = s->members->len;
	cg_reads *reads = g_new0(cg_reads, MAX(nm, 1));

	memset(changed, 0, count * sizeof(*changed));
	/* Every mapping the drawn frame had at the open, in the members
	 * that are still the same processes. */
	g_autofree bool *here = g_new0(bool, MAX(nm, 1));
	for (guint m = 0; m < nm; m++) {
		const cg_look *l = &g_array_index(s->members, cg_look, m);
		ms_proc_stat st;
		here[m] = ms_proc_stat_read(l->pid, &st) == 0 && st.starttime == l->starttime;
	}
	for (size_t j = 0; j < count; j++) {
		size_t f = s->drawn[idx[j]];
		if (!s->readable[idx[j]])
			continue; /* never read: never found dirty */
		size_t end = f + 1 < s->nframes ? s->frame_first[f + 1] : s->nmappings;
		for (size_t k = s->frame_first[f]; k < end; k++) {
			const cg_mapping *mp = &s->mappings[k];
			const cg_look *l = &g_array_index(s->members, cg_look, mp->member);
			if (here[mp->member])
				reads_add(&reads[mp->member],
					  g_array_index(l->addrs, uint64_t, mp->page), j);
		}
	}
	/* Through each member, the mappings still resident: the frame is
	 * dirty when one of them reads otherwise than at the open. */
	cg_relook c = {idx, changed};
	int r = hash_reads(s->members, reads, s->ps, s->order_chunk, set_relook, s, &c, NULL, read,
			   NULL, NULL, why);
	reads_free(reads, nm);
	return r;
}

/* ---- a growth probe over the union (growth.h) ---- */

typedef struct {
	ms_frames f;
	GArray *pids; /* the members the next window opens over */
} frames_growth;

static int fg_open(void *b, uint32_t sample_pages, bool exact, ms_growth_drawn *out, char **why)
{
	frames_growth *fg = b;

	ms_frames_free_window(&fg->f);
	if (!fg->pids || fg->pids->len == 0)
		return ms_fail(why, -ENOENT, "no member to measure");
	int r = gather(&fg->f, fg->pids, "growth", why);
	if (r < 0)
		return r;
	size_t n = ms_growth_sample_count(fg->f.nframes, fg->f.ps, sample_pages, &exact);
	fg->f.order_chunk = exact ? MS_SCAN_CHUNK : 1;
	r = draw(&fg->f, n, why);
	out->n = n;
	out->population = fg->f.nframes;
	out->page_size = fg->f.ps;
	out->mid_us = fg->f.start_mid_us;
	out->read = n;
	return r;
}

static int fg_look(void *b, const size_t *idx, size_t count, bool *changed, uint64_t *read,
		   char **why)
{
	return ms_frames_look(&((frames_growth *)b)->f, idx, count, changed, read, why);
}

static void fg_close(void *b)
{
	ms_frames_free_window(&((frames_growth *)b)->f);
}

static void fg_free(void *b)
{
	frames_growth *fg = b;

	ms_frames_clear(&fg->f);
	g_clear_pointer(&fg->pids, g_array_unref);
	g_free(fg);
}

static const ms_growth_pages frames_growth_ops = {
	.open = fg_open,
	.look = fg_look,
	.close = fg_close,
	.free = fg_free,
};

ms_growth_probe *ms_frames_growth_new(void)
{
	frames_growth *fg = g_new0(frames_growth, 1);

	ms_frames_init(&fg->f);
	return ms_growth_probe_new_of(&frames_growth_ops, fg);
}

void ms_frames_growth_members(ms_growth_probe *g, GArray *pids)
{
	frames_growth *fg = ms_growth_probe_backend(g);

	g_clear_pointer(&fg->pids, g_array_unref);
	fg->pids = g_array_ref(pids);
}

/* What the close found of each drawn frame. */
typedef struct {
	bool *seen;    /* some mapping still resident and readable */
	bool *changed; /* some mapping's content differs */
} cg_close;

static void set_end(ms_frames *s, size_t slot, uint64_t h, bool ok, void *data)
{
	cg_close *c = data;
	if (!ok)
		return;
	c->seen[slot] = true;
	c->changed[slot] |= h != s->hashes[slot];
}

int ms_frames_close(ms_frames *s, ms_measurement *out, char **why)
{
	g_autoptr(GArray) pids = g_array_new(FALSE, FALSE, sizeof(pid_t));
	g_autoptr(GArray) now = NULL;
	int r;

	/* The open's members that are still the same processes. */
	for (guint m = 0; m < s->members->len; m++)
		g_array_append_val(pids, g_array_index(s->members, cg_look, m).pid);
	if ((r = look_all(s, pids, NULL, &now, why)) < 0)
		return r;
	/* now[i] for member m, or -1 when m has left (or its pid is another's). */
	g_autofree int *now_of = g_new(int, MAX(s->members->len, 1));
	for (guint m = 0, i = 0; m < s->members->len; m++) {
		const cg_look *l = &g_array_index(s->members, cg_look, m);
		now_of[m] = -1;
		while (i < now->len && g_array_index(now, cg_look, i).pid < l->pid)
			i++;
		if (i < now->len && g_array_index(now, cg_look, i).pid == l->pid &&
		    g_array_index(now, cg_look, i).starttime == l->starttime)
			now_of[m] = (int)i;
	}
	cg_reads *reads = g_new0(cg_reads, MAX(now->len, 1));
	for (size_t i = 0; i < s->n; i++) {
		size_t f = s->drawn[i];
		size_t end = f + 1 < s->nframes ? s->frame_first[f + 1] : s->nmappings;
		for (size_t k = s->frame_first[f]; k < end; k++) {
			const cg_mapping *mp = &s->mappings[k];
			if (now_of[mp->member] < 0)
				continue;
			const cg_look *was = &g_array_index(s->members, cg_look, mp->member);
			const cg_look *is = &g_array_index(now, cg_look, now_of[mp->member]);
			uint64_t addr = g_array_index(was->addrs, uint64_t, mp->page);
			if (find_u64((uint64_t *)(void *)is->addrs->data, is->addrs->len, addr,
				     NULL))
				reads_add(&reads[now_of[mp->member]], addr, i);
		}
	}
	g_autofree bool *seen = g_new0(bool, MAX(s->n, 1));
	g_autofree bool *changed = g_new0(bool, MAX(s->n, 1));
	g_autofree int64_t *end_times = g_new0(int64_t, MAX(s->n, 1));
	cg_close c = {seen, changed};
	int64_t t0 = ms_now_us(CLOCK_MONOTONIC);
	/* A census keeps what it read for the next census's open. */
	g_autoptr(GArray) carry = NULL;
	if (s->n == s->nframes) {
		carry = g_array_new(FALSE, TRUE, sizeof(cg_carry));
		g_array_set_clear_func(carry, carry_clear);
	}
	uint64_t refused = 0;
	r = hash_reads(now, reads, s->ps, s->order_chunk, set_end, s, &c, end_times, NULL, &refused,
		       carry, why);
	int64_t mid = (t0 + ms_now_us(CLOCK_MONOTONIC)) / 2;
	reads_free(reads, now->len);
	if (r < 0)
		return r;
	/* Each drawn frame's own window, from its read at the open to its
	 * last read now, for the frames read both times (as page-sampling's:
	 * ms_measurement_windows). */
	g_autofree int64_t *first = g_new(int64_t, MAX(s->n, 1));
	g_autofree int64_t *second = g_new(int64_t, MAX(s->n, 1));
	size_t both = 0;
	for (size_t i = 0; i < s->n; i++)
		if (s->readable[i] && seen[i]) {
			first[both] = s->start_times[i];
			second[both++] = end_times[i];
		}

	ms_measurement_begin(out, s->mode,
			     ms_pagemap_scan_supported() ? "cgroup+pagemap_scan+pfn+proc_mem"
							 : "cgroup+pagemap+pfn+proc_mem",
			     s->start_wall_ms, s->start_mid_us, mid, s->ps);
	out->processes = s->members->len;
	out->pages_total = s->nframes;
	out->pages_population = s->nframes;
	out->pages_sampled = s->n;
	out->pages_refused = s->refused + refused;
	out->order_chunk = s->order_chunk;
	int64_t end = ms_measurement_windows(out, first, second, both, mid);
	ms_measurement_coverage(out, s->last_end_us, end);
	s->last_end_us = end;
	for (size_t i = 0; i < s->n; i++) {
		if (!s->readable[i] || !seen[i])
			out->pages_unmapped++;
		else if (changed[i])
			out->pages_dirty++;
	}
	/* New: resident now at an address of a member that had none there,
	 * in a frame that was not one of the open's; each frame once. */
	g_autoptr(GArray) fresh = g_array_new(FALSE, FALSE, sizeof(uint64_t));
	for (guint m = 0; m < s->members->len; m++) {
		if (now_of[m] < 0)
			continue;
		const cg_look *was = &g_array_index(s->members, cg_look, m);
		const cg_look *is = &g_array_index(now, cg_look, now_of[m]);
		for (guint j = 0; j < is->addrs->len; j++) {
			uint64_t a = g_array_index(is->addrs, uint64_t, j);
			uint64_t key = g_array_index(is->keys, uint64_t, j);
			if (!find_u64((uint64_t *)(void *)was->addrs->data, was->addrs->len, a,
				      NULL) &&
			    !find_u64(s->frame_keys, s->nframes, key, NULL))
				g_array_append_val(fresh, key);
		}
	}
	g_array_sort(fresh, cmp_u64_fn);
	for (guint j = 0; j < fresh->len; j++)
		out->pages_new += j == 0 || g_array_index(fresh, uint64_t, j) !=
						    g_array_index(fresh, uint64_t, j - 1);
	ms_measurement_finish(out);
	g_clear_pointer(&s->next, g_array_unref);
	s->next = g_steal_pointer(&now);
	g_clear_pointer(&s->carry, g_array_unref);
	s->carry = g_steal_pointer(&carry);
	s->next_us = ms_now_us(CLOCK_MONOTONIC);
	return 1;
}

void ms_frames_init(ms_frames *s)
{
	memset(s, 0, sizeof(*s));
	s->ps = (uint32_t)sysconf(_SC_PAGESIZE);
	s->rand = g_rand_new();
}

void ms_frames_rest(ms_frames *s)
{
	ms_frames_free_window(s);
	g_clear_pointer(&s->next, g_array_unref);
	g_clear_pointer(&s->carry, g_array_unref);
	s->last_end_us = 0;
}

void ms_frames_clear(ms_frames *s)
{
	ms_frames_rest(s);
	g_clear_pointer(&s->rand, g_rand_free);
}
