/*
 * The asynchronous worker: one libev loop, the listeners of its slot,
 * and its connections.
 *
 * Memory: a connection owns no buffer while idle.  Reads go into one
 * per-worker buffer and responses are built in another; only bytes that
 * must outlive the callback (an incomplete request, unsent output) are
 * copied into memory owned by the connection.
 */
#include <sys/socket.h>

#include <netinet/in.h>

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>

#include "hellod.h"
#include "http.h"
#include "tq.h"

#define READ_ROOM	16384		/* read size beyond max_header_size */
#define WRITE_BATCH	65536		/* flush pipelined responses past this */
#define ACCEPT_PAUSE	0.1		/* after EMFILE and friends */
#define CONN_CACHE	1024		/* freed connections kept for reuse */
#define LINGER_TIME	2.0		/* reading after an error response */
#define DRAIN_GRACE	1.0		/* idle keep-alive during a stop */

struct conn {
	struct tq_node	 c_node;	/* first: tq callbacks cast back */
	ev_io		 c_io;
	int		 c_fd;
	unsigned	 c_requests;
	char		*c_in;		/* unprocessed input */
	size_t		 c_inlen;
	char		*c_out;		/* unsent output */
	size_t		 c_outlen;
	size_t		 c_outoff;
	size_t		 c_pad_left;	/* padding to send after c_out */
	struct http_stream c_stream;
	unsigned	 c_more:1;	/* c_in holds requests not yet parsed */
	unsigned	 c_closing:1;	/* close once the output is sent */
	unsigned	 c_delayed:1;	/* a response waits for the delay */
	unsigned	 c_pend_head:1;
	unsigned	 c_pend_keep:1;
	unsigned	 c_pend_minor:1;
	unsigned	 c_linger:1;	/* unread input may remain at close */
	unsigned	 c_lingering:1;
	unsigned	 c_answered:1;	/* a request completed in this run */
	uint16_t	 c_pend_status;
	uint8_t		 c_addrlen;
	char		 c_addr[HTTP_ADDR_MAX];
	struct conn	*c_free_next;
};

struct worker {
	struct ev_loop		*w_loop;
	const struct hd_config	*w_cf;
	struct http_limits	 w_limits;
	ev_io			*w_accept;
	unsigned		 w_nlisten;
	ev_timer		 w_accept_timer;
	int			 w_accept_paused;
	int			 w_accept_failing;	/* logged once a spell */
	ev_signal		 w_sigterm, w_sigquit, w_sigusr1;
	struct tq		 w_header_q;	/* request in progress */
	struct tq		 w_idle_q;	/* keep-alive between requests */
	struct tq		 w_send_q;	/* output blocked on the client */
	struct tq		 w_delay_q;	/* simulated backend latency */
	struct tq		 w_linger_q;	/* closing: reading the rest */
	unsigned		 w_nconns;
	int			 w_draining;
	char			*w_rbuf;
	size_t			 w_rcap;
	char			*w_wbuf;
	size_t			 w_wcap;
	size_t			 w_wlen;
	char			 w_date[HTTP_DATE_LEN + 1];
	int64_t			 w_date_sec;
	char			*w_spaces;	/* HTTP_PAD_CHUNK of padding */
	struct conn		*w_free;
	unsigned		 w_nfree;
};

static struct worker	 wk;

static void	 conn_run(struct conn *, int);
static void	 accept_resume(void);

static const char *
date_now(void)
{
	int64_t	 now = (int64_t)ev_now(wk.w_loop);

	if (now != wk.w_date_sec) {
		http_date(wk.w_date, now);
		wk.w_date_sec = now;
	}
	return wk.w_date;
}

