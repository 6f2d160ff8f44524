/* settings.h: per-target settings and the text that sets them.
 *
 * The grammar of a `track` write is "TARGET [key=value]...", white space
 * separated, a trailing newline allowed, where TARGET is what a source's
 * parse claims (a pid, a QMP socket's path: sources/source.h); the same
 * key=value words are what `<name>/period`, `<name>/sample_pages` and
 * `<name>/mode` accept alone.  The parsers only check syntax, ranges and
 * that a mode is one some source has (-EINVAL); whether a target can be
 * measured in it is the registry's business.  Errors: fail.h.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "memstat/methods/measurement.h"
#include "memstat/sources/source.h"

#define MS_PERIOD_MIN	     1
#define MS_PERIOD_MAX	     60
#define MS_SAMPLE_PAGES_MIN  128
#define MS_SAMPLE_PAGES_MAX  16384
#define MS_SAMPLE_PAGES_QEMU 512  /* the daemon's default, QEMU's */
#define MS_WRITE_MAX	     4096 /* longest control-file write taken */
/* precision=: a relative half-width in (0%, 100%], an absolute one in
 * (0, 1 TiB/s] */
#define MS_PRECISION_ABS_MAX (1024.0 * 1024.0) /* MiB/s */

/* The migration forecast's settings (migration/ files, precopy.h).  Bytes
 * per second, written as a whole number with an optional suffix: K M G T
 * (powers of 1000), Ki Mi Gi Ti (of 1024). */
#define MS_BANDWIDTH_MIN 1
#define MS_BANDWIDTH_MAX 1000000000000000ull /* 1P: precopy.h's search bound */
#define MS_BANDWIDTH_DEFAULT                                                                       \
	33554432		       /* QEMU 7.2's max-bandwidth: MAX_THROTTLE, 32 MiB/s         \
					* (migration/migration.c) */
#define MS_DOWNTIME_MS_MAX     2000000 /* QEMU's MAX_MIGRATE_DOWNTIME (2000 s) */
#define MS_DOWNTIME_MS_DEFAULT 300     /* QEMU's DEFAULT_MIGRATE_SET_DOWNTIME */
#define MS_MAX_TOTAL_S_MAX     86400   /* a day */

typedef struct {
	uint32_t period_s;     /* MS_PERIOD_MIN..MS_PERIOD_MAX */
	uint32_t sample_pages; /* per GiB, MS_SAMPLE_PAGES_MIN..MAX */
	/* A process in page-sampling draws the pages this needs instead of
	 * sample_pages per GiB; not asked: sample_pages (writing sample_pages
	 * alone turns it off). */
	ms_precision precision;
	char mode[MS_MODE_MAX];
	uint64_t bandwidth;	 /* bytes/s, MS_BANDWIDTH_MIN..MAX */
	uint32_t downtime_ms;	 /* 0..MS_DOWNTIME_MS_MAX */
	uint64_t link_bandwidth; /* bytes/s the link carries; 0: bandwidth */
	uint32_t max_total_s;	 /* when the user would cancel, s; 0: never
				  * (0..MS_MAX_TOTAL_S_MAX) */
	bool forecast;		 /* a forecast setting was given for this target:
				  * its growth curve is measured for good */
} ms_settings;

/* Settings given in one write; a field applies only when its has_ flag is
 * set. */
typedef struct {
	bool has_period, has_sample_pages, has_mode, has_precision;
	bool has_bandwidth, has_downtime_ms, has_link_bandwidth, has_max_total_s;
	ms_settings v;
} ms_settings_change;

/* A bandwidth as written ("10G", "512Mi", "1000000"), the whole of
 * [p, end): true with *out in MS_BANDWIDTH_MIN..MAX (link: 0 allowed). */
bool ms_parse_bandwidth(const char *p, const char *end, bool zero_ok, uint64_t *out);

typedef struct {
	const ms_source *source; /* whose parse claimed the target */
	char target[MS_KEY_MAX]; /* as written: "4242", "/run/web1.qmp" */
	char name[MS_NAME_MAX];	 /* name= (named sources only), or "" */
	ms_settings_change change;
} ms_track_request;

/* Parses a `track` write of len bytes (not NUL-terminated):
 *   PID [period=S] [sample_pages=N] [mode=M]
 *   /PATH/TO/QMP.SOCKET [name=NAME] [period=S] [sample_pages=N] [mode=M]
 * 0, -EINVAL or -ENAMETOOLONG with *why. */
int ms_parse_track(const char *buf, size_t len, ms_track_request *out, char **why);

/* Parses the whole value written to one settings file ("period",
 * "sample_pages" or "mode") into change.  0 or -EINVAL with *why. */
int ms_parse_setting(const char *key, const char *buf, size_t len, ms_settings_change *change,
		     char **why);

/* Parses the target name written to `untrack`: copies it without
 * surrounding white space.  0 or -EINVAL with *why. */
int ms_parse_name(const char *buf, size_t len, char *out, size_t outlen, char **why);

/* Whether name can name a target's directory by a user's choice (name=):
 * 1 to MS_NAME_MAX - 1 ASCII letters, digits and . _ - @ + :, not "." or
 * "..".  (All-digit names are pids': the registry refuses them.)  0 or
 * -EINVAL with *why. */
int ms_check_name(const char *name, char **why);

/* A precision as written to precision= (the whole of [p, end)):
 *   off | REL | ABS | REL,ABS
 * REL a decimal percentage ("10%", "2.5%"), ABS a decimal rate with a unit
 * ("2MiB/s", "512KiB/s", "1.5GiB/s", "100MB/s", "4096B/s").  0 or -EINVAL
 * with *why. */
int ms_parse_precision(const char *p, const char *end, ms_precision *out, char **why);

/* Applies the fields of change that are set onto s. */
void ms_settings_apply(ms_settings *s, const ms_settings_change *change);

/* The daemon's default mode when -o mode gives none: the first mode of the
 * first source (page-sampling). */
const char *ms_default_mode(void);

/* The daemon's -o mode: 0 when some source has it and this host can
 * measure in it, else -EINVAL or -EOPNOTSUPP with *why. */
int ms_check_default_mode(const char *mode, char **why);

/* Logs, at start, which optional kernel interfaces are in use (kernel.h),
 * and each mode this host cannot measure in, and why. */
void ms_log_mode_support(void);

/* Every source's modes with a line of help each, for --help (free it). */
char *ms_modes_help(void);
