/* qemu_dirty_rate.c: a QEMU guest's dirty rate, as QEMU itself measures it
 * (qemu_dirty_rate.h): the common windows and sharing, and the QMP backend.
 *
 * One calc-dirty-rate per window, over the whole period; a later step reads
 * the result and, after the share gap, starts the next one.
 *
 * Debian's QEMU 7.2 dereferences a NULL KVM state when asked for the
 * dirty-bitmap or dirty-ring modes without KVM, so those modes are only
 * ever sent to a VM that said KVM is enabled.
 */
#define _GNU_SOURCE
#include "memstat/methods/qemu_dirty_rate.h"

#include <errno.h>
#include <math.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "memstat/methods/fail.h"
#include "memstat/methods/qmp.h"

#define QMP_TIMEOUT_MS 5000
/* How long after its calc-time QEMU may take to publish a result. */
#define RESULT_GRACE_MS 5000
#define BUSY_RETRY_MS	1000
/* How often to look again while another client measures: its end is seen
 * soon, and its hold (MS_VM_SHARE_HOLD_MS) counts from then. */
#define FOREIGN_POLL_MS 250

typedef struct {
	bool open;
	const char *mode; /* one of vm_modes */
	uint32_t calc_s, sample_pages;
	int64_t start_time; /* QEMU's start-time of the measurement */
	int64_t start_ms;   /* Unix time, ms */
	int64_t start_mono; /* monotonic ms */
	uint64_t ram_bytes; /* the guest's RAM when it opened */
} window;

typedef enum { RING_OFF, RING_ON, RING_UNKNOWN } ms_ring;

struct ms_vm {
	const ms_vm_backend *ops;
	void *b;
	char *name; /* query-name, or NULL */
	uint64_t ram_bytes;
	bool kvm;
	ms_ring ring;	    /* KVM's dirty ring: on, off, or unknown */
	window win;	    /* QEMU's measurement we started and have not read yet */
	bool bitmap_seen;   /* the first dirty-bitmap figure was left out */
	int64_t gap_until;  /* monotonic ms: QEMU's slot is left free until then */
	int64_t foreign_st; /* another client's finished measurement: start-time */
	char foreign_mode[32];
	int64_t foreign_seen; /* monotonic ms it was first seen finished; 0: none */
	int64_t waited_ms;    /* how long the next window waited for others */
	int64_t ours_st;      /* start-time of the last result taken as ours */
};

static const char *const vm_modes[] = {"page-sampling", "dirty-bitmap", "dirty-ring"};

static int64_t mono_ms(void)
{
	return ms_now_us(CLOCK_MONOTONIC) / 1000;
}

static int64_t wall_ms(void)
{
	return ms_now_us(CLOCK_REALTIME) / 1000;
}

static const char *static_mode(const char *mode)
{
	for (size_t i = 0; mode && i < G_N_ELEMENTS(vm_modes); i++)
		if (strcmp(mode, vm_modes[i]) == 0)
			return vm_modes[i];
	return NULL;
}

bool ms_vm_mode_known(const char *mode)
{
	return static_mode(mode) != NULL;
}

int ms_vm_mode_supported(const ms_vm *vm, const char *mode, char **why)
{
	if (!ms_vm_mode_known(mode))
		return ms_fail(why, -EINVAL,
			       "mode %s is not one QEMU measures a VM in "
			       "(page-sampling, dirty-bitmap, dirty-ring)",
			       mode);
	if (strcmp(mode, "page-sampling") == 0)
		return 0;
	if (!vm->kvm)
		return ms_fail(why, -EOPNOTSUPP, "mode %s needs KVM, and this VM runs without it",
			       mode);
	if (strcmp(mode, "dirty-ring") == 0 && vm->ring == RING_OFF)
		return ms_fail(why, -EOPNOTSUPP,
			       "mode dirty-ring needs KVM's dirty ring "
			       "(-accel kvm,dirty-ring-size=N)");
	if (strcmp(mode, "dirty-bitmap") == 0 && vm->ring == RING_ON)
		return ms_fail(why, -EOPNOTSUPP,
			       "mode dirty-bitmap is off while KVM's dirty ring is on; "
			       "use dirty-ring");
	return 0;
}

