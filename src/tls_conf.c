/*
 * The [tls] section of hellod.conf(5).  Only values are checked here;
 * whether the files exist, match and hold a usable certificate is for
 * tls_server_new(), which names the same file, line and key.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "hellod.h"
#include "tls.h"

#define TLS_DEFAULT_LIFETIME	(3600 * 1000)		/* 1h */
#define TLS_MAX_LIFETIME	(7 * 24 * 3600 * 1000)	/* RFC 8446 4.6.1 */

void
tls_conf_defaults(struct tls_conf *tc)
{
	memset(tc, 0, sizeof(*tc));
	tc->tc_protocols = TLS_PROTO_12 | TLS_PROTO_13;
	tc->tc_session_tickets = 1;
	tc->tc_ticket_lifetime = TLS_DEFAULT_LIFETIME;
	tc->tc_verify = TLS_VERIFY_OFF;
}

/* An empty value sets nothing: the packaged file lists every key. */
static int
set_path(struct tls_path *tp, const char *v, int line, char *err,
    size_t errlen)
{
	if (*v == '\0') {
		tp->tp_path[0] = '\0';
		return 0;
	}
	if (*v != '/') {
		snprintf(err, errlen, "'%s' is not an absolute path", v);
		return -1;
	}
	if (strlen(v) >= sizeof(tp->tp_path)) {
		snprintf(err, errlen, "path too long");
		return -1;
	}
	strcpy(tp->tp_path, v);
	tp->tp_line = line;
	return 0;
}

static int
set_paths(struct tls_path *list, unsigned *n, const char *v, int line,
    char *err, size_t errlen)
{
	if (*v == '\0')
		return 0;
	if (*n == TLS_MAX_CERTS) {
		snprintf(err, errlen, "more than %d certificates",
		    TLS_MAX_CERTS);
		return -1;
	}
	if (set_path(&list[*n], v, line, err, errlen) == -1)
		return -1;
	(*n)++;
	return 0;
}

static int
set_protocols(struct tls_conf *tc, const char *v, char *err, size_t errlen)
{
	char		 word[32];
	const char	*p = v;
	size_t		 len;
	unsigned	 set = 0;

	for (;;) {
		p += strspn(p, " \t");
		if (*p == '\0')
			break;
		len = strcspn(p, " \t");
		if (len >= sizeof(word))
			len = sizeof(word) - 1;
		memcpy(word, p, len);
		word[len] = '\0';
		p += strcspn(p, " \t");
		if (strcmp(word, "TLSv1.2") == 0)
			set |= TLS_PROTO_12;
		else if (strcmp(word, "TLSv1.3") == 0)
			set |= TLS_PROTO_13;
		else {
			snprintf(err, errlen, "unknown protocol '%s' (TLSv1.2 "
			    "or TLSv1.3; older versions are not offered)",
			    word);
			return -1;
		}
	}
	if (set == 0) {
		snprintf(err, errlen, "no protocol (TLSv1.2, TLSv1.3 or both)");
		return -1;
	}
	tc->tc_protocols = set;
	return 0;
}

static int
set_list(char *dst, size_t dstlen, int *linep, const char *v, int line,
    char *err, size_t errlen)
{
	if (strlen(v) >= dstlen) {
		snprintf(err, errlen, "value too long (at most %zu bytes)",
		    dstlen - 1);
		return -1;
	}
	strcpy(dst, v);
	*linep = line;
	return 0;
}

static const char *const tls_keys[] = {
	"certificate", "certificate_key", "protocols", "ciphers",
	"ciphersuites", "session_tickets", "session_ticket_lifetime",
	"client_ca", "verify_client"
};

/*
 * Sets [tls] `name` to v, read on `line`.  certificate and
 * certificate_key may be repeated (pairs, in order); the others once.
 */
