/* fuzz_common.c: set-up and helpers shared by the harnesses (fuzz.h). */
#include "fuzz.h"

#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Drops messages, info and debug output (a fuzzer runs millions of inputs),
 * keeps warnings; criticals are made fatal below. */
static void quiet_handler(const gchar *domain, GLogLevelFlags level, const gchar *message,
			  gpointer data)
{
	if (level & (G_LOG_LEVEL_MESSAGE | G_LOG_LEVEL_INFO | G_LOG_LEVEL_DEBUG))
		return;
	g_log_default_handler(domain, level, message, data);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	/* A g_return_if_fail() failing in GLib or json-glib is a caller's bug:
	 * abort, so that libFuzzer keeps the input. */
	g_log_set_always_fatal(G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL);
	g_log_set_default_handler(quiet_handler, NULL);
	return 0;
}

char *fuzz_copy(const uint8_t *data, size_t size)
{
	/* malloc(0) gives a valid pointer to no bytes, here and under ASan. */
	char *p = malloc(size);
	if (!p && size)
		abort();
	if (size)
		memcpy(p, data, size);
	return p;
}

char *fuzz_cstr(const uint8_t *data, size_t size)
{
	char *p = malloc(size + 1);
	if (!p)
		abort();
	if (size)
		memcpy(p, data, size);
	p[size] = '\0';
	return p;
}

void fuzz_fail(const char *file, int line, const char *what)
{
	fprintf(stderr, "%s:%d: harness check failed: %s\n", file, line, what);
	abort();
}
