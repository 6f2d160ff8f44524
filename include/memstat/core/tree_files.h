/* tree_files.h: what the tree's nodes show (the render, list, lookup and
 * attr functions of the rows of tree.c).  Each takes the node's context
 * (tree.h); a node under a target gets it alive and of a kind that has the
 * node. */
#pragma once

#include "memstat/core/tree.h"

/* Reads what the tree shows for the daemon's life (meminfo/, memory/
 * names). */
void ms_files_init(void);

/* The root. */
int ms_render_track(ms_node_ctx *c, char **out);   /* one line per target: a track line */
int ms_render_metrics(ms_node_ctx *c, char **out); /* metrics.h */
void ms_list_targets(ms_node_ctx *c, ms_entry_fn add, void *data);
int ms_lookup_target(ms_node_ctx *c, const char *name, uint32_t *id, uint32_t *idx);

/* meminfo/<field>: idx is the field's index in the names fixed at start. */
int ms_render_meminfo(ms_node_ctx *c, char **out);
void ms_list_meminfo(ms_node_ctx *c, ms_entry_fn add, void *data);
int ms_lookup_meminfo(ms_node_ctx *c, const char *name, uint32_t *id, uint32_t *idx);
int ms_attr_meminfo(ms_node_ctx *c, ms_node_attr *a);

/* A target's own files. */
int ms_render_status(ms_node_ctx *c, char **out); /* state, then why */
int ms_render_rate(ms_node_ctx *c, char **out);	  /* -EAGAIN before the first */
int ms_render_period(ms_node_ctx *c, char **out);
int ms_render_sample_pages(ms_node_ctx *c, char **out);
int ms_render_precision(ms_node_ctx *c, char **out);
int ms_render_mode(ms_node_ctx *c, char **out);

/* samples/<seq> and samples/latest. */
int ms_render_sample(ms_node_ctx *c, char **out);
void ms_list_samples(ms_node_ctx *c, ms_entry_fn add, void *data);
int ms_lookup_sample(ms_node_ctx *c, const char *name, uint32_t *id, uint32_t *idx);
int ms_attr_sample(ms_node_ctx *c, ms_node_attr *a);
int ms_render_latest(ms_node_ctx *c, char **out);
int ms_attr_latest(ms_node_ctx *c, ms_node_attr *a);

/* A process's memory/<field> (process.h). */
int ms_render_memory(ms_node_ctx *c, char **out);
void ms_list_memory(ms_node_ctx *c, ms_entry_fn add, void *data);
int ms_lookup_memory(ms_node_ctx *c, const char *name, uint32_t *id, uint32_t *idx);
int ms_attr_memory(ms_node_ctx *c, ms_node_attr *a);

/* A VM's qemu_pid, socket and vcpu/<id>/rate (qemu.h). */
int ms_render_libvirt_qemu_pid(ms_node_ctx *c, char **out);
int ms_render_qemu_pid(ms_node_ctx *c, char **out);
int ms_render_socket(ms_node_ctx *c, char **out);
void ms_list_vcpus(ms_node_ctx *c, ms_entry_fn add, void *data);
int ms_lookup_vcpu(ms_node_ctx *c, const char *name, uint32_t *id, uint32_t *idx);
int ms_attr_vcpu(ms_node_ctx *c, ms_node_attr *a);
int ms_render_vcpu_rate(ms_node_ctx *c, char **out);

/* A container's pids, memory/<field> and pressure/<field> (cgroup.h).
 * memory/'s idx is the name's index in the names seen so far (this
 * daemon's life). */
int ms_render_pids(ms_node_ctx *c, char **out);
int ms_render_cgroup_memory(ms_node_ctx *c, char **out);
void ms_list_cgroup_memory(ms_node_ctx *c, ms_entry_fn add, void *data);
int ms_lookup_cgroup_memory(ms_node_ctx *c, const char *name, uint32_t *id, uint32_t *idx);
int ms_render_pressure(ms_node_ctx *c, char **out);
void ms_list_pressure(ms_node_ctx *c, ms_entry_fn add, void *data);
int ms_lookup_pressure(ms_node_ctx *c, const char *name, uint32_t *id, uint32_t *idx);
/* growth and migration/ (forecast.h): the growth curve, the forecast's
 * settings (bandwidth, downtime_ms, link_bandwidth: rendered by name) and
 * its results (by name; ENODATA before the first curve, but verdict and
 * model). */
int ms_render_growth(ms_node_ctx *c, char **out);
int ms_render_migration_setting(ms_node_ctx *c, char **out);
int ms_render_migration(ms_node_ctx *c, char **out);
