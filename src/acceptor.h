/*
 * Accepting connections in an event-loop child (the async workers and the
 * status server): one watcher per listening socket, accept4() until the
 * queue is empty, a pause at the connection limit and after running out
 * of descriptors or memory (listen_accept_error()), and, at the limit, a
 * chance for the owner to close a connection it can spare (an idle
 * keep-alive one) so that a new client is not left in the listen queue.
 */
#ifndef HELLOD_ACCEPTOR_H
#define HELLOD_ACCEPTOR_H

#include <sys/socket.h>

#include <ev.h>

#include "hellod.h"

enum acceptor_state {
	AC_ACCEPTING,
	AC_FULL,	/* the connection limit: resumed by a release */
	AC_FAILING,	/* out of descriptors or memory: resumed by a timer */
	AC_STOPPED	/* for good: draining */
};

/* A new connection, non-blocking and close-on-exec, counted as open. */
typedef void acceptor_accept_cb(void *, int, const struct sockaddr_storage *,
    const struct listener *);
/* At the limit: whether a connection can be spared, and with `close`, close
 * the oldest such one. */
typedef int acceptor_reclaim_cb(void *, int);

/* One listening socket's watcher. */
struct acceptor_io {
	ev_io			 ai_io;
	struct acceptor		*ai_ac;
	const struct listener	*ai_listener;
};

struct acceptor {
	struct ev_loop		*ac_loop;
	struct acceptor_io	*ac_io;
	unsigned		 ac_nio;
	ev_timer		 ac_timer;
	enum acceptor_state	 ac_state;
	int			 ac_failing;	/* logged once a spell */
	unsigned		 ac_nconns;
	unsigned		 ac_max;
	acceptor_accept_cb	*ac_accept;
	acceptor_reclaim_cb	*ac_reclaim;
	void			*ac_arg;
};

void	 acceptor_init(struct acceptor *, struct ev_loop *,
	    const struct hd_socket *, unsigned, unsigned, acceptor_accept_cb *,
	    acceptor_reclaim_cb *, void *);
void	 acceptor_release(struct acceptor *);
void	 acceptor_close(struct acceptor *);

#endif /* HELLOD_ACCEPTOR_H */
