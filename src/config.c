/*
 * Configuration: built-in defaults, then the INI file (inih), then the
 * command line.  Loading always fills a caller-provided structure, so a
 * reload that fails leaves the running configuration untouched.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ini.h>

#include "hellod.h"

#define MS_MAX_TIMEOUT	(168u * 3600u * 1000u)	/* 7 days */

void
config_defaults(struct hd_config *cf)
{
	char	 err[HD_ERRLEN];

	memset(cf, 0, sizeof(*cf));
	/* Replaced by the file's first [server] listen line. */
	if (listen_parse_addr("0.0.0.0:8080", &cf->cf_listen[0].ln_addr, err,
	    sizeof(err)) == 0)
		cf->cf_nlisten = 1;
	cf->cf_mode = HD_MODE_ASYNC;
	cf->cf_workers = 0;
	cf->cf_backlog = 4096;
	cf->cf_shutdown_timeout = 10000;
	cf->cf_keepalive_timeout = 5000;
	cf->cf_header_timeout = 10000;
	cf->cf_max_header_size = 8192;
	cf->cf_max_connections = 10000;
	strcpy(cf->cf_error_log, "stderr");
	cf->cf_log_level = LOG_LEVEL_INFO;
	cf->cf_access_format = HD_ACCESS_COMBINED;
	cf->cf_defer_accept = 1;
	cf->cf_query_max_delay = 10000;
	cf->cf_query_max_padding = 1024 * 1024;
	tls_conf_defaults(&cf->cf_tls);
}

/* "500ms", "10s", "2m"; a bare number means seconds. */
int
config_parse_duration(const char *s, unsigned *out)
{
	char			*end;
	unsigned long long	 v, mul;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0)
		return -1;
	if (strcmp(end, "ms") == 0)
		mul = 1;
	else if (*end == '\0' || strcmp(end, "s") == 0)
		mul = 1000;
	else if (strcmp(end, "m") == 0)
		mul = 60000;
	else if (strcmp(end, "h") == 0)
		mul = 3600000;
	else
		return -1;
	if (v > MS_MAX_TIMEOUT / mul)
		return -1;
	*out = (unsigned)(v * mul);
	return 0;
}

/* "512", "8k", "1m" (binary multiples). */
int
config_parse_size(const char *s, size_t *out)
{
	char			*end;
	unsigned long long	 v, mul;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0)
		return -1;
	if (*end == '\0')
		mul = 1;
	else if ((end[0] == 'k' || end[0] == 'K') && end[1] == '\0')
		mul = 1024;
	else if ((end[0] == 'm' || end[0] == 'M') && end[1] == '\0')
		mul = 1024 * 1024;
	else
		return -1;
	if (v > (1ull << 40) / mul)
		return -1;
	*out = (size_t)(v * mul);
	return 0;
}

