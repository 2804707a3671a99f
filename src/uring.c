/*
 * The completion engine of the uring workers (see uring.h): accepting,
 * receiving, answering through session.c, sending, timeouts, reclaiming
 * and closing, on the ring of uring_ring.c.
 *
 * Each listener has accepts armed (uring_accept.c); each connection a
 * multishot receive that takes buffers from the ring's provided buffers.
 * Input is parsed in the buffer it arrived in; what must outlive the
 * completion (an incomplete request, input that waits behind answers the
 * client has not taken) is copied into the session, and the buffer goes
 * back at once.  Answers are built in the worker's write buffer, copied
 * to the connection's queue and sent one send at a time per connection:
 * while the kernel sends one buffer, answers fill the other.
 *
 * A connection's memory lives while the kernel may still complete an
 * operation that names it (uc_ops): a closed connection is freed by the
 * last completion.  States, timeouts and figures are those of conn.c
 * (session.h): the same timeout queues, one per state.
 */
#include <sys/socket.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>
#include <liburing.h>

#include "hellod.h"
#include "answer.h"
#include "conn.h"
#include "session.h"
#include "stats.h"
#include "tq.h"
#include "uring.h"
#include "uring_accept.h"
#include "uring_ring.h"

#define UR_CONN_CACHE	1024		/* freed connections kept for reuse */
#define UR_OUT_KEEP	2048		/* output buffer a cached one keeps */

struct uconn {
	struct tq_node		 uc_node;	/* first: tq callbacks cast */
	struct session		 uc_ss;
	enum conn_state		 uc_state;
	int			 uc_fd;
	unsigned		 uc_ops;	/* operations in the kernel */
	uint8_t			 uc_closed;
	uint8_t			 uc_reading;	/* a receive is wanted */
	uint8_t			 uc_nrecv;	/* receives in the kernel */
	uint8_t			 uc_eof;	/* the client sent FIN */
	uint8_t			 uc_held;	/* input waits: process it */
	unsigned		 uc_answered;	/* since the state was set */
	char			*uc_out;	/* queued, not yet sent */
	size_t			 uc_outlen;
	size_t			 uc_outcap;
	char			*uc_send;	/* in the kernel */
	size_t			 uc_sendlen;
	size_t			 uc_sendoff;
	size_t			 uc_sendcap;
	uint8_t			 uc_sending;	/* 1: uc_send, 2: padding */
	struct uconn		*uc_free_next;
};

struct ur_engine {
	struct ev_loop		*ur_loop;
	const struct hd_config	*ur_cf;
	const struct service	*ur_sv;
	struct session_env	 ur_se;
	size_t			 ur_held_max;
	struct tq		 ur_queue[CS_NSTATES];
	struct uconn		*ur_free;
	unsigned		 ur_nfree;
	unsigned		 ur_live;	/* not yet back in ur_free: some
						   may await their last completion */
};

static struct ur_engine	 ur;

static void	 uc_run(struct uconn *);

static void
uc_state_set(struct uconn *uc, enum conn_state s)
{
	session_count(uc->uc_state, s);
	uc->uc_state = s;
	uc->uc_answered = 0;
}

static void
uc_enter(struct uconn *uc, enum conn_state s)
{
	uc_state_set(uc, s);
	tq_add(&ur.ur_queue[s], &uc->uc_node);
}

/* Stopped and idle: the loop ends once no accept can still complete and
 * every closed connection has had its last completion. */
static void
check_done(void)
{
	if (ur.ur_se.se_draining && uaccept_open() == 0 && !uaccept_armed() &&
	    ur.ur_live == 0)
		ev_break(ur.ur_loop, EVBREAK_ALL);
}

