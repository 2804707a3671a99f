/*
 * Accepting in a uring worker (see uring_accept.h).
 *
 * A multishot accept goes on accepting until it is cancelled, and its
 * cancel reaches the kernel at the end of the loop iteration: near the
 * limit the kernel could accept past it meanwhile, so within
 * UA_SLACK of max_connections accepts are armed one at a time.  A
 * connection accepted after the limit was reached (the slack, or one
 * completed before a cancel) is served all the same, an idle one
 * reclaimed for it where the engine can spare one.
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
#include "stats.h"
#include "uring_accept.h"
#include "uring_ring.h"

#define UA_SLACK	32	/* below this much room, one at a time */

enum ua_state {
	UA_ACCEPTING,
	UA_FULL,	/* the connection limit: resumed by a release */
	UA_FAILING,	/* out of descriptors or memory: resumed by a timer */
	UA_STOPPED	/* for good: draining */
};

struct ua_listener {
	const struct listener	*ul_li;
	int			 ul_fd;
	int			 ul_armed;	/* an accept is in the kernel */
	int			 ul_cancel;	/* and its cancel is asked */
	int			 ul_multishot;
};

struct uacceptor {
	struct ev_loop		*ua_loop;
	struct ua_listener	*ua_ls;
	unsigned		 ua_nls;
	enum ua_state		 ua_state;
	int			 ua_failing;	/* logged once a spell */
	ev_timer		 ua_timer;
	unsigned		 ua_nconns;
	unsigned		 ua_max;
	uaccept_cb		*ua_accept;
	uaccept_reclaim_cb	*ua_reclaim;
};

static struct uacceptor	 ua;

static void
arm(struct ua_listener *ul)
{
	struct io_uring_sqe	*sqe;

	sqe = ring_sqe(ul, RT_ACCEPT);
	ul->ul_multishot = ua.ua_nconns + UA_SLACK < ua.ua_max;
	if (ul->ul_multishot)
		io_uring_prep_multishot_accept(sqe, ul->ul_fd, NULL, NULL,
		    SOCK_CLOEXEC);
	else
		io_uring_prep_accept(sqe, ul->ul_fd, NULL, NULL,
		    SOCK_CLOEXEC);
	ul->ul_armed = 1;
	ul->ul_cancel = 0;
}

static void
cancel(struct ua_listener *ul)
{
	struct io_uring_sqe	*sqe;

	if (!ul->ul_armed || ul->ul_cancel)
		return;
	sqe = ring_sqe(NULL, RT_NONE);
	io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)ul | RT_ACCEPT, 0);
	sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
	ul->ul_cancel = 1;
}

static void
stop(enum ua_state why)
{
	unsigned	 i;

	ua.ua_state = why;
	for (i = 0; i < ua.ua_nls; i++)
		cancel(&ua.ua_ls[i]);
}

/* Accepting follows the room there is: a cancelled accept is armed
 * again here once its last completion arrived. */
static void
update(void)
{
	struct ua_listener	*ul;
	unsigned		 i;

	if (ua.ua_state == UA_STOPPED || ua.ua_state == UA_FAILING)
		return;
	if (ua.ua_nconns >= ua.ua_max && (ua.ua_reclaim == NULL ||
	    !ua.ua_reclaim(0))) {
		if (ua.ua_state != UA_FULL)
			stats_accept_paused(STATS_PAUSE_MAXCONN);
		stop(UA_FULL);
		return;
	}
	ua.ua_state = UA_ACCEPTING;
	for (i = 0; i < ua.ua_nls; i++) {
		ul = &ua.ua_ls[i];
		if (!ul->ul_armed)
			arm(ul);
		else if (ul->ul_multishot &&
		    ua.ua_nconns + UA_SLACK >= ua.ua_max)
			cancel(ul);
	}
}

static void
timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop;
	(void)t;
	(void)revents;
	if (ua.ua_state != UA_FAILING)
		return;
	ua.ua_state = UA_ACCEPTING;
	update();
}

