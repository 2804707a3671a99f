/*
 * The client address: the connection's peer (or its PROXY protocol
 * source), then, when that address is a trusted proxy, the address its
 * forwarded header names.
 *
 * Everything here is a pure function: no sockets, no globals, no
 * allocation.  Addresses taken from header text are parsed with
 * inet_pton() and printed with inet_ntop(), so header text never reaches
 * the greeting or the access log as it was sent.
 */
#ifndef HELLOD_CLIENT_H
#define HELLOD_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define CLIENT_MAX_TRUSTED	64
#define CLIENT_ADDR_MAX		46	/* INET6_ADDRSTRLEN */

/*
 * Normalized: an IPv4-mapped IPv6 address (::ffff:a.b.c.d) is stored as
 * the AF_INET address it maps, so it matches IPv4 networks and prints as
 * IPv4.
 */
struct client_addr {
	int		 ca_family;	/* AF_INET, AF_INET6, or 0: unknown
					   (e.g. a UNIX socket) */
	uint8_t		 ca_addr[16];	/* 4 or 16 bytes used */
};

/* A network: the bits past cn_bits are zero; IPv4-mapped networks of
 * /96 and longer are stored as IPv4. */
struct client_net {
	int		 cn_family;
	uint8_t		 cn_addr[16];
	unsigned	 cn_bits;
};

struct client_trust {
	struct client_net ct_nets[CLIENT_MAX_TRUSTED];
	unsigned	 ct_n;
};

enum client_header {
	CLIENT_HEADER_NONE,
	CLIENT_HEADER_XFF,		/* X-Forwarded-For */
	CLIENT_HEADER_XREALIP,		/* X-Real-IP */
	CLIENT_HEADER_FORWARDED		/* Forwarded, RFC 7239 */
};

/* One field line's value, OWS trimmed; not NUL-terminated. */
struct client_field {
	const char	*cf_value;
	size_t		 cf_len;
};

void	 client_from_sockaddr(struct client_addr *,
	    const struct sockaddr_storage *);
size_t	 client_text(const struct client_addr *, char *, size_t);

int	 client_trust_parse(const char *, struct client_trust *, char *,
	    size_t);
int	 client_trust_match(const struct client_trust *,
	    const struct client_addr *);

int	 client_header_parse(const char *, enum client_header *);
const char *client_header_field(enum client_header);

struct client_hops {
	unsigned	 ch_hops;	/* list elements walked */
	unsigned	 ch_trusted;	/* trusted, right of the client's */
};

void	 client_walk(enum client_header, const struct client_trust *,
	    const struct client_field *, unsigned, struct client_addr *);
void	 client_walk_hops(enum client_header, const struct client_trust *,
	    const struct client_field *, unsigned, struct client_addr *,
	    struct client_hops *);

#endif /* HELLOD_CLIENT_H */
