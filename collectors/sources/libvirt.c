/* libvirt.c: the libvirt source (libvirt.h).
 *
 * Who may track a domain: root, or a caller who could open libvirt's
 * read-write socket on its own (connected to as the caller, as QMP sockets
 * are: access.h); that socket is the URI's `socket=` parameter, else
 * /run/libvirt/virtqemud-sock (modular daemons) or /run/libvirt/libvirt-sock.
 * A URI without a socket libvirt's way (qemu:///session, a remote host)
 * is root's only.  The daemon itself then connects as root.
 *
 * The URI (libvirt_uri) is set once at start-up, before any target.
 */
#define _GNU_SOURCE
#include "memstat/sources/libvirt.h"

#include <errno.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "memstat/methods/fail.h"
#include "memstat/methods/proc.h"
#include "memstat/sources/qemu.h"
#ifdef HAVE_LIBVIRT
#include "memstat/methods/libvirt_dirty_rate.h"
#endif

#define PREFIX "libvirt:"

static char *uri; /* set at start-up only (options); NULL: qemu:///system */

static int set_uri(const char *value, char **why)
{
	if (!*value || strlen(value) > 4096)
		return ms_fail(why, -EINVAL, "libvirt_uri must be a URI of 1..4096 bytes");
	g_free(uri);
	uri = g_strdup(value);
	return 0;
}

static const ms_source_option options[] = {
	{"libvirt_uri", "-o libvirt_uri=URI     libvirt's connection (default qemu:///system)",
	 set_uri},
	{NULL, NULL, NULL},
};

static const ms_mode modes[] = {
	{"page-sampling", "QEMU samples guest pages and hashes them (512 per GiB)", NULL, NULL},
	{"dirty-bitmap", "KVM's dirty log of every guest page (needs KVM)", NULL, NULL},
	{"dirty-ring", "KVM's per-vCPU dirty ring (needs KVM's dirty ring)", NULL, NULL},
	{NULL, NULL, NULL, NULL},
};

static int parse(const char *word, size_t len, char key[MS_KEY_MAX], char **why)
{
	size_t plen = strlen(PREFIX);

	if (len < plen || strncmp(word, PREFIX, plen) != 0)
		return 0;
	if (len == plen)
		return ms_fail(why, -EINVAL, "libvirt: needs a domain's name");
	if (len >= MS_KEY_MAX)
		return ms_fail(why, -ENAMETOOLONG, "domain name too long");
	memcpy(key, word, len);
	key[len] = '\0';
	return 1;
}

/* libvirt's read-write socket for the URI, or NULL (root only). */
static char *socket_of(const char *u)
{
	const char *s = u ? strstr(u, "socket=") : NULL;

	if (s) {
		s += strlen("socket=");
		return g_strndup(s, strcspn(s, "&"));
	}
	if (u && strcmp(u, "qemu:///system") != 0)
		return NULL;
	if (access("/run/libvirt/virtqemud-sock", F_OK) == 0)
		return g_strdup("/run/libvirt/virtqemud-sock");
	return g_strdup("/run/libvirt/libvirt-sock");
}

/* 0 when the caller could open libvirt's read-write socket on its own;
 * -ECONNREFUSED when libvirt does not listen. */
static int caller_may(const ms_caller *c, bool connect, char **why)
{
	g_autofree char *sock = socket_of(uri);
	uid_t owner;

	if (!sock)
		return c->uid == 0 ? 0
				   : ms_fail(why, -EACCES, "only root may track domains through %s",
					     uri);
	if (!connect)
		return ms_may_connect_as(sock, c) < 0
			       ? ms_fail(why, -EACCES, "uid %u may not open %s", (unsigned)c->uid,
					 sock)
			       : 0;
	int fd = ms_connect_as(sock, c, &owner, why);
	if (fd == -ENOENT || fd == -ECONNREFUSED)
		return ms_fail(why, -ECONNREFUSED,
			       "libvirtd is not running (nothing listens on %s)", sock);
	if (fd < 0)
		return fd;
	close(fd);
	return 0;
}

static int resolve(const char *key, const ms_caller *c, ms_ident *out, char **why)
{
	(void)c;
	(void)why;
	g_strlcpy(out->key, key, sizeof(out->key));
	out->instance = 0;
	return 0;
}

