/* scheduler.c: workers and the schedule (scheduler.h).
 *
 * Locks and reference counts are pthread's and our own (ref.h), not GLib's,
 * so that ThreadSanitizer can follow them.
 *
 *   s->lock  guards jobs, schedule, stopping, every job's fields, the
 *            workers (the array, and each one's job, start, held and what
 *            the watchdog saw of its progress) and live.  Taken after the
 *            registry's lock, before any target's (the watchdog tells a
 *            target it is held under it); never held while a step runs.
 * A worker's read count (ms_read_progress, methods/progress.h) is its own
 * thread's, written by it alone; the watchdog loads it atomically, only
 * while the worker is in s->workers (it leaves that array before it ends).
 * A job is the worker's that took it from the schedule (running): it alone
 * steps the target until it puts the job back; a job dropped (done, removed,
 * stopping) is never stepped again, and its last worker rests it.
 *
 * A target must never hold a measuring thread for long: the page reads
 * cannot be held by userfaultfd (pages.c), but a page of a file mapping that
 * has to be read from a mount whose server does not answer (a hung FUSE or
 * NFS mount) can hold a read for ever.  The watchdog thread looks at the
 * workers every second: one whose step has gone HELD_US (or two of the
 * target's periods, if longer) without a read returning is held.  A step
 * may be long and still be going on (a full-scan of tens of GiB, a slow
 * machine, a slow mount that does answer): each read of another process
 * (its memory or pagemap) that returns counts (ms_read_progress), and a
 * step whose count moved since the watchdog's last look is not held.  The
 * quiet time must also span as many of the watchdog's own looks as it has
 * seconds: a watchdog that did not run (the daemon stopped, a host starved
 * of CPU) saw nothing, and blames no step for it.  A step that reads
 * nothing of a process (a QMP question) is held HELD_US after it started.
 * The held worker's target is told (ms_target_stuck: `error` with the
 * reason, until that step returns) and a new worker takes its place, so
 * the other targets keep their periods; the held worker ends when its step
 * returns, and its target leaves `error` then (target.c).  Every held worker's target is
 * told; its place is taken while fewer than MAX_HELD held workers exist (a
 * later tick takes it when one ends, or when pthread_create failed).
 */
#define _GNU_SOURCE /* pthread_timedjoin_np */
#include "memstat/core/scheduler.h"

#include "memstat/methods/progress.h"

#include <pthread.h>
#include <signal.h>
#include <time.h>

/* Workers wake on a 20 ms grid: jobs due within the same 20 ms run one after
 * the other at one wake-up (at most 20 ms late), not one wake-up each (a
 * thousand targets would mean a thousand a second). */
#define WAKE_GRID_US 20000

/* A step in which no read has returned for this long (or two of its
 * target's periods), over as many of the watchdog's looks as it has
 * seconds, holds its worker. */
#define HELD_US	    (5 * G_USEC_PER_SEC)
#define WATCH_US    G_USEC_PER_SEC
#define MAX_WORKERS 64 /* -o workers= at most */
#define MAX_HELD    64 /* held workers beside them, at most */

typedef struct {
	ms_target *t;	    /* a reference */
	int64_t due_us;	    /* mono_us() when the next step is due */
	GSequenceIter *it;  /* where it waits in the schedule, or NULL */
	bool running, gone; /* a worker steps it; removed meanwhile */
	int64_t period_us;  /* its period, as its last step said */
} job;

typedef struct {
	ms_scheduler *s;
	pthread_t thread;
	job *j;			  /* the job it steps, or NULL */
	int64_t started_us;	  /* when that step started */
	bool held;		  /* replaced: ends when its step returns */
	const uint64_t *progress; /* its thread's reads returned
				   * (ms_read_progress): loaded atomically */
	/* The watchdog's looks at the running step: the count it saw last,
	 * when it last moved (or the step started), and how many looks have
	 * seen it unchanged since. */
	uint64_t seen;
	int64_t quiet_since_us;
	uint32_t quiet_looks;
} worker;

struct ms_scheduler {
	ms_settled_fn settled;
	void *data;
	uint32_t nworkers;  /* workers that take jobs, held ones not counted */
	GPtrArray *workers; /* worker *, held ones included */
	GPtrArray *ended;   /* worker *: held ones whose step returned, to join */
	uint32_t held;	    /* workers held by a target now */
	pthread_t watchdog;
	pthread_cond_t watch; /* stopping (CLOCK_MONOTONIC) */

