/*
 * Process plumbing: detaching from the terminal, the pid file and its
 * lock, and dropping root and every capability in children.
 */
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include <linux/capability.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hellod.h"

/* fork, setsid, fork: the daemon is no session leader and can never
 * acquire a controlling terminal again. */
int
daemonize(void)
{
	pid_t	 pid;
	int	 fd;

	if ((pid = fork()) == -1) {
		log_errno("fork() failed");
		return -1;
	}
	if (pid != 0)
		_exit(0);
	if (setsid() == -1) {
		log_errno("setsid() failed");
		return -1;
	}
	if ((pid = fork()) == -1) {
		log_errno("fork() failed");
		return -1;
	}
	if (pid != 0)
		_exit(0);
	umask(022);
	if (chdir("/") == -1) {
		log_errno("chdir(\"/\") failed");
		return -1;
	}
	if ((fd = open("/dev/null", O_RDWR)) == -1) {
		log_errno("open(\"/dev/null\") failed");
		return -1;
	}
	if (dup2(fd, STDIN_FILENO) == -1 || dup2(fd, STDOUT_FILENO) == -1 ||
	    dup2(fd, STDERR_FILENO) == -1) {
		log_errno("dup2() failed");
		close(fd);
		return -1;
	}
	if (fd > STDERR_FILENO)
		close(fd);
	return 0;
}

/* Creates the pid file's directory (one level, as /run/hellod), the way
 * a RuntimeDirectory would. */
static int
pidfile_mkdir(const char *path)
{
	char	 dir[PATH_MAX], *slash;

	snprintf(dir, sizeof(dir), "%s", path);
	if ((slash = strrchr(dir, '/')) == NULL || slash == dir)
		return -1;
	*slash = '\0';
	if (mkdir(dir, 0755) == -1 && errno != EEXIST)
		return -1;	/* reported by pidfile_open(), with errno */
	return 0;
}

/*
 * Opens and locks the pid file.  The lock lives as long as the master's
 * descriptor: a second hellod with the same pid file fails here, before it
 * binds anything (SO_REUSEPORT would otherwise let it share the port).
 */
int
pidfile_open(const char *path)
{
	char	 buf[32];
	ssize_t	 n;
	int	 fd;

	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd == -1 && errno == ENOENT && pidfile_mkdir(path) == 0)
		fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd == -1) {
		log_error("cannot create the pid file %s: %s; create its "
		    "directory, let hellod write there, or change [server] "
		    "pid_file", path, strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) == -1) {
		if (errno == EWOULDBLOCK) {
			n = read(fd, buf, sizeof(buf) - 1);
			buf[n > 0 ? n : 0] = '\0';
			buf[strcspn(buf, "\n")] = '\0';
			log_error("another hellod is running (pid %s, pid file "
			    "%s is locked); stop it first, or give this one "
			    "another [server] pid_file",
			    buf[0] ? buf : "unknown", path);
		} else
			log_errno("flock(\"%s\") failed", path);
		close(fd);
		return -1;
	}
	return fd;
}

int
pidfile_write(int fd)
{
	char	 buf[32];
	int	 n;

	n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) == -1 || pwrite(fd, buf, (size_t)n, 0) != n) {
		log_errno("writing the pid file failed");
		return -1;
	}
	return 0;
}

void
pidfile_remove(const char *path, int fd)
{
	if (unlink(path) == -1 && errno != ENOENT)
		log_warn("unlink(\"%s\") failed", path);
	close(fd);
}

struct ids {
	uid_t	 uid;
	gid_t	 gid;
	int	 drop;
};

/*
 * Resolves [server] user and group.  Started as root with neither set,
 * workers run as HD_DEFAULT_USER and HD_DEFAULT_GROUP (or that user's
 * group where there is no such group), as nginx does; `user = root` keeps
 * root on purpose.  Not started as root, nothing is dropped.
 */