static void
uc_free(struct uconn *uc)
{
	ur.ur_live--;
	/* A cached connection keeps output buffers of the usual size only:
	 * a burst of pipelined answers does not stay in the cache. */
	if (uc->uc_outcap > UR_OUT_KEEP || ur.ur_nfree >= UR_CONN_CACHE) {
		free(uc->uc_out);
		uc->uc_out = NULL;
		uc->uc_outcap = 0;
	}
	if (uc->uc_sendcap > UR_OUT_KEEP || ur.ur_nfree >= UR_CONN_CACHE) {
		free(uc->uc_send);
		uc->uc_send = NULL;
		uc->uc_sendcap = 0;
	}
	if (ur.ur_nfree >= UR_CONN_CACHE) {
		free(uc);
		return;
	}
	uc->uc_free_next = ur.ur_free;
	ur.ur_free = uc;
	ur.ur_nfree++;
}

/* Cancels what uc has in the kernel under tag; what follows (the
 * close) waits for the cancel. */
static void
uc_cancel(struct uconn *uc, enum ring_tag tag)
{
	struct io_uring_sqe	*sqe;

	sqe = ring_sqe(NULL, RT_NONE);
	io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)uc | tag,
	    IORING_ASYNC_CANCEL_ALL);
	sqe->flags |= IOSQE_IO_HARDLINK | IOSQE_CQE_SKIP_SUCCESS;
}

/*
 * The one teardown, from any state.  What the kernel still holds for
 * the connection is cancelled, and the descriptor closed after it; the
 * memory waits for the last completion.
 */
static void
uc_close(struct uconn *uc)
{
	struct io_uring_sqe	*sqe;

	if (uc->uc_closed)
		return;
	uc->uc_closed = 1;
	session_count(uc->uc_state, -1);
	tq_remove(&uc->uc_node);
	session_free(&uc->uc_ss);
	/* By user_data, which the kernel finds in a hash, not by
	 * descriptor, which makes it look at every request. */
	if (uc->uc_nrecv > 0)
		uc_cancel(uc, RT_RECV);
	if (uc->uc_sending)
		uc_cancel(uc, RT_SEND);
	sqe = ring_sqe(NULL, RT_NONE);
	io_uring_prep_close(sqe, uc->uc_fd);
	sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
	uc->uc_fd = -1;
	if (uc->uc_ops == 0)
		uc_free(uc);
	uaccept_release();
	check_done();
}

/* A completion for uc ended an operation: a closed one may go. */
static void
uc_op_done(struct uconn *uc)
{
	if (--uc->uc_ops == 0 && uc->uc_closed) {
		uc_free(uc);
		check_done();
	}
}

static void	 recv_arm(struct uconn *);

/* Reading is wanted (again): a receive is armed unless one still is. */
static void
uc_read(struct uconn *uc)
{
	uc->uc_reading = 1;
	if (uc->uc_nrecv == 0)
		recv_arm(uc);
}

