/*
 * Fuzz target for the per-request knobs (src/knobs.c): the input is the
 * query string of a request, the bytes after '?', handed to knobs_parse()
 * under the built-in maxima (query_max_delay 10s, query_max_padding 1m).
 *
 * Checked on every input:
 *
 *  1. the result is 0 or -1; on 0 each flag is 0 or 1, a knob not set is
 *     0 and a set one is within its maximum (a status within 200..599);
 *     the same bytes parse the same way again;
 *  2. the maxima only filter: a query accepted under the defaults is
 *     accepted with the same knobs under maxima no value can reach, and
 *     one accepted under maxima of 0 is accepted, with the same knobs,
 *     under the defaults;
 *  3. without '%' and without the bytes "delay", "pad", "status", "close"
 *     or "reset", a query sets nothing and is accepted;
 *  4. '&' at either end changes nothing;
 *  5. splitting at an '&': the query is accepted exactly when both sides
 *     are, and then holds the first side's knobs overridden by those the
 *     second side sets (the last value wins);
 *  6. percent-encoding any byte that is not '%', '&', '=' or part of an
 *     escape, in upper or lower case hex chosen by the input, gives the
 *     same result: keys and values are compared decoded.
 *
 * Each derived query is parsed from a buffer of its exact size, so that
 * AddressSanitizer sees any read past its end.  A violated invariant
 * prints what failed and aborts.  The file builds as a libFuzzer target
 * (clang -fsanitize=fuzzer) or, linked with replay.c, as a plain program
 * that replays the corpus.
 */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hellod.h"
#include "knobs.h"
#include "fuzz.h"

static struct hd_config	 cf_default, cf_unlimited, cf_zero;

static void
setup(void)
{
	static int	 ready;

	if (ready)
		return;
	config_defaults(&cf_default);
	cf_unlimited = cf_default;
	cf_unlimited.cf_query_max_delay = UINT_MAX;
	cf_unlimited.cf_query_max_padding = SIZE_MAX;
	cf_zero = cf_default;
	cf_zero.cf_query_max_delay = 0;
	cf_zero.cf_query_max_padding = 0;
	ready = 1;
}

/* knobs_parse() on an exact-size copy of q[0..len), checked (1). */
static int
parse(const char *q, size_t len, const struct hd_config *cf,
    struct knobs *k)
{
	char	*copy = malloc(len > 0 ? len : 1);
	int	 rc;

	CHECK(copy != NULL);
	if (len > 0)
		memcpy(copy, q, len);
	memset(k, 0xa5, sizeof(*k));
	rc = knobs_parse(copy, len, cf, k);
	free(copy);
	CHECK(rc == 0 || rc == -1);
	if (rc == 0) {
		CHECK(k->kn_has_delay == 0 || k->kn_has_delay == 1);
		CHECK(k->kn_has_pad == 0 || k->kn_has_pad == 1);
		CHECK(k->kn_has_delay || k->kn_delay == 0);
		CHECK(k->kn_has_pad || k->kn_pad == 0);
		CHECK(k->kn_delay <= cf->cf_query_max_delay);
		CHECK(k->kn_pad <= cf->cf_query_max_padding);
		CHECK(k->kn_has_delay_body == 0 || k->kn_has_delay_body == 1);
		CHECK(k->kn_has_delay_body || k->kn_delay_body == 0);
		CHECK(k->kn_delay_body <= cf->cf_query_max_delay);
		CHECK(k->kn_status == 0 ||
		    (k->kn_status >= 200 && k->kn_status <= 599));
		CHECK(k->kn_has_close == 0 || k->kn_has_close == 1);
		CHECK(k->kn_close == 0 || (k->kn_close == 1 &&
		    k->kn_has_close));
		CHECK(k->kn_has_reset == 0 || k->kn_has_reset == 1);
		CHECK(k->kn_reset == 0 || (k->kn_reset == 1 &&
		    k->kn_has_reset));
	}
	return rc;
}

static int
same_knobs(const struct knobs *a, const struct knobs *b)
{
	return a->kn_has_delay == b->kn_has_delay &&
	    a->kn_delay == b->kn_delay && a->kn_has_pad == b->kn_has_pad &&
	    a->kn_pad == b->kn_pad &&
	    a->kn_has_delay_body == b->kn_has_delay_body &&
	    a->kn_delay_body == b->kn_delay_body &&
	    a->kn_status == b->kn_status &&
	    a->kn_has_close == b->kn_has_close && a->kn_close == b->kn_close &&
	    a->kn_has_reset == b->kn_has_reset && a->kn_reset == b->kn_reset;
}

/* Both results are the same: both errors, or the same knobs. */
static void
check_same(int rca, const struct knobs *a, int rcb, const struct knobs *b)
{
	CHECK(rca == rcb);
	if (rca == 0)
		CHECK(same_knobs(a, b));
}

static int
hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* 2. The maxima. */
static void
check_maxima(const char *q, size_t len, int rc, const struct knobs *k)
{
	struct knobs	 ku, kz;
	int		 rcu, rcz;

	rcu = parse(q, len, &cf_unlimited, &ku);
	if (rc == 0) {
		CHECK(rcu == 0);
		CHECK(same_knobs(k, &ku));
	}
	rcz = parse(q, len, &cf_zero, &kz);
	if (rcz == 0) {
		CHECK(rc == 0);
		CHECK(same_knobs(k, &kz));
		CHECK(kz.kn_delay == 0 && kz.kn_pad == 0 &&
		    kz.kn_delay_body == 0);
	}
}

