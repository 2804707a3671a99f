/*
 * Unit tests for the configuration (src/config.c, src/listen.c):
 * config_defaults, config_load, config_apply_overrides, config_read,
 * config_parse_duration, config_parse_size and listen_parse_addr.
 *
 * Config files are written to temporary files made with mkstemp().
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "hellod.h"
#include "conf_text.h"
#include "answer.h"

#define ADDR_ERR(a)	"invalid address '" a "' (expected IPv4:PORT or " \
			"[IPv6]:PORT, port 1-65535)"

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

/* Bytes that may hold NULs must not load; err must end with suffix. */
static void
load_bytes_fails(const char *bytes, size_t len, const char *suffix)
{
	struct hd_config	 cf;
	char			 err[HD_ERRLEN], path[PATH_MAX];
	char			 want[HD_ERRLEN + PATH_MAX];

	write_temp_bytes(bytes, len, path);
	config_defaults(&cf);
	err[0] = '\0';
	assert_int_equal(config_load(&cf, path, err, sizeof(err)), -1);
	unlink(path);
	snprintf(want, sizeof(want), "%s%s", path, suffix);
	assert_string_equal(err, want);
}

/* Defaults, the file, then no command-line overrides. */
static void
load_ok_apply(const char *text, struct hd_config *cf)
{
	struct hd_overrides	 ov;
	char			 err[HD_ERRLEN];

	load_ok(text, cf);
	memset(&ov, 0, sizeof(ov));
	assert_int_equal(config_apply_overrides(cf, &ov, err, sizeof(err)), 0);
}

static uint16_t
addr_port(const struct hd_addr *a)
{
	if (a->a_ss.ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)&a->a_ss)->sin_port);
	return ntohs(((const struct sockaddr_in6 *)&a->a_ss)->sin6_port);
}

static void
assert_ipv4(const struct hd_addr *a, const char *ip, uint16_t port,
    const char *text)
{
	const struct sockaddr_in *sin = (const struct sockaddr_in *)&a->a_ss;
	struct in_addr		 want;

	assert_int_equal(a->a_ss.ss_family, AF_INET);
	assert_int_equal(a->a_len, sizeof(struct sockaddr_in));
	assert_int_equal(inet_pton(AF_INET, ip, &want), 1);
	assert_memory_equal(&sin->sin_addr, &want, sizeof(want));
	assert_int_equal(addr_port(a), port);
	assert_string_equal(a->a_text, text);
}

static void
assert_ipv6(const struct hd_addr *a, const char *ip, uint16_t port,
    const char *text)
{
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&a->a_ss;
	struct in6_addr		 want;

	assert_int_equal(a->a_ss.ss_family, AF_INET6);
	assert_int_equal(a->a_len, sizeof(struct sockaddr_in6));
	assert_int_equal(inet_pton(AF_INET6, ip, &want), 1);
	assert_memory_equal(&sin6->sin6_addr, &want, sizeof(want));
	assert_int_equal(addr_port(a), port);
	assert_string_equal(a->a_text, text);
}

/* ------------------------------------------------------------------ */
/* Defaults and valid files                                            */
/* ------------------------------------------------------------------ */

static void
assert_defaults(const struct hd_config *cf)
{
	assert_int_equal(cf->cf_nlisten, 1);
	assert_ipv4(&cf->cf_listen[0].ln_addr, "0.0.0.0", 8080, "0.0.0.0:8080");
	assert_int_equal(cf->cf_mode, HD_MODE_ASYNC);
	assert_int_equal(cf->cf_workers, 0);
	assert_int_equal(cf->cf_backlog, 4096);
	assert_string_equal(cf->cf_pid_file, "");
	assert_string_equal(cf->cf_user, "");
	assert_string_equal(cf->cf_group, "");
	assert_int_equal(cf->cf_shutdown_timeout, 10000);
	assert_int_equal(cf->cf_keepalive_timeout, 5000);
	assert_int_equal(cf->cf_keepalive_set, 0);
	assert_int_equal(cf->cf_header_timeout, 10000);
	assert_int_equal(cf->cf_max_header_size, 8192);
	assert_int_equal(cf->cf_max_connections, 10000);
	assert_int_equal(cf->cf_delay, 0);
	assert_int_equal(cf->cf_body_padding, 0);
	assert_string_equal(cf->cf_error_log, "stderr");
	assert_int_equal(cf->cf_log_level, LOG_LEVEL_INFO);
	assert_string_equal(cf->cf_access_log, "");
	assert_int_equal(cf->cf_access_format, HD_ACCESS_COMBINED);
}

static void
test_defaults(void **state)
{
	struct hd_config	 cf;

	(void)state;
	memset(&cf, 0x5a, sizeof(cf));
	config_defaults(&cf);
	assert_defaults(&cf);
	assert_string_equal(cf.cf_file, "");
}

/* An empty file, or one of comments only, changes nothing. */
static void
test_empty_file(void **state)
{
	struct hd_config	 cf;

	(void)state;
	load_ok("", &cf);
	assert_defaults(&cf);
	load_ok("; comment\n# another\n\n   \n[server]\n[http]\n[log]\n", &cf);
	assert_defaults(&cf);
}

static void
test_every_key(void **state)
{
	struct hd_config	 cf;

	(void)state;
	load_ok(
	    "[server]\n"
	    "listen = 127.0.0.1:8081 [::1]:8082, 10.1.2.3:9\n"
	    "mode = sync\n"
	    "workers = 7\n"
	    "backlog = 128\n"
	    "pid_file = /run/test.pid\n"
	    "user = nobody\n"
	    "group = nogroup\n"
	    "shutdown_timeout = 250ms\n"
	    "\n"
	    "[http]\n"
	    "keepalive_timeout = 2m\n"
	    "header_timeout = 3\n"
	    "max_header_size = 16k\n"
	    "max_connections = 42\n"
	    "delay = 1500ms\n"
	    "body_padding = 1m\n"
	    "\n"
	    "[log]\n"
	    "error_log = /var/log/hellod.log\n"
	    "level = debug\n"
	    "access_log = /var/log/access.log\n"
	    "access_format = json\n", &cf);

	assert_int_equal(cf.cf_nlisten, 3);
	assert_ipv4(&cf.cf_listen[0].ln_addr, "127.0.0.1", 8081, "127.0.0.1:8081");
	assert_ipv6(&cf.cf_listen[1].ln_addr, "::1", 8082, "[::1]:8082");
	assert_ipv4(&cf.cf_listen[2].ln_addr, "10.1.2.3", 9, "10.1.2.3:9");
	assert_int_equal(cf.cf_mode, HD_MODE_SYNC);
	assert_int_equal(cf.cf_workers, 7);
	assert_int_equal(cf.cf_backlog, 128);
	assert_string_equal(cf.cf_pid_file, "/run/test.pid");
	assert_string_equal(cf.cf_user, "nobody");
	assert_string_equal(cf.cf_group, "nogroup");
	assert_int_equal(cf.cf_user_line, 7);	/* for later messages */
	assert_int_equal(cf.cf_group_line, 8);
	assert_int_equal(cf.cf_shutdown_timeout, 250);
	assert_int_equal(cf.cf_keepalive_timeout, 120000);
	assert_int_equal(cf.cf_keepalive_set, 1);
	assert_int_equal(cf.cf_header_timeout, 3000);
	assert_int_equal(cf.cf_max_header_size, 16384);
	assert_int_equal(cf.cf_max_connections, 42);
	assert_int_equal(cf.cf_delay, 1500);
	assert_int_equal(cf.cf_body_padding, 1048576);
	assert_string_equal(cf.cf_error_log, "/var/log/hellod.log");
	assert_int_equal(cf.cf_log_level, LOG_LEVEL_DEBUG);
	assert_string_equal(cf.cf_access_log, "/var/log/access.log");
	assert_int_equal(cf.cf_access_format, HD_ACCESS_JSON);
}

