/*
 * PROXY protocol header parser, v1 and v2 (HAProxy doc/proxy-protocol.txt).
 *
 * proxy_parse() rescans buf from its start on every call: a v1 line is at
 * most 107 bytes and a v2 header at most PROXY_V2_MAX, walked TLV by TLV
 * (its CRC32C, if any, is computed once, when the header is whole), so
 * nothing is worth keeping between calls.  It answers NEED_MORE only for
 * a proper prefix of some header it would accept, and ERROR as soon as
 * the bytes rule that out: at the first byte no valid header has there,
 * when the shortest completion of a v1 line would not fit in 107 bytes,
 * when a v2 length is over PROXY_V2_MAX, or at the first TLV that cannot
 * end with the header.  A wrong CRC32C shows only at the last byte.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <stdint.h>
#include <string.h>

#include "proxy.h"

#define IS_DIGIT(c)	((c) >= '0' && (c) <= '9')
#define IS_XDIGIT(c)	(IS_DIGIT(c) || ((c) >= 'a' && (c) <= 'f') || \
			    ((c) >= 'A' && (c) <= 'F'))

/* From a *_need() scanner: no bytes appended make the text valid. */
#define NEVER		(-1)

static void
set_inet(struct sockaddr_storage *ss, int af, const void *addr,
    const void *port)
{
	struct sockaddr_in	 sin;
	struct sockaddr_in6	 sin6;

	/* addr and port in network byte order */
	if (af == AF_INET) {
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		memcpy(&sin.sin_addr, addr, sizeof(sin.sin_addr));
		memcpy(&sin.sin_port, port, sizeof(sin.sin_port));
		memcpy(ss, &sin, sizeof(sin));
	} else {
		memset(&sin6, 0, sizeof(sin6));
		sin6.sin6_family = AF_INET6;
		memcpy(&sin6.sin6_addr, addr, sizeof(sin6.sin6_addr));
		memcpy(&sin6.sin6_port, port, sizeof(sin6.sin6_port));
		memcpy(ss, &sin6, sizeof(sin6));
	}
}

/* ------------------------------------------------------------------ */
/* v1: "PROXY TCP4 src dst sport dport\r\n"                            */
/* ------------------------------------------------------------------ */

/*
 * The *_need() scanners return the fewest bytes that, appended to
 * s[0..n), give a complete valid field (0: it is one already), or NEVER.
 * A field is checked on every call, complete or not, so that a bad byte
 * fails the header the moment it arrives.
 */

/*
 * Dotted-decimal IPv4 as inet_pton(AF_INET) takes it: four decimal parts,
 * each 0-255, no leading zeros (so 010.1.1.1 is not octal 8, it is
 * invalid).
 */
static int
ip4_need(const char *s, size_t n)
{
	size_t		 i;
	unsigned	 dots = 0, digits = 0, val = 0;

	for (i = 0; i < n; i++) {
		if (s[i] == '.') {
			if (digits == 0 || dots == 3)
				return NEVER;
			dots++;
			digits = val = 0;
		} else if (IS_DIGIT(s[i])) {
			if (digits > 0 && val == 0)
				return NEVER;
			val = val * 10 + (unsigned)(s[i] - '0');
			if (val > 255)
				return NEVER;
			digits++;
		} else
			return NEVER;
	}
	/* A digit to end the current part, then ".0" per missing part. */
	return (digits == 0) + 2 * (int)(3 - dots);
}

/*
 * IPv6 text as glibc's inet_pton(AF_INET6) takes it (RFC 4291 2.2): groups
 * of 1-4 hex digits, eight of them, or at most seven and one "::" standing
 * for the rest; the last two groups may be written as dotted IPv4, which
 * then ends the text.  A single colon neither starts nor ends it.
 */
