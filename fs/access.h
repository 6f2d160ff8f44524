/* access.h: acting on a file with a caller's rights, not the daemon's. */
#pragma once

#include "memstat/registry.h"

/* Connects to the UNIX stream socket at path as the caller would on its own:
 * with its uid, gid and groups for every permission check (search on each
 * directory, write on the socket).  Returns the connected fd, or -errno with
 * *why: -ENOENT, -EACCES, -ENOTSOCK (not a socket), -ECONNREFUSED (nobody
 * listens), -ETIMEDOUT (its backlog stays full), -ENAMETOOLONG.  *owner: the
 * socket's owner, as the caller saw it. */
int ms_connect_as(const char *path, const ms_caller *c, uid_t *owner, char **why);

/* 0 when the caller could connect to the socket at path on its own (search
 * on every directory, write on the socket), else -errno. */
int ms_may_connect_as(const char *path, const ms_caller *c);

/* The pid, in the daemon's pid namespace, of the process that the caller
 * names pid in its own pid namespace (as cgroup.procs reads a pid).  The
 * same pid when both are in one namespace, or when the caller's namespace
 * cannot be told; -ESRCH with *why when no process of the caller's
 * namespace has that pid. */
int ms_pid_from_caller(pid_t pid, const ms_caller *c, pid_t *out, char **why);
