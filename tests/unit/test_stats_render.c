/*
 * Unit tests for rendering a snapshot (src/stats_render.c): the exact
 * Prometheus text of a known snapshot, its structure, label escaping,
 * truncation, and JSON that parses.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "stats.h"

#define NS		UINT64_C(1000000000)

static struct stats_snapshot	 snap;

/* A snapshot with a bit of everything; fixed, so output is exact. */
static void
known_snapshot(struct stats_snapshot *sn)
{
	struct stats_counters	*c = &sn->sn_total;
	struct stats_worker_row	*w;

	memset(sn, 0, sizeof(*sn));
	sn->sn_start_ns = UINT64_C(1700000000123456789);
	sn->sn_uptime_ns = 61 * NS + 500000000;
	sn->sn_generation = 3;
	sn->sn_mode = STATS_MODE_ASYNC;
	sn->sn_workers = 2;
	sn->sn_serving = 2;
	sn->sn_restarts = 1;
	sn->sn_reloads = 2;
	sn->sn_reload_failures = 1;
	snprintf(sn->sn_version, sizeof(sn->sn_version), "1.0.0");
	c->sc_requests[stats_code_index(200)] = 10;
	c->sc_requests[stats_code_index(405)] = 3;
	c->sc_bytes = 12345;
	c->sc_accepted = 7;
	c->sc_pauses[STATS_PAUSE_EMFILE] = 1;
	c->sc_pauses[STATS_PAUSE_MAXCONN] = 2;
	c->sc_buckets[0] = 5;
	c->sc_buckets[3] = 4;
	c->sc_buckets[STATS_NBUCKETS] = 4;
	c->sc_duration_ns = 41 * NS + 250000;
	c->sc_tls[0][0] = 20;		/* full */
	c->sc_tls[0][1] = 5;		/* resumed */
	c->sc_tls[0][2] = 2;		/* protocol */
	c->sc_tls[0][5] = 1;		/* timeout */
	sn->sn_conns[STATS_READING] = 1;
	sn->sn_conns[STATS_IDLE] = 2;
	sn->sn_conns[STATS_LINGERING] = 1;
	sn->sn_nrows = 2;
	w = &sn->sn_rows[0];
	w->sw_worker = 0;
	w->sw_pid = 100;
	w->sw_requests = 6;
	w->sw_accepted = 4;
	w->sw_conns[STATS_READING] = 1;
	w->sw_conns[STATS_IDLE] = 1;
	w = &sn->sn_rows[1];
	w->sw_worker = 1;
	w->sw_pid = 101;
	w->sw_requests = 7;
	w->sw_accepted = 3;
	w->sw_conns[STATS_IDLE] = 1;
	w->sw_conns[STATS_LINGERING] = 1;
}

static const struct stats_listener_info known_listeners[] = {
	{ "127.0.0.1:8080", 0, -1, 1, 3, 4096, "plain", 0 },
	{ "127.0.0.1:8080", 1, -1, 0, 0, 0, "plain", 0 },
	{ "[::1]:8080", 0, -1, 1, 0, 128, "proxy", 0 },
	{ "127.0.0.1:8443", 0, -1, 1, 0, 64, "tls", 1 },
	{ "127.0.0.1:8443", 1, -1, 1, 0, 64, "tls", 1 },
};
#define NKNOWN	(sizeof(known_listeners) / sizeof(known_listeners[0]))

