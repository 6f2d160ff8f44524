/* fail.h: the one error convention of memstatfs.
 *
 * A function that can fail returns 0 (or a count) on success and a negative
 * errno on failure, the errno a kernel pseudo-file would use, and says why in
 * a heap string the caller owns (free it; g_autofree):
 *
 *	if (pid <= 0)
 *		return ms_fail(why, -EINVAL, "%d is not a pid", pid);
 *
 * The reason is what `status` shows and the log says; the errno is what the
 * reader or writer of the file gets.
 */
#pragma once

#include <glib.h>

/* Sets *why (when why is not NULL) to the formatted reason, freeing a reason
 * already there, and returns err (a negative errno). */
int ms_fail(char **why, int err, const char *fmt, ...) G_GNUC_PRINTF(3, 4);
