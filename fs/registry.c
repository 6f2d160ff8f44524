/* registry.c: the tracked targets, their samples, and the scheduler that
 * drives the collectors.
 *
 * Threads: a fixed set of workers share one schedule, ordered by when each
 * target is due.  A worker sleeps until the earliest is due, takes it, runs
 * one collector step (which closes one window and opens the next), and puts
 * it back.  No thread sleeps out a target's period, so the thread count is
 * `workers` however many targets there are.
 *
 * Locks and reference counts are pthread's and our own (ref.h), not GLib's,
 * so that ThreadSanitizer can follow them.
 *
 * Locks, always taken in this order:
 *   reg->lock     guards by_name, by_id, schedule, next_id, stopping, and
 *                 each target's scheduling fields (due_us, sched, busy).
 *   target->lock  guards the target's state, why, settings, removed and
 *                 its sample ring.  Never held while calling a collector.
 * A target's collector state (ops, coll, and a VM's QMP connection's
 * changing part) belongs to the worker running its job: busy, set under
 * reg->lock, makes that one worker at a time.  What ms_vm_open learnt of a
 * VM (KVM, dirty ring) is immutable and read by any thread.
 */
#define _GNU_SOURCE
#include "memstat/registry.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <pthread.h>
#include <signal.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "access.h"
#include "memstat/collector.h"
#include "memstat/procfs.h"
#include "memstat/vm.h"

/* How soon to ask again when another QMP client is measuring a VM, and when
 * QEMU has not finished its measurement yet. */
#define BUSY_RETRY_US (1 * G_USEC_PER_SEC)
#define POLL_RETRY_US (50 * 1000)

struct ms_target {
	ms_ref ref;

	/* Immutable after creation. */
	uint32_t id;
	uint64_t generation; /* never the same twice in a daemon's life */
	char name[MS_NAME_MAX];
	pid_t pid;
	ms_proc_id proc;	    /* pid, pidfd, start time (a VM: QEMU's; pid 0 unknown) */
	char socket[MS_SOCKET_MAX]; /* a VM's QMP socket, "" for a process */
	uid_t owner;
	ms_caller tracker; /* who tracked it: must still be allowed to read it */
	uint32_t history;

	/* Guarded by lock. */
	pthread_mutex_t lock;
	ms_state state;
	char why[256];
	ms_settings settings;
	ms_sample **ring;   /* history slots: sample seq is in ring[seq % history] */
	uint64_t first_seq; /* 0 while there is none */
	uint64_t last_seq;
	bool removed;

	/* Guarded by the registry's lock. */
	int64_t due_us;	      /* mono_us() when the next step is due */
	GSequenceIter *sched; /* where it waits in the schedule, or NULL */
	bool busy;	      /* a worker runs its step */

	/* The worker's while busy; then the last reference's. */
	const ms_collector_ops *ops;
	void *coll;
	ms_vm *vm; /* a VM's QMP connection, for the target's life */
};

struct ms_registry {
	ms_registry_config cfg; /* immutable */

	pthread_mutex_t lock;
	pthread_cond_t cond; /* the schedule changed, or stopping (CLOCK_MONOTONIC) */
	GHashTable *by_name; /* name -> target (holds a reference) */
	GHashTable *by_id;   /* id -> the same target (no reference) */
	GSequence *schedule; /* targets waiting, earliest due first */
	uint32_t next_id;
	uint64_t next_generation;
	bool stopping;

	pthread_t *workers; /* cfg.workers of them */
};

static int64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

const char *ms_state_name(ms_state s)
{
	switch (s) {
	case MS_STATE_MEASURING:
		return "measuring";
	case MS_STATE_MEASURED:
		return "measured";
	case MS_STATE_EXITED:
		return "exited";
	case MS_STATE_ERROR:
		return "error";
	}
	return "error";
}

/* ---- targets ---- */

ms_target *ms_target_ref(ms_target *t)
{
	ms_ref_get(&t->ref);
	return t;
}

static void target_free(ms_target *t)
{
	if (t->ops)
		t->ops->close(t->coll);
	ms_vm_free(t->vm);
	for (uint32_t i = 0; i < t->history; i++)
		ms_sample_unref(t->ring[i]);
	g_free(t->ring);
	if (t->proc.pidfd >= 0)
		close(t->proc.pidfd);
	pthread_mutex_destroy(&t->lock);
	g_free(t);
}

