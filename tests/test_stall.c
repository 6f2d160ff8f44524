/* test_stall.c: a target must never hold a measuring thread, and a live
 * userfaultfd handler must not make a target fail.
 *
 * tests/helpers/stalled.c is a process whose memory a userfaultfd handler
 * that never answers serves, and that keeps dropping pages, so that a page
 * the daemon found resident is often missing when it reads it; a thread of
 * it waits for the handler for ever.  With one worker (-o workers=1) beside
 * an ordinary process: the ordinary process keeps getting figures, the
 * stalled one turns `error` with the reason, untrack frees it, and SIGTERM
 * or fusermount3 -u end the daemon with the mount gone.  No timing is
 * asserted beyond "a new figure at all within a few periods".
 *
 * With live= its handler answers (a post-copy destination, lazy pages): the
 * same races, but the target stays `measured`, and its figure is held to
 * the helper's known writes, within the intervals the samples report (as
 * test_timing.c does). */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

static mount_t M;
static void cleanup_cgroup(void);

static void down(void)
{
	kill_kept();
	mount_stop(&M);
}

TestSuite(stall, .fini = down, .timeout = 240);

/* Starts tests/helpers/stalled (its handler answers when live_pages_per_sec
 * is not 0: live=); skips the test, saying why, where the kernel refuses
 * userfaultfd. */
static pid_t stalled_start_live(const char *cgroup, unsigned region_mib, unsigned zap_pages_per_sec,
				unsigned live_pages_per_sec)
{
	const char *bin = getenv("STALLED");
	int pfd[2];
	char a[3][32];

	cr_assert(bin && *bin, "STALLED is not set: run the tests with meson test");
	cr_assert(pipe(pfd) == 0);
	snprintf(a[0], sizeof(a[0]), "%u", region_mib);
	snprintf(a[1], sizeof(a[1]), "%u", zap_pages_per_sec);
	snprintf(a[2], sizeof(a[2]), "live=%u", live_pages_per_sec);
	pid_t parent = getpid();
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		die_with_parent(parent, SIGKILL);
		if (cgroup) {
			char procs[512];
			snprintf(procs, sizeof(procs), "%s/cgroup.procs", cgroup);
			if (write_file(procs, "0") != 0)
				_exit(125);
		}
		dup2(pfd[1], 1);
		close(pfd[0]);
		execl(bin, bin, a[0], a[1], live_pages_per_sec ? a[2] : (char *)NULL, (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	char buf[256] = {0};
	ssize_t n = read(pfd[0], buf, sizeof(buf) - 1);
	close(pfd[0]);
	if (n > 0 && strncmp(buf, "unsupported:", 12) == 0) {
		waitpid(pid, NULL, 0);
		skip_test_after(cleanup_cgroup,
				"this kernel refuses userfaultfd to the tests (%.*s)",
				(int)strcspn(buf, "\n"), buf);
	}
	cr_assert(n > 0 && strncmp(buf, "ready", 5) == 0, "stalled did not start");
	return keep(pid);
}

static pid_t stalled_start_in(const char *cgroup, unsigned region_mib, unsigned zap_pages_per_sec)
{
	return stalled_start_live(cgroup, region_mib, zap_pages_per_sec, 0);
}

static pid_t stalled_start(unsigned region_mib, unsigned zap_pages_per_sec)
{
	return stalled_start_in(NULL, region_mib, zap_pages_per_sec);
}

/* The sequence number of pid's newest sample, or 0. */
static long latest_seq(pid_t pid)
{
	char *p = mpath(&M, "%d/samples/latest", (int)pid);
	char target[64] = {0};
	ssize_t n = readlink(p, target, sizeof(target) - 1);
	free(p);
	return n > 0 ? strtol(target, NULL, 10) : 0;
}

/* Waits up to seconds for pid's newest sample to be newer than after. */
static bool new_sample(pid_t pid, long after, double seconds)
{
	for (double end = now_s() + seconds; now_s() < end; usleep(100000))
		if (latest_seq(pid) > after)
			return true;
	return false;
}

/* The pidfds the daemon holds: one per process target it measures. */
static int daemon_pidfds(void)
{
	char dir[64], link[PATH_MAX], target[128];
	int n = 0;

	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)M.daemon);
	DIR *d = opendir(dir);
	cr_assert(d);
	for (struct dirent *e; (e = readdir(d));) {
		snprintf(link, sizeof(link), "%s/%s", dir, e->d_name);
		ssize_t len = readlink(link, target, sizeof(target) - 1);
		if (len > 0) {
			target[len] = '\0';
			n += strcmp(target, "anon_inode:[pidfd]") == 0;
		}
	}
	closedir(d);
	return n;
}

