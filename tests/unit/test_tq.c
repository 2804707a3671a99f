/*
 * Unit tests for the timeout queues (src/tq.c): tq_add, tq_add_in,
 * tq_add_fresh, tq_remove and tq_shorten on the order and deadlines of
 * the members, the arming of the queue's timer, and expiry in a real
 * libev loop.
 *
 * Order and deadlines are checked through the nodes without waiting: the
 * loop's time only moves when a test updates it.  The tests that expire
 * members use timeouts of a few tens of milliseconds and run the loop
 * one iteration at a time under a watchdog timer, so that a timer armed
 * too late fails the test instead of stalling it.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include <ev.h>

#include "tq.h"

#define SHORT		0.02	/* s, a timeout the tests wait for */
#define WATCHDOG	1.0	/* s, longest any test runs its loop */
#define MAXEXP		16
#define SLACK		1e-9	/* s, rounding in the timer's arithmetic */

struct expired {
	struct tq	*e_queue;
	struct tq_node	*e_node[MAXEXP];
	ev_tstamp	 e_now[MAXEXP];	/* the loop's time at each call */
	unsigned	 e_n;
	struct tq_node	*e_remove[2];	/* removed when e_node[0] expires */
};

static struct ev_loop	*loop;
static ev_timer		 watchdog;
static int		 watchdog_fired;

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

static void
watchdog_cb(struct ev_loop *l, ev_timer *t, int revents)
{
	(void)l;
	(void)t;
	(void)revents;
	watchdog_fired = 1;
}

static int
setup(void **state)
{
	(void)state;
	loop = ev_loop_new(EVFLAG_AUTO);
	if (loop == NULL)
		return -1;
	watchdog_fired = 0;
	ev_timer_init(&watchdog, watchdog_cb, WATCHDOG, 0.);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	ev_timer_stop(loop, &watchdog);
	ev_loop_destroy(loop);
	loop = NULL;
	return 0;
}

/* Records each expired member, and removes the members of e_remove when
 * the first one expires. */
static void
expire_cb(struct tq_node *n, void *arg)
{
	struct expired	*e = arg;
	unsigned	 i;

	/* A member is out of its queue by the time it is called back. */
	assert_null(n->tn_queue);
	assert_null(n->tn_prev);
	assert_null(n->tn_next);
	assert_true(e->e_queue->tq_head != n);
	assert_true(e->e_n < MAXEXP);
	e->e_now[e->e_n] = ev_now(loop);
	e->e_node[e->e_n++] = n;
	if (e->e_n == 1)
		for (i = 0; i < 2; i++)
			if (e->e_remove[i] != NULL)
				tq_remove(e->e_remove[i]);
}

static void
queue_init(struct tq *q, ev_tstamp timeout, struct expired *e)
{
	memset(e, 0, sizeof(*e));
	e->e_queue = q;
	tq_init(q, loop, timeout, expire_cb, e);
}

/* The queue holds exactly the n nodes of want, in that order, linked
 * both ways, with deadlines that never decrease. */
static void
assert_queue(const struct tq *q, struct tq_node **want, unsigned n)
{
	const struct tq_node	*p, *prev = NULL;
	unsigned		 i = 0;

	for (p = q->tq_head; p != NULL; prev = p, p = p->tn_next, i++) {
		assert_true(i < n);
		assert_ptr_equal(p, want[i]);
		assert_ptr_equal(p->tn_queue, q);
		assert_ptr_equal(p->tn_prev, prev);
		if (prev != NULL)
			assert_true(prev->tn_deadline <= p->tn_deadline);
	}
	assert_int_equal(i, n);
	assert_ptr_equal(q->tq_tail, prev);
	if (n == 0)
		assert_null(q->tq_head);
}

static void
assert_unqueued(const struct tq_node *n)
{
	assert_null(n->tn_queue);
	assert_null(n->tn_prev);
	assert_null(n->tn_next);
}

/* The queue's timer is running and fires within `within` from now. */
static void
assert_armed_within(struct tq *q, ev_tstamp within)
{
	assert_true(ev_is_active(&q->tq_timer));
	if (ev_timer_remaining(loop, &q->tq_timer) > within + SLACK)
		fail_msg("timer fires in %g s, expected at most %g s",
		    ev_timer_remaining(loop, &q->tq_timer), within);
}