static const char known_metrics[] =
"# HELP hellod_build_info Always 1; the labels give the version and the worker mode.\n"
"# TYPE hellod_build_info gauge\n"
"hellod_build_info{version=\"1.0.0\",mode=\"async\"} 1\n"
"# HELP hellod_start_time_seconds Start time of the master since the Unix epoch, in seconds.\n"
"# TYPE hellod_start_time_seconds gauge\n"
"hellod_start_time_seconds 1700000000.123\n"
"# HELP hellod_config_generation Configuration generation: 1 at start, one more per reload.\n"
"# TYPE hellod_config_generation gauge\n"
"hellod_config_generation 3\n"
"# HELP hellod_workers Worker processes the configuration asks for.\n"
"# TYPE hellod_workers gauge\n"
"hellod_workers 2\n"
"# HELP hellod_workers_serving Worker processes of the current generation that serve.\n"
"# TYPE hellod_workers_serving gauge\n"
"hellod_workers_serving 2\n"
"# HELP hellod_draining 1 once the server is stopping, 0 otherwise.\n"
"# TYPE hellod_draining gauge\n"
"hellod_draining 0\n"
"# HELP hellod_worker_restarts_total Worker processes respawned after an unexpected exit.\n"
"# TYPE hellod_worker_restarts_total counter\n"
"hellod_worker_restarts_total 1\n"
"# HELP hellod_reloads_total Successful configuration reloads.\n"
"# TYPE hellod_reloads_total counter\n"
"hellod_reloads_total 2\n"
"# HELP hellod_reload_failures_total Configuration reloads refused; the running one was kept.\n"
"# TYPE hellod_reload_failures_total counter\n"
"hellod_reload_failures_total 1\n"
"# HELP hellod_http_requests_total Requests answered, by status code.\n"
"# TYPE hellod_http_requests_total counter\n"
"hellod_http_requests_total{code=\"200\"} 10\n"
"hellod_http_requests_total{code=\"400\"} 0\n"
"hellod_http_requests_total{code=\"405\"} 3\n"
"hellod_http_requests_total{code=\"414\"} 0\n"
"hellod_http_requests_total{code=\"431\"} 0\n"
"hellod_http_requests_total{code=\"500\"} 0\n"
"hellod_http_requests_total{code=\"505\"} 0\n"
"# HELP hellod_http_response_bytes_total Bytes of the responses answered, head and body.\n"
"# TYPE hellod_http_response_bytes_total counter\n"
"hellod_http_response_bytes_total 12345\n"
"# HELP hellod_http_request_duration_seconds Time from the first byte of a request to its response.\n"
"# TYPE hellod_http_request_duration_seconds histogram\n"
"hellod_http_request_duration_seconds_bucket{le=\"0.0001\"} 5\n"
"hellod_http_request_duration_seconds_bucket{le=\"0.00025\"} 5\n"
"hellod_http_request_duration_seconds_bucket{le=\"0.0005\"} 5\n"
"hellod_http_request_duration_seconds_bucket{le=\"0.001\"} 9\n"
"hellod_http_request_duration_seconds_bucket{le=\"0.0025\"} 9\n"
"hellod_http_request_duration_seconds_bucket{le=\"0.005\"} 9\n"
"hellod_http_request_duration_seconds_bucket{le=\"0.01\"} 9\n"
"hellod_http_request_duration_seconds_bucket{le=\"0.025\"} 9\n"
"hellod_http_request_duration_seconds_bucket{le=\"0.05\"} 9\n"
"hellod_http_request_duration_seconds_bucket{le=\"0.1\"} 9\n"
"hellod_http_request_duration_seconds_bucket{le=\"0.25\"} 9\n"
"hellod_http_request_duration_seconds_bucket{le=\"0.5\"} 9\n"
"hellod_http_request_duration_seconds_bucket{le=\"1\"} 9\n"
"hellod_http_request_duration_seconds_bucket{le=\"2.5\"} 9\n"
"hellod_http_request_duration_seconds_bucket{le=\"5\"} 9\n"
"hellod_http_request_duration_seconds_bucket{le=\"10\"} 9\n"
"hellod_http_request_duration_seconds_bucket{le=\"+Inf\"} 13\n"
"hellod_http_request_duration_seconds_sum 41.00025\n"
"hellod_http_request_duration_seconds_count 13\n"
"# HELP hellod_connections_accepted_total Connections accepted on the greeting listeners.\n"
"# TYPE hellod_connections_accepted_total counter\n"
"hellod_connections_accepted_total 7\n"
"# HELP hellod_connections_reclaimed_total Idle keep-alive connections closed to admit a new one at max_connections.\n"
"# TYPE hellod_connections_reclaimed_total counter\n"
"hellod_connections_reclaimed_total 0\n"
"# HELP hellod_accept_pauses_total Times a worker stopped accepting for a while, by reason.\n"
"# TYPE hellod_accept_pauses_total counter\n"
"hellod_accept_pauses_total{reason=\"emfile\"} 1\n"
"hellod_accept_pauses_total{reason=\"max_connections\"} 2\n"
"# HELP hellod_faults_total Faults served on request (query_knobs), by kind.\n"
"# TYPE hellod_faults_total counter\n"
"hellod_faults_total{kind=\"status\"} 0\n"
"hellod_faults_total{kind=\"close\"} 0\n"
"hellod_faults_total{kind=\"reset\"} 0\n"
"hellod_faults_total{kind=\"delay_body\"} 0\n"
"# HELP hellod_agent_answers_total HAProxy agent-check answers of the status server, by state.\n"
"# TYPE hellod_agent_answers_total counter\n"
"hellod_agent_answers_total{state=\"up\"} 0\n"
"hellod_agent_answers_total{state=\"drain\"} 0\n"
"hellod_agent_answers_total{state=\"down\"} 0\n"
"# HELP hellod_connections Open connections, by state, over every worker.\n"
"# TYPE hellod_connections gauge\n"
"hellod_connections{state=\"reading\"} 1\n"
"hellod_connections{state=\"writing\"} 0\n"
"hellod_connections{state=\"idle\"} 2\n"
"hellod_connections{state=\"delayed\"} 0\n"
"hellod_connections{state=\"lingering\"} 1\n"
"# HELP hellod_worker_http_requests_total Requests answered by the worker of this index (restarts at 0 when it is respawned or reloaded).\n"
"# TYPE hellod_worker_http_requests_total counter\n"
"hellod_worker_http_requests_total{worker=\"0\"} 6\n"
"hellod_worker_http_requests_total{worker=\"1\"} 7\n"
"# HELP hellod_worker_connections_accepted_total Connections accepted by the worker of this index (restarts at 0 when it is respawned or reloaded).\n"
"# TYPE hellod_worker_connections_accepted_total counter\n"
"hellod_worker_connections_accepted_total{worker=\"0\"} 4\n"
"hellod_worker_connections_accepted_total{worker=\"1\"} 3\n"
"# HELP hellod_worker_connections Open connections of the worker of this index, by state.\n"
"# TYPE hellod_worker_connections gauge\n"
"hellod_worker_connections{worker=\"0\",state=\"reading\"} 1\n"
"hellod_worker_connections{worker=\"0\",state=\"writing\"} 0\n"
"hellod_worker_connections{worker=\"0\",state=\"idle\"} 1\n"
"hellod_worker_connections{worker=\"0\",state=\"delayed\"} 0\n"
"hellod_worker_connections{worker=\"0\",state=\"lingering\"} 0\n"
"hellod_worker_connections{worker=\"1\",state=\"reading\"} 0\n"
"hellod_worker_connections{worker=\"1\",state=\"writing\"} 0\n"
"hellod_worker_connections{worker=\"1\",state=\"idle\"} 1\n"
"hellod_worker_connections{worker=\"1\",state=\"delayed\"} 0\n"
"hellod_worker_connections{worker=\"1\",state=\"lingering\"} 1\n"
"# HELP hellod_listen_queue_length Connections waiting in a listening socket's accept queue.\n"
"# TYPE hellod_listen_queue_length gauge\n"
"hellod_listen_queue_length{listener=\"127.0.0.1:8080\",socket=\"0\"} 3\n"
"hellod_listen_queue_length{listener=\"[::1]:8080\",socket=\"0\"} 0\n"
"hellod_listen_queue_length{listener=\"127.0.0.1:8443\",socket=\"0\"} 0\n"
"hellod_listen_queue_length{listener=\"127.0.0.1:8443\",socket=\"1\"} 0\n"
"# HELP hellod_listen_queue_limit Accept queue limit (backlog) of a listening socket.\n"
"# TYPE hellod_listen_queue_limit gauge\n"
"hellod_listen_queue_limit{listener=\"127.0.0.1:8080\",socket=\"0\"} 4096\n"
"hellod_listen_queue_limit{listener=\"[::1]:8080\",socket=\"0\"} 128\n"
"hellod_listen_queue_limit{listener=\"127.0.0.1:8443\",socket=\"0\"} 64\n"
"hellod_listen_queue_limit{listener=\"127.0.0.1:8443\",socket=\"1\"} 64\n"
"# HELP hellod_tls_handshakes_total TLS handshakes done, full or resumed with a ticket, by TLS listener.\n"
"# TYPE hellod_tls_handshakes_total counter\n"
"hellod_tls_handshakes_total{listener=\"127.0.0.1:8443\",result=\"full\"} 20\n"
"hellod_tls_handshakes_total{listener=\"127.0.0.1:8443\",result=\"resumed\"} 5\n"
"# HELP hellod_tls_handshake_failures_total TLS handshakes that failed, by TLS listener and reason.\n"
"# TYPE hellod_tls_handshake_failures_total counter\n"
"hellod_tls_handshake_failures_total{listener=\"127.0.0.1:8443\",reason=\"protocol\"} 2\n"
"hellod_tls_handshake_failures_total{listener=\"127.0.0.1:8443\",reason=\"no_shared_cipher\"} 0\n"
"hellod_tls_handshake_failures_total{listener=\"127.0.0.1:8443\",reason=\"certificate\"} 0\n"
"hellod_tls_handshake_failures_total{listener=\"127.0.0.1:8443\",reason=\"timeout\"} 1\n";

