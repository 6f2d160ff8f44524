/* registry.c: the tracked targets and their admission (registry.h).
 *
 * Admission is the same for every kind of target: the request's source
 * resolves what the line names (in the daemon's terms, checking the
 * caller), a target already tracked under that key takes the settings, and
 * otherwise the source admits it (opening what measuring needs, with the
 * caller's rights) and it is inserted and scheduled.
 *
 * Locks, always taken in this order:
 *   reg->lock     guards by_name, by_key, by_id, next_id, next_generation
 *                 and stopping.
 *   the scheduler's lock (scheduler.c)
 *   target->lock  (target.c)
 * No lock is held while a source admits a target or takes a step.
 */
#include "memstat/core/registry.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "memstat/core/scheduler.h"
#include "memstat/methods/fail.h"

struct ms_registry {
	ms_registry_config cfg; /* immutable */
	ms_scheduler *scheduler;

	pthread_mutex_t lock;
	GHashTable *by_name; /* name -> target (holds a reference) */
	GHashTable *by_key;  /* "kind:key" -> the same target (no reference) */
	GHashTable *by_id;   /* id -> the same target (no reference) */
	uint32_t next_id;
	uint64_t next_generation;
	bool stopping;
};

static void settled(ms_target *t, bool first, void *data)
{
	ms_registry *reg = data;

	if (first && reg->cfg.on_settled)
		reg->cfg.on_settled(ms_target_id(t), reg->cfg.on_settled_data);
	if (reg->cfg.on_changed)
		reg->cfg.on_changed(ms_target_id(t), reg->cfg.on_settled_data);
}

ms_registry *ms_registry_new(const ms_registry_config *cfg)
{
	ms_registry *reg = g_new0(ms_registry, 1);

	reg->cfg = *cfg;
	reg->cfg.history = MAX(cfg->history, 1);
	reg->cfg.workers = MAX(cfg->workers, 1);
	/* No precision said: the default, unless a sample_pages other than
	 * QEMU's 512 was (the daemon's -o sample_pages keeps its rule). */
	if (!cfg->precision_given && !cfg->defaults.precision.asked &&
	    cfg->defaults.sample_pages == MS_SAMPLE_PAGES_QEMU)
		reg->cfg.defaults.precision = MS_PRECISION_DEFAULT;
	pthread_mutex_init(&reg->lock, NULL);
	reg->by_name = g_hash_table_new_full(g_str_hash, g_str_equal, NULL,
					     (GDestroyNotify)ms_target_unref);
	reg->by_key = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	reg->by_id = g_hash_table_new(g_direct_hash, g_direct_equal);
	reg->next_id = 1;
	reg->scheduler = ms_scheduler_new(reg->cfg.workers, settled, reg);
	return reg;
}

void ms_registry_free(ms_registry *reg)
{
	ms_registry_free_within(reg, UINT32_MAX);
}

bool ms_registry_free_within(ms_registry *reg, uint32_t wait_ms)
{
	if (!reg)
		return true;
	pthread_mutex_lock(&reg->lock);
	reg->stopping = true;
	pthread_mutex_unlock(&reg->lock);
	if (!ms_scheduler_free(reg->scheduler, wait_ms))
		return false; /* a worker still steps a target: keep it all */
	g_hash_table_destroy(reg->by_id);
	g_hash_table_destroy(reg->by_key);
	g_hash_table_destroy(reg->by_name);
	pthread_mutex_destroy(&reg->lock);
	g_free(reg);
	return true;
}

/* The by_key key: kinds do not share keys. */
static char *key_of(const ms_source *src, const char *key)
{
	return g_strdup_printf("%s:%s", src->kind, key);
}

/* Under reg->lock: the target tracked under id's key, or NULL. */
static ms_target *find_key(ms_registry *reg, const ms_source *src, const ms_ident *id)
{
	g_autofree char *k = key_of(src, id->key);
	return g_hash_table_lookup(reg->by_key, k);
}

/* Under reg->lock: whether name is taken, by a target or the tree. */
static bool name_taken(ms_registry *reg, const char *name)
{
	for (const char *const *r = reg->cfg.reserved_names; r && *r; r++)
		if (strcmp(*r, name) == 0)
			return true;
	return g_hash_table_contains(reg->by_name, name);
}

/* Under reg->lock: a free id, and a generation.  Ids are 24 bits (they go
 * into inode numbers) and skip those still in use when they wrap; the
 * generation tells a reused id's targets apart. */
