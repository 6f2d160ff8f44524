/* target.c: one tracked target (target.h).
 *
 * Locks: t->lock guards state, why, settings, the sample ring, removed, the
 * latest growth curve and until when it is wanted (readers copy the curve
 * out under it), and whether a step runs and was said held (stepping,
 * held).
 * It is never held while calling the source; see registry.c for the order
 * with the other locks.
 */
#include "memstat/core/target.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "memstat/methods/fail.h"

/* A window covering less of the time since the last one than this, or
 * half as long again as the period asked: the mode cannot keep the period
 * (status says so). */
#define MS_COVERAGE_LOW 0.75

struct ms_target {
	ms_ref ref;

	/* Immutable once inserted (id and generation: set at insertion). */
	uint32_t id;
	uint64_t generation; /* never the same twice in a daemon's life */
	char name[MS_NAME_MAX];
	const ms_source *source;
	void *state; /* the source's: the stepping worker's (source.h) */
	ms_ident ident;
	uid_t owner;
	ms_caller tracker; /* who tracked it: must still be allowed to read it */
	uint32_t history;

	/* Guarded by lock. */
	pthread_mutex_t lock;
	ms_state st;
	bool behind; /* its mode could not keep its period (logged once) */
	char why[256];
	ms_settings settings;
	ms_sample **ring;   /* history slots: sample seq is in ring[seq % history] */
	uint64_t first_seq; /* 0 while there is none */
	uint64_t last_seq;
	bool removed;
	bool stepping;		     /* ms_target_step runs, its outcome not
				      * yet published */
	int64_t held_since_us;	     /* ms_target_stuck said the running
				      * step held (CLOCK_MONOTONIC us when it
				      * started), 0 if not: its outcome clears
				      * it */
	uint64_t state_changes;	     /* st changed (ms_target_view) */
	uint64_t why_changes;	     /* why changed */
	uint64_t growth_changes;     /* a curve was finished */
	ms_growth_curve *growth;     /* the latest finished curve, or NULL */
	int64_t growth_wanted_until; /* CLOCK_MONOTONIC us: measure the curve
				      * until then (readers of growth and
				      * migration/); INT64_MAX once a forecast
				      * setting was written */
};

static const char *const state_names[MS_STATE_COUNT] = {
	[MS_STATE_MEASURING] = "measuring", [MS_STATE_MEASURED] = "measured",
	[MS_STATE_EXITED] = "exited",	    [MS_STATE_ERROR] = "error",
	[MS_STATE_PAUSED] = "paused",	    [MS_STATE_MIGRATING] = "migrating",
};

/* The state a step's ms_held puts a target in. */
static const ms_state held_states[] = {
	[MS_HELD_PAUSED] = MS_STATE_PAUSED,
	[MS_HELD_MIGRATING] = MS_STATE_MIGRATING,
};

const char *ms_state_name(ms_state s)
{
	return (unsigned)s < G_N_ELEMENTS(state_names) ? state_names[s] : "error";
}

ms_target *ms_target_new(const ms_source *src, const ms_ident *ident, const ms_admitted *adm,
			 const char *name, const ms_caller *tracker, const ms_settings *settings,
			 uint32_t history)
{
	ms_target *t = g_new0(ms_target, 1);

	ms_ref_init(&t->ref);
	t->source = src;
	t->state = adm->state;
	t->ident = *ident;
	t->owner = adm->owner;
	t->tracker = *tracker;
	t->tracker.attached = true; /* Yama's relation: checked at track */
	t->history = MAX(history, 1);
	g_strlcpy(t->name, name, sizeof(t->name));
	pthread_mutex_init(&t->lock, NULL);
	t->st = MS_STATE_MEASURING;
	t->settings = *settings;
	t->ring = g_new0(ms_sample *, t->history);
	return t;
}

void ms_target_insert_as(ms_target *t, uint32_t id, uint64_t generation)
{
	t->id = id;
	t->generation = generation;
}

ms_target *ms_target_ref(ms_target *t)
{
	ms_ref_get(&t->ref);
	return t;
}

void ms_target_unref(ms_target *t)
{
	if (!t || !ms_ref_put(&t->ref))
		return;
	t->source->free(t->state);
	for (uint32_t i = 0; i < t->history; i++)
		ms_sample_unref(t->ring[i]);
	g_free(t->ring);
	g_free(t->growth);
	pthread_mutex_destroy(&t->lock);
	g_free(t);
}