static int
lookup_ids(const struct hd_config *cf, struct ids *ids, char *err,
    size_t errlen)
{
	struct passwd	*pw;
	struct group	*gr;

	memset(ids, 0, sizeof(*ids));
	if (cf->cf_user[0] == '\0' && cf->cf_group[0] == '\0') {
		if (geteuid() != 0)
			return 0;
		if ((pw = getpwnam(HD_DEFAULT_USER)) == NULL) {
			snprintf(err, errlen, "started as root without "
			    "[server] user, and there is no user '%s' to run "
			    "the workers as; set [server] user",
			    HD_DEFAULT_USER);
			return -1;
		}
		ids->uid = pw->pw_uid;
		ids->gid = pw->pw_gid;
		if ((gr = getgrnam(HD_DEFAULT_GROUP)) != NULL)
			ids->gid = gr->gr_gid;
		ids->drop = 1;
		return 0;
	}
	if (cf->cf_user[0] == '\0') {
		snprintf(err, errlen, "%.200s:%d: [server] group: set "
		    "without [server] user", cf->cf_file, cf->cf_group_line);
		return -1;
	}
	if ((pw = getpwnam(cf->cf_user)) == NULL) {
		snprintf(err, errlen, "%.200s:%d: [server] user: unknown "
		    "user '%s'", cf->cf_file, cf->cf_user_line, cf->cf_user);
		return -1;
	}
	ids->uid = pw->pw_uid;
	ids->gid = pw->pw_gid;
	if (cf->cf_group[0] != '\0') {
		if ((gr = getgrnam(cf->cf_group)) == NULL) {
			snprintf(err, errlen, "%.200s:%d: [server] group: "
			    "unknown group '%s'", cf->cf_file, cf->cf_group_line,
			    cf->cf_group);
			return -1;
		}
		ids->gid = gr->gr_gid;
	}
	ids->drop = 1;
	return 0;
}

/* Validates user and group before anything starts. */
int
privileges_check(const struct hd_config *cf, char *err, size_t errlen)
{
	struct ids	 ids;

	return lookup_ids(cf, &ids, err, errlen);
}

/* Whether workers run as the default user (root, no user configured). */
int
privileges_defaulted(const struct hd_config *cf)
{
	return geteuid() == 0 && cf->cf_user[0] == '\0' &&
	    cf->cf_group[0] == '\0';
}

/*
 * Log files are opened by the master as root, then again by every worker
 * on SIGUSR1, after the drop: the master creates them and gives them to
 * the workers' user, so that the workers' reopen succeeds after a
 * rotation (as nginx does).
 */
void
privileges_chown_logs(const struct hd_config *cf)
{
	const char	*paths[2];
	struct ids	 ids;
	char		 err[HD_ERRLEN];
	unsigned	 i;
	int		 fd;

	if (geteuid() != 0 || lookup_ids(cf, &ids, err, sizeof(err)) == -1 ||
	    !ids.drop || ids.uid == 0)
		return;
	paths[0] = cf->cf_error_log[0] == '/' ? cf->cf_error_log : NULL;
	paths[1] = cf->cf_access_log[0] != '\0' ? cf->cf_access_log : NULL;
	for (i = 0; i < 2; i++) {
		if (paths[i] == NULL)
			continue;
		fd = open(paths[i], O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC |
		    O_NOFOLLOW, 0644);
		if (fd == -1) {
			log_warn("open(\"%s\") failed", paths[i]);
			continue;
		}
		if (fchown(fd, ids.uid, ids.gid) == -1)
			log_warn("fchown(\"%s\") failed", paths[i]);
		close(fd);
	}
}

/*
 * The bounding set, while this process still has CAP_SETPCAP (started as
 * root): no capability can come back through an execve() either.
 * Without CAP_SETPCAP the set cannot shrink, and capabilities_clear()
 * still leaves nothing to gain from it: no_new_privs is set.
 */
