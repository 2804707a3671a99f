/*
 * Access log: one line per request in the combined or JSON format,
 * written with one write(2) to a file opened O_APPEND.  Request data is
 * escaped: control bytes, quotes, backslashes and bytes above 0x7e never
 * reach the file raw, and each field is bounded.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hellod.h"
#include "http.h"

#define FIELD_MAX	1024	/* escaped bytes per logged field */

static int			 access_fd = -1;
static char			 access_path[PATH_MAX];
static enum hd_access_format	 access_fmt;

int
access_open(const struct hd_config *cf)
{
	int	 fd = -1;

	if (cf->cf_access_log[0] != '\0') {
		fd = open(cf->cf_access_log, O_WRONLY | O_APPEND | O_CREAT |
		    O_CLOEXEC, 0644);
		if (fd == -1) {
			log_errno("open(\"%s\") failed", cf->cf_access_log);
			return -1;
		}
	}
	access_close();
	access_fd = fd;
	access_fmt = cf->cf_access_format;
	snprintf(access_path, sizeof(access_path), "%s", cf->cf_access_log);
	return 0;
}

int
access_reopen(void)
{
	int	 fd;

	if (access_fd == -1)
		return 0;
	fd = open(access_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd == -1) {
		log_warn("open(\"%s\") failed", access_path);
		return -1;
	}
	if (dup3(fd, access_fd, O_CLOEXEC) == -1)
		log_warn("dup3() failed");
	close(fd);
	return 0;
}

void
access_close(void)
{
	if (access_fd != -1)
		close(access_fd);
	access_fd = -1;
}

int
access_enabled(void)
{
	return access_fd != -1;
}

/* Escapes s into out (\xHH, or \u00HH in JSON, for anything not
 * printable ASCII and for the quote and backslash); returns the bytes
 * written. */
static size_t
escape(char *out, const char *s, size_t len, int json)
{
	static const char	 hex[] = "0123456789abcdef";
	size_t			 i, o = 0;
	unsigned char		 c;

	if (s == NULL || len == 0) {
		out[0] = '-';
		return 1;
	}
	for (i = 0; i < len && o + 6 <= FIELD_MAX; i++) {
		c = (unsigned char)s[i];
		if (c < 0x20 || c > 0x7e || c == '"' || c == '\\') {
			out[o++] = '\\';
			if (json) {
				out[o++] = 'u';
				out[o++] = '0';
				out[o++] = '0';
			} else
				out[o++] = 'x';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 0xf];
		} else
			out[o++] = (char)c;
	}
	return o;
}

/*
 * client is the address the greeting names, peer the connection's TCP
 * peer (a proxy, when one was believed).  The combined format keeps its
 * fields, client first as nginx's realip does, and names a different
 * peer in one more quoted field at the end.
 */
void
access_log(const char *client, const char *peer,
    const struct http_request *req, int status, size_t bytes, int64_t now,
    const struct tls_info *tls)
{
	char		 line[4 * FIELD_MAX + 640], when[64];
	char		 rl[FIELD_MAX], ref[FIELD_MAX], ua[FIELD_MAX];
	char		 tl[FIELD_MAX + 192], sub[FIELD_MAX];
	size_t		 rln, refn, uan, subn;
	struct tm	 tm;
	time_t		 t = (time_t)now;
	int		 n, json;

	if (access_fd == -1)
		return;
	json = access_fmt == HD_ACCESS_JSON;
	rln = escape(rl, req->req_line, req->req_line_len, json);
	refn = escape(ref, req->req_referer, req->req_referer_len, json);
	uan = escape(ua, req->req_agent, req->req_agent_len, json);
	if (json) {
		gmtime_r(&t, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		tl[0] = '\0';
		if (tls != NULL && tls->ti_protocol != NULL) {
			subn = tls->ti_client == NULL ? 0 : escape(sub,
			    tls->ti_client, strlen(tls->ti_client), 1);
			snprintf(tl, sizeof(tl), ",\"tls_protocol\":\"%s\","
			    "\"tls_cipher\":\"%s\"%s%.*s%s", tls->ti_protocol,
			    tls->ti_cipher, subn > 0 ? ",\"tls_client\":\"" : "",
			    (int)subn, sub, subn > 0 ? "\"" : "");
		}
		n = snprintf(line, sizeof(line), "{\"time\":\"%s\","
		    "\"client\":\"%s\",\"peer\":\"%s\",\"request\":\"%.*s\","
		    "\"status\":%d,\"body_bytes_sent\":%zu,"
		    "\"http_referer\":\"%.*s\",\"http_user_agent\":\"%.*s\"%s}\n",
		    when, client, peer, (int)rln, rl, status, bytes, (int)refn,
		    ref, (int)uan, ua, tl);
	} else {
		localtime_r(&t, &tm);
		strftime(when, sizeof(when), "%d/%b/%Y:%H:%M:%S %z", &tm);
		n = snprintf(line, sizeof(line), "%s - - [%s] \"%.*s\" %d %zu "
		    "\"%.*s\" \"%.*s\"%s%s%s\n", client, when, (int)rln, rl,
		    status, bytes, (int)refn, ref, (int)uan, ua,
		    strcmp(client, peer) != 0 ? " \"" : "",
		    strcmp(client, peer) != 0 ? peer : "",
		    strcmp(client, peer) != 0 ? "\"" : "");
	}
	if (n <= 0)
		return;
	if ((size_t)n >= sizeof(line))
		n = sizeof(line) - 1;
	if (write(access_fd, line, (size_t)n) == -1 && errno != EAGAIN)
		log_debug("write() to access log failed: %s", strerror(errno));
}
