/*
 * Content negotiation on "/" when [http] endpoints is on (negotiate.c):
 * a pure function over an Accept field value, and the User-Agent test of
 * the command-line clients that are answered in plain text.
 */
#ifndef HELLOD_NEGOTIATE_H
#define HELLOD_NEGOTIATE_H

#include <stddef.h>

enum neg_result {
	NEG_ANY,	/* no Accept, or no preference among the three */
	NEG_HTML,	/* text/html: the greeting */
	NEG_TEXT,	/* text/plain: the address */
	NEG_JSON,	/* application/json: the JSON object */
	NEG_NONE,	/* none of the three is acceptable (q=0) */
	NEG_MALFORMED	/* not an Accept value (RFC 9110 12.5.1) */
};

/* The Accept value: NULL for no field.  Ties go to text/html, then
 * application/json, then text/plain. */
enum neg_result	 negotiate_accept(const char *, size_t);
/* Whether the User-Agent is one of curl/, Wget/, HTTPie/, xh/ or fetch
 * libfetch (FreeBSD's fetch(1)), as echoip recognises them. */
int		 negotiate_cli_agent(const char *, size_t);

#endif /* HELLOD_NEGOTIATE_H */
