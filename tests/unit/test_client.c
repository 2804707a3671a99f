/*
 * Unit tests for the client address behind trusted proxies (src/client.c):
 * client_from_sockaddr(), client_text(), client_trust_parse(),
 * client_trust_match(), client_header_parse(), client_header_field() and
 * client_walk().
 *
 * The numbers in comments refer to /work/shared/HTTP-CASES.md.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "client.h"

#define NLINES_MAX	8

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

static void
trust_ok(const char *text, struct client_trust *ct)
{
	char	 err[256] = "";

	if (client_trust_parse(text, ct, err, sizeof(err)) != 0)
		fail_msg("trust \"%s\": %s", text, err);
}

/* An address from its text, through a sockaddr like a peer's. */
static struct client_addr
addr(const char *text)
{
	struct sockaddr_storage	 ss;
	struct sockaddr_in	*sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)&ss;
	struct client_addr	 ca;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, text, &sin->sin_addr) == 1)
		sin->sin_family = AF_INET;
	else if (inet_pton(AF_INET6, text, &sin6->sin6_addr) == 1)
		sin6->sin6_family = AF_INET6;
	else
		fail_msg("bad test address \"%s\"", text);
	client_from_sockaddr(&ca, &ss);
	return ca;
}

static const char *
text(const struct client_addr *ca, char *buf, size_t len)
{
	size_t	 n;

	n = client_text(ca, buf, len);
	assert_int_equal(n, strlen(buf));
	return buf;
}

/*
 * Walks the field lines (a NULL-terminated list) from the connection's
 * address peer with the trust list, and checks the result's text.  Each
 * value sits in a buffer of its exact size, not NUL-terminated, so that a
 * read past it is caught by valgrind or AddressSanitizer.
 */
static void
expect_walk(enum client_header h, const char *trusted, const char *peer,
    const char *want, ...)
{
	struct client_trust	 ct;
	struct client_field	 f[NLINES_MAX];
	struct client_addr	 ca;
	char			*copy[NLINES_MAX], buf[CLIENT_ADDR_MAX];
	const char		*line;
	unsigned		 n = 0, i;
	va_list			 ap;

	trust_ok(trusted, &ct);
	va_start(ap, want);
	while ((line = va_arg(ap, const char *)) != NULL) {
		assert_true(n < NLINES_MAX);
		f[n].cf_len = strlen(line);
		copy[n] = malloc(f[n].cf_len > 0 ? f[n].cf_len : 1);
		assert_non_null(copy[n]);
		memcpy(copy[n], line, f[n].cf_len);
		f[n].cf_value = copy[n];
		n++;
	}
	va_end(ap);

	ca = addr(peer);
	client_walk(h, &ct, f, n, &ca);
	text(&ca, buf, sizeof(buf));
	if (strcmp(buf, want) != 0) {
		fprintf(stderr, "trusted \"%s\", peer %s, %u line(s):\n",
		    trusted, peer, n);
		for (i = 0; i < n; i++)
			fprintf(stderr, "  \"%.*s\"\n", (int)f[i].cf_len,
			    f[i].cf_value);
		fail_msg("got %s, expected %s", buf, want);
	}
	for (i = 0; i < n; i++)
		free(copy[i]);
}

#define XFF(trusted, peer, want, ...) \
	expect_walk(CLIENT_HEADER_XFF, (trusted), (peer), (want), \
	    __VA_ARGS__, (const char *)NULL)
#define FWD(trusted, peer, want, ...) \
	expect_walk(CLIENT_HEADER_FORWARDED, (trusted), (peer), (want), \
	    __VA_ARGS__, (const char *)NULL)
#define XRIP(trusted, peer, want, ...) \
	expect_walk(CLIENT_HEADER_XREALIP, (trusted), (peer), (want), \
	    __VA_ARGS__, (const char *)NULL)

/*
 * The addresses of the examples: the client a, then the proxies b and c
 * (c nearest), then the connection's peer p, which is always trusted.
 */
#define A	"198.51.100.7"
#define B	"10.1.1.1"
#define C	"10.2.2.2"
#define P	"10.9.9.9"

/* ------------------------------------------------------------------ */
/* Addresses                                                           */
/* ------------------------------------------------------------------ */

static void
test_from_sockaddr(void **state)
{
	struct sockaddr_storage	 ss;
	struct sockaddr_in	*sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)&ss;
	struct sockaddr_un	*sun = (struct sockaddr_un *)&ss;
	struct client_addr	 ca;
	char			 buf[CLIENT_ADDR_MAX];
	static const uint8_t	 v4[4] = { 192, 0, 2, 1 };

	(void)state;
	memset(&ss, 0, sizeof(ss));
	sin->sin_family = AF_INET;
	memcpy(&sin->sin_addr, v4, 4);
	sin->sin_port = htons(8080);
	client_from_sockaddr(&ca, &ss);
	assert_int_equal(ca.ca_family, AF_INET);
	assert_memory_equal(ca.ca_addr, v4, 4);
	assert_string_equal(text(&ca, buf, sizeof(buf)), "192.0.2.1");

	memset(&ss, 0, sizeof(ss));
	sin6->sin6_family = AF_INET6;
	assert_int_equal(inet_pton(AF_INET6, "2001:db8::1",
	    &sin6->sin6_addr), 1);
	client_from_sockaddr(&ca, &ss);
	assert_int_equal(ca.ca_family, AF_INET6);
	assert_string_equal(text(&ca, buf, sizeof(buf)), "2001:db8::1");

	/* 29: an IPv4-mapped peer is an IPv4 address. */
	assert_int_equal(inet_pton(AF_INET6, "::ffff:192.0.2.1",
	    &sin6->sin6_addr), 1);
	client_from_sockaddr(&ca, &ss);
	assert_int_equal(ca.ca_family, AF_INET);
	assert_memory_equal(ca.ca_addr, v4, 4);
	assert_string_equal(text(&ca, buf, sizeof(buf)), "192.0.2.1");

	/* Not mapped: the IPv4-compatible form stays IPv6. */
	assert_int_equal(inet_pton(AF_INET6, "::192.0.2.1",
	    &sin6->sin6_addr), 1);
	client_from_sockaddr(&ca, &ss);
	assert_int_equal(ca.ca_family, AF_INET6);

	memset(&ss, 0, sizeof(ss));
	sun->sun_family = AF_UNIX;
	client_from_sockaddr(&ca, &ss);
	assert_int_equal(ca.ca_family, 0);
	assert_string_equal(text(&ca, buf, sizeof(buf)), "unknown");
}

