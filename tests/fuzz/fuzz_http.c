/*
 * Fuzz target for the HTTP/1.x request parser (src/http.c).
 *
 * The input is a connection's byte stream.  It is parsed twice:
 *
 *  1. whole: the complete input handed to http_stream_next() again and
 *     again, as a stream of pipelined requests, until the parser wants
 *     more bytes or reports an error;
 *  2. split: the same bytes delivered in pieces whose sizes come from a
 *     generator seeded with the input's first two bytes.  Like the server
 *     (src/worker.c, process()), the unconsumed bytes are kept, the next
 *     piece is appended, and http_stream_next() is called until it wants
 *     more.  Each buffer is allocated at its exact size so that
 *     AddressSanitizer sees any read past its end.
 *
 * Every call is checked (bytes used never exceed the length, progress on
 * each request, statuses only from 200 405 400 414 431 505, views inside
 * the buffer, the head within the limit, ...), and both paths must produce
 * the same requests: result, status, method, version, keep-alive, body
 * framing, the absolute offsets of the views and where each request ends.
 * Both are run with the server's default limits (8192 bytes, 100 fields)
 * and with tight ones (256 bytes, the configurable minimum, and 8 fields),
 * which short inputs can overflow.  Each answer is also built through the
 * workers' answer path (src/answer.c) and its bytes checked.
 *
 * A violated invariant prints what failed and aborts.  The file builds as
 * a libFuzzer target (clang -fsanitize=fuzzer) or, linked with replay.c,
 * as a plain program that replays the corpus in `make check`.
 */
#include <sys/types.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hellod.h"
#include "http.h"
#include "answer.h"
#include "fuzz.h"

#define NOPOS		((size_t)-1)

static const struct http_limits lim_default = {
	.lim_max_header = 8192, .lim_max_fields = HTTP_MAX_FIELDS };
static const struct http_limits lim_tight = {
	.lim_max_header = 256, .lim_max_fields = 8 };

/* One DONE or ERROR result, positions relative to the whole input. */
struct event {
	int		 ev_rc;
	int		 ev_status;
	int		 ev_method;
	int		 ev_minor;
	int		 ev_keepalive;
	int		 ev_body;
	uint64_t	 ev_content_length;
	int		 ev_body_error;	/* ERROR inside a chunked body */
	size_t		 ev_end;	/* NOPOS for a body error */
	size_t		 ev_line_off;	/* NOPOS when the view is NULL */
	size_t		 ev_line_len;
	size_t		 ev_referer_off;
	size_t		 ev_referer_len;
	size_t		 ev_agent_off;
	size_t		 ev_agent_len;
};

struct trace {
	struct event	*t_ev;
	size_t		 t_n;
	size_t		 t_cap;
	int		 t_error;	/* ended with HTTP_ERROR */
	size_t		 t_consumed;	/* bytes dropped at the end */
	int		 t_busy;	/* inside a body at the end */
};

static struct trace	 whole, split;

static void
trace_reset(struct trace *t)
{
	t->t_n = 0;
	t->t_error = 0;
	t->t_consumed = 0;
	t->t_busy = 0;
}

static size_t
view_off(const char *p, const char *buf, size_t base)
{
	return p == NULL ? NOPOS : base + (size_t)(p - buf);
}

/* A view into buf must lie inside [lo, hi). */
static void
check_view(const char *p, size_t len, const char *lo, const char *hi)
{
	if (p == NULL) {
		CHECK(len == 0);
		return;
	}
	CHECK(p >= lo && p <= hi);
	CHECK(len <= (size_t)(hi - p));
}

/*
 * Checks one call of http_stream_next() on buf[0..len), after which the
 * stream is st.  Returns whether an error was reported inside a body.
 */