static void
test_render_metrics_exact(void **state)
{
	static char	 buf[65536];
	size_t		 n;

	(void)state;
	known_snapshot(&snap);
	n = stats_render_metrics(&snap, known_listeners, NKNOWN, buf,
	    sizeof(buf));
	assert_int_equal(n, strlen(buf));
	assert_string_equal(buf, known_metrics);
}

/* Every sample follows its family's HELP and TYPE; no family twice. */
static void
test_render_metrics_structure(void **state)
{
	static char	 buf[65536];
	char		 families[64][96], cur[96], name[96];
	char		*line, *save, *p;
	unsigned	 nfam = 0, i;
	size_t		 len;

	(void)state;
	known_snapshot(&snap);
	stats_render_metrics(&snap, known_listeners, NKNOWN, buf, sizeof(buf));
	assert_int_equal(buf[strlen(buf) - 1], '\n');
	cur[0] = '\0';
	for (line = strtok_r(buf, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, "# HELP ", 7) == 0) {
			assert_true(sscanf(line + 7, "%95s", name) == 1);
			for (i = 0; i < nfam; i++)
				assert_string_not_equal(families[i], name);
			assert_true(nfam < 64);
			snprintf(families[nfam++], sizeof(families[0]), "%s",
			    name);
			snprintf(cur, sizeof(cur), "%s", name);
			continue;
		}
		if (strncmp(line, "# TYPE ", 7) == 0) {
			len = strlen(cur);
			assert_true(len > 0);
			assert_memory_equal(line + 7, cur, len);
			continue;
		}
		assert_true(strncmp(line, "hellod_", 7) == 0);
		len = strlen(cur);
		assert_memory_equal(line, cur, len);
		p = line + len;
		if (strncmp(p, "_bucket", 7) == 0)
			p += 7;
		else if (strncmp(p, "_sum", 4) == 0)
			p += 4;
		else if (strncmp(p, "_count", 6) == 0)
			p += 6;
		assert_true(*p == ' ' || *p == '{');
	}
	assert_int_equal(nfam, 25);
}

