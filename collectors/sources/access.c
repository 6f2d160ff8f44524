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
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
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

/* ptrace's rule for a read (PTRACE_MODE_READ, __ptrace_may_access): root,
 * or the same uids and gids and a dumpable process.  Yama has no say here. */
static int ptrace_rule(pid_t pid, const ms_caller *c, uid_t *owner, char **why)
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

/* ---- Yama ---- */

#define YAMA_PATH "/proc/sys/kernel/yama/ptrace_scope"

/* Set by tests before anything reads it (ms_yama_set_path), else NULL. */
static char *_Atomic yama_path;

void ms_yama_set_path(const char *path)
{
	char *old = atomic_exchange(&yama_path, path ? g_strdup(path) : NULL);
	g_free(old); /* tests set it while nothing else reads it */
}

int ms_yama_ptrace_scope(void)
{
	const char *path = atomic_load(&yama_path);
	g_autofree char *text = NULL;
	char *end;

	int r = ms_read_file(path ? path : YAMA_PATH, &text, NULL);
	if (r == -ENOENT)
		return 0; /* a kernel without Yama */
	if (r < 0)
		return 3;
	errno = 0;
	long v = strtol(text, &end, 10);
	if (errno || end == text || (*end && *end != '\n') || v < 0 || v > 3)
		return 3;
	return (int)v;
}

/* A number from a "Key:\tN" line of /proc/PID/status, or -1. */
static long status_field(pid_t pid, const char *key)
{
	char path[64];
	g_autofree char *status = NULL;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if (ms_read_file(path, &status, NULL) < 0)
		return -1;
	const char *v = ms_status_value(status, key);
	return v ? strtol(v, NULL, 10) : -1;
}

/* Yama's task_is_descendant: whether pid is ancestor's process or one of
 * its descendants (ancestor may be a thread: its process counts). */
static bool is_descendant(pid_t pid, pid_t ancestor)
{
	long leader = ancestor > 0 ? status_field(ancestor, "Tgid") : -1;

	if (leader <= 0)
		return false;
	for (long p = pid, n = 0; p > 0 && n < 65536; n++) {
		if (p == leader)
			return true;
		p = status_field((pid_t)p, "PPid");
	}
	return false;
}

static int yama_rule(pid_t pid, const ms_caller *c, char **why)
{
	int scope = ms_yama_ptrace_scope();

	if (scope == 0 || (scope < 3 && c->uid == 0))
		return 0;
	if (scope == 1 && is_descendant(pid, c->pid))
		return 0;
	if (scope == 1)
		return ms_fail(why, -EACCES,
			       "Yama ptrace_scope=1: process %d is not a descendant of the "
			       "writer (pid %d)",
			       (int)pid, (int)c->pid);
	if (scope == 2)
		return ms_fail(why, -EACCES,
			       "Yama ptrace_scope=2: only root may read another process's memory");
	return ms_fail(why, -EACCES, "Yama ptrace_scope=3: no process may read another's memory");
}

int ms_caller_may_read_process(pid_t pid, const ms_caller *c, uid_t *owner, char **why)
{
	int r = ptrace_rule(pid, c, owner, why);

	if (r < 0 || c->attached)
		return r;
	return yama_rule(pid, c, why);
}

/* ---- hidepid ---- */

/* One mountinfo field, octal escapes (\040) undone. */
static char *unescape(const char *f)
{
	GString *s = g_string_new(NULL);

	for (; *f; f++) {
		if (f[0] == '\\' && f[1] >= '0' && f[1] <= '3' && f[2] >= '0' && f[2] <= '7' &&
		    f[3] >= '0' && f[3] <= '7') {
			g_string_append_c(
				s, (char)((f[1] - '0') * 64 + (f[2] - '0') * 8 + (f[3] - '0')));
			f += 3;
		} else {
			g_string_append_c(s, *f);
		}
	}
	return g_string_free(s, FALSE);
}

static const struct {
	const char *name;
	ms_hidepid value;
} hidepid_names[] = {
	{"0", MS_HIDEPID_OFF},	      {"off", MS_HIDEPID_OFF},
	{"1", MS_HIDEPID_NOACCESS},   {"noaccess", MS_HIDEPID_NOACCESS},
	{"2", MS_HIDEPID_INVISIBLE},  {"invisible", MS_HIDEPID_INVISIBLE},
	{"4", MS_HIDEPID_PTRACEABLE}, {"ptraceable", MS_HIDEPID_PTRACEABLE},
};

