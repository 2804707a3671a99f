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
 *   HELLOD_UPGRADE=gen=G pidfd=F stats=FD old=PID,... retired=FD,...
 *       sock=OPTS:SLOT:PASSED:FD,... conf=FD exe=FD
 * and, when the previous image is executed again, why, in
 *   HELLOD_UPGRADE_FAILED=TEXT
 * Keys an image does not know are ignored.
 */
#include <sys/mman.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
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

/* The number after "key=" in an HELLOD_UPGRADE value; -1 when absent. */
static long
env_number(const char *env, const char *key)
{
	const char	*p = env;
	char		*end;
	size_t		 klen = strlen(key);
	long		 v;

	while (*p != '\0') {
		if (strncmp(p, key, klen) == 0 && p[klen] == '=') {
			errno = 0;
			v = strtol(p + klen + 1, &end, 10);
			if (errno != 0 || end == p + klen + 1 ||
			    (*end != ' ' && *end != '\0') || v < 0 ||
			    v > INT_MAX)
				return -1;
			return v;
		}
		p += strcspn(p, " ");
		p += strspn(p, " ");
	}
	return -1;
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
	long		 fd;

	if (v == NULL || (fd = env_number(v, "conf")) == -1) {
		snprintf(err, errlen, "upgrade: no saved configuration to "
		    "resume with");
		return -1;
	}
	if (pread((int)fd, &sv, sizeof(sv), UPGRADE_ARGS_MAX) !=
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

static int
append(char *buf, size_t cap, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
append(char *buf, size_t cap, size_t *len, const char *fmt, ...)
{
	va_list	 ap;
	int	 n;

	va_start(ap, fmt);
	n = vsnprintf(buf + *len, cap - *len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= cap - *len)
		return -1;
	*len += (size_t)n;
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
	const struct listener *li;
	char		**envp = NULL;
	size_t		 len = 0, n;
	unsigned	 a, s, i;
	int		 fds[HD_MAX_SOCKETS + 2], nfds = 0, rc = -1;
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

	if (append(env, sizeof(env), &len, UPGRADE_ENV "=gen=%u pidfd=%d "
	    "stats=%d old=", us->us_generation, us->us_pidfd,
	    us->us_statsfd) == -1)
		goto fail;
	for (i = 0; i < us->us_nold; i++)
		if (append(env, sizeof(env), &len, "%s%ld", i ? "," : "",
		    (long)us->us_old[i]) == -1)
			goto fail;
	if (append(env, sizeof(env), &len, " retired=") == -1)
		goto fail;
	for (i = 0; i < us->us_nretired; i++) {
		if (append(env, sizeof(env), &len, "%s%d", i ? "," : "",
		    us->us_retired[i]) == -1)
			goto fail;
		fds[nfds++] = us->us_retired[i];
	}
	if (append(env, sizeof(env), &len, " sock=") == -1)
		goto fail;
	for (a = 0; a < us->us_listeners->ls_n; a++) {
		li = &us->us_listeners->ls_list[a];
		for (s = 0; s < us->us_listeners->ls_nslots; s++) {
			if (li->li_fd[s] == -1)
				continue;
			if (append(env, sizeof(env), &len, "%s%u:%u:%d:%d",
			    nfds > (int)us->us_nretired ? "," : "",
			    li->li_opts, s, li->li_passed,
			    li->li_fd[s]) == -1)
				goto fail;
			fds[nfds++] = li->li_fd[s];
		}
	}
	if (append(env, sizeof(env), &len, " conf=%d exe=%d", conf, exe) ==
	    -1)
		goto fail;
	if (us->us_pidfd != -1)
		fds[nfds++] = us->us_pidfd;
	if (us->us_statsfd != -1)
		fds[nfds++] = us->us_statsfd;

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

static int
parse_list(char *v, long *out, unsigned max, unsigned *n)
{
	char	*tok, *save = NULL, *end;

	*n = 0;
	for (tok = strtok_r(v, ",", &save); tok != NULL;
	    tok = strtok_r(NULL, ",", &save)) {
		if (*n == max)
			return -1;
		errno = 0;
		out[*n] = strtol(tok, &end, 10);
		if (errno != 0 || *end != '\0' || out[*n] < 0)
			return -1;
		(*n)++;
	}
	return 0;
}

/* One "OPTS:SLOT:PASSED:FD" element into the inherited listener set.
 * OPTS is the listener's HD_LO_* bits, which were its kind's number
 * (0 plain, 1 PROXY, 2 status) before options. */
static int
inherit_socket(struct listeners *ls, const char *v)
{
	struct hd_addr	 addr;
	struct listener	*li;
	unsigned	 opts, slot, a;
	int		 passed, fd, n;

	if (sscanf(v, "%u:%u:%d:%d%n", &opts, &slot, &passed, &fd, &n) != 4 ||
	    v[n] != '\0' || !listen_opts_valid(opts) || slot >= HD_MAX_WORKERS ||
	    fd < 0)
		return -1;
	memset(&addr, 0, sizeof(addr));
	addr.a_len = sizeof(addr.a_ss);
	if (getsockname(fd, (struct sockaddr *)&addr.a_ss, &addr.a_len) ==
	    -1) {
		log_warn("upgrade: getsockname() on inherited descriptor %d "
		    "failed", fd);
		return -1;
	}
	set_cloexec(fd, 1);
	for (a = 0; a < ls->ls_n; a++) {
		li = &ls->ls_list[a];
		if (li->li_opts == opts && li->li_passed == passed &&
		    listen_same_addr(&li->li_addr, &addr))
			break;
	}
	if (a == ls->ls_n) {
		if (a == HD_MAX_LISTENERS)
			return -1;
		li = &ls->ls_list[ls->ls_n++];
		li->li_addr = addr;
		listen_addr_text(&li->li_addr);
		li->li_opts = opts;
		li->li_passed = passed;
		li->li_shared = passed || (opts & HD_LO_STATUS) != 0;
		if (passed)
			ls->ls_activated = 1;
	}
	li->li_fd[slot] = fd;
	if (slot + 1 > ls->ls_nslots)
		ls->ls_nslots = slot + 1;
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
	const char	*v = getenv(UPGRADE_ENV);
	char		 buf[65536], *tok, *save = NULL, *e, *tok2, *save2;
	long		 nums[HD_MAX_SOCKETS];
	unsigned	 n, i;

	memset(us, 0, sizeof(*us));
	us->us_pidfd = -1;
	us->us_statsfd = -1;
	listeners_init(ls);
	if (v == NULL)
		return 0;
	if (strlen(v) >= sizeof(buf))
		goto bad;
	strcpy(buf, v);
	unsetenv(UPGRADE_ENV);
	us->us_listeners = ls;
	for (tok = strtok_r(buf, " ", &save); tok != NULL;
	    tok = strtok_r(NULL, " ", &save)) {
		if ((e = strchr(tok, '=')) == NULL)
			goto bad;
		*e++ = '\0';
		if (strcmp(tok, "gen") == 0) {
			if (parse_list(e, nums, 1, &n) == -1 || n != 1)
				goto bad;
			us->us_generation = (unsigned)nums[0];
		} else if (strcmp(tok, "pidfd") == 0 ||
		    strcmp(tok, "stats") == 0) {
			if (strcmp(e, "-1") == 0)
				continue;
			if (parse_list(e, nums, 1, &n) == -1 || n != 1)
				goto bad;
			set_cloexec((int)nums[0], 1);
			if (tok[0] == 'p')
				us->us_pidfd = (int)nums[0];
			else
				us->us_statsfd = (int)nums[0];
		} else if (strcmp(tok, "old") == 0) {
			if (parse_list(e, nums, UPGRADE_MAX_OLD, &n) == -1)
				goto bad;
			for (i = 0; i < n; i++)
				us->us_old[i] = (pid_t)nums[i];
			us->us_nold = n;
		} else if (strcmp(tok, "retired") == 0) {
			if (parse_list(e, nums, HD_MAX_SOCKETS, &n) == -1)
				goto bad;
			for (i = 0; i < n; i++) {
				us->us_retired[i] = (int)nums[i];
				set_cloexec(us->us_retired[i], 1);
			}
			us->us_nretired = n;
		} else if (strcmp(tok, "sock") == 0) {
			save2 = NULL;
			for (tok2 = strtok_r(e, ",", &save2); tok2 != NULL;
			    tok2 = strtok_r(NULL, ",", &save2))
				if (inherit_socket(ls, tok2) == -1)
					goto bad;
		} else if (strcmp(tok, "conf") == 0 ||
		    strcmp(tok, "exe") == 0) {
			if (parse_list(e, nums, 1, &n) == -1 || n != 1)
				goto bad;
			set_cloexec((int)nums[0], 1);
			if (tok[0] == 'c')
				back_conf = (int)nums[0];
			else
				back_exe = (int)nums[0];
		}
		/* Keys of later versions are theirs. */
	}
	us->us_active = 1;
	return 1;
bad:
	log_error("upgrade: malformed %s", UPGRADE_ENV);
	return -1;
}

/* Clears close-on-exec on every descriptor an HELLOD_UPGRADE value names,
 * so that the previous image inherits them again. */
static void
keep_descriptors(const char *v)
{
	static char	 buf[sizeof(received)];
	char		*tok, *save = NULL, *e, *el, *save2, *c;
	long		 fd;

	snprintf(buf, sizeof(buf), "%s", v);
	for (tok = strtok_r(buf, " ", &save); tok != NULL;
	    tok = strtok_r(NULL, " ", &save)) {
		if ((e = strchr(tok, '=')) == NULL)
			continue;
		*e++ = '\0';
		if (strcmp(tok, "pidfd") != 0 && strcmp(tok, "stats") != 0 &&
		    strcmp(tok, "retired") != 0 && strcmp(tok, "sock") != 0 &&
		    strcmp(tok, "conf") != 0 && strcmp(tok, "exe") != 0)
			continue;
		save2 = NULL;
		for (el = strtok_r(e, ",", &save2); el != NULL;
		    el = strtok_r(NULL, ",", &save2)) {
			/* sock=OPTS:SLOT:PASSED:FD: the last field. */
			c = strrchr(el, ':');
			fd = strtol(c != NULL ? c + 1 : el, NULL, 10);
			if (fd >= 0 && fd <= INT_MAX)
				set_cloexec((int)fd, 0);
		}
	}
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
	char		*argv[UPGRADE_MAX_ARGS];
	size_t		 n, i, off;
	long		 exe, conf;

	if (received[0] == '\0')
		return;
	copy_printable(text, sizeof(text), why);
	/* The previous image's own command line, not this one's. */
	n = 0;
	if ((exe = env_number(received, "exe")) != -1 &&
	    (conf = env_number(received, "conf")) != -1 &&
	    pread((int)conf, args, sizeof(args), 0) == (ssize_t)sizeof(args) &&
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
	keep_descriptors(received);
	log_error("upgrade: this executable cannot start (%s); executing the "
	    "previous one again", text);
	fexecve((int)exe, argv, envp);
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
