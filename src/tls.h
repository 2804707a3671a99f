/*
 * TLS listeners: the [tls] section (tls_conf.c, parsed whether or not
 * hellod is built with TLS) and, with OpenSSL, the server context the
 * master loads before it forks (tls.c), the shared session-ticket keys
 * (tls_keys.c) and the TLS transport (transport.h).
 */
#ifndef HELLOD_TLS_H
#define HELLOD_TLS_H

#include <limits.h>
#include <stddef.h>

#define TLS_MAX_CERTS		4	/* e.g. an ECDSA and an RSA pair */
#define TLS_NAME_MAX		512	/* cipher lists */

#define TLS_PROTO_12		0x1
#define TLS_PROTO_13		0x2

enum tls_verify {
	TLS_VERIFY_OFF,
	TLS_VERIFY_OPTIONAL,	/* asked for; checked when given */
	TLS_VERIFY_ON		/* required */
};

/* A path and the configuration line it came from, for messages. */
struct tls_path {
	char		 tp_path[PATH_MAX];
	int		 tp_line;
};

struct tls_conf {
	struct tls_path	 tc_cert[TLS_MAX_CERTS];
	unsigned	 tc_ncert;
	struct tls_path	 tc_key[TLS_MAX_CERTS];	/* paired in order */
	unsigned	 tc_nkey;
	unsigned	 tc_protocols;		/* TLS_PROTO_* */
	char		 tc_ciphers[TLS_NAME_MAX];	/* "": the default */
	int		 tc_ciphers_line;
	char		 tc_ciphersuites[TLS_NAME_MAX];
	int		 tc_ciphersuites_line;
	int		 tc_session_tickets;
	unsigned	 tc_ticket_lifetime;	/* ms */
	struct tls_path	 tc_client_ca;		/* "": none */
	enum tls_verify	 tc_verify;
	int		 tc_verify_line;
	unsigned	 tc_seen;		/* keys given once, by bit */
};

/* What the access log and /json say of a connection's TLS. */
struct tls_info {
	const char	*ti_protocol;	/* NULL: not TLS or not yet */
	const char	*ti_cipher;
	const char	*ti_client;	/* a verified client's subject */
};

struct hd_config;

/* tls_conf.c: the [tls] keys; `line` is where the value was read. */
void	 tls_conf_defaults(struct tls_conf *);
int	 tls_conf_set(struct tls_conf *, const char *, const char *, int,
	    char *, size_t);
int	 tls_conf_check(const struct tls_conf *, int, const char *, char *,
	    size_t);

#ifdef HAVE_TLS
struct transport;
struct tls_server;

/* How a handshake ended, per TLS listener (stats.h). */
enum tls_event {
	TLS_EV_FULL,		/* a full handshake */
	TLS_EV_RESUMED,		/* resumed with a ticket */
	TLS_EV_PROTOCOL,	/* no common version, bad records, plain HTTP */
	TLS_EV_CIPHER,		/* no shared cipher */
	TLS_EV_CERT,		/* a client certificate required or refused */
	TLS_EV_TIMEOUT,		/* never finished: timed out or abandoned */
	TLS_NEVENTS
};

/* tls.c */
struct tls_server *tls_server_new(const struct hd_config *, char *, size_t);
void	 tls_server_free(struct tls_server *);
int	 tls_prepare(const struct hd_config *, struct tls_server **, char *,
	    size_t);
int	 tls_commit(struct tls_server *, const struct hd_config *);
struct tls_server *tls_current(void);
int	 tls_transport(struct transport *, struct tls_server *, int, int);
const struct tls_info *tls_info(const struct transport *);
int	 tls_pending(const struct transport *);
void	 tls_kernel_report(void);

/* tls_keys.c: session-ticket keys, made and rotated by the master,
 * read-only in the workers. */
int	 tls_keys_need(unsigned);
int	 tls_keys_adopt(int, unsigned);
int	 tls_keys_fd(void);
double	 tls_keys_due(void);
void	 tls_keys_rotate(void);
void	 tls_keys_child(void);
int	 tls_keys_get(const unsigned char *, unsigned char *, unsigned char *,
	    unsigned char *, int *);
#else
/* Built without TLS: config_read() refuses TLS listeners, so there is
 * never a context, and ticket keys handed over by an image built with TLS
 * are let go. */
struct tls_server;

static inline int
tls_prepare(const struct hd_config *cf, struct tls_server **out, char *err,
    size_t errlen)
{
	(void)cf;
	(void)err;
	(void)errlen;
	*out = NULL;
	return 0;
}

static inline int
tls_commit(struct tls_server *ts, const struct hd_config *cf)
{
	(void)ts;
	(void)cf;
	return 0;
}

struct transport;

static inline struct tls_server *tls_current(void) { return NULL; }
static inline int
tls_pending(const struct transport *t)
{
	(void)t;
	return 0;
}
static inline const struct tls_info *
tls_info(const struct transport *t)
{
	(void)t;
	return NULL;
}

static inline int
tls_transport(struct transport *t, struct tls_server *ts, int fd, int li)
{
	(void)t;
	(void)ts;
	(void)fd;
	(void)li;
	return -1;
}

static inline void	tls_server_free(struct tls_server *ts) { (void)ts; }
static inline void	tls_kernel_report(void) { }
static inline int	tls_keys_fd(void) { return -1; }
static inline double	tls_keys_due(void) { return -1; }
static inline void	tls_keys_rotate(void) { }
static inline void	tls_keys_child(void) { }
int	 tls_keys_adopt(int, unsigned);
#endif

#endif /* HELLOD_TLS_H */
