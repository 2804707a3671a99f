/*
 * Unit tests for the PROXY protocol header parser (src/proxy.c).
 *
 * The numbers in comments refer to /work/shared/HTTP-CASES.md.
 */
#include <sys/types.h>
#include <sys/socket.h>
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

#include "proxy.h"

/* A byte string literal with its exact length (it may contain NULs). */
#define RAW(lit)	(lit), (sizeof(lit) - 1)

/* The v2 signature, and what follows every header here. */
#define SIG		"\r\n\r\n\0\r\nQUIT\n"
#define REQUEST		"GET / HTTP/1.1\r\nHost: a\r\n\r\n"

#define ADDR4_SRC	"\xc0\x00\x02\x01"	/* 192.0.2.1 */
#define ADDR4_DST	"\xc6\x33\x64\x02"	/* 198.51.100.2 */
#define ADDR6_SRC	"\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01"
#define ADDR6_DST	"\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x02"

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

/*
 * Walks a TLV block with proxy_tlv_next(), into the SSL sub-TLVs too;
 * stores up to max types met (sub-TLVs included) in types[].  Returns the
 * number of TLVs met, or -1 if the walk fails; asserts that they tile the
 * block.
 */
static int
walk(const char *block, size_t len, uint8_t *types, size_t max)
{
	const uint8_t		*b = (const uint8_t *)block;
	struct proxy_tlv	 t, st;
	size_t			 off = 0, prev = 0, soff;
	int			 rc, src, n = 0;

	while ((rc = proxy_tlv_next(b, len, &off, &t)) == 1) {
		assert_int_equal(t.pt_value, b + prev + PROXY_TLV_HEAD);
		assert_int_equal(off, prev + PROXY_TLV_HEAD + t.pt_len);
		prev = off;
		if ((size_t)n < max)
			types[n] = t.pt_type;
		n++;
		if (t.pt_type != PROXY_TLV_SSL)
			continue;
		if (t.pt_len < PROXY_TLV_SSL_HEAD)
			return -1;
		soff = 0;
		while ((src = proxy_tlv_next(t.pt_value + PROXY_TLV_SSL_HEAD,
		    t.pt_len - PROXY_TLV_SSL_HEAD, &soff, &st)) == 1) {
			if ((size_t)n < max)
				types[n] = st.pt_type;
			n++;
		}
		if (src == -1)
			return -1;
	}
	if (rc == -1)
		return -1;
	assert_int_equal(off, len);
	return n;
}

/* proxy_parse() on a private copy of exactly len bytes, so that a read
 * past len is caught by ASan/valgrind.  Checks what holds for any input. */
static int
parse(const char *raw, size_t len, struct proxy_header *ph)
{
	char	*copy = malloc(len > 0 ? len : 1);
	int	 rc;

	assert_non_null(copy);
	memcpy(copy, raw, len);
	rc = proxy_parse(copy, len, ph);
	raw = copy;
	switch (rc) {
	case PROXY_DONE:
		assert_true(ph->ph_consumed > 0 && ph->ph_consumed <= len);
		assert_true(ph->ph_version == 1 || ph->ph_version == 2);
		if (ph->ph_version == 1) {
			assert_true(ph->ph_consumed <= PROXY_V1_MAX);
			assert_int_equal(ph->ph_tlv_len, 0);
		} else
			assert_true(ph->ph_consumed <= PROXY_V2_MAX);
		/* The TLV block ends the header, and walks to its end. */
		if (ph->ph_tlv_len > 0) {
			assert_int_equal(ph->ph_tlv_off + ph->ph_tlv_len,
			    ph->ph_consumed);
			assert_true(walk(raw + ph->ph_tlv_off,
			    ph->ph_tlv_len, NULL, 0) >= 0);
		}
		break;
	case PROXY_NEED_MORE:
		assert_true(len < PROXY_NEED_MAX);
		/* FALLTHROUGH */
	case PROXY_ERROR:
		assert_int_equal(ph->ph_consumed, 0);
		assert_int_equal(ph->ph_tlv_len, 0);
		break;
	default:
		fail_msg("result %d", rc);
	}
	free(copy);
	return rc;
}

static void
assert_no_addr(const struct sockaddr_storage *ss)
{
	struct sockaddr_storage	 zero;

	memset(&zero, 0, sizeof(zero));
	assert_memory_equal(ss, &zero, sizeof(zero));
}

static void
assert_addr(const struct sockaddr_storage *ss, int af, const char *text,
    unsigned port)
{
	struct sockaddr_in	 sin;
	struct sockaddr_in6	 sin6;
	struct in6_addr		 want;

	assert_int_equal(inet_pton(af, text, &want), 1);
	assert_int_equal(ss->ss_family, af);
	if (af == AF_INET) {
		memcpy(&sin, ss, sizeof(sin));
		assert_memory_equal(&sin.sin_addr, &want, 4);
		assert_int_equal(ntohs(sin.sin_port), port);
	} else {
		memcpy(&sin6, ss, sizeof(sin6));
		assert_memory_equal(&sin6.sin6_addr, &want, 16);
		assert_int_equal(ntohs(sin6.sin6_port), port);
		assert_int_equal(sin6.sin6_flowinfo, 0);
		assert_int_equal(sin6.sin6_scope_id, 0);
	}
}

/* ------------------------------------------------------------------ */
/* Valid headers (30)                                                  */
/* ------------------------------------------------------------------ */

struct valid_case {
	const char	*name;
	const char	*raw;		/* the header, TLVs included */
	size_t		 len;
	int		 version;
	int		 local;
	int		 af;
	const char	*src;
	unsigned	 sport;
	const char	*dst;
	unsigned	 dport;
	const char	*tlvs;		/* the types walked, SSL's included */
};

#define V1(name, lit, af, src, sport, dst, dport)			\
	{ name, RAW(lit), 1, 0, af, src, sport, dst, dport, "" }
#define V1_LOCAL(name, lit)						\
	{ name, RAW(lit), 1, 1, 0, NULL, 0, NULL, 0, "" }
#define V2(name, lit, af, src, sport, dst, dport, tlvs)			\
	{ name, RAW(lit), 2, 0, af, src, sport, dst, dport, tlvs }
#define V2_LOCAL(name, lit, tlvs)					\
	{ name, RAW(lit), 2, 1, 0, NULL, 0, NULL, 0, tlvs }

/* TLVs (doc/proxy-protocol.txt 2.2), as HAProxy sends them. */
#define T_ALPN		"\x01\x00\x02" "h2"
#define T_AUTHORITY	"\x02\x00\x0b" "example.com"
#define T_NOOP		"\x04\x00\x03\0\0\0"
#define T_NOOP0		"\x04\x00\x00"
#define T_UNIQUE_ID	"\x05\x00\x10" "0123456789abcdef"
/* SSL: client 0x07 (SSL, cert in connection and session), verify 0,
 * then VERSION, CN, CIPHER, SIG_ALG, KEY_ALG. */
#define T_SSL		"\x20\x00\x4d" "\x07" "\0\0\0\0"		\
	"\x21\x00\x07" "TLSv1.3"					\
	"\x22\x00\x0b" "client.test"					\
	"\x23\x00\x16" "TLS_AES_256_GCM_SHA384"				\
	"\x24\x00\x0a" "RSA-SHA256"					\
	"\x25\x00\x07" "RSA2048"
#define T_SSL_EMPTY	"\x20\x00\x05" "\x00" "\0\0\0\0"
#define T_CUSTOM	"\xe0\x00\x12" "GET / HTTP/1.1\r\n\r\n"

