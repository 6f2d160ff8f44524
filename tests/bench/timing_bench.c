/* timing_bench: the figure against the truth, by the order a writer walks
 * its memory, at sizes where a look takes a large part of the period.
 *
 *   timing_bench MOUNTPOINT DIRTIER SAMPLES MIB:PAGES_PER_SEC...
 *
 * For each size and rate, for each order (address, reverse, strided,
 * random), starts the dirtier (exactly PAGES_PER_SEC distinct pages a
 * second over MIB resident) and measures it through MOUNTPOINT with
 * full-scan and with page-sampling at 16384 pages per GiB, one after the
 * other, for SAMPLES samples each (after the first, which may predate the
 * settings).  Prints one Markdown row per case: the truth, the samples'
 * range and mean, the mean half-width of their 95% intervals, how many
 * intervals missed the truth, how many samples said `exact 1`, the
 * shortest period_ms and the least coverage.  Nothing is asserted.
 *
 * With TIMING_CGROUP set to a cgroup v2 mount point, the address and random
 * orders run again with the dirtier alone in a new cgroup under it, tracked
 * by its path (a container: the union of its members' frames).
 */
#define _GNU_SOURCE
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

static double field(const char *text, const char *key)
{
	char k[64];
	snprintf(k, sizeof(k), "\n%s ", key);
	const char *p = strstr(text, k);
	return p ? atof(p + strlen(k)) : NAN;
}

/* The dirtier, first moved into the cgroup directory cg (or NULL). */
static pid_t dirtier(const char *bin, unsigned mib, unsigned pps, const char *order, const char *cg)
{
	int p[2];
	if (pipe(p) != 0)
		exit(1);
	pid_t pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (cg) {
			char procs[512], me[16];
			snprintf(procs, sizeof(procs), "%s/cgroup.procs", cg);
			snprintf(me, sizeof(me), "%d", (int)getpid());
			if (put(procs, me) < 0)
				_exit(126);
		}
		dup2(p[1], 1);
		char a[3][16], how[32];
		snprintf(a[0], 16, "%u", mib);
		snprintf(a[1], 16, "%u", mib);
		snprintf(a[2], 16, "%u", pps);
		snprintf(how, sizeof(how), "order=%s", order);
		execl(bin, bin, a[0], a[1], a[2], how, (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	char buf[8] = {0};
	if (read(p[0], buf, 5) != 5 || strncmp(buf, "ready", 5) != 0) {
		fprintf(stderr, "timing_bench: the dirtier did not start\n");
		exit(1);
	}
	close(p[0]);
	return pid;
}

/* Waits for sample seq of the target name (up to 60 s): its text. */
static char *sample(const char *mnt, const char *name, long seq)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s/samples/%ld", mnt, name, seq);
	for (int i = 0; i < 600; i++) {
		char *t = slurp(path);
		if (t)
			return t;
		usleep(100000);
	}
	fprintf(stderr, "timing_bench: no sample %ld of %s\n", seq, name);
	exit(1);
}

/* One case: a process, or (cgroot not NULL) a container of that process. */
static void one(const char *mnt, const char *bin, unsigned mib, unsigned pps, const char *order,
		const char *mode, int samples, const char *cgroot)
{
	char cg[512] = "", name[64], path[512], line[640];
	if (cgroot) {
		snprintf(cg, sizeof(cg), "%s/memstat-bench-%d", cgroot, (int)getpid());
		if (mkdir(cg, 0755) != 0) {
			perror(cg);
			exit(1);
		}
	}
	pid_t pid = dirtier(bin, mib, pps, order, cgroot ? cg : NULL);
	snprintf(path, sizeof(path), "%s/track", mnt);
	if (cgroot) {
		snprintf(name, sizeof(name), "bench-cg");
		snprintf(line, sizeof(line), "%s name=%s mode=%s sample_pages=16384\n", cg, name,
			 mode);
	} else {
		snprintf(name, sizeof(name), "%d", (int)pid);
		snprintf(line, sizeof(line), "%d mode=%s sample_pages=16384\n", (int)pid, mode);
	}
	if (put(path, line) < 0) {
		fprintf(stderr, "timing_bench: track %s failed\n", line);
		exit(1);
	}
	double truth = pps * 4096.0 / 1048576.0, lo_r = INFINITY, hi_r = 0, sum = 0, half = 0,
	       cov = 1, ms_min = INFINITY;
	int misses = 0, exact = 0;
	for (long seq = 2; seq < 2 + samples; seq++) {
		char *t = sample(mnt, name, seq);
		double r = field(t, "rate"), lo = field(t, "rate_ci95_low"),
		       hi = field(t, "rate_ci95_high");
		lo_r = fmin(lo_r, r);
		hi_r = fmax(hi_r, r);
		sum += r;
		half += (hi - lo) / 2;
		misses += truth < lo || truth > hi;
		exact += field(t, "exact") == 1;
		cov = fmin(cov, field(t, "coverage"));
		ms_min = fmin(ms_min, field(t, "period_ms"));
	}
	printf("| %u | %s | %s | %s | %.2f | %.2f .. %.2f | %.2f | %.2f | %d | %d | %.0f | %.2f "
	       "|\n",
	       mib, cgroot ? "container" : "process", order, mode, truth, lo_r, hi_r, sum / samples,
	       half / samples, misses, exact, ms_min, cov);
	fflush(stdout);
	snprintf(path, sizeof(path), "%s/untrack", mnt);
	snprintf(line, sizeof(line), "%s\n", name);
	put(path, line);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	/* A cgroup is removable once its processes are reaped. */
	for (int i = 0; cgroot && i < 100 && rmdir(cg) != 0; i++)
		usleep(20000);
}

int main(int argc, char **argv)
{
	if (argc < 5) {
		fprintf(stderr, "usage: %s MOUNTPOINT DIRTIER SAMPLES MIB:PAGES_PER_SEC...\n",
			argv[0]);
		return 2;
	}
	const char *orders[] = {"address", "reverse", "stride", "random"};
	const char *modes[] = {"full-scan", "page-sampling"};
	int samples = atoi(argv[3]);
	const char *cgroot = getenv("TIMING_CGROUP");
	if (cgroot && !*cgroot)
		cgroot = NULL;
	printf("| MiB | target | writer's order | mode | truth MiB/s | samples | mean | mean 95%% "
	       "half-width | missed | exact 1 | least period_ms | least coverage |\n");
	printf("| ---: | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
	       "|\n");
	for (int i = 4; i < argc; i++) {
		unsigned mib = 0, pps = 0;
		if (sscanf(argv[i], "%u:%u", &mib, &pps) != 2)
			return 2;
		for (size_t o = 0; o < 4; o++)
			for (size_t m = 0; m < 2; m++)
				one(argv[1], argv[2], mib, pps, orders[o], modes[m], samples, NULL);
		/* Address order (the one a look could follow) and random. */
		for (size_t o = 0; cgroot && o < 4; o += 3)
			for (size_t m = 0; m < 2; m++)
				one(argv[1], argv[2], mib, pps, orders[o], modes[m], samples,
				    cgroot);
	}
	return 0;
}
