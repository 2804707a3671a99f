/*
 * The asynchronous worker's connections (see worker.h): reading,
 * answering through answer.c, writing, timeouts and closing.
 *
 * Memory: a connection owns no buffer while idle.  Reads go into one
 * per-worker buffer and responses are built in another; only bytes that
 * must outlive the callback (an incomplete request, unsent output) are
 * kept by the connection.  An incomplete request grows by appending what
 * arrives, so a head that trickles in is copied once, not once per read.
 */
#include <sys/socket.h>

#include <netinet/in.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>

#include "hellod.h"
#include "answer.h"
#include "proxy.h"
#include "stats.h"
#include "tq.h"
#include "worker.h"

#define CONN_CACHE	1024		/* freed connections kept for reuse */



/* How the connection ends once its output is sent. */
enum conn_end {
	CE_OPEN,	/* it stays open for the next request */
	CE_CLOSE,	/* the last answer said Connection: close */
	CE_LINGER	/* close, but unread input may remain: linger first */
};

struct conn {
	struct tq_node		 c_node;	/* first: tq callbacks cast back */
	ev_io			 c_io;
	int			 c_fd;
	enum conn_state		 c_state;
	enum conn_end		 c_end;
	const struct listener	*c_listener;
	unsigned		 c_requests;
	char			*c_in;		/* unprocessed input */
	size_t			 c_inlen;
	size_t			 c_incap;
	char			*c_out;		/* unsent output */
	size_t			 c_outlen;
	size_t			 c_outoff;
	size_t			 c_pad_left;	/* padding to send after c_out */
	struct answer		 c_pending;	/* in CS_DELAYED */
	struct http_stream	 c_stream;
	ev_tstamp		 c_req_start;	/* first byte of the request */
	struct answer_peer	 c_who;
	struct conn		*c_free_next;
};

/* The result of process(): why it stopped. */
enum process_result {
	PR_NEED_MORE,	/* every complete request is answered */
	PR_FLUSH,	/* the write buffer is full, or padding must go */
	PR_DELAYED,	/* an answer waits for its delay */
	PR_CLOSE	/* the connection ends after what is written */
};

static void	 conn_run(struct conn *, int, int);

static int64_t
now_sec(void)
{
	return (int64_t)ev_now(wk.w_loop);
}

/* The figure each state is counted under (stats.h). */
static const int state_figure[CS_NSTATES] = {
	[CS_PROXY] = STATS_READING,
	[CS_READING] = STATS_READING,
	[CS_DELAYED] = STATS_DELAYED,
	[CS_WRITING] = STATS_WRITING,
	[CS_IDLE] = STATS_IDLE,
	[CS_LINGERING] = STATS_LINGERING,
};

static void
conn_state_set(struct conn *c, enum conn_state s)
{
	stats_conn_move(state_figure[c->c_state], state_figure[s]);
	c->c_state = s;
}

/* Moves c to state s, at the tail of its queue: its timeout restarts. */
static void
conn_enter(struct conn *c, enum conn_state s)
{
	conn_state_set(c, s);
	tq_add(&wk.w_queue[s], &c->c_node);
}

static void
conn_close(struct conn *c)
{
	stats_conn_move(state_figure[c->c_state], -1);
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
	} else if (wk.w_accept_state == AS_FULL)
		accept_start();
}

/* Writes one answer into the worker's write buffer. */
static void
respond(struct conn *c, const struct answer *an)
{
	if (answer_write(&wk.w_env, an, wk.w_draining, &c->c_who, now_sec(),
	    ev_now(wk.w_loop)))
		c->c_end = an->an_error ? CE_LINGER : CE_CLOSE;
	/* The padding follows from the shared buffer of spaces: a client
	 * that reads slowly never makes the worker copy it. */
	c->c_pad_left = answer_padding_sent(an);
}

/*
 * Parses and answers the requests in buf[0..len), and returns why it
 * stopped; *off is what it consumed.  *answered counts the requests
 * completed.
 */
