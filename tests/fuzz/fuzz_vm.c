/* fuzz_vm.c: the QMP client and the VM collector (collectors/qmp.c,
 * collectors/qemu.c) against QEMU's side of the conversation.
 *
 * The input is everything "QEMU" says, written at once into the other end
 * of a socketpair and followed by end of file: a greeting, then replies,
 * events and garbage, one message per line.  The client's commands are
 * tagged "ms-1", "ms-2"... in the order ms_vm_open and ms_vm_step send
 * them (qmp_capabilities, query-name, query-memory-size-summary, query-kvm,
 * [calc-dirty-rate, query-dirty-rate for the dirty-ring probe when KVM is
 * enabled], then per step query-dirty-rate until "measured", calc-dirty-rate,
 * query-dirty-rate): a reply counts only when its id matches.  What the
 * client sends is read and dropped by a thread, so it never blocks.
 *
 * ms_vm_open, then up to STEPS steps: two in the VM's default mode, one in
 * page-sampling (a change of mode).  A step that returns -EINPROGRESS (QEMU
 * still "measuring") is called again at once, as the registry calls it
 * again soon; each call reads one reply, so the input bounds the calls, and
 * MAX_CALLS bounds the time an input can take.  Everything is freed, and
 * the socket must be closed by ms_vm_free, or by ms_vm_open when it fails.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz.h"
#include "memstat/methods/qemu_dirty_rate.h"

#define STEPS	  3   /* windows asked for */
#define MAX_CALLS 256 /* calls of ms_vm_step, -EINPROGRESS included */

static void *drain(void *data)
{
	int fd = *(int *)data;
	char buf[16384];

	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n > 0 || (n < 0 && errno == EINTR))
			continue;
		return NULL;
	}
}

static bool closed(int fd)
{
	return fcntl(fd, F_GETFD) == -1 && errno == EBADF;
}

static bool one_of(const char *s, const char *const *set, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s && strcmp(s, set[i]) == 0)
			return true;
	return false;
}

static const char *const vm_modes[] = {"page-sampling", "dirty-bitmap", "dirty-ring"};

static void check_measurement(const ms_measurement *m)
{
	FUZZ_CHECK(one_of(m->mode, vm_modes, G_N_ELEMENTS(vm_modes)));
	FUZZ_CHECK(m->method != NULL);
	FUZZ_CHECK(m->period_ms > 0);
	FUZZ_CHECK(m->vcpus <= 4096);
	FUZZ_CHECK(m->vcpus == 0 || m->vcpu != NULL);
	for (uint32_t i = 0; i < m->vcpus; i++)
		(void)m->vcpu[i].rate; /* ASan: all vcpus entries exist */
	if (!m->exact)
		FUZZ_CHECK(m->pages_dirty <= m->pages_sampled);
}

static void use_vm(ms_vm *vm)
{
	const char *name = ms_vm_name(vm);
	const char *dflt = ms_vm_default_mode(vm);
	char *why = NULL;

	FUZZ_CHECK(name == NULL || name[0] != '\0');
	FUZZ_CHECK(one_of(dflt, vm_modes, G_N_ELEMENTS(vm_modes)));
	FUZZ_CHECK(ms_vm_mode_supported(vm, dflt, &why) == 0);
	(void)ms_vm_ram_bytes(vm);
	for (size_t i = 0; i < G_N_ELEMENTS(vm_modes); i++) {
		int r = ms_vm_mode_supported(vm, vm_modes[i], &why);
		FUZZ_CHECK(r == 0 || (r == -EOPNOTSUPP && why));
		g_clear_pointer(&why, g_free);
	}
	FUZZ_CHECK(ms_vm_mode_supported(vm, "full-scan", &why) == -EINVAL && why);
	g_clear_pointer(&why, g_free);

	const ms_params params = {.period_ms = 1000, .sample_pages = 512};
	const char *modes[STEPS] = {dflt, dflt, "page-sampling"};
	int calls = 0;
	for (int i = 0; i < STEPS && calls < MAX_CALLS; calls++) {
		ms_measurement m;
		memset(&m, 0, sizeof(m));
		uint32_t again;
		ms_vm_run run;
		int r = ms_vm_step(vm, &params, modes[i], &m, &again, &run, &why);
		if (r == 1)
			check_measurement(&m);
		else if (r == 0 || r == -EINPROGRESS)
			FUZZ_CHECK(m.vcpu == NULL);
		else
			FUZZ_CHECK(r < 0 && why != NULL);
		g_free(m.vcpu);
		g_clear_pointer(&why, g_free);
		if (r == -ESRCH) /* QEMU went away: the registry stops here too */
			break;
		if (r != -EINPROGRESS)
			i++;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return 0; /* out of file descriptors: not the input's fault */
	int client = sv[0], qemu = sv[1];

	/* Everything QEMU says, then end of file.  Inputs are capped
	 * (-max_len, see meson.build) well below the socket's buffer. */
	for (size_t off = 0; off < size;) {
		ssize_t n = send(qemu, data + off, size - off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			fuzz_fail(__FILE__, __LINE__, "input larger than the socket buffer");
			break;
		}
		off += (size_t)n;
	}
	shutdown(qemu, SHUT_WR);
	pthread_t t;
	FUZZ_CHECK(pthread_create(&t, NULL, drain, &qemu) == 0);

	ms_vm *vm = NULL;
	char *why = NULL;
	int r = ms_vm_open(client, &vm, &why);
	if (r == 0) {
		FUZZ_CHECK(vm != NULL);
		use_vm(vm);
		ms_vm_free(vm);
	} else {
		FUZZ_CHECK(r == -EPROTO || r == -ETIMEDOUT || r == -ECONNRESET);
		FUZZ_CHECK(why != NULL);
		g_free(why);
	}
	/* The client's end is closed (ms_vm_free, or ms_vm_open failing):
	 * the thread sees end of file. */
	FUZZ_CHECK(closed(client));
	pthread_join(t, NULL);
	close(qemu);
	return 0;
}