int
tls_conf_set(struct tls_conf *tc, const char *name, const char *v, int line,
    char *err, size_t errlen)
{
	unsigned	 k;

	for (k = 0; k < sizeof(tls_keys) / sizeof(tls_keys[0]); k++)
		if (strcmp(name, tls_keys[k]) == 0)
			break;
	if (k == sizeof(tls_keys) / sizeof(tls_keys[0])) {
		snprintf(err, errlen, "unknown key");
		return -1;
	}
	if (k >= 2 && (tc->tc_seen & (1u << k))) {
		snprintf(err, errlen, "duplicate key");
		return -1;
	}
	tc->tc_seen |= 1u << k;
	switch (k) {
	case 0:
		return set_paths(tc->tc_cert, &tc->tc_ncert, v, line, err,
		    errlen);
	case 1:
		return set_paths(tc->tc_key, &tc->tc_nkey, v, line, err,
		    errlen);
	case 2:
		return set_protocols(tc, v, err, errlen);
	case 3:
		return set_list(tc->tc_ciphers, sizeof(tc->tc_ciphers),
		    &tc->tc_ciphers_line, v, line, err, errlen);
	case 4:
		return set_list(tc->tc_ciphersuites,
		    sizeof(tc->tc_ciphersuites), &tc->tc_ciphersuites_line, v,
		    line, err, errlen);
	case 5:
		if (strcmp(v, "on") != 0 && strcmp(v, "off") != 0) {
			snprintf(err, errlen, "invalid value '%s' (on or off)",
			    v);
			return -1;
		}
		tc->tc_session_tickets = strcmp(v, "on") == 0;
		return 0;
	case 6:
		if (config_parse_duration(v, &tc->tc_ticket_lifetime) == -1 ||
		    tc->tc_ticket_lifetime < 60000 ||
		    tc->tc_ticket_lifetime > TLS_MAX_LIFETIME) {
			snprintf(err, errlen, "invalid duration '%s' (1m-168h)",
			    v);
			return -1;
		}
		return 0;
	case 7:
		return set_path(&tc->tc_client_ca, v, line, err, errlen);
	default:
		if (strcmp(v, "off") == 0)
			tc->tc_verify = TLS_VERIFY_OFF;
		else if (strcmp(v, "optional") == 0)
			tc->tc_verify = TLS_VERIFY_OPTIONAL;
		else if (strcmp(v, "on") == 0)
			tc->tc_verify = TLS_VERIFY_ON;
		else {
			snprintf(err, errlen, "invalid value '%s' (off, "
			    "optional or on)", v);
			return -1;
		}
		tc->tc_verify_line = line;
		return 0;
	}
}

#ifndef HAVE_TLS
/* Ticket keys handed over by an image built with TLS: not used here. */
int
tls_keys_adopt(int fd, unsigned lifetime_ms)
{
	(void)lifetime_ms;
	if (fd != -1)
		close(fd);
	return 0;
}
#endif

/*
 * The section as a whole, once the file is read: `ntls` TLS listeners
 * need a certificate; certificates and keys come in pairs; checking
 * clients needs the CA that signs them.  Messages name `file`.
 */
int
tls_conf_check(const struct tls_conf *tc, int ntls, const char *file,
    char *err, size_t errlen)
{
	if (ntls > 0 && tc->tc_ncert == 0) {
		snprintf(err, errlen, "%s: [tls] certificate: missing, and a "
		    "TLS listener needs one", file);
		return -1;
	}
	if (tc->tc_ncert != tc->tc_nkey) {
		snprintf(err, errlen, "%s:%d: [tls] %s: %u certificate%s and "
		    "%u key%s: give them in pairs", file,
		    tc->tc_ncert > tc->tc_nkey ?
		    tc->tc_cert[tc->tc_ncert - 1].tp_line :
		    tc->tc_key[tc->tc_nkey - 1].tp_line,
		    tc->tc_ncert > tc->tc_nkey ? "certificate" :
		    "certificate_key", tc->tc_ncert,
		    tc->tc_ncert == 1 ? "" : "s", tc->tc_nkey,
		    tc->tc_nkey == 1 ? "" : "s");
		return -1;
	}
	if (tc->tc_verify != TLS_VERIFY_OFF &&
	    tc->tc_client_ca.tp_path[0] == '\0') {
		snprintf(err, errlen, "%s:%d: [tls] verify_client: needs "
		    "client_ca, the CA that signs client certificates", file,
		    tc->tc_verify_line);
		return -1;
	}
	return 0;
}
