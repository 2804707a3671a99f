/*
 * Fuzz target for the client address behind trusted proxies
 * (src/client.c).
 *
 * The first byte selects what the rest is for:
 *
 *	bits 0-1	the header: none, X-Forwarded-For, X-Real-IP, Forwarded
 *	bits 2-4	the connection's address, one of peers[] (an untrusted
 *			one, an IPv4-mapped one, a UNIX socket's among them)
 *	bits 5-6	the trust list, one of trust_text[]
 *	bit 7		the rest is also parsed as a trust list and as a
 *			header name
 *
 * The rest is split on '\n' into field-line values, handed to
 * client_walk() as they are (untrimmed), each in a buffer of its exact
 * size so that AddressSanitizer sees any read past its end.
 *
 * Checked: the result is normalized (no IPv4-mapped IPv6, unused bytes
 * zero); with no header, an untrusted connection address, or X-Real-IP
 * without exactly one line, it is the connection's address unchanged; an
 * address that changed prints with client_text() in address characters
 * only and parses back with inet_pton() to the same bytes.  And the
 * result must be the walk as it is specified, from the right: the lines
 * are cut into elements (at every comma for X-Forwarded-For, at commas
 * outside quoted-strings for Forwarded), and each element, walked on its
 * own from a trusted sentinel, is the parser that says whether it is an
 * address and which.  client.c itself walks from the left in one pass;
 * this compares the two.
 *
 * A parsed trust list must hold valid networks (family, prefix length,
 * zero bits past the prefix, IPv4-mapped ones stored as IPv4); a refused
 * one must leave an empty list and an error message.
 *
 * A violated invariant prints what failed and aborts.  The file builds as
 * a libFuzzer target (clang -fsanitize=fuzzer) or, linked with replay.c,
 * as a plain program that replays the corpus in `make check`.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "client.h"
#include "fuzz.h"

static const char *const peers[8] = {
	"10.0.0.1", "192.0.2.77", "2001:db8::5", "::ffff:10.0.0.2",
	"203.0.113.9", "::1", NULL /* a UNIX socket */, "198.51.100.7",
};

static const char *const trust_text[4] = {
	("10.0.0.0/8 192.0.2.0/24 2001:db8::/32 ::1 127.0.0.1 "
	    "::ffff:198.51.100.0/120"),
	"0.0.0.0/0 ::/0",
	"",
	"192.0.2.77 2001:db8::5/128 172.16.0.0/12 fe80::/10 10.0.0.0/30",
};

static struct client_trust	 trusts[4], trust_all;
static struct client_addr	 sentinel1, sentinel2;
static int			 ready;

static struct client_addr
addr_from(const char *text)
{
	struct sockaddr_storage	 ss;
	struct sockaddr_in	*sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)&ss;
	struct client_addr	 ca;

	memset(&ss, 0, sizeof(ss));
	if (text == NULL)
		ss.ss_family = AF_UNIX;
	else if (inet_pton(AF_INET, text, &sin->sin_addr) == 1)
		sin->sin_family = AF_INET;
	else {
		CHECK(inet_pton(AF_INET6, text, &sin6->sin6_addr) == 1);
		sin6->sin6_family = AF_INET6;
	}
	client_from_sockaddr(&ca, &ss);
	return ca;
}

static void
setup(void)
{
	char		 err[256];
	unsigned	 i;

	for (i = 0; i < 4; i++)
		CHECK(client_trust_parse(trust_text[i], &trusts[i], err,
		    sizeof(err)) == 0);
	CHECK(client_trust_parse("0.0.0.0/0 ::/0", &trust_all, err,
	    sizeof(err)) == 0);
	sentinel1 = addr_from("192.0.2.1");
	sentinel2 = addr_from("192.0.2.2");
	ready = 1;
}

static int
same(const struct client_addr *a, const struct client_addr *b)
{
	return memcmp(a, b, sizeof(*a)) == 0;
}

static const uint8_t	 v4mapped[12] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
};

