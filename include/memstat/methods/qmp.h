/* qmp.h: a client for QEMU's machine protocol (QMP) over a stream socket.
 *
 * One command at a time, tagged with an id; events and replies to earlier,
 * timed-out commands are skipped.  Not thread safe: one user at a time.
 */
#pragma once

#include <json-glib/json-glib.h>
#include <stddef.h>

#define MS_QMP_LINE_MAX (1u << 20) /* longest message taken from QEMU */

typedef struct ms_qmp ms_qmp;

/* Takes fd, a connected socket: reads QEMU's greeting and negotiates
 * capabilities.  0, or -EPROTO (not QMP), -ETIMEDOUT, -ECONNRESET (closed)
 * with *why; fd is closed on failure. */
int ms_qmp_open(int fd, int timeout_ms, ms_qmp **out, char **why);

/* Runs command with args (NULL for none) and waits up to timeout_ms for its
 * reply.  0 with *ret (the reply's "return" value; json_node_unref it),
 * -EREMOTEIO when QEMU answered with an error (*why: its description),
 * -ECONNRESET when QEMU closed the connection, -ETIMEDOUT, -EPROTO. */
int ms_qmp_execute(ms_qmp *q, const char *command, JsonObject *args, int timeout_ms, JsonNode **ret,
		   char **why);

void ms_qmp_close(ms_qmp *q);

/* Parses one message (a line without its newline) into an object.  NULL
 * when it is not a JSON object.  Exposed for tests and fuzzing. */
JsonObject *ms_qmp_parse_message(const char *line, size_t len);
