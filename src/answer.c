/*
 * The one answer path of both workers (see answer.h).  Nothing here does
 * I/O on a connection: the workers read, wait and write; this file
 * decides what is said, logs it and formats it.
 */
#include <stdlib.h>
#include <string.h>

#include "hellod.h"
#include "answer.h"
#include "knobs.h"
#include "proxy.h"
#include "stats.h"

_Static_assert(ANSWER_READ_ROOM >= PROXY_NEED_MAX,
    "the read buffer holds a whole PROXY header");

int
answer_env_init(struct answer_env *ae, const struct hd_config *cf)
{
	const char	*fwd = client_header_field(cf->cf_forward_header);
	size_t		 pad;

	memset(ae, 0, sizeof(*ae));
	ae->ae_cf = cf;
	ae->ae_limits.lim_max_header = cf->cf_max_header_size;
	ae->ae_limits.lim_max_fields = HTTP_MAX_FIELDS;
	/* The parser keeps the forwarded header only where it may count. */
	if (fwd != NULL && cf->cf_trusted.ct_n > 0) {
		ae->ae_limits.lim_forward = fwd;
		ae->ae_limits.lim_forward_len = strlen(fwd);
	}
	/* A worker holds a whole PROXY header, TLVs included, within
	 * ae_rcap before it answers: the read room alone covers it. */
	ae->ae_rcap = cf->cf_max_header_size + ANSWER_READ_ROOM;
	/* ANSWER_WRITE_BATCH bytes, then one more of the largest response
	 * (the padding only counts in its Content-Length). */
	pad = cf->cf_body_padding;
	if (cf->cf_query_knobs && cf->cf_query_max_padding > pad)
		pad = cf->cf_query_max_padding;
	ae->ae_wcap = ANSWER_WRITE_BATCH + http_response_max(pad);
	if ((ae->ae_rbuf = malloc(ae->ae_rcap)) == NULL ||
	    (ae->ae_wbuf = malloc(ae->ae_wcap)) == NULL ||
	    (ae->ae_spaces = malloc(HTTP_PAD_CHUNK)) == NULL) {
		log_warn("malloc() failed");
		free(ae->ae_rbuf);
		free(ae->ae_wbuf);
		return -1;
	}
	memset(ae->ae_spaces, ' ', HTTP_PAD_CHUNK);
	ae->ae_date_sec = -1;
	endpoints_env_init(ae);
	return 0;
}

/* A connection's addresses, printed once: the greeting names ap_client
 * unless a forwarded header names another. */
void
answer_peer_init(struct answer_peer *ap, const struct sockaddr_storage *ss)
{
	client_from_sockaddr(&ap->ap_peer, ss);
	ap->ap_client = ap->ap_peer;
	ap->ap_tls = NULL;
	ap->ap_listener = NULL;
	ap->ap_requests = 0;
	ap->ap_proxied = ap->ap_proxy_used = 0;
	ap->ap_textlen = (uint8_t)client_text(&ap->ap_client, ap->ap_text,
	    sizeof(ap->ap_text));
}

/*
 * A valid PROXY header names the client unless it is LOCAL (or UNKNOWN,
 * UNSPEC, UNIX: the socket's addresses stand).  With [proxy] trusted
 * empty, a proxy_listen address is itself the statement of trust; with it
 * set, a header from a peer outside it is parsed but not believed.
 */
void
answer_peer_proxy(struct answer_env *ae, struct answer_peer *ap,
    const struct proxy_header *ph)
{
	const struct client_trust	*trust = &ae->ae_cf->cf_trusted;

	if (ae->ae_proxy_failing) {
		log_info("PROXY headers are valid again");
		ae->ae_proxy_failing = 0;
	}
	if (ph->ph_local)
		return;
	client_from_sockaddr(&ap->ap_proxy_src, &ph->ph_src);
	ap->ap_proxied = 1;
	if (trust->ct_n > 0 && !client_trust_match(trust, &ap->ap_peer))
		return;
	ap->ap_proxy_used = 1;
	client_from_sockaddr(&ap->ap_client, &ph->ph_src);
	ap->ap_textlen = (uint8_t)client_text(&ap->ap_client, ap->ap_text,
	    sizeof(ap->ap_text));
}

/* A missing or malformed PROXY header: the connection is closed without
 * an answer (no guessing), logged once per spell of such connections. */