void ms_target_unref(ms_target *t)
{
	if (t && ms_ref_put(&t->ref))
		target_free(t);
}

uint32_t ms_target_id(const ms_target *t)
{
	return t->id;
}
const char *ms_target_name(const ms_target *t)
{
	return t->name;
}
const char *ms_target_socket(const ms_target *t)
{
	return t->vm ? t->socket : NULL;
}
pid_t ms_target_pid(const ms_target *t)
{
	return t->pid;
}
uid_t ms_target_owner(const ms_target *t)
{
	return t->owner;
}
uint64_t ms_target_generation(const ms_target *t)
{
	return t->generation;
}
bool ms_target_alive(const ms_target *t)
{
	return t->proc.pid > 0 && ms_proc_alive(&t->proc);
}

void ms_target_get_view(ms_target *t, ms_target_view *out)
{
	pthread_mutex_lock(&t->lock);
	out->state = t->state;
	g_strlcpy(out->why, t->why, sizeof(out->why));
	out->settings = t->settings;
	out->first_seq = t->first_seq;
	out->last_seq = t->last_seq;
	out->removed = t->removed;
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

/* ---- who may do what ---- */

/* Whether the caller could read pid's memory on its own, by ptrace's rule
 * for an unprivileged caller: the same real, effective and saved ids, and a
 * dumpable target (/proc shows a non-dumpable process as owned by root). */
static int caller_may_read(pid_t pid, const ms_caller *c, uid_t *owner, char **why)
{
	char path[64];
	g_autofree char *status = NULL;
	unsigned uids[4], gids[4];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	int r = ms_read_file(path, &status, NULL);
	if (r == -ENOENT || r == -ESRCH)
		return *why = g_strdup_printf("no process %d", (int)pid), -ESRCH;
	if (r < 0)
		return *why = g_strdup_printf("cannot read %s: %s", path, g_strerror(-r)), r;
	if (ms_parse_status_ids(status, "Uid", uids) < 0 ||
	    ms_parse_status_ids(status, "Gid", gids) < 0)
		return *why = g_strdup_printf("cannot parse %s", path), -EINVAL;
	*owner = uids[0];
	if (c->uid == 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d", (int)pid);
	if (stat(path, &st) < 0)
		return *why = g_strdup_printf("no process %d", (int)pid), -ESRCH;
	for (int i = 0; i < 3; i++)
		if (uids[i] != c->uid || gids[i] != c->gid)
			goto denied;
	if (st.st_uid != c->uid)
		goto denied;
	return 0;
denied:
	*why = g_strdup_printf("uid %u may not read the memory of process %d", (unsigned)c->uid,
			       (int)pid);
	return -EACCES;
}

/* The owner (the process's uid, or the VM socket's), the uid that tracked
 * it, and root. */
static bool caller_owns(const ms_target *t, const ms_caller *c)
{
	return c->uid == 0 || c->uid == t->owner || c->uid == t->tracker.uid;
}

bool ms_target_may_read(const ms_target *t, const ms_caller *c)
{
	g_autofree char *why = NULL;
	uid_t owner;

	if (caller_owns(t, c))
		return true;
	if (t->vm)
		return ms_may_connect_as(t->socket, c) == 0;
	/* The process may be gone: then no one else learns anything new. */
	return caller_may_read(t->pid, c, &owner, &why) == 0 && ms_target_alive(t);
}

/* Whether mode can measure a process (vm NULL) or that VM. */
static int mode_supported(const ms_vm *vm, const char *mode, char **why)
{
	if (vm)
		return ms_vm_mode_supported(vm, mode, why);
	const ms_collector_ops *ops = ms_collector_find(mode);
	if (!ops)
		return *why = g_strdup_printf("mode %s is not one a process is measured in "
					      "(page-sampling, full-scan, soft-dirty)",
					      mode),
		       -EINVAL;
	return ops->supported(why);
}

/* ---- scheduling ---- */

static gint by_due(gconstpointer a, gconstpointer b, gpointer data)
{
	const ms_target *x = a, *y = b;
	(void)data;
	if (x->due_us != y->due_us)
		return x->due_us < y->due_us ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

/* Under reg->lock. */
static void schedule_at(ms_registry *reg, ms_target *t, int64_t due_us)
{
	t->due_us = due_us;
	t->sched = g_sequence_insert_sorted(reg->schedule, t, by_due, NULL);
	/* Workers sleep until the first job is due: only a new first one
	 * changes that (not every job put back a period later). */
	if (g_sequence_iter_is_begin(t->sched))
		pthread_cond_broadcast(&reg->cond);
}

/* Runs one step of t's collector; returns the step's result, with *m filled
 * when it is 1. */
static int run_step(ms_target *t, ms_measurement *m, char **why)
{
	ms_params p;
	char mode[MS_MODE_MAX];

	pthread_mutex_lock(&t->lock);
	p.period_ms = t->settings.period_s * 1000;
	p.sample_pages = t->settings.sample_pages;
	memcpy(mode, t->settings.mode, sizeof(mode));
	pthread_mutex_unlock(&t->lock);

	if (t->proc.pid > 0 && !ms_proc_alive(&t->proc))
		return -ESRCH;
	if (t->vm) {
		/* The user who tracked it may have lost access to the socket
		 * since: never go on measuring for them. */
		if (t->tracker.uid != 0 && ms_may_connect_as(t->socket, &t->tracker) < 0)
			return *why = g_strdup_printf("uid %u may no longer connect to %s",
						      (unsigned)t->tracker.uid, t->socket),
			       -EACCES;
		return ms_vm_step(t->vm, &p, mode, m, why);
	}
	if (t->tracker.uid != 0) {
		/* The process may have exec'd a setuid program since: never
		 * measure what the user who asked could not read. */
		uid_t owner;
		int r = caller_may_read(t->pid, &t->tracker, &owner, why);
		if (r < 0)
			return r;
	}
	if (!t->ops || strcmp(t->ops->mode, mode) != 0) {
		/* A new mode starts with a window of its own. */
		const ms_collector_ops *ops = ms_collector_find(mode);
		int err = -EINVAL;
		void *coll = ops ? ops->open(&t->proc, &err, why) : NULL;
		if (!coll)
			return err;
		if (t->ops)
			t->ops->close(t->coll);
		t->ops = ops;
		t->coll = coll;
	}
	return t->ops->step(t->coll, &p, m, why);
}

/* Runs t's step and puts t back in the schedule (takes t's reference). */
static void run_job(ms_registry *reg, ms_target *t)
{
	int64_t started = mono_us();
	g_autofree char *why = NULL;
	ms_measurement m = {0};
	bool settled = false, done = false;
	int64_t retry_us = 0;

	int r = run_step(t, &m, &why);

	pthread_mutex_lock(&t->lock);
	ms_state before = t->state;
	if (r == 1) {
		g_debug("%s: %s %.2f MiB/s over %u ms", t->name, m.mode, m.rate, m.period_ms);
		publish(t, &m);
		t->state = MS_STATE_MEASURED;
		t->why[0] = '\0';
	} else if (r == -ESRCH) {
		t->state = MS_STATE_EXITED;
		g_strlcpy(t->why, why ? why : "", sizeof(t->why));
		done = true;
	} else if (r == -EINPROGRESS) {
		retry_us = POLL_RETRY_US;
	} else if (r == -EBUSY) {
		/* Passing (another QMP client measures): shown, not an error. */
		g_strlcpy(t->why, why ? why : "busy", sizeof(t->why));
		retry_us = BUSY_RETRY_US;
	} else if (r < 0) {
		/* Kept scheduled: a later step may succeed. */
		t->state = MS_STATE_ERROR;
		g_strlcpy(t->why, why ? why : g_strerror(-r), sizeof(t->why));
		g_message("%s: %s", t->name, t->why);
	}
	settled = before == MS_STATE_MEASURING && t->state != MS_STATE_MEASURING;
	uint32_t period_s = t->settings.period_s;
	pthread_mutex_unlock(&t->lock);
	g_free(m.vcpu);

	pthread_mutex_lock(&reg->lock);
	t->busy = false;
	bool removed = g_hash_table_lookup(reg->by_id, GUINT_TO_POINTER(t->id)) != t;
	if (done || removed || reg->stopping) {
		if (t->ops) {
			/* Free the collector's memory now: the target may stay
			 * listed (exited) for a long time. */
			t->ops->close(t->coll);
			t->ops = NULL;
			t->coll = NULL;
		}
	} else {
		/* One period after it was due, not after it started: the
		 * wake-up grid's lateness does not add up (unless it ran a
		 * whole period late: no catching up). */
		int64_t period_us = (int64_t)period_s * G_USEC_PER_SEC;
		int64_t next = t->due_us + period_us > started ? t->due_us + period_us
							       : started + period_us;
		schedule_at(reg, t, retry_us ? mono_us() + retry_us : next);
	}
	pthread_mutex_unlock(&reg->lock);

	if (settled && reg->cfg.on_settled)
		reg->cfg.on_settled(t->id, reg->cfg.on_settled_data);
	ms_target_unref(t);
}

#define WAKE_GRID_US 20000

static void *worker_main(void *data)
{
	ms_registry *reg = data;

	pthread_mutex_lock(&reg->lock);
	while (!reg->stopping) {
		GSequenceIter *it = g_sequence_get_begin_iter(reg->schedule);
		if (g_sequence_iter_is_end(it)) {
			pthread_cond_wait(&reg->cond, &reg->lock);
			continue;
		}
		ms_target *t = g_sequence_get(it);
		if (t->due_us > mono_us()) {
			/* Workers wake on a 20 ms grid: jobs due within the same
			 * 20 ms run one after the other at one wake-up (at most
			 * 20 ms late), not one wake-up each (a thousand targets
			 * would mean a thousand a second). */
			int64_t wake = (t->due_us + WAKE_GRID_US - 1) / WAKE_GRID_US * WAKE_GRID_US;
			struct timespec until = {.tv_sec = wake / 1000000,
						 .tv_nsec = (wake % 1000000) * 1000};
			pthread_cond_timedwait(&reg->cond, &reg->lock, &until);
			continue;
		}
		g_sequence_remove(it);
		t->sched = NULL;
		t->busy = true;
		ms_target_ref(t);
		pthread_mutex_unlock(&reg->lock);
		run_job(reg, t);
		pthread_mutex_lock(&reg->lock);
	}
	pthread_mutex_unlock(&reg->lock);
	return NULL;
}

/* ---- the registry ---- */

ms_registry *ms_registry_new(const ms_registry_config *cfg)
{
	ms_registry *reg = g_new0(ms_registry, 1);

	reg->cfg = *cfg;
	if (reg->cfg.history == 0)
		reg->cfg.history = 1;
	pthread_condattr_t ca;

	pthread_mutex_init(&reg->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&reg->cond, &ca);
	pthread_condattr_destroy(&ca);
	reg->by_name = g_hash_table_new_full(g_str_hash, g_str_equal, NULL,
					     (GDestroyNotify)ms_target_unref);
	reg->by_id = g_hash_table_new(g_direct_hash, g_direct_equal);
	reg->schedule = g_sequence_new(NULL);
	reg->next_id = 1;
	reg->cfg.workers = MAX(cfg->workers, 1);
	reg->workers = g_new0(pthread_t, reg->cfg.workers);
	/* Workers take no signals: SIGTERM must reach the thread that runs
	 * the FUSE loop, or it would not notice it should stop. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (uint32_t i = 0; i < reg->cfg.workers; i++) {
		int r = pthread_create(&reg->workers[i], NULL, worker_main, reg);
		if (r != 0)
			g_error("cannot start a worker thread: %s", g_strerror(r));
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return reg;
}

void ms_registry_free(ms_registry *reg)
{
	if (!reg)
		return;
	pthread_mutex_lock(&reg->lock);
	reg->stopping = true;
	pthread_cond_broadcast(&reg->cond);
	pthread_mutex_unlock(&reg->lock);
	/* Each finishes the step it is running, if any. */
	for (uint32_t i = 0; i < reg->cfg.workers; i++)
		pthread_join(reg->workers[i], NULL);
	g_free(reg->workers);

	g_sequence_free(reg->schedule);
	g_hash_table_destroy(reg->by_id);
	g_hash_table_destroy(reg->by_name);
	pthread_cond_destroy(&reg->cond);
	pthread_mutex_destroy(&reg->lock);
	g_free(reg);
}

/* Under reg->lock: a free id for t, and its generation.  Ids are 24 bits
 * (they go into inode numbers) and skip those still in use when they wrap;
 * the generation tells a reused id's targets apart. */
static uint32_t next_free_id(ms_registry *reg, ms_target *t)
{
	t->generation = ++reg->next_generation;
	for (;;) {
		uint32_t id = reg->next_id;
		reg->next_id = (reg->next_id % 0xffffffu) + 1;
		if (!g_hash_table_contains(reg->by_id, GUINT_TO_POINTER(id)))
			return id;
	}
}

/* st: the process as it is now (NULL for a VM). */
static int apply_to_existing(ms_target *t, const ms_proc_stat *st, const ms_track_request *req,
			     const ms_caller *caller, char **why)
{
	int r = 0;

	if (req->change.has_mode && (r = mode_supported(t->vm, req->change.v.mode, why)) < 0)
		return r;
	pthread_mutex_lock(&t->lock);
	if ((st && t->proc.starttime != st->starttime) || t->state == MS_STATE_EXITED) {
		*why = g_strdup_printf("%s is tracked as a %s that has exited; untrack it first",
				       t->name, t->vm ? "VM" : "process");
		r = -EEXIST;
	} else if (!caller_owns(t, caller)) {
		*why = g_strdup_printf("uid %u may not change %s", (unsigned)caller->uid, t->name);
		r = -EACCES;
	} else {
		ms_settings_apply(&t->settings, &req->change);
	}
	pthread_mutex_unlock(&t->lock);
	return r;
}

static ms_target *target_new(const ms_registry *reg, const char *name, const ms_track_request *req,
			     const ms_caller *caller, ms_proc_id proc, uid_t owner)
{
	ms_target *t = g_new0(ms_target, 1);

	ms_ref_init(&t->ref);
	t->pid = proc.pid;
	t->proc = proc;
	t->owner = owner;
	t->tracker = *caller;
	t->history = reg->cfg.history;
	g_strlcpy(t->name, name, sizeof(t->name));
	g_strlcpy(t->socket, req->socket, sizeof(t->socket));
	pthread_mutex_init(&t->lock, NULL);
	t->state = MS_STATE_MEASURING;
	t->settings = reg->cfg.defaults;
	ms_settings_apply(&t->settings, &req->change);
	t->ring = g_new0(ms_sample *, t->history);
	return t;
}

static int track_vm(ms_registry *reg, const ms_track_request *req, const ms_caller *caller,
		    char **why);

int ms_registry_track(ms_registry *reg, const ms_track_request *req, const ms_caller *caller,
		      char **why)
{
	ms_proc_stat st, st2;
	uid_t owner = 0;
	char name[32];

	if (req->socket[0])
		return track_vm(reg, req, caller, why);
	/* A pid is the writer's, as in cgroup.procs: from here on, the
	 * daemon's. */
	ms_track_request own = *req;
	int r = ms_pid_from_caller(req->pid, caller, &own.pid, why);
	if (r < 0)
		return r;
	req = &own;
	r = ms_proc_stat_read(req->pid, &st);
	if (r < 0 && r != -ESRCH)
		return *why = g_strdup_printf("cannot read /proc/%d/stat: %s", (int)req->pid,
					      g_strerror(-r)),
		       r;
	if (r < 0 || st.state == 'Z' || st.state == 'X')
		return *why = g_strdup_printf("no process %d", (int)req->pid), -ESRCH;
	if (st.flags & MS_PF_KTHREAD)
		return *why = g_strdup_printf("%d is a kernel thread: it has no memory of its own",
					      (int)req->pid),
		       -EINVAL;
	r = caller_may_read(req->pid, caller, &owner, why);
	if (r < 0)
		return r;
	if (req->change.has_mode && (r = mode_supported(NULL, req->change.v.mode, why)) < 0)
		return r;

	snprintf(name, sizeof(name), "%d", (int)req->pid);
	pthread_mutex_lock(&reg->lock);
	ms_target *old = g_hash_table_lookup(reg->by_name, name);
	if (old) {
		r = apply_to_existing(old, &st, req, caller, why);
		pthread_mutex_unlock(&reg->lock);
		return r;
	}
	bool full = g_hash_table_size(reg->by_name) >= reg->cfg.max_targets;
	pthread_mutex_unlock(&reg->lock);
	if (full)
		return *why = g_strdup_printf("already tracking max_targets=%u targets",
					      reg->cfg.max_targets),
		       -ENOSPC;

	/* Pin the process, then make sure the pid still names the process
	 * that was checked.  Without pidfd_open (before Linux 5.3, or under
	 * valgrind) the start time alone tells processes apart. */
	int pidfd = pidfd_open(req->pid, 0);
	if (pidfd < 0 && errno == ESRCH)
		return *why = g_strdup_printf("no process %d", (int)req->pid), -ESRCH;
	if (pidfd < 0 && errno != ENOSYS)
		return *why = g_strdup_printf("pidfd_open(%d): %s", (int)req->pid,
					      g_strerror(errno)),
		       -errno;
	if (ms_proc_stat_read(req->pid, &st2) < 0 || st2.starttime != st.starttime) {
		if (pidfd >= 0)
			close(pidfd);
		return *why = g_strdup_printf("no process %d", (int)req->pid), -ESRCH;
	}

	ms_proc_id proc = {.pid = req->pid, .pidfd = pidfd, .starttime = st.starttime};
	g_autoptr(ms_target) t = target_new(reg, name, req, caller, proc, owner);
	const ms_collector_ops *ops = ms_collector_find(t->settings.mode);
	if (!ops)
		return *why = g_strdup_printf("unknown mode %s", t->settings.mode), -EINVAL;
	if ((r = ops->supported(why)) < 0)
		return r;
	t->coll = ops->open(&t->proc, &r, why);
	if (!t->coll)
		return r;
	t->ops = ops;

	pthread_mutex_lock(&reg->lock);
	old = g_hash_table_lookup(reg->by_name, name);
	if (old) {
		/* Tracked by a concurrent write meanwhile. */
		r = apply_to_existing(old, &st, req, caller, why);
	} else if (g_hash_table_size(reg->by_name) >= reg->cfg.max_targets) {
		*why = g_strdup_printf("already tracking max_targets=%u targets",
				       reg->cfg.max_targets);
		r = -ENOSPC;
	} else if (reg->stopping) {
		*why = g_strdup("shutting down");
		r = -ESHUTDOWN;
	} else {
		t->id = next_free_id(reg, t);
		g_hash_table_insert(reg->by_name, t->name, ms_target_ref(t));
		g_hash_table_insert(reg->by_id, GUINT_TO_POINTER(t->id), t);
		schedule_at(reg, t, mono_us());
	}
	pthread_mutex_unlock(&reg->lock);
	return r;
}

/* ---- VMs ---- */

/* A VM's name when the track line gives none: its own (query-name), else
 * the socket's file name without a .qmp, .sock or .socket suffix. */
static char *vm_default_name(const ms_vm *vm, const char *socket)
{
	static const char *const suffixes[] = {".qmp", ".sock", ".socket"};
	g_autofree char *base = NULL;

	if (ms_vm_name(vm))
		return g_strdup(ms_vm_name(vm));
	base = g_path_get_basename(socket);
	for (size_t i = 0; i < G_N_ELEMENTS(suffixes); i++) {
		size_t len = strlen(base), slen = strlen(suffixes[i]);
		if (len > slen && g_str_has_suffix(base, suffixes[i])) {
			base[len - slen] = '\0';
			break;
		}
	}
	return g_steal_pointer(&base);
}

/* Under reg->lock: whether name is taken, by a target or the tree. */
static bool name_taken(ms_registry *reg, const char *name)
{
	for (const char *const *r = reg->cfg.reserved_names; r && *r; r++)
		if (strcmp(*r, name) == 0)
			return true;
	return g_hash_table_contains(reg->by_name, name);
}

/* Under reg->lock: the target measuring the VM at that socket, or NULL. */
static ms_target *find_socket(ms_registry *reg, const char *socket)
{
	GHashTableIter it;
	gpointer v;

	g_hash_table_iter_init(&it, reg->by_name);
	while (g_hash_table_iter_next(&it, NULL, &v))
		if (strcmp(((ms_target *)v)->socket, socket) == 0)
			return v;
	return NULL;
}

/* QEMU's process, from the socket's peer: pid 0 when it is in a pid
 * namespace the daemon cannot see. */
static ms_proc_id qemu_process(int fd)
{
	struct ucred cred = {0};
	socklen_t len = sizeof(cred);
	ms_proc_stat st;
	ms_proc_id id = {.pid = 0, .pidfd = -1};

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || cred.pid <= 0)
		return id;
	/* The peer is whoever listened: libvirt or systemd may have made the
	 * socket and handed it to QEMU.  Only a QEMU is QEMU's process. */
	char path[64];
	g_autofree char *comm = NULL;
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)cred.pid);
	if (ms_read_file(path, &comm, NULL) < 0 || !g_str_has_prefix(comm, "qemu"))
		return id;
	id.pidfd = pidfd_open(cred.pid, 0);
	if (ms_proc_stat_read(cred.pid, &st) < 0) {
		if (id.pidfd >= 0)
			close(id.pidfd);
		return (ms_proc_id){.pid = 0, .pidfd = -1};
	}
	id.pid = cred.pid;
	id.starttime = st.starttime;
	return id;
}

