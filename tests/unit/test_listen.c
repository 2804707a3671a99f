/*
 * Unit tests for the listener sets (src/listen.c): listeners_update on
 * first start, on a change of the worker count and of the addresses, and
 * on failure; listeners_activate with passed sockets; and
 * listeners_slot_sockets, listeners_status_sockets, listeners_has_fd,
 * listeners_close_others and listeners_close.
 *
 * Every test uses real sockets on 127.0.0.1, on ports found free by
 * binding port 0 first, and closes all it opened.
 */
#include <sys/socket.h>
#include <sys/types.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "hellod.h"

/* Large: kept out of the stack. */
static struct listeners	 cur, next, third;
static struct hd_socket	 socks[HD_MAX_SOCKETS];
static int		 retired[HD_MAX_SOCKETS];
static unsigned		 nretired;
static struct hd_config	 cf;

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

/* A plain socket bound to 127.0.0.1:port (0: any), without
 * SO_REUSEPORT; listening if asked. */
static int
plain_socket(uint16_t port, int listening)
{
	struct sockaddr_in	 sin;
	int			 fd;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd != -1);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons(port);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	if (listening)
		assert_int_equal(listen(fd, 16), 0);
	return fd;
}

static uint16_t
local_port(int fd)
{
	struct sockaddr_in	 sin;
	socklen_t		 len = sizeof(sin);

	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	assert_int_equal(sin.sin_family, AF_INET);
	assert_int_equal(ntohl(sin.sin_addr.s_addr), INADDR_LOOPBACK);
	return ntohs(sin.sin_port);
}

/* A port of 127.0.0.1 that nothing is bound to, and not one of the
 * last few given out: a test takes several before binding any. */
static uint16_t
free_port(void)
{
	static uint16_t	 given[16];
	static unsigned	 ngiven;
	uint16_t	 port;
	unsigned	 i, tries;
	int		 fd;

	for (tries = 0; tries < 100; tries++) {
		fd = plain_socket(0, 0);
		port = local_port(fd);
		assert_int_equal(close(fd), 0);
		for (i = 0; i < 16 && given[i] != port; i++)
			;
		if (i == 16) {
			given[ngiven++ % 16] = port;
			return port;
		}
	}
	fail_msg("no free port");
	return 0;
}

static void
addr_of(uint16_t port, struct hd_addr *a)
{
	char	 text[32], err[HD_ERRLEN];

	snprintf(text, sizeof(text), "127.0.0.1:%u", port);
	if (listen_parse_addr(text, a, err, sizeof(err)) != 0)
		fail_msg("%s", err);
}

/* One more address of the configuration. */
static void
listen_of(uint16_t port, unsigned opts)
{
	struct hd_listen	*ln = &cf.cf_listen[cf.cf_nlisten++];

	memset(ln, 0, sizeof(*ln));
	addr_of(port, &ln->ln_addr);
	ln->ln_opts = opts;
}

/* The configuration's addresses: nplain, nproxy and nstatus ports, in
 * that order. */
static void
config_ports(const uint16_t *plain, unsigned nplain, const uint16_t *proxy,
    unsigned nproxy, const uint16_t *status, unsigned nstatus)
{
	unsigned	 i;

	config_defaults(&cf);
	cf.cf_nlisten = 0;
	for (i = 0; i < nplain; i++)
		listen_of(plain[i], HD_LO_PLAIN);
	for (i = 0; i < nproxy; i++)
		listen_of(proxy[i], HD_LO_PROXY);
	for (i = 0; i < nstatus; i++)
		listen_of(status[i], HD_LO_STATUS);
}

static int
fd_open(int fd)
{
	return fcntl(fd, F_GETFD) != -1;
}

static void
assert_closed(int fd)
{
	errno = 0;
	assert_int_equal(fcntl(fd, F_GETFD), -1);
	assert_int_equal(errno, EBADF);
}

/* The number of open descriptors of this process. */
static unsigned
count_fds(void)
{
	DIR		*d;
	struct dirent	*de;
	unsigned	 n = 0;

	d = opendir("/proc/self/fd");
	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1;	/* the directory's own */
}

