/* test_prometheus.c: memstatfs in a Prometheus fleet.
 *
 * - metrics_text: the host figures (hugepage pool, vm.overcommit_kbytes,
 *   PSI, build info) from given texts, exactly.
 * - fleet_files: the contrib files a fleet installs: the recording and
 *   alerting rules pass `promtool check rules` and `promtool test rules`;
 *   every metric the Grafana dashboard and the rules query exists; the
 *   README's Metrics table names every metric the daemon exports, and
 *   nothing else.
 * - fleet: end to end with Debian's prometheus-node-exporter (textfile
 *   collector) and prometheus on 127.0.0.1 ports picked free: the daemon
 *   measures two dirtiers of known rates, contrib/prometheus/memstat-textfile
 *   copies the metrics into the textfile directory, Prometheus scrapes
 *   node_exporter every second (and evaluates the contrib rules), and the
 *   test asks Prometheus's HTTP API for the rates, the counters' rate() and
 *   the host's commit figures, against the truth and /proc.
 *
 * Skipped, saying why, without promtool, prometheus or
 * prometheus-node-exporter (contrib/install-deps.sh --test installs them).
 * Every process the test starts runs in its own process group, dies with
 * the test process (PR_SET_PDEATHSIG) and is stopped by the suite's .fini.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "memstat/core/metrics.h"

static char *src_text(const char *rel)
{
	g_autofree char *path = g_build_filename(src_dir(), rel, NULL);
	char *text = NULL;
	cr_assert(g_file_get_contents(path, &text, NULL, NULL), "cannot read %s", path);
	return text;
}

/* Skips the test, saying why, when a program is not installed. */
static char *need(const char *program)
{
	char *path = g_find_program_in_path(program);
	if (!path)
		cr_skip_test("%s is not installed (Debian: contrib/install-deps.sh --test)",
			     program);
	return path;
}

/* ---- metrics_text: the host figures from given texts ---- */

static const char meminfo_text[] = "MemTotal:       16000 kB\n"
				   "MemFree:         1000 kB\n"
				   "MemAvailable:   12000 kB\n"
				   "Shmem:             10 kB\n"
				   "SwapTotal:          0 kB\n"
				   "SwapFree:           0 kB\n"
				   "CommitLimit:     8000 kB\n"
				   "Committed_AS:    2000 kB\n"
				   "HugePages_Total:     512\n"
				   "HugePages_Free:      500\n"
				   "HugePages_Rsvd:      100\n"
				   "HugePages_Surp:        3\n"
				   "Hugepagesize:       2048 kB\n"
				   "Hugetlb:         2097152 kB\n";
static const char psi_text[] = "some avg10=1.50 avg60=0.25 avg300=0.00 total=2500000\n"
			       "full avg10=0.75 avg60=0.10 avg300=0.00 total=1250000\n";

static char *render(const char *psi)
{
	ms_metrics_texts in = {
		.meminfo = meminfo_text, .overcommit = {"2\n", "50\n", "4096\n"}, .pressure = psi};
	return ms_metrics_render_texts(NULL, NULL, &in);
}

TestSuite(metrics_text, .timeout = 30);

Test(metrics_text, hugepages_overcommit_kbytes_psi_and_build_info)
{
	g_autofree char *text = render(psi_text);
	static const char *const want[] = {
		"memstat_build_info{version=\"" MEMSTATFS_VERSION "\"} 1\n",
		"memstat_overcommit_bytes 4194304\n",
		"# TYPE memstat_hugepage_size_bytes gauge\nmemstat_hugepage_size_bytes 2097152\n",
		"memstat_hugepages_total_bytes 1073741824\n",
		"memstat_hugepages_free_bytes 1048576000\n",
		"memstat_hugepages_reserved_bytes 209715200\n",
		"memstat_hugepages_surplus_bytes 6291456\n",
		"memstat_hugetlb_bytes 2147483648\n",
		"# TYPE memstat_memory_pressure_some_seconds_total counter\n"
		"memstat_memory_pressure_some_seconds_total 2.5\n",
		"memstat_memory_pressure_some_avg10_ratio 0.015\n",
		"memstat_memory_pressure_full_seconds_total 1.25\n",
		"memstat_memory_pressure_full_avg10_ratio 0.0075\n",
		"# TYPE memstat_dirty_bytes_total counter\n",
		"# TYPE memstat_measured_seconds_total counter\n",
	};
	for (size_t i = 0; i < G_N_ELEMENTS(want); i++)
		cr_expect(strstr(text, want[i]), "no %s in:\n%s", want[i], text);
}

Test(metrics_text, psi_left_out_when_absent_or_garbled)
{
	g_autofree char *none = render(NULL);
	cr_expect(!strstr(none, "pressure"), "%s", none);
	g_autofree char *bad = render("some avg10=x avg60=0 avg300=0 total=1\n"
				      "full avg10=200.00 avg60=0.00 avg300=0.00 total=5\n"
				      "some avg10=0.00 avg60=0.00 avg300=0.00 total=9 extra\n");
	cr_expect(!strstr(bad, "pressure"), "%s", bad);
	/* Only "full" parses: "some" is left out. */
	g_autofree char *half = render("full avg10=0.00 avg60=0.00 avg300=0.00 total=7\n");
	cr_expect(strstr(half, "memstat_memory_pressure_full_seconds_total 7e-06\n"), "%s", half);
	cr_expect(!strstr(half, "pressure_some"), "%s", half);
}

/* ---- fleet_files: rules, dashboard, README ---- */