static void
conn_close(struct conn *c)
{
	tq_remove(&c->c_node);
	ev_io_stop(wk.w_loop, &c->c_io);
	if (close(c->c_fd) == -1)
		log_warn("close() failed");
	free(c->c_in);
	free(c->c_out);
	if (wk.w_nfree < CONN_CACHE) {
		c->c_free_next = wk.w_free;
		wk.w_free = c;
		wk.w_nfree++;
	} else
		free(c);
	wk.w_nconns--;
	if (wk.w_draining) {
		if (wk.w_nconns == 0)
			ev_break(wk.w_loop, EVBREAK_ALL);
	} else if (wk.w_accept_paused == 1)
		accept_resume();
}

/* Appends one response to the worker's write buffer. */
static void
respond(struct conn *c, int status, int head, int keep, int minor)
{
	struct http_response	 r;

	r.rsp_status = status;
	r.rsp_head = head;
	if (!keep)
		r.rsp_conn = HTTP_CONN_CLOSE;
	else
		r.rsp_conn = minor == 0 ? HTTP_CONN_KEEPALIVE :
		    HTTP_CONN_DEFAULT;
	r.rsp_date = date_now();
	r.rsp_addr = c->c_addr;
	r.rsp_addr_len = c->c_addrlen;
	r.rsp_padding = wk.w_cf->cf_body_padding;
	r.rsp_pad_later = 1;
	wk.w_wlen += http_response_write(wk.w_wbuf + wk.w_wlen, &r);
	/* The padding follows from the shared buffer of spaces: a client
	 * that reads slowly never makes the worker copy it. */
	if (status == 200 && !head)
		c->c_pad_left = r.rsp_padding;
	if (!keep)
		c->c_closing = 1;
}

static size_t
greeting_size(const struct conn *c, int status)
{
	struct http_response	 r;

	memset(&r, 0, sizeof(r));
	r.rsp_status = status;
	r.rsp_addr_len = c->c_addrlen;
	r.rsp_padding = wk.w_cf->cf_body_padding;
	return http_body_size(&r);
}

/*
 * Parses and answers what buf holds; keeps what is left in c_in.  Stops
 * early when the write buffer is full (c_more), a response is delayed,
 * or the connection is to be closed.
 */
static void
process(struct conn *c, char *buf, size_t len)
{
	const struct hd_config	*cf = wk.w_cf;
	struct http_request	 req;
	size_t			 off = 0, used;
	int			 rc, keep, head;

	c->c_more = 0;
	while (off < len && !c->c_closing && !c->c_delayed) {
		/* Padding goes out after the buffer: one padded response
		 * per flush. */
		if (wk.w_wlen > WRITE_BATCH || c->c_pad_left > 0) {
			c->c_more = 1;
			break;
		}
		rc = http_stream_next(&c->c_stream, buf + off, len - off,
		    &wk.w_limits, &req, &used);
		off += used;
		if (rc == HTTP_NEED_MORE)
			break;
		if (rc == HTTP_ERROR) {
			if (access_enabled())
				access_log(c->c_addr, &req, req.req_status, 0,
				    (int64_t)ev_now(wk.w_loop));
			respond(c, req.req_status,
			    req.req_method == HTTP_HEAD, 0, 1);
			c->c_linger = 1;
			break;
		}
		c->c_requests++;
		c->c_answered = 1;
		keep = req.req_keepalive && cf->cf_keepalive_timeout > 0 &&
		    !wk.w_draining;
		head = req.req_method == HTTP_HEAD;
		if (access_enabled())
			access_log(c->c_addr, &req, req.req_status,
			    head ? 0 : greeting_size(c, req.req_status),
			    (int64_t)ev_now(wk.w_loop));
		if (cf->cf_delay > 0) {
			c->c_delayed = 1;
			c->c_pend_status = (uint16_t)req.req_status;
			c->c_pend_head = head;
			c->c_pend_keep = keep;
			c->c_pend_minor = req.req_minor;
			tq_add(&wk.w_delay_q, &c->c_node);
			break;
		}
		respond(c, req.req_status, head, keep, req.req_minor);
	}

	free(c->c_in);
	c->c_in = NULL;
	c->c_inlen = 0;
	if (off < len && c->c_closing)
		c->c_linger = 1;
	else if (off < len) {
		if ((c->c_in = malloc(len - off)) == NULL) {
			log_warn("malloc() failed");
			c->c_closing = 1;
			c->c_more = 0;
			return;
		}
		memcpy(c->c_in, buf + off, len - off);
		c->c_inlen = len - off;
	}
}