static uint32_t next_free_id(ms_registry *reg, uint64_t *generation)
{
	*generation = ++reg->next_generation;
	for (;;) {
		uint32_t id = reg->next_id;
		reg->next_id = (reg->next_id % 0xffffffu) + 1;
		if (!g_hash_table_contains(reg->by_id, GUINT_TO_POINTER(id)))
			return id;
	}
}

/* Under reg->lock: a track line naming a target already tracked applies its
 * settings, unless it asks for another name. */
static int retrack(ms_target *old, const ms_track_request *req, const ms_ident *id,
		   const ms_caller *caller, char **why)
{
	if (req->name[0] && strcmp(req->name, ms_target_name(old)) != 0)
		return ms_fail(why, -EEXIST, "%s is already tracked as %s", req->target,
			       ms_target_name(old));
	return ms_target_change(old, &req->change, caller, true, id->instance, why);
}

/* Under reg->lock: 0 when caller may have one more target tracked, else
 * -ENOSPC with *why: max_targets in all, or max_targets_per_uid for the
 * caller's uid (root's are bounded by max_targets only).  The targets a uid
 * has are those it tracked, listed until untracked. */
static int room_for(ms_registry *reg, const ms_caller *caller, char **why)
{
	GHashTableIter it;
	gpointer v;
	uint32_t n = 0;

	if (g_hash_table_size(reg->by_name) >= reg->cfg.max_targets)
		return ms_fail(why, -ENOSPC, "already tracking max_targets=%u targets",
			       reg->cfg.max_targets);
	if (caller->uid == 0 || !reg->cfg.max_targets_per_uid)
		return 0;
	g_hash_table_iter_init(&it, reg->by_name);
	while (g_hash_table_iter_next(&it, NULL, &v))
		n += ms_target_tracker_uid(v) == caller->uid;
	if (n >= reg->cfg.max_targets_per_uid)
		return ms_fail(why, -ENOSPC,
			       "uid %u already tracks max_targets_per_uid=%u targets: untrack one",
			       (unsigned)caller->uid, reg->cfg.max_targets_per_uid);
	return 0;
}

/* Under reg->lock: makes t findable and schedules its first step, or says
 * why not. */
static int insert(ms_registry *reg, ms_target *t, const ms_track_request *req,
		  const ms_caller *caller, char **why)
{
	const ms_ident *id = ms_target_ident(t);
	ms_target *old = find_key(reg, req->source, id);
	uint64_t generation;

	if (old) /* tracked by a concurrent write meanwhile */
		return retrack(old, req, id, caller, why);
	if (name_taken(reg, ms_target_name(t)))
		return ms_fail(why, -EEXIST, "the name %s is taken; choose another with name=",
			       ms_target_name(t));
	int r = room_for(reg, caller, why);
	if (r < 0)
		return r;
	if (reg->stopping)
		return ms_fail(why, -ESHUTDOWN, "shutting down");
	uint32_t id_num = next_free_id(reg, &generation);
	ms_target_insert_as(t, id_num, generation);
	g_hash_table_insert(reg->by_name, (char *)ms_target_name(t), ms_target_ref(t));
	g_hash_table_insert(reg->by_key, key_of(req->source, id->key), t);
	g_hash_table_insert(reg->by_id, GUINT_TO_POINTER(ms_target_id(t)), t);
	ms_scheduler_add(reg->scheduler, t);
	return 0;
}

/* The name of a target admitted as adm: the line's, or its own. */
static int name_of(const ms_source *src, const ms_track_request *req, const ms_admitted *adm,
		   char name[MS_NAME_MAX], char **why)
{
	g_autofree char *perr = NULL;

	g_strlcpy(name, req->name[0] ? req->name : adm->name, MS_NAME_MAX);
	if (!src->named)
		return 0;
	if (ms_check_name(name, &perr) < 0)
		return ms_fail(why, -EINVAL,
			       "the %s's name \"%s\" cannot name a directory (%s); choose one "
			       "with name=",
			       src->noun, name, perr);
	if (strspn(name, "0123456789") == strlen(name))
		return ms_fail(why, -EEXIST,
			       "all-digit names are pids': %s; choose another with name=", name);
	return 0;
}

