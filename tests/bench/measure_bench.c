/* measure_bench: what one measurement costs the daemon, per GiB of target
 * memory, against hashing the same memory inside the process that owns it
 * (the limit a look from outside can approach).
 *
 *   measure_bench [GIB...]      (default: 1 4 16)
 *   measure_bench full-scan STEPS GIB...
 *                               (full-scan steps only, for perf:
 *                               tests/bench/perf_full_scan.sh)
 *
 * For each size, a child process makes GIB of private memory resident,
 * hashes all of it itself (XXH3, one pass; the cheaper of two) and reports
 * its CPU time.
 * Then this process runs the collectors on the child as the daemon's workers
 * do, one step per window (a step closes a window and opens the next):
 * page-sampling at 512 pages per GiB (the default) and at 16384, and
 * full-scan.  The CPU time of a step is the cost of one measurement at the
 * default period.  Then the floor under full-scan: the child's memory read
 * across processes once, as a pass reads it (chunks in a random order) but
 * with no hashing, by pread of /proc/PID/mem (what the collectors use) in
 * reads of 16 pages (full-scan's chunk) and of 256, and by
 * process_vm_readv in reads of 256 (one copy where /proc/PID/mem makes
 * two; the collectors do not use it: pages.c), and pread of 16 pages with
 * each page hashed (full-scan's pass without its bookkeeping).  Prints two
 * Markdown tables; nothing is asserted.
 */
#define _GNU_SOURCE
#include <glib.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "bench.h"
#include "memstat/methods/full_scan.h"
#include "memstat/methods/page_sampling.h"

typedef struct {
	double cpu, wall;
	uint64_t mem; /* the child's memory (its address there) */
} cost;

/* The child: make size bytes resident, hash them (twice, the cheaper pass
 * reported: one pass swings with the machine's load), report, wait. */
static void child(size_t size, int out)
{
	char *mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		_exit(1);
	madvise(mem, size, MADV_NOHUGEPAGE);
	for (size_t i = 0; i < size; i += 4096)
		mem[i] = (char)i, mem[i + 100] = (char)(i >> 12);
	uint64_t acc = 0;
	cost c = {0};
	for (int pass = 0; pass < 2; pass++) {
		cost p = {-clock_s(CLOCK_THREAD_CPUTIME_ID), -clock_s(CLOCK_MONOTONIC),
			  (uintptr_t)mem};
		for (size_t i = 0; i < size; i += 4096)
			acc += XXH3_64bits(mem + i, 4096);
		p.cpu += clock_s(CLOCK_THREAD_CPUTIME_ID);
		p.wall += clock_s(CLOCK_MONOTONIC);
		if (pass == 0 || p.cpu < c.cpu)
			c = p;
	}
	if (acc == 42)
		c.cpu += 0; /* keep acc alive */
	if (write(out, &c, sizeof(c)) != sizeof(c))
		_exit(1);
	/* Running all the time (one page written over and over), so that no
	 * window is idle: an idle process costs nothing to measure. */
	for (;;)
		((volatile char *)mem)[0]++;
}

/* CPU seconds of one step of ops on the child, averaged over steps 2..steps
 * (step 1 only opens the first window). */
static double step_cost(const ms_method *ops, pid_t pid, int pidfd, uint32_t per_gib,
			ms_measurement *m, int steps)
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
	for (int k = 0; k < steps; k++) {
		double t0 = clock_s(CLOCK_THREAD_CPUTIME_ID);
		if (ms_method_step(ops, st, &id, &params, m, &why) < 0) {
			fprintf(stderr, "%s step: %s\n", ops->mode, why);
			exit(1);
		}
		if (k > 0)
			cpu += clock_s(CLOCK_THREAD_CPUTIME_ID) - t0;
	}
	ops->close(st);
	return cpu / (steps - 1);
}

typedef enum { READ_PREAD, READ_PREAD_HASH, READ_PROCESS_VM } read_how;

/* CPU seconds of one read of the child's size bytes at mem, in reads of
 * chunk pages in a random order of chunks, as how says. */
