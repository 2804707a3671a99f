/*
 * Listen addresses: parsing "ADDR:PORT" / "[V6]:PORT" and opening
 * SO_REUSEPORT listeners.  Listeners are non-blocking: the open file
 * description is shared by every generation of workers, and the blocking
 * worker waits in poll() rather than in accept().
 */
#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hellod.h"

int
listen_parse_addr(const char *s, struct hd_addr *a, char *err, size_t errlen)
{
	char			 host[64];
	const char		*colon, *port;
	char			*end;
	unsigned long		 p;
	size_t			 hlen;
	struct sockaddr_in	*sin = (struct sockaddr_in *)&a->a_ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)&a->a_ss;

	memset(a, 0, sizeof(*a));
	if (s[0] == '[') {
		colon = strstr(s, "]:");
		if (colon == NULL)
			goto bad;
		hlen = (size_t)(colon - s - 1);
		port = colon + 2;
		if (hlen == 0 || hlen >= sizeof(host))
			goto bad;
		memcpy(host, s + 1, hlen);
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL || colon == s)
			goto bad;
		hlen = (size_t)(colon - s);
		port = colon + 1;
		if (hlen >= sizeof(host))
			goto bad;
		memcpy(host, s, hlen);
	}
	host[hlen] = '\0';
	if (*port < '0' || *port > '9')
		goto bad;
	errno = 0;
	p = strtoul(port, &end, 10);
	if (errno != 0 || *end != '\0' || p == 0 || p > 65535)
		goto bad;

	if (s[0] != '[' && inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)p);
		a->a_len = sizeof(*sin);
		snprintf(a->a_text, sizeof(a->a_text), "%s:%lu", host, p);
	} else if (s[0] == '[' &&
	    inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)p);
		a->a_len = sizeof(*sin6);
		snprintf(a->a_text, sizeof(a->a_text), "[%s]:%lu", host, p);
	} else
		goto bad;
	return 0;
bad:
	snprintf(err, errlen, "invalid address '%s' (expected IPv4:PORT or "
	    "[IPv6]:PORT, port 1-65535)", s);
	return -1;
}

int
listen_same_addr(const struct hd_addr *a, const struct hd_addr *b)
{
	return a->a_len == b->a_len && memcmp(&a->a_ss, &b->a_ss, a->a_len) == 0;
}

/* Returns a bound, listening, non-blocking socket, or -1 (logged). */
int
listen_open(const struct hd_addr *a, int backlog)
{
	int	 fd, on = 1;

	fd = socket(a->a_ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);
	if (fd == -1) {
		log_warn("socket() for %s failed", a->a_text);
		return -1;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) == -1) {
		log_warn("setsockopt(SO_REUSEPORT) for %s failed", a->a_text);
		goto err;
	}
	/* Accepted sockets inherit it (Linux): one call per listener
	 * instead of one per connection. */
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on)) == -1) {
		log_warn("setsockopt(TCP_NODELAY) for %s failed", a->a_text);
		goto err;
	}
	if (a->a_ss.ss_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on)) == -1) {
		log_warn("setsockopt(IPV6_V6ONLY) for %s failed", a->a_text);
		goto err;
	}
	if (bind(fd, (const struct sockaddr *)&a->a_ss, a->a_len) == -1) {
		log_warn("bind() to %s failed", a->a_text);
		goto err;
	}
	if (listen(fd, backlog) == -1) {
		log_warn("listen() on %s failed", a->a_text);
		goto err;
	}
	return fd;
err:
	close(fd);
	return -1;
}

/* The client's address as the greeting prints it: inet_ntop(), with an
 * IPv4-mapped IPv6 address shown as the IPv4 address it maps. */
size_t
peer_text(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	const struct sockaddr_in	*sin = (const struct sockaddr_in *)ss;
	const struct sockaddr_in6	*sin6 = (const struct sockaddr_in6 *)ss;
	const char			*r = NULL;

	if (ss->ss_family == AF_INET)
		r = inet_ntop(AF_INET, &sin->sin_addr, buf, (socklen_t)len);
	else if (ss->ss_family == AF_INET6) {
		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr))
			r = inet_ntop(AF_INET, &sin6->sin6_addr.s6_addr[12],
			    buf, (socklen_t)len);
		else
			r = inet_ntop(AF_INET6, &sin6->sin6_addr, buf,
			    (socklen_t)len);
	}
	if (r == NULL)
		snprintf(buf, len, "unknown");
	return strlen(buf);
}

void
listeners_init(struct listeners *ls)
{
	unsigned	 a, s;

	memset(ls, 0, sizeof(*ls));
	for (a = 0; a < HD_MAX_LISTEN; a++)
		for (s = 0; s < HD_MAX_WORKERS; s++)
			ls->l_fd[a][s] = -1;
}