static enum process_result
process(struct conn *c, const char *buf, size_t len, size_t *off,
    unsigned *answered)
{
	struct http_request	 req;
	struct answer		 an;
	size_t			 used;
	int			 rc;

	*off = 0;
	for (;;) {
		/* Padding goes out after the buffer: one padded response
		 * per flush. */
		if (answer_batch_full(&wk.w_env) || c->c_pad_left > 0)
			return PR_FLUSH;
		if (*off == len)
			return PR_NEED_MORE;
		rc = http_stream_next(&c->c_stream, buf + *off, len - *off,
		    &wk.w_env.ae_limits, &req, &used);
		*off += used;
		if (rc == HTTP_NEED_MORE)
			return PR_NEED_MORE;
		answer_decide(&wk.w_env, rc, &req, &c->c_who, now_sec(), &an);
		an.an_start = c->c_req_start;
		if (rc == HTTP_DONE) {
			c->c_requests++;
			(*answered)++;
		}
		if (an.an_delay > 0) {
			c->c_pending = an;
			tq_add_in(&wk.w_queue[CS_DELAYED], &c->c_node,
			    an.an_delay / 1000.);
			conn_state_set(c, CS_DELAYED);
			return PR_DELAYED;
		}
		respond(c, &an);
		if (c->c_end != CE_OPEN)
			return PR_CLOSE;
	}
}

/*
 * Keeps buf[off..len) as the connection's unprocessed input.  A buffer
 * the connection already owns is reused in place.
 */
static int
keep_input(struct conn *c, const char *buf, size_t len, size_t off)
{
	size_t	 n = len - off;

	if (buf == c->c_in) {
		if (n == 0) {
			free(c->c_in);
			c->c_in = NULL;
			c->c_incap = 0;
		} else if (off > 0)
			memmove(c->c_in, c->c_in + off, n);
		c->c_inlen = n;
		return 0;
	}
	/* buf is the worker's read buffer: the connection held nothing. */
	if (n > 0) {
		if ((c->c_in = malloc(n)) == NULL) {
			log_warn("malloc() failed");
			return -1;
		}
		memcpy(c->c_in, buf + off, n);
		c->c_incap = n;
	}
	c->c_inlen = n;
	return 0;
}

/* Appends what was read to an incomplete request the connection holds;
 * the buffer doubles, so a trickled head costs linear copying. */
static int
append_input(struct conn *c, const char *buf, size_t n)
{
	size_t	 cap = c->c_incap;
	char	*p;

	if (c->c_inlen + n > cap) {
		while (cap < c->c_inlen + n)
			cap = cap < 256 ? 256 : cap * 2;
		if (cap > wk.w_env.ae_rcap)
			cap = wk.w_env.ae_rcap;
		if ((p = realloc(c->c_in, cap)) == NULL) {
			log_warn("realloc() failed");
			return -1;
		}
		c->c_in = p;
		c->c_incap = cap;
	}
	memcpy(c->c_in + c->c_inlen, buf, n);
	c->c_inlen += n;
	return 0;
}

/* Sends the worker's write buffer, and the padding of its last response;
 * what the socket does not take now is kept by the connection.  Returns
 * -1 when the connection is gone. */