/* Whether /proc/self/mountinfo lists path as a mountpoint. */
static bool in_mountinfo(const char *path)
{
	char *text = read_file("/proc/self/mountinfo");
	char needle[400];

	cr_assert(text);
	snprintf(needle, sizeof(needle), " %s ", path);
	bool found = strstr(text, needle) != NULL;
	free(text);
	return found;
}

/* Waits (up to 30 s: far more than it needs) for the daemon to exit; its
 * wait status, or -1 if it did not. */
static int daemon_exit(void)
{
	int status;
	for (double end = now_s() + 30; now_s() < end; usleep(20000))
		if (waitpid(M.daemon, &status, WNOHANG) == M.daemon) {
			M.daemon = 0; /* reaped: mount_stop only cleans up */
			return status;
		}
	return -1;
}

/* The stalled process tracked in mode beside a dirtier, on one worker: by
 * its pid, or (cgroup not NULL) as the cgroup it runs in, named "stuck". */
static void stalled_beside_dirtier(const char *mode, const char *stalled_settings,
				   unsigned zap_pages_per_sec, const char *cgroup)
{
	char settings[128], name[32], line[512];

	mount_start(&M, "workers=1");
	pid_t busy = keep(dirtier_start(64, 64, 500, NULL));
	pid_t stuck = stalled_start_in(cgroup, 128, zap_pages_per_sec);
	int pidfds_before = daemon_pidfds();

	snprintf(settings, sizeof(settings), "mode=%s", mode);
	cr_assert_eq(track_pid(&M, busy, settings), 0);
	char *first = sample_wait(&M, busy, 1, 30);
	cr_assert(first, "the busy process got no first figure");
	free(first);
	if (cgroup) {
		snprintf(name, sizeof(name), "stuck");
		snprintf(line, sizeof(line), "%s name=stuck mode=%s %s\n", cgroup, mode,
			 stalled_settings);
	} else {
		snprintf(name, sizeof(name), "%d", (int)stuck);
		snprintf(line, sizeof(line), "%d mode=%s %s\n", (int)stuck, mode, stalled_settings);
	}
	cr_assert_eq(mwrite(&M, "track", line), 0, "track %s", line);
	if (!cgroup)
		cr_expect_eq(daemon_pidfds(), pidfds_before + 2);

	/* Until the stalled target turns error, and a while after: the busy
	 * one gets a new figure every few periods (1 s each); a held worker
	 * would give it none. */
	char *status = NULL;
	int errored_at = -1;
	for (int round = 0; round < 24 && (errored_at < 0 || round < errored_at + 2); round++) {
		long seq = latest_seq(busy);
		cr_assert(new_sample(busy, seq, 5),
			  "round %d: no new figure for the busy process in 5 periods "
			  "(status of the stalled one: %s)",
			  round, status ? status : "?");
		free(status);
		status = mread(&M, "%s/status", name);
		cr_assert(status, "status: %s", strerror(errno));
		if (errored_at < 0 && strncmp(status, "error", 5) == 0)
			errored_at = round;
	}
	cr_assert_geq(errored_at, 0, "the stalled target never turned error: %s", status);
	cr_expect(strstr(status, "userfaultfd"), "the reason does not say why: %s", status);
	free(status);
	char *busy_status = mread(&M, "%d/status", (int)busy);
	cr_expect(busy_status && strncmp(busy_status, "measured", 8) == 0, "busy: %s",
		  busy_status ? busy_status : strerror(errno));
	free(busy_status);

	/* untrack takes it out of the tree and frees what measured it. */
	snprintf(line, sizeof(line), "%s\n", name);
	cr_assert_eq(mwrite(&M, "untrack", line), 0);
	char *p = mpath(&M, "%s", name);
	struct stat st;
	cr_expect(stat(p, &st) < 0 && errno == ENOENT, "after untrack: %s", strerror(errno));
	free(p);
	if (!cgroup) {
		bool freed = false;
		for (double end = now_s() + 10; !freed && now_s() < end; usleep(50000))
			freed = daemon_pidfds() == pidfds_before + 1;
		cr_expect(freed, "untrack freed nothing: %d pidfds, %d before the targets",
			  daemon_pidfds(), pidfds_before);
	}
	long seq = latest_seq(busy);
	cr_expect(new_sample(busy, seq, 5), "no figure for the busy process after the untrack");
}

