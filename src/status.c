/*
 * The status server: its own process and libev loop, so that it answers
 * while the greeting workers are busy or blocked (a sync worker serves
 * one client at a time).
 *
 * One request per connection: the answer carries Connection: close and
 * is followed by a lingering close.  At most STATUS_MAX_CONNS
 * connections; a head must be complete within header_timeout and each
 * write must make progress within it too.  Nothing here touches the
 * request counters: this process has no slot (stats_self is NULL).
 */
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>

#include "hellod.h"
#include "http.h"
#include "stats.h"
#include "status.h"
#include "tq.h"

#define LINGER_TIME	2.0		/* reading after the response */
#define DRAIN_GRACE	1.0		/* for a head in progress at SIGTERM */
#define RENDER_FIRST	16384
#define HEAD_MAX	512

enum scn_state {
	SCN_READING,
	SCN_WRITING,
	SCN_LINGERING
};

struct scn {
	struct tq_node	 cn_node;	/* first: tq callbacks cast back */
	ev_io		 cn_io;
	int		 cn_fd;
	enum scn_state	 cn_state;
	char		*cn_in;		/* sv_incap bytes while reading */
	size_t		 cn_inlen;
	char		 cn_head[HEAD_MAX];
	size_t		 cn_headlen;
	const char	*cn_body;	/* NULL for HEAD */
	size_t		 cn_bodylen;
	char		*cn_owned;	/* cn_body when rendered for it */
	size_t		 cn_sent;	/* of head, then body */
	char		 cn_small[32];	/* a short body */
};

struct status_server {
	struct ev_loop		*sv_loop;
	ev_io			*sv_accept;
	unsigned		 sv_naccept;
	ev_timer		 sv_accept_timer;
	int			 sv_accept_paused;	/* 1: full, 2: error */
	int			 sv_accept_failing;	/* logged once */
	int			 sv_stopping;
	ev_signal		 sv_sigterm, sv_sigquit, sv_sigusr1;
	struct tq		 sv_head_q;	/* head in progress */
	struct tq		 sv_send_q;	/* response blocked */
	struct tq		 sv_linger_q;
	unsigned		 sv_nconns;
	struct http_limits	 sv_limits;
	size_t			 sv_incap;	/* max_header_size + 1 */
	struct stats_listener_info *sv_li;
	unsigned		 sv_nli;
	struct stats_snapshot	 sv_snap;
	size_t			 sv_render_cap;	/* the last size that fit */
	char			 sv_date[HTTP_DATE_LEN + 1];
	int64_t			 sv_date_sec;
};

static struct status_server	 sv;

static const struct {
	int		 rs_code;
	const char	*rs_reason;
	const char	*rs_body;
} reasons[] = {
	{ 200, "OK", "" },
	{ 400, "Bad Request", "400 Bad Request\n" },
	{ 404, "Not Found", "404 Not Found\n" },
	{ 405, "Method Not Allowed", "405 Method Not Allowed\n" },
	{ 408, "Request Timeout", "408 Request Timeout\n" },
	{ 414, "URI Too Long", "414 URI Too Long\n" },
	{ 431, "Request Header Fields Too Large",
	    "431 Request Header Fields Too Large\n" },
	{ 500, "Internal Server Error", "500 Internal Server Error\n" },
	{ 503, "Service Unavailable", "503 Service Unavailable\n" },
	{ 505, "HTTP Version Not Supported",
	    "505 HTTP Version Not Supported\n" },
};

#define NREASONS	(sizeof(reasons) / sizeof(reasons[0]))

#define TYPE_TEXT	"text/plain; charset=utf-8"
#define TYPE_METRICS	"text/plain; version=0.0.4; charset=utf-8"
#define TYPE_JSON	"application/json"
#define TYPE_HTML	"text/html; charset=utf-8"

static void	 accept_resume(void);

static const char *
date_now(void)
{
	int64_t	 now = (int64_t)ev_now(sv.sv_loop);

	if (now != sv.sv_date_sec) {
		http_date(sv.sv_date, now);
		sv.sv_date_sec = now;
	}
	return sv.sv_date;
}

