/*
 * Fuzz target for the description an upgrade in place hands to the new
 * image (HELLOD_UPGRADE, parsed by upgrade_inherit() in src/upgrade.c).
 * The input, up to its first NUL, is the variable's value.  Three sockets
 * sit at descriptors 200 to 202 for sock= elements to name: two TCP
 * sockets on 127.0.0.1 and one TCP socket on ::1 (when IPv6 is there).
 *
 * Checked on every input:
 *
 *  1. the result is 1 (parsed) or -1 (malformed), and the variable is
 *     gone from the environment afterwards;
 *  2. parsed, every count is within its array, every listener's kind is
 *     known, its slots are within the slot count, and every socket it
 *     holds is one of the three;
 *  3. a value without '=' that is not blank is malformed;
 *  4. the same value parses the same way again.
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
	int	 rc;

	CHECK(setenv("HELLOD_UPGRADE", value, 1) == 0);
	memset(us, 0xa5, sizeof(*us));
	memset(ls, 0xa5, sizeof(*ls));
	rc = upgrade_inherit(us, ls);
	CHECK(rc == 1 || rc == -1);
	CHECK(getenv("HELLOD_UPGRADE") == NULL);
	return rc;
}

static void
check_parsed(const struct upgrade_state *us, const struct listeners *ls)
{
	const struct listener	*li;
	unsigned		 a, s;
	int			 fd;

	CHECK(us->us_active == 1);
	CHECK(us->us_nold <= UPGRADE_MAX_OLD);
	CHECK(us->us_nretired <= HD_MAX_SOCKETS);
	CHECK(us->us_pidfd >= -1 && us->us_statsfd >= -1);
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
	static char			 value[VALUE_MAX + 1];
	size_t				 len, i;
	int				 rc, blank = 1;

	setup();
	len = strnlen((const char *)data, size);
	if (len > VALUE_MAX)
		len = VALUE_MAX;
	memcpy(value, data, len);
	value[len] = '\0';

	rc = parse(value, &us1, &ls1);
	if (rc == 1)
		check_parsed(&us1, &ls1);
	for (i = 0; i < len; i++)
		if (value[i] != ' ')
			blank = 0;
	if (strchr(value, '=') == NULL && !blank)
		CHECK(rc == -1);

	CHECK(parse(value, &us2, &ls2) == rc);
	if (rc == 1) {
		CHECK(us1.us_generation == us2.us_generation);
		CHECK(us1.us_pidfd == us2.us_pidfd);
		CHECK(us1.us_statsfd == us2.us_statsfd);
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
