/*
 * Fuzz target for the description an upgrade in place hands to the new
 * image (HELLOD_UPGRADE): upgrade_parse() in src/upgrade.c, its only
 * reader, and upgrade_inherit(), which applies what it parsed.  The
 * input, up to its first NUL, is the variable's value.  Three sockets sit
 * at descriptors 200 to 202 for sock= elements to name: two TCP sockets
 * on 127.0.0.1 and one TCP socket on ::1 (when IPv6 is there).
 *
 * Checked on every input:
 *
 *  1. upgrade_parse() accepts it or refuses it with a reason; accepted,
 *     the struct keeps its invariants: every descriptor in
 *     0..UPGRADE_MAX_FD-1 or -1 (none) where none is allowed, none named
 *     twice, every pid in 1..UPGRADE_MAX_PID, every count within its
 *     array, every socket's options known, its slot within
 *     HD_MAX_WORKERS and PASSED 0 or 1;
 *  2. what upgrade_format() writes of it parses back to the same struct;
 *  3. upgrade_inherit() returns 1 (applied) or -1 (malformed), -1 when
 *     upgrade_parse() refused the value, and the variable is gone from
 *     the environment afterwards;
 *  4. applied, every count is within its array, every listener's options
 *     are known, its slots are within the slot count, and every socket it
 *     holds is one of the three;
 *  5. a value without "gen=" is malformed;
 *  6. the same value is applied the same way again.
 *
 * The file builds as a libFuzzer target (clang -fsanitize=fuzzer) or,
 * linked with replay.c, as a plain program that replays the corpus.
 */
#include <sys/socket.h>

#include <netinet/in.h>

#include <arpa/inet.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hellod.h"
#include "fuzz.h"

#define SOCK_FIRST	200
#define SOCK_COUNT	3
#define VALUE_MAX	65535

/* A TCP socket bound to an ephemeral port of addr, at descriptor at. */
static void
socket_at(int family, const char *addr, int at)
{
	struct sockaddr_storage	 ss;
	struct sockaddr_in	*sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)&ss;
	socklen_t		 len;
	int			 fd;

	memset(&ss, 0, sizeof(ss));
	if (family == AF_INET) {
		sin->sin_family = AF_INET;
		CHECK(inet_pton(AF_INET, addr, &sin->sin_addr) == 1);
		len = sizeof(*sin);
	} else {
		sin6->sin6_family = AF_INET6;
		CHECK(inet_pton(AF_INET6, addr, &sin6->sin6_addr) == 1);
		len = sizeof(*sin6);
	}
	if ((fd = socket(family, SOCK_STREAM, 0)) == -1 ||
	    bind(fd, (struct sockaddr *)&ss, len) == -1) {
		/* No IPv6 here: a socket left unbound still has a name. */
		if (fd == -1)
			CHECK((fd = socket(AF_INET, SOCK_STREAM, 0)) != -1);
	}
	CHECK(dup2(fd, at) == at);
	close(fd);
}

static void
setup(void)
{
	static int	 ready;

	if (ready)
		return;
	/* Malformed values are logged; the log is not what is tested. */
	CHECK(log_open("/dev/null", LOG_LEVEL_ERROR) == 0);
	socket_at(AF_INET, "127.0.0.1", SOCK_FIRST);
	socket_at(AF_INET, "127.0.0.1", SOCK_FIRST + 1);
	socket_at(AF_INET6, "::1", SOCK_FIRST + 2);
	ready = 1;
}

static int
parse(const char *value, struct upgrade_state *us, struct listeners *ls)
{
	/* putenv() with one buffer: glibc's setenv() keeps every value it
	 * replaced, which a long run would pile up. */
	static char	 env[sizeof("HELLOD_UPGRADE=") + VALUE_MAX];
	int		 rc;

	snprintf(env, sizeof(env), "HELLOD_UPGRADE=%s", value);
	CHECK(putenv(env) == 0);
	memset(us, 0xa5, sizeof(*us));
	memset(ls, 0xa5, sizeof(*ls));
	rc = upgrade_inherit(us, ls);
	CHECK(rc == 1 || rc == -1);
	CHECK(getenv("HELLOD_UPGRADE") == NULL);
	return rc;
}

static int
int_cmp(const void *a, const void *b)
{
	int	 x = *(const int *)a, y = *(const int *)b;

	return (x > y) - (x < y);
}

static void
check_fd(int fd, int none_ok)
{
	CHECK((fd >= 0 && fd < UPGRADE_MAX_FD) || (none_ok && fd == -1));
}

