/*
 * The request side of a connection (see session.h), shared by the
 * event-loop engine and the completion engine.
 *
 * Memory: a session owns no buffer while idle.  Input is processed where
 * it arrived (the worker's read buffer, or a buffer the kernel picked
 * from the ring); only an incomplete request is kept, and it grows by
 * appending what arrives, so a head that trickles in is copied once, not
 * once per read.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>

#include "hellod.h"
#include "answer.h"
#include "session.h"
#include "stats.h"
#include "tq.h"

/* The figure each state is counted under (stats.h). */
static const int state_figure[CS_NSTATES] = {
	[CS_PROXY] = STATS_READING,
	[CS_READING] = STATS_READING,
	[CS_DELAYED] = STATS_DELAYED,
	[CS_WRITING] = STATS_WRITING,
	[CS_IDLE] = STATS_IDLE,
	[CS_LINGERING] = STATS_LINGERING,
};

/* A connection moves from one state to another; -1 is outside (new,
 * or closed). */
void
session_count(int from, int to)
{
	stats_conn_move(from < 0 ? -1 : state_figure[from],
	    to < 0 ? -1 : state_figure[to]);
}

static void
expire_close(struct tq_node *n, void *arg)
{
	const struct session_ops	*ops = arg;

	ops->so_close(n);
}

static void
expire_proxy(struct tq_node *n, void *arg)
{
	const struct session_ops	*ops = arg;

	session_eof(ops->so_se, ops->so_session(n));
	ops->so_close(n);
}

static void
expire_delay(struct tq_node *n, void *arg)
{
	const struct session_ops	*ops = arg;

	ops->so_delayed(n);
}

/*
 * One timeout queue per state.  A client has header_timeout to send a
 * PROXY header and a request head, and to take each part of a response;
 * keepalive_timeout between requests; ANSWER_LINGER_TIME to finish
 * sending once an error answer is out.
 */
/* A worker's shared session state, whatever moves its bytes; a worker
 * that cannot have its buffers does not start. */
void
session_env_init(struct session_env *se, struct ev_loop *loop,
    answer_decide_fn *decide, const struct hd_config *cf)
{
	se->se_loop = loop;
	se->se_decide = decide;
	se->se_draining = 0;
	if (answer_env_init(&se->se_ae, cf) == -1)
		exit(HD_EXIT_FAILURE);
}

void
session_queues_init(struct tq *q, struct ev_loop *loop,
    const struct hd_config *cf, const struct session_ops *ops)
{
	static const tq_expire_cb expire[CS_NSTATES] = {
		[CS_PROXY] = expire_proxy,
		[CS_READING] = expire_close,
		[CS_DELAYED] = expire_delay,
		[CS_WRITING] = expire_close,
		[CS_IDLE] = expire_close,
		[CS_LINGERING] = expire_close,
	};
	ev_tstamp	 timeout[CS_NSTATES];
	unsigned	 s;

	timeout[CS_PROXY] = cf->cf_header_timeout / 1000.;
	timeout[CS_READING] = cf->cf_header_timeout / 1000.;
	timeout[CS_DELAYED] = cf->cf_delay / 1000.;
	timeout[CS_WRITING] = cf->cf_header_timeout / 1000.;
	timeout[CS_IDLE] = cf->cf_keepalive_timeout / 1000.;
	timeout[CS_LINGERING] = ANSWER_LINGER_TIME;
	for (s = 0; s < CS_NSTATES; s++)
		tq_init(&q[s], loop, timeout[s], expire[s],
		    (void *)(uintptr_t)ops);
}

/* At the connection limit: the oldest connection in a state the service
 * can spare (idle keep-alive ones, as nginx does), or NULL. */
struct tq_node *
session_spare(struct tq *q, const struct service *sv)
{
	unsigned	 s;

	for (s = 0; s < CS_NSTATES; s++)
		if ((sv->sv_reclaim & CS_BIT(s)) && q[s].tq_head != NULL)
			return q[s].tq_head;
	return NULL;
}

/* A stop: connections in the states the service names get
 * ANSWER_DRAIN_GRACE to send one more request. */
void
session_queues_drain(struct tq *q, const struct service *sv)
{
	unsigned	 s;

	for (s = 0; s < CS_NSTATES; s++)
		if (sv->sv_drain & CS_BIT(s))
			tq_shorten(&q[s], ANSWER_DRAIN_GRACE);
}