Test(stall, full_scan_target_turns_error_and_holds_no_worker)
{
	stalled_beside_dirtier("full-scan", "", 20000, NULL);
	/* Tracked again, then SIGTERM: the daemon exits and its mount goes. */
	pid_t stuck = keep(stalled_start(64, 20000));
	cr_assert_eq(track_pid(&M, stuck, "mode=full-scan"), 0);
	usleep(1500000);
	cr_assert_eq(kill(M.daemon, SIGTERM), 0);
	int status = daemon_exit();
	cr_expect(status != -1, "the daemon did not exit after SIGTERM");
	cr_expect(status == -1 || (WIFEXITED(status) && WEXITSTATUS(status) == 0),
		  "exit status %#x", status);
	cr_expect(!in_mountinfo(M.mnt), "the mount is still there after SIGTERM");
}

Test(stall, page_sampling_target_turns_error_and_holds_no_worker)
{
	/* The most pages per look: the race between the look at residency and
	 * the read is met sooner. */
	stalled_beside_dirtier("page-sampling", "sample_pages=16384", 40000, NULL);
	/* fusermount3 -u: the daemon exits. */
	pid_t stuck = keep(stalled_start(64, 40000));
	cr_assert_eq(track_pid(&M, stuck, "mode=page-sampling sample_pages=16384"), 0);
	usleep(1500000);
	char *out = NULL;
	int r = sh_out(&out, "fusermount3 -u '%s' 2>&1", M.mnt);
	cr_expect_eq(r, 0, "fusermount3 -u: %s", out ? out : "");
	free(out);
	int status = daemon_exit();
	cr_expect(status != -1, "the daemon did not exit after fusermount3 -u");
	cr_expect(status == -1 || (WIFEXITED(status) && WEXITSTATUS(status) == 0),
		  "exit status %#x", status);
	cr_expect(!in_mountinfo(M.mnt), "the mount is still there after fusermount3 -u");
}

/* A cgroup v2 directory for the test, removed in cleanup_cgroup; skips,
 * saying why, when this host mounts no cgroup v2 hierarchy. */
static char cg[256];

static void cleanup_cgroup(void)
{
	kill_kept();
	for (int t = 0; cg[0] && t < 100 && rmdir(cg) != 0 && errno == EBUSY; t++)
		usleep(20000);
	cg[0] = '\0';
	mount_stop(&M);
}

static const char *make_cgroup(void)
{
	char *out = NULL;
	sh_out(&out, "findmnt -rn -t cgroup2 -o TARGET | head -n1");
	char *root = out ? strtok(out, "\n") : NULL;
	if (!root || !*root) {
		free(out);
		skip_test_after(cleanup_cgroup, "this host mounts no cgroup v2 hierarchy");
	}
	snprintf(cg, sizeof(cg), "%s/memstat-stall-%d", root, (int)getpid());
	free(out);
	cr_assert(mkdir(cg, 0755) == 0, "mkdir %s: %s", cg, strerror(errno));
	return cg;
}