/* Under reg->lock: a track line naming a VM already tracked applies its
 * settings, unless it asks for another name. */
static int retrack_vm(ms_target *old, const ms_track_request *req, const ms_caller *caller,
		      char **why)
{
	if (req->name[0] && strcmp(req->name, old->name) != 0)
		return *why = g_strdup_printf("%s is already tracked as %s", req->socket,
					      old->name),
		       -EEXIST;
	return apply_to_existing(old, NULL, req, caller, why);
}

/* Under reg->lock: makes t findable and schedules its first step, or says
 * why not. */
static int insert_vm(ms_registry *reg, ms_target *t, const ms_track_request *req,
		     const ms_caller *caller, char **why)
{
	ms_target *old = find_socket(reg, req->socket);

	if (old)
		return retrack_vm(old, req, caller, why);
	if (name_taken(reg, t->name))
		return *why = g_strdup_printf("the name %s is taken; choose another with name=",
					      t->name),
		       -EEXIST;
	if (g_hash_table_size(reg->by_name) >= reg->cfg.max_targets)
		return *why = g_strdup_printf("already tracking max_targets=%u targets",
					      reg->cfg.max_targets),
		       -ENOSPC;
	if (reg->stopping)
		return *why = g_strdup("shutting down"), -ESHUTDOWN;
	t->id = next_free_id(reg, t);
	g_hash_table_insert(reg->by_name, t->name, ms_target_ref(t));
	g_hash_table_insert(reg->by_id, GUINT_TO_POINTER(t->id), t);
	schedule_at(reg, t, mono_us());
	return 0;
}

