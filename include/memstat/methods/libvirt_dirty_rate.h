/* libvirt_dirty_rate.h: a libvirt domain's dirty rate, as QEMU measures it,
 * asked through libvirt's C API (virDomainStartDirtyRateCalc and the
 * domain stats' dirtyrate group): an ms_vm backend (qemu_dirty_rate.h).
 * Only built with libvirt (meson option `libvirt`).
 */
#pragma once

#include <sys/types.h>

#include "memstat/methods/qemu_dirty_rate.h"

/* Connects to uri (NULL: qemu:///system) and finds the domain called name
 * (as root: the source checked the caller).  0 with *out (an ms_vm whose
 * name is the domain's), *qemu_pid (its QEMU process, 0 when not found)
 * and *domain_id; or -ECONNREFUSED (libvirtd not reachable), -ENOENT (no
 * such domain), -ESRCH (defined but not running) with *why. */
int ms_libvirt_open(const char *uri, const char *name, ms_vm **out, pid_t *qemu_pid, char **why);