static int
check_call(const char *buf, size_t len, const struct http_limits *lim,
    const struct http_stream *st, int rc, const struct http_request *req,
    size_t used)
{
	const char	*hi = buf + used;
	int		 busy = http_stream_busy(st);

	CHECK(used <= len);
	switch (rc) {
	case HTTP_DONE:
		CHECK(used > 0);
		CHECK(req->req_status == 200 || req->req_status == 405);
		CHECK(req->req_method == HTTP_GET ||
		    req->req_method == HTTP_HEAD ||
		    req->req_method == HTTP_OTHER);
		CHECK((req->req_status == 405) ==
		    (req->req_method == HTTP_OTHER));
		CHECK(req->req_minor == 0 || req->req_minor == 1);
		CHECK(req->req_keepalive == 0 || req->req_keepalive == 1);
		switch (req->req_body) {
		case HTTP_BODY_NONE:
			CHECK(req->req_content_length == 0);
			CHECK(!busy);
			break;
		case HTTP_BODY_LENGTH:
			CHECK(req->req_content_length > 0);
			CHECK(busy);
			break;
		case HTTP_BODY_CHUNKED:
			CHECK(req->req_content_length == 0);
			CHECK(req->req_minor == 1);
			CHECK(busy);
			break;
		default:
			CHECK(!"unknown body framing");
		}
		/* The head: request line through the empty line. */
		CHECK(req->req_line != NULL);
		check_view(req->req_line, req->req_line_len, buf, hi);
		CHECK(req->req_line_len >= 12);	/* "X / HTTP/1.1" */
		CHECK((size_t)(hi - req->req_line) <= lim->lim_max_header);
		CHECK(hi[-1] == '\n');
		check_view(req->req_referer, req->req_referer_len,
		    req->req_line + req->req_line_len, hi);
		check_view(req->req_agent, req->req_agent_len,
		    req->req_line + req->req_line_len, hi);
		return 0;
	case HTTP_ERROR:
		CHECK(req->req_status == 400 || req->req_status == 414 ||
		    req->req_status == 431 || req->req_status == 505);
		CHECK(req->req_keepalive == 0);
		if (busy) {
			/* A malformed chunked body. */
			CHECK(req->req_status == 400);
			CHECK(req->req_line == NULL);
			return 1;
		}
		if (req->req_line != NULL) {
			/* The head was complete, then found invalid
			 * (431: more fields than allowed). */
			check_view(req->req_line, req->req_line_len, buf, hi);
			CHECK((size_t)(hi - req->req_line) <=
			    lim->lim_max_header);
			CHECK(hi[-1] == '\n');
		} else
			CHECK(req->req_status == 414 ||
			    req->req_status == 431);
		check_view(req->req_referer, req->req_referer_len, buf, hi);
		check_view(req->req_agent, req->req_agent_len, buf, hi);
		return 0;
	case HTTP_NEED_MORE:
		CHECK(req->req_status == 0);
		if (busy)		/* a body takes all it is given */
			CHECK(used == len);
		else			/* else the limit would have hit */
			CHECK(len - used <= lim->lim_max_header);
		return 0;
	default:
		CHECK(!"unknown result");
	}
	return 0;
}

static void
record(struct trace *t, int rc, const struct http_request *req,
    int body_error, const char *buf, size_t base, size_t used)
{
	struct event	*ev;

	if (t->t_n == t->t_cap) {
		t->t_cap = t->t_cap == 0 ? 64 : t->t_cap * 2;
		t->t_ev = realloc(t->t_ev, t->t_cap * sizeof(*t->t_ev));
		CHECK(t->t_ev != NULL);
	}
	ev = &t->t_ev[t->t_n++];
	memset(ev, 0, sizeof(*ev));
	ev->ev_rc = rc;
	ev->ev_status = req->req_status;
	ev->ev_method = (int)req->req_method;
	ev->ev_minor = req->req_minor;
	ev->ev_keepalive = req->req_keepalive;
	ev->ev_body = (int)req->req_body;
	ev->ev_content_length = req->req_content_length;
	ev->ev_body_error = body_error;
	ev->ev_end = body_error ? NOPOS : base + used;
	ev->ev_line_off = view_off(req->req_line, buf, base);
	ev->ev_line_len = req->req_line_len;
	ev->ev_referer_off = view_off(req->req_referer, buf, base);
	ev->ev_referer_len = req->req_referer_len;
	ev->ev_agent_off = view_off(req->req_agent, buf, base);
	ev->ev_agent_len = req->req_agent_len;
	if (rc == HTTP_ERROR)
		t->t_error = 1;
}

/* 1. The whole input at once. */
static void
run_whole(const char *buf, size_t len, const struct http_limits *lim,
    struct trace *t)
{
	struct http_stream	 st;
	struct http_request	 req;
	size_t			 off = 0, used;
	int			 rc, body_error;

