/*
 * Per-request knobs in the query string, when [http] query_knobs is on:
 * ?delay=DURATION waits before answering and ?pad=SIZE pads the greeting,
 * in the configuration's syntax ("50ms", "1k") and within its maxima.
 *
 * A pure function over the query's bytes.  Pairs are separated by '&'
 * (';' is not a separator); keys and values are percent-decoded; keys
 * other than delay and pad are ignored; a knob given twice takes its last
 * value.  A knob without '=' or with an empty value, a value the syntax
 * does not allow or over its maximum, and malformed percent-encoding
 * anywhere are errors: the request is answered 400.
 */
#include <stddef.h>
#include <string.h>

#include "hellod.h"
#include "knobs.h"

#define KNOB_VALUE_MAX	32	/* decoded bytes of a knob's value */

static int
hexdigit(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Whether every '%' in s[0..len) starts a %XX escape. */
static int
valid_escapes(const char *s, size_t len)
{
	size_t	 i;

	for (i = 0; i < len; i++)
		if (s[i] == '%' && (i + 2 >= len ||
		    hexdigit((unsigned char)s[i + 1]) < 0 ||
		    hexdigit((unsigned char)s[i + 2]) < 0))
			return 0;
	return 1;
}

/* Percent-decodes s[0..len), whose escapes are valid, into out
 * (NUL-terminated); returns the decoded length, or -1 when it does not
 * fit in cap bytes or holds a NUL. */
static int
decode(const char *s, size_t len, char *out, size_t cap)
{
	size_t	 i, o = 0;
	char	 c;

	for (i = 0; i < len; i++) {
		c = s[i];
		if (c == '%') {
			c = (char)(hexdigit((unsigned char)s[i + 1]) << 4 |
			    hexdigit((unsigned char)s[i + 2]));
			i += 2;
		}
		if (c == '\0' || o + 1 >= cap)
			return -1;
		out[o++] = c;
	}
	out[o] = '\0';
	return (int)o;
}

int
knobs_parse(const char *q, size_t len, const struct hd_config *cf,
    struct knobs *k)
{
	char		 key[8], value[KNOB_VALUE_MAX + 1];
	const char	*p, *end = q + len, *amp, *eq, *kend;
	unsigned	 ms;
	size_t		 size;

	memset(k, 0, sizeof(*k));
	if (!valid_escapes(q, len))
		return -1;
	for (p = q; p < end; p = amp + 1) {
		if ((amp = memchr(p, '&', (size_t)(end - p))) == NULL)
			amp = end;
		eq = memchr(p, '=', (size_t)(amp - p));
		kend = eq != NULL ? eq : amp;
		/* A key that does not decode into key[] is not a knob. */
		if (decode(p, (size_t)(kend - p), key, sizeof(key)) == -1 ||
		    (strcmp(key, "delay") != 0 && strcmp(key, "pad") != 0))
			continue;
		if (eq == NULL || decode(eq + 1, (size_t)(amp - eq - 1), value,
		    sizeof(value)) <= 0)
			return -1;
		if (key[0] == 'd') {
			if (config_parse_duration(value, &ms) == -1 ||
			    ms > cf->cf_query_max_delay)
				return -1;
			k->kn_delay = ms;
			k->kn_has_delay = 1;
		} else {
			if (config_parse_size(value, &size) == -1 ||
			    size > cf->cf_query_max_padding)
				return -1;
			k->kn_pad = size;
			k->kn_has_pad = 1;
		}
	}
	return 0;
}
