/* test_libvirt.c: libvirt domains as targets, against a real libvirtd that
 * the test starts (tests/libvirt/libvirtd.sh: Debian's libvirtd and its QEMU
 * driver, in a private mount namespace, nothing of the host's libvirt
 * touched) running a TCG domain that boots tests/helpers/guest.c.
 *
 * Ground truth: the guest writes as many distinct pages as the test tells it
 * through a mailbox in its RAM, a file libvirt makes under the test's
 * directory (memory_backing_dir) that the test maps.  Skipped, saying why,
 * when libvirtd or its QEMU driver is not installed or memstatfs was built
 * without libvirt.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <glob.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define RAM_MIB	     256
#define MAILBOX	     0x400000u
#define GUEST_MAGIC  0x6d656d73u
#define REGION_START (8u << 20)
#define REGION_PAGES ((200u << 20) / 4096)

static mount_t M;
static char dir[200];  /* libvirtd's private root */
static char uri[400];  /* qemu+unix:///system?socket=... */
static pid_t libvirtd; /* tests/libvirt/libvirtd.sh, become libvirtd */
static volatile uint32_t *ram;
static struct pacer *running; /* a pacer to stop before ram goes */

static void pacer_stop(struct pacer *p);

static void teardown(void)
{
	if (running)
		pacer_stop(running);
	if (libvirtd > 0) {
		/* Domains first: QEMU outlives libvirtd otherwise. */
		sh_out(NULL,
		       "for d in $(virsh -c '%s' list --name 2>/dev/null); do "
		       "virsh -c '%s' destroy $d >/dev/null 2>&1; done",
		       uri, uri);
		kill(libvirtd, SIGTERM);
		waitpid(libvirtd, NULL, 0);
		libvirtd = 0;
	}
	if (ram) {
		munmap((void *)ram, (size_t)RAM_MIB << 20);
		ram = NULL;
	}
	mount_stop(&M);
	if (dir[0])
		sh_out(NULL, "rm -rf '%s'", dir);
	dir[0] = '\0';
}

TestSuite(libvirt, .fini = teardown, .timeout = 240);

static bool connectable(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (strlen(path) >= sizeof(sa.sun_path))
		return false;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	bool ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ok;
}

/* ---- helpers ---- */

static int track_line(const char *line)
{
	char *p = mpath(&M, "track");
	int r = write_file(p, line);
	free(p);
	return r;
}

/* Starts libvirtd and mounts memstatfs on it; skips the test, saying why,
 * when it cannot run here. */
static void libvirt_start(void)
{
	snprintf(dir, sizeof(dir), "%s/memstat-lv-XXXXXX", tmp_dir());
	cr_assert(mkdtemp(dir));
	char sock[300], log[300];
	snprintf(sock, sizeof(sock), "%s/sock/libvirt-sock", dir);
	snprintf(log, sizeof(log), "%s/libvirtd.out", dir);
	snprintf(uri, sizeof(uri), "qemu+unix:///system?socket=%s", sock);
	char opts[500];
	snprintf(opts, sizeof(opts), "allow_other,libvirt_uri=%s", uri);
	mount_start(&M, opts);
	if (track_line("libvirt:web1\n") == EOPNOTSUPP) {
		fprintf(stderr, "skipped: memstatfs was built without libvirt\n");
		cr_skip_test("memstatfs was built without libvirt (meson option libvirt)");
	}
	pid_t parent = getpid();
	libvirtd = fork();
	cr_assert(libvirtd >= 0);
	if (libvirtd == 0) {
		die_with_parent(parent, SIGTERM);
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		dup2(fd, 1);
		dup2(fd, 2);
		char script[300];
		snprintf(script, sizeof(script), "%s/tests/libvirt/libvirtd.sh", src_dir());
		execl("/bin/sh", "sh", script, dir, (char *)NULL);
		_exit(127);
	}
	int status;
	for (double end = now_s() + 30; !connectable(sock); usleep(50000)) {
		if (waitpid(libvirtd, &status, WNOHANG) == libvirtd) {
			libvirtd = 0;
			char *text = read_file(log);
			if (WIFEXITED(status) && WEXITSTATUS(status) == 77) {
				fprintf(stderr, "skipped: %s", text);
				cr_skip_test("%s", text);
			}
			cr_assert_fail("libvirtd did not start: %s", text);
		}
		cr_assert(now_s() < end, "libvirtd's socket did not come up");
	}
}