/* Sends the worker's write buffer, and the padding of its last response;
 * what the socket does not take now is kept by the connection.  Returns
 * -1 when the connection is gone. */
static int
flush(struct conn *c)
{
	struct iovec	 iov[2];
	struct msghdr	 msg;
	ssize_t		 n;
	size_t		 len = wk.w_wlen;

	wk.w_wlen = 0;
	if (len == 0)
		return 0;
	if (c->c_pad_left == 0)
		n = send(c->c_fd, wk.w_wbuf, len, MSG_NOSIGNAL);
	else {
		iov[0].iov_base = wk.w_wbuf;
		iov[0].iov_len = len;
		iov[1].iov_base = wk.w_spaces;
		iov[1].iov_len = c->c_pad_left < HTTP_PAD_CHUNK ?
		    c->c_pad_left : HTTP_PAD_CHUNK;
		memset(&msg, 0, sizeof(msg));
		msg.msg_iov = iov;
		msg.msg_iovlen = 2;
		n = sendmsg(c->c_fd, &msg, MSG_NOSIGNAL);
	}
	if (n == -1) {
		if (errno != EAGAIN && errno != EINTR)
			return -1;
		n = 0;
	}
	if ((size_t)n >= len) {
		c->c_pad_left -= (size_t)n - len;
		return 0;
	}
	if ((c->c_out = malloc(len - (size_t)n)) == NULL) {
		log_warn("malloc() failed");
		return -1;
	}
	memcpy(c->c_out, wk.w_wbuf + n, len - (size_t)n);
	c->c_outlen = len - (size_t)n;
	c->c_outoff = 0;
	return 0;
}

/* Returns 1 when all is sent, 0 when the socket is full, -1 on error. */
static int
send_pending(struct conn *c)
{
	ssize_t	 n;

	while (c->c_outoff < c->c_outlen) {
		n = send(c->c_fd, c->c_out + c->c_outoff,
		    c->c_outlen - c->c_outoff, MSG_NOSIGNAL);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return 0;
			return -1;
		}
		c->c_outoff += (size_t)n;
		tq_add(&wk.w_send_q, &c->c_node);	/* progress */
	}
	free(c->c_out);
	c->c_out = NULL;
	c->c_outlen = c->c_outoff = 0;
	while (c->c_pad_left > 0) {
		n = send(c->c_fd, wk.w_spaces, c->c_pad_left < HTTP_PAD_CHUNK ?
		    c->c_pad_left : HTTP_PAD_CHUNK, MSG_NOSIGNAL);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return 0;
			return -1;
		}
		c->c_pad_left -= (size_t)n;
		tq_add(&wk.w_send_q, &c->c_node);	/* progress */
	}
	return 1;
}

static void
watch(struct conn *c, int events)
{
	if (c->c_io.events == events && ev_is_active(&c->c_io))
		return;
	ev_io_stop(wk.w_loop, &c->c_io);
	if (events == 0)
		return;
	ev_io_set(&c->c_io, c->c_fd, events);
	ev_io_start(wk.w_loop, &c->c_io);
}

/* Copies input held by the connection to the front of the read buffer;
 * process() replaces it with what remains. */
static size_t
take_input(struct conn *c)
{
	if (c->c_inlen > 0)
		memcpy(wk.w_rbuf, c->c_in, c->c_inlen);
	return c->c_inlen;
}