/* Normalized, printable, and parsed back to itself. */
static void
check_addr(const struct client_addr *ca)
{
	static const uint8_t	 zero[16];
	char			 buf[CLIENT_ADDR_MAX];
	uint8_t			 back[16];
	size_t			 n, i;

	n = client_text(ca, buf, sizeof(buf));
	CHECK(n == strlen(buf) && n > 0 && n < sizeof(buf));
	switch (ca->ca_family) {
	case 0:
		CHECK(memcmp(ca->ca_addr, zero, 16) == 0);
		CHECK(strcmp(buf, "unknown") == 0);
		return;
	case AF_INET:
		CHECK(memcmp(ca->ca_addr + 4, zero, 12) == 0);
		break;
	case AF_INET6:
		CHECK(memcmp(ca->ca_addr, v4mapped, 12) != 0);
		break;
	default:
		CHECK(!"unknown family");
	}
	for (i = 0; i < n; i++)
		CHECK(strchr("0123456789abcdef.:", buf[i]) != NULL);
	CHECK(inet_pton(ca->ca_family, buf, back) == 1);
	CHECK(memcmp(back, ca->ca_addr, ca->ca_family == AF_INET ? 4 : 16) ==
	    0);
}

/* One element walked on its own: whether it is an address, and which. */
static int
probe(enum client_header h, const char *s, size_t len,
    struct client_addr *out)
{
	struct client_field	 f;
	struct client_addr	 a = sentinel1, b = sentinel2;
	char			*copy;

	CHECK((copy = malloc(len > 0 ? len : 1)) != NULL);
	memcpy(copy, s, len);
	f.cf_value = copy;
	f.cf_len = len;
	client_walk(h, &trust_all, &f, 1, &a);
	client_walk(h, &trust_all, &f, 1, &b);
	free(copy);
	if (same(&a, &sentinel1) && same(&b, &sentinel2))
		return 0;
	CHECK(same(&a, &b));
	check_addr(&a);
	*out = a;
	return 1;
}

/* Where the element at i ends: the next comma, outside quotes for
 * Forwarded. */
static size_t
element_end(enum client_header h, const char *v, size_t len, size_t i)
{
	int	 quoted = 0;

	for (; i < len; i++) {
		if (h == CLIENT_HEADER_FORWARDED && quoted) {
			if (v[i] == '\\' && i + 1 < len)
				i++;
			else if (v[i] == '"')
				quoted = 0;
		} else if (h == CLIENT_HEADER_FORWARDED && v[i] == '"')
			quoted = 1;
		else if (v[i] == ',')
			break;
	}
	return i;
}

struct element {
	const char	*el_s;
	size_t		 el_len;
};

/* The walk as specified: from the right, one element at a time. */
static struct client_addr
reference(enum client_header h, const struct client_trust *ct,
    const struct client_field *f, unsigned n, struct client_addr cur,
    size_t total)
{
	struct element		*el;
	struct client_addr	 next;
	size_t			 nel = 0, s, e, k;
	unsigned		 i;

	if (!client_trust_match(ct, &cur))
		return cur;
	if (h == CLIENT_HEADER_XREALIP) {
		if (n == 1 && probe(h, f[0].cf_value, f[0].cf_len, &next))
			cur = next;
		return cur;
	}
	if (h != CLIENT_HEADER_XFF && h != CLIENT_HEADER_FORWARDED)
		return cur;

	CHECK((el = malloc((total + n + 1) * sizeof(*el))) != NULL);
	for (i = 0; i < n; i++)
		for (s = 0;; s = e + 1) {
			e = element_end(h, f[i].cf_value, f[i].cf_len, s);
			el[nel].el_s = f[i].cf_value + s;
			el[nel].el_len = e - s;
			nel++;
			if (e == f[i].cf_len)
				break;
		}
	for (k = nel; k > 0; k--) {
		if (!client_trust_match(ct, &cur))
			break;
		if (!probe(h, el[k - 1].el_s, el[k - 1].el_len, &next))
			break;
		cur = next;
	}
	free(el);
	return cur;
}

