/* qemu.h: the QEMU source: a target is a QEMU guest, named by its QMP
 * socket (an absolute path), measured by QEMU itself (calc-dirty-rate,
 * collectors/methods/qemu_dirty_rate.h).  The daemon connects to the socket
 * with the writer's rights. */
#pragma once

#include <sys/types.h>

#include "memstat/methods/growth.h"
#include "memstat/methods/qemu_dirty_rate.h"
#include "memstat/sources/source.h"

extern const ms_source ms_qemu_source;

/* QEMU's process (state: a QEMU source's): 0 when it is not visible from
 * the daemon's pid namespace.  Immutable. */
pid_t ms_qemu_pid(void *state);

/* The QMP socket's path.  Immutable. */
const char *ms_qemu_socket(void *state);

/* A step of a source whose target QEMU measures (ms_vm_step), in a
 * source's terms: the retry delays, and a paused or migrating guest held.
 * Shared by the QEMU and libvirt sources. */
int ms_vm_source_step(ms_vm *vm, const char *mode, const ms_params *p, ms_step *out, char **why);

/* A VM's growth curve (growth.h), of its QEMU process measured from
 * outside (QEMU's calc-time gives one point per calc-dirty-rate, not a
 * ladder), driven between the steps QEMU measures the rate in.  The
 * worker's, as the rest of a source's state; zero it to start. */
typedef struct {
	ms_growth_probe *probe; /* NULL until someone wants the curve */
	int64_t qmp_due_us;	/* CLOCK_MONOTONIC; 0: at the next step */
	ms_held held;		/* the guest as the last QMP step found it */
} ms_vm_growth;

/* A step of a VM source: ms_vm_source_step when it is due, and while
 * someone wants the growth curve (p->growth_ms) and QEMU's process is
 * known (qemu_pid > 0), the growth looks between, never while the guest
 * is paused or migrating (the last QMP step's held: a look would disturb
 * neither, but the guest must not read as resumed, and a migration's
 * pages are not to be raced).  Returns as ms_vm_source_step; a finished
 * curve in out->growth, the next step in out->again_ms.  Shared by the
 * QEMU and libvirt sources. */
int ms_vm_growth_step(ms_vm_growth *g, ms_vm *vm, pid_t qemu_pid, const char *mode,
		      const ms_params *p, ms_step *out, char **why);
/* Frees the probe. */
void ms_vm_growth_clear(ms_vm_growth *g);
