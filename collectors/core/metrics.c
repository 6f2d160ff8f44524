/* metrics.c: the `metrics` file, Prometheus's text exposition format.
 *
 * Each family is written whole (HELP, TYPE, then its samples) from one
 * snapshot of the targets and one read of /proc/meminfo, so a scrape is
 * consistent with itself. */
#include "memstat/core/metrics.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memstat/core/forecast.h"
#include "memstat/methods/meminfo.h"
#include "memstat/methods/procfs.h"

/* A target as it was when the scrape began. */
typedef struct {
	char *name;
	const char *kind;
	ms_target_view view;
	ms_sample *latest;    /* NULL before the first figure */
	ms_forecast_view *fc; /* the migration forecast, or NULL when none */
} snap;

static void snap_clear(gpointer p)
{
	snap *s = p;
	g_free(s->name);
	ms_sample_unref(s->latest);
	g_free(s->fc);
}

/* Appends v as a label value: backslash, quote and newline escaped. */
static void append_label(GString *out, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			g_string_append_c(out, '\\');
		if (*v == '\n') {
			g_string_append(out, "\\n");
			continue;
		}
		g_string_append_c(out, *v);
	}
}

static void family(GString *out, const char *name, const char *type, const char *help)
{
	g_string_append_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* metric{target="NAME",kind="process|vm|container"[,mode="MODE"]} */
static void target_labels(GString *out, const char *metric, const snap *s, const char *mode)
{
	g_string_append_printf(out, "%s{target=\"", metric);
	append_label(out, s->name);
	g_string_append_printf(out, "\",kind=\"%s\"", s->kind);
	if (mode) {
		g_string_append(out, ",mode=\"");
		append_label(out, mode);
		g_string_append_c(out, '"');
	}
	g_string_append_c(out, '}');
}

/* The shortest text that reads back as v (0.973, not 0.97299999999999998). */
static void value(GString *out, double v)
{
	char buf[G_ASCII_DTOSTR_BUF_SIZE];
	if (isinf(v)) {
		g_string_append(out, v > 0 ? " +Inf\n" : " -Inf\n");
		return;
	}
	if (isnan(v)) {
		g_string_append(out, " NaN\n"); /* the exposition format's spelling */
		return;
	}
	for (const char *const *f = (const char *const[]){"%.15g", "%.16g", "%.17g", NULL}; *f;
	     f++) {
		g_ascii_formatd(buf, sizeof(buf), *f, v);
		if (g_ascii_strtod(buf, NULL) == v)
			break;
	}
	g_string_append_printf(out, " %s\n", buf);
}

/* The number a meminfo/ file shows (digits, then its newline): false when
 * it is missing or not one (the family is then left out, as when the
 * kernel has no such field). */
static bool host_number(const char *name, const char *meminfo, const char *const oc[3], double *out)
{
	g_autofree char *text = NULL;
	char *end;

	if (ms_meminfo_value_from(name, meminfo, oc, &text) < 0 || !g_ascii_isdigit(text[0]))
		return false;
	*out = g_ascii_strtod(text, &end);
	return *end == '\n' && isfinite(*out);
}

/* One meminfo field, kB, as bytes (a double, as Prometheus keeps it: no
 * 64-bit product wraps, however large the field). */
static void host_bytes(GString *out, const char *meminfo, const char *const oc[3],
		       const char *field, const char *metric, const char *help)
{
	double kb;
	if (!host_number(field, meminfo, oc, &kb))
		return;
	family(out, metric, "gauge", help);
	g_string_append(out, metric);
	value(out, kb * 1024);
}

/* The default-size hugepage pool (HugePages_* are counts of Hugepagesize
 * pages) and Hugetlb (kB, every size), in bytes: MemAvailable leaves the
 * whole pool out, so memstat_memory_used_bytes counts it as used. */
static void hugepages(GString *out, const char *meminfo, const char *const oc[3])
{
	static const struct {
		const char *field, *metric, *help;
	} pool[] = {
		{"hugepages_total", "memstat_hugepages_total_bytes",
		 "HugePages_Total x Hugepagesize: the default-size hugepage pool."},
		{"hugepages_free", "memstat_hugepages_free_bytes",
		 "HugePages_Free x Hugepagesize: pool pages not yet faulted in."},
		{"hugepages_rsvd", "memstat_hugepages_reserved_bytes",
		 "HugePages_Rsvd x Hugepagesize: free pool pages promised to mappings."},
		{"hugepages_surp", "memstat_hugepages_surplus_bytes",
		 "HugePages_Surp x Hugepagesize: pool pages above vm.nr_hugepages."},
	};
	double page, count;
	if (!host_number("hugepagesize", meminfo, oc, &page))
		return;
	page *= 1024;
	family(out, "memstat_hugepage_size_bytes", "gauge",
	       "Hugepagesize of /proc/meminfo: the default hugepage size.");
	g_string_append(out, "memstat_hugepage_size_bytes");
	value(out, page);
	for (size_t i = 0; i < G_N_ELEMENTS(pool); i++) {
		if (!host_number(pool[i].field, meminfo, oc, &count))
			continue;
		family(out, pool[i].metric, "gauge", pool[i].help);
		g_string_append(out, pool[i].metric);
		value(out, count * page);
	}
	host_bytes(out, meminfo, oc, "hugetlb", "memstat_hugetlb_bytes",
		   "Hugetlb of /proc/meminfo: memory in hugepage pools of every size.");
}

/* /proc/pressure/memory (PSI): "some|full avg10=A avg60=B avg300=C total=US".
 * The totals (microseconds) as counters of seconds, avg10 (percent) as a
 * fraction.  Lines that do not parse are left out. */
static void pressure(GString *out, const char *text)
{
	static const char *const kinds[] = {"some", "full"};
	double avg10[2];
	uint64_t total[2];
	bool have[2] = {false, false};

	g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
	for (char **l = lines; *l; l++) {
		char kind[8];
		double a10, a60, a300;
		uint64_t us;
		int end = 0;
		if (sscanf(*l, "%7s avg10=%lf avg60=%lf avg300=%lf total=%" SCNu64 "%n", kind, &a10,
			   &a60, &a300, &us, &end) != 5 ||
		    (*l)[end] != '\0' || !(a10 >= 0 && a10 <= 100))
			continue;
		for (size_t k = 0; k < G_N_ELEMENTS(kinds); k++)
			if (strcmp(kind, kinds[k]) == 0) {
				have[k] = true;
				avg10[k] = a10;
				total[k] = us;
			}
	}
	static const char *const help_total[] = {
		"PSI: seconds in which at least one task stalled on memory (some total).",
		"PSI: seconds in which all non-idle tasks stalled on memory (full total).",
	};
	static const char *const help_avg[] = {
		"PSI: share of the last 10 s in which some task stalled on memory (some avg10).",
		"PSI: share of the last 10 s in which all non-idle tasks stalled on memory "
		"(full avg10).",
	};
	for (size_t k = 0; k < G_N_ELEMENTS(kinds); k++) {
		if (!have[k])
			continue;
		char name[64];
		snprintf(name, sizeof(name), "memstat_memory_pressure_%s_seconds_total", kinds[k]);
		family(out, name, "counter", help_total[k]);
		g_string_append(out, name);
		value(out, total[k] / 1e6);
		snprintf(name, sizeof(name), "memstat_memory_pressure_%s_avg10_ratio", kinds[k]);
		family(out, name, "gauge", help_avg[k]);
		g_string_append(out, name);
		value(out, avg10[k] / 100.0);
	}
}

static void build_info(GString *out)
{
	family(out, "memstat_build_info", "gauge", "Always 1; labels say which memstatfs runs.");
	g_string_append(out, "memstat_build_info{version=\"");
	append_label(out, MEMSTATFS_VERSION);
	g_string_append(out, "\"} 1\n");
}

static void host(GString *out, const char *meminfo, const char *const oc[3])
{
	static const struct {
		const char *field, *metric, *help;
	} bytes[] = {
		{"memtotal", "memstat_memory_total_bytes", "MemTotal of /proc/meminfo."},
		{"memfree", "memstat_memory_free_bytes", "MemFree of /proc/meminfo."},
		{"memavailable", "memstat_memory_available_bytes",
		 "MemAvailable of /proc/meminfo: what can be allocated without swapping."},
		{"used", "memstat_memory_used_bytes",
		 "MemTotal - MemAvailable, as procps free prints used."},
		{"shmem", "memstat_shmem_bytes",
		 "Shmem of /proc/meminfo (tmpfs, shared anonymous)."},
		{"swaptotal", "memstat_swap_total_bytes", "SwapTotal of /proc/meminfo."},
		{"swapfree", "memstat_swap_free_bytes", "SwapFree of /proc/meminfo."},
		{"commitlimit", "memstat_commit_limit_bytes",
		 "CommitLimit of /proc/meminfo (enforced only when overcommit_memory is 2)."},
		{"committed_as", "memstat_committed_bytes",
		 "Committed_AS of /proc/meminfo: memory promised to all processes."},
	};
	for (size_t i = 0; i < G_N_ELEMENTS(bytes); i++)
		host_bytes(out, meminfo, oc, bytes[i].field, bytes[i].metric, bytes[i].help);

	double mode, ratio;
	if (host_number("overcommit_memory", meminfo, oc, &mode)) {
		family(out, "memstat_overcommit_memory", "gauge",
		       "vm.overcommit_memory: 0 heuristic, 1 always, 2 never (strict).");
		g_string_append(out, "memstat_overcommit_memory");
		value(out, mode);
	}
	if (host_number("overcommit_ratio", meminfo, oc, &ratio)) {
		family(out, "memstat_overcommit_ratio", "gauge",
		       "vm.overcommit_ratio as a fraction (50% is 0.5).");
		g_string_append(out, "memstat_overcommit_ratio");
		value(out, ratio / 100.0);
	}
	host_bytes(out, meminfo, oc, "overcommit_kbytes", "memstat_overcommit_bytes",
		   "vm.overcommit_kbytes in bytes: when not 0 the kernel uses it, not the ratio, "
		   "for CommitLimit.");
	hugepages(out, meminfo, oc);
}

static GArray *snapshot(ms_registry *reg, const ms_caller *caller)
{
	GArray *all = g_array_new(FALSE, TRUE, sizeof(snap));
	g_array_set_clear_func(all, snap_clear);
	if (!reg)
		return all;
	g_autoptr(GPtrArray) targets = ms_registry_list(reg);
	for (guint i = 0; i < targets->len; i++) {
		ms_target *t = g_ptr_array_index(targets, i);
		if (caller && !ms_target_may_read(t, caller))
			continue;
		snap s = {.name = g_strdup(ms_target_name(t)), .kind = ms_target_source(t)->kind};
		ms_target_get_view(t, &s.view);
		s.latest = ms_target_get_sample(t, 0);
		s.fc = g_new(ms_forecast_view, 1);
		ms_target_forecast(t, false, s.fc);
		if (!s.fc->have_forecast)
			g_clear_pointer(&s.fc, g_free);
		g_array_append_val(all, s);
	}
	return all;
}

/* A family with one sample per target that has a figure. */
typedef double (*sample_value)(const ms_sample *s);

static double rate_bytes(const ms_sample *s)
{
	return s->m.rate * 1048576.0;
}
static double rate_lo_bytes(const ms_sample *s)
{
	return s->m.rate_lo * 1048576.0;
}
static double rate_hi_bytes(const ms_sample *s)
{
	return s->m.rate_hi * 1048576.0;
}
static double memory_bytes(const ms_sample *s)
{
	return (double)s->m.pages_total * s->m.page_size;
}
static double period_seconds(const ms_sample *s)
{
	return s->m.period_ms / 1000.0;
}
static double end_seconds(const ms_sample *s)
{
	return (double)(s->m.start_ms + s->m.period_ms) / 1000.0;
}
static double exact(const ms_sample *s)
{
	return s->m.exact ? 1 : 0;
}

/* Whether a target's latest figure is live (see per_target). */
static bool live(const snap *s)
{
	return s->view.state != MS_STATE_EXITED && s->view.state != MS_STATE_PAUSED &&
	       s->view.state != MS_STATE_MIGRATING;
}

static void per_target(GString *out, GArray *all, const char *metric, const char *help,
		       sample_value get)
{
	family(out, metric, "gauge", help);
	for (guint i = 0; i < all->len; i++) {
		const snap *s = &g_array_index(all, snap, i);
		/* A target that has exited has no live figure, nor a guest
		 * that is paused or being migrated (its last one is old). */
		if (!s->latest || !live(s))
			continue;
		/* The mode the figure was measured in. */
		target_labels(out, metric, s, s->latest->m.mode);
		value(out, get(s->latest));
	}
}

/* Counters for rate(): rate(memstat_dirty_bytes_total[R]) /
 * rate(memstat_measured_seconds_total[R]) is the mean dirty rate of the
 * windows that closed within R, whatever the scrapes and periods.  Kept
 * after a target exits (its last increase must not be lost); no mode
 * label, so that a change of mode does not start a new series. */
static void counters(GString *out, GArray *all)
{
	static const struct {
		const char *metric, *help;
		bool bytes;
	} c[] = {
		{"memstat_dirty_bytes_total",
		 "Bytes dirtied that the target's samples account for: sum of rate x period.",
		 true},
		{"memstat_measured_seconds_total",
		 "Seconds covered by the target's samples: sum of their periods.", false},
	};
	for (size_t k = 0; k < G_N_ELEMENTS(c); k++) {
		family(out, c[k].metric, "counter", c[k].help);
		for (guint i = 0; i < all->len; i++) {
			const snap *s = &g_array_index(all, snap, i);
			if (!s->latest)
				continue;
			target_labels(out, c[k].metric, s, NULL);
			value(out,
			      c[k].bytes ? s->latest->dirty_bytes_total : s->latest->seconds_total);
		}
	}
}

static void targets(GString *out, GArray *all)
{
	family(out, "memstat_targets", "gauge", "Targets tracked.");
	g_string_append_printf(out, "memstat_targets %u\n", all->len);
	family(out, "memstat_target_state", "gauge",
	       "1 for the state each target is in (measuring, measured, exited, error, paused, "
	       "migrating).");
	for (guint i = 0; i < all->len; i++) {
		const snap *s = &g_array_index(all, snap, i);
		for (ms_state k = 0; k < MS_STATE_COUNT; k++) {
			g_string_append(out, "memstat_target_state{target=\"");
			append_label(out, s->name);
			g_string_append_printf(out, "\",kind=\"%s\",state=\"%s\"} %d\n", s->kind,
					       ms_state_name(k), s->view.state == k);
		}
	}
	per_target(out, all, "memstat_dirty_rate_bytes_per_second",
		   "Latest dirty rate: bytes written to distinct pages per second.", rate_bytes);
	per_target(out, all, "memstat_dirty_rate_ci95_low_bytes_per_second",
		   "Lower bound of the latest dirty rate's 95% confidence interval.",
		   rate_lo_bytes);
	per_target(out, all, "memstat_dirty_rate_ci95_high_bytes_per_second",
		   "Upper bound of the latest dirty rate's 95% confidence interval.",
		   rate_hi_bytes);
	per_target(out, all, "memstat_dirty_rate_exact",
		   "1 when the latest dirty rate looked at every page (no sampling error).", exact);
	per_target(out, all, "memstat_target_memory_bytes",
		   "Writable memory of the process, or RAM of the VM, at the latest sample.",
		   memory_bytes);
	per_target(out, all, "memstat_sample_period_seconds",
		   "Length of the latest sample's window.", period_seconds);
	per_target(out, all, "memstat_sample_end_timestamp_seconds",
		   "Unix time when the latest sample's window closed.", end_seconds);
	family(out, "memstat_samples_total", "counter", "Samples taken of the target.");
	for (guint i = 0; i < all->len; i++) {
		const snap *s = &g_array_index(all, snap, i);
		target_labels(out, "memstat_samples_total", s, NULL);
		g_string_append_printf(out, " %" PRIu64 "\n", s->view.last_seq);
	}
	counters(out, all);
	family(out, "memstat_vcpu_dirty_rate_bytes_per_second", "gauge",
	       "Latest dirty rate of one vCPU of a VM (dirty-ring mode).");
	for (guint i = 0; i < all->len; i++) {
		const snap *s = &g_array_index(all, snap, i);
		if (!s->latest || !live(s))
			continue;
		for (uint32_t v = 0; v < s->latest->m.vcpus; v++) {
			g_string_append(out, "memstat_vcpu_dirty_rate_bytes_per_second{target=\"");
			append_label(out, s->name);
			g_string_append_printf(out, "\",vcpu=\"%" PRIu32 "\"}",
					       s->latest->m.vcpu[v].id);
			value(out, s->latest->m.vcpu[v].rate * 1048576.0);
		}
	}
}

/* The migration forecast (forecast.h), for the targets that have one: a
 * target whose growth curve someone wants (a reader of growth or
 * migration/, or a forecast setting given). */
typedef double (*run_value)(const ms_precopy_run *r);
static double run_iterations(const ms_precopy_run *r)
{
	return r->iterations;
}
static double run_total(const ms_precopy_run *r)
{
	return r->total_s;
}
static double run_downtime(const ms_precopy_run *r)
{
	return r->downtime_ms / 1000.0;
}
static double run_transferred(const ms_precopy_run *r)
{
	return r->transferred_bytes;
}
static double run_min_bandwidth(const ms_precopy_run *r)
{
	return r->min_bandwidth;
}
static double run_min_downtime(const ms_precopy_run *r)
{
	return r->min_downtime_ms / 1000.0;
}

static void migration(GString *out, GArray *all)
{
	static const char *const curves[_MS_GROWTH_MAX] = {
		[MS_GROWTH_ESTIMATE] = "estimate",
		[MS_GROWTH_LOW] = "low",
		[MS_GROWTH_HIGH] = "high",
	};
	static const struct {
		const char *metric, *help;
		run_value get;
	} runs[] = {
		{"memstat_migration_iterations",
		 "Forecast dirty syncs of a pre-copy migration (query-migrate's dirty-sync-count), "
		 "on the growth curve's estimate, low or high bound.",
		 run_iterations},
		{"memstat_migration_total_seconds", "Forecast total time of a pre-copy migration.",
		 run_total},
		{"memstat_migration_downtime_seconds",
		 "Forecast downtime (stop-and-copy) of a pre-copy migration.", run_downtime},
		{"memstat_migration_transferred_bytes",
		 "Forecast RAM bytes sent by a pre-copy migration, headers included.",
		 run_transferred},
		{"memstat_migration_min_bandwidth_bytes_per_second",
		 "The least bandwidth that converges with the target's downtime limit.",
		 run_min_bandwidth},
		{"memstat_migration_min_downtime_seconds",
		 "The least downtime limit that converges at the target's bandwidth.",
		 run_min_downtime},
	};

	family(out, "memstat_migration_verdict", "gauge",
	       "1 for the pre-copy forecast's verdict (converges, does-not-converge, "
	       "not-enough-data), 0 for the others.");
	for (guint i = 0; i < all->len; i++) {
		const snap *s = &g_array_index(all, snap, i);
		if (!s->fc || s->view.state == MS_STATE_EXITED)
			continue;
		for (ms_precopy_verdict v = 0; v < _MS_PRECOPY_VERDICT_MAX; v++) {
			target_labels(out, "memstat_migration_verdict", s, NULL);
			g_string_truncate(out, out->len - 1); /* reopen the braces */
			g_string_append_printf(out, ",verdict=\"%s\"} %d\n",
					       ms_precopy_verdict_to_string(v),
					       s->fc->f.verdict == v);
		}
	}
	for (size_t k = 0; k < G_N_ELEMENTS(runs); k++) {
		family(out, runs[k].metric, "gauge", runs[k].help);
		for (guint i = 0; i < all->len; i++) {
			const snap *s = &g_array_index(all, snap, i);
			if (!s->fc || s->view.state == MS_STATE_EXITED)
				continue;
			for (int w = 0; w < _MS_GROWTH_MAX; w++) {
				target_labels(out, runs[k].metric, s, NULL);
				g_string_truncate(out, out->len - 1);
				g_string_append_printf(out, ",curve=\"%s\"}", curves[w]);
				value(out, runs[k].get(&s->fc->f.run[w]));
			}
		}
	}
	family(out, "memstat_migration_bandwidth_bytes_per_second", "gauge",
	       "The bandwidth (max-bandwidth) the target's forecast assumes.");
	for (guint i = 0; i < all->len; i++) {
		const snap *s = &g_array_index(all, snap, i);
		if (!s->fc || s->view.state == MS_STATE_EXITED)
			continue;
		target_labels(out, "memstat_migration_bandwidth_bytes_per_second", s, NULL);
		value(out, (double)s->fc->settings.bandwidth);
	}
	family(out, "memstat_migration_downtime_limit_seconds", "gauge",
	       "The downtime limit (downtime-limit) the target's forecast assumes.");
	for (guint i = 0; i < all->len; i++) {
		const snap *s = &g_array_index(all, snap, i);
		if (!s->fc || s->view.state == MS_STATE_EXITED)
			continue;
		target_labels(out, "memstat_migration_downtime_limit_seconds", s, NULL);
		value(out, s->fc->settings.downtime_ms / 1000.0);
	}
}

char *ms_metrics_render_texts(ms_registry *reg, const ms_caller *caller, const ms_metrics_texts *in)
{
	GString *out = g_string_new(NULL);
	g_autoptr(GArray) all = snapshot(reg, caller);

	build_info(out);
	if (in->meminfo)
		host(out, in->meminfo, in->overcommit);
	if (in->pressure)
		pressure(out, in->pressure);
	targets(out, all);
	migration(out, all);
	return g_string_free(out, FALSE);
}

char *ms_metrics_render_from(ms_registry *reg, const ms_caller *caller, const char *meminfo,
			     const char *const overcommit[3])
{
	ms_metrics_texts in = {.meminfo = meminfo};
	for (int i = 0; i < 3; i++)
		in.overcommit[i] = overcommit ? overcommit[i] : NULL;
	return ms_metrics_render_texts(reg, caller, &in);
}

char *ms_metrics_render(ms_registry *reg, const ms_caller *caller)
{
	static const char *const files[3] = {"/proc/sys/vm/overcommit_memory",
					     "/proc/sys/vm/overcommit_ratio",
					     "/proc/sys/vm/overcommit_kbytes"};
	g_autofree char *meminfo = NULL;
	g_autofree char *psi = NULL;
	char *oc[3] = {NULL, NULL, NULL};

	if (ms_read_file("/proc/meminfo", &meminfo, NULL) < 0)
		g_clear_pointer(&meminfo, g_free);
	for (int i = 0; i < 3; i++)
		if (ms_read_file(files[i], &oc[i], NULL) < 0)
			oc[i] = NULL;
	/* Absent without CONFIG_PSI, EOPNOTSUPP with psi=0. */
	if (ms_read_file("/proc/pressure/memory", &psi, NULL) < 0)
		g_clear_pointer(&psi, g_free);
	ms_metrics_texts in = {
		.meminfo = meminfo, .overcommit = {oc[0], oc[1], oc[2]}, .pressure = psi};
	char *text = ms_metrics_render_texts(reg, caller, &in);
	for (int i = 0; i < 3; i++)
		g_free(oc[i]);
	return text;
}
