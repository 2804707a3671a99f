/*
 * In-place upgrade (SIGUSR2): the master executes its executable again,
 * at the path it was started from, keeping its pid (so systemd's MAINPID
 * and the pid file stay right), every listening socket, the pid file's
 * lock and its children.  The new image reads the configuration, starts a
 * new generation of workers on the inherited sockets and retires the old
 * ones, as a reload does.
 *
 * Before it replaces itself, the master runs the new executable with
 * --test-config: a missing or broken file, or a configuration it refuses,
 * leaves the running master and its workers as they are.  What that check
 * cannot see (an address the new configuration adds that is in use, a
 * command line the new version refuses) makes the new image fail before
 * it starts a worker; it then executes the previous image again, from a
 * descriptor kept open on it, and that image resumes with the
 * configuration it was running, saved in a memfd, not the file.
 *
 * What the new image inherits is described in one environment variable:
 *   HELLOD_UPGRADE=gen=G pidfd=F stats=FD tickets=FD old=PID,...
 *       retired=FD,... sock=OPTS:SLOT:PASSED:FD,... conf=FD exe=FD
 * and, when the previous image is executed again, why, in
 *   HELLOD_UPGRADE_FAILED=TEXT
 * upgrade_parse() is its only reader: it turns the value into a struct
 * upgrade_desc, which everything else reads; upgrade_format() is its only
 * writer.  Keys an image does not know are ignored.
 */
#include <sys/mman.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hellod.h"

#define UPGRADE_ENV		"HELLOD_UPGRADE"
#define UPGRADE_FAILED_ENV	"HELLOD_UPGRADE_FAILED"
#define UPGRADE_CHECK_TIME	10000	/* ms for the new image's -t */
#define UPGRADE_MAGIC		"hellod upgrade 1"
#define UPGRADE_ARGS_MAX	65536	/* the command line, at offset 0 */
#define UPGRADE_MAX_ARGS	256

extern char		**environ;

/*
 * The running image's way back, in the memfd named by conf=: at offset 0
 * its command line, NUL-separated and ended by an empty string, which
 * any later image reads; at UPGRADE_ARGS_MAX this structure, which only
 * the same executable reads back.
 */
struct upgrade_saved {
	char		 sv_magic[sizeof(UPGRADE_MAGIC)];
	size_t		 sv_size;
	char		 sv_path[PATH_MAX];	/* the path it executes */
	struct hd_config sv_config;		/* what it was running */
};

static char		 self_path[PATH_MAX];
static char		**self_argv;
static char		 received[65536];	/* HELLOD_UPGRADE, as given */
static char		 resume_why[256];	/* HELLOD_UPGRADE_FAILED */
static int		 resuming;
static int		 back_conf = -1, back_exe = -1;	/* inherited */
static struct upgrade_desc desc;	/* the last value parsed */

static void
copy_printable(char *dst, size_t cap, const char *src)
{
	size_t	 i;

	for (i = 0; src[i] != '\0' && i + 1 < cap; i++)
		dst[i] = src[i] >= 0x20 && src[i] < 0x7f ? src[i] : '?';
	dst[i] = '\0';
}

/*
 * At start-up: where the executable is, how it was started, and whether
 * this image was executed by an upgrade (it then keeps what it received,
 * to hand it back if it cannot start) or executed again after one failed.
 */
void
upgrade_init(char **argv)
{
	const char	*v = getenv(UPGRADE_ENV), *f = getenv(UPGRADE_FAILED_ENV);
	ssize_t		 n;

	self_argv = argv;
	if (f != NULL) {
		/* No way back from the way back. */
		resuming = 1;
		copy_printable(resume_why, sizeof(resume_why), f);
		unsetenv(UPGRADE_FAILED_ENV);
	} else if (v != NULL && strlen(v) < sizeof(received))
		strcpy(received, v);
	n = readlink("/proc/self/exe", self_path, sizeof(self_path) - 1);
	if (n <= 0 || (size_t)n >= sizeof(self_path) - 1) {
		log_warn("readlink(\"/proc/self/exe\") failed; SIGUSR2 will "
		    "not upgrade");
		self_path[0] = '\0';
		return;
	}
	self_path[n] = '\0';
}

