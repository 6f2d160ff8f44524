/* qemu_dirty_rate.c: a QEMU guest's dirty rate, as QEMU itself measures it.
 *
 * One calc-dirty-rate per window, over the whole period; the next step
 * reads the result with query-dirty-rate and starts the next one.  QEMU
 * runs one measurement at a time for all its clients: a measurement is ours
 * only if its start-time and mode are the ones it had when we started it.
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

typedef struct {
	bool open;
	const char *mode; /* one of vm_modes */
	uint32_t calc_s, sample_pages;
	int64_t start_time; /* QEMU's start-time of the measurement */
	int64_t start_ms;   /* Unix time, ms */
	int64_t start_mono; /* monotonic ms */
} window;

typedef enum { RING_OFF, RING_ON, RING_UNKNOWN } ms_ring;

struct ms_vm {
	ms_qmp *qmp;
	char *name; /* query-name, or NULL */
	uint64_t ram_bytes;
	bool kvm;
	ms_ring ring;	  /* KVM's dirty ring: on, off, or unknown */
	int64_t deadline; /* monotonic ms by which open must finish, or 0 */
	window win;	  /* QEMU's measurement we started and have not read yet */
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

/* Maps what the QMP client says to what a step returns: a closed
 * connection means the VM went away. */
static int vm_errno(int r)
{
	return r == -ECONNRESET ? -ESRCH : r;
}

static int execute(ms_vm *vm, const char *cmd, JsonObject *args, JsonNode **ret, char **why)
{
	/* While opening, all commands share one deadline: a peer that answers
	 * slowly cannot hold the writer for long. */
	int timeout = vm->deadline ? (int)MAX(vm->deadline - mono_ms(), 1) : QMP_TIMEOUT_MS;
	int r = ms_qmp_execute(vm->qmp, cmd, args, timeout, ret, why);
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

bool ms_vm_mode_known(const char *mode)
{
	for (size_t i = 0; i < G_N_ELEMENTS(vm_modes); i++)
		if (strcmp(mode, vm_modes[i]) == 0)
			return true;
	return false;
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

static const char *static_mode(const char *mode)
{
	for (size_t i = 0; i < G_N_ELEMENTS(vm_modes); i++)
		if (strcmp(mode, vm_modes[i]) == 0)
			return vm_modes[i];
	return "page-sampling";
}

/* Starts one QEMU measurement.  -EBUSY when another client's runs. */
static int start_window(ms_vm *vm, uint32_t calc_s, uint32_t sample_pages, const char *mode,
			char **why)
{
	g_autoptr(JsonObject) args = json_object_new();
	g_autoptr(JsonNode) ret = NULL;
	g_autoptr(JsonNode) q = NULL;
	g_autofree char *qwhy = NULL;

	json_object_set_int_member(args, "calc-time", calc_s);
	if (strcmp(mode, "page-sampling") == 0)
		json_object_set_int_member(args, "sample-pages", sample_pages);
	json_object_set_string_member(args, "mode", mode);
	int64_t started = wall_ms(), started_mono = mono_ms();
	int r = execute(vm, "calc-dirty-rate", args, &ret, &qwhy);
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
	if (r < 0)
		return ms_fail(why, r, "%s", qwhy);
	/* The start-time QEMU gave it tells our measurement from a later
	 * one by another client. */
	if ((r = execute(vm, "query-dirty-rate", NULL, &q, why)) < 0)
		return r;
	vm->win = (window){.open = true,
			   .calc_s = calc_s,
			   .sample_pages = sample_pages,
			   .start_time = int_member(object_of(q), "start-time", -1),
			   .start_ms = started,
			   .start_mono = started_mono,
			   .mode = static_mode(mode)};
	return 0;
}

/* Fills out from a measured query-dirty-rate reply. */
static void fill_measurement(const ms_vm *vm, const window *w, JsonObject *o, ms_measurement *out)
{
	double rate = (double)int_member(o, "dirty-rate", 0);
	int64_t calc = int_member(o, "calc-time", w->calc_s);
	const char *unit = string_member(o, "calc-time-unit"); /* QEMU 8.2+ */
	uint32_t period_ms =
		unit && strcmp(unit, "millisecond") == 0 ? (uint32_t)calc : (uint32_t)calc * 1000;
	double ram_mib = (double)vm->ram_bytes / (1 << 20);

	memset(out, 0, sizeof(*out));
	out->start_ms = w->start_ms;
	out->period_ms = period_ms ? period_ms : w->calc_s * 1000;
	out->mode = w->mode;
	out->method = "qmp:calc-dirty-rate";
	out->page_size = 4096;
	out->pages_total = vm->ram_bytes / 4096;
	out->pages_population = out->pages_total;
	out->memory_mib = ram_mib;
	out->rate = rate;
	double seconds = out->period_ms / 1000.0;
	if (strcmp(w->mode, "page-sampling") == 0) {
		/* QEMU draws sample-pages per GiB of each RAM block and
		 * reports whole MiB/s; the counts and the interval are
		 * derived back from that figure, so they are approximate. */
		uint64_t n = (uint64_t)((double)w->sample_pages * ram_mib / 1024.0);
		n = MAX(n, 1);
		uint64_t d = (uint64_t)llround(rate * (double)n * seconds / MAX(ram_mib, 1.0));
		d = MIN(d, n);
		double lo, hi;
		ms_proportion_interval(d, n, out->pages_population, 1.96, &lo, &hi);
		out->pages_sampled = n;
		out->pages_dirty = d;
		out->rate_lo = lo * ram_mib / seconds;
		out->rate_hi = hi * ram_mib / seconds;
	} else {
		/* KVM's dirty log sees every page the guest writes. */
		out->exact = true;
		out->pages_sampled = out->pages_total;
		out->pages_dirty = (uint64_t)llround(rate * seconds * 256.0);
		out->rate_lo = out->rate_hi = rate;
	}
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
}

/* Waits for the measurement of the open window and reads it: 1 with *out,
 * 0 when another client's measurement replaced ours, or -errno. */
static int close_window(ms_vm *vm, ms_measurement *out, char **why)
{
	const window *w = &vm->win;
	int64_t deadline = w->start_mono + (int64_t)w->calc_s * 1000 + RESULT_GRACE_MS;

	for (;;) {
		g_autoptr(JsonNode) q = NULL;
		int r = execute(vm, "query-dirty-rate", NULL, &q, why);
		if (r < 0)
			return r;
		JsonObject *o = object_of(q);
		const char *status = string_member(o, "status");
		const char *mode = string_member(o, "mode");
		if (!status)
			return ms_fail(why, -EPROTO, "query-dirty-rate: no status");
		/* QEMU sets start-time (whole seconds) when asked, and its
		 * measuring thread sets it again when it starts: one more is
		 * still ours.  No other client can start before ours ends. */
		int64_t st = int_member(o, "start-time", -2);
		if (st < w->start_time || st > w->start_time + 1 ||
		    (mode && strcmp(mode, w->mode) != 0)) {
			g_message("a measurement by another QMP client replaced ours");
			return 0;
		}
		if (strcmp(status, "measured") == 0) {
			fill_measurement(vm, w, o, out);
			return 1;
		}
		if (mono_ms() > deadline)
			return ms_fail(why, -ETIMEDOUT,
				       "QEMU's measurement is still %s %d s after it should have "
				       "ended",
				       status, RESULT_GRACE_MS / 1000);
		/* Not yet: no thread waits for it. */
		return -EINPROGRESS;
	}
}

int ms_vm_step(ms_vm *vm, const ms_params *p, const char *mode, ms_measurement *out, char **why)
{
	int got = 0;

	if (vm->win.open) {
		bool wanted = strcmp(vm->win.mode, mode) == 0;
		int r = close_window(vm, out, why);
		if (r == -EINPROGRESS)
			return r;
		vm->win.open = false;
		if (r < 0)
			return r;
		if (r == 1 && !wanted) {
			/* Measured in a mode the user has left since. */
			g_free(out->vcpu);
			memset(out, 0, sizeof(*out));
			r = 0;
		}
		got = r;
	}
	uint32_t calc_s = MAX(p->period_ms / 1000, 1); /* calc-time: whole seconds */
	g_autofree char *swhy = NULL;
	int r = start_window(vm, calc_s, p->sample_pages, mode, &swhy);
	if (r < 0 && !got)
		return ms_fail(why, r, "%s", swhy);
	/* A figure in hand is published; a failure to start the next window
	 * shows at the next step. */
	return got;
}

/* Asks KVM's dirty ring by trying it: QEMU refuses at once when the ring is
 * off, and otherwise starts a 1 s measurement that becomes the first
 * window.  Only ever called with KVM on (see the top of this file). */
static void probe_dirty_ring(ms_vm *vm)
{
	g_autofree char *why = NULL;
	int r = start_window(vm, 1, 512, "dirty-ring", &why);

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
	ms_vm *vm = g_new0(ms_vm, 1);

	vm->deadline = mono_ms() + QMP_TIMEOUT_MS;
	int r = ms_qmp_open(fd, QMP_TIMEOUT_MS, &vm->qmp, why);
	if (r == 0)
		r = execute(vm, "query-name", NULL, &name, why);
	if (r == 0)
		r = execute(vm, "query-memory-size-summary", NULL, &mem, why);
	if (r == 0)
		r = execute(vm, "query-kvm", NULL, &kvm, why);
	if (r < 0) {
		ms_vm_free(vm);
		/* A peer that greets like QEMU but does not answer these, or
		 * not in time, is not one. */
		return -EPROTO;
	}
	const char *n = string_member(object_of(name), "name");
	vm->name = n && *n ? g_strdup(n) : NULL;
	JsonObject *m = object_of(mem);
	vm->ram_bytes = (uint64_t)MAX(int_member(m, "base-memory", 0), 0) +
			(uint64_t)MAX(int_member(m, "plugged-memory", 0), 0);
	JsonObject *k = object_of(kvm);
	vm->kvm = k && json_object_get_boolean_member_with_default(k, "enabled", FALSE);
	if (vm->kvm)
		probe_dirty_ring(vm);
	vm->deadline = 0;
	*out = vm;
	return 0;
}

void ms_vm_free(ms_vm *vm)
{
	if (!vm)
		return;
	ms_qmp_close(vm->qmp);
	g_free(vm->name);
	g_free(vm);
}
