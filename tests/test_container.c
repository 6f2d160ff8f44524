/* test_container.c: the container recipes run by a real engine, Debian's
 * podman: contrib/container/Dockerfile built, the sidecar it makes mounting
 * memstatfs into a shared directory, an application container that reads
 * its own rate through it, pod.yaml played with `podman kube play`, the
 * DaemonSet's pod template played as a pod, what a killed sidecar leaves
 * behind, and that application containers started after the sidecar read
 * the tree again, without a restart of their own, once the sidecar was
 * killed and started again (with memstatfs-podman.sh `up`; in the kube pod,
 * by podman's restart policy).  All through
 * contrib/container/memstatfs-podman.sh, the one command users run.
 *
 * No image registry can be reached here: the debian:12 images the recipes
 * name are made from a bare Debian 12 root (tests/debian-root.sh,
 * debootstrap from Debian's archive) when podman has none.  Skipped, saying
 * why, where podman is not installed.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <glib.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "harness.h"

static char scratch[160];   /* the test's directory */
static char label[128];	    /* on every container and pod the test starts */
static const char *pod;	    /* the pod a kube test plays, or NULL */
static char script_sh[768]; /* the script, as below */

/* The settings the script chose for this host (it writes them once, in
 * setup, where the harness and contrib/test.sh look for them). */
#define CONF	  "/run/memstatfs-podman/containers.conf"
#define WITH_CONF "[ -f " CONF " ] && export CONTAINERS_CONF=" CONF "; "

static void need_podman(void)
{
	if (sh_out(NULL, "podman --version >/dev/null 2>&1") != 0) {
		fprintf(stderr, "skipped: podman is not installed\n");
		cr_skip_test("podman is not installed");
	}
}

/* podman with the settings the script chose for this host. */
static int podman(char **out, const char *args)
{
	return sh_out(out, WITH_CONF "podman %s", args);
}

/* The script with args: its exit status, its standard output and error in
 * *out.  Its shared directories live in the test's directory, and every
 * container and pod it starts has the run's label. */