/* The other spellings of each enumerated value, limits, comments. */
static void
test_other_values(void **state)
{
	struct hd_config	 cf;

	(void)state;
	load_ok(
	    "; hellod test\n"
	    "[server]\n"
	    "mode = async ; inline comment\n"
	    "workers = auto\n"
	    "backlog = 65535\n"
	    "pid_file =\n"
	    "user = root\n"
	    "shutdown_timeout = 0\n"
	    "[http]\n"
	    "keepalive_timeout = 0\n"
	    "header_timeout = 1ms\n"
	    "max_header_size = 1m\n"
	    "max_connections = 1000000\n"
	    "delay = 60s\n"
	    "body_padding = 64m\n"
	    "[log]\n"
	    "error_log = syslog\n"
	    "level = warn\n"
	    "access_log = off\n"
	    "access_format = combined\n", &cf);
	assert_int_equal(cf.cf_mode, HD_MODE_ASYNC);
	assert_int_equal(cf.cf_workers, 0);
	assert_int_equal(cf.cf_backlog, 65535);
	assert_string_equal(cf.cf_pid_file, "");
	assert_string_equal(cf.cf_user, "root");
	assert_int_equal(cf.cf_shutdown_timeout, 0);
	assert_int_equal(cf.cf_keepalive_timeout, 0);
	assert_int_equal(cf.cf_keepalive_set, 1);
	assert_int_equal(cf.cf_header_timeout, 1);
	assert_int_equal(cf.cf_max_header_size, 1048576);
	assert_int_equal(cf.cf_max_connections, 1000000);
	assert_int_equal(cf.cf_delay, 60000);
	assert_int_equal(cf.cf_body_padding, 64u * 1024 * 1024);
	assert_string_equal(cf.cf_error_log, "syslog");
	assert_int_equal(cf.cf_log_level, LOG_LEVEL_WARN);
	assert_string_equal(cf.cf_access_log, "");
	assert_int_equal(cf.cf_access_format, HD_ACCESS_COMBINED);

	load_ok("[server]\nworkers=1\nbacklog=1\nshutdown_timeout = 60m\n"
	    "[http]\nmax_header_size = 256\nmax_connections = 1\n"
	    "keepalive_timeout = 3600s\nheader_timeout = 60m\n"
	    "[log]\nerror_log = stderr\nlevel = error\n", &cf);
	assert_int_equal(cf.cf_workers, 1);
	assert_int_equal(cf.cf_backlog, 1);
	assert_int_equal(cf.cf_shutdown_timeout, 3600000);
	assert_int_equal(cf.cf_max_header_size, 256);
	assert_int_equal(cf.cf_max_connections, 1);
	assert_int_equal(cf.cf_keepalive_timeout, 3600000);
	assert_int_equal(cf.cf_header_timeout, 3600000);
	assert_string_equal(cf.cf_error_log, "stderr");
	assert_int_equal(cf.cf_log_level, LOG_LEVEL_ERROR);

	load_ok("[log]\nlevel = info\n[server]\nworkers = 256\n", &cf);
	assert_int_equal(cf.cf_log_level, LOG_LEVEL_INFO);
	assert_int_equal(cf.cf_workers, 256);
}

static void
test_listen_in_file(void **state)
{
	struct hd_config	 cf;
	char			 text[1024];
	size_t			 len;
	int			 i;

	(void)state;
	load_ok("[server]\nlisten = [2001:db8::7]:443\n", &cf);
	assert_int_equal(cf.cf_nlisten, 1);
	assert_ipv6(&cf.cf_listen[0].ln_addr, "2001:db8::7", 443, "[2001:db8::7]:443");

	load_ok("[server]\nlisten = [::]:80,0.0.0.0:80\t[::ffff:10.0.0.1]:81\n",
	    &cf);
	assert_int_equal(cf.cf_nlisten, 3);
	assert_ipv6(&cf.cf_listen[0].ln_addr, "::", 80, "[::]:80");
	assert_ipv4(&cf.cf_listen[1].ln_addr, "0.0.0.0", 80, "0.0.0.0:80");
	assert_ipv6(&cf.cf_listen[2].ln_addr, "::ffff:10.0.0.1", 81,
	    "[::ffff:10.0.0.1]:81");

	/* 16 addresses, the most allowed */
	len = (size_t)snprintf(text, sizeof(text), "[server]\nlisten =");
	for (i = 1; i <= HD_MAX_LISTEN; i++)
		len += (size_t)snprintf(text + len, sizeof(text) - len,
		    " 1.1.1.1:%d", i);
	snprintf(text + len, sizeof(text) - len, "\n");
	load_ok(text, &cf);
	assert_int_equal(cf.cf_nlisten, HD_MAX_LISTEN);
	for (i = 0; i < HD_MAX_LISTEN; i++)
		assert_int_equal(addr_port(&cf.cf_listen[i].ln_addr), i + 1);
}

/* listen may be given on several lines: they add up. */
static void
test_listen_several_lines(void **state)
{
	struct hd_config	 cf;
	char			 text[2048];
	size_t			 len;
	int			 i;

	(void)state;
	load_ok("[server]\nlisten = 127.0.0.1:1\nworkers = 2\n"
	    "listen = [::1]:2, 127.0.0.1:3\n", &cf);
	assert_int_equal(cf.cf_nlisten, 3);
	assert_ipv4(&cf.cf_listen[0].ln_addr, "127.0.0.1", 1, "127.0.0.1:1");
	assert_ipv6(&cf.cf_listen[1].ln_addr, "::1", 2, "[::1]:2");
	assert_ipv4(&cf.cf_listen[2].ln_addr, "127.0.0.1", 3, "127.0.0.1:3");

	/* 16 IPv6 addresses, four per line */
	len = (size_t)snprintf(text, sizeof(text), "[server]\n");
	for (i = 1; i <= HD_MAX_LISTEN; i++)
		len += (size_t)snprintf(text + len, sizeof(text) - len,
		    "%s[2001:db8::%d]:8080%s", i % 4 == 1 ? "listen = " : "",
		    i, i % 4 == 0 ? "\n" : " ");
	load_ok(text, &cf);
	assert_int_equal(cf.cf_nlisten, HD_MAX_LISTEN);
	for (i = 0; i < HD_MAX_LISTEN; i++)
		assert_int_equal(addr_port(&cf.cf_listen[i].ln_addr), 8080);
	assert_ipv6(&cf.cf_listen[15].ln_addr, "2001:db8::16", 8080,
	    "[2001:db8::16]:8080");

	/* a 17th on a further line */
	strcat(text, "listen = 127.0.0.1:17\n");
	load_fails(text, ":6: [server] listen: more than 16 addresses");
	/* a duplicate on a further line */
	load_fails("[server]\nlisten = 127.0.0.1:1\n\nlisten = 127.0.0.1:1\n",
	    ":4: [server] listen: duplicate address '127.0.0.1:1'");
	load_fails("[server]\nlisten = 127.0.0.1:1\nlisten =\n",
	    ":3: [server] listen: no address given");
}

/* ------------------------------------------------------------------ */
/* The listen list: every kind in one list of {address, options}       */
/* ------------------------------------------------------------------ */

static void
assert_listen(const struct hd_config *cf, unsigned i, uint16_t port,
    unsigned opts, int line)
{
	char	 text[32];

	assert_true(i < cf->cf_nlisten);
	snprintf(text, sizeof(text), "127.0.0.1:%u", port);
	assert_ipv4(&cf->cf_listen[i].ln_addr, "127.0.0.1", port, text);
	assert_int_equal(cf->cf_listen[i].ln_opts, opts);
	assert_int_equal(cf->cf_listen[i].ln_line, line);
}

static const char file_with_kinds[] =
    "[server]\n"
    "proxy_listen = 127.0.0.1:21\n"			/* line 2 */
    "listen = 127.0.0.1:11 127.0.0.1:12\n"		/* line 3 */
    "[status]\n"
    "listen = 127.0.0.1:31\n"				/* line 5 */
    "[server]\n"
    "proxy_listen = 127.0.0.1:22\n"			/* line 7 */
    "listen = 127.0.0.1:13\n";				/* line 8 */

