/* proc.c: a process as the methods see it: whether it is still the one
 * that was tracked, its writable mappings, whether it runs, and whether its
 * memory can be read. */
#define _GNU_SOURCE
#include "memstat/methods/proc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "memstat/methods/fail.h"

bool ms_proc_alive(const ms_proc_id *id)
{
	if (id->pidfd >= 0) {
		struct pollfd p = {.fd = id->pidfd, .events = POLLIN};
		int r;

		do
			r = poll(&p, 1, 0);
		while (r < 0 && errno == EINTR);
		/* A pidfd polls readable once its process has exited. */
		return r == 0;
	}
	ms_proc_stat st;
	return ms_proc_stat_read(id->pid, &st) == 0 && st.starttime == id->starttime &&
	       st.state != 'Z' && st.state != 'X';
}

int ms_proc_writable_vmas(pid_t pid, GArray **out, char **why)
{
	char path[64];
	g_autofree char *text = NULL;
	int err = 0;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	int r = ms_read_file(path, &text, NULL);
	if (r == -ENOENT || r == -ESRCH)
		return -ESRCH;
	if (r < 0)
		return ms_fail(why, r, "cannot read %s: %s", path, g_strerror(-r));
	*out = ms_parse_maps(text, &err);
	if (!*out)
		return ms_fail(why, err, "cannot parse %s", path);
	return 0;
}

int ms_check_memory_access(pid_t pid, char **why)
{
	char path[64];

	/* /proc/PID/mem asks the same question process_vm_readv does (may this
	 * task attach to that one), and opening it answers it at no cost. */
	snprintf(path, sizeof(path), "/proc/%d/mem", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno == ENOENT ? ESRCH : errno;
		return ms_fail(why, -e, "cannot read the memory of process %d: %s", (int)pid,
			       g_strerror(e));
	}
	close(fd);
	return 0;
}

/* The state of one thread (or of a single-threaded process) from its stat
 * file, or 0. */
static char stat_state(const char *path, long *threads)
{
	g_autofree char *text = NULL;
	ms_proc_stat st;

	if (ms_read_file(path, &text, NULL) < 0 || ms_parse_stat(text, &st) < 0)
		return 0;
	if (threads)
		*threads = st.num_threads;
	return st.state;
}

bool ms_proc_any_thread_busy(pid_t pid)
{
	char path[64];
	long threads = 0;

	/* One thread: the process's own stat says it. */
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	char state = stat_state(path, &threads);
	if (state == 0 || state == 'R' || state == 'D')
		return true;
	if (threads == 1)
		return false;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	DIR *d = opendir(path);
	struct dirent *e;
	bool busy = d == NULL;

	while (!busy && (e = readdir(d))) {
		char stat_path[sizeof(path) + sizeof(e->d_name) + 8];
		if (e->d_name[0] == '.')
			continue;
		snprintf(stat_path, sizeof(stat_path), "%s/%s/stat", path, e->d_name);
		/* 0: a thread gone since readdir, which ran; say so. */
		state = stat_state(stat_path, NULL);
		busy = state == 0 || state == 'R' || state == 'D';
	}
	if (d)
		closedir(d);
	return busy;
}
