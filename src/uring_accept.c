/*
 * Accepting in a uring worker (see uring_accept.h).
 *
 * Each listener has a few single accepts armed, each with its own
 * address buffer: the kernel writes the client's address with the
 * connection, where a multishot accept (one buffer for all) would leave
 * a getpeername() per connection.  An accept is armed only while there
 * is room for the connection it may bring: armed accepts and open
 * connections together never pass max_connections, so the kernel cannot
 * accept past the limit.  At the limit one accept per listener stays
 * armed while the engine can spare an idle connection for a newcomer
 * (reclaimed once the newcomer is really there); otherwise none, until a
 * connection closes.
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

#define UA_SLOTS	16	/* accepts armed per listener, at most */

enum ua_state {
	UA_ACCEPTING,
	UA_FULL,	/* the connection limit: resumed by a release */
	UA_FAILING,	/* out of descriptors or memory: resumed by a timer */
	UA_STOPPED	/* for good: draining */
};

struct ua_listener;

/* One accept: the user_data of its submission, 8-byte aligned. */
struct ua_slot {
	struct sockaddr_storage	 us_ss;
	socklen_t		 us_len;
	int			 us_armed;
	struct ua_listener	*us_ul;
};

struct ua_listener {
	const struct listener	*ul_li;
	int			 ul_fd;
	unsigned		 ul_armed;	/* accepts in the kernel */
	int			 ul_cancel;	/* their cancel is asked */
	struct ua_slot		 ul_slot[UA_SLOTS];
};

struct uacceptor {
	struct ev_loop		*ua_loop;
	struct ua_listener	*ua_ls;
	unsigned		 ua_nls;
	enum ua_state		 ua_state;
	int			 ua_failing;	/* logged once a spell */
	ev_timer		 ua_timer;
	unsigned		 ua_nconns;
	unsigned		 ua_armed;	/* accepts in the kernel, in all */
	unsigned		 ua_max;
	uaccept_cb		*ua_accept;
	uaccept_reclaim_cb	*ua_reclaim;
};

static struct uacceptor	 ua;

static void
arm(struct ua_slot *us)
{
	struct io_uring_sqe	*sqe;

	sqe = ring_sqe(us, RT_ACCEPT);
	us->us_len = sizeof(us->us_ss);
	io_uring_prep_accept(sqe, us->us_ul->ul_fd,
	    (struct sockaddr *)&us->us_ss, &us->us_len, SOCK_CLOEXEC);
	us->us_armed = 1;
	us->us_ul->ul_armed++;
	ua.ua_armed++;
}

/* Every accept armed on ul goes (its completions say -ECANCELED). */
static void
cancel(struct ua_listener *ul)
{
	struct io_uring_sqe	*sqe;

	if (ul->ul_armed == 0 || ul->ul_cancel)
		return;
	sqe = ring_sqe(NULL, RT_NONE);
	io_uring_prep_cancel_fd(sqe, ul->ul_fd, IORING_ASYNC_CANCEL_ALL);
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

/* Arms what the room allows on ul: below the limit as many accepts as
 * there is room for, at it `spare` (0 or 1). */
static void
fill(struct ua_listener *ul, unsigned spare)
{
	unsigned	 i;

	for (i = 0; i < UA_SLOTS && !ul->ul_cancel; i++) {
		if (ul->ul_slot[i].us_armed)
			continue;
		if (ua.ua_nconns + ua.ua_armed >= ua.ua_max &&
		    ul->ul_armed >= spare)
			break;
		arm(&ul->ul_slot[i]);
	}
}

/* Accepting follows the room there is. */
static void
update(void)
{
	unsigned	 i, spare = 0;

	if (ua.ua_state == UA_STOPPED || ua.ua_state == UA_FAILING)
		return;
	if (ua.ua_nconns >= ua.ua_max) {
		if (ua.ua_reclaim == NULL || !ua.ua_reclaim(0)) {
			if (ua.ua_state != UA_FULL)
				stats_accept_paused(STATS_PAUSE_MAXCONN);
			stop(UA_FULL);
			return;
		}
		spare = 1;
	}
	ua.ua_state = UA_ACCEPTING;
	for (i = 0; i < ua.ua_nls; i++)
		fill(&ua.ua_ls[i], spare);
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

/* A connection accepted, with its address. */
static void
admit(int fd, const struct ua_slot *us)
{
	if (ua.ua_nconns >= ua.ua_max && ua.ua_reclaim != NULL &&
	    ua.ua_reclaim(1))
		stats_reclaimed();
	ua.ua_nconns++;
	stats_accepted();
	ua.ua_accept(fd, &us->us_ss, us->us_ul->ul_li);
}

void
uaccept_cqe(void *p, const struct io_uring_cqe *cqe)
{
	struct ua_slot		*us = p;
	struct ua_listener	*ul = us->us_ul;
	int			 fd = cqe->res;

	us->us_armed = 0;
	ua.ua_armed--;
	if (--ul->ul_armed == 0)
		ul->ul_cancel = 0;
	if (fd >= 0) {
		listen_accept_ok(&ua.ua_failing);
		admit(fd, us);
	} else if (fd != -ECANCELED &&
	    listen_accept_error(-fd, &ua.ua_failing) == HD_ACCEPT_PAUSE &&
	    ua.ua_state != UA_STOPPED && ua.ua_state != UA_FAILING) {
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
	unsigned	 i, j;

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
		for (j = 0; j < UA_SLOTS; j++)
			ua.ua_ls[i].ul_slot[j].us_ul = &ua.ua_ls[i];
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
 * process's copies of the listening sockets: the master keeps them.
 */
void
uaccept_close(void)
{
	unsigned	 i;

	if (ua.ua_state == UA_STOPPED)
		return;
	ev_timer_stop(ua.ua_loop, &ua.ua_timer);
	stop(UA_STOPPED);
	/* A cancel names its listener by descriptor: it goes before the
	 * descriptor does. */
	ring_submit_now();
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
	return ua.ua_armed > 0;
}
