/*
 * The client address behind trusted proxies: nginx's realip module with
 * real_ip_recursive on, for X-Forwarded-For, X-Real-IP and Forwarded
 * (RFC 7239).
 *
 * An address literal from a header is checked for address characters
 * first, so that no byte (a NUL included) can end the copy handed to
 * inet_pton() early and let a valid prefix stand for the whole element.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "client.h"

#define IS_DIGIT(c)	((c) >= '0' && (c) <= '9')

/* Longest node a Forwarded "for" value can hold: "[" IPv6 "]:" port. */
#define FWD_VALUE_MAX	64

/* tchar (RFC 9110 5.6.2) */
static const unsigned char tchar_tab[256] = {
	['0' ... '9'] = 1, ['a' ... 'z'] = 1, ['A' ... 'Z'] = 1,
	['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1,
	['*'] = 1, ['+'] = 1, ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1,
	['`'] = 1, ['|'] = 1, ['~'] = 1,
};

/* qdtext: HTAB, SP, VCHAR but DQUOTE and "\", obs-text (RFC 9110 5.6.4) */
static const unsigned char qdtext_tab[256] = {
	['\t'] = 1, [' '] = 1, ['!'] = 1, ['#' ... '['] = 1, [']' ... '~'] = 1,
	[0x80 ... 0xff] = 1,
};

/* What a quoted-pair may escape: HTAB, SP, VCHAR, obs-text */
static const unsigned char qpair_tab[256] = {
	['\t'] = 1, [' ' ... '~'] = 1, [0x80 ... 0xff] = 1,
};

/* What an address literal may hold */
static const unsigned char addr_tab[256] = {
	['0' ... '9'] = 1, ['a' ... 'f'] = 1, ['A' ... 'F'] = 1,
	['.'] = 1, [':'] = 1,
};

static const uint8_t v4mapped[12] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
};

static int
is_ows(char c)
{
	return c == ' ' || c == '\t';
}

static void
trim_ows(const char **s, size_t *len)
{
	while (*len > 0 && is_ows((*s)[0])) {
		(*s)++;
		(*len)--;
	}
	while (*len > 0 && is_ows((*s)[*len - 1]))
		(*len)--;
}

/* Stores bytes of the family, an IPv4-mapped IPv6 address as IPv4. */
static void
addr_set(struct client_addr *ca, int family, const uint8_t *bytes)
{
	memset(ca, 0, sizeof(*ca));
	if (family == AF_INET6 && memcmp(bytes, v4mapped, 12) == 0) {
		ca->ca_family = AF_INET;
		memcpy(ca->ca_addr, bytes + 12, 4);
	} else {
		ca->ca_family = family;
		memcpy(ca->ca_addr, bytes, family == AF_INET ? 4 : 16);
	}
}

void
client_from_sockaddr(struct client_addr *ca,
    const struct sockaddr_storage *ss)
{
	const struct sockaddr_in	*sin = (const struct sockaddr_in *)ss;
	const struct sockaddr_in6	*sin6 = (const struct sockaddr_in6 *)ss;

	if (ss->ss_family == AF_INET)
		addr_set(ca, AF_INET, (const uint8_t *)&sin->sin_addr);
	else if (ss->ss_family == AF_INET6)
		addr_set(ca, AF_INET6, sin6->sin6_addr.s6_addr);
	else
		memset(ca, 0, sizeof(*ca));
}

size_t
client_text(const struct client_addr *ca, char *buf, size_t len)
{
	const char	*r = NULL;

	if (len == 0)
		return 0;
	if (ca->ca_family == AF_INET)
		r = inet_ntop(AF_INET, ca->ca_addr, buf, (socklen_t)len);
	else if (ca->ca_family == AF_INET6) {
		if (memcmp(ca->ca_addr, v4mapped, 12) == 0)
			r = inet_ntop(AF_INET, ca->ca_addr + 12, buf,
			    (socklen_t)len);
		else
			r = inet_ntop(AF_INET6, ca->ca_addr, buf,
			    (socklen_t)len);
	}
	if (r == NULL)
		snprintf(buf, len, "unknown");
	return strlen(buf);
}

