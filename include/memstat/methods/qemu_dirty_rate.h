/* qemu_dirty_rate.h: measuring a QEMU guest's dirty rate, as QEMU itself
 * measures it (calc-dirty-rate), through its QMP socket or through libvirt.
 *
 * QEMU measures its own guest; this is the client side.  The windows, the
 * sharing of QEMU's one measurement with other clients, the guest's run
 * state and the figures' intervals are common (ms_vm); how QEMU is asked
 * is a backend (ms_vm_backend): QMP here (ms_vm_open), libvirt in
 * libvirt_dirty_rate.h.  Like the process methods it knows nothing of
 * targets, files or threads: a source calls ms_vm_step once per step from
 * one worker at a time.
 *
 * Sharing (QEMU runs one measurement at a time for all its clients):
 * - after each of its windows, memstatfs leaves QEMU's slot free for
 *   MS_VM_SHARE_GAP_MS before it starts the next, so another client that
 *   asks while memstatfs measures can start within one period and that gap;
 * - a measurement it did not start is never overwritten until
 *   MS_VM_SHARE_HOLD_MS after memstatfs first saw it finished (its client
 *   reads it meanwhile), and never interrupted while it runs;
 * - a measurement is memstatfs's only if its start-time and mode are the
 *   ones QEMU gave it when memstatfs started it.
 */
#pragma once

#include <stdbool.h>

#include <stdint.h>

#include "memstat/methods/measurement.h"

#define MS_VM_SHARE_GAP_MS  1000
#define MS_VM_SHARE_HOLD_MS 2000

typedef struct ms_vm ms_vm;

/* The guest's run state, as a step sees it. */
typedef enum {
	MS_VM_RUNNING,
	MS_VM_PAUSED,	 /* stopped (QMP `stop`, libvirt's suspend, an I/O error) */
	MS_VM_MIGRATING, /* an outgoing (or incoming) migration is under way */
} ms_vm_run;

/* What QEMU says of the latest measurement (query-dirty-rate, or libvirt's
 * dirtyrate stats group). */
typedef struct {
	int status;	       /* 0 unstarted, 1 measuring, 2 measured */
	int64_t start_time;    /* QEMU's start-time, s; -1 when not said */
	uint32_t calc_ms;      /* calc-time, ms; 0 when not said */
	const char *mode;      /* static: "page-sampling"...; NULL when not said */
	uint32_t sample_pages; /* 0 when not said */
	int64_t rate;	       /* MiB/s, truncated (status 2) */
	uint32_t vcpus;
	ms_vcpu_rate *vcpu; /* g_free it */
} ms_vm_result;

/* How QEMU is asked: all return 0 or -errno with *why; -ESRCH: the guest
 * is gone for good. */
typedef struct {
	const char *method; /* a sample's method: "qmp:calc-dirty-rate"... */
	/* Starts a measurement of calc_s seconds in mode (sample_pages per GiB
	 * for page-sampling, when the backend can say it).  -EBUSY when
	 * another client's is running, -EOPNOTSUPP when QEMU cannot. */
	int (*start)(void *b, uint32_t calc_s, uint32_t sample_pages, const char *mode, char **why);
	int (*query)(void *b, ms_vm_result *out, char **why);
	/* The run state now, and the guest's RAM now (bytes). */
	int (*run_state)(void *b, ms_vm_run *run, uint64_t *ram_bytes, char **why);
	void (*free)(void *b);
} ms_vm_backend;

/* A VM measured through backend ops (b: its state, taken; freed by
 * ms_vm_free).  kvm: whether KVM runs it; ring: 1 on, 0 off, -1 unknown. */
ms_vm *ms_vm_new(const ms_vm_backend *ops, void *b, const char *name, uint64_t ram_bytes, bool kvm,
		 int ring);

/* Takes fd (connected to a QMP socket): negotiates QMP and asks the VM its
 * name, its RAM size and whether KVM, and KVM's dirty ring, are on.
 * 0, or -EPROTO (does not speak QMP), -ETIMEDOUT, -ECONNRESET with *why;
 * fd is closed on failure. */
int ms_vm_open(int fd, ms_vm **out, char **why);
void ms_vm_free(ms_vm *vm);

/* What the VM said when it was opened (immutable afterwards). */
const char *ms_vm_name(const ms_vm *vm); /* query-name, or NULL */
const char *ms_vm_default_mode(const ms_vm *vm);
uint64_t ms_vm_ram_bytes(const ms_vm *vm);

/* Whether mode is one QEMU offers: page-sampling, dirty-bitmap, dirty-ring. */
bool ms_vm_mode_known(const char *mode);
/* 0 when this VM can measure in mode; -EINVAL (not a VM mode) or
 * -EOPNOTSUPP (needs KVM, or KVM's dirty ring) with *why. */
int ms_vm_mode_supported(const ms_vm *vm, const char *mode, char **why);

/* One step: closes the open window (QEMU's measurement started by an
 * earlier step) into *out and returns 1 (0 when there was none, it was
 * lost, or the guest did not run all through it), or starts the next
 * measurement in mode when the guest runs and QEMU's slot is free to take.
 * *again_ms: ask again this soon (0: a period later).  *run: the guest's
 * run state (a paused or migrating guest is not measured).
 * -EINPROGRESS when QEMU has not finished the open window yet (call again
 * soon: nothing waits meanwhile), -ESRCH when the VM went away, -EBUSY
 * when another client is measuring or has a result not yet read (*why says
 * so; ask again in *again_ms), another -errno with *why.  With 1, *why may
 * say that the figure waited for another client. */
int ms_vm_step(ms_vm *vm, const ms_params *p, const char *mode, ms_measurement *out,
	       uint32_t *again_ms, ms_vm_run *run, char **why);

/* Fills out from a finished measurement r, whose window opened at start_ms
 * (Unix ms) on a guest of ram_bytes, asked with sample_pages per GiB.
 * QEMU truncates to whole MiB/s: the interval holds [rate, rate + 1) for
 * dirty-bitmap and dirty-ring (never exact), and the sampling error of
 * both ends for page-sampling.  Exposed for tests. */
void ms_vm_fill_measurement(const ms_vm_result *r, int64_t start_ms, uint32_t calc_s,
			    uint32_t sample_pages, uint64_t ram_bytes, ms_measurement *out);