static void
check_trust_text(const uint8_t *data, size_t size,
    const struct client_addr *peer)
{
	struct client_trust	 ct;
	const struct client_net	*cn;
	enum client_header	 h;
	char			*text, err[512];
	uint8_t			 masked[16];
	unsigned		 i, max, full;

	CHECK((text = malloc(size + 1)) != NULL);
	memcpy(text, data, size);
	text[size] = '\0';

	memset(err, 0, sizeof(err));
	if (client_trust_parse(text, &ct, err, sizeof(err)) == 0) {
		CHECK(ct.ct_n <= CLIENT_MAX_TRUSTED);
		for (i = 0; i < ct.ct_n; i++) {
			cn = &ct.ct_nets[i];
			CHECK(cn->cn_family == AF_INET ||
			    cn->cn_family == AF_INET6);
			max = cn->cn_family == AF_INET ? 32 : 128;
			CHECK(cn->cn_bits <= max);
			memcpy(masked, cn->cn_addr, 16);
			full = cn->cn_bits / 8;
			if (cn->cn_bits % 8 != 0)
				masked[full++] &=
				    (uint8_t)(0xff << (8 - cn->cn_bits % 8));
			memset(masked + full, 0, 16 - full);
			CHECK(memcmp(masked, cn->cn_addr, 16) == 0);
			if (cn->cn_family == AF_INET6 && cn->cn_bits >= 96)
				CHECK(memcmp(cn->cn_addr, v4mapped, 12) != 0);
		}
		(void)client_trust_match(&ct, peer);
	} else {
		CHECK(ct.ct_n == 0);
		CHECK(err[0] != '\0');
		CHECK(memchr(err, '\0', sizeof(err)) != NULL);
	}

	if (client_header_parse(text, &h) == 0) {
		if (h == CLIENT_HEADER_NONE)
			CHECK(strcasecmp(text, "none") == 0);
		else
			CHECK(strcasecmp(text, client_header_field(h)) == 0);
	}
	free(text);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct client_trust	*ct;
	struct client_field		*f;
	struct client_addr		 peer, got, want;
	enum client_header		 h;
	const uint8_t			*p, *end, *nl;
	char				*v;
	unsigned			 n = 0, i;

	if (size == 0)
		return 0;
	if (!ready)
		setup();
	h = (enum client_header)(data[0] & 3);
	peer = addr_from(peers[(data[0] >> 2) & 7]);
	ct = &trusts[(data[0] >> 5) & 3];
	data++;
	size--;
	if (data[-1] & 0x80)
		check_trust_text(data, size, &peer);

	/* One field line per '\n'-separated piece, an empty one included. */
	CHECK((f = calloc(size + 1, sizeof(*f))) != NULL);
	for (p = data, end = data + size;; p = nl + 1) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			nl = end;
		f[n].cf_len = (size_t)(nl - p);
		CHECK((v = malloc(f[n].cf_len > 0 ? f[n].cf_len : 1)) != NULL);
		memcpy(v, p, f[n].cf_len);
		f[n].cf_value = v;
		n++;
		if (nl == end)
			break;
	}

	got = peer;
	client_walk(h, ct, f, n, &got);
	check_addr(&got);
	if (h == CLIENT_HEADER_NONE || !client_trust_match(ct, &peer) ||
	    (h == CLIENT_HEADER_XREALIP && n != 1))
		CHECK(same(&got, &peer));

	want = reference(h, ct, f, n, peer, size);
	if (!same(&got, &want)) {
		char	 g[CLIENT_ADDR_MAX], w[CLIENT_ADDR_MAX];

		client_text(&got, g, sizeof(g));
		client_text(&want, w, sizeof(w));
		fprintf(stderr, "walk %s, from the right %s\n", g, w);
		CHECK(!"the walk differs from the walk from the right");
	}

	for (i = 0; i < n; i++)
		free((char *)f[i].cf_value);
	free(f);
	return 0;
}