TestSuite(fleet_files, .timeout = 60);

/* The metric families the daemon can export: its # TYPE lines (every
 * family is declared, with or without samples). */
static GHashTable *exported(void)
{
	GHashTable *names = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	g_autofree char *text = render(psi_text);
	g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
	for (char **l = lines; *l; l++) {
		if (!g_str_has_prefix(*l, "# TYPE "))
			continue;
		g_auto(GStrv) w = g_strsplit(*l + 7, " ", 2);
		g_hash_table_add(names, g_strdup(w[0]));
	}
	cr_assert_gt(g_hash_table_size(names), 30);
	return names;
}

/* The metric names a PromQL expression mentions: identifiers outside
 * strings, label matchers and range brackets that start with memstat_,
 * memstat: or node_ (function names and by/on label lists do not). */
static GPtrArray *promql_names(const char *expr)
{
	GPtrArray *out = g_ptr_array_new_with_free_func(g_free);
	GString *clean = g_string_new(NULL);
	int brace = 0, bracket = 0;
	char quote = 0;
	for (const char *p = expr; *p; p++) {
		if (quote) {
			if (*p == '\\' && p[1])
				p++;
			else if (*p == quote)
				quote = 0;
			continue;
		}
		if (*p == '"' || *p == '\'' || *p == '`')
			quote = *p;
		else if (*p == '{')
			brace++;
		else if (*p == '}')
			brace--;
		else if (*p == '[')
			bracket++;
		else if (*p == ']')
			bracket--;
		else if (!brace && !bracket) {
			g_string_append_c(clean, *p);
			continue;
		}
		g_string_append_c(clean, ' ');
	}
	GRegex *re =
		g_regex_new("(?<![A-Za-z0-9_:$])((memstat[_:]|node_)[A-Za-z0-9_:]*)", 0, 0, NULL);
	GMatchInfo *mi;
	g_regex_match(re, clean->str, 0, &mi);
	while (g_match_info_matches(mi)) {
		g_ptr_array_add(out, g_match_info_fetch(mi, 1));
		g_match_info_next(mi, NULL);
	}
	g_match_info_free(mi);
	g_regex_unref(re);
	g_string_free(clean, TRUE);
	return out;
}

/* Collects every "expr" and templating "query" string of a dashboard. */
static void collect_queries(JsonNode *n, const char *key, GPtrArray *out)
{
	if (JSON_NODE_HOLDS_OBJECT(n)) {
		JsonObject *o = json_node_get_object(n);
		g_autoptr(GList) members = json_object_get_members(o);
		for (GList *m = members; m; m = m->next)
			collect_queries(json_object_get_member(o, m->data), m->data, out);
	} else if (JSON_NODE_HOLDS_ARRAY(n)) {
		JsonArray *a = json_node_get_array(n);
		for (guint i = 0; i < json_array_get_length(a); i++)
			collect_queries(json_array_get_element(a, i), NULL, out);
	} else if (JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_STRING &&
		   key &&
		   (strcmp(key, "expr") == 0 || strcmp(key, "query") == 0 ||
		    strcmp(key, "definition") == 0)) {
		g_ptr_array_add(out, g_strdup(json_node_get_string(n)));
	}
}

Test(fleet_files, grafana_dashboard_parses_and_queries_existing_metrics)
{
	g_autoptr(GHashTable) names = exported();
	g_autofree char *text = src_text("contrib/grafana/memstat-dashboard.json");
	g_autoptr(JsonParser) parser = json_parser_new();
	GError *err = NULL;
	cr_assert(json_parser_load_from_data(parser, text, -1, &err), "dashboard: %s",
		  err ? err->message : "?");
	JsonNode *root = json_parser_get_root(parser);
	cr_assert(JSON_NODE_HOLDS_OBJECT(root));
	JsonObject *o = json_node_get_object(root);
	cr_expect(json_object_has_member(o, "title") && json_object_has_member(o, "panels"));
	g_autoptr(GPtrArray) queries = g_ptr_array_new_with_free_func(g_free);
	collect_queries(root, NULL, queries);
	cr_assert_gt(queries->len, 10, "only %u queries", queries->len);
	g_autoptr(GHashTable) used = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	for (guint i = 0; i < queries->len; i++) {
		const char *q = g_ptr_array_index(queries, i);
		g_autoptr(GPtrArray) m = promql_names(q);
		cr_expect_gt(m->len, 0, "query names no memstat metric: %s", q);
		for (guint k = 0; k < m->len; k++) {
			const char *name = g_ptr_array_index(m, k);
			cr_expect(g_hash_table_contains(names, name), "%s: no metric %s", q, name);
			g_hash_table_add(used, g_strdup(name));
		}
	}
	/* What the issue asks of it: host commit state and the top dirtiers. */
	static const char *const must[] = {"memstat_committed_bytes", "memstat_commit_limit_bytes",
					   "memstat_dirty_rate_bytes_per_second",
					   "memstat_dirty_bytes_total", "memstat_hugetlb_bytes"};
	for (size_t i = 0; i < G_N_ELEMENTS(must); i++)
		cr_expect(g_hash_table_contains(used, must[i]), "the dashboard never shows %s",
			  must[i]);
}