static int track_vm(ms_registry *reg, const ms_track_request *req, const ms_caller *caller,
		    char **why)
{
	ms_vm *vm = NULL;
	const char *perr = NULL;
	int r;

	pthread_mutex_lock(&reg->lock);
	ms_target *old = find_socket(reg, req->socket);
	if (old)
		r = retrack_vm(old, req, caller, why);
	pthread_mutex_unlock(&reg->lock);
	if (old)
		return r;

	/* The daemon connects only where the caller could connect itself. */
	uid_t owner = caller->uid;
	int fd = ms_connect_as(req->socket, caller, &owner, why);
	if (fd < 0)
		return fd;
	ms_proc_id proc = qemu_process(fd);
	if ((r = ms_vm_open(fd, &vm, why)) < 0) {
		if (proc.pidfd >= 0)
			close(proc.pidfd);
		return r;
	}
	g_autofree char *name =
		req->name[0] ? g_strdup(req->name) : vm_default_name(vm, req->socket);
	g_autoptr(ms_target) t = target_new(reg, name, req, caller, proc, owner);
	t->vm = vm;
	if (!req->change.has_mode)
		g_strlcpy(t->settings.mode, ms_vm_default_mode(vm), sizeof(t->settings.mode));
	if (ms_check_name(name, &perr) < 0)
		return *why = g_strdup_printf("the VM's name \"%s\" cannot name a directory "
					      "(%s); choose one with name=",
					      name, perr),
		       -EINVAL;
	if (strspn(name, "0123456789") == strlen(name))
		return *why = g_strdup_printf("all-digit names are pids': %s; choose another "
					      "with name=",
					      name),
		       -EEXIST;
	if ((r = ms_vm_mode_supported(vm, t->settings.mode, why)) < 0)
		return r;

	pthread_mutex_lock(&reg->lock);
	r = insert_vm(reg, t, req, caller, why);
	pthread_mutex_unlock(&reg->lock);
	return r;
}