int ms_registry_track(ms_registry *reg, const ms_track_request *req, const ms_caller *caller,
		      char **why)
{
	const ms_source *src = req->source;
	ms_admitted adm = {0};
	ms_ident id = {0};
	char name[MS_NAME_MAX];
	int r;

	if ((r = src->resolve(req->target, caller, &id, why)) < 0)
		return r;
	if (req->change.has_mode && (r = ms_source_check_mode(src, req->change.v.mode, why)) < 0)
		return r;

	pthread_mutex_lock(&reg->lock);
	ms_target *old = find_key(reg, src, &id);
	r = old ? retrack(old, req, &id, caller, why) : room_for(reg, caller, why);
	pthread_mutex_unlock(&reg->lock);
	if (r < 0 || old)
		return r;

	/* The settings: the line's, else the source's default mode for this
	 * target, else the daemon's (if the source has it). */
	ms_settings settings = reg->cfg.defaults;
	if (!ms_source_mode(src, settings.mode))
		g_strlcpy(settings.mode, src->modes[0].name, sizeof(settings.mode));
	ms_settings_apply(&settings, &req->change);
	if ((r = src->admit(&id, caller, settings.mode, &adm, why)) < 0)
		return r;
	if (!req->change.has_mode && adm.default_mode)
		g_strlcpy(settings.mode, adm.default_mode, sizeof(settings.mode));
	r = name_of(src, req, &adm, name, why);
	g_autoptr(ms_target) t =
		ms_target_new(src, &id, &adm, name, caller, &settings, reg->cfg.history);
	if (r < 0)
		return r;
	if ((r = ms_source_check_mode(src, settings.mode, why)) < 0 ||
	    (src->mode_ok && (r = src->mode_ok(adm.state, settings.mode, why)) < 0))
		return r;

	pthread_mutex_lock(&reg->lock);
	r = insert(reg, t, req, caller, why);
	pthread_mutex_unlock(&reg->lock);
	return r;
}

int ms_registry_untrack(ms_registry *reg, const char *name, const ms_caller *caller, char **why)
{
	pthread_mutex_lock(&reg->lock);
	ms_target *t = g_hash_table_lookup(reg->by_name, name);
	if (!t) {
		pthread_mutex_unlock(&reg->lock);
		return ms_fail(why, -ENOENT, "%s is not tracked", name);
	}
	if (!ms_target_owned_by(t, caller)) {
		pthread_mutex_unlock(&reg->lock);
		return ms_fail(why, -EACCES, "uid %u may not untrack %s", (unsigned)caller->uid,
			       name);
	}
	uint32_t id = ms_target_id(t);
	g_autofree char *key = key_of(ms_target_source(t), ms_target_ident(t)->key);
	ms_scheduler_remove(reg->scheduler, t);
	ms_target_mark_removed(t);
	g_hash_table_remove(reg->by_id, GUINT_TO_POINTER(id));
	g_hash_table_remove(reg->by_key, key);
	g_hash_table_remove(reg->by_name, name); /* drops the table's reference */
	pthread_mutex_unlock(&reg->lock);

	if (reg->cfg.on_settled)
		reg->cfg.on_settled(id, reg->cfg.on_settled_data);
	if (reg->cfg.on_changed)
		reg->cfg.on_changed(id, reg->cfg.on_settled_data);
	return 0;
}

ms_target *ms_registry_lookup(ms_registry *reg, const char *name)
{
	pthread_mutex_lock(&reg->lock);
	ms_target *t = g_hash_table_lookup(reg->by_name, name);
	if (t)
		ms_target_ref(t);
	pthread_mutex_unlock(&reg->lock);
	return t;
}

ms_target *ms_registry_lookup_id(ms_registry *reg, uint32_t id)
{
	pthread_mutex_lock(&reg->lock);
	ms_target *t = g_hash_table_lookup(reg->by_id, GUINT_TO_POINTER(id));
	if (t)
		ms_target_ref(t);
	pthread_mutex_unlock(&reg->lock);
	return t;
}

static gint by_id(gconstpointer a, gconstpointer b)
{
	uint32_t x = ms_target_id(*(ms_target *const *)a), y = ms_target_id(*(ms_target *const *)b);
	return x < y ? -1 : x > y;
}

GPtrArray *ms_registry_list(ms_registry *reg)
{
	GPtrArray *all = g_ptr_array_new_with_free_func((GDestroyNotify)ms_target_unref);
	GHashTableIter it;
	gpointer v;

	pthread_mutex_lock(&reg->lock);
	g_hash_table_iter_init(&it, reg->by_id);
	while (g_hash_table_iter_next(&it, NULL, &v))
		g_ptr_array_add(all, ms_target_ref(v));
	pthread_mutex_unlock(&reg->lock);
	g_ptr_array_sort(all, by_id);
	return all;
}

int ms_target_set(ms_registry *reg, ms_target *t, const ms_settings_change *change,
		  const ms_caller *caller, char **why)
{
	(void)reg;
	return ms_target_change(t, change, caller, false, 0, why);
}