static void
recv_arm(struct uconn *uc)
{
	struct io_uring_sqe	*sqe;

	sqe = ring_sqe(uc, RT_RECV);
	/* Until a first request is read, one receive at a time: with a
	 * connection per request that is the only one, and none stays
	 * armed to be cancelled at the close.  Then a multishot receive. */
	if (uc->uc_ss.s_requests == 0)
		io_uring_prep_recv(sqe, uc->uc_fd, NULL, 0, 0);
	else
		io_uring_prep_recv_multishot(sqe, uc->uc_fd, NULL, 0, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = RING_BGID;
	uc->uc_nrecv++;
	uc->uc_ops++;
}

/* Output is queued or in the kernel: the connection waits for it. */
static int
uc_output(const struct uconn *uc)
{
	return uc->uc_sending || uc->uc_outlen > 0 ||
	    uc->uc_ss.s_pad_left > 0;
}

/* Queues the write buffer's responses behind what is queued already. */
static int
uc_flush(struct uconn *uc)
{
	struct answer_env	*ae = &ur.ur_se.se_ae;
	size_t			 cap;
	char			*p;

	if (ae->ae_wlen == 0)
		return 0;
	if (uc->uc_outlen + ae->ae_wlen > uc->uc_outcap) {
		cap = uc->uc_outcap < 512 ? 512 : uc->uc_outcap;
		while (cap < uc->uc_outlen + ae->ae_wlen)
			cap *= 2;
		if ((p = realloc(uc->uc_out, cap)) == NULL) {
			log_warn("realloc() failed");
			ae->ae_wlen = 0;
			return -1;
		}
		uc->uc_out = p;
		uc->uc_outcap = cap;
	}
	memcpy(uc->uc_out + uc->uc_outlen, ae->ae_wbuf, ae->ae_wlen);
	uc->uc_outlen += ae->ae_wlen;
	ae->ae_wlen = 0;
	return 0;
}

/*
 * Puts the next output in the kernel, one send at a time per connection:
 * what is queued (the buffers swap: the kernel reads one while answers
 * fill the other), then the padding of the last response.
 */
static void
send_next(struct uconn *uc)
{
	struct io_uring_sqe	*sqe;
	const void		*p;
	size_t			 len, tcap;
	char			*t;
	int			 flags = MSG_NOSIGNAL;

	if (uc->uc_sending)
		return;
	if (uc->uc_outlen > 0) {
		t = uc->uc_send;
		tcap = uc->uc_sendcap;
		uc->uc_send = uc->uc_out;
		uc->uc_sendcap = uc->uc_outcap;
		uc->uc_sendlen = uc->uc_outlen;
		uc->uc_sendoff = 0;
		uc->uc_out = t;
		uc->uc_outcap = tcap;
		uc->uc_outlen = 0;
		uc->uc_sending = 1;
		p = uc->uc_send;
		len = uc->uc_sendlen;
	} else if (uc->uc_ss.s_pad_left > 0) {
		uc->uc_sending = 2;
		p = ur.ur_se.se_ae.ae_spaces;
		len = uc->uc_ss.s_pad_left < HTTP_PAD_CHUNK ?
		    uc->uc_ss.s_pad_left : HTTP_PAD_CHUNK;
	} else
		return;
	/* The connection's last bytes wait (MSG_MORE) for the close or
	 * shutdown that follows, so that the FIN rides in their segment. */
	if (session_last(&uc->uc_ss) && uc->uc_outlen == 0 &&
	    (uc->uc_sending == 2 || uc->uc_ss.s_pad_left == 0))
		flags |= MSG_MORE;
	sqe = ring_sqe(uc, RT_SEND);
	io_uring_prep_send(sqe, uc->uc_fd, p, len, flags);
	uc->uc_ops++;
}

/* A send completed: the rest of a short one goes again. */
static void
on_send(struct uconn *uc, int res)
{
	struct io_uring_sqe	*sqe;
	int			 what = uc->uc_sending;

	uc->uc_sending = 0;
	uc_op_done(uc);
	if (uc->uc_closed)
		return;
	if (res < 0) {
		if (res != -ECONNRESET && res != -EPIPE)
			log_debug("send() failed: %s", strerror(-res));
		uc_close(uc);
		return;
	}
	if (uc->uc_state == CS_WRITING)
		uc_enter(uc, CS_WRITING);	/* progress restarts it */
	if (what == 2)
		uc->uc_ss.s_pad_left -= (size_t)res;
	else if ((uc->uc_sendoff += (size_t)res) < uc->uc_sendlen) {
		sqe = ring_sqe(uc, RT_SEND);
		io_uring_prep_send(sqe, uc->uc_fd,
		    uc->uc_send + uc->uc_sendoff,
		    uc->uc_sendlen - uc->uc_sendoff, MSG_NOSIGNAL);
		uc->uc_sending = 1;
		uc->uc_ops++;
		return;
	}
	uc_run(uc);
}

static void
uc_delay(struct uconn *uc)
{
	tq_add_fresh(&ur.ur_queue[CS_DELAYED], &uc->uc_node,
	    session_wait(&uc->uc_ss));
	uc_state_set(uc, CS_DELAYED);
}

/*
 * Closing with unread input would make the kernel send RST, which can
 * destroy the response before the client reads it: send FIN, and discard
 * what still arrives until the client's FIN or ANSWER_LINGER_TIME.
 */
static void
uc_linger(struct uconn *uc)
{
	if (uc->uc_eof || shutdown(uc->uc_fd, SHUT_WR) == -1) {
		uc_close(uc);
		return;
	}
	uc_enter(uc, CS_LINGERING);
	uc_read(uc);
}

/* ?reset=1, once what precedes is sent: the close that follows sends
 * RST (SO_LINGER {1, 0}), as tr_reset() makes conn.c's. */
static void
uc_reset(struct uconn *uc)
{
	static const struct linger	 l = { 1, 0 };

	if (setsockopt(uc->uc_fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l)) == -1)
		log_warn("setsockopt(SO_LINGER) failed");
	uc_close(uc);
}

