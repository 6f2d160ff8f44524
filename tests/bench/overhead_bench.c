/* overhead_bench: what being measured costs the measured process.
 *
 *   overhead_bench MOUNTPOINT SECONDS [MIB]
 *
 * A child writes its MIB (default 1024) of private memory as fast as it
 * can, one whole page at a time in a fixed random order, and counts the
 * pages it wrote.  Its throughput is taken over SECONDS untracked, then
 * tracked through MOUNTPOINT with page-sampling (the default 512 pages per
 * GiB, and 16384), then with full-scan, then untracked again; each run
 * against the first.  Prints a Markdown table; nothing is asserted.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

/* The writer: pages written so far, in a shared counter. */
static void writer(size_t bytes, _Atomic uint64_t *count)
{
	size_t pages = bytes / 4096;
	char *mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint32_t *order = malloc(pages * sizeof(*order));
	if (mem == MAP_FAILED || !order)
		_exit(1);
	madvise(mem, bytes, MADV_NOHUGEPAGE);
	for (size_t i = 0; i < pages; i++)
		order[i] = (uint32_t)i;
	srand(1);
	for (size_t i = pages - 1; i > 0; i--) {
		size_t j = (size_t)rand() % (i + 1);
		uint32_t t = order[i];
		order[i] = order[j];
		order[j] = t;
	}
	for (uint64_t v = 1;; v++)
		for (size_t i = 0; i < pages; i++) {
			memset(mem + (size_t)order[i] * 4096, (int)v, 4096);
			atomic_fetch_add_explicit(count, 1, memory_order_relaxed);
		}
}

static double pages_per_s(_Atomic uint64_t *count, double seconds)
{
	uint64_t c0 = atomic_load(count);
	double t0 = clock_s(CLOCK_MONOTONIC);
	struct timespec ts = {(time_t)seconds, (long)((seconds - (time_t)seconds) * 1e9)};
	nanosleep(&ts, NULL);
	return (double)(atomic_load(count) - c0) / (clock_s(CLOCK_MONOTONIC) - t0);
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s MOUNTPOINT SECONDS [MIB]\n", argv[0]);
		return 2;
	}
	const char *mnt = argv[1];
	double seconds = atof(argv[2]);
	size_t mib = argc > 3 ? strtoul(argv[3], NULL, 10) : 1024;
	_Atomic uint64_t *count =
		mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	pid_t pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the bench */
		writer(mib << 20, count);
	}
	char line[64];
	snprintf(line, sizeof(line), "%d\n", (int)pid);
	/* The first pass faults the pages in: wait for it, not for ever. */
	for (double t0 = clock_s(CLOCK_MONOTONIC); atomic_load(count) < (mib << 20) / 4096;
	     usleep(10000))
		if (pid < 0 || waitpid(pid, NULL, WNOHANG) != 0 ||
		    clock_s(CLOCK_MONOTONIC) - t0 > 120) {
			fprintf(stderr, "the writer did not start\n");
			return 1;
		}

	struct {
		const char *what, *track, *mode, *sample_pages;
	} runs[] = {
		{"untracked", NULL, NULL, NULL},
		{"page-sampling, 512 pages/GiB", "track", "page-sampling", "512"},
		{"page-sampling, 16384 pages/GiB", NULL, NULL, "16384"},
		{"full-scan", NULL, "full-scan", NULL},
		{"untracked again", "untrack", NULL, NULL},
	};
	printf("| target (%zu MiB, writing whole pages) | MiB/s written | vs untracked |\n", mib);
	printf("| --- | ---: | ---: |\n");
	double base = 0;
	char dir[32];
	snprintf(dir, sizeof(dir), "%d/", (int)pid);
	for (size_t i = 0; i < sizeof(runs) / sizeof(runs[0]); i++) {
		int r = 0;
		char file[512];
		if (runs[i].track) {
			snprintf(file, sizeof(file), "%s/%s", mnt, runs[i].track);
			r = put(file, line);
		}
		if (r == 0 && runs[i].mode) {
			snprintf(file, sizeof(file), "%s/%smode", mnt, dir);
			r = put(file, runs[i].mode);
		}
		if (r == 0 && runs[i].sample_pages) {
			snprintf(file, sizeof(file), "%s/%ssample_pages", mnt, dir);
			r = put(file, runs[i].sample_pages);
		}
		if (r < 0) {
			fprintf(stderr, "%s: %s\n", runs[i].what, strerror(-r));
			kill(pid, SIGKILL);
			return 1;
		}
		pages_per_s(count, 1.0); /* let the change take hold */
		double pps = pages_per_s(count, seconds);
		if (i == 0)
			base = pps;
		printf("| %s | %.0f | %.3f |\n", runs[i].what, pps * 4096 / 1048576, pps / base);
		fflush(stdout);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return 0;
}
