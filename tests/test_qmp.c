/* test_qmp.c: the QMP client and the VM collector against a scripted peer on
 * a socketpair.
 *
 * Real QEMU is driven by test_vm.c; this file covers what Debian's QEMU 7.2
 * cannot show here: events and stale replies interleaved, a peer that
 * stops answering, and QEMU 8.2's calc-time-unit.  The 8.2 replies below
 * are written by hand from QEMU 8.2's QAPI schema (migration.json,
 * DirtyRateInfo), not recorded: no QEMU 8.2 runs on this machine.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "memstat/core/settings.h"
#include "memstat/methods/qemu_dirty_rate.h"
#include "memstat/methods/qmp.h"
#include "memstat/sources/qemu.h"

#define GREETING                                                                                   \
	"{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, \"major\": 8}, "          \
	"\"package\": \"\"}, \"capabilities\": [\"oob\"]}}\n"

typedef struct {
	const char *command; /* expected; NULL ends the script */
	const char *before;  /* sent before the reply (events...), or NULL */
	const char *reply;   /* "{...}" without an id, or NULL: no answer */
} step;

typedef struct {
	int fd;
	const char *greeting;
	const step *script;
	int mismatches;
	pthread_t thread;
} peer;

static void send_line(int fd, const char *s)
{
	cr_assert(write(fd, s, strlen(s)) == (ssize_t)strlen(s));
}

/* Reads one line (without its newline) into buf; false at end of file. */
static bool read_line(int fd, char *buf, size_t len)
{
	size_t n = 0;
	while (n + 1 < len) {
		char c;
		if (read(fd, &c, 1) != 1)
			return false;
		if (c == '\n')
			break;
		buf[n++] = c;
	}
	buf[n] = '\0';
	return true;
}

static void *peer_main(void *data)
{
	peer *p = data;
	char line[4096];

	if (p->greeting)
		send_line(p->fd, p->greeting);
	for (const step *s = p->script; s->command; s++) {
		if (!read_line(p->fd, line, sizeof(line)))
			break;
		JsonObject *o = ms_qmp_parse_message(line, strlen(line));
		const char *cmd =
			o ? json_object_get_string_member_with_default(o, "execute", "") : "";
		const char *id = o ? json_object_get_string_member_with_default(o, "id", "") : "";
		if (strcmp(cmd, s->command) != 0) {
			fprintf(stderr, "peer: expected %s, got %s\n", s->command, line);
			p->mismatches++;
		}
		if (s->before)
			send_line(p->fd, s->before);
		if (s->reply) {
			/* The id goes first: {"id": "...", <the reply's members>} */
			char out[4096];
			snprintf(out, sizeof(out), "{\"id\": \"%s\", %s\n", id, s->reply + 1);
			send_line(p->fd, out);
		}
		if (o)
			json_object_unref(o);
	}
	return NULL;
}

