/*
 * HTTP/1.x request head parser (RFC 9112).
 *
 * http_parse_resume() looks at a byte range that starts at a request
 * boundary.  It first finds the end of the head, enforcing the size limit,
 * and only then validates it.  The search resumes where the last call on
 * the same head stopped (struct http_scan), so a head that arrives a byte
 * at a time is still searched once.
 */
#include <string.h>
#include <strings.h>

#include "http.h"

#define IS_DIGIT(c)	((c) >= '0' && (c) <= '9')
#define hexval_ok(c)	(IS_DIGIT(c) || (((c) | 0x20) >= 'a' && \
			    ((c) | 0x20) <= 'f'))

/* tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." /
 *         "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA  (RFC 9110 5.6.2) */
static const unsigned char tchar_tab[256] = {
	['0' ... '9'] = 1, ['a' ... 'z'] = 1, ['A' ... 'Z'] = 1,
	['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1,
	['*'] = 1, ['+'] = 1, ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1,
	['`'] = 1, ['|'] = 1, ['~'] = 1,
};

/* field-value bytes: HTAB, SP, VCHAR, obs-text (RFC 9110 5.5) */
static const unsigned char vchar_tab[256] = {
	['\t'] = 1, [' ' ... '~'] = 1, [0x80 ... 0xff] = 1,
};

#define is_tchar(c)	(tchar_tab[(unsigned char)(c)])

static int	 valid_authority(const char *, size_t);

static int
is_ows(unsigned char c)
{
	return c == ' ' || c == '\t';
}

static int
fail(struct http_request *req, int status)
{
	req->req_status = status;
	req->req_keepalive = 0;
	return HTTP_ERROR;
}

/* Case-insensitive comparison with a lower-case literal. */
static int
lower_eq(const char *s, const char *lit, size_t len)
{
	size_t	 i;

	for (i = 0; i < len; i++)
		if ((s[i] | 0x20) != lit[i])
			return 0;
	return 1;
}

#define name_is(name, len, lit) \
	((len) == sizeof(lit) - 1 && lower_eq((name), (lit), sizeof(lit) - 1))

/* Calls fn on each non-empty element of a comma-separated list. */
static int
each_element(const char *v, size_t len,
    int (*fn)(const char *, size_t, void *), void *arg)
{
	size_t	 i = 0, s, e;

	while (i <= len) {
		s = i;
		while (i < len && v[i] != ',')
			i++;
		e = i;
		while (s < e && is_ows(v[s]))
			s++;
		while (e > s && is_ows(v[e - 1]))
			e--;
		if (e > s && fn(v + s, e - s, arg) == -1)
			return -1;
		i++;
	}
	return 0;
}

struct field_state {
	int		 fs_close;
	int		 fs_keepalive;
	int		 fs_has_length;
	uint64_t	 fs_length;
	unsigned	 fs_codings;	/* transfer codings seen */
	int		 fs_chunked_last;
	int		 fs_chunked_seen;
};

static int
connection_token(const char *t, size_t len, void *arg)
{
	struct field_state	*fs = arg;

	if (name_is(t, len, "close"))
		fs->fs_close = 1;
	else if (name_is(t, len, "keep-alive"))
		fs->fs_keepalive = 1;
	return 0;
}

static int
length_value(const char *t, size_t len, void *arg)
{
	struct field_state	*fs = arg;
	uint64_t		 v = 0;
	size_t			 i;

	for (i = 0; i < len; i++) {
		if (!IS_DIGIT(t[i]))
			return -1;
		if (v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t)(t[i] - '0');
	}
	if (fs->fs_has_length && fs->fs_length != v)
		return -1;
	fs->fs_has_length = 1;
	fs->fs_length = v;
	return 0;
}

static int
coding_value(const char *t, size_t len, void *arg)
{
	struct field_state	*fs = arg;
	size_t			 n = 0;

	while (n < len && is_tchar((unsigned char)t[n]))
		n++;
	if (n == 0)
		return -1;
	if (fs->fs_chunked_last)	/* chunked must be the final coding */
		return -1;
	fs->fs_codings++;
	if (name_is(t, n, "chunked")) {
		if (n != len)
			return -1;
		fs->fs_chunked_last = fs->fs_chunked_seen = 1;
	}
	return 0;
}

#define ONES	0x0101010101010101ull
#define HIGHS	0x8080808080808080ull

/*
 * A field value may hold HTAB, SP, VCHAR and obs-text.  Eight bytes are
 * checked at once for anything below 0x20 or equal to 0x7f (the test can
 * report a false hit next to a true one, never miss one); a word with a
 * hit, or with a tab, is checked byte by byte.
 */
static int
valid_value(const char *v, size_t len)
{
	uint64_t	 x, y;
	size_t		 i = 0;

	for (; i + 8 <= len; i += 8) {
		memcpy(&x, v + i, 8);
		y = x ^ (0x7f * ONES);
		if ((((x - 0x20 * ONES) & ~x) | ((y - ONES) & ~y)) & HIGHS)
			break;
	}
	for (; i < len; i++)
		if (!vchar_tab[(unsigned char)v[i]])
			return 0;
	return 1;
}

/* Returns 0 or the error status for one field line (CR already removed). */
static int
parse_field(const char *line, size_t len, const struct http_limits *lim,
    struct http_request *req, struct field_state *fs, unsigned *hosts,
    unsigned *host_bad)
{
	const char	*name = line, *v;
	size_t		 n = 0, vlen, i;
	int		 empty_list = 0;

	if (is_ows((unsigned char)line[0]))
		return 400;		/* obs-fold */
	while (n < len && is_tchar((unsigned char)line[n]))
		n++;
	if (n == 0 || n == len || line[n] != ':')
		return 400;		/* includes whitespace before ':' */
	v = line + n + 1;
	vlen = len - n - 1;
	if (!valid_value(v, vlen))
		return 400;
	while (vlen > 0 && is_ows((unsigned char)v[0])) {
		v++;
		vlen--;
	}
	while (vlen > 0 && is_ows((unsigned char)v[vlen - 1]))
		vlen--;

	/* At most HTTP_MAX_FIELDS lines reach here. */
	if (n == lim->lim_forward_len && lower_eq(name, lim->lim_forward, n)) {
		req->req_fwd[req->req_nfwd] = v;
		req->req_fwd_len[req->req_nfwd++] = vlen;
	}

	switch (name[0] | 0x20) {
	case 'a':
		if (name_is(name, n, "accept")) {
			req->req_accept = v;
			req->req_accept_len = vlen;
		}
		break;
	case 'h':
		if (name_is(name, n, "host")) {
			(*hosts)++;
			if (!valid_authority(v, vlen))
				*host_bad = 1;
		}
		break;
	case 'c':
		if (name_is(name, n, "connection"))
			each_element(v, vlen, connection_token, fs);
		else if (name_is(name, n, "content-length")) {
			if (vlen == 0)
				return 400;
			for (i = 0; i < vlen; i++)
				if (v[i] != ',' && !is_ows((unsigned char)v[i]))
					empty_list = 1;
			if (!empty_list ||
			    each_element(v, vlen, length_value, fs) == -1)
				return 400;
		}
		break;
	case 'r':
		if (name_is(name, n, "referer")) {
			req->req_referer = v;
			req->req_referer_len = vlen;
		}
		break;
	case 't':
		if (name_is(name, n, "transfer-encoding")) {
			/* An empty list is no coding, not no field (9112
			 * 6.3: a coding list must end in chunked). */
			i = fs->fs_codings;
			if (each_element(v, vlen, coding_value, fs) == -1 ||
			    fs->fs_codings == i)
				return 400;
		}
		break;
	case 'u':
		if (name_is(name, n, "user-agent")) {
			req->req_agent = v;
			req->req_agent_len = vlen;
		}
		break;
	}
	return 0;
}

/* unreserved / sub-delims (RFC 3986 2.2, 2.3): reg-name without '%' */
static const unsigned char regname_tab[256] = {
	['0' ... '9'] = 1, ['a' ... 'z'] = 1, ['A' ... 'Z'] = 1,
	['-'] = 1, ['.'] = 1, ['_'] = 1, ['~'] = 1,
	['!'] = 1, ['$'] = 1, ['&'] = 1, ['\''] = 1, ['('] = 1, [')'] = 1,
	['*'] = 1, ['+'] = 1, [','] = 1, [';'] = 1, ['='] = 1,
};

/* IPv6address / IPvFuture inside brackets (RFC 3986 3.2.2), by bytes:
 * hex digits, ':' and '.' (an embedded IPv4), or "v" HEX "." and more. */
static int
valid_ip_literal(const char *s, size_t len)
{
	size_t	 i, colons = 0;

	if (len > 0 && (s[0] | 0x20) == 'v') {
		for (i = 1; i < len && hexval_ok(s[i]); i++)
			;
		if (i == 1 || i >= len - 1 || s[i] != '.')
			return 0;
		for (i++; i < len; i++)
			if (!regname_tab[(unsigned char)s[i]] && s[i] != ':')
				return 0;
		return 1;
	}
	if (len < 2 || len > 45)
		return 0;
	for (i = 0; i < len; i++) {
		if (s[i] == ':')
			colons++;
		else if (!hexval_ok(s[i]) && s[i] != '.')
			return 0;
	}
	return colons >= 2 && colons <= 7;
}

/*
 * uri-host [ ":" port ] (RFC 9112 3.2, RFC 3986 3.2.2): Host values and
 * the authority of an absolute-form target.  An empty port is allowed by
 * the grammar; one over 65535 is not a port.
 */
static int
valid_authority(const char *s, size_t len)
{
	size_t		 i = 0, e;
	unsigned long	 port = 0;

	if (len > 0 && s[0] == '[') {
		for (e = 1; e < len && s[e] != ']'; e++)
			;
		if (e == len || !valid_ip_literal(s + 1, e - 1))
			return 0;
		i = e + 1;
	} else
		for (; i < len && s[i] != ':'; i++) {
			if (s[i] == '%') {
				if (i + 2 >= len || !hexval_ok(s[i + 1]) ||
				    !hexval_ok(s[i + 2]))
					return 0;
				i += 2;
			} else if (!regname_tab[(unsigned char)s[i]])
				return 0;
		}
	if (i == len)
		return 1;
	if (s[i] != ':' || len - i - 1 > 5)
		return 0;
	for (i++; i < len; i++) {
		if (!IS_DIGIT(s[i]))
			return 0;
		port = port * 10 + (unsigned long)(s[i] - '0');
	}
	return port <= 65535;
}

/*
 * absolute-form (9112 3.2.2): scheme "://" authority path-abempty
 * [ "?" query ], scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ).
 * Returns the offset of the path (len when it is empty), or 0.
 */
static size_t
absolute_form(const char *t, size_t len)
{
	size_t		 i, a;
	unsigned char	 c;

	c = (unsigned char)t[0];
	if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')))
		return 0;
	for (i = 1; i < len; i++) {
		c = (unsigned char)t[i];
		if (c == ':')
			break;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    IS_DIGIT(c) || c == '+' || c == '-' || c == '.'))
			return 0;
	}
	if (len - i <= 3 || t[i + 1] != '/' || t[i + 2] != '/')
		return 0;
	a = i + 3;
	for (i = a; i < len && t[i] != '/' && t[i] != '?'; i++)
		;
	if (i == a || !valid_authority(t + a, i - a))
		return 0;
	return i;
}

