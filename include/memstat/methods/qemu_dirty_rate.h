/* qemu_dirty_rate.h: measuring a QEMU guest through its QMP socket.
 *
 * QEMU measures its own guest (calc-dirty-rate, query-dirty-rate); this is
 * the client side.  Like the process methods it knows nothing of targets,
 * files or threads: the QEMU source calls ms_vm_step once per period from
 * one worker at a time.
 */
#pragma once

#include <stdbool.h>

#include <stdint.h>

#include "memstat/methods/measurement.h"

typedef struct ms_vm ms_vm;

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

/* Closes the open window (QEMU's measurement started by the previous step)
 * into *out (returns 1; 0 when there was none, or it was lost) and starts
 * the next measurement in mode.  -EINPROGRESS when QEMU has not finished the
 * open window yet (call again soon: nothing waits meanwhile), -ESRCH when
 * the VM went away, -EBUSY when another QMP client is measuring (retry
 * later), another -errno with *why. */
int ms_vm_step(ms_vm *vm, const ms_params *p, const char *mode, ms_measurement *out, char **why);