Test(fleet_files, promql_names_finds_what_a_query_names)
{
	g_autoptr(GPtrArray) m = promql_names(
		"topk(10, "
		"rate(memstat_dirty_bytes_total{instance=~\"memstat_x\"}[$__rate_interval]) "
		"/ on(instance) memstat:ratio) and sum by (state) (node_up)");
	cr_assert_eq(m->len, 3);
	cr_expect_str_eq(g_ptr_array_index(m, 0), "memstat_dirty_bytes_total");
	cr_expect_str_eq(g_ptr_array_index(m, 1), "memstat:ratio");
	cr_expect_str_eq(g_ptr_array_index(m, 2), "node_up");
}

Test(fleet_files, rules_pass_promtool_check_and_unit_tests)
{
	g_autofree char *promtool = need("promtool");
	g_autofree char *dir = g_build_filename(src_dir(), "contrib", "prometheus", NULL);
	g_autofree char *out = NULL, *out2 = NULL;
	cr_expect_eq(sh_out(&out, "cd '%s' && promtool check rules memstat-rules.yml 2>&1", dir), 0, "%s", out);
	cr_expect(strstr(out, "SUCCESS"), "%s", out);
	cr_expect_eq(sh_out(&out2, "cd '%s' && promtool test rules memstat-rules.test.yml 2>&1", dir), 0, "%s",
		     out2);
	cr_expect(strstr(out2, "SUCCESS") && !strstr(out2, "FAILED"), "%s", out2);
}

Test(fleet_files, rules_name_existing_metrics)
{
	g_autoptr(GHashTable) names = exported();
	g_autofree char *rules = src_text("contrib/prometheus/memstat-rules.yml");
	g_auto(GStrv) lines = g_strsplit(rules, "\n", -1);
	/* Recorded names exist once the rules run. */
	for (char **l = lines; *l; l++) {
		const char *r = strstr(*l, "- record: ");
		if (r)
			g_hash_table_add(names, g_strstrip(g_strdup(r + 10)));
	}
	/* node_exporter's own, for the textfile's age. */
	g_hash_table_add(names, g_strdup("node_textfile_mtime_seconds"));
	for (char **l = lines; *l; l++) {
		const char *line = g_strstrip(*l);
		if (line[0] == '#' || g_str_has_prefix(line, "- record:") ||
		    g_str_has_prefix(line, "summary:") || g_str_has_prefix(line, "description:"))
			continue;
		g_autoptr(GPtrArray) m = promql_names(line);
		for (guint k = 0; k < m->len; k++) {
			const char *name = g_ptr_array_index(m, k);
			cr_expect(g_hash_table_contains(names, name),
				  "rules name %s: no such metric", name);
		}
	}
}

Test(fleet_files, readme_table_documents_every_metric)
{
	g_autoptr(GHashTable) names = exported();
	g_autofree char *readme = src_text("README.md");
	const char *start = strstr(readme, "\n## Metrics\n");
	cr_assert(start, "README has no Metrics section");
	const char *end = strstr(start + 1, "\n## ");
	g_autofree char *section = g_strndup(start, end ? (gsize)(end - start) : strlen(start));
	cr_expect(strstr(section, "stable"), "the README does not declare the names stable");
	/* Every row of the table starts with the metric's full name. */
	GHashTable *documented = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	g_auto(GStrv) lines = g_strsplit(section, "\n", -1);
	for (char **l = lines; *l; l++) {
		if (!g_str_has_prefix(*l, "| `memstat_"))
			continue;
		const char *name = *l + 3;
		const char *q = strchr(name, '`');
		g_hash_table_add(documented, g_strndup(name, q - name));
	}
	GHashTableIter it;
	gpointer k;
	g_hash_table_iter_init(&it, names);
	while (g_hash_table_iter_next(&it, &k, NULL))
		cr_expect(g_hash_table_contains(documented, k), "README's table lacks %s",
			  (char *)k);
	g_hash_table_iter_init(&it, documented);
	while (g_hash_table_iter_next(&it, &k, NULL))
		cr_expect(g_hash_table_contains(names, k), "README documents %s: not exported",
			  (char *)k);
	g_hash_table_destroy(documented);
}

/* ---- fleet: end to end ---- */

static mount_t M;
static pid_t groups[4]; /* process groups the test started */
static int ngroups;
static pid_t dirtiers[2];
static char tmp[160];
static int prom_port;

/* Stops a process group: SIGTERM, then SIGKILL after 10 s. */
static void stop_group(pid_t pid)
{
	int status;
	kill(-pid, SIGTERM);
	for (double end = now_s() + 10; now_s() < end; usleep(20000))
		if (waitpid(pid, &status, WNOHANG) == pid) {
			kill(-pid, SIGKILL); /* what the leader left, such as a sleep */
			return;
		}
	kill(-pid, SIGKILL);
	waitpid(pid, &status, 0);
}

static void fleet_down(void)
{
	for (int i = ngroups - 1; i >= 0; i--)
		stop_group(groups[i]);
	ngroups = 0;
	for (size_t i = 0; i < G_N_ELEMENTS(dirtiers); i++)
		if (dirtiers[i] > 0)
			proc_kill(dirtiers[i]);
	memset(dirtiers, 0, sizeof(dirtiers));
	if (M.daemon > 0)
		mount_stop(&M);
	if (tmp[0]) {
		g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", tmp);
		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", tmp);
		tmp[0] = '\0';
	}
}

TestSuite(fleet, .fini = fleet_down, .timeout = 300);

/* Starts argv in its own process group, output to log; it dies with us. */
static pid_t start(const char *log, char *const argv[])
{
	pid_t parent = getpid();
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		int null = open("/dev/null", O_RDONLY);
		if (fd < 0 || null < 0)
			_exit(126);
		dup2(null, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		execvp(argv[0], argv);
		_exit(127);
	}
	setpgid(pid, pid);
	groups[ngroups++] = pid;
	return pid;
}