static void
test_text(void **state)
{
	struct client_addr	 ca;
	char			 buf[CLIENT_ADDR_MAX], small[4];

	(void)state;
	ca = addr("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255");
	assert_int_equal(client_text(&ca, buf, sizeof(buf)), 39);
	assert_string_equal(buf, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");

	/* A mapped address built by hand still prints as IPv4. */
	memset(&ca, 0, sizeof(ca));
	ca.ca_family = AF_INET6;
	ca.ca_addr[10] = ca.ca_addr[11] = 0xff;
	ca.ca_addr[12] = 127;
	ca.ca_addr[15] = 1;
	assert_string_equal(text(&ca, buf, sizeof(buf)), "127.0.0.1");

	/* Too small a buffer: truncated, never overrun. */
	ca = addr("192.0.2.1");
	assert_int_equal(client_text(&ca, small, sizeof(small)), 3);
	assert_string_equal(small, "unk");
	assert_int_equal(client_text(&ca, small, 0), 0);

	memset(&ca, 0, sizeof(ca));
	ca.ca_family = AF_UNIX;
	assert_string_equal(text(&ca, buf, sizeof(buf)), "unknown");
}

/* ------------------------------------------------------------------ */
/* Trust lists                                                         */
/* ------------------------------------------------------------------ */

static void
expect_net(const struct client_net *cn, int family, const char *a,
    unsigned bits)
{
	uint8_t	 bytes[16] = { 0 };

	assert_int_equal(cn->cn_family, family);
	assert_int_equal(inet_pton(family, a, bytes), 1);
	assert_memory_equal(cn->cn_addr, bytes, 16);
	assert_int_equal(cn->cn_bits, bits);
}

static void
test_trust_parse_good(void **state)
{
	struct client_trust	 ct;
	char			 many[64 * 16 + 1], *p;
	unsigned		 i;

	(void)state;
	trust_ok("", &ct);
	assert_int_equal(ct.ct_n, 0);
	trust_ok(" \t ", &ct);
	assert_int_equal(ct.ct_n, 0);
	assert_int_equal(client_trust_parse(NULL, &ct, NULL, 0), 0);
	assert_int_equal(ct.ct_n, 0);

	trust_ok("10.0.0.0/8 192.168.0.0/16\t127.0.0.1, ::1 2001:db8::/32 "
	    "0.0.0.0/0 ::/0 ::ffff:10.0.0.0/104 ::ffff:192.0.2.9 "
	    "172.16.0.0/12,fe80::/10", &ct);
	assert_int_equal(ct.ct_n, 11);
	expect_net(&ct.ct_nets[0], AF_INET, "10.0.0.0", 8);
	expect_net(&ct.ct_nets[1], AF_INET, "192.168.0.0", 16);
	expect_net(&ct.ct_nets[2], AF_INET, "127.0.0.1", 32);
	expect_net(&ct.ct_nets[3], AF_INET6, "::1", 128);
	expect_net(&ct.ct_nets[4], AF_INET6, "2001:db8::", 32);
	expect_net(&ct.ct_nets[5], AF_INET, "0.0.0.0", 0);
	expect_net(&ct.ct_nets[6], AF_INET6, "::", 0);
	/* IPv4-mapped networks are IPv4 networks. */
	expect_net(&ct.ct_nets[7], AF_INET, "10.0.0.0", 8);
	expect_net(&ct.ct_nets[8], AF_INET, "192.0.2.9", 32);
	expect_net(&ct.ct_nets[9], AF_INET, "172.16.0.0", 12);
	expect_net(&ct.ct_nets[10], AF_INET6, "fe80::", 10);

	/* A mapped network shorter than /96 is not all IPv4: IPv6. */
	trust_ok("::fffe:0:0/95", &ct);
	expect_net(&ct.ct_nets[0], AF_INET6, "::fffe:0:0", 95);
	trust_ok("::ffff:0.0.0.0/96", &ct);
	expect_net(&ct.ct_nets[0], AF_INET, "0.0.0.0", 0);

	/* Exactly CLIENT_MAX_TRUSTED. */
	p = many;
	for (i = 0; i < CLIENT_MAX_TRUSTED; i++)
		p += sprintf(p, "10.0.%u.0/24 ", i);
	trust_ok(many, &ct);
	assert_int_equal(ct.ct_n, CLIENT_MAX_TRUSTED);
	expect_net(&ct.ct_nets[63], AF_INET, "10.0.63.0", 24);
}

/* The list must fail, name the element, and leave an empty list. */
static void
expect_trust_error(const char *list, const char *named)
{
	struct client_trust	 ct;
	char			 err[512] = "";
	char			 quoted[256];

	memset(&ct, 0xa5, sizeof(ct));
	if (client_trust_parse(list, &ct, err, sizeof(err)) != -1)
		fail_msg("trust \"%s\" accepted", list);
	assert_int_equal(ct.ct_n, 0);
	snprintf(quoted, sizeof(quoted), "'%s'", named);
	if (strstr(err, quoted) == NULL)
		fail_msg("trust \"%s\": error \"%s\" does not name %s", list,
		    err, quoted);
}

static void
test_trust_parse_bad(void **state)
{
	struct client_trust	 ct;
	char			 many[65 * 16 + 1], err[512], *p;
	unsigned		 i;

	(void)state;
	expect_trust_error("10.0.0.0/33", "10.0.0.0/33");
	expect_trust_error("::/129", "::/129");
	expect_trust_error("10.0.0.0/8 ::1/129 127.0.0.1", "::1/129");
	expect_trust_error("10.0.0.0/", "10.0.0.0/");
	expect_trust_error("10.0.0.0/-8", "10.0.0.0/-8");
	expect_trust_error("10.0.0.0/+8", "10.0.0.0/+8");
	expect_trust_error("10.0.0.0/08", "10.0.0.0/08");
	expect_trust_error("10.0.0.0/0008", "10.0.0.0/0008");
	expect_trust_error("10.0.0.0/1000", "10.0.0.0/1000");
	expect_trust_error("10.0.0.0/8x", "10.0.0.0/8x");
	expect_trust_error("10.0.0.0/8/8", "10.0.0.0/8/8");
	expect_trust_error("10.0.0.0x/8", "10.0.0.0x/8");
	expect_trust_error("10.0.0/8", "10.0.0/8");
	expect_trust_error("10.0.0.0.0", "10.0.0.0.0");
	expect_trust_error("010.0.0.0/8", "010.0.0.0/8");
	expect_trust_error("256.0.0.0/8", "256.0.0.0/8");
	expect_trust_error("/8", "/8");
	expect_trust_error("localhost", "localhost");
	expect_trust_error("[::1]", "[::1]");
	expect_trust_error("[::1]/128", "[::1]/128");
	expect_trust_error("fe80::1%eth0", "fe80::1%eth0");
	expect_trust_error("2001:db8::/32;", "2001:db8::/32;");
	expect_trust_error("10.0.0.0/8;192.168.0.0/16",
	    "10.0.0.0/8;192.168.0.0/16");
	expect_trust_error("2001:db8:::1", "2001:db8:::1");
	expect_trust_error("12345678901234567890123456789012345678901234567",
	    "12345678901234567890123456789012345678901234567");
	/* Bits past the prefix: refused, with the network meant. */
	expect_trust_error("10.0.0.1/8", "10.0.0.1/8");
	expect_trust_error("2001:db8::1/32", "2001:db8::1/32");
	assert_int_equal(client_trust_parse("10.1.2.3/8", &ct, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "10.0.0.0/8"));
	assert_int_equal(client_trust_parse("10.0.0.128/25 10.0.0.64/25", &ct,
	    err, sizeof(err)), -1);
	assert_non_null(strstr(err, "'10.0.0.64/25'"));

	/* One more than CLIENT_MAX_TRUSTED: the extra one is named. */
	p = many;
	for (i = 0; i <= CLIENT_MAX_TRUSTED; i++)
		p += sprintf(p, "10.0.%u.0/24 ", i);
	expect_trust_error(many, "10.0.64.0/24");

	/* A short error buffer truncates; a zero one is not written. */
	assert_int_equal(client_trust_parse("bad", &ct, err, 5), -1);
	assert_string_equal(err, "inva");
	assert_int_equal(client_trust_parse("bad", &ct, NULL, 0), -1);
}

static int
matches(const char *list, const char *a)
{
	struct client_trust	 ct;
	struct client_addr	 ca = addr(a);

	trust_ok(list, &ct);
	return client_trust_match(&ct, &ca);
}

static void
test_trust_match(void **state)
{
	struct client_trust	 ct;
	struct client_addr	 ca;

	(void)state;
	assert_true(matches("10.0.0.0/8", "10.0.0.0"));
	assert_true(matches("10.0.0.0/8", "10.255.255.255"));
	assert_false(matches("10.0.0.0/8", "11.0.0.0"));
	assert_false(matches("10.0.0.0/8", "9.255.255.255"));
	assert_true(matches("10.0.0.128/25", "10.0.0.200"));
	assert_false(matches("10.0.0.128/25", "10.0.0.127"));
	assert_true(matches("10.0.0.0/31", "10.0.0.1"));
	assert_false(matches("10.0.0.0/31", "10.0.0.2"));
	assert_true(matches("192.0.2.1", "192.0.2.1"));
	assert_false(matches("192.0.2.1", "192.0.2.2"));
	assert_true(matches("0.0.0.0/0", "255.255.255.255"));
	assert_false(matches("0.0.0.0/0", "::1"));
	assert_true(matches("2001:db8::/33", "2001:db8:7fff::1"));
	assert_false(matches("2001:db8::/33", "2001:db8:8000::1"));
	assert_true(matches("::1", "::1"));
	assert_false(matches("::1", "::2"));
	assert_false(matches("::1", "127.0.0.1"));
	assert_false(matches("2001:db8::/32", "32.1.13.184"));
	assert_false(matches("", "10.0.0.1"));
	assert_true(matches("192.168.0.0/16 10.0.0.0/8", "10.0.0.1"));

	/* 29: an IPv4-mapped peer matches an IPv4 network, and an IPv4
	 * address an IPv4-mapped network. */
	assert_true(matches("10.0.0.0/8", "::ffff:10.1.2.3"));
	assert_false(matches("10.0.0.0/8", "::ffff:11.1.2.3"));
	assert_true(matches("::ffff:10.0.0.0/104", "10.1.2.3"));
	assert_true(matches("::ffff:10.0.0.0/104", "::ffff:10.1.2.3"));
	assert_false(matches("::ffff:10.0.0.0/104", "11.1.2.3"));
	assert_false(matches("2001:db8::/32 fe80::/10", "192.0.2.1"));
	/* Not the IPv4-compatible block. */
	assert_false(matches("10.0.0.0/8", "::10.1.2.3"));

	/* A mapped address built by hand matches as IPv4. */
	trust_ok("10.0.0.0/8", &ct);
	memset(&ca, 0, sizeof(ca));
	ca.ca_family = AF_INET6;
	ca.ca_addr[10] = ca.ca_addr[11] = 0xff;
	ca.ca_addr[12] = 10;
	assert_true(client_trust_match(&ct, &ca));

	/* An unknown address (a UNIX socket) is never trusted. */
	trust_ok("0.0.0.0/0 ::/0", &ct);
	memset(&ca, 0, sizeof(ca));
	assert_false(client_trust_match(&ct, &ca));
}

/*
 * As in nginx's realip: an IPv6 network trusts an IPv4 peer only when it
 * lies inside ::ffff:0:0/96; one that merely contains that block, ::/0
 * for one, trusts IPv6 peers alone.
 */
static void
test_trust_match_families(void **state)
{
	(void)state;
	assert_true(matches("::ffff:10.0.0.0/104", "10.1.2.3"));
	assert_true(matches("::ffff:10.0.0.0/104", "::ffff:10.1.2.3"));
	assert_true(matches("::ffff:0:0/96", "10.1.2.3"));
	assert_true(matches("::ffff:0:0/96", "::ffff:192.0.2.1"));
	assert_false(matches("::ffff:0:0/96", "::1"));
	assert_true(matches("::ffff:192.0.2.1", "192.0.2.1"));
	assert_false(matches("::ffff:192.0.2.1", "192.0.2.2"));

	assert_false(matches("::/0", "10.1.2.3"));
	assert_false(matches("::/0", "::ffff:10.1.2.3"));
	assert_false(matches("::/0", "127.0.0.1"));
	assert_true(matches("::/0", "::1"));
	assert_true(matches("::/0", "2001:db8::1"));
	assert_false(matches("::/64", "10.1.2.3"));
	assert_false(matches("::/80", "10.1.2.3"));
	assert_false(matches("::fffe:0:0/95", "192.0.2.1"));
	assert_true(matches("::fffe:0:0/95", "::fffe:0:1"));
	assert_true(matches("::/0 10.0.0.0/8", "10.1.2.3"));
	assert_true(matches("0.0.0.0/0 ::/0", "10.1.2.3"));

	/* Through the header walk: the IPv4 peer is not trusted by ::/0,
	 * so its header is ignored; an IPv6 peer is. */
	XFF("::/0", P, P, A);
	XFF("::/0", "::ffff:" P, P, A);
	XFF("::/0", "2001:db8::1", A, A);
	FWD("::/0", P, P, "for=" A);
	XRIP("::/0", P, P, A);
}

/* ------------------------------------------------------------------ */
/* Header names                                                        */
/* ------------------------------------------------------------------ */

static void
test_header_names(void **state)
{
	enum client_header	 h;

	(void)state;
	assert_int_equal(client_header_parse("none", &h), 0);
	assert_int_equal(h, CLIENT_HEADER_NONE);
	assert_int_equal(client_header_parse("x-forwarded-for", &h), 0);
	assert_int_equal(h, CLIENT_HEADER_XFF);
	assert_int_equal(client_header_parse("X-Forwarded-For", &h), 0);
	assert_int_equal(h, CLIENT_HEADER_XFF);
	assert_int_equal(client_header_parse("X-REAL-IP", &h), 0);
	assert_int_equal(h, CLIENT_HEADER_XREALIP);
	assert_int_equal(client_header_parse("Forwarded", &h), 0);
	assert_int_equal(h, CLIENT_HEADER_FORWARDED);
	assert_int_equal(client_header_parse("NONE", &h), 0);
	assert_int_equal(h, CLIENT_HEADER_NONE);

	h = CLIENT_HEADER_XFF;
	assert_int_equal(client_header_parse("", &h), -1);
	assert_int_equal(client_header_parse("xff", &h), -1);
	assert_int_equal(client_header_parse("x-forwarded-for ", &h), -1);
	assert_int_equal(client_header_parse("x-forwarded", &h), -1);
	assert_int_equal(client_header_parse("forwarded-for", &h), -1);
	assert_int_equal(client_header_parse("proxy", &h), -1);
	assert_int_equal(client_header_parse(NULL, &h), -1);
	assert_int_equal(h, CLIENT_HEADER_XFF);

	assert_null(client_header_field(CLIENT_HEADER_NONE));
	assert_string_equal(client_header_field(CLIENT_HEADER_XFF),
	    "x-forwarded-for");
	assert_string_equal(client_header_field(CLIENT_HEADER_XREALIP),
	    "x-real-ip");
	assert_string_equal(client_header_field(CLIENT_HEADER_FORWARDED),
	    "forwarded");
	assert_null(client_header_field((enum client_header)42));
}

/* ------------------------------------------------------------------ */
/* X-Forwarded-For (34, 35)                                            */
/* ------------------------------------------------------------------ */

static void
test_xff_recursive(void **state)
{
	(void)state;
	/* 34: c and b trusted → a; only c trusted → b. */
	XFF("10.0.0.0/8", P, A, A ", " B ", " C);
	XFF(P " " C, P, B, A ", " B ", " C);
	XFF(P " " C " " B, P, A, A ", " B ", " C);
	/* Nothing trusted past the peer: the nearest element. */
	XFF(P, P, C, A ", " B ", " C);
	/* All trusted: the leftmost is the client. */
	XFF("0.0.0.0/0", P, A, A ", " B ", " C);
	XFF("10.0.0.0/8", P, B, B ", " C);
	XFF("10.0.0.0/8", P, C, C);
	/* The walk stops at the first untrusted one from the right, even
	 * with trusted ones left of it. */
	XFF("10.0.0.0/8", P, "203.0.113.1",
	    "10.7.7.7, " A ", 203.0.113.1, " C);
	/* No separator spaces, tabs, or many. */
	XFF("10.0.0.0/8", P, A, A "," B "," C);
	XFF("10.0.0.0/8", P, A, A " \t,\t  " B ",  " C);
	/* No field line at all: the peer. */
	XFF("10.0.0.0/8", P, P, NULL);
}

static void
test_xff_field_lines(void **state)
{
	(void)state;
	/* 34: several field lines are one list, in order. */
	XFF("10.0.0.0/8", P, A, A, B, C);
	XFF("10.0.0.0/8", P, A, A ", " B, C);
	XFF("10.0.0.0/8", P, A, A, B ", " C);
	XFF(P " " C, P, B, A, B ", " C);
	XFF(P " " C, P, B, A ", " B, C);
	XFF(P " " C, P, "203.0.113.5", "203.0.113.5", C);
	XFF(P " " C, P, A, "203.0.113.5", A ", " C);
	/* The order decides: the last line is the nearest proxy's. */
	XFF(P, P, "203.0.113.5", "192.0.2.9", "203.0.113.5");
}

static void
test_xff_stops(void **state)
{
	static const char *const bad[] = {
		"unknown", "_hidden", "_SEVKISEK", "garbage", "example.com",
		"1.2.3", "1.2.3.4.5", "1.2.3.256", "01.2.3.4", "1.2.3.4x",
		"1.2.3.4 5.6.7.8", "1.2.3.4;", "\"1.2.3.4\"", "for=1.2.3.4",
		"2001:db8::1::2", "2001:db8::g", "fe80::1%eth0", "[1.2.3.4]",
		"[2001:db8::1", "2001:db8::1]", "[]", "[2001:db8::1]x",
		"[2001:db8::1]:", "1.2.3.4:", ":80", "1.2.3.4:80:80",
		"1.2.3.4:65536", "1.2.3.4:99999", "1.2.3.4:000080",
		"1.2.3.4:-1", "1.2.3.4:+80", "1.2.3.4:8a", "1.2.3.4: 80",
		"[2001:db8::1]:65536", "[2001:db8::1]:http",
		"0x7f.0.0.1", "1.2.3.4/32", "::ffff:1.2.3.4:80",
	};
	char		 line[128];
	size_t		 i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		/* 34: not an address: the walk stops at the last address
		 * reached... */
		snprintf(line, sizeof(line), "%s, %s, %s", A, bad[i], C);
		XFF("10.0.0.0/8", P, C, line);
		/* ...the peer when it is the nearest element... */
		snprintf(line, sizeof(line), "%s, %s", A, bad[i]);
		XFF("10.0.0.0/8", P, P, line);
		/* ...and not past an untrusted address. */
		snprintf(line, sizeof(line), "%s, %s", bad[i], A);
		XFF("10.0.0.0/8", P, A, line);
	}

	/* 34: an empty element stops the walk too. */
	XFF("10.0.0.0/8", P, C, A ", , " C);
	XFF("10.0.0.0/8", P, C, A ",," C);
	XFF("10.0.0.0/8", P, P, A ", " C ",");
	XFF("10.0.0.0/8", P, P, A ", " C ", ");
	XFF("10.0.0.0/8", P, C, ", " C);
	XFF("10.0.0.0/8", P, P, "");
	XFF("10.0.0.0/8", P, P, " \t ");
	/* An empty field line is an empty element. */
	XFF("10.0.0.0/8", P, C, A, "", C);
	XFF("10.0.0.0/8", P, P, A ", " C, "");
	/* After a stop, the untrusted address left of it is not reached. */
	XFF("10.0.0.0/8", P, B, A ", unknown, " B ", " C);
	XFF("10.0.0.0/8", P, B, "unknown, " B ", " C);
}