/* The file's order is kept over kinds, each address with its line. */
static void
test_listen_list_order(void **state)
{
	struct hd_config	 cf;

	(void)state;
	load_ok_apply(file_with_kinds, &cf);
	assert_int_equal(cf.cf_nlisten, 6);
	assert_listen(&cf, 0, 21, HD_LO_PROXY, 2);
	assert_listen(&cf, 1, 11, HD_LO_PLAIN, 3);
	assert_listen(&cf, 2, 12, HD_LO_PLAIN, 3);
	assert_listen(&cf, 3, 31, HD_LO_STATUS, 5);
	assert_listen(&cf, 4, 22, HD_LO_PROXY, 7);
	assert_listen(&cf, 5, 13, HD_LO_PLAIN, 8);
	assert_int_equal(config_listen_count(&cf, HD_LO_PLAIN), 3);
	assert_int_equal(config_listen_count(&cf, HD_LO_PROXY), 2);
	assert_int_equal(config_listen_count(&cf, HD_LO_STATUS), 1);

	/* Without [server] listen the built-in address stays, first. */
	load_ok_apply("[status]\nlisten = 127.0.0.1:31\n[server]\n"
	    "proxy_listen = 127.0.0.1:21\n", &cf);
	assert_int_equal(cf.cf_nlisten, 3);
	assert_ipv4(&cf.cf_listen[0].ln_addr, "0.0.0.0", 8080,
	    "0.0.0.0:8080");
	assert_int_equal(cf.cf_listen[0].ln_opts, HD_LO_PLAIN);
	assert_int_equal(cf.cf_listen[0].ln_line, 0);
	assert_listen(&cf, 1, 31, HD_LO_STATUS, 2);
	assert_listen(&cf, 2, 21, HD_LO_PROXY, 4);

	/* Empty PROXY and status values add nothing. */
	load_ok_apply("[server]\nproxy_listen =\n[status]\nlisten =\n", &cf);
	assert_int_equal(cf.cf_nlisten, 1);
	assert_int_equal(config_listen_count(&cf, HD_LO_PLAIN), 1);
}

/* 16 of each kind: 80 in all. */
static void
test_listen_list_limits(void **state)
{
	static const char *const keys[] = { "[server]\nlisten",
	    "[server]\nproxy_listen", "[status]\nlisten",
	    "[server]\ntls_listen", "[server]\ntls_proxy_listen" };
	struct hd_config	 cf;
	char			 text[8192];
	size_t			 len = 0;
	unsigned		 k, i;

	(void)state;
	for (k = 0; k < 5; k++)
		for (i = 0; i < HD_MAX_LISTEN; i++)
			len += (size_t)snprintf(text + len, sizeof(text) - len,
			    "%s = 127.0.0.1:%u\n", keys[k], 100 * (k + 1) + i);
	load_ok_apply(text, &cf);
	assert_int_equal(cf.cf_nlisten, HD_MAX_LISTENERS);
	assert_int_equal(config_listen_count(&cf, HD_LO_PLAIN), HD_MAX_LISTEN);
	assert_int_equal(config_listen_count(&cf, HD_LO_PROXY), HD_MAX_LISTEN);
	assert_int_equal(config_listen_count(&cf, HD_LO_STATUS),
	    HD_MAX_LISTEN);
	assert_listen(&cf, 0, 100, HD_LO_PLAIN, 2);
	assert_int_equal(config_listen_count(&cf, HD_LO_TLS), HD_MAX_LISTEN);
	assert_int_equal(config_listen_count(&cf, HD_LO_PROXY | HD_LO_TLS),
	    HD_MAX_LISTEN);
	assert_listen(&cf, 47, 315, HD_LO_STATUS, 96);
	assert_listen(&cf, 79, 515, HD_LO_PROXY | HD_LO_TLS, 160);
	/* a 17th PROXY address */
	snprintf(text + len, sizeof(text) - len,
	    "[server]\nproxy_listen = 127.0.0.1:216\n");
	load_fails(text, ":162: [server] proxy_listen: more than 16 addresses");
}

/* An address stands once in the list, whatever its kind; the message
 * names where it stands already. */
static void
test_listen_list_duplicates(void **state)
{
	struct hd_config	 cf;

	(void)state;
	load_fails("[server]\nlisten = 127.0.0.1:1\n"
	    "proxy_listen = 127.0.0.1:1\n",
	    ":3: [server] proxy_listen: duplicate address '127.0.0.1:1' "
	    "(also [server] listen, line 2)");
	load_fails("[server]\nproxy_listen = 127.0.0.1:2\n[status]\n"
	    "listen = [::1]:3 127.0.0.1:2\n",
	    ":4: [status] listen: duplicate address '127.0.0.1:2' "
	    "(also [server] proxy_listen, line 2)");
	load_fails("[status]\nlisten = 127.0.0.1:4\n[server]\n"
	    "listen = 127.0.0.1:4\n",
	    ":4: [server] listen: duplicate address '127.0.0.1:4' "
	    "(also [status] listen, line 2)");
	/* the built-in address, before the file's listen replaces it */
	load_fails("[server]\nproxy_listen = 0.0.0.0:8080\n",
	    ":2: [server] proxy_listen: duplicate address '0.0.0.0:8080' "
	    "(also [server] listen)");
	/* once replaced, it is free */
	load_ok_apply("[server]\nlisten = 127.0.0.1:1\n"
	    "proxy_listen = 0.0.0.0:8080\n", &cf);
	assert_int_equal(cf.cf_nlisten, 2);
}

static int
apply_kinds(struct hd_config *cf, const struct hd_listen_arg *args,
    unsigned n, char err[HD_ERRLEN])
{
	struct hd_overrides	 ov;
	unsigned		 i;

	memset(&ov, 0, sizeof(ov));
	for (i = 0; i < n; i++)
		assert_int_equal(config_add_listen_arg(&ov, args[i].la_text,
		    args[i].la_opts, err, HD_ERRLEN), 0);
	err[0] = '\0';
	return config_apply_overrides(cf, &ov, err, HD_ERRLEN);
}

/* -l and --proxy-listen replace the file's addresses of their kind only,
 * and come after the others, in their order. */
static void
test_listen_list_command_line(void **state)
{
	static const struct hd_listen_arg plain[] = {
		{ "127.0.0.1:41", HD_LO_PLAIN },
		{ "127.0.0.1:42,127.0.0.1:43", HD_LO_PLAIN } };
	static const struct hd_listen_arg proxy[] = {
		{ "127.0.0.1:51", HD_LO_PROXY } };
	static const struct hd_listen_arg both[] = {
		{ "127.0.0.1:51", HD_LO_PROXY },
		{ "127.0.0.1:41", HD_LO_PLAIN } };
	static const struct hd_listen_arg taken[] = {
		{ "127.0.0.1:31", HD_LO_PLAIN } };
	static const struct hd_listen_arg own[] = {
		{ "127.0.0.1:11", HD_LO_PROXY } };
	struct hd_overrides	 ov;
	struct hd_config	 cf;
	char			 err[HD_ERRLEN];
	unsigned		 i;

	(void)state;
	load_ok(file_with_kinds, &cf);
	assert_int_equal(apply_kinds(&cf, plain, 2, err), 0);
	assert_int_equal(cf.cf_nlisten, 6);
	assert_listen(&cf, 0, 21, HD_LO_PROXY, 2);
	assert_listen(&cf, 1, 31, HD_LO_STATUS, 5);
	assert_listen(&cf, 2, 22, HD_LO_PROXY, 7);
	assert_listen(&cf, 3, 41, HD_LO_PLAIN, 0);
	assert_listen(&cf, 4, 42, HD_LO_PLAIN, 0);
	assert_listen(&cf, 5, 43, HD_LO_PLAIN, 0);

	load_ok(file_with_kinds, &cf);
	assert_int_equal(apply_kinds(&cf, proxy, 1, err), 0);
	assert_int_equal(cf.cf_nlisten, 5);
	assert_listen(&cf, 0, 11, HD_LO_PLAIN, 3);
	assert_listen(&cf, 1, 12, HD_LO_PLAIN, 3);
	assert_listen(&cf, 2, 31, HD_LO_STATUS, 5);
	assert_listen(&cf, 3, 13, HD_LO_PLAIN, 8);
	assert_listen(&cf, 4, 51, HD_LO_PROXY, 0);

	load_ok(file_with_kinds, &cf);
	assert_int_equal(apply_kinds(&cf, both, 2, err), 0);
	assert_int_equal(cf.cf_nlisten, 3);
	assert_listen(&cf, 0, 31, HD_LO_STATUS, 5);
	assert_listen(&cf, 1, 51, HD_LO_PROXY, 0);
	assert_listen(&cf, 2, 41, HD_LO_PLAIN, 0);

	/* the file's status address is not replaced: still a duplicate */
	load_ok(file_with_kinds, &cf);
	assert_int_equal(apply_kinds(&cf, taken, 1, err), -1);
	assert_string_equal(err, "--listen: duplicate address '127.0.0.1:31' "
	    "(also [status] listen, line 5)");
	/* nor is the file's plain address by --proxy-listen */
	load_ok(file_with_kinds, &cf);
	assert_int_equal(apply_kinds(&cf, own, 1, err), -1);
	assert_string_equal(err, "--proxy-listen: duplicate address "
	    "'127.0.0.1:11' (also [server] listen, line 3)");

	/* at most 16 options of a kind */
	memset(&ov, 0, sizeof(ov));
	for (i = 0; i < HD_MAX_LISTEN; i++) {
		assert_int_equal(config_add_listen_arg(&ov, "127.0.0.1:1",
		    HD_LO_PLAIN, err, sizeof(err)), 0);
		assert_int_equal(config_add_listen_arg(&ov, "127.0.0.1:2",
		    HD_LO_PROXY, err, sizeof(err)), 0);
	}
	assert_int_equal(config_add_listen_arg(&ov, "127.0.0.1:1",
	    HD_LO_PLAIN, err, sizeof(err)), -1);
	assert_string_equal(err, "--listen: more than 16 addresses");
	assert_int_equal(config_add_listen_arg(&ov, "127.0.0.1:2",
	    HD_LO_PROXY, err, sizeof(err)), -1);
	assert_string_equal(err, "--proxy-listen: more than 16 addresses");
	/* status addresses have no option */
	assert_int_equal(config_add_listen_arg(&ov, "127.0.0.1:3",
	    HD_LO_STATUS, err, sizeof(err)), -1);
	assert_int_equal(ov.ov_nlisten, 2 * HD_MAX_LISTEN);
}

