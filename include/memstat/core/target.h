/* target.h: one tracked target: its source's state, its settings, its state
 * and its published samples.
 *
 * Threads: see registry.c's lock order.  What is marked immutable is set
 * before the target is inserted in the registry (and so before any other
 * thread sees it); the rest is guarded by the target's own lock, which is
 * never held while calling its source.  The source's state is the worker's
 * that runs the target's step (one at a time: the scheduler), except for
 * what the source says is immutable (its file readers).
 */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "memstat/core/sample.h"
#include "memstat/core/settings.h"
#include "memstat/sources/source.h"

typedef struct ms_target ms_target;

typedef enum {
	MS_STATE_MEASURING, /* no figure yet */
	MS_STATE_MEASURED,  /* at least one sample */
	MS_STATE_EXITED,    /* what it measured is gone (a pid reused...) */
	MS_STATE_ERROR,	    /* measuring failed; why says so */
	MS_STATE_PAUSED,    /* a guest that is paused: no figure meanwhile */
	MS_STATE_MIGRATING, /* a guest being migrated: not measured meanwhile */
	MS_STATE_COUNT
} ms_state;

/* "measuring", "measured", "exited", "error", "paused", "migrating". */
const char *ms_state_name(ms_state s);

/* A new target in MS_STATE_MEASURING, taking adm->state; id and generation
 * are set by ms_target_insert_as.  One reference. */
ms_target *ms_target_new(const ms_source *src, const ms_ident *ident, const ms_admitted *adm,
			 const char *name, const ms_caller *tracker, const ms_settings *settings,
			 uint32_t history);
/* Sets id and generation: once, before anyone else sees t. */
void ms_target_insert_as(ms_target *t, uint32_t id, uint64_t generation);

ms_target *ms_target_ref(ms_target *t);
void ms_target_unref(ms_target *t);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ms_target, ms_target_unref)

/* Immutable for the target's life. */
uint32_t ms_target_id(const ms_target *t);
const char *ms_target_name(const ms_target *t);
const ms_source *ms_target_source(const ms_target *t);
const ms_ident *ms_target_ident(const ms_target *t);
/* The source's state, for the source's own file readers (process.h,
 * qemu.h). */
void *ms_target_state(const ms_target *t);
uid_t ms_target_owner(const ms_target *t);
/* The uid that tracked t. */
uid_t ms_target_tracker_uid(const ms_target *t);
/* Different for every target a registry ever had, even when an id is
 * reused (after 16M others): the FUSE generation of its inodes. */
uint64_t ms_target_generation(const ms_target *t);

/* Whether the caller owns t: root, the owner of what it measures, or the
 * uid that tracked it.  Owners may change and untrack it. */
bool ms_target_owned_by(const ms_target *t, const ms_caller *c);

/* Whether the caller may know t is there (listed, looked up, in track's
 * text): the source's visible (everyone when it has none), an owner, or a
 * NULL caller (the daemon itself). */
bool ms_target_visible(const ms_target *t, const ms_caller *c);
/* Whether the caller may read t's figures (rate, samples, metrics): an
 * owner, or a caller who could reach what it measures on its own (the
 * source's check_caller).  What /proc shows everyone (status, memory/) is
 * not restricted. */
bool ms_target_may_read(const ms_target *t, const ms_caller *c);
/* Whether the caller may see inside t's directory (its files): 0, or the
 * source's -EPERM or -ENOENT (enter: a process's /proc/PID under
 * hidepid=).  Owners may. */
int ms_target_may_enter(const ms_target *t, const ms_caller *c);
/* Whether what t shows depends on who asks (the source's per_caller). */
bool ms_target_per_caller(const ms_target *t);

/* A consistent copy of a target's changing state. */
typedef struct {
	ms_state state;
	char why[256]; /* why it is in MS_STATE_ERROR, or a passing condition
			* (another QMP client measuring); else "" */
	ms_settings settings;
	uint64_t first_seq; /* oldest sample kept; 0 when none */
	uint64_t last_seq;  /* newest sample; 0 when none */
	bool removed;	    /* untracked */
	/* Counters that only grow, for readers waiting for something new
	 * (tree.h's ms_tree_watch): changes of state, changes of why, and
	 * growth curves finished.  New samples are counted by last_seq. */
	uint64_t state_changes;
	uint64_t why_changes;
	uint64_t growth_changes;
} ms_target_view;

void ms_target_get_view(ms_target *t, ms_target_view *out);

/* A reference to a kept sample (seq 0: the newest), or NULL. */
ms_sample *ms_target_get_sample(ms_target *t, uint64_t seq);

/* Applies change, checked: the caller must own t (-EACCES), a mode must be
 * one t can be measured in (-EINVAL, -EOPNOTSUPP).  With retrack, a track
 * line naming t again: -EEXIST when t has exited or instance is not t's.
 * 0 or -errno with *why. */
int ms_target_change(ms_target *t, const ms_settings_change *change, const ms_caller *c,
		     bool retrack, uint64_t instance, char **why);

/* Marks t untracked (its files answer ENOENT from now on). */
void ms_target_mark_removed(ms_target *t);

/* What one step did, for the scheduler. */
typedef struct {
	bool settled;	   /* left MS_STATE_MEASURING: answer waiting readers */
	bool done;	   /* exited: never step again */
	bool changed;	   /* a sample, a state, a why or a growth curve is
			    * new: wake readers waiting for something new */
	int64_t again_us;  /* ask again this soon; 0: a period after due */
	int64_t period_us; /* the period now */
} ms_step_outcome;

/* Worker only: runs one step of t's source and publishes its outcome. */
ms_step_outcome ms_target_step(ms_target *t);

/* The scheduler's watchdog: t's step, running for step_ms, is held: no read
 * in it has returned for quiet_ms (it waits on something that does not
 * answer).  Called while the step's worker still owns t (under the
 * scheduler's lock: t->lock is taken after it).  t turns MS_STATE_ERROR
 * with the reason (unless it has exited) until that step returns: then it
 * leaves MS_STATE_ERROR at once (MS_STATE_MEASURED if it has figures,
 * MS_STATE_MEASURING if not), with that step's own outcome on top.  False,
 * changing nothing, when the step has already published its outcome (not
 * held after all).  *settled: readers waiting for a first figure should be
 * answered now (as ms_step_outcome.settled); *changed: the state or reason
 * changed (wake readers waiting for something new). */
bool ms_target_stuck(ms_target *t, int64_t step_ms, int64_t quiet_ms, bool *settled, bool *changed);

/* The growth curve (methods/growth.h) is measured while wanted: for
 * MS_GROWTH_WANTED_S after a reader of growth or migration/ asked
 * (ms_target_want_growth), and for good once a forecast setting was given
 * (ms_settings.forecast).  Its ladder runs up to this many periods. */
#define MS_GROWTH_WANTED_S	  600
#define MS_GROWTH_HORIZON_PERIODS 4
void ms_target_want_growth(ms_target *t);
/* The latest finished curve into *out: true, or false when there is none
 * yet. */
bool ms_target_get_growth(ms_target *t, ms_growth_curve *out);

/* Worker only: frees what only measuring needs (t is done, untracked, or
 * the registry stops). */
void ms_target_rest(ms_target *t);