void
answer_proxy_refused(struct answer_env *ae, const struct answer_peer *ap)
{
	char	 peer[HTTP_ADDR_MAX];

	if (ae->ae_proxy_failing)
		return;
	ae->ae_proxy_failing = 1;
	client_text(&ap->ap_peer, peer, sizeof(peer));
	log_warnx("closing connections without a valid PROXY header "
	    "(first from %s)", peer);
}

/*
 * The PROXY header at the start of buf[0..len) of a connection on a
 * proxy_listen address, in both workers: 0 while it is incomplete, -1
 * when it is missing or malformed (the connection closes without an
 * answer), or 1 with *used the bytes it took, TLVs included, and the peer
 * updated: the HTTP stream starts at buf + *used.  Until then the worker
 * holds the incomplete header, at most PROXY_NEED_MAX bytes (within
 * ae_rcap, see above).
 */
int
answer_proxy(struct answer_env *ae, struct answer_peer *ap,
    const char *buf, size_t len, size_t *used)
{
	struct proxy_header	 ph;

	switch (proxy_parse(buf, len, &ph)) {
	case PROXY_NEED_MORE:
		return 0;
	case PROXY_ERROR:
		answer_proxy_refused(ae, ap);
		return -1;
	}
	answer_peer_proxy(ae, ap, &ph);
	*used = ph.ph_consumed;
	return 1;
}

static const char *
date_at(struct answer_env *ae, int64_t now)
{
	if (now != ae->ae_date_sec) {
		http_date(ae->ae_date, now);
		ae->ae_date_sec = now;
	}
	return ae->ae_date;
}

/* The client the greeting names: text in buf, or the connection's. */
static const char *
client_of(const struct answer *an, const struct answer_peer *ap,
    char buf[HTTP_ADDR_MAX], size_t *len)
{
	if (!an->an_forwarded) {
		*len = ap->ap_textlen;
		return ap->ap_text;
	}
	*len = client_text(&an->an_client, buf, HTTP_ADDR_MAX);
	return buf;
}

/*
 * nginx's realip with real_ip_recursive: when the connection's address is
 * a trusted proxy, the configured header's elements are walked from the
 * right while they name trusted proxies (client.c).
 */
static void
forwarded_client(const struct hd_config *cf, const struct http_request *req,
    const struct answer_peer *ap, struct answer *an)
{
	struct client_field	 f[HTTP_MAX_FIELDS];
	struct client_addr	 a = ap->ap_client;
	struct client_hops	 hops;
	unsigned		 i;

	an->an_source = ap->ap_proxy_used ? SOURCE_PROXY : SOURCE_PEER;
	if (req->req_nfwd == 0 || !client_trust_match(&cf->cf_trusted, &a))
		return;
	for (i = 0; i < req->req_nfwd; i++) {
		f[i].cf_value = req->req_fwd[i];
		f[i].cf_len = req->req_fwd_len[i];
	}
	client_walk_hops(cf->cf_forward_header, &cf->cf_trusted, f,
	    req->req_nfwd, &a, &hops);
	an->an_hops = hops.ch_hops > 255 ? 255 : (uint8_t)hops.ch_hops;
	an->an_trusted = hops.ch_trusted > 255 ? 255 :
	    (uint8_t)hops.ch_trusted;
	if (memcmp(&a, &ap->ap_client, sizeof(a)) != 0) {
		an->an_client = a;
		an->an_forwarded = 1;
		an->an_source = SOURCE_FORWARDED;
	}
}

/*
 * ?delay= and ?pad= replace the configured delay and padding of this
 * request; a malformed or excessive knob is a 400 that keeps the
 * connection (knobs.c).  Faults: ?status= composes with the others;
 * ?close= only ends the connection after the answer; ?reset= wins over
 * everything (no delay, no answer).
 */
static void
query_knobs(const struct hd_config *cf, const struct http_request *req,
    struct answer *an)
{
	struct knobs	 k;

