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
#include "session.h"

void	 engine_init(struct ev_loop *, const struct hd_config *,
	    const struct hd_socket *, unsigned, const struct service *);
void	 engine_drain(void);

#endif /* HELLOD_CONN_H */
