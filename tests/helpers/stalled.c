/* stalled: a test process whose memory is served by a userfaultfd handler
 * that never answers, as a stuck post-copy migration, a lazy restore whose
 * server died or a user-space pager that hung would leave it.
 *
 *   stalled REGION_MIB ZAP_PAGES_PER_SEC [file=PATH]
 *
 * Maps REGION_MIB of private anonymous memory (no transparent huge pages),
 * writes every page of it (so that all of it is resident and not zero), and
 * registers it with userfaultfd for missing pages (UFFDIO_REGISTER_MODE_MISSING,
 * not UFFD_USER_MODE_ONLY: a fault taken by the kernel on another process's
 * behalf, as process_vm_readv's, must reach the handler too).  Nobody ever
 * answers a fault: any access to a page that is not resident waits for
 * ever (the uffd stays open until the process dies).
 *
 * It prints "ready" and then, ZAP_PAGES_PER_SEC pages a second in batches of
 * 64 contiguous pages taken in a fixed random order, drops pages
 * (MADV_DONTNEED) and puts back, with fresh contents, the batch dropped a
 * quarter of the region earlier (UFFDIO_COPY with DONTWAKE: that answers no
 * fault).  So about a quarter of the region is missing at any moment, and a
 * page found resident may be gone a moment later: a reader from outside that
 * looked at the residency first meets the handler between its look and its
 * read.  With ZAP_PAGES_PER_SEC 0 it drops the last quarter once and stays
 * so.  Prints "unsupported: REASON" and exits 77 where the kernel refuses
 * userfaultfd (not root, vm.unprivileged_userfaultfd 0, seccomp).
 *
 * With file=PATH it maps the first REGION_MIB of the file PATH instead
 * (private, writable, only read: its pages are the file's page cache), as a
 * file on a mount whose server may stop answering (tests/helpers/hungfs.c):
 * one thread drops batches as above and evicts them from the page cache
 * (POSIX_FADV_DONTNEED), another reads them back, again and again; once the
 * server stops answering that one waits, and a page dropped after a reader
 * from outside found it resident must be read from the server.
 * Runs until killed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64 /* pages */

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int unsupported(const char *what)
{
	printf("unsupported: %s: %s\n", what, strerror(errno));
	fflush(stdout);
	return 77;
}

static char *mem;
static size_t region, ps;

/* file=: reads every page back, again and again. */
static void *toucher(void *arg)
{
	(void)arg;
	for (unsigned sum = 0;; usleep(1000))
		for (size_t i = 0; i < region; i += ps)
			sum += ((volatile char *)mem)[i];
	return NULL;
}

/* file=: drops and evicts rate pages a second, in batches. */
static int file_zapper(int fd, const size_t *order, size_t batches, uint64_t rate)
{
	pthread_t t;
	if (pthread_create(&t, NULL, toucher, NULL) != 0)
		return 1;
	printf("ready\n");
	fflush(stdout);
	uint64_t start = now_ns(), dropped = 0;
	for (;; usleep(1000)) {
		uint64_t due = (now_ns() - start) / 1000 * rate / 1000000 / BATCH;
		for (; dropped < due; dropped++) {
			size_t at = order[dropped % batches] * BATCH * ps;
			madvise(mem + at, BATCH * ps, MADV_DONTNEED);
			posix_fadvise(fd, (off_t)at, (off_t)(BATCH * ps), POSIX_FADV_DONTNEED);
		}
	}
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s REGION_MIB ZAP_PAGES_PER_SEC\n", argv[0]);
		return 2;
	}
	ps = (size_t)sysconf(_SC_PAGESIZE);
	region = strtoull(argv[1], NULL, 10) << 20;
	uint64_t rate = strtoull(argv[2], NULL, 10);
	const char *file = argc > 3 && strncmp(argv[3], "file=", 5) == 0 ? argv[3] + 5 : NULL;
	size_t batches = region / ps / BATCH;
	if (batches < 4) {
		fprintf(stderr, "stalled: REGION_MIB too small\n");
		return 2;
	}
	/* The order batches are dropped in: a fixed random permutation. */
	size_t *order = malloc(batches * sizeof(*order));
	char *fresh = malloc(BATCH * ps);
	if (!order || !fresh)
		return 1;
	srand(12345);
	for (size_t i = 0; i < batches; i++)
		order[i] = i;
	for (size_t i = batches - 1; i > 0; i--) {
		size_t j = (size_t)rand() % (i + 1), t = order[i];
		order[i] = order[j];
		order[j] = t;
	}
	if (file) {
		int fd = open(file, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return perror(file), 1;
		mem = mmap(NULL, region, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
		if (mem == MAP_FAILED)
			return perror("mmap"), 1;
		for (size_t i = 0; i < region; i += ps)
			(void)((volatile char *)mem)[i];
		return file_zapper(fd, order, batches, rate);
	}
	mem = mmap(NULL, region, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return perror("mmap"), 1;
	madvise(mem, region, MADV_NOHUGEPAGE);
	for (size_t i = 0; i < region; i += ps)
		memset(mem + i, (int)(i / ps) | 1, ps);

	int uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (uffd < 0)
		return unsupported("userfaultfd");
	struct uffdio_api api = {.api = UFFD_API};
	if (ioctl(uffd, UFFDIO_API, &api) != 0)
		return unsupported("UFFDIO_API");
	struct uffdio_register reg = {.range = {(uintptr_t)mem, region},
				      .mode = UFFDIO_REGISTER_MODE_MISSING};
	if (ioctl(uffd, UFFDIO_REGISTER, &reg) != 0)
		return unsupported("UFFDIO_REGISTER");

	const size_t missing = batches / 4; /* batches missing at any moment */

	if (rate == 0)
		madvise(mem + (batches - missing) * BATCH * ps, missing * BATCH * ps,
			MADV_DONTNEED);
	printf("ready\n");
	fflush(stdout);
	if (rate == 0)
		for (;;)
			pause();

	uint64_t start = now_ns(), dropped = 0; /* batches dropped so far */
	for (uint64_t gen = 1;; gen++) {
		uint64_t due = (now_ns() - start) / 1000 * rate / 1000000 / BATCH;
		for (; dropped < due; dropped++) {
			char *at = mem + order[dropped % batches] * BATCH * ps;
			madvise(at, BATCH * ps, MADV_DONTNEED);
			if (dropped < missing)
				continue;
			/* Put back the batch dropped `missing` batches ago. */
			char *back = mem + order[(dropped - missing) % batches] * BATCH * ps;
			memset(fresh, (int)gen, BATCH * ps);
			struct uffdio_copy copy = {.dst = (uintptr_t)back,
						   .src = (uintptr_t)fresh,
						   .len = BATCH * ps,
						   .mode = UFFDIO_COPY_MODE_DONTWAKE};
			if (ioctl(uffd, UFFDIO_COPY, &copy) != 0 && errno != EEXIST)
				return perror("UFFDIO_COPY"), 1;
		}
		usleep(1000);
	}
}
