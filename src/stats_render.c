/*
 * Rendering a snapshot: the Prometheus text format (version 0.0.4) and
 * JSON.  Pure functions: no clock, no socket, no allocation; the same
 * snapshot always gives the same bytes.
 *
 * Metric names carry the hellod_ prefix and base units (seconds, bytes).
 * Every family has its HELP and TYPE lines and all its samples together.
 * Totals and per-worker series are separate families, so that a sum over
 * a family never counts a request twice.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "stats.h"

/* By enum tls_event: results, then failure reasons. */
const char *const stats_tls_names[STATS_NTLS] = {
	"full", "resumed", "protocol", "no_shared_cipher", "certificate",
	"timeout"
};

/* As Prometheus client libraries print these bounds. */
const char *const stats_bucket_text[STATS_NBUCKETS] = {
	"0.0001", "0.00025", "0.0005",
	"0.001", "0.0025", "0.005",
	"0.01", "0.025", "0.05",
	"0.1", "0.25", "0.5",
	"1", "2.5", "5", "10"
};

const char *const stats_state_names[STATS_NSTATES] = {
	[STATS_READING] = "reading",
	[STATS_WRITING] = "writing",
	[STATS_IDLE] = "idle",
	[STATS_DELAYED] = "delayed",
	[STATS_LINGERING] = "lingering",
};

const char *const stats_fault_names[STATS_NFAULTS] = {
	[STATS_FAULT_STATUS] = "status",
	[STATS_FAULT_CLOSE] = "close",
	[STATS_FAULT_RESET] = "reset",
	[STATS_FAULT_DELAY_BODY] = "delay_body",
};

const char *const stats_agent_names[STATS_NAGENT] = {
	[STATS_AGENT_UP] = "up",
	[STATS_AGENT_DRAIN] = "drain",
	[STATS_AGENT_DOWN] = "down",
};

const char *const stats_pause_names[STATS_NPAUSES] = {
	[STATS_PAUSE_EMFILE] = "emfile",
	[STATS_PAUSE_MAXCONN] = "max_connections",
};

const char *const stats_mode_names[STATS_NMODES] = {
	[STATS_MODE_ASYNC] = "async",
	[STATS_MODE_SYNC] = "sync",
	[STATS_MODE_URING] = "uring",
};

#define NS_PER_SEC	UINT64_C(1000000000)

struct out {
	char	*o_buf;
	size_t	 o_cap;
	size_t	 o_len;		/* may exceed o_cap: the length needed */
};

static void	 out_printf(struct out *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));

static void
out_printf(struct out *o, const char *fmt, ...)
{
	va_list	 ap;
	size_t	 room = o->o_len < o->o_cap ? o->o_cap - o->o_len : 0;
	int	 n;

	va_start(ap, fmt);
	n = vsnprintf(room > 0 ? o->o_buf + o->o_len : NULL, room, fmt, ap);
	va_end(ap);
	if (n > 0)
		o->o_len += (size_t)n;
}

static void
out_char(struct out *o, char c)
{
	if (o->o_len + 1 < o->o_cap) {
		o->o_buf[o->o_len] = c;
		o->o_buf[o->o_len + 1] = '\0';
	}
	o->o_len++;
}

static void
out_str(struct out *o, const char *s)
{
	while (*s != '\0')
		out_char(o, *s++);
}

/* A decimal number of seconds from nanoseconds, exact, with at most
 * `digits` decimals and no trailing zeros. */
static void
out_seconds(struct out *o, uint64_t ns, unsigned digits)
{
	char		 frac[10];
	uint64_t	 f = ns % NS_PER_SEC;
	unsigned	 i, n;

	out_printf(o, "%llu", (unsigned long long)(ns / NS_PER_SEC));
	for (i = 9; i > 0; i--) {
		frac[i - 1] = (char)('0' + f % 10);
		f /= 10;
	}
	for (n = digits < 9 ? digits : 9; n > 0 && frac[n - 1] == '0'; n--)
		;
	if (n == 0)
		return;
	out_char(o, '.');
	for (i = 0; i < n; i++)
		out_char(o, frac[i]);
}

/* A label value: backslash, double quote and line feed are escaped. */
static void
out_label(struct out *o, const char *s)
{
	for (; *s != '\0'; s++)
		switch (*s) {
		case '\\':
			out_str(o, "\\\\");
			break;
		case '"':
			out_str(o, "\\\"");
			break;
		case '\n':
			out_str(o, "\\n");
			break;
		default:
			out_char(o, *s);
		}
}

