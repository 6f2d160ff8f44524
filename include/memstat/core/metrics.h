/* metrics.h: the whole state in Prometheus's text exposition format (0.0.4),
 * for the `metrics` file: base units (bytes, seconds), HELP and TYPE lines. */
#pragma once

#include "memstat/core/registry.h"

/* Renders memstat_build_info, the host's memory figures (read now:
 * /proc/meminfo, vm.overcommit_*, PSI where the kernel has it) and the
 * latest sample and running totals of every target the caller may read
 * (all with caller NULL).  Never NULL: what cannot be read is left out.
 * The names, units and labels are stable (README, Metrics). */
char *ms_metrics_render(ms_registry *reg, const ms_caller *caller);

/* What the host's figures are read from; NULL leaves a part out. */
typedef struct {
	const char *meminfo;	   /* /proc/meminfo */
	const char *overcommit[3]; /* /proc/sys/vm/overcommit_{memory,ratio,kbytes} */
	const char *pressure;	   /* /proc/pressure/memory (PSI), NULL without it */
} ms_metrics_texts;

/* The same from given texts (tests, fuzzing). */
char *ms_metrics_render_texts(ms_registry *reg, const ms_caller *caller,
			      const ms_metrics_texts *in);

/* The same from given texts of /proc/meminfo and
 * /proc/sys/vm/overcommit_{memory,ratio,kbytes}, without PSI. */
char *ms_metrics_render_from(ms_registry *reg, const ms_caller *caller, const char *meminfo,
			     const char *const overcommit[3]);
