/*
 * PROXY protocol header parsing (HAProxy doc/proxy-protocol.txt), v1
 * (text) and v2 (binary).
 *
 * A pure function over bytes like http_parse(): no sockets, no globals, no
 * allocation, nothing kept between calls.  The caller keeps every byte of
 * the connection it has not consumed yet and calls again with more
 * appended.
 */
#ifndef HELLOD_PROXY_H
#define HELLOD_PROXY_H

#include <sys/socket.h>

#include <stddef.h>

enum proxy_result {
	PROXY_ERROR = -1,	/* the bytes cannot start a header */
	PROXY_NEED_MORE = 0,	/* a proper prefix of a header, so far */
	PROXY_DONE = 1
};

#define PROXY_V1_MAX	107	/* whole v1 line, CRLF included */
#define PROXY_V2_FIXED	16
/* The most a caller must buffer: v2 fixed part + largest address block
 * (UNIX).  A v1 line is always shorter. */
#define PROXY_NEED_MAX	(PROXY_V2_FIXED + 216)

/* Set with DONE; anything else leaves the structure zeroed. */
struct proxy_header {
	/* bytes of buf that belong to the header */
	size_t			 ph_consumed;
	/* header bytes beyond buf still to discard (v2 TLVs not yet
	 * received) */
	size_t			 ph_skip;
	int			 ph_version;	/* 1 or 2 */
	/* 1: keep the socket's addresses (v2 LOCAL, v1 UNKNOWN, v2 UNSPEC
	 * or UNIX) */
	int			 ph_local;
	/* when !ph_local: the client (AF_INET or AF_INET6, port set) */
	struct sockaddr_storage	 ph_src;
	/* when !ph_local: the address the client connected to */
	struct sockaddr_storage	 ph_dst;
};

int	 proxy_parse(const char *, size_t, struct proxy_header *);

#endif /* HELLOD_PROXY_H */