/* The last 4000 bytes of the programs' log (static: for messages). */
static const char *log_text(const char *log)
{
	static char tail[4001];
	g_autofree char *t = NULL;
	gsize len = 0;
	if (!g_file_get_contents(log, &t, &len, NULL))
		return "(no log)";
	g_strlcpy(tail, len > 4000 ? t + len - 4000 : t, sizeof(tail));
	return tail;
}

/* A loopback TCP port nobody listens on now. */
static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	cr_assert(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
		  getsockname(fd, (struct sockaddr *)&a, &len) == 0);
	close(fd);
	return ntohs(a.sin_port);
}

/* GET http://127.0.0.1:port/path (HTTP/1.0: no chunks, the server closes).
 * The status code, the body in *body; -1 when nothing answers. */
static int http_get(int port, const char *path, char **body)
{
	*body = NULL;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert(fd >= 0);
	struct timeval tv = {.tv_sec = 20};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons(port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		close(fd);
		return -1;
	}
	g_autofree char *req =
		g_strdup_printf("GET %s HTTP/1.0\r\nHost: 127.0.0.1:%d\r\n\r\n", path, port);
	size_t len = strlen(req);
	if (write(fd, req, len) != (ssize_t)len) {
		close(fd);
		return -1;
	}
	GString *r = g_string_new(NULL);
	char buf[8192];
	ssize_t n;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		g_string_append_len(r, buf, n);
	close(fd);
	int code = -1;
	char *sep = strstr(r->str, "\r\n\r\n");
	if (sscanf(r->str, "HTTP/%*s %d", &code) != 1 || !sep) {
		g_string_free(r, TRUE);
		return -1;
	}
	*body = g_strdup(sep + 4);
	g_string_free(r, TRUE);
	return code;
}

/* Unix time, seconds (Prometheus's clock; now_s() is monotonic). */
static double unix_s(void)
{
	return g_get_real_time() / 1e6;
}

/* An instant query at time at (Unix seconds).  The number of series in the
 * answer; the value of the first in *v.  Fails the test when Prometheus
 * refuses the query. */
static int prom_query(const char *expr, double at, double *v)
{
	g_autofree char *q = g_uri_escape_string(expr, NULL, FALSE);
	g_autofree char *path = g_strdup_printf("/api/v1/query?query=%s&time=%.3f", q, at);
	g_autofree char *body = NULL;
	int code = http_get(prom_port, path, &body);
	cr_assert_eq(code, 200, "%s: HTTP %d %s", expr, code, body ? body : "");
	g_autoptr(JsonParser) parser = json_parser_new();
	cr_assert(json_parser_load_from_data(parser, body, -1, NULL), "%s: %s", expr, body);
	JsonObject *o = json_node_get_object(json_parser_get_root(parser));
	cr_assert_str_eq(json_object_get_string_member(o, "status"), "success", "%s", body);
	JsonObject *data = json_object_get_object_member(o, "data");
	cr_assert_str_eq(json_object_get_string_member(data, "resultType"), "vector", "%s", body);
	JsonArray *result = json_object_get_array_member(data, "result");
	int count = (int)json_array_get_length(result);
	if (count > 0 && v) {
		JsonObject *s = json_array_get_object_element(result, 0);
		JsonArray *value = json_object_get_array_member(s, "value");
		*v = g_ascii_strtod(json_array_get_string_element(value, 1), NULL);
	}
	return count;
}

/* One value that must be there. */
static double prom_value(const char *expr, double at)
{
	double v = NAN;
	int n = prom_query(expr, at, &v);
	cr_assert_eq(n, 1, "%s at %.3f: %d series", expr, at, n);
	return v;
}

/* Waits up to seconds for expr to give at least one series. */
static bool prom_wait(const char *expr, double seconds)
{
	for (double end = now_s() + seconds; now_s() < end; usleep(250000))
		if (prom_query(expr, unix_s(), NULL) > 0)
			return true;
	return false;
}

/* Waits up to seconds for expr to give no series. */
static bool prom_wait_absent(const char *expr, double seconds)
{
	for (double end = now_s() + seconds; now_s() < end; usleep(250000))
		if (prom_query(expr, unix_s(), NULL) == 0)
			return true;
	return false;
}

/* A field of /proc/meminfo, kB. */
static double meminfo_kb(const char *text, const char *field)
{
	g_autofree char *key = g_strdup_printf("\n%s:", field);
	g_autofree char *nl = g_strdup_printf("\n%s", text);
	const char *p = strstr(nl, key);
	cr_assert(p, "no %s in /proc/meminfo", field);
	return strtod(p + strlen(key), NULL);
}

static double sysctl_vm(const char *name)
{
	g_autofree char *path = g_strdup_printf("/proc/sys/vm/%s", name);
	g_autofree char *t = read_file(path);
	cr_assert(t, "%s", path);
	return strtod(t, NULL);
}

/* PSI total (microseconds) of "some" or "full", or -1 without PSI. */
static double psi_total_us(const char *kind)
{
	g_autofree char *t = read_file("/proc/pressure/memory");
	if (!t)
		return -1;
	g_autofree char *key = g_strdup_printf("%s avg10=", kind);
	const char *l = strstr(t, key);
	const char *tot = l ? strstr(l, "total=") : NULL;
	return tot ? strtod(tot + 6, NULL) : -1;
}

typedef struct {
	char *meminfo_before, *meminfo_after;
	double psi_before, psi_after;
} bracket;