static void
test_render_escaping(void **state)
{
	static char	 buf[65536];
	struct stats_listener_info li = { "a\"b\\c\nd", 7, -1, 1, 1, 2, NULL,
	    0 };

	(void)state;
	known_snapshot(&snap);
	snprintf(snap.sn_version, sizeof(snap.sn_version), "1\"\\\n");
	stats_render_metrics(&snap, &li, 1, buf, sizeof(buf));
	assert_non_null(strstr(buf, "\nhellod_listen_queue_length{listener="
	    "\"a\\\"b\\\\c\\nd\",socket=\"7\"} 1\n"));
	assert_non_null(strstr(buf, "\nhellod_build_info{version="
	    "\"1\\\"\\\\\\n\",mode=\"async\"} 1\n"));
	stats_render_json(&snap, &li, 1, buf, sizeof(buf));
	assert_non_null(strstr(buf, "{\"listener\":\"a\\\"b\\\\c\\nd\","
	    "\"socket\":7,\"kind\":null,"));
	assert_non_null(strstr(buf, "\"version\":\"1\\\"\\\\\\n\""));
}

/* A buffer too small: the length needed, a truncated NUL-terminated
 * text, and the same text once the buffer is big enough. */
static void
test_render_truncated(void **state)
{
	static char	 full[65536], part[65536];
	size_t		 n, m, cap;

	(void)state;
	known_snapshot(&snap);
	n = stats_render_metrics(&snap, known_listeners, NKNOWN, full,
	    sizeof(full));
	for (cap = 1; cap <= n + 1; cap += cap < 300 ? 1 : 97) {
		memset(part, 'x', sizeof(part));
		m = stats_render_metrics(&snap, known_listeners, NKNOWN, part,
		    cap);
		assert_int_equal(m, n);
		assert_int_equal(part[cap], 'x');
		assert_true(strlen(part) < cap);
		assert_memory_equal(part, full, strlen(part));
	}
	m = stats_render_metrics(&snap, known_listeners, NKNOWN, part, n + 1);
	assert_string_equal(part, full);
	/* No buffer at all: only the length. */
	m = stats_render_metrics(&snap, NULL, 0, NULL, 0);
	assert_int_equal(stats_render_metrics(&snap, NULL, 0, part,
	    sizeof(part)), m);
	assert_int_equal(strlen(part), m);
	n = stats_render_json(&snap, known_listeners, NKNOWN, full,
	    sizeof(full));
	m = stats_render_json(&snap, known_listeners, NKNOWN, part, 10);
	assert_int_equal(m, n);
	assert_int_equal(strlen(part), 9);
}