static void
test_xff_forms(void **state)
{
	(void)state;
	/* 34: a:port and [v6]:port. */
	XFF("10.0.0.0/8", P, A, A ":8080, " B ":1, " C ":65535");
	XFF("10.0.0.0/8", P, A, A ":0, " C ":00080");
	XFF("10.0.0.0/8 2001:db8::/32", P, "2001:db8:cafe::17",
	    "[2001:db8:cafe::17]:4711, [2001:db8::2]:80, " C);
	XFF("10.0.0.0/8 2001:db8::/32", P, "2001:db8:cafe::17",
	    "[2001:db8:cafe::17], 2001:db8::2");
	XFF("10.0.0.0/8", P, "2001:db8:cafe::17", "2001:db8:cafe::17, " C);
	XFF("10.0.0.0/8", P, "2001:db8::ab", "2001:DB8::AB");
	XFF("10.0.0.0/8", P, "::", "::");
	/* An IPv6 peer, an IPv4 client. */
	XFF("2001:db8::/32", "2001:db8::99", A, A ", 2001:db8::1");
	/* IPv4-mapped elements are IPv4, trusted by IPv4 networks. */
	XFF("10.0.0.0/8", P, A, A ", ::ffff:10.1.1.1, [::ffff:" C "]:80");
	XFF(P, P, "192.0.2.1", "[::ffff:192.0.2.1]:443");
	XFF(P, P, "192.0.2.1", "::FFFF:C000:0201");
}

