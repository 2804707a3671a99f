/*
 * Unit tests for the per-request knobs: knobs_parse() (src/knobs.c) on
 * the bytes of a query string, how answer_decide() (src/answer.c) applies
 * them to an answer, and the [http] keys query_knobs, query_max_delay and
 * query_max_padding (src/config.c).
 *
 * Case 39 of /work/shared/HTTP-CASES.md.  As implemented and documented
 * in hellod.conf(5): pairs are separated by '&' only; keys and values are
 * percent-decoded ('+' is not a space); keys other than "delay" and "pad"
 * are ignored; a knob given twice takes its last value, and every
 * occurrence must be valid; a knob without '=' or with an empty,
 * malformed or excessive value, and malformed percent-encoding anywhere
 * in the query, are errors (400).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <cmocka.h>

#include "hellod.h"
#include "conf_text.h"
#include "http.h"
#include "answer.h"
#include "knobs.h"

/* A byte string literal with its exact length (it may contain NULs). */
#define RAW(lit)	(lit), (sizeof(lit) - 1)

#define KIB		((size_t)1024)
#define MIB		((size_t)1024 * 1024)

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

/* The built-in defaults: query_max_delay 10s, query_max_padding 1m. */
static struct hd_config
cf_defaults(void)
{
	struct hd_config	 cf;

	config_defaults(&cf);
	return cf;
}

static struct hd_config
cf_caps(unsigned max_delay, size_t max_padding)
{
	struct hd_config	 cf = cf_defaults();

	cf.cf_query_max_delay = max_delay;
	cf.cf_query_max_padding = max_padding;
	return cf;
}

/*
 * knobs_parse() on a private copy of exactly len bytes (no NUL after
 * it), so that a read past the query is caught by ASan/valgrind instead
 * of finding the rest of the test's string.  The output starts as
 * garbage.  Checks what holds for every query: the result is 0 or -1,
 * and on 0 the flags are 0 or 1, an unset knob is 0 and a set one is
 * within its maximum.
 */
static int
parse_len(const char *q, size_t len, const struct hd_config *cf,
    struct knobs *k)
{
	char	*copy = malloc(len > 0 ? len : 1);
	int	 rc;

	assert_non_null(copy);
	memcpy(copy, q, len);
	memset(k, 0xa5, sizeof(*k));
	rc = knobs_parse(copy, len, cf, k);
	free(copy);
	if (rc != 0 && rc != -1)
		fail_msg("query \"%.*s\": result %d", (int)len, q, rc);
	if (rc == 0) {
		assert_true(k->kn_has_delay == 0 || k->kn_has_delay == 1);
		assert_true(k->kn_has_pad == 0 || k->kn_has_pad == 1);
		if (!k->kn_has_delay)
			assert_int_equal(k->kn_delay, 0);
		if (!k->kn_has_pad)
			assert_true(k->kn_pad == 0);
		assert_true(k->kn_delay <= cf->cf_query_max_delay);
		assert_true(k->kn_pad <= cf->cf_query_max_padding);
	}
	return rc;
}

/* The query must parse to exactly these knobs. */
static void
expect_len(const char *q, size_t len, const struct hd_config *cf,
    int has_delay, unsigned delay, int has_pad, size_t pad)
{
	struct knobs	 k;

	if (parse_len(q, len, cf, &k) != 0)
		fail_msg("query \"%.*s\": error, expected delay %d/%u pad "
		    "%d/%zu", (int)(len > 100 ? 100 : len), q, has_delay,
		    delay, has_pad, pad);
	if (k.kn_has_delay != has_delay || k.kn_delay != delay ||
	    k.kn_has_pad != has_pad || k.kn_pad != pad)
		fail_msg("query \"%.*s\": delay %d/%u pad %d/%zu, expected "
		    "delay %d/%u pad %d/%zu", (int)(len > 100 ? 100 : len), q,
		    k.kn_has_delay, k.kn_delay, k.kn_has_pad, k.kn_pad,
		    has_delay, delay, has_pad, pad);
}

static void
expect_cf(const char *q, const struct hd_config *cf, int has_delay,
    unsigned delay, int has_pad, size_t pad)
{
	expect_len(q, strlen(q), cf, has_delay, delay, has_pad, pad);
}

static void
expect(const char *q, int has_delay, unsigned delay, int has_pad,
    size_t pad)
{
	struct hd_config	 cf = cf_defaults();

	expect_cf(q, &cf, has_delay, delay, has_pad, pad);
}

/* Shorthands, under the default maxima. */
static void
expect_none(const char *q)
{
	expect(q, 0, 0, 0, 0);
}

static void
expect_delay(const char *q, unsigned ms)
{
	expect(q, 1, ms, 0, 0);
}

static void
expect_pad(const char *q, size_t n)
{
	expect(q, 0, 0, 1, n);
}

/* The query must be refused (the request is answered 400). */
static void
expect_bad_len(const char *q, size_t len, const struct hd_config *cf)
{
	struct knobs	 k;

	if (parse_len(q, len, cf, &k) != -1)
		fail_msg("query \"%.*s\": accepted as delay %d/%u pad %d/%zu, "
		    "expected an error", (int)(len > 100 ? 100 : len), q,
		    k.kn_has_delay, k.kn_delay, k.kn_has_pad, k.kn_pad);
}