/* The cgroup source reads its members' frames (frames.c) through the same
 * reader. */
Test(stall, cgroup_with_a_stalled_member_turns_error, .fini = cleanup_cgroup)
{
	stalled_beside_dirtier("page-sampling", "sample_pages=16384", 40000, make_cgroup());
}

Test(stall, cgroup_full_scan_with_a_stalled_member_turns_error, .fini = cleanup_cgroup)
{
	stalled_beside_dirtier("full-scan", "", 20000, make_cgroup());
}

/* A FUSE mount whose server stops answering (tests/helpers/hungfs.c). */
static char hung_dir[256], hung_mnt[300];
static pid_t hung_server;

static void cleanup_hungfs(void)
{
	/* SIGKILL aborts its connection: every read still waiting ends. */
	if (hung_server > 0) {
		kill(hung_server, SIGKILL);
		waitpid(hung_server, NULL, 0);
		hung_server = 0;
	}
	kill_kept();
	if (hung_mnt[0]) {
		char *out = NULL;
		sh_out(&out, "umount -l '%s' 2>/dev/null", hung_mnt);
		free(out);
		rmdir(hung_mnt);
		rmdir(hung_dir);
		hung_mnt[0] = '\0';
	}
	mount_stop(&M);
}

/* Starts hungfs with a file of size_mib; slow_ms: how long it takes to
 * answer each read once it gets SIGRTMIN. */
static void hungfs_start(unsigned size_mib, unsigned slow_ms)
{
	const char *bin = getenv("HUNGFS");
	char size[16], slow[16], data[320];

	cr_assert(bin && *bin, "HUNGFS is not set: run the tests with meson test");
	snprintf(hung_dir, sizeof(hung_dir), "%s/memstatfs-hung-XXXXXX", tmp_dir());
	cr_assert(mkdtemp(hung_dir));
	snprintf(hung_mnt, sizeof(hung_mnt), "%s/mnt", hung_dir);
	cr_assert(mkdir(hung_mnt, 0755) == 0);
	snprintf(size, sizeof(size), "%u", size_mib);
	snprintf(slow, sizeof(slow), "%u", slow_ms);
	pid_t parent = getpid();
	hung_server = fork();
	cr_assert(hung_server >= 0);
	if (hung_server == 0) {
		die_with_parent(parent, SIGKILL);
		execl(bin, bin, size, hung_mnt, slow, (char *)NULL);
		_exit(127);
	}
	snprintf(data, sizeof(data), "%s/data", hung_mnt);
	struct stat st;
	for (double end = now_s() + 30; now_s() < end; usleep(20000))
		if (stat(data, &st) == 0 && st.st_size == (off_t)size_mib << 20)
			return;
	cr_assert_fail("hungfs did not mount on %s", hung_mnt);
}

/* tests/helpers/stalled with file=: a process mapping the first region_mib
 * of hungfs's file, dropping zap_pages_per_sec of them a second from its
 * memory and the page cache and reading them back (from the mount). */
static pid_t file_stalled_start(unsigned region_mib, unsigned zap_pages_per_sec)
{
	const char *bin = getenv("STALLED");
	char how[340], a[2][16];
	int pfd[2];

	cr_assert(bin && *bin, "STALLED is not set: run the tests with meson test");
	snprintf(how, sizeof(how), "file=%s/data", hung_mnt);
	snprintf(a[0], sizeof(a[0]), "%u", region_mib);
	snprintf(a[1], sizeof(a[1]), "%u", zap_pages_per_sec);
	cr_assert(pipe(pfd) == 0);
	pid_t parent = getpid();
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		die_with_parent(parent, SIGKILL);
		dup2(pfd[1], 1);
		close(pfd[0]);
		execl(bin, bin, a[0], a[1], how, (char *)NULL);
		_exit(127);
	}
	keep(pid);
	close(pfd[1]);
	char buf[64] = {0};
	cr_assert(read(pfd[0], buf, sizeof(buf) - 1) > 0 && strncmp(buf, "ready", 5) == 0,
		  "stalled file= did not start");
	close(pfd[0]);
	return pid;
}