/* Sets the path and query views of a target that starts at its path. */
static void
split_target(struct http_request *req, const char *p, size_t len)
{
	const char	*q = memchr(p, '?', len);

	req->req_path = len > 0 && p[0] == '/' ? p : "/";
	req->req_path_len = len > 0 && p[0] == '/' ? len : 1;
	if (q != NULL) {
		req->req_path_len = p[0] == '/' ? (size_t)(q - p) : 1;
		req->req_query = q + 1;
		req->req_query_len = len - (size_t)(q + 1 - p);
	}
}

/* Returns 0 or the error status for the request line (CR removed). */
static int
parse_request_line(const char *line, size_t len, struct http_request *req)
{
	const char	*sp1, *sp2, *target, *ver;
	size_t		 mlen, tlen, i, path;

	if (memchr(line, '\r', len) != NULL)
		return 400;		/* bare CR */
	for (mlen = 0; mlen < len && is_tchar((unsigned char)line[mlen]); mlen++)
		;
	if (mlen == 0 || mlen == len || line[mlen] != ' ')
		return 400;
	/* Known early: an error answer to HEAD carries no body either. */
	if (mlen == 3 && memcmp(line, "GET", 3) == 0)
		req->req_method = HTTP_GET;
	else if (mlen == 4 && memcmp(line, "HEAD", 4) == 0)
		req->req_method = HTTP_HEAD;
	else
		req->req_method = HTTP_OTHER;
	sp1 = line + mlen;
	for (sp2 = line + len - 1; *sp2 != ' '; sp2--)
		;			/* stops at sp1 at the latest */
	if (sp2 == sp1)
		return 400;		/* HTTP/0.9 style: no version */
	target = sp1 + 1;
	tlen = (size_t)(sp2 - target);
	ver = sp2 + 1;

	if (len - (size_t)(ver - line) != 8 || memcmp(ver, "HTTP/", 5) != 0 ||
	    !IS_DIGIT(ver[5]) || ver[6] != '.' || !IS_DIGIT(ver[7]))
		return 400;
	if (ver[5] != '1')
		return 505;
	req->req_minor = ver[7] == '0' ? 0 : 1;

	if (tlen == 0)
		return 400;
	for (i = 0; i < tlen; i++) {
		unsigned char c = (unsigned char)target[i];
		if (c <= 0x20 || c == 0x7f)
			return 400;
	}

	/*
	 * The four forms of 9112 3.2: origin-form and absolute-form for any
	 * method, authority-form only with CONNECT, asterisk-form only with
	 * OPTIONS (both then answered 405).
	 */
	if (target[0] == '/')
		split_target(req, target, tlen);
	else if ((path = absolute_form(target, tlen)) != 0)
		split_target(req, target + path, tlen - path);
	else if (tlen == 1 && target[0] == '*' && mlen == 7 &&
	    memcmp(line, "OPTIONS", 7) == 0) {
		req->req_path = target;
		req->req_path_len = 1;
	} else if (mlen == 7 && memcmp(line, "CONNECT", 7) == 0 &&
	    valid_authority(target, tlen) && memchr(target, ':', tlen) != NULL) {
		req->req_path = target;
		req->req_path_len = tlen;
	} else
		return 400;
	return 0;
}

