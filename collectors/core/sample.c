/* sample.c: a published sample and the text of its file, rendered once. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "memstat/core/sample.h"

ms_sample *ms_sample_new(uint64_t seq, const ms_measurement *m)
{
	ms_sample *s = g_new0(ms_sample, 1);

	ms_ref_init(&s->ref);
	s->seq = seq;
	s->m = *m;
	/* Measurements that time no reads (QEMU's figure) leave these 0. */
	if (s->m.window_min_ms == 0 || s->m.window_min_ms > s->m.period_ms)
		s->m.window_min_ms = s->m.period_ms;
	if (s->m.window_max_ms < s->m.period_ms)
		s->m.window_max_ms = s->m.period_ms;
	if (!(s->m.coverage > 0 && s->m.coverage <= 1))
		s->m.coverage = 1;
	m = &s->m;
	s->m.vcpu = m->vcpus ? g_memdup2(m->vcpu, m->vcpus * sizeof(*m->vcpu)) : NULL;
	snprintf(s->rate_text, sizeof(s->rate_text), "%.2f\n", m->rate);
	s->text = g_strdup_printf("seq %" PRIu64 "\n"
				  "start_ms %" PRId64 "\n"
				  "period_ms %" PRIu32 "\n"
				  "mode %s\n"
				  "method %s\n"
				  "page_size %" PRIu32 "\n"
				  "pages_total %" PRIu64 "\n"
				  "pages_population %" PRIu64 "\n"
				  "pages_sampled %" PRIu64 "\n"
				  "pages_dirty %" PRIu64 "\n"
				  "pages_new %" PRIu64 "\n"
				  "pages_unmapped %" PRIu64 "\n"
				  "pages_refused %" PRIu64 "\n"
				  "memory_mib %.2f\n"
				  "rate %.2f\n"
				  "rate_ci95_low %.2f\n"
				  "rate_ci95_high %.2f\n"
				  "exact %d\n"
				  "window_min_ms %" PRIu32 "\n"
				  "window_max_ms %" PRIu32 "\n"
				  "coverage %.2f\n",
				  seq, m->start_ms, m->period_ms, m->mode, m->method, m->page_size,
				  m->pages_total, m->pages_population, m->pages_sampled,
				  m->pages_dirty, m->pages_new, m->pages_unmapped, m->pages_refused,
				  m->memory_mib, m->rate, m->rate_lo, m->rate_hi, m->exact ? 1 : 0,
				  m->window_min_ms, m->window_max_ms, m->coverage);
	if (m->precision.asked) {
		char pr[64];
		char *t = g_strdup_printf("%sprecision %s\n", s->text,
					  ms_precision_format(&m->precision, pr, sizeof(pr)));
		g_free(s->text);
		s->text = t;
	}
	if (m->processes) {
		char *t = g_strdup_printf("%sprocesses %" PRIu32 "\n", s->text, m->processes);
		g_free(s->text);
		s->text = t;
	}
	if (m->vcpus) {
		GString *t = g_string_new(s->text);
		g_free(s->text);
		g_string_append_printf(t, "vcpus %" PRIu32 "\n", m->vcpus);
		for (uint32_t i = 0; i < m->vcpus; i++)
			g_string_append_printf(t, "vcpu%" PRIu32 "_rate %.2f\n", m->vcpu[i].id,
					       m->vcpu[i].rate);
		s->text = g_string_free(t, FALSE);
	}
	s->text_len = strlen(s->text);
	return s;
}

ms_sample *ms_sample_ref(ms_sample *s)
{
	ms_ref_get(&s->ref);
	return s;
}

void ms_sample_unref(ms_sample *s)
{
	if (s && ms_ref_put(&s->ref)) {
		g_free(s->text);
		g_free(s->m.vcpu);
		g_free(s);
	}
}

const ms_vcpu_rate *ms_sample_vcpu(const ms_sample *s, uint32_t id)
{
	for (uint32_t i = 0; s && i < s->m.vcpus; i++)
		if (s->m.vcpu[i].id == id)
			return &s->m.vcpu[i];
	return NULL;
}
