/*
 * The seccomp filter that keeps a worker's writable statistics slot where
 * it is (see stats_slot_guard() and stats.c's child mappings).
 */
#include <sys/prctl.h>
#include <sys/syscall.h>

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

#include <endian.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include "hellod.h"
#include "stats.h"

#if defined(__x86_64__)
#define SLOT_GUARD_ARCH		AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define SLOT_GUARD_ARCH		AUDIT_ARCH_AARCH64
#endif

#if defined(SLOT_GUARD_ARCH) && defined(__NR_remap_file_pages)
#if __BYTE_ORDER == __LITTLE_ENDIAN
#define ARG0_LO		offsetof(struct seccomp_data, args[0])
#define ARG0_HI		(offsetof(struct seccomp_data, args[0]) + 4)
#else
#define ARG0_LO		(offsetof(struct seccomp_data, args[0]) + 4)
#define ARG0_HI		offsetof(struct seccomp_data, args[0])
#endif
#define GUARD_PAGES_MAX	8

/*
 * A worker's own slot is a shared mapping of the read-write descriptor:
 * closing that descriptor is not enough, for the kernel would still let
 * the mapping itself reach other pages of the region.  mremap() can grow
 * it, or duplicate it larger (old_size 0), over the following slots;
 * remap_file_pages() can point it at any page, the master area included,
 * writable.  This filter refuses both on the slot (EPERM), and every
 * system call of another ABI (i386, x32) that could name them otherwise.
 * Nothing else changes: mremap() of any other mapping (realloc() of a
 * large block) still works.  Needs no_new_privs, which it sets (the
 * privilege drop sets it anyway).
 */
int
stats_slot_guard(const void *own, size_t len, size_t page)
{
	struct sock_filter	 f[10 + 4 * GUARD_PAGES_MAX];
	struct sock_fprog	 prog;
	uint64_t		 a;
	size_t			 npages = len / page, i;
	unsigned		 n = 0;

	if (npages == 0 || npages > GUARD_PAGES_MAX) {
		log_warnx("a statistics slot of %zu pages cannot be guarded",
		    npages);
		return -1;
	}
#define ST(code, k)		(struct sock_filter)BPF_STMT((code), (k))
#define JU(code, k, t, e)	(struct sock_filter)BPF_JUMP((code), (k), (t), (e))
	/* Jump offsets are counted from the next instruction; the last two
	 * are ALLOW then DENY. */
	f[n++] = ST(BPF_LD | BPF_W | BPF_ABS,
	    offsetof(struct seccomp_data, arch));
	f[n++] = JU(BPF_JMP | BPF_JEQ | BPF_K, SLOT_GUARD_ARCH, 1, 0);
	f[n++] = ST(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM);
	f[n++] = ST(BPF_LD | BPF_W | BPF_ABS,
	    offsetof(struct seccomp_data, nr));
#ifdef __x86_64__
	f[n++] = JU(BPF_JMP | BPF_JGE | BPF_K, 0x40000000, 0,	/* x32 */
	    1);
	f[n++] = ST(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM);
#endif
	f[n++] = JU(BPF_JMP | BPF_JEQ | BPF_K, __NR_remap_file_pages,
	    (uint8_t)(4 * npages + 2), 0);
	f[n++] = JU(BPF_JMP | BPF_JEQ | BPF_K, __NR_mremap, 0,
	    (uint8_t)(4 * npages));
	for (i = 0; i < npages; i++) {
		a = (uint64_t)(uintptr_t)own + i * page;
		f[n++] = ST(BPF_LD | BPF_W | BPF_ABS, ARG0_HI);
		f[n++] = JU(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)(a >> 32), 0,
		    2);
		f[n++] = ST(BPF_LD | BPF_W | BPF_ABS, ARG0_LO);
		f[n++] = JU(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)a,
		    (uint8_t)(4 * (npages - i - 1) + 1), 0);
	}
	f[n++] = ST(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	f[n++] = ST(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM);
#undef ST
#undef JU
	prog.len = (unsigned short)n;
	prog.filter = f;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1) {
		log_warn("prctl(PR_SET_NO_NEW_PRIVS) failed");
		return -1;
	}
	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) == -1) {
		log_warn("prctl(PR_SET_SECCOMP) failed");
		return -1;
	}
	return 0;
}
#else
int
stats_slot_guard(const void *own, size_t len, size_t page)
{
	(void)own;
	(void)len;
	(void)page;
	log_warnx("no guard of the statistics slot on this architecture");
	return -1;
}
#endif
