/*
 * PROXY protocol header parsing (HAProxy doc/proxy-protocol.txt), v1
 * (text) and v2 (binary).
 *
 * A pure function over bytes like http_parse(): no sockets, no globals, no
 * allocation, nothing kept between calls.  The caller keeps every byte of
 * the connection it has not consumed yet and calls again with more
 * appended: at most PROXY_NEED_MAX bytes before an answer.  DONE comes only
 * once the whole header is there, v2 TLVs included, so the bytes after it
 * are the connection's HTTP stream and nothing else.
 */
#ifndef HELLOD_PROXY_H
#define HELLOD_PROXY_H

#include <sys/socket.h>

#include <stddef.h>
#include <stdint.h>

enum proxy_result {
	PROXY_ERROR = -1,	/* the bytes cannot start a header */
	PROXY_NEED_MORE = 0,	/* a proper prefix of a header, so far */
	PROXY_DONE = 1
};

#define PROXY_V1_MAX	107	/* whole v1 line, CRLF included */
#define PROXY_V2_FIXED	16
/*
 * The longest v2 header taken, fixed part and TLVs included; a longer
 * one is refused as soon as its length field arrives.  HAProxy sends a
 * few hundred bytes at most (addresses, ALPN, AUTHORITY, a 128-byte
 * UNIQUE_ID, SSL names); nginx takes 4096 as well.
 */
#define PROXY_V2_MAX	4096
/* The most a caller must buffer without an answer: a v1 line is always
 * shorter. */
#define PROXY_NEED_MAX	PROXY_V2_MAX

/* v2 TLV types (doc/proxy-protocol.txt 2.2.x). */
#define PROXY_TLV_ALPN		0x01
#define PROXY_TLV_AUTHORITY	0x02
#define PROXY_TLV_CRC32C	0x03	/* verified when present */
#define PROXY_TLV_NOOP		0x04
#define PROXY_TLV_UNIQUE_ID	0x05	/* at most 128 bytes */
#define PROXY_TLV_SSL		0x20	/* client, verify, then sub-TLVs */
#define PROXY_TLV_NETNS		0x30
/* PROXY_TLV_SSL sub-TLVs, after the SSL value's first 5 bytes. */
#define PROXY_TLV_SSL_VERSION	0x21
#define PROXY_TLV_SSL_CN	0x22
#define PROXY_TLV_SSL_CIPHER	0x23
#define PROXY_TLV_SSL_SIG_ALG	0x24
#define PROXY_TLV_SSL_KEY_ALG	0x25

#define PROXY_TLV_HEAD		3	/* type, length (network order) */
#define PROXY_TLV_SSL_HEAD	5	/* client (1), verify (4) */
#define PROXY_TLV_UNIQUE_ID_MAX	128

/* Set with DONE; anything else leaves the structure zeroed. */
struct proxy_header {
	/* bytes of buf that belong to the header: all of it, TLVs
	 * included; the HTTP stream starts right after */
	size_t			 ph_consumed;
	/*
	 * v2: the TLV block is buf[ph_tlv_off .. ph_tlv_off + ph_tlv_len),
	 * and proxy_tlv_next() walks it without error: its TLVs tile it
	 * exactly, an SSL TLV's sub-TLVs tile the rest of its value, and a
	 * CRC32C TLV matches the header.  Empty for v1 and v2 LOCAL (whose
	 * block is ignored whole).  Offsets, not pointers: the caller may
	 * move its buffer.
	 */
	size_t			 ph_tlv_off;
	size_t			 ph_tlv_len;
	int			 ph_version;	/* 1 or 2 */
	/* 1: keep the socket's addresses (v2 LOCAL, v1 UNKNOWN, v2 UNSPEC
	 * or UNIX) */
	int			 ph_local;
	/* when !ph_local: the client (AF_INET or AF_INET6, port set) */
	struct sockaddr_storage	 ph_src;
	/* when !ph_local: the address the client connected to */
	struct sockaddr_storage	 ph_dst;
};

/* One TLV; pt_value points into the block walked. */
struct proxy_tlv {
	uint8_t			 pt_type;
	uint16_t		 pt_len;
	const uint8_t		*pt_value;
};

int	 proxy_parse(const char *, size_t, struct proxy_header *);
/*
 * The TLV at *off in block[0..len): 1 with *out set and *off moved past
 * it, 0 at the end (*off == len), -1 when the bytes at *off are no whole
 * TLV.  Walks an SSL TLV's sub-TLVs too, from pt_value +
 * PROXY_TLV_SSL_HEAD.
 */
int	 proxy_tlv_next(const uint8_t *, size_t, size_t *,
	    struct proxy_tlv *);
/* The first TLV of the type in a block proxy_parse() accepted: 1 with
 * *out set, or 0. */
int	 proxy_tlv_find(const uint8_t *, size_t, uint8_t, struct proxy_tlv *);

#endif /* HELLOD_PROXY_H */