static int
migrate_req(void)
{
	FILE	*fp = fopen("/proc/sys/net/ipv4/tcp_migrate_req", "re");
	int	 c = EOF;

	if (fp != NULL) {
		c = fgetc(fp);
		fclose(fp);
	}
	return c == '1';
}

/* A socket opened by listen_open(): listening, non-blocking,
 * close-on-exec, SO_REUSEPORT, bound to 127.0.0.1:port. */
static void
assert_listener_socket(int fd, uint16_t port)
{
	int		 v;
	socklen_t	 len = sizeof(v);

	assert_true(fd >= 0);
	assert_int_equal(local_port(fd), port);
	assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &len),
	    0);
	assert_int_equal(v, 1);
	len = sizeof(v);
	assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &v, &len),
	    0);
	assert_int_equal(v, 1);
	assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
}

/* li has exactly n sockets, in slots 0 to n-1, on port. */
static void
assert_slots(const struct listener *li, unsigned opts,
    uint16_t port, unsigned n)
{
	unsigned	 s;

	assert_int_equal(li->li_opts, opts);
	assert_int_equal(li->li_passed, 0);
	assert_int_equal(li->li_shared, opts == HD_LO_STATUS);
	for (s = 0; s < n; s++)
		assert_listener_socket(li->li_fd[s], port);
	for (; s < HD_MAX_WORKERS; s++)
		assert_int_equal(li->li_fd[s], -1);
}

/* No descriptor appears twice in ls. */
static void
assert_distinct(const struct listeners *ls)
{
	unsigned	 a, s, b, t;
	int		 fd;

	for (a = 0; a < ls->ls_n; a++)
		for (s = 0; s < HD_MAX_WORKERS; s++) {
			if ((fd = ls->ls_list[a].li_fd[s]) == -1)
				continue;
			for (b = a; b < ls->ls_n; b++)
				for (t = b == a ? s + 1 : 0; t < HD_MAX_WORKERS;
				    t++)
					assert_true(ls->ls_list[b].li_fd[t] !=
					    fd);
		}
}

/* The sockets of one worker are exactly want[0..n-1], in that order. */
static void
assert_worker(const struct listeners *ls, unsigned slot, unsigned nworkers,
    const int *want, unsigned n)
{
	unsigned	 got, i;

	got = listeners_slot_sockets(ls, slot, nworkers, socks);
	if (got != n)
		fail_msg("worker %u of %u: %u sockets, expected %u", slot,
		    nworkers, got, n);
	for (i = 0; i < n; i++) {
		assert_int_equal(socks[i].so_fd, want[i]);
		assert_non_null(socks[i].so_listener);
		assert_true(socks[i].so_listener >= &ls->ls_list[0] &&
		    socks[i].so_listener < &ls->ls_list[ls->ls_n]);
	}
}

/* retired holds exactly the n descriptors of want, in any order, and
 * none of them is in ls. */
static void
assert_retired(const struct listeners *ls, const int *want, unsigned n)
{
	unsigned	 i, j;

	assert_int_equal(nretired, n);
	for (i = 0; i < n; i++) {
		for (j = 0; j < nretired; j++)
			if (retired[j] == want[i])
				break;
		if (j == nretired)
			fail_msg("descriptor %d not retired", want[i]);
		assert_false(listeners_has_fd(ls, want[i]));
	}
}

static void
close_retired(void)
{
	unsigned	 i;

	for (i = 0; i < nretired; i++)
		assert_int_equal(close(retired[i]), 0);
	nretired = 0;
}

/* Closes every socket of ls and checks that they are closed. */
static void
close_all(const struct listeners *ls)
{
	int		 fds[HD_MAX_SOCKETS];
	unsigned	 a, s, n = 0;

	for (a = 0; a < ls->ls_n; a++)
		for (s = 0; s < ls->ls_nslots; s++)
			if (ls->ls_list[a].li_fd[s] != -1)
				fds[n++] = ls->ls_list[a].li_fd[s];
	listeners_close(ls);
	for (a = 0; a < n; a++)
		assert_closed(fds[a]);
}

