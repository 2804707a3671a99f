/*
 * TLS with OpenSSL: the server context, loaded by the master before it
 * drops privileges and inherited by the workers at fork (so key files may
 * be readable by root only), and the TLS transport (transport.h) that
 * both workers use through the same calls as a plain socket.  A reload
 * loads a new context for the new generation: connections of the old one
 * keep theirs, new handshakes get the new certificate.
 */
#include <sys/socket.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "hellod.h"
#include "stats.h"
#include "tls.h"
#include "transport.h"

#define DEFAULT_CIPHERS							\
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"	\
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"	\
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
#define DEFAULT_SUITES							\
	"TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:"		\
	"TLS_CHACHA20_POLY1305_SHA256"

/* The answer to a plain HTTP request on a TLS port, as nginx gives it. */
#define PLAIN_HTTP_400							\
	"HTTP/1.1 400 Bad Request\r\n"					\
	"Content-Type: text/plain\r\n"					\
	"Server: hellod\r\n"						\
	"Content-Length: 49\r\n"					\
	"Connection: close\r\n"						\
	"\r\n"								\
	"The plain HTTP request was sent to an HTTPS port\n"

struct tls_server {
	SSL_CTX		*ts_ctx;
};

struct tls_conn {
	SSL		*tc_ssl;
	int		 tc_listener;	/* its TLS listener, for counting */
	int		 tc_state;	/* TCS_* */
	struct tls_info	 tc_info;
	char		*tc_client;	/* tc_info.ti_client */
};

enum {
	TCS_NEW,	/* nothing received yet */
	TCS_HANDSHAKE,	/* a handshake in progress */
	TCS_OPEN,	/* counted as done */
	TCS_FAILED	/* counted as failed */
};

static const char *
file_of(const struct hd_config *cf)
{
	return cf->cf_file[0] != '\0' ? cf->cf_file : "(command line)";
}

/* The first OpenSSL error of this thread, as text; the queue is emptied. */
static const char *
ssl_error(void)
{
	static char	 buf[256];
	unsigned long	 e = ERR_get_error();

	if (e == 0)
		snprintf(buf, sizeof(buf), "unknown error");
	else
		ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	return buf;
}