static void
test_untrusted_peer(void **state)
{
	(void)state;
	/* 35: a client that sends its own header directly is not
	 * believed, whatever the header says. */
	XFF("10.0.0.0/8", A, A, "10.1.1.1");
	XFF("10.0.0.0/8", A, A, "192.0.2.66, " C);
	XFF("10.0.0.0/8", A, A, "192.0.2.66", C);
	XFF("10.0.0.0/8 2001:db8::/32", "2001:db9::1", "2001:db9::1",
	    "192.0.2.66");
	FWD("10.0.0.0/8", A, A, "for=192.0.2.66");
	FWD("10.0.0.0/8", A, A, "for=192.0.2.66, for=" C);
	XRIP("10.0.0.0/8", A, A, "192.0.2.66");
	XRIP("10.0.0.0/8", A, A, C);
	/* An empty trust list believes nobody. */
	XFF("", P, P, "192.0.2.66");
	XRIP("", P, P, "192.0.2.66");
	FWD("", P, P, "for=192.0.2.66");
	/* No header configured: nothing is read. */
	expect_walk(CLIENT_HEADER_NONE, "0.0.0.0/0", P, P, "192.0.2.66",
	    (const char *)NULL);
}

static void
test_unknown_peer(void **state)
{
	struct client_trust	 ct;
	struct client_field	 f = { "192.0.2.66", 10 };
	struct client_addr	 ca;
	enum client_header	 h;

	(void)state;
	trust_ok("0.0.0.0/0 ::/0", &ct);
	for (h = CLIENT_HEADER_NONE; h <= CLIENT_HEADER_FORWARDED; h++) {
		memset(&ca, 0, sizeof(ca));
		client_walk(h, &ct, &f, 1, &ca);
		assert_int_equal(ca.ca_family, 0);
	}
}