#ifdef HAVE_LIBVIRT
typedef struct {
	ms_vm *vm;
	ms_proc_id proc; /* QEMU's process; pid 0 when not found */
	/* The growth curve, of QEMU's process measured from outside by pid
	 * (as the QEMU source's): the worker's. */
	ms_vm_growth growth;
} lv_state;

static void free_state(void *state)
{
	lv_state *s = state;

	ms_vm_free(s->vm);
	ms_vm_growth_clear(&s->growth);
	if (s->proc.pidfd >= 0)
		close(s->proc.pidfd);
	g_free(s);
}

static int admit(const ms_ident *id, const ms_caller *c, const char *mode, ms_admitted *out,
		 char **why)
{
	const char *name = id->key + strlen(PREFIX);
	ms_vm *vm = NULL;
	pid_t pid = 0;
	int r;

	(void)mode;
	if ((r = caller_may(c, true, why)) < 0)
		return r;
	if ((r = ms_libvirt_open(uri, name, &vm, &pid, why)) < 0)
		return r == -ESRCH ? ms_fail(why, -ENOENT, "domain %s is not running", name) : r;
	lv_state *s = g_new0(lv_state, 1);
	s->vm = vm;
	s->proc = (ms_proc_id){.pid = 0, .pidfd = -1};
	ms_proc_stat st;
	if (pid > 0 && ms_proc_stat_read(pid, &st) == 0) {
		s->proc.pidfd = pidfd_open(pid, 0);
		s->proc.pid = pid;
		s->proc.starttime = st.starttime;
	}
	g_strlcpy(out->name, ms_vm_name(vm) ? ms_vm_name(vm) : name, sizeof(out->name));
	out->owner = 0; /* libvirt's domains are root's */
	out->default_mode = ms_vm_default_mode(vm);
	out->state = s;
	return 0;
}

static int mode_ok(void *state, const char *mode, char **why)
{
	return ms_vm_mode_supported(((lv_state *)state)->vm, mode, why);
}

static int step(void *state, const char *mode, const ms_params *p, ms_step *out, char **why)
{
	lv_state *s = state;

	return ms_vm_growth_step(&s->growth, s->vm, s->proc.pid, mode, p, out, why);
}

static bool alive(void *state)
{
	lv_state *s = state;

	/* QEMU gone: the domain was shut off (a step also asks libvirt). */
	return s->proc.pid <= 0 || ms_proc_alive(&s->proc);
}

pid_t ms_libvirt_qemu_pid(void *state)
{
	return ((lv_state *)state)->proc.pid;
}
#else
static int admit(const ms_ident *id, const ms_caller *c, const char *mode, ms_admitted *out,
		 char **why)
{
	(void)id, (void)c, (void)mode, (void)out;
	return ms_fail(why, -EOPNOTSUPP,
		       "this memstatfs was built without libvirt (meson option libvirt)");
}

static int step(void *state, const char *mode, const ms_params *p, ms_step *out, char **why)
{
	(void)state, (void)mode, (void)p, (void)out;
	return ms_fail(why, -EOPNOTSUPP, "built without libvirt");
}

static bool alive(void *state)
{
	(void)state;
	return false;
}

static void free_state(void *state)
{
	g_free(state);
}

pid_t ms_libvirt_qemu_pid(void *state)
{
	(void)state;
	return 0;
}
static int mode_ok(void *state, const char *mode, char **why)
{
	(void)state, (void)mode, (void)why;
	return 0;
}
#endif

static int check_caller(void *state, const ms_caller *c, char **why)
{
	(void)state;
	return c->uid == 0 ? 0 : caller_may(c, false, why);
}

static bool visible(void *state, const ms_caller *c)
{
	g_autofree char *why = NULL;
	return check_caller(state, c, &why) == 0;
}

const ms_source ms_libvirt_source = {
	.kind = "libvirt",
	.noun = "libvirt domain",
	.bit = MS_KIND_LIBVIRT,
	.syntax = "libvirt:DOMAIN",
	.named = true,
	.needs_groups = true,
	.modes = modes,
	.parse = parse,
	.resolve = resolve,
	.admit = admit,
	.mode_ok = mode_ok,
	.step = step,
	.alive = alive,
	.check_caller = check_caller,
	.visible = visible,
	.free = free_state,
	.options = options,
};
