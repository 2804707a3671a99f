/*
 * The blocking worker: the baseline of the comparison.  One process, one
 * connection at a time, blocking read and write.  It waits for the next
 * connection in poll() only because the listeners are shared with async
 * generations (and must stay non-blocking); accept, read and write of a
 * connection all block.
 *
 * Timeouts are socket timeouts (SO_RCVTIMEO, SO_SNDTIMEO), set from the
 * time left, so a client trickling bytes cannot hold the worker longer
 * than header_timeout per request.
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
#include "http.h"

#define READ_ROOM	16384
#define WRITE_BATCH	65536

static volatile sig_atomic_t	 sync_stop;
static volatile sig_atomic_t	 sync_reopen;

struct sync_state {
	const struct hd_config	*ss_cf;
	struct http_limits	 ss_limits;
	char			*ss_rbuf;
	size_t			 ss_rcap;
	char			*ss_wbuf;
	size_t			 ss_wcap;
	char			*ss_spaces;	/* HTTP_PAD_CHUNK of padding */
	char			 ss_date[HTTP_DATE_LEN + 1];
	time_t			 ss_date_sec;
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

static double
now_mono(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static const char *
date_now(struct sync_state *ss)
{
	time_t	 now = time(NULL);

	if (now != ss->ss_date_sec) {
		http_date(ss->ss_date, now);
		ss->ss_date_sec = now;
	}
	return ss->ss_date;
}

static int
set_timeout(int fd, int opt, double seconds)
{
	struct timeval	 tv;

	if (seconds < 0.001)
		seconds = 0.001;
	tv.tv_sec = (time_t)seconds;
	tv.tv_usec = (suseconds_t)((seconds - (double)tv.tv_sec) * 1e6);
	if (setsockopt(fd, SOL_SOCKET, opt, &tv, sizeof(tv)) == -1) {
		log_warn("setsockopt(SO_RCVTIMEO/SO_SNDTIMEO) failed");
		return -1;
	}
	return 0;
}

static int
write_all(int fd, const char *buf, size_t len)
{
	ssize_t	 n;

	while (len > 0) {
		n = write(fd, buf, len);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			return -1;	/* includes the send timeout */
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static void
sleep_ms(unsigned ms)
{
	struct timespec	 ts, rem;

	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (long)(ms % 1000) * 1000000L;
	while (nanosleep(&ts, &rem) == -1 && errno == EINTR)
		ts = rem;
}

static int
write_padding(struct sync_state *ss, int fd, size_t len)
{
	size_t	 n;

	for (; len > 0; len -= n) {
		n = len < HTTP_PAD_CHUNK ? len : HTTP_PAD_CHUNK;
		if (write_all(fd, ss->ss_spaces, n) == -1)
			return -1;
	}
	return 0;
}

/* After an error response: send FIN, read what the client still sends
 * for a moment, so that the close does not become a RST. */
static void
linger_close(int fd, char *buf, size_t cap)
{
	double	 end = now_mono() + 2.0;
	ssize_t	 n;

	if (shutdown(fd, SHUT_WR) == 0 && set_timeout(fd, SO_RCVTIMEO, 0.5) == 0)
		while (now_mono() < end) {
			n = read(fd, buf, cap);
			if (n == 0 || (n == -1 && errno != EINTR))
				break;
		}
	close(fd);
}

static void
serve(struct sync_state *ss, int fd, const struct sockaddr_storage *peer)
{
	const struct hd_config	*cf = ss->ss_cf;
	struct http_request	 req;
	struct http_response	 r;
	struct http_stream	 st;
	char			 addr[HTTP_ADDR_MAX];
	size_t			 len = 0, off, used, wlen, addrlen;
	double			 deadline;
	ssize_t			 n;
	int			 rc, keep = 1, error = 0, full, answered;

	addrlen = peer_text(peer, addr, sizeof(addr));
	http_stream_init(&st);
	memset(&r, 0, sizeof(r));
	r.rsp_addr = addr;
	r.rsp_addr_len = addrlen;
	r.rsp_padding = cf->cf_body_padding;
	r.rsp_pad_later = 1;
	deadline = now_mono() + cf->cf_header_timeout / 1000.;
	if (set_timeout(fd, SO_SNDTIMEO, cf->cf_header_timeout / 1000.) == -1)
		goto done;

	for (;;) {
		/* Answer every complete request in the buffer at once. */
		off = wlen = 0;
		answered = 0;
		while (keep && off < len && wlen <= WRITE_BATCH) {
			rc = http_stream_next(&st, ss->ss_rbuf + off, len - off,
			    &ss->ss_limits, &req, &used);
			off += used;
			if (rc == HTTP_NEED_MORE)
				break;
			answered = 1;
			r.rsp_status = req.req_status;
			r.rsp_head = req.req_method == HTTP_HEAD;
			error = rc == HTTP_ERROR;
			if (access_enabled())
				access_log(addr, &req, req.req_status,
				    r.rsp_head ? 0 : http_body_size(&r),
				    (int64_t)time(NULL));
			if (cf->cf_delay > 0 && rc == HTTP_DONE) {
				/* The blocking model's backend wait. */
				if (wlen > 0 && write_all(fd, ss->ss_wbuf,
				    wlen) == -1)
					goto done;
				wlen = 0;
				sleep_ms(cf->cf_delay);
			}
			/* Decided last: a stop may arrive during the delay. */
			keep = rc == HTTP_DONE && req.req_keepalive &&
			    cf->cf_keepalive_timeout > 0 && !sync_stop;
			r.rsp_conn = !keep ? HTTP_CONN_CLOSE :
			    req.req_minor == 0 ? HTTP_CONN_KEEPALIVE :
			    HTTP_CONN_DEFAULT;
			r.rsp_date = date_now(ss);
			wlen += http_response_write(ss->ss_wbuf + wlen, &r);
			if (rc == HTTP_DONE && r.rsp_status == 200 &&
			    !r.rsp_head && r.rsp_padding > 0) {
				/* The padding, from the buffer of spaces. */
				if (write_all(fd, ss->ss_wbuf, wlen) == -1 ||
				    write_padding(ss, fd, r.rsp_padding) == -1)
					goto done;
				wlen = 0;
			}
		}
		full = wlen > WRITE_BATCH;
		if (wlen > 0 && write_all(fd, ss->ss_wbuf, wlen) == -1)
			goto done;
		if (!keep) {
			if (error || off < len) {
				linger_close(fd, ss->ss_rbuf, ss->ss_rcap);
				return;
			}
			goto done;
		}
		memmove(ss->ss_rbuf, ss->ss_rbuf + off, len - off);
		len -= off;
		if (answered && len == 0 && !http_stream_busy(&st)) {
			if (sync_stop)
				goto done;
			deadline = now_mono() + cf->cf_keepalive_timeout / 1000.;
		} else if (answered)	/* the next request has begun */
			deadline = now_mono() + cf->cf_header_timeout / 1000.;
		if (full)
			continue;	/* more requests may be buffered */

		if (deadline - now_mono() <= 0 ||
		    set_timeout(fd, SO_RCVTIMEO, deadline - now_mono()) == -1)
			goto done;
		n = read(fd, ss->ss_rbuf + len, ss->ss_rcap - len);
		if (n == -1 && errno == EINTR) {
			if (sync_stop && len == 0 && !http_stream_busy(&st))
				goto done;
			continue;
		}
		if (n <= 0)
			goto done;	/* EOF, reset or timeout */
		if (len == 0 && !http_stream_busy(&st))
			deadline = now_mono() + cf->cf_header_timeout / 1000.;
		len += (size_t)n;
	}
done:
	close(fd);
}

void
sync_main(const struct hd_worker_ctx *ctx)
{
	const struct hd_config	*cf = ctx->wc_config;
	struct sync_state	 ss;
	struct http_response	 r;
	struct sigaction	 sa;
	struct pollfd		*pfd;
	struct sockaddr_storage	 peer;
	socklen_t		 plen;
	sigset_t		 mask;
	unsigned		 i;
	int			 fd, failing = 0;

	memset(&ss, 0, sizeof(ss));
	ss.ss_cf = cf;
	ss.ss_limits.lim_max_header = cf->cf_max_header_size;
	ss.ss_limits.lim_max_fields = HTTP_MAX_FIELDS;
	ss.ss_rcap = cf->cf_max_header_size + READ_ROOM;
	memset(&r, 0, sizeof(r));
	r.rsp_status = 200;
	r.rsp_conn = HTTP_CONN_KEEPALIVE;
	r.rsp_addr_len = HTTP_ADDR_MAX;
	r.rsp_padding = cf->cf_body_padding;
	r.rsp_pad_later = 1;
	ss.ss_wcap = WRITE_BATCH + http_response_size(&r) + 512;
	if ((ss.ss_rbuf = malloc(ss.ss_rcap)) == NULL ||
	    (ss.ss_wbuf = malloc(ss.ss_wcap)) == NULL ||
	    (ss.ss_spaces = malloc(HTTP_PAD_CHUNK)) == NULL)
		fatal("malloc() failed");
	memset(ss.ss_spaces, ' ', HTTP_PAD_CHUNK);

	/* No SA_RESTART: a stop request must interrupt a blocking call. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = sync_signal;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGTERM, &sa, NULL) == -1 ||
	    sigaction(SIGQUIT, &sa, NULL) == -1 ||
	    sigaction(SIGUSR1, &sa, NULL) == -1)
		fatal("sigaction() failed");
	sigemptyset(&mask);
	if (sigprocmask(SIG_SETMASK, &mask, NULL) == -1)
		fatal("sigprocmask() failed");

	if ((pfd = calloc(ctx->wc_nfds, sizeof(*pfd))) == NULL)
		fatal("calloc() failed");
	for (i = 0; i < ctx->wc_nfds; i++) {
		pfd[i].fd = ctx->wc_fds[i];
		pfd[i].events = POLLIN;
	}
	log_info("worker %d serving (generation %u, sync, %u listeners)",
	    ctx->wc_slot, ctx->wc_generation, ctx->wc_nfds);

	while (!sync_stop) {
		if (sync_reopen) {
			sync_reopen = 0;
			log_reopen();
			access_reopen();
		}
		if (poll(pfd, ctx->wc_nfds, -1) == -1) {
			if (errno != EINTR)
				fatal("poll() failed");
			continue;
		}
		for (i = 0; i < ctx->wc_nfds && !sync_stop; i++) {
			if (!(pfd[i].revents & POLLIN))
				continue;
			plen = sizeof(peer);
			fd = accept4(pfd[i].fd, (struct sockaddr *)&peer, &plen,
			    SOCK_CLOEXEC);
			if (fd == -1) {
				if (errno == EMFILE || errno == ENFILE ||
				    errno == ENOBUFS || errno == ENOMEM) {
					if (!failing)
						log_warn("accept4() failed, "
						    "pausing accept");
					failing = 1;
					sleep_ms(100);
				} else if (errno != EAGAIN && errno != EINTR &&
				    errno != ECONNABORTED)
					log_warn("accept4() failed");
				continue;
			}
			if (failing) {
				log_info("accept4() succeeds again");
				failing = 0;
			}
			serve(&ss, fd, &peer);
		}
	}
	log_debug("worker %d exiting", ctx->wc_slot);
	exit(0);
}
