/* libvirt_dirty_rate.c: the libvirt backend of ms_vm (libvirt_dirty_rate.h).
 *
 * One connection per target, used by one worker at a time (libvirt's
 * connections are thread safe anyway).  The domain is followed by its id:
 * a domain shut off, undefined, or started anew (another id, another QEMU)
 * is gone for this target.
 */
#define _GNU_SOURCE
#include "memstat/methods/libvirt_dirty_rate.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "memstat/methods/fail.h"
#include "memstat/methods/procfs.h"

typedef struct {
	virConnectPtr conn;
	virDomainPtr dom;
	int id; /* the running domain's id at admission */
	unsigned char uuid[VIR_UUID_BUFLEN];
} lv_backend;

static const char *const modes[] = {"page-sampling", "dirty-bitmap", "dirty-ring"};
static const unsigned mode_flags[] = {VIR_DOMAIN_DIRTYRATE_MODE_PAGE_SAMPLING,
				      VIR_DOMAIN_DIRTYRATE_MODE_DIRTY_BITMAP,
				      VIR_DOMAIN_DIRTYRATE_MODE_DIRTY_RING};

static const char *lv_message(void)
{
	const char *m = virGetLastErrorMessage();
	return m ? m : "unknown libvirt error";
}

/* Whether the domain is still the one admitted: -ESRCH when not. */
static int lv_same(lv_backend *b, char **why)
{
	int state = 0, reason = 0;

	if (virDomainGetState(b->dom, &state, &reason, 0) < 0) {
		int code = virGetLastErrorCode();
		if (code == VIR_ERR_NO_DOMAIN)
			return ms_fail(why, -ESRCH, "the domain is undefined");
		if (code == VIR_ERR_SYSTEM_ERROR || code == VIR_ERR_RPC ||
		    code == VIR_ERR_NO_CONNECT || code == VIR_ERR_INTERNAL_ERROR)
			return ms_fail(why, -EIO, "libvirt: %s", lv_message());
		return ms_fail(why, -EIO, "libvirt: %s", lv_message());
	}
	if (state == VIR_DOMAIN_SHUTOFF || state == VIR_DOMAIN_CRASHED)
		return ms_fail(why, -ESRCH, "the domain is shut off");
	/* A handle keeps the id it was looked up with: ask afresh whether the
	 * domain running now is the one admitted (not started anew). */
	virDomainPtr now = virDomainLookupByUUID(b->conn, b->uuid);
	int id = now ? (int)virDomainGetID(now) : -1;
	if (now)
		virDomainFree(now);
	if (id != b->id)
		return ms_fail(why, -ESRCH, "the domain was shut off (it runs anew as id %d)", id);
	return state;
}

static int lv_start(void *vb, uint32_t calc_s, uint32_t sample_pages, const char *mode, char **why)
{
	lv_backend *b = vb;
	unsigned flags = 0;

	(void)sample_pages; /* libvirt asks QEMU for its default, 512 per GiB */
	for (size_t i = 0; i < G_N_ELEMENTS(modes); i++)
		if (strcmp(mode, modes[i]) == 0)
			flags = mode_flags[i];
	if (virDomainStartDirtyRateCalc(b->dom, (int)calc_s, flags) == 0)
		return 0;
	const char *m = lv_message();
	if (strstr(m, "already being measured"))
		return ms_fail(why, -EBUSY,
			       "another client is measuring the dirty rate (libvirt: %s); retrying",
			       m);
	if (strstr(m, "not enabled") || virGetLastErrorCode() == VIR_ERR_OPERATION_UNSUPPORTED)
		return ms_fail(why, -EOPNOTSUPP, "libvirt: %s", m);
	int r = lv_same(b, NULL);
	return r < 0 ? ms_fail(why, r, "libvirt: %s", m)
		     : ms_fail(why, -EIO, "libvirt refused to start a dirty-rate calculation: %s",
			       m);
}

static const char *static_mode(const char *m)
{
	for (size_t i = 0; m && i < G_N_ELEMENTS(modes); i++)
		if (strcmp(m, modes[i]) == 0)
			return modes[i];
	return m ? "unknown" : NULL;
}

