/* migration_bench: the pre-copy forecast beside real QEMU migrations.
 *
 *   migration_bench GUEST_ELF [CANCEL_S [CASE...]]
 *
 * For every case of the matrix (tests/migrate_rig.h), or those named: the
 * forecast from the growth curve the guest's pattern implies (analytic,
 * not measured), then a real migration to a second QEMU on this machine,
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
	printf("| case | forecast | QEMU | syncs f / Q | total s f / Q | MB sent f / Q | "
	       "stop-and-copy MB f / Q | downtime ms f / Q | min bandwidth MiB/s [low, high] | "
	       "min downtime ms [low, high] |\n");
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
		if (mig_run(c, accel, argv[1], tmp(), cancel_s, &q, err, sizeof(err)) < 0) {
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
		char o1[16], o2[16];
		printf("| %s | %s%s | %s%s | %u / %u | %.2f / %.2f%s | %.1f / %.1f%s | %.1f / %.1f | "
		       "%.0f / %.0f | %.1f [%.1f, %.1f] | %.0f [%.0f, %.0f] |\n",
		       c->name, ms_precopy_verdict_to_string(f.verdict),
		       mig_far_from_boundary(c, &f, 1.25) ? "" : " (near)", q.status,
		       q.max_lag >= c->pages_per_sec / 10 ? " (guest lagged)" : "", e->iterations,
		       q.dirty_syncs, e->total_s, q.total_ms / 1000,
		       off(e->total_s, q.total_ms / 1000, o1, sizeof(o1)), e->transferred_bytes / 1e6,
		       q.transferred / 1e6, off(e->transferred_bytes, q.transferred, o2, sizeof(o2)),
		       e->downtime_ms / 1000 * link / 1e6,
		       q.cancelled ? 0 : q.downtime_bytes / 1e6, e->downtime_ms,
		       q.cancelled ? 0 : q.downtime_ms,
		       e->min_bandwidth / 1048576, lo->min_bandwidth / 1048576,
		       hi->min_bandwidth / 1048576, e->min_downtime_ms, lo->min_downtime_ms,
		       hi->min_downtime_ms);
		fflush(stdout);
	}
	return failed;
}
