/*
 * The asynchronous worker's shared state: worker.c runs the loop, accepts
 * and handles signals; conn.c drives the connections.
 */
#ifndef HELLOD_WORKER_H
#define HELLOD_WORKER_H

#include <sys/socket.h>

#include <ev.h>

#include "hellod.h"
#include "answer.h"
#include "tq.h"

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

/* Why accepting stopped, if it did. */
enum accept_state {
	AS_ACCEPTING,
	AS_FULL,	/* max_connections: resumed by a close */
	AS_FAILING,	/* out of descriptors or memory: resumed by a timer */
	AS_STOPPED	/* draining */
};

struct conn;

struct worker {
	struct ev_loop		*w_loop;
	const struct hd_config	*w_cf;
	struct answer_env	 w_env;
	ev_io			*w_accept;
	unsigned		 w_nlisten;
	ev_timer		 w_accept_timer;
	enum accept_state	 w_accept_state;
	int			 w_accept_failing;	/* logged once a spell */
	ev_signal		 w_sigterm, w_sigquit, w_sigusr1;
	struct tq		 w_queue[CS_NSTATES];
	unsigned		 w_nconns;
	int			 w_draining;
	struct conn		*w_free;
	unsigned		 w_nfree;
};

extern struct worker	 wk;

/* conn.c */
void	 conn_new(int, const struct sockaddr_storage *, const struct listener *);
void	 conn_expire_close(struct tq_node *, void *);
void	 conn_expire_proxy(struct tq_node *, void *);
void	 conn_expire_delay(struct tq_node *, void *);

/* worker.c */
void	 accept_start(void);

#endif /* HELLOD_WORKER_H */
