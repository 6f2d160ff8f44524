/* metrics.h: the whole state in Prometheus's text exposition format (0.0.4),
 * for the `metrics` file: base units (bytes, seconds), HELP and TYPE lines. */
#pragma once

#include "memstat/core/registry.h"

/* Renders the host's memory figures (read now) and the latest sample of
 * every target the caller may read (all with caller NULL).  Never NULL:
 * what cannot be read is left out. */
char *ms_metrics_render(ms_registry *reg, const ms_caller *caller);

/* The same from given texts of /proc/meminfo and
 * /proc/sys/vm/overcommit_{memory,ratio,kbytes} (tests). */
char *ms_metrics_render_from(ms_registry *reg, const ms_caller *caller, const char *meminfo,
			     const char *const overcommit[3]);