	if (!cf->cf_query_knobs || req->req_query == NULL)
		return;
	if (knobs_parse(req->req_query, req->req_query_len, cf, &k) == -1) {
		an->an_status = 400;
		an->an_padding = 0;
		an->an_delay = 0;
		return;
	}
	if (k.kn_has_delay)
		an->an_delay = k.kn_delay;
	if (k.kn_has_pad)
		an->an_padding = k.kn_pad;
	if (k.kn_status != 0) {
		an->an_status = (uint16_t)k.kn_status;
		an->an_fault |= FAULT_STATUS;
	}
	if (k.kn_close) {
		an->an_keep = 0;
		an->an_fault |= FAULT_CLOSE;
	}
	if (k.kn_has_delay_body && k.kn_delay_body > 0) {
		an->an_delay_body = k.kn_delay_body;
		an->an_fault |= FAULT_DELAY_BODY;
	}
	if (k.kn_reset) {
		an->an_fault = FAULT_RESET;
		an->an_delay = an->an_delay_body = 0;
		an->an_keep = 0;
	}
}

static void
response_of(struct answer_env *ae, const struct answer *an, enum http_conn conn,
    const char *client, size_t clientlen, int64_t now,
    struct http_response *r)
{
	/* Every field, without a memset() call on the hot path. */
	r->rsp_status = an->an_status;
	r->rsp_head = an->an_head;
	r->rsp_conn = conn;
	r->rsp_date = now >= 0 ? date_at(ae, now) : NULL;
	r->rsp_addr = client;
	r->rsp_addr_len = clientlen;
	r->rsp_padding = an->an_padding;
	r->rsp_body = an->an_body != NULL ? an->an_body->ab_text : NULL;
	r->rsp_body_len = an->an_body != NULL ? an->an_body->ab_len : 0;
	r->rsp_type = an->an_body != NULL ? an->an_body->ab_type : NULL;
	r->rsp_nostore = an->an_nostore;
	r->rsp_vary = an->an_vary;
	r->rsp_ident = ae->ae_ident;
	r->rsp_ident_len = ae->ae_ident_len;
	r->rsp_fault = an->an_fault & FAULT_STATUS;
}

/* A parse error, or a method not served, as the parser answered it: the
 * connection closes after it (lingering, for an error). */
void
answer_error(const struct http_request *req, struct answer *an)
{
	memset(an, 0, sizeof(*an));
	an->an_status = (uint16_t)req->req_status;
	an->an_head = req->req_method == HTTP_HEAD;
	an->an_minor = (uint8_t)req->req_minor;
	an->an_error = req->req_status != 405;
}

/*
 * rc is the parser's result for req: HTTP_DONE or HTTP_ERROR.  The access
 * log records the request now, while its views into the input are valid:
 * the body bytes are those of the response, whatever delays it.
 */
void
answer_decide(struct answer_env *ae, int rc, const struct http_request *req,
    const struct answer_peer *ap, int64_t now, struct answer *an)
{
	const struct hd_config	*cf = ae->ae_cf;
	struct http_response	 r;
	char			 cbuf[HTTP_ADDR_MAX], pbuf[HTTP_ADDR_MAX];
	char			 body[ENDPOINTS_BODY_MAX];
	const char		*client;
	size_t			 clientlen;

	memset(an, 0, sizeof(*an));
	an->an_status = (uint16_t)req->req_status;
	an->an_head = req->req_method == HTTP_HEAD;
	an->an_minor = (uint8_t)req->req_minor;
	if (rc == HTTP_ERROR)
		an->an_error = 1;
	else {
		an->an_keep = req->req_keepalive && cf->cf_keepalive_timeout > 0;
		an->an_delay = cf->cf_delay;
		if (an->an_status == 200) {
			an->an_padding = cf->cf_body_padding;
			endpoints_route(cf, req, an);
			query_knobs(cf, req, an);
			/* A 400 for a knob is the plain error text. */
			if (an->an_status == 400 && !(an->an_fault &
			    FAULT_STATUS))
				an->an_kind = ANSWER_GREETING;
		}
		forwarded_client(cf, req, ap, an);
	}
	if (access_enabled()) {
		client = client_of(an, ap, cbuf, &clientlen);
		response_of(ae, an, HTTP_CONN_CLOSE, client, clientlen, -1, &r);
		client_text(&ap->ap_peer, pbuf, sizeof(pbuf));
		/* /ip and /json: the body as it will be written (but for a
		 * stop that closes the connection meanwhile). */
		if (an->an_kind != ANSWER_GREETING && an->an_body == NULL) {
			r.rsp_body = body;
			r.rsp_body_len = endpoints_body(ae, an, ap, an->an_keep,
			    body, sizeof(body));
			r.rsp_type = "";
		}
		access_log(client, pbuf, req, an->an_status,
		    an->an_head ? 0 : http_body_size(&r), now, ap->ap_tls);
	}
}

