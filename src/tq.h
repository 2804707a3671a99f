/*
 * Timeout queues: every member of one queue has the same timeout, so
 * appending at the tail keeps the queue ordered by deadline and one
 * ev_timer (set to the head's deadline) serves them all.  Moving a member
 * to the tail on activity is O(1).
 */
#ifndef HELLOD_TQ_H
#define HELLOD_TQ_H

#include <ev.h>

struct tq;

struct tq_node {
	struct tq_node	*tn_prev;
	struct tq_node	*tn_next;
	struct tq	*tn_queue;
	ev_tstamp	 tn_deadline;
};

typedef void (*tq_expire_cb)(struct tq_node *, void *);

struct tq {
	ev_timer	 tq_timer;
	struct ev_loop	*tq_loop;
	ev_tstamp	 tq_timeout;
	struct tq_node	*tq_head;
	struct tq_node	*tq_tail;
	tq_expire_cb	 tq_expire;
	void		*tq_arg;
};

void	 tq_init(struct tq *, struct ev_loop *, ev_tstamp, tq_expire_cb,
	    void *);
void	 tq_add(struct tq *, struct tq_node *);
void	 tq_add_in(struct tq *, struct tq_node *, ev_tstamp);
void	 tq_add_fresh(struct tq *, struct tq_node *, ev_tstamp);
void	 tq_remove(struct tq_node *);
void	 tq_shorten(struct tq *, ev_tstamp);

#endif /* HELLOD_TQ_H */