void
session_init(struct session *s, const struct sockaddr_storage *ss,
    const struct listener *li)
{
	memset(s, 0, sizeof(*s));
	s->s_proxy = (li->li_opts & HD_LO_PROXY) != 0;
	answer_peer_init(&s->s_who, ss);
	s->s_who.ap_listener = li;
}

void
session_free(struct session *s)
{
	free(s->s_in);
	s->s_in = NULL;
	s->s_inlen = s->s_incap = 0;
}

static int64_t
now_sec(struct session_env *se)
{
	return (int64_t)ev_now(se->se_loop);
}

/* Writes one answer, or a part of it, into the write buffer. */
static void
respond_part(struct session_env *se, struct session *s,
    const struct answer *an, enum answer_part part)
{
	int	 rc;

	rc = answer_write_part(&se->se_ae, an, se->se_draining, &s->s_who,
	    now_sec(se), ev_now(se->se_loop), part);
	if (rc == -1)
		s->s_end = SE_ABORT;
	else if (rc == 1)
		s->s_end = an->an_error ? SE_LINGER : SE_CLOSE;
	/* The padding follows from the shared buffer of spaces: a client
	 * that reads slowly never makes the worker copy it. */
	s->s_pad_left = part == ANSWER_HEAD ? 0 : answer_padding_sent(an);
}

/*
 * Writes an answer whose delay (if any) is over.  ?delay_body=: only the
 * head now, and the body when the engine's CS_DELAYED timer fires
 * (session_delayed()); returns 1 then, and the engine waits
 * session_wait().  ?reset=: nothing, the engine resets the connection
 * (SE_RESET) once what precedes is sent.
 */
int
session_respond(struct session_env *se, struct session *s,
    const struct answer *an)
{
	if (an->an_fault & FAULT_RESET) {
		answer_faults_count(an);
		s->s_end = SE_RESET;
		return 0;
	}
	if ((an->an_fault & FAULT_DELAY_BODY) && !an->an_head) {
		respond_part(se, s, an, ANSWER_HEAD);
		s->s_pending = *an;
		s->s_body_wait = 1;
		return 1;
	}
	answer_faults_count(an);
	respond_part(se, s, an, ANSWER_ALL);
	return 0;
}

/* The pending answer's wait is over: its body, or the whole answer.
 * Returns 1 when its body waits in turn (session_respond()). */
int
session_delayed(struct session_env *se, struct session *s)
{
	if (s->s_body_wait) {
		s->s_body_wait = 0;
		answer_faults_count(&s->s_pending);
		respond_part(se, s, &s->s_pending, ANSWER_BODY);
		return 0;
	}
	return session_respond(se, s, &s->s_pending);
}

/*
 * Parses and answers the requests in buf[0..len), and returns why it
 * stopped; *off is what it consumed.  *answered counts the requests
 * completed.
 */
enum process_result
session_process(struct session_env *se, struct session *s, const char *buf,
    size_t len, size_t *off, unsigned *answered)
{
	struct http_request	 req;
	struct answer		 an;
	size_t			 used;
	int			 rc;

	*off = 0;
	for (;;) {
		/* Padding goes out after the buffer: one padded response
		 * per flush. */
		if (answer_batch_full(&se->se_ae) || s->s_pad_left > 0)
			return PR_FLUSH;
		if (*off == len)
			return PR_NEED_MORE;
		rc = http_stream_next(&s->s_stream, buf + *off, len - *off,
		    &se->se_ae.ae_limits, &req, &used);
		*off += used;
		if (rc == HTTP_NEED_MORE)
			return PR_NEED_MORE;
		if (rc == HTTP_DONE)
			s->s_who.ap_requests++;
		se->se_decide(&se->se_ae, rc, &req, &s->s_who, now_sec(se),
		    &an);
		an.an_start = s->s_req_start;
		if (rc == HTTP_DONE) {
			s->s_requests++;
			(*answered)++;
		}
		if (an.an_delay > 0) {
			s->s_pending = an;
			return PR_DELAYED;
		}
		if (session_respond(se, s, &an))
			return PR_DELAYED;
		if (s->s_end != SE_OPEN)
			return PR_CLOSE;
	}
}

/*
 * Keeps buf[off..len) as the session's unprocessed input.  A buffer the
 * session already owns is reused in place.
 */
int
session_keep_input(struct session *s, const char *buf, size_t len,
    size_t off)
{
	size_t	 n = len - off;

	if (buf == s->s_in) {
		if (n == 0) {
			free(s->s_in);
			s->s_in = NULL;
			s->s_incap = 0;
		} else if (off > 0)
			memmove(s->s_in, s->s_in + off, n);
		s->s_inlen = n;
		return 0;
	}
	/* buf is where a read landed: the session held nothing. */
	if (n > 0) {
		if ((s->s_in = malloc(n)) == NULL) {
			log_warn("malloc() failed");
			return -1;
		}
		memcpy(s->s_in, buf + off, n);
		s->s_incap = n;
	}
	s->s_inlen = n;
	return 0;
}