/* Runs the loop one iteration at a time until `want` members have
 * expired or the watchdog fires; fails in the latter case. */
static void
run_until(const struct expired *e, unsigned want)
{
	ev_timer_start(loop, &watchdog);
	while (e->e_n < want && !watchdog_fired)
		ev_run(loop, EVRUN_ONCE);
	ev_timer_stop(loop, &watchdog);
	if (e->e_n < want)
		fail_msg("%u of %u members expired within %.1f s", e->e_n,
		    want, WATCHDOG);
}

/* ------------------------------------------------------------------ */
/* Order and deadlines                                                 */
/* ------------------------------------------------------------------ */

static void
test_add_order(void **state)
{
	struct tq	 q;
	struct expired	 e;
	struct tq_node	 a, b, c;
	ev_tstamp	 now = ev_now(loop), later;

	(void)state;
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	memset(&c, 0, sizeof(c));
	queue_init(&q, 5., &e);
	assert_queue(&q, NULL, 0);
	assert_false(ev_is_active(&q.tq_timer));

	tq_add(&q, &a);
	assert_queue(&q, (struct tq_node *[]){ &a }, 1);
	assert_true(ev_is_active(&q.tq_timer));
	tq_add(&q, &b);
	tq_add(&q, &c);
	assert_queue(&q, (struct tq_node *[]){ &a, &b, &c }, 3);
	assert_true(a.tn_deadline == now + 5.);
	assert_true(b.tn_deadline == now + 5.);
	assert_true(c.tn_deadline == now + 5.);
	/* The timer is set for the head. */
	assert_true(ev_timer_remaining(loop, &q.tq_timer) > 4.9);
	assert_armed_within(&q, 5.);

	/* Activity moves a member to the tail with a fresh deadline. */
	ev_now_update(loop);
	later = ev_now(loop);
	assert_true(later >= now);
	tq_add(&q, &a);
	assert_queue(&q, (struct tq_node *[]){ &b, &c, &a }, 3);
	assert_true(a.tn_deadline == later + 5.);
	tq_add(&q, &a);		/* already the tail */
	assert_queue(&q, (struct tq_node *[]){ &b, &c, &a }, 3);
	tq_add(&q, &c);
	assert_queue(&q, (struct tq_node *[]){ &b, &a, &c }, 3);
	assert_true(b.tn_deadline == now + 5.);

	tq_remove(&a);
	tq_remove(&b);
	tq_remove(&c);
	assert_queue(&q, NULL, 0);
	ev_timer_stop(loop, &q.tq_timer);
	assert_int_equal(e.e_n, 0);
}

/* A member moves from one queue to another. */
static void
test_add_other_queue(void **state)
{
	struct tq	 q1, q2;
	struct expired	 e1, e2;
	struct tq_node	 a, b;
	ev_tstamp	 now = ev_now(loop);

	(void)state;
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	queue_init(&q1, 5., &e1);
	queue_init(&q2, 7., &e2);
	tq_add(&q1, &a);
	tq_add(&q1, &b);
	tq_add(&q2, &a);
	assert_queue(&q1, (struct tq_node *[]){ &b }, 1);
	assert_queue(&q2, (struct tq_node *[]){ &a }, 1);
	assert_true(a.tn_deadline == now + 7.);
	tq_remove(&a);
	tq_remove(&b);
	assert_queue(&q1, NULL, 0);
	assert_queue(&q2, NULL, 0);
	ev_timer_stop(loop, &q1.tq_timer);
	ev_timer_stop(loop, &q2.tq_timer);
}