static void
expect_bad_cf(const char *q, const struct hd_config *cf)
{
	expect_bad_len(q, strlen(q), cf);
}

static void
expect_bad(const char *q)
{
	struct hd_config	 cf = cf_defaults();

	expect_bad_cf(q, &cf);
}

static void
expect_all_bad(const char *const *qs, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		expect_bad(qs[i]);
}

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))

/* A string of n copies of unit followed by tail; free() it. */
static char *
repeat(const char *head, const char *unit, size_t n, const char *tail)
{
	size_t	 hl = strlen(head), ul = strlen(unit), tl = strlen(tail), i;
	char	*s = malloc(hl + ul * n + tl + 1), *p;

	assert_non_null(s);
	memcpy(s, head, hl);
	p = s + hl;
	for (i = 0; i < n; i++, p += ul)
		memcpy(p, unit, ul);
	memcpy(p, tail, tl + 1);
	return s;
}

/* ------------------------------------------------------------------ */
/* Values and units                                                    */
/* ------------------------------------------------------------------ */

/* ?delay= takes a duration: "50ms", "2s", "1m", a bare number of
 * seconds. */
static void
test_delay_values(void **state)
{
	static const struct {
		const char	*q;
		unsigned	 ms;
	} ok[] = {
		{ "delay=50ms", 50 }, { "delay=1ms", 1 }, { "delay=0", 0 },
		{ "delay=0ms", 0 }, { "delay=0s", 0 }, { "delay=0m", 0 },
		{ "delay=2s", 2000 }, { "delay=1", 1000 },
		{ "delay=007", 7000 },
		{ "delay=300ms", 300 }, { "delay=9999ms", 9999 },
		{ "delay=10000ms", 10000 }, { "delay=10s", 10000 },
		{ "delay=10", 10000 },
	};
	static const char *const bad[] = {
		"delay=1.5s", "delay=5h", "delay=5S", "delay=5MS", "delay=5Ms",
		"delay=5sec", "delay=5mss", "delay=-1", "delay=+1", "delay=ms",
		"delay=s", "delay=0x10", "delay=abc", "delay=1e3",
		"delay=%205", "delay=5%20", "delay=5%09", "delay=5ms5",
	};
	size_t	 i;

	(void)state;
	for (i = 0; i < NELEM(ok); i++)
		expect_delay(ok[i].q, ok[i].ms);
	expect_all_bad(bad, NELEM(bad));
}

/* ?pad= takes a size: "512", "1k", "1m" (binary multiples, either
 * case). */
static void
test_pad_values(void **state)
{
	static const struct {
		const char	*q;
		size_t		 n;
	} ok[] = {
		{ "pad=0", 0 }, { "pad=0k", 0 }, { "pad=0m", 0 },
		{ "pad=1", 1 },
		{ "pad=512", 512 }, { "pad=1k", KIB }, { "pad=1K", KIB },
		{ "pad=16k", 16 * KIB }, { "pad=1023k", 1023 * KIB },
		{ "pad=1m", MIB }, { "pad=1M", MIB }, { "pad=1024k", MIB },
		{ "pad=1048576", MIB }, { "pad=0001k", KIB },
	};
	static const char *const bad[] = {
		"pad=1g", "pad=1G", "pad=1kb", "pad=1kk", "pad=1.5k",
		"pad=-1", "pad=+1", "pad=k", "pad=m", "pad=0x10", "pad=abc",
		"pad=1e3", "pad=%201", "pad=1%20", "pad=1%20k", "pad=1b",
	};
	size_t	 i;

	(void)state;
	for (i = 0; i < NELEM(ok); i++)
		expect_pad(ok[i].q, ok[i].n);
	expect_all_bad(bad, NELEM(bad));
}

static void
test_both_knobs(void **state)
{
	(void)state;
	expect("delay=50ms&pad=1k", 1, 50, 1, KIB);
	expect("pad=1k&delay=50ms", 1, 50, 1, KIB);
	expect("delay=0&pad=0", 1, 0, 1, 0);
	expect("a=1&delay=2s&b=2&pad=512&c=3", 1, 2000, 1, 512);
	/* One bad knob spoils the pair. */
	expect_bad("delay=50ms&pad=1x");
	expect_bad("delay=50x&pad=1k");
}

/* ------------------------------------------------------------------ */
/* Maxima                                                              */
/* ------------------------------------------------------------------ */

/* The defaults: 10s and 1m, each allowed exactly, one unit more not. */
static void
test_default_caps(void **state)
{
	(void)state;
	expect_delay("delay=10s", 10000);
	expect_delay("delay=10000ms", 10000);
	expect_bad("delay=10001ms");
	expect_bad("delay=11");
	expect_bad("delay=1m");
	expect_pad("pad=1m", MIB);
	expect_pad("pad=1048576", MIB);
	expect_bad("pad=1048577");
	expect_bad("pad=1025k");
	expect_bad("pad=2m");
}