static int virsh(char **out, const char *args)
{
	return sh_out(out, "virsh -q -c '%s' %s 2>&1", uri, args);
}

/* Creates a transient domain booting the test guest, and maps its RAM:
 * type "qemu" (TCG) or "kvm" (features: what <features> holds).  0, or
 * virsh's exit status with *why (its words). */
static int domain_create(const char *name, const char *type, const char *features, char **why)
{
	const char *guest = getenv("GUEST");
	cr_assert(guest && *guest, "GUEST is not set: no guest was built");
	char xml[300];
	snprintf(xml, sizeof(xml), "%s/%s.xml", dir, name);
	FILE *f = fopen(xml, "w");
	cr_assert(f);
	fprintf(f,
		"<domain type='%s' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>\n"
		"  <name>%s</name>\n"
		"  <memory unit='MiB'>%u</memory>\n"
		"  <vcpu>1</vcpu>\n"
		"  <os><type arch='x86_64' machine='pc'>hvm</type><kernel>%s</kernel></os>\n"
		"  <features>%s</features>\n"
		"  <memoryBacking><source type='file'/><access mode='shared'/></memoryBacking>\n"
		"  <devices>\n"
		"    <emulator>/usr/bin/qemu-system-x86_64</emulator>\n"
		"    <serial type='file'><source path='%s/%s.serial'/></serial>\n"
		"    <memballoon model='none'/>\n"
		"  </devices>\n"
		"  <qemu:commandline><qemu:env name='MEMSTATFS_TEST_RUN' value='%s'/>"
		"</qemu:commandline>\n"
		"</domain>\n",
		type, name, RAM_MIB, guest, features ? features : "", dir, name,
		getenv("MEMSTATFS_TEST_RUN") ? getenv("MEMSTATFS_TEST_RUN") : "1");
	fclose(f);
	char args[400];
	snprintf(args, sizeof(args), "create '%s'", xml);
	int r = virsh(why, args);
	if (r != 0)
		return r;
	/* libvirt's RAM file for the domain: the guest's mailbox is in it. */
	char pattern[300];
	glob_t g;
	snprintf(pattern, sizeof(pattern), "%s/ram/libvirt/qemu/*-%s/pc.ram", dir, name);
	cr_assert_eq(glob(pattern, 0, NULL, &g), 0, "no RAM file %s", pattern);
	int fd = open(g.gl_pathv[0], O_RDWR);
	globfree(&g);
	cr_assert(fd >= 0);
	ram = mmap(NULL, (size_t)RAM_MIB << 20, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	cr_assert(ram != MAP_FAILED);
	return 0;
}

/* ---- the guest, paced through its mailbox (as in test_vm.c) ---- */

enum { MB_MAGIC, MB_START, MB_PAGES, MB_TARGET, MB_DONE };

typedef struct pacer {
	unsigned pages_per_sec;
	atomic_bool stop;
	pthread_t thread;
} pacer;

static void *pace(void *data)
{
	pacer *p = data;
	volatile uint32_t *mb = ram + MAILBOX / 4;
	double start = now_s();
	uint32_t base = mb[MB_TARGET];

	while (!atomic_load(&p->stop)) {
		mb[MB_TARGET] = base + (uint32_t)((now_s() - start) * p->pages_per_sec);
		usleep(1000);
	}
	return NULL;
}

static void pacer_start(pacer *p, unsigned pages_per_sec)
{
	volatile uint32_t *mb = ram + MAILBOX / 4;
	for (double end = now_s() + 60; mb[MB_MAGIC] != GUEST_MAGIC && now_s() < end;)
		usleep(20000);
	cr_assert_eq(mb[MB_MAGIC], GUEST_MAGIC, "the guest did not start");
	mb[MB_START] = REGION_START;
	mb[MB_PAGES] = REGION_PAGES;
	p->pages_per_sec = pages_per_sec;
	atomic_store(&p->stop, false);
	cr_assert(pthread_create(&p->thread, NULL, pace, p) == 0);
	running = p;
}

static void pacer_stop(pacer *p)
{
	atomic_store(&p->stop, true);
	pthread_join(p->thread, NULL);
	running = NULL;
}

static uint32_t guest_lag(void)
{
	volatile uint32_t *mb = ram + MAILBOX / 4;
	return mb[MB_TARGET] - mb[MB_DONE];
}

static char *target_file(const char *name, const char *file)
{
	char *p = mpath(&M, "%s/%s", name, file);
	char *text = read_file(p);
	free(p);
	return text;
}

static double sample_value(const char *name, long seq, const char *key)
{
	char *text = sample_wait_name(&M, name, seq, 40);
	double v = NAN;
	cr_assert(text, "no sample %ld of %s (status: %s)", seq, name, target_file(name, "status"));
	cr_assert(sample_get(text, key, &v), "no %s in %s", key, text);
	free(text);
	return v;
}

static long latest_seq(const char *name)
{
	char *text = target_file(name, "samples/latest");
	double v = 0;
	if (text)
		sample_get(text, "seq", &v);
	free(text);
	return (long)v;
}

static bool status_is(const char *name, const char *state, double seconds)
{
	char *p = mpath(&M, "%s/status", name);
	bool r = wait_content(p, state, seconds);
	free(p);
	return r;
}

/* `virsh domstats --dirtyrate`, read once: its status, start time and rate
 * (-1 for a field it does not show); its text in *text when not NULL. */
static void dirtyrate_stats(const char *name, long long *status, long long *start, long long *rate,
			    char **text)
{
	char *out = NULL, args[200];
	snprintf(args, sizeof(args), "domstats %s --dirtyrate", name);
	virsh(&out, args);
	const char *keys[] = {"dirtyrate.calc_status=", "dirtyrate.calc_start_time=",
			      "dirtyrate.megabytes_per_second="};
	long long *vals[] = {status, start, rate};
	for (int i = 0; i < 3; i++) {
		const char *at = out ? strstr(out, keys[i]) : NULL;
		*vals[i] = at ? atoll(at + strlen(keys[i])) : -1;
	}
	if (text)
		*text = out;
	else
		free(out);
}

/* Suspends name (or, suspend false, one suspended already): its status
 * reads paused, and for `seconds` after, at every read, with no figure
 * published; returns its last figure's seq. */
static long suspend_held(const char *name, double seconds, bool suspend)
{
	char *out = NULL, args[200];
	snprintf(args, sizeof(args), "suspend %s", name);
	if (suspend) {
		cr_assert_eq(virsh(&out, args), 0, "%s", out);
		free(out);
	}
	cr_expect(status_is(name, "paused", 10), "status of a suspended domain: %s",
		  target_file(name, "status"));
	long held = latest_seq(name);
	char *p = mpath(&M, "%s/status", name);
	for (double end = now_s() + seconds; now_s() < end; usleep(50000)) {
		char *st = read_file(p);
		cr_expect(st && strncmp(st, "paused", 6) == 0, "a suspended domain read as %s", st);
		free(st);
	}
	free(p);
	cr_expect_eq(latest_seq(name), held, "a figure was published while paused");
	return held;
}

/* Resumes name: a figure after held, and its status measured. */
static void resume_goes_on(const char *name, long held)
{
	char *out = NULL, args[200];
	snprintf(args, sizeof(args), "resume %s", name);
	cr_assert_eq(virsh(&out, args), 0, "%s", out);
	free(out);
	free(sample_wait_name(&M, name, held + 1, 30));
	cr_expect(status_is(name, "measured", 10), "status after resume: %s",
		  target_file(name, "status"));
}

/* ---- tests ---- */

Test(libvirt, a_domain_measured_shared_paused_and_destroyed)
{
	libvirt_start();
	char *why = NULL;
	cr_assert_eq(domain_create("web1", "qemu", NULL, &why), 0, "virsh create: %s", why);
	free(why);

	/* What cannot be tracked. */
	cr_expect_eq(track_line("libvirt:nosuch\n"), ENOENT);
	cr_expect_eq(track_line("libvirt:web1 mode=dirty-bitmap\n"), EOPNOTSUPP,
		     "KVM modes on a TCG domain");
	cr_expect_eq(track_line("libvirt:\n"), EINVAL);
	char *tp = mpath(&M, "track");
	cr_expect_eq(write_file_as(65534, tp, "libvirt:web1\n"), EACCES,
		     "a user who may not open libvirt's socket");
	free(tp);

	cr_assert_eq(track_line("libvirt:web1 period=1\n"), 0);
	/* Someone who could not reach libvirt does not learn that the domain
	 * is there: not listed, not in track, not looked up, not untracked. */
	char *listing = NULL, *tracked = NULL, *probe = NULL;
	const char *nobody = "setpriv --reuid=65534 --regid=65534 --clear-groups";
	sh_out(&listing, "%s ls -1 %s", nobody, M.mnt);
	sh_out(&tracked, "%s cat %s/track", nobody, M.mnt);
	sh_out(&probe, "%s bash -c 'test -e %s/web1 && echo seen; echo web1 > %s/untrack' 2>&1", nobody,
	       M.mnt, M.mnt);
	cr_expect(listing && strstr(listing, "track") && !strstr(listing, "web1"),
		  "uid 65534 lists: %s", listing);
	cr_expect(tracked && !strstr(tracked, "libvirt:web1"), "uid 65534 reads track: %s", tracked);
	cr_expect(probe && !strstr(probe, "seen") && strstr(probe, "No such file"),
		  "uid 65534 found or untracked web1: %s", probe);
	free(listing);
	free(tracked);
	free(probe);
	char *all = read_file(mpath(&M, "track"));
	cr_expect(all && strstr(all, "libvirt:web1"), "root reads track: %s", all);
	free(all);
	char *mode = target_file("web1", "mode");
	cr_expect_str_eq(mode, "page-sampling\n");
	free(mode);
	char *qpid = target_file("web1", "qemu_pid");
	cr_assert(qpid);
	char *cmd = NULL;
	sh_out(&cmd, "tr '\\0' ' ' < /proc/%d/cmdline", atoi(qpid));
	cr_expect(cmd && strstr(cmd, "guest=web1"), "qemu_pid %s is not the domain's QEMU: %s",
		  qpid, cmd);
	free(cmd);
	free(qpid);

	/* The rate against the truth: 12800 distinct pages/s of 65536 (50 MiB/s).
	 * libvirt asks QEMU for 512 pages per GiB: 128 pages of this guest. */
	pacer pc;
	pacer_start(&pc, 12800);
	double truth = 12800 * 4096.0 / (1 << 20);
	long first = latest_seq("web1") + 2; /* windows wholly after the pacer started */
	double sum = 0, var = 0;
	int n = 6, inside = 0;
	for (long s = first; s < first + n; s++) {
		double r = sample_value("web1", s, "rate");
		double lo = sample_value("web1", s, "rate_ci95_low");
		double hi = sample_value("web1", s, "rate_ci95_high");
		fprintf(stderr, "  web1 sample %ld: %.2f [%.2f, %.2f] MiB/s, truth %.2f\n", s, r,
			lo, hi, truth);
		sum += r;
		double sd = (hi - lo) / 2 / 1.96;
		var += sd * sd;
		inside += truth >= lo && truth <= hi;
		cr_expect(hi >= r + 1.0, "the interval must hold QEMU's truncation: %.2f [%.2f]", r,
			  hi);
	}
	double mean = sum / n, se = sqrt(var) / n;
	fprintf(stderr, "libvirt page-sampling: mean %.2f (se %.2f), truth %.2f, inside %d/%d\n",
		mean, se, truth, inside, n);
	cr_expect(mean > truth - 1.0 - 4.5 * se && mean < truth + 4.5 * se,
		  "libvirt's figure %.2f vs truth %.2f (se %.2f)", mean, truth, se);
	cr_expect_geq(inside, 3, "truth inside the interval in %d of %d", inside, n);
	cr_expect_lt(guest_lag(), 12800, "the guest fell behind: %u pages", guest_lag());

	/* Another client (virsh domdirtyrate-calc) at random times: each one
	 * starts within a few seconds, and reads back its own figure. */
	srand((unsigned)getpid());
	long before = latest_seq("web1");
	for (int i = 0; i < 3; i++) {
		usleep((useconds_t)(3000 + rand() % 3000) * 1000);
		double asked = now_s();
		int r = -1;
		char *out = NULL;
		while (r != 0 && now_s() < asked + 15) {
			free(out);
			out = NULL;
			r = virsh(&out, "domdirtyrate-calc web1 --seconds 1");
			if (r != 0)
				usleep(200000);
		}
		cr_expect_eq(r, 0, "virsh domdirtyrate-calc could not start in 15 s: %s", out);
		free(out);
		long long status = -1, st = -1, st2 = -1, rate = -1;
		dirtyrate_stats("web1", &status, &st, &rate, NULL);
		fprintf(stderr, "  another client started after %.1f s (start time %lld)\n",
			now_s() - asked, st);
		char *text = NULL;
		for (double end = now_s() + 10; now_s() < end && status != 2; usleep(200000)) {
			free(text);
			dirtyrate_stats("web1", &status, &st2, &rate, &text);
		}
		/* One read: finished, its own (start time), with a figure. */
		cr_expect_eq(status, 2, "the other client's measurement did not finish: %s", text);
		cr_expect(st2 == st || st2 == st + 1,
			  "the other client read another measurement (start %lld, not %lld)", st2,
			  st);
		cr_expect_geq(rate, 0, "no figure: %s", text);
		free(text);
	}
	cr_expect(latest_seq("web1") >= before + 2, "memstatfs's figures stopped: %ld then %ld",
		  before, latest_seq("web1"));
	pacer_stop(&pc);

	/* Paused: says so, publishes nothing; resumed: goes on. */
	long held = suspend_held("web1", 3, true);
	resume_goes_on("web1", held);
	char *out = NULL;

	/* Destroyed: exited. */
	cr_assert_eq(virsh(&out, "destroy web1"), 0, "%s", out);
	free(out);
	cr_expect(status_is("web1", "exited", 10), "status of a destroyed domain: %s",
		  target_file("web1", "status"));
	char *p = mpath(&M, "web1/rate");
	cr_expect_null(read_file(p));
	cr_expect_eq(errno, ESRCH);
	free(p);

	/* libvirtd gone: ECONNREFUSED. */
	kill(libvirtd, SIGTERM);
	waitpid(libvirtd, NULL, 0);
	libvirtd = 0;
	cr_expect_eq(track_line("libvirt:web2\n"), ECONNREFUSED);
}

/* The growth curve of a domain, measured from outside through its QEMU
 * process (as the QEMU source's VMs): the guest writes 12800 distinct pages
 * a second cycling through its 51200-page region, so within t seconds
 * min(12800 t, 51200) distinct pages (40960 at 3.2 s, the ladder's last
 * step at period 1).  Tracked once the guest has been round its region
 * (its pages resident in QEMU's mapping: pages that become resident during
 * a window are not counted, growth.h).  The mean of two curves per step
 * within 4.5 standard errors (from the reported intervals), plus 3% and
 * how far the guest strayed from its pace (lag_watch: a TCG vCPU on a busy
 * machine stalls and catches up); then, suspended with the curve still wanted: paused, nothing
 * published, and its memory not looked at until resumed. */
/* How far the guest strays from writing exactly K pages a second: every
 * 2 ms, dev = K x (time since start) - (pages written since start); the
 * distinct pages it writes within any t are K t give or take
 * max dev - min dev (a starved vCPU or pacer, then catching up). */
typedef struct {
	unsigned k;
	atomic_bool stop;
	double lo, hi; /* min and max dev, pages */
	pthread_t thread;
} lag_watch;

static void *watch(void *data)
{
	lag_watch *w = data;
	volatile uint32_t *mb = ram + MAILBOX / 4;
	uint32_t done0 = mb[MB_DONE];
	double t0 = now_s();

	while (!atomic_load(&w->stop)) {
		double dev = w->k * (now_s() - t0) - (double)(uint32_t)(mb[MB_DONE] - done0);
		w->lo = MIN(w->lo, dev);
		w->hi = MAX(w->hi, dev);
		usleep(2000);
	}
	return NULL;
}

Test(libvirt, growth_of_a_domain_from_its_qemu_process)
{
	libvirt_start();
	char *why = NULL;
	cr_assert_eq(domain_create("grow1", "qemu", NULL, &why), 0, "virsh create: %s", why);
	free(why);
	pacer pc;
	pacer_start(&pc, 12800);
	volatile uint32_t *mb = ram + MAILBOX / 4;
	for (double end = now_s() + 30; mb[MB_DONE] < REGION_PAGES + 12800 && now_s() < end;)
		usleep(100000);
	cr_assert_geq(mb[MB_DONE], REGION_PAGES, "the guest did not go round its region");
	lag_watch lw = {.k = 12800};
	cr_assert(pthread_create(&lw.thread, NULL, watch, &lw) == 0);
	cr_assert_eq(track_line("libvirt:grow1 sample_pages=16384 bandwidth=1G\n"), 0);

	double t[GROWTH_MAX_STEPS], f[GROWTH_MAX_STEPS], var[GROWTH_MAX_STEPS];
	char *path = mpath(&M, "grow1/growth");
	int n = growth_mean(path, 2, 60, false, t, f, var);
	free(path);
	atomic_store(&lw.stop, true);
	pthread_join(lw.thread, NULL);
	double stray = lw.hi - lw.lo;
	fprintf(stderr, "the guest strayed by up to %.0f pages from 12800 t\n", stray);
	cr_assert_geq(n, 5);
	for (int k = 0; k < n; k++) {
		double truth = MIN(12800 * t[k], (double)REGION_PAGES);
		double tol = 4.5 * sqrt(var[k]) + 0.03 * truth + stray;
		fprintf(stderr, "t %.3f: f %.0f, truth %.0f, tolerance %.0f\n", t[k], f[k], truth,
			tol);
		cr_expect(fabs(f[k] - truth) <= tol, "f(%.3f) = %.0f, truth %.0f", t[k], f[k], truth);
	}
	/* Beyond the guest's stray, the curve must still be the guest's. */
	cr_expect_lt(stray, 12800, "the guest strayed by a second of writes: truth unknown");
	char *verdict = target_file("grow1", "migration/verdict");
	cr_expect(verdict && strcmp(verdict, "converges\n") == 0, "at 1 GB/s: %s", verdict);
	free(verdict);
	char *mp = mpath(&M, "metrics");
	char *metrics = read_file(mp);
	free(mp);
	cr_expect(metrics && strstr(metrics, "memstat_migration_verdict{target=\"grow1\","
					     "kind=\"libvirt\""),
		  "memstat_migration_verdict of the domain in metrics");
	free(metrics);
	pacer_stop(&pc);

	/* Suspended while the curve is wanted: paused, no figure and no
	 * new curve (the window open at the suspend is dropped) until
	 * resumed, then curves again. */
	long held = suspend_held("grow1", 0, true);
	char *after = target_file("grow1", "growth");
	suspend_held("grow1", 4, false);
	char *again = target_file("grow1", "growth");
	cr_expect(after && again && strcmp(after, again) == 0,
		  "a growth curve was measured while paused:\n%s\nthen\n%s", after, again);
	resume_goes_on("grow1", held);
	char *resumed = NULL;
	for (double end = now_s() + 20; now_s() < end; usleep(200000)) {
		free(resumed);
		resumed = target_file("grow1", "growth");
		if (resumed && again && strcmp(resumed, again) != 0)
			break;
	}
	cr_expect(resumed && again && strcmp(resumed, again) != 0,
		  "no growth curve within 20 s of the resume");
	free(after);
	free(again);
	free(resumed);
}

/* KVM with its dirty ring, through libvirt: the default mode is dirty-ring,
 * with a rate per vCPU; skipped, saying why, where libvirt cannot start a
 * KVM domain. */
Test(libvirt, a_kvm_domain_with_the_dirty_ring)
{
	if (access("/dev/kvm", R_OK | W_OK) != 0) {
		fprintf(stderr, "skipped: no /dev/kvm\n");
		cr_skip_test("no /dev/kvm");
	}
	libvirt_start();
	char *why = NULL;
	int r = domain_create("ring1", "kvm", "<kvm><dirty-ring state='on' size='65536'/></kvm>",
			      &why);
	if (r != 0) {
		fprintf(stderr, "skipped: libvirt could not start a KVM domain: %s\n", why);
		cr_skip_test("libvirt could not start a KVM domain: %s", why);
	}
	free(why);
	/* The guest first (as in test_vm.c): 5120 distinct pages/s, 20 MiB/s. */
	pacer pc;
	pacer_start(&pc, 5120);
	cr_assert_eq(track_line("libvirt:ring1\n"), 0);
	char *mode = target_file("ring1", "mode");
	cr_expect_str_eq(mode, "dirty-ring\n", "KVM's dirty ring is on: the default");
	free(mode);
	cr_expect_eq(track_line("libvirt:ring1 mode=dirty-bitmap\n"), EOPNOTSUPP,
		     "dirty-bitmap while the ring is on");
	long first = latest_seq("ring1") + 2;
	double sum = 0;
	for (long s = first; s < first + 4; s++) {
		double rate = sample_value("ring1", s, "rate");
		fprintf(stderr, "  ring1 sample %ld: %.2f MiB/s, truth 20.00\n", s, rate);
		sum += rate;
	}
	uint32_t lag = guest_lag();
	char *vr = target_file("ring1", "vcpu/0/rate");
	pacer_stop(&pc);
	double mean = sum / 4;
	cr_expect_lt(lag, 512, "the guest did not keep up: truth unknown");
	/* The ring counts write events: the mailbox and the stack are written
	 * again and again, so it reads a little high (as through QMP). */
	cr_expect(mean > 20 - 1.5 && mean < 20 * 1.15 + 2, "dirty-ring %.2f vs truth 20", mean);
	cr_expect(vr && atof(vr) > 0, "vcpu/0/rate: %s", vr);
	free(vr);
}
