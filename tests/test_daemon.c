/* test_daemon.c: the command line. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

static int run(const char *args)
{
	char cmd[1024];
	snprintf(cmd, sizeof(cmd), "'%s' %s >/dev/null 2>&1", getenv("MEMSTATFS"), args);
	int st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

Test(daemon, help_and_version_exit_zero)
{
	cr_expect_eq(run("--help"), 0);
	cr_expect_eq(run("-h"), 0);
	cr_expect_eq(run("--version"), 0);
}

Test(daemon, bad_options_exit_nonzero)
{
	cr_expect_neq(run(""), 0);
	cr_expect_neq(run("-o period=0 /tmp"), 0);
	cr_expect_neq(run("-o period=61 /tmp"), 0);
	cr_expect_neq(run("-o sample_pages=64 /tmp"), 0);
	cr_expect_neq(run("-o history=0 /tmp"), 0);
	cr_expect_neq(run("-o mode=bogus /tmp"), 0);
	cr_expect_neq(run("-o precision=0% /tmp"), 0);
	cr_expect_neq(run("-o precision=2MiB /tmp"), 0);
	cr_expect_neq(run("a b c"), 0);
}

Test(daemon, source_before_mountpoint_daemonizes_and_mounts, .timeout = 30)
{
	char dir[160], cmd[512];
	snprintf(dir, sizeof(dir), "%s/memstatfs-src-XXXXXX", tmp_dir());
	cr_assert(mkdtemp(dir));
	/* As mount.fuse3 starts it: TYPE SOURCE MOUNTPOINT -o OPTS. */
	snprintf(cmd, sizeof(cmd), "memstatfs %s -o rw,dev,suid,period=2", dir);
	cr_expect_eq(run(cmd), 0);
	cr_expect(is_mounted(dir));
	char *p = NULL;
	cr_assert(asprintf(&p, "%s/meminfo/memtotal", dir) > 0);
	char *t = read_file(p);
	cr_expect(t && strtol(t, NULL, 10) > 0);
	free(t);
	free(p);
	snprintf(cmd, sizeof(cmd), "fusermount3 -u %s", dir);
	cr_expect_eq(system(cmd), 0);
	rmdir(dir);
}

/* -o precision= sets what new processes' page-sampling asks (off too), and
 * without it a -o sample_pages other than 512 keeps the old rule: what the
 * track listing says of a process tracked without settings. */
Test(daemon, o_precision_is_the_default_of_new_targets, .timeout = 60)
{
	struct {
		const char *opts, *says;
	} cases[] = {
		{NULL, "precision=25%,1MiB/s"},
		{"precision=off", "sample_pages=512 precision=off"},
		{"precision=10%\\,2MiB/s",
		 "precision=10%,2MiB/s"}, /* -o splits at commas: fuse_opt takes an escaped one */
		{"sample_pages=1024", "sample_pages=1024 precision=off"},
		{"sample_pages=1024,precision=5%", "sample_pages=1024 precision=5%"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		mount_t m = {0};
		mount_start(&m, cases[i].opts);
		pid_t pid = keep(sleeper_start(0));
		cr_assert_eq(track_pid(&m, pid, NULL), 0);
		char *list = mread(&m, "track");
		cr_expect(list && strstr(list, cases[i].says), "-o %s: the listing says <%s>",
			  cases[i].opts ? cases[i].opts : "(none)", list);
		free(list);
		kill_kept();
		mount_stop(&m);
	}
}