/* Whether the daemon's log holds text. */
static bool log_says(const char *text)
{
	char *log = read_file(M.log);
	bool said = log && strstr(log, text);
	free(log);
	return said;
}

/* A read of a page the kernel must fetch from a mount that does not answer
 * holds a worker in the kernel, uninterruptibly: nothing can refuse it.  The
 * watchdog gives the other targets a new worker and the held one `error`,
 * untrack acts at once, and SIGTERM takes the mount away at once; the
 * daemon's process ends once the hung mount's reads end (here: its server
 * killed, which aborts them). */
Test(stall, a_hung_mount_holds_a_worker_not_the_others, .fini = cleanup_hungfs)
{
	char line[32];

	mount_start(&M, "workers=1");
	hungfs_start(128, 100);
	pid_t busy = keep(dirtier_start(64, 64, 500, NULL));
	/* Its pages come from the mount that will hang. */
	pid_t stuck = file_stalled_start(128, 5000);

	cr_assert_eq(track_pid(&M, busy, "mode=full-scan"), 0);
	cr_assert_eq(track_pid(&M, stuck, "mode=full-scan"), 0);
	char *first = sample_wait(&M, stuck, 1, 30);
	cr_assert(first, "the file-backed process got no first figure");
	free(first);
	cr_assert_eq(kill(hung_server, SIGUSR1), 0); /* the server hangs */

	/* Held for a few seconds before the watchdog steps in: the busy one
	 * gets a new figure within 15 periods at any moment. */
	char *status = NULL;
	int held_at = -1;
	for (int round = 0; round < 12 && (held_at < 0 || round < held_at + 2); round++) {
		long seq = latest_seq(busy);
		cr_assert(new_sample(busy, seq, 15),
			  "round %d: no new figure for the busy process in 15 periods "
			  "(status of the held one: %s)",
			  round, status ? status : "?");
		free(status);
		status = mread(&M, "%d/status", (int)stuck);
		cr_assert(status, "status: %s", strerror(errno));
		if (held_at < 0 && strncmp(status, "error", 5) == 0)
			held_at = round;
	}
	cr_assert_geq(held_at, 0, "the held target never turned error: %s", status);
	cr_expect(strstr(status, "has not returned"), "the reason does not say why: %s", status);
	free(status);

	snprintf(line, sizeof(line), "%d\n", (int)stuck);
	cr_assert_eq(mwrite(&M, "untrack", line), 0);
	char *p = mpath(&M, "%d", (int)stuck);
	struct stat st;
	cr_expect(stat(p, &st) < 0 && errno == ENOENT, "after untrack: %s", strerror(errno));
	free(p);
	long seq = latest_seq(busy);
	cr_expect(new_sample(busy, seq, 5), "no figure for the busy process after the untrack");

	/* SIGTERM: the mount goes, though a worker is still held. */
	cr_assert_eq(kill(M.daemon, SIGTERM), 0);
	bool gone = false;
	for (double end = now_s() + 30; !gone && now_s() < end; usleep(50000))
		gone = !in_mountinfo(M.mnt);
	cr_expect(gone, "the mount is still there after SIGTERM");
	/* It does not wait for the held worker for ever: it says so and
	 * exits; its process ends when the hung mount's reads end (its server
	 * killed), exit status 0. */
	bool said = false;
	for (double end = now_s() + 30; !said && now_s() < end; usleep(50000)) {
		char *log = read_file(M.log);
		said = log && strstr(log, "still held");
		free(log);
	}
	cr_expect(said, "the daemon never said it left a held worker");
	kill(hung_server, SIGKILL);
	waitpid(hung_server, NULL, 0);
	hung_server = 0;
	int status_code = daemon_exit();
	cr_expect(status_code != -1, "the daemon did not exit");
	cr_expect(status_code == -1 || (WIFEXITED(status_code) && WEXITSTATUS(status_code) == 0),
		  "exit status %#x", status_code);
}