const char *ms_vm_default_mode(const ms_vm *vm)
{
	if (vm->kvm)
		return vm->ring == RING_ON    ? "dirty-ring"
		       : vm->ring == RING_OFF ? "dirty-bitmap"
					      : "page-sampling"; /* works either way */
	return "page-sampling";
}

const char *ms_vm_name(const ms_vm *vm)
{
	return vm->name;
}

uint64_t ms_vm_ram_bytes(const ms_vm *vm)
{
	return vm->ram_bytes;
}

ms_vm *ms_vm_new(const ms_vm_backend *ops, void *b, const char *name, uint64_t ram_bytes, bool kvm,
		 int ring)
{
	ms_vm *vm = g_new0(ms_vm, 1);

	vm->ops = ops;
	vm->b = b;
	vm->name = name && *name ? g_strdup(name) : NULL;
	vm->ram_bytes = ram_bytes;
	vm->kvm = kvm;
	vm->ring = ring > 0 ? RING_ON : ring == 0 ? RING_OFF : RING_UNKNOWN;
	return vm;
}

void ms_vm_free(ms_vm *vm)
{
	if (!vm)
		return;
	if (vm->ops && vm->b)
		vm->ops->free(vm->b);
	g_free(vm->name);
	g_free(vm);
}

/* Starts one QEMU measurement and learns its start-time. */
static int start_window(ms_vm *vm, uint32_t calc_s, uint32_t sample_pages, const char *mode,
			uint64_t ram_bytes, char **why)
{
	ms_vm_result q = {0};
	int64_t started = wall_ms(), started_mono = mono_ms();
	int r = vm->ops->start(vm->b, calc_s, sample_pages, mode, why);
	if (r < 0)
		return r;
	/* The start-time QEMU gave it tells our measurement from a later
	 * one by another client. */
	if ((r = vm->ops->query(vm->b, &q, why)) < 0)
		return r;
	g_free(q.vcpu);
	vm->win = (window){.open = true,
			   .calc_s = calc_s,
			   .sample_pages = sample_pages,
			   .start_time = q.start_time,
			   .start_ms = started,
			   .start_mono = started_mono,
			   .ram_bytes = ram_bytes,
			   .mode = static_mode(mode)};
	return 0;
}

/* x pages, as a count of at most most: 0 for NaN or less than 0 (a double
 * out of uint64_t's range must never be cast: QEMU's figures are a peer's
 * word, and its RAM size may be 0). */
static uint64_t pages_at_most(double x, uint64_t most)
{
	if (!(x > 0))
		return 0;
	return x >= (double)most ? most : (uint64_t)x;
}

void ms_vm_fill_measurement(const ms_vm_result *r, int64_t start_ms, uint32_t calc_s,
			    uint32_t sample_pages, uint64_t ram_bytes, ms_measurement *out)
{
	double rate = (double)r->rate;
	double ram_mib = (double)ram_bytes / (1 << 20);
	const char *mode = r->mode ? r->mode : "page-sampling";

	memset(out, 0, sizeof(*out));
	out->start_ms = start_ms;
	out->period_ms = r->calc_ms ? r->calc_ms : calc_s * 1000;
	out->mode = mode;
	out->method = "qmp:calc-dirty-rate";
	out->page_size = 4096;
	out->pages_total = ram_bytes / 4096;
	out->pages_population = out->pages_total;
	out->memory_mib = ram_mib;
	out->rate = rate;
	double seconds = out->period_ms / 1000.0;
	if (strcmp(mode, "page-sampling") == 0) {
		/* QEMU draws sample-pages per GiB of each RAM block and
		 * reports whole MiB/s, truncated: its estimate was in
		 * [rate, rate + 1).  The counts are derived back from that
		 * figure (approximate); the interval is the sampling error
		 * around both ends. */
		uint64_t n = (uint64_t)((double)sample_pages * ram_mib / 1024.0);
		n = MAX(n, 1);
		double per_page = ram_mib / seconds / (double)n; /* MiB/s a sampled page is */
		/* per_page 0 (no RAM said): every sampled page, or none. */
		uint64_t d = pages_at_most(ceil(rate / per_page - 1e-9), n);
		uint64_t d_hi = pages_at_most(ceil((rate + 1.0) / per_page - 1e-9), n + 1);
		d_hi = MIN(MAX(d_hi, 1) - 1, n); /* the most below rate + 1 */
		d_hi = MAX(d_hi, d);
		double lo, hi, lo2, hi2;
		ms_proportion_interval(d, n, out->pages_population, 1.96, &lo, &hi);
		ms_proportion_interval(d_hi, n, out->pages_population, 1.96, &lo2, &hi2);
		out->pages_sampled = n;
		out->pages_dirty = d;
		out->rate_lo = MIN(lo * ram_mib / seconds, rate);
		out->rate_hi = MAX(hi2 * ram_mib / seconds, rate + 1.0);
	} else {
		/* KVM's dirty log sees every page the guest writes, but QEMU
		 * truncates to whole MiB/s: the truth is in [rate, rate + 1). */
		out->exact = false;
		out->pages_sampled = out->pages_total;
		out->pages_dirty = pages_at_most(round(rate * seconds * 256.0), UINT64_MAX);
		out->rate_lo = rate;
		out->rate_hi = rate + 1.0;
	}
	if (r->vcpus) {
		out->vcpu = g_memdup2(r->vcpu, sizeof(ms_vcpu_rate) * r->vcpus);
		out->vcpus = r->vcpus;
	}
}