static void
conn_close(struct scn *c)
{
	tq_remove(&c->cn_node);
	ev_io_stop(sv.sv_loop, &c->cn_io);
	if (close(c->cn_fd) == -1)
		log_warn("close() failed");
	free(c->cn_in);
	free(c->cn_owned);
	free(c);
	sv.sv_nconns--;
	if (sv.sv_stopping) {
		if (sv.sv_nconns == 0)
			ev_break(sv.sv_loop, EVBREAK_ALL);
	} else if (sv.sv_accept_paused == 1)
		accept_resume();
}

static void
watch(struct scn *c, int events)
{
	if (c->cn_io.events == events && ev_is_active(&c->cn_io))
		return;
	ev_io_stop(sv.sv_loop, &c->cn_io);
	ev_io_set(&c->cn_io, c->cn_fd, events);
	ev_io_start(sv.sv_loop, &c->cn_io);
}

/* After the response: what the client still sends is dropped
 * (listen_linger_drain()) until it is done. */
static void
linger_read(struct scn *c)
{
	if (listen_linger_drain(c->cn_fd))
		conn_close(c);
}

static void
linger_start(struct scn *c)
{
	free(c->cn_owned);
	c->cn_owned = NULL;
	c->cn_body = NULL;
	free(c->cn_in);
	c->cn_in = NULL;
	if (shutdown(c->cn_fd, SHUT_WR) == -1) {
		/* ENOTCONN: the client is already gone. */
		if (errno != ENOTCONN)
			log_warn("shutdown() failed");
		conn_close(c);
		return;
	}
	c->cn_state = SCN_LINGERING;
	tq_add(&sv.sv_linger_q, &c->cn_node);
	watch(c, EV_READ);
	linger_read(c);
}

static void
conn_write(struct scn *c)
{
	struct iovec	 iov[2];
	struct msghdr	 msg;
	size_t		 total = c->cn_headlen + c->cn_bodylen, off;
	ssize_t		 n;
	int		 k;

	while (c->cn_sent < total) {
		k = 0;
		if (c->cn_sent < c->cn_headlen) {
			iov[k].iov_base = c->cn_head + c->cn_sent;
			iov[k++].iov_len = c->cn_headlen - c->cn_sent;
		}
		off = c->cn_sent > c->cn_headlen ? c->cn_sent - c->cn_headlen :
		    0;
		if (off < c->cn_bodylen) {
			iov[k].iov_base = (char *)(uintptr_t)(c->cn_body + off);
			iov[k++].iov_len = c->cn_bodylen - off;
		}
		memset(&msg, 0, sizeof(msg));
		msg.msg_iov = iov;
		msg.msg_iovlen = (size_t)k;
		n = sendmsg(c->cn_fd, &msg, MSG_NOSIGNAL);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				watch(c, EV_WRITE);
				return;
			}
			if (errno != EPIPE && errno != ECONNRESET)
				log_warn("sendmsg() failed");
			conn_close(c);
			return;
		}
		c->cn_sent += (size_t)n;
		tq_add(&sv.sv_send_q, &c->cn_node);	/* progress */
	}
	linger_start(c);
}

/* Sets the response: head, and a body that outlives the call (static,
 * cn_small, or owned, which is then freed with the connection).  HEAD
 * gets the same head and no body. */
static void
answer(struct scn *c, int status, const char *type, const char *body,
    size_t len, int head)
{
	const char	*reason;
	size_t		 i;
	int		 n;

	for (i = 0; i < NREASONS; i++)
		if (reasons[i].rs_code == status)
			break;
	if (i == NREASONS) {
		status = 500;
		for (i = 0; reasons[i].rs_code != 500; i++)
			;
	}
	reason = reasons[i].rs_reason;
	if (body == NULL) {
		body = reasons[i].rs_body;
		len = strlen(body);
		type = TYPE_TEXT;
	}
	n = snprintf(c->cn_head, sizeof(c->cn_head),
	    "HTTP/1.1 %d %s\r\n"
	    "Server: hellod\r\n"
	    "Date: %s\r\n"
	    "Content-Type: %s\r\n"
	    "Content-Length: %zu\r\n"
	    "Cache-Control: no-store\r\n"
	    "%s"
	    "Connection: close\r\n"
	    "\r\n",
	    status, reason, date_now(), type, len,
	    status == 405 ? "Allow: GET, HEAD\r\n" : "");
	/* The longest head is well under HEAD_MAX. */
	c->cn_headlen = n > 0 && (size_t)n < sizeof(c->cn_head) ? (size_t)n :
	    0;
	c->cn_body = head ? NULL : body;
	c->cn_bodylen = head ? 0 : len;
	c->cn_sent = 0;
	c->cn_state = SCN_WRITING;
	tq_add(&sv.sv_send_q, &c->cn_node);
	conn_write(c);
}

