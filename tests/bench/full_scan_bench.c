/* full_scan_bench: the cost of one full-scan measurement, against hashing
 * the same memory inside the process that owns it (the limit a scan from
 * outside can approach).
 *
 *   full_scan_bench [GIB...]      (default: 1 4 16)
 *
 * For each size, a child process makes GIB of private memory resident,
 * hashes all of it once itself (XXH3, one pass) and reports its CPU and wall
 * time; then this process runs the full-scan collector on the child: one
 * measurement is two passes over every resident page (open and close of a
 * window), timed here per pass.  Prints a table; nothing is asserted.
 */
#define _GNU_SOURCE
#include <glib.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "memstat/collector.h"

static double clock_s(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

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
	pause();
	_exit(0);
}

int main(int argc, char **argv)
{
	const char *defaults[] = {"1", "4", "16"};
	int n = argc > 1 ? argc - 1 : 3;
	const char **sizes = argc > 1 ? (const char **)argv + 1 : defaults;

	printf("%-6s | %-26s | %-38s | %s\n", "GiB", "in-process hash (1 pass)",
	       "full-scan, per pass: CPU / wall", "scan CPU vs in-process");
	printf("%-6s | %-12s %-13s | %-12s %-12s %-12s | %s\n", "", "CPU s", "GiB/s/core", "CPU s",
	       "wall s", "GiB/s/core", "");
	for (int i = 0; i < n; i++) {
		double gib = atof(sizes[i]);
		size_t size = (size_t)(gib * 1073741824.0);
		int p[2];
		if (pipe(p) != 0)
			return 1;
		pid_t pid = fork();
		if (pid == 0)
			child(size, p[1]);
		cost in = {0};
		if (read(p[0], &in, sizeof(in)) != sizeof(in)) {
			fprintf(stderr, "child failed for %s GiB\n", sizes[i]);
			return 1;
		}
		ms_proc_id id = {.pid = pid, .pidfd = pidfd_open(pid, 0)};
		int err = 0;
		char *why = NULL;
		void *st = ms_full_scan.open(&id, &err, &why);
		if (!st) {
			fprintf(stderr, "full-scan: %s\n", why);
			return 1;
		}
		ms_params params = {.period_ms = 1000, .sample_pages = 512};
		ms_measurement m;
		cost pass[3];
		for (int k = 0; k < 3; k++) { /* open; close+open; close+open */
			pass[k].cpu = -clock_s(CLOCK_THREAD_CPUTIME_ID);
			pass[k].wall = -clock_s(CLOCK_MONOTONIC);
			if (ms_full_scan.step(st, &params, &m, &why) < 0) {
				fprintf(stderr, "full-scan step: %s\n", why);
				return 1;
			}
			pass[k].cpu += clock_s(CLOCK_THREAD_CPUTIME_ID);
			pass[k].wall += clock_s(CLOCK_MONOTONIC);
		}
		/* Steps 2 and 3 each close a window and open one: two passes. */
		double cpu = (pass[1].cpu + pass[2].cpu) / 4,
		       wall = (pass[1].wall + pass[2].wall) / 4;
		printf("%-6s | %-12.3f %-13.2f | %-12.3f %-12.3f %-12.2f | %.2fx "
		       "(%" G_GUINT64_FORMAT " pages, %" G_GUINT64_FORMAT " dirty)\n",
		       sizes[i], in.cpu, gib / in.cpu, cpu, wall, gib / cpu, cpu / in.cpu,
		       m.pages_population, m.pages_dirty);
		fflush(stdout);
		ms_full_scan.close(st);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		close(id.pidfd);
		close(p[0]);
		close(p[1]);
	}
	return 0;
}
