/*
 * The status server (src/status.c) on a loopback listener, in a child
 * process as the master would start it, over a shared-memory region this
 * test fills as a master would: routes, methods, parser errors, health
 * while serving and draining, the head timeout, the connection limit,
 * EMFILE without spinning, SIGTERM and SIGQUIT.
 */
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "hellod.h"
#include "stats.h"
#include "status.h"

#define HEADER_TIMEOUT	500		/* ms */
#define MAX_HEADER	1024

struct server {
	pid_t		 sv_pid;
	int		 sv_lfd;	/* our copy of its listener */
	struct sockaddr_in sv_sin;
};

struct resp {
	char		*r_raw;
	size_t		 r_len;
	int		 r_status;
	const char	*r_body;
	size_t		 r_bodylen;
	long		 r_clen;	/* Content-Length, -1: none */
};

static struct server		 main_sv;
static struct server		 extra_sv;	/* killed after each test */
static int			 greet_fd, greet_conn[2];
static char			 greet_addr[64];
static struct stats_listener_info greet_li;

static int
listen_loopback(struct sockaddr_in *sin, int backlog)
{
	socklen_t	 slen = sizeof(*sin);
	int		 fd, one = 1;

	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd != -1);
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one,
	    sizeof(one)), 0);
	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)sin, sizeof(*sin)), 0);
	assert_int_equal(listen(fd, backlog), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)sin, &slen), 0);
	return fd;
}

/* Forks a status server; nofile > 0 limits its descriptors. */
static void
server_start(struct server *sv, unsigned header_timeout, rlim_t nofile)
{
	struct status_ctx	 ctx;
	struct rlimit		 rl;

	sv->sv_lfd = listen_loopback(&sv->sv_sin, 128);
	assert_int_equal(fcntl(sv->sv_lfd, F_SETFL, O_NONBLOCK), 0);
	sv->sv_pid = fork();
	assert_true(sv->sv_pid != -1);
	if (sv->sv_pid != 0)
		return;
	if (nofile > 0) {
		rl.rlim_cur = rl.rlim_max = nofile;
		if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
			_exit(3);
	}
	memset(&ctx, 0, sizeof(ctx));
	ctx.stc_fds = &sv->sv_lfd;
	ctx.stc_nfds = 1;
	ctx.stc_listeners = &greet_li;
	ctx.stc_nlisteners = 1;
	ctx.stc_header_timeout = header_timeout;
	ctx.stc_max_header_size = MAX_HEADER;
	status_main(&ctx);
}

/* Waits for the server to exit; returns its status or -1 after `secs`. */
static int
server_wait(struct server *sv, double secs)
{
	double	 until = now_mono() + secs;
	pid_t	 pid;
	int	 status;

	for (;;) {
		pid = waitpid(sv->sv_pid, &status, WNOHANG);
		if (pid == sv->sv_pid)
			return status;
		if (now_mono() > until)
			return -1;
		usleep(5000);
	}
}

static void
server_stop(struct server *sv)
{
	if (sv->sv_pid > 0) {
		kill(sv->sv_pid, SIGKILL);
		waitpid(sv->sv_pid, NULL, 0);
		sv->sv_pid = 0;
	}
	close(sv->sv_lfd);
}

static int
connect_to(const struct server *sv)
{
	int	 fd;

	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd != -1);
	assert_int_equal(connect(fd, (const struct sockaddr *)&sv->sv_sin,
	    sizeof(sv->sv_sin)), 0);
	return fd;
}

/* Reads until EOF, `secs` at most; returns the bytes, or NULL when the
 * time ran out. */