static void
test_mapped_peer(void **state)
{
	(void)state;
	/* 29, 35: an IPv4-mapped peer matched against an IPv4 network. */
	XFF("10.0.0.0/8", "::ffff:" P, A, A);
	XFF("10.0.0.0/8", "::ffff:" A, A, "192.0.2.66");
	XFF("::ffff:10.0.0.0/104", P, A, A ", " C);
	FWD("10.0.0.0/8", "::ffff:" P, A, "for=" A);
	XRIP("10.0.0.0/8", "::ffff:" P, A, A);
	/* Unchanged, it still prints as IPv4. */
	XFF("10.0.0.0/8", "::ffff:" P, P, "unknown");
}

/* ------------------------------------------------------------------ */
/* X-Real-IP (37)                                                      */
/* ------------------------------------------------------------------ */

static void
test_xrealip(void **state)
{
	(void)state;
	XRIP("10.0.0.0/8", P, A, A);
	XRIP("10.0.0.0/8", P, A, A ":8080");
	XRIP("10.0.0.0/8", P, "2001:db8::1", "2001:db8::1");
	XRIP("10.0.0.0/8", P, "2001:db8::1", "[2001:db8::1]");
	XRIP("10.0.0.0/8", P, "2001:db8::1", "[2001:db8::1]:443");
	XRIP("10.0.0.0/8", P, "192.0.2.1", "::ffff:192.0.2.1");
	XRIP("10.0.0.0/8", P, A, " " A "\t");
	/* No recursion: a trusted value is the client all the same. */
	XRIP("10.0.0.0/8", P, C, C);
	/* 37: anything else is ignored. */
	XRIP("10.0.0.0/8", P, P, A ", " C);
	XRIP("10.0.0.0/8", P, P, A ",");
	XRIP("10.0.0.0/8", P, P, A, C);
	XRIP("10.0.0.0/8", P, P, A, A);
	XRIP("10.0.0.0/8", P, P, "");
	XRIP("10.0.0.0/8", P, P, "unknown");
	XRIP("10.0.0.0/8", P, P, "_hidden");
	XRIP("10.0.0.0/8", P, P, A " " C);
	XRIP("10.0.0.0/8", P, P, "for=" A);
	XRIP("10.0.0.0/8", P, P, A ":65536");
	XRIP("10.0.0.0/8", P, P, "<script>");
	XRIP("10.0.0.0/8", P, P, NULL);
}