	trace_reset(t);
	http_stream_init(&st);
	while (off < len) {
		rc = http_stream_next(&st, buf + off, len - off, lim, &req,
		    &used);
		body_error = check_call(buf + off, len - off, lim, &st, rc,
		    &req, used);
		if (rc != HTTP_NEED_MORE)
			record(t, rc, &req, body_error, buf + off, off, used);
		off += used;
		if (rc != HTTP_DONE)
			break;
	}
	if (t->t_error)
		return;
	if (off == len) {
		/* Nothing left: nothing to report, nothing used. */
		rc = http_stream_next(&st, buf + len, 0, lim, &req, &used);
		CHECK(rc == HTTP_NEED_MORE);
		CHECK(used == 0);
	}
	t->t_consumed = off;
	t->t_busy = http_stream_busy(&st);
}

/* 2. The same input in pieces, buffered the way the server does it. */
static void
run_split(const char *data, size_t len, const struct http_limits *lim,
    uint32_t seed, struct trace *t)
{
	struct http_stream	 st;
	struct http_request	 req;
	char			*buf, *pend = NULL;
	size_t			 plen = 0, dropped = 0, pos = 0, n, blen;
	size_t			 off, used;
	uint32_t		 rs = seed * 2654435761u + 0x9e3779b9u;
	int			 rc, body_error;

	if (rs == 0)
		rs = 1;
	trace_reset(t);
	http_stream_init(&st);
	while (pos < len && !t->t_error) {
		n = fuzz_piece_size(&rs, len - pos, 128, 4096);
		blen = plen + n;
		CHECK((buf = malloc(blen)) != NULL);
		if (plen > 0)
			memcpy(buf, pend, plen);
		memcpy(buf + plen, data + pos, n);
		pos += n;
		free(pend);
		pend = NULL;

		off = 0;
		while (off < blen) {
			rc = http_stream_next(&st, buf + off, blen - off, lim,
			    &req, &used);
			body_error = check_call(buf + off, blen - off, lim,
			    &st, rc, &req, used);
			if (rc != HTTP_NEED_MORE)
				record(t, rc, &req, body_error, buf + off,
				    dropped + off, used);
			off += used;
			if (rc != HTTP_DONE)
				break;
		}
		plen = blen - off;
		if (plen > 0 && !t->t_error) {
			CHECK((pend = malloc(plen)) != NULL);
			memcpy(pend, buf + off, plen);
		}
		dropped += off;
		free(buf);
	}
	free(pend);
	if (t->t_error)
		return;
	t->t_consumed = dropped;
	t->t_busy = http_stream_busy(&st);
}

static void
print_event(const char *name, const struct event *ev)
{
	fprintf(stderr, "  %s: rc %d status %d method %d minor %d keepalive %d "
	    "body %d length %llu body_error %d end %zd line %zd+%zu "
	    "referer %zd+%zu agent %zd+%zu\n", name, ev->ev_rc, ev->ev_status,
	    ev->ev_method, ev->ev_minor, ev->ev_keepalive, ev->ev_body,
	    (unsigned long long)ev->ev_content_length, ev->ev_body_error,
	    (ssize_t)ev->ev_end, (ssize_t)ev->ev_line_off, ev->ev_line_len,
	    (ssize_t)ev->ev_referer_off, ev->ev_referer_len,
	    (ssize_t)ev->ev_agent_off, ev->ev_agent_len);
}

static int
same_event(const struct event *a, const struct event *b)
{
	return a->ev_rc == b->ev_rc && a->ev_status == b->ev_status &&
	    a->ev_method == b->ev_method && a->ev_minor == b->ev_minor &&
	    a->ev_keepalive == b->ev_keepalive && a->ev_body == b->ev_body &&
	    a->ev_content_length == b->ev_content_length &&
	    a->ev_body_error == b->ev_body_error &&
	    a->ev_line_off == b->ev_line_off &&
	    a->ev_line_len == b->ev_line_len &&
	    a->ev_referer_off == b->ev_referer_off &&
	    a->ev_referer_len == b->ev_referer_len &&
	    a->ev_agent_off == b->ev_agent_off &&
	    a->ev_agent_len == b->ev_agent_len &&
	    /* Where a body error is found depends on the pieces. */
	    (a->ev_body_error || a->ev_end == b->ev_end);
}