/*
 * inih reads lines into a 200-byte buffer: a longer line is refused
 * (never cut silently into a shorter value and a bogus next line).
 */
static void
test_long_line(void **state)
{
	struct hd_config	 cf;
	char			 text[2048], line[512];
	size_t			 len;
	int			 i;

	(void)state;
	/* 16 IPv6 addresses on one line: about 300 bytes */
	len = (size_t)snprintf(line, sizeof(line), "listen =");
	for (i = 1; i <= HD_MAX_LISTEN; i++)
		len += (size_t)snprintf(line + len, sizeof(line) - len,
		    " [2001:db8::%d]:8080", i);
	assert_true(len > 200);
	snprintf(text, sizeof(text), "[server]\n%s\n[http]\ndelay = 0\n", line);
	load_fails(text, ":2: line too long (at most 197 bytes; give long "
	    "address or network lists on several lines)");
	/* An error before it is reported first; after it, not at all. */
	snprintf(text, sizeof(text), "[server]\nworkers = 0\n%s\n", line);
	load_fails(text, ":2: [server] workers: invalid worker count '0' "
	    "(auto or 1-256)");
	snprintf(text, sizeof(text), "[server]\nbad\n%s\n", line);
	load_fails(text, ":2: syntax error (expected [section] or key = value)");
	snprintf(text, sizeof(text), "[server]\n%s\nworkers = 0\n", line);
	load_fails(text, ":2: line too long (at most 197 bytes; give long "
	    "address or network lists on several lines)");

	/* A NUL byte is an error, not a way around the line limit. */
	memcpy(text, "[server]\nuser = a\0b\nworkers = 7\n", 32);
	load_bytes_fails(text, 32, ":2: NUL byte in line");

	/* A line of 197 bytes is fine, with LF or CRLF. */
	memset(line, 0, sizeof(line));
	strcpy(line, "pid_file = /");
	memset(line + strlen(line), 'p', 197 - strlen(line));
	assert_int_equal(strlen(line), 197);
	snprintf(text, sizeof(text), "[server]\n%s\nworkers = 3\n", line);
	load_ok(text, &cf);
	assert_string_equal(cf.cf_pid_file, line + strlen("pid_file = "));
	assert_int_equal(cf.cf_workers, 3);
	snprintf(text, sizeof(text), "[server]\r\n%s\r\nworkers = 3\r\n",
	    line);
	load_ok(text, &cf);
	assert_string_equal(cf.cf_pid_file, line + strlen("pid_file = "));
	/* as the last line without a newline too */
	snprintf(text, sizeof(text), "[server]\n%s", line);
	load_ok(text, &cf);
	assert_string_equal(cf.cf_pid_file, line + strlen("pid_file = "));
}

/* Comments after values (';' or '#'); an indented line is a key of its
 * own, not a continuation of the previous value. */
static void
test_comments_and_indent(void **state)
{
	struct hd_config	 cf;

	(void)state;
	load_ok("[server]\nworkers = 4 # four\nbacklog = 10 ; ten\n"
	    "  mode = sync\n\t[http]\n\tdelay = 5ms\n", &cf);
	assert_int_equal(cf.cf_workers, 4);
	assert_int_equal(cf.cf_backlog, 10);
	assert_int_equal(cf.cf_mode, HD_MODE_SYNC);
	assert_int_equal(cf.cf_delay, 5);
	load_fails("[server]\nlisten = 127.0.0.1:1\n  127.0.0.1:2\n",
	    ":3: [server] 127.0.0.1: unknown key");
}

/* ------------------------------------------------------------------ */
/* Invalid values: one per key, with the exact message and line        */
/* ------------------------------------------------------------------ */

struct bad_value {
	const char	*section;
	const char	*key;
	const char	*value;
	const char	*reason;
};