static void bracket_clear(bracket *b)
{
	g_free(b->meminfo_before);
	g_free(b->meminfo_after);
}

/* Writes the textfile once with the contrib script, between two reads of
 * /proc/meminfo and PSI, after making sure Prometheus saw the old file go:
 * the next memstat series Prometheus shows come from this copy. */
static bracket copy_once(const char *script, const char *textdir)
{
	bracket b;
	g_autofree char *prom = g_build_filename(textdir, "memstat.prom", NULL);
	cr_assert(unlink(prom) == 0 || errno == ENOENT);
	cr_assert(prom_wait_absent("memstat_build_info", 30),
		  "Prometheus still shows the removed textfile");
	g_autofree char *cmd = g_strdup_printf("'%s' -m '%s' -d '%s'", script, M.mnt, textdir);
	b.psi_before = psi_total_us("some");
	b.meminfo_before = read_file("/proc/meminfo");
	int r = system(cmd);
	b.meminfo_after = read_file("/proc/meminfo");
	b.psi_after = psi_total_us("some");
	cr_assert_eq(r, 0, "%s failed", cmd);
	cr_assert(b.meminfo_before && b.meminfo_after);
	cr_assert(prom_wait("memstat_build_info", 30), "Prometheus never scraped the new textfile");
	return b;
}

/* Prometheus's figure of a meminfo field agrees with /proc/meminfo read
 * just before and just after the copy.  Committed_AS moves with every
 * process on the machine: it must lie within what was read around the copy,
 * give or take what other processes may commit and release in the few
 * milliseconds of the copy (tol, bytes). */
static void expect_meminfo(const bracket *b, const char *metric, const char *field, double at,
			   double tol)
{
	double v = prom_value(metric, at);
	double x = meminfo_kb(b->meminfo_before, field) * 1024;
	double y = meminfo_kb(b->meminfo_after, field) * 1024;
	double lo = fmin(x, y) - tol, hi = fmax(x, y) + tol;
	cr_log_info("%s: Prometheus %.0f, /proc/meminfo %.0f .. %.0f", metric, v, x, y);
	cr_expect(v >= lo && v <= hi, "%s: Prometheus %.0f, /proc/meminfo %s read %.0f and %.0f",
		  metric, v, field, x, y);
}

/* Sums a target's samples 1..seq from the tree: rate x period and the
 * periods, as the counters should have them. */
static void sum_samples(pid_t pid, double seq, double *bytes, double *seconds)
{
	*bytes = *seconds = 0;
	for (long s = 1; s <= (long)seq; s++) {
		char *path = mpath(&M, "%d/samples/%ld", (int)pid, s);
		char *text = read_file(path);
		cr_assert(text, "%s: %s", path, strerror(errno));
		double rate, ms;
		cr_assert(sample_get(text, "rate", &rate) && sample_get(text, "period_ms", &ms));
		*bytes += rate * 1048576.0 * ms / 1000.0;
		*seconds += ms / 1000.0;
		free(text);
		free(path);
	}
}

typedef struct {
	pid_t pid;
	unsigned k; /* pages a second: the truth */
	bool exact; /* full-scan: held to 2%; page-sampling: to its interval */
} subject;

static double truth_bps(const subject *s)
{
	return s->k * 4096.0;
}

/* How far a figure may be from the truth: an exact mode 2% plus 16 pages
 * a window of the helper's own stack and libc (tests/test_exact.c);
 * page-sampling 4.5 standard errors of its 95% interval, plus 1% for the
 * helper's 1 ms steps and the same few pages (tests/test_accuracy.c). */
static double allowed(const subject *s, double lo, double hi, double period)
{
	double noise = 16 * 4096.0 / period;
	if (s->exact)
		return 0.02 * truth_bps(s) + noise;
	double se = (hi - lo) / (2 * 1.96);
	return 4.5 * se + 0.01 * truth_bps(s) + noise;
}

