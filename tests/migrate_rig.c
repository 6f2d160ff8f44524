/* migrate_rig.c: see migrate_rig.h.
 *
 * Threads: the caller's, and one pacer per running case, which writes only
 * the mailbox's target word and reads its own atomic stop flag. */
#define _GNU_SOURCE
#include "migrate_rig.h"

#include <errno.h>
#include <fcntl.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGE	    4096u
#define MAILBOX	    0x400000u
#define GUEST_MAGIC 0x6d656d73u
enum { MB_MAGIC, MB_START, MB_PAGES, MB_TARGET, MB_DONE };
/* Pages the guest dirties besides its pattern: the mailbox (it publishes
 * its count there) and its stack. */
#define GUEST_OWN_PAGES 2
/* Other RAM blocks QEMU migrates besides the guest's RAM: pc.bios, 256 KiB
 * of firmware (the ACPI blobs and option ROMs here are nearly all zero). */
#define OTHER_BLOCK_PAGES 64

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void fail(char *err, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
}

/* ---- the matrix ---- */

#define MIB 1048576.0
const mig_case mig_matrix[MIG_MATRIX] = {
	{"uniform-24M-20ms", MIG_UNIFORM, MIG_REGION_PAGES, 12288, 24 * MIB, 20},
	{"uniform-24M-1000ms", MIG_UNIFORM, MIG_REGION_PAGES, 12288, 24 * MIB, 1000},
	{"uniform-96M-20ms", MIG_UNIFORM, MIG_REGION_PAGES, 12288, 96 * MIB, 20},
	{"uniform-96M-1000ms", MIG_UNIFORM, MIG_REGION_PAGES, 12288, 96 * MIB, 1000},
	{"hot-24M-20ms", MIG_HOT, 1024, 40960, 24 * MIB, 20},
	{"hot-24M-1000ms", MIG_HOT, 1024, 40960, 24 * MIB, 1000},
	{"hot-96M-20ms", MIG_HOT, 1024, 40960, 96 * MIB, 20},
	{"hot-96M-1000ms", MIG_HOT, 1024, 40960, 96 * MIB, 1000},
};

const mig_case *mig_case_named(const char *name)
{
	for (int i = 0; i < MIG_MATRIX; i++)
		if (strcmp(mig_matrix[i].name, name) == 0)
			return &mig_matrix[i];
	return NULL;
}

/* ---- the curve and the forecast ---- */

size_t mig_curve(const mig_case *c, ms_growth_point *p, size_t max)
{
	const double v = c->pages_per_sec, u = c->cycle_pages, knee = u / v;
	size_t n = 0;
	/* 0.05 s doubling to 204.8 s, and the knee where the cycle is done. */
	for (int k = 0; k <= 12 && n < max; k++) {
		double t = 0.05 * (1 << k);
		if (knee < t * 0.999 && (n == 0 || knee > p[n - 1].t_s * 1.001) && n + 1 < max)
			p[n++].t_s = knee;
		p[n++].t_s = t;
	}
	for (size_t i = 0; i < n; i++) {
		double t = p[i].t_s;
		/* The target moves every millisecond or so, and the pacer's
		 * sleeps run late: a window may hold up to 2 ms more writes, or
		 * 2% fewer when the guest lags. */
		p[i].pages = fmin(v * t, u) + GUEST_OWN_PAGES;
		p[i].ci95_low = fmin(v * t * 0.98, u) + GUEST_OWN_PAGES;
		p[i].ci95_high = fmin(v * (t + 0.002) * 1.02, u) + GUEST_OWN_PAGES;
	}
	return n;
}

int mig_forecast(const mig_case *c, unsigned long nonzero_pages, double link, double cancel_s,
		 ms_precopy_forecast *f, const char **why)
{
	ms_growth_point points[32];
	size_t n = mig_curve(c, points, 32);
	ms_precopy_input in = {
		.curve = points,
		.n = n,
		.memory_bytes = (uint64_t)(nonzero_pages + OTHER_BLOCK_PAGES) * PAGE,
		.page_size = PAGE,
		.bandwidth = c->bandwidth,
		.downtime_ms = c->downtime_ms,
		.link_bandwidth = link,
		.max_total_s = cancel_s,
	};
	return ms_precopy_forecast_compute(&in, f, why);
}

