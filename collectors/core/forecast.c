/* forecast.c: a target's migration forecast (forecast.h). */
#include "memstat/core/forecast.h"

#include <string.h>

void ms_target_forecast(ms_target *t, bool want, ms_forecast_view *out)
{
	ms_target_view v;
	ms_growth_point pts[MS_GROWTH_MAX_STEPS];
	const char *why = NULL;

	memset(out, 0, sizeof(*out));
	if (want)
		ms_target_want_growth(t);
	ms_target_get_view(t, &v);
	out->settings = v.settings;
	out->have_curve = ms_target_get_growth(t, &out->curve);
	if (!out->have_curve || out->curve.n == 0)
		return;
	for (uint32_t i = 0; i < out->curve.n; i++)
		pts[i] = (ms_growth_point){.t_s = out->curve.point[i].t_s,
					   .pages = out->curve.point[i].pages,
					   .ci95_low = out->curve.point[i].ci95_low,
					   .ci95_high = out->curve.point[i].ci95_high};
	out->memory_bytes = out->curve.pages_population * out->curve.page_size;
	/* A VM's curve is its QEMU process's: what the first round sends is at
	 * most the guest's RAM (QEMU's own memory is not migrated as RAM). */
	g_autoptr(ms_sample) latest = ms_target_source(t)->bit & (MS_KIND_VM | MS_KIND_LIBVIRT)
					      ? ms_target_get_sample(t, 0)
					      : NULL;
	if (latest && latest->m.pages_total && latest->m.page_size) {
		uint64_t ram = latest->m.pages_total * latest->m.page_size;
		if (ram < out->memory_bytes)
			out->memory_bytes = ram;
	}
	ms_precopy_input in = {
		.curve = pts,
		.n = out->curve.n,
		.memory_bytes = out->memory_bytes,
		.page_size = out->curve.page_size,
		.bandwidth = (double)v.settings.bandwidth,
		.downtime_ms = v.settings.downtime_ms,
		.link_bandwidth = (double)v.settings.link_bandwidth,
		.max_total_s = v.settings.max_total_s,
	};
	if (in.memory_bytes == 0 || in.bandwidth <= 0)
		return;
	out->have_forecast = ms_precopy_forecast_compute(&in, &out->f, &why) == 0;
	if (!out->have_forecast)
		g_debug("%s: no forecast: %s", ms_target_name(t), why ? why : "");
}
