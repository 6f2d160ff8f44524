/* migrate_rig.h: real QEMU live migrations of the test guest dirtying a known
 * pattern, and the pre-copy model's forecast of each, for test_migration.c
 * and bench/migration_bench.c.  No Criterion here: errors come back as text.
 *
 * One case: QEMU 7.2 boots tests/helpers/guest.c (-m 128M, RAM in a shared
 * memory-backend-file), the guest first writes every page of its region
 * (8 MiB..128 MiB, 30720 pages) so that the first round has a known size,
 * then dirties the case's pattern, paced by the rig's clock through the
 * mailbox; a second QEMU with the same machine arguments and
 * -incoming unix:PATH receives.  migrate-set-parameters max-bandwidth and
 * downtime-limit, migrate, query-migrate every 100 ms; migrate_cancel at
 * cancel_s (counted as does-not-converge).  Every process the rig starts
 * dies with the process that started it (PR_SET_PDEATHSIG) and is killed
 * and reaped before mig_run returns.
 *
 * The analytic growth curve follows from what the guest is told to write
 * (mig_curve); the measured one is memstatfs's, of the QEMU process tracked
 * by pid before the migration starts (mig_measure).  The guest writes the next page of its cycle each time the
 * paced target moves, so within any window of t seconds it dirties
 * min(rate x t, cycle pages) distinct pages, plus the mailbox page (the
 * guest publishes its count there) and its stack page.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "memstat/core/precopy.h"

#define MIG_RAM_MIB	 128u
#define MIG_REGION_START (8u << 20)
#define MIG_REGION_PAGES ((MIG_RAM_MIB - 8u) << 8) /* 4 KiB pages up to the end */

typedef enum { MIG_UNIFORM, MIG_HOT } mig_pattern;

typedef struct {
	const char *name;
	mig_pattern pattern;
	unsigned cycle_pages;	 /* pages written in turn: the region, or a hot set
				  * at its start */
	unsigned pages_per_sec;	 /* distinct-page writes a second */
	double bandwidth;	 /* max-bandwidth, bytes/s */
	double downtime_ms;	 /* downtime-limit */
} mig_case;

typedef struct {
	char accel[8];		  /* "kvm" or "tcg", as query-kvm said */
	char status[24];	  /* query-migrate's last status: completed,
				   * cancelled, failed */
	bool cancelled;		  /* by the rig at cancel_s */
	double total_ms;	  /* total-time (at cancel: time until then) */
	double downtime_ms;	  /* downtime (completed only) */
	double setup_ms;	  /* setup-time */
	double transferred;	  /* ram.transferred, bytes */
	double normal_pages;	  /* ram.normal */
	double downtime_bytes;	  /* ram.downtime-bytes: sent in stop-and-copy */
	unsigned dirty_syncs;	  /* ram.dirty-sync-count */
	unsigned long nonzero_pages; /* of the RAM file before migrating */
	unsigned max_lag;	  /* pages the guest was behind its pacing, most */
	unsigned pages_asked;	  /* writes the pacing asked for while the
				   * migration was active (last poll) */
	unsigned pages_written;	  /* of those, done by the guest by then */
	bool destination_running; /* query-status on the destination afterwards */
} mig_result;

/* The matrix: uniform (the whole region, 12288 pages/s = 48 MiB/s) and
 * hot (1024 pages = 4 MiB at the region's start, 40960 pages/s = 160 MiB/s:
 * every hot page rewritten each 25 ms) x max-bandwidth 24 and 96 MiB/s x
 * downtime-limit 20 and 1000 ms. */
#define MIG_MATRIX 8
extern const mig_case mig_matrix[MIG_MATRIX];
/* The case of that name, or NULL. */
const mig_case *mig_case_named(const char *name);

/* The analytic growth curve of c (see above) into points (up to max,
 * doubling from 0.05 s, with the pattern's knee), 95% bounds from the
 * pacing's granularity; the number of points. */