/* Renders a fresh snapshot into memory owned by c; NULL on failure. */
static char *
render(struct scn *c, int json, size_t *lenp)
{
	size_t	 cap = sv.sv_render_cap, n;
	char	*buf;

	if (stats_snapshot(&sv.sv_snap) == -1)
		return NULL;
	stats_listeners_poll(sv.sv_li, sv.sv_nli);
	/* One snapshot always renders to one length: twice at most. */
	for (;;) {
		if ((buf = malloc(cap)) == NULL) {
			log_warn("malloc() failed");
			return NULL;
		}
		n = json ? stats_render_json(&sv.sv_snap, sv.sv_li, sv.sv_nli,
		    buf, cap) : stats_render_metrics(&sv.sv_snap, sv.sv_li,
		    sv.sv_nli, buf, cap);
		if (n < cap)
			break;
		free(buf);
		cap = n + 1;
	}
	/* Room for a few more workers or listeners next time. */
	sv.sv_render_cap = n + 1 + n / 4 > sv.sv_render_cap ?
	    n + 1 + n / 4 : sv.sv_render_cap;
	c->cn_owned = buf;
	*lenp = n;
	return buf;
}

static int
path_is(const struct http_request *req, const char *path)
{
	size_t	 len = strlen(path);

	return req->req_path_len == len &&
	    memcmp(req->req_path, path, len) == 0;
}

static void
route(struct scn *c, const struct http_request *req)
{
	const char	*body, *why;
	size_t		 len;
	int		 head = req->req_method == HTTP_HEAD, json;

	if ((json = path_is(req, "/status.json")) || path_is(req, "/metrics")) {
		if ((body = render(c, json, &len)) == NULL)
			answer(c, 503, NULL, NULL, 0, head);
		else
			answer(c, 200, json ? TYPE_JSON : TYPE_METRICS, body,
			    len, head);
	} else if (path_is(req, "/"))
		answer(c, 200, TYPE_HTML, status_page_html, status_page_len,
		    head);
	else if (path_is(req, "/healthz")) {
		json = stats_health(&why);
		snprintf(c->cn_small, sizeof(c->cn_small), "%s\n", why);
		answer(c, json ? 200 : 503, TYPE_TEXT, c->cn_small,
		    strlen(c->cn_small), head);
	} else
		answer(c, 404, NULL, NULL, 0, head);
}

static void
conn_read(struct scn *c)
{
	struct http_request	 req;
	ssize_t			 n;
	int			 rc;

	for (;;) {
		n = recv(c->cn_fd, c->cn_in + c->cn_inlen,
		    sv.sv_incap - c->cn_inlen, 0);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return;
			if (errno != ECONNRESET)
				log_debug("recv() failed: %s", strerror(errno));
			conn_close(c);
			return;
		}
		if (n == 0) {
			conn_close(c);	/* incomplete head: no answer */
			return;
		}
		c->cn_inlen += (size_t)n;
		rc = http_parse(c->cn_in, c->cn_inlen, &sv.sv_limits, &req);
		if (rc == HTTP_NEED_MORE) {
			/* Leading empty lines are dropped as they come, so
			 * the buffer only holds the head. */
			if (req.req_consumed > 0) {
				memmove(c->cn_in, c->cn_in + req.req_consumed,
				    c->cn_inlen - req.req_consumed);
				c->cn_inlen -= req.req_consumed;
			}
			/* The parser refuses a head over the limit before
			 * the buffer is full; this is only a backstop. */
			if (c->cn_inlen < sv.sv_incap)
				continue;
			rc = HTTP_ERROR;
			req.req_status = 431;
		}
		if (rc == HTTP_ERROR)
			answer(c, req.req_status, NULL, NULL, 0,
			    req.req_method == HTTP_HEAD);
		else if (req.req_status == 405)
			answer(c, 405, NULL, NULL, 0, 0);
		else
			route(c, &req);
		return;
	}
}

static void
conn_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct scn	*c = io->data;

	(void)loop;
	(void)revents;
	switch (c->cn_state) {
	case SCN_READING:
		conn_read(c);
		break;
	case SCN_WRITING:
		conn_write(c);
		break;
	case SCN_LINGERING:
		linger_read(c);
		break;
	}
}

