/* precopy.h: will it migrate?  A forecast of a QEMU pre-copy live migration
 * from a dirty-set growth curve.  Pure computation: no FUSE, no I/O, no
 * threads, no allocation; every function is reentrant.
 *
 * The input is f(t), the number of distinct pages dirtied within a window
 * of t seconds, at a ladder of t with 95% interval bounds.  One dirty rate
 * is the wrong input: pages are rewritten, so f(t) grows more slowly than
 * rate x t once a hot set is dirty, and pre-copy only ever resends what was
 * dirtied *since the last dirty-bitmap sync*, i.e. f(time between syncs).
 *
 * THE MODEL: QEMU's migration thread as QEMU 7.2 runs it (Debian 12's), by
 * 100 ms rate-limit windows.  Each rule, and where it comes from in
 * qemu/qemu (v7.2.0):
 *
 *  R1 Setup syncs the dirty bitmap once (dirty-sync-count 1) with every page
 *     set: the first round sends all of memory.
 *       migration/ram.c ram_init_bitmaps(): ram_list_init_bitmaps() sets
 *       every bit, then migration_bitmap_sync_precopy().
 *  R2 Sending is rate limited in windows of BUFFER_DELAY = 100 ms, each
 *     allowed max-bandwidth / XFER_LIMIT_RATIO (= 1000 / BUFFER_DELAY)
 *     bytes.  A window's allowance goes out as fast as the link carries
 *     it, then the thread sleeps out the window; when nothing is left to
 *     send before that, the next check (R5) comes at once.  So a small
 *     dirty set is sent, and re-checked, in a burst at the link's speed.
 *       migration/migration.c migrate_fd_connect() (qemu_file_set_rate_limit),
 *       migration_rate_limit(), migration_update_counters()
 *       (qemu_file_reset_rate_limit); migration/ram.c ram_save_iterate()
 *       stops at qemu_file_rate_limit(), when no dirty page is left, or
 *       after MAX_WAIT = 50 ms (not modelled: a window's allowance takes
 *       less than that on any link faster than 2 x max-bandwidth).
 *  R3 A page costs its page_size plus an 8-byte header (offset | flags).
 *     Zero pages cost a header and one byte: they are left to the caller,
 *     who counts only non-zero pages in memory_bytes.
 *       migration/ram.c save_page_header(), save_zero_page().
 *  R4 The switch-over threshold is bandwidth x downtime-limit, bandwidth
 *     being what was sent in the last window over its length: with a
 *     rate limit below the link's speed, max-bandwidth.  It is 0 until the
 *     first window ends, so at least one window is always sent.
 *       migration/migration.c migration_update_counters():
 *       `s->threshold_size = bandwidth * s->parameters.downtime_limit`.
 *  R5 The bitmap is synced only when what remains to send is below the
 *     threshold (remaining counts page_size per page, no headers); each
 *     sync adds the pages dirtied since the previous one that are not
 *     already waiting to be sent, and counts one dirty sync.
 *       migration/ram.c ram_save_pending(): `remaining_size < max_size`
 *       then migration_bitmap_sync_precopy(); migration_bitmap_sync()
 *       increments dirty_sync_count.  (8.0 and later: the same rule split
 *       into ram_state_pending_estimate()/ram_state_pending_exact().)
 *  R6 When what remains after that check is below the threshold, the VM
 *     stops (stop-and-copy): the rate limit is lifted, the bitmap is synced
 *     once more (one more dirty sync) and everything left is sent; that is
 *     the downtime.
 *       migration/migration.c migration_iteration_run()
 *       (`pending_size >= s->threshold_size` else migration_completion()),
 *       migration_completion() (qemu_file_set_rate_limit(INT64_MAX));
 *       migration/ram.c ram_save_complete().
 *  R7 QEMU itself never gives up: there is no limit on rounds or time in
 *     migration_thread(); a migration that does not converge runs until a
 *     user (libvirt, KubeVirt, a script) cancels it.  The model takes that
 *     user's limits (max_total_s, max_syncs), and also says
 *     does-not-converge when what remains after a sync has not reached a
 *     new low (by half a page) for MS_PRECOPY_STALL_SYNCS syncs in a row
 *     (a steady state), or after 100000 syncs (about 3 hours of syncing
 *     every window).  A migration with nothing left to send stops too
 *     (migration_iteration_run(): `pending_size &&`).
 *
 * Assumptions of the model beyond QEMU's rules:
 *  A1 f is interpolated linearly between ladder points and from (0, 0) to
 *     the first; beyond the last point it continues with the last
 *     segment's slope (a straight line from the origin when there is one
 *     point), capped at all the pages.  A distinct-page curve is concave,
 *     so this errs towards more dirty pages (a pessimistic forecast).
 *  A2 The pages the workload dirties form a working set W: the curve's
 *     plateau when its last segment is flat, else all the pages.  The
 *     pages dirtied between two syncs fall on W independently of where
 *     QEMU's scan is, so a fraction (waiting pages of W) / W of them are
 *     already waiting to be sent and add nothing; QEMU's scan sends the
 *     waiting pages of W and the others in proportion.
 *  A3 The final sync finds nothing new (the gap between the last check and
 *     the VM's stop is not modelled); bursts (R2) and stop-and-copy go at
 *     link_bandwidth (bandwidth when 0: then sending is smooth and the
 *     expected downtime at most downtime-limit).  A sync takes no time;
 *     setup time, device state and the destination's speed beyond the
 *     link's are not modelled.
 *
 * What the model leaves out (all off by default in QEMU 7.2):
 *  - zero pages beyond R3 (buffer_is_zero() scanning time);
 *  - XBZRLE and compression (capabilities xbzrle, compress: ram.c
 *    save_xbzrle_page(), compress_page_with_multi_thread()), multifd;
 *  - auto-converge (ram.c migration_trigger_throttle(), called from
 *    migration_bitmap_sync(): throttles the vCPUs when the bytes dirtied in
 *    a period exceed throttle-trigger-threshold % of those sent, twice) and
 *    dirty-limit (QEMU 8.1+); a throttled guest dirties less than f says;
 *  - postcopy (migration_iteration_run() starts it when pre-copy pending <=
 *    threshold after migrate-start-postcopy): the model is pre-copy only;
 *  - avail-switchover-bandwidth (QEMU 8.2+), which replaces the measured
 *    bandwidth in R4.
 *
 * Uncertainty: the forecast is computed three times, on the curve's
 * estimates, on its ci95_low bounds and on its ci95_high bounds.  When the
 * low and high curves disagree about convergence the verdict is
 * not-enough-data; the figures of each are given.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Steady-state detection of R7: syncs in a row without a new low. */
