/* libvirt.h: the libvirt source: a target is a running libvirt domain,
 * named `libvirt:NAME` in a track line, measured by QEMU through libvirt's
 * C API (libvirt_dirty_rate.h).  The connection's URI is the daemon option
 * libvirt_uri (default qemu:///system).  Without libvirt at build time
 * (meson option `libvirt`), `libvirt:` lines are refused with EOPNOTSUPP.
 */
#pragma once

#include <sys/types.h>

#include "memstat/sources/source.h"

extern const ms_source ms_libvirt_source;

/* The domain's QEMU process, 0 when it was not found.  Immutable. */
pid_t ms_libvirt_qemu_pid(void *state);