/* An address literal of the family, without brackets, port or prefix. */
static int
pton(int family, const char *s, size_t len, uint8_t *bytes)
{
	char	 buf[CLIENT_ADDR_MAX];
	size_t	 i;

	if (len == 0 || len >= sizeof(buf))
		return -1;
	for (i = 0; i < len; i++)
		if (!addr_tab[(unsigned char)s[i]])
			return -1;
	memcpy(buf, s, len);
	buf[len] = '\0';
	return inet_pton(family, buf, bytes) == 1 ? 0 : -1;
}

static int
addr_pton(int family, const char *s, size_t len, struct client_addr *ca)
{
	uint8_t	 bytes[16];

	if (pton(family, s, len, bytes) == -1)
		return -1;
	addr_set(ca, family, bytes);
	return 0;
}

/* 1-5 digits, at most 65535; 0 passes (RFC 3986 port = *DIGIT). */
static int
port_ok(const char *s, size_t len)
{
	unsigned	 v = 0;
	size_t		 i;

	if (len == 0 || len > 5)
		return 0;
	for (i = 0; i < len; i++) {
		if (!IS_DIGIT(s[i]))
			return 0;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	return v <= 65535;
}

/*
 * A node: IPv4 [":" port] or "[" IPv6 "]" [":" port].  With bare_v6
 * (X-Forwarded-For, X-Real-IP) an IPv6 address without brackets passes
 * too; RFC 7239 6 requires the brackets, and "unknown" and obfuscated
 * "_" identifiers name no address.
 */
static int
node_parse(const char *s, size_t len, int bare_v6, struct client_addr *ca)
{
	const char	*p;
	size_t		 n;

	if (len > 0 && s[0] == '[') {
		if ((p = memchr(s, ']', len)) == NULL)
			return -1;
		n = (size_t)(p - s) + 1;
		if (n < len && (s[n] != ':' ||
		    !port_ok(s + n + 1, len - n - 1)))
			return -1;
		return addr_pton(AF_INET6, s + 1, n - 2, ca);
	}
	if ((p = memchr(s, ':', len)) == NULL)
		return addr_pton(AF_INET, s, len, ca);
	n = (size_t)(p - s);
	if (memchr(p + 1, ':', len - n - 1) == NULL) {
		/* An IPv6 literal holds at least two colons. */
		if (!port_ok(p + 1, len - n - 1))
			return -1;
		return addr_pton(AF_INET, s, n, ca);
	}
	if (!bare_v6)
		return -1;
	return addr_pton(AF_INET6, s, len, ca);
}

/* Parses one ADDR or ADDR/BITS of a trust list into cn. */
static int
net_parse(const char *s, size_t len, struct client_net *cn, char *err,
    size_t errlen)
{
	char		 text[CLIENT_ADDR_MAX];
	const char	*slash;
	size_t		 alen, full, i;
	unsigned	 max, bits;
	uint8_t		 masked[16];
	int		 family, dirty;

	memset(cn, 0, sizeof(*cn));
	slash = memchr(s, '/', len);
	alen = slash != NULL ? (size_t)(slash - s) : len;
	family = memchr(s, ':', alen) != NULL ? AF_INET6 : AF_INET;
	max = family == AF_INET ? 32 : 128;
	if (pton(family, s, alen, cn->cn_addr) == -1) {
		snprintf(err, errlen, "invalid network '%.*s' (expected "
		    "ADDRESS or ADDRESS/BITS)", (int)len, s);
		return -1;
	}
	if (slash == NULL)
		bits = max;
	else {
		/* 1-3 digits, no leading zero, no sign. */
		bits = 0;
		for (i = alen + 1; i < len; i++) {
			if (!IS_DIGIT(s[i]) || i - alen > 3)
				break;
			bits = bits * 10 + (unsigned)(s[i] - '0');
		}
		if (i != len || i == alen + 1 || bits > max ||
		    (s[alen + 1] == '0' && len - alen > 2)) {
			snprintf(err, errlen, "invalid network '%.*s' "
			    "(prefix length 0-%u)", (int)len, s, max);
			return -1;
		}
	}

	/* Bits past the prefix are refused rather than masked: a trust
	 * list is no place to guess what was meant. */
	memcpy(masked, cn->cn_addr, sizeof(masked));
	full = bits / 8;
	if (bits % 8 != 0)
		masked[full++] &= (uint8_t)(0xff << (8 - bits % 8));
	memset(masked + full, 0, sizeof(masked) - full);
	dirty = memcmp(masked, cn->cn_addr, sizeof(masked)) != 0;
	if (dirty) {
		if (inet_ntop(family, masked, text, sizeof(text)) == NULL)
			text[0] = '\0';
		snprintf(err, errlen, "invalid network '%.*s' (bits past the "
		    "prefix are set: %s/%u?)", (int)len, s, text, bits);
		return -1;
	}

	cn->cn_family = family;
	cn->cn_bits = bits;
	if (family == AF_INET6 && bits >= 96 &&
	    memcmp(cn->cn_addr, v4mapped, 12) == 0) {
		cn->cn_family = AF_INET;
		memmove(cn->cn_addr, cn->cn_addr + 12, 4);
		memset(cn->cn_addr + 4, 0, 12);
		cn->cn_bits = bits - 96;
	}
	return 0;
}

/* Elements are separated by spaces, tabs or commas, like listen. */
#define is_trust_sep(c)	((c) == ' ' || (c) == '\t' || (c) == ',')

int
client_trust_parse(const char *text, struct client_trust *ct, char *err,
    size_t errlen)
{
	const char	*p = text, *s;

	memset(ct, 0, sizeof(*ct));
	if (p == NULL)
		return 0;
	for (;;) {
		while (is_trust_sep(*p))
			p++;
		if (*p == '\0')
			return 0;
		s = p;
		while (*p != '\0' && !is_trust_sep(*p))
			p++;
		if (ct->ct_n == CLIENT_MAX_TRUSTED) {
			snprintf(err, errlen, "too many networks at '%.*s' "
			    "(at most %d)", (int)(p - s), s,
			    CLIENT_MAX_TRUSTED);
			break;
		}
		if (net_parse(s, (size_t)(p - s), &ct->ct_nets[ct->ct_n], err,
		    errlen) == -1)
			break;
		ct->ct_n++;
	}
	memset(ct, 0, sizeof(*ct));
	return -1;
}

static int
net_match(const struct client_net *cn, const uint8_t *a, unsigned max)
{
	unsigned	 full, rest;

	if (cn->cn_bits > max)
		return 0;
	full = cn->cn_bits / 8;
	rest = cn->cn_bits % 8;
	if (memcmp(cn->cn_addr, a, full) != 0)
		return 0;
	return rest == 0 ||
	    ((cn->cn_addr[full] ^ a[full]) & (0xff << (8 - rest))) == 0;
}

/*
 * Families never mix, as in nginx's realip: an IPv4 address (a mapped
 * one included) matches only IPv4 networks, which hold the IPv6 networks
 * inside ::ffff:0:0/96 (net_parse() stores them so).  An IPv6 network
 * that merely contains the mapped block, ::/0 for one, trusts no IPv4
 * peer.
 */
int
client_trust_match(const struct client_trust *ct,
    const struct client_addr *ca)
{
	const struct client_net	*cn;
	struct client_addr	 a;
	unsigned		 i;

	if (ca->ca_family != AF_INET && ca->ca_family != AF_INET6)
		return 0;
	addr_set(&a, ca->ca_family, ca->ca_addr);
	for (i = 0; i < ct->ct_n && i < CLIENT_MAX_TRUSTED; i++) {
		cn = &ct->ct_nets[i];
		if (cn->cn_family == a.ca_family && net_match(cn, a.ca_addr,
		    a.ca_family == AF_INET ? 32 : 128))
			return 1;
	}
	return 0;
}

static const struct {
	const char		*h_name;
	enum client_header	 h_header;
} headers[] = {
	{ "none", CLIENT_HEADER_NONE },
	{ "x-forwarded-for", CLIENT_HEADER_XFF },
	{ "x-real-ip", CLIENT_HEADER_XREALIP },
	{ "forwarded", CLIENT_HEADER_FORWARDED },
};

int
client_header_parse(const char *name, enum client_header *h)
{
	size_t	 i;

	if (name == NULL)
		return -1;
	for (i = 0; i < sizeof(headers) / sizeof(headers[0]); i++)
		if (strcasecmp(name, headers[i].h_name) == 0) {
			*h = headers[i].h_header;
			return 0;
		}
	return -1;
}

const char *
client_header_field(enum client_header h)
{
	size_t	 i;

	if (h == CLIENT_HEADER_NONE)
		return NULL;
	for (i = 0; i < sizeof(headers) / sizeof(headers[0]); i++)
		if (headers[i].h_header == h)
			return headers[i].h_name;
	return NULL;
}

/*
 * The walk is defined from the right: while the current address is
 * trusted, the next element to the left replaces it; an element that is
 * not an address ends the walk before replacing anything.
 *
 * It runs from the left, in one pass with no storage, which is also the
 * direction a quoted-string can be read in.  The result depends only on
 * the rightmost stop, the last element that is invalid or untrusted: an
 * untrusted address is itself the result; after an invalid element the
 * result is the element right of it (trusted, so the walk got there), or
 * the connection's address when there is none.  The start of the list
 * acts as an invalid element: without a stop the leftmost element is the
 * result.
 *
 * Invariant: w_addr is the result were the list to end here, and w_next
 * says it is the connection's address, taken over by the next element.
 */
struct walk {
	const struct client_trust *w_trust;
	struct client_addr	 w_conn;
	struct client_addr	 w_addr;
	int			 w_next;
	unsigned		 w_hops;	/* elements walked */
	unsigned		 w_tail;	/* ... right of w_addr's */
};

/* One element, left to right; ca is NULL when it is not an address. */
static void
walk_step(struct walk *w, const struct client_addr *ca)
{
	w->w_hops++;
	if (ca == NULL) {
		w->w_addr = w->w_conn;
		w->w_next = 1;
		w->w_tail = 0;
		return;
	}
	if (w->w_next || !client_trust_match(w->w_trust, ca)) {
		w->w_addr = *ca;
		w->w_tail = 0;
	} else
		w->w_tail++;
	w->w_next = 0;
}

/* A field line's bytes; a NULL view is an empty value. */
static const char *
field_bytes(const struct client_field *f, size_t *len)
{
	if (f->cf_value == NULL) {
		*len = 0;
		return "";
	}
	*len = f->cf_len;
	return f->cf_value;
}

/*
 * Where the Forwarded element starting at i ends: at the first comma
 * outside a quoted-string, or at the end of the field line.  A field line
 * is a whole value: a quoted-string never continues into the next one.
 */
static size_t
fwd_element_end(const char *v, size_t len, size_t i)
{
	int	 quoted = 0;

	for (; i < len; i++) {
		if (quoted) {
			if (v[i] == '\\' && i + 1 < len)
				i++;
			else if (v[i] == '"')
				quoted = 0;
		} else if (v[i] == '"')
			quoted = 1;
		else if (v[i] == ',')
			break;
	}
	return i;
}

/*
 * forwarded-element = [ forwarded-pair ] *( ";" [ forwarded-pair ] )
 * forwarded-pair    = token "=" value
 * value             = token / quoted-string
 * (RFC 7239 4), with OWS tolerated around ";".  Parameter names are
 * case-insensitive and may not repeat in one element.  Returns the
 * address of the for= value, or -1 for a malformed element, one without
 * for=, or one whose for= names no address.
 */
static int
fwd_element(const char *s, size_t len, struct client_addr *ca)
{
	char		 val[FWD_VALUE_MAX];
	size_t		 i = 0, n, vlen = 0;
	unsigned char	 c;
	int		 have_for = 0, is_for;

	for (;;) {
		while (i < len && is_ows(s[i]))
			i++;
		if (i < len && s[i] != ';') {
			n = i;
			while (i < len && tchar_tab[(unsigned char)s[i]])
				i++;
			if (i == n || i == len || s[i] != '=')
				return -1;
			is_for = i - n == 3 && strncasecmp(s + n, "for", 3) == 0;
			if (is_for && have_for)
				return -1;
			have_for |= is_for;
			i++;
			if (i < len && s[i] == '"') {
				for (i++;; i++) {
					if (i == len)
						return -1;
					c = (unsigned char)s[i];
					if (c == '"')
						break;
					if (c == '\\') {
						if (++i == len ||
						    !qpair_tab[(unsigned char)s[i]])
							return -1;
						c = (unsigned char)s[i];
					} else if (!qdtext_tab[c])
						return -1;
					if (is_for) {
						if (vlen == sizeof(val))
							return -1;
						val[vlen++] = (char)c;
					}
				}
				i++;
			} else {
				n = i;
				while (i < len &&
				    tchar_tab[(unsigned char)s[i]])
					i++;
				if (i == n)
					return -1;
				if (is_for) {
					if (i - n > sizeof(val))
						return -1;
					vlen = i - n;
					memcpy(val, s + n, vlen);
				}
			}
			while (i < len && is_ows(s[i]))
				i++;
		}
		if (i == len)
			break;
		if (s[i] != ';')
			return -1;
		i++;
	}
	if (!have_for)
		return -1;
	return node_parse(val, vlen, 0, ca);
}

/*
 * The elements of X-Forwarded-For (addresses) or Forwarded (whose commas
 * may sit inside quoted-strings), over every field line, left to right.
 * Every comma starts an element, an empty one included.
 */
static void
walk_list(struct walk *w, const struct client_field *f, unsigned n,
    int forwarded)
{
	struct client_addr	 ca;
	const char		*line, *v;
	size_t			 s, e, end, len;
	unsigned		 i;
	int			 rc;

	for (i = 0; i < n; i++) {
		line = field_bytes(&f[i], &end);
		for (s = 0;; s = e + 1) {
			if (forwarded)
				e = fwd_element_end(line, end, s);
			else
				for (e = s; e < end && line[e] != ','; e++)
					;
			v = line + s;
			len = e - s;
			trim_ows(&v, &len);
			rc = forwarded ? fwd_element(v, len, &ca) :
			    node_parse(v, len, 1, &ca);
			walk_step(w, rc == 0 ? &ca : NULL);
			if (e == end)
				break;
		}
	}
}

void
client_walk(enum client_header h, const struct client_trust *ct,
    const struct client_field *f, unsigned n, struct client_addr *addr)
{
	client_walk_hops(h, ct, f, n, addr, NULL);
}

/* client_walk(), and how many elements it walked (ch_hops) and how many
 * of them, right of the one it took, were trusted proxies (ch_trusted). */
void
client_walk_hops(enum client_header h, const struct client_trust *ct,
    const struct client_field *f, unsigned n, struct client_addr *addr,
    struct client_hops *hops)
{
	struct client_addr	 ca;
	struct walk		 w;
	const char		*v;
	size_t			 len;

	if (hops != NULL)
		hops->ch_hops = hops->ch_trusted = 0;
	if (!client_trust_match(ct, addr))
		return;
	switch (h) {
	case CLIENT_HEADER_XREALIP:
		/* One address, taken as it is: no list, no recursion. */
		if (n != 1)
			return;
		v = field_bytes(&f[0], &len);
		trim_ows(&v, &len);
		if (hops != NULL)
			hops->ch_hops = 1;
		if (node_parse(v, len, 1, &ca) == 0)
			*addr = ca;
		return;
	case CLIENT_HEADER_XFF:
	case CLIENT_HEADER_FORWARDED:
		break;
	default:
		return;
	}
	memset(&w, 0, sizeof(w));
	w.w_trust = ct;
	addr_set(&w.w_conn, addr->ca_family, addr->ca_addr);
	w.w_addr = w.w_conn;
	w.w_next = 1;
	walk_list(&w, f, n, h == CLIENT_HEADER_FORWARDED);
	*addr = w.w_addr;
	if (hops != NULL) {
		hops->ch_hops = w.w_hops;
		hops->ch_trusted = w.w_tail;
	}
}