static const struct bad_value bad_values[] = {
	{ "server", "listen", "x", ADDR_ERR("x") },
	{ "server", "listen", "127.0.0.1:0", ADDR_ERR("127.0.0.1:0") },
	{ "server", "listen", "[::1]:0", ADDR_ERR("[::1]:0") },
	{ "server", "listen", "127.0.0.1", ADDR_ERR("127.0.0.1") },
	{ "server", "listen", "127.0.0.1:65536", ADDR_ERR("127.0.0.1:65536") },
	{ "server", "listen", "::1:80", ADDR_ERR("::1:80") },
	{ "server", "listen", "localhost:80", ADDR_ERR("localhost:80") },
	{ "server", "listen", "127.0.0.1:80 bogus", ADDR_ERR("bogus") },
	{ "server", "listen", "127.0.0.1:80 127.0.0.1:80",
	  "duplicate address '127.0.0.1:80'" },
	{ "server", "listen", "[::1]:80, 10.0.0.1:1 [0:0::1]:80",
	  "duplicate address '[0:0::1]:80'" },
	{ "server", "listen", "", "no address given" },
	{ "server", "listen", ",", "no address given" },
	{ "server", "listen", "1.1.1.1:1 1.1.1.1:2 1.1.1.1:3 1.1.1.1:4 "
	  "1.1.1.1:5 1.1.1.1:6 1.1.1.1:7 1.1.1.1:8 1.1.1.1:9 1.1.1.1:10 "
	  "1.1.1.1:11 1.1.1.1:12 1.1.1.1:13 1.1.1.1:14 1.1.1.1:15 "
	  "1.1.1.1:16 1.1.1.1:17", "more than 16 addresses" },
	{ "server", "mode", "threaded",
	  "invalid mode 'threaded' (async, sync or uring)" },
	{ "server", "mode", "SYNC",
	  "invalid mode 'SYNC' (async, sync or uring)" },
	{ "server", "mode", "",
	  "invalid mode '' (async, sync or uring)" },
	{ "server", "workers", "0", "invalid worker count '0' (auto or 1-256)" },
	{ "server", "workers", "257", "invalid worker count '257' (auto or 1-256)" },
	{ "server", "workers", "-1", "invalid worker count '-1' (auto or 1-256)" },
	{ "server", "workers", "4x", "invalid worker count '4x' (auto or 1-256)" },
	{ "server", "workers", "AUTO", "invalid worker count 'AUTO' (auto or 1-256)" },
	{ "server", "workers", "", "invalid worker count '' (auto or 1-256)" },
	{ "server", "workers", "99999999999999999999999",
	  "invalid worker count '99999999999999999999999' (auto or 1-256)" },
	{ "server", "backlog", "0", "invalid backlog '0' (1-65535)" },
	{ "server", "backlog", "65536", "invalid backlog '65536' (1-65535)" },
	{ "server", "backlog", "many", "invalid backlog 'many' (1-65535)" },
	{ "server", "backlog", "+5", "invalid backlog '+5' (1-65535)" },
	{ "server", "pid_file", "run/hellod.pid",
	  "'run/hellod.pid' is not an absolute path" },
	{ "server", "user",
	  "uuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuu",
	  "value too long" },
	{ "server", "group",
	  "gggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggg",
	  "value too long" },
	{ "server", "shutdown_timeout", "abc", "invalid duration 'abc'" },
	{ "server", "shutdown_timeout", "2h",
	  "duration '2h' out of range (0-60m)" },
	{ "server", "shutdown_timeout", "1d", "invalid duration '1d'" },
	{ "server", "shutdown_timeout", "-1", "invalid duration '-1'" },
	{ "server", "shutdown_timeout", "61m",
	  "duration '61m' out of range (0-60m)" },
	{ "server", "shutdown_timeout", "3600001ms",
	  "duration '3600001ms' out of range (0-60m)" },
	{ "http", "keepalive_timeout", "abc", "invalid duration 'abc'" },
	{ "http", "keepalive_timeout", "5 s", "invalid duration '5 s'" },
	{ "http", "keepalive_timeout", "3601",
	  "duration '3601' out of range (0-60m)" },
	{ "http", "header_timeout", "0",
	  "duration '0' out of range (1ms-60m)" },
	{ "http", "header_timeout", "0ms",
	  "duration '0ms' out of range (1ms-60m)" },
	{ "http", "header_timeout", "10sec", "invalid duration '10sec'" },
	{ "http", "max_header_size", "255",
	  "size '255' out of range (256-1m)" },
	{ "http", "max_header_size", "1025k",
	  "size '1025k' out of range (256-1m)" },
	{ "http", "max_header_size", "8kb", "invalid size '8kb'" },
	{ "http", "max_header_size", "", "invalid size ''" },
	{ "http", "max_connections", "0",
	  "invalid connection count '0' (1-1000000)" },
	{ "http", "max_connections", "1000001",
	  "invalid connection count '1000001' (1-1000000)" },
	{ "http", "max_connections", "lots",
	  "invalid connection count 'lots' (1-1000000)" },
	{ "http", "delay", "61s", "duration '61s' out of range (0-1m)" },
	{ "http", "delay", "soon", "invalid duration 'soon'" },
	{ "http", "body_padding", "65m",
	  "size '65m' out of range (0-64m)" },
	{ "http", "body_padding", "67108865",
	  "size '67108865' out of range (0-64m)" },
	{ "http", "body_padding", "1g", "invalid size '1g'" },
	{ "log", "error_log", "", "empty value (stderr, syslog or a path)" },
	{ "log", "error_log", "hellod.log",
	  "'hellod.log' is not stderr, syslog or an absolute path" },
	{ "log", "error_log", "STDERR",
	  "'STDERR' is not stderr, syslog or an absolute path" },
	{ "log", "level", "verbose",
	  "invalid level 'verbose' (error, warn, info or debug)" },
	{ "log", "level", "INFO",
	  "invalid level 'INFO' (error, warn, info or debug)" },
	{ "log", "level", "", "invalid level '' (error, warn, info or debug)" },
	{ "log", "access_log", "access.log",
	  "'access.log' is not off or an absolute path" },
	{ "log", "access_log", "", "'' is not off or an absolute path" },
	{ "log", "access_format", "xml",
	  "invalid format 'xml' (combined or json)" },
	{ "log", "access_format", "", "invalid format '' (combined or json)" },
};

/*
 * Puts "key = value" on line 12 of a file (after comments, blank lines,
 * a valid key and the section header), and on the last line of a file
 * without a final newline (line 2).
 */
static void
check_bad_value(const struct bad_value *b)
{
	char	 text[1024], suffix[HD_ERRLEN];

	snprintf(text, sizeof(text),
	    "; hellod configuration\n"		/*  1 */
	    "# test file\n"			/*  2 */
	    "\n"				/*  3 */
	    "[%s]\n"				/*  4 */
	    "\n"				/*  5 */
	    "; a comment\n"			/*  6 */
	    "  ; an indented comment\n"		/*  7 */
	    "\n"				/*  8 */
	    "\n"				/*  9 */
	    "\n"				/* 10 */
	    "[%s]\n"				/* 11 */
	    "%s = %s\n"				/* 12 */
	    "\n"
	    "[log]\n"
	    "level = info\n",
	    strcmp(b->section, "server") == 0 ? "http" : "server",
	    b->section, b->key, b->value);
	snprintf(suffix, sizeof(suffix), ":12: [%s] %s: %s", b->section,
	    b->key, b->reason);
	load_fails(text, suffix);

	snprintf(text, sizeof(text), "[%s]\n%s = %s", b->section, b->key,
	    b->value);
	snprintf(suffix, sizeof(suffix), ":2: [%s] %s: %s", b->section,
	    b->key, b->reason);
	load_fails(text, suffix);
}

static void
test_invalid_values(void **state)
{
	size_t	 i;

	(void)state;
	for (i = 0; i < sizeof(bad_values) / sizeof(bad_values[0]); i++)
		check_bad_value(&bad_values[i]);
}

/* The contract's example, verbatim. */
static void
test_contract_example(void **state)
{
	(void)state;
	load_fails(
	    "[server]\n"
	    "listen = 127.0.0.1:8080\n"
	    "mode = async\n"
	    "workers = 2\n"
	    "backlog = 4096\n"
	    "shutdown_timeout = 10s\n"
	    "\n"
	    "[http]\n"
	    "header_timeout = 10s\n"
	    "max_header_size = 8k\n"
	    "; next line is wrong\n"
	    "keepalive_timeout = abc\n"
	    "delay = 0ms\n",
	    ":12: [http] keepalive_timeout: invalid duration 'abc'");
}

/* ------------------------------------------------------------------ */
/* Structural errors                                                   */
/* ------------------------------------------------------------------ */

static void
test_unknown_key(void **state)
{
	(void)state;
	load_fails("[http]\nfoo = 1\n", ":2: [http] foo: unknown key");
	load_fails("[server]\nworkers = 2\n\nkeepalive_timeout = 5s\n",
	    ":4: [server] keepalive_timeout: unknown key");
	load_fails("[log]\nLevel = info\n", ":2: [log] Level: unknown key");
}

static void
test_unknown_section(void **state)
{
	struct hd_config	 cf;

	(void)state;
	load_fails("[server]\nworkers = 2\n[bogus]\n; comment\nkey = 1\n",
	    ":5: [bogus] key: unknown section");
	load_fails("[HTTP]\ndelay = 0\n", ":2: [HTTP] delay: unknown section");
	/* Reported at the first key: an empty unknown section passes. */
	load_ok("[server]\nworkers = 2\n[bogus]\n[http]\ndelay = 1s\n", &cf);
	assert_int_equal(cf.cf_delay, 1000);
}

static void
test_key_outside_section(void **state)
{
	(void)state;
	load_fails("workers = 4\n[server]\n",
	    ":1: [] workers: key outside of a section");
	load_fails("; comment\n\nfoo = bar\n",
	    ":3: [] foo: key outside of a section");
}

static void
test_duplicate_key(void **state)
{
	(void)state;
	load_fails("[http]\ndelay = 1s\n\ndelay = 2s\n",
	    ":4: [http] delay: duplicate key");
	/* also when the section is opened again */
	load_fails("[http]\ndelay = 1s\n[server]\nworkers = 1\n[http]\n"
	    "delay = 1s\n", ":6: [http] delay: duplicate key");
	load_fails("[log]\naccess_log = off\naccess_log = off\n",
	    ":3: [log] access_log: duplicate key");
}

