/* test_restart.c: what consumers of the tree see after the daemon died and
 * was started again, by how they reach the mount (the README's "What
 * consumers see when the daemon dies"): through a shared mount (a bind of
 * the mountpoint's parent, a mount namespace whose propagation is slave)
 * they get the new mount; a namespace with private propagation, a bind of
 * the mountpoint made after the mount, a bind of a file and a working
 * directory inside the mount keep the dead one (ENOTCONN) until the user
 * does what the README says.
 *
 * Everything happens in a mount namespace of the test's own (private from
 * the host's): the temporary directory is bind-mounted on itself and made
 * shared there, as contrib/ makes the mountpoint's parent shared.  A
 * shared mountpoint's bind made before the daemon mounts (a container
 * started first) recovers too. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <glib.h>
#include <fcntl.h>
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
static char shared_dir[256]; /* tmp_dir(), bind-mounted on itself, shared */
static char view[300];	     /* a bind of M.dir made after the mount */
static char late[300];	     /* a bind of M.mnt itself made after the mount */
static char early[300];	     /* a bind of M.mnt made before the mount */
static char file[300];	     /* a file bind-mounted from the tree */

/* A process in its own mount namespace (or none) that reads a path when
 * asked: its pipes. */
typedef struct {
	pid_t pid;
	int cmd, reply;
} consumer;

static consumer consumers[4];
static int nconsumers;

/* Every mount stacked on path (a bind and what propagated onto it). */
static void unmount_all(const char *path)
{
	for (int i = 0; i < 8 && umount2(path, MNT_DETACH) == 0; i++)
		;
}

static void down(void)
{
	for (int i = 0; i < nconsumers; i++) {
		close(consumers[i].cmd);
		close(consumers[i].reply);
		kill(consumers[i].pid, SIGKILL);
		waitpid(consumers[i].pid, NULL, 0);
	}
	nconsumers = 0;
	if (file[0]) {
		unmount_all(file);
		unlink(file);
	}
	if (late[0]) {
		unmount_all(late);
		rmdir(late);
	}
	if (early[0]) {
		unmount_all(early);
		rmdir(early);
	}
	if (view[0]) {
		unmount_all(view);
		rmdir(view);
	}
	mount_stop(&M);
	if (shared_dir[0]) /* the self-bind: only in this namespace */
		umount2(shared_dir, MNT_DETACH);
}

TestSuite(restart, .fini = down, .timeout = 120);

/* The namespace: private from the host's, tmp_dir() shared within it. */
static void shared_tmp(void)
{
	cr_assert_eq(unshare(CLONE_NEWNS), 0, "unshare: %s", strerror(errno));
	cr_assert_eq(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), 0);
	g_strlcpy(shared_dir, tmp_dir(), sizeof(shared_dir));
	cr_assert_eq(mount(shared_dir, shared_dir, NULL, MS_BIND, NULL), 0, "%s", strerror(errno));
	cr_assert_eq(mount(NULL, shared_dir, NULL, MS_SHARED, NULL), 0);
}

/* Reads path: "0 VALUE" or the errno's number. */
static void read_reply(const char *path, char *out, size_t size)
{
	int fd = open(path, O_RDONLY);
	char buf[64] = "";
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
	int err = fd < 0 || n < 0 ? errno : 0;
	if (fd >= 0)
		close(fd);
	if (err)
		snprintf(out, size, "%d", err);
	else
		snprintf(out, size, "0 %.*s", (int)strcspn(buf, "\n"), buf);
}

/* Starts a consumer: propagation MS_SLAVE or MS_PRIVATE for a namespace of
 * its own, 0 for ours; cwd: a directory to work in (its reads are then
 * relative to it). */