static int lv_query(void *vb, ms_vm_result *out, char **why)
{
	lv_backend *b = vb;
	virDomainPtr doms[2] = {b->dom, NULL};
	virDomainStatsRecordPtr *recs = NULL;

	memset(out, 0, sizeof(*out));
	out->start_time = -2;
	int n = virDomainListGetStats(doms, VIR_DOMAIN_STATS_DIRTYRATE, &recs, 0);
	if (n < 0) {
		int r = lv_same(b, why);
		return r < 0 ? r : ms_fail(why, -EIO, "libvirt: %s", lv_message());
	}
	if (n == 0) {
		virDomainStatsRecordListFree(recs);
		return ms_fail(why, -ESRCH, "the domain is gone");
	}
	virTypedParameterPtr p = recs[0]->params;
	int np = recs[0]->nparams;
	int ival;
	long long llval;
	const char *sval = NULL;
	if (virTypedParamsGetInt(p, np, "dirtyrate.calc_status", &ival) == 1)
		out->status = ival;
	if (virTypedParamsGetLLong(p, np, "dirtyrate.calc_start_time", &llval) == 1)
		out->start_time = llval;
	if (virTypedParamsGetInt(p, np, "dirtyrate.calc_period", &ival) == 1 && ival > 0)
		out->calc_ms = (uint32_t)ival * 1000;
	if (virTypedParamsGetLLong(p, np, "dirtyrate.megabytes_per_second", &llval) == 1)
		out->rate = MAX(llval, 0);
	if (virTypedParamsGetString(p, np, "dirtyrate.calc_mode", &sval) == 1)
		out->mode = static_mode(sval);
	if (virTypedParamsGetInt(p, np, "dirtyrate.calc_sample_pages", &ival) == 1 && ival > 0)
		out->sample_pages = (uint32_t)ival;
	for (int i = 0; i < np; i++) {
		unsigned id;
		char tail[32];
		if (sscanf(p[i].field, "dirtyrate.vcpu.%u.%31s", &id, tail) != 2 ||
		    strcmp(tail, "megabytes_per_second") != 0 || out->vcpus >= 4096)
			continue;
		if (!out->vcpu)
			out->vcpu = g_new0(ms_vcpu_rate, 4096);
		out->vcpu[out->vcpus++] = (ms_vcpu_rate){id, (double)p[i].value.l};
	}
	virDomainStatsRecordListFree(recs);
	return 0;
}

static int lv_run_state(void *vb, ms_vm_run *run, uint64_t *ram_bytes, char **why)
{
	lv_backend *b = vb;
	int reason = 0, state = 0;
	virDomainInfo info;

	if ((state = lv_same(b, why)) < 0)
		return state;
	if (virDomainGetState(b->dom, &state, &reason, 0) < 0)
		return ms_fail(why, -EIO, "libvirt: %s", lv_message());
	*run = state == VIR_DOMAIN_RUNNING ? MS_VM_RUNNING : MS_VM_PAUSED;
	if (state == VIR_DOMAIN_PAUSED &&
	    (reason == VIR_DOMAIN_PAUSED_MIGRATION || reason == VIR_DOMAIN_PAUSED_POSTCOPY))
		*run = MS_VM_MIGRATING;
	/* A migration job under way (the guest runs meanwhile). */
	int type = VIR_DOMAIN_JOB_NONE, np = 0, op = 0;
	virTypedParameterPtr params = NULL;
	if (virDomainGetJobStats(b->dom, &type, &params, &np, 0) == 0) {
		if (type != VIR_DOMAIN_JOB_NONE &&
		    virTypedParamsGetInt(params, np, VIR_DOMAIN_JOB_OPERATION, &op) == 1 &&
		    (op == VIR_DOMAIN_JOB_OPERATION_MIGRATION_OUT ||
		     op == VIR_DOMAIN_JOB_OPERATION_MIGRATION_IN))
			*run = MS_VM_MIGRATING;
		virTypedParamsFree(params, np);
	}
	if (virDomainGetInfo(b->dom, &info) == 0 && info.memory)
		*ram_bytes = (uint64_t)info.memory * 1024; /* KiB, the current size */
	return 0;
}