	pthread_mutex_t lock;
	pthread_cond_t cond; /* the schedule's first job changed, or stopping
			      * (CLOCK_MONOTONIC) */
	GHashTable *jobs;    /* ms_target * -> job */
	GSequence *schedule; /* jobs waiting, earliest due first */
	bool stopping;
};

static int64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static gint by_due(gconstpointer a, gconstpointer b, gpointer data)
{
	const job *x = a, *y = b;
	(void)data;
	if (x->due_us != y->due_us)
		return x->due_us < y->due_us ? -1 : 1;
	uint32_t i = ms_target_id(x->t), j = ms_target_id(y->t);
	return i < j ? -1 : i > j;
}

/* Under s->lock. */
static void schedule_at(ms_scheduler *s, job *j, int64_t due_us)
{
	j->due_us = due_us;
	j->it = g_sequence_insert_sorted(s->schedule, j, by_due, NULL);
	/* Workers sleep until the first job is due: only a new first one
	 * changes that (not every job put back a period later). */
	if (g_sequence_iter_is_begin(j->it))
		pthread_cond_broadcast(&s->cond);
}

static void job_free(gpointer p)
{
	job *j = p;
	ms_target_unref(j->t);
	g_free(j);
}

/* Runs j's step (the worker w owns j) and puts it back, or drops it. */
static void run_job(ms_scheduler *s, worker *w, job *j)
{
	int64_t started = mono_us();
	ms_step_outcome o = ms_target_step(j->t);

	pthread_mutex_lock(&s->lock);
	w->j = NULL; /* before j may be freed: the watchdog looks at it */
	j->running = false;
	j->period_us = o.period_us;
	bool drop = o.done || j->gone || s->stopping;
	if (!drop) {
		/* One period after it was due, not after it started: the
		 * wake-up grid's lateness does not add up (unless it ran a
		 * whole period late: no catching up). */
		int64_t next = j->due_us + o.period_us > started ? j->due_us + o.period_us
								 : started + o.period_us;
		schedule_at(s, j, o.again_us ? mono_us() + o.again_us : next);
	}
	ms_target *t = ms_target_ref(j->t);
	if (j->gone)
		job_free(j);
	pthread_mutex_unlock(&s->lock);

	/* Dropped, t is in no schedule: this worker still owns it.  Free what
	 * measuring holds now: the target may stay listed (exited) for a long
	 * time. */
	if (drop)
		ms_target_rest(t);
	if ((o.settled || o.changed) && s->settled)
		s->settled(t, o.settled, s->data);
	ms_target_unref(t);
}

