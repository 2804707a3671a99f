/*
 * The answers for scripts ([http] endpoints = on): GET /ip, GET /json and
 * content negotiation on "/", and the identity header ([http] identity).
 *
 * Deciding (endpoints_route()) only sets the answer's kind and flags; the
 * body is formatted when the answer is written (endpoints_body()), from
 * the answer and the connection, so that a delayed answer needs no
 * buffer of its own.  What names this process (host, pid, worker,
 * generation, mode) is read once per worker, in endpoints_env_init().
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "hellod.h"
#include "answer.h"
#include "negotiate.h"
#include "tls.h"

#define HOST_MAX	256

static struct {
	int		 se_worker;	/* -1: not a worker (tests) */
	unsigned	 se_generation;
	const char	*se_mode;
	char		 se_host[HOST_MAX];
	long		 se_pid;
} self = { -1, 0, "async", "", 0 };

void
answer_self_set(int worker, unsigned generation, const char *mode)
{
	self.se_worker = worker;
	self.se_generation = generation;
	self.se_mode = mode;
}

/* Once per worker: the host name, the pid and the identity header. */
void
endpoints_env_init(struct answer_env *ae)
{
	int	 n;

	if (gethostname(self.se_host, sizeof(self.se_host)) == -1) {
		log_warn("gethostname() failed");
		snprintf(self.se_host, sizeof(self.se_host), "unknown");
	}
	self.se_host[sizeof(self.se_host) - 1] = '\0';
	self.se_pid = (long)getpid();
	ae->ae_ident_len = 0;
	if (!ae->ae_cf->cf_identity)
		return;
	n = snprintf(ae->ae_ident, sizeof(ae->ae_ident),
	    "X-Served-By: %.64s worker %d generation %u\r\n", self.se_host,
	    self.se_worker, self.se_generation);
	if (n > 0 && (size_t)n < sizeof(ae->ae_ident))
		ae->ae_ident_len = (size_t)n;
}

static int
path_is(const struct http_request *req, const char *lit, size_t n)
{
	return req->req_path_len == n && memcmp(req->req_path, lit, n) == 0;
}

/*
 * A GET or HEAD answered 200 by the greeting path: /ip and /json name
 * the client; "/" negotiates.  Other paths greet, as they always have.
 * Every answer of the three depends on the client: no-store.
 */
void
endpoints_route(const struct hd_config *cf, const struct http_request *req,
    struct answer *an)
{
	if (!cf->cf_endpoints)
		return;
	if (path_is(req, "/ip", 3))
		an->an_kind = ANSWER_IP;
	else if (path_is(req, "/json", 5))
		an->an_kind = ANSWER_JSON;
	else if (path_is(req, "/", 1)) {
		switch (negotiate_accept(req->req_accept,
		    req->req_accept_len)) {
		case NEG_ANY:
			if (negotiate_cli_agent(req->req_agent,
			    req->req_agent_len))
				an->an_kind = ANSWER_IP;
			break;
		case NEG_TEXT:
			an->an_kind = ANSWER_IP;
			break;
		case NEG_JSON:
			an->an_kind = ANSWER_JSON;
			break;
		default:	/* html, none acceptable, malformed */
			break;
		}
		an->an_vary = 1;
	} else
		return;
	an->an_nostore = 1;
}

/* Appends s as the contents of a JSON string (without its quotes). */
static size_t
json_str(char *out, size_t cap, size_t o, const char *s)
{
	static const char	 hex[] = "0123456789abcdef";
	unsigned char		 c;

	for (; *s != '\0'; s++) {
		c = (unsigned char)*s;
		if (o + 6 >= cap)
			break;
		if (c == '"' || c == '\\') {
			out[o++] = '\\';
			out[o++] = (char)c;
		} else if (c < 0x20 || c == 0x7f) {
			memcpy(out + o, "\\u00", 4);
			out[o + 4] = hex[c >> 4];
			out[o + 5] = hex[c & 15];
			o += 6;
		} else
			out[o++] = (char)c;
	}
	return o;
}

/* Appends text; what does not fit is cut (ENDPOINTS_BODY_MAX covers
 * /json's longest). */
static size_t
put(char *out, size_t cap, size_t o, const char *text)
{
	size_t	 n = strlen(text);

	if (o >= cap)
		return o;
	if (n > cap - o)
		n = cap - o;
	memcpy(out + o, text, n);
	return o + n;
}