/* Sockets passed by systemd: one per address, shared by every slot. */
int
listeners_activate(struct listeners *ls, const int *fds, unsigned n)
{
	unsigned	 a;
	int		 on = 1;

	listeners_init(ls);
	for (a = 0; a < n && a < HD_MAX_LISTEN; a++) {
		ls->l_addr[a].a_len = sizeof(ls->l_addr[a].a_ss);
		if (getsockname(fds[a], (struct sockaddr *)&ls->l_addr[a].a_ss,
		    &ls->l_addr[a].a_len) == -1) {
			log_warn("getsockname() on passed descriptor %d failed",
			    fds[a]);
			return -1;
		}
		snprintf(ls->l_addr[a].a_text, sizeof(ls->l_addr[a].a_text),
		    "fd %d", fds[a]);
		ls->l_fd[a][0] = fds[a];
		if (ls->l_addr[a].a_ss.ss_family != AF_UNIX &&
		    setsockopt(fds[a], IPPROTO_TCP, TCP_NODELAY, &on,
		    sizeof(on)) == -1)
			log_warn("setsockopt(TCP_NODELAY) on passed descriptor "
			    "%d failed", fds[a]);
	}
	ls->l_naddr = a;
	ls->l_activated = 1;
	return 0;
}

int
listeners_has_fd(const struct listeners *ls, int fd)
{
	unsigned	 a, s;

	for (a = 0; a < ls->l_naddr; a++)
		for (s = 0; s < ls->l_nslots; s++)
			if (ls->l_fd[a][s] == fd)
				return 1;
	return 0;
}

/*
 * The descriptors that worker `slot` of `nworkers` serves: its own slot's,
 * and those of slots beyond the worker count (kept after the count shrank,
 * see listeners_update), spread round-robin.
 */
unsigned
listeners_slot_fds(const struct listeners *ls, unsigned slot,
    unsigned nworkers, int *fds)
{
	unsigned	 a, s, n = 0;

	for (a = 0; a < ls->l_naddr; a++) {
		if (ls->l_activated) {
			fds[n++] = ls->l_fd[a][0];
			continue;
		}
		for (s = slot; s < ls->l_nslots; s += nworkers)
			if (ls->l_fd[a][s] != -1)
				fds[n++] = ls->l_fd[a][s];
	}
	return n;
}

/*
 * Closing a SO_REUSEPORT listener resets the connections queued on it,
 * unless the kernel migrates them to the other sockets of the group.
 */
static int
migrate_req_enabled(void)
{
	FILE	*fp = fopen("/proc/sys/net/ipv4/tcp_migrate_req", "re");
	int	 c = EOF;

	if (fp != NULL) {
		c = fgetc(fp);
		fclose(fp);
	}
	return c == '1';
}

/*
 * Builds the listener set for cf with nslots workers into next, keeping
 * every socket of cur whose address remains (so its queue of pending
 * connections survives) and opening the rest.  When the worker count
 * shrinks, the sockets of the slots beyond it stay open and are served by
 * the remaining workers, unless net.ipv4.tcp_migrate_req lets them close
 * without loss.  The sockets of cur that next does not keep are returned
 * in retired: the caller closes them once the workers using them are
 * gone.  On failure nothing changes.
 */
int
listeners_update(const struct listeners *cur, struct listeners *next,
    const struct hd_config *cf, unsigned nslots, int *retired,
    unsigned *nretired)
{
	unsigned	 a, b, s, keep;
	int		 fd, migrate = migrate_req_enabled();

	*nretired = 0;
	if (cur->l_activated) {
		*next = *cur;
		next->l_nslots = nslots;
		return 0;
	}
	listeners_init(next);
	for (a = 0; a < cf->cf_nlisten; a++) {
		next->l_addr[a] = cf->cf_listen[a];
		next->l_naddr = a + 1;
		for (b = 0; b < cur->l_naddr; b++)
			if (listen_same_addr(&cur->l_addr[b], &cf->cf_listen[a]))
				break;
		keep = nslots;
		if (b < cur->l_naddr && cur->l_nslots > nslots && !migrate)
			keep = cur->l_nslots;
		if (keep > next->l_nslots)
			next->l_nslots = keep;
		for (s = 0; s < keep; s++) {
			if (b < cur->l_naddr && s < cur->l_nslots &&
			    cur->l_fd[b][s] != -1) {
				fd = cur->l_fd[b][s];
				/* The backlog may have changed. */
				if (listen(fd, cf->cf_backlog) == -1)
					log_warn("listen() on %s failed",
					    cf->cf_listen[a].a_text);
			} else if ((fd = listen_open(&cf->cf_listen[a],
			    cf->cf_backlog)) == -1)
				goto fail;
			next->l_fd[a][s] = fd;
		}
	}
	for (b = 0; b < cur->l_naddr; b++)
		for (s = 0; s < cur->l_nslots; s++)
			if ((fd = cur->l_fd[b][s]) != -1 &&
			    !listeners_has_fd(next, fd))
				retired[(*nretired)++] = fd;
	return 0;
fail:
	for (a = 0; a < next->l_naddr; a++)
		for (s = 0; s < HD_MAX_WORKERS; s++)
			if ((fd = next->l_fd[a][s]) != -1 &&
			    !listeners_has_fd(cur, fd))
				close(fd);
	return -1;
}