static int
ip6_need(const char *s, size_t n)
{
	/* part: where this group starts; open: "g:" wants a group */
	size_t		 i = 0, part = 0;
	unsigned	 groups = 0, xdigits = 0;
	int		 elided = 0, open = 0;

	if (n == 0)
		return 2;			/* "::" */
	if (s[0] == ':') {
		if (n == 1)
			return 1;
		if (s[1] != ':')
			return NEVER;
		i = 1;
	}
	for (; i < n; i++) {
		if (IS_XDIGIT(s[i])) {
			if (xdigits == 4)
				return NEVER;
			xdigits++;
			open = 0;
		} else if (s[i] == ':') {
			part = i + 1;
			if (xdigits == 0) {
				if (elided)
					return NEVER;	/* ":::" */
				elided = 1;
				open = 0;
			} else {
				groups++;
				xdigits = 0;
				open = 1;
			}
		} else if (s[i] == '.') {
			/* This group starts the IPv4 tail: two groups. */
			if (elided ? groups + 2 > 7 : groups + 2 != 8)
				return NEVER;
			return ip4_need(s + part, n - part);
		} else
			return NEVER;
	}
	if (groups + (xdigits > 0 || open) > (elided ? 7u : 8u))
		return NEVER;
	if (open)
		return 1;			/* a digit, or ":" for "::" */
	if (elided || groups == 7)
		return 0;
	return 2;				/* "::" */
}

/* Decimal 0-65535; "0" is the only port that may start with a zero. */
static int
port_need(const char *s, size_t n, uint16_t *port)
{
	size_t		 i;
	unsigned	 v = 0;

	if (n == 0)
		return 1;
	if (s[0] == '0' && n > 1)
		return NEVER;
	for (i = 0; i < n; i++) {
		if (!IS_DIGIT(s[i]))
			return NEVER;
		v = v * 10 + (unsigned)(s[i] - '0');
		if (v > 65535)
			return NEVER;
	}
	*port = htons((uint16_t)v);
	return 0;
}

enum { V1_SRC, V1_DST, V1_SPORT, V1_DPORT, V1_NFIELDS };

/*
 * Bytes that must still follow each complete field: its delimiter, the
 * shortest later fields ("0" for a port) and CRLF.  After the source the
 * shortest destination address is added as well.
 */
static const int v1_after[V1_NFIELDS] = { 7, 6, 4, 2 };

#define V1_TCP_HEAD	(sizeof("PROXY TCP4 ") - 1)
#define V1_UNKNOWN_HEAD	(sizeof("PROXY UNKNOWN") - 1)

/* n is at most PROXY_V1_MAX: a line not done by then never will be. */
static int
v1_tcp(const char *buf, size_t n, int af, struct proxy_header *ph)
{
	union {
		struct in_addr	 v4;
		struct in6_addr	 v6;
	}		 addr[2];
	uint16_t	 port[2];
	char		 text[INET6_ADDRSTRLEN];
	const char	*tok;
	size_t		 p = V1_TCP_HEAD, start, tlen;
	int		 f, need;

	for (f = V1_SRC; f < V1_NFIELDS; f++) {
		start = p;
		while (p < n && buf[p] != (f == V1_DPORT ? '\r' : ' '))
			p++;
		tok = buf + start;
		tlen = p - start;
		if (f == V1_SRC || f == V1_DST)
			need = af == AF_INET ? ip4_need(tok, tlen) :
			    ip6_need(tok, tlen);
		else
			need = port_need(tok, tlen, &port[f - V1_SPORT]);
		if (need == NEVER)
			return PROXY_ERROR;
		if (p == n) {
			need += v1_after[f];
			if (f == V1_SRC)	/* "0.0.0.0", "::" */
				need += af == AF_INET ? 7 : 2;
			return n + (size_t)need > PROXY_V1_MAX ?
			    PROXY_ERROR : PROXY_NEED_MORE;
		}
		if (need > 0)		/* includes an empty field: "  " */
			return PROXY_ERROR;
		/* The scan above follows glibc; inet_pton() has the last
		 * word, as another libc may be stricter. */
		if (f == V1_SRC || f == V1_DST) {
			if (tlen >= sizeof(text))
				return PROXY_ERROR;
			memcpy(text, tok, tlen);
			text[tlen] = '\0';
			if (inet_pton(af, text, &addr[f]) != 1)
				return PROXY_ERROR;
		}
		p++;
	}
	if (p == n)
		return n + 1 > PROXY_V1_MAX ? PROXY_ERROR : PROXY_NEED_MORE;
	if (buf[p] != '\n')
		return PROXY_ERROR;
	set_inet(&ph->ph_src, af, &addr[V1_SRC], &port[0]);
	set_inet(&ph->ph_dst, af, &addr[V1_DST], &port[1]);
	ph->ph_consumed = p + 1;
	ph->ph_version = 1;
	return PROXY_DONE;
}

