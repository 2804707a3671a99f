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
#include "stats.h"

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

/* Writes a_text for an address known only as a sockaddr. */
void
listen_addr_text(struct hd_addr *a)
{
	const struct sockaddr_in	*sin = (struct sockaddr_in *)&a->a_ss;
	const struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)&a->a_ss;
	char				 host[INET6_ADDRSTRLEN];

	if (a->a_ss.ss_family == AF_INET &&
	    inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host)) != NULL)
		snprintf(a->a_text, sizeof(a->a_text), "%s:%u", host,
		    ntohs(sin->sin_port));
	else if (a->a_ss.ss_family == AF_INET6 &&
	    inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host)) != NULL)
		snprintf(a->a_text, sizeof(a->a_text), "[%s]:%u", host,
		    ntohs(sin6->sin6_port));
	else
		snprintf(a->a_text, sizeof(a->a_text), "family %d",
		    a->a_ss.ss_family);
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
		log_errno("socket() for %s failed", a->a_text);
		return -1;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) == -1) {
		log_errno("setsockopt(SO_REUSEPORT) for %s failed", a->a_text);
		goto err;
	}
	/* Accepted sockets inherit it (Linux): one call per listener
	 * instead of one per connection. */
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on)) == -1) {
		log_errno("setsockopt(TCP_NODELAY) for %s failed", a->a_text);
		goto err;
	}
	if (a->a_ss.ss_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on)) == -1) {
		log_errno("setsockopt(IPV6_V6ONLY) for %s failed", a->a_text);
		goto err;
	}
	if (bind(fd, (const struct sockaddr *)&a->a_ss, a->a_len) == -1) {
		log_errno("bind() to %s failed", a->a_text);
		goto err;
	}
	if (listen(fd, backlog) == -1) {
		log_errno("listen() on %s failed", a->a_text);
		goto err;
	}
	return fd;
err:
	close(fd);
	return -1;
}

/*
 * The accept-error policy of both workers.  ECONNABORTED and EPROTO are a
 * client that gave up while queued; running out of descriptors or memory
 * must not spin a level-triggered accept loop, so the worker waits.  A
 * pause is logged once per spell of failures.
 */
enum hd_accept_verdict
listen_accept_error(int err, int *failing)
{
	switch (err) {
	case EAGAIN:
		return HD_ACCEPT_DONE;
	case EINTR:
	case ECONNABORTED:
	case EPROTO:
		return HD_ACCEPT_RETRY;
	case EMFILE:
	case ENFILE:
	case ENOBUFS:
	case ENOMEM:
		if (!*failing) {
			errno = err;
			log_warn("accept4() failed, pausing accept");
		}
		*failing = 1;
		return HD_ACCEPT_PAUSE;
	default:
		errno = err;
		log_warn("accept4() failed");
		return HD_ACCEPT_DONE;
	}
}

void
listen_accept_ok(int *failing)
{
	if (*failing) {
		log_info("accept4() succeeds again");
		*failing = 0;
	}
}

/* The option sets a listener may have: plain, PROXY, status, TLS and
 * PROXY + TLS. */
int
listen_opts_valid(unsigned opts)
{
	return opts == HD_LO_PLAIN || opts == HD_LO_PROXY ||
	    opts == HD_LO_STATUS || opts == (HD_LO_STATUS | HD_LO_AGENT) ||
	    opts == HD_LO_TLS ||
	    opts == (HD_LO_PROXY | HD_LO_TLS);
}

/* A listener's kind in the status output: "plain", "proxy", "status". */
const char *
listen_opts_name(unsigned opts)
{
	switch (opts) {
	case HD_LO_PLAIN:
		return "plain";
	case HD_LO_PROXY:
		return "proxy";
	case HD_LO_STATUS:
		return "status";
	case HD_LO_STATUS | HD_LO_AGENT:
		return "agent";
	case HD_LO_TLS:
		return "tls";
	case HD_LO_PROXY | HD_LO_TLS:
		return "proxy-tls";
	default:
		return "?";
	}
}

/* A listener's kind after its address in messages: "", " (status)". */
const char *
listen_opts_note(unsigned opts)
{
	switch (opts) {
	case HD_LO_PLAIN:
		return "";
	case HD_LO_PROXY:
		return " (PROXY protocol)";
	case HD_LO_STATUS:
		return " (status)";
	case HD_LO_STATUS | HD_LO_AGENT:
		return " (HAProxy agent)";
	case HD_LO_TLS:
		return " (TLS)";
	case HD_LO_PROXY | HD_LO_TLS:
		return " (PROXY protocol, then TLS)";
	default:
		return " (?)";
	}
}

void
listeners_init(struct listeners *ls)
{
	unsigned	 a, s;

	memset(ls, 0, sizeof(*ls));
	ls->ls_nslots = 1;
	for (a = 0; a < HD_MAX_LISTENERS; a++) {
		ls->ls_list[a].li_tls = -1;
		for (s = 0; s < HD_MAX_WORKERS; s++)
			ls->ls_list[a].li_fd[s] = -1;
	}
}