/* Custom maxima in the configuration, compared after the unit. */
static void
test_custom_caps(void **state)
{
	struct hd_config	 cf;

	(void)state;
	cf = cf_caps(250, 100);
	expect_cf("delay=250ms", &cf, 1, 250, 0, 0);
	expect_cf("delay=0", &cf, 1, 0, 0, 0);
	expect_bad_cf("delay=251ms", &cf);
	expect_bad_cf("delay=1", &cf);		/* 1000 ms */
	expect_bad_cf("delay=1s", &cf);
	expect_bad_cf("delay=1m", &cf);
	expect_cf("pad=100", &cf, 0, 0, 1, 100);
	expect_cf("pad=0k", &cf, 0, 0, 1, 0);
	expect_bad_cf("pad=101", &cf);
	expect_bad_cf("pad=1k", &cf);
	expect_bad_cf("pad=1m", &cf);
	expect_cf("delay=250ms&pad=100", &cf, 1, 250, 1, 100);
	expect_bad_cf("delay=250ms&pad=101", &cf);
	expect_bad_cf("delay=251ms&pad=100", &cf);
	/* Other keys are not held to a maximum. */
	expect_cf("x=1m&y=1000", &cf, 0, 0, 0, 0);

	/* "1k" is 1024 bytes, not 1000. */
	cf = cf_caps(1000, 1023);
	expect_bad_cf("pad=1k", &cf);
	expect_cf("pad=1023", &cf, 0, 0, 1, 1023);
	expect_cf("delay=1", &cf, 1, 1000, 0, 0);
	expect_bad_cf("delay=1001ms", &cf);
	cf = cf_caps(1000, 1024);
	expect_cf("pad=1k", &cf, 0, 0, 1, KIB);
	expect_bad_cf("pad=1025", &cf);

	/* Maxima of 0: only 0 is allowed. */
	cf = cf_caps(0, 0);
	expect_cf("delay=0", &cf, 1, 0, 0, 0);
	expect_cf("delay=0ms", &cf, 1, 0, 0, 0);
	expect_cf("pad=0", &cf, 0, 0, 1, 0);
	expect_cf("pad=0m", &cf, 0, 0, 1, 0);
	expect_bad_cf("delay=1ms", &cf);
	expect_bad_cf("pad=1", &cf);

	/* The largest maxima the file allows: 60s and 64m. */
	cf = cf_caps(60000, HD_MAX_PADDING);
	expect_cf("delay=1m", &cf, 1, 60000, 0, 0);
	expect_cf("delay=60s", &cf, 1, 60000, 0, 0);
	expect_bad_cf("delay=60001ms", &cf);
	expect_bad_cf("delay=2m", &cf);
	expect_cf("pad=64m", &cf, 0, 0, 1, (size_t)HD_MAX_PADDING);
	expect_bad_cf("pad=65537k", &cf);
	expect_bad_cf("pad=67108865", &cf);
}

/* Numbers that overflow, or would wrap when multiplied by their unit,
 * are refused, not reduced modulo 2^n into range. */
static void
test_overflow(void **state)
{
	static const char *const bad[] = {
		"pad=99999999999999999999", "pad=18446744073709551615",
		"pad=18446744073709551616", "pad=18446744073709551617",
		"pad=18014398509481985k",	/* 2^64 + 1 KiB bytes */
		"pad=17592186044417m",		/* 2^64 + 1 MiB bytes */
		"delay=9999999999ms", "delay=99999999999999999999",
		"delay=4294967296ms",		/* 2^32 ms */
		"delay=4294967297ms",		/* 2^32 + 1 ms */
		"delay=4294968s",		/* 2^32 + 704 ms */
		"delay=71583m",			/* 2^32 + 12704 ms */
		"delay=18446744073709551615ms",
	};
	struct hd_config	 cf;
	size_t			 i;

	(void)state;
	expect_all_bad(bad, NELEM(bad));
	/* Even with maxima no value can exceed. */
	cf = cf_caps(UINT_MAX, SIZE_MAX);
	for (i = 0; i < NELEM(bad); i++)
		expect_bad_cf(bad[i], &cf);
	expect_cf("delay=1440m", &cf, 1, 86400000, 0, 0);
	expect_cf("pad=1099511627776", &cf, 0, 0, 1, (size_t)1 << 40);
	expect_bad_cf("pad=1099511627777", &cf);
}

/* ------------------------------------------------------------------ */
/* Structure of the query                                              */
/* ------------------------------------------------------------------ */

/* The last occurrence wins, but every occurrence must be valid. */
static void
test_repeated_keys(void **state)
{
	static const char *const bad[] = {
		"delay=1s&delay=", "delay=1s&delay", "delay=&delay=1s",
		"delay=bad&delay=1s", "delay=1s&delay=bad",
		"delay=20s&delay=1s",		/* the first over the cap */
		"pad=1k&pad=2m", "pad=2m&pad=1k", "pad=1k&pad=",
		"pad&pad=1k",
	};

	(void)state;
	expect_delay("delay=1s&delay=2s", 2000);
	expect_delay("delay=2s&delay=1s", 1000);
	expect_delay("delay=1s&delay=0", 0);
	expect_delay("delay=1&delay=2&delay=3&delay=4&delay=50ms", 50);
	expect_pad("pad=1k&pad=2", 2);
	expect_pad("pad=1k&pad=0", 0);
	expect("delay=2s&pad=1&delay=50ms", 1, 50, 1, 1);
	expect("pad=1k&delay=0&pad=0", 1, 0, 1, 0);
	expect_delay("%64elay=1s&delay=2s", 2000);
	expect_delay("delay=2s&%64elay=1s", 1000);
	expect_all_bad(bad, NELEM(bad));
}