/*
 * Appends what was read to an incomplete request the session holds; the
 * buffer doubles, so a trickled head costs linear copying.  The held
 * input never exceeds max, a bound the engine sets (its reads do not
 * exceed the room left, or a client that floods is closed).
 */
static int
append_input(struct session *s, size_t max, const char *buf, size_t n)
{
	size_t	 cap = s->s_incap;
	char	*p;

	if (s->s_inlen + n > max) {
		log_debug("closing a connection holding %zu bytes of "
		    "unprocessed input", s->s_inlen + n);
		return -1;
	}
	if (s->s_inlen + n > cap) {
		while (cap < s->s_inlen + n)
			cap = cap < 256 ? 256 : cap * 2;
		if (cap > max)
			cap = max;
		if ((p = realloc(s->s_in, cap)) == NULL) {
			log_warn("realloc() failed");
			return -1;
		}
		s->s_in = p;
		s->s_incap = cap;
	}
	memcpy(s->s_in + s->s_inlen, buf, n);
	s->s_inlen += n;
	return 0;
}

/*
 * Keeps n bytes that arrived while the session cannot take them (its
 * answers wait for the client): session_process_held() answers them
 * later.  Held input is bounded by max.
 */
int
session_hold(struct session_env *se, struct session *s, const char *buf,
    size_t n, size_t max)
{
	if (s->s_inlen == 0 && !http_stream_busy(&s->s_stream))
		s->s_req_start = ev_now(se->se_loop);
	return append_input(s, max, buf, n);
}

/* Answers what the session holds: input kept by an earlier run. */
enum process_result
session_process_held(struct session_env *se, struct session *s,
    unsigned *answered)
{
	enum process_result	 pr;
	size_t			 off;

	pr = session_process(se, s, s->s_in, s->s_inlen, &off, answered);
	(void)session_keep_input(s, s->s_in, s->s_inlen, off);	/* in place */
	return pr;
}

/* The PROXY header at the start of buf[0..len) (answer_proxy()): 1 and
 * *off past it when whole, 0 when more must come, -1 when refused. */
int
session_proxy(struct session_env *se, struct session *s, const char *buf,
    size_t len, size_t *off)
{
	int	 rc;

	if ((rc = answer_proxy(&se->se_ae, &s->s_who, buf, len, off)) == 1)
		s->s_proxy = 0;
	return rc;
}

/*
 * Takes n > 0 bytes that arrived at buf: a PROXY header first where one
 * is due (answer_proxy()), then requests.  What is not consumed is kept;
 * held input is bounded by max.  Returns an SI_ value; with SI_PROXIED
 * and SI_DONE, *pr says why processing stopped.
 */
int
session_input(struct session_env *se, struct session *s, const char *buf,
    size_t n, size_t max, enum process_result *pr, unsigned *answered)
{
	size_t	 off = 0, used, len;
	int	 rc, ret = SI_DONE;

	/* Bytes that begin a request start its clock. */
	if (s->s_inlen == 0 && !http_stream_busy(&s->s_stream))
		s->s_req_start = ev_now(se->se_loop);
	if (s->s_inlen > 0) {
		if (append_input(s, max, buf, n) == -1)
			return SI_CLOSE;
		buf = s->s_in;
		len = s->s_inlen;
	} else
		/* The common case: whole requests straight from where
		 * they arrived. */
		len = n;
	*pr = PR_NEED_MORE;
	if (s->s_proxy) {
		if ((rc = session_proxy(se, s, buf, len, &off)) == -1)
			return SI_CLOSE;
		if (rc == 0)
			return session_keep_input(s, buf, len, 0) == -1 ?
			    SI_CLOSE : SI_PROXY;
		ret = SI_PROXIED;
	}
	*pr = session_process(se, s, buf + off, len - off, &used, answered);
	if (session_keep_input(s, buf, len, off + used) == -1)
		return SI_CLOSE;
	return ret;
}

/* The end of input: an incomplete request gets no response; part of a
 * PROXY header is a refused one. */
void
session_eof(struct session_env *se, struct session *s)
{
	if (s->s_proxy && s->s_inlen > 0)
		answer_proxy_refused(&se->se_ae, &s->s_who);
}
