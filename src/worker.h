/*
 * The event-loop child (worker.c): the async workers and the status
 * server run the connection engine under one loop and one set of
 * signals.
 */
#ifndef HELLOD_WORKER_H
#define HELLOD_WORKER_H

#include "hellod.h"

struct service;

void	 worker_run(const struct hd_config *, const struct hd_socket *,
	    unsigned, const struct service *, const char *)
	    __attribute__((noreturn));

#endif /* HELLOD_WORKER_H */
