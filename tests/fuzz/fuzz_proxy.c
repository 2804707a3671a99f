/*
 * Fuzz target for the PROXY protocol header parser (src/proxy.c).
 *
 * The input is the start of a connection on a proxy_listen address.  It
 * is parsed three ways:
 *
 *  1. whole: proxy_parse() on the complete input;
 *  2. prefixes: on every prefix of up to PROXY_NEED_MAX + 1 bytes.  The
 *     answers must be NEED_MORE up to some length and from there on the
 *     same DONE or ERROR: a byte that proves the header wrong stays wrong,
 *     and a header once complete does not change with what follows;
 *  3. split: the bytes delivered in pieces whose sizes come from a
 *     generator seeded with a hash of the input.  Like a worker, the
 *     unconsumed bytes are kept and the next piece appended until the
 *     parser answers; each buffer is allocated at its exact size so that
 *     AddressSanitizer sees any read past its end.
 *
 * Every answer is checked against the bytes on its own, independently of
 * the parser: a v1 line is split at its spaces and its fields read with
 * inet_pton() and strtoul(); a v2 header is read at its fixed offsets and
 * its TLV block walked with proxy_tlv_next(), which must tile it exactly
 * (an SSL TLV's sub-TLVs too), with a CRC32C recomputed bit by bit;
 * NEED_MORE must leave a proper prefix of a header.  All three ways must
 * agree on the answer, the length of the header, its TLV block, the
 * version and the addresses.
 *
 * A violated invariant prints what failed and aborts.  The file builds as
 * a libFuzzer target (clang -fsanitize=fuzzer) or, linked with replay.c,
 * as a plain program that replays the corpus in `make check`.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy.h"
#include "fuzz.h"

static const unsigned char v2_sig[12] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a
};

/* What one answer says about the connection, offsets from its start. */
struct outcome {
	int			 o_rc;
	size_t			 o_end;	/* DONE: consumed */
	size_t			 o_tlv_off;
	size_t			 o_tlv_len;
	int			 o_version;
	int			 o_local;
	struct sockaddr_storage	 o_src;
	struct sockaddr_storage	 o_dst;
};

static void
outcome_from(struct outcome *o, int rc, const struct proxy_header *ph)
{
	memset(o, 0, sizeof(*o));
	o->o_rc = rc;
	if (rc != PROXY_DONE)
		return;
	o->o_end = ph->ph_consumed;
	o->o_tlv_off = ph->ph_tlv_off;
	o->o_tlv_len = ph->ph_tlv_len;
	o->o_version = ph->ph_version;
	o->o_local = ph->ph_local;
	memcpy(&o->o_src, &ph->ph_src, sizeof(o->o_src));
	memcpy(&o->o_dst, &ph->ph_dst, sizeof(o->o_dst));
}

static void
compare(const struct outcome *a, const struct outcome *b, const char *what)
{
	if (a->o_rc != b->o_rc || a->o_end != b->o_end ||
	    a->o_tlv_off != b->o_tlv_off || a->o_tlv_len != b->o_tlv_len ||
	    a->o_version != b->o_version || a->o_local != b->o_local ||
	    memcmp(&a->o_src, &b->o_src, sizeof(a->o_src)) != 0 ||
	    memcmp(&a->o_dst, &b->o_dst, sizeof(a->o_dst)) != 0) {
		fprintf(stderr, "%s: rc %d end %zu version %d local %d, "
		    "whole: rc %d end %zu version %d local %d\n", what,
		    b->o_rc, b->o_end, b->o_version, b->o_local, a->o_rc,
		    a->o_end, a->o_version, a->o_local);
		CHECK(!"answers differ");
	}
}

static int
is_zero(const void *p, size_t len)
{
	const unsigned char	*b = p;
	size_t			 i;

	for (i = 0; i < len; i++)
		if (b[i] != 0)
			return 0;
	return 1;
}

