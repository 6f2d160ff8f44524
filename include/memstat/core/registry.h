/* registry.h: the tracked targets, by name and by id, and how they come and
 * go.
 *
 * The FUSE layer calls only the core (this, target.h, tree.h): it never sees
 * a source or a method, and the registry never sees FUSE.  The registry
 * admits any kind of target the same way, asking its source (source.h).
 * Every function is thread safe.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "memstat/core/settings.h"
#include "memstat/core/target.h"

typedef struct ms_registry ms_registry;

typedef struct {
	/* For targets tracked without settings (a mode: for the sources
	 * that have it; the others use their own default). */
	ms_settings defaults;
	/* defaults.precision was given (-o precision=, off too): else the
	 * registry sets MS_PRECISION_DEFAULT unless defaults.sample_pages is
	 * other than MS_SAMPLE_PAGES_QEMU. */
	bool precision_given;
	uint32_t history; /* samples kept per target */
	uint32_t max_targets;
	/* Targets one uid other than root may have tracked at once (exited
	 * ones too, until untracked); root is bounded by max_targets only. */
	uint32_t max_targets_per_uid;
	uint32_t workers; /* measurement threads */
	/* Called, from a registry thread and with no registry lock held, when
	 * a target leaves MS_STATE_MEASURING or is untracked, so that readers
	 * waiting for its first figure can be answered. */
	void (*on_settled)(uint32_t target_id, void *data);
	void *on_settled_data;
	/* Called the same way whenever what a target's changing files show
	 * may be new (a sample, a state, a growth curve: tree.h's
	 * ms_tree_watch) and when it is untracked, so that readers waiting
	 * in poll() can be woken.  Data: on_settled_data. */
	void (*on_changed)(uint32_t target_id, void *data);
	/* Names no target may take (the tree's own entries), NULL-terminated. */
	const char *const *reserved_names;
} ms_registry_config;

ms_registry *ms_registry_new(const ms_registry_config *cfg);
/* Stops the scheduler, joins the workers, drops every target. */
void ms_registry_free(ms_registry *reg);
/* The same, waiting at most wait_ms for a worker to finish its step; one
 * that has not (a target holds it) is left, with everything it may use:
 * false, and the caller exits.  true when all was freed. */
bool ms_registry_free_within(ms_registry *reg, uint32_t wait_ms);

/* Tracks the target the request names (its source admits it with the
 * caller's rights), or applies the settings to it if it is tracked.  0 or a
 * negative errno (-ESRCH, -EACCES, -EEXIST, -ENOSPC: max_targets, or the
 * caller's uid at max_targets_per_uid; -EINVAL, -EOPNOTSUPP, the source's),
 * with *why (free it). */
int ms_registry_track(ms_registry *reg, const ms_track_request *req, const ms_caller *caller,
		      char **why);
/* 0, -ENOENT or -EACCES with *why. */
int ms_registry_untrack(ms_registry *reg, const char *name, const ms_caller *caller, char **why);

/* Lookups return a reference (ms_target_unref) or NULL. */
ms_target *ms_registry_lookup(ms_registry *reg, const char *name);
ms_target *ms_registry_lookup_id(ms_registry *reg, uint32_t id);
/* References to all targets, in the order they were tracked. */
GPtrArray *ms_registry_list(ms_registry *reg);

/* Changes t's settings from a settings file.  0, -EINVAL, -EOPNOTSUPP or
 * -EACCES, with *why. */
int ms_target_set(ms_registry *reg, ms_target *t, const ms_settings_change *change,
		  const ms_caller *caller, char **why);
