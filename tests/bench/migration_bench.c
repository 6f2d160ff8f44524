/* migration_bench: the pre-copy forecast beside real QEMU migrations.
 *
 *   migration_bench GUEST_ELF [CANCEL_S [CASE...]]
 *
 * For every case of the matrix (tests/migrate_rig.h), or those named: the
 * forecast from the growth curve the guest's pattern implies (analytic),
 * the forecast memstatfs makes from the curve it MEASURES of the QEMU
 * process (tracked by pid, read through its tree: with $MEMSTATFS, the
 * daemon's binary), and the rig's forecast on that measured curve with the
 * RAM's non-zero pages; then a real migration to a second QEMU on this machine,
 * cancelled after CANCEL_S (default 30) and then counted as not
 * converging.  Prints a Markdown table; asserts nothing, but exits 1 when
 * a migration cannot be run and 77 (skipped) when QEMU or the guest is
 * missing.  MIGRATION_BENCH_ACCEL=tcg forces TCG where KVM works.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../migrate_rig.h"

typedef struct {
	const char *mnt;
	const mig_case *c;
	double link, cancel_s;
	mig_measured m;
	bool ok;
	char err[512];
} measuring;

static int before(pid_t qemu_pid, const char *sock, void *data, char *err, size_t errlen)
{
	measuring *ms = data;
	(void)sock;
	(void)err;
	(void)errlen;
	/* A failure to measure is shown in the table; the migration goes on. */
	ms->ok = mig_measure(ms->mnt, qemu_pid, ms->c, ms->link, ms->cancel_s, &ms->m, ms->err,
			     sizeof(ms->err)) == 0;
	return 0;
}

static const char *tmp(void)
{
	const char *t = getenv("TMPDIR");
	return t && *t == '/' && strlen(t) < 100 ? t : "/tmp";
}