/* ------------------------------------------------------------------ */
/* Forwarded (36)                                                      */
/* ------------------------------------------------------------------ */

static void
test_forwarded_forms(void **state)
{
	(void)state;
	/* 36: the examples of RFC 7239. */
	FWD(P, P, "192.0.2.60", "for=192.0.2.60;proto=http;by=203.0.113.43");
	FWD(P, P, "192.0.2.60", "for=\"192.0.2.60:80\"");
	FWD(P, P, "2001:db8:cafe::17", "for=\"[2001:db8:cafe::17]:4711\"");
	FWD(P, P, "2001:db8:cafe::17", "for=\"[2001:db8:cafe::17]\"");
	FWD(P, P, "198.51.100.17", "for=192.0.2.43, for=198.51.100.17");
	FWD(P, P, "192.0.2.43", "For=\"192.0.2.43\"");
	FWD(P, P, "192.0.2.60", "proto=http;by=203.0.113.43;for=192.0.2.60");
	FWD(P, P, "192.0.2.60",
	    "for=192.0.2.60;proto=http;by=203.0.113.43;host=example.com");
	/* 36: parameter names in any case. */
	FWD(P, P, A, "For=" A);
	FWD(P, P, A, "FOR=" A);
	FWD(P, P, A, "fOr=" A ";PROTO=https;By=\"[2001:db8::1]\"");
	/* Extension parameters, quoted values of other parameters. */
	FWD(P, P, A, "secret=\"x;y=z\";for=" A ";ext=1");
	/* Empty pairs and OWS around ";" are tolerated. */
	FWD(P, P, A, ";for=" A ";;proto=http;");
	FWD(P, P, A, "for=" A " ; proto=http");
	FWD(P, P, A, "  for=" A "  ");
	/* A mapped address is IPv4. */
	FWD(P, P, "192.0.2.1", "for=\"[::ffff:192.0.2.1]:1\"");
}

