/*
 * The blocking worker: the baseline of the comparison.  One process, one
 * connection at a time.  What to answer is decided in answer.c; this
 * file only waits and does I/O, and every wait blocks the whole worker.
 *
 * Signals are blocked except while the worker waits in ppoll() (for the
 * next connection, or for the client's next bytes), so a stop request can
 * never slip in between checking the flag and going to sleep.  The
 * listeners stay non-blocking because async generations share them; the
 * connection's socket is blocking, read only after ppoll() said it has
 * data, and written with a send timeout.
 */
#include <sys/socket.h>
#include <sys/time.h>

#include <netinet/in.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hellod.h"
#include "answer.h"
#include "stats.h"
#include "tls.h"
#include "transport.h"

static volatile sig_atomic_t	 sync_stop;
static volatile sig_atomic_t	 sync_reopen;

struct sync_state {
	const struct hd_config	*ss_cf;
	struct answer_env	 ss_env;
	int			 ss_figure;	/* the connection's, stats.h */
	double			 ss_req_start;	/* first byte of the request */
	sigset_t		 ss_waitmask;	/* while in ppoll() */
	sigset_t		 ss_runmask;	/* otherwise */
};

static void
sync_signal(int sig)
{
	switch (sig) {
	case SIGTERM:
		sync_stop = 1;
		break;
	case SIGQUIT:
		_exit(0);
	case SIGUSR1:
		sync_reopen = 1;
		break;
	}
}

/* The connection's state as counted (stats.h); -1: none. */
static void
figure(struct sync_state *ss, int f)
{
	stats_conn_move(ss->ss_figure, f);
	ss->ss_figure = f;
}

/* Lets signals that arrived meanwhile run their handlers. */
static void
signals_deliver(struct sync_state *ss)
{
	if (sigprocmask(SIG_SETMASK, &ss->ss_waitmask, NULL) == -1 ||
	    sigprocmask(SIG_SETMASK, &ss->ss_runmask, NULL) == -1)
		fatal("sigprocmask() failed");
}

/*
 * Waits until one of fds is readable, `seconds` pass (< 0: forever) or a
 * signal arrives.  Returns the ppoll() result: -1 with EINTR for a
 * signal, 0 for the timeout.
 */
static int
wait_readable(struct sync_state *ss, struct pollfd *fds, unsigned n,
    double seconds)
{
	struct timespec	 ts;
	int		 rc;

	if (seconds >= 0) {
		ts.tv_sec = (time_t)seconds;
		ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
	}
	rc = ppoll(fds, n, seconds >= 0 ? &ts : NULL, &ss->ss_waitmask);
	if (rc == -1 && errno != EINTR)
		fatal("ppoll() failed");
	return rc;
}

static int
set_timeout(int fd, int opt, double seconds)
{
	struct timeval	 tv;

	if (seconds < 0.001)
		seconds = 0.001;	/* 0 would mean none */
	tv.tv_sec = (time_t)seconds;
	tv.tv_usec = (suseconds_t)((seconds - (double)tv.tv_sec) * 1e6);
	if (setsockopt(fd, SOL_SOCKET, opt, &tv, sizeof(tv)) == -1) {
		log_warn("setsockopt(%s) failed", opt == SO_SNDTIMEO ?
		    "SO_SNDTIMEO" : "SO_RCVTIMEO");
		return -1;
	}
	return 0;
}

/*
 * Waits for input until the deadline (or, when `stoppable`, a stop), then
 * reads it, or with `peek` looks at it (transport_peek()).  A TLS record
 * may need several reads of the blocking socket: each is bounded by what
 * is left of the deadline, so a client trickling a record cannot hold
 * the worker past it.  Returns as tr_recv(); TR_AGAIN: the deadline or
 * the stop.
 */
static ssize_t
read_by(struct sync_state *ss, struct transport *tr, char *buf, size_t len,
    double deadline, int stoppable, int peek)
{
	struct pollfd	 pfd;
	double		 left;

	pfd.fd = tr->tr_fd;
	pfd.events = POLLIN;
	for (;;) {
		if (stoppable && sync_stop)
			return TR_AGAIN;
		if ((left = deadline - now_mono()) <= 0)
			return TR_AGAIN;
		if (tr_pending(tr) || wait_readable(ss, &pfd, 1, left) > 0)
			break;
	}
	if (peek)
		return transport_peek(tr, buf, len);
	if (tr->tr_tls != NULL &&
	    set_timeout(tr->tr_fd, SO_RCVTIMEO, left) == -1)
		return TR_ERROR;
	return tr_recv(tr, buf, len);
}

