/*
 * Unit tests for response building (src/response.c): http_response_write(),
 * http_response_size(), http_body_size() and http_date().
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

/* 1994-11-06 08:49:37 UTC, the example date of RFC 9110 5.6.7. */
#define EPOCH		784111777
#define DATE		"Sun, 06 Nov 1994 08:49:37 GMT"
#define GUARD		0xA5

static struct http_response
response(int status, int head, enum http_conn conn, const char *addr,
    size_t padding)
{
	struct http_response	 r;

	memset(&r, 0, sizeof(r));
	r.rsp_status = status;
	r.rsp_head = head;
	r.rsp_conn = conn;
	r.rsp_date = DATE;
	r.rsp_addr = addr;
	r.rsp_addr_len = addr != NULL ? strlen(addr) : 0;
	r.rsp_padding = padding;
	return r;
}

/*
 * Writes r into a buffer with guard bytes after http_response_size()
 * bytes, checks that write() returned exactly that size and left the
 * guard alone.  Returns the NUL-terminated bytes (caller frees).
 */
static char *
render(const struct http_response *r, size_t *lenp)
{
	size_t	 size = http_response_size(r), len, i;
	char	*buf = malloc(size + 64);

	assert_non_null(buf);
	memset(buf, GUARD, size + 64);
	len = http_response_write(buf, r);
	assert_int_equal(len, size);
	for (i = size; i < size + 64; i++)
		assert_int_equal((unsigned char)buf[i], GUARD);
	buf[len] = '\0';
	*lenp = len;
	return buf;
}

static void
assert_response(const struct http_response *r, const char *want)
{
	size_t	 len;
	char	*got = render(r, &len);

	assert_int_equal(len, strlen(want));
	assert_string_equal(got, want);
	free(got);
}

/* The body: everything after the first empty line. */
static const char *
body_of(const char *rsp)
{
	const char	*p = strstr(rsp, "\r\n\r\n");

	assert_non_null(p);
	return p + 4;
}

/* The value of the Content-Length field. */
static unsigned long
content_length_of(const char *rsp)
{
	const char	*p = strstr(rsp, "\r\nContent-Length: ");

	assert_non_null(p);
	assert_true(p < body_of(rsp));
	return strtoul(p + strlen("\r\nContent-Length: "), NULL, 10);
}

/* ------------------------------------------------------------------ */

static void
test_date_format(void **state)
{
	char	 d[HTTP_DATE_LEN + 1];

	(void)state;
	memset(d, 'x', sizeof(d));
	http_date(d, EPOCH);
	assert_int_equal(strlen(d), HTTP_DATE_LEN);
	assert_string_equal(d, DATE);

	http_date(d, 0);
	assert_string_equal(d, "Thu, 01 Jan 1970 00:00:00 GMT");
	http_date(d, 951782400);		/* leap day */
	assert_string_equal(d, "Tue, 29 Feb 2000 00:00:00 GMT");
	http_date(d, 1700000000);
	assert_string_equal(d, "Tue, 14 Nov 2023 22:13:20 GMT");
	http_date(d, 4102444799);		/* past 2038 */
	assert_string_equal(d, "Thu, 31 Dec 2099 23:59:59 GMT");
	assert_int_equal(strlen(d), HTTP_DATE_LEN);
}

static void
test_200_default(void **state)
{
	struct http_response	 r = response(200, 0, HTTP_CONN_DEFAULT,
	    "192.0.2.1", 0);

	(void)state;
	assert_response(&r,
	    "HTTP/1.1 200 OK\r\n"
	    "Content-Type: text/html\r\n"
	    "Server: hellod\r\n"
	    "Date: " DATE "\r\n"
	    "Content-Length: 50\r\n"
	    "\r\n"
	    "<html><body><h1>Hello 192.0.2.1</h1></body></html>");
	assert_int_equal(http_body_size(&r), 50);
}

static void
test_200_keepalive(void **state)
{
	struct http_response	 r = response(200, 0, HTTP_CONN_KEEPALIVE,
	    "192.0.2.1", 0);

	(void)state;
	assert_response(&r,
	    "HTTP/1.1 200 OK\r\n"
	    "Content-Type: text/html\r\n"
	    "Server: hellod\r\n"
	    "Date: " DATE "\r\n"
	    "Content-Length: 50\r\n"
	    "Connection: keep-alive\r\n"
	    "\r\n"
	    "<html><body><h1>Hello 192.0.2.1</h1></body></html>");
}