/*
 * "PROXY UNKNOWN", then anything up to CRLF, which the receiver must
 * ignore.  The word itself must end there: "UNKNOWNX" is no protocol.
 */
static int
v1_unknown(const char *buf, size_t n, struct proxy_header *ph)
{
	size_t	 p = V1_UNKNOWN_HEAD;

	if (p == n)
		return PROXY_NEED_MORE;
	if (buf[p] != ' ' && buf[p] != '\r')
		return PROXY_ERROR;
	for (; p < n && buf[p] != '\r'; p++)
		if (buf[p] == '\n')
			return PROXY_ERROR;
	if (p + 1 >= n)
		return n + (p == n ? 2 : 1) > PROXY_V1_MAX ?
		    PROXY_ERROR : PROXY_NEED_MORE;
	if (buf[p + 1] != '\n')
		return PROXY_ERROR;
	ph->ph_consumed = p + 2;
	ph->ph_version = 1;
	ph->ph_local = 1;
	return PROXY_DONE;
}

static int
v1_parse(const char *buf, size_t len, struct proxy_header *ph)
{
	static const struct {
		const char	*v_head;
		int		 v_af;	/* AF_UNSPEC: UNKNOWN */
	} heads[] = {
		{ "PROXY TCP4 ", AF_INET },
		{ "PROXY TCP6 ", AF_INET6 },
		{ "PROXY UNKNOWN", AF_UNSPEC },
	};
	size_t	 n = len < PROXY_V1_MAX ? len : PROXY_V1_MAX, hlen, i;

	for (i = 0; i < sizeof(heads) / sizeof(heads[0]); i++) {
		hlen = strlen(heads[i].v_head);
		if (memcmp(buf, heads[i].v_head, n < hlen ? n : hlen) != 0)
			continue;
		if (n < hlen)
			return PROXY_NEED_MORE;
		if (heads[i].v_af == AF_UNSPEC)
			return v1_unknown(buf, n, ph);
		return v1_tcp(buf, n, heads[i].v_af, ph);
	}
	return PROXY_ERROR;
}

/* ------------------------------------------------------------------ */
/* v2: signature, ver_cmd, fam, length (network order), addresses, TLVs */
/* ------------------------------------------------------------------ */

static const unsigned char v2_sig[] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a
};

#define V2_SIG_LEN	sizeof(v2_sig)
#define V2_VERSION	0x20		/* high nibble of ver_cmd */
#define V2_LOCAL	0x00		/* low nibble of ver_cmd */
#define V2_PROXY	0x01

/* fam: address family in the high nibble, transport in the low one. */
#define V2_UNSPEC	0x00
#define V2_TCP4		0x11
#define V2_TCP6		0x21
#define V2_UNIX_STREAM	0x31

#define V2_INET_LEN	12
#define V2_INET6_LEN	36
#define V2_UNIX_LEN	216

/*
 * CRC32C (Castagnoli, reflected polynomial 0x82f63b78), four bits at a
 * time: crc32c_table[i] is the remainder of the nibble i.
 */