static consumer *consumer_start(unsigned long propagation, const char *cwd)
{
	int cmd[2], reply[2];
	pid_t parent = getpid();

	cr_assert(nconsumers < 4);
	cr_assert(pipe(cmd) == 0 && pipe(reply) == 0);
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		die_with_parent(parent, SIGKILL);
		close(cmd[1]);
		close(reply[0]);
		if (propagation && (unshare(CLONE_NEWNS) != 0 ||
				    mount(NULL, "/", NULL, MS_REC | propagation, NULL) != 0))
			_exit(2);
		if (cwd && chdir(cwd) != 0)
			_exit(3);
		char path[512];
		ssize_t n;
		/* A request: a path to read, or "cd PATH". */
		while ((n = read(cmd[0], path, sizeof(path) - 1)) > 0) {
			char out[128];
			path[n] = '\0';
			if (strncmp(path, "cd ", 3) == 0)
				snprintf(out, sizeof(out), "%d", chdir(path + 3) == 0 ? 0 : errno);
			else
				read_reply(path, out, sizeof(out));
			if (write(reply[1], out, strlen(out)) < 0)
				_exit(4);
		}
		_exit(0);
	}
	close(cmd[0]);
	close(reply[1]);
	consumer *c = &consumers[nconsumers++];
	*c = (consumer){pid, cmd[1], reply[0]};
	return c;
}

/* Asks c to read path (or "cd PATH"): the errno (0: read, *value). */
static int ask(consumer *c, const char *path, long *value)
{
	char out[128];
	cr_assert(write(c->cmd, path, strlen(path)) == (ssize_t)strlen(path));
	ssize_t n = read(c->reply, out, sizeof(out) - 1);
	cr_assert_gt(n, 0, "a consumer died");
	out[n] = '\0';
	int err = atoi(out);
	if (!err && value && strlen(out) > 2)
		*value = strtol(out + 2, NULL, 10);
	return err;
}

/* Reads path here: the errno, 0 when it held a number. */
static int here(const char *path)
{
	char out[128];
	read_reply(path, out, sizeof(out));
	int err = atoi(out);
	if (!err) {
		char *end;
		strtol(out + 2, &end, 10);
		cr_expect(end != out + 2, "%s: <%s> is no number", path, out + 2);
	}
	return err;
}