static void
test_syntax_error(void **state)
{
	(void)state;
	load_fails("[server]\nworkers = 4\nthis line is wrong\n",
	    ":3: syntax error (expected [section] or key = value)");
	load_fails("[server\nworkers = 4\n",
	    ":1: syntax error (expected [section] or key = value)");
	load_fails("\n\n\n\n\n\n\n\n\n\n\n[http]\nkeepalive_timeout\n",
	    ":13: syntax error (expected [section] or key = value)");
	/* The first error in the file is the one reported. */
	load_fails("[server]\nbad line\nworkers = 0\n",
	    ":2: syntax error (expected [section] or key = value)");
	load_fails("[server]\nworkers = 0\nbad line\n",
	    ":2: [server] workers: invalid worker count '0' (auto or 1-256)");
	load_fails("[server]\nworkers = 2\nfoo = 1\nbad line\nbacklog = 0\n",
	    ":3: [server] foo: unknown key");
}

/* CRLF line endings count lines the same way. */
static void
test_crlf_file(void **state)
{
	struct hd_config	 cf;

	(void)state;
	load_ok("[server]\r\nworkers = 3\r\n\r\n[log]\r\nlevel = debug\r\n", &cf);
	assert_int_equal(cf.cf_workers, 3);
	assert_int_equal(cf.cf_log_level, LOG_LEVEL_DEBUG);
	load_fails("[server]\r\n\r\nworkers = x\r\n",
	    ":3: [server] workers: invalid worker count 'x' (auto or 1-256)");
}