/* Reads the measurement of the open window: 1 with *out, 0 when another
 * client's measurement replaced ours, -EINPROGRESS, or -errno. */
static int close_window(ms_vm *vm, ms_measurement *out, char **why)
{
	const window *w = &vm->win;
	int64_t deadline = w->start_mono + (int64_t)w->calc_s * 1000 + RESULT_GRACE_MS;
	ms_vm_result q = {0};

	int r = vm->ops->query(vm->b, &q, why);
	if (r < 0)
		return r;
	/* QEMU sets start-time (whole seconds of the host's monotonic clock)
	 * when asked, and its measuring thread sets it again from when it
	 * began: one more can still be ours.  But another client's, started
	 * once ours had finished, can have that start-time too: it cannot have
	 * finished before ours had, plus its own second at least.  Closed
	 * later than that, a start-time one more is not taken as ours. */
	bool later_is_ours = mono_ms() < w->start_mono + (int64_t)w->calc_s * 1000 + 1000;
	if (q.start_time < w->start_time ||
	    q.start_time > w->start_time + (later_is_ours ? 1 : 0) ||
	    (q.mode && strcmp(q.mode, w->mode) != 0)) {
		g_free(q.vcpu);
		g_message("a measurement by another client replaced ours");
		return 0;
	}
	if (q.status == 2) {
		vm->ours_st = q.start_time;
		ms_vm_fill_measurement(&q, w->start_ms, w->calc_s, w->sample_pages, w->ram_bytes,
				       out);
		out->mode = w->mode;
		out->method = vm->ops->method;
		g_free(q.vcpu);
		return 1;
	}
	g_free(q.vcpu);
	if (mono_ms() > deadline)
		return ms_fail(
			why, -ETIMEDOUT,
			"QEMU's measurement is still running %d s after it should have ended",
			RESULT_GRACE_MS / 1000);
	return -EINPROGRESS;
}

/* Whether QEMU's slot may be taken now: 0, or -EBUSY with *why and
 * *again_ms when another client measures or has a result not yet read. */
static int slot_free(ms_vm *vm, uint32_t *again_ms, char **why)
{
	ms_vm_result q = {0};
	int r = vm->ops->query(vm->b, &q, why);
	g_free(q.vcpu);
	if (r < 0)
		return r;
	int64_t now = mono_ms();
	if (q.status == 1) {
		*again_ms = FOREIGN_POLL_MS;
		vm->waited_ms += FOREIGN_POLL_MS;
		return ms_fail(why, -EBUSY,
			       "another QMP client is measuring the dirty rate; waiting for it");
	}
	if (q.status == 2 &&
	    (q.start_time != vm->foreign_st ||
	     strcmp(q.mode ? q.mode : "", vm->foreign_mode) != 0) &&
	    q.start_time != vm->ours_st) {
		/* A result we did not start: its client reads it first. */
		vm->foreign_st = q.start_time;
		g_strlcpy(vm->foreign_mode, q.mode ? q.mode : "", sizeof(vm->foreign_mode));
		vm->foreign_seen = now;
	}
	if (vm->foreign_seen && now < vm->foreign_seen + MS_VM_SHARE_HOLD_MS) {
		*again_ms = (uint32_t)(vm->foreign_seen + MS_VM_SHARE_HOLD_MS - now);
		vm->waited_ms += *again_ms;
		return ms_fail(why, -EBUSY,
			       "another QMP client's dirty-rate result is left for it to read; "
			       "waiting %u ms",
			       *again_ms);
	}
	return 0;
}