/* Sockets passed by systemd: plain listeners shared by every slot.  The
 * configuration's listen addresses are then ignored; its PROXY and status
 * addresses are still opened by listeners_update(). */
int
listeners_activate(struct listeners *ls, const int *fds, unsigned n)
{
	struct listener	*li;
	unsigned	 a;
	int		 on = 1;

	listeners_init(ls);
	for (a = 0; a < n && a < HD_MAX_LISTEN; a++) {
		li = &ls->ls_list[a];
		li->li_addr.a_len = sizeof(li->li_addr.a_ss);
		if (getsockname(fds[a], (struct sockaddr *)&li->li_addr.a_ss,
		    &li->li_addr.a_len) == -1) {
			log_errno("getsockname() on passed descriptor %d "
			    "failed", fds[a]);
			return -1;
		}
		snprintf(li->li_addr.a_text, sizeof(li->li_addr.a_text),
		    "fd %d", fds[a]);
		li->li_opts = HD_LO_PLAIN;
		li->li_shared = li->li_passed = 1;
		li->li_fd[0] = fds[a];
		if (li->li_addr.a_ss.ss_family != AF_UNIX &&
		    setsockopt(fds[a], IPPROTO_TCP, TCP_NODELAY, &on,
		    sizeof(on)) == -1)
			log_warn("setsockopt(TCP_NODELAY) on passed descriptor "
			    "%d failed", fds[a]);
	}
	ls->ls_n = a;
	ls->ls_activated = 1;
	return 0;
}

int
listeners_has_fd(const struct listeners *ls, int fd)
{
	unsigned	 a, s;

	for (a = 0; a < ls->ls_n; a++)
		for (s = 0; s < ls->ls_nslots; s++)
			if (ls->ls_list[a].li_fd[s] == fd)
				return 1;
	return 0;
}

/*
 * The sockets that worker `slot` of `nworkers` serves: its own slot's,
 * and those of slots beyond the worker count (kept after the count shrank,
 * see listeners_update), spread round-robin.  A passed socket is shared
 * by all; status sockets are nobody's.
 */
unsigned
listeners_slot_sockets(const struct listeners *ls, unsigned slot,
    unsigned nworkers, struct hd_socket *out)
{
	const struct listener	*li;
	unsigned		 a, s, n = 0;

	for (a = 0; a < ls->ls_n; a++) {
		li = &ls->ls_list[a];
		if (li->li_opts & HD_LO_STATUS)
			continue;
		if (li->li_shared) {
			out[n].so_fd = li->li_fd[0];
			out[n++].so_listener = li;
			continue;
		}
		for (s = slot; s < ls->ls_nslots; s += nworkers)
			if (li->li_fd[s] != -1) {
				out[n].so_fd = li->li_fd[s];
				out[n++].so_listener = li;
			}
	}
	return n;
}

/* The status listeners' sockets. */
unsigned
listeners_status_sockets(const struct listeners *ls, struct hd_socket *out)
{
	unsigned	 a, n = 0;

	for (a = 0; a < ls->ls_n; a++)
		if (ls->ls_list[a].li_opts & HD_LO_STATUS) {
			out[n].so_fd = ls->ls_list[a].li_fd[0];
			out[n++].so_listener = &ls->ls_list[a];
		}
	return n;
}

static int
socket_in(int fd, const struct hd_socket *socks, unsigned n)
{
	unsigned	 i;

	for (i = 0; i < n; i++)
		if (socks[i].so_fd == fd)
			return 1;
	return 0;
}

/* In a child: closes every listening socket it does not serve, so that
 * a socket the master closes is not held open by a child. */
void
listeners_close_others(const struct listeners *ls,
    const struct hd_socket *keep, unsigned nkeep)
{
	unsigned	 a, s;
	int		 fd;

	for (a = 0; a < ls->ls_n; a++)
		for (s = 0; s < ls->ls_nslots; s++)
			if ((fd = ls->ls_list[a].li_fd[s]) != -1 &&
			    !socket_in(fd, keep, nkeep))
				close(fd);
}

/* In the master at exit. */
void
listeners_close(const struct listeners *ls)
{
	listeners_close_others(ls, NULL, 0);
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
 * With [server] defer_accept, async workers ask the kernel to hand over a
 * connection only once its first bytes have arrived (or after
 * DEFER_ACCEPT_TIME), as nginx's "deferred" and h2o do: the handshake's
 * last step is then done where the client's request is sent, and the
 * worker is woken once per connection, with its request.  The blocking
 * worker must meet a silent client as the blocking model does, so the
 * option is cleared in sync mode.
 */
#define DEFER_ACCEPT_TIME	1	/* s */

static void
listen_defer(int fd, const struct hd_addr *a, int on)
{
	int	 v = on ? DEFER_ACCEPT_TIME : 0;

	if (a->a_ss.ss_family != AF_INET && a->a_ss.ss_family != AF_INET6)
		return;
	if (setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &v, sizeof(v)) == -1)
		log_warn("setsockopt(TCP_DEFER_ACCEPT) on %s failed",
		    a->a_text);
}

