/* test_access.c: what each user sees through memstatfs is what its own /proc
 * would show it (hidepid=, gid=), and one user cannot take every target
 * (max_targets_per_uid).
 *
 * The hidepid tests run in a mount namespace of their own (this test's
 * process: criterion runs each test in its own), where /proc is mounted
 * again with hidepid=: the daemon they start sees that /proc, and so do the
 * callers, forked as other uids.  The truth is the kernel's: each caller
 * asks its own /proc and memstatfs the same questions, and the answers must
 * match, besides the answers proc.rst gives for each mode.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

static mount_t M;

static void down(void)
{
	kill_kept();
	mount_stop(&M);
}

TestSuite(access, .fini = down, .timeout = 120);

#define UID_A	60001 /* owns a process */
#define UID_B	60002 /* owns none; a member of GID_SEE */
#define GID_SEE 60010 /* the gid= of the cases below */

/* What one caller is shown of one process, by a /proc-like tree at base
 * (/proc, or the mount): listed, lookup's errno, and the errno of opening
 * its status (and, in the mount, memory/vmrss). */
typedef struct {
	int listed;
	int lookup;
	int status;
	int vmrss;
	int untrack; /* the mount only: untrack's errno */
} seen;

static int errno_of(int r)
{
	return r < 0 ? errno : 0;
}

static int open_errno(const char *path)
{
	int fd = open(path, O_RDONLY | O_NONBLOCK);
	if (fd < 0)
		return errno;
	close(fd);
	return 0;
}

static bool lists(const char *dir, pid_t pid)
{
	char name[16];
	bool found = false;
	DIR *d = opendir(dir);
	struct dirent *e;

	snprintf(name, sizeof(name), "%d", (int)pid);
	while (d && (e = readdir(d)))
		found |= strcmp(e->d_name, name) == 0;
	if (d)
		closedir(d);
	return found;
}

/* What uid (gid uid, with group as its one supplementary group when not 0)
 * is shown of pid, under base. */
static seen look_as(uid_t uid, gid_t group, const char *base, pid_t pid, bool untrack)
{
	int fds[2];
	seen s = {-1, -1, -1, -1, -1};

	cr_assert(pipe(fds) == 0);
	pid_t child = fork();
	cr_assert(child >= 0);
	if (child == 0) {
		char path[512];
		struct stat st;
		gid_t groups[1] = {group};
		close(fds[0]);
		if (setgroups(group ? 1 : 0, groups) != 0 || setresgid(uid, uid, uid) != 0 ||
		    setresuid(uid, uid, uid) != 0)
			_exit(126);
		seen r = {0};
		r.listed = lists(base, pid);
		snprintf(path, sizeof(path), "%s/%d", base, (int)pid);
		r.lookup = errno_of(stat(path, &st));
		snprintf(path, sizeof(path), "%s/%d/status", base, (int)pid);
		r.status = open_errno(path);
		snprintf(path, sizeof(path), "%s/%d/memory/vmrss", base, (int)pid);
		r.vmrss = open_errno(path);
		if (untrack) {
			char line[16];
			snprintf(path, sizeof(path), "%s/untrack", base);
			snprintf(line, sizeof(line), "%d\n", (int)pid);
			r.untrack = write_file(path, line);
		}
		_exit(write(fds[1], &r, sizeof(r)) == sizeof(r) ? 0 : 125);
	}
	close(fds[1]);
	cr_assert(read(fds[0], &s, sizeof(s)) == sizeof(s), "the caller's child failed");
	close(fds[0]);
	waitpid(child, NULL, 0);
	return s;
}

/* Mounts a new proc over /proc in this test's mount namespace: the last
 * mount on /proc is the one the daemon and the callers see. */
static void mount_proc(const char *opts)
{
	cr_assert(mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, opts) == 0,
		  "mount proc -o %s: %s", opts, strerror(errno));
}

static int track_as(uid_t uid, pid_t pid);

