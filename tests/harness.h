/* harness.h: what the file-system tests use to drive memstatfs as a user
 * would: a real daemon on a temporary mountpoint, real helper processes,
 * and plain open/read/write on the tree. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct {
	char dir[256]; /* temporary directory */
	char mnt[300]; /* mountpoint inside it */
	char log[300]; /* the daemon's stderr */
	pid_t daemon;
} mount_t;

/* Starts memstatfs -f with the given -o options (or NULL) and waits for the
 * mount, first stopping the one m holds, if any.  Fails the test when it
 * does not come up. */
void mount_start(mount_t *m, const char *opts);
/* SIGTERM, wait, expect exit status 0 and no sanitizer report in the log,
 * make sure the mount is gone, remove the dir.  Returns the wait status
 * (-1 when the daemon had already been reaped). */
int mount_stop(mount_t *m);
/* SIGKILLs the daemon, checks the mountpoint then answers ENOTCONN, and
 * starts a new daemon on the same mountpoint. */
void mount_kill_and_restart(mount_t *m, const char *opts);
/* Starts a daemon on m's mountpoint again, after the test killed the last
 * one itself (m->daemon 0). */
void mount_again(mount_t *m, const char *opts);
/* $TMPDIR when it is an absolute path short enough for the sockets the
 * tests make in it, else /tmp: contrib/test.sh gives each run its own. */
const char *tmp_dir(void);
/* The source tree ($SRCDIR, set by meson). */
const char *src_dir(void);
/* Runs sh -c of the formatted command; its exit status (-1 when killed), its
 * standard output in *out (caller frees) if out is not NULL. */
int sh_out(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* In a child just forked from parent: sig when parent dies (so a test
 * killed by its timeout leaves no process behind); exits if it already has. */
void die_with_parent(pid_t parent, int sig);
/* Path of a file in the tree: fmt is relative to the mountpoint. */
char *mpath(const mount_t *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Reads a file of the tree (fmt relative to the mountpoint): its text
 * (caller frees), or NULL with errno set. */
char *mread(const mount_t *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Writes text to a file of the tree in one write(2): 0 or the errno. */
int mwrite(const mount_t *m, const char *rel, const char *text);
/* Writes "PID [settings]\n" to track; returns 0 or the errno. */
int track_pid(const mount_t *m, pid_t pid, const char *settings);
/* Waits up to seconds for sample seq of pid; its text (caller frees), or
 * NULL when it never came. */
char *sample_wait(const mount_t *m, pid_t pid, long seq, double seconds);
/* The same for a target by name (a VM). */
char *sample_wait_name(const mount_t *m, const char *name, long seq, double seconds);
/* The sequence number PID/samples/latest names now, 0 when there is none. */
long sample_latest_seq(const mount_t *m, pid_t pid);

/* Whether path is a mountpoint other than its parent. */
bool is_mounted(const char *path);

/* Starts tests/helpers/dirtier and waits for "ready".  how: NULL (private
 * memory), "shared" (a memfd), "grow" (writes to fresh pages), or
 * "order=address", "order=reverse", "order=stride[:S]", "order=random" (the
 * order it walks its memory in; random when not given). */
pid_t dirtier_start(unsigned region_mib, unsigned touch_mib, unsigned pages_per_sec,
		    const char *how);
/* Starts a process that sleeps (no memory activity), optionally as uid. */
pid_t sleeper_start(uid_t uid);
/* Makes podman's docker.io/library/debian:12 (and 12-slim) from a bare
 * Debian 12 root (tests/debian-root.sh) when podman has none, with the
 * settings contrib/container/memstatfs-podman.sh chose for this host.
 * 0, or the shell's status with its output in *out (free it). */
int podman_debian12_image(char **out);
/* dirtier_start, the helper first moved into each cgroup directory of the
 * NULL-terminated cgroups (NULL: none). */
pid_t dirtier_start_in(const char *const *cgroups, unsigned region_mib, unsigned touch_mib,
		       unsigned pages_per_sec, const char *how);
void proc_kill(pid_t pid);
/* Keeps pid to be killed by kill_kept (a suite's .fini); returns pid. */
pid_t keep(pid_t pid);
void kill_kept(void);

/* Writes text in one write(2); returns 0 or the errno. */
int write_file(const char *path, const char *text);
/* The same, from a child that has become uid (and gid uid, no groups). */
int write_file_as(uid_t uid, const char *path, const char *text);
/* Reads a whole file (NUL-terminated, caller frees); NULL with errno set. */
char *read_file(const char *path);
/* The value of "key value" line in a sample file's text. */
bool sample_get(const char *text, const char *key, double *out);
/* Waits until path's content starts with prefix, up to seconds. */
bool wait_content(const char *path, const char *prefix, double seconds);
/* The number field of /proc/PID/status (kB), or -1. */
long proc_status_kb(pid_t pid, const char *field);
double now_s(void);

/* A growth file's curves averaged (NAME/growth, test_growth.c's format):
 * waits up to `seconds` for windows + 1 new curves at path, skips the first
 * (it may predate the settings or the helper's steady state) and, per
 * step, puts the mean of t into t[], of the pages into f[] and the
 * variance of that mean into var[] (sigma of a curve = half its 95%
 * interval / 1.96).  Checks every line's shape, lo <= pages <= hi and, when
 * exact, that the interval is empty.  Returns the steps common to all the
 * curves (at most GROWTH_MAX_STEPS); fails the test when fewer came. */
#define GROWTH_MAX_STEPS 16
int growth_mean(const char *path, int windows, double seconds, bool exact, double *t, double *f,
		double *var);

/* cr_skip_test after fini(): Criterion ends a test that skips without
 * running its suite's .fini, which would leave the mount's directory (and
 * whatever else the fini ends) behind. */
#define skip_test_after(fini, ...)                                                                 \
	do {                                                                                       \
		fini();                                                                            \
		cr_skip_test(__VA_ARGS__);                                                         \
	} while (0)

/* Whether this kernel tracks soft-dirty: our own look (clear_refs 4, a
 * write, then bit 55 of the page's pagemap entry). */
bool kernel_has_soft_dirty(void);

/* The mount point of this host's cgroup v2 hierarchy (v2) or of v1's memory
 * one: "" when the host mounts none.  Static. */
const char *cgroup_root(bool v2);