static int
setup(void **state)
{
	(void)state;
	listeners_init(&cur);
	listeners_init(&next);
	listeners_init(&third);
	nretired = 0;
	return 0;
}

/* ------------------------------------------------------------------ */
/* First start                                                         */
/* ------------------------------------------------------------------ */

static void
test_init(void **state)
{
	unsigned	 a, s;

	(void)state;
	memset(&cur, 0x5a, sizeof(cur));
	listeners_init(&cur);
	assert_int_equal(cur.ls_n, 0);
	assert_int_equal(cur.ls_nslots, 1);
	assert_int_equal(cur.ls_activated, 0);
	for (a = 0; a < HD_MAX_LISTENERS; a++)
		for (s = 0; s < HD_MAX_WORKERS; s++)
			assert_int_equal(cur.ls_list[a].li_fd[s], -1);
	assert_int_equal(listeners_slot_sockets(&cur, 0, 1, socks), 0);
	assert_int_equal(listeners_status_sockets(&cur, socks), 0);
}

/* One socket per slot for each worker address, one shared socket for
 * each status address. */
static void
test_initial_open(void **state)
{
	uint16_t	 pa = free_port(), pb = free_port(), pp = free_port();
	uint16_t	 ps = free_port();
	const struct listener *la, *lb, *lp, *ls;
	unsigned	 before = count_fds(), w;
	int		 other;

	(void)state;
	config_ports((uint16_t[]){ pa, pb }, 2, &pp, 1, &ps, 1);
	assert_int_equal(listeners_update(&cur, &next, &cf, 3, retired,
	    &nretired), 0);
	assert_int_equal(nretired, 0);
	assert_int_equal(next.ls_n, 4);
	assert_int_equal(next.ls_nslots, 3);
	assert_int_equal(next.ls_activated, 0);
	la = &next.ls_list[0];
	lb = &next.ls_list[1];
	lp = &next.ls_list[2];
	ls = &next.ls_list[3];
	assert_slots(la, HD_LO_PLAIN, pa, 3);
	assert_slots(lb, HD_LO_PLAIN, pb, 3);
	assert_slots(lp, HD_LO_PROXY, pp, 3);
	assert_slots(ls, HD_LO_STATUS, ps, 1);
	assert_true(listen_same_addr(&la->li_addr, &cf.cf_listen[0].ln_addr));
	assert_true(listen_same_addr(&lp->li_addr, &cf.cf_listen[2].ln_addr));
	assert_true(listen_same_addr(&ls->li_addr, &cf.cf_listen[3].ln_addr));
	assert_distinct(&next);
	assert_int_equal(count_fds(), before + 10);

	/* Each worker has its slot's socket of each worker address. */
	for (w = 0; w < 3; w++) {
		assert_worker(&next, w, 3, (int[]){ la->li_fd[w],
		    lb->li_fd[w], lp->li_fd[w] }, 3);
		assert_ptr_equal(socks[0].so_listener, la);
		assert_ptr_equal(socks[1].so_listener, lb);
		assert_ptr_equal(socks[2].so_listener, lp);
	}
	assert_int_equal(listeners_status_sockets(&next, socks), 1);
	assert_int_equal(socks[0].so_fd, ls->li_fd[0]);
	assert_ptr_equal(socks[0].so_listener, ls);

	assert_true(listeners_has_fd(&next, la->li_fd[2]));
	assert_true(listeners_has_fd(&next, ls->li_fd[0]));
	other = plain_socket(0, 0);
	assert_false(listeners_has_fd(&next, other));
	assert_int_equal(close(other), 0);

	close_all(&next);
	assert_int_equal(count_fds(), before);
}

/* ------------------------------------------------------------------ */
/* Worker count                                                        */
/* ------------------------------------------------------------------ */