int ms_registry_untrack(ms_registry *reg, const char *name, const ms_caller *caller, char **why)
{
	pthread_mutex_lock(&reg->lock);
	ms_target *t = g_hash_table_lookup(reg->by_name, name);
	if (!t) {
		pthread_mutex_unlock(&reg->lock);
		return *why = g_strdup_printf("%s is not tracked", name), -ENOENT;
	}
	if (!caller_owns(t, caller)) {
		pthread_mutex_unlock(&reg->lock);
		return *why = g_strdup_printf("uid %u may not untrack %s", (unsigned)caller->uid,
					      name),
		       -EACCES;
	}
	uint32_t id = t->id;
	if (t->sched) {
		g_sequence_remove(t->sched);
		t->sched = NULL;
	}
	pthread_mutex_lock(&t->lock);
	t->removed = true;
	pthread_mutex_unlock(&t->lock);
	g_hash_table_remove(reg->by_id, GUINT_TO_POINTER(id));
	g_hash_table_remove(reg->by_name, name); /* drops the table's reference */
	pthread_mutex_unlock(&reg->lock);

	if (reg->cfg.on_settled)
		reg->cfg.on_settled(id, reg->cfg.on_settled_data);
	return 0;
}

ms_target *ms_registry_lookup(ms_registry *reg, const char *name)
{
	pthread_mutex_lock(&reg->lock);
	ms_target *t = g_hash_table_lookup(reg->by_name, name);
	if (t)
		ms_target_ref(t);
	pthread_mutex_unlock(&reg->lock);
	return t;
}