/* A JSON string's contents: quote, backslash and control characters
 * escaped; other bytes (UTF-8) as they are. */
static void
out_json_str(struct out *o, const char *s)
{
	out_char(o, '"');
	for (; *s != '\0'; s++)
		switch (*s) {
		case '"':
			out_str(o, "\\\"");
			break;
		case '\\':
			out_str(o, "\\\\");
			break;
		case '\n':
			out_str(o, "\\n");
			break;
		default:
			if ((unsigned char)*s < 0x20)
				out_printf(o, "\\u%04x", (unsigned char)*s);
			else
				out_char(o, *s);
		}
	out_char(o, '"');
}

static size_t
out_end(struct out *o)
{
	if (o->o_cap > 0)
		o->o_buf[o->o_len < o->o_cap ? o->o_len : o->o_cap - 1] = '\0';
	return o->o_len;
}

static const char *
mode_text(enum stats_mode mode)
{
	return (unsigned)mode < STATS_NMODES ? stats_mode_names[mode] : "async";
}

/* The histogram's count: its buckets hold every observation once. */
static uint64_t
observations(const struct stats_counters *c)
{
	uint64_t	 n = 0;
	unsigned	 i;

	for (i = 0; i <= STATS_NBUCKETS; i++)
		n += c->sc_buckets[i];
	return n;
}