Test(restart, consumers_through_shared_mounts_recover_the_others_keep_enotconn)
{
	shared_tmp();
	mount_start(&M, NULL);
	g_autofree char *rel = g_strdup("meminfo/committed_as");
	g_autofree char *inside = mpath(&M, "%s", rel);
	g_autofree char *meminfo_dir = mpath(&M, "meminfo");

	/* A bind of the mountpoint made while nothing is mounted there (a
	 * container started before the daemon): the daemon is stopped, its
	 * mount cleared, the bind made, the daemon started again. */
	kill(M.daemon, SIGKILL);
	waitpid(M.daemon, NULL, 0);
	M.daemon = 0;
	cr_assert_eq(umount2(M.mnt, MNT_DETACH), 0, "%s", strerror(errno));
	snprintf(early, sizeof(early), "%s/memstatfs-early-XXXXXX", shared_dir);
	cr_assert(mkdtemp(early));
	cr_assert_eq(mount(M.mnt, early, NULL, MS_BIND | MS_REC, NULL), 0);
	cr_assert_eq(mount(NULL, early, NULL, MS_SLAVE, NULL), 0);
	g_autofree char *via_early = g_strdup_printf("%s/%s", early, rel);
	mount_again(&M, NULL);

	/* A view of the mountpoint's parent, bound after the mount (a
	 * container's volume of the parent, rslave or rshared). */
	snprintf(view, sizeof(view), "%s/memstatfs-view-XXXXXX", shared_dir);
	cr_assert(mkdtemp(view));
	cr_assert_eq(mount(M.dir, view, NULL, MS_BIND | MS_REC, NULL), 0, "%s", strerror(errno));
	cr_assert_eq(mount(NULL, view, NULL, MS_SLAVE, NULL), 0);
	g_autofree char *via_view = g_strdup_printf("%s/mnt/%s", view, rel);
	/* A bind of the mountpoint itself, after the mount (docker -v
	 * /mnt/memstat:/mnt/memstat:rslave on a running daemon). */
	snprintf(late, sizeof(late), "%s/memstatfs-late-XXXXXX", shared_dir);
	cr_assert(mkdtemp(late));
	cr_assert_eq(mount(M.mnt, late, NULL, MS_BIND | MS_REC, NULL), 0);
	cr_assert_eq(mount(NULL, late, NULL, MS_SLAVE, NULL), 0);
	g_autofree char *via_late = g_strdup_printf("%s/%s", late, rel);
	/* A file of the tree bound elsewhere (as meminfo over /proc/meminfo). */
	snprintf(file, sizeof(file), "%s/committed_as", M.dir);
	int fd = open(file, O_WRONLY | O_CREAT | O_EXCL, 0644);
	cr_assert(fd >= 0, "%s: %s", file, strerror(errno));
	close(fd);
	cr_assert_eq(mount(inside, file, NULL, MS_BIND, NULL), 0, "%s", strerror(errno));

	consumer *slave = consumer_start(MS_SLAVE, NULL);
	consumer *private = consumer_start(MS_PRIVATE, NULL);
	consumer *shell = consumer_start(0, meminfo_dir); /* cd /mnt/memstat/meminfo */
	long v = -1;
	cr_assert_eq(ask(slave, inside, &v), 0);
	cr_assert_eq(ask(private, inside, &v), 0);
	cr_assert_eq(ask(shell, "committed_as", &v), 0);
	cr_assert_eq(here(via_view), 0);
	cr_assert_eq(here(via_late), 0);
	cr_assert_eq(here(via_early), 0, "the mount reaches a bind made before it");
	cr_assert_eq(here(file), 0);

	/* The daemon dies; systemd (or the user) starts it again. */
	mount_kill_and_restart(&M, NULL);
	cr_assert(is_mounted(M.mnt));
	cr_expect_eq(here(inside), 0, "the mountpoint itself");

	/* Through a shared mount: the new mount. */
	cr_expect_eq(here(via_view), 0, "a bind of the parent: %s", strerror(here(via_view)));
	int err = ask(slave, inside, &v);
	cr_expect_eq(err, 0, "a namespace with slave propagation: %s", strerror(err));
	err = here(via_early);
	cr_expect_eq(err, 0, "a bind of the mountpoint made before the mount: %s", strerror(err));

	/* The dead mount stays, until the user acts. */
	err = ask(private, inside, &v);
	cr_expect_eq(err, ENOTCONN, "a namespace with private propagation: %s", strerror(err));
	err = here(via_late);
	cr_expect_eq(err, ENOTCONN, "a bind of the mountpoint made after the mount: %s",
		     strerror(err));
	err = ask(shell, "committed_as", &v);
	cr_expect_eq(err, ENOTCONN, "a working directory inside: %s", strerror(err));
	err = here(file);
	cr_expect_eq(err, ENOTCONN, "a bind of a file: %s", strerror(err));

	/* What the user does: cd again; bind the file again. */
	g_autofree char *cd = g_strdup_printf("cd %s", meminfo_dir);
	cr_expect_eq(ask(shell, cd, NULL), 0);
	err = ask(shell, "committed_as", &v);
	cr_expect_eq(err, 0, "after cd again: %s", strerror(err));
	cr_assert_eq(umount2(file, MNT_DETACH), 0);
	cr_assert_eq(mount(inside, file, NULL, MS_BIND, NULL), 0, "%s", strerror(errno));
	err = here(file);
	cr_expect_eq(err, 0, "the file bound again: %s", strerror(err));
	/* A bind of the mountpoint: bound again, it is the new mount. */
	cr_assert_eq(umount2(late, MNT_DETACH), 0);
	cr_assert_eq(mount(M.mnt, late, NULL, MS_BIND | MS_REC, NULL), 0);
	err = here(via_late);
	cr_expect_eq(err, 0, "the mountpoint bound again: %s", strerror(err));
}
