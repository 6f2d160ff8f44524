/* main.c: options, mount, daemon life.
 *
 *   memstatfs [-f] [-d] [-o OPT[,OPT...]] [SOURCE] MOUNTPOINT
 *
 * Set-up order (as libfuse's examples): parse options, create the session,
 * signal handlers, mount, daemonize, and only then start threads (fork
 * keeps none); tear-down in reverse.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <fuse_lowlevel.h>
#include <glib.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <syslog.h>
#include <unistd.h>

#include "file.h"
#include "fs.h"
#include "poll.h"
#include "memstat/core/settings.h"
#include "memstat/sources/source.h"

#ifndef MEMSTATFS_VERSION
#define MEMSTATFS_VERSION "0"
#endif

typedef struct {
	unsigned period, sample_pages, history, max_targets, workers;
	unsigned max_targets_per_uid; /* 0: a quarter of max_targets */
	char *mode;
	char *precision; /* page-sampling's default precision (settings.h) */
	char *bandwidth; /* the migration forecast's defaults */
	unsigned downtime_ms;
	char *link_bandwidth;
	int help, version;
	GPtrArray *positional; /* SOURCE and MOUNTPOINT */
} options;

enum { KEY_HELP, KEY_VERSION };

#define OPT(t, m)                                                                                  \
	{                                                                                          \
		t, offsetof(options, m), 1                                                         \
	}
static const struct fuse_opt option_spec[] = {OPT("period=%u", period),
					      OPT("sample_pages=%u", sample_pages),
					      OPT("history=%u", history),
					      OPT("max_targets=%u", max_targets),
					      OPT("max_targets_per_uid=%u", max_targets_per_uid),
					      OPT("workers=%u", workers),
					      OPT("mode=%s", mode),
					      OPT("precision=%s", precision),
					      OPT("bandwidth=%s", bandwidth),
					      OPT("downtime_ms=%u", downtime_ms),
					      OPT("link_bandwidth=%s", link_bandwidth),
					      FUSE_OPT_KEY("-h", KEY_HELP),
					      FUSE_OPT_KEY("--help", KEY_HELP),
					      FUSE_OPT_KEY("-V", KEY_VERSION),
					      FUSE_OPT_KEY("--version", KEY_VERSION),
					      FUSE_OPT_END};

static int option_proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
	options *o = data;

	(void)outargs;
	switch (key) {
	case FUSE_OPT_KEY_NONOPT:
		g_ptr_array_add(o->positional, g_strdup(arg));
		return 0;
	case KEY_HELP:
		o->help = 1;
		return 0;
	case KEY_VERSION:
		o->version = 1;
		return 0;
	default:
		break;
	}
	/* A source's own option (-o libvirt_uri=...), from the sources' tables. */
	g_autofree char *why = NULL;
	int r = ms_source_option_set(arg, &why);
	if (r < 0) {
		fprintf(stderr, "memstatfs: %s\n", why);
		return -1;
	}
	return r > 0 ? 0 : 1; /* else libfuse's own option: keep it */
}