/* Room for n more bytes in the write buffer. */
static int
answer_room(struct answer_env *ae, size_t n)
{
	char	*p;

	if (ae->ae_wlen + n <= ae->ae_wcap)
		return 0;
	if ((p = realloc(ae->ae_wbuf, ae->ae_wlen + n)) == NULL) {
		log_warn("realloc() failed");
		return -1;
	}
	ae->ae_wbuf = p;
	ae->ae_wcap = ae->ae_wlen + n;
	return 0;
}

/*
 * Appends the response to the write buffer, which has room for it (the
 * caller flushes once answer_batch_full()), and counts it: every answer
 * of both workers passes here once.  `mono` is the clock of an_start.  A
 * stop in progress (draining) turns a persistent connection into a
 * closing one.  Returns 1 when the connection closes after this response,
 * -1 when it could not be written (out of memory: close now).
 */
/* Counts the faults an answer serves, once, when it is written (a reset
 * is counted by the worker that resets). */
void
answer_faults_count(const struct answer *an)
{
	if (an->an_fault == 0)
		return;
	if (an->an_fault & FAULT_STATUS)
		stats_fault(STATS_FAULT_STATUS);
	if (an->an_fault & FAULT_CLOSE)
		stats_fault(STATS_FAULT_CLOSE);
	if (an->an_fault & FAULT_DELAY_BODY)
		stats_fault(STATS_FAULT_DELAY_BODY);
	if (an->an_fault & FAULT_RESET)
		stats_fault(STATS_FAULT_RESET);
}

int
answer_write(struct answer_env *ae, const struct answer *an, int draining,
    const struct answer_peer *ap, int64_t now, double mono)
{
	return answer_write_part(ae, an, draining, ap, now, mono, ANSWER_ALL);
}

/*
 * answer_write() for a part of the response: a delayed body's answer is
 * written twice, its head (ANSWER_HEAD) and later its body (ANSWER_BODY),
 * and counted once, with the body.  The head's length does not depend on
 * the time (the Date field has a fixed width).
 */
int
answer_write_part(struct answer_env *ae, const struct answer *an,
    int draining, const struct answer_peer *ap, int64_t now, double mono,
    enum answer_part part)
{
	struct http_response	 r;
	struct answer_body	 routed;
	enum http_conn		 conn;
	char			 cbuf[HTTP_ADDR_MAX], *out;
	char			 body[ENDPOINTS_BODY_MAX];
	const char		*client;
	size_t			 clientlen, n, head;
	int			 head_only;

	if (!an->an_keep || draining)
		conn = HTTP_CONN_CLOSE;
	else
		conn = an->an_minor == 0 ? HTTP_CONN_KEEPALIVE :
		    HTTP_CONN_DEFAULT;
	client = client_of(an, ap, cbuf, &clientlen);
	response_of(ae, an, conn, client, clientlen, now, &r);
	if (an->an_kind != ANSWER_GREETING && an->an_body == NULL) {
		routed.ab_text = body;
		routed.ab_len = endpoints_body(ae, an, ap,
		    conn != HTTP_CONN_CLOSE, body, sizeof(body));
		routed.ab_type = an->an_kind == ANSWER_IP ?
		    "text/plain" : "application/json";
		r.rsp_body = routed.ab_text;
		r.rsp_body_len = routed.ab_len;
		r.rsp_type = routed.ab_type;
	}
	/* The greeting's largest answer is in ae_wcap; a routed body may
	 * need more. */
	if (r.rsp_body != NULL && answer_room(ae, http_response_size(&r)) ==
	    -1)
		return -1;
	out = ae->ae_wbuf + ae->ae_wlen;
	if (part == ANSWER_ALL) {
		n = http_response_write(out, &r);
		ae->ae_wlen += n;
		stats_request(an->an_status, n + answer_padding_sent(an),
		    mono - an->an_start);
		return conn == HTTP_CONN_CLOSE;
	}
	head_only = r.rsp_head;
	r.rsp_head = 1;
	head = http_response_size(&r);
	r.rsp_head = head_only;
	n = http_response_write(out, &r);
	if (part == ANSWER_HEAD) {
		ae->ae_wlen += head;
		return 0;
	}
	memmove(out, out + head, n - head);
	ae->ae_wlen += n - head;
	stats_request(an->an_status, n + answer_padding_sent(an),
	    mono - an->an_start);
	return conn == HTTP_CONN_CLOSE;
}
