/*
 * Response building.  The fixed parts are string literals copied with
 * memcpy; the only formatting per response is the decimal Content-Length.
 * Callers size their buffer with http_response_size() first.
 */
#include <string.h>
#include <time.h>

#include "http.h"

#define CRLF		"\r\n"
#define SERVER_DATE	"Server: hellod" CRLF "Date: "

struct status_text {
	int		 st_code;
	const char	*st_line;	/* status line and Content-Type */
	const char	*st_body;
};

static const struct status_text statuses[] = {
	{ 200, "HTTP/1.1 200 OK" CRLF "Content-Type: text/html" CRLF, NULL },
	{ 400, "HTTP/1.1 400 Bad Request" CRLF
	    "Content-Type: text/plain" CRLF, "400 Bad Request\n" },
	{ 405, "HTTP/1.1 405 Method Not Allowed" CRLF "Allow: GET, HEAD" CRLF
	    "Content-Type: text/plain" CRLF, "405 Method Not Allowed\n" },
	{ 408, "HTTP/1.1 408 Request Timeout" CRLF
	    "Content-Type: text/plain" CRLF, "408 Request Timeout\n" },
	{ 414, "HTTP/1.1 414 URI Too Long" CRLF
	    "Content-Type: text/plain" CRLF, "414 URI Too Long\n" },
	{ 431, "HTTP/1.1 431 Request Header Fields Too Large" CRLF
	    "Content-Type: text/plain" CRLF,
	    "431 Request Header Fields Too Large\n" },
	{ 500, "HTTP/1.1 500 Internal Server Error" CRLF
	    "Content-Type: text/plain" CRLF, "500 Internal Server Error\n" },
	{ 503, "HTTP/1.1 503 Service Unavailable" CRLF
	    "Content-Type: text/plain" CRLF, "503 Service Unavailable\n" },
	{ 505, "HTTP/1.1 505 HTTP Version Not Supported" CRLF
	    "Content-Type: text/plain" CRLF,
	    "505 HTTP Version Not Supported\n" },
};

static const char *conn_fields[] = {
	[HTTP_CONN_DEFAULT] = "",
	[HTTP_CONN_KEEPALIVE] = "Connection: keep-alive" CRLF,
	[HTTP_CONN_CLOSE] = "Connection: close" CRLF,
};

static const struct status_text *
status_lookup(int code)
{
	size_t	 i;

	for (i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
		if (statuses[i].st_code == code)
			return &statuses[i];
	return status_lookup(500);
}

void
http_date(char out[HTTP_DATE_LEN + 1], int64_t now)
{
	time_t		 t = (time_t)now;
	struct tm	 tm;

	gmtime_r(&t, &tm);
	strftime(out, HTTP_DATE_LEN + 1, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

static size_t
body_size(const struct http_response *r, const struct status_text *st)
{
	if (st->st_body != NULL)
		return strlen(st->st_body);
	return sizeof(HTTP_GREETING_HEAD) - 1 + r->rsp_addr_len +
	    sizeof(HTTP_GREETING_TAIL) - 1 + r->rsp_padding;
}

size_t
http_body_size(const struct http_response *r)
{
	return body_size(r, status_lookup(r->rsp_status));
}

static size_t
ulen(size_t v)
{
	size_t	 n = 1;

	while (v >= 10) {
		v /= 10;
		n++;
	}
	return n;
}

size_t
http_response_size(const struct http_response *r)
{
	const struct status_text *st = status_lookup(r->rsp_status);
	size_t	 body = body_size(r, st);

	return strlen(st->st_line) + sizeof(SERVER_DATE) - 1 + HTTP_DATE_LEN +
	    sizeof(CRLF "Content-Length: ") - 1 + ulen(body) +
	    sizeof(CRLF) - 1 + strlen(conn_fields[r->rsp_conn]) +
	    sizeof(CRLF) - 1 + (r->rsp_head ? 0 : body);
}

#define PUT(p, s, n)	do { memcpy((p), (s), (n)); (p) += (n); } while (0)
#define PUTS(p, lit)	PUT(p, lit, sizeof(lit) - 1)

size_t
http_response_write(char *out, const struct http_response *r)
{
	const struct status_text *st = status_lookup(r->rsp_status);
	size_t	 body = body_size(r, st), n, v;
	char	*p = out;

	PUT(p, st->st_line, strlen(st->st_line));
	PUTS(p, SERVER_DATE);
	PUT(p, r->rsp_date, HTTP_DATE_LEN);
	PUTS(p, CRLF "Content-Length: ");
	n = ulen(body);
	for (v = body; n > 0; v /= 10)
		p[--n] = (char)('0' + v % 10);
	p += ulen(body);
	PUTS(p, CRLF);
	PUT(p, conn_fields[r->rsp_conn], strlen(conn_fields[r->rsp_conn]));
	PUTS(p, CRLF);
	if (!r->rsp_head) {
		if (st->st_body != NULL)
			PUT(p, st->st_body, body);
		else {
			PUTS(p, HTTP_GREETING_HEAD);
			PUT(p, r->rsp_addr, r->rsp_addr_len);
			PUTS(p, HTTP_GREETING_TAIL);
			memset(p, ' ', r->rsp_padding);
			p += r->rsp_padding;
		}
	}
	return (size_t)(p - out);
}