/* A connection accepted: its address is asked for, since a multishot
 * accept has one address buffer for every connection it takes. */
static void
admit(int fd, const struct listener *li)
{
	struct sockaddr_storage	 ss;
	socklen_t		 len = sizeof(ss);

	if (getpeername(fd, (struct sockaddr *)&ss, &len) == -1) {
		log_debug("getpeername() failed: %s", strerror(errno));
		if (close(fd) == -1)
			log_warn("close() failed");
		return;
	}
	if (ua.ua_nconns >= ua.ua_max && ua.ua_reclaim != NULL &&
	    ua.ua_reclaim(1))
		stats_reclaimed();
	ua.ua_nconns++;
	stats_accepted();
	ua.ua_accept(fd, &ss, li);
}

void
uaccept_cqe(void *p, const struct io_uring_cqe *cqe)
{
	struct ua_listener	*ul = p;
	int			 fd = cqe->res;

	if (!(cqe->flags & IORING_CQE_F_MORE))
		ul->ul_armed = 0;
	if (fd >= 0) {
		listen_accept_ok(&ua.ua_failing);
		admit(fd, ul->ul_li);
	} else if (fd != -ECANCELED &&
	    listen_accept_error(-fd, &ua.ua_failing) == HD_ACCEPT_PAUSE &&
	    ua.ua_state != UA_STOPPED) {
		/* Accepting again at once would fail again: wait. */
		stop(UA_FAILING);
		stats_accept_paused(STATS_PAUSE_EMFILE);
		ev_timer_set(&ua.ua_timer, HD_ACCEPT_PAUSE_TIME, 0.);
		ev_timer_start(ua.ua_loop, &ua.ua_timer);
	}
	update();
}

void
uaccept_init(struct ev_loop *loop, const struct hd_socket *socks,
    unsigned n, unsigned max, uaccept_cb *accept_cb,
    uaccept_reclaim_cb *reclaim)
{
	unsigned	 i;

	ua.ua_loop = loop;
	ua.ua_max = max;
	ua.ua_accept = accept_cb;
	ua.ua_reclaim = reclaim;
	ua.ua_nls = n;
	if (n > 0 && (ua.ua_ls = calloc(n, sizeof(*ua.ua_ls))) == NULL)
		fatal("calloc() failed");
	for (i = 0; i < n; i++) {
		ua.ua_ls[i].ul_fd = socks[i].so_fd;
		ua.ua_ls[i].ul_li = socks[i].so_listener;
	}
	ev_timer_init(&ua.ua_timer, timer_cb, HD_ACCEPT_PAUSE_TIME, 0.);
	ua.ua_state = UA_ACCEPTING;
	update();
}

/* A connection closed: one more may be accepted. */
void
uaccept_release(void)
{
	ua.ua_nconns--;
	if (ua.ua_state == UA_FULL)
		update();
}

/*
 * Stops accepting for good (the accepts are cancelled; a connection the
 * kernel completed meanwhile is still admitted) and closes this
 * process's copies of the listening sockets: the master keeps them, and
 * the ring holds its own reference until the cancel.
 */
void
uaccept_close(void)
{
	unsigned	 i;

	if (ua.ua_state == UA_STOPPED)
		return;
	ev_timer_stop(ua.ua_loop, &ua.ua_timer);
	stop(UA_STOPPED);
	for (i = 0; i < ua.ua_nls; i++)
		if (close(ua.ua_ls[i].ul_fd) == -1)
			log_warn("close() failed");
}

unsigned
uaccept_open(void)
{
	return ua.ua_nconns;
}

/* Whether an accept may still complete. */
int
uaccept_armed(void)
{
	unsigned	 i;

	for (i = 0; i < ua.ua_nls; i++)
		if (ua.ua_ls[i].ul_armed)
			return 1;
	return 0;
}
