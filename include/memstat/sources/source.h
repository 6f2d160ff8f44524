/* source.h: one kind of target (a process, a QEMU guest over QMP, ...): the
 * interface every source implements, and the table of sources.
 *
 * A source is a vtable (ms_source) and a table of modes (ms_mode).  The
 * registry and the scheduler call only these; they never ask which kind of
 * target they hold.  A source knows nothing of FUSE or of the registry's
 * threads: parse, resolve and admit run in the thread of the `track`
 * write; step and rest in one worker at a time (never two at once for the
 * same state); alive, check_caller and mode_ok in any thread (readers,
 * writers of settings, the worker), as do the source's own readers for its
 * files (process.h, qemu.h): what those read is immutable after admission
 * or guarded by the source.
 *
 * Two sources may take words of one syntax (absolute paths: a QMP socket,
 * a cgroup directory): the first in ms_sources[] whose parse claims the
 * word has it, so a source that tells its paths apart by what they are
 * comes before one that takes any path.
 *
 * Adding a kind of target: a new file here with its ms_source and its modes,
 * a bit in ms_kind, a row in ms_sources[] (source.c), and rows in the tree's
 * table for its own files (collectors/core/tree.c).  README.md, "Design".
 */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "memstat/methods/growth.h"
#include "memstat/methods/measurement.h"
#include "memstat/sources/access.h"

#define MS_MODE_MAX 32 /* a mode's name, with its NUL */
#define MS_NAME_MAX 64 /* a target's name, with its NUL */
/* A target as a track line names it, with its NUL: a cgroup path as deep
 * as Kubernetes makes them (a socket path is at most sun_path's 108 bytes:
 * ms_connect_as says so). */
#define MS_KEY_MAX 512

/* The kinds of target, one bit each: the tree's table says which kinds have
 * a file. */
typedef enum {
	MS_KIND_PROCESS = 1u << 0,
	MS_KIND_VM = 1u << 1,
	MS_KIND_CGROUP = 1u << 2,
	MS_KIND_LIBVIRT = 1u << 3, /* a libvirt domain (a VM too) */
} ms_kind;
#define MS_KIND_ALL (MS_KIND_PROCESS | MS_KIND_VM | MS_KIND_CGROUP | MS_KIND_LIBVIRT)

/* One way a source can measure (one row of its mode table). */
typedef struct {
	const char *name; /* what users write to mode=, NULL ends a table */
	const char *help; /* what it measures, for --help */
	/* 0 when this host can measure in it, else -EOPNOTSUPP with *why.
	 * NULL: always.  (Whether one target can is mode_ok's business.) */
	int (*supported)(char **why);
	const void *impl; /* the source's own: how it measures this mode */
} ms_mode;

/* A target as a track line names it, in the daemon's terms. */
typedef struct {
	char key[MS_KEY_MAX]; /* two lines with one key name one target */
	uint64_t instance;    /* tells the target from a later one with the same
			       * key (a process's start time); 0 when none */
} ms_ident;

/* What admission found. */
typedef struct {
	void *state;		  /* the source's, for the target's life */
	char name[MS_NAME_MAX];	  /* its name when the line gives none */
	uid_t owner;		  /* who owns the thing measured */
	const char *default_mode; /* when the line gives none; NULL: the
				   * daemon's, if the table has it */
} ms_admitted;

/* Why a target that is there is not measured for now (a step's outcome). */
typedef enum {
	MS_HELD_NONE,	   /* measured as usual */
	MS_HELD_PAUSED,	   /* a guest that is paused: no figure, not even 0 */
	MS_HELD_MIGRATING, /* a guest being migrated: nothing is started that
			    * would disturb it */
} ms_held;

/* The outcome of one step, besides its return value. */
typedef struct {
	ms_measurement m;	 /* a figure (step returned 1) */
	uint32_t again_ms;	 /* ask again after this long rather than a period
				  * later: -EINPROGRESS, -EBUSY, a VM's share gap;
				  * 0 and 1 too, when a growth window (growth.h)
				  * wants its next look before the period is over */
	ms_growth_curve *growth; /* a finished growth curve (g_free it), or NULL */
	ms_held held;		 /* not measured for now, and why (step returned 0) */
} ms_step;