static void
family(struct out *o, const char *name, const char *type, const char *help)
{
	out_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
sample_u64(struct out *o, const char *name, uint64_t v)
{
	out_printf(o, "%s %llu\n", name, (unsigned long long)v);
}

static void
metrics_process(struct out *o, const struct stats_snapshot *sn)
{
	family(o, "hellod_build_info", "gauge",
	    "Always 1; the labels give the version and the worker mode.");
	out_str(o, "hellod_build_info{version=\"");
	out_label(o, sn->sn_version);
	out_printf(o, "\",mode=\"%s\"} 1\n", mode_text(sn->sn_mode));

	family(o, "hellod_start_time_seconds", "gauge",
	    "Start time of the master since the Unix epoch, in seconds.");
	out_str(o, "hellod_start_time_seconds ");
	out_seconds(o, sn->sn_start_ns, 3);
	out_char(o, '\n');

	family(o, "hellod_config_generation", "gauge",
	    "Configuration generation: 1 at start, one more per reload.");
	sample_u64(o, "hellod_config_generation", sn->sn_generation);
	family(o, "hellod_workers", "gauge",
	    "Worker processes the configuration asks for.");
	sample_u64(o, "hellod_workers", sn->sn_workers);
	family(o, "hellod_workers_serving", "gauge",
	    "Worker processes of the current generation that serve.");
	sample_u64(o, "hellod_workers_serving", sn->sn_serving);
	family(o, "hellod_draining", "gauge",
	    "1 once the server is stopping, 0 otherwise.");
	sample_u64(o, "hellod_draining", sn->sn_draining ? 1 : 0);
	family(o, "hellod_worker_restarts_total", "counter",
	    "Worker processes respawned after an unexpected exit.");
	sample_u64(o, "hellod_worker_restarts_total", sn->sn_restarts);
	family(o, "hellod_reloads_total", "counter",
	    "Successful configuration reloads.");
	sample_u64(o, "hellod_reloads_total", sn->sn_reloads);
	family(o, "hellod_reload_failures_total", "counter",
	    "Configuration reloads refused; the running one was kept.");
	sample_u64(o, "hellod_reload_failures_total", sn->sn_reload_failures);
}

static void
metrics_http(struct out *o, const struct stats_snapshot *sn)
{
	const struct stats_counters *c = &sn->sn_total;
	uint64_t	 cum = 0;
	unsigned	 i;

	family(o, "hellod_http_requests_total", "counter",
	    "Requests answered, by status code.");
	for (i = 0; i < STATS_NCODES; i++)
		out_printf(o, "hellod_http_requests_total{code=\"%d\"} %llu\n",
		    stats_codes[i], (unsigned long long)c->sc_requests[i]);

	family(o, "hellod_http_response_bytes_total", "counter",
	    "Bytes of the responses answered, head and body.");
	sample_u64(o, "hellod_http_response_bytes_total", c->sc_bytes);

	family(o, "hellod_http_request_duration_seconds", "histogram",
	    "Time from the first byte of a request to its response.");
	for (i = 0; i < STATS_NBUCKETS; i++) {
		cum += c->sc_buckets[i];
		out_printf(o, "hellod_http_request_duration_seconds_bucket"
		    "{le=\"%s\"} %llu\n", stats_bucket_text[i],
		    (unsigned long long)cum);
	}
	cum += c->sc_buckets[STATS_NBUCKETS];
	out_printf(o, "hellod_http_request_duration_seconds_bucket"
	    "{le=\"+Inf\"} %llu\n", (unsigned long long)cum);
	out_str(o, "hellod_http_request_duration_seconds_sum ");
	out_seconds(o, c->sc_duration_ns, 9);
	out_char(o, '\n');
	sample_u64(o, "hellod_http_request_duration_seconds_count", cum);

	family(o, "hellod_connections_accepted_total", "counter",
	    "Connections accepted on the greeting listeners.");
	sample_u64(o, "hellod_connections_accepted_total", c->sc_accepted);

	family(o, "hellod_connections_reclaimed_total", "counter",
	    "Idle keep-alive connections closed to admit a new one at "
	    "max_connections.");
	sample_u64(o, "hellod_connections_reclaimed_total", c->sc_reclaimed);

	family(o, "hellod_accept_pauses_total", "counter",
	    "Times a worker stopped accepting for a while, by reason.");
	for (i = 0; i < STATS_NPAUSES; i++)
		out_printf(o, "hellod_accept_pauses_total{reason=\"%s\"} "
		    "%llu\n", stats_pause_names[i],
		    (unsigned long long)c->sc_pauses[i]);

	family(o, "hellod_faults_total", "counter",
	    "Faults served on request (query_knobs), by kind.");
	for (i = 0; i < STATS_NFAULTS; i++)
		out_printf(o, "hellod_faults_total{kind=\"%s\"} %llu\n",
		    stats_fault_names[i], (unsigned long long)c->sc_faults[i]);

	family(o, "hellod_agent_answers_total", "counter",
	    "HAProxy agent-check answers of the status server, by state.");
	for (i = 0; i < STATS_NAGENT; i++)
		out_printf(o, "hellod_agent_answers_total{state=\"%s\"} "
		    "%llu\n", stats_agent_names[i],
		    (unsigned long long)sn->sn_agent[i]);

	family(o, "hellod_connections", "gauge",
	    "Open connections, by state, over every worker.");
	for (i = 0; i < STATS_NSTATES; i++)
		out_printf(o, "hellod_connections{state=\"%s\"} %llu\n",
		    stats_state_names[i], (unsigned long long)sn->sn_conns[i]);
}

static void
metrics_workers(struct out *o, const struct stats_snapshot *sn)
{
	const struct stats_worker_row *r;
	unsigned	 i, k;

	family(o, "hellod_worker_http_requests_total", "counter",
	    "Requests answered by the worker of this index "
	    "(restarts at 0 when it is respawned or reloaded).");
	for (i = 0; i < sn->sn_nrows; i++) {
		r = &sn->sn_rows[i];
		out_printf(o, "hellod_worker_http_requests_total"
		    "{worker=\"%u\"} %llu\n", r->sw_worker,
		    (unsigned long long)r->sw_requests);
	}
	family(o, "hellod_worker_connections_accepted_total", "counter",
	    "Connections accepted by the worker of this index "
	    "(restarts at 0 when it is respawned or reloaded).");
	for (i = 0; i < sn->sn_nrows; i++) {
		r = &sn->sn_rows[i];
		out_printf(o, "hellod_worker_connections_accepted_total"
		    "{worker=\"%u\"} %llu\n", r->sw_worker,
		    (unsigned long long)r->sw_accepted);
	}
	family(o, "hellod_worker_connections", "gauge",
	    "Open connections of the worker of this index, by state.");
	for (i = 0; i < sn->sn_nrows; i++) {
		r = &sn->sn_rows[i];
		for (k = 0; k < STATS_NSTATES; k++)
			out_printf(o, "hellod_worker_connections{worker=\"%u\","
			    "state=\"%s\"} %llu\n", r->sw_worker,
			    stats_state_names[k],
			    (unsigned long long)r->sw_conns[k]);
	}
}

static void
metrics_listeners(struct out *o, const struct stats_listener_info *li,
    unsigned n)
{
	static const char *const names[2] = {
		"hellod_listen_queue_length", "hellod_listen_queue_limit"
	};
	static const char *const helps[2] = {
		"Connections waiting in a listening socket's accept queue.",
		"Accept queue limit (backlog) of a listening socket."
	};
	unsigned	 f, i;

	for (f = 0; f < 2; f++) {
		family(o, names[f], "gauge", helps[f]);
		for (i = 0; i < n; i++) {
			if (!li[i].sli_known)
				continue;
			out_printf(o, "%s{listener=\"", names[f]);
			out_label(o, li[i].sli_addr != NULL ? li[i].sli_addr :
			    "");
			out_printf(o, "\",socket=\"%u\"} %u\n",
			    li[i].sli_socket,
			    f == 0 ? li[i].sli_qlen : li[i].sli_qlimit);
		}
	}
}

/* Each TLS listener once (its first socket), in the configuration's
 * order: the address of TLS listener t, or NULL. */
static const char *
tls_listener(const struct stats_listener_info *li, unsigned n, int t)
{
	unsigned	 i;

	for (i = 0; i < n; i++)
		if (li[i].sli_tls == t + 1)
			return li[i].sli_addr != NULL ? li[i].sli_addr : "";
	return NULL;
}

static void
metrics_tls(struct out *o, const struct stats_snapshot *sn,
    const struct stats_listener_info *li, unsigned n)
{
	const struct stats_counters *c = &sn->sn_total;
	const char	*addr;
	unsigned	 f, e;
	int		 t;

	for (f = 0; f < 2; f++) {
		family(o, f == 0 ? "hellod_tls_handshakes_total" :
		    "hellod_tls_handshake_failures_total", "counter",
		    f == 0 ? "TLS handshakes done, full or resumed with a "
		    "ticket, by TLS listener." : "TLS handshakes that failed, "
		    "by TLS listener and reason.");
		for (t = 0; t < STATS_MAX_TLS; t++) {
			if ((addr = tls_listener(li, n, t)) == NULL)
				continue;
			for (e = f == 0 ? 0 : 2; e < (f == 0 ? 2u : STATS_NTLS);
			    e++) {
				out_printf(o, "%s{listener=\"", f == 0 ?
				    "hellod_tls_handshakes_total" :
				    "hellod_tls_handshake_failures_total");
				out_label(o, addr);
				out_printf(o, "\",%s=\"%s\"} %llu\n", f == 0 ?
				    "result" : "reason", stats_tls_names[e],
				    (unsigned long long)c->sc_tls[t][e]);
			}
		}
	}
}

size_t
stats_render_metrics(const struct stats_snapshot *sn,
    const struct stats_listener_info *li, unsigned nli, char *buf, size_t cap)
{
	struct out	 o = { buf, cap, 0 };

	metrics_process(&o, sn);
	metrics_http(&o, sn);
	metrics_workers(&o, sn);
	metrics_listeners(&o, li, nli);
	metrics_tls(&o, sn, li, nli);
	return out_end(&o);
}

/* "],"tls":[{"listener":ADDR,"full":N,...}, ...]" */
static void
json_tls(struct out *o, const struct stats_snapshot *sn,
    const struct stats_listener_info *li, unsigned n)
{
	const char	*addr;
	unsigned	 e, k = 0;
	int		 t;

	out_str(o, "],\"tls\":[");
	for (t = 0; t < STATS_MAX_TLS; t++) {
		if ((addr = tls_listener(li, n, t)) == NULL)
			continue;
		out_str(o, k++ > 0 ? ",{\"listener\":" : "{\"listener\":");
		out_json_str(o, addr);
		for (e = 0; e < STATS_NTLS; e++)
			out_printf(o, ",\"%s\":%llu", stats_tls_names[e],
			    (unsigned long long)sn->sn_total.sc_tls[t][e]);
		out_char(o, '}');
	}
	out_char(o, ']');
}

static void
json_states(struct out *o, const uint64_t *conns)
{
	unsigned	 k;

	out_char(o, '{');
	for (k = 0; k < STATS_NSTATES; k++)
		out_printf(o, "%s\"%s\":%llu", k > 0 ? "," : "",
		    stats_state_names[k], (unsigned long long)conns[k]);
	out_char(o, '}');
}

static void
json_totals(struct out *o, const struct stats_snapshot *sn)
{
	const struct stats_counters *c = &sn->sn_total;
	uint64_t	 cum = 0;
	unsigned	 i;

	out_printf(o, "\"totals\":{\"requests\":%llu,\"requests_by_code\":{",
	    (unsigned long long)stats_requests(c));
	for (i = 0; i < STATS_NCODES; i++)
		out_printf(o, "%s\"%d\":%llu", i > 0 ? "," : "", stats_codes[i],
		    (unsigned long long)c->sc_requests[i]);
	out_printf(o, "},\"response_bytes\":%llu,\"connections_accepted\":%llu,"
	    "\"connections_reclaimed\":%llu,\"accept_pauses\":{",
	    (unsigned long long)c->sc_bytes, (unsigned long long)c->sc_accepted,
	    (unsigned long long)c->sc_reclaimed);
	for (i = 0; i < STATS_NPAUSES; i++)
		out_printf(o, "%s\"%s\":%llu", i > 0 ? "," : "",
		    stats_pause_names[i], (unsigned long long)c->sc_pauses[i]);
	out_str(o, "},\"faults\":{");
	for (i = 0; i < STATS_NFAULTS; i++)
		out_printf(o, "%s\"%s\":%llu", i > 0 ? "," : "",
		    stats_fault_names[i], (unsigned long long)c->sc_faults[i]);
	out_str(o, "},\"agent\":{");
	for (i = 0; i < STATS_NAGENT; i++)
		out_printf(o, "%s\"%s\":%llu", i > 0 ? "," : "",
		    stats_agent_names[i], (unsigned long long)sn->sn_agent[i]);
	out_str(o, "},\"connections\":");
	json_states(o, sn->sn_conns);
	out_printf(o, ",\"request_duration_seconds\":{\"count\":%llu,"
	    "\"sum\":", (unsigned long long)observations(c));
	out_seconds(o, c->sc_duration_ns, 9);
	out_str(o, ",\"buckets\":{");
	for (i = 0; i < STATS_NBUCKETS; i++) {
		cum += c->sc_buckets[i];
		out_printf(o, "\"%s\":%llu,", stats_bucket_text[i],
		    (unsigned long long)cum);
	}
	cum += c->sc_buckets[STATS_NBUCKETS];
	out_printf(o, "\"+Inf\":%llu}}}", (unsigned long long)cum);
}

size_t
stats_render_json(const struct stats_snapshot *sn,
    const struct stats_listener_info *li, unsigned nli, char *buf, size_t cap)
{
	struct out	 o = { buf, cap, 0 };
	const struct stats_worker_row *r;
	unsigned	 i;

	out_str(&o, "{\"version\":");
	out_json_str(&o, sn->sn_version);
	out_printf(&o, ",\"mode\":\"%s\",\"generation\":%u,\"draining\":%s,"
	    "\"start_time_seconds\":", mode_text(sn->sn_mode),
	    sn->sn_generation, sn->sn_draining ? "true" : "false");
	out_seconds(&o, sn->sn_start_ns, 3);
	out_str(&o, ",\"uptime_seconds\":");
	out_seconds(&o, sn->sn_uptime_ns, 3);
	out_printf(&o, ",\"workers_configured\":%u,\"workers_serving\":%u,"
	    "\"worker_restarts\":%llu,\"reloads\":%llu,"
	    "\"reload_failures\":%llu,", sn->sn_workers, sn->sn_serving,
	    (unsigned long long)sn->sn_restarts,
	    (unsigned long long)sn->sn_reloads,
	    (unsigned long long)sn->sn_reload_failures);
	json_totals(&o, sn);

	out_str(&o, ",\"workers\":[");
	for (i = 0; i < sn->sn_nrows; i++) {
		r = &sn->sn_rows[i];
		out_printf(&o, "%s{\"worker\":%u,\"pid\":%ld,\"requests\":%llu,"
		    "\"connections_accepted\":%llu,\"connections\":",
		    i > 0 ? "," : "", r->sw_worker, (long)r->sw_pid,
		    (unsigned long long)r->sw_requests,
		    (unsigned long long)r->sw_accepted);
		json_states(&o, r->sw_conns);
		out_char(&o, '}');
	}
	out_str(&o, "],\"listeners\":[");
	for (i = 0; i < nli; i++) {
		out_str(&o, i > 0 ? ",{\"listener\":" : "{\"listener\":");
		out_json_str(&o, li[i].sli_addr != NULL ? li[i].sli_addr : "");
		out_printf(&o, ",\"socket\":%u,\"kind\":", li[i].sli_socket);
		if (li[i].sli_kind != NULL)
			out_json_str(&o, li[i].sli_kind);
		else
			out_str(&o, "null");
		out_char(&o, ',');
		if (li[i].sli_known)
			out_printf(&o, "\"queue_length\":%u,"
			    "\"queue_limit\":%u}", li[i].sli_qlen,
			    li[i].sli_qlimit);
		else
			out_str(&o, "\"queue_length\":null,"
			    "\"queue_limit\":null}");
	}
	json_tls(&o, sn, li, nli);
	out_str(&o, "}\n");
	return out_end(&o);
}
