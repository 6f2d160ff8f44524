/* qemu.c: the QEMU source (qemu.h).
 *
 * Admission connects to the QMP socket as the writer would (access.h), asks
 * QEMU what the guest is (qemu_dirty_rate.h), and names it after the guest
 * (query-name) or the socket.  The connection lives as long as the target;
 * its changing part is the worker's (source.h), what ms_vm_open learnt is
 * immutable.
 */
#define _GNU_SOURCE
#include "memstat/sources/qemu.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "memstat/methods/fail.h"
#include "memstat/methods/proc.h"
#include "memstat/methods/qemu_dirty_rate.h"

/* How soon to ask again when another QMP client is measuring, and when
 * QEMU has not finished its measurement yet. */
#define BUSY_RETRY_MS 1000
#define POLL_RETRY_MS 50

typedef struct {
	ms_vm *vm;
	char socket[MS_KEY_MAX];
	ms_proc_id proc; /* QEMU's process; pid 0 when not visible */
	ms_vm_growth growth; /* the worker's */
} vm_state;

static const ms_mode modes[] = {
	{"page-sampling", "QEMU samples guest pages and hashes them", NULL, NULL},
	{"dirty-bitmap", "KVM's dirty log of every guest page (needs KVM)", NULL, NULL},
	{"dirty-ring", "KVM's per-vCPU dirty ring (needs KVM's dirty ring)", NULL, NULL},
	{NULL, NULL, NULL, NULL},
};

static int parse(const char *word, size_t len, char key[MS_KEY_MAX], char **why)
{
	if (len == 0 || word[0] != '/')
		return 0;
	if (len >= sizeof(((struct sockaddr_un *)NULL)->sun_path))
		return ms_fail(why, -ENAMETOOLONG, "socket path too long (at most %zu bytes)",
			       sizeof(((struct sockaddr_un *)NULL)->sun_path) - 1);
	memcpy(key, word, len);
	key[len] = '\0';
	return 1;
}

static int resolve(const char *key, const ms_caller *c, ms_ident *out, char **why)
{
	(void)c;
	(void)why;
	/* The daemon connects only where the caller could (admit). */
	g_strlcpy(out->key, key, sizeof(out->key));
	out->instance = 0;
	return 0;
}

/* QEMU's process, from the socket's peer: pid 0 when it is in a pid
 * namespace the daemon cannot see. */
static ms_proc_id qemu_process(int fd)
{
	struct ucred cred = {0};
	socklen_t len = sizeof(cred);
	ms_proc_stat st;
	ms_proc_id id = {.pid = 0, .pidfd = -1};

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || cred.pid <= 0)
		return id;
	/* The peer is whoever listened: libvirt or systemd may have made the
	 * socket and handed it to QEMU.  Only a QEMU is QEMU's process. */
	char path[64];
	g_autofree char *comm = NULL;
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)cred.pid);
	if (ms_read_file(path, &comm, NULL) < 0 || !g_str_has_prefix(comm, "qemu"))
		return id;
	id.pidfd = pidfd_open(cred.pid, 0);
	if (ms_proc_stat_read(cred.pid, &st) < 0) {
		if (id.pidfd >= 0)
			close(id.pidfd);
		return (ms_proc_id){.pid = 0, .pidfd = -1};
	}
	id.pid = cred.pid;
	id.starttime = st.starttime;
	return id;
}

/* A VM's name when the track line gives none: its own (query-name), else
 * the socket's file name without a .qmp, .sock or .socket suffix. */
static void default_name(const ms_vm *vm, const char *socket, char name[MS_NAME_MAX])
{
	static const char *const suffixes[] = {".qmp", ".sock", ".socket"};
	g_autofree char *base = NULL;

	if (ms_vm_name(vm)) {
		g_strlcpy(name, ms_vm_name(vm), MS_NAME_MAX);
		return;
	}
	base = g_path_get_basename(socket);
	for (size_t i = 0; i < G_N_ELEMENTS(suffixes); i++) {
		size_t len = strlen(base), slen = strlen(suffixes[i]);
		if (len > slen && g_str_has_suffix(base, suffixes[i])) {
			base[len - slen] = '\0';
			break;
		}
	}
	g_strlcpy(name, base, MS_NAME_MAX);
}

static void free_state(void *state)
{
	vm_state *s = state;

	ms_vm_free(s->vm);
	ms_vm_growth_clear(&s->growth);
	if (s->proc.pidfd >= 0)
		close(s->proc.pidfd);
	g_free(s);
}

static int admit(const ms_ident *id, const ms_caller *c, const char *mode, ms_admitted *out,
		 char **why)
{
	ms_vm *vm = NULL;
	int r;

	(void)mode;
	/* The daemon connects only where the caller could connect itself. */
	out->owner = c->uid;
	int fd = ms_connect_as(id->key, c, &out->owner, why);
	if (fd < 0)
		return fd;
	ms_proc_id proc = qemu_process(fd);
	if ((r = ms_vm_open(fd, &vm, why)) < 0) {
		if (proc.pidfd >= 0)
			close(proc.pidfd);
		return r;
	}
	vm_state *s = g_new0(vm_state, 1);
	s->vm = vm;
	s->proc = proc;
	g_strlcpy(s->socket, id->key, sizeof(s->socket));
	default_name(vm, id->key, out->name);
	out->default_mode = ms_vm_default_mode(vm);
	out->state = s;
	return 0;
}

