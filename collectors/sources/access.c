/* access.c: acting on a file with a caller's rights.
 *
 * Linux keeps credentials per thread underneath glibc: the raw setfsuid,
 * setfsgid and setgroups system calls change only the calling thread (glibc's
 * wrappers would change every thread of the daemon).  Dropping the
 * filesystem uid from 0 also drops the capabilities that bypass permission
 * checks, and setting it back to 0 restores them.
 */
#define _GNU_SOURCE
#include "memstat/sources/access.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "memstat/methods/fail.h"
#include "memstat/methods/procfs.h"

typedef struct {
	int ngroups;
	gid_t groups[MS_CALLER_GROUPS_MAX];
	uid_t fsuid;
	gid_t fsgid;
	bool switched;
} saved_creds;

/* How long a connect may wait for a listener whose backlog is full. */
#define CONNECT_TIMEOUT_S 5

static int become(const ms_caller *c, saved_creds *s)
{
	s->switched = false;
	if (c->uid == 0 && geteuid() == 0)
		return 0; /* root acts as itself */
	if (geteuid() != 0)
		/* A daemon that is not root cannot take another's rights: it
		 * acts only for its own uid. */
		return c->uid == geteuid() ? 0 : -EACCES;
	s->ngroups = (int)syscall(SYS_getgroups, MS_CALLER_GROUPS_MAX, s->groups);
	if (s->ngroups < 0)
		return -errno;
	if (syscall(SYS_setgroups, (size_t)c->ngroups, c->groups) < 0)
		return -errno;
	/* Each returns the previous value. */
	s->fsgid = (gid_t)syscall(SYS_setfsgid, c->gid);
	s->fsuid = (uid_t)syscall(SYS_setfsuid, c->uid);
	s->switched = true;
	return 0;
}

static void restore(const saved_creds *s)
{
	if (!s->switched)
		return;
	syscall(SYS_setfsuid, s->fsuid);
	syscall(SYS_setfsgid, s->fsgid);
	if (syscall(SYS_setgroups, (size_t)s->ngroups, s->groups) < 0)
		g_error("cannot restore the daemon's groups: %s", g_strerror(errno));
}

int ms_connect_as(const char *path, const ms_caller *c, uid_t *owner, char **why)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;
	saved_creds saved;
	int fd = -1, r;

	if (strlen(path) >= sizeof(sa.sun_path))
		return ms_fail(why, -ENAMETOOLONG, "%s: a socket path is at most %zu bytes", path,
			       sizeof(sa.sun_path) - 1);
	strcpy(sa.sun_path, path);
	if ((r = become(c, &saved)) < 0)
		return ms_fail(why, r, "cannot take uid %u's rights: %s", (unsigned)c->uid,
			       g_strerror(-r));
	int e = 0;
	if (stat(path, &st) < 0) {
		e = errno;
		r = ms_fail(why, -e, "%s: %s", path, g_strerror(e));
	} else if (!S_ISSOCK(st.st_mode)) {
		r = ms_fail(why, -ENOTSOCK, "%s is not a socket", path);
	} else if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
		e = errno;
		r = ms_fail(why, -e, "socket: %s", g_strerror(e));
	} else if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO,
			      &(struct timeval){.tv_sec = CONNECT_TIMEOUT_S},
			      sizeof(struct timeval)) < 0 ||
		   connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		/* A full backlog makes connect wait for SO_SNDTIMEO. */
		e = errno;
		r = ms_fail(why,
			    e == EPROTOTYPE ? -ENOTSOCK
			    : e == EAGAIN   ? -ETIMEDOUT
					    : -e,
			    "connect to %s as uid %u: %s", path, (unsigned)c->uid, g_strerror(e));
		close(fd);
	} else {
		r = fd;
		*owner = st.st_uid;
	}
	restore(&saved);
	return r;
}

int ms_may_connect_as(const char *path, const ms_caller *c)
{
	saved_creds saved;
	int r = become(c, &saved);

	if (r < 0)
		return r;
	/* AT_EACCESS: with the filesystem ids just taken, not the real ids. */
	r = faccessat(AT_FDCWD, path, W_OK, AT_EACCESS) == 0 ? 0 : -errno;
	restore(&saved);
	return r;
}

int ms_stat_as(const char *path, const ms_caller *c, struct stat *st)
{
	saved_creds saved;
	int r = become(c, &saved);

	if (r < 0)
		return r;
	r = stat(path, st) == 0 ? 0 : -errno;
	restore(&saved);
	return r;
}

/* The inode of /proc/PID/ns/pid (0 when it cannot be read). */
static ino_t pid_ns_of(pid_t pid)
{
	char path[64];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/%d/ns/pid", (int)pid);
	return stat(path, &st) == 0 ? st.st_ino : 0;
}

/* The last field of the NSpid line of /proc/PID/status: the pid in the
 * process's own namespace (-1 when it cannot be read). */
static long own_ns_pid(pid_t pid)
{
	char path[64];
	g_autofree char *status = NULL;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if (ms_read_file(path, &status, NULL) < 0)
		return -1;
	const char *line = strstr(status, "\nNSpid:");
	if (!line)
		return -1;
	line += strlen("\nNSpid:");
	long last = -1;
	for (char *end;; line = end) {
		long v = strtol(line, &end, 10);
		if (end == line)
			break;
		last = v;
	}
	return last;
}

int ms_pid_from_caller(pid_t pid, const ms_caller *c, pid_t *out, char **why)
{
	ino_t mine = pid_ns_of(getpid()), theirs = c->pid > 0 ? pid_ns_of(c->pid) : 0;

	*out = pid;
	if (!mine || !theirs || mine == theirs)
		return 0;
	/* The caller lives in another pid namespace: find the process of
	 * that namespace whose pid there is pid. */
	g_autoptr(GDir) proc = g_dir_open("/proc", 0, NULL);
	const char *name;
	while (proc && (name = g_dir_read_name(proc))) {
		char *end;
		long p = strtol(name, &end, 10);
		if (*end || p <= 0)
			continue;
		if (pid_ns_of((pid_t)p) == theirs && own_ns_pid((pid_t)p) == pid) {
			*out = (pid_t)p;
			return 0;
		}
	}
	return ms_fail(why, -ESRCH, "no process %d in the pid namespace of the writer", (int)pid);
}

int ms_caller_may_read_process(pid_t pid, const ms_caller *c, uid_t *owner, char **why)
{
	char path[64];
	g_autofree char *status = NULL;
	unsigned uids[4], gids[4];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	int r = ms_read_file(path, &status, NULL);
	if (r == -ENOENT || r == -ESRCH)
		return ms_fail(why, -ESRCH, "no process %d", (int)pid);
	if (r < 0)
		return ms_fail(why, r, "cannot read %s: %s", path, g_strerror(-r));
	if (ms_parse_status_ids(status, "Uid", uids) < 0 ||
	    ms_parse_status_ids(status, "Gid", gids) < 0)
		return ms_fail(why, -EINVAL, "cannot parse %s", path);
	*owner = uids[0];
	if (c->uid == 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d", (int)pid);
	if (stat(path, &st) < 0)
		return ms_fail(why, -ESRCH, "no process %d", (int)pid);
	bool same = st.st_uid == c->uid;
	for (int i = 0; i < 3; i++)
		same &= uids[i] == c->uid && gids[i] == c->gid;
	if (!same)
		return ms_fail(why, -EACCES, "uid %u may not read the memory of process %d",
			       (unsigned)c->uid, (int)pid);
	return 0;
}