static void
test_forwarded_walk(void **state)
{
	(void)state;
	/* 36: the same walk as 34. */
	FWD("10.0.0.0/8", P, A, "for=" A ", for=" B ", for=" C);
	FWD(P " " C, P, B, "for=" A ", for=" B ", for=" C);
	FWD(P, P, C, "for=" A ", for=" B ", for=" C);
	FWD("10.0.0.0/8", P, A,
	    "for=" A ";proto=https, for=\"" B ":8080\";by=" C ", for=" C);
	/* Several field lines, in order. */
	FWD("10.0.0.0/8", P, A, "for=" A, "for=" B, "for=" C);
	FWD("10.0.0.0/8", P, A, "for=" A ", for=" B, "for=" C);
	FWD(P " " C, P, B, "for=" A, "for=" B ", for=" C);
	FWD(P, P, "203.0.113.5", "for=192.0.2.9", "for=203.0.113.5");
	/* Mixed families. */
	FWD("10.0.0.0/8 2001:db8::/32", P, A,
	    "for=" A ", for=\"[2001:db8::2]:99\", for=" C);
	FWD("10.0.0.0/8", P, "2001:db8:cafe::17",
	    "for=\"[2001:db8:cafe::17]:4711\", for=" C);
}

static void
test_forwarded_quoting(void **state)
{
	(void)state;
	/* 36: quoted strings with escapes. */
	FWD(P, P, "192.0.2.60", "for=\"192.0.2.\\60\"");
	FWD(P, P, "192.0.2.60", "for=\"\\1\\9\\2.0.2.60:\\8\\0\"");
	FWD(P, P, "2001:db8::1", "for=\"\\[2001:db8::1\\]:80\"");
	FWD(P, P, A, "ext=\"a\\\"b\";for=" A);
	FWD(P, P, A, "ext=\"a\\\\\";for=" A);
	/* Commas in quoted strings do not split elements: split there,
	 * these would give C, or stop at a malformed element. */
	FWD("10.0.0.0/8", P, A, "for=" A ";ext=\"x, for=" C "\"");
	FWD("10.0.0.0/8", P, A, "for=" A ";ext=\",\"");
	FWD("10.0.0.0/8", P, A, "for=" A ";ext=\"\\\", for=" C "\"");
	FWD("10.0.0.0/8", P, A, "ext=\"a,b\";for=" A ", for=" C);
	/* Not an escape outside quotes: a malformed element. */
	FWD("10.0.0.0/8", P, C, "for=" A "\\, for=" C);
}