/* ss holds exactly this address and port (network order). */
static void
check_addr(const struct sockaddr_storage *ss, int af, const void *addr,
    const void *port)
{
	struct sockaddr_in	 sin;
	struct sockaddr_in6	 sin6;

	CHECK(ss->ss_family == af);
	if (af == AF_INET) {
		memcpy(&sin, ss, sizeof(sin));
		CHECK(memcmp(&sin.sin_addr, addr, 4) == 0);
		CHECK(memcmp(&sin.sin_port, port, 2) == 0);
		CHECK(is_zero((const char *)ss + sizeof(sin),
		    sizeof(*ss) - sizeof(sin)));
	} else {
		memcpy(&sin6, ss, sizeof(sin6));
		CHECK(memcmp(&sin6.sin6_addr, addr, 16) == 0);
		CHECK(memcmp(&sin6.sin6_port, port, 2) == 0);
		CHECK(sin6.sin6_flowinfo == 0 && sin6.sin6_scope_id == 0);
		CHECK(is_zero((const char *)ss + sizeof(sin6),
		    sizeof(*ss) - sizeof(sin6)));
	}
}

/* A port as the text spells it: 1-5 digits, no leading zero, <= 65535. */
static int
read_port(const char *s, size_t n, uint16_t *port)
{
	char		 text[8], *end;
	unsigned long	 v;
	size_t		 i;

	if (n == 0 || n > 5 || (s[0] == '0' && n > 1))
		return 0;
	for (i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return 0;
	memcpy(text, s, n);
	text[n] = '\0';
	v = strtoul(text, &end, 10);
	if (*end != '\0' || v > 65535)
		return 0;
	*port = htons((uint16_t)v);
	return 1;
}

/* A DONE v1 line, buf[0..n) with its CRLF. */
static void
check_v1(const char *buf, size_t n, const struct proxy_header *ph)
{
	const char	*tok[6], *p, *end = buf + n - 2;
	size_t		 tlen[6], ntok = 0;
	char		 text[64], back[INET6_ADDRSTRLEN];
	unsigned char	 addr[2][16];
	uint16_t	 port[2];
	int		 af, i;

	CHECK(ph->ph_tlv_off == 0 && ph->ph_tlv_len == 0);
	CHECK(n <= PROXY_V1_MAX);
	CHECK(n >= 2 && buf[n - 2] == '\r' && buf[n - 1] == '\n');
	CHECK(memchr(buf, '\n', n - 1) == NULL);
	CHECK(memchr(buf, '\r', n - 2) == NULL);
	if (n >= 15 && memcmp(buf, "PROXY UNKNOWN", 13) == 0 &&
	    (buf[13] == ' ' || buf[13] == '\r')) {
		CHECK(ph->ph_local == 1);
		CHECK(is_zero(&ph->ph_src, sizeof(ph->ph_src)));
		CHECK(is_zero(&ph->ph_dst, sizeof(ph->ph_dst)));
		return;
	}
	CHECK(ph->ph_local == 0);

	/* Exactly six fields, single spaces, nothing empty. */
	for (p = buf; p <= end; p++) {
		CHECK(ntok < 6);
		tok[ntok] = p;
		while (p < end && *p != ' ')
			p++;
		tlen[ntok] = (size_t)(p - tok[ntok]);
		CHECK(tlen[ntok] > 0);
		ntok++;
	}
	CHECK(ntok == 6);
	CHECK(tlen[0] == 5 && memcmp(tok[0], "PROXY", 5) == 0);
	CHECK(tlen[1] == 4 && (memcmp(tok[1], "TCP4", 4) == 0 ||
	    memcmp(tok[1], "TCP6", 4) == 0));
	af = tok[1][3] == '4' ? AF_INET : AF_INET6;
	for (i = 0; i < 2; i++) {
		CHECK(tlen[2 + i] < sizeof(text));
		memcpy(text, tok[2 + i], tlen[2 + i]);
		text[tlen[2 + i]] = '\0';
		CHECK(inet_pton(af, text, addr[i]) == 1);
		/* Dotted decimal has one spelling: it comes back the same. */
		if (af == AF_INET) {
			CHECK(inet_ntop(af, addr[i], back, sizeof(back)) !=
			    NULL);
			CHECK(strcmp(back, text) == 0);
		}
		CHECK(read_port(tok[4 + i], tlen[4 + i], &port[i]));
	}
	check_addr(&ph->ph_src, af, addr[0], &port[0]);
	check_addr(&ph->ph_dst, af, addr[1], &port[1]);
}

/* The address block of a v2 fam for PROXY: its size, or -1 if refused. */
static int
v2_block(unsigned char fam)
{
	switch (fam) {
	case 0x00:
		return 0;
	case 0x11:
		return 12;
	case 0x21:
		return 36;
	case 0x31:
		return 216;
	default:
		return -1;
	}
}

static uint32_t
be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

/* CRC32C, bit by bit, of b[0..len) with the 4 bytes at hole as zeroes. */
static uint32_t
crc32c_bitwise(const unsigned char *b, size_t len, size_t hole)
{
	uint32_t	 crc = 0xffffffff;
	size_t		 i;
	int		 k;

	for (i = 0; i < len; i++) {
		crc ^= i >= hole && i < hole + 4 ? 0 : b[i];
		for (k = 0; k < 8; k++)
			crc = crc & 1 ? (crc >> 1) ^ 0x82f63b78 : crc >> 1;
	}
	return ~crc;
}

/*
 * Walks block[0..len) with proxy_tlv_next(): each TLV starts where the
 * last ended, its value right after its 3-byte head, and the walk ends
 * exactly at len (returns 1) or fails (returns 0) with *off unchanged.
 * *crc: the offset in block of the only CRC32C value, or (size_t)-1.
 */
static int
tile(const unsigned char *block, size_t len, int top, size_t *crc)
{
	struct proxy_tlv	 t;
	size_t			 off = 0, prev = 0;
	int			 rc;

	while ((rc = proxy_tlv_next(block, len, &off, &t)) == 1) {
		CHECK(t.pt_value == block + prev + 3);
		CHECK(t.pt_type == block[prev]);
		CHECK(t.pt_len == ((size_t)block[prev + 1] << 8 |
		    block[prev + 2]));
		CHECK(off == prev + 3 + t.pt_len && off <= len);
		prev = off;
		if (!top)
			continue;
		switch (t.pt_type) {
		case PROXY_TLV_CRC32C:
			if (t.pt_len != 4 || *crc != (size_t)-1)
				return 0;
			*crc = (size_t)(t.pt_value - block);
			break;
		case PROXY_TLV_UNIQUE_ID:
			if (t.pt_len > PROXY_TLV_UNIQUE_ID_MAX)
				return 0;
			break;
		case PROXY_TLV_SSL:
			if (t.pt_len < PROXY_TLV_SSL_HEAD ||
			    !tile(t.pt_value + PROXY_TLV_SSL_HEAD,
			    t.pt_len - PROXY_TLV_SSL_HEAD, 0, crc))
				return 0;
			break;
		}
	}
	CHECK(off == prev);
	if (rc == -1)
		return 0;
	CHECK(rc == 0 && off == len);
	return 1;
}

/* A DONE v2 header at the start of buf[0..len). */
static void
check_v2(const unsigned char *b, size_t len, const struct proxy_header *ph)
{
	struct proxy_tlv	 t;
	size_t			 total, crc = (size_t)-1;
	int			 local, block;

	CHECK(len >= PROXY_V2_FIXED && ph->ph_consumed >= PROXY_V2_FIXED);
	CHECK(memcmp(b, v2_sig, sizeof(v2_sig)) == 0);
	CHECK(b[12] == 0x20 || b[12] == 0x21);
	local = b[12] == 0x20;
	block = local ? 0 : v2_block(b[13]);
	CHECK(block >= 0);
	total = PROXY_V2_FIXED + ((size_t)b[14] << 8 | b[15]);
	CHECK(total <= PROXY_V2_MAX);
	CHECK(total >= PROXY_V2_FIXED + (size_t)block);
	/* The whole header, TLVs included, and nothing after it. */
	CHECK(ph->ph_consumed == total && total <= len);
	if (local) {
		CHECK(ph->ph_tlv_off == 0 && ph->ph_tlv_len == 0);
	} else {
		CHECK(ph->ph_tlv_off == PROXY_V2_FIXED + (size_t)block);
		CHECK(ph->ph_tlv_off + ph->ph_tlv_len == total);
		/* The iterated TLVs tile the block exactly, and the type
		 * rules hold; a CRC32C matches, computed another way. */
		CHECK(tile(b + ph->ph_tlv_off, ph->ph_tlv_len, 1, &crc));
		if (crc != (size_t)-1) {
			crc += ph->ph_tlv_off;
			CHECK(crc32c_bitwise(b, total, crc) == be32(b + crc));
			CHECK(proxy_tlv_find(b + ph->ph_tlv_off,
			    ph->ph_tlv_len, PROXY_TLV_CRC32C, &t) == 1);
			CHECK(t.pt_value == b + crc);
		}
	}
	if (local || b[13] == 0x00 || b[13] == 0x31) {
		CHECK(ph->ph_local == 1);
		CHECK(is_zero(&ph->ph_src, sizeof(ph->ph_src)));
		CHECK(is_zero(&ph->ph_dst, sizeof(ph->ph_dst)));
		return;
	}
	CHECK(ph->ph_local == 0);
	b += PROXY_V2_FIXED;
	if (block == 12) {
		check_addr(&ph->ph_src, AF_INET, b, b + 8);
		check_addr(&ph->ph_dst, AF_INET, b + 4, b + 10);
	} else {
		check_addr(&ph->ph_src, AF_INET6, b, b + 32);
		check_addr(&ph->ph_dst, AF_INET6, b + 16, b + 34);
	}
}

/* buf[0..len) is a proper prefix of a header, as far as simple rules
 * tell (the v1 addresses are left to the prefix sweep). */
static void
check_prefix(const char *buf, size_t len)
{
	const unsigned char	*b = (const unsigned char *)buf;
	size_t			 k, total, o;
	int			 block;

	CHECK(len < PROXY_NEED_MAX);
	if (len == 0)
		return;
	if (buf[0] == 'P') {
		CHECK(len < PROXY_V1_MAX);
		k = len < 6 ? len : 6;
		CHECK(memcmp(buf, "PROXY ", k) == 0);
		CHECK(memchr(buf, '\n', len) == NULL);
		CHECK(memchr(buf, '\r', len - 1) == NULL);
		return;
	}
	k = len < sizeof(v2_sig) ? len : sizeof(v2_sig);
	CHECK(memcmp(b, v2_sig, k) == 0);
	if (len <= 12)
		return;
	CHECK(b[12] == 0x20 || b[12] == 0x21);
	if (len <= 13)
		return;
	block = b[12] == 0x20 ? 0 : v2_block(b[13]);
	CHECK(block >= 0);
	if (len < PROXY_V2_FIXED)
		return;
	total = PROXY_V2_FIXED + ((size_t)b[14] << 8 | b[15]);
	CHECK(total >= PROXY_V2_FIXED + (size_t)block);
	CHECK(total <= PROXY_V2_MAX);
	/* Short of its end: every TLV head that arrived fits in it. */
	CHECK(len < total);
	if (b[12] == 0x20)
		return;
	for (o = PROXY_V2_FIXED + (size_t)block; o < total;
	    o += 3 + ((size_t)b[o + 1] << 8 | b[o + 2])) {
		CHECK(total - o >= 3);
		if (o + 3 > len)
			break;
		CHECK(((size_t)b[o + 1] << 8 | b[o + 2]) <= total - o - 3);
	}
}

/* One call on buf[0..len): checks the answer and returns it. */
static int
parse_checked(const char *buf, size_t len, struct proxy_header *ph)
{
	int	 rc;

	rc = proxy_parse(buf, len, ph);
	switch (rc) {
	case PROXY_DONE:
		CHECK(ph->ph_consumed > 0 && ph->ph_consumed <= len);
		if (ph->ph_version == 1)
			check_v1(buf, ph->ph_consumed, ph);
		else {
			CHECK(ph->ph_version == 2);
			check_v2((const unsigned char *)buf, len, ph);
		}
		break;
	case PROXY_NEED_MORE:
		check_prefix(buf, len);
		/* FALLTHROUGH */
	case PROXY_ERROR:
		CHECK(ph->ph_consumed == 0 && ph->ph_tlv_off == 0 &&
		    ph->ph_tlv_len == 0);
		break;
	default:
		CHECK(!"unknown result");
	}
	return rc;
}

/* 2. Every prefix: NEED_MORE, then one answer that does not change. */
static void
run_prefixes(const char *buf, size_t len, const struct outcome *whole)
{
	struct proxy_header	 ph;
	struct outcome		 o, first;
	size_t			 k, max;
	int			 rc, answered = 0;

	max = len < PROXY_NEED_MAX + 1 ? len : PROXY_NEED_MAX + 1;
	for (k = 0; k <= max; k++) {
		rc = parse_checked(buf, k, &ph);
		if (!answered) {
			if (rc == PROXY_NEED_MORE)
				continue;
			answered = 1;
			outcome_from(&first, rc, &ph);
			continue;
		}
		outcome_from(&o, rc, &ph);
		compare(&first, &o, "longer prefix");
	}
	if (answered)
		compare(whole, &first, "prefix");
	else
		CHECK(whole->o_rc == PROXY_NEED_MORE);
}

/* 3. The input in pieces, buffered the way a worker does it. */
static void
run_split(const char *data, size_t len, uint32_t seed,
    const struct outcome *whole)
{
	struct proxy_header	 ph;
	struct outcome		 o;
	char			*buf, *pend = NULL;
	size_t			 plen = 0, pos = 0, n;
	uint32_t		 rs = seed * 2654435761u + 0x9e3779b9u;
	int			 rc = PROXY_NEED_MORE;

	if (rs == 0)
		rs = 1;
	memset(&ph, 0, sizeof(ph));
	while (pos < len && rc == PROXY_NEED_MORE) {
		n = fuzz_piece_size(&rs, len - pos, 64, 512);
		CHECK((buf = malloc(plen + n)) != NULL);
		if (plen > 0)
			memcpy(buf, pend, plen);
		memcpy(buf + plen, data + pos, n);
		pos += n;
		plen += n;
		free(pend);
		pend = buf;
		/* Nothing is consumed before the answer: plen == pos. */
		rc = parse_checked(buf, plen, &ph);
	}
	free(pend);
	if (len == 0)
		rc = parse_checked("", 0, &ph);
	outcome_from(&o, rc, &ph);
	compare(whole, &o, "split");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char		*buf = (const char *)data;
	struct proxy_header	 ph;
	struct outcome		 whole;
	uint32_t		 hash = 2166136261u;
	size_t			 i;
	int			 rc;

	/* 1. */
	rc = parse_checked(buf, size, &ph);
	outcome_from(&whole, rc, &ph);
	if (size >= PROXY_NEED_MAX)
		CHECK(rc != PROXY_NEED_MORE);
	if (rc == PROXY_DONE && ph.ph_version == 1)
		CHECK(ph.ph_consumed <= PROXY_V1_MAX);

	run_prefixes(buf, size, &whole);

	for (i = 0; i < size; i++)
		hash = (hash ^ data[i]) * 16777619u;
	run_split(buf, size, hash, &whole);
	return 0;
}