static void
test_grow(void **state)
{
	uint16_t	 pa = free_port(), pp = free_port(), ps = free_port();
	const struct listener *oa, *op, *na, *np;
	unsigned	 before = count_fds(), s, w;

	(void)state;
	config_ports(&pa, 1, &pp, 1, &ps, 1);
	assert_int_equal(listeners_update(&cur, &next, &cf, 2, retired,
	    &nretired), 0);
	assert_int_equal(count_fds(), before + 5);

	assert_int_equal(listeners_update(&next, &third, &cf, 4, retired,
	    &nretired), 0);
	assert_int_equal(nretired, 0);
	assert_int_equal(third.ls_n, 3);
	assert_int_equal(third.ls_nslots, 4);
	oa = &next.ls_list[0];
	op = &next.ls_list[1];
	na = &third.ls_list[0];
	np = &third.ls_list[1];
	assert_slots(na, HD_LO_PLAIN, pa, 4);
	assert_slots(np, HD_LO_PROXY, pp, 4);
	assert_slots(&third.ls_list[2], HD_LO_STATUS, ps, 1);
	/* The old sockets keep their slots, the new ones are new. */
	for (s = 0; s < 2; s++) {
		assert_int_equal(na->li_fd[s], oa->li_fd[s]);
		assert_int_equal(np->li_fd[s], op->li_fd[s]);
	}
	for (s = 2; s < 4; s++) {
		assert_false(listeners_has_fd(&next, na->li_fd[s]));
		assert_false(listeners_has_fd(&next, np->li_fd[s]));
	}
	assert_int_equal(third.ls_list[2].li_fd[0],
	    next.ls_list[2].li_fd[0]);
	assert_distinct(&third);
	assert_int_equal(count_fds(), before + 9);
	for (w = 0; w < 4; w++)
		assert_worker(&third, w, 4,
		    (int[]){ na->li_fd[w], np->li_fd[w] }, 2);

	close_all(&third);
	assert_int_equal(count_fds(), before);
}

/*
 * Shrinking: unless the kernel migrates the queued connections of a
 * closed SO_REUSEPORT socket (net.ipv4.tcp_migrate_req), the sockets of
 * the surplus slots stay open and are shared out round-robin among the
 * remaining workers.  With migration they are retired.
 */
static void
test_shrink(void **state)
{
	uint16_t	 pa = free_port(), pp = free_port(), ps = free_port();
	const struct listener *oa, *op, *na, *np;
	unsigned	 before = count_fds(), s;
	int		 a[4], p[4];

	(void)state;
	config_ports(&pa, 1, &pp, 1, &ps, 1);
	assert_int_equal(listeners_update(&cur, &next, &cf, 4, retired,
	    &nretired), 0);
	oa = &next.ls_list[0];
	op = &next.ls_list[1];
	for (s = 0; s < 4; s++) {
		a[s] = oa->li_fd[s];
		p[s] = op->li_fd[s];
	}

	assert_int_equal(listeners_update(&next, &third, &cf, 2, retired,
	    &nretired), 0);
	na = &third.ls_list[0];
	np = &third.ls_list[1];
	assert_int_equal(third.ls_n, 3);
	assert_int_equal(third.ls_list[2].li_fd[0], next.ls_list[2].li_fd[0]);
	if (migrate_req()) {
		print_message("net.ipv4.tcp_migrate_req is on: surplus "
		    "sockets retired\n");
		assert_int_equal(third.ls_nslots, 2);
		assert_slots(na, HD_LO_PLAIN, pa, 2);
		assert_slots(np, HD_LO_PROXY, pp, 2);
		assert_retired(&third, (int[]){ a[2], a[3], p[2], p[3] }, 4);
		assert_worker(&third, 0, 2, (int[]){ a[0], p[0] }, 2);
		assert_worker(&third, 1, 2, (int[]){ a[1], p[1] }, 2);
		close_retired();
		close_all(&third);
		assert_int_equal(count_fds(), before);
		return;
	}

	assert_int_equal(nretired, 0);
	assert_int_equal(third.ls_nslots, 4);
	assert_slots(na, HD_LO_PLAIN, pa, 4);
	assert_slots(np, HD_LO_PROXY, pp, 4);
	for (s = 0; s < 4; s++) {
		assert_int_equal(na->li_fd[s], a[s]);
		assert_int_equal(np->li_fd[s], p[s]);
	}
	assert_int_equal(count_fds(), before + 9);
	assert_worker(&third, 0, 2, (int[]){ a[0], a[2], p[0], p[2] }, 4);
	assert_worker(&third, 1, 2, (int[]){ a[1], a[3], p[1], p[3] }, 4);
	/* Unevenly, from the same set: 4 slots over 3 workers. */
	assert_worker(&third, 0, 3, (int[]){ a[0], a[3], p[0], p[3] }, 4);
	assert_worker(&third, 1, 3, (int[]){ a[1], p[1] }, 2);
	assert_worker(&third, 2, 3, (int[]){ a[2], p[2] }, 2);
	/* One worker serves them all. */
	assert_worker(&third, 0, 1, (int[]){ a[0], a[1], a[2], a[3], p[0],
	    p[1], p[2], p[3] }, 8);

	close_all(&third);
	assert_int_equal(count_fds(), before);
}