/*
 * Searches the head that starts at head for its end, from where the last
 * call stopped.  Returns HTTP_DONE with the head's length in *headlen,
 * HTTP_NEED_MORE, or an error status (414 while in the request line, 431
 * after it).
 */
static int
scan_head(struct http_scan *hs, const char *head, size_t len,
    const struct http_limits *lim, size_t *headlen)
{
	const char	*nl, *line;
	unsigned	 max_fields;

	max_fields = lim->lim_max_fields < HTTP_MAX_FIELDS ?
	    lim->lim_max_fields : HTTP_MAX_FIELDS;
	while (hs->hs_off < len) {
		nl = memchr(head + hs->hs_off, '\n', len - hs->hs_off);
		if (nl == NULL) {
			hs->hs_off = len;
			break;
		}
		hs->hs_off = (size_t)(nl - head) + 1;
		if (hs->hs_off > lim->lim_max_header)
			return hs->hs_rl_end == 0 ? 414 : 431;
		line = head + hs->hs_line;
		hs->hs_line = hs->hs_off;
		if (hs->hs_rl_end == 0) {
			hs->hs_rl_end = hs->hs_off;
			continue;
		}
		if (nl == line || (nl == line + 1 && *line == '\r')) {
			*headlen = hs->hs_off;
			return HTTP_DONE;
		}
		if (hs->hs_nfields == max_fields)
			return 431;
		hs->hs_nfields++;
	}
	if (len > lim->lim_max_header)
		return hs->hs_rl_end == 0 ? 414 : 431;
	return HTTP_NEED_MORE;
}