static void *worker_main(void *data)
{
	worker *w = data;
	ms_scheduler *s = w->s;

	pthread_mutex_lock(&s->lock);
	w->progress = ms_read_progress();
	while (!s->stopping && !w->held) {
		GSequenceIter *it = g_sequence_get_begin_iter(s->schedule);
		if (g_sequence_iter_is_end(it)) {
			pthread_cond_wait(&s->cond, &s->lock);
			continue;
		}
		job *j = g_sequence_get(it);
		if (j->due_us > mono_us()) {
			int64_t wake = (j->due_us + WAKE_GRID_US - 1) / WAKE_GRID_US * WAKE_GRID_US;
			struct timespec until = {.tv_sec = wake / 1000000,
						 .tv_nsec = (wake % 1000000) * 1000};
			pthread_cond_timedwait(&s->cond, &s->lock, &until);
			continue;
		}
		g_sequence_remove(it);
		j->it = NULL;
		j->running = true;
		w->j = j;
		w->started_us = w->quiet_since_us = mono_us();
		w->seen = __atomic_load_n(w->progress, __ATOMIC_RELAXED);
		w->quiet_looks = 0;
		pthread_mutex_unlock(&s->lock);
		run_job(s, w, j);
		pthread_mutex_lock(&s->lock);
	}
	if (w->held) {
		/* Replaced while its step was held: leave, to be joined. */
		s->held--;
		g_ptr_array_remove_fast(s->workers, w);
		g_ptr_array_add(s->ended, w);
		pthread_cond_signal(&s->watch);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

/* Under s->lock: a new worker, signals blocked (SIGTERM must reach the
 * thread that runs the FUSE loop, or it would not notice it should stop). */
static void start_worker(ms_scheduler *s)
{
	worker *w = g_new0(worker, 1);
	sigset_t all, old;

	w->s = s;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	int r = pthread_create(&w->thread, NULL, worker_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r != 0) {
		g_warning("cannot start a worker thread: %s", g_strerror(r));
		g_free(w);
		return;
	}
	g_ptr_array_add(s->workers, w);
}

/* What the watchdog told a held worker's target (ms_target_stuck), for the
 * log and its readers once s->lock is let go. */
typedef struct {
	int64_t step_us, quiet_us; /* the step's run, and without a read */
	bool settled, changed;
} stuck_tell;

/* Every WATCH_US: the workers held by a target are replaced, their targets
 * told; the held ones that ended are joined. */
static void *watchdog_main(void *data)
{
	ms_scheduler *s = data;

	pthread_mutex_lock(&s->lock);
	while (!s->stopping) {
		/* Nothing is allocated while no worker is held. */
		int64_t now = mono_us();
		GPtrArray *stuck = NULL;
		GArray *told = NULL;
		for (guint i = 0; i < s->workers->len; i++) {
			worker *w = g_ptr_array_index(s->workers, i);
			if (!w->j || w->held)
				continue;
			uint64_t n = __atomic_load_n(w->progress, __ATOMIC_RELAXED);
			if (n != w->seen) {
				w->seen = n;
				w->quiet_since_us = now;
				w->quiet_looks = 0;
				continue;
			}
			w->quiet_looks++;
			int64_t limit = MAX(HELD_US, 2 * w->j->period_us);
			if (now - w->quiet_since_us < limit || w->quiet_looks < limit / WATCH_US)
				continue;
			/* Told while w still owns the job: a step that has
			 * just returned is not marked held after the fact. */
			stuck_tell tell = {.step_us = now - w->started_us,
					   .quiet_us = now - w->quiet_since_us};
			if (!ms_target_stuck(w->j->t, tell.step_us / 1000, tell.quiet_us / 1000,
					     &tell.settled, &tell.changed))
				continue;
			w->held = true;
			s->held++;
			if (!stuck) {
				stuck = g_ptr_array_new();
				told = g_array_new(FALSE, FALSE, sizeof(stuck_tell));
			}
			g_ptr_array_add(stuck, ms_target_ref(w->j->t));
			g_array_append_val(told, tell);
		}
		/* The held ones' places, taken by new workers while there is
		 * room: a place not taken now (no room, or pthread_create
		 * failed) is taken at a later tick. */
		while (s->workers->len - s->held < s->nworkers &&
		       s->workers->len < s->nworkers + MAX_HELD) {
			guint before = s->workers->len;
			start_worker(s);
			if (s->workers->len == before)
				break;
		}
		GPtrArray *ended = NULL;
		if (s->ended->len) {
			ended = s->ended;
			s->ended = g_ptr_array_new();
		}
		pthread_mutex_unlock(&s->lock);

		for (guint i = 0; ended && i < ended->len; i++) {
			worker *w = g_ptr_array_index(ended, i);
			pthread_join(w->thread, NULL);
			g_free(w);
		}
		for (guint i = 0; stuck && i < stuck->len; i++) {
			ms_target *t = g_ptr_array_index(stuck, i);
			const stuck_tell *tell = &g_array_index(told, stuck_tell, i);
			g_warning("%s: a worker has been held for %.1f s measuring it (no read in "
				  "it returned for %.1f s); another takes its place",
				  ms_target_name(t), (double)tell->step_us / G_USEC_PER_SEC,
				  (double)tell->quiet_us / G_USEC_PER_SEC);
			/* Readers parked before a first figure get its error. */
			if ((tell->settled || tell->changed) && s->settled)
				s->settled(t, tell->settled, s->data);
			ms_target_unref(t);
		}
		if (ended)
			g_ptr_array_unref(ended);
		if (stuck) {
			g_ptr_array_unref(stuck);
			g_array_unref(told);
		}

		pthread_mutex_lock(&s->lock);
		int64_t wake = mono_us() + WATCH_US;
		struct timespec until = {.tv_sec = wake / 1000000,
					 .tv_nsec = (wake % 1000000) * 1000};
		if (!s->stopping)
			pthread_cond_timedwait(&s->watch, &s->lock, &until);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

ms_scheduler *ms_scheduler_new(uint32_t workers, ms_settled_fn settled, void *data)
{
	ms_scheduler *s = g_new0(ms_scheduler, 1);
	pthread_condattr_t ca;

	s->settled = settled;
	s->data = data;
	s->nworkers = MIN(MAX(workers, 1), MAX_WORKERS);
	pthread_mutex_init(&s->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->cond, &ca);
	pthread_cond_init(&s->watch, &ca);
	pthread_condattr_destroy(&ca);
	s->jobs = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, job_free);
	s->schedule = g_sequence_new(NULL);
	s->workers = g_ptr_array_new();
	s->ended = g_ptr_array_new();
	pthread_mutex_lock(&s->lock);
	for (uint32_t i = 0; i < s->nworkers; i++)
		start_worker(s);
	pthread_mutex_unlock(&s->lock);
	if (s->workers->len == 0)
		g_error("cannot start a worker thread");
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	int r = pthread_create(&s->watchdog, NULL, watchdog_main, s);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r != 0)
		g_error("cannot start the watchdog thread: %s", g_strerror(r));
	return s;
}

/* pthread_timedjoin_np's deadline (CLOCK_REALTIME), wait_ms from now. */
static struct timespec deadline(uint32_t wait_ms)
{
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += wait_ms / 1000;
	until.tv_nsec += (long)(wait_ms % 1000) * 1000000;
	if (until.tv_nsec >= 1000000000) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000;
	}
	return until;
}

static bool join_by(pthread_t thread, uint32_t wait_ms, const struct timespec *until)
{
	return (wait_ms == UINT32_MAX ? pthread_join(thread, NULL)
				      : pthread_timedjoin_np(thread, NULL, until)) == 0;
}

bool ms_scheduler_free(ms_scheduler *s, uint32_t wait_ms)
{
	if (!s)
		return true;
	pthread_mutex_lock(&s->lock);
	s->stopping = true;
	pthread_cond_broadcast(&s->cond);
	pthread_cond_broadcast(&s->watch);
	pthread_mutex_unlock(&s->lock);
	/* The watchdog never waits on a target; then each worker finishes the
	 * step it is running, if any: within wait_ms, or it is left (and all
	 * it may still use). */
	struct timespec until = deadline(wait_ms);
	pthread_join(s->watchdog, NULL);
	pthread_mutex_lock(&s->lock);
	g_autoptr(GPtrArray) all = g_ptr_array_copy(s->workers, NULL, NULL);
	g_ptr_array_extend_and_steal(all, g_steal_pointer(&s->ended));
	s->ended = g_ptr_array_new();
	pthread_mutex_unlock(&s->lock);
	for (guint i = 0; i < all->len; i++) {
		worker *w = g_ptr_array_index(all, i);
		if (!join_by(w->thread, wait_ms, &until)) {
			/* Left as they are, s and all: a held worker may still
			 * use them.  Detached, as the others not joined yet. */
			for (guint k = i; k < all->len; k++)
				pthread_detach(((worker *)g_ptr_array_index(all, k))->thread);
			return false;
		}
	}
	for (guint i = 0; i < all->len; i++)
		g_free(g_ptr_array_index(all, i));
	g_ptr_array_unref(s->workers);
	g_ptr_array_unref(s->ended);
	g_sequence_free(s->schedule);
	g_hash_table_destroy(s->jobs);
	pthread_cond_destroy(&s->cond);
	pthread_cond_destroy(&s->watch);
	pthread_mutex_destroy(&s->lock);
	g_free(s);
	return true;
}

void ms_scheduler_add(ms_scheduler *s, ms_target *t)
{
	job *j = g_new0(job, 1);

	j->t = ms_target_ref(t);
	j->period_us = G_USEC_PER_SEC;
	pthread_mutex_lock(&s->lock);
	g_hash_table_insert(s->jobs, t, j);
	schedule_at(s, j, mono_us());
	pthread_mutex_unlock(&s->lock);
}

void ms_scheduler_remove(ms_scheduler *s, ms_target *t)
{
	pthread_mutex_lock(&s->lock);
	job *j = g_hash_table_lookup(s->jobs, t);
	if (j) {
		g_hash_table_steal(s->jobs, t);
		if (j->it)
			g_sequence_remove(j->it);
		if (j->running)
			j->gone = true; /* its worker drops it */
		else
			job_free(j);
	}
	pthread_mutex_unlock(&s->lock);
}
