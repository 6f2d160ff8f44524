/* qemu.h: the QEMU source: a target is a QEMU guest, named by its QMP
 * socket (an absolute path), measured by QEMU itself (calc-dirty-rate,
 * collectors/methods/qemu_dirty_rate.h).  The daemon connects to the socket
 * with the writer's rights. */
#pragma once

#include <sys/types.h>

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
