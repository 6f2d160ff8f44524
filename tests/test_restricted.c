/* test_restricted.c: the real daemon under a seccomp filter (libseccomp,
 * tests/helpers/seccomp_run.c) that refuses one optional kernel interface
 * with EPERM, EACCES or ENOSYS, as container runtimes' profiles do: it falls
 * back where there is a way without it, says in its start-up log which
 * interfaces are in use, and where there is no way without one the reason
 * is in status.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

static mount_t M;

static void down(void)
{
	kill_kept();
	mount_stop(&M);
}

TestSuite(restricted, .fini = down, .timeout = 120);

/* Mounts the daemon under seccomp_run with rules ("pidfd_open=EPERM"), in
 * front of any wrapper the run uses (valgrind...).  Skips, saying why,
 * without libseccomp. */
static void mount_filtered(const char *rules, const char *opts)
{
	const char *run = getenv("SECCOMP_RUN");
	if (!run || !*run)
		cr_skip_test("built without libseccomp (libseccomp-dev: contrib/install-deps.sh "
			     "--test): the daemon cannot be run under a seccomp filter");
	char *old = getenv("MEMSTATFS_WRAPPER") ? strdup(getenv("MEMSTATFS_WRAPPER")) : NULL;
	char wrapper[1024];
	snprintf(wrapper, sizeof(wrapper), "%s %s --%s%s", run, rules, old ? " " : "",
		 old ? old : "");
	setenv("MEMSTATFS_WRAPPER", wrapper, 1);
	mount_start(&M, opts);
	if (old)
		setenv("MEMSTATFS_WRAPPER", old, 1);
	else
		unsetenv("MEMSTATFS_WRAPPER");
	free(old);
}

static char *daemon_log(void)
{
	char *text = NULL;
	cr_assert_eq(sh_out(&text, "cat '%s'", M.log), 0);
	return text;
}

/* The first line of pid's status, waiting up to seconds for it to be want
 * (a deadline for a state change, never a measure of speed). */
static char *status_becomes(pid_t pid, const char *want, double seconds)
{
	char *st = NULL;
	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		free(st);
		st = mread(&M, "%d/status", (int)pid);
		if (st && strncmp(st, want, strlen(want)) == 0)
			break;
		usleep(50000);
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while ((double)(t.tv_sec - t0.tv_sec) + (double)(t.tv_nsec - t0.tv_nsec) / 1e9 < seconds);
	return st;
}

Test(restricted, an_unfiltered_daemon_logs_the_interfaces_it_uses)
{
	mount_start(&M, NULL);
	char *log = daemon_log();
	const char *names[] = {"pidfd_open", "PAGEMAP_SCAN", "/proc/PID/mem",
			       "clear_refs (soft-dirty)", "per-process CPU clock"};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char line[128];
		snprintf(line, sizeof(line), "kernel interface %s: ", names[i]);
		cr_expect(strstr(log, line), "no line for %s in:\n%s", names[i], log);
	}
	/* This kernel has all but (perhaps) soft-dirty. */
	cr_expect(strstr(log, "kernel interface pidfd_open: in use"), "%s", log);
	cr_expect(strstr(log, "kernel interface /proc/PID/mem: in use"), "%s", log);
	free(log);
}

/* pidfd_open refused as Docker's profile did (EPERM), as an LSM would
 * (EACCES), and as an unknown call (ENOSYS): tracking works, told apart by
 * the start time, and an exit is still seen. */