/* After a shrink, an address added has sockets for the workers there
 * are; growing again reuses the surplus sockets kept. */
static void
test_shrink_add_grow(void **state)
{
	uint16_t	 pa = free_port(), pb = free_port();
	const struct listener *la, *lb;
	unsigned	 before = count_fds(), s;
	int		 a[4], b[2];

	(void)state;
	if (migrate_req()) {
		print_message("net.ipv4.tcp_migrate_req is on: nothing kept "
		    "on shrinking\n");
		skip();
	}
	config_ports(&pa, 1, NULL, 0, NULL, 0);
	assert_int_equal(listeners_update(&cur, &next, &cf, 4, retired,
	    &nretired), 0);
	for (s = 0; s < 4; s++)
		a[s] = next.ls_list[0].li_fd[s];

	config_ports((uint16_t[]){ pa, pb }, 2, NULL, 0, NULL, 0);
	assert_int_equal(listeners_update(&next, &third, &cf, 2, retired,
	    &nretired), 0);
	assert_int_equal(nretired, 0);
	assert_int_equal(third.ls_nslots, 4);
	la = &third.ls_list[0];
	lb = &third.ls_list[1];
	assert_slots(la, HD_LO_PLAIN, pa, 4);
	assert_slots(lb, HD_LO_PLAIN, pb, 2);
	for (s = 0; s < 4; s++)
		assert_int_equal(la->li_fd[s], a[s]);
	for (s = 0; s < 2; s++)
		b[s] = lb->li_fd[s];
	assert_worker(&third, 0, 2, (int[]){ a[0], a[2], b[0] }, 3);
	assert_worker(&third, 1, 2, (int[]){ a[1], a[3], b[1] }, 3);
	assert_int_equal(count_fds(), before + 6);

	/* Back to 4 workers: a keeps all four, b gets two more. */
	listeners_init(&next);
	assert_int_equal(listeners_update(&third, &next, &cf, 4, retired,
	    &nretired), 0);
	assert_int_equal(nretired, 0);
	assert_int_equal(next.ls_nslots, 4);
	assert_slots(&next.ls_list[0], HD_LO_PLAIN, pa, 4);
	assert_slots(&next.ls_list[1], HD_LO_PLAIN, pb, 4);
	for (s = 0; s < 4; s++)
		assert_int_equal(next.ls_list[0].li_fd[s], a[s]);
	for (s = 0; s < 2; s++)
		assert_int_equal(next.ls_list[1].li_fd[s], b[s]);
	assert_distinct(&next);
	assert_int_equal(count_fds(), before + 8);

	close_all(&next);
	assert_int_equal(count_fds(), before);
}

/* ------------------------------------------------------------------ */
/* Addresses                                                           */
/* ------------------------------------------------------------------ */

