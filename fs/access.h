/* access.h: acting on a file with a caller's rights, not the daemon's. */
#pragma once

#include "memstat/registry.h"

/* Connects to the UNIX stream socket at path as the caller would on its own:
 * with its uid, gid and groups for every permission check (search on each
 * directory, write on the socket).  Returns the connected fd, or -errno with
 * *why: -ENOENT, -EACCES, -ENOTSOCK (not a socket), -ECONNREFUSED (nobody
 * listens), -ENAMETOOLONG. */
int ms_connect_as(const char *path, const ms_caller *c, char **why);