bool mig_far_from_boundary(const mig_case *c, const ms_precopy_forecast *f, double factor)
{
	const ms_precopy_run *lo = &f->run[MS_GROWTH_LOW], *hi = &f->run[MS_GROWTH_HIGH];
	switch (f->verdict) {
	case MS_PRECOPY_CONVERGES:
		return c->bandwidth >= factor * hi->min_bandwidth &&
		       c->downtime_ms >= factor * hi->min_downtime_ms;
	case MS_PRECOPY_DOES_NOT_CONVERGE:
		return c->bandwidth * factor <= lo->min_bandwidth &&
		       c->downtime_ms * factor <= lo->min_downtime_ms;
	default:
		return false;
	}
}

/* ---- QEMU and QMP ---- */

typedef struct {
	pid_t pid;
	char sock[200];
	char log[200];
} qemu_t;

static void qemu_kill(qemu_t *q)
{
	if (q->pid > 0) {
		kill(q->pid, SIGKILL);
		waitpid(q->pid, NULL, 0);
		q->pid = 0;
	}
	unlink(q->sock);
}

static bool connectable(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path))
		return false;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ok;
}

/* Starts QEMU with the rig's machine and extra arguments (NULL-ended);
 * waits for its QMP socket.  0, or -1 with err (its log). */