static void
test_address_added_removed(void **state)
{
	uint16_t	 pa = free_port(), pb = free_port(), pc = free_port();
	uint16_t	 ps = free_port(), pt = free_port();
	const struct listener *la, *lc;
	unsigned	 before = count_fds(), s;
	int		 a[2], b[2], st;

	(void)state;
	config_ports((uint16_t[]){ pa, pb }, 2, NULL, 0, &ps, 1);
	assert_int_equal(listeners_update(&cur, &next, &cf, 2, retired,
	    &nretired), 0);
	for (s = 0; s < 2; s++) {
		a[s] = next.ls_list[0].li_fd[s];
		b[s] = next.ls_list[1].li_fd[s];
	}
	st = next.ls_list[2].li_fd[0];

	/* b and the status address go, c and another status address
	 * come. */
	config_ports((uint16_t[]){ pc, pa }, 2, NULL, 0, &pt, 1);
	assert_int_equal(listeners_update(&next, &third, &cf, 2, retired,
	    &nretired), 0);
	assert_int_equal(third.ls_n, 3);
	lc = &third.ls_list[0];
	la = &third.ls_list[1];
	assert_slots(lc, HD_LO_PLAIN, pc, 2);
	assert_slots(la, HD_LO_PLAIN, pa, 2);
	assert_slots(&third.ls_list[2], HD_LO_STATUS, pt, 1);
	for (s = 0; s < 2; s++) {
		assert_int_equal(la->li_fd[s], a[s]);
		assert_false(listeners_has_fd(&next, lc->li_fd[s]));
	}
	assert_false(listeners_has_fd(&next, third.ls_list[2].li_fd[0]));
	assert_retired(&third, (int[]){ b[0], b[1], st }, 3);
	/* Retired, not closed: old workers may still accept on them. */
	assert_true(fd_open(b[0]) && fd_open(b[1]) && fd_open(st));
	assert_int_equal(count_fds(), before + 5 + 3);

	close_retired();
	close_all(&third);
	assert_int_equal(count_fds(), before);
}

/* The same address moved from the PROXY list to the plain one is a new
 * listener: its PROXY sockets are retired, plain ones opened. */
static void
test_kind_changed(void **state)
{
	uint16_t	 pa = free_port(), px = free_port();
	const struct listener *lx;
	unsigned	 before = count_fds(), s;
	int		 x[2];

	(void)state;
	config_ports(&pa, 1, &px, 1, NULL, 0);
	assert_int_equal(listeners_update(&cur, &next, &cf, 2, retired,
	    &nretired), 0);
	assert_slots(&next.ls_list[1], HD_LO_PROXY, px, 2);
	for (s = 0; s < 2; s++)
		x[s] = next.ls_list[1].li_fd[s];

	config_ports((uint16_t[]){ pa, px }, 2, NULL, 0, NULL, 0);
	assert_int_equal(listeners_update(&next, &third, &cf, 2, retired,
	    &nretired), 0);
	assert_int_equal(third.ls_n, 2);
	lx = &third.ls_list[1];
	assert_slots(lx, HD_LO_PLAIN, px, 2);
	for (s = 0; s < 2; s++)
		assert_false(listeners_has_fd(&next, lx->li_fd[s]));
	assert_retired(&third, x, 2);
	for (s = 0; s < 2; s++)
		assert_int_equal(third.ls_list[0].li_fd[s],
		    next.ls_list[0].li_fd[s]);
	assert_int_equal(count_fds(), before + 6);

	close_retired();
	close_all(&third);
	assert_int_equal(count_fds(), before);
}

/* ------------------------------------------------------------------ */
/* Failure                                                             */
/* ------------------------------------------------------------------ */

/* A port held by a socket without SO_REUSEPORT cannot be bound: what
 * was opened for the update is closed again. */
static void
test_failure_first_start(void **state)
{
	uint16_t	 pa = free_port(), pb = free_port(), ps = free_port();
	unsigned	 before;
	int		 held;

	(void)state;
	held = plain_socket(0, 1);
	before = count_fds();
	config_ports((uint16_t[]){ pa, pb }, 2,
	    (uint16_t[]){ local_port(held) }, 1, &ps, 1);
	assert_int_equal(listeners_update(&cur, &next, &cf, 3, retired,
	    &nretired), -1);
	assert_int_equal(nretired, 0);
	assert_int_equal(count_fds(), before);
	/* The ports are free again. */
	assert_int_equal(close(plain_socket(pa, 1)), 0);
	assert_int_equal(close(plain_socket(pb, 1)), 0);
	assert_int_equal(close(held), 0);
}