/* A strict JSON syntax check (RFC 8259), enough for the tests. */
static const char *json_value(const char *);

static const char *
json_ws(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	return p;
}

static const char *
json_string(const char *p)
{
	if (*p++ != '"')
		return NULL;
	for (; *p != '"'; p++) {
		if ((unsigned char)*p < 0x20)
			return NULL;
		if (*p == '\\') {
			p++;
			if (*p == 'u') {
				if (strspn(p + 1, "0123456789abcdefABCDEF") < 4)
					return NULL;
				p += 4;
			} else if (strchr("\"\\/bfnrt", *p) == NULL || *p == 0)
				return NULL;
		}
	}
	return p + 1;
}

static const char *
json_number(const char *p)
{
	if (*p == '-')
		p++;
	if (*p == '0')
		p++;
	else if (*p >= '1' && *p <= '9')
		p += strspn(p, "0123456789");
	else
		return NULL;
	if (*p == '.') {
		if (strspn(p + 1, "0123456789") == 0)
			return NULL;
		p += 1 + strspn(p + 1, "0123456789");
	}
	if (*p == 'e' || *p == 'E') {
		p++;
		if (*p == '+' || *p == '-')
			p++;
		if (strspn(p, "0123456789") == 0)
			return NULL;
		p += strspn(p, "0123456789");
	}
	return p;
}

static const char *
json_value(const char *p)
{
	p = json_ws(p);
	if (*p == '{' || *p == '[') {
		char	 close = *p == '{' ? '}' : ']';
		int	 obj = *p == '{';

		p = json_ws(p + 1);
		if (*p == close)
			return p + 1;
		for (;;) {
			if (obj) {
				if ((p = json_string(json_ws(p))) == NULL)
					return NULL;
				p = json_ws(p);
				if (*p++ != ':')
					return NULL;
			}
			if ((p = json_value(p)) == NULL)
				return NULL;
			p = json_ws(p);
			if (*p == close)
				return p + 1;
			if (*p++ != ',')
				return NULL;
		}
	}
	if (*p == '"')
		return json_string(p);
	if (strncmp(p, "true", 4) == 0)
		return p + 4;
	if (strncmp(p, "false", 5) == 0)
		return p + 5;
	if (strncmp(p, "null", 4) == 0)
		return p + 4;
	return json_number(p);
}

static int
json_valid(const char *s)
{
	const char	*end = json_value(s);

	return end != NULL && *json_ws(end) == '\0';
}

