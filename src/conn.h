/*
 * The connection engine of the event-loop children: the async workers
 * and the status server.  It accepts (acceptor.c), reads and writes
 * through a transport (transport.h), parses requests (http.c) and has a
 * service decide each answer (answer.h); the service is all that differs
 * between a greeting worker and the status server.
 */
#ifndef HELLOD_CONN_H
#define HELLOD_CONN_H

#include <ev.h>

#include "hellod.h"
#include "answer.h"

/* A connection is in exactly one state, and each state has one timeout
 * queue: the state says which queue holds the connection. */
enum conn_state {
	CS_PROXY,	/* receiving the PROXY protocol header */
	CS_READING,	/* awaiting or receiving a request head */
	CS_DELAYED,	/* an answer waits for its delay */
	CS_WRITING,	/* output waits for the client to read */
	CS_IDLE,	/* persistent, between requests */
	CS_LINGERING,	/* closing: discarding what the client still sends */
	CS_NSTATES
};

#define CS_BIT(s)	(1u << (s))

struct service {
	answer_decide_fn	*sv_decide;
	unsigned		 sv_max_conns;	/* 0: [http] max_connections */
	/* At the connection limit, connections in these states are closed,
	 * oldest first, to admit new ones. */
	unsigned		 sv_reclaim;
	/* At a stop, connections in these states get ANSWER_DRAIN_GRACE to
	 * send one more request, then are closed. */
	unsigned		 sv_drain;
	/* Optional: a line said on connecting to a listener it accepts
	 * (its length into the buffer, or 0 for none); the connection
	 * then closes without reading (HAProxy's agent-check). */
	size_t			(*sv_banner)(const struct listener *, char *,
				    size_t);
};

void	 engine_init(struct ev_loop *, const struct hd_config *,
	    const struct hd_socket *, unsigned, const struct service *);
void	 engine_drain(void);

#endif /* HELLOD_CONN_H */