#define MS_PRECOPY_STALL_SYNCS 200
/* R2: one rate-limit window, seconds (BUFFER_DELAY). */
#define MS_PRECOPY_WINDOW_S 0.1
/* R3: bytes of header per page sent. */
#define MS_PRECOPY_PAGE_HEADER 8

/* One point of the growth curve. */
typedef struct {
	double t_s;		    /* window length, seconds: > 0, strictly increasing */
	double pages;		    /* distinct pages dirtied within t_s: estimate */
	double ci95_low, ci95_high; /* its 95% interval: 0 <= low <= pages <= high */
} ms_growth_point;

/* Which of a point's three values a curve is read at. */
typedef enum {
	MS_GROWTH_ESTIMATE,
	MS_GROWTH_LOW,
	MS_GROWTH_HIGH,
	_MS_GROWTH_MAX,
} ms_growth_which;

typedef struct {
	const ms_growth_point *curve; /* n points, borrowed for the call */
	size_t n;		      /* >= 1 */
	uint64_t memory_bytes;	      /* what the first round sends in full: the
				       * non-zero pages x page_size; > 0 */
	uint32_t page_size;	      /* bytes, a power of two (QEMU's target page) */
	double bandwidth;	      /* bytes/s: max-bandwidth, or the link's when
				       * slower; > 0 */
	double downtime_ms;	      /* downtime-limit, ms; >= 0 */
	double link_bandwidth;	      /* bytes/s the link carries (bursts, stop-and-
				       * copy); 0: bandwidth.  When lower than
				       * bandwidth it is the bandwidth */
	double max_total_s;	      /* the user's give-up time, s; 0: none */
	uint32_t max_syncs;	      /* the user's limit on dirty syncs; 0: none */
} ms_precopy_input;