/* On failure the current sockets stay open, the new ones are closed. */
static void
test_failure_keeps_current(void **state)
{
	uint16_t	 pa = free_port(), pb = free_port(), ps = free_port();
	unsigned	 before = count_fds(), after, s;
	int		 held, keep[5];

	(void)state;
	config_ports(&pa, 1, NULL, 0, &ps, 1);
	assert_int_equal(listeners_update(&cur, &next, &cf, 2, retired,
	    &nretired), 0);
	keep[0] = next.ls_list[0].li_fd[0];
	keep[1] = next.ls_list[0].li_fd[1];
	keep[2] = next.ls_list[1].li_fd[0];
	held = plain_socket(0, 1);
	after = count_fds();
	assert_int_equal(after, before + 4);

	/* More workers, a new address, and one that cannot be bound. */
	config_ports((uint16_t[]){ pa, pb, local_port(held) }, 3, NULL, 0,
	    &ps, 1);
	assert_int_equal(listeners_update(&next, &third, &cf, 4, retired,
	    &nretired), -1);
	assert_int_equal(nretired, 0);
	assert_int_equal(count_fds(), after);
	for (s = 0; s < 3; s++)
		assert_true(fd_open(keep[s]));
	assert_listener_socket(keep[0], pa);
	assert_listener_socket(keep[2], ps);

	/* Nothing is left on the address that was to be added. */
	assert_int_equal(close(held), 0);
	assert_int_equal(close(plain_socket(pb, 1)), 0);

	close_all(&next);
	assert_int_equal(count_fds(), before);
}

/* ------------------------------------------------------------------ */
/* Socket activation                                                   */
/* ------------------------------------------------------------------ */

static void
test_activation(void **state)
{
	uint16_t	 pa = free_port(), pp = free_port(), ps = free_port();
	const struct listener *l0, *l1, *lp;
	unsigned	 before = count_fds(), w, s;
	int		 passed[2], probe;
	char		 text[32];

	(void)state;
	passed[0] = plain_socket(0, 1);
	passed[1] = plain_socket(0, 1);
	assert_int_equal(listeners_activate(&cur, passed, 2), 0);
	assert_int_equal(cur.ls_n, 2);
	assert_int_equal(cur.ls_activated, 1);
	for (s = 0; s < 2; s++) {
		l0 = &cur.ls_list[s];
		assert_int_equal(l0->li_opts, HD_LO_PLAIN);
		assert_int_equal(l0->li_passed, 1);
		assert_int_equal(l0->li_shared, 1);
		assert_int_equal(l0->li_fd[0], passed[s]);
		assert_int_equal(l0->li_fd[1], -1);
		assert_int_equal(ntohs(((const struct sockaddr_in *)
		    &l0->li_addr.a_ss)->sin_port), local_port(passed[s]));
		snprintf(text, sizeof(text), "fd %d", passed[s]);
		assert_string_equal(l0->li_addr.a_text, text);
	}
	for (w = 0; w < 4; w++)
		assert_worker(&cur, w, 4, passed, 2);
	assert_int_equal(listeners_status_sockets(&cur, socks), 0);

	/* The configuration's plain address is ignored; its PROXY and
	 * status addresses are opened. */
	config_ports(&pa, 1, &pp, 1, &ps, 1);
	assert_int_equal(listeners_update(&cur, &next, &cf, 4, retired,
	    &nretired), 0);
	assert_int_equal(nretired, 0);
	assert_int_equal(next.ls_activated, 1);
	assert_int_equal(next.ls_n, 4);
	assert_int_equal(next.ls_nslots, 4);
	l0 = &next.ls_list[0];
	l1 = &next.ls_list[1];
	lp = &next.ls_list[2];
	assert_int_equal(l0->li_fd[0], passed[0]);
	assert_int_equal(l1->li_fd[0], passed[1]);
	assert_int_equal(l0->li_passed && l1->li_passed, 1);
	assert_slots(lp, HD_LO_PROXY, pp, 4);
	assert_slots(&next.ls_list[3], HD_LO_STATUS, ps, 1);
	assert_int_equal(count_fds(), before + 2 + 5);
	for (w = 0; w < 4; w++)
		assert_worker(&next, w, 4,
		    (int[]){ passed[0], passed[1], lp->li_fd[w] }, 3);
	probe = plain_socket(pa, 1);	/* nothing listens on pa */
	assert_int_equal(close(probe), 0);

	/* A reload with fewer workers keeps the passed sockets. */
	assert_int_equal(listeners_update(&next, &third, &cf, 2, retired,
	    &nretired), 0);
	assert_int_equal(third.ls_activated, 1);
	assert_int_equal(third.ls_list[0].li_fd[0], passed[0]);
	assert_int_equal(third.ls_list[1].li_fd[0], passed[1]);
	for (w = 0; w < 2; w++)
		assert_int_equal(listeners_slot_sockets(&third, w, 2, socks),
		    migrate_req() ? 3 : 4);

	close_retired();
	close_all(&third);
	assert_int_equal(count_fds(), before);
}

