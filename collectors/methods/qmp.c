/* qmp.c: a QMP client: greeting, qmp_capabilities, then commands tagged with
 * ids.  QEMU ends every message with a newline and never puts one inside a
 * message, so the stream is read line by line. */
#define _GNU_SOURCE
#include "memstat/methods/qmp.h"

#include <errno.h>
#include <stdbool.h>
#include <poll.h>
#include <stdint.h>
#include <sys/socket.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "memstat/methods/fail.h"
#include "memstat/methods/measurement.h"

/* Deepest nesting of arrays and objects taken: json-glib parses
 * recursively, and QMP's replies nest a few levels at most. */
#define MAX_DEPTH 32

struct ms_qmp {
	int fd;
	bool broken;	  /* the stream broke QMP's framing: nothing more is read */
	GString *in;	  /* received, not yet parsed */
	uint64_t next_id; /* ids of commands sent: "ms-N" */
};

/* Monotonic milliseconds (measurement.h's clock). */
static int64_t mono_ms(void)
{
	return ms_now_us(CLOCK_MONOTONIC) / 1000;
}

/* Whether the text is one JSON object, alone on its line, nesting arrays
 * and objects no deeper than MAX_DEPTH (brackets inside strings do not
 * count, and outside them no '/' or '\'' is taken).  json-glib 1.6 would
 * parse a second value after the first and leak the first ("{}{}"), and
 * parses nesting by recursion. */
static bool one_shallow_object(const char *p, size_t len)
{
	int depth = 0;
	bool in_string = false, closed = false;
	size_t i = 0;

	while (i < len && g_ascii_isspace(p[i]))
		i++;
	if (i == len || p[i] != '{')
		return false;
	for (; i < len; i++) {
		char c = p[i];
		if (closed) {
			if (!g_ascii_isspace(c))
				return false;
		} else if (in_string) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_string = false;
		} else if (c == '"') {
			in_string = true;
		} else if (c == '/' || c == '\'') {
			/* json-glib also takes comments and single-quoted
			 * strings, which would hide a second value from this
			 * scan; QEMU sends neither. */
			return false;
		} else if (c == '[' || c == '{') {
			if (++depth > MAX_DEPTH)
				return false;
		} else if (c == ']' || c == '}') {
			closed = --depth == 0;
		}
	}
	return closed;
}

JsonObject *ms_qmp_parse_message(const char *line, size_t len)
{
	g_autoptr(JsonParser) p = json_parser_new_immutable();

	if (len == 0 || memchr(line, '\0', len) || !one_shallow_object(line, len))
		return NULL;
	if (!json_parser_load_from_data(p, line, (gssize)len, NULL))
		return NULL;
	JsonNode *root = json_parser_get_root(p);
	if (!root || !JSON_NODE_HOLDS_OBJECT(root))
		return NULL;
	return json_object_ref(json_node_get_object(root));
}

/* The next message, waiting until deadline (mono_ms).  0 with *out, or
 * -ETIMEDOUT, -ECONNRESET, -EPROTO. */
static int read_message(ms_qmp *q, int64_t deadline, JsonObject **out)
{
	if (q->broken)
		return -ECONNRESET;
	for (;;) {
		char *nl = memchr(q->in->str, '\n', q->in->len);
		if (nl) {
			size_t len = (size_t)(nl - q->in->str);
			JsonObject *o = ms_qmp_parse_message(q->in->str, len);
			g_string_erase(q->in, 0, (gssize)len + 1);
			if (!o) {
				/* QEMU never sends that: whatever it is, stop
				 * listening to it. */
				q->broken = true;
				return -EPROTO;
			}
			*out = o;
			return 0;
		}
		if (q->in->len >= MS_QMP_LINE_MAX) {
			q->broken = true;
			return -EPROTO;
		}
		int64_t left = deadline - mono_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		struct pollfd pfd = {.fd = q->fd, .events = POLLIN};
		int r = poll(&pfd, 1, (int)MIN(left, INT32_MAX));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -ETIMEDOUT;
		char buf[16384];
		ssize_t n = read(q->fd, buf, sizeof(buf));
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			return -ECONNRESET;
		g_string_append_len(q->in, buf, n);
	}
}

static int send_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EPIPE ? -ECONNRESET : -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static const char *describe(int err)
{
	switch (err) {
	case -ETIMEDOUT:
		return "QEMU did not answer in time";
	case -ECONNRESET:
		return "QEMU closed the QMP connection";
	case -EPROTO:
		return "not a QMP message";
	default:
		return g_strerror(-err);
	}
}

