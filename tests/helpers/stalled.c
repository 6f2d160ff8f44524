/* stalled: a test process whose memory is served by a userfaultfd handler
 * that never answers, as a stuck post-copy migration, a lazy restore whose
 * server died or a user-space pager that hung would leave it; or (live=)
 * one whose handler answers.
 *
 *   stalled REGION_MIB ZAP_PAGES_PER_SEC [file=PATH | live=WRITE_PAGES_PER_SEC]
 *
 * Maps REGION_MIB of private anonymous memory (no transparent huge pages),
 * writes every page of it (so that all of it is resident and not zero), and
 * registers it with userfaultfd for missing pages (UFFDIO_REGISTER_MODE_MISSING,
 * not UFFD_USER_MODE_ONLY: a fault taken by the kernel on another process's
 * behalf, as process_vm_readv's, must reach the handler too).  Nobody ever
 * answers a fault: any access to a page that is not resident waits for
 * ever (the uffd stays open until the process dies).  A thread of it
 * touches its pages, again and again, as a guest's vCPU or a restored
 * program would: it waits in handle_userfault from the first missing page it
 * meets, for ever (a page put back with DONTWAKE does not wake it).
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
 * With live=WRITE_PAGES_PER_SEC the handler answers, as a post-copy
 * migration's destination, CRIU's lazy pages or a garbage collector do: a
 * thread reads the faults and answers each with UFFDIO_COPY of the page's
 * contents (the same bytes it had: page i of the region holds
 * (i | 1) & 0xff), so the pages dropped and served again are not changed.
 * The region's first half is written, exactly WRITE_PAGES_PER_SEC distinct
 * pages a second (a counter in the page's first 8 bytes, pages taken in a
 * fixed random order, in steps of 1 ms: the truth a measurement is held
 * to); in the second half, ZAP_PAGES_PER_SEC pages a second are dropped
 * (MADV_DONTNEED) a batch of 64 at a time, left out 1 ms, and touched back
 * (faults the handler answers).  At most one batch is missing at a time: a
 * look at residency may count at most 64 pages a window as new.
 * Runs until killed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
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

/* Reads every page back, again and again: file= (each read of a dropped
 * page goes to the mount), and a never-answering handler's process (it
 * meets a missing page, where it waits for ever). */
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

static int uffd;

/* live=: answers every fault with the page's own contents. */
static void *handler(void *arg)
{
	char *page = arg;
	for (;;) {
		struct pollfd p = {.fd = uffd, .events = POLLIN};
		struct uffd_msg msg;
		if (poll(&p, 1, -1) < 0 && errno != EINTR)
			return NULL;
		if (read(uffd, &msg, sizeof(msg)) != (ssize_t)sizeof(msg))
			continue; /* EAGAIN: woken for nothing */
		if (msg.event != UFFD_EVENT_PAGEFAULT)
			continue;
		uintptr_t at = (uintptr_t)msg.arg.pagefault.address & ~(uintptr_t)(ps - 1);
		memset(page, (int)(((at - (uintptr_t)mem) / ps) | 1), ps);
		struct uffdio_copy copy = {.dst = at, .src = (uintptr_t)page, .len = ps};
		if (ioctl(uffd, UFFDIO_COPY, &copy) != 0 && errno != EEXIST)
			return perror("UFFDIO_COPY"), NULL;
	}
}

static uint64_t write_rate;

/* live=: exactly write_rate distinct pages a second in the first half. */
static void *writer(void *arg)
{
	const size_t *order = arg;
	const size_t half = region / ps / 2;
	uint64_t start = now_ns(), done = 0;
	for (;; usleep(1000)) {
		uint64_t due = (now_ns() - start) / 1000 * write_rate / 1000000;
		for (; done < due; done++)
			(*(volatile uint64_t *)(mem + order[done % half] * ps))++;
	}
	return NULL;
}

/* 0..n-1 in a random order (Fisher-Yates, rand()), or NULL. */
static size_t *permutation(size_t n)
{
	size_t *v = malloc(n * sizeof(*v));
	if (!v)
		return NULL;
	for (size_t i = 0; i < n; i++)
		v[i] = i;
	for (size_t i = n - 1; i > 0; i--) {
		size_t j = (size_t)rand() % (i + 1), x = v[i];
		v[i] = v[j];
		v[j] = x;
	}
	return v;
}

/* live=: drops batches of the second half and touches them back. */
static int live(uint64_t rate)
{
	const size_t half = region / ps / 2, batches = half / BATCH;
	size_t *worder = permutation(half);
	char *page = malloc(ps);
	pthread_t t;
	if (!worder || !page)
		return 1;
	if (pthread_create(&t, NULL, handler, page) != 0 ||
	    pthread_create(&t, NULL, writer, worder) != 0)
		return 1;
	printf("ready\n");
	fflush(stdout);
	uint64_t start = now_ns(), dropped = 0;
	for (unsigned sum = 0;; usleep(1000)) {
		uint64_t due = (now_ns() - start) / 1000 * rate / 1000000 / BATCH;
		for (; dropped < due; dropped++) {
			char *at = mem + (half + (size_t)rand() % batches * BATCH) * ps;
			madvise(at, BATCH * ps, MADV_DONTNEED);
			usleep(1000);
			for (size_t i = 0; i < BATCH * ps; i += ps)
				sum += ((volatile char *)at)[i];
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
	const char *answer = argc > 3 && strncmp(argv[3], "live=", 5) == 0 ? argv[3] + 5 : NULL;
	size_t batches = region / ps / BATCH;
	if (batches < 4) {
		fprintf(stderr, "stalled: REGION_MIB too small\n");
		return 2;
	}
	/* The order batches are dropped in: a fixed random permutation. */
	srand(12345);
	size_t *order = permutation(batches);
	char *fresh = malloc(BATCH * ps);
	if (!order || !fresh)
		return 1;
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

	uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (uffd < 0)
		return unsupported("userfaultfd");
	struct uffdio_api api = {.api = UFFD_API};
	if (ioctl(uffd, UFFDIO_API, &api) != 0)
		return unsupported("UFFDIO_API");
	struct uffdio_register reg = {.range = {(uintptr_t)mem, region},
				      .mode = UFFDIO_REGISTER_MODE_MISSING};
	if (ioctl(uffd, UFFDIO_REGISTER, &reg) != 0)
		return unsupported("UFFDIO_REGISTER");

	if (answer) {
		write_rate = strtoull(answer, NULL, 10);
		return live(rate);
	}

	const size_t missing = batches / 4; /* batches missing at any moment */

	if (rate == 0)
		madvise(mem + (batches - missing) * BATCH * ps, missing * BATCH * ps,
			MADV_DONTNEED);
	pthread_t t;
	if (pthread_create(&t, NULL, toucher, NULL) != 0)
		return 1;
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
