/*
 * Whether mode = uring can run here, asked before anything starts (and
 * by hellod -t): a real io_uring_setup(), then the operations and
 * features the engine uses.  A refusal names the reason and the way out.
 *
 * io_uring is often switched off where hellod may be deployed: the
 * kernel.io_uring_disabled sysctl (Linux 6.6), container runtimes whose
 * default seccomp profile (Docker, Kubernetes' RuntimeDefault) denies
 * io_uring_setup(), systemd units whose SystemCallFilter lacks it.
 */
#include <sys/mman.h>
#include <sys/types.h>

#include <errno.h>
#include <grp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <liburing.h>

#include "hellod.h"
#include "uring.h"

#define URING_WAY_OUT	"; mode = async serves without it"

static int
sysctl_int(const char *path)
{
	FILE	*f;
	int	 v;

	if ((f = fopen(path, "r")) == NULL)
		return -1;
	if (fscanf(f, "%d", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

/* The operations the engine submits.  IORING_OP_SEND_ZC stands for
 * Linux 6.0, which brought multishot receive: no opcode names that. */
static const struct {
	int		 op;
	const char	*name;
} uring_ops[] = {
	{ IORING_OP_ACCEPT,		"accept" },
	{ IORING_OP_RECV,		"recv" },
	{ IORING_OP_SEND,		"send" },
	{ IORING_OP_ASYNC_CANCEL,	"async cancel" },
	{ IORING_OP_CLOSE,		"close" },
	{ IORING_OP_SEND_ZC,		"multishot receive (Linux 6.0)" },
};

static int
probe_setup_failed(int rc, char *err, size_t errlen)
{
	int	 disabled;

	disabled = sysctl_int("/proc/sys/kernel/io_uring_disabled");
	if (rc == -EPERM && disabled == 2)
		snprintf(err, errlen, "mode = uring: io_uring is disabled "
		    "(kernel.io_uring_disabled = 2)" URING_WAY_OUT);
	else if (rc == -EPERM && disabled == 1)
		snprintf(err, errlen, "mode = uring: io_uring is restricted "
		    "to CAP_SYS_ADMIN and kernel.io_uring_group "
		    "(kernel.io_uring_disabled = 1)" URING_WAY_OUT);
	else if (rc == -EPERM)
		snprintf(err, errlen, "mode = uring: io_uring_setup() is "
		    "denied (EPERM), likely by a seccomp filter such as a "
		    "container runtime's default profile or a "
		    "SystemCallFilter" URING_WAY_OUT);
	else if (rc == -ENOSYS)
		snprintf(err, errlen, "mode = uring: io_uring_setup() is not "
		    "available (ENOSYS): a kernel without io_uring, or a "
		    "seccomp filter that hides it" URING_WAY_OUT);
	else
		snprintf(err, errlen, "mode = uring: io_uring_setup() "
		    "failed: %s" URING_WAY_OUT, strerror(-rc));
	return -1;
}

/* A provided buffer ring (Linux 5.19) can be registered. */
static int
probe_buf_ring(struct io_uring *ring)
{
	struct io_uring_buf_reg	 reg;
	size_t			 size = 8 * sizeof(struct io_uring_buf);
	void			*p;
	int			 rc;

	p = mmap(NULL, size, PROT_READ | PROT_WRITE,
	    MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	memset(&reg, 0, sizeof(reg));
	reg.ring_addr = (uint64_t)(uintptr_t)p;
	reg.ring_entries = 8;
	reg.bgid = 0;
	rc = io_uring_register_buf_ring(ring, &reg, 0);
	if (rc == 0)
		(void)io_uring_unregister_buf_ring(ring, 0);
	munmap(p, size);
	return rc;
}

int
uring_probe(char *err, size_t errlen)
{
	struct io_uring		 ring;
	struct io_uring_probe	*probe;
	size_t			 i;
	int			 rc;

	if ((rc = io_uring_queue_init(8, &ring, 0)) < 0)
		return probe_setup_failed(rc, err, errlen);
	rc = 0;
	if ((probe = io_uring_get_probe_ring(&ring)) == NULL) {
		snprintf(err, errlen, "mode = uring: this kernel cannot list "
		    "its io_uring operations (Linux 6.0 or later is needed)"
		    URING_WAY_OUT);
		rc = -1;
		goto done;
	}
	for (i = 0; i < sizeof(uring_ops) / sizeof(uring_ops[0]); i++)
		if (!io_uring_opcode_supported(probe, uring_ops[i].op)) {
			snprintf(err, errlen, "mode = uring: this kernel's "
			    "io_uring lacks %s (Linux 6.0 or later is "
			    "needed)" URING_WAY_OUT, uring_ops[i].name);
			rc = -1;
			goto done;
		}
	if ((rc = probe_buf_ring(&ring)) < 0) {
		snprintf(err, errlen, "mode = uring: provided buffer rings "
		    "are unavailable: %s (Linux 5.19 or later is needed)"
		    URING_WAY_OUT, strerror(-rc));
		rc = -1;
	}
done:
	if (probe != NULL)
		io_uring_free_probe(probe);
	io_uring_queue_exit(&ring);
	return rc;
}

/*
 * The workers, not the master, use the ring: with
 * kernel.io_uring_disabled = 1 a master started as root passes the probe
 * while workers that drop to an unprivileged user would not, unless their
 * group is kernel.io_uring_group.
 */
static int
uring_check_workers(const struct hd_config *cf, char *err, size_t errlen)
{
	const struct group	*gr;
	const char		*name;
	int			 allowed;

	if (geteuid() != 0 ||
	    sysctl_int("/proc/sys/kernel/io_uring_disabled") != 1 ||
	    strcmp(cf->cf_user, "root") == 0)
		return 0;
	name = cf->cf_group[0] != '\0' ? cf->cf_group : HD_DEFAULT_GROUP;
	allowed = sysctl_int("/proc/sys/kernel/io_uring_group");
	if ((gr = getgrnam(name)) != NULL && allowed >= 0 &&
	    gr->gr_gid == (gid_t)allowed)
		return 0;
	snprintf(err, errlen, "mode = uring: kernel.io_uring_disabled = 1 "
	    "allows io_uring only to CAP_SYS_ADMIN and the group "
	    "kernel.io_uring_group, and the workers run as group %s"
	    URING_WAY_OUT, name);
	return -1;
}

/*
 * TLS listeners are not served by the uring workers: the TLS transport
 * reads and writes through the readiness engine.
 */
int
uring_refuse_tls(const struct hd_config *cf, char *err, size_t errlen)
{
	unsigned	 i;

	if (cf->cf_mode != HD_MODE_URING)
		return 0;
	for (i = 0; i < cf->cf_nlisten; i++)
		if (cf->cf_listen[i].ln_opts & HD_LO_TLS) {
			snprintf(err, errlen, "mode = uring: %s is a TLS "
			    "listener, and TLS is served in mode = async "
			    "only", cf->cf_listen[i].ln_addr.a_text);
			return -1;
		}
	return 0;
}

/* The whole check of a configuration that asks for mode = uring. */
int
uring_check(const struct hd_config *cf, char *err, size_t errlen)
{
	if (cf->cf_mode != HD_MODE_URING)
		return 0;
	if (uring_refuse_tls(cf, err, errlen) == -1 ||
	    uring_probe(err, errlen) == -1)
		return -1;
	return uring_check_workers(cf, err, errlen);
}