typedef struct {
	const char *opts;
	/* What proc.rst says A is shown of root's process: its lookup's and
	 * its status's errno. */
	int lookup, status;
	bool b_sees; /* B (in GID_SEE) sees root's process as root would */
} mode_case;

Test(access, each_caller_sees_what_its_own_proc_shows)
{
	/* This test's own mount namespace: nothing here reaches the host. */
	cr_assert(unshare(CLONE_NEWNS) == 0, "unshare: %s", strerror(errno));
	cr_assert(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0);
	mount_proc("hidepid=noaccess");

	mount_start(&M, "allow_other");
	pid_t roots = keep(sleeper_start(0));
	pid_t as = keep(sleeper_start(UID_A));
	cr_assert_eq(track_pid(&M, roots, NULL), 0);
	cr_assert_eq(track_pid(&M, as, NULL), 0);
	free(sample_wait(&M, as, 1, 10));

	const mode_case cases[] = {
		{"hidepid=noaccess", 0, EPERM, false},
		{"hidepid=2", ENOENT, ENOENT, false},
		{"hidepid=invisible,gid=60010", ENOENT, ENOENT, true},
		{"hidepid=ptraceable", ENOENT, ENOENT, false},
		{"hidepid=ptraceable,gid=60010", ENOENT, ENOENT, false},
		{"hidepid=off", 0, 0, true},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const mode_case *k = &cases[i];
		if (i > 0)
			mount_proc(k->opts);
		const struct {
			uid_t uid;
			gid_t group;
			pid_t pid;
		} who[] = {
			{UID_A, 0, roots},    {UID_A, 0, as},	 {UID_B, GID_SEE, roots},
			{UID_B, GID_SEE, as}, {UID_B, 0, roots}, {0, 0, as},
		};
		for (size_t j = 0; j < sizeof(who) / sizeof(who[0]); j++) {
			seen kernel = look_as(who[j].uid, who[j].group, "/proc", who[j].pid, false);
			seen ours = look_as(who[j].uid, who[j].group, M.mnt, who[j].pid, false);
			const char *what = k->opts;
			cr_expect_eq(ours.listed, kernel.listed,
				     "%s, uid %u (group %u), pid %d: listed %d, /proc %d", what,
				     (unsigned)who[j].uid, (unsigned)who[j].group, (int)who[j].pid,
				     ours.listed, kernel.listed);
			cr_expect_eq(ours.lookup, kernel.lookup,
				     "%s, uid %u (group %u), pid %d: lookup %s, /proc %s", what,
				     (unsigned)who[j].uid, (unsigned)who[j].group, (int)who[j].pid,
				     strerror(ours.lookup), strerror(kernel.lookup));
			/* Under hidepid=ptraceable the kernel's open of
			 * /proc/PID/status says EPERM rather than ENOENT when
			 * /proc/PID is in its dentry cache (the daemon reads
			 * it each period): proc_pid_permission knows ENOENT
			 * only for invisible.  memstatfs answers as stat and
			 * the listing do: ENOENT. */
			if (kernel.lookup == ENOENT && kernel.status == EPERM &&
			    strstr(what, "ptraceable"))
				kernel.status = ENOENT;
			cr_expect_eq(ours.status, kernel.status,
				     "%s, uid %u (group %u), pid %d: status %s, /proc %s", what,
				     (unsigned)who[j].uid, (unsigned)who[j].group, (int)who[j].pid,
				     strerror(ours.status), strerror(kernel.status));
			/* memory/ is what /proc/PID/status shows. */
			cr_expect_eq(ours.vmrss, kernel.status,
				     "%s, uid %u (group %u), pid %d: memory/vmrss %s, /proc %s",
				     what, (unsigned)who[j].uid, (unsigned)who[j].group,
				     (int)who[j].pid, strerror(ours.vmrss),
				     strerror(kernel.status));
		}
		/* And what proc.rst says, so that a kernel that did otherwise
		 * would be noticed too. */
		seen a = look_as(UID_A, 0, M.mnt, roots, true);
		cr_expect_eq(a.lookup, k->lookup, "%s: A's lookup of root's: %s", k->opts,
			     strerror(a.lookup));
		cr_expect_eq(a.status, k->status, "%s: A's status of root's: %s", k->opts,
			     strerror(a.status));
		cr_expect_eq(a.listed, k->lookup == 0, "%s: listed to A", k->opts);
		/* Untracking what one cannot see: not there; else not A's. */
		cr_expect_eq(a.untrack, k->lookup ? ENOENT : EACCES, "%s: A's untrack: %s", k->opts,
			     strerror(a.untrack));
		seen b = look_as(UID_B, GID_SEE, M.mnt, roots, false);
		cr_expect_eq(b.status == 0, k->b_sees, "%s: B (group %d) status: %s", k->opts,
			     GID_SEE, strerror(b.status));
		/* Tracking what one's /proc does not show: no such process. */
		cr_expect_eq(track_as(UID_A, roots), k->lookup ? ESRCH : EACCES,
			     "%s: A tracks root's", k->opts);
		/* Its own process: always, rate included (ptrace's rule). */
		seen own = look_as(UID_A, 0, M.mnt, as, false);
		cr_expect(own.listed && own.lookup == 0 && own.status == 0, "%s: A's own", k->opts);
		char *p = mpath(&M, "track");
		char *text = NULL;
		cr_assert_eq(sh_out(&text, "setpriv --reuid=%d --regid=%d --clear-groups cat %s",
				    UID_A, UID_A, p),
			     0);
		char line[32];
		snprintf(line, sizeof(line), "%d ", (int)roots);
		cr_expect_eq(strstr(text, line) != NULL, k->lookup == 0,
			     "%s: root's process in A's track text:\n%s", k->opts, text);
		free(text);
		free(p);
	}
	/* Root's targets stayed tracked through all of it. */
	char *st = mread(&M, "%d/status", (int)roots);
	cr_expect(st && strstr(st, "measured"), "%s", st ? st : "(none)");
	free(st);
}