/* Invariants 1 and 2; the description parsed from value. */
static int
check_desc(const char *value, struct upgrade_desc *ud)
{
	static struct upgrade_desc	 again;
	static char			 text[65536];
	static int			 fds[UPGRADE_MAX_FDS];
	char				 err[128];
	unsigned			 i, n;

	memset(ud, 0xa5, sizeof(*ud));
	err[0] = '\0';
	if (upgrade_parse(value, ud, err, sizeof(err)) == -1) {
		CHECK(err[0] != '\0');
		return -1;
	}
	check_fd(ud->ud_pidfd, 1);
	check_fd(ud->ud_statsfd, 1);
	check_fd(ud->ud_ticketsfd, 1);
	check_fd(ud->ud_conf, 1);
	check_fd(ud->ud_exe, 1);
	CHECK(ud->ud_nold <= UPGRADE_MAX_OLD);
	for (i = 0; i < ud->ud_nold; i++)
		CHECK(ud->ud_old[i] >= 1 && ud->ud_old[i] <= UPGRADE_MAX_PID);
	CHECK(ud->ud_nretired <= HD_MAX_SOCKETS);
	for (i = 0; i < ud->ud_nretired; i++)
		check_fd(ud->ud_retired[i], 0);
	CHECK(ud->ud_nsocks <= HD_MAX_SOCKETS);
	for (i = 0; i < ud->ud_nsocks; i++) {
		CHECK(listen_opts_valid(ud->ud_socks[i].uk_opts));
		CHECK(ud->ud_socks[i].uk_slot < HD_MAX_WORKERS);
		CHECK(ud->ud_socks[i].uk_passed == 0 ||
		    ud->ud_socks[i].uk_passed == 1);
		check_fd(ud->ud_socks[i].uk_fd, 0);
	}
	n = upgrade_desc_fds(ud, fds);
	CHECK(n <= UPGRADE_MAX_FDS);
	qsort(fds, n, sizeof(fds[0]), int_cmp);
	for (i = 1; i < n; i++)
		CHECK(fds[i - 1] != fds[i]);

	/* What the writer makes of it is read back the same. */
	if (upgrade_format(ud, text, sizeof(text)) == 0) {
		memset(&again, 0x5a, sizeof(again));
		CHECK(upgrade_parse(text, &again, err, sizeof(err)) == 0);
		CHECK(again.ud_generation == ud->ud_generation);
		CHECK(again.ud_pidfd == ud->ud_pidfd);
		CHECK(again.ud_statsfd == ud->ud_statsfd);
		CHECK(again.ud_ticketsfd == ud->ud_ticketsfd);
		CHECK(again.ud_conf == ud->ud_conf);
		CHECK(again.ud_exe == ud->ud_exe);
		CHECK(again.ud_nold == ud->ud_nold);
		CHECK(memcmp(again.ud_old, ud->ud_old,
		    ud->ud_nold * sizeof(ud->ud_old[0])) == 0);
		CHECK(again.ud_nretired == ud->ud_nretired);
		CHECK(memcmp(again.ud_retired, ud->ud_retired,
		    ud->ud_nretired * sizeof(ud->ud_retired[0])) == 0);
		CHECK(again.ud_nsocks == ud->ud_nsocks);
		CHECK(memcmp(again.ud_socks, ud->ud_socks,
		    ud->ud_nsocks * sizeof(ud->ud_socks[0])) == 0);
	}
	return 0;
}

static void
check_parsed(const struct upgrade_state *us, const struct listeners *ls)
{
	const struct listener	*li;
	unsigned		 a, s;
	int			 fd;

	CHECK(us->us_active == 1);
	CHECK(us->us_nold <= UPGRADE_MAX_OLD);
	for (a = 0; a < us->us_nold; a++)
		CHECK(us->us_old[a] >= 1 && us->us_old[a] <= UPGRADE_MAX_PID);
	CHECK(us->us_nretired <= HD_MAX_SOCKETS);
	check_fd(us->us_pidfd, 1);
	check_fd(us->us_statsfd, 1);
	check_fd(us->us_ticketsfd, 1);
	for (a = 0; a < us->us_nretired; a++)
		check_fd(us->us_retired[a], 0);
	CHECK(us->us_listeners == ls);
	CHECK(ls->ls_n <= HD_MAX_LISTENERS);
	CHECK(ls->ls_nslots <= HD_MAX_WORKERS);
	for (a = 0; a < ls->ls_n; a++) {
		li = &ls->ls_list[a];
		CHECK(listen_opts_valid(li->li_opts));
		for (s = 0; s < HD_MAX_WORKERS; s++) {
			fd = li->li_fd[s];
			if (fd == -1)
				continue;
			CHECK(s < ls->ls_nslots);
			CHECK(fd >= SOCK_FIRST && fd < SOCK_FIRST + SOCK_COUNT);
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct upgrade_state	 us1, us2;
	static struct listeners		 ls1, ls2;
	static struct upgrade_desc	 ud;
	static char			 value[VALUE_MAX + 1];
	size_t				 len, i;
	int				 rc, parsed;

	setup();
	len = strnlen((const char *)data, size);
	if (len > VALUE_MAX)
		len = VALUE_MAX;
	memcpy(value, data, len);
	value[len] = '\0';

	parsed = check_desc(value, &ud);
	rc = parse(value, &us1, &ls1);
	if (parsed == -1)
		CHECK(rc == -1);
	if (rc == 1)
		check_parsed(&us1, &ls1);
	if (strstr(value, "gen=") == NULL)
		CHECK(parsed == -1 && rc == -1);

	CHECK(parse(value, &us2, &ls2) == rc);
	if (rc == 1) {
		CHECK(us1.us_generation == us2.us_generation);
		CHECK(us1.us_pidfd == us2.us_pidfd);
		CHECK(us1.us_statsfd == us2.us_statsfd);
		CHECK(us1.us_ticketsfd == us2.us_ticketsfd);
		CHECK(us1.us_nold == us2.us_nold);
		CHECK(memcmp(us1.us_old, us2.us_old,
		    us1.us_nold * sizeof(us1.us_old[0])) == 0);
		CHECK(us1.us_nretired == us2.us_nretired);
		CHECK(memcmp(us1.us_retired, us2.us_retired,
		    us1.us_nretired * sizeof(us1.us_retired[0])) == 0);
		CHECK(ls1.ls_n == ls2.ls_n && ls1.ls_nslots == ls2.ls_nslots);
		for (i = 0; i < ls1.ls_n; i++) {
			CHECK(ls1.ls_list[i].li_opts == ls2.ls_list[i].li_opts);
			CHECK(memcmp(ls1.ls_list[i].li_fd,
			    ls2.ls_list[i].li_fd,
			    sizeof(ls1.ls_list[i].li_fd)) == 0);
		}
	}
	return 0;
}