static int mode_ok(void *state, const char *mode, char **why)
{
	return ms_vm_mode_supported(((vm_state *)state)->vm, mode, why);
}

static bool alive(void *state)
{
	vm_state *s = state;

	/* Without QEMU's process in sight, the connection says (step). */
	return s->proc.pid <= 0 || ms_proc_alive(&s->proc);
}

static int check_caller(void *state, const ms_caller *c, char **why)
{
	vm_state *s = state;

	int r = ms_may_connect_as(s->socket, c);
	return r < 0 ? ms_fail(why, r, "uid %u may no longer connect to %s", (unsigned)c->uid,
			       s->socket)
		     : 0;
}

/* The workers' wake-up grid (scheduler.c). */
#define GRID_US 20000

static int step(void *state, const char *mode, const ms_params *p, ms_step *out, char **why)
{
	vm_state *s = state;

	return ms_vm_growth_step(&s->growth, s->vm, s->proc.pid, mode, p, out, why);
}

void ms_vm_growth_clear(ms_vm_growth *g)
{
	g_clear_pointer(&g->probe, ms_growth_probe_free);
	g->qmp_due_us = 0;
	g->held = MS_HELD_NONE;
}

int ms_vm_growth_step(ms_vm_growth *gs, ms_vm *vm, pid_t qemu_pid, const char *mode,
		      const ms_params *p, ms_step *out, char **why)
{
	int64_t now = ms_now_us(CLOCK_MONOTONIC);
	bool growth = p->growth_ms && qemu_pid > 0;
	int r = 0;

	/* Nobody wants the growth curve: every step is QMP's, as it was. */
	if (!growth || gs->qmp_due_us == 0 || now + GRID_US >= gs->qmp_due_us) {
		r = ms_vm_source_step(vm, mode, p, out, why);
		gs->qmp_due_us = now + (out->again_ms ? (int64_t)out->again_ms * 1000
						      : (int64_t)p->period_ms * 1000);
		if (r == 0 || r == 1)
			gs->held = out->held;
		if (r < 0 && r != -EINPROGRESS && r != -EBUSY)
			return r;
	} else {
		/* A growth look between QMP steps: the guest is as the last
		 * one found it (a paused guest stays paused). */
		out->held = gs->held;
	}
	if (!growth && !gs->probe)
		return r;
	if (gs->held != MS_HELD_NONE) {
		/* Paused or migrating: no look at its memory meanwhile (it
		 * would disturb a migration), and no curve over a window that
		 * spans it (a fresh one opens when it runs again); QMP's next
		 * step says when it goes on. */
		if (gs->probe)
			ms_growth_close(gs->probe);
		now = ms_now_us(CLOCK_MONOTONIC);
		out->again_ms = gs->qmp_due_us > now
					? (uint32_t)((gs->qmp_due_us - now + 999) / 1000)
					: 1;
		return r;
	}
	if (!gs->probe)
		gs->probe = ms_growth_probe_new(qemu_pid);
	/* The guest from outside: QEMU's own memory, its RAM a mapping of it
	 * (a QMP client may dump guest memory anyway: hashes tell it less). */
	char who[32];
	snprintf(who, sizeof(who), "QEMU %d", (int)qemu_pid);
	ms_source_growth_tick(gs->probe, growth ? p->growth_ms : 0, p, false, gs->qmp_due_us, out,
			      who);
	return r;
}

int ms_vm_source_step(ms_vm *vm, const char *mode, const ms_params *p, ms_step *out, char **why)
{
	ms_vm_run run = MS_VM_RUNNING;
	int r = ms_vm_step(vm, p, mode, &out->m, &out->again_ms, &run, why);

	if (r == -EINPROGRESS && !out->again_ms)
		out->again_ms = POLL_RETRY_MS;
	if (r == -EBUSY && !out->again_ms)
		out->again_ms = BUSY_RETRY_MS;
	if (r == 0)
		out->held = run == MS_VM_PAUSED	     ? MS_HELD_PAUSED
			    : run == MS_VM_MIGRATING ? MS_HELD_MIGRATING
						     : MS_HELD_NONE;
	return r;
}

const ms_source ms_qemu_source = {
	.kind = "vm",
	.noun = "VM",
	.bit = MS_KIND_VM,
	.syntax = "an absolute socket path",
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
	.free = free_state,
};

pid_t ms_qemu_pid(void *state)
{
	return ((vm_state *)state)->proc.pid;
}

const char *ms_qemu_socket(void *state)
{
	return ((vm_state *)state)->socket;
}
