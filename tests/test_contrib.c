/* test_contrib.c: memstatfs where its users run it: from fstab through
 * mount.fuse3, as a sidecar in another mount namespace, scraped as
 * Prometheus metrics, plotted, and documented by its man page.
 *
 * Needs util-linux (mount -T, unshare), fuse3 (mount.fuse3), prometheus
 * (promtool), gnuplot-nox and man-db: contrib/install-deps.sh --test.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <math.h>
#include <stdarg.h>
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
static pid_t helpers[8];
static int nhelpers;
static char scratch[160]; /* a directory of the test's, or "" */

static void teardown(void)
{
	for (int i = 0; i < nhelpers; i++)
		proc_kill(helpers[i]);
	nhelpers = 0;
	if (M.daemon > 0)
		mount_stop(&M);
	if (scratch[0]) {
		char cmd[1024];
		/* Whatever a failed test left mounted there. */
		snprintf(cmd, sizeof(cmd),
			 "for m in $(grep -o ' %s[^ ]*' /proc/self/mounts | sort -r); do "
			 "umount -l $m; done 2>/dev/null; rm -rf %s",
			 scratch, scratch);
		if (system(cmd) != 0)
			fprintf(stderr, "cleaning %s failed\n", scratch);
		scratch[0] = '\0';
	}
}

TestSuite(contrib, .fini = teardown, .timeout = 120);

static void make_scratch(void)
{
	snprintf(scratch, sizeof(scratch), "%s/memstat-contrib-XXXXXX", tmp_dir());
	cr_assert(mkdtemp(scratch));
	cr_assert(chmod(scratch, 0755) == 0);
}

/* Starts sh -c cmd in the background; its pid. */
static pid_t spawn_sh(const char *cmd)
{
	pid_t parent = getpid();
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		die_with_parent(parent, SIGTERM);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	return pid;
}

/* Writes a script to run and returns its path. */
static char *script(const char *name, const char *text)
{
	char *path = g_strdup_printf("%s/%s", scratch, name);
	FILE *f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
	chmod(path, 0755);
	return path;
}

Test(contrib, fstab_line_mounts_and_unmounts_through_mount_fuse3)
{
	make_scratch();
	const char *daemon = getenv("MEMSTATFS");
	cr_assert(daemon);
	pid_t p = helpers[nhelpers++] = sleeper_start(0);
	/* mount(8) drops PATH, so mount.fuse3's shell finds `memstatfs` in
	 * the standard path only: where `meson install` puts it
	 * (/usr/local/sbin).  The test puts the build there, in a mount
	 * namespace of its own so that the host's stays as it was. */
	char *sh = script(
		"fstab.sh",
		"#!/bin/sh\n"
		"set -e\n"
		"s=$1 daemon=$2 pid=$3\n"
		"mkdir -p $s/sbin $s/memstat\n"
		"ln -s $daemon $s/sbin/memstatfs\n"
		"mount --bind $s/sbin /usr/local/sbin\n"
		"echo \"memstatfs $s/memstat fuse.memstatfs allow_other,period=2 0 0\" > $s/fstab\n"
		"mount -T $s/fstab $s/memstat\n"
		"echo \"mounted: $(grep \" $s/memstat \" /proc/self/mounts)\"\n"
		"echo \"committed: $(cat $s/memstat/meminfo/committed_as)\"\n"
		"echo $pid > $s/memstat/track\n"
		"echo \"period: $(cat $s/memstat/$pid/period)\"\n"
		"d=$(grep -ls memstatfs /proc/[0-9]*/comm | cut -d/ -f3 | while read p; do\n"
		"  if grep -qsa \"$s/memstat\" /proc/$p/cmdline; then echo $p; fi; done)\n"
		"echo \"daemons: $(echo $d | wc -w)\"\n"
		"umount $s/memstat\n"
		"for i in $(seq 100); do kill -0 $d 2>/dev/null || break; sleep 0.1; done\n"
		"kill -0 $d 2>/dev/null && echo 'daemon still running' || echo 'daemon gone'\n"
		"grep -q \" $s/memstat \" /proc/self/mounts && echo 'still mounted' || echo "
		"unmounted\n");
	char *out = NULL;
	int r = sh_out(&out, "unshare --mount --propagation private %s %s %s %d 2>&1", sh, scratch,
		    daemon, (int)p);
	g_free(sh);
	cr_expect_eq(r, 0, "fstab.sh: %s", out);
	cr_expect(out && strstr(out, "mounted: memstatfs ") && strstr(out, " fuse.memstatfs "),
		  "%s", out);
	cr_expect(out && strstr(out, "committed: ") && !strstr(out, "committed: \n"), "%s", out);
	cr_expect(out && strstr(out, "period: 2\n"), "the options did not reach the daemon: %s",
		  out);
	cr_expect(out && strstr(out, "daemons: 1\n"), "%s", out);
	cr_expect(out && strstr(out, "daemon gone\n"), "%s", out);
	cr_expect(out && strstr(out, "unmounted\n"), "%s", out);
	free(out);
}

