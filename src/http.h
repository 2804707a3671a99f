/*
 * HTTP/1.x request parsing and response building.
 *
 * Everything here is a pure function over bytes: no sockets, no globals,
 * no allocation.  The parser is resumable: the caller keeps the unconsumed
 * bytes and calls it again with more appended, and a struct http_scan
 * remembers how far an incomplete head was searched, so that every byte
 * of a head is scanned once however it is split.
 */
#ifndef HELLOD_HTTP_H
#define HELLOD_HTTP_H

#include <stddef.h>
#include <stdint.h>

#define HTTP_MAX_FIELDS		100

enum http_result {
	HTTP_ERROR = -1,	/* req->status holds the status to answer */
	HTTP_NEED_MORE = 0,	/* req->consumed leading empty-line bytes */
	HTTP_DONE = 1		/* a complete request head */
};

enum http_method {
	HTTP_GET,
	HTTP_HEAD,
	HTTP_OTHER		/* well-formed, not served: 405 */
};

enum http_body {
	HTTP_BODY_NONE,
	HTTP_BODY_LENGTH,	/* req->content_length bytes follow */
	HTTP_BODY_CHUNKED
};

struct http_limits {
	size_t		 lim_max_header;	/* request line + fields */
	unsigned	 lim_max_fields;
	const char	*lim_forward;	/* lower-case field name to keep */
	size_t		 lim_forward_len;	/* 0: none */
};

struct http_request {
	size_t		 req_consumed;	/* bytes of the head (or skipped) */
	int		 req_status;	/* 200, 405, or the error status */
	enum http_method req_method;
	int		 req_minor;	/* 0 for HTTP/1.0, 1 for 1.1 and up */
	int		 req_keepalive;
	enum http_body	 req_body;
	uint64_t	 req_content_length;

	/* Views into the caller's buffer. */
	const char	*req_line;
	size_t		 req_line_len;
	const char	*req_path;	/* "/..." (or "*"), without the query */
	size_t		 req_path_len;
	const char	*req_query;	/* after '?'; NULL: none */
	size_t		 req_query_len;
	const char	*req_referer;
	size_t		 req_referer_len;
	const char	*req_agent;
	size_t		 req_agent_len;
	const char	*req_accept;	/* the last Accept line; NULL: none */
	size_t		 req_accept_len;

	/* The lines of lim_forward, in order.  Last: the parser clears the
	 * members before req_fwd only. */
	unsigned	 req_nfwd;
	const char	*req_fwd[HTTP_MAX_FIELDS];
	size_t		 req_fwd_len[HTTP_MAX_FIELDS];
};

/* How far an incomplete head has been searched; zeroed for a new head. */
struct http_scan {
	size_t		 hs_off;	/* bytes searched for line ends */
	size_t		 hs_line;	/* start of the line being read */
	size_t		 hs_rl_end;	/* request line's LF + 1; 0: none */
	unsigned	 hs_nfields;
};

int	 http_parse(const char *, size_t, const struct http_limits *,
	    struct http_request *);
int	 http_parse_resume(struct http_scan *, const char *, size_t,
	    const struct http_limits *, struct http_request *);

/* Incremental skipping of a chunked request body. */
struct http_chunked {
	int		 ch_state;
	uint64_t	 ch_left;	/* data bytes left in this chunk */
	unsigned	 ch_digits;
	unsigned	 ch_ext;	/* bytes of this extension/trailer line */
};

void	 http_chunked_init(struct http_chunked *);
int	 http_chunked_skip(struct http_chunked *, const char *, size_t,
	    size_t *);

/* The requests of one connection, with the bodies between them skipped. */
struct http_stream {
	uint64_t	 st_skip;	/* Content-Length bytes left */
	int		 st_in_chunked;
	struct http_chunked st_chunked;
	struct http_scan st_scan;	/* the head being received */
};

void	 http_stream_init(struct http_stream *);
int	 http_stream_busy(const struct http_stream *);
int	 http_stream_next(struct http_stream *, const char *, size_t,
	    const struct http_limits *, struct http_request *, size_t *);

/*
 * Responses.  The caller supplies the cached Date value (29 bytes, as
 * produced by http_date()) and the greeting's client address.
 */
#define HTTP_DATE_LEN		29
#define HTTP_ADDR_MAX		46	/* INET6_ADDRSTRLEN */
#define HTTP_GREETING_HEAD	"<html><body><h1>Hello "
#define HTTP_GREETING_TAIL	"</h1></body></html>"

enum http_conn {
	HTTP_CONN_DEFAULT,	/* persistent 1.1: no Connection field */
	HTTP_CONN_KEEPALIVE,	/* persistent 1.0 */
	HTTP_CONN_CLOSE
};

struct http_response {
	int		 rsp_status;
	int		 rsp_head;	/* HEAD: no body */
	enum http_conn	 rsp_conn;
	const char	*rsp_date;
	const char	*rsp_addr;
	size_t		 rsp_addr_len;
	size_t		 rsp_padding;	/* counted, sent by the caller */
	const char	*rsp_body;	/* a given body instead of the
					   greeting or the status's text */
	size_t		 rsp_body_len;
	const char	*rsp_type;	/* rsp_body's Content-Type */
	int		 rsp_nostore;	/* Cache-Control: no-store */
	int		 rsp_vary;	/* Vary: Accept, User-Agent */
	const char	*rsp_ident;	/* a whole header line, CRLF */
	size_t		 rsp_ident_len;	/* 0: none */
	int		 rsp_fault;	/* any status 200..599 with the
					   greeting (or rsp_body); 204 and
					   304 have no body, 204 no length */
};

/* The reason phrase of a status; "" for one not registered. */
const char	*http_reason(int);

/* A buffer of spaces a caller sends padding from, this much at a time. */
#define HTTP_PAD_CHUNK		65536

void	 http_date(char [HTTP_DATE_LEN + 1], int64_t);
size_t	 http_response_size(const struct http_response *);
size_t	 http_response_max(size_t);
size_t	 http_body_size(const struct http_response *);
size_t	 http_response_write(char *, const struct http_response *);

#endif /* HELLOD_HTTP_H */