static void
expire_close(struct tq_node *n, void *arg)
{
	(void)arg;
	conn_close((struct scn *)n);
}

static void
conn_new(int fd)
{
	struct scn	*c;

	if ((c = calloc(1, sizeof(*c))) == NULL ||
	    (c->cn_in = malloc(sv.sv_incap)) == NULL) {
		log_warn("malloc() failed");
		free(c);
		if (close(fd) == -1)
			log_warn("close() failed");
		return;
	}
	c->cn_fd = fd;
	c->cn_state = SCN_READING;
	ev_io_init(&c->cn_io, conn_cb, fd, EV_READ);
	c->cn_io.data = c;
	sv.sv_nconns++;
	tq_add(&sv.sv_head_q, &c->cn_node);
	ev_io_start(sv.sv_loop, &c->cn_io);
	conn_read(c);
}

static void
accept_stop(void)
{
	unsigned	 i;

	for (i = 0; i < sv.sv_naccept; i++)
		ev_io_stop(sv.sv_loop, &sv.sv_accept[i]);
}

static void
accept_resume(void)
{
	unsigned	 i;

	sv.sv_accept_paused = 0;
	for (i = 0; i < sv.sv_naccept; i++)
		ev_io_start(sv.sv_loop, &sv.sv_accept[i]);
}

static void
accept_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop;
	(void)t;
	(void)revents;
	if (sv.sv_nconns < STATUS_MAX_CONNS)
		accept_resume();
	else
		sv.sv_accept_paused = 1;
}

static void
accept_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	int	 fd;

	(void)revents;
	for (;;) {
		if (sv.sv_nconns >= STATUS_MAX_CONNS) {
			/* Resumed by conn_close(); the rest wait in the
			 * listen queue. */
			accept_stop();
			sv.sv_accept_paused = 1;
			return;
		}
		fd = accept4(io->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			switch (listen_accept_error(errno,
			    &sv.sv_accept_failing)) {
			case HD_ACCEPT_RETRY:
				continue;
			case HD_ACCEPT_PAUSE:
				/* Level-triggered accept would spin: wait. */
				accept_stop();
				sv.sv_accept_paused = 2;
				ev_timer_set(&sv.sv_accept_timer,
				    HD_ACCEPT_PAUSE_TIME, 0.);
				ev_timer_start(loop, &sv.sv_accept_timer);
				return;
			case HD_ACCEPT_DONE:
				return;
			}
		}
		listen_accept_ok(&sv.sv_accept_failing);
		conn_new(fd);
	}
}

static void
sig_cb(struct ev_loop *loop, ev_signal *s, int revents)
{
	unsigned	 i;

	(void)revents;
	switch (s->signum) {
	case SIGTERM:
		if (sv.sv_stopping)
			return;
		sv.sv_stopping = 1;
		accept_stop();
		ev_timer_stop(loop, &sv.sv_accept_timer);
		/* Our copies only: the master keeps the listeners. */
		for (i = 0; i < sv.sv_naccept; i++)
			if (close(sv.sv_accept[i].fd) == -1)
				log_warn("close() failed");
		if (sv.sv_nconns == 0) {
			ev_break(loop, EVBREAK_ALL);
			return;
		}
		/* Responses in flight finish; a head still arriving gets
		 * a moment, not the whole header_timeout. */
		tq_shorten(&sv.sv_head_q, DRAIN_GRACE);
		break;
	case SIGQUIT:
		_exit(0);
	case SIGUSR1:
		log_reopen();
		break;
	}
}