/* ------------------------------------------------------------------ */
/* Closing                                                             */
/* ------------------------------------------------------------------ */

/* A worker closes every socket but its own. */
static void
test_close_others(void **state)
{
	uint16_t	 pa = free_port(), pp = free_port(), ps = free_port();
	const struct listener *la, *lp;
	unsigned	 before = count_fds(), n, s;
	int		 st;

	(void)state;
	config_ports(&pa, 1, &pp, 1, &ps, 1);
	assert_int_equal(listeners_update(&cur, &next, &cf, 3, retired,
	    &nretired), 0);
	la = &next.ls_list[0];
	lp = &next.ls_list[1];
	st = next.ls_list[2].li_fd[0];
	n = listeners_slot_sockets(&next, 1, 3, socks);
	assert_int_equal(n, 2);

	listeners_close_others(&next, socks, n);
	assert_true(fd_open(la->li_fd[1]));
	assert_true(fd_open(lp->li_fd[1]));
	for (s = 0; s < 3; s += 2) {
		assert_closed(la->li_fd[s]);
		assert_closed(lp->li_fd[s]);
	}
	assert_closed(st);
	assert_int_equal(count_fds(), before + 2);
	assert_listener_socket(la->li_fd[1], pa);
	assert_listener_socket(lp->li_fd[1], pp);

	assert_int_equal(close(la->li_fd[1]), 0);
	assert_int_equal(close(lp->li_fd[1]), 0);
	assert_int_equal(count_fds(), before);
}

/* The status process keeps only the status sockets. */
static void
test_close_others_status(void **state)
{
	uint16_t	 pa = free_port(), ps = free_port(), pt = free_port();
	unsigned	 before = count_fds(), n, s;

	(void)state;
	config_ports(&pa, 1, NULL, 0, (uint16_t[]){ ps, pt }, 2);
	assert_int_equal(listeners_update(&cur, &next, &cf, 2, retired,
	    &nretired), 0);
	n = listeners_status_sockets(&next, socks);
	assert_int_equal(n, 2);
	assert_int_equal(socks[0].so_fd, next.ls_list[1].li_fd[0]);
	assert_int_equal(socks[1].so_fd, next.ls_list[2].li_fd[0]);

	listeners_close_others(&next, socks, n);
	for (s = 0; s < 2; s++)
		assert_closed(next.ls_list[0].li_fd[s]);
	assert_listener_socket(socks[0].so_fd, ps);
	assert_listener_socket(socks[1].so_fd, pt);
	assert_int_equal(count_fds(), before + 2);

	assert_int_equal(close(socks[0].so_fd), 0);
	assert_int_equal(close(socks[1].so_fd), 0);
	assert_int_equal(count_fds(), before);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_init, setup),
		cmocka_unit_test_setup(test_initial_open, setup),
		cmocka_unit_test_setup(test_grow, setup),
		cmocka_unit_test_setup(test_shrink, setup),
		cmocka_unit_test_setup(test_shrink_add_grow, setup),
		cmocka_unit_test_setup(test_address_added_removed, setup),
		cmocka_unit_test_setup(test_kind_changed, setup),
		cmocka_unit_test_setup(test_failure_first_start, setup),
		cmocka_unit_test_setup(test_failure_keeps_current, setup),
		cmocka_unit_test_setup(test_activation, setup),
		cmocka_unit_test_setup(test_close_others, setup),
		cmocka_unit_test_setup(test_close_others_status, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