/* A knob needs '=' and a value; other keys need neither. */
static void
test_empty_and_missing_values(void **state)
{
	static const char *const bad[] = {
		"delay=", "pad=", "delay", "pad", "delay&pad=1", "pad=1&delay",
		"delay=&pad=1", "pad=1k&pad=", "&delay=&", "%64elay=",
		"%64elay", "p%61d", "delay=%", "delay==1s", "pad==1",
		"pad=1=2", "delay=1s=",
	};

	(void)state;
	expect_all_bad(bad, NELEM(bad));
	expect_none("x=");
	expect_none("x");
	expect_none("x=&y&z==");
	expect_delay("x&delay=1s&y=", 1000);
}

/* '&' separates pairs; empty pairs are skipped; ';' is no separator. */
static void
test_separators(void **state)
{
	(void)state;
	expect_none("");
	expect_none("&");
	expect_none("&&");
	expect_none("&&&&&&&&");
	expect_delay("&delay=1s", 1000);
	expect_delay("delay=1s&", 1000);
	expect_delay("&delay=1s&", 1000);
	expect_delay("&&delay=1s&&", 1000);
	expect("delay=1s&&pad=2", 1, 1000, 1, 2);
	expect("delay=1s&&&&pad=2&&", 1, 1000, 1, 2);
	/* ';' is part of a value or a key. */
	expect_bad("delay=1s;pad=2");
	expect_bad("pad=2;x");
	expect_none("x=1;delay=1s");
	expect_none("x;pad=1k");
	expect_pad("pad=2&x=1;delay=5s", 2);
}

/* Keys other than exactly "delay" and "pad" are ignored, whatever their
 * value (if their percent-encoding is well formed). */
static void
test_unknown_keys(void **state)
{
	static const char *const ignored[] = {
		"x=1", "foo", "=1", "=", "==", "delayx=1s", "xdelay=1s",
		"delay_=1s", "delay2=bad", "dela=1s", "d=1", "padx=1",
		"xpad=1", "pa=1", "p=1", "padding=1k", "Delay=1s",
		"DELAY=1s", "Pad=1k", "PAD=1k", "x=abc",
		"x=99999999999999999999",
		"delayx=", "xdelay", "delay%20=1s", "%20delay=1s", "pad%00=1",
		"x=1m&y=1s&z=", "utm_source=x&utm_medium=y",
	};
	char	*s;
	size_t	 i;

	(void)state;
	for (i = 0; i < NELEM(ignored); i++)
		expect_none(ignored[i]);
	expect_delay("foo&delay=1s", 1000);
	expect_pad("foo=1s&pad=3", 3);
	expect("delayx=1&delay=2s&xdelay=3&padx=4&pad=5&xpad=6", 1, 2000, 1,
	    5);

	/* Long keys, long values of other keys. */
	s = repeat("", "a", 1000, "=1");
	expect_none(s);
	free(s);
	s = repeat("", "a", 1000, "&delay=1s");
	expect_delay(s, 1000);
	free(s);
	s = repeat("delay", "y", 1000, "=1s");
	expect_none(s);
	free(s);
	s = repeat("pad", "d", 5000, "=1k&pad=7");
	expect_pad(s, 7);
	free(s);
	s = repeat("", "%61", 300, "=1&pad=1k");	/* "aaa...": encoded */
	expect_pad(s, KIB);
	free(s);
	s = repeat("x=", "9", 10000, "&delay=50ms");
	expect_delay(s, 50);
	free(s);
	s = repeat("", "x=1&", 2000, "pad=9");
	expect_pad(s, 9);
	free(s);
}

/* ------------------------------------------------------------------ */
/* Percent-encoding                                                    */
/* ------------------------------------------------------------------ */

static void
test_percent_decoding(void **state)
{
	(void)state;
	expect_delay("%64elay=10ms", 10);
	expect_delay("%64%65%6c%61%79=10ms", 10);
	expect_delay("%64%65%6C%61%79=10ms", 10);
	expect_delay("dela%79=10ms", 10);
	expect_pad("%70ad=1", 1);
	expect_pad("%70%61%64=1", 1);
	expect_pad("pad=1%6B", KIB);		/* "1k" */
	expect_pad("pad=1%6b", KIB);
	expect_pad("pad=1%4B", KIB);		/* "1K" */
	expect_pad("pad=1%4D", MIB);		/* "1M" */
	expect_pad("pad=%31%30%32%34", 1024);
	expect_pad("pad=%31k", KIB);
	expect_delay("delay=50%6D%73", 50);
	expect_delay("delay=%35%30ms", 50);
	expect_delay("delay=%32", 2000);
	/* Decoded case matters: "Delay" is not "delay", "1S" not "1s". */
	expect_none("%44elay=1s");
	expect_bad("delay=1%53");
	/* Encoded separators do not separate. */
	expect_bad("pad=1%26delay=5s");		/* value "1&delay=5s" */
	expect_bad("delay=1s%3Bpad=2");
	expect_none("pad%3D1");			/* key "pad=1" */
	expect_none("delay%3D1s");		/* key "delay=1s" */
	expect_none("x=1%26pad%3D5");		/* another key's value */
	expect_bad("pad=%3D1");			/* value "=1" */
}

/* Every '%' must start %XX with two hex digits, in any part of the
 * query: keys, values, pairs of other keys. */
