/* dirtier: a test process that dirties exactly K distinct pages per second.
 *
 *   dirtier REGION_MIB TOUCH_MIB PAGES_PER_SEC [shared|grow|remap|file=PATH[,part=I/N]|exec=N]
 *
 * Maps REGION_MIB of anonymous memory (private, or a MAP_SHARED memfd with
 * "shared", or the first REGION_MIB of the file PATH shared, such as a VM's
 * memory-backend-file, so that the VM's RAM changes under it), makes the first TOUCH_MIB resident,
 * prints "ready" and then, every millisecond, writes a new counter value into the next pages of the
 * touched part, cycling through it in a fixed random order, so that at any
 * moment the pages written during the last second are exactly PAGES_PER_SEC
 * distinct pages (as long as that is no more than the touched pages), spread
 * over the region rather than in a front that a scan could chase.  The rest of the region is never
 * touched: it stays non-resident.  With "grow" the writes go instead to
 * pages never touched before, after the first TOUCH_MIB, so the process
 * grows by PAGES_PER_SEC resident pages a second (until the region is full).
 * With "remap" it also unmaps the second half of the touched part every
 * 50 ms and maps it again (fresh zero pages, touched anew): memory that goes
 * away under a measurement.  With file=PATH,part=I/N it touches the whole
 * TOUCH_MIB but writes only to the I-th of N equal parts of it (0-based):
 * N processes sharing one file, each writing its own part, dirty N times
 * PAGES_PER_SEC distinct pages of it a second.  With "exec=N" it prints
 * "ready", then execs itself N times in a row, each time as soon as its
 * region is touched (a new address space every few milliseconds, same pid),
 * and then dirties as usual.  With "order=address", "order=reverse" or
 * "order=stride" (optionally "order=stride:S") it cycles through the touched
 * part in that order instead of the random one: ascending addresses (a ring
 * buffer, a streaming copy, a log), descending, or every S-th page (16 by
 * default) from page 0, then every S-th from page 1, and so on (a walk down
 * the columns of a table).  Still exactly PAGES_PER_SEC distinct pages a
 * second.  Runs until killed.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: %s REGION_MIB TOUCH_MIB PAGES_PER_SEC [shared]\n", argv[0]);
		return 2;
	}
	size_t region = strtoull(argv[1], NULL, 10) << 20;
	size_t touch = strtoull(argv[2], NULL, 10) << 20;
	uint64_t rate = strtoull(argv[3], NULL, 10);
	int shared = argc > 4 && strcmp(argv[4], "shared") == 0;
	int grow = argc > 4 && strcmp(argv[4], "grow") == 0;
	int remap = argc > 4 && strcmp(argv[4], "remap") == 0;
	char *file = argc > 4 && strncmp(argv[4], "file=", 5) == 0 ? argv[4] + 5 : NULL;
	unsigned part = 0, parts = 1;
	char *comma = file ? strstr(file, ",part=") : NULL;
	if (comma) {
		if (sscanf(comma, ",part=%u/%u", &part, &parts) != 2 || parts == 0 ||
		    part >= parts)
			return 2;
		*comma = '\0';
	}
	const char *order_how =
		argc > 4 && strncmp(argv[4], "order=", 6) == 0 ? argv[4] + 6 : "random";
	long execs = argc > 4 && strncmp(argv[4], "exec=", 5) == 0 ? atol(argv[4] + 5) : -1;
	/* Set by an exec of our own: "ready" was said by the first. */
	int again = getenv("DIRTIER_EXECED") != NULL;
	size_t ps = (size_t)sysconf(_SC_PAGESIZE);
	char *mem;

	if (touch > region)
		return 2;
	if (file) {
		int fd = open(file, O_RDWR);
		if (fd < 0)
			return perror(file), 1;
		mem = mmap(NULL, region, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	} else if (shared) {
		int fd = memfd_create("dirtier", 0);
		if (fd < 0 || ftruncate(fd, (off_t)region) < 0)
			return perror("memfd"), 1;
		mem = mmap(NULL, region, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	} else {
		/* NORESERVE: a region far larger than memory is a reservation,
		 * as JVMs, Go and sanitizers make. */
		mem = mmap(NULL, region, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	}
	if (mem == MAP_FAILED)
		return perror("mmap"), 1;
	madvise(mem, region, MADV_NOHUGEPAGE);
	for (size_t off = 0; off < touch; off += ps)
		mem[off] = 1;

	size_t pages = touch / ps / parts;
	char *base = mem + (size_t)part * pages * ps; /* where its writes go */
	uint64_t counter = 1, written = 0, next = 0;
	/* The order: a Fisher-Yates shuffle with a fixed seed. */
	uint32_t *order = malloc((pages ? pages : 1) * sizeof(*order));
	uint64_t seed = 88172645463325252ull;
	for (size_t i = 0; i < pages; i++)
		order[i] = (uint32_t)i;
	if (strcmp(order_how, "reverse") == 0) {
		for (size_t i = 0; i < pages; i++)
			order[i] = (uint32_t)(pages - 1 - i);
	} else if (strncmp(order_how, "stride", 6) == 0) {
		size_t stride = order_how[6] == ':' ? strtoull(order_how + 7, NULL, 10) : 16, k = 0;
		if (stride == 0)
			return 2;
		for (size_t first = 0; first < stride && first < pages; first++)
			for (size_t i = first; i < pages; i += stride)
				order[k++] = (uint32_t)i;
	} else if (strcmp(order_how, "address") != 0 && strcmp(order_how, "random") != 0) {
		fprintf(stderr, "order: address, reverse, stride[:S] or random\n");
		return 2;
	}
	for (size_t i = pages; strcmp(order_how, "random") == 0 && i > 1; i--) {
		seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
		size_t j = seed % i;
		uint32_t t = order[i - 1];
		order[i - 1] = order[j];
		order[j] = t;
	}
	size_t fresh = pages, region_pages = region / ps;
	uint64_t start = now_ns();
	struct timespec tick;

	if (!again) {
		printf("ready\n");
		fflush(stdout);
	}
	if (execs > 0) {
		char arg[32];
		snprintf(arg, sizeof(arg), "exec=%ld", execs - 1);
		char *args[] = {argv[0], argv[1], argv[2], argv[3], arg, NULL};
		setenv("DIRTIER_EXECED", "1", 1);
		execv("/proc/self/exe", args);
		return perror("execv"), 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &tick);
	uint64_t last_remap = now_ns();
	for (;;) {
		if (remap && now_ns() - last_remap > 50000000u) {
			size_t half = (touch / 2 / ps) * ps;
			char *second = mem + (touch - half);
			munmap(second, half);
			if (mmap(second, half, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED)
				return perror("mmap"), 1;
			for (size_t off = 0; off < half; off += ps)
				second[off] = 1;
			last_remap = now_ns();
		}
		uint64_t due = (now_ns() - start) * rate / 1000000000u;
		for (; written < due && grow && fresh < region_pages; written++)
			*(volatile uint64_t *)(mem + fresh++ * ps + 64) = counter++;
		for (; written < due && !grow && pages; written++) {
			*(volatile uint64_t *)(base + (size_t)order[next] * ps + 64) = counter++;
			next = (next + 1) % pages;
		}
		tick.tv_nsec += 1000000; /* 1 ms steps */
		if (tick.tv_nsec >= 1000000000) {
			tick.tv_nsec -= 1000000000;
			tick.tv_sec++;
		}
		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &tick, NULL);
	}
}