static void
compare(const struct trace *a, const struct trace *b, const char *what)
{
	size_t	 i;

	for (i = 0; i < a->t_n && i < b->t_n; i++)
		if (!same_event(&a->t_ev[i], &b->t_ev[i])) {
			fprintf(stderr, "%s: request %zu differs\n", what, i);
			print_event("whole", &a->t_ev[i]);
			print_event("split", &b->t_ev[i]);
			CHECK(!"whole and split parses differ");
		}
	if (a->t_n != b->t_n) {
		fprintf(stderr, "%s: %zu results whole, %zu split\n", what,
		    a->t_n, b->t_n);
		CHECK(a->t_n == b->t_n);
	}
	CHECK(a->t_error == b->t_error);
	if (!a->t_error) {
		if (a->t_consumed != b->t_consumed || a->t_busy != b->t_busy)
			fprintf(stderr, "%s: end whole %zu busy %d, split %zu "
			    "busy %d\n", what, a->t_consumed, a->t_busy,
			    b->t_consumed, b->t_busy);
		CHECK(a->t_consumed == b->t_consumed);
		CHECK(a->t_busy == b->t_busy);
	}
}

/*
 * Answers each result through the workers' answer path (src/answer.c)
 * and checks the bytes: status line, Content-Length, the Connection field
 * and the body (the padding is announced, and sent apart by the workers).
 */
static void
check_responses(const struct trace *t, unsigned padding)
{
	static const char *const addrs[] = {
		"127.0.0.1", "::1", "255.255.255.255",
		"ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255",
	};
	static struct hd_config		 cf;
	static struct answer_env	 ae;
	static int			 ready;
	const struct event		*ev;
	struct http_request		 req;
	struct answer_peer		 who;
	struct answer			 an;
	const char			*addr, *out, *end;
	char				 want[64];
	size_t				 i, size, body, wlen;
	int				 closes;

	if (!ready) {
		config_defaults(&cf);
		cf.cf_body_padding = 255;	/* sizes the buffers */
		CHECK(answer_env_init(&ae, &cf) == 0);
		ready = 1;
	}
	cf.cf_body_padding = padding;
	for (i = 0; i < t->t_n; i++) {
		ev = &t->t_ev[i];
		memset(&req, 0, sizeof(req));
		req.req_status = ev->ev_status;
		req.req_method = (enum http_method)ev->ev_method;
		req.req_minor = ev->ev_minor;
		req.req_keepalive = ev->ev_keepalive;
		addr = addrs[i % (sizeof(addrs) / sizeof(addrs[0]))];
		memset(&who, 0, sizeof(who));
		who.ap_textlen = (uint8_t)strlen(addr);
		memcpy(who.ap_text, addr, who.ap_textlen);
		answer_decide(&ae, ev->ev_rc, &req, &who, 0, &an);
		CHECK(an.an_status == ev->ev_status);
		CHECK(an.an_error == (ev->ev_rc == HTTP_ERROR));
		ae.ae_wlen = 0;
		closes = answer_write(&ae, &an, 0, &who, 0, 0.);
		CHECK(closes == (ev->ev_rc == HTTP_ERROR || !ev->ev_keepalive));
		out = ae.ae_wbuf;
		size = ae.ae_wlen;
		CHECK(size <= ae.ae_wcap);
		end = memmem(out, size, "\r\n\r\n", 4);
		CHECK(end != NULL);
		body = size - (size_t)(end + 4 - out);
		wlen = (size_t)snprintf(want, sizeof(want), "HTTP/1.1 %d ",
		    ev->ev_status);
		CHECK(size > wlen && memcmp(out, want, wlen) == 0);
		wlen = (size_t)snprintf(want, sizeof(want),
		    "\r\nContent-Length: %zu\r\n", an.an_head ? 0 :
		    body + answer_padding_sent(&an));
		CHECK(an.an_head || memmem(out, size, want, wlen) != NULL);
		CHECK(!an.an_head || body == 0);
		CHECK((memmem(out, size, "\r\nConnection: close\r\n", 21) !=
		    NULL) == closes);
		CHECK(answer_padding_sent(&an) == (ev->ev_status == 200 &&
		    !an.an_head ? padding : 0));
	}
}

static void
run(const char *buf, size_t len, const struct http_limits *lim,
    uint32_t seed)
{
	run_whole(buf, len, lim, &whole);
	run_split(buf, len, lim, seed, &split);
	compare(&whole, &split, lim == &lim_default ? "default limits" :
	    "tight limits");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char	*buf = (const char *)data;
	uint32_t	 seed;

	seed = size >= 2 ? (uint32_t)data[0] | (uint32_t)data[1] << 8 : 0;
	run(buf, size, &lim_default, seed);
	check_responses(&whole, size > 0 ? data[size - 1] : 0);
	run(buf, size, &lim_tight, seed ^ 0xa5a5u);
	return 0;
}