/* When this image runs again after a new one failed to start: why. */
const char *
upgrade_resuming(void)
{
	return resuming ? resume_why : NULL;
}

static int
set_cloexec(int fd, int on)
{
	int	 flags;

	if ((flags = fcntl(fd, F_GETFD)) == -1 ||
	    fcntl(fd, F_SETFD, on ? flags | FD_CLOEXEC : flags & ~FD_CLOEXEC) ==
	    -1) {
		log_warn("fcntl(%d, F_SETFD) failed", fd);
		return -1;
	}
	return 0;
}

/*
 * In an image executed again after a failed upgrade: the configuration
 * it was running, from the memfd it saved, and the path it executes.
 */
int
upgrade_saved_config(struct hd_config *cf, char *err, size_t errlen)
{
	static struct upgrade_saved	 sv;
	const char	*v = getenv(UPGRADE_ENV);
	char		 why[128];

	if (v == NULL || upgrade_parse(v, &desc, why, sizeof(why)) == -1 ||
	    desc.ud_conf == -1) {
		snprintf(err, errlen, "upgrade: no saved configuration to "
		    "resume with");
		return -1;
	}
	if (pread(desc.ud_conf, &sv, sizeof(sv), UPGRADE_ARGS_MAX) !=
	    (ssize_t)sizeof(sv) ||
	    memcmp(sv.sv_magic, UPGRADE_MAGIC, sizeof(sv.sv_magic)) != 0 ||
	    sv.sv_size != sizeof(sv)) {
		snprintf(err, errlen, "upgrade: the saved configuration is "
		    "unreadable");
		return -1;
	}
	*cf = sv.sv_config;
	memcpy(self_path, sv.sv_path, sizeof(self_path));
	self_path[sizeof(self_path) - 1] = '\0';
	return 0;
}

/* The way back for the new image: the running configuration in a memfd
 * and a descriptor on this executable, both to be inherited. */
static int
save_way_back(const struct hd_config *cf, int *conf, int *exe)
{
	static struct upgrade_saved	 sv;
	static char			 args[UPGRADE_ARGS_MAX];
	size_t				 len = 0, n;
	int				 i;

	memset(args, 0, sizeof(args));
	for (i = 0; self_argv[i] != NULL; i++) {
		n = strlen(self_argv[i]) + 1;
		if (n == 1 || i == UPGRADE_MAX_ARGS - 1 ||
		    len + n >= sizeof(args)) {
			log_error("upgrade: the command line does not fit");
			return -1;
		}
		memcpy(args + len, self_argv[i], n);
		len += n;
	}
	memset(&sv, 0, sizeof(sv));
	memcpy(sv.sv_magic, UPGRADE_MAGIC, sizeof(sv.sv_magic));
	sv.sv_size = sizeof(sv);
	memcpy(sv.sv_path, self_path, sizeof(sv.sv_path));
	sv.sv_config = *cf;
	if ((*conf = memfd_create("hellod-upgrade", 0)) == -1) {
		log_warn("upgrade: memfd_create() failed");
		return -1;
	}
	if (pwrite(*conf, args, sizeof(args), 0) != (ssize_t)sizeof(args) ||
	    pwrite(*conf, &sv, sizeof(sv), UPGRADE_ARGS_MAX) !=
	    (ssize_t)sizeof(sv)) {
		log_warn("upgrade: saving the configuration failed");
		close(*conf);
		return -1;
	}
	if ((*exe = open("/proc/self/exe", O_RDONLY)) == -1) {
		log_warn("upgrade: open(\"/proc/self/exe\") failed");
		close(*conf);
		return -1;
	}
	return 0;
}