uint32_t ms_target_id(const ms_target *t)
{
	return t->id;
}
const char *ms_target_name(const ms_target *t)
{
	return t->name;
}
const ms_source *ms_target_source(const ms_target *t)
{
	return t->source;
}
const ms_ident *ms_target_ident(const ms_target *t)
{
	return &t->ident;
}
void *ms_target_state(const ms_target *t)
{
	return t->state;
}
uid_t ms_target_owner(const ms_target *t)
{
	return t->owner;
}
uid_t ms_target_tracker_uid(const ms_target *t)
{
	return t->tracker.uid;
}
uint64_t ms_target_generation(const ms_target *t)
{
	return t->generation;
}

bool ms_target_owned_by(const ms_target *t, const ms_caller *c)
{
	return c->uid == 0 || c->uid == t->owner || c->uid == t->tracker.uid;
}

bool ms_target_visible(const ms_target *t, const ms_caller *c)
{
	return !t->source->visible || !c || ms_target_owned_by(t, c) ||
	       t->source->visible(t->state, c);
}

int ms_target_may_enter(const ms_target *t, const ms_caller *c)
{
	if (!t->source->enter || !c || ms_target_owned_by(t, c))
		return 0;
	return t->source->enter(t->state, c);
}

bool ms_target_per_caller(const ms_target *t)
{
	if (t->source->per_caller)
		return t->source->per_caller(t->state);
	return t->source->visible || t->source->enter;
}

bool ms_target_may_read(const ms_target *t, const ms_caller *c)
{
	g_autofree char *why = NULL;

	return ms_target_owned_by(t, c) || t->source->check_caller(t->state, c, &why) == 0;
}

void ms_target_get_view(ms_target *t, ms_target_view *out)
{
	pthread_mutex_lock(&t->lock);
	out->state = t->st;
	g_strlcpy(out->why, t->why, sizeof(out->why));
	out->settings = t->settings;
	out->first_seq = t->first_seq;
	out->last_seq = t->last_seq;
	out->removed = t->removed;
	out->state_changes = t->state_changes;
	out->why_changes = t->why_changes;
	out->growth_changes = t->growth_changes;
	pthread_mutex_unlock(&t->lock);
}

ms_sample *ms_target_get_sample(ms_target *t, uint64_t seq)
{
	ms_sample *s = NULL;

	pthread_mutex_lock(&t->lock);
	if (seq == 0)
		seq = t->last_seq;
	if (seq != 0 && seq >= t->first_seq && seq <= t->last_seq)
		s = ms_sample_ref(t->ring[seq % t->history]);
	pthread_mutex_unlock(&t->lock);
	return s;
}

int ms_target_change(ms_target *t, const ms_settings_change *change, const ms_caller *c,
		     bool retrack, uint64_t instance, char **why)
{
	int r = 0;

	if (!ms_target_owned_by(t, c))
		return ms_fail(why, -EACCES, "uid %u may not change %s", (unsigned)c->uid, t->name);
	if (change->has_mode &&
	    ((r = ms_source_check_mode(t->source, change->v.mode, why)) < 0 ||
	     (t->source->mode_ok && (r = t->source->mode_ok(t->state, change->v.mode, why)) < 0)))
		return r;
	pthread_mutex_lock(&t->lock);
	if (retrack && (t->ident.instance != instance || t->st == MS_STATE_EXITED))
		r = ms_fail(why, -EEXIST, "%s is tracked as a %s that has exited; untrack it first",
			    t->name, t->source->noun);
	else
		ms_settings_apply(&t->settings, change);
	pthread_mutex_unlock(&t->lock);
	return r;
}

void ms_target_mark_removed(ms_target *t)
{
	pthread_mutex_lock(&t->lock);
	t->removed = true;
	pthread_mutex_unlock(&t->lock);
}

/* Under t->lock: keeps the sample, dropping the oldest beyond history. */
static void publish(ms_target *t, const ms_measurement *m)
{
	uint64_t seq = t->last_seq + 1;
	ms_sample **slot = &t->ring[seq % t->history];
	const ms_sample *prev = t->last_seq ? t->ring[t->last_seq % t->history] : NULL;
	ms_sample *s = ms_sample_new(seq, m);

	s->seconds_total = (prev ? prev->seconds_total : 0) + m->period_ms / 1000.0;
	s->dirty_bytes_total = (prev ? prev->dirty_bytes_total : 0) +
			       m->rate * 1048576.0 * (m->period_ms / 1000.0);
	ms_sample_unref(*slot);
	*slot = s;
	t->last_seq = seq;
	t->first_seq = seq > t->history ? seq - t->history + 1 : 1;
}