size_t mig_curve(const mig_case *c, ms_growth_point *points, size_t max);

/* The forecast of c for a guest whose RAM holds nonzero_pages non-zero
 * pages, stop-and-copy at link bytes/s (0: at the rate limit, an upper
 * bound), given up at cancel_s.  0, or -EINVAL with *why. */
int mig_forecast(const mig_case *c, unsigned long nonzero_pages, double link, double cancel_s,
		 ms_precopy_forecast *f, const char **why);

/* The link's speed here, bytes/s: one migration of the idle guest without
 * a rate limit, ram.transferred over total-time.  -1 with err. */
double mig_link_bandwidth(const char *accel, const char *guest_elf, const char *tmp, char *err,
			  size_t errlen);

/* Whether c is far from the boundary: the verdict is firm and the case's
 * bandwidth and downtime are at least factor away from the least that
 * converges on the low and the high curve. */
bool mig_far_from_boundary(const mig_case *c, const ms_precopy_forecast *f, double factor);

/* Which accelerator QEMU gives here: "kvm" when a QEMU started with
 * -accel kvm says so through query-kvm, else "tcg"; NULL, and why, when
 * QEMU or the guest is missing (a reason to skip). */
const char *mig_accel(const char *guest_elf, const char *tmp, char *why, size_t whylen);

/* Runs c (see the top).  0, or -1 with err filled. */
int mig_run(const mig_case *c, const char *accel, const char *guest_elf, const char *tmp,
	    double cancel_s, mig_result *out, char *err, size_t errlen);

/* Called by mig_run_with once the guest dirties its pattern, before the
 * migration starts: the source QEMU's pid and QMP socket.  0, or -1 with
 * err (the run stops there). */
typedef int (*mig_before_fn)(pid_t qemu_pid, const char *qmp_sock, void *data, char *err,
			     size_t errlen);
/* mig_run, calling before (when not NULL) before migrating. */
int mig_run_with(const mig_case *c, const char *accel, const char *guest_elf, const char *tmp,
		 double cancel_s, mig_before_fn before, void *data, mig_result *out, char *err,
		 size_t errlen);

/* A memstatfs of its own (the binary bin, -f, on a fresh directory under
 * tmp), dying with the process that started it. */
typedef struct {
	char mnt[200];
	pid_t pid;
} mig_memstatfs;
int mig_memstatfs_start(const char *bin, const char *tmp, mig_memstatfs *m, char *err,
			size_t errlen);
/* SIGTERM (it unmounts), wait, remove the directory. */
void mig_memstatfs_stop(mig_memstatfs *m);

/* The forecast memstatfs makes from the MEASURED growth curve of the QEMU
 * process (tracked by pid, from outside: sample_pages=16384, the case's
 * bandwidth and downtime-limit, the link's speed, cancel_s as max_total_s), read through the tree:
 * growth, then migration/verdict, iterations, total_s,
 * downtime_ms_expected and transferred_bytes ("estimate low high" each). */
typedef struct {
	ms_growth_point curve[16];
	size_t n;
	char verdict[24];
	double iterations[3], total_s[3], downtime_ms[3], transferred[3];
	double seconds; /* from track to the first curve */
} mig_measured;
/* Tracks pid in the memstatfs mounted at mnt, waits (up to 30 s) for its
 * first curve, reads the files, untracks it.  0, or -1 with err. */
int mig_measure(const char *mnt, pid_t pid, const mig_case *c, double link, double cancel_s,
		mig_measured *out, char *err, size_t errlen);
/* The rig's forecast on a given curve (the measured one) and the RAM's
 * non-zero pages, as mig_forecast does on the analytic curve. */
int mig_forecast_curve(const ms_growth_point *curve, size_t n, const mig_case *c,
		       unsigned long nonzero_pages, double link, double cancel_s,
		       ms_precopy_forecast *f, const char **why);