Test(contrib, sidecar_mount_reaches_another_mount_namespace)
{
	make_scratch();
	const char *daemon = getenv("MEMSTATFS");
	char shared[256];
	snprintf(shared, sizeof(shared), "%s/shared", scratch);
	cr_assert(mkdir(shared, 0755) == 0);
	/* The volume both containers mount: a shared mount here, as an
	 * emptyDir the node shares. */
	cr_assert(mount(shared, shared, NULL, MS_BIND, NULL) == 0);
	cr_assert(mount(NULL, shared, NULL, MS_SHARED, NULL) == 0);
	char mnt[300];
	snprintf(mnt, sizeof(mnt), "%s/memstat", shared);
	cr_assert(mkdir(mnt, 0755) == 0);

	/* The application's container: its own mount namespace, made before
	 * the sidecar mounts (HostToContainer: slave), and its own pid
	 * namespace.  It waits for the tree, reads a host figure, tracks
	 * itself by its own pid and reads its rate. */
	char *app = script("app.sh",
			   "#!/bin/sh\n"
			   "m=$1\n"
			   "for i in $(seq 100); do [ -e $m/track ] && break; sleep 0.1; done\n"
			   "echo \"committed $(cat $m/meminfo/committed_as)\"\n"
			   "echo \"ownpid $$\"\n"
			   "echo $$ > $m/track || echo 'track failed'\n"
			   "cat $m/track\n");
	char *cmd = g_strdup_printf("unshare --mount --propagation slave --pid --fork %s %s "
				    ">%s/app.out 2>&1",
				    app, mnt, scratch);
	pid_t app_pid = spawn_sh(cmd);
	g_free(cmd);
	usleep(300000);
	/* The sidecar: its own mount namespace where the volume stays
	 * shared (Bidirectional), running the daemon. */
	cmd = g_strdup_printf("exec unshare --mount --propagation unchanged %s -f %s "
			      ">%s/daemon.log 2>&1",
			      daemon, mnt, scratch);
	pid_t sidecar = spawn_sh(cmd);
	g_free(cmd);
	helpers[nhelpers++] = sidecar;
	int status;
	bool done = false;
	for (double end = now_s() + 20; !done && now_s() < end; usleep(50000))
		done = waitpid(app_pid, &status, WNOHANG) == app_pid;
	if (!done) {
		kill(app_pid, SIGKILL);
		waitpid(app_pid, &status, 0);
	}
	char *path = g_strdup_printf("%s/app.out", scratch);
	char *out = read_file(path);
	g_free(path);
	cr_assert(done, "the application never saw the tree: %s", out);
	cr_expect(out && strstr(out, "committed ") && !strstr(out, "No such file"),
		  "app output: %s", out);
	/* In its own pid namespace the app is pid 1; the daemon read that as
	 * the writer's pid 1 and tracked the app under its pid here. */
	cr_expect(out && strstr(out, "ownpid 1\n"), "%s", out);
	cr_expect(out && !strstr(out, "track failed"), "%s", out);
	char *nl = out ? strstr(out, "ownpid 1\n") : NULL;
	int tracked = nl ? atoi(nl + strlen("ownpid 1\n")) : 0;
	cr_expect_gt(tracked, 1, "the app was tracked as pid %d: %s", tracked, out);
	free(out);
	g_free(app);
	/* The mount is the sidecar's: the test's namespace sees it through
	 * the shared volume, and it goes away with the sidecar. */
	cr_expect(is_mounted(mnt));
	kill(sidecar, SIGTERM);
	waitpid(sidecar, &status, 0);
	nhelpers--;
	cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	cr_expect(!is_mounted(mnt), "the sidecar's mount outlived it");
	umount2(shared, MNT_DETACH);
}

