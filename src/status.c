/*
 * The status server's routes and rendering: /metrics, /status.json, the
 * live page and /healthz, from the shared counters (stats.h).  It runs
 * in a process of its own on the same connection engine as the async
 * workers (worker.c, conn.c), so that it answers while the greeting
 * workers are busy or blocked (a sync worker serves one client at a
 * time).  Every answer closes its connection.  Nothing here touches the
 * request counters: this process has no slot (stats_self is NULL).
 *
 * On [status] agent_listen it speaks HAProxy's agent-check protocol: one
 * line on connecting, then close.  "up ready N%" while workers serve
 * ("ready" undoes a drain the agent asked for before a restart), with
 * N = 100 - 100 * open connections / (max_connections * serving workers),
 * floored at 1; "drain" from the moment a stop starts drain_notice;
 * "down" when no worker serves.  Its answers are counted here, the only
 * place that gives them, and rendered with the shared counters.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hellod.h"
#include "answer.h"
#include "conn.h"
#include "http.h"
#include "stats.h"
#include "status.h"
#include "worker.h"

#define RENDER_FIRST	16384

#define TYPE_TEXT	"text/plain; charset=utf-8"
#define TYPE_METRICS	"text/plain; version=0.0.4; charset=utf-8"
#define TYPE_JSON	"application/json"
#define TYPE_HTML	"text/html; charset=utf-8"

struct status_server {
	struct stats_listener_info *sv_li;
	unsigned		 sv_nli;
	struct stats_snapshot	 sv_snap;
	char			*sv_render;	/* the last rendering */
	size_t			 sv_render_cap;
	char			 sv_small[32];	/* a short body */
	struct answer_body	 sv_body;	/* the answer being written */
	unsigned		 sv_max_conns;	/* per worker */
	uint64_t		 sv_agent[STATS_NAGENT];
};

static struct status_server	 sv;

/* Renders a fresh snapshot; NULL on failure.  The text stays valid until
 * the next rendering: the answer is written before another is decided. */
static const char *
render(int json, size_t *lenp)
{
	size_t	 n;
	char	*p;

	if (stats_snapshot(&sv.sv_snap) == -1)
		return NULL;
	memcpy(sv.sv_snap.sn_agent, sv.sv_agent, sizeof(sv.sv_agent));
	stats_listeners_poll(sv.sv_li, sv.sv_nli);
	/* One snapshot always renders to one length: twice at most. */
	for (;;) {
		n = json ? stats_render_json(&sv.sv_snap, sv.sv_li, sv.sv_nli,
		    sv.sv_render, sv.sv_render_cap) :
		    stats_render_metrics(&sv.sv_snap, sv.sv_li, sv.sv_nli,
		    sv.sv_render, sv.sv_render_cap);
		if (n < sv.sv_render_cap)
			break;
		/* Room for a few more workers or listeners next time. */
		if ((p = realloc(sv.sv_render, n + 1 + n / 4)) == NULL) {
			log_warn("realloc() failed");
			return NULL;
		}
		sv.sv_render = p;
		sv.sv_render_cap = n + 1 + n / 4;
	}
	*lenp = n;
	return sv.sv_render;
}

static int
path_is(const struct http_request *req, const char *path)
{
	size_t	 len = strlen(path);

	return req->req_path_len == len &&
	    memcmp(req->req_path, path, len) == 0;
}

static void
body(struct answer *an, int status, const char *type, const char *text,
    size_t len)
{
	sv.sv_body.ab_text = text;
	sv.sv_body.ab_len = len;
	sv.sv_body.ab_type = type;
	an->an_status = (uint16_t)status;
	an->an_body = &sv.sv_body;
}

/* The status service's decision (conn.h): a route, or the parser's
 * error; never counted, never logged as a greeting request. */
static void
status_decide(struct answer_env *ae, int rc, const struct http_request *req,
    const struct answer_peer *ap, int64_t now, struct answer *an)
{
	const char	*text, *why;
	size_t		 len;
	int		 json;

	(void)ae;
	(void)ap;
	(void)now;
	answer_error(req, an);
	an->an_nostore = 1;
	if (rc == HTTP_ERROR || req->req_status != 200)
		return;
	an->an_status = 200;
	if ((json = path_is(req, "/status.json")) || path_is(req, "/metrics")) {
		if ((text = render(json, &len)) == NULL)
			an->an_status = 503;
		else
			body(an, 200, json ? TYPE_JSON : TYPE_METRICS, text,
			    len);
	} else if (path_is(req, "/"))
		body(an, 200, TYPE_HTML, status_page_html, status_page_len);
	else if (path_is(req, "/healthz")) {
		json = stats_health(&why);
		snprintf(sv.sv_small, sizeof(sv.sv_small), "%s\n", why);
		body(an, json ? 200 : 503, TYPE_TEXT, sv.sv_small,
		    strlen(sv.sv_small));
	} else
		an->an_status = 404;
}

