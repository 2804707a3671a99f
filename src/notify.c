/*
 * systemd integration without libsystemd: the readiness protocol is one
 * datagram to $NOTIFY_SOCKET, and socket activation is $LISTEN_PID and
 * $LISTEN_FDS naming descriptors from 3 on (sd_notify(3),
 * sd_listen_fds(3)).
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hellod.h"

#define LISTEN_FDS_START	3

/* Returns 1 when sent, 0 when not running under a notifying manager. */
int
notify_send(const char *fmt, ...)
{
	struct sockaddr_un	 sun;
	const char		*path = getenv("NOTIFY_SOCKET");
	char			 msg[512];
	va_list			 ap;
	size_t			 plen;
	socklen_t		 slen;
	int			 fd, n, rc = 1;

	if (path == NULL || path[0] == '\0')
		return 0;
	plen = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || plen >= sizeof(sun.sun_path)) {
		log_warnx("NOTIFY_SOCKET '%s' is not usable", path);
		return -1;
	}
	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(msg))
		return -1;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, plen);
	if (path[0] == '@')
		sun.sun_path[0] = '\0';		/* abstract namespace */
	slen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen);

	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1) {
		log_warn("socket(AF_UNIX) failed");
		return -1;
	}
	if (sendto(fd, msg, (size_t)n, MSG_NOSIGNAL, (struct sockaddr *)&sun,
	    slen) == -1) {
		log_warn("sendto(NOTIFY_SOCKET) failed");
		rc = -1;
	}
	close(fd);
	return rc;
}

/*
 * Takes the listeners systemd passed, if they are meant for this process;
 * returns how many (0: none passed).  The variables are removed so that
 * workers do not see them.
 */
int
notify_listen_fds(int *fds, unsigned max)
{
	const char	*pid_s = getenv("LISTEN_PID");
	const char	*n_s = getenv("LISTEN_FDS");
	char		*end;
	long		 pid, n, i;
	int		 flags;

	if (pid_s == NULL || n_s == NULL)
		return 0;
	pid = strtol(pid_s, &end, 10);
	if (*end != '\0' || pid != (long)getpid())
		return 0;
	n = strtol(n_s, &end, 10);
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	if (*end != '\0' || n < 0 || n > (long)max) {
		log_error("LISTEN_FDS '%s' is invalid or above %u", n_s, max);
		return -1;
	}
	for (i = 0; i < n; i++) {
		fds[i] = LISTEN_FDS_START + (int)i;
		if ((flags = fcntl(fds[i], F_GETFL)) == -1 ||
		    fcntl(fds[i], F_SETFL, flags | O_NONBLOCK) == -1 ||
		    fcntl(fds[i], F_SETFD, FD_CLOEXEC) == -1) {
			log_errno("fcntl() on passed descriptor %d failed",
			    fds[i]);
			return -1;
		}
	}
	return (int)n;
}
