/* forecast.h: a target's migration forecast: its latest measured growth
 * curve (methods/growth.h) and its migration settings (settings.h) run
 * through the pre-copy model (precopy.h).  What the growth and migration/
 * files and the memstat_migration_* metrics show. */
#pragma once

#include <stdbool.h>

#include "memstat/core/precopy.h"
#include "memstat/core/target.h"

typedef struct {
	bool have_curve;       /* false: no curve yet (measuring: first one after
				* MS_GROWTH_HORIZON_PERIODS periods) */
	ms_growth_curve curve; /* when have_curve */
	ms_settings settings;  /* bandwidth, downtime_ms, link_bandwidth */
	uint64_t memory_bytes; /* what the first round sends: the resident
				* writable pages the curve was drawn from */
	bool have_forecast;    /* the model ran (have_curve and valid input) */
	ms_precopy_forecast f; /* when have_forecast */
} ms_forecast_view;

/* t's forecast now.  want: mark t's growth curve as wanted (a read of
 * growth or migration/ asks for it: ms_target_want_growth); metrics does
 * not, so that a scrape does not start measuring every target. */
void ms_target_forecast(ms_target *t, bool want, ms_forecast_view *out);