static int qemu_start(qemu_t *q, const char *dir, const char *name, const char *accel,
		      const char *ram, const char *guest_elf, const char *const *extra, char *err,
		      size_t errlen)
{
	char backend[512], qmp[300], mem[16];
	snprintf(q->sock, sizeof(q->sock), "%s/%s.qmp", dir, name);
	snprintf(q->log, sizeof(q->log), "%s/%s.log", dir, name);
	snprintf(backend, sizeof(backend),
		 "memory-backend-file,id=ram,size=%uM,mem-path=%s,share=on,prealloc=on",
		 MIG_RAM_MIB, ram);
	snprintf(qmp, sizeof(qmp), "unix:%s,server=on,wait=off", q->sock);
	snprintf(mem, sizeof(mem), "%uM", MIG_RAM_MIB);
	const char *argv[40] = {"qemu-system-x86_64", "-display", "none", "-nodefaults", "-m", mem,
				"-accel", accel, "-object", backend, "-machine",
				"pc,memory-backend=ram", "-qmp", qmp, "-kernel", guest_elf};
	int argc = 16;
	for (; extra && *extra && argc < 38; extra++)
		argv[argc++] = *extra;
	argv[argc] = NULL;
	pid_t parent = getpid();
	q->pid = fork();
	if (q->pid < 0) {
		fail(err, errlen, "fork: %s", strerror(errno));
		return -1;
	}
	if (q->pid == 0) {
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
			_exit(1);
		int lfd = open(q->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		dup2(lfd, 1);
		dup2(lfd, 2);
		execvp(argv[0], (char **)argv);
		_exit(127);
	}
	for (double end = now_s() + 30; now_s() < end; usleep(20000)) {
		if (connectable(q->sock))
			return 0;
		if (waitpid(q->pid, NULL, WNOHANG) == q->pid) {
			q->pid = 0;
			break;
		}
	}
	char buf[1024] = "";
	int fd = open(q->log, O_RDONLY);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : 0;
	buf[n > 0 ? n : 0] = '\0';
	if (fd >= 0)
		close(fd);
	fail(err, errlen, "QEMU (%s) did not come up: %s", name, buf);
	qemu_kill(q);
	return -1;
}

typedef struct {
	int fd;
	int next_id;
} qmp_t;

static bool qmp_line(int fd, char *buf, size_t size)
{
	size_t n = 0;
	while (n + 1 < size) {
		if (read(fd, buf + n, 1) != 1)
			return false;
		if (buf[n++] == '\n')
			break;
	}
	buf[n] = '\0';
	return n > 0;
}

/* Sends one command (arguments: JSON text or NULL) and parses its reply:
 * the "return" member (a new JsonNode the caller frees), or NULL with err
 * (QEMU's "error" description, or why there was no reply). */
static JsonNode *qmp_call(qmp_t *q, const char *command, const char *arguments, char *err,
			  size_t errlen)
{
	char id[16], line[65536];
	snprintf(id, sizeof(id), "r%d", ++q->next_id);
	char *msg = g_strdup_printf("{\"execute\":\"%s\",\"id\":\"%s\"%s%s}\n", command, id,
				    arguments ? ",\"arguments\":" : "", arguments ? arguments : "");
	bool sent = write(q->fd, msg, strlen(msg)) == (ssize_t)strlen(msg);
	g_free(msg);
	if (!sent) {
		fail(err, errlen, "%s: QMP write failed", command);
		return NULL;
	}
	while (qmp_line(q->fd, line, sizeof(line))) {
		JsonParser *p = json_parser_new();
		JsonNode *r = NULL;
		if (json_parser_load_from_data(p, line, -1, NULL) &&
		    JSON_NODE_HOLDS_OBJECT(json_parser_get_root(p))) {
			JsonObject *o = json_node_get_object(json_parser_get_root(p));
			if (json_object_has_member(o, "id") &&
			    g_strcmp0(json_object_get_string_member(o, "id"), id) == 0) {
				if (json_object_has_member(o, "return")) {
					r = json_node_copy(json_object_get_member(o, "return"));
				} else {
					JsonObject *e = json_object_get_object_member(o, "error");
					fail(err, errlen, "%s: %s", command,
					     e ? json_object_get_string_member(e, "desc") : line);
					g_object_unref(p);
					return NULL;
				}
			}
		}
		g_object_unref(p);
		if (r)
			return r;
	}
	fail(err, errlen, "%s: no reply from QEMU", command);
	return NULL;
}

static void qmp_close(qmp_t *q)
{
	if (q->fd >= 0)
		close(q->fd);
	q->fd = -1;
}

static int qmp_open(qmp_t *q, const char *sock, char *err, size_t errlen)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct timeval tv = {.tv_sec = 20};
	char line[4096];
	q->next_id = 0;
	if (strlen(sock) >= sizeof(sa.sun_path)) {
		fail(err, errlen, "socket path too long: %s", sock);
		return -1;
	}
	memcpy(sa.sun_path, sock, strlen(sock) + 1);
	q->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	setsockopt(q->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(q->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    !qmp_line(q->fd, line, sizeof(line)) || !strstr(line, "\"QMP\"")) {
		fail(err, errlen, "no QMP greeting on %s", sock);
		qmp_close(q);
		return -1;
	}
	JsonNode *r = qmp_call(q, "qmp_capabilities", NULL, err, errlen);
	if (!r) {
		qmp_close(q);
		return -1;
	}
	json_node_unref(r);
	return 0;
}

static double member_num(JsonObject *o, const char *name)
{
	return o && json_object_has_member(o, name) ? json_object_get_double_member(o, name)
						    : NAN;
}

/* ---- the accelerator ---- */

const char *mig_accel(const char *guest_elf, const char *tmp, char *why, size_t whylen)
{
	static char cached[8];
	if (*cached)
		return cached;
	if (!guest_elf || !*guest_elf || access(guest_elf, R_OK) != 0) {
		fail(why, whylen, "no guest was built (gcc -m32 needs gcc-multilib)");
		return NULL;
	}
	char dir[200], ram[260], err[1024];
	snprintf(dir, sizeof(dir), "%s/memstat-mig-XXXXXX", tmp);
	if (!mkdtemp(dir)) {
		fail(why, whylen, "mkdtemp %s: %s", dir, strerror(errno));
		return NULL;
	}
	snprintf(ram, sizeof(ram), "%s/ram", dir);
	const char *accel = "tcg";
	qemu_t q = {0};
	const char *paused[] = {"-S", NULL};
	if (qemu_start(&q, dir, "probe", "kvm", ram, guest_elf, paused, err, sizeof(err)) == 0) {
		qmp_t m;
		if (qmp_open(&m, q.sock, err, sizeof(err)) == 0) {
			JsonNode *r = qmp_call(&m, "query-kvm", NULL, err, sizeof(err));
			if (r && json_object_get_boolean_member(json_node_get_object(r), "enabled"))
				accel = "kvm";
			if (r)
				json_node_unref(r);
			qmp_close(&m);
		}
		qemu_kill(&q);
	}
	unlink(q.log);
	unlink(ram);
	rmdir(dir);
	/* TCG needs nothing but QEMU: see whether it is there at all. */
	if (strcmp(accel, "tcg") == 0 && system("qemu-system-x86_64 --version >/dev/null 2>&1")) {
		fail(why, whylen, "qemu-system-x86_64 is not installed (Debian: qemu-system-x86)");
		return NULL;
	}
	snprintf(cached, sizeof(cached), "%s", accel);
	return cached;
}

/* ---- the guest's pacing ---- */

typedef struct {
	volatile uint32_t *mb;
	unsigned pages_per_sec;
	atomic_bool stop;
	pthread_t thread;
} pacer;

static void *pace(void *data)
{
	pacer *p = data;
	double start = now_s();
	uint32_t base = p->mb[MB_TARGET];
	while (!atomic_load(&p->stop)) {
		p->mb[MB_TARGET] = base + (uint32_t)((now_s() - start) * p->pages_per_sec);
		usleep(1000);
	}
	return NULL;
}

static unsigned long nonzero_pages(const volatile uint32_t *mem)
{
	static const char zero[PAGE];
	unsigned long n = 0;
	for (size_t i = 0; i < ((size_t)MIG_RAM_MIB << 20) / PAGE; i++)
		n += memcmp((const void *)((const char *)mem + i * PAGE), zero, PAGE) != 0;
	return n;
}

/* ---- one case ---- */

int mig_run(const mig_case *c, const char *accel, const char *guest_elf, const char *tmp,
	    double cancel_s, mig_result *out, char *err, size_t errlen)
{
	return mig_run_with(c, accel, guest_elf, tmp, cancel_s, NULL, NULL, out, err, errlen);
}

int mig_run_with(const mig_case *c, const char *accel, const char *guest_elf, const char *tmp,
		 double cancel_s, mig_before_fn before, void *data, mig_result *out, char *err,
		 size_t errlen)
{
	char dir[200], ram_src[260], ram_dst[260], incoming[280], uri[300];
	qemu_t src = {0}, dst = {0};
	qmp_t qs = {.fd = -1}, qd = {.fd = -1};
	pacer pc = {0};
	bool pacing = false;
	volatile uint32_t *mem = MAP_FAILED;
	int r = -1;

	memset(out, 0, sizeof(*out));
	snprintf(out->accel, sizeof(out->accel), "%s", accel);
	snprintf(dir, sizeof(dir), "%s/memstat-mig-XXXXXX", tmp);
	if (!mkdtemp(dir)) {
		fail(err, errlen, "mkdtemp: %s", strerror(errno));
		return -1;
	}
	snprintf(ram_src, sizeof(ram_src), "%s/ram.src", dir);
	snprintf(ram_dst, sizeof(ram_dst), "%s/ram.dst", dir);
	snprintf(incoming, sizeof(incoming), "unix:%s/mig.sock", dir);
	snprintf(uri, sizeof(uri), "\"%s\"", incoming);

	int fd = open(ram_src, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0 || ftruncate(fd, (off_t)MIG_RAM_MIB << 20) != 0) {
		fail(err, errlen, "RAM file: %s", strerror(errno));
		if (fd >= 0)
			close(fd);
		goto out;
	}
	mem = mmap(NULL, (size_t)MIG_RAM_MIB << 20, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (mem == MAP_FAILED) {
		fail(err, errlen, "mmap: %s", strerror(errno));
		goto out;
	}
	if (qemu_start(&src, dir, "src", accel, ram_src, guest_elf, NULL, err, errlen) < 0)
		goto out;
	const char *in_args[] = {"-incoming", incoming, NULL};
	if (qemu_start(&dst, dir, "dst", accel, ram_dst, guest_elf, in_args, err, errlen) < 0)
		goto out;

	/* The guest runs; it first writes its whole region once. */
	volatile uint32_t *mb = mem + MAILBOX / 4;
	for (double end = now_s() + 60; mb[MB_MAGIC] != GUEST_MAGIC && now_s() < end;)
		usleep(10000);
	if (mb[MB_MAGIC] != GUEST_MAGIC) {
		fail(err, errlen, "the guest did not start");
		goto out;
	}
	mb[MB_START] = MIG_REGION_START;
	mb[MB_PAGES] = MIG_REGION_PAGES;
	mb[MB_TARGET] = MIG_REGION_PAGES;
	for (double end = now_s() + 60; mb[MB_DONE] != MIG_REGION_PAGES && now_s() < end;)
		usleep(10000);
	if (mb[MB_DONE] != MIG_REGION_PAGES) {
		fail(err, errlen, "the guest wrote %u of %u pages", mb[MB_DONE], MIG_REGION_PAGES);
		goto out;
	}
	out->nonzero_pages = nonzero_pages(mem);

	/* The pattern: the next cycle_pages pages from the region's start. */
	mb[MB_START] = MIG_REGION_START;
	mb[MB_PAGES] = c->cycle_pages;
	pc.mb = mb;
	pc.pages_per_sec = c->pages_per_sec;
	atomic_store(&pc.stop, false);
	if (pthread_create(&pc.thread, NULL, pace, &pc) != 0) {
		fail(err, errlen, "pthread_create failed");
		goto out;
	}
	pacing = true;
	usleep(500000); /* steady before the migration starts */
	if (before && before(src.pid, src.sock, data, err, errlen) < 0)
		goto out;

	if (qmp_open(&qs, src.sock, err, errlen) < 0 || qmp_open(&qd, dst.sock, err, errlen) < 0)
		goto out;
	char params[200];
	snprintf(params, sizeof(params), "{\"max-bandwidth\":%.0f,\"downtime-limit\":%.0f}",
		 c->bandwidth, c->downtime_ms);
	JsonNode *n = qmp_call(&qs, "migrate-set-parameters", params, err, errlen);
	if (!n)
		goto out;
	json_node_unref(n);
	char margs[400];
	snprintf(margs, sizeof(margs), "{\"uri\":%s}", uri);
	if (!(n = qmp_call(&qs, "migrate", margs, err, errlen)))
		goto out;
	json_node_unref(n);
	double start = now_s();
	uint32_t target0 = mb[MB_TARGET], done0 = mb[MB_DONE];
	for (;;) {
		usleep(100000);
		n = qmp_call(&qs, "query-migrate", NULL, err, errlen);
		if (!n)
			goto out;
		JsonObject *o = json_node_get_object(n);
		const char *status = json_object_has_member(o, "status")
					     ? json_object_get_string_member(o, "status")
					     : "none";
		bool active = strcmp(status, "active") == 0 || strcmp(status, "setup") == 0;
		if (active) {
			uint32_t lag = mb[MB_TARGET] - mb[MB_DONE];
			if (lag > out->max_lag && lag < 1u << 30)
				out->max_lag = lag;
			out->pages_asked = mb[MB_TARGET] - target0;
			out->pages_written = mb[MB_DONE] - done0;
			if (getenv("MIG_DEBUG"))
				fprintf(stderr, "lag %u\n", lag);
		}
		snprintf(out->status, sizeof(out->status), "%s", status);
		if (getenv("MIG_DEBUG")) {
			char *text = json_to_string(n, false);
			fprintf(stderr, "%.1f s: %s\n", now_s() - start, text);
			g_free(text);
		}
		/* The figures of the last report; a cancelled migration's are
		 * those before the cancel. */
		if (!out->cancelled || strcmp(status, "cancelled") != 0) {
			JsonObject *ram = json_object_has_member(o, "ram")
						  ? json_object_get_object_member(o, "ram")
						  : NULL;
			if (!out->cancelled) {
				out->total_ms = member_num(o, "total-time");
				out->downtime_ms = member_num(o, "downtime");
				out->setup_ms = member_num(o, "setup-time");
			}
			if (ram) {
				out->transferred = member_num(ram, "transferred");
				out->normal_pages = member_num(ram, "normal");
				out->dirty_syncs = (unsigned)member_num(ram, "dirty-sync-count");
				out->downtime_bytes = member_num(ram, "downtime-bytes");
			}
		}
		json_node_unref(n);
		status = out->status; /* n's strings are gone */
		if (strcmp(status, "completed") == 0 || strcmp(status, "failed") == 0 ||
		    strcmp(status, "cancelled") == 0)
			break;
		if (!out->cancelled && now_s() - start >= cancel_s && active) {
			out->cancelled = true;
			if (!(n = qmp_call(&qs, "migrate_cancel", NULL, err, errlen)))
				goto out;
			json_node_unref(n);
		}
		if (now_s() - start > cancel_s + 60) {
			fail(err, errlen, "the migration neither ended nor was cancelled: %s",
			     out->status);
			goto out;
		}
	}
	if (strcmp(out->status, "completed") == 0) {
		/* The destination runs the guest now. */
		for (double end = now_s() + 10; now_s() < end && !out->destination_running;
		     usleep(50000)) {
			n = qmp_call(&qd, "query-status", NULL, err, errlen);
			if (!n)
				break;
			out->destination_running = g_strcmp0(json_object_get_string_member(
								      json_node_get_object(n), "status"),
							      "running") == 0;
			json_node_unref(n);
		}
	}
	r = strcmp(out->status, "failed") == 0 ? -1 : 0;
	if (r < 0) {
		n = qmp_call(&qs, "query-migrate", NULL, err, errlen);
		JsonObject *o = n ? json_node_get_object(n) : NULL;
		fail(err, errlen, "the migration failed: %s",
		     o && json_object_has_member(o, "error-desc")
			     ? json_object_get_string_member(o, "error-desc")
			     : "no error-desc");
		if (n)
			json_node_unref(n);
	}
out:
	if (pacing) {
		atomic_store(&pc.stop, true);
		pthread_join(pc.thread, NULL);
	}
	qmp_close(&qs);
	qmp_close(&qd);
	qemu_kill(&src);
	qemu_kill(&dst);
	if (mem != MAP_FAILED)
		munmap((void *)mem, (size_t)MIG_RAM_MIB << 20);
	unlink(src.log);
	unlink(dst.log);
	unlink(ram_src);
	unlink(ram_dst);
	char sock[300];
	snprintf(sock, sizeof(sock), "%s/mig.sock", dir);
	unlink(sock);
	rmdir(dir);
	return r;
}

double mig_link_bandwidth(const char *accel, const char *guest_elf, const char *tmp, char *err,
			  size_t errlen)
{
	/* The idle guest, no rate limit to speak of (10 GB/s). */
	const mig_case idle = {"idle", MIG_UNIFORM, MIG_REGION_PAGES, 0, 1e10, 300};
	mig_result q;
	if (mig_run(&idle, accel, guest_elf, tmp, 60, &q, err, errlen) < 0)
		return -1;
	if (strcmp(q.status, "completed") != 0 || !(q.total_ms > 0)) {
		fail(err, errlen, "the idle guest's migration ended %s", q.status);
		return -1;
	}
	return q.transferred / (q.total_ms / 1000);
}

/* ---- the forecast through memstatfs ---- */

int mig_memstatfs_start(const char *bin, const char *tmp, mig_memstatfs *m, char *err,
			size_t errlen)
{
	struct stat a, b;

	memset(m, 0, sizeof(*m));
	snprintf(m->mnt, sizeof(m->mnt), "%s/memstat-mnt-XXXXXX", tmp);
	if (!mkdtemp(m->mnt)) {
		fail(err, errlen, "mkdtemp: %s", strerror(errno));
		return -1;
	}
	pid_t parent = getpid();
	m->pid = fork();
	if (m->pid < 0) {
		fail(err, errlen, "fork: %s", strerror(errno));
		rmdir(m->mnt);
		return -1;
	}
	if (m->pid == 0) {
		if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != parent)
			_exit(1);
		int nul = open("/dev/null", O_WRONLY);
		dup2(nul, 2);
		execl(bin, bin, "-f", m->mnt, (char *)NULL);
		_exit(127);
	}
	for (double end = now_s() + 10; now_s() < end; usleep(20000)) {
		char parent_dir[300];
		snprintf(parent_dir, sizeof(parent_dir), "%s/..", m->mnt);
		if (stat(m->mnt, &a) == 0 && stat(parent_dir, &b) == 0 && a.st_dev != b.st_dev)
			return 0;
		if (waitpid(m->pid, NULL, WNOHANG) == m->pid) {
			m->pid = 0;
			break;
		}
	}
	fail(err, errlen, "memstatfs (%s) did not mount", bin);
	mig_memstatfs_stop(m);
	return -1;
}

void mig_memstatfs_stop(mig_memstatfs *m)
{
	if (m->pid > 0) {
		kill(m->pid, SIGTERM);
		waitpid(m->pid, NULL, 0);
		m->pid = 0;
	}
	if (m->mnt[0])
		rmdir(m->mnt);
	m->mnt[0] = '\0';
}

static char *slurp(const char *mnt, const char *rel)
{
	char path[400];
	snprintf(path, sizeof(path), "%s/%s", mnt, rel);
	char *text = NULL;
	return g_file_get_contents(path, &text, NULL, NULL) ? text : NULL;
}

static int put(const char *mnt, const char *rel, const char *text)
{
	char path[400];
	snprintf(path, sizeof(path), "%s/%s", mnt, rel);
	int fd = open(path, O_WRONLY);
	if (fd < 0)
		return -errno;
	ssize_t w = write(fd, text, strlen(text));
	int e = w < 0 ? -errno : 0;
	close(fd);
	return e;
}

/* "ESTIMATE LOW HIGH" of migration/NAME into v[3]. */
static bool three(const char *mnt, pid_t pid, const char *name, double v[3])
{
	char rel[100];
	snprintf(rel, sizeof(rel), "%d/migration/%s", (int)pid, name);
	g_autofree char *text = slurp(mnt, rel);
	return text && sscanf(text, "%lf %lf %lf", &v[0], &v[1], &v[2]) == 3;
}

int mig_measure(const char *mnt, pid_t pid, const mig_case *c, double link, double cancel_s,
		mig_measured *out, char *err, size_t errlen)
{
	char line[300], rel[100];
	int e;

	memset(out, 0, sizeof(*out));
	snprintf(line, sizeof(line),
		 "%d sample_pages=16384 bandwidth=%.0f downtime_ms=%.0f link_bandwidth=%.0f "
		 "max_total_s=%.0f\n",
		 (int)pid, c->bandwidth, c->downtime_ms, link, cancel_s);
	if ((e = put(mnt, "track", line)) < 0) {
		fail(err, errlen, "track %d: %s", (int)pid, strerror(-e));
		return -1;
	}
	snprintf(rel, sizeof(rel), "%d/growth", (int)pid);
	double t0 = now_s();
	g_autofree char *text = NULL, *verdict = NULL;
	g_auto(GStrv) lines = NULL;
	for (; now_s() - t0 < 30; usleep(200000)) {
		g_free(text);
		text = slurp(mnt, rel);
		if (text && *text)
			break;
	}
	int r = -1;
	if (!text || !*text) {
		fail(err, errlen, "no growth curve of QEMU (pid %d) within 30 s", (int)pid);
		goto out;
	}
	out->seconds = now_s() - t0;
	lines = g_strsplit(text, "\n", -1);
	for (char **l = lines; *l && **l && out->n < G_N_ELEMENTS(out->curve); l++) {
		ms_growth_point *p = &out->curve[out->n];
		double mib;
		if (sscanf(*l, "%lf %lf %lf %lf %lf", &p->t_s, &p->pages, &mib, &p->ci95_low,
			   &p->ci95_high) == 5)
			out->n++;
	}
	snprintf(rel, sizeof(rel), "%d/migration/verdict", (int)pid);
	verdict = slurp(mnt, rel);
	if (verdict)
		snprintf(out->verdict, sizeof(out->verdict), "%.*s", (int)strcspn(verdict, "\n"),
			 verdict);
	if (!three(mnt, pid, "iterations", out->iterations) ||
	    !three(mnt, pid, "total_s", out->total_s) ||
	    !three(mnt, pid, "downtime_ms_expected", out->downtime_ms) ||
	    !three(mnt, pid, "transferred_bytes", out->transferred)) {
		fail(err, errlen, "the migration/ files of QEMU (pid %d) could not be read",
		     (int)pid);
		goto out;
	}
	r = 0;
out:
	snprintf(line, sizeof(line), "%d\n", (int)pid);
	put(mnt, "untrack", line);
	/* A step that was running when untrack returned finishes (the
	 * scheduler lets it): let it, before the migration starts. */
	usleep(300000);
	return r;
}

int mig_forecast_curve(const ms_growth_point *curve, size_t n, const mig_case *c,
		       unsigned long nonzero_pages, double link, double cancel_s,
		       ms_precopy_forecast *f, const char **why)
{
	ms_precopy_input in = {
		.curve = curve,
		.n = n,
		.memory_bytes = (uint64_t)(nonzero_pages + OTHER_BLOCK_PAGES) * PAGE,
		.page_size = PAGE,
		.bandwidth = c->bandwidth,
		.downtime_ms = c->downtime_ms,
		.link_bandwidth = link,
		.max_total_s = cancel_s,
	};
	return ms_precopy_forecast_compute(&in, f, why);
}
