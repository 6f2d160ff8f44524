/* test_container.c: the container recipes run by a real engine, Debian's
 * podman: contrib/container/Dockerfile built, the sidecar it makes mounting
 * memstatfs into a shared directory, an application container that reads
 * its own rate through it, pod.yaml played with `podman kube play`, the
 * DaemonSet's pod template played as a pod, and what a killed sidecar
 * leaves behind.  All through contrib/container/memstatfs-podman.sh, the one
 * command users run.
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "harness.h"

static char scratch[160]; /* the test's directory */
static char label[128];	  /* on every container the test starts */
static const char *pod;	  /* the pod a kube test plays, or NULL */

/* The script, with this host's settings and the run's label. */
#define PODMAN_SH "MEMSTATFS_PODMAN_LABEL=%s %s/contrib/container/memstatfs-podman.sh"

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
	return sh_out(out,
		      "[ -f /run/memstatfs-podman/containers.conf ] && "
		      "export CONTAINERS_CONF=/run/memstatfs-podman/containers.conf; podman %s",
		      args);
}

static void setup(void)
{
	need_podman();
	snprintf(scratch, sizeof(scratch), "%s/memstat-container-XXXXXX", tmp_dir());
	cr_assert(mkdtemp(scratch));
	const char *run = getenv("MEMSTATFS_TEST_RUN");
	snprintf(label, sizeof(label), "memstatfs.test-run=%s", run ? run : "none");
	char *out = NULL;
	/* Creates /run/memstatfs-podman/containers.conf where this host
	 * needs one (usage text, exit 2). */
	sh_out(NULL, PODMAN_SH " >/dev/null 2>&1", label, src_dir());
	int r = podman_debian12_image(&out);
	cr_assert_eq(r, 0, "could not make the debian:12 image: %s", out);
	g_free(out);
	/* Built from this checkout each run (layers are cached). */
	r = sh_out(&out, PODMAN_SH " image 2>&1", label, src_dir());
	cr_assert_eq(r, 0, "podman build of contrib/container/Dockerfile failed:\n%s", out);
	g_free(out);
}