/* Runs the new executable with --test-config; 0 when it says OK. */
static int
upgrade_check(void)
{
	char		 out[512], *argv[64];
	struct pollfd	 pfd;
	size_t		 len = 0;
	ssize_t		 n;
	pid_t		 pid;
	int		 p[2], status, argc, waited = 0;

	for (argc = 0; self_argv[argc] != NULL && argc < 62; argc++)
		argv[argc] = self_argv[argc];
	argv[argc++] = (char *)"--test-config";
	argv[argc] = NULL;
	if (pipe2(p, O_CLOEXEC) == -1) {
		log_warn("pipe2() failed");
		return -1;
	}
	if ((pid = fork()) == -1) {
		log_warn("fork() failed");
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid == 0) {
		if (dup2(p[1], STDOUT_FILENO) == -1 ||
		    dup2(p[1], STDERR_FILENO) == -1)
			_exit(127);
		execv(self_path, argv);
		dprintf(STDERR_FILENO, "execv(\"%s\"): %s\n", self_path,
		    strerror(errno));
		_exit(127);
	}
	close(p[1]);
	pfd.fd = p[0];
	pfd.events = POLLIN;
	/* Bounded: the master serves nobody meanwhile, its workers do. */
	while (waited < UPGRADE_CHECK_TIME) {
		if (poll(&pfd, 1, 100) == 1) {
			n = read(p[0], out + len, sizeof(out) - 1 - len);
			if (n <= 0)
				break;
			len += (size_t)n;
			if (len == sizeof(out) - 1)
				break;
		} else
			waited += 100;
	}
	close(p[0]);
	out[len] = '\0';
	out[strcspn(out, "\n")] = '\0';
	while (waitpid(pid, &status, WNOHANG) == 0 &&
	    waited < UPGRADE_CHECK_TIME) {
		usleep(10000);
		waited += 10;
	}
	if (waitpid(pid, &status, WNOHANG) == 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		log_error("upgrade: %s --test-config did not finish within "
		    "%ds", self_path, UPGRADE_CHECK_TIME / 1000);
		return -1;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		log_error("upgrade: %s --test-config failed: %s", self_path,
		    out[0] ? out : "no output");
		return -1;
	}
	return 0;
}

/*
 * Replaces this process's image with the executable at its path.  Returns
 * only when it could not (logged): the caller goes on as before.
 */
void
upgrade_exec(const struct upgrade_state *us)
{
	static char	 env[65536];
	static int	 fds[UPGRADE_MAX_FDS];
	const struct listeners *ls = us->us_listeners;
	const struct listener *li;
	struct upgrade_sock *uk;
	char		**envp = NULL;
	size_t		 n;
	unsigned	 a, s, i;
	int		 nfds, rc = -1;
	int		 conf, exe;

	if (self_path[0] == '\0') {
		log_error("upgrade: the executable's path is unknown");
		return;
	}
	log_info("upgrade: checking %s", self_path);
	if (upgrade_check() == -1 ||
	    save_way_back(us->us_cf, &conf, &exe) == -1) {
		log_error("upgrade failed, keeping the running executable");
		return;
	}

	desc.ud_generation = us->us_generation;
	desc.ud_pidfd = us->us_pidfd;
	desc.ud_statsfd = us->us_statsfd;
	desc.ud_ticketsfd = us->us_ticketsfd;
	desc.ud_nold = us->us_nold;
	memcpy(desc.ud_old, us->us_old, us->us_nold * sizeof(us->us_old[0]));
	desc.ud_nretired = us->us_nretired;
	memcpy(desc.ud_retired, us->us_retired,
	    us->us_nretired * sizeof(us->us_retired[0]));
	desc.ud_nsocks = 0;
	for (a = 0; a < ls->ls_n; a++) {
		li = &ls->ls_list[a];
		for (s = 0; s < ls->ls_nslots; s++) {
			if (li->li_fd[s] == -1)
				continue;
			if (desc.ud_nsocks == HD_MAX_SOCKETS)
				goto fail;
			uk = &desc.ud_socks[desc.ud_nsocks++];
			uk->uk_opts = li->li_opts;
			uk->uk_slot = s;
			uk->uk_passed = li->li_passed;
			uk->uk_fd = li->li_fd[s];
		}
	}
	desc.ud_conf = conf;
	desc.ud_exe = exe;
	n = strlen(UPGRADE_ENV "=");
	memcpy(env, UPGRADE_ENV "=", n);
	if (upgrade_format(&desc, env + n, sizeof(env) - n) == -1)
		goto fail;
	nfds = (int)upgrade_desc_fds(&desc, fds);

	for (n = 0; environ[n] != NULL; n++)
		;
	if ((envp = calloc(n + 2, sizeof(*envp))) == NULL) {
		log_warn("calloc() failed");
		goto fail;
	}
	for (i = 0, n = 0; environ[i] != NULL; i++)
		if (strncmp(environ[i], UPGRADE_ENV "=",
		    sizeof(UPGRADE_ENV)) != 0)
			envp[n++] = environ[i];
	envp[n++] = env;
	envp[n] = NULL;

	for (i = 0; i < (unsigned)nfds; i++)
		if (set_cloexec(fds[i], 0) == -1)
			goto restore;
	notify_send("RELOADING=1\nSTATUS=upgrading in place");
	log_info("upgrade: executing %s", self_path);
	execve(self_path, self_argv, envp);
	log_warn("upgrade: execve(\"%s\") failed", self_path);
restore:
	for (i = 0; i < (unsigned)nfds; i++)
		set_cloexec(fds[i], 1);
	rc = 0;
fail:
	if (rc == -1)
		log_error("upgrade: the inherited state does not fit");
	log_error("upgrade failed, keeping the running executable");
	close(conf);
	close(exe);
	free(envp);
}

