/* read_bench: how long a reader waits for a small file, and how many reads a
 * second a daemon serves.  Each read is what `cat` does: open, read until
 * end of file (so two read calls), close.
 *
 *   read_bench latency N LABEL=PATH...
 *	N reads of each path, interleaved in 20 rounds so that all paths see
 *	the same machine; prints a Markdown table of median, p99 and mean in
 *	microseconds, and each median against the paths labelled "floor_hl"
 *	(the FUSE floor: a static file of libfuse's high-level API, as most
 *	FUSE file systems are written), "floor" (the same file through the
 *	low-level API memstatfs uses), "floor_dio" (that file read with
 *	direct_io) and "lxcfs", when present.
 *
 *   read_bench throughput SECONDS THREADS[,THREADS...] LABEL=PID:PATH...
 *	For each thread count, that many threads read PATH in a loop for
 *	SECONDS; prints reads per second and the CPU time the daemon PID
 *	used meanwhile, in cores (1.00 = one core busy).
 *
 * Nothing is asserted: a failed read stops the benchmark with its errno.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#define ROUNDS 20

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* One read as cat does it; the bytes read, or -errno. */
static long cat_once(const char *path)
{
	char buf[4096];
	long total = 0;
	ssize_t n;
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		return -errno;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		total += n;
	if (n < 0)
		total = -errno;
	close(fd);
	return total;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

typedef struct {
	const char *label, *path;
	uint64_t *ns;
	double median, p99, mean;
} series;

static int split(const char *arg, const char **label, const char **rest)
{
	const char *eq = strchr(arg, '=');
	if (!eq)
		return -1;
	*label = strndup(arg, (size_t)(eq - arg));
	*rest = eq + 1;
	return 0;
}

static int latency(long n, int count, char **args)
{
	series *s = calloc((size_t)count, sizeof(*s));
	long per_round = n / ROUNDS;

	for (int i = 0; i < count; i++) {
		if (split(args[i], &s[i].label, &s[i].path) < 0)
			return fprintf(stderr, "not LABEL=PATH: %s\n", args[i]), 2;
		s[i].ns = calloc((size_t)(per_round * ROUNDS), sizeof(uint64_t));
		for (int w = 0; w < 200; w++) /* warm the caches */
			if (cat_once(s[i].path) < 0)
				return fprintf(stderr, "%s: %s\n", s[i].path, strerror(errno)), 1;
	}
	for (int r = 0; r < ROUNDS; r++)
		for (int i = 0; i < count; i++)
			for (long k = 0; k < per_round; k++) {
				uint64_t t0 = now_ns();
				long got = cat_once(s[i].path);
				uint64_t t1 = now_ns();
				if (got < 0) {
					fprintf(stderr, "%s: %s\n", s[i].path, strerror((int)-got));
					return 1;
				}
				s[i].ns[r * per_round + k] = t1 - t0;
			}
	double floor_hl = 0, floor = 0, floor_dio = 0, lxcfs = 0;
	long total = per_round * ROUNDS;
	for (int i = 0; i < count; i++) {
		double sum = 0;
		qsort(s[i].ns, (size_t)total, sizeof(uint64_t), cmp_u64);
		for (long k = 0; k < total; k++)
			sum += (double)s[i].ns[k];
		s[i].median = s[i].ns[total / 2] / 1e3;
		s[i].p99 = s[i].ns[total * 99 / 100] / 1e3;
		s[i].mean = sum / total / 1e3;
		if (strcmp(s[i].label, "floor_hl") == 0)
			floor_hl = s[i].median;
		if (strcmp(s[i].label, "floor") == 0)
			floor = s[i].median;
		if (strcmp(s[i].label, "floor_dio") == 0)
			floor_dio = s[i].median;
		if (strcmp(s[i].label, "lxcfs") == 0)
			lxcfs = s[i].median;
	}
	printf("| file | reads | median us | p99 us | mean us | median / FUSE floor | median / "
	       "low-level floor | median / direct_io floor | LXCFS / median |\n");
	printf("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
	for (int i = 0; i < count; i++) {
		printf("| %s (`%s`) | %ld | %.1f | %.1f | %.1f | ", s[i].label, s[i].path, total,
		       s[i].median, s[i].p99, s[i].mean);
		if (floor_hl > 0)
			printf("%.2fx | ", s[i].median / floor_hl);
		else
			printf("- | ");
		if (floor > 0)
			printf("%.2fx | ", s[i].median / floor);
		else
			printf("- | ");
		if (floor_dio > 0)
			printf("%.2fx | ", s[i].median / floor_dio);
		else
			printf("- | ");
		if (lxcfs > 0)
			printf("%.2fx |\n", lxcfs / s[i].median);
		else
			printf("- |\n");
	}
	return 0;
}

/* ---- throughput ---- */

static atomic_long reads;
static atomic_int stop, failed;

static void *reader(void *arg)
{
	const char *path = arg;
	while (!atomic_load(&stop)) {
		long r = cat_once(path);
		if (r < 0) {
			atomic_store(&failed, (int)-r);
			break;
		}
		atomic_fetch_add(&reads, 1);
	}
	return NULL;
}

static int throughput(double seconds, const char *threads_list, int count, char **args)
{
	printf("| file | readers | reads/s | daemon CPU, cores | daemon CPU per read, us |\n");
	printf("| --- | ---: | ---: | ---: | ---: |\n");
	for (int i = 0; i < count; i++) {
		const char *label, *rest;
		if (split(args[i], &label, &rest) < 0 || !strchr(rest, ':'))
			return fprintf(stderr, "not LABEL=PID:PATH: %s\n", args[i]), 2;
		int pid = atoi(rest);
		const char *path = strchr(rest, ':') + 1;
		char *list = strdup(threads_list), *save = NULL;
		for (char *tok = strtok_r(list, ",", &save); tok;
		     tok = strtok_r(NULL, ",", &save)) {
			int nt = atoi(tok);
			pthread_t *th = calloc((size_t)nt, sizeof(*th));
			atomic_store(&reads, 0);
			atomic_store(&stop, 0);
			double c0 = cpu_of(pid);
			uint64_t t0 = now_ns();
			for (int k = 0; k < nt; k++)
				pthread_create(&th[k], NULL, reader, (void *)path);
			struct timespec ts = {(time_t)seconds,
					      (long)((seconds - (time_t)seconds) * 1e9)};
			nanosleep(&ts, NULL);
			atomic_store(&stop, 1);
			for (int k = 0; k < nt; k++)
				pthread_join(th[k], NULL);
			double wall = (now_ns() - t0) / 1e9, cpu = cpu_of(pid) - c0;
			free(th);
			if (atomic_load(&failed))
				return fprintf(stderr, "%s: %s\n", path,
					       strerror(atomic_load(&failed))),
				       1;
			double rps = atomic_load(&reads) / wall;
			printf("| %s | %d | %.0f | %.2f | %.1f |\n", label, nt, rps, cpu / wall,
			       rps > 0 ? cpu / wall / rps * 1e6 : 0);
			fflush(stdout);
		}
		free(list);
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 4 && strcmp(argv[1], "latency") == 0)
		return latency(atol(argv[2]), argc - 3, argv + 3);
	if (argc >= 5 && strcmp(argv[1], "throughput") == 0)
		return throughput(atof(argv[2]), argv[3], argc - 4, argv + 4);
	fprintf(stderr,
		"usage: %s latency N LABEL=PATH...\n"
		"       %s throughput SECONDS THREADS[,THREADS...] LABEL=PID:PATH...\n",
		argv[0], argv[0]);
	return 2;
}
