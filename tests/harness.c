/* harness.c: see harness.h. */
#define _GNU_SOURCE
#include "harness.h"

#include <criterion/criterion.h>
#include <glib.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <grp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

const char *tmp_dir(void)
{
	const char *t = getenv("TMPDIR");
	return t && *t == '/' && strlen(t) < 100 ? t : "/tmp";
}

int sh_out(char **out, const char *fmt, ...)
{
	va_list ap;
	char *cmd;
	va_start(ap, fmt);
	cr_assert(vasprintf(&cmd, fmt, ap) >= 0);
	va_end(ap);
	FILE *f = popen(cmd, "r");
	cr_assert(f, "popen %s", cmd);
	GString *s = g_string_new(NULL);
	char buf[4096];
	size_t n;
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		g_string_append_len(s, buf, n);
	int status = pclose(f);
	if (out)
		*out = g_string_free(s, FALSE);
	else
		g_string_free(s, TRUE);
	free(cmd);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void die_with_parent(pid_t parent, int sig)
{
	if (prctl(PR_SET_PDEATHSIG, sig) != 0 || getppid() != parent)
		_exit(1);
}

static const char *env_or_die(const char *name)
{
	const char *v = getenv(name);
	cr_assert(v && *v, "%s is not set: run the tests with meson test", name);
	return v;
}

const char *src_dir(void)
{
	return env_or_die("SRCDIR");
}

/* Whether anything is mounted on path, alive or not. */
static bool has_mount(const char *path)
{
	struct stat a, b;
	char parent[512];

	snprintf(parent, sizeof(parent), "%s/..", path);
	if (stat(path, &a) < 0)
		return errno == ENOTCONN;
	return stat(parent, &b) == 0 && a.st_dev != b.st_dev;
}

bool is_mounted(const char *path)
{
	struct stat a, b;
	struct statfs f;
	char parent[512];

	snprintf(parent, sizeof(parent), "%s/..", path);
	/* A live FUSE mount: statfs reaches the daemon (stat may be answered
	 * from the attribute cache of a mount whose daemon is dead). */
	return stat(path, &a) == 0 && stat(parent, &b) == 0 && a.st_dev != b.st_dev &&
	       statfs(path, &f) == 0 && f.f_type == 0x65735546 /* FUSE_SUPER_MAGIC */;
}

/* Starts the daemon on m->mnt (logging to m->log) and waits for the mount. */
static void spawn(mount_t *m, const char *opts)
{
	const char *bin = env_or_die("MEMSTATFS");

	pid_t parent = getpid();
	m->daemon = fork();
	cr_assert(m->daemon >= 0);
	if (m->daemon == 0) {
		/* A test killed by its timeout runs no .fini: the daemon then
		 * stops by itself, unmounting. */
		die_with_parent(parent, SIGTERM);
		int fd = open(m->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		dup2(fd, 2);
		dup2(fd, 1);
		/* MEMSTATFS_WRAPPER, e.g. "valgrind --error-exitcode=99", runs
		 * the daemon under a tool. */
		char *argv[32];
		int argc = 0;
		char *wrapper =
			getenv("MEMSTATFS_WRAPPER") ? strdup(getenv("MEMSTATFS_WRAPPER")) : NULL;
		for (char *w = wrapper ? strtok(wrapper, " ") : NULL; w && argc < 24;
		     w = strtok(NULL, " "))
			argv[argc++] = w;
		argv[argc++] = (char *)bin;
		argv[argc++] = "-f";
		if (opts) {
			argv[argc++] = "-o";
			argv[argc++] = (char *)opts;
		}
		argv[argc++] = m->mnt;
		argv[argc] = NULL;
		execvp(argv[0], argv);
		_exit(127);
	}
	for (double end = now_s() + 30; now_s() < end; usleep(10000)) {
		if (is_mounted(m->mnt))
			return;
		if (waitpid(m->daemon, NULL, WNOHANG) == m->daemon) {
			m->daemon = 0;
			break;
		}
	}
	char *log = read_file(m->log);
	cr_assert_fail("memstatfs did not mount: %s", log ? log : "(no log)");
}

void mount_kill_and_restart(mount_t *m, const char *opts)
{
	struct statfs st;

	cr_assert(m->daemon > 0);
	kill(m->daemon, SIGKILL);
	waitpid(m->daemon, NULL, 0);
	m->daemon = 0;
	/* What consumers see meanwhile (statfs, unlike stat, is never
	 * answered from a cache). */
	errno = 0;
	cr_expect(statfs(m->mnt, &st) < 0 && errno == ENOTCONN, "after SIGKILL: %s",
		  strerror(errno));
	spawn(m, opts);
}

void mount_again(mount_t *m, const char *opts)
{
	cr_assert_eq(m->daemon, 0);
	spawn(m, opts);
}

void mount_start(mount_t *m, const char *opts)
{
	/* A test that wants other options mounts again over its suite's. */
	if (m->daemon > 0)
		mount_stop(m);
	memset(m, 0, sizeof(*m));
	snprintf(m->dir, sizeof(m->dir), "%s/memstatfs-test-XXXXXX", tmp_dir());
	cr_assert(mkdtemp(m->dir), "mkdtemp: %s", strerror(errno));
	/* Other users must reach the mountpoint for the allow_other tests. */
	cr_assert(chmod(m->dir, 0755) == 0);
	snprintf(m->mnt, sizeof(m->mnt), "%s/mnt", m->dir);
	snprintf(m->log, sizeof(m->log), "%s/daemon.log", m->dir);
	cr_assert(mkdir(m->mnt, 0755) == 0);

	spawn(m, opts);
}

int mount_stop(mount_t *m)
{
	int status = -1;

	if (m->daemon > 0) {
		kill(m->daemon, SIGTERM);
		for (double end = now_s() + 30; now_s() < end; usleep(10000))
			if (waitpid(m->daemon, &status, WNOHANG) == m->daemon)
				break;
		if (!WIFEXITED(status)) {
			kill(m->daemon, SIGKILL);
			waitpid(m->daemon, &status, 0);
		}
		m->daemon = 0;
	}
	for (int i = 0; i < 4 && has_mount(m->mnt); i++) {
		/* Only after a failure: leave no mount behind (stacked ones
		 * too). */
		char cmd[1024];
		snprintf(cmd, sizeof(cmd), "fusermount3 -uz '%s' 2>/dev/null || umount -l '%s'",
			 m->mnt, m->mnt);
		if (system(cmd) != 0)
			fprintf(stderr, "could not unmount %s\n", m->mnt);
	}
	if (m->log[0]) {
		/* The daemon's own report: sanitizers write theirs to stderr;
		 * valgrind (--error-exitcode) changes the exit status. */
		char *log = read_file(m->log);
		bool dirty = log && (strstr(log, "Sanitizer") || strstr(log, "runtime error:"));
		bool bad_exit = status != -1 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
		if (dirty || bad_exit) {
			/* Criterion ignores failed assertions in a .fini: crash
			 * instead, which it counts. */
			fprintf(stderr, "daemon ended with status %#x; its log:\n%s\n", status,
				log ? log : "");
			abort();
		}
		free(log);
		unlink(m->log);
	}
	rmdir(m->mnt);
	rmdir(m->dir);
	return status;
}

char *mpath(const mount_t *m, const char *fmt, ...)
{
	va_list ap;
	char *rel = NULL, *full = NULL;

	va_start(ap, fmt);
	cr_assert(vasprintf(&rel, fmt, ap) >= 0);
	va_end(ap);
	cr_assert(asprintf(&full, "%s/%s", m->mnt, rel) >= 0);
	free(rel);
	return full;
}

char *mread(const mount_t *m, const char *fmt, ...)
{
	va_list ap;
	char *rel;
	va_start(ap, fmt);
	cr_assert(vasprintf(&rel, fmt, ap) >= 0);
	va_end(ap);
	char *p = mpath(m, "%s", rel);
	char *t = read_file(p);
	free(rel);
	free(p);
	return t;
}

int mwrite(const mount_t *m, const char *rel, const char *text)
{
	char *p = mpath(m, "%s", rel);
	int e = write_file(p, text);
	free(p);
	return e;
}

int track_pid(const mount_t *m, pid_t pid, const char *settings)
{
	char line[128];
	snprintf(line, sizeof(line), "%d%s%s\n", (int)pid, settings ? " " : "",
		 settings ? settings : "");
	char *p = mpath(m, "track");
	int e = write_file(p, line);
	free(p);
	return e;
}

char *sample_wait(const mount_t *m, pid_t pid, long seq, double seconds)
{
	char name[16];
	snprintf(name, sizeof(name), "%d", (int)pid);
	return sample_wait_name(m, name, seq, seconds);
}

long sample_latest_seq(const mount_t *m, pid_t pid)
{
	char *p = mpath(m, "%d/samples/latest", (int)pid);
	char buf[64];
	ssize_t n = readlink(p, buf, sizeof(buf) - 1);
	free(p);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	return strtol(buf, NULL, 10);
}

char *sample_wait_name(const mount_t *m, const char *name, long seq, double seconds)
{
	char *p = mpath(m, "%s/samples/%ld", name, seq);
	char *text = NULL;
	for (double end = now_s() + seconds; !text && now_s() < end;) {
		text = read_file(p);
		if (!text)
			usleep(50000);
	}
	free(p);
	return text;
}

pid_t dirtier_start(unsigned region_mib, unsigned touch_mib, unsigned pages_per_sec,
		    const char *how)
{
	return dirtier_start_in(NULL, region_mib, touch_mib, pages_per_sec, how);
}

pid_t dirtier_start_in(const char *const *cgroups, unsigned region_mib, unsigned touch_mib,
		       unsigned pages_per_sec, const char *how)
{
	const char *bin = env_or_die("DIRTIER");
	int pfd[2];
	char a[3][16];

	cr_assert(pipe(pfd) == 0);
	snprintf(a[0], sizeof(a[0]), "%u", region_mib);
	snprintf(a[1], sizeof(a[1]), "%u", touch_mib);
	snprintf(a[2], sizeof(a[2]), "%u", pages_per_sec);
	pid_t parent = getpid();
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		die_with_parent(parent, SIGKILL);
		/* Into its cgroups before it touches any memory (v1's memory
		 * controller charges pages where they were first touched). */
		for (const char *const *cg = cgroups; cg && *cg; cg++) {
			char procs[512];
			snprintf(procs, sizeof(procs), "%s/cgroup.procs", *cg);
			if (write_file(procs, "0") != 0)
				_exit(125);
		}
		dup2(pfd[1], 1);
		close(pfd[0]);
		execl(bin, bin, a[0], a[1], a[2], how, (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	char buf[16] = {0};
	ssize_t n = read(pfd[0], buf, sizeof(buf) - 1);
	close(pfd[0]);
	cr_assert(n > 0 && strncmp(buf, "ready", 5) == 0, "dirtier did not start");
	return pid;
}

pid_t sleeper_start(uid_t uid)
{
	pid_t parent = getpid();
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		if (uid != 0 && (setgid(uid) != 0 || setuid(uid) != 0))
			_exit(126);
		die_with_parent(parent, SIGKILL); /* after setuid, which clears it */
		execlp("sleep", "sleep", "600", (char *)NULL);
		_exit(127);
	}
	/* Wait for the exec so that the process is what it will be. */
	char exe[64], link[256];
	snprintf(exe, sizeof(exe), "/proc/%d/exe", (int)pid);
	for (double end = now_s() + 5; now_s() < end; usleep(2000)) {
		ssize_t n = readlink(exe, link, sizeof(link) - 1);
		if (n > 0) {
			link[n] = '\0';
			if (strstr(link, "sleep"))
				break;
		}
	}
	return pid;
}

static pid_t kept[64];
static int nkept;

pid_t keep(pid_t pid)
{
	cr_assert(nkept < (int)G_N_ELEMENTS(kept), "keep: more than %d processes",
		  (int)G_N_ELEMENTS(kept));
	kept[nkept++] = pid;
	return pid;
}

void kill_kept(void)
{
	while (nkept > 0)
		proc_kill(kept[nkept - 1]); /* which takes it off the list */
}

void proc_kill(pid_t pid)
{
	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	/* Reaped: its pid may name another process soon. */
	for (int i = 0; i < nkept; i++)
		if (kept[i] == pid)
			kept[i--] = kept[--nkept];
}

int write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_TRUNC);
	if (fd < 0)
		return errno;
	ssize_t n = write(fd, text, strlen(text));
	int e = n < 0 ? errno : ((size_t)n == strlen(text) ? 0 : EIO);
	close(fd);
	return e;
}

char *read_file(const char *path)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return NULL;
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);
	for (;;) {
		if (cap - len < 1024)
			buf = realloc(buf, cap *= 2);
		ssize_t n = read(fd, buf + len, cap - len - 1);
		if (n < 0) {
			int e = errno;
			free(buf);
			close(fd);
			errno = e;
			return NULL;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	return buf;
}

bool sample_get(const char *text, const char *key, double *out)
{
	size_t klen = strlen(key);
	for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		if (strncmp(l, key, klen) == 0 && l[klen] == ' ')
			return sscanf(l + klen + 1, "%lf", out) == 1;
	}
	return false;
}

