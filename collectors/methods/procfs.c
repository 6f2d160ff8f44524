/* procfs.c: parsers and readers for /proc files.  See include/memstat/methods/procfs.h. */
#include "memstat/methods/procfs.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static bool parse_hex_u64(const char **p, uint64_t *out)
{
	const char *s = *p;
	uint64_t v = 0;
	int digits = 0;

	for (; isxdigit((unsigned char)*s); s++, digits++) {
		if (digits == 16)
			return false;
		int d = isdigit((unsigned char)*s) ? *s - '0'
						   : (tolower((unsigned char)*s) - 'a' + 10);
		v = (v << 4) | (uint64_t)d;
	}
	if (digits == 0)
		return false;
	*p = s;
	*out = v;
	return true;
}

int ms_parse_maps_line(const char *line, ms_vma *vma)
{
	const char *p = line;
	uint64_t start, end;

	if (!parse_hex_u64(&p, &start) || *p++ != '-' || !parse_hex_u64(&p, &end))
		return -EINVAL;
	if (*p++ != ' ' || end < start)
		return -EINVAL;
	/* perms: four characters "rwxp" or "rw-s" */
	for (int i = 0; i < 4; i++)
		if (p[i] == '\0' || p[i] == '\n')
			return -EINVAL;
	if (p[4] != ' ')
		return -EINVAL;
	if (p[1] != 'w')
		return 0;
	vma->start = start;
	vma->end = end;
	vma->shared = p[3] == 's';
	return 1;
}

GArray *ms_parse_maps(const char *text, int *err)
{
	g_autoptr(GArray) vmas = g_array_new(FALSE, FALSE, sizeof(ms_vma));
	const char *line = text;

	while (*line) {
		const char *nl = strchr(line, '\n');
		ms_vma vma;
		int r = ms_parse_maps_line(line, &vma);

		if (r < 0) {
			*err = r;
			return NULL;
		}
		if (r > 0 && vma.end > vma.start)
			g_array_append_val(vmas, vma);
		if (!nl)
			break;
		line = nl + 1;
	}
	return g_steal_pointer(&vmas);
}

int ms_parse_stat(const char *text, ms_proc_stat *out)
{
	/* "pid (comm) S ppid ...": comm may hold spaces and parentheses, so
	 * the fields start after the last ')'. */
	const char *close = strrchr(text, ')');
	char *end;
	long pid;

	errno = 0;
	pid = strtol(text, &end, 10);
	if (errno || end == text || pid <= 0 || pid > INT32_MAX || !close)
		return -EINVAL;
	out->pid = (pid_t)pid;

	const char *p = close + 1;
	/* field 3 is the state; we need fields 9 (flags), 20 (num_threads)
	 * and 22 (starttime) */
	unsigned long long fields[23] = {0};
	int field = 3;

	while (*p == ' ')
		p++;
	if (!*p)
		return -EINVAL;
	out->state = *p++;
	for (field = 4; field <= 22; field++) {
		if (*p != ' ')
			return -EINVAL;
		p++;
		errno = 0;
		/* fields 4..22 are integers; some may be negative */
		long long v = strtoll(p, &end, 10);
		if (errno || end == p)
			return -EINVAL;
		fields[field] = (unsigned long long)v;
		p = end;
	}
	out->flags = (unsigned long)fields[9];
	out->num_threads = (long)fields[20];
	out->starttime = fields[22];
	return 0;
}

int ms_read_file(const char *path, char **out, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;

	size_t cap = 4096, used = 0;
	char *buf = g_malloc(cap);
	for (;;) {
		if (cap - used < 2048) {
			cap *= 2;
			buf = g_realloc(buf, cap);
		}
		ssize_t n = read(fd, buf + used, cap - used - 1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			int e = -errno;
			close(fd);
			g_free(buf);
			return e;
		}
		if (n == 0)
			break;
		used += (size_t)n;
	}
	close(fd);
	buf[used] = '\0';
	*out = buf;
	if (len)
		*len = used;
	return 0;
}

int ms_proc_stat_read(pid_t pid, ms_proc_stat *out)
{
	char path[64];
	g_autofree char *text = NULL;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int r = ms_read_file(path, &text, NULL);
	if (r == -ENOENT || r == -ESRCH)
		return -ESRCH;
	if (r < 0)
		return r;
	return ms_parse_stat(text, out);
}