static void teardown(void)
{
	if (!scratch[0])
		return;
	char *cmd = g_strdup_printf(
		"[ -f /run/memstatfs-podman/containers.conf ] && "
		"export CONTAINERS_CONF=/run/memstatfs-podman/containers.conf; "
		"podman rm -f -t 5 $(podman ps -aq --filter label=%s) >/dev/null 2>&1; "
		"%s%s%s"
		"for m in $(awk -v d=%s/ 'index($2, d) == 1 { print $2 }' /proc/self/mounts | "
		"sort -r); do umount -l $m; done; rm -rf %s",
		label, pod ? "podman pod rm -f -t 5 " : "", pod ? pod : "",
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
	       sh_out(NULL, "awk -v d=%s '$2 == d { t = $3 } END { exit t != \"fuse.memstatfs\" }' "
			    "/proc/self/mounts",
		      dir) == 0;
}

static bool dead(const char *dir)
{
	struct statfs st;
	return statfs(dir, &st) < 0 && errno == ENOTCONN;
}

/* An application container in the sidecar's pid namespace, with the mount:
 * a process that dirties 32 MiB at random tracks itself, and the shell
 * prints its rate and status. */
static char *app_reads_its_rate(const char *dir, const char *sidecar)
{
	char *out = NULL;
	char *args = g_strdup_printf(
		"run --rm --label %s --pid container:%s -v %s:/mnt/memstat:rslave "
		"docker.io/library/debian:12 bash -c '"
		"perl -e \"\\$s = q(x) x (32 << 20); while (1) { substr(\\$s, int(rand(length "
		"\\$s)), 1) = q(y) }\" & p=$!; echo $p > /mnt/memstat/track && "
		"echo rate $(cat /mnt/memstat/$p/rate) status $(head -n1 /mnt/memstat/$p/status); "
		"kill $p' 2>&1",
		label, sidecar, dir);
	int r = podman(&out, args);
	g_free(args);
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

Test(container, sidecar_mounts_for_the_host_and_an_application_reads_its_rate)
{
	char *dir = g_strdup_printf("%s/shared", scratch), *out = NULL;
	char *name = g_strdup_printf("msfs-test-%d", (int)getpid());
	int r = sh_out(&out, PODMAN_SH " up %s %s 2>&1", label, src_dir(), dir, name);
	cr_assert_eq(r, 0, "up: %s", out);
	g_free(out);
	cr_assert(live(dir), "the sidecar's mount did not reach the host");
	/* The host reads it. */
	char *p = g_strdup_printf("%s/meminfo/committed_as", dir);
	char *t = read_file(p);
	cr_expect(t && strtol(t, NULL, 10) > 0, "committed_as: %s", t);
	free(t);
	out = app_reads_its_rate(dir, name);
	expect_a_rate(out);
	fprintf(stderr, "container: the application read %s", out);
	g_free(out);
	/* Down: SIGTERM, the daemon unmounts everywhere. */
	r = sh_out(&out, PODMAN_SH " down %s %s 2>&1", label, src_dir(), dir, name);
	cr_expect_eq(r, 0, "down: %s", out);
	g_free(out);
	cr_expect(!live(dir) && !dead(dir), "a mount is left on %s after down", dir);
	char *ps = g_strdup_printf("ps -aq --filter name=^%s$", name);
	podman(&out, ps);
	cr_expect_str_empty(out, "the sidecar container is still there");
	g_free(out);
	g_free(ps);
	g_free(p);
	g_free(dir);
	g_free(name);
}

Test(container, a_killed_sidecar_leaves_a_dead_mount_that_the_next_up_replaces)
{
	char *dir = g_strdup_printf("%s/shared", scratch), *out = NULL;
	char *name = g_strdup_printf("msfs-kill-%d", (int)getpid());
	cr_assert_eq(sh_out(&out, PODMAN_SH " up %s %s 2>&1", label, src_dir(), dir, name), 0, "%s",
		     out);
	g_free(out);
	cr_assert(live(dir));
	char *rm = g_strdup_printf("rm -f -t 0 %s >/dev/null", name);
	podman(NULL, rm);
	/* What users meet: the host keeps a mount that answers ENOTCONN. */
	cr_expect(dead(dir), "after rm -f -t 0 the mount should be dead (Transport endpoint is "
			     "not connected)");
	cr_assert_eq(sh_out(&out, PODMAN_SH " up %s %s 2>&1", label, src_dir(), dir, name), 0, "%s",
		     out);
	cr_expect(strstr(out, "detaching the dead mount"), "up did not say it replaced it: %s", out);
	g_free(out);
	cr_expect(live(dir), "up over a dead mount did not mount");
	cr_expect_eq(sh_out(NULL, PODMAN_SH " down %s %s >/dev/null 2>&1", label, src_dir(), dir, name),
		     0);
	cr_expect(!live(dir) && !dead(dir));
	g_free(rm);
	g_free(dir);
	g_free(name);
}

/* Plays yaml with kube; waits for the application container's log to show
 * a rate line; kube down; checks nothing is left under the volumes. */
static void kube_round_trip(const char *yaml, const char *app, const char *want)
{
	char *out = NULL;
	int r = sh_out(&out, PODMAN_SH " kube up %s 2>&1", label, src_dir(), yaml);
	cr_assert_eq(r, 0, "kube up: %s", out);
	g_free(out);
	out = NULL;
	char *logs = g_strdup_printf("logs %s 2>&1", app);
	bool seen = false;
	for (double end = now_s() + 60; !seen && now_s() < end; usleep(500000)) {
		g_free(out);
		out = NULL;
		podman(&out, logs);
		seen = out && strstr(out, want);
	}
	cr_expect(seen, "the pod's application never printed \"%s\": %s", want, out);
	fprintf(stderr, "container: %s says: %s", app, out ? out : "");
	g_free(out);
	g_free(logs);
	r = sh_out(&out, PODMAN_SH " kube down %s 2>&1", label, src_dir(), yaml);
	cr_expect_eq(r, 0, "kube down: %s", out);
	g_free(out);
	/* The stop order leaves no mount, live or dead. */
	podman(&out, "info --format '{{.Store.VolumePath}}'");
	g_strstrip(out);
	cr_expect_neq(sh_out(NULL, "grep -q ' %s/.* fuse.memstatfs ' /proc/self/mounts", out), 0,
		      "kube down left a memstatfs mount under %s", out);
	g_free(out);
}

Test(container, pod_yaml_plays_and_its_application_reads_a_rate)
{
	/* The pod as shipped, its application printing every 10 s. */
	char *yaml = g_strdup_printf("%s/contrib/container/pod.yaml", src_dir());
	pod = "app-with-memstatfs";
	kube_round_trip(yaml, "app-with-memstatfs-app", "dirty rate: ");
	char *out = NULL;
	podman(&out, "pod ps -q --filter name=^app-with-memstatfs$");
	cr_expect_str_empty(out, "the pod is still there");
	g_free(out);
	g_free(yaml);
}

Test(container, the_daemonsets_pod_template_runs_with_host_pids)
{
	/* podman plays no DaemonSet: its pod template, as a pod, with the
	 * node's /run/memstat moved into the test's directory and an
	 * application that reads meminfo through the node's mount. */
	char *dir = g_strdup_printf("%s/node", scratch), *out = NULL;
	char *yaml = g_strdup_printf("%s/ds-pod.yaml", scratch);
	cr_assert(mkdir(dir, 0755) == 0);
	int r = sh_out(
		&out,
		"python3 - %s/contrib/container/daemonset.yaml %s %s <<'EOF' 2>&1\n"
		"import sys, yaml\n"
		"ds = yaml.safe_load(open(sys.argv[1]))\n"
		"assert ds['kind'] == 'DaemonSet'\n"
		"t = ds['spec']['template']\n"
		"spec = t['spec']\n"
		"assert spec['hostPID'] is True\n"
		"for v in spec['volumes']:\n"
		"    if v['name'] == 'memstat':\n"
		"        v['hostPath']['path'] = sys.argv[2]\n"
		"spec['terminationGracePeriodSeconds'] = 10\n"
		"pod = {'apiVersion': 'v1', 'kind': 'Pod',\n"
		"       'metadata': {'name': 'memstatfs-node', 'labels': t['metadata']['labels']},\n"
		"       'spec': spec}\n"
		"yaml.safe_dump(pod, open(sys.argv[3], 'w'))\n"
		"EOF",
		src_dir(), dir, yaml);
	cr_assert_eq(r, 0, "%s", out);
	g_free(out);
	pod = "memstatfs-node";
	cr_assert_eq(sh_out(&out, PODMAN_SH " kube up %s 2>&1", label, src_dir(), yaml), 0, "%s", out);
	g_free(out);
	for (double end = now_s() + 30; !live(dir) && now_s() < end;)
		usleep(100000);
	cr_expect(live(dir), "the node's mount did not appear");
	char *p = g_strdup_printf("%s/meminfo/memtotal", dir);
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
	char *track = g_strdup_printf("%s/track", dir), *line = g_strdup_printf("%d\n", (int)pid);
	int e = write_file(track, line);
	if (host_pid) {
		cr_expect_eq(e, 0, "tracking host pid %d: %s", (int)pid, strerror(e));
		p = g_strdup_printf("%s/%d/rate", dir, (int)pid);
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
	cr_expect_eq(sh_out(&out, PODMAN_SH " kube down %s 2>&1", label, src_dir(), yaml), 0, "%s",
		     out);
	g_free(out);
	cr_expect(!live(dir) && !dead(dir), "a mount is left on %s", dir);
	g_free(yaml);
	g_free(dir);
}
