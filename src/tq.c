/*
 * Timeout queues (see tq.h).  The timer is re-armed only when it fires or
 * when a member is added to an idle queue, not on every insertion or
 * removal.
 */
#include "tq.h"

static void
tq_arm(struct tq *q)
{
	ev_tstamp	 after;

	if (q->tq_head == NULL) {
		ev_timer_stop(q->tq_loop, &q->tq_timer);
		return;
	}
	after = q->tq_head->tn_deadline - ev_now(q->tq_loop);
	if (after < 0.)
		after = 0.;
	ev_timer_stop(q->tq_loop, &q->tq_timer);
	ev_timer_set(&q->tq_timer, after, 0.);
	ev_timer_start(q->tq_loop, &q->tq_timer);
}

static void
tq_fire(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct tq	*q = t->data;
	struct tq_node	*n;
	ev_tstamp	 now = ev_now(loop);

	(void)revents;
	/* The callback may remove further members, so take the head anew
	 * each time. */
	while ((n = q->tq_head) != NULL && n->tn_deadline <= now) {
		tq_remove(n);
		q->tq_expire(n, q->tq_arg);
	}
	tq_arm(q);
}

void
tq_init(struct tq *q, struct ev_loop *loop, ev_tstamp timeout,
    tq_expire_cb expire, void *arg)
{
	q->tq_loop = loop;
	q->tq_timeout = timeout;
	q->tq_head = q->tq_tail = NULL;
	q->tq_expire = expire;
	q->tq_arg = arg;
	ev_timer_init(&q->tq_timer, tq_fire, 0., 0.);
	q->tq_timer.data = q;
}

/* Appends n (removing it from any queue first) with a fresh deadline. */
void
tq_add(struct tq *q, struct tq_node *n)
{
	tq_add_in(q, n, q->tq_timeout);
}

/*
 * Inserts n with a deadline `timeout` from now.  Members with the queue's
 * own timeout go to the tail in O(1); another timeout walks back from the
 * tail to keep the queue ordered by deadline.
 */
void
tq_add_in(struct tq *q, struct tq_node *n, ev_tstamp timeout)
{
	struct tq_node	*after;

	if (n->tn_queue != NULL)
		tq_remove(n);
	n->tn_queue = q;
	n->tn_deadline = ev_now(q->tq_loop) + timeout;
	for (after = q->tq_tail; after != NULL &&
	    after->tn_deadline > n->tn_deadline; after = after->tn_prev)
		;
	n->tn_prev = after;
	n->tn_next = after != NULL ? after->tn_next : q->tq_head;
	if (n->tn_next != NULL)
		n->tn_next->tn_prev = n;
	else
		q->tq_tail = n;
	if (after != NULL)
		after->tn_next = n;
	else
		q->tq_head = n;
	/* A timer still running for members since removed fires no later
	 * than this member's deadline, and tq_fire() then re-arms it: a
	 * queue going from empty to busy usually costs no timer heap
	 * update.  A new head due before the running timer needs it now. */
	if (q->tq_head == n && (!ev_is_active(&q->tq_timer) ||
	    ev_timer_remaining(q->tq_loop, &q->tq_timer) > timeout))
		tq_arm(q);
}

/*
 * tq_add_in() with a deadline timed from the present moment rather than
 * from the loop's last wake-up, for a wait promised to a client: a request
 * read in the same iteration as the accept that found it arrived after the
 * loop's time was taken, and its wait must not be cut short by that.
 */
void
tq_add_fresh(struct tq *q, struct tq_node *n, ev_tstamp timeout)
{
	ev_now_update(q->tq_loop);
	tq_add_in(q, n, timeout);
}

void
tq_remove(struct tq_node *n)
{
	struct tq	*q = n->tn_queue;

	if (q == NULL)
		return;
	if (n->tn_prev != NULL)
		n->tn_prev->tn_next = n->tn_next;
	else
		q->tq_head = n->tn_next;
	if (n->tn_next != NULL)
		n->tn_next->tn_prev = n->tn_prev;
	else
		q->tq_tail = n->tn_prev;
	n->tn_prev = n->tn_next = NULL;
	n->tn_queue = NULL;
	/* A later head only means a later wake-up, which tq_fire handles;
	 * re-arming on every removal would cost a heap operation each. */
}

/* Brings every deadline forward to at most `within` from now.  The
 * order is kept: min(deadline, constant) is monotonic. */
void
tq_shorten(struct tq *q, ev_tstamp within)
{
	struct tq_node	*n;
	ev_tstamp	 limit = ev_now(q->tq_loop) + within;

	for (n = q->tq_head; n != NULL; n = n->tn_next)
		if (n->tn_deadline > limit)
			n->tn_deadline = limit;
	if (within < q->tq_timeout)
		q->tq_timeout = within;
	tq_arm(q);
}