/*
 * Closing with unread input would make the kernel send RST, which can
 * destroy the response before the client reads it.  Send FIN instead and
 * discard what still arrives, for a bounded time.
 */
static void
linger_read(struct conn *c)
{
	char	 buf[4096];
	ssize_t	 n;

	for (;;) {
		n = recv(c->c_fd, buf, sizeof(buf), 0);
		if (n > 0 || (n == -1 && errno == EINTR))
			continue;
		if (n == -1 && errno == EAGAIN)
			return;
		conn_close(c);
		return;
	}
}

static void
linger_start(struct conn *c)
{
	if (shutdown(c->c_fd, SHUT_WR) == -1) {
		conn_close(c);
		return;
	}
	c->c_lingering = 1;
	tq_add(&wk.w_linger_q, &c->c_node);
	watch(c, EV_READ);
	linger_read(c);
}

/*
 * Drives a connection as far as it can go without blocking: sends what is
 * pending, answers buffered requests, then reads once when asked to.
 */
static void
conn_run(struct conn *c, int readable)
{
	size_t	 len;
	ssize_t	 n;
	int	 rc;

	for (;;) {
		if (c->c_out != NULL || c->c_pad_left > 0) {
			if ((rc = send_pending(c)) == -1)
				goto close;
			if (rc == 0) {
				if (c->c_node.tn_queue != &wk.w_send_q)
					tq_add(&wk.w_send_q, &c->c_node);
				watch(c, EV_WRITE);
				return;
			}
		}
		if (c->c_delayed) {
			watch(c, 0);
			return;
		}
		if (c->c_more) {
			len = take_input(c);
			process(c, wk.w_rbuf, len);
			if (flush(c) == -1)
				goto close;
			continue;
		}
		if (c->c_closing) {
			if (c->c_linger) {
				linger_start(c);
				return;
			}
			goto close;
		}
		if (!readable)
			break;
		readable = 0;

		len = take_input(c);
		n = recv(c->c_fd, wk.w_rbuf + len, wk.w_rcap - len, 0);
		if (n == -1) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			if (errno != ECONNRESET)
				log_debug("read() failed: %s", strerror(errno));
			goto close;
		}
		if (n == 0)
			goto close;	/* incomplete request: no response */
		/* A request that arrives whole never joins the header
		 * queue; one left incomplete joins it below. */
		process(c, wk.w_rbuf, len + (size_t)n);
		if (flush(c) == -1)
			goto close;
	}

	/*
	 * header_timeout runs from the start of each request, and
	 * keepalive_timeout from the end of the last response: a completed
	 * request restarts whichever applies now.
	 */
	watch(c, EV_READ);
	if (c->c_inlen > 0 || http_stream_busy(&c->c_stream)) {
		if (c->c_node.tn_queue != &wk.w_header_q || c->c_answered)
			tq_add(&wk.w_header_q, &c->c_node);
	} else if (c->c_requests > 0 &&
	    (c->c_node.tn_queue != &wk.w_idle_q || c->c_answered)) {
		if (wk.w_draining)
			goto close;
		tq_add(&wk.w_idle_q, &c->c_node);
	}
	c->c_answered = 0;
	return;
close:
	conn_close(c);
}

static void
conn_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct conn	*c = io->data;

	(void)loop;
	if (c->c_lingering)
		linger_read(c);
	else
		conn_run(c, revents & EV_READ);
}

static void
expire_close(struct tq_node *n, void *arg)
{
	(void)arg;
	conn_close((struct conn *)n);
}

static void
expire_delay(struct tq_node *n, void *arg)
{
	struct conn	*c = (struct conn *)n;

	(void)arg;
	c->c_delayed = 0;
	respond(c, c->c_pend_status, c->c_pend_head,
	    c->c_pend_keep && !wk.w_draining, c->c_pend_minor);
	if (flush(c) == -1) {
		conn_close(c);
		return;
	}
	c->c_more = c->c_inlen > 0;
	conn_run(c, 0);
}

