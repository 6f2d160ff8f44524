/* proc.h: a process as the methods see it (from /proc and its pidfd). */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <sys/types.h>

#include "memstat/methods/procfs.h"

/* A process, told apart from any later one that gets its pid. */
typedef struct {
	pid_t pid;
	int pidfd;		      /* -1 where pidfd_open is missing */
	unsigned long long starttime; /* field 22 of /proc/PID/stat */
} ms_proc_id;

/* Whether the process is still alive: its pidfd does not poll readable, or
 * (without a pidfd) its pid still has the same start time.  What was read
 * from /proc or the process's memory before a true answer belonged to it:
 * a pid is not reused before its process has exited. */
bool ms_proc_alive(const ms_proc_id *id);

/* The writable mappings of pid (GArray of ms_vma).  0, -ESRCH, or -errno
 * with *why. */
int ms_proc_writable_vmas(pid_t pid, GArray **out, char **why);

/* Whether a thread of pid is running or waiting to run (state R), whose CPU
 * time the kernel may not have counted yet (it does at each tick and each
 * switch), or in uninterruptible sleep (D: waiting for a vfork child, or for
 * I/O that a device may be writing into its memory).  true when it cannot
 * tell. */
bool ms_proc_any_thread_busy(pid_t pid);

/* 0 when this daemon may read pid's memory, else -EACCES/-EPERM/-ESRCH
 * with *why. */
int ms_check_memory_access(pid_t pid, char **why);