static void
test_malformed_escapes(void **state)
{
	static const char *const bad[] = {
		"pad=%zz", "pad=%4", "pad=%", "pad=1%", "pad=1%4", "pad=%g1",
		"pad=%1g", "pad=%%31", "pad=1k%", "delay=%zz", "delay=1s%",
		"delay=1s%4", "%", "%%", "%%41", "%4", "%zz", "%4g",
		"%64elay=1s%", "%6", "%6&delay=1s", "delay=1s&%",
		"delay=1s&%4", "delay=1s&%zz=1", "x%zz=1", "x=%", "x=%4",
		"x=%zz", "x=1%G0", "%zz&delay=1s", "x%=1&pad=1", "%x=1",
		"%\xff\xff", "x=%\xc3\xa9",
	};

	(void)state;
	expect_all_bad(bad, NELEM(bad));
	/* A '%' that ends within len is malformed even when the bytes
	 * after it, outside the query, would complete it. */
	{
		struct hd_config	 cf = cf_defaults();

		expect_bad_len("pad=1%41", 6, &cf);
		expect_bad_len("pad=1%6B", 7, &cf);
		expect_len("pad=1%6B", 8, &cf, 0, 0, 1, KIB);
	}
}

/* NUL can be escaped, but never decodes into a knob's value; a key that
 * holds one is not "delay" or "pad". */
static void
test_nul(void **state)
{
	struct hd_config	 cf = cf_defaults();

	(void)state;
	expect_bad("pad=%00");
	expect_bad("pad=1%00");
	expect_bad("pad=%001");
	expect_bad("delay=%00");
	expect_bad("delay=1s%00");
	expect_bad("delay=1%00s");
	expect_none("x%00=1");
	expect_none("x=%00");
	expect_none("%00delay=1s");
	expect_none("delay%00=1s");
	expect_pad("x%00=1&pad=2", 2);
	/* Raw NUL bytes (the request parser refuses them earlier). */
	expect_bad_len(RAW("pad=1\0"), &cf);
	expect_bad_len(RAW("delay=\0" "1s"), &cf);
	expect_len(RAW("x\0=1&pad=4"), &cf, 0, 0, 1, 4);
	expect_len(RAW("x=\0&pad=4"), &cf, 0, 0, 1, 4);
}

/* '+' is a literal plus in a query, not a space, in keys and values. */
static void
test_plus_not_decoded(void **state)
{
	(void)state;
	expect_bad("pad=1+k");
	expect_bad("pad=+1");
	expect_bad("pad=1+");
	expect_bad("delay=1+s");
	expect_bad("delay=+1s");
	expect_bad("pad=1%2Bk");
	expect_none("de+lay=1s");
	expect_none("delay+=1s");
	expect_none("+delay=1s");
	expect_none("pad+=1");
	expect_bad("pad=1%20k");		/* an encoded space neither */
}

/* A value far longer than any valid one is refused, whatever number it
 * spells; a few leading zeros are fine. */
static void
test_long_values(void **state)
{
	char	*s;

	(void)state;
	s = repeat("pad=", "0", 16, "1k");
	expect_pad(s, KIB);
	free(s);
	s = repeat("delay=", "%30", 16, "50ms");
	expect_delay(s, 50);
	free(s);
	s = repeat("pad=", "0", 4096, "1");
	expect_bad(s);
	free(s);
	s = repeat("delay=", "0", 4096, "1s");
	expect_bad(s);
	free(s);
	s = repeat("delay=", "%30", 4096, "1s");
	expect_bad(s);
	free(s);
	s = repeat("pad=", "9", 100000, "");
	expect_bad(s);
	free(s);
}

/* Only len bytes are the query. */
static void
test_length_respected(void **state)
{
	struct hd_config	 cf = cf_defaults();

	(void)state;
	expect_len("delay=1s&pad=bad", 8, &cf, 1, 1000, 0, 0);
	expect_len("pad=1k", 5, &cf, 0, 0, 1, 1);
	expect_len("pad=1kx", 6, &cf, 0, 0, 1, KIB);
	expect_len("delay=", 0, &cf, 0, 0, 0, 0);
	expect_bad_len("delay=1s", 6, &cf);		/* "delay=" */
	expect_bad_len("delay=1s", 5, &cf);		/* "delay" */
	expect_len("delay=1s", 4, &cf, 0, 0, 0, 0);	/* "dela" */
	expect_len("pad=2&%zz", 6, &cf, 0, 0, 1, 2);
}

/* On success, a knob not given is reported unset and 0, whatever the
 * structure held before. */
static void
test_output_reset(void **state)
{
	struct hd_config	 cf = cf_defaults();
	struct knobs		 k;

	(void)state;
	memset(&k, 0xff, sizeof(k));
	assert_int_equal(knobs_parse("x=1", 3, &cf, &k), 0);
	assert_int_equal(k.kn_has_delay, 0);
	assert_int_equal(k.kn_has_pad, 0);
	assert_int_equal(k.kn_delay, 0);
	assert_true(k.kn_pad == 0);
	memset(&k, 0xff, sizeof(k));
	assert_int_equal(knobs_parse("pad=3", 5, &cf, &k), 0);
	assert_int_equal(k.kn_has_delay, 0);
	assert_int_equal(k.kn_delay, 0);
	assert_int_equal(k.kn_has_pad, 1);
	assert_true(k.kn_pad == 3);
	memset(&k, 0xff, sizeof(k));
	assert_int_equal(knobs_parse("", 0, &cf, &k), 0);
	assert_int_equal(k.kn_has_delay, 0);
	assert_int_equal(k.kn_has_pad, 0);
}

