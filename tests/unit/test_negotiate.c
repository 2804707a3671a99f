/*
 * Unit tests for content negotiation on "/" (src/negotiate.c): the Accept
 * parser with q-values, ties and malformed values, the command-line
 * User-Agent test, and how answer_decide() routes /, /ip and /json with
 * [http] endpoints on and off (src/endpoints.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hellod.h"
#include "http.h"
#include "answer.h"
#include "negotiate.h"

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))

/* negotiate_accept() on an exact-size copy (no NUL after it). */
static enum neg_result
accept_of(const char *v)
{
	size_t			 len = strlen(v);
	char			*copy = malloc(len > 0 ? len : 1);
	enum neg_result		 r;

	assert_non_null(copy);
	memcpy(copy, v, len);
	r = negotiate_accept(copy, len);
	free(copy);
	return r;
}

static void
test_accept_values(void **state)
{
	static const struct {
		const char	*v;
		enum neg_result	 want;
	} cases[] = {
		{ "", NEG_ANY },
		{ "*/*", NEG_ANY },
		{ " , ,*/* ,", NEG_ANY },
		{ "*/*;q=0.5", NEG_ANY },
		{ "*/*;q=0", NEG_NONE },
		{ "text/html", NEG_HTML },
		{ "TEXT/HTML", NEG_HTML },
		{ "application/json", NEG_JSON },
		{ "text/plain", NEG_TEXT },
		{ "text/*", NEG_HTML },
		{ "application/*", NEG_JSON },
		{ "image/png", NEG_NONE },
		{ "image/png, */*;q=0.1", NEG_ANY },
		/* A browser's. */
		{ "text/html,application/xhtml+xml,application/xml;q=0.9,"
		    "image/avif,image/webp,*/*;q=0.8", NEG_HTML },
		/* Case 45. */
		{ "application/json;q=0.9, text/html;q=0.8", NEG_JSON },
		/* q-values choose; ties go html, json, plain. */
		{ "application/json;q=0.9, text/plain", NEG_TEXT },
		{ "text/plain;q=0.5, application/json;q=0.6", NEG_JSON },
		{ "application/json, text/html", NEG_HTML },
		{ "text/plain, application/json", NEG_JSON },
		{ "text/html;q=0, */*", NEG_JSON },
		{ "text/*;q=0.2, text/plain", NEG_TEXT },
		{ "text/plain;q=1.000", NEG_TEXT },
		{ "text/plain;q=0.001, text/html;q=0", NEG_TEXT },
		{ "text/plain ; charset=utf-8 ; q=0.5 ; ext=\"a,b\"",
		    NEG_TEXT },
		{ "application/json;q=0", NEG_NONE },
		/* The most specific range wins, whatever the order. */
		{ "application/json;q=0, */*", NEG_HTML },
		/* Malformed. */
		{ "text", NEG_MALFORMED },
		{ "text/", NEG_MALFORMED },
		{ "/html", NEG_MALFORMED },
		{ "*/html", NEG_MALFORMED },
		{ "text/html;", NEG_MALFORMED },
		{ "text/html;q", NEG_MALFORMED },
		{ "text/html;q=", NEG_MALFORMED },
		{ "text/html;q=2", NEG_MALFORMED },
		{ "text/html;q=1.5", NEG_MALFORMED },
		{ "text/html;q=0.1234", NEG_MALFORMED },
		{ "text/html;q=\"0.5\"", NEG_MALFORMED },
		{ "text/html;q=.5", NEG_MALFORMED },
		{ "text/html x", NEG_MALFORMED },
		{ "text/html;a=\"unterminated", NEG_MALFORMED },
		{ "text/html;a=\"x\\", NEG_MALFORMED },
		{ "text/h(tml", NEG_MALFORMED },
	};
	size_t	 i;

	(void)state;
	for (i = 0; i < NELEM(cases); i++)
		if (accept_of(cases[i].v) != cases[i].want)
			fail_msg("Accept \"%s\": %d, expected %d", cases[i].v,
			    accept_of(cases[i].v), cases[i].want);
	assert_int_equal(negotiate_accept(NULL, 0), NEG_ANY);
}

