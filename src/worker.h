/*
 * The event-loop child (worker.c): the async workers and the status
 * server run the connection engine under one loop and one set of
 * signals.
 */
#ifndef HELLOD_WORKER_H
#define HELLOD_WORKER_H

#include "hellod.h"

#include <ev.h>

struct service;

/* How a child's connections are served: readiness (conn.c) or
 * completions (uring.c).  The loop, its signals and the service are the
 * same for both. */
struct worker_engine {
	void	(*we_init)(struct ev_loop *, const struct hd_config *,
		    const struct hd_socket *, unsigned,
		    const struct service *);
	void	(*we_drain)(void);
	void	(*we_exit)(void);	/* after the loop; may be NULL */
};

extern const struct worker_engine worker_readiness;

void	 worker_run(const struct hd_config *, const struct hd_socket *,
	    unsigned, const struct service *, const struct worker_engine *,
	    const char *) __attribute__((noreturn));

#endif /* HELLOD_WORKER_H */
