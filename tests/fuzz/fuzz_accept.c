/*
 * Fuzz target for content negotiation (src/negotiate.c): the input is an
 * Accept field value, handed to negotiate_accept(), and a User-Agent,
 * handed to negotiate_cli_agent().
 *
 * Checked on every input:
 *
 *  1. the result is one of enum neg_result, and the same bytes give the
 *     same result again (from a buffer of their exact size, so that
 *     AddressSanitizer sees any read past the end);
 *  2. list syntax: ", " before, ", " after, and an empty element between
 *     two halves split at a comma outside quotes change nothing when the
 *     value is not malformed;
 *  3. a value that parses with a preference (html, text, json) keeps it
 *     when the full wildcard with q=0.001 is appended, and appending it
 *     never turns a valid value malformed;
 *  4. case: lower-casing the bytes outside quoted strings never changes
 *     the result (types, subtypes and parameter names are
 *     case-insensitive; hellod compares no parameter value but q);
 *  5. negotiate_cli_agent() holds exactly for the five prefixes.
 *
 * A violated invariant prints what failed and aborts.  The file builds
 * as a libFuzzer target (clang -fsanitize=fuzzer) or, linked with
 * replay.c, as a plain program that replays the corpus.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "negotiate.h"
#include "fuzz.h"

static enum neg_result
parse(const char *v, size_t len)
{
	char		*copy = malloc(len > 0 ? len : 1);
	enum neg_result	 r;

	CHECK(copy != NULL);
	if (len > 0)
		memcpy(copy, v, len);
	r = negotiate_accept(copy, len);
	free(copy);
	CHECK(r >= NEG_ANY && r <= NEG_MALFORMED);
	return r;
}

/* v with `pre` before and `post` after it. */
static enum neg_result
parse_around(const char *pre, const char *v, size_t len, const char *post)
{
	size_t		 a = strlen(pre), b = strlen(post);
	char		*buf = malloc(a + len + b + 1);
	enum neg_result	 r;

	CHECK(buf != NULL);
	memcpy(buf, pre, a);
	if (len > 0)
		memcpy(buf + a, v, len);
	memcpy(buf + a + len, post, b);
	r = parse(buf, a + len + b);
	free(buf);
	return r;
}

/* Whether byte i of v[0..len) is inside a quoted string. */
static void
quoted_map(const char *v, size_t len, unsigned char *map)
{
	size_t	 i;
	int	 q = 0;

	for (i = 0; i < len; i++) {
		map[i] = (unsigned char)q;
		if (q && v[i] == '\\' && i + 1 < len) {
			map[++i] = 1;
			continue;
		}
		if (v[i] == '"') {
			q = !q;
			map[i] = 1;
		}
	}
}

static void
check_lists(const char *v, size_t len, enum neg_result r,
    const unsigned char *map)
{
	char	*buf;
	size_t	 i;

	if (r == NEG_MALFORMED)
		return;
	CHECK(parse_around(", ", v, len, "") == r);
	CHECK(parse_around("", v, len, " ,") == r);
	for (i = 0; i < len; i++)
		if (v[i] == ',' && !map[i])
			break;
	if (i == len)
		return;
	buf = malloc(len + 2);
	CHECK(buf != NULL);
	memcpy(buf, v, i + 1);
	buf[i + 1] = ',';
	memcpy(buf + i + 2, v + i + 1, len - i - 1);
	CHECK(parse(buf, len + 1) == r);
	free(buf);
}

static void
check_wildcard(const char *v, size_t len, enum neg_result r)
{
	enum neg_result	 w;

	if (r == NEG_MALFORMED)
		return;
	w = parse_around("", v, len, ", */*;q=0.001");
	CHECK(w != NEG_MALFORMED);
	if (r == NEG_HTML || r == NEG_TEXT || r == NEG_JSON)
		CHECK(w == r);
}

static void
check_case(const char *v, size_t len, enum neg_result r,
    const unsigned char *map)
{
	char	*buf = malloc(len > 0 ? len : 1);
	size_t	 i;

	CHECK(buf != NULL);
	for (i = 0; i < len; i++)
		buf[i] = map[i] ? v[i] : (char)tolower((unsigned char)v[i]);
	CHECK(parse(buf, len) == r);
	free(buf);
}

static void
check_agent(const char *v, size_t len)
{
	static const char *const p[] = {
		"curl/", "Wget/", "HTTPie/", "xh/", "fetch libfetch",
	};
	size_t	 i;
	int	 want = 0;

	for (i = 0; i < sizeof(p) / sizeof(p[0]); i++)
		if (len >= strlen(p[i]) && memcmp(v, p[i], strlen(p[i])) == 0)
			want = 1;
	CHECK(negotiate_cli_agent(v, len) == want);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char	*v = (const char *)data;
	unsigned char	*map = malloc(size > 0 ? size : 1);
	enum neg_result	 r;

	CHECK(map != NULL);
	r = parse(v, size);
	CHECK(parse(v, size) == r);
	quoted_map(v, size, map);
	check_lists(v, size, r, map);
	check_wildcard(v, size, r);
	check_case(v, size, r, map);
	check_agent(v, size);
	free(map);
	return 0;
}
