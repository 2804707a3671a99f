/*
 * Unit tests for the HTTP/1.x request parser (src/http.c):
 * http_parse(), http_stream_next() and http_chunked_skip().
 *
 * The numbers in comments refer to /work/shared/HTTP-CASES.md.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http.h"

/* A byte string literal with its exact length (it may contain NULs). */
#define RAW(lit)	(lit), (sizeof(lit) - 1)

static const struct http_limits lim_default = {
	.lim_max_header = 8192, .lim_max_fields = HTTP_MAX_FIELDS
};

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

/* What one parsed request looks like, copied out of the input buffer. */
struct result {
	int		 rc;
	int		 status;
	int		 method;
	int		 minor;
	int		 keepalive;
	int		 body;
	uint64_t	 content_length;
	char		 line[512];
	char		 referer[128];
	char		 agent[128];
};

static void
copy_view(char *dst, size_t dstlen, const char *p, size_t len)
{
	assert_true(len < dstlen);
	if (len > 0)
		memcpy(dst, p, len);
	dst[len] = '\0';
}

static void
result_from(struct result *r, int rc, const struct http_request *req)
{
	memset(r, 0, sizeof(*r));
	r->rc = rc;
	r->status = req->req_status;
	r->method = (int)req->req_method;
	r->minor = req->req_minor;
	r->keepalive = req->req_keepalive;
	r->body = (int)req->req_body;
	r->content_length = req->req_content_length;
	if (rc == HTTP_DONE) {
		copy_view(r->line, sizeof(r->line), req->req_line,
		    req->req_line_len);
		copy_view(r->referer, sizeof(r->referer), req->req_referer,
		    req->req_referer_len);
		copy_view(r->agent, sizeof(r->agent), req->req_agent,
		    req->req_agent_len);
	}
}

static void
assert_same_result(const struct result *a, const struct result *b)
{
	assert_int_equal(a->rc, b->rc);
	assert_int_equal(a->status, b->status);
	assert_int_equal(a->keepalive, b->keepalive);
	if (a->rc == HTTP_ERROR)
		return;		/* only the status matters */
	assert_int_equal(a->method, b->method);
	assert_int_equal(a->minor, b->minor);
	assert_int_equal(a->body, b->body);
	assert_true(a->content_length == b->content_length);
	assert_string_equal(a->line, b->line);
	assert_string_equal(a->referer, b->referer);
	assert_string_equal(a->agent, b->agent);
}

/* http_parse() on a private copy, so that a read past len is caught by
 * ASan/valgrind instead of finding the rest of the test's string. */
static int
parse_lim(const char *raw, size_t len, const struct http_limits *lim,
    struct http_request *req, struct result *out)
{
	char	*copy = malloc(len > 0 ? len : 1);
	int	 rc;

	assert_non_null(copy);
	memcpy(copy, raw, len);
	rc = http_parse(copy, len, lim, req);
	if (out != NULL)
		result_from(out, rc, req);
	/* The views must point inside the copy. */
	if (rc == HTTP_DONE) {
		assert_true(req->req_line >= copy &&
		    req->req_line + req->req_line_len <= copy + len);
		assert_true(req->req_consumed <= len);
	}
	free(copy);
	return rc;
}

static int
parse(const char *raw, size_t len, struct http_request *req,
    struct result *out)
{
	return parse_lim(raw, len, &lim_default, req, out);
}

/* The whole input must be a request that fails with this status. */
static void
expect_error_lim(const char *raw, size_t len, const struct http_limits *lim,
    int status)
{
	struct http_request	 req;
	size_t			 k;
	int			 rc;

	rc = parse_lim(raw, len, lim, &req, NULL);
	if (rc != HTTP_ERROR || req.req_status != status)
		fail_msg("input \"%.*s\": rc %d status %d, expected error %d",
		    (int)(len > 80 ? 80 : len), raw, rc, req.req_status,
		    status);
	assert_int_equal(req.req_keepalive, 0);
	/* No part of it may pass for a complete request either. */
	for (k = 0; k < len; k++)
		if (parse_lim(raw, k, lim, &req, NULL) == HTTP_DONE)
			fail_msg("input \"%.*s\": prefix of %zu bytes done",
			    (int)(len > 80 ? 80 : len), raw, k);
}

static void
expect_error(const char *raw, size_t len, int status)
{
	expect_error_lim(raw, len, &lim_default, status);
}

/* The whole input must be one complete head; returns what was parsed. */
static struct result
expect_done_lim(const char *raw, size_t len, const struct http_limits *lim)
{
	struct http_request	 req;
	struct result		 r;
	int			 rc;

	rc = parse_lim(raw, len, lim, &req, &r);
	if (rc != HTTP_DONE)
		fail_msg("input \"%.*s\": rc %d status %d, expected done",
		    (int)(len > 80 ? 80 : len), raw, rc, req.req_status);
	assert_int_equal(req.req_consumed, len);
	return r;
}

static struct result
expect_done(const char *raw, size_t len)
{
	return expect_done_lim(raw, len, &lim_default);
}

/*
 * A connection: the input arrives in segments ending at the offsets in
 * cuts[] (the last segment ends at len).  After each arrival the stream
 * is drained like a worker does: http_stream_next() until it needs more,
 * dropping the bytes it used.  Stops at the first error.
 */
static size_t
run_stream(const char *raw, size_t len, const size_t *cuts, size_t ncuts,
    const struct http_limits *lim, struct result *out, size_t max)
{
	struct http_stream	 st;
	struct http_request	 req;
	char			*buf = malloc(len + 1);
	size_t			 have = 0, arrived = 0, used, n = 0, seg;
	int			 rc;

	assert_non_null(buf);
	http_stream_init(&st);
	for (seg = 0; seg <= ncuts; seg++) {
		size_t upto = seg < ncuts ? cuts[seg] : len;

		assert_true(upto >= arrived && upto <= len);
		memcpy(buf + have, raw + arrived, upto - arrived);
		have += upto - arrived;
		arrived = upto;
		for (;;) {
			rc = http_stream_next(&st, buf, have, lim, &req, &used);
			assert_true(used <= have);
			if (rc == HTTP_NEED_MORE) {
				memmove(buf, buf + used, have - used);
				have -= used;
				break;
			}
			assert_true(n < max);
			result_from(&out[n++], rc, &req);
			if (rc == HTTP_ERROR)
				goto done;
			memmove(buf, buf + used, have - used);
			have -= used;
		}
	}
done:
	free(buf);
	return n;
}

static void
assert_same_results(const struct result *a, size_t na,
    const struct result *b, size_t nb)
{
	size_t	 i;

	assert_int_equal(na, nb);
	for (i = 0; i < na; i++)
		assert_same_result(&a[i], &b[i]);
}

/*
 * Feeds raw whole, split in two at every offset, and one byte at a time
 * through the stream; every way must give exactly the expected results.
 */
#define MAX_RESULTS	16

static void
check_stream_all_splits(const char *raw, size_t len,
    const struct result *want, size_t nwant)
{
	struct result	 got[MAX_RESULTS];
	size_t		 n, k, *cuts;

	n = run_stream(raw, len, NULL, 0, &lim_default, got, MAX_RESULTS);
	assert_same_results(got, n, want, nwant);

	for (k = 1; k < len; k++) {
		n = run_stream(raw, len, &k, 1, &lim_default, got,
		    MAX_RESULTS);
		assert_same_results(got, n, want, nwant);
	}

	cuts = malloc(len * sizeof(*cuts));
	assert_non_null(cuts);
	for (k = 0; k < len; k++)
		cuts[k] = k + 1;
	n = run_stream(raw, len, cuts, len, &lim_default, got, MAX_RESULTS);
	assert_same_results(got, n, want, nwant);
	free(cuts);
}

/* ------------------------------------------------------------------ */
/* Valid single requests                                               */
/* ------------------------------------------------------------------ */

struct valid_case {
	const char	*name;
	const char	*raw;
	int		 method;
	int		 minor;
	int		 keepalive;
	int		 status;
	const char	*line;
	const char	*referer;
	const char	*agent;
};