static int
parse_uint(const char *s, unsigned long min, unsigned long max,
    unsigned long *out)
{
	char		*end;
	unsigned long	 v;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

#define SETTER(name) \
	static int name(struct hd_config *cf, const char *v, char *err, \
	    size_t errlen)

SETTER(set_mode)
{
	if (strcmp(v, "async") == 0)
		cf->cf_mode = HD_MODE_ASYNC;
	else if (strcmp(v, "sync") == 0)
		cf->cf_mode = HD_MODE_SYNC;
	else if (strcmp(v, "uring") == 0)
		cf->cf_mode = HD_MODE_URING;
	else {
		snprintf(err, errlen, "invalid mode '%s' (async, sync or "
		    "uring)", v);
		return -1;
	}
	return 0;
}

SETTER(set_workers)
{
	unsigned long	 n;

	if (strcmp(v, "auto") == 0) {
		cf->cf_workers = 0;
		return 0;
	}
	if (parse_uint(v, 1, HD_MAX_WORKERS, &n) == -1) {
		snprintf(err, errlen, "invalid worker count '%s' (auto or "
		    "1-%d)", v, HD_MAX_WORKERS);
		return -1;
	}
	cf->cf_workers = (unsigned)n;
	return 0;
}

SETTER(set_backlog)
{
	unsigned long	 n;

	if (parse_uint(v, 1, 65535, &n) == -1) {
		snprintf(err, errlen, "invalid backlog '%s' (1-65535)", v);
		return -1;
	}
	cf->cf_backlog = (int)n;
	return 0;
}

static int
set_string(char *dst, size_t dstlen, const char *v, char *err, size_t errlen)
{
	if (strlen(v) >= dstlen) {
		snprintf(err, errlen, "value too long");
		return -1;
	}
	strcpy(dst, v);
	return 0;
}

SETTER(set_pid_file)
{
	if (*v != '\0' && *v != '/') {
		snprintf(err, errlen, "'%s' is not an absolute path", v);
		return -1;
	}
	return set_string(cf->cf_pid_file, sizeof(cf->cf_pid_file), v, err,
	    errlen);
}

SETTER(set_user)
{
	return set_string(cf->cf_user, sizeof(cf->cf_user), v, err, errlen);
}

SETTER(set_group)
{
	return set_string(cf->cf_group, sizeof(cf->cf_group), v, err, errlen);
}

/* In the largest unit that holds it exactly, as the file would say it:
 * "0", "500ms", "10s", "60m". */
static const char *
duration_text(unsigned ms, char *buf, size_t len)
{
	if (ms != 0 && ms % 60000 == 0)
		snprintf(buf, len, "%um", ms / 60000);
	else if (ms != 0 && ms % 1000 == 0)
		snprintf(buf, len, "%us", ms / 1000);
	else
		snprintf(buf, len, "%u%s", ms, ms != 0 ? "ms" : "");
	return buf;
}

/* Likewise: "256", "8k", "64m". */
static const char *
size_text(size_t n, char *buf, size_t len)
{
	if (n != 0 && n % (1024 * 1024) == 0)
		snprintf(buf, len, "%zum", n / (1024 * 1024));
	else if (n != 0 && n % 1024 == 0)
		snprintf(buf, len, "%zuk", n / 1024);
	else
		snprintf(buf, len, "%zu", n);
	return buf;
}

static int
set_duration(unsigned *dst, const char *v, unsigned min, unsigned max,
    char *err, size_t errlen)
{
	char		 lo[16], hi[16];
	unsigned	 ms;

	if (config_parse_duration(v, &ms) == -1) {
		snprintf(err, errlen, "invalid duration '%s'", v);
		return -1;
	}
	if (ms < min || ms > max) {
		snprintf(err, errlen, "duration '%s' out of range (%s-%s)", v,
		    duration_text(min, lo, sizeof(lo)),
		    duration_text(max, hi, sizeof(hi)));
		return -1;
	}
	*dst = ms;
	return 0;
}

static int
set_size(size_t *dst, const char *v, size_t min, size_t max, char *err,
    size_t errlen)
{
	char	 lo[24], hi[24];
	size_t	 n;

	if (config_parse_size(v, &n) == -1) {
		snprintf(err, errlen, "invalid size '%s'", v);
		return -1;
	}
	if (n < min || n > max) {
		snprintf(err, errlen, "size '%s' out of range (%s-%s)", v,
		    size_text(min, lo, sizeof(lo)),
		    size_text(max, hi, sizeof(hi)));
		return -1;
	}
	*dst = n;
	return 0;
}

SETTER(set_shutdown_timeout)
{
	return set_duration(&cf->cf_shutdown_timeout, v, 0, 3600000, err,
	    errlen);
}

SETTER(set_keepalive_timeout)
{
	cf->cf_keepalive_set = 1;
	return set_duration(&cf->cf_keepalive_timeout, v, 0, 3600000, err,
	    errlen);
}

SETTER(set_header_timeout)
{
	return set_duration(&cf->cf_header_timeout, v, 1, 3600000, err,
	    errlen);
}

SETTER(set_max_header_size)
{
	return set_size(&cf->cf_max_header_size, v, 256, 1024 * 1024, err,
	    errlen);
}

SETTER(set_max_connections)
{
	unsigned long	 n;

	if (parse_uint(v, 1, 1000000, &n) == -1) {
		snprintf(err, errlen, "invalid connection count '%s' "
		    "(1-1000000)", v);
		return -1;
	}
	cf->cf_max_connections = (unsigned)n;
	return 0;
}

SETTER(set_delay)
{
	return set_duration(&cf->cf_delay, v, 0, 60000, err, errlen);
}

SETTER(set_body_padding)
{
	return set_size(&cf->cf_body_padding, v, 0, HD_MAX_PADDING, err,
	    errlen);
}

static int
set_bool(int *dst, const char *v, char *err, size_t errlen)
{
	if (strcmp(v, "on") == 0)
		*dst = 1;
	else if (strcmp(v, "off") == 0)
		*dst = 0;
	else {
		snprintf(err, errlen, "invalid value '%s' (on or off)", v);
		return -1;
	}
	return 0;
}

SETTER(set_defer_accept)
{
	return set_bool(&cf->cf_defer_accept, v, err, errlen);
}

SETTER(set_drain_notice)
{
	return set_duration(&cf->cf_drain_notice, v, 0, 3600000, err, errlen);
}

SETTER(set_query_knobs)
{
	return set_bool(&cf->cf_query_knobs, v, err, errlen);
}

SETTER(set_endpoints)
{
	return set_bool(&cf->cf_endpoints, v, err, errlen);
}

SETTER(set_identity)
{
	return set_bool(&cf->cf_identity, v, err, errlen);
}

SETTER(set_query_max_delay)
{
	return set_duration(&cf->cf_query_max_delay, v, 0, 60000, err, errlen);
}

SETTER(set_query_max_padding)
{
	return set_size(&cf->cf_query_max_padding, v, 0, HD_MAX_PADDING, err,
	    errlen);
}

/* Several trusted lines add up, as listen lines do. */
SETTER(set_trusted)
{
	struct client_trust	 more;
	unsigned		 i;

	if (client_trust_parse(v, &more, err, errlen) == -1)
		return -1;
	if (cf->cf_trusted.ct_n + more.ct_n > CLIENT_MAX_TRUSTED) {
		snprintf(err, errlen, "more than %d networks in all",
		    CLIENT_MAX_TRUSTED);
		return -1;
	}
	for (i = 0; i < more.ct_n; i++)
		cf->cf_trusted.ct_nets[cf->cf_trusted.ct_n++] = more.ct_nets[i];
	return 0;
}

SETTER(set_forward_header)
{
	if (client_header_parse(v, &cf->cf_forward_header) == -1) {
		snprintf(err, errlen, "invalid header '%s' (none, "
		    "x-forwarded-for, x-real-ip or forwarded)", v);
		return -1;
	}
	return 0;
}

SETTER(set_error_log)
{
	if (*v == '\0') {
		snprintf(err, errlen, "empty value (stderr, syslog or a path)");
		return -1;
	}
	if (strcmp(v, "stderr") != 0 && strcmp(v, "syslog") != 0 && *v != '/') {
		snprintf(err, errlen, "'%s' is not stderr, syslog or an "
		    "absolute path", v);
		return -1;
	}
	return set_string(cf->cf_error_log, sizeof(cf->cf_error_log), v, err,
	    errlen);
}

SETTER(set_level)
{
	int	 l = log_level_parse(v);

	if (l == -1) {
		snprintf(err, errlen, "invalid level '%s' (error, warn, info "
		    "or debug)", v);
		return -1;
	}
	cf->cf_log_level = l;
	return 0;
}

SETTER(set_access_log)
{
	if (strcmp(v, "off") == 0) {
		cf->cf_access_log[0] = '\0';
		return 0;
	}
	if (*v != '/') {
		snprintf(err, errlen, "'%s' is not off or an absolute path", v);
		return -1;
	}
	return set_string(cf->cf_access_log, sizeof(cf->cf_access_log), v,
	    err, errlen);
}

SETTER(set_access_format)
{
	if (strcmp(v, "combined") == 0)
		cf->cf_access_format = HD_ACCESS_COMBINED;
	else if (strcmp(v, "json") == 0)
		cf->cf_access_format = HD_ACCESS_JSON;
	else {
		snprintf(err, errlen, "invalid format '%s' (combined or json)",
		    v);
		return -1;
	}
	return 0;
}

static const struct config_key {
	const char	*k_section;
	const char	*k_name;
	int		(*k_set)(struct hd_config *, const char *, char *,
			    size_t);
} keys[] = {
	{ "server", "listen", NULL },		/* listen_keys */
	{ "server", "proxy_listen", NULL },
	{ "server", "tls_listen", NULL },
	{ "server", "tls_proxy_listen", NULL },
	{ "server", "mode", set_mode },
	{ "server", "workers", set_workers },
	{ "server", "backlog", set_backlog },
	{ "server", "pid_file", set_pid_file },
	{ "server", "user", set_user },
	{ "server", "group", set_group },
	{ "server", "shutdown_timeout", set_shutdown_timeout },
	{ "server", "defer_accept", set_defer_accept },
	{ "http", "keepalive_timeout", set_keepalive_timeout },
	{ "http", "header_timeout", set_header_timeout },
	{ "http", "max_header_size", set_max_header_size },
	{ "http", "max_connections", set_max_connections },
	{ "http", "delay", set_delay },
	{ "http", "body_padding", set_body_padding },
	{ "http", "query_knobs", set_query_knobs },
	{ "http", "query_max_delay", set_query_max_delay },
	{ "http", "query_max_padding", set_query_max_padding },
	{ "http", "endpoints", set_endpoints },
	{ "http", "identity", set_identity },
	{ "log", "error_log", set_error_log },
	{ "log", "level", set_level },
	{ "log", "access_log", set_access_log },
	{ "log", "access_format", set_access_format },
	{ "proxy", "trusted", set_trusted },
	{ "proxy", "header", set_forward_header },
	{ "status", "listen", NULL },
	{ "status", "agent_listen", NULL },
	{ "status", "drain_notice", set_drain_notice },
};

#define NKEYS	(sizeof(keys) / sizeof(keys[0]))

struct parse_ctx {
	struct hd_config	*pc_cf;
	FILE			*pc_fp;
	int			 pc_newlines;	/* complete lines read */
	int			 pc_partial;	/* last read had no '\n' */
	int			 pc_errline;
	int			 pc_toolong;	/* line number */
	int			 pc_nul;	/* line number */
	unsigned		 pc_kinds_seen;	/* 1 << listen_keys index */
	char			 pc_err[HD_ERRLEN];
	unsigned char		 pc_seen[NKEYS];
};

/* Counts lines so that the handler knows where it is (inih does not say). */
static char *
reader(char *str, int num, void *arg)
{
	struct parse_ctx	*pc = arg;
	long			 before = ftell(pc->pc_fp);
	char			*r = fgets(str, num, pc->pc_fp);
	size_t			 n;

	if (r == NULL)
		return NULL;
	n = strlen(r);
	/* fgets() reads past a NUL byte; the length would lie. */
	if (before >= 0 && ftell(pc->pc_fp) - before != (long)n) {
		pc->pc_nul = pc->pc_newlines + 1;
		return NULL;
	}
	pc->pc_partial = !(n > 0 && r[n - 1] == '\n');
	if (pc->pc_partial && n + 1 >= (size_t)num && !feof(pc->pc_fp)) {
		/* inih would take the rest of the line for a new line. */
		pc->pc_toolong = pc->pc_newlines + 1;
		return NULL;
	}
	if (!pc->pc_partial)
		pc->pc_newlines++;
	return r;
}

static int
lineno(const struct parse_ctx *pc)
{
	return pc->pc_newlines + (pc->pc_partial ? 1 : 0);
}

/*
 * A line of a listen key (the keys[] without a setter): config_listen.c.
 */
static int
listen_line(struct parse_ctx *pc, const char *section, const char *name,
    const char *value, char *why, size_t whylen)
{
	return config_listen_line(pc->pc_cf, section, name, value, lineno(pc),
	    &pc->pc_kinds_seen, why, whylen);
}

static int
handler(void *arg, const char *section, const char *name, const char *value)
{
	struct parse_ctx	*pc = arg;
	char			 why[HD_ERRLEN - 128];
	size_t			 i;
	int			 known_section = 0;

	if (pc->pc_errline != 0)
		return 0;
	/* [tls] keys record where they were set: file errors are found
	 * when the certificates are loaded (tls.c). */
	if (strcmp(section, "tls") == 0) {
		if (tls_conf_set(&pc->pc_cf->cf_tls, name, value, lineno(pc),
		    why, sizeof(why)) == 0)
			return 1;
		goto fail;
	}
	for (i = 0; i < NKEYS; i++) {
		if (strcmp(section, keys[i].k_section) != 0)
			continue;
		known_section = 1;
		if (strcmp(name, keys[i].k_name) == 0)
			break;
	}
	why[0] = '\0';
	if (i == NKEYS) {
		if (known_section)
			snprintf(why, sizeof(why), "unknown key");
		else if (*section == '\0')
			snprintf(why, sizeof(why), "key outside of a section");
		else
			snprintf(why, sizeof(why), "unknown section");
	} else if (keys[i].k_set == NULL) {
		if (listen_line(pc, section, name, value, why,
		    sizeof(why)) == 0)
			return 1;
	} else if (pc->pc_seen[i] && keys[i].k_set != set_trusted)
		snprintf(why, sizeof(why), "duplicate key");
	else {
		pc->pc_seen[i] = 1;
		if (keys[i].k_set(pc->pc_cf, value, why, sizeof(why)) == 0) {
			if (keys[i].k_set == set_user)
				pc->pc_cf->cf_user_line = lineno(pc);
			else if (keys[i].k_set == set_group)
				pc->pc_cf->cf_group_line = lineno(pc);
			return 1;
		}
	}
fail:
	pc->pc_errline = lineno(pc);
	snprintf(pc->pc_err, sizeof(pc->pc_err), "[%s] %s: %s", section, name,
	    why);
	return 0;
}

/* Loads path over the values already in cf.  On error cf is undefined. */
int
config_load(struct hd_config *cf, const char *path, char *err, size_t errlen)
{
	struct parse_ctx	 pc;
	int			 rc;

	memset(&pc, 0, sizeof(pc));
	pc.pc_cf = cf;
	if (strlen(path) >= sizeof(cf->cf_file)) {
		snprintf(err, errlen, "%s: path too long", path);
		return -1;
	}
	if ((pc.pc_fp = fopen(path, "r")) == NULL) {
		snprintf(err, errlen, "%s: cannot open: %s", path,
		    strerror(errno));
		return -1;
	}
	strcpy(cf->cf_file, path);
	/* Debian's inih takes some options at run time: no continuation
	 * lines (an indented key is a key), comments after values with ';'
	 * or '#'. */
	ini_allow_multiline = false;
	ini_inline_comment_prefixes = (char *)";#";
	rc = ini_parse_stream(reader, &pc, handler, &pc);
	if (rc == 0 && ferror(pc.pc_fp)) {
		snprintf(err, errlen, "%s: read error: %s", path,
		    strerror(errno));
		rc = -1;
	}
	fclose(pc.pc_fp);
	if (pc.pc_nul != 0 && (rc <= 0 || rc > pc.pc_nul) &&
	    (pc.pc_errline == 0 || pc.pc_errline > pc.pc_nul)) {
		snprintf(err, errlen, "%s:%d: NUL byte in line", path,
		    pc.pc_nul);
		return -1;
	}
	if (pc.pc_toolong != 0 && (rc <= 0 || rc > pc.pc_toolong) &&
	    (pc.pc_errline == 0 || pc.pc_errline > pc.pc_toolong)) {
		snprintf(err, errlen, "%s:%d: line too long (at most %d "
		    "bytes; give long address or network lists on several lines)",
		    path, pc.pc_toolong, INI_MAX_LINE - 3);
		return -1;
	}
	if (rc == 0)
		return 0;
	if (rc == -2)
		snprintf(err, errlen, "%s: out of memory", path);
	else if (rc > 0 && (pc.pc_errline == 0 || rc < pc.pc_errline))
		snprintf(err, errlen, "%s:%d: syntax error (expected "
		    "[section] or key = value)", path, rc);
	else if (pc.pc_errline != 0)
		snprintf(err, errlen, "%s:%d: %s", path, pc.pc_errline,
		    pc.pc_err);
	return -1;
}

int
config_apply_overrides(struct hd_config *cf, const struct hd_overrides *ov,
    char *err, size_t errlen)
{
	char			 why[HD_ERRLEN - 64];

	if (ov->ov_sync)
		cf->cf_mode = HD_MODE_SYNC;
	if (ov->ov_uring)
		cf->cf_mode = HD_MODE_URING;
	if (ov->ov_workers != NULL &&
	    set_workers(cf, ov->ov_workers, why, sizeof(why)) == -1) {
		snprintf(err, errlen, "--workers: %s", why);
		return -1;
	}
	if (config_listen_apply(cf, ov, err, errlen) == -1)
		return -1;
	/* The blocking model serves one connection at a time: keep-alive
	 * would let one client hold the only worker, so it is off unless
	 * the file asks for it. */
	if (cf->cf_mode == HD_MODE_SYNC && !cf->cf_keepalive_set)
		cf->cf_keepalive_timeout = 0;
	return 0;
}

/*
 * The whole chain: defaults, file, command line.  Without -c the default
 * file is read when it exists, otherwise the built-in defaults stand.
 */
/* TLS listeners need this build's TLS and a certificate. */
static int
config_check_tls(const struct hd_config *cf, char *err, size_t errlen)
{
	unsigned	 ntls = config_listen_count(cf, HD_LO_TLS) +
	    config_listen_count(cf, HD_LO_PROXY | HD_LO_TLS);

#ifndef HAVE_TLS
	if (ntls > 0) {
		snprintf(err, errlen, "%s: TLS listeners, but hellod was built "
		    "without TLS (configure --with-tls)", cf->cf_file[0] !=
		    '\0' ? cf->cf_file : "(command line)");
		return -1;
	}
#endif
	return tls_conf_check(&cf->cf_tls, (int)ntls, cf->cf_file[0] !=
	    '\0' ? cf->cf_file : "(command line)", err, errlen);
}

int
config_read(struct hd_config *cf, const struct hd_overrides *ov, char *err,
    size_t errlen)
{
	const char	*path = ov->ov_config;

	config_defaults(cf);
	if (path == NULL && access(HELLOD_CONF, F_OK) == 0)
		path = HELLOD_CONF;
	if (path != NULL && config_load(cf, path, err, errlen) == -1)
		return -1;
	if (config_apply_overrides(cf, ov, err, errlen) == -1)
		return -1;
	return config_check_tls(cf, err, errlen);
}

/*
 * Settings that the rest of cf leaves without effect, for --test-config:
 * fills up to max messages and returns how many there are.
 */
unsigned
config_idle_settings(const struct hd_config *cf, char (*msg)[HD_ERRLEN],
    unsigned max)
{
	unsigned	 n = 0;

	if (cf->cf_forward_header != CLIENT_HEADER_NONE &&
	    cf->cf_trusted.ct_n == 0 && n++ < max)
		snprintf(msg[n - 1], HD_ERRLEN, "[proxy] header = %s does "
		    "nothing without [proxy] trusted: no proxy is believed; "
		    "list the proxies in trusted, or remove header",
		    client_header_field(cf->cf_forward_header));
	if (cf->cf_drain_notice != 0 &&
	    config_listen_count(cf, HD_LO_STATUS) == 0 &&
	    n++ < max)
		snprintf(msg[n - 1], HD_ERRLEN, "[status] drain_notice does "
		    "nothing without [status] listen: /healthz is served by "
		    "the status listener; add one, or remove drain_notice");
	return n;
}

unsigned
config_worker_count(const struct hd_config *cf)
{
	long	 n;

	if (cf->cf_mode == HD_MODE_SYNC)
		return 1;
	if (cf->cf_workers != 0)
		return cf->cf_workers;
	n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n < 1)
		n = 1;
	if (n > HD_MAX_WORKERS)
		n = HD_MAX_WORKERS;
	return (unsigned)n;
}

/* The mode's name, as in the file: for messages and the status. */
const char *
config_mode_name(const struct hd_config *cf)
{
	static const char *const names[] = {
		[HD_MODE_ASYNC] = "async",
		[HD_MODE_SYNC] = "sync",
		[HD_MODE_URING] = "uring",
	};

	return names[cf->cf_mode];
}
