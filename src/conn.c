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
#include "session.h"
#include "stats.h"
#include "tls.h"
#include "transport.h"
#include "tq.h"

#define CONN_CACHE	1024		/* freed connections kept for reuse */

struct conn {
	struct tq_node		 c_node;	/* first: tq callbacks cast back */
	ev_io			 c_io;
	struct transport	 c_tr;
	enum conn_state		 c_state;
	const struct listener	*c_listener;
	struct session		 c_ss;
	char			*c_out;		/* unsent output */
	size_t			 c_outlen;
	size_t			 c_outoff;
	struct conn		*c_free_next;
};

/* One per process. */
struct engine {
	struct ev_loop		*e_loop;
	const struct hd_config	*e_cf;
	const struct service	*e_sv;
	struct session_env	 e_se;
	struct acceptor		 e_ac;
	struct tq		 e_queue[CS_NSTATES];
	struct conn		*e_free;
	unsigned		 e_nfree;
};

static struct engine	 eg;

static void	 conn_run(struct conn *, int, int);

static void
conn_state_set(struct conn *c, enum conn_state s)
{
	session_count(c->c_state, s);
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
	session_count(c->c_state, -1);
	tq_remove(&c->c_node);
	ev_io_stop(eg.e_loop, &c->c_io);
	if (tr_close(&c->c_tr) == -1)
		log_warn("close() failed");
	session_free(&c->c_ss);
	free(c->c_out);
	if (eg.e_nfree < CONN_CACHE) {
		c->c_free_next = eg.e_free;
		eg.e_free = c;
		eg.e_nfree++;
	} else
		free(c);
	acceptor_release(&eg.e_ac);
	if (eg.e_se.se_draining && eg.e_ac.ac_nconns == 0)
		ev_break(eg.e_loop, EVBREAK_ALL);
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
	struct answer_env	*ae = &eg.e_se.se_ae;
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
	if (c->c_ss.s_pad_left > 0) {
		iov[1].iov_base = ae->ae_spaces;
		iov[1].iov_len = c->c_ss.s_pad_left < HTTP_PAD_CHUNK ?
		    c->c_ss.s_pad_left : HTTP_PAD_CHUNK;
		niov = 2;
	}
	n = tr_writev(&c->c_tr, iov, niov, session_last(&c->c_ss) ? TR_LAST :
	    0);
	if (n == TR_ERROR)
		return -1;
	if (n == TR_AGAIN)
		n = 0;
	if ((size_t)n >= len) {
		c->c_ss.s_pad_left -= (size_t)n - len;
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

	while (c->c_outoff < c->c_outlen || c->c_ss.s_pad_left > 0) {
		if (c->c_outoff < c->c_outlen)
			n = tr_write(&c->c_tr, c->c_out + c->c_outoff,
			    c->c_outlen - c->c_outoff, 0);
		else {
			chunk = c->c_ss.s_pad_left < HTTP_PAD_CHUNK ?
			    c->c_ss.s_pad_left : HTTP_PAD_CHUNK;
			n = tr_write(&c->c_tr, eg.e_se.se_ae.ae_spaces, chunk, 0);
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
			c->c_ss.s_pad_left -= (size_t)n;
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

/* The connection turns to TLS: the handshake comes with the next reads. */
static int
start_tls(struct conn *c)
{
	if (tls_transport(&c->c_tr, tls_current(), c->c_tr.tr_fd,
	    c->c_listener->li_tls) == -1)
		return -1;
	c->c_ss.s_who.ap_tls = tls_info(&c->c_tr);
	return 0;
}

/* The PROXY header ended: the head's timeout keeps running from the
 * connection's start. */
static void
conn_proxied(struct conn *c)
{
	ev_tstamp	 left;

	left = c->c_node.tn_deadline - ev_now(eg.e_loop);
	conn_state_set(c, CS_READING);
	tq_add_in(&eg.e_queue[CS_READING], &c->c_node, left > 0 ? left : 0);
}

/*
 * A PROXY header that TLS follows: only the header's bytes are taken
 * from the socket (transport_peek()), then the connection turns to TLS.
 * Returns as read_and_process().
 */
static int
proxy_then_tls(struct conn *c)
{
	struct answer_env	*ae = &eg.e_se.se_ae;
	struct session		*s = &c->c_ss;
	size_t			 held = s->s_inlen, used, len;
	const char		*buf;
	ssize_t			 n;
	int			 rc;

	n = transport_peek(&c->c_tr, ae->ae_rbuf, ae->ae_rcap - held);
	if (n == TR_AGAIN)
		return 0;
	if (n <= 0) {
		if (n == 0)
			session_eof(&eg.e_se, s);
		return -1;
	}
	if (held > 0) {
		if (session_hold(&eg.e_se, s, ae->ae_rbuf, (size_t)n,
		    ae->ae_rcap) == -1)
			return -1;
		buf = s->s_in;
		len = s->s_inlen;
	} else {
		buf = ae->ae_rbuf;
		len = (size_t)n;
	}
	if ((rc = session_proxy(&eg.e_se, s, buf, len, &used)) == -1)
		return -1;
	if (rc == 0)	/* all of it belongs to the header */
		return transport_take(&c->c_tr, (size_t)n) == -1 ||
		    (held == 0 && session_keep_input(s, buf, len, 0) == -1) ?
		    -1 : 1;
	conn_proxied(c);
	if (transport_take(&c->c_tr, used - held) == -1)
		return -1;
	session_free(s);
	return start_tls(c) == -1 ? -1 : 1;
}

/* Takes a delayed answer's turn: its timer runs from now. */
static void
conn_delay(struct conn *c)
{
	tq_add_fresh(&eg.e_queue[CS_DELAYED], &c->c_node,
	    session_wait(&c->c_ss));
	conn_state_set(c, CS_DELAYED);
}

/* Reads once and answers; returns -1 when the connection is to close
 * without more output, 0 when the socket had nothing, 1 otherwise. */
static int
read_and_process(struct conn *c, enum process_result *pr, unsigned *answered)
{
	struct answer_env	*ae = &eg.e_se.se_ae;
	ssize_t			 n;
	int			 rc;

	*pr = PR_NEED_MORE;
	if (c->c_state == CS_PROXY && c->c_listener->li_opts & HD_LO_TLS)
		return proxy_then_tls(c);
	n = tr_recv(&c->c_tr, ae->ae_rbuf, ae->ae_rcap - c->c_ss.s_inlen);
	if (n == TR_AGAIN)
		return 0;
	if (n == TR_ERROR) {
		if (errno != ECONNRESET)
			log_debug("recv() failed: %s", strerror(errno));
		return -1;
	}
	if (n == 0) {
		session_eof(&eg.e_se, &c->c_ss);
		return -1;
	}
	rc = session_input(&eg.e_se, &c->c_ss, ae->ae_rbuf, (size_t)n,
	    ae->ae_rcap, pr, answered);
	if (rc == SI_CLOSE)
		return -1;
	if (rc == SI_PROXIED)
		conn_proxied(c);
	if (*pr == PR_DELAYED)
		conn_delay(c);
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
		if (c->c_ss.s_end == SE_ABORT)
			goto close;
		if (c->c_out != NULL || c->c_ss.s_pad_left > 0) {
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
		if (c->c_ss.s_end == SE_RESET) {
			tr_reset(&c->c_tr);
			goto close;
		}
		if (c->c_state == CS_DELAYED) {
			watch(c, 0);
			return;
		}
		if (c->c_ss.s_end == SE_LINGER || (c->c_ss.s_end == SE_CLOSE &&
		    c->c_ss.s_inlen > 0)) {
			linger_start(c);
			return;
		}
		if (c->c_ss.s_end == SE_CLOSE)
			goto close;
		if (pr == PR_FLUSH && c->c_ss.s_inlen > 0 &&
		    c->c_state != CS_PROXY) {
			pr = session_process_held(&eg.e_se, &c->c_ss,
			    &answered);
			if (pr == PR_DELAYED)
				conn_delay(c);
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
	if (session_busy(&c->c_ss)) {
		if (c->c_state != CS_READING || answered > 0)
			conn_enter(c, CS_READING);
	} else if (c->c_ss.s_requests > 0 &&
	    (c->c_state != CS_IDLE || answered > 0)) {
		if (eg.e_se.se_draining)
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
		    c->c_ss.s_pad_left == 0), 0);
}

static void
conn_close_node(struct tq_node *n)
{
	conn_close((struct conn *)n);
}

static struct session *
conn_session(struct tq_node *n)
{
	return &((struct conn *)n)->c_ss;
}

/* The delay is over: the answer goes out, then what was held behind
 * it. */
static void
conn_delayed(struct tq_node *n)
{
	struct conn	*c = (struct conn *)n;

	int		 body_waits;

	conn_state_set(c, CS_READING);	/* until conn_run() says otherwise */
	if ((body_waits = session_delayed(&eg.e_se, &c->c_ss)))
		conn_delay(c);		/* the head went, its body waits */
	if (flush(c) == -1) {
		conn_close(c);
		return;
	}
	conn_run(c, 0, !body_waits);
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
	session_count(-1, CS_READING);
	session_init(&c->c_ss, ss, li);
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
 * service can spare. */
static int
conn_reclaim(void *arg, int close)
{
	struct tq_node	*n;

	(void)arg;
	if ((n = session_spare(eg.e_queue, eg.e_sv)) == NULL)
		return 0;
	if (close)
		conn_close((struct conn *)n);
	return 1;
}

void
engine_init(struct ev_loop *loop, const struct hd_config *cf,
    const struct hd_socket *socks, unsigned nsocks, const struct service *sv)
{
	static struct session_ops ops = {
		conn_close_node, conn_session, conn_delayed, &eg.e_se
	};

	eg.e_loop = loop;
	eg.e_cf = cf;
	eg.e_sv = sv;
	session_env_init(&eg.e_se, loop, sv->sv_decide, cf);
	session_queues_init(eg.e_queue, loop, cf, &ops);
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
	if (eg.e_se.se_draining)
		return;
	log_debug("draining %u connection%s", eg.e_ac.ac_nconns,
	    plural(eg.e_ac.ac_nconns));
	eg.e_se.se_draining = 1;
	acceptor_close(&eg.e_ac);
	if (eg.e_ac.ac_nconns == 0) {
		ev_break(eg.e_loop, EVBREAK_ALL);
		return;
	}
	session_queues_drain(eg.e_queue, eg.e_sv);
}