typedef enum {
	MS_PRECOPY_CONVERGES,
	MS_PRECOPY_DOES_NOT_CONVERGE,
	MS_PRECOPY_NOT_ENOUGH_DATA,
	_MS_PRECOPY_VERDICT_MAX,
} ms_precopy_verdict;

/* Why a run ended. */
typedef enum {
	MS_PRECOPY_END_CONVERGED, /* R6 reached */
	MS_PRECOPY_END_LIMIT,	  /* max_total_s or max_syncs reached first */
	MS_PRECOPY_END_STALLED,	  /* steady state above the threshold (R7) */
	_MS_PRECOPY_END_MAX,
} ms_precopy_end;

/* One run of the model on one curve. */
typedef struct {
	ms_precopy_end end;
	bool converges;		  /* end == MS_PRECOPY_END_CONVERGED */
	uint32_t iterations;	  /* dirty syncs, as query-migrate's
				   * ram.dirty-sync-count (R1, R5, R6) */
	double total_s;		  /* migration start to the end of stop-and-copy;
				   * at a limit, the time it was reached; when
				   * stalled, when the steady state was found */
	double downtime_ms;	  /* stop-and-copy (A3); 0 unless converges */
	double transferred_bytes; /* RAM bytes sent, headers included (R3), as
				   * query-migrate's ram.transferred */
	double min_bandwidth;	  /* bytes/s: the least bandwidth that converges
				   * with this downtime-limit and these limits;
				   * INFINITY when none up to 1e15 */
	double min_downtime_ms;	  /* the least downtime-limit that converges at
				   * this bandwidth; INFINITY when none up to 1e9 */
} ms_precopy_run;

typedef struct {
	ms_precopy_verdict verdict;
	ms_precopy_run run[_MS_GROWTH_MAX]; /* indexed by ms_growth_which: the
					     * estimate, the low curve
					     * (optimistic), the high one */
} ms_precopy_forecast;

/* f(t) on one of the curve's three values (A1), pages, capped at
 * max_pages.  t < 0 reads as 0.  The curve must have passed
 * ms_growth_check. */
double ms_growth_at(const ms_growth_point *curve, size_t n, ms_growth_which which, double t,
		    double max_pages);

/* 0, or -EINVAL when the curve is not as ms_growth_point says; *why (a
 * static string) says what is wrong. */
int ms_growth_check(const ms_growth_point *curve, size_t n, const char **why);

/* Runs the model once on one curve (including min_bandwidth and
 * min_downtime_ms).  0, or -EINVAL with *why (static) on bad input. */
int ms_precopy_run_one(const ms_precopy_input *in, ms_growth_which which, ms_precopy_run *out,
		       const char **why);

/* The forecast: three runs and the verdict.  0, or -EINVAL with *why
 * (static) when the input is out of range (the errno a write of it to a
 * settings file answers). */
int ms_precopy_forecast_compute(const ms_precopy_input *in, ms_precopy_forecast *out,
				const char **why);

/* "converges", "does-not-converge", "not-enough-data"; NULL out of range. */
const char *ms_precopy_verdict_to_string(ms_precopy_verdict v);
/* "converged", "limit", "stalled"; NULL out of range. */
const char *ms_precopy_end_to_string(ms_precopy_end e);

/* The text of the model's assumptions (the migration/model file): a static
 * string, several lines, each ending in a newline. */
const char *ms_precopy_model_text(void);