static int
alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
    const unsigned char *in, unsigned inlen, void *arg)
{
	static const unsigned char h1[] = "\x08http/1.1";

	(void)ssl;
	(void)arg;
	if (SSL_select_next_proto((unsigned char **)out, outlen, h1,
	    sizeof(h1) - 1, in, inlen) != OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_NOACK;
	return SSL_TLSEXT_ERR_OK;
}

/*
 * Session tickets are sealed with keys the master makes and rotates
 * (tls_keys.c), the same in every worker: a ticket from one worker
 * resumes on another, across reloads and upgrades.
 */
/* Fetched once: an implicit fetch per ticket costs lookups and locks. */
static EVP_CIPHER	*ticket_cipher;

static int
ticket_key(SSL *ssl, unsigned char name[16], unsigned char *iv,
    EVP_CIPHER_CTX *ectx, EVP_MAC_CTX *hctx, int enc)
{
	unsigned char	 aes[32], hmac[32];
	OSSL_PARAM	 params[3];
	int		 renew = 0, rc;

	(void)ssl;
	if (enc) {
		if (tls_keys_get(NULL, name, aes, hmac, &renew) == -1 ||
		    RAND_bytes(iv, EVP_MAX_IV_LENGTH) != 1 ||
		    EVP_EncryptInit_ex(ectx, ticket_cipher, NULL, aes,
		    iv) != 1)
			return -1;
		rc = 1;
	} else {
		if (tls_keys_get(name, NULL, aes, hmac, &renew) == -1)
			return 0;	/* unknown or retired: full handshake */
		if (EVP_DecryptInit_ex(ectx, ticket_cipher, NULL, aes,
		    iv) != 1)
			return -1;
		rc = renew ? 2 : 1;
	}
	params[0] = OSSL_PARAM_construct_octet_string("key", hmac,
	    sizeof(hmac));
	params[1] = OSSL_PARAM_construct_utf8_string("digest", "sha256", 0);
	params[2] = OSSL_PARAM_construct_end();
	if (EVP_MAC_CTX_set_params(hctx, params) != 1)
		return -1;
	OPENSSL_cleanse(aes, sizeof(aes));
	OPENSSL_cleanse(hmac, sizeof(hmac));
	return rc;
}

static int
file_readable(const struct tls_path *tp, const char *key,
    const struct hd_config *cf, char *err, size_t errlen)
{
	if (access(tp->tp_path, R_OK) == 0)
		return 0;
	snprintf(err, errlen, "%s:%d: [tls] %s: cannot read %s: %s",
	    file_of(cf), tp->tp_line, key, tp->tp_path, strerror(errno));
	return -1;
}

/* Loads certificate i and its key; an expired certificate is a warning. */
static int
load_pair(SSL_CTX *ctx, const struct hd_config *cf, unsigned i, char *err,
    size_t errlen)
{
	const struct tls_path	*cert = &cf->cf_tls.tc_cert[i];
	const struct tls_path	*key = &cf->cf_tls.tc_key[i];
	EVP_PKEY		*pkey;
	X509			*x;
	FILE			*fp;

	if (file_readable(cert, "certificate", cf, err, errlen) == -1 ||
	    file_readable(key, "certificate_key", cf, err, errlen) == -1)
		return -1;
	if (SSL_CTX_use_certificate_chain_file(ctx, cert->tp_path) != 1) {
		snprintf(err, errlen, "%s:%d: [tls] certificate: %s: %s",
		    file_of(cf), cert->tp_line, cert->tp_path, ssl_error());
		return -1;
	}
	x = SSL_CTX_get0_certificate(ctx);
	pkey = NULL;
	if ((fp = fopen(key->tp_path, "r")) != NULL) {
		pkey = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
		fclose(fp);
	}
	if (pkey == NULL) {
		snprintf(err, errlen, "%s:%d: [tls] certificate_key: %s: no "
		    "private key in PEM form (%s)", file_of(cf), key->tp_line,
		    key->tp_path, ssl_error());
		return -1;
	}
	if (X509_check_private_key(x, pkey) != 1) {
		ERR_clear_error();
		EVP_PKEY_free(pkey);
		snprintf(err, errlen, "%s:%d: [tls] certificate_key: %s does "
		    "not match the certificate %s", file_of(cf), key->tp_line,
		    key->tp_path, cert->tp_path);
		return -1;
	}
	if (SSL_CTX_use_PrivateKey(ctx, pkey) != 1) {
		EVP_PKEY_free(pkey);
		snprintf(err, errlen, "%s:%d: [tls] certificate_key: %s: %s",
		    file_of(cf), key->tp_line, key->tp_path, ssl_error());
		return -1;
	}
	EVP_PKEY_free(pkey);
	if (x != NULL && X509_cmp_current_time(X509_get0_notAfter(x)) < 0)
		log_warnx("%s:%d: [tls] certificate: %s has expired: clients "
		    "will refuse it", file_of(cf), cert->tp_line,
		    cert->tp_path);
	else if (x != NULL && X509_cmp_current_time(X509_get0_notBefore(x)) >
	    0)
		log_warnx("%s:%d: [tls] certificate: %s is not valid yet",
		    file_of(cf), cert->tp_line, cert->tp_path);
	return 0;
}

static int
load_client_ca(SSL_CTX *ctx, const struct hd_config *cf, char *err,
    size_t errlen)
{
	const struct tls_conf	*tc = &cf->cf_tls;
	STACK_OF(X509_NAME)	*names;
	int			 mode;

	if (tc->tc_client_ca.tp_path[0] == '\0')
		return 0;
	if (file_readable(&tc->tc_client_ca, "client_ca", cf, err,
	    errlen) == -1)
		return -1;
	if (SSL_CTX_load_verify_locations(ctx, tc->tc_client_ca.tp_path,
	    NULL) != 1 ||
	    (names = SSL_load_client_CA_file(tc->tc_client_ca.tp_path)) ==
	    NULL) {
		snprintf(err, errlen, "%s:%d: [tls] client_ca: %s: %s",
		    file_of(cf), tc->tc_client_ca.tp_line,
		    tc->tc_client_ca.tp_path, ssl_error());
		return -1;
	}
	SSL_CTX_set_client_CA_list(ctx, names);
	mode = SSL_VERIFY_NONE;
	if (tc->tc_verify == TLS_VERIFY_OPTIONAL)
		mode = SSL_VERIFY_PEER;
	else if (tc->tc_verify == TLS_VERIFY_ON)
		mode = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
	SSL_CTX_set_verify(ctx, mode, NULL);
	SSL_CTX_set_verify_depth(ctx, 4);
	return 0;
}

static int
set_suites(SSL_CTX *ctx, const struct hd_config *cf, char *err,
    size_t errlen)
{
	const struct tls_conf	*tc = &cf->cf_tls;
	const char		*ciphers, *suites;

	ciphers = tc->tc_ciphers[0] != '\0' ? tc->tc_ciphers : DEFAULT_CIPHERS;
	suites = tc->tc_ciphersuites[0] != '\0' ? tc->tc_ciphersuites :
	    DEFAULT_SUITES;
	if (SSL_CTX_set_cipher_list(ctx, ciphers) != 1) {
		ERR_clear_error();
		snprintf(err, errlen, "%s:%d: [tls] ciphers: no usable cipher "
		    "in '%s'", file_of(cf), tc->tc_ciphers_line, ciphers);
		return -1;
	}
	if (SSL_CTX_set_ciphersuites(ctx, suites) != 1) {
		ERR_clear_error();
		snprintf(err, errlen, "%s:%d: [tls] ciphersuites: no usable "
		    "suite in '%s'", file_of(cf), tc->tc_ciphersuites_line,
		    suites);
		return -1;
	}
	return 0;
}

/*
 * A server context for cf's [tls] section.  Errors name the file, line
 * and key; the context is whole or not made at all.
 */
struct tls_server *
tls_server_new(const struct hd_config *cf, char *err, size_t errlen)
{
	const struct tls_conf	*tc = &cf->cf_tls;
	struct tls_server	*ts;
	SSL_CTX			*ctx;
	unsigned		 i;

	if ((ts = calloc(1, sizeof(*ts))) == NULL ||
	    (ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		snprintf(err, errlen, "SSL_CTX_new() failed");
		free(ts);
		return NULL;
	}
	ts->ts_ctx = ctx;
	SSL_CTX_set_min_proto_version(ctx, tc->tc_protocols & TLS_PROTO_12 ?
	    TLS1_2_VERSION : TLS1_3_VERSION);
	SSL_CTX_set_max_proto_version(ctx, tc->tc_protocols & TLS_PROTO_13 ?
	    TLS1_3_VERSION : TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE |
	    SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF |
	    SSL_OP_NO_COMPRESSION
#ifdef SSL_OP_ENABLE_KTLS
	    | SSL_OP_ENABLE_KTLS
#endif
	    );
	/* Output that the socket did not take is retried from the
	 * connection's own copy (conn.c), at another address. */
	/* One read takes what has arrived, not a record header and then its
	 * body: what is left over is seen through tr_pending(). */
	SSL_CTX_set_read_ahead(ctx, 1);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
	/* Stateless resumption only: a worker's cache would not be seen by
	 * the others. */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
	if (tc->tc_session_tickets) {
		if (ticket_cipher == NULL &&
		    (ticket_cipher = EVP_CIPHER_fetch(NULL, "AES-256-CBC",
		    NULL)) == NULL) {
			snprintf(err, errlen, "EVP_CIPHER_fetch(AES-256-CBC) "
			    "failed: %s", ssl_error());
			goto fail;
		}
		SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_key);
		SSL_CTX_set_timeout(ctx, tc->tc_ticket_lifetime / 1000);
		SSL_CTX_set_num_tickets(ctx, 1);
	} else {
		SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
		SSL_CTX_set_num_tickets(ctx, 0);
	}
	if (set_suites(ctx, cf, err, errlen) == -1)
		goto fail;
	for (i = 0; i < tc->tc_ncert; i++)
		if (load_pair(ctx, cf, i, err, errlen) == -1)
			goto fail;
	if (load_client_ca(ctx, cf, err, errlen) == -1)
		goto fail;
	return ts;
fail:
	tls_server_free(ts);
	return NULL;
}

void
tls_server_free(struct tls_server *ts)
{
	if (ts == NULL)
		return;
	SSL_CTX_free(ts->ts_ctx);
	free(ts);
}

/* The context the next workers get; children inherit it at fork. */
static struct tls_server	*tls_current_server;

/*
 * The master, at start and at each reload: *out gets a context for cf's
 * TLS listeners (NULL without any), or -1 and the reason in err.  Nothing
 * changes until tls_commit().
 */
int
tls_prepare(const struct hd_config *cf, struct tls_server **out, char *err,
    size_t errlen)
{
	*out = NULL;
	if (config_listen_count(cf, HD_LO_TLS) +
	    config_listen_count(cf, HD_LO_PROXY | HD_LO_TLS) == 0)
		return 0;
	return (*out = tls_server_new(cf, err, errlen)) == NULL ? -1 : 0;
}

/*
 * Makes ts (from tls_prepare()) the context of the workers forked from
 * now on; the previous one is freed here, its copies in older workers
 * live on.  The ticket keys are made the first time they are needed,
 * and keep their rotation across reloads.
 */
int
tls_commit(struct tls_server *ts, const struct hd_config *cf)
{
	tls_server_free(tls_current_server);
	tls_current_server = ts;
	if (ts != NULL && cf->cf_tls.tc_session_tickets)
		return tls_keys_need(cf->cf_tls.tc_ticket_lifetime);
	return 0;
}

struct tls_server *
tls_current(void)
{
	return tls_current_server;
}

/* Whether this kernel offers TLS offload to sockets (the "tls" upper
 * layer protocol), said once at start. */
void
tls_kernel_report(void)
{
	char	 buf[256];
	FILE	*fp;
	int	 have = 0;

	if ((fp = fopen("/proc/sys/net/ipv4/tcp_available_ulp", "r")) !=
	    NULL) {
		if (fgets(buf, sizeof(buf), fp) != NULL)
			have = strstr(buf, "tls") != NULL;
		fclose(fp);
	}
#ifdef SSL_OP_ENABLE_KTLS
	if (have) {
		log_info("kernel TLS offered: enabled for the ciphers it "
		    "supports");
		return;
	}
#endif
	log_info("kernel TLS not offered by this kernel (no tls module): "
	    "records are encrypted in the workers");
}

/* Counts how the handshake of c ended, once. */
static void
tls_count(struct tls_conn *c, enum tls_event ev)
{
	stats_tls(c->tc_listener, ev);
	c->tc_state = ev <= TLS_EV_RESUMED ? TCS_OPEN : TCS_FAILED;
}

static void
tls_opened(struct tls_conn *c)
{
	X509	*x;
	char	 buf[256];

	tls_count(c, SSL_session_reused(c->tc_ssl) ? TLS_EV_RESUMED :
	    TLS_EV_FULL);
	c->tc_info.ti_protocol = SSL_get_version(c->tc_ssl);
	c->tc_info.ti_cipher = SSL_get_cipher_name(c->tc_ssl);
	if ((x = SSL_get0_peer_certificate(c->tc_ssl)) != NULL &&
	    SSL_get_verify_result(c->tc_ssl) == X509_V_OK) {
		X509_NAME_oneline(X509_get_subject_name(x), buf, sizeof(buf));
		if ((c->tc_client = strdup(buf)) != NULL)
			c->tc_info.ti_client = c->tc_client;
	}
}

/* Why a handshake failed, from OpenSSL's error queue (then emptied). */
static enum tls_event
tls_failure(void)
{
	unsigned long	 e = ERR_peek_error();
	int		 r = ERR_GET_REASON(e);

	ERR_clear_error();
	switch (r) {
	case SSL_R_NO_SHARED_CIPHER:
		return TLS_EV_CIPHER;
	case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
	case SSL_R_CERTIFICATE_VERIFY_FAILED:
	case SSL_R_NO_CERTIFICATES_RETURNED:
		return TLS_EV_CERT;
	default:
		return TLS_EV_PROTOCOL;
	}
}

/*
 * A client that speaks plain HTTP to a TLS port gets a 400 in clear text
 * instead of a hang: what it sent is read first, so that closing does
 * not reset the answer away.
 */
static int
plain_request(struct transport *t)
{
	char	 buf[4096];
	ssize_t	 n;

	do
		n = recv(t->tr_fd, buf, sizeof(buf), MSG_DONTWAIT);
	while (n > 0 || (n == -1 && errno == EINTR));
	(void)send(t->tr_fd, PLAIN_HTTP_400, sizeof(PLAIN_HTTP_400) - 1,
	    MSG_NOSIGNAL | MSG_DONTWAIT);
	(void)shutdown(t->tr_fd, SHUT_WR);
	return 0;
}

/* A record starts with its content type: 0x16 for a handshake. */
static int
first_byte(struct transport *t)
{
	struct tls_conn	*c = t->tr_tls;
	unsigned char	 b;
	ssize_t		 n;

	do
		n = recv(t->tr_fd, &b, 1, MSG_PEEK);
	while (n == -1 && errno == EINTR);
	if (n == -1 && errno == EAGAIN) {
		t->tr_want = TR_WANT_READ;
		return TR_AGAIN;
	}
	if (n <= 0)
		return n == 0 ? 0 : TR_ERROR;
	c->tc_state = TCS_HANDSHAKE;
	if (b != 0x16 && b != 0x80) {
		tls_count(c, TLS_EV_PROTOCOL);
		return plain_request(t);
	}
	return 1;
}

/* The result of an SSL call that did not succeed, as a transport's. */
static ssize_t
tls_result(struct transport *t, int rc)
{
	struct tls_conn	*c = t->tr_tls;

	switch (SSL_get_error(c->tc_ssl, rc)) {
	case SSL_ERROR_WANT_READ:
		t->tr_want = TR_WANT_READ;
		return TR_AGAIN;
	case SSL_ERROR_WANT_WRITE:
		t->tr_want = TR_WANT_WRITE;
		return TR_AGAIN;
	case SSL_ERROR_ZERO_RETURN:
		ERR_clear_error();
		return 0;
	case SSL_ERROR_SYSCALL:
		ERR_clear_error();
		if (errno == 0)
			return 0;
		if (c->tc_state == TCS_OPEN)
			c->tc_state = TCS_FAILED;	/* no close_notify */
		return TR_ERROR;
	default:
		if (c->tc_state == TCS_HANDSHAKE)
			tls_count(c, tls_failure());
		else {
			ERR_clear_error();
			c->tc_state = TCS_FAILED;	/* no close_notify */
		}
		errno = EPROTO;
		return TR_ERROR;
	}
}

static ssize_t
tls_recv(struct transport *t, void *buf, size_t len)
{
	struct tls_conn	*c = t->tr_tls;
	size_t		 n;
	int		 rc;

	if (c->tc_state == TCS_NEW && (rc = first_byte(t)) != 1)
		return rc;
	if (c->tc_state == TCS_FAILED)
		return TR_ERROR;
	errno = 0;
	if ((rc = SSL_read_ex(c->tc_ssl, buf, len, &n)) != 1)
		return tls_result(t, rc);
	if (c->tc_state == TCS_HANDSHAKE)
		tls_opened(c);
	return (ssize_t)n;
}

static ssize_t
tls_writev(struct transport *t, const struct iovec *iov, int niov, int flags)
{
	struct tls_conn	*c = t->tr_tls;
	size_t		 n, total = 0;
	int		 i, rc;

	(void)flags;
	for (i = 0; i < niov; i++) {
		errno = 0;
		rc = SSL_write_ex(c->tc_ssl, iov[i].iov_base, iov[i].iov_len,
		    &n);
		if (rc != 1)
			return total > 0 ? (ssize_t)total : tls_result(t, rc);
		total += n;
		if (n < iov[i].iov_len)
			break;
	}
	return (ssize_t)total;
}

/* close_notify once, on an open connection without a fatal error; a
 * peer that is gone is no error here. */
static void
tls_close_notify(struct tls_conn *c)
{
	if (c->tc_state == TCS_OPEN &&
	    !(SSL_get_shutdown(c->tc_ssl) & SSL_SENT_SHUTDOWN) &&
	    SSL_shutdown(c->tc_ssl) < 0)
		ERR_clear_error();
}

/* close_notify, then FIN. */
static int
tls_shutdown(struct transport *t)
{
	tls_close_notify(t->tr_tls);
	return shutdown(t->tr_fd, SHUT_WR);
}

static int
tls_close(struct transport *t)
{
	struct tls_conn	*c = t->tr_tls;
	int		 rc;

	if (c->tc_state == TCS_HANDSHAKE)
		tls_count(c, TLS_EV_TIMEOUT);
	/* A close after "Connection: close", an idle keep-alive connection
	 * or the client's own close_notify: the response's end is not a
	 * truncation (RFC 8446, 6.1). */
	tls_close_notify(c);
	SSL_free(c->tc_ssl);
	free(c->tc_client);
	free(c);
	t->tr_tls = NULL;
	rc = close(t->tr_fd);
	t->tr_fd = -1;
	return rc;
}

static const struct transport_ops tls_ops = {
	tls_recv, tls_writev, tls_shutdown, tls_close
};

/*
 * Makes t the TLS transport of socket fd, accepted on TLS listener
 * `listener` (its index among the TLS listeners, for counting).  The
 * handshake happens within the first reads.  -1: t is unusable and fd
 * is the caller's to close.
 */
int
tls_transport(struct transport *t, struct tls_server *ts, int fd,
    int listener)
{
	struct tls_conn	*c;

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		log_warn("calloc() failed");
		return -1;
	}
	if ((c->tc_ssl = SSL_new(ts->ts_ctx)) == NULL ||
	    SSL_set_fd(c->tc_ssl, fd) != 1) {
		log_warnx("SSL_new() failed: %s", ssl_error());
		SSL_free(c->tc_ssl);
		free(c);
		return -1;
	}
	SSL_set_accept_state(c->tc_ssl);
	c->tc_listener = listener;
	t->tr_ops = &tls_ops;
	t->tr_fd = fd;
	t->tr_want = 0;
	t->tr_tls = c;
	return 0;
}

/* Input OpenSSL holds, decrypted or not, that the socket no longer shows
 * as readable (read-ahead takes all that has arrived). */
int
tls_pending(const struct transport *t)
{
	return SSL_has_pending(t->tr_tls->tc_ssl);
}

/* The connection's TLS as the access log shows it: fields are set once
 * the handshake is done; NULL for a plain connection. */
const struct tls_info *
tls_info(const struct transport *t)
{
	return t->tr_tls != NULL ? &t->tr_tls->tc_info : NULL;
}