/* (b - a) / a as a signed percentage, or "" when not comparable. */
static const char *off(double forecast, double qemu, char *buf, size_t len)
{
	if (!(forecast > 0) || !(qemu > 0)) {
		buf[0] = '\0';
		return buf;
	}
	snprintf(buf, len, " (%+.0f%%)", (forecast - qemu) / qemu * 100);
	return buf;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: migration_bench GUEST_ELF [CANCEL_S [CASE...]]\n");
		return 2;
	}
	double cancel_s = argc > 2 ? atof(argv[2]) : 30;
	char why[1024], err[2048];
	const char *accel = mig_accel(argv[1], tmp(), why, sizeof(why));
	if (!accel) {
		printf("skipped: %s\n", why);
		return 77;
	}
	if (getenv("MIGRATION_BENCH_ACCEL") && strcmp(getenv("MIGRATION_BENCH_ACCEL"), "tcg") == 0)
		accel = "tcg";
	double link = mig_link_bandwidth(accel, argv[1], tmp(), err, sizeof(err));
	if (link < 0) {
		printf("the idle guest's migration failed: %s\n", err);
		return 1;
	}
	char version[200] = "?";
	FILE *v = popen("qemu-system-x86_64 --version", "r");
	if (v) {
		if (fgets(version, sizeof(version), v))
			version[strcspn(version, "\n")] = '\0';
		pclose(v);
	}
	printf("%s, accelerator %s, guest RAM %u MiB (its region of %u pages written before), "
	       "cancelled after %.0f s; the link (an idle guest's migration without rate "
	       "limit) %.0f MB/s.\n\n",
	       version, accel, MIG_RAM_MIB, MIG_REGION_PAGES, cancel_s, link / 1e6);
	mig_memstatfs mfs = {0};
	const char *bin = getenv("MEMSTATFS");
	if (bin && mig_memstatfs_start(bin, tmp(), &mfs, err, sizeof(err)) < 0) {
		printf("memstatfs: %s\n", err);
		return 1;
	}
	printf("f: the forecast on the analytic curve; m: memstatfs's forecast from the curve it "
	       "measured of the QEMU process by pid (migration/ files: estimate [on the low "
	       "curve, on the high curve]); m+: the rig's forecast on that measured curve with "
	       "the RAM's non-zero pages; Q: QEMU's query-migrate.\n\n");
	printf("| case | forecast f | m | QEMU | syncs f / m / Q | total s f / m [low, high] / m+ / Q | "
	       "MB sent f / m / m+ / Q | downtime ms f / m / Q | min bandwidth MiB/s f [low, high] | "
	       "min downtime ms f [low, high] |\n");
	printf("|---|---|---|---|---|---|---|---|---|---|\n");
	int failed = 0;
	for (int i = 0; i < MIG_MATRIX; i++) {
		const mig_case *c = &mig_matrix[i];
		bool wanted = argc <= 3;
		for (int a = 3; a < argc; a++)
			wanted |= strcmp(argv[a], c->name) == 0;
		if (!wanted)
			continue;
		mig_result q;
		measuring ms = {.mnt = mfs.mnt, .c = c, .link = link, .cancel_s = cancel_s};
		if (mig_run_with(c, accel, argv[1], tmp(), cancel_s, bin ? before : NULL, &ms, &q, err,
				 sizeof(err)) < 0) {
			printf("| %s | | error: %s | | | | | | |\n", c->name, err);
			failed = 1;
			continue;
		}
		ms_precopy_forecast f;
		const char *bad = NULL;
		if (mig_forecast(c, q.nonzero_pages, link, cancel_s, &f, &bad) < 0) {
			printf("| %s | error: %s | | | | | | | |\n", c->name, bad);
			failed = 1;
			continue;
		}
		const ms_precopy_run *e = &f.run[MS_GROWTH_ESTIMATE], *lo = &f.run[MS_GROWTH_LOW],
				     *hi = &f.run[MS_GROWTH_HIGH];
		char o1[16], o2[16], o3[16], o4[16], o5[16], o6[16];
		char mverdict[600] = "n/a", msyncs[32] = "-", mtotal[96] = "-", mplus_t[48] = "-",
		     mbytes[48] = "-", mplus_b[48] = "-", mdown[32] = "-";
		ms_precopy_forecast fm;
		if (bin && !ms.ok)
			snprintf(mverdict, sizeof(mverdict), "error: %s", ms.err);
		if (ms.ok) {
			snprintf(mverdict, sizeof(mverdict), "%s", ms.m.verdict);
			snprintf(msyncs, sizeof(msyncs), "%.0f", ms.m.iterations[0]);
			snprintf(mtotal, sizeof(mtotal), "%.2f [%.2f, %.2f]%s", ms.m.total_s[0],
				 ms.m.total_s[1], ms.m.total_s[2],
				 off(ms.m.total_s[0], q.total_ms / 1000, o3, sizeof(o3)));
			snprintf(mbytes, sizeof(mbytes), "%.1f%s", ms.m.transferred[0] / 1e6,
				 off(ms.m.transferred[0], q.transferred, o4, sizeof(o4)));
			snprintf(mdown, sizeof(mdown), "%.0f", ms.m.downtime_ms[0]);
			if (mig_forecast_curve(ms.m.curve, ms.m.n, c, q.nonzero_pages, link, cancel_s,
					       &fm, &bad) == 0) {
				const ms_precopy_run *p = &fm.run[MS_GROWTH_ESTIMATE];
				snprintf(mplus_t, sizeof(mplus_t), "%.2f%s", p->total_s,
					 off(p->total_s, q.total_ms / 1000, o5, sizeof(o5)));
				snprintf(mplus_b, sizeof(mplus_b), "%.1f%s",
					 p->transferred_bytes / 1e6,
					 off(p->transferred_bytes, q.transferred, o6, sizeof(o6)));
			}
		}
		printf("| %s | %s%s | %s | %s%s | %u / %s / %u | %.2f / %s / %s / %.2f%s | "
		       "%.1f / %s / %s / %.1f%s | %.0f / %s / %.0f | %.1f [%.1f, %.1f] | "
		       "%.0f [%.0f, %.0f] |\n",
		       c->name, ms_precopy_verdict_to_string(f.verdict),
		       mig_far_from_boundary(c, &f, 1.25) ? "" : " (near)", mverdict, q.status,
		       q.max_lag >= c->pages_per_sec / 10 ? " (guest lagged)" : "", e->iterations,
		       msyncs, q.dirty_syncs, e->total_s, mtotal, mplus_t, q.total_ms / 1000,
		       off(e->total_s, q.total_ms / 1000, o1, sizeof(o1)), e->transferred_bytes / 1e6,
		       mbytes, mplus_b, q.transferred / 1e6,
		       off(e->transferred_bytes, q.transferred, o2, sizeof(o2)), e->downtime_ms,
		       mdown, q.cancelled ? 0 : q.downtime_ms, e->min_bandwidth / 1048576,
		       lo->min_bandwidth / 1048576, hi->min_bandwidth / 1048576, e->min_downtime_ms,
		       lo->min_downtime_ms, hi->min_downtime_ms);
		if (ms.ok) {
			printf("<!-- %s measured curve (t_s pages low high):", c->name);
			for (size_t k = 0; k < ms.m.n; k++)
				printf(" %.2f:%.0f[%.0f,%.0f]", ms.m.curve[k].t_s, ms.m.curve[k].pages,
				       ms.m.curve[k].ci95_low, ms.m.curve[k].ci95_high);
			printf(" -->\n");
		}
		fflush(stdout);
	}
	mig_memstatfs_stop(&mfs);
	return failed;
}
