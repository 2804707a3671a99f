/*
 * `promtool check metrics' on what stats_render_metrics() produces: the
 * text must parse, and pass promtool's lint, without a single remark.
 * Exits 77 (skipped) when promtool is missing.
 */
#include <sys/socket.h>
#include <sys/wait.h>

#include <netinet/in.h>
#include <arpa/inet.h>

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
#include "stats.h"

static struct stats_snapshot	 snap;
static char			 text[1 << 20];

/* Runs promtool on the rendered text; returns what it printed. */
static void
check(const struct stats_snapshot *sn, const struct stats_listener_info *li,
    unsigned nli)
{
	char	 path[] = "/tmp/hellod-promtool.XXXXXX";
	char	 cmd[128], out[4096];
	size_t	 len, n;
	FILE	*fp;
	int	 fd, status;

	len = stats_render_metrics(sn, li, nli, text, sizeof(text));
	assert_true(len < sizeof(text));
	assert_true((fd = mkstemp(path)) != -1);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	close(fd);
	snprintf(cmd, sizeof(cmd), "promtool check metrics < %s 2>&1", path);
	assert_non_null(fp = popen(cmd, "r"));
	n = fread(out, 1, sizeof(out) - 1, fp);
	out[n] = '\0';
	status = pclose(fp);
	unlink(path);
	if (n > 0 || status != 0)
		print_error("promtool (status %d) says:\n%s\non:\n%s\n", status,
		    out, text);
	assert_int_equal(n, 0);
	assert_int_equal(status, 0);
}

/* Nothing counted, no worker, no listener: families without samples. */
static void
test_empty(void **state)
{
	(void)state;
	memset(&snap, 0, sizeof(snap));
	check(&snap, NULL, 0);
}

/*
 * The real path: workers of two generations count in their slots, one
 * is folded; listeners with awkward names and a real accept queue.
 */
static void
test_live(void **state)
{
	struct stats_listener_info li[3];
	struct sockaddr_in	 sin;
	socklen_t		 slen = sizeof(sin);
	pid_t			 pid;
	int			 slot, k, status, lfd, cfd;

	(void)state;
	assert_int_equal(stats_init(8, -1), 0);
	stats_set_config(1, STATS_MODE_ASYNC, 2);
	stats_set_serving(2);
	stats_worker_restarted();
	stats_reloaded(0);
	for (k = 0; k < 3; k++) {
		if (k == 2)
			stats_set_config(2, STATS_MODE_ASYNC, 2);
		slot = stats_slot_acquire((unsigned)k % 2, k == 2 ? 2 : 1);
		assert_true(slot >= 0);
		pid = fork();
		assert_true(pid != -1);
		if (pid == 0) {
			stats_attach(slot);
			stats_request(200, 150, 0.00003);
			stats_request(404, 120, 0.3);
			stats_request(431, 100, 99.);
			stats_request(999, 100, 0.002);
			stats_accepted();
			stats_accept_paused(STATS_PAUSE_EMFILE);
			stats_conn_move(-1, STATS_LINGERING);
			_exit(0);
		}
		assert_int_equal(waitpid(pid, &status, 0), pid);
		if (k == 0)
			stats_slot_release(slot);
	}
	assert_int_equal(stats_snapshot(&snap), 0);
	assert_int_equal(snap.sn_nrows, 1);

	lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(lfd != -1);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(lfd, 8), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&sin, &slen), 0);
	cfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(connect(cfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	memset(li, 0, sizeof(li));
	li[0].sli_addr = "127.0.0.1:8080";
	li[0].sli_fd = lfd;
	li[1].sli_addr = "we\"ird\\ na\nme";
	li[1].sli_socket = 1;
	li[1].sli_fd = lfd;
	li[2].sli_addr = "[::1]:8080";
	li[2].sli_fd = -1;		/* closed: no figures */
	stats_listeners_poll(li, 3);
	assert_true(li[0].sli_known && li[1].sli_known && !li[2].sli_known);
	check(&snap, li, 3);
	close(cfd);
	close(lfd);
	stats_fini();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_live),
	};

	if (system("command -v promtool >/dev/null 2>&1") != 0) {
		printf("SKIP: promtool not found (Debian package "
		    "prometheus)\n");
		return 77;
	}
	log_open("stderr", LOG_LEVEL_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