static void
test_remove(void **state)
{
	struct tq	 q;
	struct expired	 e;
	struct tq_node	 a, b, c, d, e5, lone;

	(void)state;
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	memset(&c, 0, sizeof(c));
	memset(&d, 0, sizeof(d));
	memset(&e5, 0, sizeof(e5));
	memset(&lone, 0, sizeof(lone));
	queue_init(&q, 5., &e);
	tq_add(&q, &a);
	tq_add(&q, &b);
	tq_add(&q, &c);
	tq_add(&q, &d);
	tq_add(&q, &e5);

	tq_remove(&c);		/* middle */
	assert_unqueued(&c);
	assert_queue(&q, (struct tq_node *[]){ &a, &b, &d, &e5 }, 4);
	tq_remove(&a);		/* head */
	assert_unqueued(&a);
	assert_queue(&q, (struct tq_node *[]){ &b, &d, &e5 }, 3);
	tq_remove(&e5);		/* tail */
	assert_unqueued(&e5);
	assert_queue(&q, (struct tq_node *[]){ &b, &d }, 2);

	/* A node in no queue, and one removed already, are left alone. */
	tq_remove(&lone);
	assert_unqueued(&lone);
	tq_remove(&c);
	assert_unqueued(&c);
	assert_queue(&q, (struct tq_node *[]){ &b, &d }, 2);

	/* A removed node can be added again. */
	tq_add(&q, &c);
	assert_queue(&q, (struct tq_node *[]){ &b, &d, &c }, 3);

	tq_remove(&d);
	tq_remove(&b);
	tq_remove(&c);
	assert_queue(&q, NULL, 0);
	ev_timer_stop(loop, &q.tq_timer);
	assert_int_equal(e.e_n, 0);
}

/* tq_add_fresh() times its deadline from the present moment, not from
 * the loop's last wake-up as tq_add_in() does, and its member then
 * expires no earlier than that. */
static void
test_add_fresh(void **state)
{
	struct tq	 q;
	struct expired	 e;
	struct tq_node	 stale, fresh;
	struct timespec	 ts = { 0, (long)(SHORT * 1e9) };
	ev_tstamp	 now, deadline;

	(void)state;
	memset(&stale, 0, sizeof(stale));
	memset(&fresh, 0, sizeof(fresh));
	queue_init(&q, 5., &e);
	ev_now_update(loop);
	now = ev_now(loop);
	/* Time passes while the loop works: its time stands still. */
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
	assert_true(ev_now(loop) == now);
	tq_add_in(&q, &stale, SHORT);
	assert_true(stale.tn_deadline == now + SHORT);
	tq_add_fresh(&q, &fresh, SHORT);
	deadline = fresh.tn_deadline;
	assert_true(ev_now(loop) >= now + SHORT - 1e-3);
	assert_true(deadline == ev_now(loop) + SHORT);
	assert_queue(&q, (struct tq_node *[]){ &stale, &fresh }, 2);

	run_until(&e, 2);
	assert_ptr_equal(e.e_node[0], &stale);
	assert_ptr_equal(e.e_node[1], &fresh);
	assert_true(e.e_now[1] >= deadline);
	assert_queue(&q, NULL, 0);
}

/* Other timeouts are inserted in deadline order; among equal deadlines
 * the newcomer goes last. */
static void
test_add_in_order(void **state)
{
	struct tq	 q;
	struct expired	 e;
	struct tq_node	 a, b, c, d, f, g, h;
	ev_tstamp	 now = ev_now(loop);

	(void)state;
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	memset(&c, 0, sizeof(c));
	memset(&d, 0, sizeof(d));
	memset(&f, 0, sizeof(f));
	memset(&g, 0, sizeof(g));
	memset(&h, 0, sizeof(h));
	queue_init(&q, 10., &e);

	/* Into an empty queue. */
	tq_add_in(&q, &a, 3.);
	assert_queue(&q, (struct tq_node *[]){ &a }, 1);
	assert_true(a.tn_deadline == now + 3.);
	tq_add(&q, &b);
	assert_queue(&q, (struct tq_node *[]){ &a, &b }, 2);

	tq_add_in(&q, &c, 1.);		/* before everything */
	assert_queue(&q, (struct tq_node *[]){ &c, &a, &b }, 3);
	tq_add_in(&q, &d, 20.);		/* after everything */
	assert_queue(&q, (struct tq_node *[]){ &c, &a, &b, &d }, 4);
	tq_add_in(&q, &f, 5.);		/* in the middle */
	assert_queue(&q, (struct tq_node *[]){ &c, &a, &f, &b, &d }, 5);
	tq_add_in(&q, &g, 10.);		/* ties with b: after it */
	assert_queue(&q, (struct tq_node *[]){ &c, &a, &f, &b, &g, &d }, 6);
	tq_add_in(&q, &h, 1.);		/* ties with the head */
	assert_queue(&q,
	    (struct tq_node *[]){ &c, &h, &a, &f, &b, &g, &d }, 7);
	assert_true(c.tn_deadline == now + 1.);
	assert_true(h.tn_deadline == now + 1.);
	assert_true(f.tn_deadline == now + 5.);
	assert_true(g.tn_deadline == now + 10.);
	assert_true(d.tn_deadline == now + 20.);

	/* Re-adding a member with another timeout moves it. */
	tq_add_in(&q, &d, 2.);
	assert_queue(&q,
	    (struct tq_node *[]){ &c, &h, &d, &a, &f, &b, &g }, 7);
	tq_add_in(&q, &c, 30.);
	assert_queue(&q,
	    (struct tq_node *[]){ &h, &d, &a, &f, &b, &g, &c }, 7);
	tq_add(&q, &h);
	assert_queue(&q,
	    (struct tq_node *[]){ &d, &a, &f, &b, &g, &h, &c }, 7);

	tq_remove(&a);
	tq_remove(&b);
	tq_remove(&c);
	tq_remove(&d);
	tq_remove(&f);
	tq_remove(&g);
	tq_remove(&h);
	assert_queue(&q, NULL, 0);
	ev_timer_stop(loop, &q.tq_timer);
}