/* One worker, and a process mapping 128 MiB of a hungfs file that drops
 * rate of its pages a second, tracked by full-scan, with its first figure. */
static pid_t file_target_measured(unsigned rate)
{
	mount_start(&M, "workers=1");
	hungfs_start(128, 100);
	pid_t pid = file_stalled_start(128, rate);
	cr_assert_eq(track_pid(&M, pid, "mode=full-scan"), 0);
	char *first = sample_wait(&M, pid, 1, 30);
	cr_assert(first, "the file-backed process got no first figure");
	free(first);
	return pid;
}

/* A long step that goes on is not held: the mount answers every read, but
 * each only after 100 ms (hungfs after SIGRTMIN).  The process beside it
 * drops its pages from memory and the page cache 20000 a second, so a pass
 * of full-scan finds most pages it found resident gone when it reads them,
 * and waits 100 ms for each: the pass runs for many seconds, a read
 * returning every 100 ms or so.  The watchdog must not call it held.  The
 * test also sees that a pass did outlast the watchdog's 5 s (no new figure
 * for longer than that with one worker and one target), or it proved
 * nothing. */
Test(stall, a_slow_mount_long_step_is_not_held, .fini = cleanup_hungfs)
{
	pid_t slow = file_target_measured(20000);

	cr_assert_eq(kill(hung_server, SIGRTMIN), 0); /* each read: 100 ms */
	long seq = latest_seq(slow);
	double changed_at = now_s(), longest = 0;
	for (double end = now_s() + 15; now_s() < end; usleep(200000)) {
		char *status = mread(&M, "%d/status", (int)slow);
		cr_assert(status, "status: %s", strerror(errno));
		cr_assert(strncmp(status, "error", 5) != 0,
			  "a step that goes on reading was called held: %s", status);
		free(status);
		long now_seq = latest_seq(slow);
		if (now_seq != seq) {
			seq = now_seq;
			changed_at = now_s();
		}
		if (now_s() - changed_at > longest)
			longest = now_s() - changed_at;
	}
	cr_log_info("longest time without a figure while reads took 100 ms: %.1f s", longest);
	cr_expect(!log_says("has been held"), "the log says a worker was held");

	/* The mount answers at once again: the long pass ends, with a
	 * figure. */
	cr_assert_eq(kill(hung_server, SIGUSR2), 0);
	char *after = sample_wait(&M, slow, seq + 1, 60);
	cr_assert(after, "no figure after the mount answers at once again");
	free(after);
	char *status = mread(&M, "%d/status", (int)slow);
	cr_expect(status && strncmp(status, "measured", 8) == 0, "status: %s",
		  status ? status : strerror(errno));
	free(status);
	cr_assert_gt(longest, 6.0,
		     "no step outlasted the watchdog's 5 s (longest %.1f s without a figure): "
		     "the slow mount did not make a long step, and nothing was tested",
		     longest);
}

/* A held target whose mount recovers leaves `error` as soon as its step
 * returns: its status says what is true now. */