int ms_vm_step(ms_vm *vm, const ms_params *p, const char *mode, ms_measurement *out,
	       uint32_t *again_ms, ms_vm_run *run, char **why)
{
	uint64_t ram = vm->ram_bytes;
	int r;

	*again_ms = 0;
	*run = MS_VM_RUNNING;
	if ((r = vm->ops->run_state(vm->b, run, &ram, why)) < 0)
		return r;
	if (vm->win.open) {
		bool wanted = strcmp(vm->win.mode, mode) == 0;
		r = close_window(vm, out, why);
		if (r == -EINPROGRESS) {
			*again_ms = 50;
			return r;
		}
		vm->win.open = false;
		vm->gap_until = mono_ms() + MS_VM_SHARE_GAP_MS;
		if (r < 0)
			return r;
		bool first_bitmap =
			r == 1 && strcmp(vm->win.mode, "dirty-bitmap") == 0 && !vm->bitmap_seen;
		if (first_bitmap)
			vm->bitmap_seen = true;
		if (r == 1 && (!wanted || *run != MS_VM_RUNNING || first_bitmap)) {
			/* Measured in a mode the user has left since, across a
			 * pause or migration, or KVM's first dirty log (every
			 * page counted): left out. */
			g_free(out->vcpu);
			memset(out, 0, sizeof(*out));
			r = 0;
		}
		if (r == 1) {
			if (vm->waited_ms)
				ms_fail(why, 0, "waited %.1f s for another client's measurement",
					vm->waited_ms / 1000.0);
			vm->waited_ms = 0;
			*again_ms = MS_VM_SHARE_GAP_MS;
			return 1;
		}
	}
	if (*run != MS_VM_RUNNING)
		return 0;
	int64_t now = mono_ms();
	if (now < vm->gap_until) {
		*again_ms = (uint32_t)(vm->gap_until - now);
		return 0;
	}
	if ((r = slot_free(vm, again_ms, why)) < 0)
		return r;
	uint32_t calc_s = MAX(p->period_ms / 1000, 1); /* calc-time: whole seconds */
	r = start_window(vm, calc_s, p->sample_pages, mode, ram, why);
	if (r == -EBUSY) {
		*again_ms = BUSY_RETRY_MS;
		vm->waited_ms += BUSY_RETRY_MS;
	}
	return r < 0 ? r : 0;
}

/* ---- the QMP backend ---- */

typedef struct {
	ms_qmp *qmp;
	int64_t deadline; /* monotonic ms by which open must finish, or 0 */
} qmp_backend;

/* Maps what the QMP client says to what a step returns: a closed
 * connection means the VM went away. */
static int vm_errno(int r)
{
	return r == -ECONNRESET ? -ESRCH : r;
}

static int execute(qmp_backend *q, const char *cmd, JsonObject *args, JsonNode **ret, char **why)
{
	/* While opening, all commands share one deadline: a peer that answers
	 * slowly cannot hold the writer for long. */
	int timeout = q->deadline ? (int)MAX(q->deadline - mono_ms(), 1) : QMP_TIMEOUT_MS;
	int r = ms_qmp_execute(q->qmp, cmd, args, timeout, ret, why);
	if (r == 0 && !*ret)
		r = -EPROTO;
	return vm_errno(r);
}

static JsonObject *object_of(JsonNode *n)
{
	return n && JSON_NODE_HOLDS_OBJECT(n) ? json_node_get_object(n) : NULL;
}

