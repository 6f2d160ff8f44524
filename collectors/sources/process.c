/* process.c: the process source (process.h).
 *
 * Admission: the pid is the writer's (as in cgroup.procs), made the
 * daemon's; the writer must be able to read the process's memory on its own
 * (ptrace's rule); a pidfd pins the process, and its start time tells it
 * from a later one with the same pid.  Each step runs the method of the
 * target's mode; a new mode starts with a window of its own.
 *
 * The state's proc is immutable after admission; method and coll are the
 * worker's (source.h).
 */
#define _GNU_SOURCE
#include "memstat/sources/process.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "memstat/methods/fail.h"
#include "memstat/methods/full_scan.h"
#include "memstat/methods/kernel.h"
#include "memstat/methods/meminfo.h"
#include "memstat/methods/page_sampling.h"
#include "memstat/methods/soft_dirty.h"

#define PID_MAX_LIMIT 4194304

typedef struct {
	ms_proc_id proc;
	const ms_mode *mode;	 /* of the open windows, or NULL */
	const ms_method *method; /* mode->impl */
	void *coll;
	/* The growth curve (growth.h), while someone wants it: the rate's
	 * windows close when due (rate_due_us), the growth looks between. */
	ms_growth_probe *growth;
	int64_t rate_due_us; /* CLOCK_MONOTONIC; 0: at the next step */
} proc_state;

static int soft_dirty_supported(char **why)
{
	return ms_method_supported(&ms_soft_dirty, why);
}

static const ms_mode modes[] = {
	{"page-sampling", "pages drawn at random, hashed at both ends of a window", NULL,
	 &ms_page_sampling},
	{"full-scan", "every resident page hashed at both ends of a window", NULL, &ms_full_scan},
	{"soft-dirty", "the kernel's soft-dirty bits, cleared at each window's start",
	 soft_dirty_supported, &ms_soft_dirty},
	{NULL, NULL, NULL, NULL},
};

static int parse(const char *word, size_t len, char key[MS_KEY_MAX], char **why)
{
	uint64_t v = 0;

	(void)why;
	if (len == 0)
		return 0;
	for (size_t i = 0; i < len; i++) {
		if (word[i] < '0' || word[i] > '9')
			return 0;
		v = v * 10 + (uint64_t)(word[i] - '0');
		if (v > PID_MAX_LIMIT)
			return 0;
	}
	if (v < 1)
		return 0;
	snprintf(key, MS_KEY_MAX, "%u", (unsigned)v);
	return 1;
}

static pid_t pid_of(const char *key)
{
	return (pid_t)strtol(key, NULL, 10);
}

static int resolve(const char *key, const ms_caller *c, ms_ident *out, char **why)
{
	ms_proc_stat st;
	uid_t owner;
	pid_t pid;

	int r = ms_pid_from_caller(pid_of(key), c, &pid, why);
	if (r < 0)
		return r;
	r = ms_proc_stat_read(pid, &st);
	if (r < 0 && r != -ESRCH)
		return ms_fail(why, r, "cannot read /proc/%d/stat: %s", (int)pid, g_strerror(-r));
	if (r < 0 || st.state == 'Z' || st.state == 'X')
		return ms_fail(why, -ESRCH, "no process %d", (int)pid);
	/* A process the writer's own /proc would not show (hidepid=) is not
	 * there for it. */
	if (ms_caller_may_see_process(pid, c, false) < 0)
		return ms_fail(why, -ESRCH,
			       "no process %d (hidden from uid %u by /proc's hidepid=)", (int)pid,
			       (unsigned)c->uid);
	if (st.flags & MS_PF_KTHREAD)
		return ms_fail(why, -EINVAL, "%d is a kernel thread: it has no memory of its own",
			       (int)pid);
	if ((r = ms_caller_may_read_process(pid, c, &owner, why)) < 0)
		return r;
	snprintf(out->key, sizeof(out->key), "%d", (int)pid);
	out->instance = st.starttime;
	return 0;
}

static void rest(void *state)
{
	proc_state *s = state;

	if (s->method)
		s->method->close(s->coll);
	s->mode = NULL;
	s->method = NULL;
	s->coll = NULL;
	g_clear_pointer(&s->growth, ms_growth_probe_free);
	s->rate_due_us = 0;
}

static void free_state(void *state)
{
	proc_state *s = state;

	rest(s);
	if (s->proc.pidfd >= 0)
		close(s->proc.pidfd);
	g_free(s);
}

/* Opens the method of mode for the next windows. */
static int use_mode(proc_state *s, const char *mode, char **why)
{
	const ms_mode *m = ms_source_mode(&ms_process_source, mode);
	int err = -EINVAL;

	if (!m)
		return ms_fail(why, -EINVAL, "unknown mode %s", mode);
	const ms_method *method = m->impl;
	void *coll = method->open(&s->proc, &err, why);
	if (!coll)
		return err;
	rest(s);
	s->mode = m;
	s->method = method;
	s->coll = coll;
	return 0;
}