/* A new head with a shorter timeout re-arms the timer, and the timer
 * fires for it rather than for the queue's own timeout. */
static void
test_add_in_rearms(void **state)
{
	struct tq	 q;
	struct expired	 e;
	struct tq_node	 a, b;
	ev_tstamp	 start;

	(void)state;
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	queue_init(&q, 10., &e);
	tq_add(&q, &a);
	assert_true(ev_timer_remaining(loop, &q.tq_timer) > 9.);

	tq_add_in(&q, &b, SHORT);
	assert_queue(&q, (struct tq_node *[]){ &b, &a }, 2);
	assert_armed_within(&q, SHORT);

	start = ev_now(loop);
	run_until(&e, 1);
	assert_int_equal(e.e_n, 1);
	assert_ptr_equal(e.e_node[0], &b);
	assert_true(e.e_now[0] >= b.tn_deadline);
	assert_true(e.e_now[0] - start < WATCHDOG);
	/* a is still there, and the timer now waits for it. */
	assert_queue(&q, (struct tq_node *[]){ &a }, 1);
	assert_true(ev_is_active(&q.tq_timer));
	assert_true(ev_timer_remaining(loop, &q.tq_timer) > 9.);

	tq_remove(&a);
	ev_timer_stop(loop, &q.tq_timer);
}

/* A longer timeout than the queue's does not re-arm a running timer:
 * it fires early, finds nothing due and waits again.  The member still
 * expires no earlier than its deadline. */
static void
test_add_in_longer(void **state)
{
	struct tq	 q;
	struct expired	 e;
	struct tq_node	 a, b;

	(void)state;
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	queue_init(&q, SHORT / 2, &e);
	tq_add(&q, &a);
	tq_remove(&a);
	assert_true(ev_is_active(&q.tq_timer));	/* left running */
	tq_add_in(&q, &b, 2 * SHORT);
	assert_queue(&q, (struct tq_node *[]){ &b }, 1);
	assert_armed_within(&q, SHORT / 2);

	run_until(&e, 1);
	assert_int_equal(e.e_n, 1);
	assert_ptr_equal(e.e_node[0], &b);
	assert_true(e.e_now[0] >= b.tn_deadline);
	assert_unqueued(&a);
	assert_queue(&q, NULL, 0);
	assert_false(ev_is_active(&q.tq_timer));
}

/* A queue whose timer waits for a member with a longer timeout than the
 * queue's: a member added with the queue's own timeout, or a shorter one,
 * goes before it and must be expired at its own deadline, not when the
 * longer one is due. */