static void usage(const char *prog)
{
	printf("usage: %s [options] [SOURCE] MOUNTPOINT\n\n"
	       "Mounts a tree of files that show the host's memory state and the dirty\n"
	       "rate of the processes written to MOUNTPOINT/track.  SOURCE is ignored\n"
	       "(mount.fuse3 and fstab pass one).\n\n"
	       "memstatfs options:\n"
	       "    -o period=N            seconds per measurement, 1..60 (default 1)\n"
	       "    -o sample_pages=N      pages sampled per GiB, 128..16384 (default 512)\n"
	       "    -o precision=P         processes' page-sampling: the 95%% interval's\n"
	       "                           half-width, 10%%, 2MiB/s, both (10%%,2MiB/s) or off\n"
	       "                           (default 25%%,1MiB/s; off with -o sample_pages)\n"
	       "    -o mode=MODE           default mode of the targets that have it\n"
	       "                           (default page-sampling)\n"
	       "    -o bandwidth=B         migration forecast: bytes/s, K M G T or Ki Mi Gi Ti\n"
	       "                           (default 32Mi, QEMU 7.2's max-bandwidth)\n"
	       "    -o downtime_ms=N       migration forecast: downtime-limit (default 300)\n"
	       "    -o link_bandwidth=B    migration forecast: the link's speed (default: "
	       "bandwidth)\n"
	       "    -o history=N           samples kept per target (default 60)\n"
	       "    -o max_targets=N       most targets tracked at once (default 4096)\n"
	       "    -o max_targets_per_uid=N  most targets one uid other than root tracks\n"
	       "                           (default: a quarter of max_targets)\n"
	       "    -o workers=N           measurement threads (default: number of CPUs)\n"
	       "    -f                     stay in the foreground, log to stderr\n"
	       "    -d                     debug: foreground, libfuse's request log\n"
	       "    -h, --help             this help\n"
	       "    -V, --version          versions\n",
	       prog);
	g_autofree char *modes = ms_modes_help();
	g_autofree char *sopts = ms_source_options_help();
	printf("%s%s\nlibfuse options:\n", sopts, modes);
	fuse_cmdline_help();
	fuse_lowlevel_help();
}

/* How long a stop waits for the workers to finish their steps. */
#define STOP_WAIT_MS 3000

static bool foreground;
static bool debug; /* -d, or MEMSTATFS_DEBUG in the environment */

static void log_handler(const gchar *domain, GLogLevelFlags level, const gchar *msg, gpointer data)
{
	(void)domain;
	(void)data;
	if ((level & G_LOG_LEVEL_DEBUG) && !debug)
		return;
	if (foreground) {
		fprintf(stderr, "memstatfs: %s\n", msg);
		return;
	}
	int prio = (level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL)) ? LOG_ERR
		   : (level & G_LOG_LEVEL_WARNING)			? LOG_WARNING
									: LOG_INFO;
	syslog(prio, "%s", msg);
}

/* A mount left behind by a daemon that was killed answers every access with
 * ENOTCONN; detach it so that a restart just works. */
static void clear_stale_mount(const char *mountpoint)
{
	struct statfs st;

	/* statfs, not stat: FUSE answers stat from its attribute cache for a
	 * second after the daemon died; statfs always asks the daemon. */
	if (statfs(mountpoint, &st) == 0 || errno != ENOTCONN)
		return;
	if (umount2(mountpoint, MNT_DETACH) == 0)
		g_message("%s: replaced a stale mount (its daemon had died)", mountpoint);
	else
		g_warning("%s: stale mount, and unmounting it failed: %s", mountpoint,
			  g_strerror(errno));
}

/* Each target holds a pidfd: take all the descriptors we are allowed. */
static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			g_warning("cannot raise the open-file limit: %s", g_strerror(errno));
	}
}