static void
test_json_validator(void **state)
{
	(void)state;
	assert_true(json_valid("{\"a\":[1,-2.5e3,true,null,\"x\\u00e9\"]}"));
	assert_true(json_valid(" [] "));
	assert_false(json_valid("{\"a\":1,}"));
	assert_false(json_valid("{\"a\" 1}"));
	assert_false(json_valid("[01]"));
	assert_false(json_valid("[1."));
	assert_false(json_valid("\"a\nb\""));
	assert_false(json_valid("{} x"));
}

#define JSON_HEAD							\
	"{\"version\":\"1.0.0\",\"mode\":\"async\",\"generation\":3,"	\
	"\"draining\":false,\"start_time_seconds\":1700000000.123,"	\
	"\"uptime_seconds\":61.5,\"workers_configured\":2,"		\
	"\"workers_serving\":2,\"worker_restarts\":1,\"reloads\":2,"	\
	"\"reload_failures\":1,\"totals\":{"

static void
test_render_json(void **state)
{
	static char	 buf[65536];
	size_t		 n;

	(void)state;
	known_snapshot(&snap);
	n = stats_render_json(&snap, known_listeners, NKNOWN, buf,
	    sizeof(buf));
	assert_int_equal(n, strlen(buf));
	assert_true(json_valid(buf));
	assert_memory_equal(buf, JSON_HEAD, sizeof(JSON_HEAD) - 1);
	assert_non_null(strstr(buf, "\"totals\":{\"requests\":13,"
	    "\"requests_by_code\":{\"200\":10,\"400\":0,\"405\":3,"));
	assert_non_null(strstr(buf, "\"response_bytes\":12345,"
	    "\"connections_accepted\":7,\"connections_reclaimed\":0,"
	    "\"accept_pauses\":{\"emfile\":1,"
	    "\"max_connections\":2},\"faults\":{\"status\":0,\"close\":0,"
	    "\"reset\":0,\"delay_body\":0},\"agent\":{\"up\":0,\"drain\":0,"
	    "\"down\":0},\"connections\":{\"reading\":1,"
	    "\"writing\":0,\"idle\":2,\"delayed\":0,\"lingering\":1},"));
	assert_non_null(strstr(buf, "\"request_duration_seconds\":{"
	    "\"count\":13,\"sum\":41.00025,\"buckets\":{\"0.0001\":5,"));
	assert_non_null(strstr(buf, "\"10\":9,\"+Inf\":13}}}"));
	assert_non_null(strstr(buf, "\"workers\":[{\"worker\":0,\"pid\":100,"
	    "\"requests\":6,\"connections_accepted\":4,\"connections\":{"
	    "\"reading\":1,\"writing\":0,\"idle\":1,\"delayed\":0,"
	    "\"lingering\":0}},{\"worker\":1,\"pid\":101,"));
	assert_non_null(strstr(buf, "\"listeners\":[{\"listener\":"
	    "\"127.0.0.1:8080\",\"socket\":0,\"kind\":\"plain\","
	    "\"queue_length\":3,\"queue_limit\":4096},{\"listener\":"
	    "\"127.0.0.1:8080\",\"socket\":1,\"kind\":\"plain\","
	    "\"queue_length\":null,\"queue_limit\":null},{\"listener\":"
	    "\"[::1]:8080\",\"socket\":0,\"kind\":\"proxy\","));
	assert_non_null(strstr(buf, "\"tls\":[{\"listener\":\"127.0.0.1:8443\","
	    "\"full\":20,\"resumed\":5,\"protocol\":2,\"no_shared_cipher\":0,"
	    "\"certificate\":0,\"timeout\":1}]}\n"));
	assert_string_equal(buf + n - 3, "]}\n");

	/* Nothing at all: still an object with empty arrays. */
	memset(&snap, 0, sizeof(snap));
	stats_render_json(&snap, NULL, 0, buf, sizeof(buf));
	assert_true(json_valid(buf));
	assert_non_null(strstr(buf, "\"workers\":[],\"listeners\":[],"
	    "\"tls\":[]}"));
	assert_non_null(strstr(buf, "\"uptime_seconds\":0,"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_render_metrics_exact),
		cmocka_unit_test(test_render_metrics_structure),
		cmocka_unit_test(test_render_escaping),
		cmocka_unit_test(test_render_truncated),
		cmocka_unit_test(test_json_validator),
		cmocka_unit_test(test_render_json),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