static const uint32_t crc32c_table[16] = {
	0x00000000, 0x105ec76f, 0x20bd8ede, 0x30e349b1,
	0x417b1dbc, 0x5125dad3, 0x61c69362, 0x7198540d,
	0x82f63b78, 0x92a8fc17, 0xa24bb5a6, 0xb21572c9,
	0xc38d26c4, 0xd3d3e1ab, 0xe330a81a, 0xf36e6f75
};

/* The CRC32C of b[0..len) with the 4 bytes at hole read as zeroes. */
static uint32_t
crc32c_holed(const unsigned char *b, size_t len, size_t hole)
{
	uint32_t	 crc = 0xffffffff;
	size_t		 i;

	for (i = 0; i < len; i++) {
		crc ^= i - hole < 4 ? 0 : b[i];
		crc = (crc >> 4) ^ crc32c_table[crc & 0x0f];
		crc = (crc >> 4) ^ crc32c_table[crc & 0x0f];
	}
	return crc ^ 0xffffffff;
}

int
proxy_tlv_next(const uint8_t *block, size_t len, size_t *off,
    struct proxy_tlv *out)
{
	size_t	 o = *off, vlen;

	if (o >= len)
		return o == len ? 0 : -1;
	if (len - o < PROXY_TLV_HEAD)
		return -1;
	vlen = (size_t)block[o + 1] << 8 | block[o + 2];
	if (len - o - PROXY_TLV_HEAD < vlen)
		return -1;
	out->pt_type = block[o];
	out->pt_len = (uint16_t)vlen;
	out->pt_value = block + o + PROXY_TLV_HEAD;
	*off = o + PROXY_TLV_HEAD + vlen;
	return 1;
}

int
proxy_tlv_find(const uint8_t *block, size_t len, uint8_t type,
    struct proxy_tlv *out)
{
	size_t	 off = 0;

	while (proxy_tlv_next(block, len, &off, out) == 1)
		if (out->pt_type == type)
			return 1;
	return 0;
}

/* An SSL TLV's value: client, verify, then sub-TLVs that tile the rest. */
static int
v2_ssl_valid(const unsigned char *v, size_t len)
{
	struct proxy_tlv	 t;
	size_t			 off = 0;
	int			 rc;

	if (len < PROXY_TLV_SSL_HEAD)
		return 0;
	v += PROXY_TLV_SSL_HEAD;
	len -= PROXY_TLV_SSL_HEAD;
	while ((rc = proxy_tlv_next(v, len, &off, &t)) == 1)
		;
	return rc == 0;
}

/*
 * The TLVs of b[from..total), walked as far as b[0..avail) reaches:
 * -1 at the first one that cannot end by total or breaks its type's rule
 * (an SSL TLV's once its value is whole), 0 when none does; with avail ==
 * total, 0 means that they tile b[from..total) exactly.  *crc: where the
 * value of the CRC32C TLV is (0: none).  Only one CRC32C TLV is taken: a
 * second could not be verified.
 */
static int
v2_tlvs(const unsigned char *b, size_t avail, size_t from, size_t total,
    size_t *crc)
{
	size_t	 o = from, vlen;

	*crc = 0;
	/* from <= total and avail <= total; o may pass avail, never total */
	while (o < total) {
		if (total - o < PROXY_TLV_HEAD)
			return -1;
		if (avail < o + PROXY_TLV_HEAD)
			return 0;
		vlen = (size_t)b[o + 1] << 8 | b[o + 2];
		if (total - o - PROXY_TLV_HEAD < vlen)
			return -1;
		switch (b[o]) {
		case PROXY_TLV_CRC32C:
			if (vlen != 4 || *crc != 0)
				return -1;
			*crc = o + PROXY_TLV_HEAD;
			break;
		case PROXY_TLV_UNIQUE_ID:
			if (vlen > PROXY_TLV_UNIQUE_ID_MAX)
				return -1;
			break;
		case PROXY_TLV_SSL:
			if (vlen < PROXY_TLV_SSL_HEAD)
				return -1;
			if (avail >= o + PROXY_TLV_HEAD + vlen &&
			    !v2_ssl_valid(b + o + PROXY_TLV_HEAD, vlen))
				return -1;
			break;
		}
		o += PROXY_TLV_HEAD + vlen;
	}
	return 0;
}