Test(restricted, pidfd_open_refused_falls_back_to_the_start_time)
{
	const char *errs[] = {"EPERM", "EACCES", "ENOSYS"};
	for (size_t i = 0; i < 3; i++) {
		char rule[64];
		snprintf(rule, sizeof(rule), "pidfd_open=%s", errs[i]);
		mount_filtered(rule, NULL);
		char *log = daemon_log();
		cr_expect(strstr(log, "kernel interface pidfd_open: not in use"), "%s:\n%s", rule,
			  log);
		free(log);
		pid_t p = sleeper_start(0);
		cr_expect_eq(track_pid(&M, p, NULL), 0, "%s: track", rule);
		char *s = sample_wait(&M, p, 1, 20);
		cr_expect(s, "%s: no first sample", rule);
		free(s);
		proc_kill(p);
		char *st = status_becomes(p, "exited", 20);
		cr_expect(st && strncmp(st, "exited", 6) == 0, "%s: after the kill: %s", rule,
			  st ? st : "(none)");
		free(st);
	}
}

/* PAGEMAP_SCAN refused: the pagemap is read entry by entry; a writer's
 * pages are still found, in each mode that reads them. */
Test(restricted, pagemap_scan_refused_reads_the_pagemap)
{
	mount_filtered("pagemap_scan=EPERM", NULL);
	char *log = daemon_log();
	cr_expect(strstr(log, "kernel interface PAGEMAP_SCAN: not in use (Operation not permitted"),
		  "%s", log);
	free(log);
	pid_t d = keep(dirtier_start(64, 64, 2000, NULL));
	cr_assert_eq(track_pid(&M, d, "mode=full-scan"), 0);
	char *s = sample_wait(&M, d, 2, 20);
	cr_assert(s, "no sample under the filter");
	/* Found without the ioctl, and every resident page of the 64 MiB
	 * region among them. */
	cr_expect(strstr(s, "method pagemap+proc_mem\n"), "%s", s);
	const char *k = strstr(s, "pages_population ");
	cr_assert(k, "%s", s);
	unsigned long long population = strtoull(k + strlen("pages_population "), NULL, 10);
	cr_expect_geq(population, 64ull * 1024 * 1024 / 4096, "%s", s);
	free(s);
	char *st = mread(&M, "%d/status", (int)d);
	cr_expect(st && strncmp(st, "measured", 8) == 0, "%s", st ? st : "(none)");
	free(st);
}

/* process_vm_readv refused (as a filter may): pages are read with pread of
 * /proc/PID/mem (pages.h), so nothing changes: a writer is measured, its
 * sample read through /proc/PID/mem, its status measured. */
Test(restricted, process_vm_readv_refused_changes_nothing)
{
	mount_filtered("process_vm_readv=EPERM", NULL);
	char *log = daemon_log();
	cr_expect(strstr(log, "kernel interface /proc/PID/mem: in use"), "%s", log);
	free(log);
	pid_t d = keep(dirtier_start(64, 64, 2000, NULL));
	cr_assert_eq(track_pid(&M, d, NULL), 0);
	char *s = sample_wait(&M, d, 2, 20);
	cr_assert(s, "no sample under the filter");
	cr_expect(strstr(s, "+proc_mem\n"), "%s", s);
	free(s);
	char *st = mread(&M, "%d/status", (int)d);
	cr_expect(st && strncmp(st, "measured", 8) == 0, "%s", st ? st : "(none)");
	free(st);
}

/* The per-process CPU clock refused (clock_getcpuclockid asks clock_getres
 * of the process's clock): page-sampling does without it, reading the
 * pages of a process that did not run rather than calling the window
 * idle. */
Test(restricted, the_cpu_clock_refused_reads_the_pages)
{
	mount_filtered("clock_getres=EPERM", NULL);
	char *log = daemon_log();
	cr_expect(strstr(log, "kernel interface per-process CPU clock: not in use (Operation not "
			      "permitted"),
		  "%s", log);
	free(log);
	pid_t p = keep(sleeper_start(0));
	cr_assert_eq(track_pid(&M, p, NULL), 0);
	char *s = sample_wait(&M, p, 3, 20);
	cr_assert(s, "no sample under the filter");
	cr_expect(strstr(s, "method pagemap_scan+proc_mem\n") ||
			  strstr(s, "method pagemap+proc_mem\n"),
		  "a sleeper's pages are read, not skipped as idle: %s", s);
	free(s);
}