bool wait_content(const char *path, const char *prefix, double seconds)
{
	for (double end = now_s() + seconds; now_s() < end; usleep(20000)) {
		char *t = read_file(path);
		bool ok = t && strncmp(t, prefix, strlen(prefix)) == 0;
		free(t);
		if (ok)
			return true;
	}
	return false;
}

long proc_status_kb(pid_t pid, const char *field)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	char *t = read_file(path);
	long v = -1;
	size_t flen = strlen(field);
	for (const char *l = t; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
		if (strncmp(l, field, flen) == 0 && l[flen] == ':')
			v = strtol(l + flen + 1, NULL, 10);
	free(t);
	return v;
}

int write_file_as(uid_t uid, const char *path, const char *text)
{
	int pfd[2];
	cr_assert(pipe(pfd) == 0);
	pid_t pid = fork();
	if (pid == 0) {
		int e = 126;
		if (setgroups(0, NULL) == 0 && setgid(uid) == 0 && setuid(uid) == 0)
			e = write_file(path, text);
		if (write(pfd[1], &e, sizeof(e)) != sizeof(e))
			_exit(1);
		_exit(0);
	}
	int e = -1;
	close(pfd[1]);
	cr_assert(read(pfd[0], &e, sizeof(e)) == sizeof(e));
	close(pfd[0]);
	waitpid(pid, NULL, 0);
	return e;
}