static double read_cost(pid_t pid, uint64_t mem, size_t size, size_t chunk, read_how how)
{
	const size_t ps = 4096, n = size / ps / chunk;
	char path[64];
	void *buf = NULL;
	uint64_t acc = 0;

	snprintf(path, sizeof(path), "/proc/%d/mem", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || posix_memalign(&buf, ps, chunk * ps) != 0) {
		perror(path);
		exit(1);
	}
	uint32_t *order = g_new(uint32_t, MAX(n, 1));
	for (size_t i = 0; i < n; i++)
		order[i] = (uint32_t)i;
	for (size_t i = n; i > 1; i--) {
		size_t j = (size_t)g_random_int_range(0, (gint32)i);
		uint32_t t = order[i - 1];
		order[i - 1] = order[j], order[j] = t;
	}
	double t0 = clock_s(CLOCK_THREAD_CPUTIME_ID);
	for (size_t i = 0; i < n; i++) {
		uint64_t at = mem + (uint64_t)order[i] * chunk * ps;
		struct iovec local = {buf, chunk * ps},
			     remote = {(void *)(uintptr_t)at, chunk * ps};
		ssize_t r = how == READ_PROCESS_VM ? process_vm_readv(pid, &local, 1, &remote, 1, 0)
						   : pread(fd, buf, chunk * ps, (off_t)at);
		if (r != (ssize_t)(chunk * ps)) {
			perror("read of the child");
			exit(1);
		}
		if (how == READ_PREAD_HASH)
			for (size_t j = 0; j < chunk; j++)
				acc += XXH3_64bits((char *)buf + j * ps, ps);
	}
	double cpu = clock_s(CLOCK_THREAD_CPUTIME_ID) - t0;
	if (acc == 42)
		cpu += 0; /* keep acc alive */
	g_free(order);
	free(buf);
	close(fd);
	return cpu;
}

int main(int argc, char **argv)
{
	const char *defaults[] = {"1", "4", "16"};
	int n = argc > 1 ? argc - 1 : 3;
	const char **sizes = argc > 1 ? (const char **)argv + 1 : defaults;
	int only_full_scan = 0; /* steps of full-scan alone, or 0 */

	if (argc > 3 && strcmp(argv[1], "full-scan") == 0) {
		only_full_scan = MAX(atoi(argv[2]), 2);
		n = argc - 3;
		sizes = (const char **)argv + 3;
	}

	g_autoptr(GString) floor = g_string_new(
		"| resident GiB | in-process hash, CPU ms | pread 16 pages, no hash | pread 256 "
		"pages, no hash | process_vm_readv 256 pages, no hash | pread 16 pages + xxh3 | "
		"full-scan step |\n| ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");

	if (!only_full_scan) {
		printf("| resident GiB | in-process hash, CPU ms | page-sampling 512/GiB: pages "
		       "read, CPU "
		       "ms "
		       "per measurement | page-sampling 16384/GiB: pages read, CPU ms | full-scan: "
		       "CPU ms "
		       "| full-scan vs in-process (per pass) |\n");
		printf("| ---: | ---: | ---: | ---: | ---: | ---: |\n");
	}
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
		if (only_full_scan) {
			printf("measuring process %d, %s GiB: ", (int)getpid(), sizes[i]);
			fflush(stdout);
			double full =
				step_cost(&ms_full_scan, pid, pidfd, 512, &m3, only_full_scan);
			printf("full-scan %.1f ms a step, in-process hash %.1f ms\n", full * 1e3,
			       in.cpu * 1e3);
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			close(pidfd);
			close(p[0]);
			continue;
		}
		double ps512 = step_cost(&ms_page_sampling, pid, pidfd, 512, &m1, 4);
		double ps16k = step_cost(&ms_page_sampling, pid, pidfd, 16384, &m2, 4);
		double full = step_cost(&ms_full_scan, pid, pidfd, 512, &m3, 4);
		/* A page-sampling step looks at its pages twice (the window's
		 * close and the next one's open), a full-scan step passes over
		 * every page once (its close opens the next window). */
		printf("| %s | %.1f | %" G_GUINT64_FORMAT " x2, %.2f | %" G_GUINT64_FORMAT
		       " x2, %.2f | %.1f | %.2fx |\n",
		       sizes[i], in.cpu * 1e3, m1.pages_sampled, ps512 * 1e3, m2.pages_sampled,
		       ps16k * 1e3, full * 1e3, full / in.cpu);
		fflush(stdout);
		double rd16 = read_cost(pid, in.mem, size, 16, READ_PREAD);
		double rd256 = read_cost(pid, in.mem, size, 256, READ_PREAD);
		double pvr256 = read_cost(pid, in.mem, size, 256, READ_PROCESS_VM);
		double hash16 = read_cost(pid, in.mem, size, 16, READ_PREAD_HASH);
		g_string_append_printf(floor,
				       "| %s | %.1f | %.1f (%.2fx) | %.1f (%.2fx) | %.1f (%.2fx) | "
				       "%.1f (%.2fx) | %.1f (%.2fx) |\n",
				       sizes[i], in.cpu * 1e3, rd16 * 1e3, rd16 / in.cpu,
				       rd256 * 1e3, rd256 / in.cpu, pvr256 * 1e3, pvr256 / in.cpu,
				       hash16 * 1e3, hash16 / in.cpu, full * 1e3, full / in.cpu);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		close(pidfd);
		close(p[0]);
	}
	if (only_full_scan)
		return 0;
	printf("\nThe floor under full-scan: CPU ms to read the child's memory once across "
	       "processes (chunks in a random order), and x the in-process hash.\n\n%s",
	       floor->str);
	return 0;
}