GArray *ms_parse_fields(const char *text)
{
	GArray *fields = g_array_new(FALSE, TRUE, sizeof(ms_field));
	const char *line = text;

	while (*line) {
		const char *nl = strchr(line, '\n');
		const char *eol = nl ? nl : line + strlen(line);
		const char *colon = memchr(line, ':', (size_t)(eol - line));
		ms_field f = {0};

		if (colon && colon > line && (size_t)(colon - line) < sizeof(f.name)) {
			const char *v = colon + 1;
			while (v < eol && (*v == ' ' || *v == '\t'))
				v++;
			const char *ve = v;
			while (ve < eol && isdigit((unsigned char)*ve))
				ve++;
			const char *rest = ve;
			while (rest < eol && (*rest == ' ' || *rest == '\t'))
				rest++;
			bool unit_ok = rest == eol ||
				       (eol - rest == 2 && rest[0] == 'k' && rest[1] == 'B');
			if (ve > v && unit_ok && (size_t)(ve - v) < sizeof(f.value)) {
				memcpy(f.name, line, (size_t)(colon - line));
				memcpy(f.value, v, (size_t)(ve - v));
				g_array_append_val(fields, f);
			}
		}
		if (!nl)
			break;
		line = nl + 1;
	}
	return fields;
}

const ms_field *ms_fields_find(GArray *fields, const char *name)
{
	for (guint i = 0; i < fields->len; i++) {
		const ms_field *f = &g_array_index(fields, ms_field, i);
		if (strcmp(f->name, name) == 0)
			return f;
	}
	return NULL;
}

bool ms_field_file_name(const char *field, char *out, size_t outlen)
{
	size_t n = 0;

	for (const char *p = field; *p; p++) {
		if (n + 1 >= outlen)
			return false;
		out[n++] = (*p == '(' || *p == ')') ? '_' : (char)tolower((unsigned char)*p);
	}
	while (n > 0 && out[n - 1] == '_')
		n--;
	if (outlen == 0)
		return false;
	out[n] = '\0';
	return n > 0;
}

const char *ms_status_value(const char *text, const char *key)
{
	size_t klen = strlen(key);

	for (const char *line = text; line && *line;) {
		if (strncmp(line, key, klen) == 0 && line[klen] == ':')
			return line + klen + 1;
		line = strchr(line, '\n');
		if (line)
			line++;
	}
	return NULL;
}

int ms_parse_status_ids(const char *text, const char *key, unsigned ids[4])
{
	const char *p = ms_status_value(text, key);

	if (!p)
		return -EINVAL;
	for (int i = 0; i < 4; i++) {
		char *end;
		errno = 0;
		unsigned long v = strtoul(p, &end, 10);
		if (errno || end == p || v > UINT32_MAX)
			return -EINVAL;
		ids[i] = (unsigned)v;
		p = end;
	}
	return 0;
}

/* Whether the VmFlags line (len bytes) has um (missing), uw
 * (write-protect) or ui (minor): two-letter flags separated by spaces. */
static bool vmflags_uffd(const char *line, size_t len)
{
	for (size_t i = 8; i + 2 <= len; i++)
		if (line[i - 1] == ' ' && line[i] == 'u' &&
		    (line[i + 1] == 'm' || line[i + 1] == 'w' || line[i + 1] == 'i') &&
		    (i + 2 == len || line[i + 2] == ' '))
			return true;
	return false;
}

GArray *ms_parse_smaps_uffd_ranges(const char *text)
{
	GArray *out = g_array_new(FALSE, FALSE, sizeof(ms_vma));
	ms_vma v = {0};
	bool inside = false;

	for (const char *line = text; line && *line;) {
		const char *eol = strchr(line, '\n');
		const char *p = line;
		uint64_t start, end;
		if (parse_hex_u64(&p, &start) && *p == '-') {
			p++;
			if (!parse_hex_u64(&p, &end) || *p != ' ') {
				g_array_unref(out);
				return NULL;
			}
			v = (ms_vma){start, end, false};
			inside = true;
		} else if (inside && strncmp(line, "VmFlags:", 8) == 0) {
			if (vmflags_uffd(line, eol ? (size_t)(eol - line) : strlen(line)))
				g_array_append_val(out, v);
			inside = false;
		}
		line = eol ? eol + 1 : NULL;
	}
	return out;
}

int ms_parse_smaps_uffd(const char *text, uint64_t addr)
{
	g_autoptr(GArray) uffd = ms_parse_smaps_uffd_ranges(text);

	if (!uffd)
		return -EINVAL;
	for (guint i = 0; i < uffd->len; i++) {
		const ms_vma *v = &g_array_index(uffd, ms_vma, i);
		if (v->start <= addr && addr < v->end)
			return 1;
	}
	return 0;
}
