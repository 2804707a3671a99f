/*
 * The uring workers (mode = uring): the event-loop child of worker.c,
 * but its connections' bytes move by completions on one io_uring
 * (liburing) instead of readiness: accepts armed ahead, multishot receive
 * into a ring of provided buffers, sends submitted in one batch per loop
 * iteration.  Requests are handled by session.c and answered by answer.c
 * exactly as in async mode; timeouts, states and figures are conn.c's.
 */
#ifndef HELLOD_URING_H
#define HELLOD_URING_H

#include <stddef.h>

#include <ev.h>

#include "hellod.h"

struct service;

/* uring.c: the engine of one worker */
void	 uring_init(struct ev_loop *, const struct hd_config *,
	    const struct hd_socket *, unsigned, const struct service *);
void	 uring_drain(void);
void	 uring_exit(void);

/* uring_probe.c: whether this kernel and sandbox let the engine run;
 * -1 with the reason in the buffer otherwise. */
int	 uring_probe(char *, size_t);
int	 uring_check(const struct hd_config *, char *, size_t);
int	 uring_refuse_tls(const struct hd_config *, char *, size_t);

#endif /* HELLOD_URING_H */