/* The socket blocks, with a send timeout: TR_AGAIN is that timeout. */
static int
write_all(struct transport *tr, const char *buf, size_t len)
{
	ssize_t	 n;

	while (len > 0) {
		if ((n = tr_write(tr, buf, len, 0)) < 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Sends the write buffer, then `padding` bytes from the spaces. */
static int
flush(struct sync_state *ss, struct transport *tr, size_t padding)
{
	struct answer_env	*ae = &ss->ss_env;
	size_t			 n, len = ae->ae_wlen;

	ae->ae_wlen = 0;
	if (write_all(tr, ae->ae_wbuf, len) == -1)
		return -1;
	for (; padding > 0; padding -= n) {
		n = padding < HTTP_PAD_CHUNK ? padding : HTTP_PAD_CHUNK;
		if (write_all(tr, ae->ae_spaces, n) == -1)
			return -1;
	}
	return 0;
}

/* The blocking model's backend wait.  Signals stay blocked: the wait is
 * bounded, and a stop is seen when the answer is written. */
static void
sleep_ms(unsigned ms)
{
	struct timespec	 ts, rem;

	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (long)(ms % 1000) * 1000000L;
	while (nanosleep(&ts, &rem) == -1 && errno == EINTR)
		ts = rem;
}

/* After an error response: send FIN, read what the client still sends
 * for a moment, so that the close does not become a RST. */
static void
linger(struct sync_state *ss, struct transport *tr)
{
	struct pollfd	 pfd;
	double		 end = now_mono() + ANSWER_LINGER_TIME, left;

	pfd.fd = tr->tr_fd;
	pfd.events = POLLIN;
	figure(ss, STATS_LINGERING);
	if (tr_shutdown(tr) == 0)
		while ((left = end - now_mono()) > 0) {
			if (wait_readable(ss, &pfd, 1, left <
			    ANSWER_LINGER_READ ? left : ANSWER_LINGER_READ) <= 0)
				break;
			if (tr_recv(tr, ss->ss_env.ae_rbuf,
			    ss->ss_env.ae_rcap) <= 0)
				break;
		}
}

/*
 * Answers every complete request in buf[0..len) (stopping once the write
 * buffer is full) and sends the answers.  Returns the bytes consumed, or
 * -1 when the connection is to close; *linger says whether unread input
 * may remain then, *answered whether a request completed.
 */
static ssize_t
answer_all(struct sync_state *ss, struct transport *tr, struct http_stream *st,
    const char *buf, size_t len, struct answer_peer *who, int *linger,
    int *answered)
{
	struct answer_env	*ae = &ss->ss_env;
	struct http_request	 req;
	struct answer		 an;
	size_t			 off = 0, used;
	int			 rc, close_after = 0;

	*answered = 0;
	while (off < len && !answer_batch_full(ae)) {
		rc = http_stream_next(st, buf + off, len - off, &ae->ae_limits,
		    &req, &used);
		off += used;
		if (rc == HTTP_NEED_MORE)
			break;
		*answered = 1;
		if (rc == HTTP_DONE)
			who->ap_requests++;
		answer_decide(ae, rc, &req, who, (int64_t)time(NULL), &an);
		an.an_start = ss->ss_req_start;
		if (an.an_fault & FAULT_RESET) {
			/* What precedes goes out; then RST, no answer. */
			answer_faults_count(&an);
			*linger = 0;
			if (flush(ss, tr, 0) == 0)
				(void)tr_reset(tr);
			return -1;
		}
		if (an.an_delay > 0) {
			/* What is buffered goes out before the wait. */
			figure(ss, STATS_WRITING);
			if (flush(ss, tr, 0) == -1)
				return -1;
			figure(ss, STATS_DELAYED);
			sleep_ms(an.an_delay);
		}
		/* Decided last: a stop may have arrived meanwhile. */
		signals_deliver(ss);
		figure(ss, STATS_WRITING);
		answer_faults_count(&an);
		if ((an.an_fault & FAULT_DELAY_BODY) && !an.an_head) {
			/* The head now, the body after the wait. */
			if (answer_write_part(ae, &an, sync_stop, who,
			    (int64_t)time(NULL), now_mono(), ANSWER_HEAD) == -1 ||
			    flush(ss, tr, 0) == -1)
				return -1;
			figure(ss, STATS_DELAYED);
			sleep_ms(an.an_delay_body);
			figure(ss, STATS_WRITING);
			close_after = answer_write_part(ae, &an, sync_stop, who,
			    (int64_t)time(NULL), now_mono(), ANSWER_BODY);
		} else
			close_after = answer_write(ae, &an, sync_stop, who,
			    (int64_t)time(NULL), now_mono());
		if (close_after == -1)
			return -1;
		if (answer_padding_sent(&an) > 0 &&
		    flush(ss, tr, answer_padding_sent(&an)) == -1)
			return -1;
		if (close_after) {
			*linger = an.an_error || off < len;
			break;
		}
	}
	if (flush(ss, tr, 0) == -1)
		return -1;
	return close_after ? -1 : (ssize_t)off;
}

/*
 * Reads until the PROXY header at the start of the connection is whole,
 * TLVs included (answer_proxy()), within the head's deadline; the read
 * buffer holds it.  Returns the bytes read past it (left at the front of
 * the read buffer), or -1 to close without an answer.  Before TLS, only
 * the header's bytes are taken from the socket, and the connection turns
 * to TLS.
 */
static ssize_t
read_proxy(struct sync_state *ss, struct transport *tr,
    const struct listener *li, struct answer_peer *who, double deadline)
{
	struct answer_env	*ae = &ss->ss_env;
	size_t			 len = 0, used;
	ssize_t			 n;
	int			 rc, tls = (li->li_opts & HD_LO_TLS) != 0;

	/* A stop lets the header finish: the connection was accepted. */
	while ((n = read_by(ss, tr, ae->ae_rbuf + len, ae->ae_rcap - len,
	    deadline, 0, tls)) > 0) {
		if ((rc = answer_proxy(ae, who, ae->ae_rbuf, len + (size_t)n,
		    &used)) == -1)
			return -1;
		if (tls && transport_take(tr, rc == 1 ? used - len :
		    (size_t)n) == -1)
			return -1;
		len += (size_t)n;
		if (rc == 0)
			continue;
		if (tls) {
			if (tls_transport(tr, tls_current(), tr->tr_fd,
			    li->li_tls) == -1)
				return -1;
			who->ap_tls = tls_info(tr);
			return 0;
		}
		memmove(ae->ae_rbuf, ae->ae_rbuf + used, len - used);
		return (ssize_t)(len - used);
	}
	/* Part of a header, then EOF or the deadline: refused too. */
	if (len > 0)
		answer_proxy_refused(ae, who);
	return -1;
}

/*
 * One connection, to its end.  Each turn reads once unless bytes are
 * already held (after a PROXY header), answers what is complete, and
 * sets the deadline: header_timeout from the connection's start and
 * then from the first byte of each request; keepalive_timeout from the
 * end of a response.  Returns whether to linger before closing.
 */
static int
converse(struct sync_state *ss, struct transport *tr, struct http_stream *st,
    struct answer_peer *who, size_t len, double deadline)
{
	const struct hd_config	*cf = ss->ss_cf;
	struct answer_env	*ae = &ss->ss_env;
	ssize_t			 n;
	int			 linger = 0, answered, idle = 0, held = len > 0;

	for (;;) {
		if (!held) {
			/* A stop while idle between requests ends it. */
			n = read_by(ss, tr, ae->ae_rbuf + len,
			    ae->ae_rcap - len, deadline, len == 0 &&
			    !http_stream_busy(st), 0);
			if (n <= 0)
				return 0;	/* EOF, reset, deadline */
			if (idle) {
				deadline = now_mono() +
				    cf->cf_header_timeout / 1000.;
				figure(ss, STATS_READING);
				idle = 0;
			}
			if (len == 0 && !http_stream_busy(st))
				ss->ss_req_start = now_mono();
			len += (size_t)n;
		}
		held = 0;
		do {
			n = answer_all(ss, tr, st, ae->ae_rbuf, len, who,
			    &linger, &answered);
			if (n == -1)
				return linger;
			memmove(ae->ae_rbuf, ae->ae_rbuf + n, len - (size_t)n);
			len -= (size_t)n;
			if (answered) {
				idle = len == 0 && !http_stream_busy(st);
				deadline = now_mono() + (idle ?
				    cf->cf_keepalive_timeout :
				    cf->cf_header_timeout) / 1000.;
				figure(ss, idle ? STATS_IDLE : STATS_READING);
			}
		} while (answered && len > 0);
	}
}

static void
serve(struct sync_state *ss, int fd, const struct sockaddr_storage *peer,
    const struct listener *li)
{
	const struct hd_config	*cf = ss->ss_cf;
	struct transport	 tr;
	struct http_stream	 st;
	struct answer_peer	 who;
	double			 deadline;
	ssize_t			 held = 0;

	transport_plain(&tr, fd);
	answer_peer_init(&who, peer);
	who.ap_listener = li;
	http_stream_init(&st);
	figure(ss, STATS_READING);
	deadline = now_mono() + cf->cf_header_timeout / 1000.;
	if (li->li_opts == HD_LO_TLS) {
		if (tls_transport(&tr, tls_current(), fd, li->li_tls) == -1)
			goto done;
		who.ap_tls = tls_info(&tr);
	}
	if (set_timeout(fd, SO_SNDTIMEO, cf->cf_header_timeout / 1000.) ==
	    0 && (!(li->li_opts & HD_LO_PROXY) ||
	    (held = read_proxy(ss, &tr, li, &who, deadline)) != -1)) {
		ss->ss_req_start = now_mono();
		if (converse(ss, &tr, &st, &who, (size_t)held, deadline))
			linger(ss, &tr);
	}
done:
	figure(ss, -1);
	if (tr_close(&tr) == -1)
		log_warn("close() failed");
}

static void
sync_init(struct sync_state *ss, const struct hd_worker_ctx *ctx)
{
	struct sigaction	 sa;
	static const int	 sigs[] = { SIGTERM, SIGQUIT, SIGUSR1 };
	unsigned		 i;

	memset(ss, 0, sizeof(*ss));
	ss->ss_cf = ctx->wc_config;
	ss->ss_figure = -1;
	answer_self_set(ctx->wc_slot, ctx->wc_generation, "sync");
	if (answer_env_init(&ss->ss_env, ss->ss_cf) == -1)
		exit(HD_EXIT_FAILURE);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = sync_signal;
	sigemptyset(&sa.sa_mask);
	sigemptyset(&ss->ss_waitmask);
	sigemptyset(&ss->ss_runmask);
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		if (sigaction(sigs[i], &sa, NULL) == -1)
			fatal("sigaction() failed");
		sigaddset(&ss->ss_runmask, sigs[i]);
	}
	if (sigprocmask(SIG_SETMASK, &ss->ss_runmask, NULL) == -1)
		fatal("sigprocmask() failed");
}

void
sync_main(const struct hd_worker_ctx *ctx)
{
	struct sync_state	 ss;
	struct pollfd		*pfd;
	struct sockaddr_storage	 peer;
	socklen_t		 plen;
	unsigned		 i;
	int			 fd, failing = 0;

	sync_init(&ss, ctx);
	if ((pfd = calloc(ctx->wc_nsocks, sizeof(*pfd))) == NULL)
		fatal("calloc() failed");
	for (i = 0; i < ctx->wc_nsocks; i++) {
		pfd[i].fd = ctx->wc_socks[i].so_fd;
		pfd[i].events = POLLIN;
	}
	log_info("worker %d serving (generation %u, sync, %u listener%s)",
	    ctx->wc_slot, ctx->wc_generation, ctx->wc_nsocks,
	    ctx->wc_nsocks == 1 ? "" : "s");

	while (!sync_stop) {
		if (sync_reopen) {
			sync_reopen = 0;
			log_reopen();
			access_reopen();
		}
		if (wait_readable(&ss, pfd, ctx->wc_nsocks, -1) <= 0)
			continue;
		for (i = 0; i < ctx->wc_nsocks && !sync_stop; i++) {
			if (!(pfd[i].revents & POLLIN))
				continue;
			plen = sizeof(peer);
			fd = accept4(pfd[i].fd, (struct sockaddr *)&peer, &plen,
			    SOCK_CLOEXEC);
			if (fd == -1) {
				if (listen_accept_error(errno, &failing) ==
				    HD_ACCEPT_PAUSE) {
					stats_accept_paused(STATS_PAUSE_EMFILE);
					sleep_ms((unsigned)
					    (HD_ACCEPT_PAUSE_TIME * 1000));
				}
				continue;
			}
			listen_accept_ok(&failing);
			stats_accepted();
			serve(&ss, fd, &peer, ctx->wc_socks[i].so_listener);
		}
	}
	log_debug("worker %d exiting", ctx->wc_slot);
	exit(0);
}
