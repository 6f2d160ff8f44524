/* registry.h: tracked targets, their published samples, and the scheduler
 * that drives the collectors.
 *
 * The FUSE layer calls only this interface: it never sees a collector, and
 * the registry never sees FUSE.  Every function is thread safe.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "sample.h"
#include "settings.h"

typedef struct ms_registry ms_registry;
typedef struct ms_target ms_target;

typedef enum {
	MS_STATE_MEASURING, /* no figure yet */
	MS_STATE_MEASURED,  /* at least one sample */
	MS_STATE_EXITED,    /* the process is gone (or its pid reused) */
	MS_STATE_ERROR,	    /* measuring failed; why says so */
} ms_state;

const char *ms_state_name(ms_state s);

typedef struct {
	ms_settings defaults; /* for targets tracked without settings */
	uint32_t history;     /* samples kept per target */
	uint32_t max_targets;
	uint32_t workers; /* measurement threads */
	/* Called, from a registry thread and with no registry lock held, when
	 * a target leaves MS_STATE_MEASURING or is untracked, so that readers
	 * waiting for its first figure can be answered. */
	void (*on_settled)(uint32_t target_id, void *data);
	void *on_settled_data;
	/* Names a VM may not take (the tree's own entries), NULL-terminated. */
	const char *const *reserved_names;
} ms_registry_config;

#define MS_CALLER_GROUPS_MAX 64

/* Who asks: taken from the FUSE request, never from written text. */
typedef struct {
	uid_t uid;
	gid_t gid;
	pid_t pid;
	int ngroups; /* supplementary groups in groups[], 0 when unknown */
	gid_t groups[MS_CALLER_GROUPS_MAX];
} ms_caller;

ms_registry *ms_registry_new(const ms_registry_config *cfg);
/* Stops the scheduler, joins the workers, drops every target. */
void ms_registry_free(ms_registry *reg);

/* Tracks a process, or a VM by its QMP socket (connecting with the caller's
 * rights), or applies the settings to it if it is tracked.  0 or a negative
 * errno, with *why (free it) saying why. */
int ms_registry_track(ms_registry *reg, const ms_track_request *req, const ms_caller *caller,
		      char **why);
int ms_registry_untrack(ms_registry *reg, const char *name, const ms_caller *caller, char **why);

/* Lookups return a reference (ms_target_unref) or NULL. */
ms_target *ms_registry_lookup(ms_registry *reg, const char *name);
ms_target *ms_registry_lookup_id(ms_registry *reg, uint32_t id);
/* References to all targets, in the order they were tracked. */
GPtrArray *ms_registry_list(ms_registry *reg);

ms_target *ms_target_ref(ms_target *t);
void ms_target_unref(ms_target *t);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ms_target, ms_target_unref)

/* Immutable for the target's life. */
uint32_t ms_target_id(const ms_target *t);
const char *ms_target_name(const ms_target *t);
/* A VM's QMP socket path, or NULL for a process. */
const char *ms_target_socket(const ms_target *t);
/* The process; for a VM, QEMU's process (0 when it is not visible from the
 * daemon's pid namespace). */
pid_t ms_target_pid(const ms_target *t);
uid_t ms_target_owner(const ms_target *t);
/* Different for every target a registry ever had, even when an id is
 * reused (after 16M others): the FUSE generation of its inodes. */
uint64_t ms_target_generation(const ms_target *t);
/* Whether the target's process is still alive (its pid not reused). */
bool ms_target_alive(const ms_target *t);

/* Whether the caller may read t's figures (rate, samples, metrics): root,
 * the target's owner, the uid that tracked it, or a caller who could read
 * the process's memory, or connect to the VM's socket, on its own.  What
 * /proc shows everyone (status, memory/) is not restricted. */
bool ms_target_may_read(const ms_target *t, const ms_caller *c);

/* A consistent copy of a target's changing state. */
typedef struct {
	ms_state state;
	char why[256]; /* why it is in MS_STATE_ERROR, or a passing condition
			* (another QMP client measuring); else "" */
	ms_settings settings;
	uint64_t first_seq; /* oldest sample kept; 0 when none */
	uint64_t last_seq;  /* newest sample; 0 when none */
	bool removed;	    /* untracked */
} ms_target_view;

void ms_target_get_view(ms_target *t, ms_target_view *out);

/* A reference to a kept sample (seq 0: the newest), or NULL. */
ms_sample *ms_target_get_sample(ms_target *t, uint64_t seq);

/* Changes settings from a settings file.  0, -EINVAL, -EOPNOTSUPP or
 * -EACCES, with *why. */
int ms_target_set(ms_registry *reg, ms_target *t, const ms_settings_change *change,
		  const ms_caller *caller, char **why);