static void
test_forwarded_stops(void **state)
{
	static const char *const bad[] = {
		/* RFC 7239 6: no address. */
		"for=unknown", "for=\"unknown\"", "for=_hidden",
		"for=\"_SEVKISEK\"", "for=\"_hidden:_port\"",
		"for=\"unknown:80\"", "for=\"192.0.2.60:_port\"",
		/* No for=. */
		"", " ", ";", "proto=http", "by=" C, "ext=1;;",
		/* An unquoted IPv6, ':' not being a tchar; an unquoted port;
		 * brackets not quoted. */
		"for=2001:db8::1", "for=192.0.2.60:80", "for=[2001:db8::1]",
		/* IPv6 without brackets, a port out of range. */
		"for=\"2001:db8::1\"", "for=\"192.0.2.60:65536\"",
		"for=\"[2001:db8::1]:123456\"", "for=\"192.0.2.60:\"",
		/* Malformed. */
		"for", "for=", "for=\"\"", "=192.0.2.60", "for =192.0.2.60",
		"for= 192.0.2.60", "for=192.0.2.60 proto=http",
		"for=192.0.2.60;proto", "for=192.0.2.60;proto=",
		"for=\"192.0.2.60\"x", "for=192.0.2.60\"\"",
		"for=\"192.0.2.60\"\"\"", "for=1\"92.0.2.6\"0",
		"for=192.0.2.60;for=192.0.2.61", "for=192.0.2.60;FOR=192.0.2.60",
		"f\"or\"=192.0.2.60", "for:192.0.2.60", "for=192.0.2.60/32",
		"192.0.2.60", "for=\"192.0.2.60\x01\"",
		"for=\"1.2.3.4\x7f\"", "for=\"\\\x01\"",
		"for=\"0123456789012345678901234567890123456789"
		    "012345678901234567890123456789\"",
		"for=01234567890123456789012345678901234567890123456789"
		    "012345678901234567890123",
	};
	static const char *const open[] = {
		"for=\"192.0.2.60", "for=\"192.0.2.60\\\"",
		"for=\"192.0.2.60\"\"", "ext=\"a\\\",b;for=192.0.2.60",
	};
	char		 line[256];
	size_t		 i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		/* 36: a malformed element stops the walk like 34. */
		snprintf(line, sizeof(line), "for=%s, %s, for=%s", A, bad[i],
		    C);
		FWD("10.0.0.0/8", P, C, line);
		snprintf(line, sizeof(line), "for=%s, %s", A, bad[i]);
		FWD("10.0.0.0/8", P, P, line);
		FWD("10.0.0.0/8", P, C, "for=" A, bad[i], "for=" C);
		snprintf(line, sizeof(line), "%s, for=%s", bad[i], A);
		FWD("10.0.0.0/8", P, A, line);
	}
	/* An unterminated quoted string runs to the end of its field
	 * line, taking the elements after it along. */
	for (i = 0; i < sizeof(open) / sizeof(open[0]); i++) {
		snprintf(line, sizeof(line), "for=%s, %s", A, open[i]);
		FWD("10.0.0.0/8", P, P, line);
		snprintf(line, sizeof(line), "for=%s, %s, for=%s", A, open[i],
		    C);
		FWD("10.0.0.0/8", P, P, line);
		FWD("10.0.0.0/8", P, C, "for=" A, open[i], "for=" C);
	}
	/* Empty elements and an empty field line. */
	FWD("10.0.0.0/8", P, C, "for=" A ",, for=" C);
	FWD("10.0.0.0/8", P, P, "for=" A ", for=" C ",");
	FWD("10.0.0.0/8", P, P, "");
	/* An unterminated quoted string ends with its field line: the
	 * next line is read on its own. */
	FWD("10.0.0.0/8", P, C, "for=" A ";ext=\"abc, for=" B, "for=" C);
}

/* 38: only parsed addresses are printed, never the header's text. */
static void
test_text_only_parsed(void **state)
{
#define RAW(lit)	{ (lit), sizeof(lit) - 1 }
	static const struct client_field hostile[] = {
		RAW("<script>alert(1)</script>"), RAW("1.2.3.4<b>"),
		RAW("1.2.3.4\r\nX: y"), RAW("1.2.3.4\0 evil"),
		RAW("\"><img>"), RAW("%31.2.3.4"), RAW("1.2.3.4%00"),
		RAW("::1\0<b>"), RAW("[::1]\0:80"), RAW("1.2.3.4\0"),
	};
#undef RAW
	struct client_trust	 ct;
	struct client_field	 f;
	struct client_addr	 ca;
	char			 buf[CLIENT_ADDR_MAX], fwd[64];
	size_t			 i, j, n;
	enum client_header	 h;

	(void)state;
	trust_ok("0.0.0.0/0 ::/0", &ct);
	for (i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
		for (h = CLIENT_HEADER_XFF; h <= CLIENT_HEADER_FORWARDED;
		    h++) {
			if (h == CLIENT_HEADER_FORWARDED) {
				n = (size_t)snprintf(fwd, sizeof(fwd),
				    "for=\"");
				memcpy(fwd + n, hostile[i].cf_value,
				    hostile[i].cf_len);
				n += hostile[i].cf_len;
				fwd[n++] = '"';
				f.cf_value = fwd;
				f.cf_len = n;
			} else
				f = hostile[i];
			ca = addr(P);
			client_walk(h, &ct, &f, 1, &ca);
			text(&ca, buf, sizeof(buf));
			assert_string_equal(buf, P);
		}
	}

	/* Whatever is printed consists of address characters. */
	ca = addr(P);
	f.cf_value = "[2001:DB8::A]:80";
	f.cf_len = strlen(f.cf_value);
	client_walk(CLIENT_HEADER_XFF, &ct, &f, 1, &ca);
	n = client_text(&ca, buf, sizeof(buf));
	assert_string_equal(buf, "2001:db8::a");
	for (j = 0; j < n; j++)
		assert_non_null(strchr("0123456789abcdef.:", buf[j]));

	/* A NULL view is an empty value. */
	ca = addr(P);
	f.cf_value = NULL;
	f.cf_len = 0;
	client_walk(CLIENT_HEADER_XFF, &ct, &f, 1, &ca);
	assert_string_equal(text(&ca, buf, sizeof(buf)), P);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_from_sockaddr),
		cmocka_unit_test(test_text),
		cmocka_unit_test(test_trust_parse_good),
		cmocka_unit_test(test_trust_parse_bad),
		cmocka_unit_test(test_trust_match),
		cmocka_unit_test(test_trust_match_families),
		cmocka_unit_test(test_header_names),
		cmocka_unit_test(test_xff_recursive),
		cmocka_unit_test(test_xff_field_lines),
		cmocka_unit_test(test_xff_stops),
		cmocka_unit_test(test_xff_forms),
		cmocka_unit_test(test_untrusted_peer),
		cmocka_unit_test(test_unknown_peer),
		cmocka_unit_test(test_mapped_peer),
		cmocka_unit_test(test_xrealip),
		cmocka_unit_test(test_forwarded_forms),
		cmocka_unit_test(test_forwarded_walk),
		cmocka_unit_test(test_forwarded_quoting),
		cmocka_unit_test(test_forwarded_stops),
		cmocka_unit_test(test_text_only_parsed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
