/*
 * The accept loop of every event-loop child (see acceptor.h).
 */
#include <sys/socket.h>

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include <ev.h>

#include "hellod.h"
#include "acceptor.h"
#include "stats.h"

static void
acceptor_stop(struct acceptor *ac, enum acceptor_state why)
{
	unsigned	 i;

	ac->ac_state = why;
	for (i = 0; i < ac->ac_nio; i++)
		ev_io_stop(ac->ac_loop, &ac->ac_io[i].ai_io);
}

static void
acceptor_start(struct acceptor *ac)
{
	unsigned	 i;

	ac->ac_state = AC_ACCEPTING;
	for (i = 0; i < ac->ac_nio; i++)
		ev_io_start(ac->ac_loop, &ac->ac_io[i].ai_io);
}

/* There is room for one more connection, or a connection that can be
 * spared for it once one is accepted. */
static int
acceptor_room(struct acceptor *ac)
{
	return ac->ac_nconns < ac->ac_max || (ac->ac_reclaim != NULL &&
	    ac->ac_reclaim(ac->ac_arg, 0));
}

static void
acceptor_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct acceptor	*ac = t->data;

	(void)loop;
	(void)revents;
	if (ac->ac_nconns < ac->ac_max)
		acceptor_start(ac);
	else
		ac->ac_state = AC_FULL;
}

static void
acceptor_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct acceptor_io	*ai = (struct acceptor_io *)io;
	struct acceptor		*ac = ai->ai_ac;
	struct sockaddr_storage	 ss;
	socklen_t		 len;
	int			 fd;

	(void)revents;
	for (;;) {
		if (!acceptor_room(ac)) {
			/* Resumed by acceptor_release(); the rest wait in
			 * the listen queue. */
			acceptor_stop(ac, AC_FULL);
			stats_accept_paused(STATS_PAUSE_MAXCONN);
			return;
		}
		len = sizeof(ss);
		fd = accept4(io->fd, (struct sockaddr *)&ss, &len,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			switch (listen_accept_error(errno, &ac->ac_failing)) {
			case HD_ACCEPT_RETRY:
				continue;
			case HD_ACCEPT_DONE:
				return;
			case HD_ACCEPT_PAUSE:
				/* Level-triggered accept would spin: wait. */
				acceptor_stop(ac, AC_FAILING);
				stats_accept_paused(STATS_PAUSE_EMFILE);
				ev_timer_set(&ac->ac_timer,
				    HD_ACCEPT_PAUSE_TIME, 0.);
				ev_timer_start(loop, &ac->ac_timer);
				return;
			}
		}
		listen_accept_ok(&ac->ac_failing);
		/* Room is made only for a client that is really there. */
		if (ac->ac_nconns >= ac->ac_max) {
			ac->ac_reclaim(ac->ac_arg, 1);
			stats_reclaimed();
		}
		ac->ac_nconns++;
		stats_accepted();
		ac->ac_accept(ac->ac_arg, fd, &ss, ai->ai_listener);
	}
}

void
acceptor_init(struct acceptor *ac, struct ev_loop *loop,
    const struct hd_socket *socks, unsigned n, unsigned max,
    acceptor_accept_cb *accept_cb, acceptor_reclaim_cb *reclaim, void *arg)
{
	unsigned	 i;

	ac->ac_loop = loop;
	ac->ac_nio = n;
	ac->ac_nconns = 0;
	ac->ac_max = max;
	ac->ac_failing = 0;
	ac->ac_accept = accept_cb;
	ac->ac_reclaim = reclaim;
	ac->ac_arg = arg;
	if (n > 0 && (ac->ac_io = calloc(n, sizeof(*ac->ac_io))) == NULL)
		fatal("calloc() failed");
	for (i = 0; i < n; i++) {
		ev_io_init(&ac->ac_io[i].ai_io, acceptor_cb, socks[i].so_fd,
		    EV_READ);
		ac->ac_io[i].ai_ac = ac;
		ac->ac_io[i].ai_listener = socks[i].so_listener;
	}
	ev_timer_init(&ac->ac_timer, acceptor_timer_cb, HD_ACCEPT_PAUSE_TIME,
	    0.);
	ac->ac_timer.data = ac;
	acceptor_start(ac);
}

/* A connection closed: one more may be accepted. */
void
acceptor_release(struct acceptor *ac)
{
	ac->ac_nconns--;
	if (ac->ac_state == AC_FULL)
		acceptor_start(ac);
}

/*
 * Stops accepting for good and closes this process's copies of the
 * listening sockets: the master keeps them, and what is queued waits for
 * the next generation.
 */
void
acceptor_close(struct acceptor *ac)
{
	unsigned	 i;

	if (ac->ac_state == AC_STOPPED)
		return;
	acceptor_stop(ac, AC_STOPPED);
	ev_timer_stop(ac->ac_loop, &ac->ac_timer);
	for (i = 0; i < ac->ac_nio; i++)
		if (close(ac->ac_io[i].ai_io.fd) == -1)
			log_warn("close() failed");
}