/* One inherited socket into the listener set, by its address. */
static int
inherit_socket(struct listeners *ls, const struct upgrade_sock *uk)
{
	struct hd_addr	 addr;
	struct listener	*li;
	unsigned	 a;

	memset(&addr, 0, sizeof(addr));
	addr.a_len = sizeof(addr.a_ss);
	if (getsockname(uk->uk_fd, (struct sockaddr *)&addr.a_ss,
	    &addr.a_len) == -1) {
		log_warn("upgrade: getsockname() on inherited descriptor %d "
		    "failed", uk->uk_fd);
		return -1;
	}
	for (a = 0; a < ls->ls_n; a++) {
		li = &ls->ls_list[a];
		if (li->li_opts == uk->uk_opts &&
		    li->li_passed == uk->uk_passed &&
		    listen_same_addr(&li->li_addr, &addr))
			break;
	}
	if (a == ls->ls_n) {
		if (a == HD_MAX_LISTENERS) {
			log_warnx("upgrade: more than %d inherited listeners",
			    HD_MAX_LISTENERS);
			return -1;
		}
		li = &ls->ls_list[ls->ls_n++];
		li->li_addr = addr;
		listen_addr_text(&li->li_addr);
		li->li_opts = uk->uk_opts;
		li->li_passed = uk->uk_passed;
		li->li_shared = uk->uk_passed ||
		    (uk->uk_opts & HD_LO_STATUS) != 0;
		if (uk->uk_passed)
			ls->ls_activated = 1;
	}
	if (li->li_fd[uk->uk_slot] != -1) {
		log_warnx("upgrade: two inherited sockets for slot %u of %s",
		    uk->uk_slot, li->li_addr.a_text);
		return -1;
	}
	li->li_fd[uk->uk_slot] = uk->uk_fd;
	if (uk->uk_slot + 1 > ls->ls_nslots)
		ls->ls_nslots = uk->uk_slot + 1;
	return 0;
}

/*
 * In main(): whether this image was started by an upgrade, and what it
 * inherits.  Returns 1 with *us filled, 0 for a normal start, -1 when
 * the description is malformed (logged).
 */
int
upgrade_inherit(struct upgrade_state *us, struct listeners *ls)
{
	static int	 fds[UPGRADE_MAX_FDS];
	const char	*v = getenv(UPGRADE_ENV);
	char		 why[128];
	unsigned	 i, n;

	memset(us, 0, sizeof(*us));
	us->us_pidfd = -1;
	us->us_statsfd = -1;
	listeners_init(ls);
	if (v == NULL)
		return 0;
	if (strlen(v) >= sizeof(received)) {
		snprintf(why, sizeof(why), "too long");
		goto bad;
	}
	if (upgrade_parse(v, &desc, why, sizeof(why)) == -1)
		goto bad;
	unsetenv(UPGRADE_ENV);
	/* Ours from now on: children do not inherit them. */
	n = upgrade_desc_fds(&desc, fds);
	for (i = 0; i < n; i++)
		set_cloexec(fds[i], 1);
	us->us_listeners = ls;
	us->us_generation = desc.ud_generation;
	us->us_pidfd = desc.ud_pidfd;
	us->us_statsfd = desc.ud_statsfd;
	us->us_ticketsfd = desc.ud_ticketsfd;
	us->us_nold = desc.ud_nold;
	memcpy(us->us_old, desc.ud_old, desc.ud_nold * sizeof(desc.ud_old[0]));
	us->us_nretired = desc.ud_nretired;
	memcpy(us->us_retired, desc.ud_retired,
	    desc.ud_nretired * sizeof(desc.ud_retired[0]));
	for (i = 0; i < desc.ud_nsocks; i++)
		if (inherit_socket(ls, &desc.ud_socks[i]) == -1) {
			snprintf(why, sizeof(why), "inherited socket %d",
			    desc.ud_socks[i].uk_fd);
			goto bad;
		}
	back_conf = desc.ud_conf;
	back_exe = desc.ud_exe;
	us->us_active = 1;
	return 1;
bad:
	unsetenv(UPGRADE_ENV);
	log_error("upgrade: malformed %s: %s", UPGRADE_ENV, why);
	return -1;
}