/* Runs one step of t's source: its return value, with out filled. */
static int run_source(ms_target *t, ms_step *out, char **why)
{
	char mode[MS_MODE_MAX];
	ms_params p;

	pthread_mutex_lock(&t->lock);
	t->stepping = true;
	p.period_ms = t->settings.period_s * 1000;
	p.sample_pages = t->settings.sample_pages;
	p.precision = t->settings.precision;
	p.growth_ms = (t->settings.forecast || t->growth_wanted_until > ms_now_us(CLOCK_MONOTONIC))
			      ? MS_GROWTH_HORIZON_PERIODS * p.period_ms
			      : 0;
	memcpy(mode, t->settings.mode, sizeof(mode));
	pthread_mutex_unlock(&t->lock);

	if (!t->source->alive(t->state))
		return -ESRCH;
	/* The user who tracked it may have lost access since (a setuid exec,
	 * a socket's rights): never go on measuring for them. */
	int r = t->tracker.uid != 0 ? t->source->check_caller(t->state, &t->tracker, why) : 0;
	if (r < 0)
		return r;
	return t->source->step(t->state, mode, &p, out, why);
}

ms_step_outcome ms_target_step(ms_target *t)
{
	g_autofree char *why = NULL;
	ms_step step = {0};
	ms_step_outcome o = {0};

	int r = run_source(t, &step, &why);

	pthread_mutex_lock(&t->lock);
	ms_state before = t->st;
	char why_before[sizeof(t->why)];
	g_strlcpy(why_before, t->why, sizeof(why_before));
	t->stepping = false;
	if (t->held_since_us) {
		/* The step said held has returned: "has not returned" is no
		 * longer true, and the hold's error goes at once (status says
		 * what is true now, not what was until the next figure):
		 * measured if it has figures, measuring if not, with this
		 * step's own outcome on top (a figure, an error, a pause, or
		 * nothing new: a window opened). */
		g_message("%s: its measurement returned after %.1f s", t->name,
			  (double)(ms_now_us(CLOCK_MONOTONIC) - t->held_since_us) / G_USEC_PER_SEC);
		t->held_since_us = 0;
		if (t->st == MS_STATE_ERROR) {
			t->st = t->last_seq ? MS_STATE_MEASURED : MS_STATE_MEASURING;
			t->why[0] = '\0';
		}
	}
	if (r == 1) {
		g_debug("%s: %s %.2f MiB/s over %u ms", t->name, step.m.mode, step.m.rate,
			step.m.period_ms);
		publish(t, &step.m);
		t->st = MS_STATE_MEASURED;
		/* A figure may come with a note (it waited for another client). */
		g_strlcpy(t->why, why ? why : "", sizeof(t->why));
		/* A mode whose looks take longer than the period leaves time
		 * between its windows unmeasured: said, not hidden. */
		uint32_t asked_ms = t->settings.period_s * 1000;
		bool gaps = step.m.coverage > 0 && step.m.coverage < MS_COVERAGE_LOW;
		bool longer = step.m.period_ms > asked_ms + asked_ms / 2;
		bool behind = gaps || longer;
		if (behind && !t->why[0])
			snprintf(t->why, sizeof(t->why),
				 "cannot keep the period: a window of %u ms for a period of %u s "
				 "covered %.0f%% of the time since the last one (its reads spread "
				 "over %u ms: a look takes long, or the daemon is starved of CPU); "
				 "a longer period or page-sampling keeps up",
				 step.m.period_ms, t->settings.period_s, 100.0 * step.m.coverage,
				 step.m.window_max_ms - step.m.window_min_ms);
		if (!behind && !t->why[0] && step.m.precision_census) {
			char pr[64];
			snprintf(t->why, sizeof(t->why),
				 "precision %s needs %" PRIu64 " of the %" PRIu64 " pages read "
				 "each window (a relative precision at a rate near 0: [%.2f, "
				 "%.2f] MiB/s); an absolute part, as in precision=10%%,1MiB/s, "
				 "bounds what it reads",
				 ms_precision_format(&step.m.precision, pr, sizeof(pr)),
				 step.m.pages_sampled, step.m.pages_population, step.m.rate_lo,
				 step.m.rate_hi);
		}
		if (behind && !t->behind)
			g_message("%s: %s mode cannot keep a %u s period: a window of %u ms "
				  "covered %.0f%% of the time since the last one",
				  t->name, step.m.mode, t->settings.period_s, step.m.period_ms,
				  100.0 * step.m.coverage);
		t->behind = behind;
	} else if (r == 0 && step.held != MS_HELD_NONE &&
		   (unsigned)step.held < G_N_ELEMENTS(held_states)) {
		t->st = held_states[step.held];
		t->why[0] = '\0';
	} else if (r == 0 && (t->st == MS_STATE_PAUSED || t->st == MS_STATE_MIGRATING)) {
		/* Going on: resumed, or migrated. */
		t->st = t->last_seq ? MS_STATE_MEASURED : MS_STATE_MEASURING;
		t->why[0] = '\0';
	} else if (r == -ESRCH) {
		t->st = MS_STATE_EXITED;
		g_strlcpy(t->why, why ? why : "", sizeof(t->why));
		o.done = true;
	} else if (r == -EINPROGRESS) {
		o.again_us = (int64_t)MAX(step.again_ms, 1) * 1000;
	} else if (r == -EBUSY) {
		/* Passing (someone else measures): shown, not an error. */
		g_strlcpy(t->why, why ? why : "busy", sizeof(t->why));
		o.again_us = (int64_t)MAX(step.again_ms, 1) * 1000;
	} else if (r < 0) {
		/* Kept scheduled: a later step may succeed. */
		t->st = MS_STATE_ERROR;
		g_strlcpy(t->why, why ? why : g_strerror(-r), sizeof(t->why));
		g_message("%s: %s", t->name, t->why);
	}
	if (step.growth) {
		g_free(t->growth);
		t->growth = g_steal_pointer(&step.growth);
		t->growth_changes++;
		o.changed = true;
	}
	if (t->st != before) {
		t->state_changes++;
		o.changed = true;
	}
	if (strcmp(t->why, why_before) != 0) {
		t->why_changes++;
		o.changed = true;
	}
	if (r == 1)
		o.changed = true;
	/* A growth window's next look, or a VM's share gap: before the
	 * period is over. */
	if (r >= 0 && step.again_ms)
		o.again_us = (int64_t)step.again_ms * 1000;
	/* Readers parked before a first figure wait on through a pause (a
	 * paused guest will have one); a figure, an exit or an error answers
	 * them. */
	bool waiting = before == MS_STATE_MEASURING || before == MS_STATE_PAUSED ||
		       before == MS_STATE_MIGRATING;
	o.settled = waiting && (t->st == MS_STATE_MEASURED || t->st == MS_STATE_EXITED ||
				t->st == MS_STATE_ERROR);
	o.period_us = (int64_t)t->settings.period_s * G_USEC_PER_SEC;
	pthread_mutex_unlock(&t->lock);
	g_free(step.m.vcpu);
	g_free(step.growth);
	return o;
}