static void
test_add_before_longer(void **state)
{
	struct tq	 q;
	struct expired	 e;
	struct tq_node	 far, b, c;

	(void)state;
	memset(&far, 0, sizeof(far));
	memset(&b, 0, sizeof(b));
	memset(&c, 0, sizeof(c));
	queue_init(&q, SHORT, &e);
	tq_add_in(&q, &far, 10.);
	assert_true(ev_timer_remaining(loop, &q.tq_timer) > 9.);

	tq_add(&q, &b);
	assert_queue(&q, (struct tq_node *[]){ &b, &far }, 2);
	assert_armed_within(&q, SHORT);
	run_until(&e, 1);
	assert_int_equal(e.e_n, 1);
	assert_ptr_equal(e.e_node[0], &b);

	/* Now armed for far again: the same with a longer timeout that is
	 * still shorter than far's. */
	assert_queue(&q, (struct tq_node *[]){ &far }, 1);
	tq_add_in(&q, &c, 2 * SHORT);
	assert_queue(&q, (struct tq_node *[]){ &c, &far }, 2);
	assert_armed_within(&q, 2 * SHORT);
	run_until(&e, 2);
	assert_int_equal(e.e_n, 2);
	assert_ptr_equal(e.e_node[1], &c);

	assert_queue(&q, (struct tq_node *[]){ &far }, 1);
	tq_remove(&far);
	ev_timer_stop(loop, &q.tq_timer);
}

static void
test_shorten(void **state)
{
	struct tq	 q;
	struct expired	 e;
	struct tq_node	 a, b, c, d, f;
	ev_tstamp	 now = ev_now(loop);

	(void)state;
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	memset(&c, 0, sizeof(c));
	memset(&d, 0, sizeof(d));
	memset(&f, 0, sizeof(f));
	queue_init(&q, 10., &e);
	tq_add_in(&q, &a, 1.);
	tq_add(&q, &b);
	tq_add_in(&q, &c, 20.);
	tq_add_in(&q, &d, 4.);
	assert_queue(&q, (struct tq_node *[]){ &a, &d, &b, &c }, 4);

	/* A limit above every deadline changes nothing. */
	tq_shorten(&q, 30.);
	assert_true(q.tq_timeout == 10.);
	assert_true(a.tn_deadline == now + 1.);
	assert_true(d.tn_deadline == now + 4.);
	assert_true(b.tn_deadline == now + 10.);
	assert_true(c.tn_deadline == now + 20.);

	tq_shorten(&q, 5.);
	assert_queue(&q, (struct tq_node *[]){ &a, &d, &b, &c }, 4);
	assert_true(a.tn_deadline == now + 1.);
	assert_true(d.tn_deadline == now + 4.);
	assert_true(b.tn_deadline == now + 5.);
	assert_true(c.tn_deadline == now + 5.);
	/* Members added later get the shorter timeout too. */
	assert_true(q.tq_timeout == 5.);
	tq_add(&q, &f);
	assert_queue(&q, (struct tq_node *[]){ &a, &d, &b, &c, &f }, 5);
	assert_true(f.tn_deadline == now + 5.);
	assert_armed_within(&q, 1.);

	/* Below every deadline: all equal, order kept. */
	tq_shorten(&q, .5);
	assert_queue(&q, (struct tq_node *[]){ &a, &d, &b, &c, &f }, 5);
	assert_true(a.tn_deadline == now + .5);
	assert_true(f.tn_deadline == now + .5);
	assert_true(q.tq_timeout == .5);
	assert_armed_within(&q, .5);

	tq_remove(&a);
	tq_remove(&b);
	tq_remove(&c);
	tq_remove(&d);
	tq_remove(&f);
	ev_timer_stop(loop, &q.tq_timer);
	assert_int_equal(e.e_n, 0);
}

/* Shortening re-arms the timer: the members expire at the new limit. */
static void
test_shorten_expires(void **state)
{
	struct tq	 q;
	struct expired	 e;
	struct tq_node	 a, b;

	(void)state;
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	queue_init(&q, 10., &e);
	tq_add(&q, &a);
	tq_add(&q, &b);
	tq_shorten(&q, SHORT);
	assert_armed_within(&q, SHORT);

	/* Due together, they expire in one wake-up. */
	run_until(&e, 1);
	assert_int_equal(e.e_n, 2);
	assert_ptr_equal(e.e_node[0], &a);
	assert_ptr_equal(e.e_node[1], &b);
	assert_queue(&q, NULL, 0);
	assert_false(ev_is_active(&q.tq_timer));
}

