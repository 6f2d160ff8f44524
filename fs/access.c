/* access.c: acting on a file with a caller's rights.
 *
 * Linux keeps credentials per thread underneath glibc: the raw setfsuid,
 * setfsgid and setgroups system calls change only the calling thread (glibc's
 * wrappers would change every thread of the daemon).  Dropping the
 * filesystem uid from 0 also drops the capabilities that bypass permission
 * checks, and setting it back to 0 restores them.
 */
#define _GNU_SOURCE
#include "access.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

typedef struct {
	int ngroups;
	gid_t groups[MS_CALLER_GROUPS_MAX];
	bool switched;
} saved_creds;

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
	syscall(SYS_setfsgid, c->gid);
	syscall(SYS_setfsuid, c->uid);
	s->switched = true;
	return 0;
}

static void restore(const saved_creds *s)
{
	if (!s->switched)
		return;
	syscall(SYS_setfsuid, 0);
	syscall(SYS_setfsgid, 0);
	if (syscall(SYS_setgroups, (size_t)s->ngroups, s->groups) < 0)
		g_error("cannot restore the daemon's groups: %s", g_strerror(errno));
}

int ms_connect_as(const char *path, const ms_caller *c, char **why)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;
	saved_creds saved;
	int fd = -1, r;

	if (strlen(path) >= sizeof(sa.sun_path))
		return *why = g_strdup_printf("%s: a socket path is at most %zu bytes", path,
					      sizeof(sa.sun_path) - 1),
		       -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	if ((r = become(c, &saved)) < 0)
		return *why = g_strdup_printf("cannot take uid %u's rights: %s", (unsigned)c->uid,
					      g_strerror(-r)),
		       r;
	if (stat(path, &st) < 0) {
		r = -errno;
		*why = g_strdup_printf("%s: %s", path, g_strerror(errno));
	} else if (!S_ISSOCK(st.st_mode)) {
		r = -ENOTSOCK;
		*why = g_strdup_printf("%s is not a socket", path);
	} else if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
		r = -errno;
		*why = g_strdup_printf("socket: %s", g_strerror(errno));
	} else if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = errno == EPROTOTYPE ? -ENOTSOCK : -errno;
		*why = g_strdup_printf("connect to %s as uid %u: %s", path, (unsigned)c->uid,
				       g_strerror(errno));
		close(fd);
	} else {
		r = fd;
	}
	restore(&saved);
	return r;
}