int
http_parse(const char *buf, size_t len, const struct http_limits *lim,
    struct http_request *req)
{
	struct http_scan	 hs;

	memset(&hs, 0, sizeof(hs));
	return http_parse_resume(&hs, buf, len, lim, req);
}

int
http_parse_resume(struct http_scan *hs, const char *buf, size_t len,
    const struct http_limits *lim, struct http_request *req)
{
	const char		*p = buf, *end = buf + len, *head, *q, *nl;
	size_t			 rl_len, n, headlen = 0;
	unsigned		 hosts = 0, host_bad = 0;
	struct field_state	 fs;
	int			 status;

	memset(req, 0, offsetof(struct http_request, req_fwd));

	/* Empty lines before the request line are ignored (9112 2.2); they
	 * are consumed before any of the head is searched. */
	if (hs->hs_off == 0)
		while (p < end) {
			if (*p == '\n')
				p++;
			else if (*p == '\r' && p + 1 < end && p[1] == '\n')
				p += 2;
			else
				break;
		}
	req->req_consumed = (size_t)(p - buf);
	head = p;
	if (hs->hs_off == 0 && p + 1 == end && *p == '\r')
		return HTTP_NEED_MORE;	/* maybe an empty line's CR */

	status = scan_head(hs, head, (size_t)(end - head), lim, &headlen);
	if (status == HTTP_NEED_MORE)
		return HTTP_NEED_MORE;
	memset(hs, 0, sizeof(*hs));
	if (status != HTTP_DONE)
		return fail(req, status);
	req->req_consumed += headlen;

	nl = memchr(head, '\n', headlen);
	rl_len = (size_t)(nl - head);
	if (rl_len > 0 && head[rl_len - 1] == '\r')
		rl_len--;
	req->req_line = head;
	req->req_line_len = rl_len;
	if ((status = parse_request_line(head, rl_len, req)) != 0)
		return fail(req, status);

	memset(&fs, 0, sizeof(fs));
	for (q = nl + 1;; q = nl + 1) {
		nl = memchr(q, '\n', (size_t)(head + headlen - q));
		n = (size_t)(nl - q);
		if (n > 0 && q[n - 1] == '\r')
			n--;
		if (n == 0)
			break;		/* the empty line */
		if ((status = parse_field(q, n, lim, req, &fs, &hosts,
		    &host_bad)) != 0)
			return fail(req, status);
	}

	/* 9112 3.2: a missing (1.1), repeated or invalid Host is a 400. */
	if (hosts > 1 || host_bad || (req->req_minor == 1 && hosts == 0))
		return fail(req, 400);
	if (fs.fs_codings > 0) {
		/* 9112 6.1 and 6.3: no codings in 1.0, chunked last, no
		 * Content-Length beside it (request smuggling). */
		if (req->req_minor == 0 || !fs.fs_chunked_last ||
		    fs.fs_has_length)
			return fail(req, 400);
		req->req_body = HTTP_BODY_CHUNKED;
	} else if (fs.fs_has_length && fs.fs_length > 0) {
		req->req_body = HTTP_BODY_LENGTH;
		req->req_content_length = fs.fs_length;
	}

	if (req->req_minor == 1)
		req->req_keepalive = !fs.fs_close;
	else
		req->req_keepalive = fs.fs_keepalive && !fs.fs_close;
	req->req_status = req->req_method == HTTP_OTHER ? 405 : 200;
	return HTTP_DONE;
}

