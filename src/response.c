/*
 * Response building.  The fixed parts are string literals copied with
 * memcpy; the only formatting per response is the decimal Content-Length.
 * Callers size their buffer with http_response_size() or
 * http_response_max() first.  The greeting's padding is counted in
 * Content-Length but never written here: callers send it from a buffer of
 * spaces, so that no response is copied for its padding.
 */
#include <string.h>
#include <time.h>

#include "http.h"

#define CRLF		"\r\n"
#define SERVER_DATE	"Server: hellod" CRLF "Date: "
#define TYPE_FIELD	"Content-Type: "
#define NO_STORE	"Cache-Control: no-store" CRLF
#define VARY		"Vary: Accept, User-Agent" CRLF
#define LENGTH_FIELD	"Content-Length: "

struct status_text {
	int		 st_code;
	const char	*st_line;	/* status line and fixed fields */
	size_t		 st_line_len;
	const char	*st_body;	/* NULL: the greeting */
	size_t		 st_body_len;
};

#define LIT(s)		s, sizeof(s) - 1
#define TYPE_HTML	"Content-Type: text/html" CRLF
#define TYPE_TEXT	"Content-Type: text/plain" CRLF
#define ERROR_STATUS(code, reason, extra)				\
	{ code, LIT("HTTP/1.1 " #code " " reason CRLF extra),		\
	    LIT(#code " " reason "\n") }

/* Every status hellod sends, the greeting's and the status server's. */
static const struct status_text statuses[] = {
	{ 200, LIT("HTTP/1.1 200 OK" CRLF), NULL, 0 },
	ERROR_STATUS(400, "Bad Request", ""),
	ERROR_STATUS(404, "Not Found", ""),
	ERROR_STATUS(405, "Method Not Allowed", "Allow: GET, HEAD" CRLF),
	ERROR_STATUS(414, "URI Too Long", ""),
	ERROR_STATUS(431, "Request Header Fields Too Large", ""),
	ERROR_STATUS(500, "Internal Server Error", ""),
	ERROR_STATUS(503, "Service Unavailable", ""),
	ERROR_STATUS(505, "HTTP Version Not Supported", ""),
};

static const struct {
	const char	*cf_text;
	size_t		 cf_len;
} conn_fields[] = {
	[HTTP_CONN_DEFAULT] = { LIT("") },
	[HTTP_CONN_KEEPALIVE] = { LIT("Connection: keep-alive" CRLF) },
	[HTTP_CONN_CLOSE] = { LIT("Connection: close" CRLF) },
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

/* The IANA registry's reason phrases, 200..599 (RFC 9110 15 and the
 * registered extensions). */
static const struct {
	int		 rs_code;
	const char	*rs_text;
} reasons[] = {
	{ 200, "OK" }, { 201, "Created" }, { 202, "Accepted" },
	{ 203, "Non-Authoritative Information" }, { 204, "No Content" },
	{ 205, "Reset Content" }, { 206, "Partial Content" },
	{ 207, "Multi-Status" }, { 208, "Already Reported" },
	{ 226, "IM Used" },
	{ 300, "Multiple Choices" }, { 301, "Moved Permanently" },
	{ 302, "Found" }, { 303, "See Other" }, { 304, "Not Modified" },
	{ 305, "Use Proxy" }, { 307, "Temporary Redirect" },
	{ 308, "Permanent Redirect" },
	{ 400, "Bad Request" }, { 401, "Unauthorized" },
	{ 402, "Payment Required" }, { 403, "Forbidden" },
	{ 404, "Not Found" }, { 405, "Method Not Allowed" },
	{ 406, "Not Acceptable" }, { 407, "Proxy Authentication Required" },
	{ 408, "Request Timeout" }, { 409, "Conflict" }, { 410, "Gone" },
	{ 411, "Length Required" }, { 412, "Precondition Failed" },
	{ 413, "Content Too Large" }, { 414, "URI Too Long" },
	{ 415, "Unsupported Media Type" }, { 416, "Range Not Satisfiable" },
	{ 417, "Expectation Failed" }, { 421, "Misdirected Request" },
	{ 422, "Unprocessable Content" }, { 423, "Locked" },
	{ 424, "Failed Dependency" }, { 425, "Too Early" },
	{ 426, "Upgrade Required" }, { 428, "Precondition Required" },
	{ 429, "Too Many Requests" },
	{ 431, "Request Header Fields Too Large" },
	{ 451, "Unavailable For Legal Reasons" },
	{ 500, "Internal Server Error" }, { 501, "Not Implemented" },
	{ 502, "Bad Gateway" }, { 503, "Service Unavailable" },
	{ 504, "Gateway Timeout" }, { 505, "HTTP Version Not Supported" },
	{ 506, "Variant Also Negotiates" }, { 507, "Insufficient Storage" },
	{ 508, "Loop Detected" }, { 511, "Network Authentication Required" },
};

const char *
http_reason(int code)
{
	size_t	 i;

	for (i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
		if (reasons[i].rs_code == code)
			return reasons[i].rs_text;
	return "";
}

#define FAULT_LINE_MAX	64	/* "HTTP/1.1 NNN " reason CRLF */

/*
 * The status of r: one of the table's, or for rsp_fault, a status line
 * built in buf for any code 200..599 (others are the caller's error),
 * with the greeting as its body.  Only faults pay for formatting.
 */
static const struct status_text *
status_of(const struct http_response *r, struct status_text *tmp,
    char buf[FAULT_LINE_MAX])
{
	const char	*reason;
	size_t		 n;
	int		 code = r->rsp_status;

	if (!r->rsp_fault)
		return status_lookup(code);
	if (code < 200 || code > 599)
		code = 500;
	reason = http_reason(code);
	memcpy(buf, "HTTP/1.1 ", 9);
	buf[9] = (char)('0' + code / 100);
	buf[10] = (char)('0' + code / 10 % 10);
	buf[11] = (char)('0' + code % 10);
	buf[12] = ' ';
	n = strlen(reason);
	memcpy(buf + 13, reason, n);
	memcpy(buf + 13 + n, CRLF, 2);
	tmp->st_code = code;
	tmp->st_line = buf;
	tmp->st_line_len = 15 + n;
	tmp->st_body = NULL;
	tmp->st_body_len = 0;
	return tmp;
}

/* 204 and 304 never have a body; 204 not even its length. */
static int
no_body(const struct http_response *r, const struct status_text *st)
{
	return r->rsp_head || (r->rsp_fault &&
	    (st->st_code == 204 || st->st_code == 304));
}

static int
no_length(const struct http_response *r, const struct status_text *st)
{
	return r->rsp_fault && st->st_code == 204;
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
	if (r->rsp_body != NULL)
		return r->rsp_body_len;
	if (st->st_body != NULL)
		return st->st_body_len;
	return sizeof(HTTP_GREETING_HEAD) - 1 + r->rsp_addr_len +
	    sizeof(HTTP_GREETING_TAIL) - 1 + r->rsp_padding;
}

size_t
http_body_size(const struct http_response *r)
{
	struct status_text	 tmp;
	char			 buf[FAULT_LINE_MAX];
	const struct status_text *st = status_of(r, &tmp, buf);

	return no_body(r, st) && !r->rsp_head ? 0 : body_size(r, st);
}

/* The Content-Type field: the given body's, the greeting's, or text. */
static size_t
type_len(const struct http_response *r, const struct status_text *st)
{
	if (r->rsp_body != NULL)
		return sizeof(TYPE_FIELD CRLF) - 1 + strlen(r->rsp_type);
	return st->st_body == NULL ? sizeof(TYPE_HTML) - 1 :
	    sizeof(TYPE_TEXT) - 1;
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
	struct status_text	 tmp;
	char			 buf[FAULT_LINE_MAX];
	const struct status_text *st = status_of(r, &tmp, buf);
	int	 nobody = no_body(r, st);
	size_t	 body = body_size(r, st), written = nobody ? 0 : body;

	/* The padding is counted, never written here. */
	if (!nobody && st->st_body == NULL && r->rsp_body == NULL)
		written -= r->rsp_padding;
	return st->st_line_len + type_len(r, st) +
	    (r->rsp_nostore ? sizeof(NO_STORE) - 1 : 0) +
	    (r->rsp_vary ? sizeof(VARY) - 1 : 0) + r->rsp_ident_len +
	    sizeof(SERVER_DATE) - 1 + HTTP_DATE_LEN + sizeof(CRLF) - 1 +
	    (no_length(r, st) ? 0 : sizeof(LENGTH_FIELD CRLF) - 1 +
	    ulen(body)) + conn_fields[r->rsp_conn].cf_len +
	    sizeof(CRLF) - 1 + written;
}

/* The largest response of any status, with any Connection field. */
size_t
http_response_max(size_t padding)
{
	struct http_response	 r;
	size_t			 i, n, max = 0;

	memset(&r, 0, sizeof(r));
	r.rsp_conn = HTTP_CONN_KEEPALIVE;
	r.rsp_addr_len = HTTP_ADDR_MAX;
	r.rsp_padding = padding;
	/* A fault's status line, Vary and an identity line at most. */
	max = FAULT_LINE_MAX + sizeof(VARY) + 128;
	for (i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
		r.rsp_status = statuses[i].st_code;
		if ((n = http_response_size(&r) + FAULT_LINE_MAX +
		    sizeof(VARY) + 128) > max)
			max = n;
	}
	return max;
}

#define PUT(p, s, n)	do { memcpy((p), (s), (n)); (p) += (n); } while (0)
#define PUTS(p, lit)	PUT(p, lit, sizeof(lit) - 1)

size_t
http_response_write(char *out, const struct http_response *r)
{
	struct status_text	 tmp;
	char			 buf[FAULT_LINE_MAX];
	const struct status_text *st = status_of(r, &tmp, buf);
	size_t	 body = body_size(r, st), n, v;
	char	*p = out;

	PUT(p, st->st_line, st->st_line_len);
	if (r->rsp_body != NULL) {
		PUTS(p, TYPE_FIELD);
		PUT(p, r->rsp_type, strlen(r->rsp_type));
		PUTS(p, CRLF);
	} else if (st->st_body == NULL)
		PUTS(p, TYPE_HTML);
	else
		PUTS(p, TYPE_TEXT);
	if (r->rsp_nostore)
		PUTS(p, NO_STORE);
	if (r->rsp_vary)
		PUTS(p, VARY);
	if (r->rsp_ident_len > 0)
		PUT(p, r->rsp_ident, r->rsp_ident_len);
	PUTS(p, SERVER_DATE);
	PUT(p, r->rsp_date, HTTP_DATE_LEN);
	PUTS(p, CRLF);
	if (!no_length(r, st)) {
		PUTS(p, LENGTH_FIELD);
		n = ulen(body);
		for (v = body; n > 0; v /= 10)
			p[--n] = (char)('0' + v % 10);
		p += ulen(body);
		PUTS(p, CRLF);
	}
	PUT(p, conn_fields[r->rsp_conn].cf_text, conn_fields[r->rsp_conn].cf_len);
	PUTS(p, CRLF);
	if (!no_body(r, st)) {
		if (r->rsp_body != NULL)
			PUT(p, r->rsp_body, body);
		else if (st->st_body != NULL)
			PUT(p, st->st_body, body);
		else {
			PUTS(p, HTTP_GREETING_HEAD);
			PUT(p, r->rsp_addr, r->rsp_addr_len);
			PUTS(p, HTTP_GREETING_TAIL);
		}
	}
	return (size_t)(p - out);
}
