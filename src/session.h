/*
 * A session: the request side of one client connection, whatever model
 * moves its bytes.  The event-loop engine (conn.c) and the completion
 * engine (uring.c) hand it what arrived; it parses, has the service
 * decide, writes the answers into the worker's write buffer and keeps
 * what must outlive the call (an incomplete request).  How a session
 * waits, sends and times out is its engine's business.
 */
#ifndef HELLOD_SESSION_H
#define HELLOD_SESSION_H

#include <sys/socket.h>

#include <ev.h>

#include "answer.h"
#include "tq.h"

struct hd_config;
struct listener;

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
	 * then closes without reading (HAProxy's agent-check).  The
	 * event-loop engine's only: the status server runs there. */
	size_t			(*sv_banner)(const struct listener *, char *,
				    size_t);
};

/*
 * What an engine does when a connection's time in its state runs out;
 * the queues (session_queues_init()) pass it as their argument.  Every
 * engine's connection begins with its tq_node.
 */
struct session_ops {
	void		 (*so_close)(struct tq_node *);
	struct session	*(*so_session)(struct tq_node *);
	/* The delay is over: write the answer and go on. */
	void		 (*so_delayed)(struct tq_node *);
	struct session_env *so_se;
};

/* How the connection ends once its output is sent. */
enum session_end {
	SE_OPEN,	/* it stays open for the next request */
	SE_CLOSE,	/* the last answer said Connection: close */
	SE_LINGER,	/* close, but unread input may remain: linger first */
	SE_ABORT,	/* close now: the answer could not be written */
	SE_RESET	/* ?reset=1: close with RST once what precedes is
			 * sent, nothing more */
};

/* Why processing stopped. */
enum process_result {
	PR_NEED_MORE,	/* every complete request is answered */
	PR_FLUSH,	/* the write buffer is full, or padding must go */
	PR_DELAYED,	/* an answer, or its body, waits for its delay
			 * (s_pending, session_wait()) */
	PR_CLOSE	/* the connection ends after what is written */
};

/* What every session of one worker shares. */
struct session_env {
	struct answer_env	 se_ae;
	answer_decide_fn	*se_decide;
	struct ev_loop		*se_loop;
	int			 se_draining;
};

struct session {
	enum session_end	 s_end;
	int			 s_proxy;	/* a PROXY header is due */
	unsigned		 s_requests;
	char			*s_in;		/* unprocessed input */
	size_t			 s_inlen;
	size_t			 s_incap;
	size_t			 s_pad_left;	/* padding to send after the
						 * write buffer */
	struct answer		 s_pending;	/* after PR_DELAYED */
	int			 s_body_wait;	/* ... its head is written */
	struct http_stream	 s_stream;
	ev_tstamp		 s_req_start;	/* first byte of the request */
	struct answer_peer	 s_who;
};

/* session_input() results */
#define SI_CLOSE	(-1)	/* close without more output */
#define SI_PROXY	0	/* still inside the PROXY header */
#define SI_PROXIED	1	/* the PROXY header ended: requests follow */
#define SI_DONE		2	/* requests processed (*pr says how far) */

void	 session_init(struct session *, const struct sockaddr_storage *,
	    const struct listener *);
void	 session_free(struct session *);
int	 session_respond(struct session_env *, struct session *,
	    const struct answer *);
int	 session_delayed(struct session_env *, struct session *);
enum process_result session_process(struct session_env *, struct session *,
	    const char *, size_t, size_t *, unsigned *);
int	 session_keep_input(struct session *, const char *, size_t, size_t);
int	 session_hold(struct session_env *, struct session *, const char *,
	    size_t, size_t);
enum process_result session_process_held(struct session_env *,
	    struct session *, unsigned *);
int	 session_proxy(struct session_env *, struct session *, const char *,
	    size_t, size_t *);
int	 session_input(struct session_env *, struct session *, const char *,
	    size_t, size_t, enum process_result *, unsigned *);
void	 session_eof(struct session_env *, struct session *);

void	 session_env_init(struct session_env *, struct ev_loop *,
	    answer_decide_fn *, const struct hd_config *);
void	 session_queues_init(struct tq *, struct ev_loop *,
	    const struct hd_config *, const struct session_ops *);
struct tq_node *session_spare(struct tq *, const struct service *);
void	 session_queues_drain(struct tq *, const struct service *);
void	 session_count(int, int);

/* Whether requests are under way: input held, or a head begun. */
static inline int
session_busy(const struct session *s)
{
	return s->s_inlen > 0 || http_stream_busy(&s->s_stream);
}

/* How long the pending answer (PR_DELAYED) waits, s: its delay, or
 * between its head and its body. */
static inline ev_tstamp
session_wait(const struct session *s)
{
	return (s->s_body_wait ? s->s_pending.an_delay_body :
	    s->s_pending.an_delay) / 1000.;
}

/* Whether the output written now is the connection's last: its FIN
 * follows (a reset sends none, and must not hold bytes back). */
static inline int
session_last(const struct session *s)
{
	return s->s_end != SE_OPEN && s->s_end != SE_RESET;
}

#endif /* HELLOD_SESSION_H */
