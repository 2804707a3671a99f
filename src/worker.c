/*
 * The asynchronous worker: one libev loop, the sockets of its slot, and
 * its connections (conn.c).  What to answer is decided in answer.c; the
 * worker only waits and does I/O.
 */
#include <sys/socket.h>

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>

#include "hellod.h"
#include "answer.h"
#include "stats.h"
#include "tq.h"
#include "worker.h"

struct worker		 wk;

static void
accept_stop(enum accept_state why)
{
	unsigned	 i;

	wk.w_accept_state = why;
	for (i = 0; i < wk.w_nlisten; i++)
		ev_io_stop(wk.w_loop, &wk.w_accept[i]);
}

void
accept_start(void)
{
	unsigned	 i;

	wk.w_accept_state = AS_ACCEPTING;
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
		accept_start();
	else
		wk.w_accept_state = AS_FULL;
}

static void
accept_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	const struct hd_socket	*so = io->data;
	struct sockaddr_storage	 ss;
	socklen_t		 len;
	int			 fd;

	(void)revents;
	for (;;) {
		if (wk.w_nconns >= wk.w_cf->cf_max_connections) {
			/* Resumed by conn_close(); the rest wait in the
			 * listen queue. */
			accept_stop(AS_FULL);
			stats_accept_paused(STATS_PAUSE_MAXCONN);
			return;
		}
		len = sizeof(ss);
		fd = accept4(so->so_fd, (struct sockaddr *)&ss, &len,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			switch (listen_accept_error(errno,
			    &wk.w_accept_failing)) {
			case HD_ACCEPT_RETRY:
				continue;
			case HD_ACCEPT_DONE:
				return;
			case HD_ACCEPT_PAUSE:
				/* Level-triggered accept would spin: wait. */
				accept_stop(AS_FAILING);
				stats_accept_paused(STATS_PAUSE_EMFILE);
				ev_timer_set(&wk.w_accept_timer,
				    HD_ACCEPT_PAUSE_TIME, 0.);
				ev_timer_start(loop, &wk.w_accept_timer);
				return;
			}
		}
		listen_accept_ok(&wk.w_accept_failing);
		conn_new(fd, &ss, so->so_listener);
	}
}

static void
drain_begin(struct ev_loop *loop)
{
	unsigned	 i;

	log_debug("draining %u connections", wk.w_nconns);
	wk.w_draining = 1;
	accept_stop(AS_STOPPED);
	ev_timer_stop(loop, &wk.w_accept_timer);
	for (i = 0; i < wk.w_nlisten; i++)
		close(wk.w_accept[i].fd);
	if (wk.w_nconns == 0) {
		ev_break(loop, EVBREAK_ALL);
		return;
	}
	/*
	 * A busy keep-alive client is idle only between a response and its
	 * next request: closing at once would race with that request.  Idle
	 * connections get a moment to send one (answered with Connection:
	 * close), then are closed.
	 */
	tq_shorten(&wk.w_queue[CS_IDLE], ANSWER_DRAIN_GRACE);
}

static void
sig_cb(struct ev_loop *loop, ev_signal *s, int revents)
{
	(void)revents;
	switch (s->signum) {
	case SIGTERM:
		if (!wk.w_draining)
			drain_begin(loop);
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
	static const struct {
		enum conn_state	 state;
		tq_expire_cb	 expire;
	} queues[] = {
		{ CS_PROXY, conn_expire_proxy },
		{ CS_READING, conn_expire_close },
		{ CS_DELAYED, conn_expire_delay },
		{ CS_WRITING, conn_expire_close },
		{ CS_IDLE, conn_expire_close },
		{ CS_LINGERING, conn_expire_close },
	};
	ev_tstamp		 timeout[CS_NSTATES];
	sigset_t		 mask;
	unsigned		 i;

	wk.w_cf = cf;
	if (answer_env_init(&wk.w_env, cf) == -1)
		exit(HD_EXIT_FAILURE);
	if ((wk.w_loop = ev_default_loop(EVFLAG_AUTO)) == NULL)
		fatalx("ev_default_loop() failed");

	/* A client has header_timeout to send a PROXY header and a request
	 * head, and to take each part of a response. */
	timeout[CS_PROXY] = cf->cf_header_timeout / 1000.;
	timeout[CS_READING] = cf->cf_header_timeout / 1000.;
	timeout[CS_DELAYED] = cf->cf_delay / 1000.;
	timeout[CS_WRITING] = cf->cf_header_timeout / 1000.;
	timeout[CS_IDLE] = cf->cf_keepalive_timeout / 1000.;
	timeout[CS_LINGERING] = ANSWER_LINGER_TIME;
	for (i = 0; i < CS_NSTATES; i++)
		tq_init(&wk.w_queue[queues[i].state], wk.w_loop,
		    timeout[queues[i].state], queues[i].expire, NULL);

	wk.w_nlisten = ctx->wc_nsocks;
	if ((wk.w_accept = calloc(wk.w_nlisten, sizeof(ev_io))) == NULL)
		fatal("calloc() failed");
	for (i = 0; i < wk.w_nlisten; i++) {
		ev_io_init(&wk.w_accept[i], accept_cb, ctx->wc_socks[i].so_fd,
		    EV_READ);
		wk.w_accept[i].data = (void *)&ctx->wc_socks[i];
	}
	accept_start();
	ev_timer_init(&wk.w_accept_timer, accept_timer_cb,
	    HD_ACCEPT_PAUSE_TIME, 0.);

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
	    ctx->wc_slot, ctx->wc_generation, ctx->wc_nsocks);
	ev_run(wk.w_loop, 0);
	log_debug("worker %d exiting", ctx->wc_slot);
	exit(0);
}