static void
status_init(const struct status_ctx *ctx)
{
	static const int	 ignored[] = { SIGHUP, SIGINT, SIGPIPE };
	struct sigaction	 sa;
	sigset_t		 mask;
	ev_tstamp		 timeout;
	unsigned		 i;

	log_set_ident("status");
	stats_attach(-1);	/* never counted */
	if (prctl(PR_SET_PDEATHSIG, SIGTERM) == -1)
		log_warn("prctl(PR_SET_PDEATHSIG) failed");

	/* The master coordinates reloads and stops: a terminal's SIGINT or
	 * SIGHUP, sent to the whole group, is its business. */
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = SIG_IGN;
	for (i = 0; i < sizeof(ignored) / sizeof(ignored[0]); i++)
		if (sigaction(ignored[i], &sa, NULL) == -1)
			fatal("sigaction() failed");

	sv.sv_limits.lim_max_header = ctx->stc_max_header_size > 0 ?
	    ctx->stc_max_header_size : 8192;
	sv.sv_limits.lim_max_fields = HTTP_MAX_FIELDS;
	sv.sv_incap = sv.sv_limits.lim_max_header + 1;
	sv.sv_render_cap = RENDER_FIRST;
	timeout = (ctx->stc_header_timeout > 0 ? ctx->stc_header_timeout :
	    10000) / 1000.;

	sv.sv_nli = ctx->stc_nlisteners;
	if (sv.sv_nli > 0) {
		if ((sv.sv_li = calloc(sv.sv_nli, sizeof(*sv.sv_li))) == NULL)
			fatal("calloc() failed");
		memcpy(sv.sv_li, ctx->stc_listeners,
		    sv.sv_nli * sizeof(*sv.sv_li));
	}

	if ((sv.sv_loop = ev_default_loop(EVFLAG_AUTO)) == NULL)
		fatalx("ev_default_loop() failed");
	tq_init(&sv.sv_head_q, sv.sv_loop, timeout, expire_close, NULL);
	tq_init(&sv.sv_send_q, sv.sv_loop, timeout, expire_close, NULL);
	tq_init(&sv.sv_linger_q, sv.sv_loop, LINGER_TIME, expire_close, NULL);

	sv.sv_naccept = ctx->stc_nfds;
	if (sv.sv_naccept > 0 &&
	    (sv.sv_accept = calloc(sv.sv_naccept, sizeof(ev_io))) == NULL)
		fatal("calloc() failed");
	for (i = 0; i < sv.sv_naccept; i++) {
		ev_io_init(&sv.sv_accept[i], accept_cb, ctx->stc_fds[i],
		    EV_READ);
		ev_io_start(sv.sv_loop, &sv.sv_accept[i]);
	}
	ev_timer_init(&sv.sv_accept_timer, accept_timer_cb,
	    HD_ACCEPT_PAUSE_TIME, 0.);

	ev_signal_init(&sv.sv_sigterm, sig_cb, SIGTERM);
	ev_signal_init(&sv.sv_sigquit, sig_cb, SIGQUIT);
	ev_signal_init(&sv.sv_sigusr1, sig_cb, SIGUSR1);
	ev_signal_start(sv.sv_loop, &sv.sv_sigterm);
	ev_signal_start(sv.sv_loop, &sv.sv_sigquit);
	ev_signal_start(sv.sv_loop, &sv.sv_sigusr1);

	sigemptyset(&mask);
	if (sigprocmask(SIG_SETMASK, &mask, NULL) == -1)
		fatal("sigprocmask() failed");
}

void
status_main(const struct status_ctx *ctx)
{
	status_init(ctx);
	log_info("status server on %u listeners", ctx->stc_nfds);
	ev_run(sv.sv_loop, 0);
	log_debug("status server exiting");
	exit(0);
}

/* In the status server's process: the context from the listeners and the
 * configuration, then the server. */
void
status_run(const struct listeners *ls, const struct hd_config *cf)
{
	static struct hd_socket			 socks[HD_MAX_LISTEN];
	static int				 fds[HD_MAX_LISTEN];
	static struct stats_listener_info	 info[HD_MAX_SOCKETS];
	struct status_ctx			 ctx;
	const struct listener			*li;
	unsigned				 a, s, n, ninfo = 0;

	n = listeners_status_sockets(ls, socks);
	for (a = 0; a < n; a++)
		fds[a] = socks[a].so_fd;
	for (a = 0; a < ls->ls_n; a++) {
		li = &ls->ls_list[a];
		if (li->li_kind == HD_LISTEN_STATUS)
			continue;
		for (s = 0; s < ls->ls_nslots; s++)
			if (li->li_fd[s] != -1) {
				info[ninfo].sli_addr = li->li_addr.a_text;
				info[ninfo].sli_socket = s;
				info[ninfo++].sli_fd = li->li_fd[s];
			}
	}
	memset(&ctx, 0, sizeof(ctx));
	ctx.stc_fds = fds;
	ctx.stc_nfds = n;
	ctx.stc_listeners = info;
	ctx.stc_nlisteners = ninfo;
	ctx.stc_header_timeout = cf->cf_header_timeout;
	ctx.stc_max_header_size = cf->cf_max_header_size;
	status_main(&ctx);
}
