/* scheduler.c: workers and the schedule (scheduler.h).
 *
 * Locks and reference counts are pthread's and our own (ref.h), not GLib's,
 * so that ThreadSanitizer can follow them.
 *
 *   s->lock  guards jobs, schedule, stopping and every job's fields.  Taken
 *            after the registry's lock, before any target's; never held
 *            while a step runs.
 * A job is the worker's that took it from the schedule (running): it alone
 * steps the target until it puts the job back; a job dropped (done, removed,
 * stopping) is never stepped again, and its last worker rests it.
 */
#define _GNU_SOURCE /* pthread_timedjoin_np */
#include "memstat/core/scheduler.h"

#include <pthread.h>
#include <signal.h>
#include <time.h>

/* Workers wake on a 20 ms grid: jobs due within the same 20 ms run one after
 * the other at one wake-up (at most 20 ms late), not one wake-up each (a
 * thousand targets would mean a thousand a second). */
#define WAKE_GRID_US 20000

typedef struct {
	ms_target *t;	    /* a reference */
	int64_t due_us;	    /* mono_us() when the next step is due */
	GSequenceIter *it;  /* where it waits in the schedule, or NULL */
	bool running, gone; /* a worker steps it; removed meanwhile */
} job;

struct ms_scheduler {
	ms_settled_fn settled;
	void *data;
	uint32_t nworkers;
	pthread_t *workers;

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

/* Runs j's step (the worker owns j) and puts it back, or drops it. */
static void run_job(ms_scheduler *s, job *j)
{
	int64_t started = mono_us();
	ms_step_outcome o = ms_target_step(j->t);

	pthread_mutex_lock(&s->lock);
	j->running = false;
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
	if (o.settled && s->settled)
		s->settled(t, s->data);
	ms_target_unref(t);
}

static void *worker_main(void *data)
{
	ms_scheduler *s = data;

	pthread_mutex_lock(&s->lock);
	while (!s->stopping) {
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
		pthread_mutex_unlock(&s->lock);
		run_job(s, j);
		pthread_mutex_lock(&s->lock);
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
	s->nworkers = MAX(workers, 1);
	pthread_mutex_init(&s->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->cond, &ca);
	pthread_condattr_destroy(&ca);
	s->jobs = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, job_free);
	s->schedule = g_sequence_new(NULL);
	s->workers = g_new0(pthread_t, s->nworkers);
	/* Workers take no signals: SIGTERM must reach the thread that runs
	 * the FUSE loop, or it would not notice it should stop. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (uint32_t i = 0; i < s->nworkers; i++) {
		int r = pthread_create(&s->workers[i], NULL, worker_main, s);
		if (r != 0)
			g_error("cannot start a worker thread: %s", g_strerror(r));
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return s;
}

bool ms_scheduler_free(ms_scheduler *s, uint32_t wait_ms)
{
	if (!s)
		return true;
	pthread_mutex_lock(&s->lock);
	s->stopping = true;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	/* Each finishes the step it is running, if any: within wait_ms, or it
	 * is left (and all it may still use). */
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += wait_ms / 1000;
	until.tv_nsec += (long)(wait_ms % 1000) * 1000000;
	if (until.tv_nsec >= 1000000000) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000;
	}
	for (uint32_t i = 0; i < s->nworkers; i++) {
		int r = wait_ms == UINT32_MAX ? pthread_join(s->workers[i], NULL)
					      : pthread_timedjoin_np(s->workers[i], NULL, &until);
		if (r != 0)
			return false;
	}
	g_free(s->workers);
	g_sequence_free(s->schedule);
	g_hash_table_destroy(s->jobs);
	pthread_cond_destroy(&s->cond);
	pthread_mutex_destroy(&s->lock);
	g_free(s);
	return true;
}

void ms_scheduler_add(ms_scheduler *s, ms_target *t)
{
	job *j = g_new0(job, 1);

	j->t = ms_target_ref(t);
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