#define PUTQ(s)	do {							\
	o = put(out, cap, o, "\"");					\
	o = json_str(out, cap, o, (s));					\
	o = put(out, cap, o, "\"");					\
} while (0)

static const char *
source_name(const struct hd_config *cf, const struct answer *an)
{
	if (an->an_source == SOURCE_PROXY)
		return "proxy";
	if (an->an_source != SOURCE_FORWARDED)
		return "peer";
	switch (cf->cf_forward_header) {
	case CLIENT_HEADER_XREALIP:
		return "x-real-ip";
	case CLIENT_HEADER_FORWARDED:
		return "forwarded";
	default:
		return "x-forwarded-for";
	}
}

static const char *
listener_kind(const struct listener *li)
{
	return li != NULL ? listen_opts_name(li->li_opts) : "unknown";
}

/*
 * The body of an ANSWER_IP or ANSWER_JSON answer into out (cap at least
 * ENDPOINTS_BODY_MAX): the client is the text the greeting would name.
 * `keep` says whether the connection stays open after this answer.
 */
size_t
endpoints_body(const struct answer_env *ae, const struct answer *an,
    const struct answer_peer *ap, int keep, char *out, size_t cap)
{
	const struct hd_config	*cf = ae->ae_cf;
	const struct listener	*li = ap->ap_listener;
	char			 client[HTTP_ADDR_MAX], addr[HTTP_ADDR_MAX];
	char			 num[160];
	size_t			 o = 0;

	if (an->an_forwarded)
		client_text(&an->an_client, client, sizeof(client));
	else {
		memcpy(client, ap->ap_text, ap->ap_textlen);
		client[ap->ap_textlen] = '\0';
	}
	if (an->an_kind == ANSWER_IP) {
		o = put(out, cap, o, client);
		return put(out, cap, o, "\n");
	}
	o = put(out, cap, o, "{\"client\":");
	PUTQ(client);
	client_text(&ap->ap_peer, addr, sizeof(addr));
	o = put(out, cap, o, ",\"peer\":");
	PUTQ(addr);
	o = put(out, cap, o, ",\"source\":");
	PUTQ(source_name(cf, an));
	o = put(out, cap, o, ",\"forwarded\":");
	if (cf->cf_trusted.ct_n > 0 &&
	    cf->cf_forward_header != CLIENT_HEADER_NONE) {
		o = put(out, cap, o, "{\"header\":");
		PUTQ(client_header_field(cf->cf_forward_header));
		snprintf(num, sizeof(num), ",\"hops\":%u,\"trusted\":%u}",
		    an->an_hops, an->an_trusted);
		o = put(out, cap, o, num);
	} else
		o = put(out, cap, o, "null");
	o = put(out, cap, o, ",\"proxy\":");
	if (ap->ap_proxied) {
		client_text(&ap->ap_proxy_src, addr, sizeof(addr));
		o = put(out, cap, o, "{\"source\":");
		PUTQ(addr);
		o = put(out, cap, o, ap->ap_proxy_used ? ",\"believed\":true}" :
		    ",\"believed\":false}");
	} else
		o = put(out, cap, o, "null");
	o = put(out, cap, o, ",\"server\":{\"host\":");
	PUTQ(self.se_host);
	snprintf(num, sizeof(num), ",\"pid\":%ld,\"worker\":%d,"
	    "\"generation\":%u,\"mode\":", self.se_pid, self.se_worker,
	    self.se_generation);
	o = put(out, cap, o, num);
	PUTQ(self.se_mode);
	o = put(out, cap, o, ",\"listener\":{\"address\":");
	PUTQ(li != NULL ? li->li_addr.a_text : "");
	o = put(out, cap, o, ",\"kind\":");
	PUTQ(listener_kind(li));
	snprintf(num, sizeof(num), "}},\"connection\":{\"requests\":%u,"
	    "\"keepalive_left\":%g,\"tls\":", ap->ap_requests,
	    keep ? cf->cf_keepalive_timeout / 1000. : 0.);
	o = put(out, cap, o, num);
	if (ap->ap_tls != NULL && ap->ap_tls->ti_protocol != NULL) {
		o = put(out, cap, o, "{\"protocol\":");
		PUTQ(ap->ap_tls->ti_protocol);
		o = put(out, cap, o, ",\"cipher\":");
		PUTQ(ap->ap_tls->ti_cipher != NULL ? ap->ap_tls->ti_cipher :
		    "");
		o = put(out, cap, o, "}");
	} else
		o = put(out, cap, o, "null");
	return put(out, cap, o, "}}\n");
}