/* Starts the peer; returns our end of the socketpair. */
static int peer_start(peer *p, const char *greeting, const step *script)
{
	int sv[2];
	cr_assert(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	p->fd = sv[1];
	p->greeting = greeting;
	p->script = script;
	p->mismatches = 0;
	cr_assert(pthread_create(&p->thread, NULL, peer_main, p) == 0);
	return sv[0];
}

static void peer_join(peer *p)
{
	shutdown(p->fd, SHUT_RDWR);
	pthread_join(p->thread, NULL);
	close(p->fd);
	cr_expect_eq(p->mismatches, 0);
}

Test(qmp, events_and_stale_replies_are_skipped)
{
	const step script[] = {
		{"qmp_capabilities", NULL, "{\"return\": {}}"},
		{"query-name",
		 "{\"timestamp\": {\"seconds\": 1, \"microseconds\": 2}, \"event\": \"RESUME\"}\n"
		 "{\"id\": \"ms-0\", \"return\": {\"name\": \"stale\"}}\n",
		 "{\"return\": {\"name\": \"web1\"}}"},
		{NULL, NULL, NULL},
	};
	peer p;
	ms_qmp *q = NULL;
	char *why = NULL;
	JsonNode *ret = NULL;

	int fd = peer_start(&p, GREETING, script);
	cr_assert_eq(ms_qmp_open(fd, 2000, &q, &why), 0, "%s", why);
	cr_assert_eq(ms_qmp_execute(q, "query-name", NULL, 2000, &ret, &why), 0, "%s", why);
	cr_expect_str_eq(json_object_get_string_member(json_node_get_object(ret), "name"), "web1");
	json_node_unref(ret);
	ms_qmp_close(q);
	peer_join(&p);
}

Test(qmp, errors_timeouts_and_hangups)
{
	const step script[] = {
		{"qmp_capabilities", NULL, "{\"return\": {}}"},
		{"calc-dirty-rate", NULL,
		 "{\"error\": {\"class\": \"GenericError\", \"desc\": \"the dirty rate is already "
		 "being measured.\"}}"},
		{"query-dirty-rate", NULL, NULL}, /* never answered */
		{NULL, NULL, NULL},
	};
	peer p;
	ms_qmp *q = NULL;
	char *why = NULL;
	JsonNode *ret = NULL;

	int fd = peer_start(&p, GREETING, script);
	cr_assert_eq(ms_qmp_open(fd, 2000, &q, &why), 0, "%s", why);
	cr_expect_eq(ms_qmp_execute(q, "calc-dirty-rate", NULL, 2000, &ret, &why), -EREMOTEIO);
	cr_expect(why && strstr(why, "already being measured"), "%s", why);
	g_free(why);
	why = NULL;
	cr_expect_eq(ms_qmp_execute(q, "query-dirty-rate", NULL, 200, &ret, &why), -ETIMEDOUT);
	g_free(why);
	why = NULL;
	/* The peer's script is over: it hangs up. */
	peer_join(&p);
	cr_expect_eq(ms_qmp_execute(q, "query-dirty-rate", NULL, 2000, &ret, &why), -ECONNRESET);
	g_free(why);
	ms_qmp_close(q);
}

Test(qmp, a_peer_that_is_not_qemu)
{
	const step none[] = {{NULL, NULL, NULL}};
	const char *greetings[] = {"SSH-2.0-OpenSSH_9.2\r\n", "{\"hello\": 1}\n", "[1,2]\n",
				   "{\"QMP\": {}\n"};
	for (size_t i = 0; i < G_N_ELEMENTS(greetings); i++) {
		peer p;
		ms_qmp *q = NULL;
		char *why = NULL;
		int fd = peer_start(&p, greetings[i], none);
		cr_expect_eq(ms_qmp_open(fd, 500, &q, &why), -EPROTO, "greeting %s", greetings[i]);
		cr_expect(why != NULL);
		g_free(why);
		peer_join(&p);
	}
	/* Nothing at all within the timeout. */
	peer p;
	ms_qmp *q = NULL;
	char *why = NULL;
	int fd = peer_start(&p, NULL, none);
	cr_expect_eq(ms_qmp_open(fd, 200, &q, &why), -EPROTO);
	g_free(why);
	peer_join(&p);
}

/* A VM under QEMU 8.2: millisecond calc-time in replies (see the top). */
Test(qmp, vm_step_reads_qemu_8_2_millisecond_calc_time)
{
	const step script[] = {
		{"qmp_capabilities", NULL, "{\"return\": {}}"},
		{"query-name", NULL, "{\"return\": {}}"},
		{"query-memory-size-summary", NULL,
		 "{\"return\": {\"base-memory\": 1073741824, \"plugged-memory\": 0}}"},
		{"query-kvm", NULL, "{\"return\": {\"enabled\": false, \"present\": true}}"},
#define RUNNING                                                                                    \
	{"query-status", NULL, "{\"return\": {\"running\": true, \"status\": \"running\"}}"},      \
		{"query-migrate", NULL, "{\"return\": {}}"},                                       \
		{"query-memory-size-summary", NULL,                                                \
		 "{\"return\": {\"base-memory\": 1073741824, \"plugged-memory\": 0}}"}
		RUNNING,
		{"query-dirty-rate", NULL, "{\"return\": {\"status\": \"unstarted\"}}"},
		{"calc-dirty-rate", NULL, "{\"return\": {}}"},
		{"query-dirty-rate", NULL,
		 "{\"return\": {\"status\": \"measuring\", \"sample-pages\": 512, \"mode\": "
		 "\"page-sampling\", \"start-time\": 777, \"calc-time\": 1000, "
		 "\"calc-time-unit\": \"millisecond\"}}"},
		RUNNING,
		{"query-dirty-rate", NULL,
		 "{\"return\": {\"status\": \"measured\", \"sample-pages\": 512, \"dirty-rate\": "
		 "42, "
		 "\"mode\": \"page-sampling\", \"start-time\": 777, \"calc-time\": 1000, "
		 "\"calc-time-unit\": \"millisecond\"}}"},
		/* paused: no measurement is started */
		{"query-status", NULL,
		 "{\"return\": {\"running\": false, \"status\": \"paused\"}}"},
		{"query-migrate", NULL, "{\"return\": {}}"},
		{"query-memory-size-summary", NULL,
		 "{\"return\": {\"base-memory\": 1073741824, \"plugged-memory\": 0}}"},
		/* migrating */
		{"query-status", NULL,
		 "{\"return\": {\"running\": true, \"status\": \"running\"}}"},
		{"query-migrate", NULL, "{\"return\": {\"status\": \"active\"}}"},
		{"query-memory-size-summary", NULL,
		 "{\"return\": {\"base-memory\": 1073741824, \"plugged-memory\": 0}}"},
		/* running, and another client's result not read yet: left alone */
		RUNNING,
		{"query-dirty-rate", NULL,
		 "{\"return\": {\"status\": \"measured\", \"dirty-rate\": 3, \"mode\": "
		 "\"page-sampling\", \"start-time\": 900, \"calc-time\": 1}}"},
		{NULL, NULL, NULL},
	};
	peer p;
	ms_vm *vm = NULL;
	char *why = NULL;
	ms_measurement m = {0};
	ms_params params = {.period_ms = 1000, .sample_pages = 512};

	int fd = peer_start(&p, GREETING, script);
	cr_assert_eq(ms_vm_open(fd, &vm, &why), 0, "%s", why);
	cr_expect_null(ms_vm_name(vm));
	cr_expect_str_eq(ms_vm_default_mode(vm), "page-sampling");
	cr_expect_eq(ms_vm_ram_bytes(vm), 1u << 30);
	cr_expect_eq(ms_vm_mode_supported(vm, "dirty-bitmap", &why), -EOPNOTSUPP);
	g_free(why);
	why = NULL;
	cr_expect_eq(ms_vm_mode_supported(vm, "full-scan", &why), -EINVAL);
	g_free(why);
	why = NULL;
	uint32_t again = 0;
	ms_vm_run run;
	/* First step: nothing to close, starts QEMU's measurement. */
	cr_assert_eq(ms_vm_step(vm, &params, "page-sampling", &m, &again, &run, &why), 0, "%s",
		     why);
	/* Second: reads it, and leaves QEMU's slot free for a while. */
	cr_assert_eq(ms_vm_step(vm, &params, "page-sampling", &m, &again, &run, &why), 1, "%s",
		     why);
	cr_expect_eq(again, MS_VM_SHARE_GAP_MS);
	cr_expect_eq(m.period_ms, 1000, "calc-time 1000 ms read as %u ms", m.period_ms);
	cr_expect_eq(m.rate, 42);
	cr_expect_eq(m.pages_total, 262144);
	cr_expect_eq(m.pages_sampled, 512);
	/* QEMU truncates: its estimate was in [42, 43). */
	cr_expect(m.rate_lo < 42 && m.rate_hi > 43, "[%f, %f]", m.rate_lo, m.rate_hi);
	cr_expect_not(m.exact);
	g_free(m.vcpu);
	/* Paused, then migrating: held, nothing started. */
	cr_assert_eq(ms_vm_step(vm, &params, "page-sampling", &m, &again, &run, &why), 0, "%s",
		     why);
	cr_expect_eq(run, MS_VM_PAUSED);
	cr_assert_eq(ms_vm_step(vm, &params, "page-sampling", &m, &again, &run, &why), 0, "%s",
		     why);
	cr_expect_eq(run, MS_VM_MIGRATING);
	/* Another client's result: held for it to read. */
	usleep(MS_VM_SHARE_GAP_MS * 1000);
	cr_expect_eq(ms_vm_step(vm, &params, "page-sampling", &m, &again, &run, &why), -EBUSY);
	cr_expect(again > 0 && again <= MS_VM_SHARE_HOLD_MS, "%u", again);
	g_free(why);
	why = NULL;
	peer_join(&p);
	/* QEMU gone: the VM has exited. */
	cr_expect_eq(ms_vm_step(vm, &params, "page-sampling", &m, &again, &run, &why), -ESRCH);
	g_free(why);
	ms_vm_free(vm);
}

static int track(const char *s, ms_track_request *r)
{
	g_autofree char *why = NULL;
	return ms_parse_track(s, strlen(s), r, &why);
}

/* QEMU's whole MiB/s, truncated: the interval holds [r, r + 1). */
Test(vm, truncation_intervals)
{
	ms_vm_result r = {.status = 2, .mode = "dirty-bitmap", .rate = 7, .calc_ms = 1000};
	ms_measurement m;

	ms_vm_fill_measurement(&r, 0, 1, 512, 256u << 20, &m);
	cr_expect_not(m.exact, "a truncated figure is not exact");
	cr_expect(m.rate_lo == 7.0 && m.rate_hi == 8.0, "[%f, %f]", m.rate_lo, m.rate_hi);
	r.mode = "page-sampling";
	ms_vm_fill_measurement(&r, 0, 1, 16384, 256u << 20, &m);
	cr_expect(m.rate_lo < 7.0 && m.rate_hi > 8.0, "[%f, %f]", m.rate_lo, m.rate_hi);
	r.rate = 0;
	ms_vm_fill_measurement(&r, 0, 1, 512, 256u << 20, &m);
	cr_expect(m.rate_lo == 0.0 && m.rate_hi >= 1.0, "[%f, %f]", m.rate_lo, m.rate_hi);
}

Test(settings, vm_track_lines)
{
	ms_track_request r;

	cr_assert_eq(track("/run/qemu/web1.qmp\n", &r), 0);
	cr_expect_str_eq(r.target, "/run/qemu/web1.qmp");
	cr_expect_eq(r.source, &ms_qemu_source, "a socket, not a pid");
	cr_expect_str_eq(r.name, "");
	cr_assert_eq(track("/run/q.sock name=db-2 period=5 mode=dirty-ring", &r), 0);
	cr_expect_str_eq(r.name, "db-2");
	cr_expect(r.change.has_mode && strcmp(r.change.v.mode, "dirty-ring") == 0);
	cr_expect_eq(r.change.v.period_s, 5);
	const char *bad[] = {"run/web1.qmp", "./web1.qmp",	 "/s name=",	   "/s name=a/b",
			     "/s name=..",   "/s name=a name=b", "4242 name=web1", "/s mode=nope"};
	for (size_t i = 0; i < G_N_ELEMENTS(bad); i++)
		cr_expect_eq(track(bad[i], &r), -EINVAL, "%s", bad[i]);
	char longpath[200];
	memset(longpath, 'a', sizeof(longpath) - 1);
	longpath[0] = '/';
	longpath[sizeof(longpath) - 1] = '\0';
	cr_expect_eq(track(longpath, &r), -ENAMETOOLONG);
}

/* Replies a hostile peer could send: none may crash the client, and a
 * stream that breaks QMP's framing is dropped. */
Test(qmp, hostile_replies)
{
	const step script[] = {
		{"qmp_capabilities", NULL, "{\"return\": {}}"},
		/* an id that is a number, then the error with a numeric desc */
		{"query-name", "{\"id\": 5, \"return\": {}}\n",
		 "{\"error\": {\"class\": \"GenericError\", \"desc\": 1}}"},
		/* nesting deep enough to overflow a recursive parser */
		{"query-kvm", NULL, NULL},
		{NULL, NULL, NULL},
	};
	peer p;
	ms_qmp *q = NULL;
	char *why = NULL;
	JsonNode *ret = NULL;

	int fd = peer_start(&p, GREETING, script);
	cr_assert_eq(ms_qmp_open(fd, 2000, &q, &why), 0, "%s", why);
	cr_expect_eq(ms_qmp_execute(q, "query-name", NULL, 2000, &ret, &why), -EREMOTEIO);
	cr_expect_str_eq(why, "(no description)");
	g_free(why);
	why = NULL;
	GString *deep = g_string_new("{\"id\": \"ms-3\", \"return\": ");
	for (int i = 0; i < 200000; i++)
		g_string_append_c(deep, '[');
	g_string_append_c(deep, '\n');
	cr_assert(write(p.fd, deep->str, deep->len) == (ssize_t)deep->len);
	g_string_free(deep, TRUE);
	cr_expect_eq(ms_qmp_execute(q, "query-kvm", NULL, 2000, &ret, &why), -EPROTO);
	g_free(why);
	why = NULL;
	/* Once broken, the connection is as good as closed. */
	cr_expect_eq(ms_qmp_execute(q, "query-kvm", NULL, 2000, &ret, &why), -ECONNRESET);
	g_free(why);
	ms_qmp_close(q);
	peer_join(&p);
	/* Deep nesting alone is refused before json-glib sees it. */
	GString *d2 = g_string_new(NULL);
	for (int i = 0; i < 100; i++)
		g_string_append_c(d2, '[');
	cr_expect_null(ms_qmp_parse_message(d2->str, d2->len));
	g_string_free(d2, TRUE);
	const char *quoted = "{\"a\": \"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\"}";
	JsonObject *o = ms_qmp_parse_message(quoted, strlen(quoted));
	cr_expect_not_null(o, "brackets inside strings are text");
	/* One object per line: json-glib 1.6 leaks the first of two. */
	cr_expect_null(ms_qmp_parse_message("{}{}", 4));
	cr_expect_null(ms_qmp_parse_message("{} []", 5));
	cr_expect_null(ms_qmp_parse_message("[]", 2));
	/* json-glib's comments and single quotes could hide a second value. */
	cr_expect_null(ms_qmp_parse_message("{/{/}{}}", 8));
	cr_expect_null(ms_qmp_parse_message("{\"x\": '\"'} {\"y\": '\"'}", 22));
	JsonObject *o2 = ms_qmp_parse_message(" {\"a\": 1} \r", 11);
	cr_expect_not_null(o2, "white space around one object");
	if (o2)
		json_object_unref(o2);
	if (o)
		json_object_unref(o);
}