static int
v2_parse(const unsigned char *b, size_t len, struct proxy_header *ph)
{
	size_t		 total, need, crc;
	unsigned char	 fam;
	uint32_t	 sum;
	int		 local;

	if (memcmp(b, v2_sig, len < V2_SIG_LEN ? len : V2_SIG_LEN) != 0)
		return PROXY_ERROR;
	if (len <= V2_SIG_LEN)
		return PROXY_NEED_MORE;
	if ((b[12] & 0xf0) != V2_VERSION)
		return PROXY_ERROR;
	switch (b[12] & 0x0f) {
	case V2_LOCAL:
		local = 1;
		break;
	case V2_PROXY:
		local = 0;
		break;
	default:
		return PROXY_ERROR;
	}
	if (len <= 13)
		return PROXY_NEED_MORE;

	/*
	 * LOCAL ignores fam, and the block after the fixed part with it,
	 * TLVs included (doc/proxy-protocol.txt: "discard the protocol
	 * block including the family").  PROXY takes TCP only: UDP (0x12,
	 * 0x22) and UNIX datagrams (0x32) cannot be what reached a stream
	 * listener.  UNSPEC and UNIX carry nothing to greet: the socket's
	 * own peer is used, but a UNIX block must still be there whole.
	 */
	fam = b[13];
	need = PROXY_V2_FIXED;
	if (!local) {
		switch (fam) {
		case V2_UNSPEC:
			break;
		case V2_TCP4:
			need += V2_INET_LEN;
			break;
		case V2_TCP6:
			need += V2_INET6_LEN;
			break;
		case V2_UNIX_STREAM:
			need += V2_UNIX_LEN;
			break;
		default:
			return PROXY_ERROR;
		}
	}
	if (len < PROXY_V2_FIXED)
		return PROXY_NEED_MORE;
	total = PROXY_V2_FIXED + ((size_t)b[14] << 8 | b[15]);
	if (total < need || total > PROXY_V2_MAX)
		return PROXY_ERROR;
	crc = 0;
	if (!local && v2_tlvs(b, len < total ? len : total, need, total,
	    &crc) == -1)
		return PROXY_ERROR;
	if (len < total)
		return PROXY_NEED_MORE;
	/* The whole header is here; its TLVs tile b[need..total). */
	if (crc != 0) {
		sum = (uint32_t)b[crc] << 24 | (uint32_t)b[crc + 1] << 16 |
		    (uint32_t)b[crc + 2] << 8 | b[crc + 3];
		if (crc32c_holed(b, total, crc) != sum)
			return PROXY_ERROR;
	}

	ph->ph_consumed = total;
	ph->ph_version = 2;
	if (!local) {
		ph->ph_tlv_off = need;
		ph->ph_tlv_len = total - need;
	}
	b += PROXY_V2_FIXED;
	if (local || fam == V2_UNSPEC || fam == V2_UNIX_STREAM)
		ph->ph_local = 1;
	else if (fam == V2_TCP4) {
		set_inet(&ph->ph_src, AF_INET, b, b + 8);
		set_inet(&ph->ph_dst, AF_INET, b + 4, b + 10);
	} else {
		set_inet(&ph->ph_src, AF_INET6, b, b + 32);
		set_inet(&ph->ph_dst, AF_INET6, b + 16, b + 34);
	}
	return PROXY_DONE;
}

int
proxy_parse(const char *buf, size_t len, struct proxy_header *ph)
{
	memset(ph, 0, sizeof(*ph));
	if (len == 0)
		return PROXY_NEED_MORE;
	/* "PROXY " or the v2 signature's CR: nothing else starts either. */
	if (buf[0] == 'P')
		return v1_parse(buf, len, ph);
	return v2_parse((const unsigned char *)buf, len, ph);
}
