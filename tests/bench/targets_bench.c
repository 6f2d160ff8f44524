/* targets_bench: what tracking many processes costs the host.
 *
 *   targets_bench MOUNTPOINT DAEMON_PID COUNT SECONDS [MIB [active|asleep [SETTING...]]]
 *
 * Starts COUNT processes holding MIB (default 8) of private memory each,
 * idle (asleep), or with "active" each writing one page every 100 ms (so
 * that every window must be read: an idle process costs next to nothing), tracks every one through
 * MOUNTPOINT/track with the daemon's default settings, lets the daemon settle for one history's
 * worth of periods (10 s), then watches it for SECONDS: its CPU share (cores), resident memory and
 * thread count, how many periods' figures each target produced, and how old
 * the latest figure of each target is when read (worst case and median),
 * and how many pages a target's window drew (median of the latest samples),
 * in Markdown.  The processes are killed at the end and the targets
 * untracked.  SETTINGs (precision=1MiB/s, period=2...) go on every track
 * line.  Nothing is asserted.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

static long status_field(int pid, const char *key)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	char *s = slurp(path), *p = s ? strstr(s, key) : NULL;
	return p ? atol(p + strlen(key)) : -1;
}

/* The latest sample of a target: its seq and when its window ended (Unix ms). */
static int latest(const char *mnt, int pid, long *seq, double *end_ms)
{
	char path[300];
	snprintf(path, sizeof(path), "%s/%d/samples/latest", mnt, pid);
	char *s = slurp(path);
	if (!s)
		return -1;
	char *a = strstr(s, "seq "), *b = strstr(s, "start_ms "), *c = strstr(s, "period_ms ");
	if (!a || !b || !c)
		return -1;
	*seq = atol(a + 4);
	*end_ms = atof(b + 9) + atof(c + 10);
	return 0;
}

/* pages_sampled of a target's latest sample, or 0. */
static double pages_sampled(const char *mnt, int pid)
{
	char path[300];
	snprintf(path, sizeof(path), "%s/%d/samples/latest", mnt, pid);
	char *s = slurp(path), *p = s ? strstr(s, "pages_sampled ") : NULL;
	return p ? atof(p + 14) : 0;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	if (argc < 5) {
		fprintf(stderr,
			"usage: %s MOUNTPOINT DAEMON_PID COUNT SECONDS [MIB [active|asleep "
			"[SETTING...]]]\n",
			argv[0]);
		return 2;
	}
	const char *mnt = argv[1];
	int daemon = atoi(argv[2]), count = atoi(argv[3]);
	double seconds = atof(argv[4]);
	size_t mib = argc > 5 ? strtoul(argv[5], NULL, 10) : 8;
	int active = argc > 6 && strcmp(argv[6], "active") == 0;
	pid_t *kids = calloc((size_t)count, sizeof(pid_t));
	long *seq0 = calloc((size_t)count, sizeof(long));
	double *age = calloc((size_t)count, sizeof(double));
	char track[300], settings[256] = "";
	snprintf(track, sizeof(track), "%s/track", mnt);
	for (int a = 7; a < argc; a++) {
		strncat(settings, " ", sizeof(settings) - strlen(settings) - 1);
		strncat(settings, argv[a], sizeof(settings) - strlen(settings) - 1);
	}
	double *drawn = calloc((size_t)count, sizeof(double));

	long rss0 = status_field(daemon, "VmRSS:");
	for (int i = 0; i < count; i++) {
		int p[2];
		if (pipe(p) != 0)
			return perror("pipe"), 1;
		kids[i] = fork();
		if (kids[i] == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the bench */
			close(p[0]);
			char *m = mmap(NULL, mib << 20, PROT_READ | PROT_WRITE,
				       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			if (m == MAP_FAILED)
				_exit(1);
			for (size_t o = 0; o < mib << 20; o += 4096)
				m[o] = (char)o;
			if (write(p[1], "r", 1) != 1)
				_exit(1);
			for (size_t o = 0; active; o = (o + 4096) % (mib << 20)) {
				m[o]++;
				usleep(100000);
			}
			for (;;)
				pause();
		}
		close(p[1]); /* a child that dies ends the read */
		char c;
		if (kids[i] < 0 || read(p[0], &c, 1) != 1)
			return fprintf(stderr, "child %d failed\n", i), 1;
		close(p[0]);
		char line[300];
		snprintf(line, sizeof(line), "%d%s\n", (int)kids[i], settings);
		int r = put(track, line);
		if (r < 0)
			return fprintf(stderr, "track %d: %s\n", (int)kids[i], strerror(-r)), 1;
	}
	sleep(10);
	double c0 = cpu_of(daemon), t0 = clock_s(CLOCK_MONOTONIC);
	for (int i = 0; i < count; i++) {
		double end;
		if (latest(mnt, kids[i], &seq0[i], &end) < 0)
			seq0[i] = 0;
	}
	long threads_max = 0;
	for (double t = 0; t < seconds; t += 0.5) {
		struct timespec ts = {0, 500000000};
		nanosleep(&ts, NULL);
		long th = status_field(daemon, "Threads:");
		threads_max = th > threads_max ? th : threads_max;
	}
	double wall = clock_s(CLOCK_MONOTONIC) - t0, cpu = cpu_of(daemon) - c0;
	long rss = status_field(daemon, "VmRSS:");
	long min_new = -1, missing = 0;
	for (int i = 0; i < count; i++) {
		long seq;
		double end;
		if (latest(mnt, kids[i], &seq, &end) < 0) {
			missing++;
			age[i] = 1e9;
			continue;
		}
		age[i] = clock_s(CLOCK_REALTIME) * 1000 - end;
		drawn[i] = pages_sampled(mnt, kids[i]);
		long got = seq - seq0[i];
		min_new = min_new < 0 || got < min_new ? got : min_new;
	}
	qsort(age, (size_t)count, sizeof(double), cmp_d);
	qsort(drawn, (size_t)count, sizeof(double), cmp_d);
	printf("| targets | MiB each, doing | seconds watched | daemon CPU, cores | daemon RSS, "
	       "MiB | "
	       "threads (max) | fewest new figures per target | latest figure's age, median / "
	       "worst, s | targets without a figure | pages drawn per window (median) |\n");
	printf("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
	printf("| %d | %zu, %s%s | %.1f | %.3f | %.1f (%.1f before) | %ld | %ld | %.2f / %.2f | "
	       "%ld "
	       "| %.0f |\n",
	       count, mib, active ? "each writing a page every 100 ms" : "asleep", settings, wall,
	       cpu / wall, rss / 1024.0, rss0 / 1024.0, threads_max, min_new, age[count / 2] / 1000,
	       age[count - 1] / 1000, missing, drawn[count / 2]);
	char untrack[300];
	snprintf(untrack, sizeof(untrack), "%s/untrack", mnt);
	for (int i = 0; i < count; i++) {
		char line[32];
		kill(kids[i], SIGKILL);
		waitpid(kids[i], NULL, 0);
		snprintf(line, sizeof(line), "%d\n", (int)kids[i]);
		put(untrack, line);
	}
	return 0;
}
