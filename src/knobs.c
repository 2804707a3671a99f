/*
 * Per-request knobs in the query string, when [http] query_knobs is on:
 * ?delay=DURATION waits before answering and ?pad=SIZE pads the greeting,
 * in the configuration's syntax ("50ms", "1k") and within its maxima;
 * ?delay_body=DURATION sends the head at once and the body that much
 * later (within query_max_delay); ?status=NNN answers any status from 200
 * to 599 with the greeting; ?close=1 closes the connection after the
 * answer; ?reset=1 resets it instead of answering.  close and reset take
 * 0 or 1 (0: as if absent).
 *
 * A pure function over the query's bytes.  Pairs are separated by '&'
 * (';' is not a separator); keys and values are percent-decoded; other
 * keys are ignored; a knob given twice takes its last
 * value.  A knob without '=' or with an empty value, a value the syntax
 * does not allow or over its maximum, and malformed percent-encoding
 * anywhere are errors: the request is answered 400.
 */
#include <stddef.h>
#include <string.h>

#include "hellod.h"
#include "knobs.h"

#define KNOB_VALUE_MAX	32	/* decoded bytes of a knob's value */

enum knob {
	KNOB_NONE,
	KNOB_DELAY,
	KNOB_PAD,
	KNOB_DELAY_BODY,
	KNOB_STATUS,
	KNOB_CLOSE,
	KNOB_RESET
};

static const char *const knob_names[] = {
	[KNOB_DELAY] = "delay",
	[KNOB_PAD] = "pad",
	[KNOB_DELAY_BODY] = "delay_body",
	[KNOB_STATUS] = "status",
	[KNOB_CLOSE] = "close",
	[KNOB_RESET] = "reset",
};

static enum knob
knob_of(const char *key)
{
	size_t	 i;

	for (i = KNOB_DELAY; i <= KNOB_RESET; i++)
		if (strcmp(key, knob_names[i]) == 0)
			return (enum knob)i;
	return KNOB_NONE;
}

/* A status: three digits, 200..599. */
static int
status_value(const char *v, int *code)
{
	if (strlen(v) != 3 || v[0] < '2' || v[0] > '5' ||
	    v[1] < '0' || v[1] > '9' || v[2] < '0' || v[2] > '9')
		return -1;
	*code = (v[0] - '0') * 100 + (v[1] - '0') * 10 + (v[2] - '0');
	return 0;
}

/* A flag: "0" or "1". */
static int
flag_value(const char *v, int *flag)
{
	if ((v[0] != '0' && v[0] != '1') || v[1] != '\0')
		return -1;
	*flag = v[0] - '0';
	return 0;
}

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
	char		 key[12], value[KNOB_VALUE_MAX + 1];
	const char	*p, *end = q + len, *amp, *eq, *kend;
	enum knob	 kn;
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
		    (kn = knob_of(key)) == KNOB_NONE)
			continue;
		if (eq == NULL || decode(eq + 1, (size_t)(amp - eq - 1), value,
		    sizeof(value)) <= 0)
			return -1;
		switch (kn) {
		case KNOB_DELAY:
		case KNOB_DELAY_BODY:
			if (config_parse_duration(value, &ms) == -1 ||
			    ms > cf->cf_query_max_delay)
				return -1;
			if (kn == KNOB_DELAY) {
				k->kn_delay = ms;
				k->kn_has_delay = 1;
			} else {
				k->kn_delay_body = ms;
				k->kn_has_delay_body = 1;
			}
			break;
		case KNOB_PAD:
			if (config_parse_size(value, &size) == -1 ||
			    size > cf->cf_query_max_padding)
				return -1;
			k->kn_pad = size;
			k->kn_has_pad = 1;
			break;
		case KNOB_STATUS:
			if (status_value(value, &k->kn_status) == -1)
				return -1;
			break;
		case KNOB_CLOSE:
			if (flag_value(value, &k->kn_close) == -1)
				return -1;
			k->kn_has_close = 1;
			break;
		case KNOB_RESET:
			if (flag_value(value, &k->kn_reset) == -1)
				return -1;
			k->kn_has_reset = 1;
			break;
		case KNOB_NONE:
			break;
		}
	}
	return 0;
}