Test(stall, a_held_target_whose_mount_recovers_leaves_error, .fini = cleanup_hungfs)
{
	pid_t stuck = file_target_measured(5000);
	cr_assert_eq(kill(hung_server, SIGUSR1), 0); /* the server hangs */

	char *status = NULL;
	bool held = false;
	for (double end = now_s() + 90; !held && now_s() < end; usleep(200000)) {
		free(status);
		status = mread(&M, "%d/status", (int)stuck);
		cr_assert(status, "status: %s", strerror(errno));
		held = strncmp(status, "error", 5) == 0;
	}
	cr_assert(held, "the held target never turned error: %s", status);
	cr_expect(strstr(status, "has not returned"), "the reason does not say why: %s", status);
	free(status);
	long seq = latest_seq(stuck);

	/* The server answers every read it kept waiting, and reads again. */
	cr_assert_eq(kill(hung_server, SIGUSR2), 0);
	char *after = sample_wait(&M, stuck, seq + 1, 60);
	cr_assert(after, "no figure after the mount recovered");
	free(after);
	status = mread(&M, "%d/status", (int)stuck);
	cr_assert(status, "status: %s", strerror(errno));
	cr_expect(strncmp(status, "measured", 8) == 0 && !strstr(status, "has not returned"),
		  "after the mount recovered: %s", status);
	free(status);
	cr_expect(log_says("its measurement returned after"),
		  "the log does not say the held step returned");
}

/* A live handler: the helper writes LIVE_PAGES distinct pages a second in
 * the first half of 128 MiB, and drops and touches back LIVE_ZAP pages a
 * second of the second half, each fault answered by its handler with the
 * page's own bytes (tests/helpers/stalled.c). */
#define LIVE_PAGES   2560 /* 10 MiB/s */
#define LIVE_ZAP     10000
#define LIVE_SAMPLES 6

typedef struct {
	double rate_sum, var_sum, noise;
	int samples;
	double refused;
} tally;

/* Sample seq of the target name, checked and added to t. */
static void add_sample(tally *t, const char *name, long seq, double truth, const char *mode)
{
	char *text = sample_wait_name(&M, name, seq, 40);
	char *status = mread(&M, "%s/status", name);
	cr_assert(text, "sample %ld of %s never came (status: %s)", seq, name,
		  status ? status : strerror(errno));
	cr_expect(status && strncmp(status, "measured", 8) == 0, "%s: %s", name,
		  status ? status : strerror(errno));
	free(status);
	double rate, lo, hi, ms, refused;
	cr_assert(sample_get(text, "rate", &rate) && sample_get(text, "rate_ci95_low", &lo) &&
			  sample_get(text, "rate_ci95_high", &hi) &&
			  sample_get(text, "period_ms", &ms) &&
			  sample_get(text, "pages_refused", &refused),
		  "%s", text);
	cr_expect(strstr(text, mode), "sample of the wrong mode:\n%s", text);
	cr_expect(lo <= rate + 0.005 && rate <= hi + 0.005, "%s", text);
	/* Pages the helper's own stacks and libc dirty (16 a window), and the
	 * batch of 64 it may have out when a window opens, which counts as
	 * new when it is back at the close. */
	double noise = (16 + 64) * 4096 / 1048576.0 / (ms / 1000.0);
	double sigma = (hi - lo) / 2 / 1.959964;
	t->rate_sum += rate;
	t->var_sum += sigma * sigma;
	t->noise = noise;
	t->samples++;
	t->refused += refused;
	cr_log_info("%s %s sample %ld: %.2f [%.2f, %.2f] MiB/s, truth %.2f, %.0f ms, "
		    "%.0f pages refused",
		    name, mode, seq, rate, lo, hi, truth, ms, refused);
	free(text);
}

/* The mean of t's samples within 4.5 standard errors of the intervals the
 * samples report, plus 1% and the helper's noise, of truth. */
static void check_mean(const tally *t, double truth, const char *what, bool expect_refused)
{
	double mean = t->rate_sum / t->samples;
	double se = sqrt(t->var_sum) / t->samples;
	double tol = 4.5 * se + 0.01 * truth;
	cr_log_info("%s: mean %.2f MiB/s, truth %.2f, allowance %.2f, %.0f pages refused", what,
		    mean, truth, tol, t->refused);
	cr_expect(mean >= truth - tol && mean <= truth + t->noise + tol,
		  "%s: mean of %d samples %.2f MiB/s, truth %.2f (allowance %.2f, se %.3f)", what,
		  t->samples, mean, truth, tol, se);
	/* The race this is about: pages found resident, then missing when
	 * read (the helper has tens out at a time).  Full-scan reads every
	 * resident page, so it meets the race (hundreds a run here); a
	 * sample of 2048 pages may not, and is not asked to. */
	if (expect_refused)
		cr_expect(t->refused > 0, "%s: no read was refused: the race was never met", what);
}