static void
conn_new(int fd, const struct sockaddr_storage *ss)
{
	struct conn	*c;

	if ((c = wk.w_free) != NULL) {
		wk.w_free = c->c_free_next;
		wk.w_nfree--;
	} else if ((c = malloc(sizeof(*c))) == NULL) {
		log_warn("malloc() failed");
		close(fd);
		return;
	}
	memset(c, 0, sizeof(*c));
	c->c_fd = fd;
	c->c_addrlen = (uint8_t)peer_text(ss, c->c_addr, sizeof(c->c_addr));
	ev_io_init(&c->c_io, conn_cb, fd, EV_READ);
	c->c_io.data = c;
	wk.w_nconns++;
	tq_add(&wk.w_header_q, &c->c_node);
	/* The request usually arrives with the connection. */
	conn_run(c, 1);
}

static void
accept_stop(void)
{
	unsigned	 i;

	for (i = 0; i < wk.w_nlisten; i++)
		ev_io_stop(wk.w_loop, &wk.w_accept[i]);
}

static void
accept_resume(void)
{
	unsigned	 i;

	wk.w_accept_paused = 0;
	for (i = 0; i < wk.w_nlisten; i++)
		ev_io_start(wk.w_loop, &wk.w_accept[i]);
}

static void
accept_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop;
	(void)t;
	(void)revents;
	if (wk.w_nconns < wk.w_cf->cf_max_connections)
		accept_resume();
	else
		wk.w_accept_paused = 1;
}

static void
accept_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct sockaddr_storage	 ss;
	socklen_t		 len;
	int			 fd;

	(void)revents;
	for (;;) {
		if (wk.w_nconns >= wk.w_cf->cf_max_connections) {
			/* Resumed by conn_close(); the rest wait in the
			 * listen queue. */
			accept_stop();
			wk.w_accept_paused = 1;
			return;
		}
		len = sizeof(ss);
		fd = accept4(io->fd, (struct sockaddr *)&ss, &len,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			switch (errno) {
			case EAGAIN:
				return;
			case EINTR:
			case ECONNABORTED:
			case EPROTO:
				continue;
			case EMFILE:
			case ENFILE:
			case ENOBUFS:
			case ENOMEM:
				/* Level-triggered accept would spin: wait. */
				if (!wk.w_accept_failing)
					log_warn("accept4() failed, pausing "
					    "accept");
				wk.w_accept_failing = 1;
				accept_stop();
				wk.w_accept_paused = 2;
				ev_timer_set(&wk.w_accept_timer, ACCEPT_PAUSE,
				    0.);
				ev_timer_start(loop, &wk.w_accept_timer);
				return;
			default:
				log_warn("accept4() failed");
				return;
			}
		}
		if (wk.w_accept_failing) {
			log_info("accept4() succeeds again");
			wk.w_accept_failing = 0;
		}
		conn_new(fd, &ss);
	}
}

static void
sig_cb(struct ev_loop *loop, ev_signal *s, int revents)
{
	unsigned	 i;

	(void)revents;
	switch (s->signum) {
	case SIGTERM:
		if (wk.w_draining)
			return;
		log_debug("draining %u connections", wk.w_nconns);
		wk.w_draining = 1;
		accept_stop();
		ev_timer_stop(loop, &wk.w_accept_timer);
		for (i = 0; i < wk.w_nlisten; i++)
			close(wk.w_accept[i].fd);
		if (wk.w_nconns == 0) {
			ev_break(loop, EVBREAK_ALL);
			return;
		}
		/*
		 * A busy keep-alive client is idle only between a response
		 * and its next request: closing at once would race with
		 * that request.  Idle connections get a moment to send one
		 * (answered with Connection: close), then are closed.
		 */
		tq_shorten(&wk.w_idle_q, DRAIN_GRACE);
		break;
	case SIGQUIT:
		_exit(0);
	case SIGUSR1:
		log_reopen();
		access_reopen();
		break;
	}
}