/* ------------------------------------------------------------------ */
/* Expiry                                                              */
/* ------------------------------------------------------------------ */

/* Every member due is called back, head first; the others stay. */
static void
test_expire_order(void **state)
{
	struct tq	 q;
	struct expired	 e;
	struct tq_node	 a, b, c, d, far;
	unsigned	 i;

	(void)state;
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	memset(&c, 0, sizeof(c));
	memset(&d, 0, sizeof(d));
	memset(&far, 0, sizeof(far));
	queue_init(&q, SHORT, &e);
	tq_add(&q, &b);
	tq_add(&q, &c);
	tq_add_in(&q, &a, SHORT / 2);
	tq_add(&q, &d);
	tq_add_in(&q, &far, 10.);
	assert_queue(&q, (struct tq_node *[]){ &a, &b, &c, &d, &far }, 5);

	/* a comes due first, the others together after it: whether one
	 * wake-up or two serve them, the order is the queue's. */
	run_until(&e, 4);
	assert_int_equal(e.e_n, 4);
	assert_ptr_equal(e.e_node[0], &a);
	assert_ptr_equal(e.e_node[1], &b);
	assert_ptr_equal(e.e_node[2], &c);
	assert_ptr_equal(e.e_node[3], &d);
	for (i = 0; i < 4; i++)
		assert_true(e.e_now[i] >= e.e_node[i]->tn_deadline);
	assert_queue(&q, (struct tq_node *[]){ &far }, 1);
	assert_true(ev_is_active(&q.tq_timer));
	assert_true(ev_timer_remaining(loop, &q.tq_timer) > 9.);

	tq_remove(&far);
	ev_timer_stop(loop, &q.tq_timer);
}

/* The callback for one member removes others, due or not: they are not
 * called back, and the rest still are. */
static void
test_expire_callback_removes(void **state)
{
	struct tq	 q;
	struct expired	 e;
	struct tq_node	 a, b, c, d;

	(void)state;
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	memset(&c, 0, sizeof(c));
	memset(&d, 0, sizeof(d));
	queue_init(&q, SHORT, &e);
	tq_add(&q, &a);
	tq_add(&q, &b);
	tq_add(&q, &c);
	tq_add_in(&q, &d, 10.);
	e.e_remove[0] = &b;	/* due with a */
	e.e_remove[1] = &d;	/* not due */

	run_until(&e, 1);
	assert_int_equal(e.e_n, 2);
	assert_ptr_equal(e.e_node[0], &a);
	assert_ptr_equal(e.e_node[1], &c);
	assert_unqueued(&b);
	assert_unqueued(&d);
	assert_queue(&q, NULL, 0);
	assert_false(ev_is_active(&q.tq_timer));
}

/* A queue emptied by removals stops its timer when it fires, without a
 * callback. */
static void
test_empty_stops_timer(void **state)
{
	struct tq	 q;
	struct expired	 e;
	struct tq_node	 a, b;
	int		 stopped = 0;

	(void)state;
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	queue_init(&q, SHORT, &e);
	tq_add(&q, &a);
	tq_add(&q, &b);
	tq_remove(&a);
	tq_remove(&b);
	assert_queue(&q, NULL, 0);
	assert_true(ev_is_active(&q.tq_timer));

	ev_timer_start(loop, &watchdog);
	while (!(stopped = !ev_is_active(&q.tq_timer)) && !watchdog_fired)
		ev_run(loop, EVRUN_ONCE);
	ev_timer_stop(loop, &watchdog);
	assert_true(stopped);
	assert_int_equal(e.e_n, 0);

	/* Added again, the queue arms its timer again. */
	tq_add(&q, &a);
	assert_true(ev_is_active(&q.tq_timer));
	tq_remove(&a);
	ev_timer_stop(loop, &q.tq_timer);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_add_order, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_add_other_queue, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_remove, setup, teardown),
		cmocka_unit_test_setup_teardown(test_add_fresh, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_add_in_order, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_add_in_rearms, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_add_in_longer, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_add_before_longer, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_shorten, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shorten_expires, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_expire_order, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_expire_callback_removes,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_empty_stops_timer, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