/*
 * Whether input that arrives now is answered now.  Answers are built
 * while earlier ones are in the kernel (two buffers: one sent, one
 * filled), but not past a batch, behind padding still due, behind a
 * delayed answer, or ahead of input held before.
 */
static int
uc_can_answer(const struct uconn *uc)
{
	return uc->uc_ss.s_end == SE_OPEN && uc->uc_ss.s_pad_left == 0 &&
	    uc->uc_outlen <= ANSWER_WRITE_BATCH && uc->uc_state != CS_DELAYED &&
	    !uc->uc_ss.s_proxy;
}

/*
 * Drives a connection as far as it goes without waiting: answers held
 * input, queues output, and once all output is sent, ends the
 * connection or sets the state it waits in.
 */
static void
uc_run(struct uconn *uc)
{
	struct session		*s = &uc->uc_ss;
	enum process_result	 pr;

	for (;;) {
		if (s->s_end == SE_ABORT)
			goto close;
		if (uc->uc_held && s->s_inlen > 0 && uc_can_answer(uc)) {
			pr = session_process_held(&ur.ur_se, s,
			    &uc->uc_answered);
			uc->uc_held = pr == PR_FLUSH || pr == PR_DELAYED;
			if (pr == PR_DELAYED)
				uc_delay(uc);
			if (uc_flush(uc) == -1)
				goto close;
			if (!uc->uc_reading && !uc->uc_eof &&
			    s->s_inlen <= ur.ur_se.se_ae.ae_rcap)
				uc_read(uc);
			continue;
		}
		if (uc_output(uc)) {
			send_next(uc);
			/* A delayed answer keeps its state and its timer:
			 * what precedes it drains meanwhile. */
			if (uc->uc_state != CS_WRITING &&
			    uc->uc_state != CS_DELAYED)
				uc_enter(uc, CS_WRITING);
			return;
		}
		if (s->s_end == SE_RESET) {
			uc_reset(uc);
			return;
		}
		if (uc->uc_state == CS_DELAYED)
			return;
		if (s->s_end == SE_LINGER || (s->s_end == SE_CLOSE &&
		    s->s_inlen > 0)) {
			uc_linger(uc);
			return;
		}
		if (s->s_end == SE_CLOSE)
			goto close;
		break;
	}
	uc->uc_held = 0;
	if (uc->uc_eof)
		goto close;
	if (!uc->uc_reading)
		uc_read(uc);
	/* As conn.c: header_timeout runs from the start of each request,
	 * keepalive_timeout from the end of the last response. */
	if (uc->uc_state == CS_PROXY)
		return;
	if (session_busy(s)) {
		if (uc->uc_state != CS_READING || uc->uc_answered > 0)
			uc_enter(uc, CS_READING);
	} else if (s->s_requests > 0 &&
	    (uc->uc_state != CS_IDLE || uc->uc_answered > 0)) {
		if (ur.ur_se.se_draining)
			goto close;
		uc_enter(uc, CS_IDLE);
	}
	return;
close:
	uc_close(uc);
}

/* The cap on input held while answers wait for the client: past it,
 * reading stops until the client takes its answers. */
static void
uc_pause(struct uconn *uc)
{
	struct io_uring_sqe	*sqe;

	if (!uc->uc_reading || uc->uc_ss.s_inlen <= ur.ur_se.se_ae.ae_rcap)
		return;
	uc->uc_reading = 0;
	if (uc->uc_nrecv == 0)
		return;
	sqe = ring_sqe(NULL, RT_NONE);
	io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)uc | RT_RECV, 0);
	sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
	/* At once, not at the end of the iteration: the receive would go
	 * on filling buffers meanwhile. */
	ring_submit_now();
}

/* Bytes arrived at buf, a provided buffer that returns to the ring as
 * soon as this returns. */
