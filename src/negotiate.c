/*
 * Accept (RFC 9110 12.5.1), parsed strictly, as a pure function:
 *
 *   Accept       = #( media-range [ weight ] )
 *   media-range  = ( "*" "/" "*" / type "/" "*" / type "/" subtype )
 *                  *( OWS ";" OWS parameter )
 *   parameter    = token "=" ( token / quoted-string )
 *   weight       = OWS ";" OWS "q=" qvalue
 *   qvalue       = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )
 *
 * Empty list elements are allowed.  Each of the three types hellod can
 * answer gets the q-value of the most specific range that matches it
 * (type/subtype, then the type with any subtype, then anything;
 * parameters other than q make a
 * range no more specific).  Only a value in which some range names one of
 * the types, or its type, states a preference; the full wildcard alone
 * (or an empty value) does not, and a value without it and without the
 * three accepts none of them.
 * The value is at most one field line (the parser keeps the last one).
 */
#include <stddef.h>
#include <string.h>
#include <strings.h>

#include "negotiate.h"

enum { T_HTML, T_JSON, T_TEXT, T_N };

static const struct {
	const char	*mt_type;
	size_t		 mt_typelen;
	const char	*mt_sub;
	size_t		 mt_sublen;
} types[T_N] = {
	[T_HTML] = { "text", 4, "html", 4 },
	[T_JSON] = { "application", 11, "json", 4 },
	[T_TEXT] = { "text", 4, "plain", 5 },
};

static int
is_tchar(unsigned char c)
{
	if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	    (c >= 'A' && c <= 'Z'))
		return 1;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int
is_ows(unsigned char c)
{
	return c == ' ' || c == '\t';
}

static size_t
token(const char *s, size_t i, size_t len)
{
	while (i < len && is_tchar((unsigned char)s[i]))
		i++;
	return i;
}

/* A qvalue in s[0..n): thousandths, or -1. */
static int
qvalue(const char *s, size_t n)
{
	int	 v, i;

	if (n == 0 || (s[0] != '0' && s[0] != '1'))
		return -1;
	v = (s[0] - '0') * 1000;
	if (n == 1)
		return v;
	if (s[1] != '.' || n > 5)
		return -1;
	for (i = 2; i < (int)n; i++) {
		if (s[i] < '0' || s[i] > '9' || (v == 1000 && s[i] != '0'))
			return -1;
		v += (s[i] - '0') * (i == 2 ? 100 : i == 3 ? 10 : 1);
	}
	return v;
}

/* The specificity of range type/sub for t: 3 exact, 2 type / *, 1 * / *,
 * 0 no match. */
static int
matches(int t, const char *type, size_t tl, const char *sub, size_t sl)
{
	if (tl == 1 && type[0] == '*')
		return 1;
	if (tl != types[t].mt_typelen ||
	    strncasecmp(type, types[t].mt_type, tl) != 0)
		return 0;
	if (sl == 1 && sub[0] == '*')
		return 2;
	if (sl == types[t].mt_sublen &&
	    strncasecmp(sub, types[t].mt_sub, sl) == 0)
		return 3;
	return 0;
}

enum neg_result
negotiate_accept(const char *v, size_t len)
{
	int		 q[T_N] = { 0, 0, 0 }, spec[T_N] = { 0, 0, 0 };
	int		 rq, s, t, best, stated = 0, ranges = 0;
	size_t		 i = 0, ts, te, ss, se, ps, pe, e;

	if (v == NULL)
		return NEG_ANY;
	for (;;) {
		while (i < len && (is_ows((unsigned char)v[i]) || v[i] == ','))
			i++;
		if (i == len)
			break;
		ranges++;
		ts = i;
		te = token(v, i, len);
		if (te == ts || te == len || v[te] != '/')
			return NEG_MALFORMED;
		ss = te + 1;
		se = token(v, ss, len);
		if (se == ss)
			return NEG_MALFORMED;
		if (te - ts == 1 && v[ts] == '*' &&
		    !(se - ss == 1 && v[ss] == '*'))
			return NEG_MALFORMED;
		i = se;
		rq = 1000;
		/* Parameters; q= ends the media range's own (the rest are
		 * accept-ext, checked the same way). */
		for (;;) {
			while (i < len && is_ows((unsigned char)v[i]))
				i++;
			if (i == len || v[i] == ',')
				break;
			if (v[i] != ';')
				return NEG_MALFORMED;
			i++;
			while (i < len && is_ows((unsigned char)v[i]))
				i++;
			ps = i;
			pe = token(v, i, len);
			if (pe == ps || pe == len || v[pe] != '=')
				return NEG_MALFORMED;
			i = pe + 1;
			if (i < len && v[i] == '"') {
				for (i++; i < len && v[i] != '"'; i++)
					if (v[i] == '\\' && ++i == len)
						return NEG_MALFORMED;
				if (i == len)
					return NEG_MALFORMED;
				i++;
				if (pe - ps == 1 && (v[ps] | 0x20) == 'q')
					return NEG_MALFORMED;
			} else {
				e = token(v, i, len);
				if (e == i)
					return NEG_MALFORMED;
				if (pe - ps == 1 && (v[ps] | 0x20) == 'q' &&
				    (rq = qvalue(v + i, e - i)) == -1)
					return NEG_MALFORMED;
				i = e;
			}
		}
		for (t = 0; t < T_N; t++) {
			s = matches(t, v + ts, te - ts, v + ss, se - ss);
			if (s >= 2)
				stated = 1;
			/* The most specific range wins; among equals, the
			 * first. */
			if (s > spec[t]) {
				spec[t] = s;
				q[t] = rq;
			}
		}
	}
	/* No range, or only the full wildcard: no preference. */
	if (ranges == 0)
		return NEG_ANY;
	if (!stated)
		return q[T_HTML] > 0 ? NEG_ANY : NEG_NONE;
	best = T_HTML;
	for (t = 1; t < T_N; t++)
		if (q[t] > q[best])
			best = t;
	if (q[best] == 0)
		return NEG_NONE;
	return best == T_HTML ? NEG_HTML : best == T_JSON ? NEG_JSON :
	    NEG_TEXT;
}

int
negotiate_cli_agent(const char *ua, size_t len)
{
	static const struct {
		const char	*p;
		size_t		 n;
	} prefixes[] = {
		{ "curl/", 5 }, { "Wget/", 5 }, { "HTTPie/", 7 }, { "xh/", 3 },
		{ "fetch libfetch", 14 },
	};
	size_t	 i;

	if (ua == NULL)
		return 0;
	for (i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
		if (len >= prefixes[i].n &&
		    memcmp(ua, prefixes[i].p, prefixes[i].n) == 0)
			return 1;
	return 0;
}