/* Clears close-on-exec on every descriptor ud names, so that the previous
 * image inherits them again. */
static void
keep_descriptors(const struct upgrade_desc *ud)
{
	static int	 fds[UPGRADE_MAX_FDS];
	unsigned	 i, n = upgrade_desc_fds(ud, fds);

	for (i = 0; i < n; i++)
		set_cloexec(fds[i], 0);
}

/*
 * In an image executed by an upgrade that cannot start: executes the
 * previous image again, from the descriptor it kept on itself, with all
 * it handed over and why.  Returns only when that is not possible
 * (logged); the caller then exits.
 */
void
upgrade_abandon(const char *why)
{
	static char	 env[sizeof(UPGRADE_ENV) + sizeof(received)];
	static char	 failed[sizeof(UPGRADE_FAILED_ENV) + sizeof(resume_why)];
	static char	 args[UPGRADE_ARGS_MAX];
	char		 text[sizeof(resume_why)], **envp;
	char		*argv[UPGRADE_MAX_ARGS], perr[128];
	size_t		 n, i, off;

	if (received[0] == '\0')
		return;
	copy_printable(text, sizeof(text), why);
	/* The previous image's own command line, not this one's. */
	n = 0;
	if (upgrade_parse(received, &desc, perr, sizeof(perr)) == 0 &&
	    desc.ud_exe != -1 && desc.ud_conf != -1 &&
	    pread(desc.ud_conf, args, sizeof(args), 0) ==
	    (ssize_t)sizeof(args) &&
	    args[sizeof(args) - 1] == '\0')
		for (off = 0; args[off] != '\0' && n < UPGRADE_MAX_ARGS - 1;
		    off += strlen(args + off) + 1)
			argv[n++] = args + off;
	if (n == 0) {
		log_error("upgrade: this executable cannot start (%s), and the "
		    "previous one left no way back", text);
		return;
	}
	argv[n] = NULL;
	snprintf(env, sizeof(env), UPGRADE_ENV "=%s", received);
	snprintf(failed, sizeof(failed), UPGRADE_FAILED_ENV "=%s", text);
	for (n = 0; environ[n] != NULL; n++)
		;
	if ((envp = calloc(n + 3, sizeof(*envp))) == NULL) {
		log_warn("calloc() failed");
		return;
	}
	for (i = 0, n = 0; environ[i] != NULL; i++)
		if (strncmp(environ[i], UPGRADE_ENV "=",
		    sizeof(UPGRADE_ENV)) != 0 &&
		    strncmp(environ[i], UPGRADE_FAILED_ENV "=",
		    sizeof(UPGRADE_FAILED_ENV)) != 0)
			envp[n++] = environ[i];
	envp[n++] = env;
	envp[n++] = failed;
	envp[n] = NULL;
	keep_descriptors(&desc);
	log_error("upgrade: this executable cannot start (%s); executing the "
	    "previous one again", text);
	fexecve(desc.ud_exe, argv, envp);
	log_warn("upgrade: executing the previous executable failed");
	free(envp);
}

/* The new image runs: the way back is no longer needed. */
void
upgrade_started(void)
{
	if (back_conf != -1)
		close(back_conf);
	if (back_exe != -1)
		close(back_exe);
	back_conf = back_exe = -1;
	received[0] = '\0';
}