static void
test_cli_agents(void **state)
{
	static const char *const yes[] = {
		"curl/8.5.0", "Wget/1.21.4", "HTTPie/3.2.2", "xh/0.22.0",
		"fetch libfetch/2.0",
	};
	static const char *const no[] = {
		"", "Mozilla/5.0 (X11; Linux x86_64)", "curl", "CURL/8.5",
		"wget/1.21", "Python-urllib/3.11", "xh", "fetch",
		"python-requests/2.31",
	};
	size_t	 i;

	(void)state;
	for (i = 0; i < NELEM(yes); i++)
		assert_true(negotiate_cli_agent(yes[i], strlen(yes[i])));
	for (i = 0; i < NELEM(no); i++)
		assert_false(negotiate_cli_agent(no[i], strlen(no[i])));
	assert_false(negotiate_cli_agent(NULL, 0));
}

/* The kind answer_decide() gives a request. */
static struct answer
decide(int endpoints, const char *text)
{
	struct hd_config	 cf;
	struct answer_env	 ae;
	struct answer_peer	 ap;
	struct http_request	 req;
	struct answer		 an;
	struct sockaddr_storage	 ss;
	int			 rc;

	config_defaults(&cf);
	cf.cf_endpoints = endpoints;
	assert_int_equal(answer_env_init(&ae, &cf), 0);
	memset(&ss, 0, sizeof(ss));
	ss.ss_family = AF_INET;
	answer_peer_init(&ap, &ss);
	rc = http_parse(text, strlen(text), &ae.ae_limits, &req);
	assert_int_equal(rc, HTTP_DONE);
	answer_decide(&ae, rc, &req, &ap, 0, &an);
	free(ae.ae_rbuf);
	free(ae.ae_wbuf);
	free(ae.ae_spaces);
	return an;
}

static void
test_routes(void **state)
{
	struct answer	 an;

	(void)state;
	/* Off: every path greets, no extra header. */
	an = decide(0, "GET /json HTTP/1.1\r\nHost: a\r\n"
	    "Accept: application/json\r\n\r\n");
	assert_int_equal(an.an_kind, ANSWER_GREETING);
	assert_int_equal(an.an_vary, 0);
	assert_int_equal(an.an_nostore, 0);
	an = decide(0, "GET / HTTP/1.1\r\nHost: a\r\nUser-Agent: curl/8\r\n\r\n");
	assert_int_equal(an.an_kind, ANSWER_GREETING);

	/* On. */
	an = decide(1, "GET /ip?x=1 HTTP/1.1\r\nHost: a\r\n\r\n");
	assert_int_equal(an.an_kind, ANSWER_IP);
	assert_int_equal(an.an_nostore, 1);
	an = decide(1, "HEAD /json HTTP/1.1\r\nHost: a\r\n\r\n");
	assert_int_equal(an.an_kind, ANSWER_JSON);
	assert_int_equal(an.an_head, 1);
	an = decide(1, "GET / HTTP/1.1\r\nHost: a\r\nUser-Agent: curl/8\r\n\r\n");
	assert_int_equal(an.an_kind, ANSWER_IP);
	assert_int_equal(an.an_vary, 1);
	an = decide(1, "GET / HTTP/1.1\r\nHost: a\r\nUser-Agent: curl/8\r\n"
	    "Accept: */*\r\n\r\n");
	assert_int_equal(an.an_kind, ANSWER_IP);
	an = decide(1, "GET / HTTP/1.1\r\nHost: a\r\nUser-Agent: curl/8\r\n"
	    "Accept: text/html\r\n\r\n");
	assert_int_equal(an.an_kind, ANSWER_GREETING);
	an = decide(1, "GET / HTTP/1.1\r\nHost: a\r\nUser-Agent: Mozilla/5.0"
	    "\r\n\r\n");
	assert_int_equal(an.an_kind, ANSWER_GREETING);
	assert_int_equal(an.an_vary, 1);
	an = decide(1, "GET / HTTP/1.1\r\nHost: a\r\nAccept: application/json"
	    "\r\n\r\n");
	assert_int_equal(an.an_kind, ANSWER_JSON);
	an = decide(1, "GET / HTTP/1.1\r\nHost: a\r\nAccept: text/plain"
	    "\r\n\r\n");
	assert_int_equal(an.an_kind, ANSWER_IP);
	an = decide(1, "GET / HTTP/1.1\r\nHost: a\r\nUser-Agent: curl/8\r\n"
	    "Accept: text/html;q=x\r\n\r\n");
	assert_int_equal(an.an_kind, ANSWER_GREETING);
	/* Other paths greet. */
	an = decide(1, "GET /other HTTP/1.1\r\nHost: a\r\nUser-Agent: curl/8"
	    "\r\n\r\n");
	assert_int_equal(an.an_kind, ANSWER_GREETING);
	assert_int_equal(an.an_vary, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_accept_values),
		cmocka_unit_test(test_cli_agents),
		cmocka_unit_test(test_routes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