static void
uc_input(struct uconn *uc, const char *buf, size_t n)
{
	struct session_env	*se = &ur.ur_se;
	enum process_result	 pr;
	ev_tstamp		 left;
	int			 rc;

	if (uc->uc_state == CS_LINGERING)
		return;
	if (uc->uc_held || (!uc_can_answer(uc) && !uc->uc_ss.s_proxy)) {
		/* Answers wait for the client: so does this input. */
		if (session_hold(se, &uc->uc_ss, buf, n, ur.ur_held_max) ==
		    -1) {
			uc_close(uc);
			return;
		}
		uc->uc_held = 1;
		uc_pause(uc);
		return;
	}
	rc = session_input(se, &uc->uc_ss, buf, n, ur.ur_held_max, &pr,
	    &uc->uc_answered);
	if (rc == SI_CLOSE) {
		uc_close(uc);
		return;
	}
	if (rc == SI_PROXIED) {
		/* The head's timeout keeps running from the start. */
		left = uc->uc_node.tn_deadline - ev_now(ur.ur_loop);
		uc_state_set(uc, CS_READING);
		tq_add_in(&ur.ur_queue[CS_READING], &uc->uc_node,
		    left > 0 ? left : 0);
	}
	if (pr == PR_DELAYED)
		uc_delay(uc);
	uc->uc_held = pr == PR_FLUSH || pr == PR_DELAYED;
	if (uc_flush(uc) == -1) {
		uc_close(uc);
		return;
	}
	uc_run(uc);
}

/* The client's FIN: what it asked for is answered first. */
static void
uc_eof(struct uconn *uc)
{
	uc->uc_eof = 1;
	if (uc->uc_state != CS_LINGERING && (uc_output(uc) ||
	    uc->uc_state == CS_DELAYED || uc->uc_held))
		return;		/* uc_run() closes once it is done */
	session_eof(&ur.ur_se, &uc->uc_ss);
	uc_close(uc);
}

static void
on_recv_cqe(void *p, const struct io_uring_cqe *cqe)
{
	struct uconn	*uc = p;
	const char	*buf;
	unsigned	 bid;
	int		 more = cqe->flags & IORING_CQE_F_MORE;

	if (cqe->flags & IORING_CQE_F_BUFFER) {
		bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
		buf = ring_buf_take(cqe, &bid);
		if (!uc->uc_closed && cqe->res > 0)
			uc_input(uc, buf, (size_t)cqe->res);
		ring_buf_return(bid);
	} else if (!uc->uc_closed) {
		if (cqe->res == 0)
			uc_eof(uc);
		else if (cqe->res != -ENOBUFS && cqe->res != -ECANCELED) {
			if (cqe->res != -ECONNRESET)
				log_debug("recv() failed: %s",
				    strerror(-cqe->res));
			uc_close(uc);
		}
	}
	if (more)
		return;
	/* The receive ended: a single one, out of buffers for a moment,
	 * or paused.  Reading goes on where it is still wanted: not for a
	 * connection whose last answer is on its way (uc_linger() reads
	 * again if it must). */
	uc->uc_nrecv--;
	if (!uc->uc_closed && !uc->uc_eof && uc->uc_reading &&
	    (uc->uc_ss.s_end == SE_OPEN || uc->uc_state == CS_LINGERING))
		recv_arm(uc);
	uc_op_done(uc);
}

static void
uc_new(int fd, const struct sockaddr_storage *ss, const struct listener *li)
{
	struct uconn	*uc;

	if ((uc = ur.ur_free) != NULL) {
		ur.ur_free = uc->uc_free_next;
		ur.ur_nfree--;
	} else if ((uc = calloc(1, sizeof(*uc))) == NULL) {
		log_warn("calloc() failed");
		if (close(fd) == -1)
			log_warn("close() failed");
		uaccept_release();
		return;
	}
	ur.ur_live++;
	/* The output buffers of a reused connection are kept. */
	uc->uc_fd = fd;
	uc->uc_ops = 0;
	uc->uc_closed = uc->uc_eof = uc->uc_held = 0;
	uc->uc_reading = uc->uc_nrecv = 0;
	uc->uc_answered = 0;
	uc->uc_outlen = uc->uc_sendlen = uc->uc_sendoff = 0;
	uc->uc_sending = 0;
	memset(&uc->uc_node, 0, sizeof(uc->uc_node));
	session_init(&uc->uc_ss, ss, li);
	uc->uc_state = CS_READING;
	session_count(-1, CS_READING);
	uc_enter(uc, li->li_opts & HD_LO_PROXY ? CS_PROXY : CS_READING);
	uc_read(uc);
}