int ms_proc_view_parse(const char *mountinfo, const char *mountpoint, ms_proc_view *out)
{
	g_auto(GStrv) lines = g_strsplit(mountinfo, "\n", -1);
	int r = 0;

	*out = (ms_proc_view){MS_HIDEPID_OFF, false, 0};
	/* id parent major:minor root mountpoint options [optional...] - type
	 * source super-options: the last mount on mountpoint is the one seen. */
	for (char **l = lines; *l; l++) {
		g_auto(GStrv) f = g_strsplit(*l, " ", -1);
		guint n = g_strv_length(f), dash = 6;
		while (dash < n && strcmp(f[dash], "-") != 0)
			dash++;
		if (n < 5 || dash + 3 >= n)
			continue;
		g_autofree char *mp = unescape(f[4]);
		if (strcmp(mp, mountpoint) != 0)
			continue;
		*out = (ms_proc_view){MS_HIDEPID_OFF, false, 0};
		r = 0;
		if (strcmp(f[dash + 1], "proc") != 0)
			continue;
		g_auto(GStrv) opts = g_strsplit(f[dash + 3], ",", -1);
		for (char **o = opts; *o; o++) {
			if (g_str_has_prefix(*o, "hidepid=")) {
				r = -EINVAL;
				out->hidepid = MS_HIDEPID_INVISIBLE;
				for (size_t i = 0; i < G_N_ELEMENTS(hidepid_names); i++)
					if (strcmp(*o + 8, hidepid_names[i].name) == 0) {
						out->hidepid = hidepid_names[i].value;
						r = 0;
					}
			} else if (g_str_has_prefix(*o, "gid=")) {
				char *end;
				errno = 0;
				unsigned long g = strtoul(*o + 4, &end, 10);
				if (!errno && end != *o + 4 && !*end && g < (gid_t)-1) {
					out->has_gid = true;
					out->gid = (gid_t)g;
				}
			}
		}
	}
	return r;
}

/* Guards view_fd and view. */
static pthread_mutex_t view_lock = PTHREAD_MUTEX_INITIALIZER;
static int view_fd = -2; /* /proc/self/mountinfo; -2 before the first look */
static ms_proc_view view;

/* Under view_lock: reads mountinfo afresh into view. */
static void view_read(void)
{
	g_autoptr(GString) text = g_string_new(NULL);
	char buf[8192];
	ssize_t n;

	if (view_fd >= 0 && lseek(view_fd, 0, SEEK_SET) == 0) {
		while ((n = read(view_fd, buf, sizeof(buf))) > 0)
			g_string_append_len(text, buf, n);
	} else {
		g_autofree char *all = NULL;
		if (ms_read_file("/proc/self/mountinfo", &all, NULL) == 0)
			g_string_assign(text, all);
	}
	if (ms_proc_view_parse(text->str, "/proc", &view) < 0)
		g_warning("/proc has a hidepid= value not known here: other users' processes "
			  "are hidden from them");
}

ms_proc_view ms_proc_view_get(void)
{
	pthread_mutex_lock(&view_lock);
	bool changed = view_fd < 0;
	if (view_fd == -2) {
		view_fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
	} else if (view_fd >= 0) {
		/* The kernel answers POLLPRI (and POLLERR) once after every
		 * change of the mount table, and forgets it when it did. */
		struct pollfd p = {.fd = view_fd, .events = POLLPRI};
		changed = poll(&p, 1, 0) > 0 && (p.revents & (POLLPRI | POLLERR));
	}
	if (changed)
		view_read();
	ms_proc_view v = view;
	pthread_mutex_unlock(&view_lock);
	return v;
}

static bool in_group(const ms_caller *c, gid_t gid)
{
	if (c->gid == gid)
		return true;
	for (int i = 0; i < c->ngroups; i++)
		if (c->groups[i] == gid)
			return true;
	return false;
}

int ms_caller_may_see_process(pid_t pid, const ms_caller *c, bool entered)
{
	ms_proc_view v = ms_proc_view_get();
	ms_hidepid least = entered ? MS_HIDEPID_NOACCESS : MS_HIDEPID_INVISIBLE;
	g_autofree char *why = NULL;
	uid_t owner;
	bool ok;

	if (v.hidepid == MS_HIDEPID_PTRACEABLE)
		ok = ptrace_rule(pid, c, &owner, &why) == 0;
	else if (v.hidepid < least || c->uid == 0 || in_group(c, v.has_gid ? v.gid : 0))
		ok = true;
	else
		ok = ptrace_rule(pid, c, &owner, &why) == 0;
	if (ok)
		return 0;
	return v.hidepid == MS_HIDEPID_NOACCESS ? -EPERM : -ENOENT;
}
