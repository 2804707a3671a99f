/*
 * The [tls] section (tls_conf.c) and the server context (tls.c): values,
 * pairs, and the messages for a missing file, a key that does not match
 * its certificate, an expired certificate (a warning) and a cipher list
 * with nothing usable, each naming file, line and key.  The certificates
 * are made here with OpenSSL.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "hellod.h"
#include "conf_text.h"
#include "tls.h"

static char	 dir[PATH_MAX];

/* A self-signed P-256 certificate and its key, valid from `from` days to
 * `to` days from now. */
static void
make_cert(const char *name, long from, long to)
{
	char		 path[PATH_MAX + 64];
	EVP_PKEY	*key;
	X509		*x;
	FILE		*fp;

	key = EVP_EC_gen("P-256");
	assert_non_null(key);
	x = X509_new();
	assert_non_null(x);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), from * 86400);
	X509_gmtime_adj(X509_getm_notAfter(x), to * 86400);
	X509_set_pubkey(x, key);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN",
	    MBSTRING_ASC, (const unsigned char *)"localhost", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	assert_true(X509_sign(x, key, EVP_sha256()) > 0);
	snprintf(path, sizeof(path), "%s/%s.crt", dir, name);
	assert_non_null(fp = fopen(path, "w"));
	assert_int_equal(PEM_write_X509(fp, x), 1);
	fclose(fp);
	snprintf(path, sizeof(path), "%s/%s.key", dir, name);
	assert_non_null(fp = fopen(path, "w"));
	assert_int_equal(PEM_write_PrivateKey(fp, key, NULL, NULL, 0, NULL,
	    NULL), 1);
	fclose(fp);
	X509_free(x);
	EVP_PKEY_free(key);
}

static int
setup(void **state)
{
	const char	*t = getenv("TMPDIR");

	(void)state;
	snprintf(dir, sizeof(dir), "%s/hellod-tls-XXXXXX",
	    t != NULL && *t != '\0' ? t : "/tmp");
	if (mkdtemp(dir) == NULL)
		return -1;
	make_cert("good", -1, 30);
	make_cert("other", -1, 30);
	make_cert("expired", -30, -1);
	return 0;
}