static void check_target(const subject *s, double range_s)
{
	g_autofree char *sel = g_strdup_printf("{target=\"%d\",kind=\"process\"}", (int)s->pid);
	double at = floor(unix_s() * 1000) / 1000;
	g_autofree char *q_rate = g_strdup_printf("memstat_dirty_rate_bytes_per_second%s", sel);
	g_autofree char *q_lo =
		g_strdup_printf("memstat_dirty_rate_ci95_low_bytes_per_second%s", sel);
	g_autofree char *q_hi =
		g_strdup_printf("memstat_dirty_rate_ci95_high_bytes_per_second%s", sel);
	g_autofree char *q_period = g_strdup_printf("memstat_sample_period_seconds%s", sel);
	g_autofree char *q_seq = g_strdup_printf("memstat_samples_total%s", sel);
	g_autofree char *q_bytes = g_strdup_printf("memstat_dirty_bytes_total%s", sel);
	g_autofree char *q_secs = g_strdup_printf("memstat_measured_seconds_total%s", sel);
	g_autofree char *q_mean = g_strdup_printf("rate(memstat_dirty_bytes_total%s[%.0fs]) / "
						  "rate(memstat_measured_seconds_total%s[%.0fs])",
						  sel, range_s, sel, range_s);
	g_autofree char *q_plain =
		g_strdup_printf("rate(memstat_dirty_bytes_total%s[%.0fs])", sel, range_s);
	g_autofree char *q_cover =
		g_strdup_printf("rate(memstat_measured_seconds_total%s[%.0fs])", sel, range_s);
	g_autofree char *q_rule =
		g_strdup_printf("memstat:dirty_rate_bytes_per_second:mean5m%s", sel);

	/* All at one evaluation time: one scrape, one copy of the file. */
	double rate = prom_value(q_rate, at), lo = prom_value(q_lo, at), hi = prom_value(q_hi, at);
	double period = prom_value(q_period, at), seq = prom_value(q_seq, at);
	double bytes = prom_value(q_bytes, at), secs = prom_value(q_secs, at);
	double mean = prom_value(q_mean, at), plain = prom_value(q_plain, at);
	double cover = prom_value(q_cover, at), rule = prom_value(q_rule, at);
	double truth = truth_bps(s);
	double tol = allowed(s, lo, hi, period);
	cr_log_info("target %d (%s, truth %.0f B/s = %.2f MiB/s), Prometheus at %.3f: "
		    "instant rate %.0f [%.0f, %.0f] (%+.2f%%); rate()/rate() over %.0f s %.0f "
		    "(%+.2f%%); recording rule mean5m %.0f (%+.2f%%); rate(dirty_bytes) alone %.0f "
		    "with %.3f of the time measured; %.0f samples, allowed +-%.0f",
		    (int)s->pid, s->exact ? "full-scan" : "page-sampling", truth, truth / 1048576,
		    at, rate, lo, hi, 100 * (rate - truth) / truth, range_s, mean,
		    100 * (mean - truth) / truth, rule, 100 * (rule - truth) / truth, plain, cover,
		    seq, tol);
	fprintf(stderr,
		"fleet: target %d %s truth %.0f B/s: instant %.0f (%+.2f%%) ci95 [%.0f, %.0f]; "
		"rate()/rate() %.0fs %.0f (%+.2f%%); rule mean5m %.0f (%+.2f%%); rate(bytes) %.0f, "
		"measured share %.3f; allowed +-%.0f\n",
		(int)s->pid, s->exact ? "full-scan" : "page-sampling", truth, rate,
		100 * (rate - truth) / truth, lo, hi, range_s, mean, 100 * (mean - truth) / truth,
		rule, 100 * (rule - truth) / truth, plain, cover, tol);

	cr_expect(fabs(rate - truth) <= tol, "instant rate %.0f B/s, truth %.0f +- %.0f", rate,
		  truth, tol);
	/* A mean over many windows is nearer the truth than one window: the
	 * one-window allowance holds it. */
	cr_expect(fabs(mean - truth) <= tol, "rate()/rate() %.0f B/s, truth %.0f +- %.0f", mean,
		  truth, tol);
	cr_expect(fabs(rule - truth) <= tol, "recording rule %.0f B/s, truth %.0f +- %.0f", rule,
		  truth, tol);
	cr_expect(lo <= rate && rate <= hi, "rate %.0f outside its own interval [%.0f, %.0f]", rate,
		  lo, hi);

	/* Prometheus holds what the daemon published: the sample it names and
	 * the sum of every sample before it. */
	char *path = mpath(&M, "%d/samples/%.0f", (int)s->pid, seq);
	char *text = read_file(path);
	cr_assert(text, "%s: %s", path, strerror(errno));
	double srate, sexact;
	cr_assert(sample_get(text, "rate", &srate) && sample_get(text, "exact", &sexact));
	cr_expect(fabs(rate / 1048576 - srate) <= 0.0051, "Prometheus %.4f MiB/s, sample %.2f",
		  rate / 1048576, srate);
	/* A sample that says exact (every page seen, the pages' windows
	 * agreeing: full-scan of a region a pass reads in a small part of
	 * the period) has no interval; full-scan of a larger one says exact
	 * 0 and carries its timing's interval, as page-sampling does. */
	if (sexact == 1)
		cr_expect(lo == rate && hi == rate, "an exact figure has no interval");
	else
		cr_expect(lo < hi, "a figure that is not exact has an interval: [%.0f, %.0f]", lo,
			  hi);
	free(text);
	free(path);
	double sbytes, ssecs;
	sum_samples(s->pid, seq, &sbytes, &ssecs);
	cr_expect(fabs(secs - ssecs) < 1e-6, "measured seconds %.6f, samples sum to %.6f", secs,
		  ssecs);
	/* The samples print rates to 0.01 MiB/s. */
	cr_expect(fabs(bytes - sbytes) <= 0.0051 * 1048576 * ssecs + 1,
		  "dirty bytes %.0f, samples sum to %.0f", bytes, sbytes);
}

