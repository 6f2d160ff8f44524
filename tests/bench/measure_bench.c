/* measure_bench: what one measurement costs the daemon, per GiB of target
 * memory, against hashing the same memory inside the process that owns it
 * (the limit a look from outside can approach).
 *
 *   measure_bench [GIB...]      (default: 1 4 16)
 *
 * For each size, a child process makes GIB of private memory resident,
 * hashes all of it once itself (XXH3, one pass) and reports its CPU time.
 * Then this process runs the collectors on the child as the daemon's workers
 * do, one step per window (a step closes a window and opens the next):
 * page-sampling at 512 pages per GiB (the default) and at 16384, and
 * full-scan.  The CPU time of a step is the cost of one measurement at the
 * default period.  Prints a Markdown table; nothing is asserted.
 */
#define _GNU_SOURCE
#include <glib.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "bench.h"
#include "memstat/methods/full_scan.h"
#include "memstat/methods/page_sampling.h"

typedef struct {
	double cpu, wall;
} cost;

/* The child: make size bytes resident, hash them once, report, wait. */
static void child(size_t size, int out)
{
	char *mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		_exit(1);
	madvise(mem, size, MADV_NOHUGEPAGE);
	for (size_t i = 0; i < size; i += 4096)
		mem[i] = (char)i, mem[i + 100] = (char)(i >> 12);
	uint64_t acc = 0;
	cost c = {-clock_s(CLOCK_THREAD_CPUTIME_ID), -clock_s(CLOCK_MONOTONIC)};
	for (size_t i = 0; i < size; i += 4096)
		acc += XXH3_64bits(mem + i, 4096);
	c.cpu += clock_s(CLOCK_THREAD_CPUTIME_ID);
	c.wall += clock_s(CLOCK_MONOTONIC);
	if (acc == 42)
		c.cpu += 0; /* keep acc alive */
	if (write(out, &c, sizeof(c)) != sizeof(c))
		_exit(1);
	/* Running all the time (one page written over and over), so that no
	 * window is idle: an idle process costs nothing to measure. */
	for (;;)
		((volatile char *)mem)[0]++;
}

/* CPU seconds of one step of ops on the child, averaged over steps 2..4
 * (step 1 only opens the first window). */
static double step_cost(const ms_method *ops, pid_t pid, int pidfd, uint32_t per_gib,
			ms_measurement *m)
{
	ms_proc_id id = {.pid = pid, .pidfd = pidfd};
	int err = 0;
	char *why = NULL;
	void *st = ops->open(&id, &err, &why);
	double cpu = 0;

	if (!st) {
		fprintf(stderr, "%s: %s\n", ops->mode, why);
		exit(1);
	}
	ms_params params = {.period_ms = 1000, .sample_pages = per_gib};
	for (int k = 0; k < 4; k++) {
		double t0 = clock_s(CLOCK_THREAD_CPUTIME_ID);
		if (ms_method_step(ops, st, &id, &params, m, &why) < 0) {
			fprintf(stderr, "%s step: %s\n", ops->mode, why);
			exit(1);
		}
		if (k > 0)
			cpu += clock_s(CLOCK_THREAD_CPUTIME_ID) - t0;
	}
	ops->close(st);
	return cpu / 3;
}

int main(int argc, char **argv)
{
	const char *defaults[] = {"1", "4", "16"};
	int n = argc > 1 ? argc - 1 : 3;
	const char **sizes = argc > 1 ? (const char **)argv + 1 : defaults;

	printf("| resident GiB | in-process hash, CPU ms | page-sampling 512/GiB: pages read, CPU "
	       "ms "
	       "per measurement | page-sampling 16384/GiB: pages read, CPU ms | full-scan: CPU ms "
	       "| full-scan vs in-process (per pass) |\n");
	printf("| ---: | ---: | ---: | ---: | ---: | ---: |\n");
	for (int i = 0; i < n; i++) {
		double gib = atof(sizes[i]);
		size_t size = (size_t)(gib * 1073741824.0);
		int p[2];
		if (pipe(p) != 0)
			return 1;
		pid_t pid = fork();
		if (pid == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the bench */
			close(p[0]);
			child(size, p[1]);
		}
		close(p[1]); /* a child that dies ends the read */
		cost in = {0};
		if (pid < 0 || read(p[0], &in, sizeof(in)) != sizeof(in)) {
			fprintf(stderr, "child failed for %s GiB\n", sizes[i]);
			return 1;
		}
		int pidfd = (int)pidfd_open(pid, 0);
		ms_measurement m1, m2, m3;
		double ps512 = step_cost(&ms_page_sampling, pid, pidfd, 512, &m1);
		double ps16k = step_cost(&ms_page_sampling, pid, pidfd, 16384, &m2);
		double full = step_cost(&ms_full_scan, pid, pidfd, 512, &m3);
		/* A page-sampling step looks at its pages twice (the window's
		 * close and the next one's open), a full-scan step passes over
		 * every page once (its close opens the next window). */
		printf("| %s | %.1f | %" G_GUINT64_FORMAT " x2, %.2f | %" G_GUINT64_FORMAT
		       " x2, %.2f | %.1f | %.2fx |\n",
		       sizes[i], in.cpu * 1e3, m1.pages_sampled, ps512 * 1e3, m2.pages_sampled,
		       ps16k * 1e3, full * 1e3, full / in.cpu);
		fflush(stdout);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		close(pidfd);
		close(p[0]);
	}
	return 0;
}