static int64_t int_member(JsonObject *o, const char *name, int64_t dflt)
{
	JsonNode *n = o ? json_object_get_member(o, name) : NULL;
	if (!n || !JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_INT64)
		return dflt;
	return json_node_get_int(n);
}

static const char *string_member(JsonObject *o, const char *name)
{
	JsonNode *n = o ? json_object_get_member(o, name) : NULL;
	if (!n || !JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_STRING)
		return NULL;
	return json_node_get_string(n);
}

static int qmp_start(void *b, uint32_t calc_s, uint32_t sample_pages, const char *mode, char **why)
{
	g_autoptr(JsonObject) args = json_object_new();
	g_autoptr(JsonNode) ret = NULL;
	g_autofree char *qwhy = NULL;

	json_object_set_int_member(args, "calc-time", calc_s);
	if (strcmp(mode, "page-sampling") == 0)
		json_object_set_int_member(args, "sample-pages", sample_pages);
	json_object_set_string_member(args, "mode", mode);
	int r = execute(b, "calc-dirty-rate", args, &ret, &qwhy);
	if (r == -EREMOTEIO) {
		if (strstr(qwhy, "already being measured"))
			return ms_fail(why, -EBUSY,
				       "another QMP client is measuring the dirty rate (QEMU: %s); "
				       "retrying",
				       qwhy);
		if (strstr(qwhy, "not enabled"))
			return ms_fail(why, -EOPNOTSUPP, "QEMU: %s", qwhy);
		return ms_fail(why, -EIO, "QEMU refused calc-dirty-rate: %s", qwhy);
	}
	return r < 0 ? ms_fail(why, r, "%s", qwhy) : 0;
}

static int qmp_query(void *b, ms_vm_result *out, char **why)
{
	g_autoptr(JsonNode) q = NULL;
	int r = execute(b, "query-dirty-rate", NULL, &q, why);
	if (r < 0)
		return r;
	JsonObject *o = object_of(q);
	const char *status = string_member(o, "status");
	if (!status)
		return ms_fail(why, -EPROTO, "query-dirty-rate: no status");
	memset(out, 0, sizeof(*out));
	out->status = strcmp(status, "measured") == 0	 ? 2
		      : strcmp(status, "measuring") == 0 ? 1
							 : 0;
	out->start_time = int_member(o, "start-time", -2);
	out->mode = static_mode(string_member(o, "mode"));
	if (string_member(o, "mode") && !out->mode)
		out->mode = "unknown";
	int64_t calc = int_member(o, "calc-time", 0);
	const char *unit = string_member(o, "calc-time-unit"); /* QEMU 8.2+ */
	calc = unit && strcmp(unit, "millisecond") == 0 ? calc : calc * 1000;
	out->calc_ms = calc > 0 && calc <= 3600000 ? (uint32_t)calc : 0;
	out->sample_pages = (uint32_t)CLAMP(int_member(o, "sample-pages", 0), 0, 1 << 20);
	out->rate = MAX(int_member(o, "dirty-rate", 0), 0);
	JsonNode *vn = json_object_get_member(o, "vcpu-dirty-rate");
	if (vn && JSON_NODE_HOLDS_ARRAY(vn)) {
		JsonArray *a = json_node_get_array(vn);
		guint len = MIN(json_array_get_length(a), 4096);
		out->vcpu = g_new0(ms_vcpu_rate, MAX(len, 1));
		for (guint i = 0; i < len; i++) {
			JsonObject *e = object_of(json_array_get_element(a, i));
			int64_t id = int_member(e, "id", -1);
			if (id < 0 || id > UINT32_MAX)
				continue;
			out->vcpu[out->vcpus++] = (ms_vcpu_rate){
				(uint32_t)id, (double)int_member(e, "dirty-rate", 0)};
		}
	}
	return 0;
}

static uint64_t ram_of(JsonObject *m)
{
	return (uint64_t)MAX(int_member(m, "base-memory", 0), 0) +
	       (uint64_t)MAX(int_member(m, "plugged-memory", 0), 0);
}

/* QMP's RunState values in which the guest does not run, and those of a
 * migration. */