static int script(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int script(char **out, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *args = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	int r = sh_out(out, "%s %s 2>&1", script_sh, args);
	g_free(args);
	return r;
}

static void setup(void)
{
	need_podman();
	snprintf(scratch, sizeof(scratch), "%s/memstat-container-XXXXXX", tmp_dir());
	cr_assert(mkdtemp(scratch));
	const char *run = getenv("MEMSTATFS_TEST_RUN");
	snprintf(label, sizeof(label), "memstatfs.test-run=%s", run ? run : "none");
	snprintf(script_sh, sizeof(script_sh),
		 WITH_CONF "MEMSTATFS_PODMAN_STATE=%s/state MEMSTATFS_PODMAN_LABEL=%s "
			   "%s/contrib/container/memstatfs-podman.sh",
		 scratch, label, src_dir());
	char *out = NULL;
	/* Creates /run/memstatfs-podman/containers.conf where this host
	 * needs one (usage text, exit 2). */
	sh_out(NULL, "%s/contrib/container/memstatfs-podman.sh >/dev/null 2>&1", src_dir());
	int r = podman_debian12_image(&out);
	cr_assert_eq(r, 0, "could not make the debian:12 image: %s", out);
	g_free(out);
	/* Built from this checkout each run (layers are cached). */
	r = script(&out, "image");
	cr_assert_eq(r, 0, "podman build of contrib/container/Dockerfile failed:\n%s", out);
	g_free(out);
}

static void teardown(void)
{
	if (!scratch[0])
		return;
	char *cmd = g_strdup_printf(
		WITH_CONF
		"podman rm -f -t 5 $(podman ps -aq --filter label=%s) >/dev/null 2>&1; "
		"podman pod rm -f -t 5 $(podman pod ps -q --filter label=%s) >/dev/null 2>&1; "
		"%s%s%s"
		"for m in $(awk -v d=%s/ 'index($2, d) == 1 { print $2 }' /proc/self/mounts | "
		"sort -r); do umount -l $m; done; rm -rf %s",
		label, label, pod ? "podman pod rm -f -t 5 " : "", pod ? pod : "",
		pod ? " >/dev/null 2>&1; " : "", scratch, scratch);
	pod = NULL;
	if (system(cmd) != 0)
		fprintf(stderr, "cleaning up %s: some of it failed\n", scratch);
	g_free(cmd);
	scratch[0] = '\0';
}

TestSuite(container, .init = setup, .fini = teardown, .timeout = 300);

/* Whether dir is a live memstatfs mount (statfs reaches the daemon). */
static bool live(const char *dir)
{
	struct statfs st;
	return statfs(dir, &st) == 0 && st.f_type == 0x65735546 /* FUSE */ &&
	       sh_out(NULL,
		      "awk -v d=%s '$2 == d { t = $3 } END { exit t != \"fuse.memstatfs\" }' "
		      "/proc/self/mounts",
		      dir) == 0;
}

static bool dead(const char *dir)
{
	struct statfs st;
	return statfs(dir, &st) < 0 && errno == ENOTCONN;
}

/* Whether a mount under the test's directory is left. */
static bool mounts_left(void)
{
	return sh_out(NULL, "grep -q ' %s/' /proc/self/mounts", scratch) == 0;
}

/* A process that dirties 32 MiB at random, flat out (perl, in the debian
 * image), in the background: its pid in $p. */
#define DIRTIER                                                                                    \
	"perl -e \"\\$s = q(x) x (32 << 20); while (1) { substr(\\$s, int(rand(length "            \
	"\\$s)), 1) = q(y) }\" & p=$!; "
/* Tracks $p and prints "rate R status S". */
#define TRACK_AND_READ                                                                             \
	"echo $p > /mnt/memstat/track && "                                                         \
	"echo rate $(cat /mnt/memstat/$p/rate) status $(head -n1 /mnt/memstat/$p/status)"

/* The podman run options the script gives application containers of
 * sidecar (`app`). */
static char *app_options(const char *sidecar)
{
	char *out = NULL;
	int r = script(&out, "app %s", sidecar);
	cr_assert_eq(r, 0, "app: %s", out);
	return g_strstrip(out);
}

/* An application container run with the recipe's options, once: its
 * dirtier tracked, its rate and status printed. */
static char *app_reads_its_rate(const char *sidecar)
{
	char *out = NULL, *opts = app_options(sidecar);
	char *args = g_strdup_printf(
		"run --rm --label %s %s docker.io/library/debian:12 bash -c '" DIRTIER
			TRACK_AND_READ "; kill $p' 2>&1",
		label, opts);
	int r = podman(&out, args);
	g_free(args);
	g_free(opts);
	cr_expect_eq(r, 0, "the application container failed: %s", out);
	return out;
}

static void expect_a_rate(const char *out)
{
	double rate = -1;
	char status[32] = "";
	cr_expect(out && sscanf(out, "rate %lf status %31s", &rate, status) == 2,
		  "the application read no rate: %s", out);
	/* 32 MiB written at random flat out: far above nothing. */
	cr_expect_gt(rate, 1.0, "%s", out);
	cr_expect_str_eq(status, "measured");
}

/* Runs sh -c cmd in container c: its exit status, its output in *out. */
static int in_container(char **out, const char *c, const char *cmd)
{
	char *args = g_strdup_printf("exec %s sh -c '%s' 2>&1", c, cmd);
	int r = podman(out, args);
	g_free(args);
	return r;
}

/* A meminfo figure read in container c: > 0 when it was read, else -1
 * (the error in *err when err is not NULL). */
static long committed_as_in(const char *c, char **err)
{
	char *out = NULL;
	int r = in_container(&out, c, "cat /mnt/memstat/meminfo/committed_as");
	char *end = NULL;
	long v = r == 0 && out ? strtol(out, &end, 10) : -1;
	if (r != 0 || end == out)
		v = -1;
	if (err)
		*err = out;
	else
		g_free(out);
	return v;
}

/* When container c was started, and whether it runs: "TIME true". */
static char *started(const char *c)
{
	char *out = NULL,
	     *args = g_strdup_printf(
		     "inspect %s --format '{{.State.StartedAt}} {{.State.Running}}'", c);
	podman(&out, args);
	g_free(args);
	return out ? g_strstrip(out) : g_strdup("");
}

Test(container, sidecar_mounts_for_the_host_and_an_application_reads_its_rate)
{
	char *dir = g_strdup_printf("%s/shared", scratch), *out = NULL;
	char *name = g_strdup_printf("msfs-test-%d", (int)getpid());
	int r = script(&out, "up %s %s", dir, name);
	cr_assert_eq(r, 0, "up: %s", out);
	g_free(out);
	cr_assert(live(dir), "the sidecar's mount did not reach the host");
	/* The host reads it. */
	char *p = g_strdup_printf("%s/meminfo/committed_as", dir);
	char *t = read_file(p);
	cr_expect(t && strtol(t, NULL, 10) > 0, "committed_as: %s", t);
	free(t);
	out = app_reads_its_rate(name);
	expect_a_rate(out);
	fprintf(stderr, "container: the application read %s", out);
	g_free(out);
	/* Down: SIGTERM, the daemon unmounts everywhere; with no application
	 * left, the pod and the shared directory go too. */
	r = script(&out, "down %s %s", dir, name);
	cr_expect_eq(r, 0, "down: %s", out);
	g_free(out);
	cr_expect(!live(dir) && !dead(dir), "a mount is left on %s after down", dir);
	cr_expect(!mounts_left(), "down left a mount under %s", scratch);
	char *ps = g_strdup_printf("ps -aq --filter name=^%s$", name);
	podman(&out, ps);
	cr_expect_str_empty(out, "the sidecar container is still there");
	g_free(out);
	g_free(ps);
	ps = g_strdup_printf("pod ps -q --filter name=^%s-pod$", name);
	podman(&out, ps);
	cr_expect_str_empty(out, "the sidecar's pod is still there");
	g_free(out);
	g_free(ps);
	g_free(p);
	g_free(dir);
	g_free(name);
}

Test(container, a_killed_sidecar_is_replaced_by_the_next_up_and_applications_read_again)
{
	char *dir = g_strdup_printf("%s/shared", scratch), *out = NULL;
	int me = (int)getpid();
	char *name = g_strdup_printf("msfs-kill-%d", me);
	char *app = g_strdup_printf("msfs-app-%d", me), *old = g_strdup_printf("msfs-old-%d", me);
	cr_assert_eq(script(&out, "up %s %s", dir, name), 0, "%s", out);
	g_free(out);
	cr_assert(live(dir));

	/* An application container started after the sidecar, with the
	 * recipe's options, running a dirtier. */
	char *opts = app_options(name);
	char *args = g_strdup_printf("run -d --label %s --name %s %s docker.io/library/debian:12 "
				     "bash -c '" DIRTIER "echo $p > /run/dirtier; wait' 2>&1",
				     label, app, opts);
	cr_assert_eq(podman(&out, args), 0, "the application container: %s", out);
	g_free(out);
	g_free(args);
	g_free(opts);
	/* And one the way the recipe did before: a volume of the mountpoint
	 * itself (README: it keeps the dead mount). */
	args = g_strdup_printf("run -d --label %s --name %s -v %s:/mnt/memstat:rslave "
			       "docker.io/library/debian:12 sleep 600 2>&1",
			       label, old, dir);
	cr_assert_eq(podman(&out, args), 0, "%s", out);
	g_free(out);
	g_free(args);
	const char *track = "p=$(cat /run/dirtier); " TRACK_AND_READ;
	cr_assert_eq(in_container(&out, app, track), 0, "%s", out);
	expect_a_rate(out);
	fprintf(stderr, "container: before the kill the application read %s", out);
	g_free(out);
	cr_expect_gt(committed_as_in(old, NULL), 0);
	char *was = started(app);
	cr_assert(g_str_has_suffix(was, " true"), "%s", was);

	/* Killed: the host and the application see the dead mount. */
	char *rm = g_strdup_printf("rm -f -t 0 %s >/dev/null", name);
	podman(NULL, rm);
	cr_expect(dead(dir), "after rm -f -t 0 the mount should be dead (Transport endpoint is "
			     "not connected)");
	char *err = NULL;
	cr_expect_eq(committed_as_in(app, &err), -1);
	cr_expect(err && strstr(err, "Transport endpoint is not connected"),
		  "the application should see the dead mount: %s", err);
	g_free(err);

	/* up again, with the recipe: the host and the same application
	 * container, not restarted, read the tree again. */
	cr_assert_eq(script(&out, "up %s %s", dir, name), 0, "%s", out);
	cr_expect(strstr(out, "detaching the dead mount"), "up did not say it replaced it: %s",
		  out);
	g_free(out);
	cr_expect(live(dir), "up over a dead mount did not mount");
	long v = committed_as_in(app, &err);
	cr_expect_gt(v, 0, "the application did not read the new mount: %s", err);
	g_free(err);
	/* The new daemon tracks nothing: the application tracks again. */
	cr_expect_eq(in_container(&out, app, track), 0, "%s", out);
	expect_a_rate(out);
	fprintf(stderr,
		"container: after the sidecar was killed and up again the same "
		"application read %s",
		out);
	g_free(out);
	char *is = started(app);
	cr_expect_str_eq(is, was, "the application container was restarted");
	g_free(is);
	g_free(was);
	/* The old way keeps the dead mount, as the README says. */
	cr_expect_eq(committed_as_in(old, &err), -1);
	cr_expect(err && strstr(err, "Transport endpoint is not connected"),
		  "a volume of the mountpoint itself: %s", err);
	g_free(err);

	/* down with an application left: the sidecar unmounts everywhere,
	 * the pod and the shared directory stay for the next up. */
	cr_expect_eq(script(&out, "down %s %s", dir, name), 0, "%s", out);
	cr_expect(strstr(out, "application containers are left"), "%s", out);
	g_free(out);
	cr_expect(!live(dir) && !dead(dir));
	cr_expect_eq(committed_as_in(app, &err), -1);
	cr_expect(err && strstr(err, "No such file"), "after down the application sees: %s", err);
	g_free(err);
	/* The applications gone, down leaves nothing. */
	args = g_strdup_printf("rm -f -t 0 %s %s >/dev/null", app, old);
	podman(NULL, args);
	g_free(args);
	cr_expect_eq(script(&out, "down %s %s", dir, name), 0, "%s", out);
	g_free(out);
	cr_expect(!mounts_left(), "down left a mount under %s", scratch);
	char *ps = g_strdup_printf("pod ps -q --filter name=^%s-pod$", name);
	podman(&out, ps);
	cr_expect_str_empty(out, "the sidecar's pod is still there");
	g_free(out);
	g_free(ps);
	g_free(rm);
	g_free(dir);
	g_free(name);
	g_free(app);
	g_free(old);
}

/* Waits up to seconds for sh -c cond to exit 0. */
static bool wait_for(double seconds, const char *cond)
{
	for (double end = now_s() + seconds; now_s() < end; usleep(500000))
		if (sh_out(NULL, WITH_CONF "%s", cond) == 0)
			return true;
	return false;
}

/* kube up of yaml. */
static void kube_up(const char *yaml)
{
	char *out = NULL;
	int r = script(&out, "kube up %s", yaml);
	cr_assert_eq(r, 0, "kube up: %s", out);
	g_free(out);
}

/* kube down; checks nothing is left under the volumes. */
static void kube_down(const char *yaml)
{
	char *out = NULL;
	int r = script(&out, "kube down %s", yaml);
	cr_expect_eq(r, 0, "kube down: %s", out);
	g_free(out);
	/* The stop order leaves no mount, live or dead. */
	podman(&out, "info --format '{{.Store.VolumePath}}'");
	g_strstrip(out);
	cr_expect_neq(sh_out(NULL, "grep -q ' %s/.* fuse.memstatfs ' /proc/self/mounts", out), 0,
		      "kube down left a memstatfs mount under %s", out);
	g_free(out);
}

Test(container, pod_yaml_plays_and_its_application_reads_a_rate_again_after_the_sidecar_died)
{
	/* The pod as shipped, its application printing every 10 s. */
	char *yaml = g_strdup_printf("%s/contrib/container/pod.yaml", src_dir()), *out = NULL;
	const char *app = "app-with-memstatfs-app", *side = "app-with-memstatfs-memstatfs";
	pod = "app-with-memstatfs";
	kube_up(yaml);
	char *rated = g_strdup_printf("podman logs %s 2>&1 | grep -q '^dirty rate: [0-9]'", app);
	bool seen = wait_for(60, rated);
	char *logs = g_strdup_printf("logs %s 2>&1", app);
	podman(&out, logs);
	cr_assert(seen, "the pod's application never printed a rate: %s", out);
	fprintf(stderr, "container: %s says: %s", app, out);
	g_free(out);
	char *was = started(app);

	/* The sidecar's daemon dies (as by the OOM killer): podman restarts
	 * the container (restartPolicy Always), the new daemon detaches the
	 * dead mount and mounts in the emptyDir again. */
	char *pidf = g_strdup_printf("inspect %s --format '{{.State.Pid}}'", side);
	podman(&out, pidf);
	pid_t daemon = out ? (pid_t)atoi(out) : 0;
	g_free(out);
	cr_assert_gt(daemon, 1, "the sidecar's pid");
	cr_assert_eq(kill(daemon, SIGKILL), 0, "%s", strerror(errno));
	char *restarted = g_strdup_printf("p=$(podman inspect %s --format '{{.State.Pid}}'); [ "
					  "\"$p\" -gt 1 ] && [ $p != %d ]",
					  side, (int)daemon);
	cr_expect(wait_for(30, restarted), "podman did not restart the sidecar");
	/* The same application, in its own loop: its pid gone from the new
	 * daemon, it tracks itself again (a second "tracking" line) and
	 * prints a rate read from the new mount. */
	char *again = g_strdup_printf("podman logs %s 2>&1 | awk '/^tracking/ { t++ } "
				      "t >= 2 && /^dirty rate: [0-9]/ { ok = 1 } END { exit !ok }'",
				      app);
	seen = wait_for(60, again);
	podman(&out, logs);
	cr_expect(seen, "the application did not read a rate again: %s", out);
	fprintf(stderr, "container: after its sidecar died, %s says: %s", app, out);
	g_free(out);
	char *err = NULL;
	long v = committed_as_in(app, &err);
	cr_expect_gt(v, 0, "%s", err);
	g_free(err);
	char *is = started(app);
	cr_expect_str_eq(is, was, "the application container was restarted");
	g_free(is);
	g_free(was);

	kube_down(yaml);
	podman(&out, "pod ps -q --filter name=^app-with-memstatfs$");
	cr_expect_str_empty(out, "the pod is still there");
	g_free(out);
	g_free(again);
	g_free(restarted);
	g_free(pidf);
	g_free(logs);
	g_free(rated);
	g_free(yaml);
}

Test(container, the_daemonsets_pod_template_runs_with_host_pids)
{
	/* podman plays no DaemonSet: its pod template, as a pod, with the
	 * node's /run/memstatfs moved into the test's directory; the tree is
	 * in its subdirectory memstat. */
	char *dir = g_strdup_printf("%s/node", scratch), *out = NULL;
	char *tree = g_strdup_printf("%s/memstat", dir);
	char *yaml = g_strdup_printf("%s/ds-pod.yaml", scratch);
	cr_assert(mkdir(dir, 0755) == 0);
	int r = sh_out(&out,
		       "python3 - %s/contrib/container/daemonset.yaml %s %s <<'EOF' 2>&1\n"
		       "import sys, yaml\n"
		       "ds = yaml.safe_load(open(sys.argv[1]))\n"
		       "assert ds['kind'] == 'DaemonSet'\n"
		       "t = ds['spec']['template']\n"
		       "spec = t['spec']\n"
		       "assert spec['hostPID'] is True\n"
		       "for v in spec['volumes']:\n"
		       "    if v['name'] == 'memstat':\n"
		       "        assert v['hostPath']['path'] == '/run/memstatfs'\n"
		       "        v['hostPath']['path'] = sys.argv[2]\n"
		       "spec['terminationGracePeriodSeconds'] = 10\n"
		       "pod = {'apiVersion': 'v1', 'kind': 'Pod',\n"
		       "       'metadata': {'name': 'memstatfs-node', 'labels': "
		       "t['metadata']['labels']},\n"
		       "       'spec': spec}\n"
		       "yaml.safe_dump(pod, open(sys.argv[3], 'w'))\n"
		       "EOF",
		       src_dir(), dir, yaml);
	cr_assert_eq(r, 0, "%s", out);
	g_free(out);
	pod = "memstatfs-node";
	kube_up(yaml);
	for (double end = now_s() + 30; !live(tree) && now_s() < end;)
		usleep(100000);
	cr_expect(live(tree), "the node's mount did not appear on %s", tree);
	char *p = g_strdup_printf("%s/meminfo/memtotal", tree);
	char *t = read_file(p);
	cr_expect(t && strtol(t, NULL, 10) > 0, "the node reads meminfo: %s", t);
	free(t);
	g_free(p);
	/* hostPID: a host process is tracked by its host pid.  podman 4.x
	 * before 4.4 (Debian 12 has 4.3) ignores hostPID in kube play: ask
	 * it, and check the other side then (the pid is not the daemon's). */
	podman(&out, "inspect memstatfs-node-memstatfs --format '{{.HostConfig.PidMode}}'");
	bool host_pid = out && strncmp(out, "host", 4) == 0;
	g_free(out);
	pid_t pid = dirtier_start(32, 32, 2560, NULL);
	char *track = g_strdup_printf("%s/track", tree), *line = g_strdup_printf("%d\n", (int)pid);
	int e = write_file(track, line);
	if (host_pid) {
		cr_expect_eq(e, 0, "tracking host pid %d: %s", (int)pid, strerror(e));
		p = g_strdup_printf("%s/%d/rate", tree, (int)pid);
		char *rate = read_file(p);
		cr_expect(rate && atof(rate) > 1, "the host process's rate: %s", rate);
		fprintf(stderr, "container: DaemonSet pod: host pid %d at %s", (int)pid,
			rate ? rate : "(none)\n");
		free(rate);
		g_free(p);
	} else {
		fprintf(stderr, "container: this podman ignores hostPID in kube play (PidMode "
				"private): checked that a host pid is refused instead\n");
		cr_expect_eq(e, ESRCH, "a pid outside the daemon's pid namespace: %s", strerror(e));
	}
	proc_kill(pid);
	g_free(track);
	g_free(line);
	kube_down(yaml);
	cr_expect(!live(tree) && !dead(tree), "a mount is left on %s", tree);
	g_free(yaml);
	g_free(tree);
	g_free(dir);
}