/* A v2 PROXY header over UNIX stream sockets, built at setup. */
static char	 unix_case[16 + 216 + 7];
/* A 128-byte UNIQUE_ID (the most it may carry), and a header of exactly
 * PROXY_V2_MAX bytes: one NOOP fills it.  Built at setup. */
static char	 unique_case[16 + 12 + 3 + PROXY_TLV_UNIQUE_ID_MAX];
static char	 max_case[PROXY_V2_MAX];

static struct valid_case valid_cases[] = {
	V1("v1 TCP4",
	    "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n",
	    AF_INET, "192.0.2.1", 56324, "198.51.100.2", 443),
	V1("v1 TCP4 extremes",
	    "PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n",
	    AF_INET, "0.0.0.0", 0, "255.255.255.255", 65535),
	V1("v1 TCP6",
	    "PROXY TCP6 2001:db8::1 2001:db8::2 1234 80\r\n",
	    AF_INET6, "2001:db8::1", 1234, "2001:db8::2", 80),
	V1("v1 TCP6 mapped IPv4 and ::",
	    "PROXY TCP6 ::ffff:192.0.2.1 :: 65535 0\r\n",
	    AF_INET6, "::ffff:192.0.2.1", 65535, "::", 0),
	V1("v1 TCP6 full forms, upper case",
	    "PROXY TCP6 FFFF:ffff:0:0:0:0:0:0 0000:0:0:0:0:0:0:1 1 2\r\n",
	    AF_INET6, "ffff:ffff::", 1, "::1", 2),
	V1("v1 TCP6 dotted tail after six groups",
	    "PROXY TCP6 1:2:3:4:5:6:7.8.9.10 fe80::1:2.3.4.5 10 20\r\n",
	    AF_INET6, "1:2:3:4:5:6:7.8.9.10", 10, "fe80::1:2.3.4.5", 20),
	V1("v1 TCP6 of exactly 107 bytes",
	    "PROXY TCP6 0000:0000:0000:0000:0000:0000:255.255.255.255 "
	    "1111:2222:3333:4444:5555:6666:7777:: 65535 65535\r\n",
	    AF_INET6, "::255.255.255.255", 65535, "1111:2222:3333:4444:5555:"
	    "6666:7777:0", 65535),
	V1_LOCAL("v1 UNKNOWN alone", "PROXY UNKNOWN\r\n"),
	V1_LOCAL("v1 UNKNOWN with addresses",
	    "PROXY UNKNOWN 192.0.2.1 198.51.100.2 56324 443\r\n"),
	V1_LOCAL("v1 UNKNOWN with anything",
	    "PROXY UNKNOWN  \x01 any\tthing\x80 \r\n"),
	V1_LOCAL("v1 UNKNOWN worst case, 107 bytes",
	    "PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
	    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n"),
	V2("v2 PROXY TCP4",
	    SIG "\x21\x11\x00\x0c" ADDR4_SRC ADDR4_DST "\xdc\x04\x01\xbb",
	    AF_INET, "192.0.2.1", 56324, "198.51.100.2", 443, ""),
	V2("v2 PROXY TCP4 with TLVs",
	    SIG "\x21\x11\x00\x2c" ADDR4_SRC ADDR4_DST "\x00\x50\xff\xff"
	    "\x01\x00\x02" "h2" "\x02\x00\x0b" "example.com"
	    "\x04\x00\x03\0\0\0" "\x07\x00\x04\x12\x34\x56\x78",
	    AF_INET, "192.0.2.1", 80, "198.51.100.2", 65535,
	    "\x01\x02\x04\x07"),
	V2("v2 PROXY TCP4, ALPN, AUTHORITY, UNIQUE_ID, SSL, NOOP",
	    SIG "\x21\x11\x00\x85" ADDR4_SRC ADDR4_DST "\x00\x50\x01\xbb"
	    T_ALPN T_AUTHORITY T_UNIQUE_ID T_SSL T_NOOP0,
	    AF_INET, "192.0.2.1", 80, "198.51.100.2", 443,
	    "\x01\x02\x05\x20\x21\x22\x23\x24\x25\x04"),
	V2("v2 PROXY TCP4, an SSL TLV without sub-TLVs",
	    SIG "\x21\x11\x00\x14" ADDR4_SRC ADDR4_DST "\x00\x50\x01\xbb"
	    T_SSL_EMPTY,
	    AF_INET, "192.0.2.1", 80, "198.51.100.2", 443, "\x20"),
	V2("v2 PROXY TCP4, a request in a TLV's value",
	    SIG "\x21\x11\x00\x21" ADDR4_SRC ADDR4_DST "\x00\x50\x01\xbb"
	    T_CUSTOM,
	    AF_INET, "192.0.2.1", 80, "198.51.100.2", 443, "\xe0"),
	/* CRC32C over the whole header with its value zeroed: 0x1546b057 */
	V2("v2 PROXY TCP4, CRC32C",
	    SIG "\x21\x11\x00\x1d" ADDR4_SRC ADDR4_DST "\xdc\x04\x01\xbb"
	    T_ALPN "\x03\x00\x04\x15\x46\xb0\x57" "\x04\x00\x02\0\0",
	    AF_INET, "192.0.2.1", 56324, "198.51.100.2", 443,
	    "\x01\x03\x04"),
	/* As HAProxy 2.6 sends it: "send-proxy-v2 proxy-v2-options
	 * crc32c,unique-id", its own CRC32C. */
	V2("v2 PROXY TCP4 from HAProxy, CRC32C and UNIQUE_ID",
	    SIG "\x21\x11\x00\x44" "\x7f\x00\x00\x01\x7f\x00\x00\x01"
	    "\xda\xe0\xb7\x99" "\x03\x00\x04\xf7\x15\x47\x99"
	    "\x05\x00\x2e" "7F000001:DAE0_7F000001:B799_6B136890_0000:394D",
	    AF_INET, "127.0.0.1", 56032, "127.0.0.1", 47001, "\x03\x05"),
	V2("v2 PROXY TCP4, 128-byte UNIQUE_ID", "",	/* unique_case */
	    AF_INET, "192.0.2.1", 80, "198.51.100.2", 443, "\x05"),
	V2("v2 PROXY TCP4 of exactly PROXY_V2_MAX bytes", "",	/* max_case */
	    AF_INET, "192.0.2.1", 80, "198.51.100.2", 443, "\x04"),
	V2("v2 PROXY TCP6",
	    SIG "\x21\x21\x00\x24" ADDR6_SRC ADDR6_DST "\x04\xd2\x00\x50",
	    AF_INET6, "2001:db8::1", 1234, "2001:db8::2", 80, ""),
	V2("v2 PROXY TCP6 with TLVs",
	    SIG "\x21\x21\x00\x2b" ADDR6_SRC ADDR6_DST "\x00\x00\x01\xbb"
	    "\x01\x00\x04" "http",
	    AF_INET6, "2001:db8::1", 0, "2001:db8::2", 443, "\x01"),
	V2_LOCAL("v2 PROXY UNSPEC", SIG "\x21\x00\x00\x00", ""),
	V2_LOCAL("v2 PROXY UNSPEC with TLVs",
	    SIG "\x21\x00\x00\x07" "\x04\x00\x04\0\0\0\0", "\x04"),
	/* CRC32C 0x3ec9894e */
	V2_LOCAL("v2 PROXY UNSPEC, CRC32C alone",
	    SIG "\x21\x00\x00\x07" "\x03\x00\x04\x3e\xc9\x89\x4e", "\x03"),
	V2_LOCAL("v2 PROXY UNIX", "", "\x04"),	/* unix_case */
	V2_LOCAL("v2 LOCAL", SIG "\x20\x00\x00\x00", ""),
	V2_LOCAL("v2 LOCAL with an INET block",
	    SIG "\x20\x11\x00\x0c" ADDR4_SRC ADDR4_DST "\x00\x50\x00\x50", ""),
	V2_LOCAL("v2 LOCAL ignores fam", SIG "\x20\xff\x00\x03" "abc", ""),
	V2_LOCAL("v2 LOCAL UDP", SIG "\x20\x12\x00\x00", ""),
	/* LOCAL: the block is ignored whole, TLVs or not. */
	V2_LOCAL("v2 LOCAL, TLVs ignored",
	    SIG "\x20\x00\x00\x0c" T_ALPN "\x03\x00\x04\0\0\0\0", ""),
	V2_LOCAL("v2 LOCAL, no TLV structure",
	    SIG "\x20\x00\x00\x02" "\x04\x00", ""),
};

#define NVALID		(sizeof(valid_cases) / sizeof(valid_cases[0]))

static int
setup_cases(void **state)
{
	struct valid_case	*c;
	size_t			 i;

	(void)state;
	memset(unix_case, 0, sizeof(unix_case));
	memcpy(unix_case, RAW(SIG "\x21\x31\x00\xdf"));
	strcpy(unix_case + 16, "/run/lb/client.sock");
	strcpy(unix_case + 16 + 108, "/run/hellod.sock");
	memcpy(unix_case + 16 + 216, RAW("\x04\x00\x04" "abcd"));

	memset(unique_case, 'u', sizeof(unique_case));
	memcpy(unique_case, RAW(SIG "\x21\x11\x00\x8f" ADDR4_SRC ADDR4_DST
	    "\x00\x50\x01\xbb" "\x05\x00\x80"));

	memset(max_case, 0, sizeof(max_case));
	memcpy(max_case, RAW(SIG "\x21\x11\x0f\xf0" ADDR4_SRC ADDR4_DST
	    "\x00\x50\x01\xbb" "\x04\x0f\xe1"));

	for (i = 0; i < NVALID; i++) {
		c = &valid_cases[i];
		if (strcmp(c->name, "v2 PROXY UNIX") == 0) {
			c->raw = unix_case;
			c->len = sizeof(unix_case);
		} else if (c->len == 0) {
			c->raw = strstr(c->name, "UNIQUE") != NULL ?
			    unique_case : max_case;
			c->len = c->raw == unique_case ?
			    sizeof(unique_case) : sizeof(max_case);
		}
	}
	return 0;
}

/* The header followed by a request; the caller frees. */
static char *
with_request(const struct valid_case *c, size_t *lenp)
{
	char	*buf = malloc(c->len + sizeof(REQUEST));

	assert_non_null(buf);
	memcpy(buf, c->raw, c->len);
	memcpy(buf + c->len, REQUEST, sizeof(REQUEST) - 1);
	*lenp = c->len + sizeof(REQUEST) - 1;
	return buf;
}

/* A DONE result for c on buf, which starts with c's header. */
static void
assert_header(const struct valid_case *c, const struct proxy_header *ph,
    const char *buf)
{
	uint8_t	 types[32];
	size_t	 ntypes = strlen(c->tlvs);
	int	 n;

	assert_int_equal(ph->ph_consumed, c->len);
	assert_int_equal(ph->ph_version, c->version);
	assert_int_equal(ph->ph_local, c->local);
	if (c->local) {
		assert_no_addr(&ph->ph_src);
		assert_no_addr(&ph->ph_dst);
	} else {
		assert_addr(&ph->ph_src, c->af, c->src, c->sport);
		assert_addr(&ph->ph_dst, c->af, c->dst, c->dport);
	}
	n = walk(buf + ph->ph_tlv_off, ph->ph_tlv_len, types, sizeof(types));
	if (n < 0 || (size_t)n != ntypes || memcmp(types, c->tlvs, ntypes))
		fail_msg("%s: %d TLVs, expected %zu", c->name, n, ntypes);
	if (ph->ph_tlv_len == 0)
		assert_int_equal(ntypes, 0);
}

static void
test_valid_whole(void **state)
{
	struct proxy_header	 ph;
	char			*buf;
	size_t			 i, len;

	(void)state;
	for (i = 0; i < NVALID; i++) {
		const struct valid_case *c = &valid_cases[i];

		assert_true(c->len <= (c->version == 1 ? PROXY_V1_MAX :
		    PROXY_V2_MAX));
		buf = with_request(c, &len);
		if (parse(buf, len, &ph) != PROXY_DONE)
			fail_msg("%s: not done", c->name);
		assert_header(c, &ph, buf);
		/* Nothing after it is needed. */
		assert_int_equal(parse(c->raw, c->len, &ph), PROXY_DONE);
		assert_header(c, &ph, c->raw);
		free(buf);
	}
}

/*
 * Two writes, split at every offset: the first part needs more until it
 * holds the whole header, TLVs included, then the whole is parsed exactly
 * as in one piece.
 */
static void
test_valid_split_every_offset(void **state)
{
	struct proxy_header	 ph;
	char			*buf;
	size_t			 i, k, len;
	int			 rc;

	(void)state;
	for (i = 0; i < NVALID; i++) {
		const struct valid_case *c = &valid_cases[i];

		buf = with_request(c, &len);
		for (k = 0; k <= len; k++) {
			rc = parse(buf, k, &ph);
			if (rc != (k < c->len ? PROXY_NEED_MORE : PROXY_DONE))
				fail_msg("%s: prefix of %zu bytes: %d",
				    c->name, k, rc);
			if (rc == PROXY_DONE)
				assert_header(c, &ph, buf);
		}
		free(buf);
	}
}

/*
 * A connection delivering raw in segments that end at cuts[] (the last at
 * len), buffered like a worker: unconsumed bytes are kept and the next
 * segment appended until the header is done; what follows it is the
 * stream.  Returns what follows the header, NUL-terminated; the caller
 * frees.
 */
static char *
run_conn(const struct valid_case *c, const char *raw, size_t len,
    const size_t *cuts, size_t ncuts)
{
	struct proxy_header	 ph;
	char			*buf = malloc(len + 1);
	char			*rest = malloc(len + 1);
	size_t			 have = 0, arrived = 0, upto, seg, n;
	size_t			 nrest = 0;
	int			 done = 0, rc;

	assert_non_null(buf);
	assert_non_null(rest);
	for (seg = 0; seg <= ncuts; seg++) {
		upto = seg < ncuts ? cuts[seg] : len;
		assert_true(upto >= arrived && upto <= len);
		n = upto - arrived;
		if (done) {
			memcpy(rest + nrest, raw + arrived, n);
			nrest += n;
			arrived = upto;
			continue;
		}
		memcpy(buf + have, raw + arrived, n);
		have += n;
		arrived = upto;
		rc = parse(buf, have, &ph);
		if (rc == PROXY_NEED_MORE) {
			assert_true(have < c->len);
			continue;
		}
		if (rc != PROXY_DONE)
			fail_msg("%s: %d after %zu bytes", c->name, rc, have);
		assert_header(c, &ph, buf);
		done = 1;
		memcpy(rest, buf + ph.ph_consumed, have - ph.ph_consumed);
		nrest = have - ph.ph_consumed;
	}
	assert_true(done);
	rest[nrest] = '\0';
	free(buf);
	return rest;
}

/* (30) one write, two writes at every offset, one byte at a time: the
 * request after the header arrives intact each time. */
static void
test_valid_connection(void **state)
{
	char	*buf, *rest;
	size_t	 i, k, len, *cuts;

	(void)state;
	for (i = 0; i < NVALID; i++) {
		const struct valid_case *c = &valid_cases[i];

		buf = with_request(c, &len);
		rest = run_conn(c, buf, len, NULL, 0);
		assert_string_equal(rest, REQUEST);
		free(rest);
		for (k = 1; k < len; k++) {
			rest = run_conn(c, buf, len, &k, 1);
			assert_string_equal(rest, REQUEST);
			free(rest);
		}
		cuts = malloc(len * sizeof(*cuts));
		assert_non_null(cuts);
		for (k = 0; k < len; k++)
			cuts[k] = k + 1;
		rest = run_conn(c, buf, len, cuts, len);
		assert_string_equal(rest, REQUEST);
		free(rest);
		free(cuts);
		free(buf);
	}
}

/* v2 TLVs must all have arrived: NEED_MORE until the last byte. */
static void
test_v2_whole_header_needed(void **state)
{
	struct proxy_header	 ph;
	char			 buf[16 + 12 + 1000];
	size_t			 i;

	(void)state;
	memcpy(buf, RAW(SIG "\x21\x11\x03\xf4" ADDR4_SRC ADDR4_DST
	    "\x30\x39\x00\x50"));
	/* four NOOP TLVs of 250 bytes */
	for (i = 28; i < sizeof(buf); i++)
		buf[i] = (char)((i - 28) % 250 == 0 ? 0x04 :
		    (i - 28) % 250 == 1 ? 0x00 : (i - 28) % 250 == 2 ? 247 : 0);

	assert_int_equal(parse(buf, 28, &ph), PROXY_NEED_MORE);
	assert_int_equal(parse(buf, 28 + 100, &ph), PROXY_NEED_MORE);
	assert_int_equal(parse(buf, sizeof(buf) - 1, &ph), PROXY_NEED_MORE);
	assert_int_equal(parse(buf, sizeof(buf), &ph), PROXY_DONE);
	assert_int_equal(ph.ph_consumed, sizeof(buf));
	assert_int_equal(ph.ph_tlv_off, 28);
	assert_int_equal(ph.ph_tlv_len, 1000);
	assert_int_equal(ph.ph_local, 0);
	assert_addr(&ph.ph_src, AF_INET, "192.0.2.1", 12345);
	assert_addr(&ph.ph_dst, AF_INET, "198.51.100.2", 80);

	/* LOCAL: the whole block too, though it is ignored. */
	buf[12] = 0x20;
	assert_int_equal(parse(buf, 16, &ph), PROXY_NEED_MORE);
	assert_int_equal(parse(buf, sizeof(buf) - 1, &ph), PROXY_NEED_MORE);
	assert_int_equal(parse(buf, sizeof(buf), &ph), PROXY_DONE);
	assert_int_equal(ph.ph_consumed, sizeof(buf));
	assert_int_equal(ph.ph_tlv_len, 0);
	assert_int_equal(ph.ph_local, 1);

	/* Past PROXY_V2_MAX: refused at the length, whatever follows. */
	memcpy(buf, RAW(SIG "\x21\x11\x0f\xf1"));
	assert_int_equal(parse(buf, 15, &ph), PROXY_NEED_MORE);
	assert_int_equal(parse(buf, 16, &ph), PROXY_ERROR);
	memcpy(buf, RAW(SIG "\x20\x00\x0f\xf1"));
	assert_int_equal(parse(buf, 16, &ph), PROXY_ERROR);
	memcpy(buf, RAW(SIG "\x21\x21\xff\xff"));
	assert_int_equal(parse(buf, 16, &ph), PROXY_ERROR);
	/* ... and exactly PROXY_V2_MAX is taken (max_case). */
	memcpy(buf, RAW(SIG "\x21\x11\x0f\xf0"));
	assert_int_equal(parse(buf, 16, &ph), PROXY_NEED_MORE);
}

/* The TLV iterator on blocks of its own. */
static void
test_tlv_iterator(void **state)
{
	static const char	 block[] = T_ALPN T_NOOP0 T_SSL T_CUSTOM;
	const uint8_t		*b = (const uint8_t *)block;
	struct proxy_tlv	 t;
	size_t			 off = 0, len = sizeof(block) - 1, soff;

	(void)state;
	assert_int_equal(proxy_tlv_next(b, len, &off, &t), 1);
	assert_int_equal(t.pt_type, PROXY_TLV_ALPN);
	assert_int_equal(t.pt_len, 2);
	assert_memory_equal(t.pt_value, "h2", 2);
	assert_int_equal(off, 5);
	assert_int_equal(proxy_tlv_next(b, len, &off, &t), 1);
	assert_int_equal(t.pt_type, PROXY_TLV_NOOP);
	assert_int_equal(t.pt_len, 0);
	assert_int_equal(t.pt_value, b + 8);
	assert_int_equal(proxy_tlv_next(b, len, &off, &t), 1);
	assert_int_equal(t.pt_type, PROXY_TLV_SSL);
	assert_int_equal(t.pt_len, 77);
	assert_int_equal(t.pt_value[0], 0x07);

	/* The SSL sub-TLVs, from the value's sixth byte. */
	soff = 0;
	{
		const uint8_t	*sv = t.pt_value + PROXY_TLV_SSL_HEAD;
		size_t		 slen = t.pt_len - PROXY_TLV_SSL_HEAD;
		struct proxy_tlv st;

		assert_int_equal(proxy_tlv_next(sv, slen, &soff, &st), 1);
		assert_int_equal(st.pt_type, PROXY_TLV_SSL_VERSION);
		assert_memory_equal(st.pt_value, "TLSv1.3", 7);
		assert_int_equal(proxy_tlv_next(sv, slen, &soff, &st), 1);
		assert_int_equal(st.pt_type, PROXY_TLV_SSL_CN);
		assert_memory_equal(st.pt_value, "client.test", 11);
		assert_int_equal(proxy_tlv_find(sv, slen,
		    PROXY_TLV_SSL_KEY_ALG, &st), 1);
		assert_memory_equal(st.pt_value, "RSA2048", 7);
		assert_int_equal(proxy_tlv_find(sv, slen, PROXY_TLV_ALPN, &st),
		    0);
	}

	assert_int_equal(proxy_tlv_next(b, len, &off, &t), 1);
	assert_int_equal(t.pt_type, 0xe0);
	assert_int_equal(t.pt_len, 18);
	assert_int_equal(off, len);
	assert_int_equal(proxy_tlv_next(b, len, &off, &t), 0);
	assert_int_equal(proxy_tlv_next(b, len, &off, &t), 0);
	assert_int_equal(off, len);

	/* The getter. */
	assert_int_equal(proxy_tlv_find(b, len, PROXY_TLV_NOOP, &t), 1);
	assert_int_equal(t.pt_value, b + 8);
	assert_int_equal(proxy_tlv_find(b, len, PROXY_TLV_AUTHORITY, &t), 0);

	/* Empty, and malformed blocks: -1, *off left where it was. */
	off = 0;
	assert_int_equal(proxy_tlv_next(b, 0, &off, &t), 0);
	for (len = 1; len < 5; len++) {
		off = 0;
		assert_int_equal(proxy_tlv_next(b, len, &off, &t), -1);
		assert_int_equal(off, 0);
	}
	off = 5;
	assert_int_equal(proxy_tlv_next(b, 7, &off, &t), -1);
	assert_int_equal(off, 5);
	off = 9;
	assert_int_equal(proxy_tlv_next(b, 8, &off, &t), -1);
	/* A length of 0xffff in a short block. */
	assert_int_equal(proxy_tlv_next((const uint8_t *)"\x04\xff\xff" "ab",
	    5, &(size_t){ 0 }, &t), -1);
	assert_int_equal(proxy_tlv_find((const uint8_t *)"\x04\x00", 2,
	    PROXY_TLV_NOOP, &t), 0);
}

/* The CRC32C the parser computes, against a bitwise one: the check value
 * of "123456789" (RFC 3720 B.4), then every header of valid_cases
 * with a CRC32C TLV (one computed by HAProxy), and one bit flipped
 * anywhere in it. */
static uint32_t
crc32c_bitwise(const char *p, size_t len)
{
	uint32_t	 crc = 0xffffffff;
	size_t		 i;
	int		 k;

	for (i = 0; i < len; i++) {
		crc ^= (unsigned char)p[i];
		for (k = 0; k < 8; k++)
			crc = crc & 1 ? (crc >> 1) ^ 0x82f63b78 : crc >> 1;
	}
	return ~crc;
}

static void
test_crc32c(void **state)
{
	struct proxy_header	 ph;
	struct proxy_tlv	 t;
	char			*copy;
	size_t			 i, k, off;
	uint32_t		 want;
	int			 bit, found = 0;

	(void)state;
	assert_int_equal(crc32c_bitwise(RAW("123456789")), 0xe3069283);
	for (i = 0; i < NVALID; i++) {
		const struct valid_case *c = &valid_cases[i];

		if (c->version != 2 || strchr(c->tlvs, PROXY_TLV_CRC32C) ==
		    NULL)
			continue;
		found++;
		assert_int_equal(parse(c->raw, c->len, &ph), PROXY_DONE);
		assert_int_equal(proxy_tlv_find((const uint8_t *)c->raw +
		    ph.ph_tlv_off, ph.ph_tlv_len, PROXY_TLV_CRC32C, &t), 1);
		off = (size_t)((const char *)t.pt_value - c->raw);
		copy = malloc(c->len);
		assert_non_null(copy);
		memcpy(copy, c->raw, c->len);
		memset(copy + off, 0, 4);
		want = crc32c_bitwise(copy, c->len);
		assert_int_equal(want, (uint32_t)t.pt_value[0] << 24 |
		    (uint32_t)t.pt_value[1] << 16 |
		    (uint32_t)t.pt_value[2] << 8 | t.pt_value[3]);
		/* Any one bit flipped: not taken (refused, or a longer
		 * header).  But PROXY turned LOCAL ignores its block, and
		 * a CRC32C TLV turned another type is no checksum. */
		for (k = 0; k < c->len; k++) {
			for (bit = 0; bit < 8; bit++) {
				if ((k == 12 && bit == 0) || k == off - 3)
					continue;
				memcpy(copy, c->raw, c->len);
				copy[k] ^= (char)(1 << bit);
				if (parse(copy, c->len, &ph) == PROXY_DONE)
					fail_msg("%s: byte %zu bit %d flipped: "
					    "taken", c->name, k, bit);
			}
		}
		free(copy);
	}
	assert_int_equal(found, 3);
}

/* ------------------------------------------------------------------ */
/* Malformed headers (31)                                              */
/* ------------------------------------------------------------------ */

struct bad_case {
	const char	*name;
	const char	*raw;
	size_t		 len;
	size_t		 error_at;	/* the shortest ERROR prefix */
};

#define BAD(name, lit, at)	{ name, RAW(lit), at }

#define TCP4_HEAD	"PROXY TCP4 "			/* 11 bytes */
#define TCP6_HEAD	"PROXY TCP6 "
#define TCP4_ADDRS	TCP4_HEAD "1.2.3.4 5.6.7.8 "	/* 27 bytes */

static const struct bad_case bad_cases[] = {
	/* Neither "PROXY " nor the v2 signature starts with G. (31) */
	BAD("plain HTTP request", REQUEST, 1),
	BAD("empty lines, then HTTP", "\r\n" REQUEST, 3),
	BAD("lower-case proxy", "proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n", 1),
	BAD("PROXY misspelt", "PROXX TCP4 1.2.3.4 5.6.7.8 1 2\r\n", 5),
	BAD("no space after PROXY", "PROXYTCP4 1.2.3.4 5.6.7.8 1 2\r\n", 6),
	BAD("double space after PROXY",
	    "PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n", 7),
	BAD("unknown protocol", "PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n", 10),
	BAD("UDP4 protocol", "PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n", 8),
	BAD("UNKNOWN run on", "PROXY UNKNOWNX\r\n", 14),
	BAD("protocol without addresses", "PROXY TCP4\r\n", 11),

	/* Fields and spaces. */
	BAD("double space before source", TCP4_HEAD " 1.2.3.4 5.6.7.8 1 2\r\n",
	    12),
	BAD("double space before destination",
	    TCP4_HEAD "1.2.3.4  5.6.7.8 1 2\r\n", 20),
	BAD("double space before source port",
	    TCP4_HEAD "1.2.3.4 5.6.7.8  1 2\r\n", 28),
	BAD("double space before destination port",
	    TCP4_ADDRS "1  2\r\n", 30),
	BAD("space before CRLF", TCP4_ADDRS "1 2 \r\n", 31),
	BAD("tab for space", TCP4_HEAD "1.2.3.4\t5.6.7.8 1 2\r\n", 19),
	BAD("missing destination port", TCP4_ADDRS "1\r\n", 29),
	BAD("extra field", TCP4_ADDRS "1 2 3\r\n", 31),

	/* Line ends: CRLF only, within 107 bytes. (31) */
	BAD("bare LF", TCP4_ADDRS "1 2\nGET", 31),
	BAD("bare CR", TCP4_ADDRS "1 2\rGET", 32),
	BAD("CR CR LF", TCP4_ADDRS "1 2\r\r\n", 32),
	BAD("no CRLF, request follows", TCP4_ADDRS "1 2" REQUEST, 31),
	BAD("UNKNOWN bare LF", "PROXY UNKNOWN\n", 14),
	BAD("UNKNOWN LF inside", "PROXY UNKNOWN a\nb\r\n", 16),
	BAD("UNKNOWN CR inside", "PROXY UNKNOWN a\rb\r\n", 17),
	/* 108 bytes: the 106th is not CR, so CRLF cannot end by 107. */
	BAD("v1 line of 108 bytes",
	    "PROXY UNKNOWN 0123456789012345678901234567890123456789"
	    "0123456789012345678901234567890123456789012345678901\r\n", 106),
	BAD("v1 without CRLF",
	    "PROXY UNKNOWN 0123456789012345678901234567890123456789"
	    "0123456789012345678901234567890123456789012345678901234567890123"
	    "456789", 106),
	/* Both addresses at their longest cannot fit: with the last digit
	 * of the second, even " 0 0\r\n" would end at byte 108. */
	BAD("v1 TCP6 over 107 bytes",
	    TCP6_HEAD "0000:0000:0000:0000:0000:0000:255.255.255.255 "
	    "0000:0000:0000:0000:0000:0000:255.255.255.255 65535 65535\r\n",
	    102),
	BAD("v1 TCP6 of 108 bytes, by its last port",
	    TCP6_HEAD "0000:0000:0000:0000:0000:0000:255.255.255.255 "
	    "1111:2222:3333:4444:5555:6666:7777:00 65535 65535\r\n", 106),

	/* Ports. (31) */
	BAD("leading zero, source port", TCP4_ADDRS "01 2\r\n", 29),
	BAD("leading zero, destination port", TCP4_ADDRS "1 080\r\n", 31),
	BAD("double zero port", TCP4_ADDRS "00 2\r\n", 29),
	BAD("port 65536", TCP4_ADDRS "65536 2\r\n", 32),
	BAD("port 70000", TCP4_ADDRS "1 70000\r\n", 34),
	BAD("port of six digits", TCP4_ADDRS "1 655350\r\n", 35),
	BAD("negative port", TCP4_ADDRS "-1 2\r\n", 28),
	BAD("signed port", TCP4_ADDRS "+1 2\r\n", 28),
	BAD("hex port", TCP4_ADDRS "0x50 2\r\n", 29),

	/* IPv4. (31) */
	BAD("leading zero in IPv4", TCP4_HEAD "010.1.1.1 5.6.7.8 1 2\r\n", 13),
	BAD("leading zero, last part", TCP4_HEAD "1.2.3.04 5.6.7.8 1 2\r\n",
	    19),
	BAD("IPv4 part 256", TCP4_HEAD "1.2.3.256 5.6.7.8 1 2\r\n", 20),
	BAD("IPv4 of three parts", TCP4_HEAD "1.2.3 5.6.7.8 1 2\r\n", 17),
	BAD("IPv4 of five parts", TCP4_HEAD "1.2.3.4.5 5.6.7.8 1 2\r\n", 19),
	BAD("IPv4 empty part", TCP4_HEAD "1..3.4 5.6.7.8 1 2\r\n", 14),
	BAD("IPv4 trailing dot", TCP4_HEAD "1.2.3. 5.6.7.8 1 2\r\n", 18),
	BAD("IPv4 shorthand", TCP4_HEAD "127.1 5.6.7.8 1 2\r\n", 17),
	BAD("IPv4 as a number", TCP4_HEAD "2130706433 5.6.7.8 1 2\r\n", 15),
	BAD("TCP4 with IPv6 source", TCP4_HEAD "::1 ::1 1 2\r\n", 12),
	BAD("TCP4 with IPv6 destination", TCP4_HEAD "1.2.3.4 ::1 1 2\r\n",
	    20),
	BAD("TCP4 with a host name", TCP4_HEAD "localhost 1.2.3.4 1 2\r\n",
	    12),

	/* IPv6. (31) */
	BAD("TCP6 with IPv4 source", TCP6_HEAD "1.2.3.4 ::1 1 2\r\n", 13),
	BAD("TCP6 with IPv4 destination", TCP6_HEAD "::1 1.2.3.4 1 2\r\n",
	    17),
	BAD("IPv6 triple colon", TCP6_HEAD ":::1 ::1 1 2\r\n", 14),
	BAD("IPv6 two ::", TCP6_HEAD "1::2::3 ::1 1 2\r\n", 17),
	BAD("IPv6 single leading colon", TCP6_HEAD ":1::2 ::1 1 2\r\n", 13),
	BAD("IPv6 single trailing colon",
	    TCP6_HEAD "1:2:3:4:5:6:7: ::1 1 2\r\n", 26),
	BAD("IPv6 group of five digits", TCP6_HEAD "12345:: ::1 1 2\r\n", 16),
	BAD("IPv6 nine groups", TCP6_HEAD "1:2:3:4:5:6:7:8:9 ::1 1 2\r\n", 27),
	BAD("IPv6 eight groups and ::",
	    TCP6_HEAD "1:2:3:4:5:6:7::8 ::1 1 2\r\n", 27),
	BAD("IPv6 seven groups", TCP6_HEAD "1:2:3:4:5:6:7 ::1 1 2\r\n", 25),
	BAD("IPv6 zone", TCP6_HEAD "fe80::1%eth0 ::1 1 2\r\n", 19),
	BAD("IPv6 in brackets", TCP6_HEAD "[::1] ::1 1 2\r\n", 12),
	BAD("IPv6 dotted tail too early",
	    TCP6_HEAD "1:2:3:4:5:1.2.3.4 ::1 1 2\r\n", 23),
	BAD("IPv6 dotted tail with ::, too late",
	    TCP6_HEAD "1:2:3:4:5:6::1.2.3.4 ::1 1 2\r\n", 26),
	BAD("IPv6 hex in the dotted tail", TCP6_HEAD "::a.1.2.3 ::1 1 2\r\n",
	    15),
	BAD("IPv6 leading zero in the dotted tail",
	    TCP6_HEAD "::ffff:01.2.3.4 ::1 1 2\r\n", 21),
	BAD("IPv6 colon after the dotted tail",
	    TCP6_HEAD "::1.2.3.4:5 ::1 1 2\r\n", 21),

	/* v2 signature, version, command. (31) */
	BAD("v2 signature cut, then HTTP", "\r\n\r\n" REQUEST, 5),
	BAD("v2 signature, wrong byte 5",
	    "\r\n\r\n\x01\r\nQUIT\n\x21\x00\x00\x00", 5),
	BAD("v2 signature, wrong last byte",
	    "\r\n\r\n\0\r\nQUIT\r\x21\x00\x00\x00", 12),
	BAD("v2 version 1", SIG "\x11\x11\x00\x0c" ADDR4_SRC ADDR4_DST
	    "\x00\x50\x00\x50", 13),
	BAD("v2 version 3", SIG "\x31\x11\x00\x0c" ADDR4_SRC ADDR4_DST
	    "\x00\x50\x00\x50", 13),
	BAD("v2 version 0, LOCAL", SIG "\x00\x00\x00\x00", 13),
	BAD("v2 command 2", SIG "\x22\x11\x00\x0c" ADDR4_SRC ADDR4_DST
	    "\x00\x50\x00\x50", 13),
	BAD("v2 command 15", SIG "\x2f\x00\x00\x00", 13),

	/* v2 fam. (31) */
	BAD("v2 unknown family", SIG "\x21\x41\x00\x0c" ADDR4_SRC ADDR4_DST
	    "\x00\x50\x00\x50", 14),
	BAD("v2 UDP over INET", SIG "\x21\x12\x00\x0c" ADDR4_SRC ADDR4_DST
	    "\x00\x50\x00\x50", 14),
	BAD("v2 UDP over INET6", SIG "\x21\x22\x00\x24", 14),
	BAD("v2 UNIX datagram", SIG "\x21\x32\x00\xd8", 14),
	BAD("v2 INET, unspecified transport", SIG "\x21\x10\x00\x0c", 14),
	BAD("v2 unspecified family, STREAM", SIG "\x21\x01\x00\x00", 14),
	BAD("v2 transport 3", SIG "\x21\x13\x00\x0c", 14),

	/* v2 length shorter than the address block. (31) */
	BAD("v2 INET length 11", SIG "\x21\x11\x00\x0b" ADDR4_SRC ADDR4_DST
	    "\x00\x50\x00" REQUEST, 16),
	BAD("v2 INET length 0", SIG "\x21\x11\x00\x00" REQUEST, 16),
	BAD("v2 INET6 length 35", SIG "\x21\x21\x00\x23" ADDR6_SRC ADDR6_DST
	    "\x00\x50\x00", 16),
	BAD("v2 INET6 length 12", SIG "\x21\x21\x00\x0c" ADDR4_SRC ADDR4_DST
	    "\x00\x50\x00\x50", 16),
	BAD("v2 UNIX length 215", SIG "\x21\x31\x00\xd7", 16),

	/* v2 TLVs: each must end by the header's end. (31) */
	BAD("v2 TLV runs past the header",
	    SIG "\x21\x11\x00\x11" ADDR4_SRC ADDR4_DST "\x00\x50\x00\x50"
	    "\x04\x00\x03" "ab" REQUEST, 31),
	BAD("v2 second TLV runs past the header",
	    SIG "\x21\x11\x00\x1c" ADDR4_SRC ADDR4_DST "\x00\x50\x00\x50"
	    T_ALPN "\x02\x00\x09" "a.example" REQUEST, 36),
	BAD("v2 UNSPEC, TLV runs past the header",
	    SIG "\x21\x00\x00\x03" "\x04\x00\x01" "x", 19),
	BAD("v2 two bytes after the last TLV",
	    SIG "\x21\x11\x00\x0e" ADDR4_SRC ADDR4_DST "\x00\x50\x00\x50"
	    "\x04\x00", 16),
	BAD("v2 one byte after the addresses",
	    SIG "\x21\x11\x00\x0d" ADDR4_SRC ADDR4_DST "\x00\x50\x00\x50"
	    "\x04", 16),
	BAD("v2 one byte after a TLV",
	    SIG "\x21\x00\x00\x06" T_ALPN "\x04", 19),
	/* Types with rules: CRC32C, UNIQUE_ID, SSL. */
	BAD("v2 CRC32C wrong",
	    SIG "\x21\x11\x00\x1d" ADDR4_SRC ADDR4_DST "\xdc\x04\x01\xbb"
	    T_ALPN "\x03\x00\x04\x15\x46\xb0\x58" "\x04\x00\x02\0\0"
	    REQUEST, 45),
	BAD("v2 CRC32C zero",
	    SIG "\x21\x00\x00\x07" "\x03\x00\x04\0\0\0\0", 23),
	BAD("v2 CRC32C of 3 bytes",
	    SIG "\x21\x00\x00\x06" "\x03\x00\x03" "abc", 19),
	BAD("v2 CRC32C of 5 bytes",
	    SIG "\x21\x00\x00\x08" "\x03\x00\x05" "abcde", 19),
	BAD("v2 two CRC32C",
	    SIG "\x21\x00\x00\x0e" "\x03\x00\x04\x3e\xc9\x89\x4e"
	    "\x03\x00\x04\0\0\0\0", 26),
	BAD("v2 UNIQUE_ID of 129 bytes",
	    SIG "\x21\x00\x00\x84" "\x05\x00\x81" "x", 19),
	BAD("v2 SSL of 4 bytes",
	    SIG "\x21\x00\x00\x07" "\x20\x00\x04" "\x07\0\0\0", 19),
	BAD("v2 SSL sub-TLV runs past its value",
	    SIG "\x21\x00\x00\x0d" "\x20\x00\x0a" "\x07\0\0\0\0"
	    "\x21\x00\x03" "ab", 29),
	BAD("v2 SSL, two bytes after its last sub-TLV",
	    SIG "\x21\x00\x00\x0a" "\x20\x00\x07" "\x07\0\0\0\0"
	    "\x21\x00", 26),
	BAD("v2 two bytes after an SSL TLV still arriving",
	    SIG "\x21\x00\x00\x0a" "\x20\x00\x05" "\x07\0\0\0\0" "\x04\x00",
	    19),
	/* Over PROXY_V2_MAX, refused at its length. */
	BAD("v2 header of PROXY_V2_MAX + 1 bytes",
	    SIG "\x21\x11\x0f\xf1" ADDR4_SRC ADDR4_DST "\x00\x50\x00\x50"
	    REQUEST, 16),
	BAD("v2 LOCAL header of 65551 bytes", SIG "\x20\x00\xff\xff", 16),
	BAD("v2 UNSPEC header of 65551 bytes", SIG "\x21\x00\xff\xff", 16),
};

#define NBAD		(sizeof(bad_cases) / sizeof(bad_cases[0]))

/* Every prefix shorter than error_at needs more; from there on, error:
 * the header fails at the first byte that proves it wrong. */
static void
test_malformed(void **state)
{
	struct proxy_header	 ph;
	size_t			 i, k;
	int			 rc;

	(void)state;
	for (i = 0; i < NBAD; i++) {
		const struct bad_case *c = &bad_cases[i];

		assert_true(c->error_at > 0 && c->error_at <= c->len);
		for (k = 0; k <= c->len; k++) {
			rc = parse(c->raw, k, &ph);
			if (rc != (k < c->error_at ? PROXY_NEED_MORE :
			    PROXY_ERROR))
				fail_msg("%s: prefix of %zu bytes: %d "
				    "(error expected from %zu)", c->name, k,
				    rc, c->error_at);
		}
	}
}

/* (31) a header cut off: nothing but NEED_MORE, whatever the cut. */
static void
test_cut_off(void **state)
{
	struct proxy_header	 ph;

	(void)state;
	assert_int_equal(parse("", 0, &ph), PROXY_NEED_MORE);
	assert_int_equal(parse(RAW("P"), &ph), PROXY_NEED_MORE);
	assert_int_equal(parse(RAW("PROXY TCP"), &ph), PROXY_NEED_MORE);
	assert_int_equal(parse(RAW(TCP4_ADDRS "1 2\r"), &ph), PROXY_NEED_MORE);
	assert_int_equal(parse(RAW("\r"), &ph), PROXY_NEED_MORE);
	assert_int_equal(parse(RAW(SIG), &ph), PROXY_NEED_MORE);
	assert_int_equal(parse(RAW(SIG "\x21\x31\x00\xd8"), &ph),
	    PROXY_NEED_MORE);
	assert_int_equal(parse(unix_case, sizeof(unix_case) - 1, &ph),
	    PROXY_NEED_MORE);
	/* The most a caller ever holds without an answer. */
	assert_int_equal(sizeof(max_case), PROXY_NEED_MAX);
	assert_int_equal(parse(max_case, PROXY_NEED_MAX - 1, &ph),
	    PROXY_NEED_MORE);
	assert_int_equal(parse(max_case, PROXY_NEED_MAX, &ph), PROXY_DONE);
}

/* ------------------------------------------------------------------ */
/* Addresses against inet_pton(), exhaustively over small alphabets     */
/* ------------------------------------------------------------------ */

#define ENUM_MAX	9	/* longest text tried */
#define PREFIX_MAX	4	/* longest prefix judged */

/* The rank of s[0..n) among all texts over alpha, shorter ones first. */
static size_t
text_index(const char *s, size_t n, const char *alpha)
{
	size_t	 k = strlen(alpha), i, idx = 0, shorter = 0, count = 1;

	for (i = 0; i < n; i++) {
		idx = idx * k + (size_t)(strchr(alpha, s[i]) - alpha);
		shorter += count;
		count *= k;
	}
	return shorter + idx;
}

/* Calls fn on every text of 0..max letters over alpha. */
static void
each_text(const char *alpha, size_t max,
    void (*fn)(const char *, size_t, void *), void *arg)
{
	char	 s[ENUM_MAX + 1];
	size_t	 k = strlen(alpha), n, pos[ENUM_MAX], i;

	for (n = 0; n <= max; n++) {
		memset(pos, 0, sizeof(pos));
		for (;;) {
			for (i = 0; i < n; i++)
				s[i] = alpha[pos[i]];
			s[n] = '\0';
			fn(s, n, arg);
			for (i = n; i > 0 && ++pos[i - 1] == k; i--)
				pos[i - 1] = 0;
			if (i == 0)
				break;
		}
	}
}

struct enum_state {
	int		 es_af;
	const char	*es_alpha;
	unsigned char	*es_prefix_ok;	/* by text_index() */
	unsigned	 es_valid;
};

/* A valid text makes each of its short prefixes completable. */
static void
mark_prefixes(const char *s, size_t n, void *arg)
{
	struct enum_state	*es = arg;
	struct in6_addr		 a;
	size_t			 k;

	if (inet_pton(es->es_af, s, &a) != 1)
		return;
	es->es_valid++;
	for (k = 0; k <= n && k <= PREFIX_MAX; k++)
		es->es_prefix_ok[text_index(s, k, es->es_alpha)] = 1;
}

/* "PROXY TCP4 " + s must need more exactly when s can be completed. */
static void
check_prefix(const char *s, size_t n, void *arg)
{
	struct enum_state	*es = arg;
	struct proxy_header	 ph;
	char			 line[64];
	int			 want, rc;

	want = es->es_prefix_ok[text_index(s, n, es->es_alpha)] ?
	    PROXY_NEED_MORE : PROXY_ERROR;
	snprintf(line, sizeof(line), "PROXY TCP%c %s",
	    es->es_af == AF_INET ? '4' : '6', s);
	rc = parse(line, strlen(line), &ph);
	if (rc != want)
		fail_msg("\"%s\": %d, expected %d", line, rc, want);
}

/* A complete field is taken exactly when inet_pton() takes it. */
static void
check_whole(const char *s, size_t n, void *arg)
{
	struct enum_state	*es = arg;
	struct proxy_header	 ph;
	struct in6_addr		 a;
	char			 line[64];
	int			 valid, rc;

	(void)n;
	valid = inet_pton(es->es_af, s, &a) == 1;
	snprintf(line, sizeof(line), "PROXY TCP%s %s %s 1 2\r\n",
	    es->es_af == AF_INET ? "4" : "6", s,
	    es->es_af == AF_INET ? "1.2.3.4" : "::1");
	rc = parse(line, strlen(line), &ph);
	if (rc != (valid ? PROXY_DONE : PROXY_ERROR))
		fail_msg("\"%s\": %d, inet_pton %d", s, rc, valid);
	if (valid)
		assert_addr(&ph.ph_src, es->es_af, s, 1);
}

/*
 * Every completable prefix of up to PREFIX_MAX letters has a completion
 * of at most ENUM_MAX letters over these alphabets ("::0." + "0.0.0",
 * "226." + "0.0.0"), so the marks are exact.
 */
static void
test_address_texts(void **state)
{
	static const struct {
		int		 af;
		const char	*alpha;
	} alphabets[] = {
		{ AF_INET, "026." },
		{ AF_INET6, "0a:." },
	};
	struct enum_state	 es;
	size_t			 i, total;

	(void)state;
	for (i = 0; i < sizeof(alphabets) / sizeof(alphabets[0]); i++) {
		memset(&es, 0, sizeof(es));
		es.es_af = alphabets[i].af;
		es.es_alpha = alphabets[i].alpha;
		/* the rank of the first text longer than PREFIX_MAX
		 * (both alphabets start with '0') */
		total = text_index("00000", PREFIX_MAX + 1, es.es_alpha);
		es.es_prefix_ok = calloc(total, 1);
		assert_non_null(es.es_prefix_ok);
		each_text(es.es_alpha, ENUM_MAX, mark_prefixes, &es);
		assert_true(es.es_valid > 100);
		each_text(es.es_alpha, PREFIX_MAX, check_prefix, &es);
		each_text(es.es_alpha, 6, check_whole, &es);
		free(es.es_prefix_ok);
	}
}

/*
 * The 107-byte bound is applied to the shortest possible ending of a
 * line.  The second address of a TCP6 line is the only field that can
 * reach it, so it is tried against a search: after a long first address,
 * every prefix of a long second one must need more exactly when some text
 * over "0:." appended to it makes a valid address that still fits.
 */
/* The longest shortest ending: "::1." + "0.0.0". */
#define FIT_DEPTH	5

static int
completes(char *text, size_t n, size_t room)
{
	static const char	 more[] = "0:.";
	struct in6_addr		 a;
	size_t			 i;

	text[n] = '\0';
	if (inet_pton(AF_INET6, text, &a) == 1)
		return 1;
	if (room == 0)
		return 0;
	for (i = 0; i < sizeof(more) - 1; i++) {
		text[n] = more[i];
		if (completes(text, n + 1, room - 1))
			return 1;
	}
	return 0;
}

static void
test_length_bound(void **state)
{
	static const char *const firsts[] = {
		"0000:0000:0000:0000:0000:0000:255.255.255.255",
		"000:0000:0000:0000:0000:0000:255.255.255.255",
		"00:0000:0000:0000:0000:0000:255.255.255.255",
		"0:0000:0000:0000:0000:0000:255.255.255.255",
		"0:0000:0000:0000:0000:0000:255.255.255.25",
		"0:0000:0000:0000:0000:0000:255.255.25.25",
	};
	static const char *const seconds[] = {
		"0000:0000:0000:0000:0000:0000:255.255.255.255",
		"0000:0000:0000:0000:0000::255.255.255.255",
		"1111:2222:3333:4444:5555:6666:7777:8888",
		"1111:2222:3333:4444:5555:6666:7777::",
		"1111:2222:3333:4444:5555:6666::7777",
		"ffff:ffff:ffff:ffff:ffff:ffff:ffff:",
		"ffff:ffff:ffff:ffff:ffff:ffff:1.255.255.255",
		"::ffff:255.255.255.255",
	};
	struct proxy_header	 ph;
	char			 line[160], text[64];
	size_t			 i, j, k, head, room, len;
	int			 want, rc;

	(void)state;
	for (i = 0; i < sizeof(firsts) / sizeof(firsts[0]); i++) {
		for (j = 0; j < sizeof(seconds) / sizeof(seconds[0]); j++) {
			head = (size_t)snprintf(line, sizeof(line),
			    "PROXY TCP6 %s ", firsts[i]);
			/* what the second address may take: " 0 0\r\n" */
			room = PROXY_V1_MAX - head - 6;
			len = strlen(seconds[j]);
			for (k = 0; k <= len; k++) {
				memcpy(line + head, seconds[j], k);
				memcpy(text, seconds[j], k);
				want = k <= room && completes(text, k,
				    room - k < FIT_DEPTH ? room - k :
				    FIT_DEPTH) ? PROXY_NEED_MORE : PROXY_ERROR;
				rc = parse(line, head + k, &ph);
				if (rc != want)
					fail_msg("\"%.*s\": %d, expected %d",
					    (int)(head + k), line, rc, want);
			}
		}
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_whole),
		cmocka_unit_test(test_valid_split_every_offset),
		cmocka_unit_test(test_valid_connection),
		cmocka_unit_test(test_v2_whole_header_needed),
		cmocka_unit_test(test_tlv_iterator),
		cmocka_unit_test(test_crc32c),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_cut_off),
		cmocka_unit_test(test_address_texts),
		cmocka_unit_test(test_length_bound),
	};

	return cmocka_run_group_tests(tests, setup_cases, NULL);
}