Test(fleet, prometheus_scrapes_node_exporter_textfile_end_to_end)
{
	g_autofree char *prometheus = need("prometheus");
	g_autofree char *exporter = need("prometheus-node-exporter");
	g_autofree char *script =
		g_build_filename(src_dir(), "contrib", "prometheus", "memstat-textfile", NULL);
	g_autofree char *rules =
		g_build_filename(src_dir(), "contrib", "prometheus", "memstat-rules.yml", NULL);

	snprintf(tmp, sizeof(tmp), "%s/memstat-fleet-XXXXXX", tmp_dir());
	cr_assert(mkdtemp(tmp));
	g_autofree char *textdir = g_build_filename(tmp, "textfile", NULL);
	g_autofree char *data = g_build_filename(tmp, "data", NULL);
	g_autofree char *config = g_build_filename(tmp, "prometheus.yml", NULL);
	g_autofree char *log = g_build_filename(tmp, "log", NULL);
	cr_assert(mkdir(textdir, 0755) == 0 && mkdir(data, 0755) == 0);

	mount_start(&M, NULL);
	subject subj[2] = {{.k = 8192, .exact = true}, {.k = 4096, .exact = false}};
	subj[0].pid = dirtiers[0] = dirtier_start(128, 128, subj[0].k, NULL);
	subj[1].pid = dirtiers[1] = dirtier_start(256, 256, subj[1].k, NULL);
	cr_assert_eq(track_pid(&M, subj[0].pid, "mode=full-scan"), 0);
	cr_assert_eq(track_pid(&M, subj[1].pid, "sample_pages=16384"), 0);

	int node_port = free_port();
	prom_port = free_port();
	cr_assert_neq(node_port, prom_port);
	g_autofree char *node_listen =
		g_strdup_printf("--web.listen-address=127.0.0.1:%d", node_port);
	g_autofree char *node_dir = g_strdup_printf("--collector.textfile.directory=%s", textdir);
	char *node_argv[] = {
		exporter, node_listen, "--collector.disable-defaults", "--collector.textfile",
		node_dir, NULL};
	start(log, node_argv);

	/* The timer's job, every second. */
	char *copy_argv[] = {script, "-m", M.mnt, "-d", textdir, "-i", "1", NULL};
	pid_t copier = start(log, copy_argv);

	g_autofree char *yml = g_strdup_printf("global:\n"
					       "  scrape_interval: 1s\n"
					       "  evaluation_interval: 1s\n"
					       "rule_files:\n"
					       "  - '%s'\n"
					       "scrape_configs:\n"
					       "  - job_name: node\n"
					       "    static_configs:\n"
					       "      - targets: ['127.0.0.1:%d']\n",
					       rules, node_port);
	cr_assert(g_file_set_contents(config, yml, -1, NULL));
	g_autofree char *p_config = g_strdup_printf("--config.file=%s", config);
	g_autofree char *p_data = g_strdup_printf("--storage.tsdb.path=%s", data);
	g_autofree char *p_listen = g_strdup_printf("--web.listen-address=127.0.0.1:%d", prom_port);
	char *prom_argv[] = {prometheus, p_config, p_data, p_listen, NULL};
	start(log, prom_argv);

	/* Ready, and scraping node_exporter. */
	bool ready = false;
	for (double end = now_s() + 60; !ready && now_s() < end; usleep(250000)) {
		g_autofree char *body = NULL;
		ready = http_get(prom_port, "/-/ready", &body) == 200;
	}
	cr_assert(ready, "Prometheus never became ready; the log:\n%s", log_text(log));
	cr_assert(prom_wait("up{job=\"node\"} == 1", 30), "node_exporter is not up; the log:\n%s",
		  log_text(log));
	cr_assert(prom_wait("node_textfile_scrape_error == 0", 30),
		  "the textfile is not read; the log:\n%s", log_text(log));

	/* 20 s of samples of both, seen by Prometheus. */
	for (int i = 0; i < 2; i++) {
		g_autofree char *q = g_strdup_printf(
			"memstat_measured_seconds_total{target=\"%d\"} >= 20", (int)subj[i].pid);
		cr_assert(prom_wait(q, 90), "Prometheus never saw 20 s of samples of %d",
			  (int)subj[i].pid);
	}
	for (int i = 0; i < 2; i++)
		check_target(&subj[i], 15);

	/* The host: the copier stopped, one copy at a time, bracketed. */
	stop_group(copier);
	for (int i = 0; i < ngroups; i++)
		if (groups[i] == copier)
			groups[i] = groups[--ngroups];
	bracket b = copy_once(script, textdir);
	double at = unix_s();
	/* Committed_AS: 64 MiB for what others commit meanwhile. */
	expect_meminfo(&b, "memstat_committed_bytes", "Committed_AS", at, 64 << 20);
	expect_meminfo(&b, "memstat_commit_limit_bytes", "CommitLimit", at, 0);
	expect_meminfo(&b, "memstat_memory_total_bytes", "MemTotal", at, 0);
	expect_meminfo(&b, "memstat_swap_total_bytes", "SwapTotal", at, 0);
	expect_meminfo(&b, "memstat_hugetlb_bytes", "Hugetlb", at, 0);
	double hp = meminfo_kb(b.meminfo_after, "Hugepagesize") * 1024;
	cr_expect_eq(prom_value("memstat_hugepage_size_bytes", at), hp);
	cr_expect_eq(prom_value("memstat_hugepages_total_bytes", at),
		     meminfo_kb(b.meminfo_after, "HugePages_Total") * hp);
	cr_expect_eq(prom_value("memstat_overcommit_memory", at), sysctl_vm("overcommit_memory"));
	cr_expect_eq(prom_value("memstat_overcommit_ratio", at),
		     sysctl_vm("overcommit_ratio") / 100.0);
	cr_expect_eq(prom_value("memstat_overcommit_bytes", at),
		     sysctl_vm("overcommit_kbytes") * 1024);
	if (b.psi_before >= 0) {
		double psi = prom_value("memstat_memory_pressure_some_seconds_total", at);
		cr_expect(psi >= b.psi_before / 1e6 && psi <= b.psi_after / 1e6,
			  "PSI some total %.6f s, /proc/pressure/memory %.6f .. %.6f", psi,
			  b.psi_before / 1e6, b.psi_after / 1e6);
	} else {
		cr_expect_eq(prom_query("memstat_memory_pressure_some_seconds_total", at, NULL), 0);
		cr_log_info("no /proc/pressure/memory here: PSI not checked");
	}
	double before = prom_value("memstat_committed_bytes", at);
	bracket_clear(&b);

	/* A known change: 4 GiB of private writable memory, never touched,
	 * adds 4 GiB to Committed_AS; Prometheus must show the new figure
	 * (an old copy would be 4 GiB below what /proc read around the new). */
	size_t len = (size_t)4 << 30;
	void *big = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (big == MAP_FAILED) {
		cr_log_warn("cannot commit 4 GiB here (%s): the step is not checked",
			    strerror(errno));
		return;
	}
	b = copy_once(script, textdir);
	at = unix_s();
	munmap(big, len);
	expect_meminfo(&b, "memstat_committed_bytes", "Committed_AS", at, 64 << 20);
	double after = prom_value("memstat_committed_bytes", at);
	fprintf(stderr, "fleet: committed %.0f, then %.0f with 4 GiB mapped (%+.1f MiB)\n", before,
		after, (after - before) / 1048576);
	bracket_clear(&b);
}

