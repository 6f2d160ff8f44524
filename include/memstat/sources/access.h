/* access.h: who asks, and acting with a caller's rights, not the daemon's.
 *
 * The sources check every admission and every read against the caller:
 * memstatfs runs as root, and a caller must never learn about or act on a
 * process, socket, cgroup or domain it could not reach on its own.
 */
#pragma once

#include <stdbool.h>
#include <sys/stat.h>
#include <sys/types.h>

#define MS_CALLER_GROUPS_MAX 64

/* Who asks: taken from the FUSE request, never from written text. */
typedef struct {
	uid_t uid;
	gid_t gid;
	pid_t pid;
	int ngroups; /* supplementary groups in groups[], 0 when unknown */
	gid_t groups[MS_CALLER_GROUPS_MAX];
} ms_caller;

/* Whether the caller could read pid's memory on its own, by ptrace's rule
 * for an unprivileged caller: the same real, effective and saved uid and gid,
 * and a dumpable process (/proc shows a non-dumpable one as root's).  Root
 * may.  0 with *owner (the process's real uid), or -ESRCH, -EACCES, -EINVAL
 * with *why. */
int ms_caller_may_read_process(pid_t pid, const ms_caller *c, uid_t *owner, char **why);

/* Connects to the UNIX stream socket at path as the caller would on its own:
 * with its uid, gid and groups for every permission check (search on each
 * directory, write on the socket).  Returns the connected fd, or -errno with
 * *why: -ENOENT, -EACCES, -ENOTSOCK (not a socket), -ECONNREFUSED (nobody
 * listens), -ETIMEDOUT (its backlog stays full), -ENAMETOOLONG.  *owner: the
 * socket's owner, as the caller saw it. */
int ms_connect_as(const char *path, const ms_caller *c, uid_t *owner, char **why);

/* 0 when the caller could connect to the socket at path on its own (search
 * on every directory, write on the socket), else -errno. */
int ms_may_connect_as(const char *path, const ms_caller *c);

/* stat(2) of path as the caller would do it on its own (search on every
 * directory with its uid, gid and groups): 0 with *st, or -errno (-ENOENT,
 * -EACCES, -ENOTDIR...). */
int ms_stat_as(const char *path, const ms_caller *c, struct stat *st);

/* The pid, in the daemon's pid namespace, of the process that the caller
 * names pid in its own pid namespace (as cgroup.procs reads a pid).  The
 * same pid when both are in one namespace, or when the caller's namespace
 * cannot be told; -ESRCH with *why when no process of the caller's
 * namespace has that pid. */
int ms_pid_from_caller(pid_t pid, const ms_caller *c, pid_t *out, char **why);