typedef struct ms_source {
	const char *kind;   /* "process", "vm", "container": metrics' kind label */
	const char *noun;   /* "process", "VM": in messages */
	ms_kind bit;	    /* which rows of the tree's table it has */
	const char *syntax; /* what a track line's first word is: "a pid" */
	bool named;	    /* whether name= is taken (ms_check_name rules);
			     * else the key is the name */
	bool needs_groups;  /* checks callers with their supplementary groups */
	const ms_mode *modes;

	/* Whether word (len bytes, not NUL-terminated) names a target of this
	 * kind: 1 with key (the word as the writer meant it), 0 when it is
	 * not one, or -errno (-ENAMETOOLONG...) with *why when it is one but
	 * cannot be. */
	int (*parse)(const char *word, size_t len, char key[MS_KEY_MAX], char **why);

	/* The target the writer named, in the daemon's terms, and whether the
	 * caller may track it; opens nothing.  0 or -errno with *why. */
	int (*resolve)(const char *key, const ms_caller *c, ms_ident *out, char **why);

	/* Opens what measuring id in mode needs (the line's mode, or the
	 * default), as the caller (who may do so: resolve said).  0 with
	 * *out, or -errno with *why. */
	int (*admit)(const ms_ident *id, const ms_caller *c, const char *mode, ms_admitted *out,
		     char **why);

	/* 0 when this target can be measured in mode (a row of modes whose
	 * supported() said yes), else -EOPNOTSUPP with *why.  NULL: it can. */
	int (*mode_ok)(void *state, const char *mode, char **why);

	/* One step of a period: closes the open window and opens the next in
	 * mode.  1 with out->m (a figure), 0 (none yet), -ESRCH (gone for
	 * good: the target has exited), -EINPROGRESS (not finished: ask again
	 * in out->again_ms, nothing waits meanwhile), -EBUSY (someone else is
	 * measuring: *why says who, shown in status; ask again in
	 * out->again_ms), another -errno with *why (an error; the next
	 * period tries again). */
	int (*step)(void *state, const char *mode, const ms_params *p, ms_step *out, char **why);

	/* Whether what is measured is still there (a process not exited). */
	bool (*alive)(void *state);

	/* 0 when the caller could reach what is measured on its own (read
	 * the process's memory, connect to the socket), else -errno with
	 * *why.  Asked of readers of private files and, every step, of the
	 * uid that tracked it. */
	int (*check_caller)(void *state, const ms_caller *c, char **why);

	/* Whether caller c may know the target is there at all (see it in
	 * the root and in track, look it up): NULL, everyone, as /proc and
	 * /sys show processes and cgroups to all; a libvirt domain only to
	 * those who could reach libvirt.  Any thread. */
	bool (*visible)(void *state, const ms_caller *c);

	/* 0 when caller c may see inside the target's directory (its
	 * files), else -EPERM or -ENOENT, as /proc answers for the files of
	 * another user's /proc/PID under hidepid= (access.h).  NULL: all who
	 * see the target.  Any thread. */
	int (*enter)(void *state, const ms_caller *c);

	/* Whether visible's and enter's answers depend on the caller now
	 * (then no lookup is cached for one caller and used by another).
	 * NULL: whenever visible or enter is set.  Any thread. */
	bool (*per_caller)(void *state);

	/* Frees what only measuring needs (the target stays listed, exited or
	 * untracked).  NULL: nothing. */
	void (*rest)(void *state);
	void (*free)(void *state);

	/* The daemon options (-o KEY=VALUE) this source takes; NULL: none. */
	const struct ms_source_option *options;
} ms_source;

/* One daemon option of a source (-o KEY=VALUE), set before any target is
 * tracked. */
typedef struct ms_source_option {
	const char *key;  /* "libvirt_uri"; NULL ends a table */
	const char *help; /* one line for --help: "-o KEY=VALUE  what" */
	/* 0, or -EINVAL with *why. */
	int (*set)(const char *value, char **why);
} ms_source_option;

/* Sets a source's daemon option from "KEY=VALUE": 1 when some source took
 * it, 0 when no source has KEY, -EINVAL with *why for a bad value. */
int ms_source_option_set(const char *arg, char **why);

/* Every source's daemon options, one help line each (free it). */
char *ms_source_options_help(void);

/* Every source, in the order a track line's first word is tried; NULL
 * ends it. */
extern const ms_source *const ms_sources[];

/* The source whose parse claims word: 0 with *src and key, or -EINVAL
 * ("not a pid or ...") or the claiming source's -errno, with *why. */
int ms_source_parse(const char *word, size_t len, const ms_source **src, char key[MS_KEY_MAX],
		    char **why);

/* The row of src's table for mode, or NULL. */
const ms_mode *ms_source_mode(const ms_source *src, const char *mode);

/* Whether any source has a mode of that name. */
bool ms_mode_known(const char *mode);

/* 0 when src has mode and this host can measure in it; -EINVAL (not one
 * of src's) or -EOPNOTSUPP with *why. */
int ms_source_check_mode(const ms_source *src, const char *mode, char **why);

/* src's mode names, ", " between them (free it). */
char *ms_source_mode_names(const ms_source *src);

/* A source step's growth part (recipe 4 in the README), after the rate's
 * own step: ticks probe g (ms_growth_tick) with growth_ms (0: nobody wants
 * the curve; the window is dropped), hands a finished curve out in
 * out->growth, and, while growth_ms is not 0, asks in out->again_ms to be
 * stepped again at the next look or at rate_due_us (CLOCK_MONOTONIC),
 * whichever comes first.  A failed look is logged (debug) under who; the
 * next tick opens anew. */
void ms_source_growth_tick(ms_growth_probe *g, uint32_t growth_ms, const ms_params *p, bool exact,
			   int64_t rate_due_us, ms_step *out, const char *who);
