/*
 * Answers: what both workers share between reading a request and writing
 * its response.  answer_decide() turns a parsed request (or a parse error)
 * into a pending answer and logs it; answer_write() appends the response
 * to the worker's write buffer.  The workers differ only in how they wait
 * for input, for the delay and for the client to read.
 */
#ifndef HELLOD_ANSWER_H
#define HELLOD_ANSWER_H

#include <stddef.h>
#include <stdint.h>

#include "client.h"
#include "http.h"

struct hd_config;
struct listener;
struct proxy_header;
struct sockaddr_storage;

#define ANSWER_READ_ROOM	16384	/* read size beyond max_header_size */
#define ANSWER_WRITE_BATCH	65536	/* flush pipelined responses past this */
#define ANSWER_LINGER_TIME	2.0	/* s of reading after an error answer */
#define ANSWER_LINGER_READ	0.5	/* s one lingering read may wait */
#define ANSWER_DRAIN_GRACE	1.0	/* s for an idle keep-alive client
					 * to send one more request when a
					 * stop begins */

/* One per worker process: buffers, limits and the Date cache. */
struct answer_env {
	const struct hd_config	*ae_cf;
	struct http_limits	 ae_limits;
	char			*ae_rbuf;	/* one read */
	size_t			 ae_rcap;
	char			*ae_wbuf;	/* the responses of one flush */
	size_t			 ae_wcap;
	size_t			 ae_wlen;
	char			*ae_spaces;	/* HTTP_PAD_CHUNK of padding */
	char			 ae_date[HTTP_DATE_LEN + 1];
	int64_t			 ae_date_sec;
	int			 ae_proxy_failing;	/* logged once a spell */
	/* [http] identity: the header line, formatted once (endpoints.c);
	 * empty when off. */
	char			 ae_ident[128];
	size_t			 ae_ident_len;
};

/* Who this process is, for /json and the identity header: set once by the
 * worker before answer_env_init() (endpoints.c). */
void	 answer_self_set(int, unsigned, const char *);

/* Who a connection's requests come from. */
struct answer_peer {
	struct client_addr	 ap_peer;	/* the TCP peer */
	struct client_addr	 ap_client;	/* the peer, or a believed
						 * PROXY source */
	uint8_t			 ap_textlen;
	char			 ap_text[HTTP_ADDR_MAX];	/* ap_client */
	const struct tls_info	*ap_tls;	/* NULL: plain */
	const struct listener	*ap_listener;	/* NULL: unknown */
	unsigned		 ap_requests;	/* complete heads so far,
						 * this one included */
	uint8_t			 ap_proxied;	/* a PROXY header named
						 * ap_proxy_src */
	uint8_t			 ap_proxy_used;	/* ... and it was believed */
	struct client_addr	 ap_proxy_src;
};

/* What answers a request (answer_decide()). */
enum answer_kind {
	ANSWER_GREETING,	/* the greeting, or the status's text */
	ANSWER_IP,		/* text/plain: the address and "\n" */
	ANSWER_JSON		/* application/json: endpoints.c */
};

/* Where the client address came from, for /json. */
enum answer_source {
	SOURCE_PEER,
	SOURCE_PROXY,
	SOURCE_FORWARDED	/* the configured forwarded header */
};

/* Faults asked for in the query (knobs.c), when query_knobs is on. */
#define FAULT_STATUS	0x1	/* ?status=: an_status with the greeting */
#define FAULT_CLOSE	0x2	/* ?close=1 */
#define FAULT_RESET	0x4	/* ?reset=1: no answer, RST */
#define FAULT_DELAY_BODY 0x8	/* ?delay_body=: head, wait, body */

/* A body other than the greeting, and its Content-Type. */
struct answer_body {
	const char	*ab_text;
	size_t		 ab_len;
	const char	*ab_type;
};

/* A decided answer, until it is written. */
struct answer {
	struct client_addr	 an_client;	/* when an_forwarded */
	uint8_t		 an_forwarded;	/* a forwarded header named it */
	uint16_t	 an_status;
	uint8_t		 an_head;	/* HEAD: no body */
	uint8_t		 an_keep;	/* the request allows persistence */
	uint8_t		 an_minor;	/* HTTP/1.0 says keep-alive aloud */
	uint8_t		 an_error;	/* a parse error: close, linger */
	uint8_t		 an_nostore;	/* Cache-Control: no-store */
	uint8_t		 an_vary;	/* Vary: Accept, User-Agent */
	uint8_t		 an_kind;	/* enum answer_kind */
	uint8_t		 an_source;	/* enum answer_source */
	uint8_t		 an_fault;	/* FAULT_* */
	uint8_t		 an_hops;	/* forwarded elements walked */
	uint8_t		 an_trusted;	/* ... of which trusted proxies */
	uint32_t	 an_delay_body;	/* ms between head and body */
	uint32_t	 an_delay;	/* ms to wait before writing */
	size_t		 an_padding;	/* greeting bytes sent from spaces */
	double		 an_start;	/* the request's first byte, s */
	/* A routed body (the status server's) instead of the greeting: it
	 * must stay valid until the answer is written. */
	const struct answer_body *an_body;
};

/* How a child decides its answers: the greeting (answer_decide) or the
 * status server's routes. */
typedef void answer_decide_fn(struct answer_env *, int,
    const struct http_request *, const struct answer_peer *, int64_t,
    struct answer *);

int	 answer_env_init(struct answer_env *, const struct hd_config *);
void	 answer_peer_init(struct answer_peer *,
	    const struct sockaddr_storage *);
void	 answer_peer_proxy(struct answer_env *, struct answer_peer *,
	    const struct proxy_header *);
void	 answer_proxy_refused(struct answer_env *, const struct answer_peer *);
int	 answer_proxy(struct answer_env *, struct answer_peer *,
	    const char *, size_t, size_t *);
answer_decide_fn answer_decide;
void	 answer_error(const struct http_request *, struct answer *);
/* What answer_write() writes of a response. */
enum answer_part {
	ANSWER_ALL,
	ANSWER_HEAD,		/* FAULT_DELAY_BODY: the head, not counted */
	ANSWER_BODY		/* ... then the body, counted */
};

int	 answer_write(struct answer_env *, const struct answer *, int,
	    const struct answer_peer *, int64_t, double);
void	 answer_faults_count(const struct answer *);
int	 answer_write_part(struct answer_env *, const struct answer *, int,
	    const struct answer_peer *, int64_t, double, enum answer_part);

/* endpoints.c: /ip and /json on the greeting's path. */
void	 endpoints_env_init(struct answer_env *);
void	 endpoints_route(const struct hd_config *,
	    const struct http_request *, struct answer *);
size_t	 endpoints_body(const struct answer_env *, const struct answer *,
	    const struct answer_peer *, int, char *, size_t);
#define ENDPOINTS_BODY_MAX	2048	/* /json's largest body */

/* The padding that follows the buffered response from ae_spaces: only
 * the greeting's, and none for HEAD or a status without a body. */
static inline size_t
answer_padding_sent(const struct answer *an)
{
	if (an->an_head || an->an_padding == 0)
		return 0;
	if (an->an_kind != ANSWER_GREETING || ((an->an_fault & FAULT_STATUS) &&
	    (an->an_status == 204 || an->an_status == 304)))
		return 0;
	return an->an_padding;
}

/* Past this many buffered bytes, a worker flushes before answering on. */
#define answer_batch_full(ae)	((ae)->ae_wlen > ANSWER_WRITE_BATCH)

#endif /* HELLOD_ANSWER_H */
