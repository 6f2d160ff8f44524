/* tree_control.h: the tree's control files (the write functions of the rows
 * of tree.c): each write is one whole command, validated on a bounded copy
 * (settings.h), answered with a kernel errno and the reason (fail.h). */
#pragma once

#include "memstat/core/tree.h"

/* track: "TARGET [name=NAME] [key=value]...": tracks, or re-sets. */
int ms_write_track(ms_node_ctx *c, const char *buf, size_t len, char **why);
/* untrack: "NAME": c->gone is set to it. */
int ms_write_untrack(ms_node_ctx *c, const char *buf, size_t len, char **why);
/* period, sample_pages, mode of a target: its one value. */
int ms_write_setting(ms_node_ctx *c, const char *buf, size_t len, char **why);