/* The agent-check line (conn.h's sv_banner) for an agent listener. */
static size_t
agent_banner(const struct listener *li, char *buf, size_t cap)
{
	const char	*why;
	uint64_t	 open = 0, room;
	unsigned	 i;
	int		 n, weight;

	if (!(li->li_opts & HD_LO_AGENT))
		return 0;
	if (stats_health(&why)) {
		if (stats_snapshot(&sv.sv_snap) == -1) {
			sv.sv_agent[STATS_AGENT_UP]++;
			n = snprintf(buf, cap, "up ready\n");
		} else {
			for (i = 0; i < STATS_NSTATES; i++)
				open += sv.sv_snap.sn_conns[i];
			room = (uint64_t)sv.sv_max_conns *
			    (sv.sv_snap.sn_serving > 0 ?
			    sv.sv_snap.sn_serving : 1);
			weight = open >= room ? 1 :
			    100 - (int)(100 * open / room);
			if (weight < 1)
				weight = 1;
			sv.sv_agent[STATS_AGENT_UP]++;
			n = snprintf(buf, cap, "up ready %d%%\n", weight);
		}
	} else if (strcmp(why, "draining") == 0) {
		sv.sv_agent[STATS_AGENT_DRAIN]++;
		n = snprintf(buf, cap, "drain\n");
	} else {
		sv.sv_agent[STATS_AGENT_DOWN]++;
		n = snprintf(buf, cap, "down\n");
	}
	return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

void
status_main(const struct status_ctx *ctx)
{
	static const struct service status = {
		.sv_decide = status_decide,
		.sv_max_conns = STATUS_MAX_CONNS,
		/* Its clients ask once and go: a connection that has not
		 * asked yet is spared for a new one, so that silent ones
		 * never keep /healthz from answering. */
		.sv_reclaim = CS_BIT(CS_READING) | CS_BIT(CS_IDLE),
		.sv_drain = CS_BIT(CS_READING) | CS_BIT(CS_IDLE),
		.sv_banner = agent_banner,
	};
	static struct listener	 li, agent;
	static struct hd_config	 cf;
	struct hd_socket	*socks;
	unsigned		 i;

	log_set_ident("status");
	stats_attach(-1);	/* never counted */
	sv.sv_nli = ctx->stc_nlisteners;
	if (sv.sv_nli > 0) {
		if ((sv.sv_li = calloc(sv.sv_nli, sizeof(*sv.sv_li))) == NULL)
			fatal("calloc() failed");
		memcpy(sv.sv_li, ctx->stc_listeners,
		    sv.sv_nli * sizeof(*sv.sv_li));
	}
	sv.sv_render_cap = RENDER_FIRST;
	if ((sv.sv_render = malloc(sv.sv_render_cap)) == NULL ||
	    (socks = calloc(ctx->stc_nfds + 1, sizeof(*socks))) == NULL)
		fatal("malloc() failed");

	/* Only what the status server uses of a configuration. */
	config_defaults(&cf);
	if (ctx->stc_header_timeout > 0)
		cf.cf_header_timeout = ctx->stc_header_timeout;
	if (ctx->stc_max_header_size > 0)
		cf.cf_max_header_size = ctx->stc_max_header_size;
	cf.cf_keepalive_timeout = 0;
	cf.cf_delay = 0;
	li.li_opts = HD_LO_STATUS;
	agent.li_opts = HD_LO_STATUS | HD_LO_AGENT;
	sv.sv_max_conns = ctx->stc_max_connections > 0 ?
	    ctx->stc_max_connections : 1;
	for (i = 0; i < ctx->stc_nfds; i++) {
		socks[i].so_fd = ctx->stc_fds[i];
		socks[i].so_listener = ctx->stc_opts != NULL &&
		    ctx->stc_opts[i] & HD_LO_AGENT ? &agent : &li;
	}
	log_info("status server on %u listener%s", ctx->stc_nfds,
	    ctx->stc_nfds == 1 ? "" : "s");
	worker_run(&cf, socks, ctx->stc_nfds, &status, &worker_readiness,
	    "status server");
}

/* In the status server's process: the context from the listeners and the
 * configuration, then the server. */
void
status_run(const struct listeners *ls, const struct hd_config *cf)
{
	static struct hd_socket			 socks[HD_MAX_LISTEN];
	static int				 fds[HD_MAX_LISTEN];
	static unsigned				 opts[HD_MAX_LISTEN];
	static struct stats_listener_info	 info[HD_MAX_SOCKETS];
	struct status_ctx			 ctx;
	const struct listener			*li;
	unsigned				 a, s, n, ninfo = 0;

	n = listeners_status_sockets(ls, socks);
	for (a = 0; a < n; a++) {
		fds[a] = socks[a].so_fd;
		opts[a] = socks[a].so_listener->li_opts;
	}
	for (a = 0; a < ls->ls_n; a++) {
		li = &ls->ls_list[a];
		if (li->li_opts & HD_LO_STATUS)
			continue;
		for (s = 0; s < ls->ls_nslots; s++)
			if (li->li_fd[s] != -1) {
				info[ninfo].sli_addr = li->li_addr.a_text;
				info[ninfo].sli_kind =
				    listen_opts_name(li->li_opts);
				info[ninfo].sli_socket = s;
				info[ninfo].sli_tls = li->li_tls + 1;
				info[ninfo++].sli_fd = li->li_fd[s];
			}
	}
	memset(&ctx, 0, sizeof(ctx));
	ctx.stc_fds = fds;
	ctx.stc_nfds = n;
	ctx.stc_listeners = info;
	ctx.stc_nlisteners = ninfo;
	ctx.stc_header_timeout = cf->cf_header_timeout;
	ctx.stc_max_header_size = cf->cf_max_header_size;
	ctx.stc_opts = opts;
	ctx.stc_max_connections = cf->cf_max_connections;
	status_main(&ctx);
}