static void
test_200_close(void **state)
{
	struct http_response	 r = response(200, 0, HTTP_CONN_CLOSE,
	    "2001:db8::1", 0);

	(void)state;
	assert_response(&r,
	    "HTTP/1.1 200 OK\r\n"
	    "Content-Type: text/html\r\n"
	    "Server: hellod\r\n"
	    "Date: " DATE "\r\n"
	    "Content-Length: 52\r\n"
	    "Connection: close\r\n"
	    "\r\n"
	    "<html><body><h1>Hello 2001:db8::1</h1></body></html>");
	assert_int_equal(http_body_size(&r), 52);
}

/* The address is taken by length, not up to a NUL. */
static void
test_200_addr_by_length(void **state)
{
	struct http_response	 r = response(200, 0, HTTP_CONN_DEFAULT,
	    "10.0.0.1XXXX", 0);

	(void)state;
	r.rsp_addr_len = strlen("10.0.0.1");
	assert_response(&r,
	    "HTTP/1.1 200 OK\r\n"
	    "Content-Type: text/html\r\n"
	    "Server: hellod\r\n"
	    "Date: " DATE "\r\n"
	    "Content-Length: 49\r\n"
	    "\r\n"
	    "<html><body><h1>Hello 10.0.0.1</h1></body></html>");
}

/* HEAD: the same head, the GET body's Content-Length, no body. */
static void
test_head(void **state)
{
	static const enum http_conn conns[] = {
		HTTP_CONN_DEFAULT, HTTP_CONN_KEEPALIVE, HTTP_CONN_CLOSE
	};
	struct http_response	 get, head;
	char			*g, *h;
	size_t			 glen, hlen, i;

	(void)state;
	for (i = 0; i < 3; i++) {
		get = response(200, 0, conns[i], "198.51.100.7", 3);
		head = response(200, 1, conns[i], "198.51.100.7", 3);
		g = render(&get, &glen);
		h = render(&head, &hlen);
		assert_int_equal(hlen, glen - (http_body_size(&get) - 3));
		assert_memory_equal(h, g, hlen);
		assert_string_equal(body_of(h), "");
		assert_int_equal(content_length_of(h), http_body_size(&get));
		assert_int_equal(http_body_size(&head), http_body_size(&get));
		free(g);
		free(h);
	}
	head = response(200, 1, HTTP_CONN_DEFAULT, "192.0.2.1", 0);
	assert_response(&head,
	    "HTTP/1.1 200 OK\r\n"
	    "Content-Type: text/html\r\n"
	    "Server: hellod\r\n"
	    "Date: " DATE "\r\n"
	    "Content-Length: 50\r\n"
	    "\r\n");
}

static void
check_padding(size_t padding)
{
	static const char greeting[] =
	    "<html><body><h1>Hello 192.0.2.1</h1></body></html>";
	struct http_response	 r = response(200, 0, HTTP_CONN_DEFAULT,
	    "192.0.2.1", padding);
	char			*rsp;
	const char		*body;
	size_t			 len, blen;

	/* The padding is announced, and left to the caller to send. */
	rsp = render(&r, &len);
	body = body_of(rsp);
	blen = strlen(body);
	assert_int_equal(blen, sizeof(greeting) - 1);
	assert_memory_equal(body, greeting, sizeof(greeting) - 1);
	assert_int_equal(content_length_of(rsp), blen + padding);
	assert_int_equal(http_body_size(&r), blen + padding);
	free(rsp);
}