/* The listener of cur with the same address and options, or NULL: a
 * socket changes neither. */
static const struct listener *
listener_find(const struct listeners *cur, const struct hd_listen *ln)
{
	unsigned	 b;

	for (b = 0; b < cur->ls_n; b++)
		if (!cur->ls_list[b].li_passed &&
		    cur->ls_list[b].li_opts == ln->ln_opts &&
		    listen_same_addr(&cur->ls_list[b].li_addr, &ln->ln_addr))
			return &cur->ls_list[b];
	return NULL;
}

/*
 * Builds the listener set for cf with nslots workers into next, keeping
 * every socket of cur whose address and kind remain, so its queue of
 * pending connections survives, and opening the rest.  Sockets passed by
 * the service manager are kept as they are.  When the worker count
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
	const struct listener	*old;
	const struct hd_listen	*ln;
	const struct hd_addr	*addr;
	struct listener		*li;
	unsigned		 a, i, s, keep, ntls = 0;
	int			 fd, migrate = migrate_req_enabled();

	*nretired = 0;
	listeners_init(next);
	next->ls_nslots = nslots;
	for (a = 0; a < cur->ls_n; a++)
		if (cur->ls_list[a].li_passed) {
			li = &next->ls_list[next->ls_n++];
			*li = cur->ls_list[a];
			next->ls_activated = 1;
			listen_defer(li->li_fd[0], &li->li_addr,
			    cf->cf_mode != HD_MODE_SYNC && cf->cf_defer_accept);
		}
	for (i = 0; i < cf->cf_nlisten; i++) {
		ln = &cf->cf_listen[i];
		/* Passed sockets stand for the plain addresses. */
		if (next->ls_activated && ln->ln_opts == HD_LO_PLAIN)
			continue;
		if (next->ls_n == HD_MAX_LISTENERS)
			goto fail;
		addr = &ln->ln_addr;
		li = &next->ls_list[next->ls_n++];
		li->li_addr = *addr;
		li->li_opts = ln->ln_opts;
		li->li_tls = ln->ln_opts & HD_LO_TLS ? (int)ntls++ : -1;
		li->li_shared = (ln->ln_opts & HD_LO_STATUS) != 0;
		old = listener_find(cur, ln);
		keep = li->li_shared ? 1 : nslots;
		if (!li->li_shared && old != NULL && cur->ls_nslots > nslots &&
		    !migrate)
			keep = cur->ls_nslots;
		if (keep > next->ls_nslots)
			next->ls_nslots = keep;
		for (s = 0; s < keep; s++) {
			if (old != NULL && s < cur->ls_nslots &&
			    old->li_fd[s] != -1) {
				fd = old->li_fd[s];
				/* The backlog may have changed. */
				if (listen(fd, cf->cf_backlog) == -1)
					log_warn("listen() on %s failed",
					    addr->a_text);
			} else if ((fd = listen_open(addr, cf->cf_backlog)) ==
			    -1)
				goto fail;
			li->li_fd[s] = fd;
			if (!(ln->ln_opts & HD_LO_STATUS))
				listen_defer(fd, addr, cf->cf_mode !=
				    HD_MODE_SYNC && cf->cf_defer_accept);
		}
	}
	for (a = 0; a < cur->ls_n; a++)
		for (s = 0; s < cur->ls_nslots; s++)
			if ((fd = cur->ls_list[a].li_fd[s]) != -1 &&
			    !listeners_has_fd(next, fd))
				retired[(*nretired)++] = fd;
	return 0;
fail:
	for (a = 0; a < next->ls_n; a++)
		for (s = 0; s < HD_MAX_WORKERS; s++)
			if ((fd = next->ls_list[a].li_fd[s]) != -1 &&
			    !listeners_has_fd(cur, fd))
				close(fd);
	return -1;
}

/*
 * A listening TCP socket's accept queue.  Linux reports, for a socket in
 * LISTEN state only, the connections waiting in the accept queue in
 * tcpi_unacked and the backlog it was given (capped by somaxconn) in
 * tcpi_sacked.  Returns -1 for a socket not listening, or on failure
 * (logged).
 */
int
stats_listen_queue(int fd, unsigned *len, unsigned *limit)
{
	struct tcp_info	 ti;
	socklen_t	 tlen = sizeof(ti);

	memset(&ti, 0, sizeof(ti));
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &tlen) == -1) {
		log_warn("getsockopt(TCP_INFO) failed");
		return -1;
	}
	if (ti.tcpi_state != TCP_LISTEN)
		return -1;
	*len = ti.tcpi_unacked;
	*limit = ti.tcpi_sacked;
	return 0;
}

void
stats_listeners_poll(struct stats_listener_info *li, unsigned n)
{
	unsigned	 i;

	for (i = 0; i < n; i++)
		li[i].sli_known = stats_listen_queue(li[i].sli_fd,
		    &li[i].sli_qlen, &li[i].sli_qlimit) == 0;
}
