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
};

/* Who a connection's requests come from. */
struct answer_peer {
	struct client_addr	 ap_peer;	/* the TCP peer */
	struct client_addr	 ap_client;	/* the peer, or a believed
						 * PROXY source */
	uint8_t			 ap_textlen;
	char			 ap_text[HTTP_ADDR_MAX];	/* ap_client */
	const struct tls_info	*ap_tls;	/* NULL: plain */
};

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
int	 answer_write(struct answer_env *, const struct answer *, int,
	    const struct answer_peer *, int64_t, double);

/* The padding that follows the buffered response from ae_spaces. */
static inline size_t
answer_padding_sent(const struct answer *an)
{
	return an->an_head ? 0 : an->an_padding;
}

/* Past this many buffered bytes, a worker flushes before answering on. */
#define answer_batch_full(ae)	((ae)->ae_wlen > ANSWER_WRITE_BATCH)

#endif /* HELLOD_ANSWER_H */