static int
flush(struct conn *c)
{
	struct answer_env	*ae = &wk.w_env;
	struct iovec		 iov[2];
	struct msghdr		 msg;
	ssize_t			 n;
	size_t			 len = ae->ae_wlen;
	int			 flags = MSG_NOSIGNAL;

	ae->ae_wlen = 0;
	if (len == 0)
		return 0;
	/* The connection's last bytes: held back (MSG_MORE) until the close
	 * or shutdown that follows, so that the FIN rides in the same
	 * segment instead of a second one. */
	if (c->c_end != CE_OPEN)
		flags |= MSG_MORE;
	if (c->c_pad_left == 0)
		n = send(c->c_fd, ae->ae_wbuf, len, flags);
	else {
		iov[0].iov_base = ae->ae_wbuf;
		iov[0].iov_len = len;
		iov[1].iov_base = ae->ae_spaces;
		iov[1].iov_len = c->c_pad_left < HTTP_PAD_CHUNK ?
		    c->c_pad_left : HTTP_PAD_CHUNK;
		memset(&msg, 0, sizeof(msg));
		msg.msg_iov = iov;
		msg.msg_iovlen = 2;
		n = sendmsg(c->c_fd, &msg, flags);
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
	memcpy(c->c_out, ae->ae_wbuf + n, len - (size_t)n);
	c->c_outlen = len - (size_t)n;
	c->c_outoff = 0;
	return 0;
}

/* Sends what the connection holds.  Returns 1 when all is sent, 0 when
 * the socket is full, -1 on error.  Progress restarts the send timeout. */
static int
send_pending(struct conn *c)
{
	ssize_t	 n;
	size_t	 chunk;

	while (c->c_outoff < c->c_outlen || c->c_pad_left > 0) {
		if (c->c_outoff < c->c_outlen)
			n = send(c->c_fd, c->c_out + c->c_outoff,
			    c->c_outlen - c->c_outoff, MSG_NOSIGNAL);
		else {
			chunk = c->c_pad_left < HTTP_PAD_CHUNK ?
			    c->c_pad_left : HTTP_PAD_CHUNK;
			n = send(c->c_fd, wk.w_env.ae_spaces, chunk,
			    MSG_NOSIGNAL);
		}
		if (n == -1) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return 0;
			return -1;
		}
		if (c->c_outoff < c->c_outlen) {
			c->c_outoff += (size_t)n;
			if (c->c_outoff == c->c_outlen) {
				free(c->c_out);
				c->c_out = NULL;
				c->c_outlen = c->c_outoff = 0;
			}
		} else
			c->c_pad_left -= (size_t)n;
		if (c->c_state == CS_WRITING)
			conn_enter(c, CS_WRITING);
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

/*
 * Closing with unread input would make the kernel send RST, which can
 * destroy the response before the client reads it.  Send FIN instead and
 * discard what still arrives, for a bounded time (listen_linger_drain()).
 */
static void
linger_read(struct conn *c)
{
	if (listen_linger_drain(c->c_fd))
		conn_close(c);
}

static void
linger_start(struct conn *c)
{
	if (shutdown(c->c_fd, SHUT_WR) == -1) {
		conn_close(c);
		return;
	}
	conn_enter(c, CS_LINGERING);
	watch(c, EV_READ);
	linger_read(c);
}

/* Answers what the connection holds: input kept by an earlier run. */
static enum process_result
process_held(struct conn *c, unsigned *answered)
{
	enum process_result	 pr;
	size_t			 off;

	pr = process(c, c->c_in, c->c_inlen, &off, answered);
	(void)keep_input(c, c->c_in, c->c_inlen, off);	/* in place */
	return pr;
}

/*
 * The PROXY header at the start of buf[0..len): returns -1 when it is
 * missing or malformed, 0 while it is incomplete, or 1 with *off the
 * bytes it took.  TLV bytes not yet received are skipped by the stream.
 * The head's timeout keeps running from the connection's start.
 */
static int
proxy_step(struct conn *c, const char *buf, size_t len, size_t *off)
{
	struct proxy_header	 ph;
	ev_tstamp		 left;

	switch (proxy_parse(buf, len, &ph)) {
	case PROXY_NEED_MORE:
		return 0;
	case PROXY_ERROR:
		answer_proxy_refused(&wk.w_env, &c->c_who);
		return -1;
	}
	answer_peer_proxy(&wk.w_env, &c->c_who, &ph);
	c->c_stream.st_skip = ph.ph_skip;
	*off = ph.ph_consumed;
	left = c->c_node.tn_deadline - ev_now(wk.w_loop);
	conn_state_set(c, CS_READING);
	tq_add_in(&wk.w_queue[CS_READING], &c->c_node, left > 0 ? left : 0);
	return 1;
}

/* Reads once and answers; returns -1 when the connection is to close
 * without more output, 0 when the socket had nothing, 1 otherwise. */
static int
read_and_process(struct conn *c, enum process_result *pr, unsigned *answered)
{
	struct answer_env	*ae = &wk.w_env;
	size_t			 off = 0, used, len, room;
	const char		*buf;
	ssize_t			 n;
	int			 rc;

	room = ae->ae_rcap - c->c_inlen;
	n = recv(c->c_fd, ae->ae_rbuf, room, 0);
	if (n == -1) {
		if (errno == EAGAIN || errno == EINTR)
			return 0;
		if (errno != ECONNRESET)
			log_debug("recv() failed: %s", strerror(errno));
		return -1;
	}
	if (n == 0) {
		/* An incomplete request gets no response; part of a PROXY
		 * header is a refused one. */
		if (c->c_state == CS_PROXY && c->c_inlen > 0)
			answer_proxy_refused(ae, &c->c_who);
		return -1;
	}
	/* Bytes that begin a request start its clock. */
	if (c->c_inlen == 0 && !http_stream_busy(&c->c_stream))
		c->c_req_start = ev_now(wk.w_loop);
	if (c->c_inlen > 0) {
		if (append_input(c, ae->ae_rbuf, (size_t)n) == -1)
			return -1;
		buf = c->c_in;
		len = c->c_inlen;
	} else {
		/* The common case: whole requests straight from the read
		 * buffer. */
		buf = ae->ae_rbuf;
		len = (size_t)n;
	}
	*pr = PR_NEED_MORE;
	if (c->c_state == CS_PROXY &&
	    (rc = proxy_step(c, buf, len, &off)) <= 0) {
		if (rc == -1)
			return -1;
		return keep_input(c, buf, len, 0) == -1 ? -1 : 1;
	}
	*pr = process(c, buf + off, len - off, &used, answered);
	if (keep_input(c, buf, len, off + used) == -1)
		return -1;
	return 1;
}

/*
 * Drives a connection as far as it can go without blocking: sends what is
 * pending, answers held requests, then reads once when asked to.
 * `answered` counts requests completed before this call (a delayed one).
 */
static void
conn_run(struct conn *c, int readable, int answered_before)
{
	enum process_result	 pr = PR_FLUSH;	/* held input: try it */
	unsigned		 answered = (unsigned)answered_before;
	int			 rc;

	for (;;) {
		if (c->c_out != NULL || c->c_pad_left > 0) {
			if ((rc = send_pending(c)) == -1)
				goto close;
			if (rc == 0) {
				if (c->c_state != CS_WRITING)
					conn_enter(c, CS_WRITING);
				watch(c, EV_WRITE);
				return;
			}
		}
		if (c->c_state == CS_DELAYED) {
			watch(c, 0);
			return;
		}
		if (c->c_end == CE_LINGER || (c->c_end == CE_CLOSE &&
		    c->c_inlen > 0)) {
			linger_start(c);
			return;
		}
		if (c->c_end == CE_CLOSE)
			goto close;
		if (pr == PR_FLUSH && c->c_inlen > 0 &&
		    c->c_state != CS_PROXY) {
			pr = process_held(c, &answered);
			if (flush(c) == -1)
				goto close;
			continue;
		}
		if (!readable)
			break;
		readable = 0;
		if ((rc = read_and_process(c, &pr, &answered)) == -1)
			goto close;
		if (rc == 0)
			break;
		if (flush(c) == -1)
			goto close;
	}

	/*
	 * header_timeout runs from the start of each request, and
	 * keepalive_timeout from the end of the last response: a completed
	 * request restarts whichever applies now.  A request that arrives
	 * whole never waits in the header queue.
	 */
	watch(c, EV_READ);
	if (c->c_state == CS_PROXY)
		return;
	if (c->c_inlen > 0 || http_stream_busy(&c->c_stream)) {
		if (c->c_state != CS_READING || answered > 0)
			conn_enter(c, CS_READING);
	} else if (c->c_requests > 0 &&
	    (c->c_state != CS_IDLE || answered > 0)) {
		if (wk.w_draining)
			goto close;
		conn_enter(c, CS_IDLE);
	}
	return;
close:
	conn_close(c);
}

static void
conn_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct conn	*c = io->data;

	(void)loop;
	if (c->c_state == CS_LINGERING)
		linger_read(c);
	else
		conn_run(c, revents & EV_READ, 0);
}

void
conn_expire_close(struct tq_node *n, void *arg)
{
	(void)arg;
	conn_close((struct conn *)n);
}

void
conn_expire_proxy(struct tq_node *n, void *arg)
{
	struct conn	*c = (struct conn *)n;

	(void)arg;
	if (c->c_inlen > 0)
		answer_proxy_refused(&wk.w_env, &c->c_who);
	conn_close(c);
}

void
conn_expire_delay(struct tq_node *n, void *arg)
{
	struct conn	*c = (struct conn *)n;

	(void)arg;
	conn_state_set(c, CS_READING);	/* until conn_run() says otherwise */
	respond(c, &c->c_pending);
	if (flush(c) == -1) {
		conn_close(c);
		return;
	}
	/* Requests held behind the delayed one are answered there. */
	conn_run(c, 0, 1);
}

void
conn_new(int fd, const struct sockaddr_storage *ss, const struct listener *li)
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
	c->c_listener = li;
	c->c_state = CS_READING;
	stats_conn_move(-1, STATS_READING);
	stats_accepted();
	answer_peer_init(&c->c_who, ss);
	ev_io_init(&c->c_io, conn_cb, fd, EV_READ);
	c->c_io.data = c;
	wk.w_nconns++;
	conn_enter(c, li->li_kind == HD_LISTEN_PROXY ? CS_PROXY : CS_READING);
	/* The request usually arrives with the connection. */
	conn_run(c, 1, 0);
}