static int
bounding_drop(void)
{
	struct __user_cap_header_struct	 hdr;
	struct __user_cap_data_struct	 data[_LINUX_CAPABILITY_U32S_3];
	int				 cap;

	memset(&hdr, 0, sizeof(hdr));
	memset(data, 0, sizeof(data));
	hdr.version = _LINUX_CAPABILITY_VERSION_3;
	if (syscall(SYS_capget, &hdr, data) == -1) {
		log_warn("capget() failed");
		return -1;
	}
	if (!(data[CAP_TO_INDEX(CAP_SETPCAP)].effective &
	    CAP_TO_MASK(CAP_SETPCAP)))
		return 0;
	/* Up to the kernel's last capability, whichever this is built on. */
	for (cap = 0; prctl(PR_CAPBSET_READ, cap, 0, 0, 0) >= 0; cap++)
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == -1) {
			log_warn("prctl(PR_CAPBSET_DROP, %d) failed", cap);
			return -1;
		}
	return 0;
}

/*
 * Every capability set emptied: ambient (a non-root start with
 * AmbientCapabilities= or setpriv --ambient-caps keeps them across the
 * master's fork), effective, permitted and inheritable; then
 * no_new_privs, so that nothing this process could execute gains any.
 * Checked afterwards: a worker never serves holding a capability.
 */
static int
capabilities_clear(void)
{
	struct __user_cap_header_struct	 hdr;
	struct __user_cap_data_struct	 data[_LINUX_CAPABILITY_U32S_3];
	unsigned			 i;

	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) == -1 &&
	    errno != EINVAL) {		/* EINVAL: no ambient set (< 4.3) */
		log_warn("prctl(PR_CAP_AMBIENT_CLEAR_ALL) failed");
		return -1;
	}
	memset(&hdr, 0, sizeof(hdr));
	memset(data, 0, sizeof(data));
	hdr.version = _LINUX_CAPABILITY_VERSION_3;
	if (syscall(SYS_capset, &hdr, data) == -1) {
		log_warn("capset() failed");
		return -1;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1) {
		log_warn("prctl(PR_SET_NO_NEW_PRIVS) failed");
		return -1;
	}
	memset(&hdr, 0, sizeof(hdr));
	hdr.version = _LINUX_CAPABILITY_VERSION_3;
	if (syscall(SYS_capget, &hdr, data) == -1) {
		log_warn("capget() failed");
		return -1;
	}
	for (i = 0; i < _LINUX_CAPABILITY_U32S_3; i++)
		if (data[i].effective || data[i].permitted ||
		    data[i].inheritable) {
			log_error("capabilities are left after dropping them");
			return -1;
		}
	return 0;
}

/*
 * In a worker or the status server, after it has what it needs from
 * root: the configured user and group (started as root), then no
 * capability at all and no_new_privs, however it was started (root, or
 * not root with capabilities such as CAP_NET_BIND_SERVICE, or neither).
 */
int
privileges_drop(const struct hd_config *cf)
{
	struct ids	 ids;
	char		 err[HD_ERRLEN];

	if (bounding_drop() == -1)
		return -1;
	if (geteuid() != 0)
		return capabilities_clear();	/* user/group need root */
	if (lookup_ids(cf, &ids, err, sizeof(err)) == -1) {
		log_error("%s", err);
		return -1;
	}
	if (!ids.drop)
		return capabilities_clear();
	if (setgroups(1, &ids.gid) == -1) {
		log_errno("setgroups() failed");
		return -1;
	}
	if (setresgid(ids.gid, ids.gid, ids.gid) == -1) {
		log_errno("setresgid(%u) failed", (unsigned)ids.gid);
		return -1;
	}
	if (setresuid(ids.uid, ids.uid, ids.uid) == -1) {
		log_errno("setresuid(%u) failed", (unsigned)ids.uid);
		return -1;
	}
	if (ids.uid != 0 && (setuid(0) != -1 || seteuid(0) != -1)) {
		log_error("root privileges could be regained after the drop");
		return -1;
	}
	return capabilities_clear();
}