static int admit(const ms_ident *id, const ms_caller *c, const char *mode, ms_admitted *out,
		 char **why)
{
	pid_t pid = pid_of(id->key);
	ms_proc_stat st;
	ms_caller root = {0};

	(void)c;
	/* Pin the process, then make sure the pid still names the process
	 * that was checked.  Without pidfd_open (before Linux 5.3, under
	 * valgrind, or refused by a seccomp filter or an LSM: kernel.h) the
	 * start time alone tells processes apart. */
	int pidfd = ms_pidfd_open(pid);
	if (pidfd == -ESRCH)
		return ms_fail(why, -ESRCH, "no process %d", (int)pid);
	if (pidfd < 0 && pidfd != -ENOSYS)
		return ms_fail(why, pidfd, "pidfd_open(%d): %s", (int)pid, g_strerror(-pidfd));
	pidfd = pidfd < 0 ? -1 : pidfd;
	proc_state *s = g_new0(proc_state, 1);
	s->proc = (ms_proc_id){.pid = pid, .pidfd = pidfd, .starttime = id->instance};
	int r = -ESRCH;
	if (ms_proc_stat_read(pid, &st) < 0 || st.starttime != id->instance ||
	    (r = ms_caller_may_read_process(pid, &root, &out->owner, why)) < 0 ||
	    (r = use_mode(s, mode, why)) < 0) {
		free_state(s);
		return r == -ESRCH ? ms_fail(why, -ESRCH, "no process %d", (int)pid) : r;
	}
	out->state = s;
	snprintf(out->name, sizeof(out->name), "%d", (int)pid);
	out->default_mode = NULL;
	return 0;
}

static bool alive(void *state)
{
	return ms_proc_alive(&((proc_state *)state)->proc);
}

static int check_caller(void *state, const ms_caller *c, char **why)
{
	proc_state *s = state;
	uid_t owner;

	/* The process may have exec'd a setuid program since. */
	int r = ms_caller_may_read_process(s->proc.pid, c, &owner, why);
	if (r < 0)
		return r;
	/* The process may be gone: then no one else learns anything new. */
	return alive(s) ? 0 : ms_fail(why, -ESRCH, "process %d has exited", (int)s->proc.pid);
}

/* What the caller's own /proc would show of the process (access.h): under
 * hidepid=, an exited process's pid may be another's now, and /proc shows
 * nothing of it. */
static int see(proc_state *s, const ms_caller *c, bool entered)
{
	int r = ms_caller_may_see_process(s->proc.pid, c, entered);

	if (r == 0 && c->uid != 0 && ms_proc_view_get().hidepid != MS_HIDEPID_OFF && !alive(s))
		r = -ENOENT;
	return r;
}

static bool visible(void *state, const ms_caller *c)
{
	return see(state, c, false) == 0;
}

static int enter(void *state, const ms_caller *c)
{
	return see(state, c, true);
}

static bool per_caller(void *state)
{
	(void)state;
	return ms_proc_view_get().hidepid != MS_HIDEPID_OFF;
}

/* The workers' wake-up grid (scheduler.c): a rate window due within it is
 * closed now. */
#define GRID_US 20000

static int step(void *state, const char *mode, const ms_params *p, ms_step *out, char **why)
{
	proc_state *s = state;
	int64_t now = ms_now_us(CLOCK_MONOTONIC);
	int r = 0;

	/* Nobody wants the growth curve: every step is the rate's, as it was. */
	if (p->growth_ms == 0 || s->rate_due_us == 0 || now + GRID_US >= s->rate_due_us) {
		/* A new mode starts with a window of its own. */
		if ((!s->mode || strcmp(s->mode->name, mode) != 0) &&
		    (r = use_mode(s, mode, why)) < 0)
			return r;
		r = ms_method_step(s->method, s->coll, &s->proc, p, &out->m, why);
		if (r < 0)
			return r;
		s->rate_due_us = now + (int64_t)p->period_ms * 1000;
	}
	if (p->growth_ms == 0 && !s->growth)
		return r;
	if (!s->growth)
		s->growth = ms_growth_probe_new(s->proc.pid);
	char who[32];
	snprintf(who, sizeof(who), "process %d", (int)s->proc.pid);
	ms_source_growth_tick(s->growth, p->growth_ms, p, strcmp(mode, "full-scan") == 0,
			      s->rate_due_us, out, who);
	return r;
}

const ms_source ms_process_source = {
	.kind = "process",
	.noun = "process",
	.bit = MS_KIND_PROCESS,
	.syntax = "a pid",
	.named = false,
	.needs_groups = false,
	.modes = modes,
	.parse = parse,
	.resolve = resolve,
	.admit = admit,
	.step = step,
	.alive = alive,
	.check_caller = check_caller,
	.visible = visible,
	.enter = enter,
	.per_caller = per_caller,
	.rest = rest,
	.free = free_state,
};

/* ---- what its files read ---- */

static GPtrArray *memory_names;

static void read_memory_names(void)
{
	g_autofree char *status = NULL;

	/* This kernel's Vm and Rss fields, from our own status. */
	if (ms_read_file("/proc/self/status", &status, NULL) == 0)
		memory_names = ms_status_memory_names(status);
	if (!memory_names)
		memory_names = g_ptr_array_new_with_free_func(g_free);
}

GPtrArray *ms_process_memory_names(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, read_memory_names);
	return memory_names;
}

int ms_process_status_text(void *state, char **text)
{
	proc_state *s = state;
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/status", (int)s->proc.pid);
	int r = ms_read_file(path, text, NULL);
	if (r == -ENOENT || (r == 0 && !alive(s))) {
		if (r == 0)
			g_clear_pointer(text, g_free);
		return -ESRCH;
	}
	return r;
}