/* ------------------------------------------------------------------ */
/* The answer (src/answer.c)                                           */
/* ------------------------------------------------------------------ */

struct decided {
	int	 rc;
	int	 status;
	int	 keep;
	int	 head;
	int	 error;
	unsigned delay;
	size_t	 padding;
	size_t	 padding_sent;
	int	 closes;		/* answer_write() */
	size_t	 content_length;
	char	 first_line[64];
};

/*
 * Parses the request head in raw (a private copy) and decides its answer
 * from 127.0.0.1 under cf, then writes it.
 */
static struct decided
decide(const struct hd_config *cf, const char *raw)
{
	struct http_limits	 lim = {
		.lim_max_header = 8192, .lim_max_fields = HTTP_MAX_FIELDS
	};
	struct sockaddr_in	 sin;
	struct sockaddr_storage	 ss;
	struct answer_env	 ae;
	struct answer_peer	 ap;
	struct http_request	 req;
	struct answer		 an;
	struct decided		 d;
	size_t			 len = strlen(raw);
	char			*copy = malloc(len), *cl, *eol;

	assert_non_null(copy);
	memcpy(copy, raw, len);
	memset(&d, 0, sizeof(d));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	memset(&ss, 0, sizeof(ss));
	memcpy(&ss, &sin, sizeof(sin));
	assert_int_equal(answer_env_init(&ae, cf), 0);
	answer_peer_init(&ap, &ss);

	d.rc = http_parse(copy, len, &lim, &req);
	assert_true(d.rc == HTTP_DONE || d.rc == HTTP_ERROR);
	answer_decide(&ae, d.rc, &req, &ap, 0, &an);
	d.status = an.an_status;
	d.keep = an.an_keep;
	d.head = an.an_head;
	d.error = an.an_error;
	d.delay = an.an_delay;
	d.padding = an.an_padding;
	d.padding_sent = answer_padding_sent(&an);
	ae.ae_wlen = 0;
	d.closes = answer_write(&ae, &an, 0, &ap, 0, 0.);
	assert_true(ae.ae_wlen <= ae.ae_wcap);
	/* The padding is announced, never in the buffer. */
	assert_true(ae.ae_wlen < 1024);
	eol = memmem(ae.ae_wbuf, ae.ae_wlen, "\r\n", 2);
	assert_non_null(eol);
	assert_true((size_t)(eol - ae.ae_wbuf) < sizeof(d.first_line));
	memcpy(d.first_line, ae.ae_wbuf, (size_t)(eol - ae.ae_wbuf));
	cl = memmem(ae.ae_wbuf, ae.ae_wlen, "\r\nContent-Length: ", 18);
	assert_non_null(cl);
	d.content_length = strtoull(cl + 18, NULL, 10);
	free(ae.ae_wbuf);
	free(ae.ae_rbuf);
	free(ae.ae_spaces);
	free(copy);
	return d;
}

#define GREETING_LEN	(sizeof(HTTP_GREETING_HEAD "127.0.0.1" \
			    HTTP_GREETING_TAIL) - 1)

static struct hd_config
cf_knobs(int on, unsigned delay, size_t padding)
{
	struct hd_config	 cf = cf_defaults();

	cf.cf_query_knobs = on;
	cf.cf_delay = delay;
	cf.cf_body_padding = padding;
	return cf;
}

/* With query_knobs on, the knobs replace the configured delay and
 * padding of a GET or HEAD greeting, one by one. */