static const struct valid_case valid_cases[] = {
	{ "simple GET",
	  "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n",
	  HTTP_GET, 1, 1, 200, "GET / HTTP/1.1", "", "" },
	{ "GET with query and fields",
	  "GET /path/to?q=1&r=%20 HTTP/1.1\r\nHost: a\r\n"
	  "User-Agent:  curl/8.0 \r\nReferer:\thttp://r.example/x\t\r\n"
	  "Accept: */*\r\n\r\n",
	  HTTP_GET, 1, 1, 200, "GET /path/to?q=1&r=%20 HTTP/1.1",
	  "http://r.example/x", "curl/8.0" },
	{ "HEAD",
	  "HEAD /index.html HTTP/1.1\r\nHost: a\r\n\r\n",
	  HTTP_HEAD, 1, 1, 200, "HEAD /index.html HTTP/1.1", "", "" },
	{ "HTTP/1.0 without keep-alive",
	  "GET / HTTP/1.0\r\n\r\n",
	  HTTP_GET, 0, 0, 200, "GET / HTTP/1.0", "", "" },
	{ "HTTP/1.0 with keep-alive",
	  "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
	  HTTP_GET, 0, 1, 200, "GET / HTTP/1.0", "", "" },
	{ "HTTP/1.1 Connection: close",
	  "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
	  HTTP_GET, 1, 0, 200, "GET / HTTP/1.1", "", "" },
	{ "absolute-form",
	  "GET http://example.com/a/b?c HTTP/1.1\r\nHost: example.com\r\n\r\n",
	  HTTP_GET, 1, 1, 200, "GET http://example.com/a/b?c HTTP/1.1", "",
	  "" },
	{ "absolute-form without path",
	  "HEAD https://example.com HTTP/1.1\r\nHost: example.com\r\n\r\n",
	  HTTP_HEAD, 1, 1, 200, "HEAD https://example.com HTTP/1.1", "", "" },
	{ "leading CRLF empty lines (5)",
	  "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
	  HTTP_GET, 1, 1, 200, "GET / HTTP/1.1", "", "" },
	{ "leading LF empty lines (5)",
	  "\n\n\nGET / HTTP/1.1\nHost: a\n\n",
	  HTTP_GET, 1, 1, 200, "GET / HTTP/1.1", "", "" },
	{ "LF-only line endings (6)",
	  "GET /lf HTTP/1.1\nHost: a\nConnection: close\n\n",
	  HTTP_GET, 1, 0, 200, "GET /lf HTTP/1.1", "", "" },
	{ "mixed line endings (6)",
	  "GET / HTTP/1.1\nHost: a\r\nX: y\n\r\n",
	  HTTP_GET, 1, 1, 200, "GET / HTTP/1.1", "", "" },
	{ "HTTP/1.2 treated as 1.1 (13)",
	  "GET / HTTP/1.2\r\nHost: a\r\n\r\n",
	  HTTP_GET, 1, 1, 200, "GET / HTTP/1.2", "", "" },
	{ "HTTP/1.9 treated as 1.1 (13)",
	  "GET / HTTP/1.9\r\nHost: a\r\nConnection: close\r\n\r\n",
	  HTTP_GET, 1, 0, 200, "GET / HTTP/1.9", "", "" },
	{ "POST is 405 and stays persistent (12)",
	  "POST /form HTTP/1.1\r\nHost: a\r\n\r\n",
	  HTTP_OTHER, 1, 1, 405, "POST /form HTTP/1.1", "", "" },
	{ "tab inside a field value",
	  "GET / HTTP/1.1\r\nHost: a\r\nX-Tab: a\tb\r\n\r\n",
	  HTTP_GET, 1, 1, 200, "GET / HTTP/1.1", "", "" },
	{ "empty field value",
	  "GET / HTTP/1.1\r\nHost: a\r\nX-Empty:\r\n\r\n",
	  HTTP_GET, 1, 1, 200, "GET / HTTP/1.1", "", "" },
	{ "obs-text in the target",
	  "GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n",
	  HTTP_GET, 1, 1, 200, "GET /caf\xc3\xa9 HTTP/1.1", "", "" },
};

#define NVALID	(sizeof(valid_cases) / sizeof(valid_cases[0]))

static void
expected_result(const struct valid_case *c, struct result *r)
{
	memset(r, 0, sizeof(*r));
	r->rc = HTTP_DONE;
	r->status = c->status;
	r->method = c->method;
	r->minor = c->minor;
	r->keepalive = c->keepalive;
	r->body = HTTP_BODY_NONE;
	snprintf(r->line, sizeof(r->line), "%s", c->line);
	snprintf(r->referer, sizeof(r->referer), "%s", c->referer);
	snprintf(r->agent, sizeof(r->agent), "%s", c->agent);
}

/* (a) whole */
static void
test_valid_whole(void **state)
{
	struct http_request	 req;
	struct result		 want, got;
	size_t			 i, len;

	(void)state;
	for (i = 0; i < NVALID; i++) {
		const struct valid_case *c = &valid_cases[i];

		len = strlen(c->raw);
		expected_result(c, &want);
		parse(c->raw, len, &req, &got);
		if (got.rc != HTTP_DONE)
			fail_msg("%s: rc %d status %d", c->name, got.rc,
			    got.status);
		assert_same_result(&got, &want);
		assert_int_equal(req.req_consumed, len);
	}
}

/* (b) split in two at every offset: the first part needs more, the
 * whole is then parsed exactly as in one piece. */
static void
test_valid_split_every_offset(void **state)
{
	struct http_request	 req;
	struct result		 whole, got;
	size_t			 i, k, len, blank;

	(void)state;
	for (i = 0; i < NVALID; i++) {
		const struct valid_case *c = &valid_cases[i];

		len = strlen(c->raw);
		parse(c->raw, len, &req, &whole);
		blank = strspn(c->raw, "\r\n");
		for (k = 0; k < len; k++) {
			if (parse(c->raw, k, &req, NULL) != HTTP_NEED_MORE)
				fail_msg("%s: prefix of %zu bytes did not "
				    "need more", c->name, k);
			/* Only leading empty lines may be consumed. */
			assert_true(req.req_consumed <= blank);
			assert_true(req.req_consumed <= k);
			parse(c->raw, len, &req, &got);
			assert_same_result(&got, &whole);
			assert_int_equal(req.req_consumed, len);
		}
	}
}

/* (a), (b) and (c) through a connection stream: whole, split in two at
 * every offset, and one byte at a time.  (http_parse() is stateless, so
 * the prefixes checked above are also its byte-at-a-time run.) */
static void
test_valid_stream_all_splits(void **state)
{
	struct result	 want;
	size_t		 i;

	(void)state;
	for (i = 0; i < NVALID; i++) {
		expected_result(&valid_cases[i], &want);
		/* covers whole, two pieces at every offset, and bytes */
		check_stream_all_splits(valid_cases[i].raw,
		    strlen(valid_cases[i].raw), &want, 1);
	}
}

/* Views into the buffer used by the access log. */
static void
test_request_views(void **state)
{
	struct http_request	 req;
	const char		 raw[] = "\r\nGET /x HTTP/1.1\r\nHost: h\r\n"
	    "REFERER: http://ref/ \r\nuser-agent: UA/1\r\n\r\n";

	(void)state;
	assert_int_equal(http_parse(raw, sizeof(raw) - 1, &lim_default, &req),
	    HTTP_DONE);
	assert_ptr_equal(req.req_line, raw + 2);
	assert_int_equal(req.req_line_len, strlen("GET /x HTTP/1.1"));
	assert_memory_equal(req.req_line, "GET /x HTTP/1.1", req.req_line_len);
	assert_int_equal(req.req_referer_len, strlen("http://ref/"));
	assert_memory_equal(req.req_referer, "http://ref/", req.req_referer_len);
	assert_int_equal(req.req_agent_len, 4);
	assert_memory_equal(req.req_agent, "UA/1", 4);
	assert_int_equal(req.req_consumed, sizeof(raw) - 1);
}

/* ------------------------------------------------------------------ */
/* Empty lines, line endings, bare CR (5, 6, 7)                        */
/* ------------------------------------------------------------------ */

static void
test_empty_lines_only(void **state)
{
	struct http_request	 req;

	(void)state;
	/* A lone CRLF: consumed, nothing to answer. */
	assert_int_equal(parse(RAW("\r\n"), &req, NULL), HTTP_NEED_MORE);
	assert_int_equal(req.req_consumed, 2);
	assert_int_equal(parse(RAW("\n\r\n\n"), &req, NULL), HTTP_NEED_MORE);
	assert_int_equal(req.req_consumed, 4);
	/* A CR whose LF has not arrived yet is kept. */
	assert_int_equal(parse(RAW("\r\n\r"), &req, NULL), HTTP_NEED_MORE);
	assert_int_equal(req.req_consumed, 2);
	assert_int_equal(parse(RAW(""), &req, NULL), HTTP_NEED_MORE);
	assert_int_equal(req.req_consumed, 0);
	assert_int_equal(parse(RAW("GET / HT"), &req, NULL), HTTP_NEED_MORE);
	assert_int_equal(req.req_consumed, 0);
}

