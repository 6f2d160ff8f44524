/* scheduler.h: a fixed set of worker threads that run each target's step
 * once a period.
 *
 * The workers share one schedule, ordered by when each target is due.  A
 * worker sleeps until the earliest is due, takes it, runs its step (which
 * closes one window and opens the next), and puts it back.  No thread
 * sleeps out a target's period, so the thread count is `workers` however
 * many targets there are.  A target is stepped by one worker at a time.
 * The scheduler never looks inside a target: ms_target_step says what
 * happened.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "memstat/core/target.h"

typedef struct ms_scheduler ms_scheduler;

/* Called by a worker (or the watchdog), with no scheduler lock held, when a
 * step of t changed what its files show (ms_step_outcome.changed); settled
 * when it also left MS_STATE_MEASURING. */
typedef void (*ms_settled_fn)(ms_target *t, bool settled, void *data);

ms_scheduler *ms_scheduler_new(uint32_t workers, ms_settled_fn settled, void *data);
/* Stops the workers (each finishes the step it runs) and drops every
 * target's reference.  A worker whose step has not returned within wait_ms
 * (UINT32_MAX: no limit) is left running: then nothing is freed (it may
 * still use any of it) and false is returned; the caller is exiting.  true
 * when every worker was joined and s freed. */
bool ms_scheduler_free(ms_scheduler *s, uint32_t wait_ms);

/* Schedules t's first step now (takes a reference). */
void ms_scheduler_add(ms_scheduler *s, ms_target *t);
/* t is never stepped again (a step running now finishes first). */
void ms_scheduler_remove(ms_scheduler *s, ms_target *t);
