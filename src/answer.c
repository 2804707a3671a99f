/*
 * The one answer path of both workers (see answer.h).  Nothing here does
 * I/O on a connection: the workers read, wait and write; this file
 * decides what is said, logs it and formats it.
 */
#include <stdlib.h>
#include <string.h>

#include "hellod.h"
#include "answer.h"

int
answer_env_init(struct answer_env *ae, const struct hd_config *cf)
{
	memset(ae, 0, sizeof(*ae));
	ae->ae_cf = cf;
	ae->ae_limits.lim_max_header = cf->cf_max_header_size;
	ae->ae_limits.lim_max_fields = HTTP_MAX_FIELDS;
	ae->ae_rcap = cf->cf_max_header_size + ANSWER_READ_ROOM;
	/* ANSWER_WRITE_BATCH bytes, then one more of the largest response. */
	ae->ae_wcap = ANSWER_WRITE_BATCH + http_response_max(cf->cf_body_padding);
	if ((ae->ae_rbuf = malloc(ae->ae_rcap)) == NULL ||
	    (ae->ae_wbuf = malloc(ae->ae_wcap)) == NULL ||
	    (ae->ae_spaces = malloc(HTTP_PAD_CHUNK)) == NULL) {
		log_warn("malloc() failed");
		free(ae->ae_rbuf);
		free(ae->ae_wbuf);
		return -1;
	}
	memset(ae->ae_spaces, ' ', HTTP_PAD_CHUNK);
	ae->ae_date_sec = -1;
	return 0;
}

static const char *
date_at(struct answer_env *ae, int64_t now)
{
	if (now != ae->ae_date_sec) {
		http_date(ae->ae_date, now);
		ae->ae_date_sec = now;
	}
	return ae->ae_date;
}

static void
response_of(struct answer_env *ae, const struct answer *an, enum http_conn conn,
    const char *client, size_t clientlen, int64_t now,
    struct http_response *r)
{
	memset(r, 0, sizeof(*r));
	r->rsp_status = an->an_status;
	r->rsp_head = an->an_head;
	r->rsp_conn = conn;
	r->rsp_date = now >= 0 ? date_at(ae, now) : NULL;
	r->rsp_addr = client;
	r->rsp_addr_len = clientlen;
	r->rsp_padding = an->an_padding;
}

/*
 * rc is the parser's result for req: HTTP_DONE or HTTP_ERROR.  The access
 * log records the request now, while its views into the input are valid:
 * the body bytes are those of the response, whatever delays it.
 */
void
answer_decide(struct answer_env *ae, int rc, const struct http_request *req,
    const char *client, size_t clientlen, int64_t now, struct answer *an)
{
	const struct hd_config	*cf = ae->ae_cf;
	struct http_response	 r;

	memset(an, 0, sizeof(*an));
	an->an_status = (uint16_t)req->req_status;
	an->an_head = req->req_method == HTTP_HEAD;
	an->an_minor = (uint8_t)req->req_minor;
	if (rc == HTTP_ERROR)
		an->an_error = 1;
	else {
		an->an_keep = req->req_keepalive && cf->cf_keepalive_timeout > 0;
		an->an_delay = cf->cf_delay;
		if (an->an_status == 200)
			an->an_padding = cf->cf_body_padding;
	}
	if (access_enabled()) {
		response_of(ae, an, HTTP_CONN_CLOSE, client, clientlen, -1, &r);
		access_log(client, req, an->an_status,
		    an->an_head ? 0 : http_body_size(&r), now);
	}
}

/*
 * Appends the response to the write buffer, which has room for it (the
 * caller flushes once answer_batch_full()).  A stop in progress
 * (draining) turns a persistent connection into a closing one.  Returns 1
 * when the connection closes after this response.
 */
int
answer_write(struct answer_env *ae, const struct answer *an, int draining,
    const char *client, size_t clientlen, int64_t now)
{
	struct http_response	 r;
	enum http_conn		 conn;

	if (!an->an_keep || draining)
		conn = HTTP_CONN_CLOSE;
	else
		conn = an->an_minor == 0 ? HTTP_CONN_KEEPALIVE :
		    HTTP_CONN_DEFAULT;
	response_of(ae, an, conn, client, clientlen, now, &r);
	ae->ae_wlen += http_response_write(ae->ae_wbuf + ae->ae_wlen, &r);
	return conn == HTTP_CONN_CLOSE;
}
