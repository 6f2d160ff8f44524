/* fuzz_qmp_message.c: one line from QEMU's monitor (ms_qmp_parse_message).
 *
 * The input is the line without its newline, as the client hands it over:
 * a length, no NUL terminator (the bytes after it in the client's buffer
 * are the next message's).  The object returned must outlive the parser
 * that made it: every member is visited and the whole written out again.
 */
#include <glib.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "memstat/methods/qmp.h"

static void visit(JsonObject *o, const gchar *name, JsonNode *node, gpointer data)
{
	size_t *n = data;
	*n += strlen(name) + (JSON_NODE_TYPE(node) == JSON_NODE_VALUE);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *line = fuzz_copy(data, size);
	JsonObject *o = ms_qmp_parse_message(line, size);

	free(line);
	if (size == 0 || memchr(data, '\0', size))
		FUZZ_CHECK(o == NULL);
	if (o) {
		size_t n = 0;
		json_object_foreach_member(o, visit, &n);
		JsonNode *node = json_node_init_object(json_node_alloc(), o);
		char *text = json_to_string(node, FALSE);
		FUZZ_CHECK(text && text[0] == '{');
		g_free(text);
		json_node_unref(node);
		json_object_unref(o);
	}
	return 0;
}