static char *
read_all(int fd, size_t *lenp, double secs)
{
	struct pollfd	 pfd;
	double		 until = now_mono() + secs;
	size_t		 len = 0, cap = 65536;
	char		*buf = malloc(cap + 1);
	ssize_t		 n;

	assert_non_null(buf);
	for (;;) {
		pfd.fd = fd;
		pfd.events = POLLIN;
		if (poll(&pfd, 1, (int)((until - now_mono()) * 1000) + 1) ==
		    0 || now_mono() > until) {
			free(buf);
			return NULL;
		}
		if (len == cap) {
			cap *= 2;
			buf = realloc(buf, cap + 1);
			assert_non_null(buf);
		}
		n = recv(fd, buf + len, cap - len, 0);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	*lenp = len;
	return buf;
}

static const char *
header(const struct resp *r, const char *name)
{
	static char	 value[256];
	char		 pat[64];
	const char	*p, *e;

	snprintf(pat, sizeof(pat), "\r\n%s: ", name);
	if ((p = strstr(r->r_raw, pat)) == NULL || p > r->r_body)
		return NULL;
	p += strlen(pat);
	e = strstr(p, "\r\n");
	snprintf(value, sizeof(value), "%.*s", (int)(e - p), p);
	return value;
}

/* Sends a request and reads the whole response; checks what every
 * response must carry. */
static void
exchange(const struct server *sv, const char *req, int head,
    struct resp *r)
{
	const char	*p;
	size_t		 len;
	int		 fd = connect_to(sv);

	memset(r, 0, sizeof(*r));
	assert_int_equal(send(fd, req, strlen(req), MSG_NOSIGNAL),
	    (ssize_t)strlen(req));
	r->r_raw = read_all(fd, &len, 5.);
	close(fd);
	assert_non_null(r->r_raw);
	r->r_len = len;
	assert_int_equal(sscanf(r->r_raw, "HTTP/1.1 %d ", &r->r_status), 1);
	assert_non_null(p = strstr(r->r_raw, "\r\n\r\n"));
	r->r_body = p + 4;
	r->r_bodylen = len - (size_t)(r->r_body - r->r_raw);
	assert_non_null(p = header(r, "Content-Length"));
	r->r_clen = atol(p);
	assert_int_equal(r->r_bodylen, head ? 0 : (size_t)r->r_clen);
	assert_string_equal(header(r, "Server"), "hellod");
	assert_string_equal(header(r, "Cache-Control"), "no-store");
	assert_string_equal(header(r, "Connection"), "close");
	assert_non_null(p = header(r, "Date"));
	assert_int_equal(strlen(p), 29);
	assert_memory_equal(p + 25, " GMT", 4);
}

static void
resp_free(struct resp *r)
{
	free(r->r_raw);
	r->r_raw = NULL;
}

static int
setup(void **state)
{
	struct sockaddr_in	 sin;
	unsigned		 len, limit;
	int			 i, tries;

	(void)state;
	if (stats_init(4, -1) == -1)
		return -1;
	stats_set_config(1, STATS_MODE_ASYNC, 2);
	stats_set_serving(2);

	/* A greeting listener with two connections nobody accepts. */
	greet_fd = listen_loopback(&sin, 32);
	snprintf(greet_addr, sizeof(greet_addr), "127.0.0.1:%u",
	    ntohs(sin.sin_port));
	for (i = 0; i < 2; i++) {
		greet_conn[i] = socket(AF_INET, SOCK_STREAM, 0);
		if (connect(greet_conn[i], (struct sockaddr *)&sin,
		    sizeof(sin)) == -1)
			return -1;
	}
	for (tries = 0; tries < 1000; tries++) {
		if (stats_listen_queue(greet_fd, &len, &limit) == 0 && len == 2)
			break;
		usleep(1000);
	}
	greet_li.sli_addr = greet_addr;
	greet_li.sli_socket = 0;
	greet_li.sli_fd = greet_fd;

	server_start(&main_sv, HEADER_TIMEOUT, 0);
	return 0;
}

static int
extra_stop(void **state)
{
	(void)state;
	if (extra_sv.sv_pid > 0)
		server_stop(&extra_sv);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	server_stop(&main_sv);
	close(greet_conn[0]);
	close(greet_conn[1]);
	close(greet_fd);
	stats_fini();
	return 0;
}

static void
test_healthz(void **state)
{
	struct resp	 r;

	(void)state;
	exchange(&main_sv, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 0, &r);
	assert_int_equal(r.r_status, 200);
	assert_string_equal(r.r_body, "ok\n");
	assert_string_equal(header(&r, "Content-Type"),
	    "text/plain; charset=utf-8");
	resp_free(&r);

	stats_set_draining(1);
	exchange(&main_sv, "GET /healthz HTTP/1.0\r\n\r\n", 0, &r);
	assert_int_equal(r.r_status, 503);
	assert_memory_equal(r.r_raw, "HTTP/1.1 503 Service Unavailable\r\n",
	    34);
	assert_string_equal(r.r_body, "draining\n");
	resp_free(&r);

	stats_set_draining(0);
	stats_set_serving(0);
	exchange(&main_sv, "HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 1, &r);
	assert_int_equal(r.r_status, 503);
	assert_int_equal(r.r_clen, 11);		/* "no workers\n" */
	resp_free(&r);
	exchange(&main_sv, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 0, &r);
	assert_string_equal(r.r_body, "no workers\n");
	resp_free(&r);

	stats_set_serving(2);
	exchange(&main_sv, "GET /healthz?probe=1 HTTP/1.1\r\nHost: x\r\n\r\n",
	    0, &r);
	assert_int_equal(r.r_status, 200);
	resp_free(&r);
}

static void
test_metrics(void **state)
{
	struct resp	 r;
	char		 line[128];

	(void)state;
	exchange(&main_sv, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 0, &r);
	assert_int_equal(r.r_status, 200);
	assert_string_equal(header(&r, "Content-Type"),
	    "text/plain; version=0.0.4; charset=utf-8");
	assert_memory_equal(r.r_body, "# HELP hellod_build_info ", 25);
	assert_non_null(strstr(r.r_body, "\nhellod_workers 2\n"));
	assert_non_null(strstr(r.r_body, "\nhellod_config_generation 1\n"));
	snprintf(line, sizeof(line), "\nhellod_listen_queue_length{listener="
	    "\"%s\",socket=\"0\"} 2\n", greet_addr);
	assert_non_null(strstr(r.r_body, line));
	snprintf(line, sizeof(line), "\nhellod_listen_queue_limit{listener="
	    "\"%s\",socket=\"0\"} 32\n", greet_addr);
	assert_non_null(strstr(r.r_body, line));
	resp_free(&r);

	/* HEAD: the same head, no body. */
	exchange(&main_sv, "HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 1, &r);
	assert_int_equal(r.r_status, 200);
	assert_true(r.r_clen > 1000);
	resp_free(&r);
}

static void
test_json_and_page(void **state)
{
	struct resp	 r;

	(void)state;
	exchange(&main_sv, "GET /status.json HTTP/1.1\r\nHost: x\r\n\r\n", 0,
	    &r);
	assert_int_equal(r.r_status, 200);
	assert_string_equal(header(&r, "Content-Type"), "application/json");
	assert_memory_equal(r.r_body, "{\"version\":\"" VERSION "\",", 13 +
	    strlen(VERSION));
	assert_non_null(strstr(r.r_body, "\"generation\":1,"));
	assert_non_null(strstr(r.r_body, "\"queue_length\":2,"));
	resp_free(&r);

	exchange(&main_sv, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 0, &r);
	assert_int_equal(r.r_status, 200);
	assert_string_equal(header(&r, "Content-Type"),
	    "text/html; charset=utf-8");
	assert_int_equal(r.r_bodylen, status_page_len);
	assert_non_null(strstr(r.r_body, "id='total-rps'"));
	assert_non_null(strstr(r.r_body, "'worker-rps'"));
	assert_non_null(strstr(r.r_body, "fetch('/status.json'"));
	resp_free(&r);
}

static void
test_errors(void **state)
{
	static const struct {
		const char	*req;
		int		 status;
	} cases[] = {
		{ "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n", 404 },
		{ "GET /metrics/ HTTP/1.1\r\nHost: x\r\n\r\n", 404 },
		{ "GET http://x/metrics HTTP/1.1\r\nHost: x\r\n\r\n", 200 },
		{ "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
		    "\r\nab", 405 },
		{ "DELETE / HTTP/1.1\r\nHost: x\r\n\r\n", 405 },
		{ "GARBAGE\r\n\r\n", 400 },
		{ "GET /metrics HTTP/1.1\r\n\r\n", 400 },	/* no Host */
		{ "GET /metrics HTTP/2.0\r\nHost: x\r\n\r\n", 505 },
		{ "\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 200 },
	};
	struct resp	 r;
	char		*big;
	size_t		 i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		exchange(&main_sv, cases[i].req, 0, &r);
		assert_int_equal(r.r_status, cases[i].status);
		if (cases[i].status == 405)
			assert_string_equal(header(&r, "Allow"), "GET, HEAD");
		else
			assert_null(header(&r, "Allow"));
		resp_free(&r);
	}

	/* Over max_header_size: in the request line, then in the fields. */
	big = malloc(4 * MAX_HEADER);
	assert_non_null(big);
	snprintf(big, 4 * MAX_HEADER, "GET /%0*d HTTP/1.1\r\nHost: x\r\n\r\n",
	    2 * MAX_HEADER, 0);
	exchange(&main_sv, big, 0, &r);
	assert_int_equal(r.r_status, 414);
	resp_free(&r);
	snprintf(big, 4 * MAX_HEADER, "GET / HTTP/1.1\r\nHost: x\r\nX: %0*d"
	    "\r\n\r\n", 2 * MAX_HEADER, 0);
	exchange(&main_sv, big, 0, &r);
	assert_int_equal(r.r_status, 431);
	resp_free(&r);
	free(big);
}

/* A head that never ends is closed, unanswered, after header_timeout. */
static void
test_slowloris(void **state)
{
	const char	*part = "GET /metrics HTTP/1.1\r\nHost: x\r\n";
	double		 t0, dt;
	size_t		 len;
	char		*got;
	int		 fd;

	(void)state;
	fd = connect_to(&main_sv);
	t0 = now_mono();
	assert_int_equal(send(fd, part, strlen(part), 0),
	    (ssize_t)strlen(part));
	got = read_all(fd, &len, 5.);
	dt = now_mono() - t0;
	assert_non_null(got);
	assert_int_equal(len, 0);
	assert_true(dt > HEADER_TIMEOUT / 1000. * 0.8);
	assert_true(dt < HEADER_TIMEOUT / 1000. + 1.5);
	free(got);
	close(fd);
}

/*
 * STATUS_MAX_CONNS silent connections do not lock the status server: a
 * new client is admitted at once by closing the oldest connection that
 * has not asked yet, and only that one.
 */
static void
test_max_connections(void **state)
{
	const char	*req = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
	int		 fds[STATUS_MAX_CONNS], fd, i, tries;
	unsigned	 qlen = 0, qlimit;
	struct pollfd	 pfd;
	double		 t0;
	size_t		 len;
	char		*got, c;

	(void)state;
	/* A server of its own, where the silent ones would wait long. */
	server_start(&extra_sv, 10 * HEADER_TIMEOUT, 0);
	for (i = 0; i < STATUS_MAX_CONNS; i++)
		fds[i] = connect_to(&extra_sv);
	for (tries = 0; tries < 2000; tries++) {
		assert_int_equal(stats_listen_queue(extra_sv.sv_lfd, &qlen,
		    &qlimit), 0);
		if (qlen == 0)
			break;
		usleep(1000);
	}
	assert_int_equal(qlen, 0);
	t0 = now_mono();
	fd = connect_to(&extra_sv);
	assert_int_equal(send(fd, req, strlen(req), 0), (ssize_t)strlen(req));
	got = read_all(fd, &len, 5.);
	assert_non_null(got);
	assert_memory_equal(got, "HTTP/1.1 200 OK\r\n", 17);
	assert_true(now_mono() - t0 < HEADER_TIMEOUT / 1000. / 2);
	free(got);
	close(fd);
	/* The oldest was closed for it; the next one is still open. */
	pfd.fd = fds[0];
	pfd.events = POLLIN;
	assert_int_equal(poll(&pfd, 1, 1000), 1);
	assert_int_equal(recv(fds[0], &c, 1, 0), 0);
	pfd.fd = fds[1];
	assert_int_equal(poll(&pfd, 1, 0), 0);
	for (i = 0; i < STATUS_MAX_CONNS; i++)
		close(fds[i]);
}

/* None of the above was counted as a greeting request. */
static void
test_not_counted(void **state)
{
	static struct stats_snapshot	 sn;
	unsigned			 i;

	(void)state;
	assert_int_equal(stats_snapshot(&sn), 0);
	for (i = 0; i < STATS_NCODES; i++)
		assert_int_equal(sn.sn_total.sc_requests[i], 0);
	assert_int_equal(sn.sn_total.sc_accepted, 0);
	assert_int_equal(sn.sn_total.sc_bytes, 0);
}

static long
cpu_ticks(pid_t pid)
{
	char		 path[64], buf[1024], *p;
	unsigned long	 ut, st;
	FILE		*fp;

	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	assert_non_null(fp = fopen(path, "r"));
	assert_non_null(fgets(buf, sizeof(buf), fp));
	fclose(fp);
	assert_non_null(p = strrchr(buf, ')'));
	/* state ppid pgrp session tty tpgid flags minflt cminflt majflt
	 * cmajflt utime stime */
	assert_int_equal(sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u "
	    "%*u %*u %lu %lu", &ut, &st), 2);
	return (long)(ut + st);
}

/*
 * Out of descriptors, the server pauses accept instead of spinning on a
 * level-triggered listener, and serves again once descriptors are free.
 */
static void
test_emfile(void **state)
{
	struct resp	 r;
	int		 fds[12], i;
	long		 t0;

	(void)state;
	/* 0-2, its listener, the greeting one, libev's: a few left. */
	server_start(&extra_sv, 5000, 16);
	exchange(&extra_sv, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 0, &r);
	assert_int_equal(r.r_status, 200);
	resp_free(&r);
	for (i = 0; i < 12; i++)
		fds[i] = connect_to(&extra_sv);
	usleep(200000);
	t0 = cpu_ticks(extra_sv.sv_pid);
	usleep(1000000);
	/* Spinning would take about 100 ticks a second. */
	assert_true(cpu_ticks(extra_sv.sv_pid) - t0 < 20);
	for (i = 0; i < 12; i++)
		close(fds[i]);
	exchange(&extra_sv, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 0, &r);
	assert_int_equal(r.r_status, 200);
	resp_free(&r);
	kill(extra_sv.sv_pid, SIGTERM);
	assert_int_equal(server_wait(&extra_sv, 3.), 0);
	extra_sv.sv_pid = 0;
	server_stop(&extra_sv);
}

/* SIGTERM: what is in flight finishes, then exit 0.  SIGQUIT: at once. */
static void
test_signals(void **state)
{
	const char	*part = "GET /healthz HTTP/1.1\r\n";
	size_t		 len;
	char		*got;
	int		 fd, status;

	(void)state;
	server_start(&extra_sv, 60000, 0);
	fd = connect_to(&extra_sv);
	assert_int_equal(send(fd, part, strlen(part), 0),
	    (ssize_t)strlen(part));
	usleep(100000);
	kill(extra_sv.sv_pid, SIGTERM);
	usleep(100000);
	/* The head in progress may still finish, within the grace time. */
	part = "Host: x\r\n\r\n";
	assert_int_equal(send(fd, part, strlen(part), 0),
	    (ssize_t)strlen(part));
	got = read_all(fd, &len, 5.);
	assert_non_null(got);
	assert_memory_equal(got, "HTTP/1.1 200 OK\r\n", 17);
	free(got);
	close(fd);
	status = server_wait(&extra_sv, 3.);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	extra_sv.sv_pid = 0;
	server_stop(&extra_sv);

	/* A head that never completes does not hold the exit back for
	 * header_timeout (60 s here). */
	server_start(&extra_sv, 60000, 0);
	fd = connect_to(&extra_sv);
	usleep(100000);
	kill(extra_sv.sv_pid, SIGTERM);
	status = server_wait(&extra_sv, 3.);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	close(fd);
	extra_sv.sv_pid = 0;
	server_stop(&extra_sv);

	server_start(&extra_sv, 60000, 0);
	fd = connect_to(&extra_sv);
	usleep(100000);
	kill(extra_sv.sv_pid, SIGQUIT);
	status = server_wait(&extra_sv, 0.5);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	close(fd);
	extra_sv.sv_pid = 0;
	server_stop(&extra_sv);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_healthz),
		cmocka_unit_test(test_metrics),
		cmocka_unit_test(test_json_and_page),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_slowloris),
		cmocka_unit_test(test_max_connections),
		cmocka_unit_test(test_not_counted),
		cmocka_unit_test_teardown(test_emfile, extra_stop),
		cmocka_unit_test_teardown(test_signals, extra_stop),
	};

	signal(SIGPIPE, SIG_IGN);
	log_open("stderr", LOG_LEVEL_ERROR);
	return cmocka_run_group_tests(tests, setup, teardown);
}