bool ms_target_stuck(ms_target *t, int64_t step_ms, int64_t quiet_ms, bool *settled, bool *changed)
{
	*settled = *changed = false;
	pthread_mutex_lock(&t->lock);
	if (!t->stepping) {
		/* Its step has just published its outcome: not held. */
		pthread_mutex_unlock(&t->lock);
		return false;
	}
	ms_state before = t->st;
	t->held_since_us = ms_now_us(CLOCK_MONOTONIC) - step_ms * 1000;
	if (t->st != MS_STATE_EXITED) {
		if (t->st != MS_STATE_ERROR)
			t->state_changes++;
		t->why_changes++;
		t->st = MS_STATE_ERROR;
		snprintf(t->why, sizeof(t->why),
			 "its measurement has not returned, nor any read in it for %.1f s: "
			 "something it reads waits (a page of a file mapped from a mount whose "
			 "server does not answer, a QEMU that does not answer?)",
			 (double)quiet_ms / 1000);
		*changed = true;
	}
	*settled = t->st == MS_STATE_ERROR &&
		   (before == MS_STATE_MEASURING || before == MS_STATE_PAUSED ||
		    before == MS_STATE_MIGRATING);
	pthread_mutex_unlock(&t->lock);
	return true;
}

void ms_target_want_growth(ms_target *t)
{
	int64_t until = ms_now_us(CLOCK_MONOTONIC) + MS_GROWTH_WANTED_S * G_USEC_PER_SEC;

	pthread_mutex_lock(&t->lock);
	if (t->growth_wanted_until < until)
		t->growth_wanted_until = until;
	pthread_mutex_unlock(&t->lock);
}

bool ms_target_get_growth(ms_target *t, ms_growth_curve *out)
{
	bool have;

	pthread_mutex_lock(&t->lock);
	have = t->growth != NULL;
	if (have)
		*out = *t->growth;
	pthread_mutex_unlock(&t->lock);
	return have;
}

void ms_target_rest(ms_target *t)
{
	if (t->source->rest)
		t->source->rest(t->state);
}