/* (postmigrate: migrated away, stopped here: paused.) */
static const char *const migrating_states[] = {"inmigrate", "finish-migrate"};
static const char *const migration_active[] = {"setup",	 "active",	    "pre-switchover",
					       "device", "postcopy-active", "wait-unplug"};

static bool in(const char *s, const char *const *set, size_t n)
{
	for (size_t i = 0; s && i < n; i++)
		if (strcmp(s, set[i]) == 0)
			return true;
	return false;
}

static int qmp_run_state(void *b, ms_vm_run *run, uint64_t *ram_bytes, char **why)
{
	g_autoptr(JsonNode) st = NULL;
	g_autoptr(JsonNode) mig = NULL;
	g_autoptr(JsonNode) mem = NULL;
	int r;

	if ((r = execute(b, "query-status", NULL, &st, why)) < 0 ||
	    (r = execute(b, "query-migrate", NULL, &mig, why)) < 0 ||
	    (r = execute(b, "query-memory-size-summary", NULL, &mem, why)) < 0)
		return r;
	JsonObject *s = object_of(st);
	const char *status = string_member(s, "status");
	bool running = s && json_object_get_boolean_member_with_default(s, "running", FALSE);
	const char *ms = string_member(object_of(mig), "status");
	if (in(status, migrating_states, G_N_ELEMENTS(migrating_states)) ||
	    in(ms, migration_active, G_N_ELEMENTS(migration_active)))
		*run = MS_VM_MIGRATING;
	else
		*run = running ? MS_VM_RUNNING : MS_VM_PAUSED;
	uint64_t ram = ram_of(object_of(mem));
	if (ram)
		*ram_bytes = ram;
	return 0;
}

static void qmp_free(void *b)
{
	qmp_backend *q = b;

	ms_qmp_close(q->qmp);
	g_free(q);
}

static const ms_vm_backend qmp_ops = {
	.method = "qmp:calc-dirty-rate",
	.start = qmp_start,
	.query = qmp_query,
	.run_state = qmp_run_state,
	.free = qmp_free,
};

/* Asks KVM's dirty ring by trying it: QEMU refuses at once when the ring is
 * off, and otherwise starts a 1 s measurement that becomes the first
 * window.  Only ever called with KVM on (see the top of this file). */
static void probe_dirty_ring(ms_vm *vm)
{
	g_autofree char *why = NULL;
	int r = start_window(vm, 1, 512, "dirty-ring", vm->ram_bytes, &why);

	vm->ring = r == 0 ? RING_ON : r == -EOPNOTSUPP ? RING_OFF : RING_UNKNOWN;
	if (vm->ring == RING_UNKNOWN)
		g_message("could not tell whether KVM's dirty ring is on (%s): page-sampling "
			  "by default; dirty-bitmap and dirty-ring may be asked for",
			  why);
}

int ms_vm_open(int fd, ms_vm **out, char **why)
{
	g_autoptr(JsonNode) name = NULL;
	g_autoptr(JsonNode) mem = NULL;
	g_autoptr(JsonNode) kvm = NULL;
	qmp_backend *q = g_new0(qmp_backend, 1);

	q->deadline = mono_ms() + QMP_TIMEOUT_MS;
	int r = ms_qmp_open(fd, QMP_TIMEOUT_MS, &q->qmp, why);
	if (r < 0) {
		g_free(q);
		return -EPROTO;
	}
	r = execute(q, "query-name", NULL, &name, why);
	if (r == 0)
		r = execute(q, "query-memory-size-summary", NULL, &mem, why);
	if (r == 0)
		r = execute(q, "query-kvm", NULL, &kvm, why);
	if (r < 0) {
		qmp_free(q);
		/* A peer that greets like QEMU but does not answer these, or
		 * not in time, is not one. */
		return -EPROTO;
	}
	JsonObject *k = object_of(kvm);
	bool on = k && json_object_get_boolean_member_with_default(k, "enabled", FALSE);
	ms_vm *vm = ms_vm_new(&qmp_ops, q, string_member(object_of(name), "name"),
			      ram_of(object_of(mem)), on, -1);
	if (vm->kvm)
		probe_dirty_ring(vm);
	else
		vm->ring = RING_OFF;
	q->deadline = 0;
	*out = vm;
	return 0;
}