/* Tracks pid as uid (in a child): 0 or the errno. */
static int track_as(uid_t uid, pid_t pid)
{
	pid_t child = fork();
	cr_assert(child >= 0);
	if (child == 0) {
		if (setgroups(0, NULL) != 0 || setresgid(uid, uid, uid) != 0 ||
		    setresuid(uid, uid, uid) != 0)
			_exit(126);
		_exit(track_pid(&M, pid, NULL));
	}
	int status;
	waitpid(child, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int untrack_as(uid_t uid, pid_t pid)
{
	pid_t child = fork();
	cr_assert(child >= 0);
	if (child == 0) {
		char line[16], *p = mpath(&M, "untrack");
		snprintf(line, sizeof(line), "%d\n", (int)pid);
		if (setgroups(0, NULL) != 0 || setresgid(uid, uid, uid) != 0 ||
		    setresuid(uid, uid, uid) != 0)
			_exit(126);
		_exit(write_file(p, line));
	}
	int status;
	waitpid(child, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

Test(access, one_uid_cannot_take_every_target)
{
	mount_start(&M, "allow_other,max_targets=5,max_targets_per_uid=2");
	pid_t a[3], b = keep(sleeper_start(UID_B)), r[3];
	for (int i = 0; i < 3; i++) {
		a[i] = keep(sleeper_start(UID_A));
		r[i] = keep(sleeper_start(0));
	}
	cr_expect_eq(track_as(UID_A, a[0]), 0);
	cr_expect_eq(track_as(UID_A, a[1]), 0);
	/* A's third: A is at its limit. */
	cr_expect_eq(track_as(UID_A, a[2]), ENOSPC);
	/* Retracking one A has (new settings) takes no room. */
	cr_expect_eq(track_as(UID_A, a[1]), 0);
	/* B is not: its own process. */
	cr_expect_eq(track_as(UID_B, b), 0);
	/* Root is held to max_targets only (5: A's 2, B's 1, root's 2). */
	cr_expect_eq(track_pid(&M, r[0], NULL), 0);
	cr_expect_eq(track_pid(&M, r[1], NULL), 0);
	cr_expect_eq(track_pid(&M, r[2], NULL), ENOSPC);
	/* Root tracking A's process counts as root's, not A's: untrack one
	 * of root's to make room, and track A's third as root. */
	char line[16];
	snprintf(line, sizeof(line), "%d\n", (int)r[1]);
	char *p = mpath(&M, "untrack");
	cr_expect_eq(write_file(p, line), 0);
	free(p);
	cr_expect_eq(track_pid(&M, a[2], NULL), 0);
	cr_expect_eq(untrack_as(UID_A, a[2]), 0, "A may untrack its own process root tracked");
	/* A untracks one of its own: room for its third. */
	cr_expect_eq(untrack_as(UID_A, a[0]), 0);
	cr_expect_eq(track_as(UID_A, a[2]), 0);
	/* The reason is in the log. */
	char *text = NULL;
	cr_assert_eq(sh_out(&text, "cat '%s'", M.log), 0);
	cr_expect(strstr(text, "max_targets_per_uid=2"), "log:\n%s", text);
	free(text);
}

Test(access, the_default_per_uid_limit_is_a_quarter_of_max_targets)
{
	mount_start(&M, "allow_other,max_targets=8");
	pid_t a[3];
	for (int i = 0; i < 3; i++)
		a[i] = keep(sleeper_start(UID_A));
	cr_expect_eq(track_as(UID_A, a[0]), 0);
	cr_expect_eq(track_as(UID_A, a[1]), 0);
	cr_expect_eq(track_as(UID_A, a[2]), ENOSPC);
}

/* A VM's qemu_pid tells a process's pid: as the caller's own /proc would,
 * under hidepid=invisible a user who cannot see QEMU's process reads 0. */
Test(access, qemu_pid_follows_hidepid)
{
	cr_assert(unshare(CLONE_NEWNS) == 0, "unshare: %s", strerror(errno));
	cr_assert(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0);
	mount_proc("hidepid=invisible");
	mount_start(&M, "allow_other");

	char sock[600];
	snprintf(sock, sizeof(sock), "%s/vm1.qmp", M.dir);
	pid_t parent = getpid();
	pid_t q = fork();
	cr_assert(q >= 0);
	if (q == 0) {
		die_with_parent(parent, SIGKILL);
		char qmp[700];
		snprintf(qmp, sizeof(qmp), "unix:%s,server=on,wait=off", sock);
		int null = open("/dev/null", O_RDWR);
		dup2(null, 0);
		dup2(null, 1);
		execlp("qemu-system-x86_64", "qemu-system-x86_64", "-machine", "none",
		       "-nodefaults", "-display", "none", "-qmp", qmp, (char *)NULL);
		_exit(127);
	}
	keep(q);
	struct stat st;
	for (int i = 0; i < 3000 && stat(sock, &st) != 0; i++)
		usleep(10000);
	cr_assert(stat(sock, &st) == 0, "QEMU made no QMP socket");
	char line[700];
	snprintf(line, sizeof(line), "%s\n", sock);
	char *p = mpath(&M, "track");
	cr_assert_eq(write_file(p, line), 0);
	free(p);

	char *mine = mread(&M, "vm1/qemu_pid");
	cr_assert(mine);
	cr_expect_eq(atoi(mine), (int)q, "root reads %s", mine);
	free(mine);
	char *text = NULL;
	p = mpath(&M, "vm1/qemu_pid");
	cr_assert_eq(sh_out(&text, "setpriv --reuid=%d --regid=%d --clear-groups cat %s", UID_A,
			    UID_A, p),
		     0);
	cr_expect_str_eq(text, "0\n", "uid %d reads %s", UID_A, text);
	free(text);
	free(p);
}