static void
test_padding(void **state)
{
	static const size_t paddings[] = {
		0, 1, 9, 49, 50, 950, 999, 1000, 99950, 100000, 1048576,
		64u * 1024 * 1024
	};
	struct http_response	 r = response(200, 0, HTTP_CONN_CLOSE,
	    "192.0.2.1", 10);
	size_t			 i;

	(void)state;
	for (i = 0; i < sizeof(paddings) / sizeof(paddings[0]); i++)
		check_padding(paddings[i]);

	assert_response(&r,
	    "HTTP/1.1 200 OK\r\n"
	    "Content-Type: text/html\r\n"
	    "Server: hellod\r\n"
	    "Date: " DATE "\r\n"
	    "Content-Length: 60\r\n"
	    "Connection: close\r\n"
	    "\r\n"
	    "<html><body><h1>Hello 192.0.2.1</h1></body></html>");

	/* HEAD with padding: length announced, nothing sent. */
	r.rsp_head = 1;
	assert_response(&r,
	    "HTTP/1.1 200 OK\r\n"
	    "Content-Type: text/html\r\n"
	    "Server: hellod\r\n"
	    "Date: " DATE "\r\n"
	    "Content-Length: 60\r\n"
	    "Connection: close\r\n"
	    "\r\n");
}

struct error_case {
	int		 status;
	const char	*head;		/* status line and fields before Server */
	const char	*body;
};

static const struct error_case errors[] = {
	{ 400, "HTTP/1.1 400 Bad Request\r\n"
	    "Content-Type: text/plain\r\n", "400 Bad Request\n" },
	{ 405, "HTTP/1.1 405 Method Not Allowed\r\n"
	    "Allow: GET, HEAD\r\n"
	    "Content-Type: text/plain\r\n", "405 Method Not Allowed\n" },
	{ 414, "HTTP/1.1 414 URI Too Long\r\n"
	    "Content-Type: text/plain\r\n", "414 URI Too Long\n" },
	{ 431, "HTTP/1.1 431 Request Header Fields Too Large\r\n"
	    "Content-Type: text/plain\r\n",
	    "431 Request Header Fields Too Large\n" },
	{ 505, "HTTP/1.1 505 HTTP Version Not Supported\r\n"
	    "Content-Type: text/plain\r\n",
	    "505 HTTP Version Not Supported\n" },
};

static void
expect_error_response(const struct error_case *c, enum http_conn conn,
    const char *connfield)
{
	struct http_response	 r = response(c->status, 0, conn, "192.0.2.1",
	    123);
	char			 want[1024];

	snprintf(want, sizeof(want), "%sServer: hellod\r\nDate: " DATE "\r\n"
	    "Content-Length: %zu\r\n%s\r\n%s", c->head, strlen(c->body),
	    connfield, c->body);
	/* Padding and address only concern the greeting. */
	assert_response(&r, want);
	assert_int_equal(http_body_size(&r), strlen(c->body));
}

static void
test_error_statuses(void **state)
{
	size_t	 i;

	(void)state;
	for (i = 0; i < sizeof(errors) / sizeof(errors[0]); i++)
		expect_error_response(&errors[i], HTTP_CONN_CLOSE,
		    "Connection: close\r\n");
	/* 405 may keep a persistent connection. */
	expect_error_response(&errors[1], HTTP_CONN_DEFAULT, "");
	expect_error_response(&errors[1], HTTP_CONN_KEEPALIVE,
	    "Connection: keep-alive\r\n");
}

/* Spelled out once in full, so the template above cannot hide a typo. */
static void
test_error_exact_bytes(void **state)
{
	struct http_response	 r = response(405, 0, HTTP_CONN_CLOSE, NULL, 0);

	(void)state;
	assert_response(&r,
	    "HTTP/1.1 405 Method Not Allowed\r\n"
	    "Allow: GET, HEAD\r\n"
	    "Content-Type: text/plain\r\n"
	    "Server: hellod\r\n"
	    "Date: " DATE "\r\n"
	    "Content-Length: 23\r\n"
	    "Connection: close\r\n"
	    "\r\n"
	    "405 Method Not Allowed\n");
	r = response(400, 0, HTTP_CONN_CLOSE, NULL, 0);
	assert_response(&r,
	    "HTTP/1.1 400 Bad Request\r\n"
	    "Content-Type: text/plain\r\n"
	    "Server: hellod\r\n"
	    "Date: " DATE "\r\n"
	    "Content-Length: 16\r\n"
	    "Connection: close\r\n"
	    "\r\n"
	    "400 Bad Request\n");
}

/* A status without its own text is answered as 500. */
static void
test_unknown_status(void **state)
{
	struct http_response	 r = response(418, 0, HTTP_CONN_CLOSE, NULL, 0);

	(void)state;
	assert_response(&r,
	    "HTTP/1.1 500 Internal Server Error\r\n"
	    "Content-Type: text/plain\r\n"
	    "Server: hellod\r\n"
	    "Date: " DATE "\r\n"
	    "Content-Length: 26\r\n"
	    "Connection: close\r\n"
	    "\r\n"
	    "500 Internal Server Error\n");
}

