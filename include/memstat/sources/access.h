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
	/* The caller already tracks the target (a target's tracker): Yama's
	 * relation was checked when it tracked, as ptrace checks it when a
	 * tracer attaches, not at every access afterwards. */
	bool attached;
} ms_caller;

/* How /proc is mounted where the daemon runs (its hidepid= and gid=
 * options, Documentation/filesystems/proc.rst), which decides what a
 * caller's own /proc would show it of other users' processes. */
typedef enum {
	MS_HIDEPID_OFF = 0,	   /* everyone sees every /proc/PID */
	MS_HIDEPID_NOACCESS = 1,   /* other users' /proc/PID listed, not entered */
	MS_HIDEPID_INVISIBLE = 2,  /* other users' /proc/PID not there at all */
	MS_HIDEPID_PTRACEABLE = 4, /* only processes the caller may ptrace-read */
} ms_hidepid;

typedef struct {
	ms_hidepid hidepid;
	bool has_gid; /* gid= given: members of this group see everything;
		       * without it, group 0's members do (the kernel's
		       * default pid_gid, GLOBAL_ROOT_GID) */
	gid_t gid;
} ms_proc_view;

/* The options of the last proc mount on mountpoint in mountinfo (the text
 * of /proc/self/mountinfo): hidepid= numeric (0, 1, 2, 4) or named (off,
 * noaccess, invisible, ptraceable), and gid=.  No such mount, or one
 * without hidepid=: MS_HIDEPID_OFF.  0, or -EINVAL for a hidepid= value
 * this does not know (then *out says MS_HIDEPID_INVISIBLE: hide rather than
 * show). */
int ms_proc_view_parse(const char *mountinfo, const char *mountpoint, ms_proc_view *out);

/* The view of the daemon's /proc: read from /proc/self/mountinfo, again
 * whenever the kernel says the mount table changed (poll's POLLPRI on
 * mountinfo), so a remount or a new mount on /proc counts at the next
 * check.  Thread safe. */
ms_proc_view ms_proc_view_get(void);

/* Whether the caller's own /proc would show it process pid: with entered
 * false, /proc/PID in a listing and a lookup; with entered true, the
 * files inside it.  The kernel's has_pid_permissions (fs/proc/base.c):
 * everyone when hidepid is off (or, for entered false, noaccess); else a
 * member of gid= (not with ptraceable), root, or who could ptrace-read it
 * (same uids and gids, dumpable; Yama has no say in reads).  0, -ENOENT
 * (invisible, ptraceable, or no such process) or -EPERM (noaccess, as
 * /proc answers opening another user's /proc/PID/status). */
int ms_caller_may_see_process(pid_t pid, const ms_caller *c, bool entered);

/* Yama's kernel.yama.ptrace_scope: 0 (classic ptrace rules; also when the
 * kernel has no Yama), 1 (only descendants), 2 (only CAP_SYS_PTRACE),
 * 3 (nobody).  A value that cannot be read or parsed counts as 3. */
int ms_yama_ptrace_scope(void);
/* Where ms_yama_ptrace_scope reads (NULL: /proc/sys/kernel/yama/
 * ptrace_scope), for tests: the decision is taken on the value read. */
void ms_yama_set_path(const char *path);

/* Whether the caller could read pid's memory on its own, by ptrace's rule
 * for an unprivileged caller: the same real, effective and saved uid and gid,
 * and a dumpable process (/proc shows a non-dumpable one as root's).  Root
 * may.  Then Yama's ptrace_scope, unless the caller is attached: 1, pid must
 * be a descendant of the caller's process, or the caller root (exceptions
 * declared with PR_SET_PTRACER are not known here: they are refused); 2,
 * root only; 3, nobody, root neither (the daemon could not read it either).
 * 0 with *owner (the process's real uid), or -ESRCH, -EACCES, -EINVAL with
 * *why. */
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
