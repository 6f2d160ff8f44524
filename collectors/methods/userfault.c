/* userfault.c: whether a process's userfaultfd handler answers
 * (userfault.h).
 *
 * A read of /proc/PID/mem refused with EIO in a mapping userfaultfd serves
 * (pages.c) says only that the page was missing at that instant.  A live
 * handler (the destination of a QEMU post-copy migration, CRIU's lazy
 * pages, a garbage collector) serves it when the process touches it; one
 * that died or hung never does.  The refused read itself cannot tell them
 * apart: the kernel refuses a fault that may not be retried before any
 * message reaches the handler (handle_userfault), so nothing is asked of it.
 *
 * What the kernel does show is the process's own faults.  A thread of it
 * that touched a missing page sleeps in handle_userfault (its wchan) until
 * the handler answers (UFFDIO_COPY, ZEROPAGE, CONTINUE or WAKE), and while
 * it sleeps its voluntary_ctxt_switches does not move: one wakeup, even a
 * spurious one or a signal, and the count moves.  So a thread seen in
 * handle_userfault with the same count at two looks has waited in one
 * fault for all the time between them, which the kernel, not a timer of
 * ours, vouches for.  When the looks are at least MS_UFFD_UNANSWERED_US
 * apart (a window of the shortest period) the handler is taken as not
 * answering.
 *
 * Not used, and why:
 *  - the userfaultfd's fdinfo (`pending`, `total`): only in the fd table of
 *    whoever holds the descriptor, which may be another process (CRIU's
 *    lazy-pages daemon, a monitor the fd was passed to);
 *  - the same refused page still missing at the next window: a live handler
 *    that serves only what is touched leaves an untouched page missing for
 *    ever (post-copy: pages the guest has not needed yet);
 *  - how long the read took: it is refused at once either way.
 * A handler that never answers a process that never touches a missing page
 * holds nothing and nobody: such a process is measured, its refused pages
 * counted as not readable.
 *
 *   lock  guards looks (pid -> uf_look: the waits seen at the last look at
 *         that pid).  Taken alone, never held while /proc is read.
 */
#define _GNU_SOURCE
#include "memstat/methods/userfault.h"

#include <dirent.h>
#include <errno.h>
#include <glib.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "memstat/methods/measurement.h"
#include "memstat/methods/procfs.h"

/* A look older than this is forgotten (its process untracked, or gone). */
#define FORGET_US (60 * G_USEC_PER_SEC)

typedef struct {
	pid_t tid;
	uint64_t switches; /* voluntary_ctxt_switches */
	int64_t since_us;  /* the first look that saw this wait */
} uf_wait;

typedef struct {
	int64_t at_us; /* when pid was last looked at */
	GArray *waits; /* uf_wait */
} uf_look;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static GHashTable *looks; /* GINT_TO_POINTER(pid) -> uf_look * (lock) */

static void look_free(void *p)
{
	uf_look *l = p;
	g_array_unref(l->waits);
	g_free(l);
}

int ms_parse_voluntary_switches(const char *status, uint64_t *out)
{
	const char *p = ms_status_value(status, "voluntary_ctxt_switches");
	char *end;

	if (!p)
		return -EINVAL;
	errno = 0;
	unsigned long long v = strtoull(p, &end, 10);
	if (errno || end == p || (*end && *end != '\n'))
		return -EINVAL;
	*out = v;
	return 0;
}

/* The threads of pid waiting in handle_userfault now, into waits
 * (since_us: now).  0, -ESRCH or -errno. */
static int waiting_now(pid_t pid, int64_t now, GArray *waits)
{
	char path[80];

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	DIR *d = opendir(path);
	if (!d)
		return errno == ENOENT || errno == ESRCH ? -ESRCH : -errno;
	for (struct dirent *e; (e = readdir(d));) {
		char *end;
		long tid = strtol(e->d_name, &end, 10);
		if (*end || tid <= 0)
			continue;
		g_autofree char *wchan = NULL, *status = NULL;
		snprintf(path, sizeof(path), "/proc/%d/task/%ld/wchan", (int)pid, tid);
		if (ms_read_file(path, &wchan, NULL) < 0 ||
		    strncmp(wchan, "handle_userfault", 16) != 0)
			continue; /* gone meanwhile, or not waiting there */
		uf_wait w = {(pid_t)tid, 0, now};
		snprintf(path, sizeof(path), "/proc/%d/task/%ld/status", (int)pid, tid);
		if (ms_read_file(path, &status, NULL) < 0 ||
		    ms_parse_voluntary_switches(status, &w.switches) < 0)
			continue;
		g_array_append_val(waits, w);
	}
	closedir(d);
	return 0;
}

int ms_userfault_unanswered(pid_t pid, char **seen)
{
	int64_t now = ms_now_us(CLOCK_MONOTONIC);
	GArray *waits = g_array_new(FALSE, FALSE, sizeof(uf_wait));
	int r = waiting_now(pid, now, waits);
	const uf_wait *longest = NULL;

	if (r < 0) {
		g_array_unref(waits);
		return r;
	}
	pthread_mutex_lock(&lock);
	if (!looks)
		looks = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, look_free);
	/* Forget the looks nobody has repeated for a while. */
	GHashTableIter it;
	void *value;
	g_hash_table_iter_init(&it, looks);
	while (g_hash_table_iter_next(&it, NULL, &value))
		if (now - ((uf_look *)value)->at_us > FORGET_US)
			g_hash_table_iter_remove(&it);
	uf_look *last = g_hash_table_lookup(looks, GINT_TO_POINTER(pid));
	/* A wait seen at the last look, with the same count, is the same
	 * wait: it began no later than that look did. */
	for (guint i = 0; last && i < waits->len; i++) {
		uf_wait *w = &g_array_index(waits, uf_wait, i);
		for (guint j = 0; j < last->waits->len; j++) {
			const uf_wait *o = &g_array_index(last->waits, uf_wait, j);
			if (o->tid == w->tid && o->switches == w->switches)
				w->since_us = o->since_us;
		}
		if (!longest || w->since_us < longest->since_us)
			longest = w;
	}
	r = longest && now - longest->since_us >= MS_UFFD_UNANSWERED_US;
	if (r && seen)
		*seen = g_strdup_printf("its thread %d has waited in handle_userfault for %.1f s "
					"(one fault: no switch since)",
					(int)longest->tid,
					(double)(now - longest->since_us) / G_USEC_PER_SEC);
	if (waits->len) {
		uf_look *l = g_new(uf_look, 1);
		l->at_us = now;
		l->waits = waits;
		g_hash_table_replace(looks, GINT_TO_POINTER(pid), l);
	} else {
		g_hash_table_remove(looks, GINT_TO_POINTER(pid));
		g_array_unref(waits);
	}
	pthread_mutex_unlock(&lock);
	return r;
}
