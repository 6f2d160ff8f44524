/* seccomp_run: runs a program under a seccomp filter that refuses the named
 * system calls with the named errno, as a container runtime's default
 * profile does (Docker's answered pidfd_open with EPERM for years):
 *
 *   seccomp_run CALL=ERRNO... -- PROGRAM [ARGS...]
 *
 * CALL is a system call's name (pidfd_open, process_vm_readv...), or
 * pagemap_scan: ioctl with PAGEMAP_SCAN's request only.  ERRNO is EPERM,
 * EACCES or ENOSYS.  Everything else is allowed.
 */
#include <errno.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* _IOWR('f', 16, struct pm_scan_arg): 96 bytes (include/uapi/linux/fs.h,
 * Linux 6.7). */
#define PAGEMAP_SCAN 0xC0606610u

static int errno_named(const char *s)
{
	return strcmp(s, "EPERM") == 0	  ? EPERM
	       : strcmp(s, "EACCES") == 0 ? EACCES
	       : strcmp(s, "ENOSYS") == 0 ? ENOSYS
					  : -1;
}

int main(int argc, char **argv)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	int i = 1;

	if (!ctx)
		return fprintf(stderr, "seccomp_run: seccomp_init failed\n"), 125;
	for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
		char *eq = strchr(argv[i], '=');
		int e = eq ? errno_named(eq + 1) : -1, r;
		if (e < 0)
			return fprintf(stderr, "seccomp_run: %s: want CALL=EPERM|EACCES|ENOSYS\n",
				       argv[i]),
			       125;
		*eq = '\0';
		if (strcmp(argv[i], "pagemap_scan") == 0) {
			r = seccomp_rule_add(
				ctx, SCMP_ACT_ERRNO(e), SCMP_SYS(ioctl), 1,
				SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, PAGEMAP_SCAN));
		} else {
			int nr = seccomp_syscall_resolve_name(argv[i]);
			if (nr == __NR_SCMP_ERROR)
				return fprintf(stderr, "seccomp_run: no system call %s\n", argv[i]),
				       125;
			r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(e), nr, 0);
		}
		if (r < 0)
			return fprintf(stderr, "seccomp_run: %s: %s\n", argv[i], strerror(-r)), 125;
	}
	if (i + 1 >= argc)
		return fprintf(stderr, "usage: seccomp_run CALL=ERRNO... -- PROGRAM [ARGS...]\n"),
		       125;
	int r = seccomp_load(ctx);
	if (r < 0)
		return fprintf(stderr, "seccomp_run: seccomp_load: %s\n", strerror(-r)), 125;
	seccomp_release(ctx);
	execvp(argv[i + 1], argv + i + 1);
	fprintf(stderr, "seccomp_run: %s: %s\n", argv[i + 1], strerror(errno));
	return 127;
}