int ms_qmp_execute(ms_qmp *q, const char *command, JsonObject *args, int timeout_ms, JsonNode **ret,
		   char **why)
{
	g_autofree char *id = g_strdup_printf("ms-%" G_GUINT64_FORMAT, ++q->next_id);
	g_autoptr(JsonBuilder) b = json_builder_new();
	int64_t deadline = mono_ms() + timeout_ms;

	json_builder_begin_object(b);
	json_builder_set_member_name(b, "execute");
	json_builder_add_string_value(b, command);
	if (args) {
		json_builder_set_member_name(b, "arguments");
		JsonNode *a = json_node_new(JSON_NODE_OBJECT);
		json_node_set_object(a, args);
		json_builder_add_value(b, a);
	}
	json_builder_set_member_name(b, "id");
	json_builder_add_string_value(b, id);
	json_builder_end_object(b);
	g_autoptr(JsonNode) msg = json_builder_get_root(b);
	g_autofree char *text = json_to_string(msg, FALSE);
	g_autofree char *line = g_strconcat(text, "\n", NULL);

	g_debug("qmp -> %s", text);
	if (q->broken)
		return ms_fail(why, -ECONNRESET, "%s: the QMP connection broke earlier", command);
	int r = send_all(q->fd, line, strlen(line));
	if (r < 0)
		return ms_fail(why, r, "%s: %s", command, describe(r));
	for (;;) {
		g_autoptr(JsonObject) o = NULL;
		r = read_message(q, deadline, &o);
		if (r < 0)
			return ms_fail(why, r, "%s: %s", command, describe(r));
		/* Events, and replies to commands that timed out before. */
		JsonNode *idn = json_object_get_member(o, "id");
		const char *rid = idn && JSON_NODE_HOLDS_VALUE(idn) &&
						  json_node_get_value_type(idn) == G_TYPE_STRING
					  ? json_node_get_string(idn)
					  : "";
		if (strcmp(rid, id) != 0) {
			g_debug("qmp skipped a message that is not the reply to %s", id);
			continue;
		}
		if (g_log_get_debug_enabled()) {
			g_autoptr(JsonNode) n = json_node_init_object(json_node_alloc(), o);
			g_autofree char *reply = json_to_string(n, FALSE);
			g_debug("qmp <- %s", reply);
		}
		if (json_object_has_member(o, "return")) {
			*ret = json_node_copy(json_object_get_member(o, "return"));
			return 0;
		}
		JsonNode *err = json_object_get_member(o, "error");
		if (err && JSON_NODE_HOLDS_OBJECT(err)) {
			JsonObject *e = json_node_get_object(err);
			JsonNode *dn = json_object_get_member(e, "desc");
			bool is_text = dn && JSON_NODE_HOLDS_VALUE(dn) &&
				       json_node_get_value_type(dn) == G_TYPE_STRING;
			return ms_fail(why, -EREMOTEIO, "%s",
				       is_text ? json_node_get_string(dn) : "(no description)");
		}
		return ms_fail(why, -EPROTO, "%s: a reply with neither return nor error", command);
	}
}

int ms_qmp_open(int fd, int timeout_ms, ms_qmp **out, char **why)
{
	ms_qmp *q = g_new0(ms_qmp, 1);
	g_autoptr(JsonObject) greeting = NULL;
	g_autoptr(JsonNode) ret = NULL;

	q->fd = fd;
	q->in = g_string_new(NULL);
	int r = read_message(q, mono_ms() + timeout_ms, &greeting);
	if (r == 0 && !json_object_has_member(greeting, "QMP"))
		r = -EPROTO;
	if (r < 0) {
		ms_fail(why, r, "no QMP greeting: %s", describe(r));
		ms_qmp_close(q);
		/* Whatever answered, it is not QEMU's monitor. */
		return r == -ETIMEDOUT || r == -ECONNRESET ? -EPROTO : r;
	}
	r = ms_qmp_execute(q, "qmp_capabilities", NULL, timeout_ms, &ret, why);
	if (r < 0) {
		ms_qmp_close(q);
		return r == -EREMOTEIO ? -EPROTO : r;
	}
	*out = q;
	return 0;
}

void ms_qmp_close(ms_qmp *q)
{
	if (!q)
		return;
	close(q->fd);
	g_string_free(q->in, TRUE);
	g_free(q);
}