Test(contrib, metrics_parse_with_promtool)
{
	mount_start(&M, NULL);
	pid_t p = helpers[nhelpers++] = dirtier_start(64, 64, 2560, NULL);
	cr_assert_eq(track_pid(&M, p, NULL), 0);
	free(sample_wait(&M, p, 2, 30));
	char *path = mpath(&M, "metrics");
	char *out = NULL;
	int r = sh_out(&out, "promtool check metrics < %s 2>&1", path);
	cr_expect_eq(r, 0, "promtool: %s", out);
	cr_expect(out && !strstr(out, "error") && !strstr(out, "problem"), "promtool: %s", out);
	free(out);
	char *text = read_file(path);
	free(path);
	cr_assert(text);
	char key[128];
	snprintf(key, sizeof(key),
		 "memstat_dirty_rate_bytes_per_second{target=\"%d\",kind=\"process\","
		 "mode=\"page-sampling\"} ",
		 (int)p);
	char *line = strstr(text, key);
	cr_assert(line, "no dirty rate for %d in:\n%s", (int)p, text);
	double bytes = atof(line + strlen(key));
	/* 2560 pages/s = 10 MiB/s; the sampling error at 512/GiB of 64 MiB
	 * is wide, so only the unit is checked here. */
	cr_expect(bytes > 2e6 && bytes < 3e7, "rate %f bytes/s", bytes);
	cr_expect(strstr(text, "# TYPE memstat_committed_bytes gauge\n"));
	cr_expect(strstr(text, "memstat_targets 1\n"));
	free(text);
}

Test(contrib, man_page_renders_without_warnings)
{
	char *out = NULL;
	int r = sh_out(&out, "MANWIDTH=80 man --warnings -l %s/contrib/memstatfs.8 2>&1 >/dev/null",
		    src_dir());
	cr_expect_eq(r, 0);
	cr_expect_str_eq(out, "", "man warned: %s", out);
	free(out);
	/* Every option and every file of the tree is in it. */
	r = sh_out(&out, "MANWIDTH=200 man -l %s/contrib/memstatfs.8 2>/dev/null", src_dir());
	const char *words[] = {"period=",  "sample_pages=", "mode=",  "history=", "max_targets=",
			       "workers=", "allow_other",   "track",  "untrack",  "metrics",
			       "meminfo/", "status",	    "rate",   "memory/",  "samples/",
			       "latest",   "qemu_pid",	    "socket", "vcpu/",	  "commit_percent",
			       "growth",   "migration/",    "bandwidth=", "downtime_ms=",
			       "link_bandwidth=", "verdict", "min_bandwidth", "model",
			       "max_targets_per_uid=", "hidepid"};
	for (size_t i = 0; i < G_N_ELEMENTS(words); i++)
		cr_expect(out && strstr(out, words[i]), "%s is not in the man page", words[i]);
	free(out);
}

Test(contrib, plot_draws_a_png)
{
	mount_start(&M, NULL);
	make_scratch();
	pid_t p = helpers[nhelpers++] = dirtier_start(64, 64, 2560, NULL);
	cr_assert_eq(track_pid(&M, p, "sample_pages=4096"), 0);
	free(sample_wait(&M, p, 3, 30));
	char *out = NULL;
	int r = sh_out(&out, "MEMSTAT_MOUNT=%s %s/contrib/memstat-plot %d %s/rate.png 2>&1", M.mnt,
		    src_dir(), (int)p, scratch);
	cr_assert_eq(r, 0, "memstat-plot: %s", out);
	free(out);
	char *png = g_strdup_printf("%s/rate.png", scratch);
	struct stat st;
	cr_assert(stat(png, &st) == 0);
	cr_expect_gt(st.st_size, 1000);
	int fd = open(png, O_RDONLY);
	unsigned char magic[8] = {0};
	cr_expect(read(fd, magic, 8) == 8 && memcmp(magic, "\x89PNG\r\n\x1a\n", 8) == 0);
	close(fd);
	g_free(png);
	/* A name that is not tracked is an error, not an empty picture. */
	r = sh_out(&out, "MEMSTAT_MOUNT=%s %s/contrib/memstat-plot nosuch %s/x.png 2>&1", M.mnt,
		src_dir(), scratch);
	cr_expect_neq(r, 0);
	cr_expect(out && strstr(out, "not a tracked target"), "%s", out);
	free(out);
}

Test(contrib, systemd_unit_verifies)
{
	char *out = NULL;
	if (sh_out(NULL, "command -v systemd-analyze >/dev/null") != 0) {
		fprintf(stderr, "skipped: no systemd-analyze here\n");
		cr_skip_test("no systemd-analyze here");
	}
	make_scratch();
	/* The unit as meson installs it, pointing at the daemon under test. */
	int r = sh_out(&out,
		    "sed 's|@SBINDIR@/memstatfs|%s|' %s/contrib/systemd/memstatfs.service "
		    "> %s/memstatfs.service && systemd-analyze verify --man=no "
		    "%s/memstatfs.service 2>&1",
		    getenv("MEMSTATFS"), src_dir(), scratch, scratch);
	cr_expect_eq(r, 0, "systemd-analyze: %s", out);
	cr_expect_str_eq(out, "", "systemd-analyze: %s", out);
	free(out);
}
