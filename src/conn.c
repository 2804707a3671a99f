/*
 * The connection engine (see conn.h): accepting, reading, answering
 * through the service, writing, timeouts, reclaiming and closing.
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
#include "acceptor.h"
#include "answer.h"
#include "conn.h"
#include "stats.h"
#include "tls.h"
#include "transport.h"
#include "tq.h"

#define CONN_CACHE	1024		/* freed connections kept for reuse */

/* How the connection ends once its output is sent. */
enum conn_end {
	CE_OPEN,	/* it stays open for the next request */
	CE_CLOSE,	/* the last answer said Connection: close */
	CE_LINGER,	/* close, but unread input may remain: linger first */
	CE_ABORT,	/* close now: the answer could not be written */
	CE_RESET	/* ?reset=1: close with RST, nothing more sent */
};

struct conn {
	struct tq_node		 c_node;	/* first: tq callbacks cast back */
	ev_io			 c_io;
	struct transport	 c_tr;
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
	int			 c_body_wait;	/* ... its head is sent */
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

/* One per process. */
struct engine {
	struct ev_loop		*e_loop;
	const struct hd_config	*e_cf;
	const struct service	*e_sv;
	struct answer_env	 e_env;
	struct acceptor		 e_ac;
	struct tq		 e_queue[CS_NSTATES];
	int			 e_draining;
	struct conn		*e_free;
	unsigned		 e_nfree;
};

static struct engine	 eg;

static void	 conn_run(struct conn *, int, int);

static int64_t
now_sec(void)
{
	return (int64_t)ev_now(eg.e_loop);
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
	tq_add(&eg.e_queue[s], &c->c_node);
}

/* The one teardown, from any state. */
static void
conn_close(struct conn *c)
{
	stats_conn_move(state_figure[c->c_state], -1);
	tq_remove(&c->c_node);
	ev_io_stop(eg.e_loop, &c->c_io);
	if (tr_close(&c->c_tr) == -1)
		log_warn("close() failed");
	free(c->c_in);
	free(c->c_out);
	if (eg.e_nfree < CONN_CACHE) {
		c->c_free_next = eg.e_free;
		eg.e_free = c;
		eg.e_nfree++;
	} else
		free(c);
	acceptor_release(&eg.e_ac);
	if (eg.e_draining && eg.e_ac.ac_nconns == 0)
		ev_break(eg.e_loop, EVBREAK_ALL);
}

/* Writes one answer, or a part of it, into the write buffer. */
static void
respond_part(struct conn *c, const struct answer *an, enum answer_part part)
{
	int	 rc;

	rc = answer_write_part(&eg.e_env, an, eg.e_draining, &c->c_who,
	    now_sec(), ev_now(eg.e_loop), part);
	if (rc == -1)
		c->c_end = CE_ABORT;
	else if (rc == 1)
		c->c_end = an->an_error ? CE_LINGER : CE_CLOSE;
	/* The padding follows from the shared buffer of spaces: a client
	 * that reads slowly never makes the worker copy it. */
	c->c_pad_left = part == ANSWER_HEAD ? 0 : answer_padding_sent(an);
}

/*
 * Writes an answer whose delay (if any) is over.  ?delay_body=: only the
 * head now, and the body when the connection's CS_DELAYED timer fires
 * (c_body_wait); returns 1 then.  ?reset=: nothing, the connection is
 * reset once what precedes is flushed.
 */
static int
respond(struct conn *c, const struct answer *an)
{
	if (an->an_fault & FAULT_RESET) {
		answer_faults_count(an);
		c->c_end = CE_RESET;
		return 0;
	}
	if ((an->an_fault & FAULT_DELAY_BODY) && !an->an_head) {
		respond_part(c, an, ANSWER_HEAD);
		c->c_pending = *an;
		c->c_body_wait = 1;
		tq_add_in(&eg.e_queue[CS_DELAYED], &c->c_node,
		    an->an_delay_body / 1000.);
		conn_state_set(c, CS_DELAYED);
		return 1;
	}
	answer_faults_count(an);
	respond_part(c, an, ANSWER_ALL);
	return 0;
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
		if (answer_batch_full(&eg.e_env) || c->c_pad_left > 0)
			return PR_FLUSH;
		if (*off == len)
			return PR_NEED_MORE;
		rc = http_stream_next(&c->c_stream, buf + *off, len - *off,
		    &eg.e_env.ae_limits, &req, &used);
		*off += used;
		if (rc == HTTP_NEED_MORE)
			return PR_NEED_MORE;
		if (rc == HTTP_DONE)
			c->c_who.ap_requests++;
		eg.e_sv->sv_decide(&eg.e_env, rc, &req, &c->c_who, now_sec(),
		    &an);
		an.an_start = c->c_req_start;
		if (rc == HTTP_DONE) {
			c->c_requests++;
			(*answered)++;
		}
		if (an.an_delay > 0) {
			c->c_pending = an;
			tq_add_in(&eg.e_queue[CS_DELAYED], &c->c_node,
			    an.an_delay / 1000.);
			conn_state_set(c, CS_DELAYED);
			return PR_DELAYED;
		}
		if (respond(c, &an))
			return PR_DELAYED;
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
		if (cap > eg.e_env.ae_rcap)
			cap = eg.e_env.ae_rcap;
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

/* Keeps len bytes of output after what the connection already holds;
 * padding still due was already counted before them. */
static int
keep_output(struct conn *c, const char *buf, size_t len)
{
	size_t	 held = c->c_outlen - c->c_outoff;
	char	*p;

	if ((p = malloc(held + len)) == NULL) {
		log_warn("malloc() failed");
		return -1;
	}
	if (held > 0)
		memcpy(p, c->c_out + c->c_outoff, held);
	memcpy(p + held, buf, len);
	free(c->c_out);
	c->c_out = p;
	c->c_outlen = held + len;
	c->c_outoff = 0;
	return 0;
}

/*
 * Sends the write buffer, and the padding of its last response; what the
 * transport does not take now is kept by the connection.  Output held
 * from before (a delayed answer written while earlier ones still wait
 * for the client) goes first: the new bytes queue behind it.  Returns -1
 * when the connection is gone.
 */
static int
flush(struct conn *c)
{
	struct answer_env	*ae = &eg.e_env;
	struct iovec		 iov[2];
	ssize_t			 n;
	size_t			 len = ae->ae_wlen;
	int			 niov = 1;

	ae->ae_wlen = 0;
	if (len == 0)
		return 0;
	if (c->c_out != NULL)
		return keep_output(c, ae->ae_wbuf, len);
	iov[0].iov_base = ae->ae_wbuf;
	iov[0].iov_len = len;
	if (c->c_pad_left > 0) {
		iov[1].iov_base = ae->ae_spaces;
		iov[1].iov_len = c->c_pad_left < HTTP_PAD_CHUNK ?
		    c->c_pad_left : HTTP_PAD_CHUNK;
		niov = 2;
	}
	n = tr_writev(&c->c_tr, iov, niov, c->c_end != CE_OPEN ? TR_LAST : 0);
	if (n == TR_ERROR)
		return -1;
	if (n == TR_AGAIN)
		n = 0;
	if ((size_t)n >= len) {
		c->c_pad_left -= (size_t)n - len;
		return 0;
	}
	return keep_output(c, ae->ae_wbuf + n, len - (size_t)n);
}

/* Sends what the connection holds.  Returns 1 when all is sent, 0 when
 * the transport is full, -1 on error.  Progress restarts the send
 * timeout. */
static int
send_pending(struct conn *c)
{
	ssize_t	 n;
	size_t	 chunk;

	while (c->c_outoff < c->c_outlen || c->c_pad_left > 0) {
		if (c->c_outoff < c->c_outlen)
			n = tr_write(&c->c_tr, c->c_out + c->c_outoff,
			    c->c_outlen - c->c_outoff, 0);
		else {
			chunk = c->c_pad_left < HTTP_PAD_CHUNK ?
			    c->c_pad_left : HTTP_PAD_CHUNK;
			n = tr_write(&c->c_tr, eg.e_env.ae_spaces, chunk, 0);
		}
		if (n == TR_AGAIN)
			return 0;
		if (n == TR_ERROR)
			return -1;
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
	ev_io_stop(eg.e_loop, &c->c_io);
	if (events == 0)
		return;
	ev_io_set(&c->c_io, c->c_tr.tr_fd, events);
	ev_io_start(eg.e_loop, &c->c_io);
}

/*
 * Closing with unread input would make the kernel send RST, which can
 * destroy the response before the client reads it.  Send FIN instead and
 * discard what still arrives, for a bounded time (transport_discard()).
 */
static void
linger_read(struct conn *c)
{
	if (transport_discard(&c->c_tr) != TR_AGAIN)
		conn_close(c);
}

static void
linger_start(struct conn *c)
{
	if (tr_shutdown(&c->c_tr) == -1) {
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
 * The PROXY header at the start of buf[0..len) (answer_proxy()); the
 * head's timeout keeps running from the connection's start.
 */
static int
proxy_step(struct conn *c, const char *buf, size_t len, size_t *off)
{
	ev_tstamp	 left;
	int		 rc;

	if ((rc = answer_proxy(&eg.e_env, &c->c_who, buf, len, off)) != 1)
		return rc;
	left = c->c_node.tn_deadline - ev_now(eg.e_loop);
	conn_state_set(c, CS_READING);
	tq_add_in(&eg.e_queue[CS_READING], &c->c_node, left > 0 ? left : 0);
	return 1;
}

/* The connection turns to TLS: the handshake comes with the next reads. */
static int
start_tls(struct conn *c)
{
	if (tls_transport(&c->c_tr, tls_current(), c->c_tr.tr_fd,
	    c->c_listener->li_tls) == -1)
		return -1;
	c->c_who.ap_tls = tls_info(&c->c_tr);
	return 0;
}

/*
 * A PROXY header that TLS follows: only the header's bytes are taken
 * from the socket (transport_peek()), then the connection turns to TLS.
 * Returns as read_and_process().
 */
static int
proxy_then_tls(struct conn *c)
{
	struct answer_env	*ae = &eg.e_env;
	size_t			 held = c->c_inlen, used, len;
	const char		*buf;
	ssize_t			 n;
	int			 rc;

	n = transport_peek(&c->c_tr, ae->ae_rbuf, ae->ae_rcap - held);
	if (n == TR_AGAIN)
		return 0;
	if (n <= 0) {
		if (n == 0 && held > 0)
			answer_proxy_refused(ae, &c->c_who);
		return -1;
	}
	if (held > 0) {
		if (append_input(c, ae->ae_rbuf, (size_t)n) == -1)
			return -1;
		buf = c->c_in;
		len = c->c_inlen;
	} else {
		buf = ae->ae_rbuf;
		len = (size_t)n;
	}
	if ((rc = proxy_step(c, buf, len, &used)) == -1)
		return -1;
	if (rc == 0)	/* all of it belongs to the header */
		return transport_take(&c->c_tr, (size_t)n) == -1 ||
		    (held == 0 && keep_input(c, buf, len, 0) == -1) ? -1 : 1;
	if (transport_take(&c->c_tr, used - held) == -1)
		return -1;
	free(c->c_in);
	c->c_in = NULL;
	c->c_inlen = c->c_incap = 0;
	return start_tls(c) == -1 ? -1 : 1;
}

/* Reads once and answers; returns -1 when the connection is to close
 * without more output, 0 when the socket had nothing, 1 otherwise. */
static int
read_and_process(struct conn *c, enum process_result *pr, unsigned *answered)
{
	struct answer_env	*ae = &eg.e_env;
	size_t			 off = 0, used, len, room;
	const char		*buf;
	ssize_t			 n;
	int			 rc;

	*pr = PR_NEED_MORE;
	if (c->c_state == CS_PROXY && c->c_listener->li_opts & HD_LO_TLS)
		return proxy_then_tls(c);
	room = ae->ae_rcap - c->c_inlen;
	n = tr_recv(&c->c_tr, ae->ae_rbuf, room);
	if (n == TR_AGAIN)
		return 0;
	if (n == TR_ERROR) {
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
		c->c_req_start = ev_now(eg.e_loop);
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
	int			 rc, want = EV_READ;

	for (;;) {
		if (c->c_end == CE_ABORT)
			goto close;

		if (c->c_out != NULL || c->c_pad_left > 0) {
			if ((rc = send_pending(c)) == -1)
				goto close;
			if (rc == 0) {
				/* A delayed answer keeps its state and its
				 * timer: what precedes it drains meanwhile. */
				if (c->c_state != CS_WRITING &&
				    c->c_state != CS_DELAYED)
					conn_enter(c, CS_WRITING);
				watch(c, c->c_tr.tr_want == TR_WANT_READ ?
				    EV_READ : EV_WRITE);
				return;
			}
		}
		if (c->c_end == CE_RESET) {
			tr_reset(&c->c_tr);
			goto close;
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
		if ((rc = read_and_process(c, &pr, &answered)) == -1)
			goto close;
		/* No readiness event comes for what TLS holds already. */
		readable = tr_pending(&c->c_tr);
		if (rc == 0) {
			/* A TLS read may have to write first. */
			if (c->c_tr.tr_want == TR_WANT_WRITE)
				want = EV_WRITE;
			break;
		}
		if (flush(c) == -1)
			goto close;
	}

	/*
	 * header_timeout runs from the start of each request, and
	 * keepalive_timeout from the end of the last response: a completed
	 * request restarts whichever applies now.  A request that arrives
	 * whole never waits in the header queue.
	 */
	watch(c, want);
	if (c->c_state == CS_PROXY)
		return;
	if (c->c_inlen > 0 || http_stream_busy(&c->c_stream)) {
		if (c->c_state != CS_READING || answered > 0)
			conn_enter(c, CS_READING);
	} else if (c->c_requests > 0 &&
	    (c->c_state != CS_IDLE || answered > 0)) {
		if (eg.e_draining)
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
	else	/* writable with nothing to send: a TLS read waited for it */
		conn_run(c, (revents & EV_READ) || (c->c_out == NULL &&
		    c->c_pad_left == 0), 0);
}

static void
conn_expire_close(struct tq_node *n, void *arg)
{
	(void)arg;
	conn_close((struct conn *)n);
}

static void
conn_expire_proxy(struct tq_node *n, void *arg)
{
	struct conn	*c = (struct conn *)n;

	(void)arg;
	if (c->c_inlen > 0)
		answer_proxy_refused(&eg.e_env, &c->c_who);
	conn_close(c);
}

static void
conn_expire_delay(struct tq_node *n, void *arg)
{
	struct conn	*c = (struct conn *)n;

	(void)arg;
	conn_state_set(c, CS_READING);	/* until conn_run() says otherwise */
	if (c->c_body_wait) {
		c->c_body_wait = 0;
		answer_faults_count(&c->c_pending);
		respond_part(c, &c->c_pending, ANSWER_BODY);
	} else if (respond(c, &c->c_pending)) {
		if (flush(c) == -1)
			conn_close(c);
		else
			conn_run(c, 0, 0);
		return;
	}
	if (flush(c) == -1) {
		conn_close(c);
		return;
	}
	/* Requests held behind the delayed one are answered there. */
	conn_run(c, 0, 1);
}

/* A banner service says its line to a fresh connection and closes it: a
 * few bytes that a new socket's buffer always takes. */
static int
banner(struct conn *c, const struct listener *li)
{
	char	 line[64];
	size_t	 n;

	if ((n = eg.e_sv->sv_banner(li, line, sizeof(line))) == 0)
		return 0;
	if (tr_write(&c->c_tr, line, n, TR_LAST) != (ssize_t)n)
		log_debug("the banner was not sent whole");
	conn_close(c);
	return 1;
}

static void
conn_new(void *arg, int fd, const struct sockaddr_storage *ss,
    const struct listener *li)
{
	struct conn	*c;

	(void)arg;
	if ((c = eg.e_free) != NULL) {
		eg.e_free = c->c_free_next;
		eg.e_nfree--;
	} else if ((c = malloc(sizeof(*c))) == NULL) {
		log_warn("malloc() failed");
		if (close(fd) == -1)
			log_warn("close() failed");
		acceptor_release(&eg.e_ac);
		return;
	}
	memset(c, 0, sizeof(*c));
	transport_plain(&c->c_tr, fd);
	c->c_listener = li;
	c->c_state = CS_READING;
	stats_conn_move(-1, STATS_READING);
	answer_peer_init(&c->c_who, ss);
	c->c_who.ap_listener = li;
	ev_io_init(&c->c_io, conn_cb, fd, EV_READ);
	c->c_io.data = c;
	conn_enter(c, li->li_opts & HD_LO_PROXY ? CS_PROXY : CS_READING);
	if (eg.e_sv->sv_banner != NULL && banner(c, li))
		return;
	if (li->li_opts == HD_LO_TLS && start_tls(c) == -1) {
		conn_close(c);
		return;
	}
	/* The request usually arrives with the connection. */
	conn_run(c, 1, 0);
}

/* At the connection limit: closes the oldest connection in a state the
 * service can spare (idle keep-alive ones, as nginx does). */
static int
conn_reclaim(void *arg, int close)
{
	struct tq_node	*n;
	unsigned	 s;

	(void)arg;
	for (s = 0; s < CS_NSTATES; s++) {
		if (!(eg.e_sv->sv_reclaim & CS_BIT(s)) ||
		    (n = eg.e_queue[s].tq_head) == NULL)
			continue;
		if (close)
			conn_close((struct conn *)n);
		return 1;
	}
	return 0;
}

void
engine_init(struct ev_loop *loop, const struct hd_config *cf,
    const struct hd_socket *socks, unsigned nsocks, const struct service *sv)
{
	static const tq_expire_cb expire[CS_NSTATES] = {
		[CS_PROXY] = conn_expire_proxy,
		[CS_READING] = conn_expire_close,
		[CS_DELAYED] = conn_expire_delay,
		[CS_WRITING] = conn_expire_close,
		[CS_IDLE] = conn_expire_close,
		[CS_LINGERING] = conn_expire_close,
	};
	ev_tstamp	 timeout[CS_NSTATES];
	unsigned	 s;

	eg.e_loop = loop;
	eg.e_cf = cf;
	eg.e_sv = sv;
	if (answer_env_init(&eg.e_env, cf) == -1)
		exit(HD_EXIT_FAILURE);
	/* A client has header_timeout to send a PROXY header and a request
	 * head, and to take each part of a response. */
	timeout[CS_PROXY] = cf->cf_header_timeout / 1000.;
	timeout[CS_READING] = cf->cf_header_timeout / 1000.;
	timeout[CS_DELAYED] = cf->cf_delay / 1000.;
	timeout[CS_WRITING] = cf->cf_header_timeout / 1000.;
	timeout[CS_IDLE] = cf->cf_keepalive_timeout / 1000.;
	timeout[CS_LINGERING] = ANSWER_LINGER_TIME;
	for (s = 0; s < CS_NSTATES; s++)
		tq_init(&eg.e_queue[s], loop, timeout[s], expire[s], NULL);
	acceptor_init(&eg.e_ac, loop, socks, nsocks, sv->sv_max_conns > 0 ?
	    sv->sv_max_conns : cf->cf_max_connections, conn_new,
	    sv->sv_reclaim != 0 ? conn_reclaim : NULL, NULL);
}

/*
 * A stop: no new connection; what is in flight finishes.  A busy
 * keep-alive client is idle only between a response and its next
 * request: closing at once would race with that request.  Idle
 * connections get a moment to send one (answered with Connection:
 * close), then are closed.
 */
void
engine_drain(void)
{
	unsigned	 s;

	if (eg.e_draining)
		return;
	log_debug("draining %u connection%s", eg.e_ac.ac_nconns,
	    plural(eg.e_ac.ac_nconns));
	eg.e_draining = 1;
	acceptor_close(&eg.e_ac);
	if (eg.e_ac.ac_nconns == 0) {
		ev_break(eg.e_loop, EVBREAK_ALL);
		return;
	}
	for (s = 0; s < CS_NSTATES; s++)
		if (eg.e_sv->sv_drain & CS_BIT(s))
			tq_shorten(&eg.e_queue[s], ANSWER_DRAIN_GRACE);
}