int podman_debian12_image(char **out)
{
	if (out)
		*out = NULL;
	if (sh_out(NULL, "[ -f /run/memstatfs-podman/containers.conf ] && "
			 "export CONTAINERS_CONF=/run/memstatfs-podman/containers.conf; "
			 "podman image exists docker.io/library/debian:12") == 0)
		return 0;
	return sh_out(out,
		      "set -e; t=$(%s/tests/debian-root.sh); "
		      "[ -f /run/memstatfs-podman/containers.conf ] && "
		      "export CONTAINERS_CONF=/run/memstatfs-podman/containers.conf; "
		      "podman import --change "
		      "'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' "
		      "\"$t\" localhost/deb12 >/dev/null; "
		      "podman tag localhost/deb12 docker.io/library/debian:12 "
		      "docker.io/library/debian:12-slim 2>&1",
		      src_dir());
}

int growth_mean(const char *path, int windows, double seconds, bool exact, double *t, double *f,
		double *var)
{
	int n = GROWTH_MAX_STEPS, got = 0;
	char *last = NULL;

	for (int i = 0; i < GROWTH_MAX_STEPS; i++)
		t[i] = f[i] = var[i] = 0;
	for (double t0 = now_s(); got < windows + 1 && now_s() - t0 < seconds; usleep(200000)) {
		char *text = read_file(path);
		cr_assert(text, "read %s: %s", path, strerror(errno));
		if (!*text || (last && strcmp(text, last) == 0)) {
			free(text);
			continue;
		}
		free(last);
		last = text;
		fprintf(stderr, "%s:\n%s", path, text);
		if (++got == 1)
			continue;
		char **lines = g_strsplit(text, "\n", -1);
		int k = 0;
		for (; lines[k] && *lines[k] && k < GROWTH_MAX_STEPS; k++) {
			double ts, pg, mib, lo, hi;
			cr_assert_eq(
				sscanf(lines[k], "%lf %lf %lf %lf %lf", &ts, &pg, &mib, &lo, &hi),
				5, "not \"t_s pages mib ci95_low ci95_high\": %s", lines[k]);
			cr_expect(lo <= pg && pg <= hi, "%s", lines[k]);
			if (exact)
				cr_expect_eq(lo, hi, "an exact curve has no interval: %s",
					     lines[k]);
			t[k] += ts / windows;
			f[k] += pg / windows;
			var[k] += pow((hi - lo) / 2 / 1.96, 2) / ((double)windows * windows);
		}
		g_strfreev(lines);
		n = MIN(n, k);
	}
	free(last);
	cr_assert_eq(got, windows + 1, "fewer than %d growth curves at %s in %.0f s", windows + 1,
		     path, seconds);
	return n;
}

bool kernel_has_soft_dirty(void)
{
	static char page[8192] __attribute__((aligned(4096)));
	uint64_t entry = 0;
	int fd = open("/proc/self/clear_refs", O_WRONLY);
	cr_assert(fd >= 0);
	page[0] = 1;
	cr_assert(write(fd, "4", 1) == 1);
	close(fd);
	page[0] = 2;
	fd = open("/proc/self/pagemap", O_RDONLY);
	cr_assert(pread(fd, &entry, 8, (off_t)((uintptr_t)page / 4096 * 8)) == 8);
	close(fd);
	return entry & (1ULL << 55);
}

const char *cgroup_root(bool v2)
{
	static char dir[2][256];
	char *out = NULL;

	if (!dir[v2][0]) {
		sh_out(&out, v2 ? "findmnt -rn -t cgroup2 -o TARGET | head -n1"
				: "findmnt -rn -t cgroup -O memory -o TARGET | head -n1");
		g_strlcpy(dir[v2], out ? g_strstrip(out) : "", sizeof(dir[v2]));
		if (!dir[v2][0])
			g_strlcpy(dir[v2], "-", sizeof(dir[v2]));
		free(out);
	}
	return strcmp(dir[v2], "-") == 0 ? "" : dir[v2];
}