static void lv_free(void *vb)
{
	lv_backend *b = vb;

	if (b->dom)
		virDomainFree(b->dom);
	if (b->conn)
		virConnectClose(b->conn);
	g_free(b);
}

static const ms_vm_backend lv_ops = {
	.method = "libvirt:dirtyrate",
	.start = lv_start,
	.query = lv_query,
	.run_state = lv_run_state,
	.free = lv_free,
};

/* The QEMU process libvirt started for the domain: the one whose command
 * line carries `-uuid UUID`.  0 when none is visible. */
static pid_t qemu_pid_of(const char *uuid)
{
	g_autoptr(GDir) d = g_dir_open("/proc", 0, NULL);
	const char *e;

	while (d && (e = g_dir_read_name(d))) {
		if (strspn(e, "0123456789") != strlen(e))
			continue;
		g_autofree char *path = g_strdup_printf("/proc/%s/cmdline", e);
		g_autofree char *cmd = NULL;
		gsize len = 0;
		if (!g_file_get_contents(path, &cmd, &len, NULL))
			continue;
		bool qemu = strstr(cmd, "qemu") != NULL;
		for (gsize off = 0; qemu && off < len;) {
			const char *arg = cmd + off;
			size_t alen = strnlen(arg, len - off);
			if (strcmp(arg, "-uuid") == 0 && off + alen + 1 < len &&
			    strcmp(arg + alen + 1, uuid) == 0)
				return (pid_t)atoi(e);
			off += alen + 1;
		}
	}
	return 0;
}

static void quiet(void *data, virErrorPtr err)
{
	(void)data;
	(void)err;
}

int ms_libvirt_open(const char *uri, const char *name, ms_vm **out, pid_t *qemu_pid, char **why)
{
	lv_backend *b = g_new0(lv_backend, 1);
	char uuid[VIR_UUID_STRING_BUFLEN] = "";
	g_autofree char *xml = NULL;
	int r;

	virSetErrorFunc(NULL, quiet); /* errors are ours to say, once */
	b->conn = virConnectOpen(uri ? uri : "qemu:///system");
	if (!b->conn) {
		r = ms_fail(why, -ECONNREFUSED, "cannot connect to libvirt at %s: %s",
			    uri ? uri : "qemu:///system", lv_message());
		goto fail;
	}
	b->dom = virDomainLookupByName(b->conn, name);
	if (!b->dom) {
		r = virGetLastErrorCode() == VIR_ERR_NO_DOMAIN
			    ? ms_fail(why, -ENOENT, "libvirt has no domain %s", name)
			    : ms_fail(why, -EIO, "libvirt: %s", lv_message());
		goto fail;
	}
	int id = (int)virDomainGetID(b->dom);
	if (id < 0 || virDomainIsActive(b->dom) != 1) {
		r = ms_fail(why, -ESRCH, "domain %s is not running", name);
		goto fail;
	}
	b->id = id;
	virDomainGetUUID(b->dom, b->uuid);
	xml = virDomainGetXMLDesc(b->dom, 0);
	/* <domain type='kvm'>; KVM's dirty ring: <dirty-ring state='on' .../> */
	bool kvm =
		xml && (strstr(xml, "<domain type='kvm'") || strstr(xml, "<domain type=\"kvm\""));
	bool ring = xml && (strstr(xml, "<dirty-ring state='on'") ||
			    strstr(xml, "<dirty-ring state=\"on\""));
	virDomainInfo info = {0};
	virDomainGetInfo(b->dom, &info);
	virDomainGetUUIDString(b->dom, uuid);
	*qemu_pid = uuid[0] ? qemu_pid_of(uuid) : 0;
	*out = ms_vm_new(&lv_ops, b, virDomainGetName(b->dom), (uint64_t)info.memory * 1024, kvm,
			 kvm ? ring : 0);
	return 0;
fail:
	lv_free(b);
	return r;
}
