/*
 * deny_uring EPERM|ENOSYS PROGRAM [ARG]...: runs PROGRAM under a seccomp
 * filter that fails io_uring_setup() with the given errno, as the
 * default seccomp profiles of Docker and Kubernetes do (EPERM), or as a
 * filter that hides the call does (ENOSYS).  Everything else is allowed,
 * and the filter is inherited by every child.
 */
#include <sys/prctl.h>
#include <sys/syscall.h>

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#if defined(__x86_64__)
#define DENY_ARCH	AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define DENY_ARCH	AUDIT_ARCH_AARCH64
#else
#error "deny_uring: add this architecture's AUDIT_ARCH"
#endif

int
main(int argc, char *argv[])
{
	struct sock_fprog	 prog;
	int			 err;

	if (argc < 3 || (strcmp(argv[1], "EPERM") != 0 &&
	    strcmp(argv[1], "ENOSYS") != 0)) {
		fprintf(stderr, "usage: deny_uring EPERM|ENOSYS program "
		    "[arg]...\n");
		return 2;
	}
	err = strcmp(argv[1], "EPERM") == 0 ? EPERM : ENOSYS;
	{
		struct sock_filter filter[] = {
			BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			    offsetof(struct seccomp_data, arch)),
			BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, DENY_ARCH, 1, 0),
			BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
			BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			    offsetof(struct seccomp_data, nr)),
			BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K,
			    __NR_io_uring_setup, 0, 1),
			BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO |
			    ((unsigned)err & SECCOMP_RET_DATA)),
			BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		};

		prog.len = sizeof(filter) / sizeof(filter[0]);
		prog.filter = filter;
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1) {
			perror("deny_uring: prctl(PR_SET_NO_NEW_PRIVS)");
			return 1;
		}
		if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == -1) {
			perror("deny_uring: prctl(PR_SET_SECCOMP)");
			return 1;
		}
	}
	execvp(argv[2], argv + 2);
	perror("deny_uring: execvp");
	return 127;
}
