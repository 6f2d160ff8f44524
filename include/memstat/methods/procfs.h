/* procfs.h: parsers and readers for the /proc files memstatfs consumes.
 *
 * Pure parsers (ms_parse_*) take text and never touch the file system, so the
 * tests and fuzzers can feed them anything.  Readers (ms_proc_*) read a live
 * file and hand it to a parser.  Nothing here knows about FUSE.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* One writable mapping of a process, from /proc/PID/maps. */
typedef struct {
	uint64_t start; /* first byte */
	uint64_t end;	/* one past the last byte */
	bool shared;	/* 's' in the permissions: MAP_SHARED */
} ms_vma;

/* Parses one line of /proc/PID/maps.  Returns 1 and fills *vma when the
 * mapping is writable, 0 when it is not, -EINVAL when the line is malformed. */
int ms_parse_maps_line(const char *line, ms_vma *vma);

/* Parses a whole maps file into the writable mappings (GArray of ms_vma).
 * Returns NULL and sets *err to -EINVAL on a malformed line. */
GArray *ms_parse_maps(const char *text, int *err);

/* Whether the mapping that holds addr, in the text of /proc/PID/smaps, is
 * registered with userfaultfd (VmFlags um, uw or ui: missing pages,
 * write-protection or minor faults are served by a handler in user space).
 * 1 yes, 0 no (or no mapping holds addr), -EINVAL on a malformed header. */
int ms_parse_smaps_uffd(const char *text, uint64_t addr);

/* The mappings of the text of /proc/PID/smaps that userfaultfd serves (as
 * ms_parse_smaps_uffd), as a GArray of ms_vma (shared not set), in the
 * file's order; NULL on a malformed header. */
GArray *ms_parse_smaps_uffd_ranges(const char *text);

/* Fields of /proc/PID/stat that identify and classify a process. */
typedef struct {
	pid_t pid;
	char state;		      /* field 3 */
	unsigned long flags;	      /* field 9: PF_* */
	long num_threads;	      /* field 20 */
	unsigned long long starttime; /* field 22, clock ticks after boot */
} ms_proc_stat;

#define MS_PF_KTHREAD 0x00200000UL

int ms_parse_stat(const char *text, ms_proc_stat *out);
/* 0, -ESRCH when there is no such process, -EINVAL when unparsable. */
int ms_proc_stat_read(pid_t pid, ms_proc_stat *out);

/* A "Name:  value [kB]" line of /proc/meminfo or /proc/PID/status. */
typedef struct {
	char name[48];	/* as the kernel spells it, e.g. "Active(anon)" */
	char value[32]; /* the number exactly as printed, without unit */
} ms_field;

/* Parses every "Name: number" line (GArray of ms_field).  Lines whose value
 * is not a number (Name:, State:, Uid: with several numbers...) are skipped,
 * as are over-long names and values. */
GArray *ms_parse_fields(const char *text);

/* Looks a field up by its kernel name; NULL when absent. */
const ms_field *ms_fields_find(GArray *fields, const char *name);

/* The file name for a field: lowercase, '(' and ')' become '_', and no
 * trailing '_' ("Committed_AS" -> "committed_as", "Active(anon)" ->
 * "active_anon").  Returns false when out is too small. */
bool ms_field_file_name(const char *field, char *out, size_t outlen);

/* Parses the real, effective, saved and fs ids of a "Uid:" or "Gid:" line of
 * /proc/PID/status text.  Returns 0 or -EINVAL. */
int ms_parse_status_ids(const char *text, const char *key, unsigned ids[4]);

/* The value of the "key:" line of a /proc/PID/status text (key without the
 * colon): a pointer into text just after the colon, or NULL. */
const char *ms_status_value(const char *text, const char *key);

/* Reads a whole /proc file into a NUL-terminated buffer.  Returns 0 or
 * -errno (ENOENT for a process that is gone is turned into ESRCH by callers). */
int ms_read_file(const char *path, char **out, size_t *len);