/* At the connection limit: closes the oldest connection in a state the
 * service can spare, or says whether there is one. */
static int
uc_reclaim(int close)
{
	struct tq_node	*n;

	if ((n = session_spare(ur.ur_queue, ur.ur_sv)) == NULL)
		return 0;
	if (close)
		uc_close((struct uconn *)n);
	return 1;
}

/* The last accept's cancel may be what a stop waited for. */
static void
on_accept_cqe(void *p, const struct io_uring_cqe *cqe)
{
	uaccept_cqe(p, cqe);
	check_done();
}

static void
uc_close_node(struct tq_node *n)
{
	uc_close((struct uconn *)n);
}

static struct session *
uc_session(struct tq_node *n)
{
	return &((struct uconn *)n)->uc_ss;
}

/* The delay is over: the answer is queued, then what was held behind
 * it is answered. */
static void
uc_delayed(struct tq_node *n)
{
	struct uconn	*uc = (struct uconn *)n;

	uc_state_set(uc, CS_READING);	/* until uc_run() says otherwise */
	if (session_delayed(&ur.ur_se, &uc->uc_ss))
		uc_delay(uc);		/* the head went, its body waits */
	else
		uc->uc_answered = 1;
	if (uc_flush(uc) == -1) {
		uc_close(uc);
		return;
	}
	uc_run(uc);
}

static void
on_send_cqe(void *p, const struct io_uring_cqe *cqe)
{
	on_send(p, cqe->res);
}

void
uring_init(struct ev_loop *loop, const struct hd_config *cf,
    const struct hd_socket *socks, unsigned nsocks, const struct service *sv)
{
	static const struct session_ops ops = {
		uc_close_node, uc_session, uc_delayed, &ur.ur_se
	};
	static ring_cqe_fn *const handler[RT_NTAGS] = {
		[RT_ACCEPT] = on_accept_cqe,
		[RT_RECV] = on_recv_cqe,
		[RT_SEND] = on_send_cqe,
	};

	ur.ur_loop = loop;
	ur.ur_cf = cf;
	ur.ur_sv = sv;
	session_env_init(&ur.ur_se, loop, sv->sv_decide, cf);
	/* Reading pauses past ae_rcap of held input; what the kernel
	 * completed before the pause took effect still arrives, and that is
	 * at most the whole buffer ring. */
	ur.ur_held_max = ur.ur_se.se_ae.ae_rcap +
	    (size_t)RING_BUFS * RING_BUF_SIZE;
	if (ring_init(loop, handler) == -1)
		exit(HD_EXIT_FAILURE);
	session_queues_init(ur.ur_queue, loop, cf, &ops);

	uaccept_init(loop, socks, nsocks, sv->sv_max_conns > 0 ?
	    sv->sv_max_conns : cf->cf_max_connections, uc_new,
	    sv->sv_reclaim != 0 ? uc_reclaim : NULL);
}

/*
 * A stop, as engine_drain(): no new connection (the accepts are
 * cancelled; one the kernel completed meanwhile is still served), what
 * is in flight finishes, idle keep-alive connections get
 * ANSWER_DRAIN_GRACE to send one more request.
 */
void
uring_drain(void)
{
	if (ur.ur_se.se_draining)
		return;
	log_debug("draining %u connection%s", uaccept_open(),
	    plural(uaccept_open()));
	ur.ur_se.se_draining = 1;
	uaccept_close();
	session_queues_drain(ur.ur_queue, ur.ur_sv);
	check_done();
}

void
uring_exit(void)
{
	ring_exit();
}