/* A read refused by userfaultfd never made a target `error`, not even for a
 * pass (the daemon logs every error it turns a target to). */
static void check_log_has_no_userfaultfd_error(void)
{
	char *log = read_file(M.log);
	cr_assert(log, "%s: %s", M.log, strerror(errno));
	const char *hit = strstr(log, "missing from a mapping that userfaultfd serves");
	cr_expect(!hit, "a target turned error: %.*s", hit ? (int)strcspn(hit, "\n") : 0,
		  hit ? hit : "");
	free(log);
}

/* Two live helpers, by pid: full-scan and page-sampling (16384 pages per
 * GiB: the most reads a look, the race met most often). */
Test(stall, live_handler_stays_measured_by_pid)
{
	char n[2][16];
	mount_start(&M, NULL);
	pid_t full = stalled_start_live(NULL, 128, LIVE_ZAP, LIVE_PAGES);
	pid_t sampled = stalled_start_live(NULL, 128, LIVE_ZAP, LIVE_PAGES);
	cr_assert_eq(track_pid(&M, full, "mode=full-scan"), 0);
	cr_assert_eq(track_pid(&M, sampled, "mode=page-sampling sample_pages=16384"), 0);
	snprintf(n[0], sizeof(n[0]), "%d", (int)full);
	snprintf(n[1], sizeof(n[1]), "%d", (int)sampled);
	double truth = LIVE_PAGES * 4096 / 1048576.0;
	tally tf = {0}, ts = {0};
	/* Sample 1 may have opened while the helper started. */
	for (long seq = 2; seq < 2 + LIVE_SAMPLES; seq++) {
		add_sample(&tf, n[0], seq, truth, "mode full-scan");
		add_sample(&ts, n[1], seq, truth, "mode page-sampling");
	}
	check_mean(&tf, truth, "full-scan, live userfaultfd handler", true);
	check_mean(&ts, truth, "page-sampling, live userfaultfd handler", false);
	check_log_has_no_userfaultfd_error();
}

/* The same as a cgroup's only member: the frames path (frames.c). */
static void live_in_cgroup(const char *mode)
{
	char line[512];
	mount_start(&M, NULL);
	const char *dir = make_cgroup();
	stalled_start_live(dir, 128, LIVE_ZAP, LIVE_PAGES);
	snprintf(line, sizeof(line), "%s name=live mode=%s\n", dir, mode);
	cr_assert_eq(mwrite(&M, "track", line), 0, "track %s", line);
	double truth = LIVE_PAGES * 4096 / 1048576.0;
	tally t = {0};
	for (long seq = 2; seq < 2 + LIVE_SAMPLES; seq++)
		add_sample(&t, "live", seq, truth, mode);
	double mean = t.rate_sum / t.samples, se = sqrt(t.var_sum) / t.samples;
	double tol = 4.5 * se + 0.01 * truth;
	cr_log_info("cgroup %s, live userfaultfd handler: mean %.2f MiB/s, truth %.2f, "
		    "allowance %.2f",
		    mode, mean, truth, tol);
	cr_expect(mean >= truth - tol && mean <= truth + t.noise + tol,
		  "cgroup %s: mean of %d samples %.2f MiB/s, truth %.2f (allowance %.2f)", mode,
		  t.samples, mean, truth, tol);
	check_log_has_no_userfaultfd_error();
}

Test(stall, live_handler_in_a_cgroup_stays_measured_page_sampling, .fini = cleanup_cgroup)
{
	live_in_cgroup("page-sampling");
}

Test(stall, live_handler_in_a_cgroup_stays_measured_full_scan, .fini = cleanup_cgroup)
{
	live_in_cgroup("full-scan");
}
