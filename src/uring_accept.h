/*
 * Accepting in a uring worker (uring_accept.c): what acceptor.c does for
 * the event-loop children, on completions.  Single accepts, each with
 * its own address buffer, as many as there is room for below
 * max_connections; at the limit one per listening socket if the engine
 * can spare a connection for a newcomer, else none; none after running
 * out of descriptors or memory (listen_accept_error(); a timer resumes),
 * none for good once draining.
 */
#ifndef HELLOD_URING_ACCEPT_H
#define HELLOD_URING_ACCEPT_H

#include <sys/socket.h>

#include <ev.h>
#include <liburing.h>

#include "hellod.h"

/* A new connection, counted as open; uaccept_release() when it closes. */
typedef void uaccept_cb(int, const struct sockaddr_storage *,
    const struct listener *);
/* At the limit: whether a connection can be spared, and with `close`,
 * close the oldest such one. */
typedef int uaccept_reclaim_cb(int);

void	 uaccept_init(struct ev_loop *, const struct hd_socket *, unsigned,
	    unsigned, uaccept_cb *, uaccept_reclaim_cb *);
void	 uaccept_cqe(void *, const struct io_uring_cqe *);
void	 uaccept_release(void);
void	 uaccept_close(void);
unsigned uaccept_open(void);
int	 uaccept_armed(void);

#endif /* HELLOD_URING_ACCEPT_H */