/* 3. Nothing that could name a knob. */
static void
check_plain(const char *q, size_t len, int rc, const struct knobs *k)
{
	if (memchr(q, '%', len) != NULL ||
	    memmem(q, len, "delay", 5) != NULL ||
	    memmem(q, len, "pad", 3) != NULL ||
	    memmem(q, len, "status", 6) != NULL ||
	    memmem(q, len, "close", 5) != NULL ||
	    memmem(q, len, "reset", 5) != NULL)
		return;
	CHECK(rc == 0);
	CHECK(!k->kn_has_delay && !k->kn_has_pad && !k->kn_has_delay_body &&
	    k->kn_status == 0 && !k->kn_has_close && !k->kn_has_reset);
}

/* 4. Empty pairs at either end. */
static void
check_ends(const char *q, size_t len, int rc, const struct knobs *k)
{
	struct knobs	 k2;
	char		*buf = malloc(len + 2);
	int		 rc2;

	CHECK(buf != NULL);
	buf[0] = '&';
	if (len > 0)
		memcpy(buf + 1, q, len);
	buf[len + 1] = '&';
	rc2 = parse(buf, len + 2, &cf_default, &k2);
	check_same(rc, k, rc2, &k2);
	rc2 = parse(buf + 1, len + 1, &cf_default, &k2);
	check_same(rc, k, rc2, &k2);
	rc2 = parse(buf, len + 1, &cf_default, &k2);
	check_same(rc, k, rc2, &k2);
	free(buf);
}

/* 5. The two sides of an '&' chosen by the input. */
static void
check_split(const char *q, size_t len, int rc, const struct knobs *k)
{
	struct knobs	 ka, kb, want;
	const char	*amp, *last = NULL, *p = q;
	size_t		 n = 0, pick;
	int		 rca, rcb;

	while ((amp = memchr(p, '&', len - (size_t)(p - q))) != NULL) {
		n++;
		last = amp;
		p = amp + 1;
	}
	if (n == 0)
		return;
	/* The k-th '&', k from the length: varied but reproducible. */
	pick = len % n;
	for (amp = memchr(q, '&', len); pick > 0; pick--)
		amp = memchr(amp + 1, '&', len - (size_t)(amp + 1 - q));
	CHECK(amp != NULL && amp <= last);

	rca = parse(q, (size_t)(amp - q), &cf_default, &ka);
	rcb = parse(amp + 1, len - (size_t)(amp + 1 - q), &cf_default, &kb);
	CHECK(rc == (rca == 0 && rcb == 0 ? 0 : -1));
	if (rc != 0)
		return;
	want = ka;
	if (kb.kn_has_delay) {
		want.kn_has_delay = 1;
		want.kn_delay = kb.kn_delay;
	}
	if (kb.kn_has_pad) {
		want.kn_has_pad = 1;
		want.kn_pad = kb.kn_pad;
	}
	if (kb.kn_has_delay_body) {
		want.kn_has_delay_body = 1;
		want.kn_delay_body = kb.kn_delay_body;
	}
	if (kb.kn_status != 0)
		want.kn_status = kb.kn_status;
	if (kb.kn_has_close) {
		want.kn_has_close = 1;
		want.kn_close = kb.kn_close;
	}
	if (kb.kn_has_reset) {
		want.kn_has_reset = 1;
		want.kn_reset = kb.kn_reset;
	}
	CHECK(same_knobs(k, &want));
}

/* 6. More percent-encoding.  seed's bits choose the bytes to encode and
 * the case of their hex digits. */
static void
check_encoded(const char *q, size_t len, int rc, const struct knobs *k,
    uint32_t seed)
{
	static const char	 upper[] = "0123456789ABCDEF";
	static const char	 lower[] = "0123456789abcdef";
	struct knobs		 k2;
	const char		*hex;
	char			*buf = malloc(3 * len + 1), *o;
	unsigned char		 c;
	size_t			 i;
	uint32_t		 s = seed | 1;
	int			 rc2;

	CHECK(buf != NULL);
	o = buf;
	for (i = 0; i < len; i++) {
		c = (unsigned char)q[i];
		/* xorshift32 */
		s ^= s << 13;
		s ^= s >> 17;
		s ^= s << 5;
		if (c == '%' && i + 2 < len &&
		    hexval((unsigned char)q[i + 1]) >= 0 &&
		    hexval((unsigned char)q[i + 2]) >= 0) {
			memcpy(o, q + i, 3);
			o += 3;
			i += 2;
		} else if (c == '%' || c == '&' || c == '=' || (s & 3) == 0)
			*o++ = (char)c;
		else {
			hex = s & 4 ? upper : lower;
			*o++ = '%';
			*o++ = hex[c >> 4];
			*o++ = hex[c & 15];
		}
	}
	rc2 = parse(buf, (size_t)(o - buf), &cf_default, &k2);
	check_same(rc, k, rc2, &k2);
	free(buf);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char	*q = (const char *)data;
	struct knobs	 k, again;
	uint32_t	 seed;
	int		 rc;

	setup();
	rc = parse(q, size, &cf_default, &k);
	check_same(rc, &k, parse(q, size, &cf_default, &again), &again);
	check_maxima(q, size, rc, &k);
	check_plain(q, size, rc, &k);
	check_ends(q, size, rc, &k);
	check_split(q, size, rc, &k);
	seed = size >= 2 ? (uint32_t)data[0] | (uint32_t)data[size - 1] << 8 :
	    0x9e3779b9u;
	check_encoded(q, size, rc, &k, seed);
	return 0;
}