ms_target *ms_registry_lookup_id(ms_registry *reg, uint32_t id)
{
	pthread_mutex_lock(&reg->lock);
	ms_target *t = g_hash_table_lookup(reg->by_id, GUINT_TO_POINTER(id));
	if (t)
		ms_target_ref(t);
	pthread_mutex_unlock(&reg->lock);
	return t;
}

static gint by_id(gconstpointer a, gconstpointer b)
{
	const ms_target *x = *(ms_target *const *)a, *y = *(ms_target *const *)b;
	return x->id < y->id ? -1 : x->id > y->id;
}

GPtrArray *ms_registry_list(ms_registry *reg)
{
	GPtrArray *all = g_ptr_array_new_with_free_func((GDestroyNotify)ms_target_unref);
	GHashTableIter it;
	gpointer v;

	pthread_mutex_lock(&reg->lock);
	g_hash_table_iter_init(&it, reg->by_id);
	while (g_hash_table_iter_next(&it, NULL, &v))
		g_ptr_array_add(all, ms_target_ref(v));
	pthread_mutex_unlock(&reg->lock);
	g_ptr_array_sort(all, by_id);
	return all;
}

int ms_target_set(ms_registry *reg, ms_target *t, const ms_settings_change *change,
		  const ms_caller *caller, char **why)
{
	(void)reg;
	if (!caller_owns(t, caller))
		return *why = g_strdup_printf("uid %u may not change %s", (unsigned)caller->uid,
					      t->name),
		       -EACCES;
	if (change->has_mode) {
		int r = mode_supported(t->vm, change->v.mode, why);
		if (r < 0)
			return r;
	}
	pthread_mutex_lock(&t->lock);
	ms_settings_apply(&t->settings, change);
	pthread_mutex_unlock(&t->lock);
	return 0;
}
