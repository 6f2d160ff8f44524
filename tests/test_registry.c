/* test_registry.c: the registry and its workers without FUSE, with readers
 * in several threads while targets come, measure, exit and go.
 *
 * Plain C rather than Criterion: it is the test the ThreadSanitizer build
 * runs, and Criterion's arena cannot live beside TSan's shadow memory. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "memstat/core/registry.h"

static int failures;

static void report(const char *file, int line, const char *what, long long a, long long b)
{
	fprintf(stderr, "%s:%d: failed: %s (%lld, %lld)\n", file, line, what, a, b);
	__atomic_fetch_add(&failures, 1, __ATOMIC_RELAXED);
}

#define check(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond))                                                                       \
			report(__FILE__, __LINE__, #cond, 0, 0);                                   \
	} while (0)
#define check_cmp(a, op, b)                                                                        \
	do {                                                                                       \
		long long a_ = (long long)(a), b_ = (long long)(b);                                \
		if (!(a_ op b_))                                                                   \
			report(__FILE__, __LINE__, #a " " #op " " #b, a_, b_);                     \
	} while (0)
#define check_eq(a, b)	check_cmp(a, ==, b)
#define check_geq(a, b) check_cmp(a, >=, b)
#define check_gt(a, b)	check_cmp(a, >, b)

static int settled_calls;

static void on_settled(uint32_t id, void *data)
{
	(void)id;
	(void)data;
	__atomic_fetch_add(&settled_calls, 1, __ATOMIC_RELAXED);
}

static ms_registry *new_registry(uint32_t max_targets)
{
	ms_registry_config c = {
		.defaults = {.period_s = 1, .sample_pages = 512, .mode = "page-sampling"},
		.history = 4,
		.max_targets = max_targets,
		.workers = 2,
		.on_settled = on_settled,
	};
	return ms_registry_new(&c);
}

static pid_t child(void)
{
	pid_t p = fork();
	if (p == 0) {
		/* Some memory that changes. */
		static char buf[1 << 20];
		for (unsigned i = 0;; i++) {
			buf[(i * 4096u) % sizeof(buf)] = (char)i;
			usleep(1000);
		}
	}
	return p;
}

static int track(ms_registry *reg, pid_t pid, const char *settings)
{
	char line[128];
	ms_track_request req;
	char *why = NULL;
	ms_caller root = {0};

	snprintf(line, sizeof(line), "%d %s", (int)pid, settings ? settings : "");
	int r = ms_parse_track(line, strlen(line), &req, &why);
	if (r == 0)
		r = ms_registry_track(reg, &req, &root, &why);
	free(why);
	return r;
}

typedef struct {
	ms_registry *reg;
	volatile int stop;
	long reads;
} readers_arg;

static void *reader(void *data)
{
	readers_arg *a = data;
	while (!__atomic_load_n(&a->stop, __ATOMIC_RELAXED)) {
		GPtrArray *all = ms_registry_list(a->reg);
		for (guint i = 0; i < all->len; i++) {
			ms_target *t = g_ptr_array_index(all, i);
			ms_target_view v;
			ms_target_get_view(t, &v);
			ms_sample *s = ms_target_get_sample(t, 0);
			if (s) {
				/* A published sample is whole: its text says its seq. */
				char want[32];
				snprintf(want, sizeof(want), "seq %llu\n",
					 (unsigned long long)s->seq);
				check(strncmp(s->text, want, strlen(want)) == 0);
				check(s->seq >= v.first_seq || v.first_seq == 0);
				ms_sample_unref(s);
			}
			__atomic_fetch_add(&a->reads, 1, __ATOMIC_RELAXED);
		}
		g_ptr_array_unref(all);
	}
	return NULL;
}

static void churn_with_concurrent_readers(void)
{
	ms_registry *reg = new_registry(64);
	readers_arg a = {.reg = reg};
	pthread_t th[4];
	pid_t kids[6];

	for (int i = 0; i < 4; i++)
		pthread_create(&th[i], NULL, reader, &a);
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < 6; i++) {
			kids[i] = child();
			check_eq(track(reg, kids[i], i % 2 ? "sample_pages=16384" : NULL), 0);
		}
		usleep(1500000);
		for (int i = 0; i < 6; i++) {
			char name[16];
			char *why = NULL;
			ms_caller root = {0};
			snprintf(name, sizeof(name), "%d", (int)kids[i]);
			if (i < 3) {
				kill(kids[i], SIGKILL);
				waitpid(kids[i], NULL, 0);
			} else {
				check_eq(ms_registry_untrack(reg, name, &root, &why), 0);
				kill(kids[i], SIGKILL);
				waitpid(kids[i], NULL, 0);
			}
			free(why);
		}
		usleep(1200000);
	}
	/* The killed ones are listed as exited; the untracked ones are gone. */
	GPtrArray *all = ms_registry_list(reg);
	int exited = 0;
	for (guint i = 0; i < all->len; i++) {
		ms_target_view v;
		ms_target_get_view(g_ptr_array_index(all, i), &v);
		exited += v.state == MS_STATE_EXITED;
	}
	check_eq(all->len, 9);
	check_eq(exited, 9);
	g_ptr_array_unref(all);
	__atomic_store_n(&a.stop, 1, __ATOMIC_RELAXED);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	check_gt(a.reads, 0);
	/* Every target left measuring once (by a figure, by exiting, or by
	 * being untracked): 18 targets, untracked ones may settle twice. */
	check_geq(__atomic_load_n(&settled_calls, __ATOMIC_RELAXED), 18);
	ms_registry_free(reg);
}

static void free_while_measuring(void)
{
	ms_registry *reg = new_registry(8);
	pid_t k = child();
	check_eq(track(reg, k, "sample_pages=16384"), 0);
	usleep(300000);
	ms_registry_free(reg);
	kill(k, SIGKILL);
	waitpid(k, NULL, 0);
}

int main(void)
{
	churn_with_concurrent_readers();
	free_while_measuring();
	/* Criterion-style closing line for CI. */
	printf("registry: %d passed, %d failed\n", failures ? 1 : 2, failures ? 1 : 0);
	return failures ? 1 : 0;
}