static void
test_bare_cr(void **state)
{
	(void)state;
	expect_error(RAW("GET /a\rb HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
	expect_error(RAW("GET / HTTP/1.1\rHost: a\r\n\r\n"), 400);
	expect_error(RAW("GET / HTTP/1.1\r\r\nHost: a\r\n\r\n"), 400);
	expect_error(RAW("GET\r/ HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
	expect_error(RAW("\rGET / HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
	expect_error(RAW("GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n"), 400);
	expect_error(RAW("GET / HTTP/1.1\r\nHost: a\r\r\n\r\n"), 400);
	expect_error(RAW("GET / HTTP/1.1\r\nHo\rst: a\r\n\r\n"), 400);
	expect_error(RAW("GET / HTTP/1.1\r\nHost: a\r\n\r\r\n\r\n"), 400);
	expect_error(RAW("GET / HTTP/1.1\r\nHost: a\r\nX: \r\r\n\r\n"), 400);
}

/* ------------------------------------------------------------------ */
/* Size limits (11, 15, 16)                                            */
/* ------------------------------------------------------------------ */

/* "GET /aaa...a HTTP/1.1\r\n" of exactly total bytes. */
static char *
long_request_line(size_t total)
{
	const char	*pre = "GET /", *post = " HTTP/1.1\r\n";
	size_t		 fixed = strlen(pre) + strlen(post);
	char		*s;

	assert_true(total > fixed);
	s = malloc(total + 1);
	assert_non_null(s);
	strcpy(s, pre);
	memset(s + strlen(pre), 'a', total - fixed);
	strcpy(s + total - strlen(post), post);
	return s;
}

static char *
concat(const char *a, const char *b)
{
	char	*s = malloc(strlen(a) + strlen(b) + 1);

	assert_non_null(s);
	strcpy(s, a);
	strcat(s, b);
	return s;
}


static void
test_414_request_line_too_long(void **state)
{
	struct http_limits	 lim = {
	    .lim_max_header = 256, .lim_max_fields = HTTP_MAX_FIELDS };
	struct http_request	 req;
	char			*line, *raw;

	(void)state;
	/* A complete request line of 300 bytes. */
	line = long_request_line(300);
	raw = concat(line, "Host: a\r\n\r\n");
	expect_error_lim(raw, strlen(raw), &lim, 414);
	free(raw);
	/* The line not finished yet but already over the limit: a slow
	 * client is answered as soon as the limit is passed. */
	expect_error_lim(line, 257, &lim, 414);
	assert_int_equal(parse_lim(line, 256, &lim, &req, NULL),
	    HTTP_NEED_MORE);
	free(line);

	/* Boundary: a request line (CRLF included) of exactly the limit is
	 * not 414 (the head then no longer fits: 431); one more byte is. */
	line = long_request_line(256);
	assert_int_equal(parse_lim(line, 256, &lim, &req, NULL),
	    HTTP_NEED_MORE);
	raw = concat(line, "\r\n");
	expect_error_lim(raw, strlen(raw), &lim, 431);
	free(raw);
	free(line);
	line = long_request_line(257);
	expect_error_lim(line, 257, &lim, 414);
	free(line);

	/* Leading empty lines do not count against the limit. */
	line = long_request_line(200);
	raw = malloc(300 + 200 + 20);
	assert_non_null(raw);
	memset(raw, '\n', 300);
	strcpy(raw + 300, line);
	strcat(raw, "Host: a\r\n\r\n");
	expect_done_lim(raw, strlen(raw), &lim);
	free(raw);
	free(line);
}

/* "GET / HTTP/1.1\r\nHost: a\r\nX: yyy\r\n\r\n" with a head of total bytes. */
static char *
head_of_size(size_t total)
{
	const char	*pre = "GET / HTTP/1.1\r\nHost: a\r\nX: ";
	char		*s;
	size_t		 fill;

	assert_true(total > strlen(pre) + 4);
	fill = total - strlen(pre) - 4;
	s = malloc(total + 1);
	assert_non_null(s);
	strcpy(s, pre);
	memset(s + strlen(pre), 'y', fill);
	strcpy(s + strlen(pre) + fill, "\r\n\r\n");
	assert_int_equal(strlen(s), total);
	return s;
}

static void
test_431_header_too_large(void **state)
{
	struct http_limits	 lim = {
	    .lim_max_header = 256, .lim_max_fields = HTTP_MAX_FIELDS };
	struct http_request	 req;
	char			*raw;

	(void)state;
	raw = head_of_size(256);
	expect_done_lim(raw, 256, &lim);
	free(raw);
	raw = head_of_size(257);
	expect_error_lim(raw, 257, &lim, 431);
	/* Not finished and within the limit: wait. */
	assert_int_equal(parse_lim(raw, 255, &lim, &req, NULL),
	    HTTP_NEED_MORE);
	free(raw);
	/* Not finished, but over the limit: 431 at once. */
	raw = head_of_size(300);
	expect_error_lim(raw, 257, &lim, 431);
	expect_error_lim(raw, 290, &lim, 431);
	free(raw);
	raw = head_of_size(5000);
	expect_error_lim(raw, 5000, &lim, 431);
	expect_done(raw, 5000);		/* fits the default 8k */
	free(raw);
}

/* A 1.1 request with Host and nfields - 1 more fields. */
static char *
request_with_fields(unsigned nfields)
{
	char		*s = malloc(64 + (size_t)nfields * 16);
	size_t		 len;
	unsigned	 i;

	assert_non_null(s);
	len = (size_t)sprintf(s, "GET / HTTP/1.1\r\nHost: a\r\n");
	for (i = 1; i < nfields; i++)
		len += (size_t)sprintf(s + len, "X-F%u: %u\r\n", i, i);
	strcpy(s + len, "\r\n");
	return s;
}

static void
test_431_too_many_fields(void **state)
{
	char	*raw;

	(void)state;
	raw = request_with_fields(HTTP_MAX_FIELDS);
	expect_done(raw, strlen(raw));
	free(raw);
	raw = request_with_fields(HTTP_MAX_FIELDS + 1);
	assert_true(strlen(raw) < lim_default.lim_max_header);
	expect_error(raw, strlen(raw), 431);
	free(raw);
	raw = request_with_fields(500);
	expect_error(raw, strlen(raw), 431);
	free(raw);
}

/* A smaller field limit is honoured; a larger one is capped at
 * HTTP_MAX_FIELDS (the parser's own bound). */
static void
test_field_limit_setting(void **state)
{
	struct http_limits	 small = {
	    .lim_max_header = 8192, .lim_max_fields = 5 };
	struct http_limits	 large = {
	    .lim_max_header = 65536, .lim_max_fields = 1000 };
	char			*raw;

	(void)state;
	raw = request_with_fields(5);
	expect_done_lim(raw, strlen(raw), &small);
	free(raw);
	raw = request_with_fields(6);
	expect_error_lim(raw, strlen(raw), &small, 431);
	free(raw);
	raw = request_with_fields(HTTP_MAX_FIELDS);
	expect_done_lim(raw, strlen(raw), &large);
	free(raw);
	raw = request_with_fields(HTTP_MAX_FIELDS + 1);
	expect_error_lim(raw, strlen(raw), &large, 431);
	free(raw);
	raw = request_with_fields(1000);
	expect_error_lim(raw, strlen(raw), &large, 431);
	free(raw);
}

/* ------------------------------------------------------------------ */
/* Request line (12, 13, 14)                                           */
/* ------------------------------------------------------------------ */

struct bad_case {
	const char	*raw;
	size_t		 len;
	int		 status;
};

#define BAD(lit, status)	{ RAW(lit), (status) }

static void
check_bad_cases(const struct bad_case *c, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		expect_error(c[i].raw, c[i].len, c[i].status);
}

#define CHECK_BAD(arr)	check_bad_cases((arr), sizeof(arr) / sizeof((arr)[0]))

static void
test_other_methods_405(void **state)
{
	static const char *const reqs[] = {
		"POST / HTTP/1.1\r\nHost: a\r\n\r\n",
		"PUT /x HTTP/1.1\r\nHost: a\r\n\r\n",
		"DELETE /x HTTP/1.1\r\nHost: a\r\n\r\n",
		"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
		"CONNECT example.com:443 HTTP/1.1\r\nHost: a\r\n\r\n",
		"get / HTTP/1.1\r\nHost: a\r\n\r\n",	/* case-sensitive */
		"Head / HTTP/1.1\r\nHost: a\r\n\r\n",
		"GETS / HTTP/1.1\r\nHost: a\r\n\r\n",
		"M-SEARCH!#$%&'*+.^_`|~09 / HTTP/1.1\r\nHost: a\r\n\r\n",
		"PATCH http://h/x HTTP/1.0\r\n\r\n",
	};
	struct result	 r;
	size_t		 i;

	(void)state;
	for (i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
		r = expect_done(reqs[i], strlen(reqs[i]));
		assert_int_equal(r.status, 405);
		assert_int_equal(r.method, HTTP_OTHER);
	}
	/* 405 keeps the connection when the request allows it. */
	r = expect_done(RAW("POST / HTTP/1.1\r\nHost: a\r\n\r\n"));
	assert_int_equal(r.keepalive, 1);
	r = expect_done(RAW("POST / HTTP/1.0\r\n\r\n"));
	assert_int_equal(r.keepalive, 0);
	/* Other methods are still checked like any request. */
	expect_error(RAW("POST / HTTP/1.1\r\n\r\n"), 400);	/* no Host */
	expect_error(RAW("POST / HTTP/2.0\r\nHost: a\r\n\r\n"), 505);
}

static void
test_malformed_method_400(void **state)
{
	static const struct bad_case c[] = {
		BAD("G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
		BAD("G@T / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
		BAD("GE\"T / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
		BAD("G\0T / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
		BAD("G\x01T / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
		BAD(" GET / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
		BAD("GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", 400),
		BAD("GET:/ HTTP/1.1\r\nHost: a\r\n\r\n", 400),
		BAD("\xc3\xa9 / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
		BAD("/ HTTP/1.1\r\nHost: a\r\n\r\n", 400),
		BAD("GET\r\nHost: a\r\n\r\n", 400),
	};

	(void)state;
	CHECK_BAD(c);
}

static void
test_versions(void **state)
{
	static const struct bad_case c[] = {
		BAD("GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
		BAD("GET / HTTP/3.0\r\nHost: a\r\n\r\n", 505),
		BAD("GET / HTTP/2.0\r\n\r\n", 505),
		BAD("GET / HTTP/9.9\r\nHost: a\r\n\r\n", 505),
		BAD("GET / HTTP/0.9\r\nHost: a\r\n\r\n", 505),
		BAD("GET / HTTP/01.1\r\nHost: a\r\n\r\n", 400),
		BAD("GET / HTTP/1.01\r\nHost: a\r\n\r\n", 400),
		BAD("GET / HTTP/10.0\r\nHost: a\r\n\r\n", 400),
		BAD("GET / FOO/1.1\r\nHost: a\r\n\r\n", 400),
		BAD("GET / http/1.1\r\nHost: a\r\n\r\n", 400),
		BAD("GET / HTTP/1\r\nHost: a\r\n\r\n", 400),
		BAD("GET / HTTP/1.\r\nHost: a\r\n\r\n", 400),
		BAD("GET / HTTP/1.x\r\nHost: a\r\n\r\n", 400),
		BAD("GET / HTTP/1,1\r\nHost: a\r\n\r\n", 400),
		BAD("GET / HTTP/11\r\nHost: a\r\n\r\n", 400),
		BAD("GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400),
		BAD("GET / HTTP/1.1\t\r\nHost: a\r\n\r\n", 400),
		/* HTTP/0.9: no version at all */
		BAD("GET /\r\n\r\n", 400),
		BAD("GET /index.html\r\n\r\n", 400),
		BAD("GET /\n\n", 400),
	};
	struct result	 r;

	(void)state;
	CHECK_BAD(c);

	r = expect_done(RAW("GET / HTTP/1.0\r\n\r\n"));
	assert_int_equal(r.minor, 0);
	r = expect_done(RAW("GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
	assert_int_equal(r.minor, 1);
	/* HTTP/1.2 is 1.1: persistent, minor 1, and Host is required. */
	r = expect_done(RAW("GET / HTTP/1.2\r\nHost: a\r\n\r\n"));
	assert_int_equal(r.minor, 1);
	assert_int_equal(r.keepalive, 1);
	expect_error(RAW("GET / HTTP/1.2\r\n\r\n"), 400);
}

static void
test_targets(void **state)
{
	static const struct bad_case c[] = {
		BAD("GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400),
		BAD("HEAD * HTTP/1.1\r\nHost: a\r\n\r\n", 400),
		BAD("GET example.com:80 HTTP/1.1\r\nHost: a\r\n\r\n", 400),
		BAD("GET example.com:443 HTTP/1.0\r\n\r\n", 400),
		BAD("HEAD localhost:8080 HTTP/1.1\r\nHost: a\r\n\r\n", 400),
		BAD("GET 127.0.0.1:80 HTTP/1.1\r\nHost: a\r\n\r\n", 400),
		BAD("GET index.html HTTP/1.1\r\nHost: a\r\n\r\n", 400),
		BAD("GET http:// HTTP/1.1\r\nHost: a\r\n\r\n", 400),
		BAD("GET http:/x HTTP/1.1\r\nHost: a\r\n\r\n", 400),
		BAD("GET 1http://h/ HTTP/1.1\r\nHost: a\r\n\r\n", 400),
		BAD("GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", 400),
		BAD("GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
		BAD("GET /  HTTP/1.1\r\nHost: a\r\n\r\n", 400),
		BAD("GET  HTTP/1.1\r\nHost: a\r\n\r\n", 400),
		BAD("GET HTTP/1.1\r\nHost: a\r\n\r\n", 400),
		BAD("POST  HTTP/1.1\r\nHost: a\r\n\r\n", 400),
		BAD("POST HTTP/1.1\r\nHost: a\r\n\r\n", 400),
		BAD("GET /a\tb HTTP/1.1\r\nHost: a\r\n\r\n", 400),
		BAD("GET /a\x01" "b HTTP/1.1\r\nHost: a\r\n\r\n", 400),
		BAD("GET /a\x1f HTTP/1.1\r\nHost: a\r\n\r\n", 400),
		BAD("GET /a\x7f HTTP/1.1\r\nHost: a\r\n\r\n", 400),
		BAD("GET /a\0b HTTP/1.1\r\nHost: a\r\n\r\n", 400),
		/* other methods: a malformed target is still 400 */
		BAD("POST /a b HTTP/1.1\r\nHost: a\r\n\r\n", 400),
		BAD("OPTIONS /\x01 HTTP/1.1\r\nHost: a\r\n\r\n", 400),
	};
	struct result	 r;

	(void)state;
	CHECK_BAD(c);
	r = expect_done(RAW("GET /path?q=1 HTTP/1.1\r\nHost: a\r\n\r\n"));
	assert_int_equal(r.status, 200);
	r = expect_done(RAW("GET http://h/p HTTP/1.1\r\nHost: h\r\n\r\n"));
	assert_int_equal(r.status, 200);
	r = expect_done(RAW("GET svn+ssh.x-y://h/ HTTP/1.1\r\nHost: h\r\n\r\n"));
	assert_int_equal(r.status, 200);
	r = expect_done(RAW("GET HTTPS://H HTTP/1.1\r\nHost: h\r\n\r\n"));
	assert_int_equal(r.status, 200);
}

/* The target's path and query, as views into the input (14). */
static void
expect_target(const char *raw, const char *path, const char *query)
{
	struct http_request	 req;

	assert_int_equal(http_parse(raw, strlen(raw), &lim_default, &req),
	    HTTP_DONE);
	assert_int_equal(req.req_path_len, strlen(path));
	assert_memory_equal(req.req_path, path, req.req_path_len);
	if (query == NULL)
		assert_null(req.req_query);
	else {
		assert_non_null(req.req_query);
		assert_int_equal(req.req_query_len, strlen(query));
		assert_memory_equal(req.req_query, query, req.req_query_len);
	}
}

static void
test_target_views(void **state)
{
	(void)state;
	expect_target("GET / HTTP/1.1\r\nHost: a\r\n\r\n", "/", NULL);
	expect_target("GET /a/b?c=1&d HTTP/1.1\r\nHost: a\r\n\r\n", "/a/b",
	    "c=1&d");
	expect_target("GET /a? HTTP/1.1\r\nHost: a\r\n\r\n", "/a", "");
	expect_target("GET /?pad=1k?x HTTP/1.1\r\nHost: a\r\n\r\n", "/",
	    "pad=1k?x");
	expect_target("GET http://h/p?q HTTP/1.1\r\nHost: h\r\n\r\n", "/p",
	    "q");
	expect_target("GET http://h HTTP/1.1\r\nHost: h\r\n\r\n", "/", NULL);
	expect_target("GET http://h:8080?q=2 HTTP/1.1\r\nHost: h\r\n\r\n", "/",
	    "q=2");
	expect_target("GET http://[::1]:80/x HTTP/1.1\r\nHost: h\r\n\r\n", "/x",
	    NULL);
	expect_target("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", "*", NULL);
}

/* 14: absolute-form needs a valid authority; '*' is for OPTIONS and
 * authority-form for CONNECT, both then 405. */
static void
test_target_forms(void **state)
{
	static const struct bad_case c[] = {
		BAD("GET http://h:99999/ HTTP/1.1\r\nHost: h\r\n\r\n", 400),
		BAD("GET http://h:123456/ HTTP/1.1\r\nHost: h\r\n\r\n", 400),
		BAD("GET http://h:8x/ HTTP/1.1\r\nHost: h\r\n\r\n", 400),
		BAD("GET http://a:b:c/ HTTP/1.1\r\nHost: h\r\n\r\n", 400),
		BAD("GET http://[::1/ HTTP/1.1\r\nHost: h\r\n\r\n", 400),
		BAD("GET http://[zz]/ HTTP/1.1\r\nHost: h\r\n\r\n", 400),
		BAD("GET http:///x HTTP/1.1\r\nHost: h\r\n\r\n", 400),
		BAD("GET http://a\"b/ HTTP/1.1\r\nHost: h\r\n\r\n", 400),
		BAD("GET http://%zz/ HTTP/1.1\r\nHost: h\r\n\r\n", 400),
		BAD("POST * HTTP/1.1\r\nHost: a\r\n\r\n", 400),
		BAD("OPTIONS ** HTTP/1.1\r\nHost: a\r\n\r\n", 400),
		BAD("CONNECT example.com HTTP/1.1\r\nHost: a\r\n\r\n", 400),
		BAD("CONNECT a:b:1 HTTP/1.1\r\nHost: a\r\n\r\n", 400),
		BAD("POST index.html HTTP/1.1\r\nHost: a\r\n\r\n", 400),
	};

	struct result	 r;

	(void)state;
	CHECK_BAD(c);
	r = expect_done(RAW("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"));
	assert_int_equal(r.status, 405);
	r = expect_done(RAW("CONNECT / HTTP/1.1\r\nHost: a\r\n\r\n"));
	assert_int_equal(r.status, 405);
	r = expect_done(RAW("CONNECT example.com:443 HTTP/1.1\r\nHost: a\r\n"
	    "\r\n"));
	assert_int_equal(r.status, 405);
	r = expect_done(RAW("DELETE http://h/x HTTP/1.1\r\nHost: h\r\n\r\n"));
	assert_int_equal(r.status, 405);
	expect_done(RAW("GET http://h:65535/ HTTP/1.1\r\nHost: h\r\n\r\n"));
	expect_done(RAW("GET http://h:/ HTTP/1.1\r\nHost: h\r\n\r\n"));
	expect_done(RAW("GET http://%41b.c/ HTTP/1.1\r\nHost: h\r\n\r\n"));
	expect_done(RAW("GET http://[v1.x]/ HTTP/1.1\r\nHost: h\r\n\r\n"));
	expect_done(RAW("GET http://u-_.~!$&'()*+,;=/ HTTP/1.1\r\nHost: h\r\n"
	    "\r\n"));
}

/* 34: the configured field's lines are kept in order, all of them. */
static void
test_forward_fields(void **state)
{
	struct http_limits	 lim = lim_default;
	struct http_request	 req;
	char			 raw[8192], *p;
	unsigned		 i;

	(void)state;
	lim.lim_forward = "x-forwarded-for";
	lim.lim_forward_len = strlen(lim.lim_forward);
	snprintf(raw, sizeof(raw), "GET / HTTP/1.1\r\nHost: a\r\n"
	    "X-Forwarded-For:  1.1.1.1, 2.2.2.2 \r\nX-Other: 9\r\n"
	    "x-forwarded-FOR: 3.3.3.3\r\n\r\n");
	assert_int_equal(http_parse(raw, strlen(raw), &lim, &req), HTTP_DONE);
	assert_int_equal(req.req_nfwd, 2);
	assert_int_equal(req.req_fwd_len[0], strlen("1.1.1.1, 2.2.2.2"));
	assert_memory_equal(req.req_fwd[0], "1.1.1.1, 2.2.2.2",
	    req.req_fwd_len[0]);
	assert_memory_equal(req.req_fwd[1], "3.3.3.3", 7);

	/* Without a configured name nothing is kept. */
	assert_int_equal(http_parse(raw, strlen(raw), &lim_default, &req),
	    HTTP_DONE);
	assert_int_equal(req.req_nfwd, 0);

	/* As many lines as fields fit. */
	p = raw + snprintf(raw, sizeof(raw), "GET / HTTP/1.1\r\nHost: a\r\n");
	for (i = 0; i < HTTP_MAX_FIELDS - 1; i++)
		p += sprintf(p, "X-Forwarded-For: 10.0.0.%u\r\n", i);
	strcpy(p, "\r\n");
	assert_int_equal(http_parse(raw, strlen(raw), &lim, &req), HTTP_DONE);
	assert_int_equal(req.req_nfwd, HTTP_MAX_FIELDS - 1);
	assert_memory_equal(req.req_fwd[0], "10.0.0.0", 8);
	assert_memory_equal(req.req_fwd[HTTP_MAX_FIELDS - 2], "10.0.0.98", 9);
}

/*
 * 5: a head that arrives a byte at a time is searched once, not from its
 * start on every call.  The work is counted as the bytes each call had
 * to search (those past the scan offset the previous call left), for a
 * 1 MiB head of 100 fields.
 */
static void
test_resumable_scan_work(void **state)
{
	struct http_limits	 lim = {
		.lim_max_header = 2 << 20, .lim_max_fields = HTTP_MAX_FIELDS };
	struct http_stream	 st;
	struct http_request	 req;
	size_t			 total = 1 << 20, len, off, used, work = 0;
	size_t			 field, calls = 0;
	char			*raw;
	unsigned		 i;
	int			 rc = HTTP_NEED_MORE;

	(void)state;
	raw = malloc(total);
	assert_non_null(raw);
	off = (size_t)sprintf(raw, "GET / HTTP/1.1\r\nHost: a\r\n");
	field = (total - off - 2) / HTTP_MAX_FIELDS - 1;
	for (i = 0; i < HTTP_MAX_FIELDS - 2; i++) {	/* Host, X..., Y */
		memcpy(raw + off, "X: ", 3);
		memset(raw + off + 3, 'v', field - 5);
		memcpy(raw + off + field - 2, "\r\n", 2);
		off += field;
	}
	memcpy(raw + off, "Y: ", 3);
	memset(raw + off + 3, 'w', total - off - 7);
	memcpy(raw + total - 4, "\r\n\r\n", 4);

	http_stream_init(&st);
	for (len = 1; len <= total; len++) {
		work += len - st.st_scan.hs_off;
		calls++;
		rc = http_stream_next(&st, raw, len, &lim, &req, &used);
		if (rc != HTTP_NEED_MORE)
			break;
		assert_int_equal(used, 0);
	}
	assert_int_equal(rc, HTTP_DONE);
	assert_int_equal(req.req_status, 200);
	assert_int_equal(used, total);
	assert_int_equal(calls, total);
	/* Each byte searched once by the calls, plus the last one. */
	assert_true(work <= total + 1);
	free(raw);
}

/* ------------------------------------------------------------------ */
/* Header fields (17, 18, 19)                                          */
/* ------------------------------------------------------------------ */

static void
test_field_syntax(void **state)
{
	static const struct bad_case c[] = {
		/* whitespace between name and colon */
		BAD("GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400),
		BAD("GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", 400),
		BAD("GET / HTTP/1.1\r\nHost: a\r\nX-A : b\r\n\r\n", 400),
		/* obs-fold */
		BAD("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n", 400),
		BAD("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n\tc\r\n\r\n", 400),
		BAD("GET / HTTP/1.1\r\n Host: a\r\n\r\n", 400),
		BAD("GET / HTTP/1.1\nHost: a\n  x\n\n", 400),
		/* NUL and control bytes in a value */
		BAD("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\0c\r\n\r\n", 400),
		BAD("GET / HTTP/1.1\r\nHost: a\r\nX-A: \0\r\n\r\n", 400),
		BAD("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x01" "c\r\n\r\n", 400),
		BAD("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x1b[0m\r\n\r\n", 400),
		BAD("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x7f\r\n\r\n", 400),
		BAD("GET / HTTP/1.1\r\nHost: a\x0b\r\n\r\n", 400),
		/* ... and in a name */
		BAD("GET / HTTP/1.1\r\nHost: a\r\nX\0A: b\r\n\r\n", 400),
		BAD("GET / HTTP/1.1\r\nHost: a\r\nX\x01" "A: b\r\n\r\n", 400),
		BAD("GET / HTTP/1.1\r\nHost: a\r\nX(A): b\r\n\r\n", 400),
		BAD("GET / HTTP/1.1\r\nHost: a\r\nX\xc3\xa9: b\r\n\r\n", 400),
		/* no colon, empty name */
		BAD("GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n", 400),
		BAD("GET / HTTP/1.1\nHost: a\nX\n\n", 400),
		BAD("GET / HTTP/1.1\r\nHost: a\r\nX\r\n\r\n", 400),
		BAD("GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n", 400),
	};
	struct result	 r;

	(void)state;
	CHECK_BAD(c);
	/* obs-text (>= 0x80) in a value is allowed, as is a tab */
	r = expect_done(RAW("GET / HTTP/1.1\r\nHost: a\r\nX: caf\xc3\xa9\t!\r\n\r\n"));
	assert_int_equal(r.status, 200);
	/* no whitespace after the colon */
	r = expect_done(RAW("GET / HTTP/1.1\r\nHost:a\r\nX:b\r\n\r\n"));
	assert_int_equal(r.status, 200);
}

/* Every forbidden byte at every position of values of many lengths
 * (values are checked several bytes at a time). */
static void
test_field_value_bytes(void **state)
{
	char		 raw[128], value[64];
	size_t		 vlen, pos, len;
	unsigned	 c;

	(void)state;
	for (vlen = 1; vlen <= 40; vlen++) {
		for (pos = 0; pos < vlen; pos++) {
			for (c = 0; c < 256; c++) {
				memset(value, 'v', vlen);
				value[pos] = (char)c;
				len = (size_t)snprintf(raw, sizeof(raw),
				    "GET / HTTP/1.1\r\nHost: a\r\nX: ");
				memcpy(raw + len, value, vlen);
				len += vlen;
				memcpy(raw + len, "z\r\n\r\n", 5);
				len += 5;
				if (c == '\t' || (c >= 0x20 && c != 0x7f))
					expect_done(raw, len);
				else if (c != '\n')
					expect_error(raw, len, 400);
			}
		}
	}
}

/* Empty list elements are ignored (RFC 9110 5.6.1). */
static void
test_empty_list_elements(void **state)
{
	struct result	 r;

	(void)state;
	r = expect_done(RAW("GET / HTTP/1.1\r\nHost: a\r\n"
	    "Content-Length: 5, ,5,\r\n\r\n"));
	assert_int_equal(r.body, HTTP_BODY_LENGTH);
	assert_true(r.content_length == 5);
	r = expect_done(RAW("GET / HTTP/1.1\r\nHost: a\r\n"
	    "Transfer-Encoding: , gzip,, chunked ,\r\n\r\n"));
	assert_int_equal(r.body, HTTP_BODY_CHUNKED);
	r = expect_done(RAW("GET / HTTP/1.0\r\nConnection: ,, keep-alive,\r\n\r\n"));
	assert_int_equal(r.keepalive, 1);
	/* field names and tokens in any case */
	r = expect_done(RAW("GET / HTTP/1.1\r\nHOST: a\r\n"
	    "CONTENT-LENGTH: 3\r\n\r\n"));
	assert_true(r.content_length == 3);
	r = expect_done(RAW("GET / HTTP/1.1\r\nhost: a\r\n"
	    "tRANSFER-eNCODING: CHUNKED\r\n\r\n"));
	assert_int_equal(r.body, HTTP_BODY_CHUNKED);
	r = expect_done(RAW("GET / HTTP/1.0\r\ncOnNeCtIoN: KeEp-AlIvE\r\n\r\n"));
	assert_int_equal(r.keepalive, 1);
	/* near misses of the names are other fields */
	r = expect_done(RAW("GET / HTTP/1.1\r\nHost: a\r\n"
	    "Content-Lengths: x\r\nContent-Lengt: y\r\nHosts: b\r\n"
	    "Transfer-Encodings: gzip\r\nConnections: close\r\n\r\n"));
	assert_int_equal(r.body, HTTP_BODY_NONE);
	assert_int_equal(r.keepalive, 1);
}

static void
test_host(void **state)
{
	static const struct bad_case c[] = {
		BAD("GET / HTTP/1.1\r\n\r\n", 400),
		BAD("GET / HTTP/1.1\r\nX-Host: a\r\n\r\n", 400),
		BAD("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400),
		BAD("GET / HTTP/1.1\r\nHost: a\r\nhOST: b\r\n\r\n", 400),
		BAD("HEAD / HTTP/1.1\r\nHost: a\r\nX: y\r\nHost: b\r\n\r\n", 400),
		BAD("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", 400),
		/* an invalid uri-host [ ":" port ] */
		BAD("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
		BAD("GET / HTTP/1.1\r\nHost: a:b\r\n\r\n", 400),
		BAD("GET / HTTP/1.1\r\nHost: 130.1:5069: 127.0.0.1:50699\r\n"
		    "\r\n", 400),
		BAD("GET / HTTP/1.1\r\nHost: a:1:2\r\n\r\n", 400),
		BAD("GET / HTTP/1.1\r\nHost: a:65536\r\n\r\n", 400),
		BAD("GET / HTTP/1.1\r\nHost: a:123456\r\n\r\n", 400),
		BAD("GET / HTTP/1.1\r\nHost: ::1\r\n\r\n", 400),
		BAD("GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", 400),
		BAD("GET / HTTP/1.1\r\nHost: [::1]x\r\n\r\n", 400),
		BAD("GET / HTTP/1.1\r\nHost: [g::1]\r\n\r\n", 400),
		BAD("GET / HTTP/1.1\r\nHost: a\"b\r\n\r\n", 400),
		BAD("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400),
		BAD("GET / HTTP/1.1\r\nHost: a@b\r\n\r\n", 400),
		BAD("GET / HTTP/1.1\r\nHost: %4\r\n\r\n", 400),
		BAD("GET / HTTP/1.1\r\nHost: a\x80\r\n\r\n", 400),
		BAD("GET / HTTP/1.0\r\nHost: a b\r\n\r\n", 400),
	};

	(void)state;
	CHECK_BAD(c);
	expect_done(RAW("GET / HTTP/1.1\r\nHost: a:8080\r\n\r\n"));
	expect_done(RAW("GET / HTTP/1.1\r\nHost: a:\r\n\r\n"));
	expect_done(RAW("GET / HTTP/1.1\r\nHost: 127.0.0.1:65535\r\n\r\n"));
	expect_done(RAW("GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n"));
	expect_done(RAW("GET / HTTP/1.1\r\nHost: [2001:db8::1.2.3.4]\r\n"
	    "\r\n"));
	expect_done(RAW("GET / HTTP/1.1\r\nHost: ex-ample.com.\r\n\r\n"));
	expect_done(RAW("GET / HTTP/1.1\r\nHost: %41.b\r\n\r\n"));
	/* HTTP/1.0 does not need Host; case-insensitive field name; an
	 * empty Host value is allowed (9112 3.2). */
	expect_done(RAW("GET / HTTP/1.0\r\n\r\n"));
	expect_done(RAW("GET / HTTP/1.0\r\nHost: a\r\n\r\n"));
	expect_done(RAW("GET / HTTP/1.1\r\nHOST: a\r\n\r\n"));
	expect_done(RAW("GET / HTTP/1.1\r\nHost:\r\n\r\n"));
	/* absolute-form does not replace Host in 1.1 */
	expect_error(RAW("GET http://h/ HTTP/1.1\r\n\r\n"), 400);
}

struct conn_case {
	const char	*raw;
	int		 keepalive;
};

static void
test_connection_tokens(void **state)
{
	static const struct conn_case c[] = {
		{ "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 1 },
		{ "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", 0 },
		{ "GET / HTTP/1.1\r\nHost: a\r\nConnection: CLOSE\r\n\r\n", 0 },
		{ "GET / HTTP/1.1\r\nHost: a\r\nconnection: Close\r\n\r\n", 0 },
		{ "GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade, close\r\n\r\n", 0 },
		{ "GET / HTTP/1.1\r\nHost: a\r\nConnection:foo,,close ,\r\n\r\n", 0 },
		{ "GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, close\r\n\r\n", 0 },
		{ "GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n", 0 },
		{ "GET / HTTP/1.1\r\nHost: a\r\nConnection: closed\r\n\r\n", 1 },
		{ "GET / HTTP/1.1\r\nHost: a\r\nConnection: \"close\"\r\n\r\n", 1 },
		{ "GET / HTTP/1.1\r\nHost: a\r\nX-Connection: close\r\n\r\n", 1 },
		{ "GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\n\r\n", 1 },
		{ "GET / HTTP/1.0\r\n\r\n", 0 },
		{ "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 1 },
		{ "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", 1 },
		{ "GET / HTTP/1.0\r\nConnection: KEEP-ALIVE\r\n\r\n", 1 },
		{ "GET / HTTP/1.0\r\nConnection: upgrade,\tkeep-alive \r\n\r\n", 1 },
		{ "GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", 0 },
		{ "GET / HTTP/1.0\r\nConnection: close\r\nConnection: keep-alive\r\n\r\n", 0 },
		{ "GET / HTTP/1.0\r\nConnection: keep-alived\r\n\r\n", 0 },
		{ "GET / HTTP/1.0\r\nKeep-Alive: 300\r\n\r\n", 0 },
	};
	struct result	 r;
	size_t		 i;

	(void)state;
	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		r = expect_done(c[i].raw, strlen(c[i].raw));
		if (r.keepalive != c[i].keepalive)
			fail_msg("%s: keepalive %d, expected %d", c[i].raw,
			    r.keepalive, c[i].keepalive);
	}
}

/* ------------------------------------------------------------------ */
/* Body framing (20, 21, 22)                                           */
/* ------------------------------------------------------------------ */

static void
test_transfer_encoding(void **state)
{
	static const struct bad_case c[] = {
		/* TE + CL, either order (smuggling) */
		BAD("GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
		    "Content-Length: 5\r\n\r\n", 400),
		BAD("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
		    "Transfer-Encoding: chunked\r\n\r\n", 400),
		BAD("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n"
		    "Transfer-Encoding: chunked\r\n\r\n", 400),
		/* TE in HTTP/1.0 */
		BAD("GET / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
		BAD("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
		/* coding list not ending in chunked */
		BAD("GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 400),
		/* an empty coding list is present, not absent */
		BAD("GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n", 400),
		BAD("GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ,\r\n\r\n", 400),
		BAD("GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \r\n"
		    "Content-Length: 3\r\n\r\n", 400),
		BAD("GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400),
		BAD("GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
		    "Transfer-Encoding: gzip\r\n\r\n", 400),
		BAD("GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 400),
		BAD("GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunkedx\r\n\r\n", 400),
		BAD("GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \"chunked\"\r\n\r\n", 400),
		BAD("GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;x=1\r\n\r\n", 400),
	};
	static const char *const ok[] = {
		"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n"
		    "transfer-encoding: chunked\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
	};
	struct result	 r;
	size_t		 i;

	(void)state;
	CHECK_BAD(c);
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		r = expect_done(ok[i], strlen(ok[i]));
		assert_int_equal(r.body, HTTP_BODY_CHUNKED);
	}
}

static void
test_content_length(void **state)
{
	static const struct bad_case c[] = {
		BAD("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: abc\r\n\r\n", 400),
		BAD("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400),
		BAD("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n\r\n", 400),
		BAD("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1.5\r\n\r\n", 400),
		BAD("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\n", 400),
		BAD("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 2\r\n\r\n", 400),
		BAD("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5a\r\n\r\n", 400),
		BAD("GET / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", 400),
		BAD("GET / HTTP/1.1\r\nHost: a\r\nContent-Length:  \r\n\r\n", 400),
		BAD("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: ,\r\n\r\n", 400),
		BAD("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: , ,\r\n\r\n", 400),
		/* overflow: 2^64 and far beyond */
		BAD("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551616\r\n\r\n", 400),
		BAD("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999999\r\n\r\n", 400),
		/* differing values, in one field or two */
		BAD("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n", 400),
		BAD("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
		    "Content-Length: 6\r\n\r\n", 400),
		BAD("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n"
		    "Content-Length: 1\r\n\r\n", 400),
		BAD("GET / HTTP/1.0\r\nContent-Length: 5\r\nContent-Length: 05x\r\n\r\n", 400),
	};
	struct length_case {
		const char	*raw;
		int		 body;
		uint64_t	 length;
	} ok[] = {
		{ "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n",
		  HTTP_BODY_LENGTH, 5 },
		{ "GET / HTTP/1.1\r\nHost: a\r\ncontent-length:12\r\n\r\n",
		  HTTP_BODY_LENGTH, 12 },
		{ "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n",
		  HTTP_BODY_LENGTH, 5 },
		{ "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 7\r\n"
		  "Content-Length: 7\r\n\r\n", HTTP_BODY_LENGTH, 7 },
		{ "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 007\r\n"
		  "Content-Length: 7\r\n\r\n", HTTP_BODY_LENGTH, 7 },
		{ "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
		  HTTP_BODY_NONE, 0 },
		{ "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0, 0\r\n\r\n",
		  HTTP_BODY_NONE, 0 },
		{ "GET / HTTP/1.0\r\nContent-Length: 3\r\n\r\n",
		  HTTP_BODY_LENGTH, 3 },
		{ "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000000000\r\n\r\n",
		  HTTP_BODY_LENGTH, 1000000000000ull },
		{ "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1844674407370955160\r\n\r\n",
		  HTTP_BODY_LENGTH, 1844674407370955160ull },
		{ "GET / HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_BODY_NONE, 0 },
	};
	struct result	 r;
	size_t		 i;

	(void)state;
	CHECK_BAD(c);
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		r = expect_done(ok[i].raw, strlen(ok[i].raw));
		if (r.body != ok[i].body || r.content_length != ok[i].length)
			fail_msg("%s: body %d length %llu", ok[i].raw, r.body,
			    (unsigned long long)r.content_length);
	}
}

/* ------------------------------------------------------------------ */
/* Chunked bodies (24)                                                 */
/* ------------------------------------------------------------------ */

/* Runs the chunk parser over body cut at the given offsets; returns its
 * last result and the total bytes it consumed. */
static int
chunked_run(const char *body, size_t len, const size_t *cuts, size_t ncuts,
    size_t *total)
{
	struct http_chunked	 ch;
	size_t			 from = 0, upto, used, seg;
	int			 rc = 0;

	http_chunked_init(&ch);
	*total = 0;
	for (seg = 0; seg <= ncuts; seg++) {
		upto = seg < ncuts ? cuts[seg] : len;
		used = (size_t)-1;
		rc = http_chunked_skip(&ch, body + from, upto - from, &used);
		if (rc == -1)
			return rc;
		assert_true(used <= upto - from);
		*total += used;
		if (rc == 1)
			return rc;
		/* Not finished: everything given must have been taken. */
		assert_int_equal(used, upto - from);
		from = upto;
	}
	return rc;
}

struct bytes {
	const char	*raw;
	size_t		 len;
};

static const struct bytes chunked_ok[] = {
	{ RAW("0\r\n\r\n") },
	{ RAW("0\n\n") },
	{ RAW("5\r\nhello\r\n0\r\n\r\n") },
	{ RAW("5\nhello\n0\n\n") },
	{ RAW("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n") },
	{ RAW("A\r\n0123456789\r\na\r\n0123456789\r\n0\r\n\r\n") },
	{ RAW("00000000000005\r\nhello\r\n000\r\n\r\n") },
	{ RAW("5;name=value;x\r\nhello\r\n0;last\r\n\r\n") },
	{ RAW("5 ; a=\"q\"\r\nhello\r\n0\r\n\r\n") },
	{ RAW("5\t\r\nhello\r\n0\r\n\r\n") },
	{ RAW("5\r\nhe\r\nl\r\n0\r\n\r\n") },
	{ RAW("0\r\nX-Trailer: 1\r\nY: 2\r\n\r\n") },
	{ RAW("3\r\n\0\r\n\r\n0\r\nT: v\n\n") },
	{ RAW("10\r\n0123456789abcdef\r\n0\r\n\r\n") },
};

#define NCHUNKED_OK	(sizeof(chunked_ok) / sizeof(chunked_ok[0]))

static void
test_chunked_whole(void **state)
{
	char	 buf[256];
	size_t	 i, len, used;

	(void)state;
	for (i = 0; i < NCHUNKED_OK; i++) {
		len = chunked_ok[i].len;
		assert_int_equal(chunked_run(chunked_ok[i].raw, len, NULL, 0,
		    &used), 1);
		assert_int_equal(used, len);
		/* Bytes after the body belong to the next request. */
		memcpy(buf, chunked_ok[i].raw, len);
		memcpy(buf + len, "GET / HTTP/1.1\r\n", 16);
		assert_int_equal(chunked_run(buf, len + 16, NULL, 0, &used), 1);
		assert_int_equal(used, len);
	}
}

static void
test_chunked_split_every_offset(void **state)
{
	size_t	 i, k, len, used, *cuts;

	(void)state;
	for (i = 0; i < NCHUNKED_OK; i++) {
		len = chunked_ok[i].len;
		for (k = 0; k <= len; k++) {
			assert_int_equal(chunked_run(chunked_ok[i].raw, len, &k, 1,
			    &used), 1);
			assert_int_equal(used, len);
		}
		/* one byte at a time */
		cuts = malloc(len * sizeof(*cuts));
		assert_non_null(cuts);
		for (k = 0; k < len; k++)
			cuts[k] = k + 1;
		assert_int_equal(chunked_run(chunked_ok[i].raw, len, cuts, len,
		    &used), 1);
		assert_int_equal(used, len);
		free(cuts);
	}
}

static void
test_chunked_incomplete(void **state)
{
	struct http_chunked	 ch;
	size_t			 used;

	(void)state;
	/* Every proper prefix of a body needs more and is consumed. */
	http_chunked_init(&ch);
	assert_int_equal(http_chunked_skip(&ch, RAW("5\r\nhel"), &used), 0);
	assert_int_equal(used, 6);
	assert_int_equal(http_chunked_skip(&ch, RAW("lo\r\n0\r\n\r"), &used), 0);
	assert_int_equal(used, 8);
	assert_int_equal(http_chunked_skip(&ch, RAW("\nGET"), &used), 1);
	assert_int_equal(used, 1);
	/* Nothing given: nothing consumed. */
	http_chunked_init(&ch);
	used = 99;
	assert_int_equal(http_chunked_skip(&ch, "", 0, &used), 0);
	assert_int_equal(used, 0);
	/* A large chunk announced: the data is skipped as it comes. */
	http_chunked_init(&ch);
	assert_int_equal(http_chunked_skip(&ch, RAW("fffffff\r\nxxxx"), &used), 0);
	assert_int_equal(used, 13);
	assert_true(ch.ch_left == 0xfffffffull - 4);
}

static void
test_chunked_malformed(void **state)
{
	static const struct bad_case c[] = {
		BAD("\r\n", -1),			/* no size */
		BAD(";ext\r\n", -1),
		BAD("x\r\n", -1),
		BAD("-5\r\nhello\r\n0\r\n\r\n", -1),
		BAD("+5\r\nhello\r\n0\r\n\r\n", -1),
		BAD("0x5\r\nhello\r\n0\r\n\r\n", -1),
		BAD(" 5\r\nhello\r\n0\r\n\r\n", -1),
		BAD("5g\r\nhello\r\n0\r\n\r\n", -1),
		BAD("5\rX", -1),			/* CR not followed by LF */
		BAD("5\r\nhelloX\r\n0\r\n\r\n", -1),	/* data longer than size */
		BAD("5\r\nhello\rX", -1),
		BAD("5\r\nhello\r\r\n", -1),
		BAD("5;a\x01\r\nhello\r\n", -1),	/* control in extension */
		BAD("5;a\0\r\nhello\r\n", -1),
		BAD("0\r\n X: y\r\n\r\n", -1),		/* trailer fold */
		BAD("0\r\n(: y\r\n\r\n", -1),
		BAD("0\r\nX: \x01\r\n\r\n", -1),
		BAD("0\r\nX: y\rZ", -1),
		BAD("0\r\n\rX", -1),
		/* overflowing sizes */
		BAD("10000000000000000\r\n", -1),
		BAD("ffffffffffffffff\r\n", -1),
		BAD("1000000000000000\r\n", -1),
		BAD("fffffffffffffffffffffffffffff\r\n", -1),
	};
	size_t	 i, k, used;

	(void)state;
	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		if (chunked_run(c[i].raw, c[i].len, NULL, 0, &used) != -1)
			fail_msg("chunked body \"%s\" was accepted", c[i].raw);
		/* The error is found the same way when split anywhere. */
		for (k = 1; k < c[i].len; k++)
			assert_int_equal(chunked_run(c[i].raw, c[i].len, &k, 1,
			    &used), -1);
	}
	/* 15 hex digits is the most accepted. */
	assert_int_equal(chunked_run(RAW("fffffffffffffff\r\n"), NULL, 0, &used),
	    0);
	assert_int_equal(used, 17);
}

static void
test_chunked_extension_bound(void **state)
{
	char	*body;
	size_t	 len, used;

	(void)state;
	/* An endless extension is cut off. */
	len = 2 + 10000;
	body = malloc(len);
	assert_non_null(body);
	memcpy(body, "5;", 2);
	memset(body + 2, 'e', len - 2);
	assert_int_equal(chunked_run(body, len, NULL, 0, &used), -1);
	/* So is an endless trailer. */
	memcpy(body, "0\r\nX", 4);
	memset(body + 4, 'e', len - 4);
	assert_int_equal(chunked_run(body, len, NULL, 0, &used), -1);
	free(body);
	/* A modest extension is fine. */
	body = malloc(4096);
	assert_non_null(body);
	len = (size_t)sprintf(body, "5;%01000d\r\nhello\r\n0\r\n\r\n", 0);
	assert_int_equal(chunked_run(body, len, NULL, 0, &used), 1);
	assert_int_equal(used, len);
	free(body);
}

/* ------------------------------------------------------------------ */
/* Streams: pipelining and bodies between requests (3, 4, 23, 24)     */
/* ------------------------------------------------------------------ */

static void
want_request(struct result *r, int method, int minor, int keepalive,
    int status, int body, uint64_t length, const char *line)
{
	memset(r, 0, sizeof(*r));
	r->rc = HTTP_DONE;
	r->method = method;
	r->minor = minor;
	r->keepalive = keepalive;
	r->status = status;
	r->body = body;
	r->content_length = length;
	snprintf(r->line, sizeof(r->line), "%s", line);
}

static void
want_error(struct result *r, int status)
{
	memset(r, 0, sizeof(*r));
	r->rc = HTTP_ERROR;
	r->status = status;
}

static const char pipelined[] =
	"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
	"HEAD /b HTTP/1.1\r\nHost: x\r\nContent-Length: 26\r\n\r\n"
	"GET /smuggled HTTP/1.1\r\n\r\n"		/* 26 body bytes */
	"\r\n"
	"GET /c HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
	"POST /d HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
	"1a\r\nGET /smuggled HTTP/1.1\r\n\r\n\r\n0\r\nT: 1\r\n\r\n"
	"GET /e HTTP/1.1\nHost: x\n\n"
	"GET /f HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
	"0\r\n\r\n"
	"GET /g HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";

static size_t
pipelined_want(struct result *w)
{
	want_request(&w[0], HTTP_GET, 1, 1, 200, HTTP_BODY_NONE, 0,
	    "GET /a HTTP/1.1");
	want_request(&w[1], HTTP_HEAD, 1, 1, 200, HTTP_BODY_LENGTH, 26,
	    "HEAD /b HTTP/1.1");
	want_request(&w[2], HTTP_GET, 0, 1, 200, HTTP_BODY_NONE, 0,
	    "GET /c HTTP/1.0");
	want_request(&w[3], HTTP_OTHER, 1, 1, 405, HTTP_BODY_CHUNKED, 0,
	    "POST /d HTTP/1.1");
	want_request(&w[4], HTTP_GET, 1, 1, 200, HTTP_BODY_NONE, 0,
	    "GET /e HTTP/1.1");
	want_request(&w[5], HTTP_GET, 1, 1, 200, HTTP_BODY_CHUNKED, 0,
	    "GET /f HTTP/1.1");
	want_request(&w[6], HTTP_GET, 1, 0, 200, HTTP_BODY_NONE, 0,
	    "GET /g HTTP/1.1");
	return 7;
}

static void
test_stream_pipelined_all_splits(void **state)
{
	struct result	 want[MAX_RESULTS];
	size_t		 n;

	(void)state;
	n = pipelined_want(want);
	check_stream_all_splits(pipelined, sizeof(pipelined) - 1, want, n);
}

/* The body bytes are not parsed as requests, and the stream stays busy
 * until the body has been skipped. */
static void
test_stream_body_skipped(void **state)
{
	struct http_stream	 st;
	struct http_request	 req;
	const char		 head[] = "GET / HTTP/1.1\r\nHost: x\r\n"
	    "Content-Length: 10\r\n\r\n";
	size_t			 used;

	(void)state;
	http_stream_init(&st);
	assert_false(http_stream_busy(&st));
	assert_int_equal(http_stream_next(&st, RAW(head), &lim_default, &req,
	    &used), HTTP_DONE);
	assert_int_equal(used, sizeof(head) - 1);
	assert_true(http_stream_busy(&st));
	/* 4 of the 10 body bytes: all used, still busy */
	assert_int_equal(http_stream_next(&st, RAW("GET "), &lim_default, &req,
	    &used), HTTP_NEED_MORE);
	assert_int_equal(used, 4);
	assert_true(http_stream_busy(&st));
	/* the remaining 6, then a new request */
	assert_int_equal(http_stream_next(&st,
	    RAW("/ HTTPGET /n HTTP/1.0\r\n\r\n"), &lim_default, &req, &used),
	    HTTP_DONE);
	assert_int_equal(used, 6 + strlen("GET /n HTTP/1.0\r\n\r\n"));
	assert_memory_equal(req.req_line, "GET /n HTTP/1.0", req.req_line_len);
	assert_false(http_stream_busy(&st));
	/* No input at all while idle. */
	assert_int_equal(http_stream_next(&st, "", 0, &lim_default, &req,
	    &used), HTTP_NEED_MORE);
	assert_int_equal(used, 0);
	/* Empty lines between requests are used up (a lone CRLF before
	 * EOF is then nothing at all). */
	assert_int_equal(http_stream_next(&st, RAW("\r\n\n\r\n"), &lim_default,
	    &req, &used), HTTP_NEED_MORE);
	assert_int_equal(used, 5);
	assert_int_equal(http_stream_next(&st, RAW("\r\n\r"), &lim_default,
	    &req, &used), HTTP_NEED_MORE);
	assert_int_equal(used, 2);
	assert_false(http_stream_busy(&st));
}

static void
test_stream_errors(void **state)
{
	static const char bad_chunk[] =
	    "GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "zz\r\nGET /never HTTP/1.1\r\nHost: x\r\n\r\n";
	static const char overflow_chunk[] =
	    "GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "10000000000000000\r\nGET /never HTTP/1.1\r\nHost: x\r\n\r\n";
	static const char bad_second[] =
	    "GET /1 HTTP/1.1\r\nHost: x\r\n\r\n"
	    "GET /2 HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n"
	    "GET /3 HTTP/1.1\r\nHost: x\r\n\r\n";
	static const char after_405[] =
	    "DELETE /1 HTTP/1.1\r\nHost: x\r\n\r\n"
	    "GET /2 HTTP/2.0\r\nHost: x\r\n\r\n";
	struct result	 want[MAX_RESULTS];

	(void)state;
	want_request(&want[0], HTTP_GET, 1, 1, 200, HTTP_BODY_CHUNKED, 0,
	    "GET / HTTP/1.1");
	want_error(&want[1], 400);
	check_stream_all_splits(RAW(bad_chunk), want, 2);
	check_stream_all_splits(RAW(overflow_chunk), want, 2);

	want_request(&want[0], HTTP_GET, 1, 1, 200, HTTP_BODY_NONE, 0,
	    "GET /1 HTTP/1.1");
	want_error(&want[1], 400);
	check_stream_all_splits(RAW(bad_second), want, 2);

	want_request(&want[0], HTTP_OTHER, 1, 1, 405, HTTP_BODY_NONE, 0,
	    "DELETE /1 HTTP/1.1");
	want_error(&want[1], 505);
	check_stream_all_splits(RAW(after_405), want, 2);
}

/* 100+ requests in one buffer, walked with req_consumed (3). */
static void
test_pipelining_many(void **state)
{
	enum { N = 150 };
	char			*buf, line[64];
	size_t			 len = 0, off = 0;
	struct http_request	 req;
	int			 i;

	(void)state;
	buf = malloc(N * 64);
	assert_non_null(buf);
	for (i = 0; i < N; i++)
		len += (size_t)sprintf(buf + len, "%sGET /%d HTTP/1.1\r\n"
		    "Host: x\r\n%s\r\n", i % 10 == 9 ? "\r\n" : "", i,
		    i == N - 1 ? "Connection: close\r\n" : "");
	for (i = 0; i < N; i++) {
		assert_int_equal(http_parse(buf + off, len - off, &lim_default,
		    &req), HTTP_DONE);
		snprintf(line, sizeof(line), "GET /%d HTTP/1.1", i);
		assert_int_equal(req.req_line_len, strlen(line));
		assert_memory_equal(req.req_line, line, strlen(line));
		assert_int_equal(req.req_keepalive, i != N - 1);
		assert_true(req.req_consumed > 0);
		off += req.req_consumed;
	}
	assert_int_equal(off, len);
	assert_int_equal(http_parse(buf + off, 0, &lim_default, &req),
	    HTTP_NEED_MORE);
	assert_int_equal(req.req_consumed, 0);
	free(buf);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_whole),
		cmocka_unit_test(test_valid_split_every_offset),
		cmocka_unit_test(test_valid_stream_all_splits),
		cmocka_unit_test(test_request_views),
		cmocka_unit_test(test_target_views),
		cmocka_unit_test(test_target_forms),
		cmocka_unit_test(test_forward_fields),
		cmocka_unit_test(test_resumable_scan_work),
		cmocka_unit_test(test_empty_lines_only),
		cmocka_unit_test(test_bare_cr),
		cmocka_unit_test(test_414_request_line_too_long),
		cmocka_unit_test(test_431_header_too_large),
		cmocka_unit_test(test_431_too_many_fields),
		cmocka_unit_test(test_field_limit_setting),
		cmocka_unit_test(test_other_methods_405),
		cmocka_unit_test(test_malformed_method_400),
		cmocka_unit_test(test_versions),
		cmocka_unit_test(test_targets),
		cmocka_unit_test(test_field_syntax),
		cmocka_unit_test(test_field_value_bytes),
		cmocka_unit_test(test_empty_list_elements),
		cmocka_unit_test(test_host),
		cmocka_unit_test(test_connection_tokens),
		cmocka_unit_test(test_transfer_encoding),
		cmocka_unit_test(test_content_length),
		cmocka_unit_test(test_chunked_whole),
		cmocka_unit_test(test_chunked_split_every_offset),
		cmocka_unit_test(test_chunked_incomplete),
		cmocka_unit_test(test_chunked_malformed),
		cmocka_unit_test(test_chunked_extension_bound),
		cmocka_unit_test(test_stream_pipelined_all_splits),
		cmocka_unit_test(test_stream_body_skipped),
		cmocka_unit_test(test_stream_errors),
		cmocka_unit_test(test_pipelining_many),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