static void
test_answer_knobs_on(void **state)
{
	struct hd_config	 cf = cf_knobs(1, 200, 10);
	struct decided		 d;

	(void)state;
	d = decide(&cf, "GET /?delay=50ms&pad=1k HTTP/1.1\r\nHost: a\r\n\r\n");
	assert_int_equal(d.status, 200);
	assert_int_equal(d.delay, 50);
	assert_true(d.padding == KIB && d.padding_sent == KIB);
	assert_true(d.content_length == GREETING_LEN + KIB);
	assert_int_equal(d.keep, 1);
	assert_int_equal(d.closes, 0);

	d = decide(&cf, "GET /p?delay=0ms HTTP/1.1\r\nHost: a\r\n\r\n");
	assert_int_equal(d.delay, 0);
	assert_true(d.padding == 10);
	d = decide(&cf, "GET /?pad=0 HTTP/1.1\r\nHost: a\r\n\r\n");
	assert_int_equal(d.delay, 200);
	assert_true(d.padding == 0);
	assert_true(d.content_length == GREETING_LEN);
	/* No knob, no query, an empty query: the configuration. */
	d = decide(&cf, "GET /?x=1&y HTTP/1.1\r\nHost: a\r\n\r\n");
	assert_int_equal(d.delay, 200);
	assert_true(d.padding == 10);
	d = decide(&cf, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
	assert_int_equal(d.delay, 200);
	assert_true(d.padding == 10);
	d = decide(&cf, "GET /? HTTP/1.1\r\nHost: a\r\n\r\n");
	assert_int_equal(d.status, 200);
	assert_int_equal(d.delay, 200);
	assert_true(d.padding == 10);
	/* HEAD: the same Content-Length, no padding sent. */
	d = decide(&cf, "HEAD /?pad=1k HTTP/1.1\r\nHost: a\r\n\r\n");
	assert_int_equal(d.status, 200);
	assert_int_equal(d.head, 1);
	assert_true(d.padding == KIB && d.padding_sent == 0);
	assert_true(d.content_length == GREETING_LEN + KIB);
	/* The absolute form has a query too. */
	d = decide(&cf, "GET http://a/x?pad=5 HTTP/1.1\r\nHost: a\r\n\r\n");
	assert_true(d.padding == 5);
	/* The largest padding allowed fits the write buffer's sizing. */
	d = decide(&cf, "GET /?pad=1m HTTP/1.1\r\nHost: a\r\n\r\n");
	assert_true(d.padding == MIB);
	assert_true(d.content_length == GREETING_LEN + MIB);
}

/* A refused query is a 400 without delay or padding; the connection
 * stays open when the request allowed it. */
static void
test_answer_bad_knobs(void **state)
{
	static const char *const targets[] = {
		"/?delay=20s", "/?pad=2m", "/?pad=", "/?delay", "/?x=%zz",
		"/?pad=1+k", "/?delay=1s&delay=bad", "/a/b?pad=%00",
	};
	struct hd_config	 cf = cf_knobs(1, 200, 10);
	struct decided		 d;
	char			 raw[256];
	size_t			 i;

	(void)state;
	for (i = 0; i < NELEM(targets); i++) {
		snprintf(raw, sizeof(raw), "GET %s HTTP/1.1\r\nHost: a\r\n\r\n",
		    targets[i]);
		d = decide(&cf, raw);
		if (d.status != 400)
			fail_msg("%s: status %d, expected 400", targets[i],
			    d.status);
		assert_int_equal(d.rc, HTTP_DONE);
		assert_int_equal(d.error, 0);
		assert_int_equal(d.keep, 1);
		assert_int_equal(d.closes, 0);
		assert_int_equal(d.delay, 0);
		assert_true(d.padding == 0 && d.padding_sent == 0);
		assert_string_equal(d.first_line, "HTTP/1.1 400 Bad Request");
		assert_true(d.content_length == strlen("400 Bad Request\n"));
	}
	d = decide(&cf, "HEAD /?pad=2m HTTP/1.1\r\nHost: a\r\n\r\n");
	assert_int_equal(d.status, 400);
	assert_int_equal(d.keep, 1);
	/* Not persistent when the request said so. */
	d = decide(&cf, "GET /?pad=2m HTTP/1.1\r\nHost: a\r\n"
	    "Connection: close\r\n\r\n");
	assert_int_equal(d.status, 400);
	assert_int_equal(d.keep, 0);
	assert_int_equal(d.closes, 1);
	d = decide(&cf, "GET /?pad=2m HTTP/1.0\r\n\r\n");
	assert_int_equal(d.status, 400);
	assert_int_equal(d.closes, 1);
	d = decide(&cf, "GET /?pad=2m HTTP/1.0\r\nConnection: keep-alive\r\n"
	    "\r\n");
	assert_int_equal(d.status, 400);
	assert_int_equal(d.closes, 0);
}

/* Knobs only change greetings: other statuses keep their answer, even
 * with a query that would be refused. */
static void
test_answer_only_greetings(void **state)
{
	struct hd_config	 cf = cf_knobs(1, 200, 10);
	struct decided		 d;

	(void)state;
	d = decide(&cf, "POST /?pad=1k&delay=1s HTTP/1.1\r\nHost: a\r\n\r\n");
	assert_int_equal(d.status, 405);
	assert_int_equal(d.delay, 200);
	assert_true(d.padding == 0);
	d = decide(&cf, "DELETE /?pad=%zz HTTP/1.1\r\nHost: a\r\n\r\n");
	assert_int_equal(d.status, 405);
	assert_int_equal(d.delay, 200);
	d = decide(&cf, "GET /?pad=1k HTTP/2.0\r\nHost: a\r\n\r\n");
	assert_int_equal(d.status, 505);
	assert_true(d.padding == 0);
}

/* With query_knobs off, the query never changes the answer. */
static void
test_answer_knobs_off(void **state)
{
	static const char *const targets[] = {
		"/?delay=5s&pad=1m", "/?delay=0ms", "/?pad=0", "/?pad=2m",
		"/?delay=%zz", "/?delay", "/?%", "/?pad=1+k",
	};
	struct hd_config	 cf = cf_knobs(0, 200, 10);
	struct decided		 d;
	char			 raw[256];
	size_t			 i;

	(void)state;
	for (i = 0; i < NELEM(targets); i++) {
		snprintf(raw, sizeof(raw), "GET %s HTTP/1.1\r\nHost: a\r\n\r\n",
		    targets[i]);
		d = decide(&cf, raw);
		if (d.status != 200 || d.delay != 200 || d.padding != 10)
			fail_msg("%s: status %d delay %u padding %zu with the "
			    "knobs off", targets[i], d.status, d.delay,
			    d.padding);
		assert_true(d.content_length == GREETING_LEN + 10);
	}
}

/* ------------------------------------------------------------------ */
/* Configuration keys                                                  */
/* ------------------------------------------------------------------ */

static void
test_config_keys(void **state)
{
	struct hd_config	 cf;

	(void)state;
	config_defaults(&cf);
	assert_int_equal(cf.cf_query_knobs, 0);
	assert_int_equal(cf.cf_query_max_delay, 10000);
	assert_true(cf.cf_query_max_padding == MIB);

	load_ok("[http]\nquery_knobs = on\nquery_max_delay = 250ms\n"
	    "query_max_padding = 100\n", &cf);
	assert_int_equal(cf.cf_query_knobs, 1);
	assert_int_equal(cf.cf_query_max_delay, 250);
	assert_true(cf.cf_query_max_padding == 100);
	load_ok("[http]\nquery_knobs = off\n", &cf);
	assert_int_equal(cf.cf_query_knobs, 0);
	load_ok("[http]\nquery_max_delay = 60s\nquery_max_padding = 64m\n",
	    &cf);
	assert_int_equal(cf.cf_query_max_delay, 60000);
	assert_true(cf.cf_query_max_padding == (size_t)HD_MAX_PADDING);
	load_ok("[http]\nquery_max_delay = 0\nquery_max_padding = 0\n", &cf);
	assert_int_equal(cf.cf_query_max_delay, 0);
	assert_true(cf.cf_query_max_padding == 0);

	load_fails("[http]\nquery_knobs = yes\n",
	    ":2: [http] query_knobs: invalid value 'yes' (on or off)");
	load_fails("[http]\nquery_knobs = ON\n",
	    ":2: [http] query_knobs: invalid value 'ON' (on or off)");
	load_fails("[http]\nquery_max_delay = 61s\n",
	    ":2: [http] query_max_delay: duration '61s' out of range "
	    "(0-1m)");
	load_fails("[http]\nquery_max_delay = soon\n",
	    ":2: [http] query_max_delay: invalid duration 'soon'");
	load_fails("[http]\nquery_max_padding = 65m\n",
	    ":2: [http] query_max_padding: size '65m' out of range "
	    "(0-64m)");
	load_fails("[http]\nquery_max_padding = 1g\n",
	    ":2: [http] query_max_padding: invalid size '1g'");
}


/* ?status=, ?close=, ?reset=, ?delay_body=: values, caps and errors. */
static void
test_fault_knobs(void **state)
{
	struct hd_config	 cf = cf_caps(500, 10);
	struct knobs		 k;
	static const char *const bad[] = {
		"status=199", "status=600", "status=99", "status=2000",
		"status=20x", "status=", "status", "status=+200", "status=%32",
		"close=2", "close=yes", "close=", "close=01", "reset=true",
		"reset=", "delay_body=", "delay_body=1x", "delay_body=501ms",
		"delay_body=1s",
	};
	size_t	 i;

	(void)state;
	assert_int_equal(parse_len(RAW("status=200"), &cf, &k), 0);
	assert_int_equal(k.kn_status, 200);
	assert_int_equal(parse_len(RAW("status=599"), &cf, &k), 0);
	assert_int_equal(k.kn_status, 599);
	assert_int_equal(parse_len(RAW("status=503&status=204"), &cf, &k), 0);
	assert_int_equal(k.kn_status, 204);
	assert_int_equal(parse_len(RAW("close=1&reset=0"), &cf, &k), 0);
	assert_true(k.kn_close == 1 && k.kn_reset == 0);
	assert_int_equal(parse_len(RAW("reset=1"), &cf, &k), 0);
	assert_int_equal(k.kn_reset, 1);
	assert_int_equal(parse_len(RAW("delay_body=500ms&delay=1ms"), &cf,
	    &k), 0);
	assert_true(k.kn_has_delay_body && k.kn_delay_body == 500);
	assert_true(k.kn_has_delay && k.kn_delay == 1);
	assert_int_equal(parse_len(RAW("delay%5Fbody=20ms"), &cf, &k), 0);
	assert_int_equal(k.kn_delay_body, 20);
	assert_int_equal(parse_len(RAW("statusx=1&xclose=1&resets=9"), &cf,
	    &k), 0);
	assert_true(k.kn_status == 0 && !k.kn_close && !k.kn_reset);
	for (i = 0; i < NELEM(bad); i++)
		if (parse_len(bad[i], strlen(bad[i]), &cf, &k) != -1)
			fail_msg("query \"%s\" accepted", bad[i]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_delay_values),
		cmocka_unit_test(test_pad_values),
		cmocka_unit_test(test_both_knobs),
		cmocka_unit_test(test_default_caps),
		cmocka_unit_test(test_custom_caps),
		cmocka_unit_test(test_overflow),
		cmocka_unit_test(test_repeated_keys),
		cmocka_unit_test(test_empty_and_missing_values),
		cmocka_unit_test(test_separators),
		cmocka_unit_test(test_unknown_keys),
		cmocka_unit_test(test_percent_decoding),
		cmocka_unit_test(test_malformed_escapes),
		cmocka_unit_test(test_nul),
		cmocka_unit_test(test_plus_not_decoded),
		cmocka_unit_test(test_long_values),
		cmocka_unit_test(test_length_respected),
		cmocka_unit_test(test_output_reset),
		cmocka_unit_test(test_answer_knobs_on),
		cmocka_unit_test(test_answer_bad_knobs),
		cmocka_unit_test(test_answer_only_greetings),
		cmocka_unit_test(test_answer_knobs_off),
		cmocka_unit_test(test_config_keys),
		cmocka_unit_test(test_fault_knobs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