/*
 * Chunked body skipping (9112 7.1).  Extensions and trailers are bounded
 * so that a client cannot keep a connection busy with an endless line.
 */
#define CHUNK_MAX_EXTRA	4096

enum {
	CH_SIZE, CH_EXT, CH_SIZE_LF, CH_DATA, CH_DATA_CR, CH_DATA_LF,
	CH_TRAILER_START, CH_TRAILER, CH_TRAILER_LF, CH_END_LF
};

void
http_chunked_init(struct http_chunked *ch)
{
	memset(ch, 0, sizeof(*ch));
	ch->ch_state = CH_SIZE;
}

static int
hexval(unsigned char c)
{
	if (IS_DIGIT(c))
		return c - '0';
	c |= 0x20;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static void
chunk_size_done(struct http_chunked *ch)
{
	ch->ch_state = ch->ch_left == 0 ? CH_TRAILER_START : CH_DATA;
	ch->ch_ext = 0;
}

int
http_chunked_skip(struct http_chunked *ch, const char *buf, size_t len,
    size_t *consumed)
{
	size_t		 i = 0, n;
	unsigned char	 c;
	int		 v;

	while (i < len) {
		c = (unsigned char)buf[i];
		switch (ch->ch_state) {
		case CH_SIZE:
			if ((v = hexval(c)) >= 0) {
				/* At most 15 significant digits (2^60). */
				if (ch->ch_left >> 56)
					return -1;
				ch->ch_left = ch->ch_left * 16 + (uint64_t)v;
				ch->ch_digits++;
			} else if (ch->ch_digits == 0)
				return -1;
			else if (c == ';' || is_ows(c))
				ch->ch_state = CH_EXT;
			else if (c == '\r')
				ch->ch_state = CH_SIZE_LF;
			else if (c == '\n')
				chunk_size_done(ch);
			else
				return -1;
			i++;
			break;
		case CH_EXT:
		case CH_TRAILER:
			if (c == '\r')
				ch->ch_state = ch->ch_state == CH_EXT ?
				    CH_SIZE_LF : CH_TRAILER_LF;
			else if (c == '\n') {
				if (ch->ch_state == CH_EXT)
					chunk_size_done(ch);
				else {
					ch->ch_state = CH_TRAILER_START;
					ch->ch_ext = 0;
				}
			} else if ((c < 0x20 && c != '\t') || c == 0x7f ||
			    ++ch->ch_ext > CHUNK_MAX_EXTRA)
				return -1;
			i++;
			break;
		case CH_SIZE_LF:
			if (c != '\n')
				return -1;
			chunk_size_done(ch);
			i++;
			break;
		case CH_DATA:
			n = len - i;
			if ((uint64_t)n > ch->ch_left)
				n = (size_t)ch->ch_left;
			ch->ch_left -= n;
			i += n;
			if (ch->ch_left == 0)
				ch->ch_state = CH_DATA_CR;
			break;
		case CH_DATA_CR:
		case CH_DATA_LF:
			if (c == '\r' && ch->ch_state == CH_DATA_CR)
				ch->ch_state = CH_DATA_LF;
			else if (c == '\n') {
				ch->ch_state = CH_SIZE;
				ch->ch_digits = 0;
			} else
				return -1;
			i++;
			break;
		case CH_TRAILER_START:
			i++;
			if (c == '\n') {
				*consumed = i;
				return 1;
			}
			if (c == '\r')
				ch->ch_state = CH_END_LF;
			else if (is_ows(c) || !is_tchar(c))
				return -1;
			else
				ch->ch_state = CH_TRAILER;
			break;
		case CH_TRAILER_LF:
			if (c != '\n')
				return -1;
			ch->ch_state = CH_TRAILER_START;
			ch->ch_ext = 0;
			i++;
			break;
		case CH_END_LF:
			if (c != '\n')
				return -1;
			*consumed = i + 1;
			return 1;
		}
	}
	*consumed = i;
	return 0;
}

/*
 * A connection's request stream: skips the body of the previous request,
 * then parses the next head.  *used is what the caller may drop.
 */
void
http_stream_init(struct http_stream *st)
{
	memset(st, 0, sizeof(*st));
}

int
http_stream_busy(const struct http_stream *st)
{
	return st->st_skip > 0 || st->st_in_chunked;
}

int
http_stream_next(struct http_stream *st, const char *buf, size_t len,
    const struct http_limits *lim, struct http_request *req, size_t *used)
{
	size_t	 off = 0, n;
	int	 rc;

	*used = 0;
	while (http_stream_busy(st)) {
		if (off == len) {
			*used = off;
			memset(req, 0, offsetof(struct http_request, req_fwd));
			return HTTP_NEED_MORE;
		}
		if (st->st_skip > 0) {
			n = len - off;
			if ((uint64_t)n > st->st_skip)
				n = (size_t)st->st_skip;
			st->st_skip -= n;
			off += n;
			continue;
		}
		rc = http_chunked_skip(&st->st_chunked, buf + off, len - off,
		    &n);
		if (rc == -1) {
			memset(req, 0, offsetof(struct http_request, req_fwd));
			*used = off;
			return fail(req, 400);
		}
		off += n;
		if (rc == 1)
			st->st_in_chunked = 0;
	}
	rc = http_parse_resume(&st->st_scan, buf + off, len - off, lim, req);
	*used = off + req->req_consumed;
	if (rc == HTTP_DONE) {
		if (req->req_body == HTTP_BODY_LENGTH)
			st->st_skip = req->req_content_length;
		else if (req->req_body == HTTP_BODY_CHUNKED) {
			http_chunked_init(&st->st_chunked);
			st->st_in_chunked = 1;
		}
	}
	return rc;
}