static int check_options(const options *o)
{
	if (o->period < MS_PERIOD_MIN || o->period > MS_PERIOD_MAX)
		return fprintf(stderr, "memstatfs: period must be 1..60\n"), -1;
	if (o->sample_pages < MS_SAMPLE_PAGES_MIN || o->sample_pages > MS_SAMPLE_PAGES_MAX)
		return fprintf(stderr, "memstatfs: sample_pages must be 128..16384\n"), -1;
	if (o->history < 1 || o->history > 1000000)
		return fprintf(stderr, "memstatfs: history must be 1..1000000\n"), -1;
	if (o->max_targets < 1 || o->max_targets > 0xffffff)
		return fprintf(stderr, "memstatfs: max_targets must be 1..16777215\n"), -1;
	if (o->max_targets_per_uid > 0xffffff)
		return fprintf(stderr, "memstatfs: max_targets_per_uid must be 1..16777215\n"), -1;
	if (o->workers < 1 || o->workers > 64)
		return fprintf(stderr, "memstatfs: workers must be 1..64\n"), -1;
	ms_precision pr;
	g_autofree char *why = NULL;
	if (o->precision &&
	    ms_parse_precision(o->precision, o->precision + strlen(o->precision), &pr, &why) < 0)
		return fprintf(stderr, "memstatfs: %s\n", why), -1;
	uint64_t b;
	if (o->bandwidth &&
	    !ms_parse_bandwidth(o->bandwidth, o->bandwidth + strlen(o->bandwidth), false, &b))
		return fprintf(stderr, "memstatfs: bandwidth must be bytes/s from 1 to 1P, with an "
				       "optional K M G T or Ki Mi Gi Ti\n"),
		       -1;
	if (o->link_bandwidth &&
	    !ms_parse_bandwidth(o->link_bandwidth, o->link_bandwidth + strlen(o->link_bandwidth),
				true, &b))
		return fprintf(stderr,
			       "memstatfs: link_bandwidth must be bytes/s up to 1P, with an "
			       "optional K M G T or Ki Mi Gi Ti\n"),
		       -1;
	if (o->downtime_ms > MS_DOWNTIME_MS_MAX)
		return fprintf(stderr, "memstatfs: downtime_ms must be 0..2000000\n"), -1;
	if (ms_check_default_mode(o->mode, &why) < 0)
		return fprintf(stderr, "memstatfs: %s\n", why), -1;
	return 0;
}