/* A given body (the status server's): its type, no-store, its length;
 * HEAD keeps the length and drops the body. */
static void
test_given_body(void **state)
{
	static const int statuses[] = { 200, 404, 503 };
	struct http_response	 r;
	size_t			 i;
	char			 want[512];

	(void)state;
	for (i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
		r = response(statuses[i], 0, HTTP_CONN_CLOSE, NULL, 7);
		r.rsp_body = "ok\n";
		r.rsp_body_len = 3;
		r.rsp_type = "text/plain; charset=utf-8";
		r.rsp_nostore = 1;
		snprintf(want, sizeof(want),
		    "HTTP/1.1 %s\r\n"
		    "Content-Type: text/plain; charset=utf-8\r\n"
		    "Cache-Control: no-store\r\n"
		    "Server: hellod\r\n"
		    "Date: " DATE "\r\n"
		    "Content-Length: 3\r\n"
		    "Connection: close\r\n"
		    "\r\n"
		    "ok\n", statuses[i] == 200 ? "200 OK" : statuses[i] == 404 ?
		    "404 Not Found" : "503 Service Unavailable");
		assert_response(&r, want);
		r.rsp_head = 1;
		want[strlen(want) - 3] = '\0';
		assert_response(&r, want);
	}
	/* The status server's own errors: no-store on the text body. */
	r = response(404, 0, HTTP_CONN_CLOSE, NULL, 0);
	r.rsp_nostore = 1;
	assert_response(&r,
	    "HTTP/1.1 404 Not Found\r\n"
	    "Content-Type: text/plain\r\n"
	    "Cache-Control: no-store\r\n"
	    "Server: hellod\r\n"
	    "Date: " DATE "\r\n"
	    "Content-Length: 14\r\n"
	    "Connection: close\r\n"
	    "\r\n"
	    "404 Not Found\n");
}

/* size() == write() for every combination. */
static void
test_size_matches_write(void **state)
{
	static const int statuses[] = { 200, 400, 404, 405, 408, 414, 431,
	    500, 503, 505, 999 };
	static const char *const addrs[] = { "1.2.3.4", "255.255.255.255",
	    "::1", "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255" };
	static const size_t paddings[] = { 0, 1, 8, 9, 10, 99, 100, 12345 };
	struct http_response	 r;
	size_t			 s, a, p, len;
	int			 head, conn;
	char			*rsp;

	(void)state;
	for (s = 0; s < sizeof(statuses) / sizeof(statuses[0]); s++)
	for (a = 0; a < sizeof(addrs) / sizeof(addrs[0]); a++)
	for (p = 0; p < sizeof(paddings) / sizeof(paddings[0]); p++)
	for (head = 0; head <= 1; head++)
	for (conn = HTTP_CONN_DEFAULT; conn <= HTTP_CONN_CLOSE; conn++) {
		r = response(statuses[s], head, (enum http_conn)conn, addrs[a],
		    paddings[p]);
		rsp = render(&r, &len);		/* asserts size == write */
		assert_int_equal(content_length_of(rsp), http_body_size(&r));
		assert_int_equal(strlen(body_of(rsp)), head ? 0 :
		    http_body_size(&r) - (statuses[s] == 200 ? paddings[p] :
		    0));
		assert_true(len <= http_response_max(paddings[p]));
		assert_memory_equal(rsp, "HTTP/1.1 ", 9);
		assert_non_null(strstr(rsp, "\r\nDate: " DATE "\r\n"));
		free(rsp);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_date_format),
		cmocka_unit_test(test_200_default),
		cmocka_unit_test(test_200_keepalive),
		cmocka_unit_test(test_200_close),
		cmocka_unit_test(test_200_addr_by_length),
		cmocka_unit_test(test_head),
		cmocka_unit_test(test_padding),
		cmocka_unit_test(test_error_statuses),
		cmocka_unit_test(test_error_exact_bytes),
		cmocka_unit_test(test_unknown_status),
		cmocka_unit_test(test_size_matches_write),
		cmocka_unit_test(test_given_body),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