static int
teardown(void **state)
{
	char	 cmd[PATH_MAX + 16];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* The configuration "[tls]\n" + body, loaded; its file name in path. */
static void
load_tls(const char *body, struct hd_config *cf, char path[PATH_MAX])
{
	char	 text[4096], err[HD_ERRLEN];

	snprintf(text, sizeof(text), "[tls]\n%s", body);
	if (load_text(text, cf, err, path) != 0)
		fail_msg("did not load: %s", err);
}

/* Builds a context for body; returns the message ("" on success) with
 * the file name replaced by F. */
static const char *
context_error(const char *body)
{
	static char		 out[HD_ERRLEN];
	struct hd_config	 cf;
	struct tls_server	*ts;
	char			 path[PATH_MAX], err[HD_ERRLEN];
	size_t			 n;

	load_tls(body, &cf, path);
	err[0] = '\0';
	ts = tls_server_new(&cf, err, sizeof(err));
	tls_server_free(ts);
	n = strlen(path);
	if (strncmp(err, path, n) == 0)
		snprintf(out, sizeof(out), "F%s", err + n);
	else
		snprintf(out, sizeof(out), "%s", err);
	assert_true((ts == NULL) == (out[0] != '\0'));
	return out;
}

static void
test_defaults(void **state)
{
	struct tls_conf	 tc;

	(void)state;
	tls_conf_defaults(&tc);
	assert_int_equal(tc.tc_protocols, TLS_PROTO_12 | TLS_PROTO_13);
	assert_int_equal(tc.tc_session_tickets, 1);
	assert_int_equal(tc.tc_ticket_lifetime, 3600000);
	assert_int_equal(tc.tc_verify, TLS_VERIFY_OFF);
	assert_int_equal(tc.tc_ncert, 0);
}

static void
test_values(void **state)
{
	struct hd_config	 cf;
	char			 path[PATH_MAX];

	(void)state;
	load_tls("certificate = /a.pem\ncertificate_key = /a.key\n"
	    "certificate = /b.pem\ncertificate_key = /b.key\n"
	    "protocols = TLSv1.3\nciphers = ECDHE-ECDSA-AES128-GCM-SHA256\n"
	    "ciphersuites = TLS_AES_128_GCM_SHA256\nsession_tickets = off\n"
	    "session_ticket_lifetime = 10m\nclient_ca = /ca.pem\n"
	    "verify_client = optional\n", &cf, path);
	assert_int_equal(cf.cf_tls.tc_ncert, 2);
	assert_int_equal(cf.cf_tls.tc_nkey, 2);
	assert_string_equal(cf.cf_tls.tc_cert[1].tp_path, "/b.pem");
	assert_int_equal(cf.cf_tls.tc_cert[1].tp_line, 4);
	assert_int_equal(cf.cf_tls.tc_key[1].tp_line, 5);
	assert_int_equal(cf.cf_tls.tc_protocols, TLS_PROTO_13);
	assert_int_equal(cf.cf_tls.tc_ciphers_line, 7);
	assert_int_equal(cf.cf_tls.tc_session_tickets, 0);
	assert_int_equal(cf.cf_tls.tc_ticket_lifetime, 600000);
	assert_int_equal(cf.cf_tls.tc_verify, TLS_VERIFY_OPTIONAL);
	assert_int_equal(cf.cf_tls.tc_verify_line, 12);

	/* Empty values, as the packaged file has them: nothing set. */
	load_tls("certificate =\ncertificate_key =\nclient_ca =\n"
	    "ciphers =\nciphersuites =\n", &cf, path);
	assert_int_equal(cf.cf_tls.tc_ncert, 0);
	assert_int_equal(cf.cf_tls.tc_nkey, 0);
	assert_string_equal(cf.cf_tls.tc_client_ca.tp_path, "");
	assert_string_equal(cf.cf_tls.tc_ciphers, "");
}

static void
test_bad_values(void **state)
{
	(void)state;
	load_fails("[tls]\nprotocols = TLSv1.1\n", ":2: [tls] protocols: "
	    "unknown protocol 'TLSv1.1' (TLSv1.2 or TLSv1.3; older versions "
	    "are not offered)");
	load_fails("[tls]\nprotocols =\n", ":2: [tls] protocols: no protocol "
	    "(TLSv1.2, TLSv1.3 or both)");
	load_fails("[tls]\ncertificate = cert.pem\n", ":2: [tls] certificate: "
	    "'cert.pem' is not an absolute path");
	load_fails("[tls]\nverify_client = yes\n", ":2: [tls] verify_client: "
	    "invalid value 'yes' (off, optional or on)");
	load_fails("[tls]\nsession_tickets = 1\n", ":2: [tls] "
	    "session_tickets: invalid value '1' (on or off)");
	load_fails("[tls]\nsession_ticket_lifetime = 30s\n", ":2: [tls] "
	    "session_ticket_lifetime: invalid duration '30s' (1m-168h)");
	load_fails("[tls]\nciphers = A\nciphers = B\n", ":3: [tls] ciphers: "
	    "duplicate key");
	load_fails("[tls]\ncertificat = /x\n", ":2: [tls] certificat: "
	    "unknown key");
	load_fails("[tls]\nclient_ca = ca.pem\n", ":2: [tls] client_ca: "
	    "'ca.pem' is not an absolute path");
	load_fails("[tls]\ncertificate = /1\ncertificate = /2\ncertificate = "
	    "/3\ncertificate = /4\ncertificate = /5\n", ":6: [tls] "
	    "certificate: more than 4 certificates");
}

static void
test_check(void **state)
{
	struct hd_config	 cf;
	char			 path[PATH_MAX], err[HD_ERRLEN];

	(void)state;
	load_tls("", &cf, path);
	assert_int_equal(tls_conf_check(&cf.cf_tls, 0, "F", err,
	    sizeof(err)), 0);
	assert_int_equal(tls_conf_check(&cf.cf_tls, 1, "F", err,
	    sizeof(err)), -1);
	assert_string_equal(err, "F: [tls] certificate: missing, and a TLS "
	    "listener needs one");
	load_tls("certificate = /a\ncertificate_key = /a\ncertificate = /b\n",
	    &cf, path);
	assert_int_equal(tls_conf_check(&cf.cf_tls, 1, "F", err,
	    sizeof(err)), -1);
	assert_string_equal(err, "F:4: [tls] certificate: 2 certificates and "
	    "1 key: give them in pairs");
	load_tls("verify_client = on\n", &cf, path);
	assert_int_equal(tls_conf_check(&cf.cf_tls, 0, "F", err,
	    sizeof(err)), -1);
	assert_string_equal(err, "F:2: [tls] verify_client: needs client_ca, "
	    "the CA that signs client certificates");
}

static void
test_context(void **state)
{
	char	 body[4 * PATH_MAX], want[3 * PATH_MAX];

	(void)state;
	snprintf(body, sizeof(body), "certificate = %s/good.crt\n"
	    "certificate_key = %s/good.key\n", dir, dir);
	assert_string_equal(context_error(body), "");

	snprintf(body, sizeof(body), "certificate = %s/none.crt\n"
	    "certificate_key = %s/good.key\n", dir, dir);
	snprintf(want, sizeof(want), "F:2: [tls] certificate: cannot read "
	    "%s/none.crt: No such file or directory", dir);
	assert_string_equal(context_error(body), want);

	snprintf(body, sizeof(body), "certificate = %s/good.crt\n"
	    "certificate_key = %s/other.key\n", dir, dir);
	snprintf(want, sizeof(want), "F:3: [tls] certificate_key: "
	    "%s/other.key does not match the certificate %s/good.crt", dir,
	    dir);
	assert_string_equal(context_error(body), want);

	/* Expired: a warning in the log, not an error. */
	snprintf(body, sizeof(body), "certificate = %s/expired.crt\n"
	    "certificate_key = %s/expired.key\n", dir, dir);
	assert_string_equal(context_error(body), "");

	snprintf(body, sizeof(body), "certificate = %s/good.crt\n"
	    "certificate_key = %s/good.key\nciphers = NOTHING-REAL\n", dir,
	    dir);
	assert_string_equal(context_error(body), "F:4: [tls] ciphers: no "
	    "usable cipher in 'NOTHING-REAL'");
	snprintf(body, sizeof(body), "certificate = %s/good.crt\n"
	    "certificate_key = %s/good.key\nciphersuites = TLS_NOPE\n", dir,
	    dir);
	assert_string_equal(context_error(body), "F:4: [tls] ciphersuites: "
	    "no usable suite in 'TLS_NOPE'");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_bad_values),
		cmocka_unit_test(test_check),
		cmocka_unit_test(test_context),
	};

	log_open("stderr", LOG_LEVEL_ERROR);
	return cmocka_run_group_tests(tests, setup, teardown);
}