static void
worker_init(const struct hd_worker_ctx *ctx)
{
	const struct hd_config	*cf = ctx->wc_config;
	struct http_response	 r;
	sigset_t		 mask;
	unsigned		 i;

	wk.w_cf = cf;
	wk.w_limits.lim_max_header = cf->cf_max_header_size;
	wk.w_limits.lim_max_fields = HTTP_MAX_FIELDS;
	wk.w_rcap = cf->cf_max_header_size + READ_ROOM;

	memset(&r, 0, sizeof(r));
	r.rsp_status = 200;
	r.rsp_conn = HTTP_CONN_KEEPALIVE;
	r.rsp_addr_len = HTTP_ADDR_MAX;
	r.rsp_padding = cf->cf_body_padding;
	r.rsp_pad_later = 1;
	/* WRITE_BATCH bytes, then one more of the largest response. */
	wk.w_wcap = WRITE_BATCH + http_response_size(&r) + 512;
	if ((wk.w_rbuf = malloc(wk.w_rcap)) == NULL ||
	    (wk.w_wbuf = malloc(wk.w_wcap)) == NULL ||
	    (wk.w_spaces = malloc(HTTP_PAD_CHUNK)) == NULL)
		fatal("malloc() failed");
	memset(wk.w_spaces, ' ', HTTP_PAD_CHUNK);

	if ((wk.w_loop = ev_default_loop(EVFLAG_AUTO)) == NULL)
		fatalx("ev_default_loop() failed");
	tq_init(&wk.w_header_q, wk.w_loop, cf->cf_header_timeout / 1000.,
	    expire_close, NULL);
	tq_init(&wk.w_idle_q, wk.w_loop, cf->cf_keepalive_timeout / 1000.,
	    expire_close, NULL);
	tq_init(&wk.w_send_q, wk.w_loop, cf->cf_header_timeout / 1000.,
	    expire_close, NULL);
	tq_init(&wk.w_delay_q, wk.w_loop, cf->cf_delay / 1000.,
	    expire_delay, NULL);
	tq_init(&wk.w_linger_q, wk.w_loop, LINGER_TIME, expire_close, NULL);

	wk.w_nlisten = ctx->wc_nfds;
	if ((wk.w_accept = calloc(wk.w_nlisten, sizeof(ev_io))) == NULL)
		fatal("calloc() failed");
	for (i = 0; i < wk.w_nlisten; i++) {
		ev_io_init(&wk.w_accept[i], accept_cb, ctx->wc_fds[i], EV_READ);
		ev_io_start(wk.w_loop, &wk.w_accept[i]);
	}
	ev_timer_init(&wk.w_accept_timer, accept_timer_cb, ACCEPT_PAUSE, 0.);

	ev_signal_init(&wk.w_sigterm, sig_cb, SIGTERM);
	ev_signal_init(&wk.w_sigquit, sig_cb, SIGQUIT);
	ev_signal_init(&wk.w_sigusr1, sig_cb, SIGUSR1);
	ev_signal_start(wk.w_loop, &wk.w_sigterm);
	ev_signal_start(wk.w_loop, &wk.w_sigquit);
	ev_signal_start(wk.w_loop, &wk.w_sigusr1);

	sigemptyset(&mask);
	if (sigprocmask(SIG_SETMASK, &mask, NULL) == -1)
		fatal("sigprocmask() failed");
}

void
worker_main(const struct hd_worker_ctx *ctx)
{
	worker_init(ctx);
	log_info("worker %d serving (generation %u, async, %u listeners)",
	    ctx->wc_slot, ctx->wc_generation, ctx->wc_nfds);
	ev_run(wk.w_loop, 0);
	log_debug("worker %d exiting", ctx->wc_slot);
	exit(0);
}
