/* settings.h: per-target settings and the text that sets them.
 *
 * The grammar of a `track` write is "PID [key=value]...", white space
 * separated, a trailing newline allowed; the same key=value words are what
 * `<name>/period`, `<name>/sample_pages` and `<name>/mode` accept alone.
 * The parsers only check syntax and ranges (-EINVAL); whether a mode is
 * supported here is the registry's business.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define MS_PERIOD_MIN	    1
#define MS_PERIOD_MAX	    60
#define MS_SAMPLE_PAGES_MIN 128
#define MS_SAMPLE_PAGES_MAX 16384
#define MS_MODE_MAX	    32
#define MS_WRITE_MAX	    4096 /* longest control-file write taken */
#define MS_NAME_MAX	    64	 /* a target's name, with its NUL */
#define MS_SOCKET_MAX	    108	 /* a socket path, with its NUL (sun_path) */

typedef struct {
	uint32_t period_s;     /* MS_PERIOD_MIN..MS_PERIOD_MAX */
	uint32_t sample_pages; /* per GiB, MS_SAMPLE_PAGES_MIN..MAX */
	char mode[MS_MODE_MAX];
} ms_settings;

/* Settings given in one write; a field applies only when its has_ flag is
 * set. */
typedef struct {
	bool has_period, has_sample_pages, has_mode;
	ms_settings v;
} ms_settings_change;

typedef struct {
	pid_t pid;		    /* a process, or 0 for a VM */
	char socket[MS_SOCKET_MAX]; /* a VM's QMP socket (absolute path), or "" */
	char name[MS_NAME_MAX];	    /* name= (VMs only), or "" */
	ms_settings_change change;
} ms_track_request;

/* Parses a `track` write of len bytes (not NUL-terminated):
 *   PID [period=S] [sample_pages=N] [mode=M]
 *   /PATH/TO/QMP.SOCKET [name=NAME] [period=S] [sample_pages=N] [mode=M]
 * 0, -EINVAL or -ENAMETOOLONG; *why says what was wrong (static string). */
int ms_parse_track(const char *buf, size_t len, ms_track_request *out, const char **why);

/* Parses the whole value written to one settings file ("period",
 * "sample_pages" or "mode") into change.  0 or -EINVAL. */
int ms_parse_setting(const char *key, const char *buf, size_t len, ms_settings_change *change,
		     const char **why);

/* Parses the target name written to `untrack`: copies it without
 * surrounding white space.  0 or -EINVAL. */
int ms_parse_name(const char *buf, size_t len, char *out, size_t outlen, const char **why);

/* Whether name can name a VM's directory: 1 to MS_NAME_MAX - 1 ASCII
 * letters, digits and . _ - @ + :, not "." or "..".  (All-digit
 * names are pids': the registry refuses them for VMs.)  0 or -EINVAL with
 * *why (static string). */
int ms_check_name(const char *name, const char **why);

/* Applies the fields of change that are set onto s. */
void ms_settings_apply(ms_settings *s, const ms_settings_change *change);
