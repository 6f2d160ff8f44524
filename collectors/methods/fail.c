/* fail.c: the one error convention (fail.h). */
#include "memstat/methods/fail.h"

#include <stdarg.h>

int ms_fail(char **why, int err, const char *fmt, ...)
{
	va_list ap;

	if (!why)
		return err;
	g_free(*why);
	va_start(ap, fmt);
	*why = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	return err;
}