int main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct fuse_cmdline_opts cmd = {0};
	options o = {
		.period = 1,
		.sample_pages = 512,
		.downtime_ms = MS_DOWNTIME_MS_DEFAULT,
		.history = 60,
		.max_targets = 4096,
		.workers = (unsigned)MIN(MAX(sysconf(_SC_NPROCESSORS_ONLN), 1), 8),
		.positional = g_ptr_array_new_with_free_func(g_free),
	};
	struct fuse_session *se = NULL;
	struct fuse_loop_config *loop = NULL;
	ms_fs fs;
	int ret = 1;

	g_log_set_default_handler(log_handler, NULL);
	foreground = true;
	if (fuse_opt_parse(&args, &o, option_spec, option_proc) == -1)
		goto out_args;
	if (o.help) {
		usage(argv[0]);
		ret = 0;
		goto out_args;
	}
	if (o.version) {
		printf("memstatfs %s\nlibfuse %s\n", MEMSTATFS_VERSION, fuse_pkgversion());
		ret = 0;
		goto out_args;
	}
	if (o.positional->len < 1 || o.positional->len > 2) {
		fprintf(stderr, "usage: %s [options] [SOURCE] MOUNTPOINT (--help for more)\n",
			argv[0]);
		goto out_args;
	}
	if (!o.mode)
		o.mode = strdup(ms_default_mode());
	if (check_options(&o) < 0)
		goto out_args;
	/* Shows as "memstatfs on MOUNTPOINT type fuse.memstatfs". */
	fuse_opt_add_arg(&args, "-osubtype=memstatfs,fsname=memstatfs");
	/* libfuse takes the mountpoint; SOURCE is dropped. */
	fuse_opt_add_arg(&args, g_ptr_array_index(o.positional, o.positional->len - 1));
	if (fuse_parse_cmdline(&args, &cmd) != 0)
		goto out_args;
	foreground = cmd.foreground;
	debug = cmd.debug || g_getenv("MEMSTATFS_DEBUG");
	g_log_set_debug_enabled(debug);

	raise_fd_limit();
	ms_fs_init(&fs);
	se = fuse_session_new(&args, &ms_fs_ops, sizeof(ms_fs_ops), &fs);
	fs.se = se;
	if (!se)
		goto out_fs;
	if (fuse_set_signal_handlers(se) != 0)
		goto out_session;
	clear_stale_mount(cmd.mountpoint);
	if (fuse_session_mount(se, cmd.mountpoint) != 0)
		goto out_signals;
	if (!foreground)
		openlog("memstatfs", LOG_PID, LOG_DAEMON);
	if (fuse_daemonize(cmd.foreground) != 0)
		goto out_unmount;

	ms_registry_config rc = {
		.defaults = {.period_s = o.period,
			     .sample_pages = o.sample_pages,
			     .bandwidth = MS_BANDWIDTH_DEFAULT,
			     .downtime_ms = o.downtime_ms},
		.history = o.history,
		.max_targets = o.max_targets,
		.max_targets_per_uid =
			o.max_targets_per_uid ? o.max_targets_per_uid : MAX(o.max_targets / 4, 1),
		.workers = o.workers,
		.on_settled = ms_fs_target_settled,
		.on_changed = ms_fs_target_changed,
		.on_settled_data = &fs,
		.reserved_names = ms_tree_reserved_names,
	};
	g_strlcpy(rc.defaults.mode, o.mode, sizeof(rc.defaults.mode));
	if (o.precision) {
		g_autofree char *why = NULL;
		ms_parse_precision(o.precision, o.precision + strlen(o.precision),
				   &rc.defaults.precision, &why);
		rc.precision_given = true;
	}
	if (o.bandwidth)
		ms_parse_bandwidth(o.bandwidth, o.bandwidth + strlen(o.bandwidth), false,
				   &rc.defaults.bandwidth);
	if (o.link_bandwidth)
		ms_parse_bandwidth(o.link_bandwidth, o.link_bandwidth + strlen(o.link_bandwidth),
				   true, &rc.defaults.link_bandwidth);
	fs.reg = ms_registry_new(&rc);
	g_message("mounted on %s (period=%u sample_pages=%u history=%u)", cmd.mountpoint, o.period,
		  o.sample_pages, o.history);
	ms_log_mode_support();

	if (cmd.singlethread) {
		ret = fuse_session_loop(se);
	} else {
		loop = fuse_loop_cfg_create();
		fuse_loop_cfg_set_clone_fd(loop, cmd.clone_fd);
		if (cmd.max_idle_threads != UINT_MAX)
			fuse_loop_cfg_set_idle_threads(loop, cmd.max_idle_threads);
		/* -o max_threads, which fuse_main ignores in 3.14.0.  Reads
		 * waiting for a first figure are parked, not blocked in a
		 * thread, so a few threads serve any number of readers. */
		fuse_loop_cfg_set_max_threads(loop, cmd.max_threads);
		ret = fuse_session_loop_mt(se, loop);
		fuse_loop_cfg_destroy(loop);
	}
	/* After SIGTERM, SIGINT or SIGHUP libfuse returns the signal number:
	 * that is a clean stop too. */
	ret = ret < 0 ? 1 : 0;

	/* Unmount before the workers are stopped: a worker that a target
	 * holds (a read of a file mapping on a hung mount) must not leave a
	 * mount nobody serves.  No request is served any more (the loop's
	 * threads are joined); parked reads are answered first, while the
	 * connection is there, and every reader waiting in poll() is woken
	 * (its next poll fails once the connection is gone: POLLERR). */
	ms_fs_release_pending(&fs, EINTR);
	ms_fs_release_polls(&fs);
	g_message("unmounting %s", cmd.mountpoint);
	fuse_session_unmount(se);
	if (!ms_registry_free_within(fs.reg, STOP_WAIT_MS)) {
		/* It still uses the registry and fs: free nothing, run no
		 * exit handler (it could return meanwhile), end the process.
		 * A thread held uninterruptibly (a page of a hung mount) keeps
		 * the process a zombie until that mount answers or is
		 * aborted; the mount is gone already. */
		g_warning("a worker is still held by a target after %u ms: exiting without it",
			  STOP_WAIT_MS);
		fuse_remove_signal_handlers(se);
		_exit(ret);
	}
	fs.reg = NULL;
	goto out_signals;
out_unmount:
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out_session:
	fuse_session_destroy(se);
out_fs:
	ms_fs_clear(&fs);
	free(cmd.mountpoint);
out_args:
	fuse_opt_free_args(&args);
	g_ptr_array_unref(o.positional);
	free(o.mode);
	free(o.precision);
	free(o.bandwidth);
	free(o.link_bandwidth);
	return ret;
}