static void
test_unopenable_file(void **state)
{
	struct hd_config	 cf;
	char			 err[HD_ERRLEN], dir[PATH_MAX];
	char			 path[PATH_MAX + 16], want[PATH_MAX + 64];
	const char		*tmp = getenv("TMPDIR");

	(void)state;
	config_defaults(&cf);
	assert_int_equal(config_load(&cf, "/nonexistent-dir/hellod.conf", err,
	    sizeof(err)), -1);
	assert_string_equal(err, "/nonexistent-dir/hellod.conf: cannot open: "
	    "No such file or directory");

	/* A file that exists but may not be read (not when root). */
	if (geteuid() != 0) {
		write_temp("[server]\nworkers = 2\n", dir);
		assert_int_equal(chmod(dir, 0), 0);
		assert_int_equal(config_load(&cf, dir, err, sizeof(err)), -1);
		snprintf(want, sizeof(want), "%s: cannot open: %s", dir,
		    strerror(EACCES));
		assert_string_equal(err, want);
		unlink(dir);
	}

	/* A directory cannot be read as a file. */
	snprintf(dir, sizeof(dir), "%s/hellod-unit-dir-XXXXXX",
	    tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
	assert_non_null(mkdtemp(dir));
	assert_int_equal(config_load(&cf, dir, err, sizeof(err)), -1);
	assert_true(strncmp(err, dir, strlen(dir)) == 0);
	assert_non_null(strstr(err, strerror(EISDIR)));
	snprintf(path, sizeof(path), "%s/missing.conf", dir);
	assert_int_equal(config_load(&cf, path, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s: cannot open: %s", path,
	    strerror(ENOENT));
	assert_string_equal(err, want);
	rmdir(dir);
}

/* The packaged conf/hellod.conf must load (found through $SRCDIR or
 * $srcdir, as set by "make check"; skipped otherwise). */
static void
test_packaged_conf(void **state)
{
	struct hd_config	 cf;
	const char		*dir = getenv("SRCDIR");
	char			 path[PATH_MAX], err[HD_ERRLEN];

	(void)state;
	if (dir == NULL || *dir == '\0')
		dir = getenv("srcdir");
	if (dir == NULL || *dir == '\0')
		skip();
	snprintf(path, sizeof(path), "%s/conf/hellod.conf", dir);
	if (access(path, R_OK) != 0)
		skip();
	config_defaults(&cf);
	if (config_load(&cf, path, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_string_equal(cf.cf_file, path);
	assert_true(cf.cf_nlisten >= 1);
}

/* ------------------------------------------------------------------ */
/* Command-line overrides and the whole chain                          */
/* ------------------------------------------------------------------ */

static int
apply(struct hd_config *cf, const char *workers, int sync,
    const char *const *listen, unsigned nlisten, char err[HD_ERRLEN])
{
	struct hd_overrides	 ov;
	unsigned		 i;

	memset(&ov, 0, sizeof(ov));
	ov.ov_workers = workers;
	ov.ov_sync = sync;
	for (i = 0; i < nlisten; i++) {
		ov.ov_listen[i].la_text = listen[i];
		ov.ov_listen[i].la_opts = HD_LO_PLAIN;
	}
	ov.ov_nlisten = nlisten;
	err[0] = '\0';
	return config_apply_overrides(cf, &ov, err, HD_ERRLEN);
}

static const char file_with_server[] =
    "[server]\n"
    "listen = 127.0.0.1:1001 127.0.0.1:1002\n"
    "workers = 2\n";

static void
test_override_workers(void **state)
{
	struct hd_config	 cf;
	char			 err[HD_ERRLEN];

	(void)state;
	load_ok(file_with_server, &cf);
	assert_int_equal(apply(&cf, "8", 0, NULL, 0, err), 0);
	assert_int_equal(cf.cf_workers, 8);
	assert_int_equal(cf.cf_nlisten, 2);	/* untouched */

	load_ok(file_with_server, &cf);
	assert_int_equal(apply(&cf, "auto", 0, NULL, 0, err), 0);
	assert_int_equal(cf.cf_workers, 0);

	load_ok(file_with_server, &cf);
	assert_int_equal(apply(&cf, NULL, 0, NULL, 0, err), 0);
	assert_int_equal(cf.cf_workers, 2);	/* the file's */

	assert_int_equal(apply(&cf, "x", 0, NULL, 0, err), -1);
	assert_string_equal(err,
	    "--workers: invalid worker count 'x' (auto or 1-256)");
	assert_int_equal(apply(&cf, "0", 0, NULL, 0, err), -1);
	assert_string_equal(err,
	    "--workers: invalid worker count '0' (auto or 1-256)");
	assert_int_equal(apply(&cf, "257", 0, NULL, 0, err), -1);
	assert_string_equal(err,
	    "--workers: invalid worker count '257' (auto or 1-256)");
}

static void
test_override_listen(void **state)
{
	static const char *const one[] = { "[::1]:8080" };
	static const char *const two[] = { "127.0.0.1:9", "[::]:9" };
	static const char *const bad[] = { "127.0.0.1:9", "x" };
	static const char *const zero[] = { "127.0.0.1:0" };
	static const char *const dup[] = { "127.0.0.1:80", "[::1]:80",
	    "127.0.0.1:80" };
	struct hd_config	 cf;
	char			 err[HD_ERRLEN];

	(void)state;
	load_ok(file_with_server, &cf);
	assert_int_equal(apply(&cf, NULL, 0, one, 1, err), 0);
	assert_int_equal(cf.cf_nlisten, 1);
	assert_ipv6(&cf.cf_listen[0].ln_addr, "::1", 8080, "[::1]:8080");
	assert_int_equal(cf.cf_workers, 2);	/* untouched */

	load_ok(file_with_server, &cf);
	assert_int_equal(apply(&cf, "3", 0, two, 2, err), 0);
	assert_int_equal(cf.cf_nlisten, 2);
	assert_ipv4(&cf.cf_listen[0].ln_addr, "127.0.0.1", 9, "127.0.0.1:9");
	assert_ipv6(&cf.cf_listen[1].ln_addr, "::", 9, "[::]:9");
	assert_int_equal(cf.cf_workers, 3);

	load_ok(file_with_server, &cf);
	assert_int_equal(apply(&cf, NULL, 0, bad, 2, err), -1);
	assert_string_equal(err, "--listen: " ADDR_ERR("x"));
	load_ok(file_with_server, &cf);
	assert_int_equal(apply(&cf, NULL, 0, zero, 1, err), -1);
	assert_string_equal(err, "--listen: " ADDR_ERR("127.0.0.1:0"));
	load_ok(file_with_server, &cf);
	assert_int_equal(apply(&cf, NULL, 0, dup, 3, err), -1);
	assert_string_equal(err, "--listen: duplicate address '127.0.0.1:80'");
}

static void
test_sync_keepalive(void **state)
{
	struct hd_config	 cf;
	char			 err[HD_ERRLEN];

	(void)state;
	/* async: the default keep-alive stays */
	load_ok_apply("[server]\nmode = async\n", &cf);
	assert_int_equal(cf.cf_keepalive_timeout, 5000);
	/* uring: as async */
	load_ok_apply("[server]\nmode = uring\n", &cf);
	assert_int_equal(cf.cf_mode, HD_MODE_URING);
	assert_int_equal(cf.cf_keepalive_timeout, 5000);
	/* sync from the file: off unless set */
	load_ok_apply("[server]\nmode = sync\n", &cf);
	assert_int_equal(cf.cf_mode, HD_MODE_SYNC);
	assert_int_equal(cf.cf_keepalive_timeout, 0);
	load_ok_apply("[server]\nmode = sync\n[http]\nkeepalive_timeout = 7s\n",
	    &cf);
	assert_int_equal(cf.cf_keepalive_timeout, 7000);
	/* set explicitly to the default value still counts as set */
	load_ok_apply("[http]\nkeepalive_timeout = 5s\n[server]\nmode = sync\n",
	    &cf);
	assert_int_equal(cf.cf_keepalive_timeout, 5000);
	/* --sync */
	load_ok("[server]\nmode = async\n", &cf);
	assert_int_equal(apply(&cf, NULL, 1, NULL, 0, err), 0);
	assert_int_equal(cf.cf_mode, HD_MODE_SYNC);
	assert_int_equal(cf.cf_keepalive_timeout, 0);
	load_ok("[http]\nkeepalive_timeout = 2s\n", &cf);
	assert_int_equal(apply(&cf, NULL, 1, NULL, 0, err), 0);
	assert_int_equal(cf.cf_keepalive_timeout, 2000);
	/* built-in defaults with --sync */
	config_defaults(&cf);
	assert_int_equal(apply(&cf, NULL, 1, NULL, 0, err), 0);
	assert_int_equal(cf.cf_keepalive_timeout, 0);
}

static void
test_config_read(void **state)
{
	static const char *const listen[] = { "127.0.0.2:7000" };
	struct hd_overrides	 ov;
	struct hd_config	 cf;
	char			 err[HD_ERRLEN], path[PATH_MAX];

	(void)state;
	write_temp("[server]\nworkers = 5\nlisten = 127.0.0.1:1\n"
	    "[http]\ndelay = 20ms\n", path);
	memset(&ov, 0, sizeof(ov));
	ov.ov_config = path;
	ov.ov_workers = "6";
	ov.ov_listen[0].la_text = listen[0];
	ov.ov_nlisten = 1;
	memset(&cf, 0x5a, sizeof(cf));
	assert_int_equal(config_read(&cf, &ov, err, sizeof(err)), 0);
	assert_string_equal(cf.cf_file, path);
	assert_int_equal(cf.cf_workers, 6);		/* command line */
	assert_int_equal(cf.cf_nlisten, 1);
	assert_ipv4(&cf.cf_listen[0].ln_addr, "127.0.0.2", 7000, "127.0.0.2:7000");
	assert_int_equal(cf.cf_delay, 20);		/* file */
	assert_int_equal(cf.cf_backlog, 4096);		/* default */
	unlink(path);

	/* An explicit file that cannot be opened is an error. */
	assert_int_equal(config_read(&cf, &ov, err, sizeof(err)), -1);
	assert_true(strncmp(err, path, strlen(path)) == 0);
	assert_string_equal(err + strlen(path), ": cannot open: "
	    "No such file or directory");

	/* No -c and no default file: the built-in defaults. */
	if (access(HELLOD_CONF, F_OK) == 0)
		return;
	memset(&ov, 0, sizeof(ov));
	assert_int_equal(config_read(&cf, &ov, err, sizeof(err)), 0);
	assert_defaults(&cf);
	assert_string_equal(cf.cf_file, "");
}

static void
test_worker_count(void **state)
{
	struct hd_config	 cf;
	long			 n = sysconf(_SC_NPROCESSORS_ONLN);

	(void)state;
	config_defaults(&cf);
	cf.cf_workers = 3;
	assert_int_equal(config_worker_count(&cf), 3);
	cf.cf_mode = HD_MODE_SYNC;
	assert_int_equal(config_worker_count(&cf), 1);
	cf.cf_mode = HD_MODE_ASYNC;
	cf.cf_workers = 0;
	if (n < 1)
		n = 1;
	if (n > HD_MAX_WORKERS)
		n = HD_MAX_WORKERS;
	assert_int_equal(config_worker_count(&cf), (unsigned)n);
}

/* ------------------------------------------------------------------ */
/* Durations, sizes, addresses                                         */
/* ------------------------------------------------------------------ */

struct duration_case {
	const char	*s;
	unsigned	 ms;
};

static void
test_parse_duration(void **state)
{
	static const struct duration_case ok[] = {
		{ "0", 0 }, { "0ms", 0 }, { "0s", 0 }, { "0m", 0 },
		{ "5", 5000 }, { "5s", 5000 }, { "500ms", 500 },
		{ "2m", 120000 }, { "1ms", 1 }, { "007", 7000 },
		{ "86400", 86400000 }, { "1440m", 86400000 },
		{ "86400000ms", 86400000 }, { "5h", 18000000 },
		{ "168h", 604800000 }, { "604800", 604800000 },
		{ "10080m", 604800000 }, { "604800000ms", 604800000 },
	};
	static const char *const bad[] = {
		"", "abc", "-1", "+1", " 5", "5 ", "5H", "5S", "5MS", "5sec",
		"1.5s", "5mss", "s", "ms", "h", "0x10", "604801", "10081m",
		"169h", "604800001ms", "4294967296", "99999999999999999999999",
		"18446744073709551615ms", "5hm",
	};
	unsigned	 ms;
	size_t		 i;

	(void)state;
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		ms = 12345;
		if (config_parse_duration(ok[i].s, &ms) != 0)
			fail_msg("duration '%s' rejected", ok[i].s);
		assert_int_equal(ms, ok[i].ms);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ms = 12345;
		if (config_parse_duration(bad[i], &ms) != -1)
			fail_msg("duration '%s' accepted as %u", bad[i], ms);
		assert_int_equal(ms, 12345);
	}
}

struct size_case {
	const char	*s;
	size_t		 n;
};

static void
test_parse_size(void **state)
{
	static const struct size_case ok[] = {
		{ "0", 0 }, { "1", 1 }, { "512", 512 }, { "8k", 8192 },
		{ "8K", 8192 }, { "1m", 1048576 }, { "1M", 1048576 },
		{ "64m", 67108864 }, { "0k", 0 }, { "1099511627776", 1ull << 40 },
		{ "1073741824k", 1ull << 40 }, { "1048576m", 1ull << 40 },
	};
	static const char *const bad[] = {
		"", "k", "m", "-1", "+1", " 8", "8 ", "8 k", "8kb", "8g",
		"1.5k", "0x10", "1099511627777", "1073741825k", "1048577m",
		"99999999999999999999999",
	};
	size_t	 n, i;

	(void)state;
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		n = 12345;
		if (config_parse_size(ok[i].s, &n) != 0)
			fail_msg("size '%s' rejected", ok[i].s);
		assert_int_equal(n, ok[i].n);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		n = 12345;
		if (config_parse_size(bad[i], &n) != -1)
			fail_msg("size '%s' accepted as %zu", bad[i], n);
		assert_int_equal(n, 12345);
	}
}

static void
test_parse_addr(void **state)
{
	static const char *const bad[] = {
		"", ":80", "127.0.0.1", "127.0.0.1:", "127.0.0.1:0",
		"127.0.0.1:65536", "127.0.0.1:-1", "127.0.0.1:+80",
		"127.0.0.1:80x", "127.0.0.1: 80", "127.0.0.1:4294967376",
		"127.0.0.1:99999999999999999999", "::1:80", "::1", "[::1]",
		"[::1]:", "[::1]:0", "[::1]80", "[]:80", "[127.0.0.1]:80",
		"localhost:80", "256.1.1.1:80", "1.2.3:80", "[fe80::1%lo]:80",
		" 127.0.0.1:80", "[::1]:80:", "[:::1]:80", "[::1]:65536",
		"[::g]:80", "0.0.0.0:0",
		"[1111:2222:3333:4444:5555:6666:7777:8888:9999:aaaa:bbbb:cccc:dddd]:80",
	};
	struct hd_addr	 a, b;
	char		 err[HD_ERRLEN], want[HD_ERRLEN];
	size_t		 i;

	(void)state;
	assert_int_equal(listen_parse_addr("127.0.0.1:80", &a, err,
	    sizeof(err)), 0);
	assert_ipv4(&a, "127.0.0.1", 80, "127.0.0.1:80");
	assert_int_equal(listen_parse_addr("0.0.0.0:65535", &a, err,
	    sizeof(err)), 0);
	assert_ipv4(&a, "0.0.0.0", 65535, "0.0.0.0:65535");
	assert_int_equal(listen_parse_addr("1.2.3.4:080", &a, err,
	    sizeof(err)), 0);
	assert_ipv4(&a, "1.2.3.4", 80, "1.2.3.4:80");
	assert_int_equal(listen_parse_addr("[::]:8080", &a, err,
	    sizeof(err)), 0);
	assert_ipv6(&a, "::", 8080, "[::]:8080");
	assert_int_equal(listen_parse_addr("[::1]:1", &a, err, sizeof(err)), 0);
	assert_ipv6(&a, "::1", 1, "[::1]:1");
	assert_int_equal(listen_parse_addr("[2001:DB8::a:1]:443", &a, err,
	    sizeof(err)), 0);
	assert_ipv6(&a, "2001:db8::a:1", 443, "[2001:DB8::a:1]:443");
	assert_int_equal(listen_parse_addr("[::ffff:192.0.2.1]:80", &a, err,
	    sizeof(err)), 0);
	assert_ipv6(&a, "::ffff:192.0.2.1", 80, "[::ffff:192.0.2.1]:80");

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (listen_parse_addr(bad[i], &a, err, sizeof(err)) != -1)
			fail_msg("address '%s' accepted", bad[i]);
		snprintf(want, sizeof(want), "invalid address '%s' (expected "
		    "IPv4:PORT or [IPv6]:PORT, port 1-65535)", bad[i]);
		assert_string_equal(err, want);
	}

	/* Sameness is by socket address, not by spelling. */
	assert_int_equal(listen_parse_addr("[::1]:80", &a, err, sizeof(err)), 0);
	assert_int_equal(listen_parse_addr("[0:0:0:0:0:0:0:1]:80", &b, err,
	    sizeof(err)), 0);
	assert_true(listen_same_addr(&a, &b));
	assert_int_equal(listen_parse_addr("[::1]:81", &b, err, sizeof(err)), 0);
	assert_false(listen_same_addr(&a, &b));
	assert_int_equal(listen_parse_addr("127.0.0.1:80", &a, err,
	    sizeof(err)), 0);
	assert_int_equal(listen_parse_addr("[::ffff:127.0.0.1]:80", &b, err,
	    sizeof(err)), 0);
	assert_false(listen_same_addr(&a, &b));
	assert_int_equal(listen_parse_addr("127.0.0.1:080", &b, err,
	    sizeof(err)), 0);
	assert_true(listen_same_addr(&a, &b));
}

/* The greeting's address: inet_ntop(), IPv4-mapped IPv6 shown as IPv4. */
static void
test_peer_text(void **state)
{
	struct sockaddr_storage	 ss;
	struct sockaddr_in	*sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)&ss;
	struct answer_peer	 ap;

	(void)state;
	memset(&ss, 0, sizeof(ss));
	sin->sin_family = AF_INET;
	assert_int_equal(inet_pton(AF_INET, "192.0.2.7", &sin->sin_addr), 1);
	answer_peer_init(&ap, &ss);
	assert_int_equal(ap.ap_textlen, 9);
	assert_string_equal(ap.ap_text, "192.0.2.7");

	memset(&ss, 0, sizeof(ss));
	sin6->sin6_family = AF_INET6;
	assert_int_equal(inet_pton(AF_INET6, "::ffff:198.51.100.9",
	    &sin6->sin6_addr), 1);
	answer_peer_init(&ap, &ss);
	assert_int_equal(ap.ap_textlen, 12);
	assert_string_equal(ap.ap_text, "198.51.100.9");

	assert_int_equal(inet_pton(AF_INET6, "2001:db8::ffff:1",
	    &sin6->sin6_addr), 1);
	answer_peer_init(&ap, &ss);
	assert_string_equal(ap.ap_text, "2001:db8::ffff:1");
	assert_int_equal(inet_pton(AF_INET6,
	    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", &sin6->sin6_addr), 1);
	answer_peer_init(&ap, &ss);
	assert_int_equal(ap.ap_textlen, 39);
}

/* What --test-config warns about: settings the rest leaves idle. */
static void
test_idle_settings(void **state)
{
	struct hd_config	 cf;
	char			 msg[4][HD_ERRLEN];

	(void)state;
	load_ok("", &cf);
	assert_int_equal(config_idle_settings(&cf, msg, 4), 0);
	load_ok("[proxy]\ntrusted = 10.0.0.0/8\nheader = x-forwarded-for\n"
	    "[status]\nlisten = 127.0.0.1:9180\ndrain_notice = 2s\n", &cf);
	assert_int_equal(config_idle_settings(&cf, msg, 4), 0);
	load_ok("[proxy]\nheader = none\n[status]\ndrain_notice = 0\n", &cf);
	assert_int_equal(config_idle_settings(&cf, msg, 4), 0);

	load_ok("[proxy]\nheader = x-real-ip\n", &cf);
	assert_int_equal(config_idle_settings(&cf, msg, 4), 1);
	assert_string_equal(msg[0], "[proxy] header = x-real-ip does nothing "
	    "without [proxy] trusted: no proxy is believed; list the proxies "
	    "in trusted, or remove header");

	load_ok("[status]\ndrain_notice = 1500ms\n", &cf);
	assert_int_equal(config_idle_settings(&cf, msg, 4), 1);
	assert_string_equal(msg[0], "[status] drain_notice does nothing "
	    "without [status] listen: /healthz is served by the status "
	    "listener; add one, or remove drain_notice");

	/* Both; the count holds when fewer messages fit. */
	load_ok("[proxy]\nheader = forwarded\n[status]\ndrain_notice = 1s\n",
	    &cf);
	assert_int_equal(config_idle_settings(&cf, msg, 4), 2);
	assert_non_null(strstr(msg[0], "[proxy] header = forwarded"));
	assert_non_null(strstr(msg[1], "[status] drain_notice"));
	strcpy(msg[1], "untouched");
	assert_int_equal(config_idle_settings(&cf, msg, 1), 2);
	assert_string_equal(msg[1], "untouched");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_empty_file),
		cmocka_unit_test(test_every_key),
		cmocka_unit_test(test_other_values),
		cmocka_unit_test(test_listen_in_file),
		cmocka_unit_test(test_listen_several_lines),
		cmocka_unit_test(test_listen_list_order),
		cmocka_unit_test(test_listen_list_limits),
		cmocka_unit_test(test_listen_list_duplicates),
		cmocka_unit_test(test_listen_list_command_line),
		cmocka_unit_test(test_long_line),
		cmocka_unit_test(test_comments_and_indent),
		cmocka_unit_test(test_invalid_values),
		cmocka_unit_test(test_contract_example),
		cmocka_unit_test(test_unknown_key),
		cmocka_unit_test(test_unknown_section),
		cmocka_unit_test(test_key_outside_section),
		cmocka_unit_test(test_duplicate_key),
		cmocka_unit_test(test_syntax_error),
		cmocka_unit_test(test_crlf_file),
		cmocka_unit_test(test_unopenable_file),
		cmocka_unit_test(test_packaged_conf),
		cmocka_unit_test(test_override_workers),
		cmocka_unit_test(test_override_listen),
		cmocka_unit_test(test_sync_keepalive),
		cmocka_unit_test(test_config_read),
		cmocka_unit_test(test_worker_count),
		cmocka_unit_test(test_parse_duration),
		cmocka_unit_test(test_parse_size),
		cmocka_unit_test(test_parse_addr),
		cmocka_unit_test(test_peer_text),
		cmocka_unit_test(test_idle_settings),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