/* Names in dir, sorted, space separated. */
static char *dir_list(const char *dir)
{
	GDir *d = g_dir_open(dir, 0, NULL);
	cr_assert(d, "%s", dir);
	g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
	const char *n;
	while ((n = g_dir_read_name(d)))
		g_ptr_array_add(names, g_strdup(n));
	g_dir_close(d);
	g_ptr_array_sort(names, (GCompareFunc)g_strcmp0);
	g_ptr_array_add(names, NULL);
	return g_strjoinv(" ", (char **)names->pdata);
}

Test(fleet, textfile_copy_is_whole_and_never_stale)
{
	g_autofree char *script =
		g_build_filename(src_dir(), "contrib", "prometheus", "memstat-textfile", NULL);
	snprintf(tmp, sizeof(tmp), "%s/memstat-fleet-XXXXXX", tmp_dir());
	cr_assert(mkdtemp(tmp));
	g_autofree char *textdir = g_build_filename(tmp, "textfile", NULL);
	g_autofree char *log = g_build_filename(tmp, "log", NULL);
	g_autofree char *prom = g_build_filename(textdir, "memstat.prom", NULL);
	cr_assert(mkdir(textdir, 0755) == 0);
	mount_start(&M, NULL);
	dirtiers[0] = dirtier_start(64, 64, 1024, NULL);
	cr_assert_eq(track_pid(&M, dirtiers[0], NULL), 0);
	free(sample_wait(&M, dirtiers[0], 1, 30));

	/* Copies back to back while a reader reads: every read is a whole
	 * copy (the first and the last family, a final newline), the file
	 * never goes missing between copies, and it was replaced many times
	 * while being read. */
	char *argv[] = {script, "-m", M.mnt, "-d", textdir, "-i", "0.01", NULL};
	pid_t copier = start(log, argv);
	for (double end = now_s() + 10; access(prom, F_OK) != 0; usleep(10000))
		cr_assert(now_s() < end, "no copy in 10 s; the log:\n%s", log_text(log));
	struct stat last = {0};
	unsigned reads = 0, seen = 0;
	for (double end = now_s() + 3; now_s() < end; reads++, usleep(500)) {
		int fd = open(prom, O_RDONLY);
		cr_assert(fd >= 0, "memstat.prom missing between copies: %s", strerror(errno));
		struct stat st;
		cr_assert(fstat(fd, &st) == 0);
		GString *t = g_string_new(NULL);
		char buf[8192];
		ssize_t n;
		while ((n = read(fd, buf, sizeof(buf))) > 0)
			g_string_append_len(t, buf, n);
		close(fd);
		cr_assert(g_str_has_prefix(t->str, "# HELP memstat_build_info ") &&
				  strstr(t->str, "# TYPE memstat_vcpu_dirty_rate_bytes_per_second "
						 "gauge\n") &&
				  t->len && t->str[t->len - 1] == '\n',
			  "a partial copy (%zu bytes):\n%s", t->len, t->str);
		g_string_free(t, TRUE);
		/* Inode numbers are reused: a new copy is a new inode or a
		 * new change time. */
		if (st.st_ino != last.st_ino || st.st_ctim.tv_sec != last.st_ctim.tv_sec ||
		    st.st_ctim.tv_nsec != last.st_ctim.tv_nsec)
			seen++;
		last = st;
	}
	fprintf(stderr, "fleet: %u whole reads of %u copies\n", reads, seen);
	cr_expect_gt(seen, 20, "only %u copies in 3 s", seen);

	/* Stopped, it leaves no temporary file. */
	stop_group(copier);
	ngroups = 0;
	g_autofree char *left = dir_list(textdir);
	cr_expect_str_eq(left, "memstat.prom");

	/* Bad arguments. */
	g_autofree char *bad =
		g_strdup_printf("'%s' -m '%s' -d '%s' -i 1s 2>/dev/null", script, M.mnt, textdir);
	int r = system(bad);
	cr_expect(WIFEXITED(r) && WEXITSTATUS(r) == 2, "-i 1s: status %#x", r);

	/* memstatfs gone: the old figures go too, and the copy fails. */
	proc_kill(dirtiers[0]);
	dirtiers[0] = 0;
	mount_stop(&M);
	g_autofree char *once =
		g_strdup_printf("'%s' -m '%s' -d '%s' 2>/dev/null", script, M.mnt, textdir);
	r = system(once);
	cr_expect(WIFEXITED(r) && WEXITSTATUS(r) == 1, "without memstatfs: status %#x", r);
	g_autofree char *after = dir_list(textdir);
	cr_expect_str_eq(after, "", "left: %s", after);
}
