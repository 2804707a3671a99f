/*
 * The upgrade description (HELLOD_UPGRADE): upgrade_parse() accepts what
 * upgrade_format() writes and nothing malformed; upgrade_inherit()
 * applies a parsed one to the listener set.
 */
#include <sys/socket.h>

#include <netinet/in.h>

#include <arpa/inet.h>

#include <fcntl.h>
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

static struct upgrade_desc	 ud;

static void
parse_ok(const char *v)
{
	char	 err[128];

	memset(&ud, 0xa5, sizeof(ud));
	if (upgrade_parse(v, &ud, err, sizeof(err)) != 0)
		fail_msg("'%s': %s", v, err);
}

static void
parse_fails(const char *v, const char *why)
{
	char	 err[128];

	err[0] = '\0';
	if (upgrade_parse(v, &ud, err, sizeof(err)) != -1)
		fail_msg("'%s' parsed", v);
	if (why != NULL && strcmp(err, why) != 0)
		fail_msg("'%s': '%s', not '%s'", v, err, why);
}

static void
test_valid(void **state)
{
	(void)state;
	parse_ok("gen=7 pidfd=4 stats=5 tickets=12 old=100,4194304 "
	    "retired=6,7 sock=0:0:0:10,1:255:0:11,2:0:1:1048575,4:0:0:13,"
	    "5:1:0:14 conf=8 exe=9");
	assert_int_equal(ud.ud_generation, 7);
	assert_int_equal(ud.ud_pidfd, 4);
	assert_int_equal(ud.ud_statsfd, 5);
	assert_int_equal(ud.ud_ticketsfd, 12);
	assert_int_equal(ud.ud_socks[3].uk_opts, HD_LO_TLS);
	assert_int_equal(ud.ud_socks[4].uk_opts, HD_LO_PROXY | HD_LO_TLS);
	assert_int_equal(ud.ud_nold, 2);
	assert_int_equal(ud.ud_old[0], 100);
	assert_int_equal(ud.ud_old[1], UPGRADE_MAX_PID);
	assert_int_equal(ud.ud_nretired, 2);
	assert_int_equal(ud.ud_retired[1], 7);
	assert_int_equal(ud.ud_nsocks, 5);
	assert_int_equal(ud.ud_socks[1].uk_opts, HD_LO_PROXY);
	assert_int_equal(ud.ud_socks[1].uk_slot, 255);
	assert_int_equal(ud.ud_socks[1].uk_passed, 0);
	assert_int_equal(ud.ud_socks[1].uk_fd, 11);
	assert_int_equal(ud.ud_socks[2].uk_opts, HD_LO_STATUS);
	assert_int_equal(ud.ud_socks[2].uk_passed, 1);
	assert_int_equal(ud.ud_socks[2].uk_fd, UPGRADE_MAX_FD - 1);
	assert_int_equal(ud.ud_conf, 8);
	assert_int_equal(ud.ud_exe, 9);

	/* "none" and empty lists, as an image without them writes */
	parse_ok("gen=4294967295 pidfd=-1 stats=-1 old= retired= sock=");
	assert_int_equal(ud.ud_generation, 4294967295u);
	assert_int_equal(ud.ud_pidfd, -1);
	assert_int_equal(ud.ud_statsfd, -1);
	assert_int_equal(ud.ud_nold + ud.ud_nretired + ud.ud_nsocks, 0);
	assert_int_equal(ud.ud_conf, -1);
	assert_int_equal(ud.ud_exe, -1);

	/* an image before stats, conf and exe; descriptor 0 */
	parse_ok("gen=0 pidfd=0 old=1 retired= sock=0:0:0:3");
	assert_int_equal(ud.ud_pidfd, 0);
	assert_int_equal(ud.ud_statsfd, -1);
	assert_int_equal(ud.ud_nsocks, 1);
}

/* Keys of later versions are ignored, whatever their printable value. */
static void
test_unknown_keys(void **state)
{
	(void)state;
	parse_ok("future=key gen=1 tls=0:0:0:7,x=y;z sock=0:0:0:7 later_2=");
	assert_int_equal(ud.ud_generation, 1);
	assert_int_equal(ud.ud_nsocks, 1);
	assert_int_equal(ud.ud_socks[0].uk_fd, 7);
	/* an unknown key may repeat; a known one may not */
	parse_ok("gen=1 x=1 x=2");
	parse_fails("gen=1 sock= sock=", "sock given twice");
	parse_fails("gen=1 gen=2", "gen given twice");
}

static void
test_invalid(void **state)
{
	static const char *const syntax[] = {
		"", " ", "gen=1 ", " gen=1", "gen=1  pidfd=3", "gen",
		"gen=1 pidfd", "gen=1 =3", "Gen=1", "gen=1 9x=1",
		"gen=1 x-y=1", "gen=1\tpidfd=3", "gen=1 x=\x01",
		"gen=1 x=\x7f", "gen=1,", "gen=1 pidfd=3x",
	};
	static const char *const value[][2] = {
		{ "gen=x", "invalid gen" },
		{ "gen=-1", "invalid gen" },
		{ "gen=+1", "invalid gen" },
		{ "gen=01", "invalid gen" },
		{ "gen=4294967296", "invalid gen" },
		{ "gen=99999999999999999999999", "invalid gen" },
		{ "gen=1 pidfd=-2", "invalid pidfd" },
		{ "gen=1 pidfd=1048576", "invalid pidfd" },
		{ "gen=1 pidfd=2147483648", "invalid pidfd" },
		{ "gen=1 pidfd=", "invalid pidfd" },
		{ "gen=1 stats=-1x", NULL },
		{ "gen=1 conf=-1", "invalid conf" },
		{ "gen=1 exe=", "invalid exe" },
		{ "gen=1 old=0", "invalid old" },
		{ "gen=1 old=4194305", "invalid old" },
		{ "gen=1 old=-5", "invalid old" },
		{ "gen=1 old=1,", NULL },
		{ "gen=1 old=1,,2", "invalid old" },
		{ "gen=1 old=,1", "invalid old" },
		{ "gen=1 retired=-5", "invalid retired" },
		{ "gen=1 retired=5,1048576", "invalid retired" },
		{ "gen=1 sock=3:0:0:7", "invalid sock" },
		{ "gen=1 sock=6:0:0:7", "invalid sock" },
		{ "gen=1 sock=8:0:0:7", "invalid sock" },
		{ "gen=1 tickets=-2", "invalid tickets" },
		{ "gen=1 tickets=3 stats=3", "a descriptor named twice" },
		{ "gen=1 sock=0:256:0:7", "invalid sock" },
		{ "gen=1 sock=0:0:2:7", "invalid sock" },
		{ "gen=1 sock=0:0:0:-1", "invalid sock" },
		{ "gen=1 sock=0:0:0", "invalid sock" },
		{ "gen=1 sock=0:0:0:7:1", NULL },
		{ "gen=1 sock=0:0:0:7,", NULL },
		{ "gen=1 sock=0:0:0:4294967303", "invalid sock" },
		{ "pidfd=3", "no gen" },
		{ "gen=1 pidfd=3 stats=3", "a descriptor named twice" },
		{ "gen=1 retired=5 sock=0:0:0:5", "a descriptor named twice" },
		{ "gen=1 sock=0:0:0:5,0:1:0:5", "a descriptor named twice" },
		{ "gen=1 conf=9 exe=9", "a descriptor named twice" },
	};
	size_t	 i;

	(void)state;
	for (i = 0; i < sizeof(syntax) / sizeof(syntax[0]); i++)
		parse_fails(syntax[i], NULL);
	parse_fails("gen=1  pidfd=3", "syntax error at offset 5");
	for (i = 0; i < sizeof(value) / sizeof(value[0]); i++)
		parse_fails(value[i][0], value[i][1]);
}

/* Too many elements for the arrays. */
static void
test_counts(void **state)
{
	static char	 v[65536];
	size_t		 len;
	unsigned	 i;

	(void)state;
	len = (size_t)snprintf(v, sizeof(v), "gen=1 old=");
	for (i = 0; i < UPGRADE_MAX_OLD; i++)
		len += (size_t)snprintf(v + len, sizeof(v) - len, "%s%u",
		    i ? "," : "", i + 1);
	parse_ok(v);
	assert_int_equal(ud.ud_nold, UPGRADE_MAX_OLD);
	snprintf(v + len, sizeof(v) - len, ",9");
	parse_fails(v, "invalid old");
}

/* The input the fuzz target found: an unknown key with a digit-laden
 * name, then a descriptor that wrapped to a negative int. */
static void
test_fuzz_negative_pidfd(void **state)
{
	(void)state;
	parse_fails("exe9444444006old=, pidfd=6745417205659",
	    "invalid pidfd");
	/* the same with an acceptable descriptor parses */
	parse_ok("exe9444444006old=, gen=1 pidfd=674541");
	assert_int_equal(ud.ud_pidfd, 674541);
}

/* What upgrade_format() writes parses back to the same description. */
static void
test_format_round_trip(void **state)
{
	static struct upgrade_desc	 a;
	static char			 text[65536];
	char				 err[128];

	(void)state;
	parse_ok("gen=7 pidfd=-1 stats=5 old=100,101 retired=6 "
	    "sock=0:0:0:10,1:3:0:11,2:0:1:12 conf=8 exe=9");
	a = ud;
	assert_int_equal(upgrade_format(&a, text, sizeof(text)), 0);
	assert_string_equal(text, "gen=7 pidfd=-1 stats=5 tickets=-1 "
	    "old=100,101 retired=6 sock=0:0:0:10,1:3:0:11,2:0:1:12 conf=8 "
	    "exe=9");
	assert_int_equal(upgrade_parse(text, &ud, err, sizeof(err)), 0);
	assert_memory_equal(&ud.ud_socks, &a.ud_socks,
	    a.ud_nsocks * sizeof(a.ud_socks[0]));
	/* no way back: conf and exe left out */
	a.ud_conf = a.ud_exe = -1;
	assert_int_equal(upgrade_format(&a, text, sizeof(text)), 0);
	assert_string_equal(text, "gen=7 pidfd=-1 stats=5 tickets=-1 "
	    "old=100,101 retired=6 sock=0:0:0:10,1:3:0:11,2:0:1:12");
	/* too small a buffer */
	assert_int_equal(upgrade_format(&a, text, 20), -1);
}

static int
tcp_socket(void)
{
	struct sockaddr_in	 sin;
	int			 fd;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true((fd = socket(AF_INET, SOCK_STREAM, 0)) >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	return fd;
}

/* upgrade_inherit() applies the description: sockets grouped into
 * listeners by address and options, descriptors close-on-exec. */
static void
test_inherit(void **state)
{
	static struct upgrade_state	 us;
	static struct listeners		 ls;
	char				 v[256];
	int				 a = tcp_socket(), b = tcp_socket();

	(void)state;
	assert_int_equal(log_open("/dev/null", LOG_LEVEL_ERROR), 0);
	snprintf(v, sizeof(v), "gen=3 old=42 sock=1:0:0:%d,1:1:0:%d,"
	    "0:0:0:%d", a, b, b);
	/* b twice: refused before anything is applied */
	assert_int_equal(setenv("HELLOD_UPGRADE", v, 1), 0);
	assert_int_equal(upgrade_inherit(&us, &ls), -1);
	assert_null(getenv("HELLOD_UPGRADE"));

	snprintf(v, sizeof(v), "gen=3 old=42 sock=1:0:0:%d,1:1:0:%d", a, b);
	assert_int_equal(setenv("HELLOD_UPGRADE", v, 1), 0);
	assert_int_equal(upgrade_inherit(&us, &ls), 1);
	assert_null(getenv("HELLOD_UPGRADE"));
	assert_int_equal(us.us_active, 1);
	assert_int_equal(us.us_generation, 3);
	assert_int_equal(us.us_nold, 1);
	assert_int_equal(us.us_old[0], 42);
	assert_int_equal(us.us_pidfd, -1);
	/* two ports: two listeners, each one socket */
	assert_int_equal(ls.ls_n, 2);
	assert_int_equal(ls.ls_nslots, 2);
	assert_int_equal(ls.ls_list[0].li_opts, HD_LO_PROXY);
	assert_int_equal(ls.ls_list[0].li_fd[0], a);
	assert_int_equal(ls.ls_list[1].li_fd[1], b);
	assert_true(fcntl(a, F_GETFD) & FD_CLOEXEC);

	/* a socket that is not one */
	snprintf(v, sizeof(v), "gen=3 sock=0:0:0:1048000");
	assert_int_equal(setenv("HELLOD_UPGRADE", v, 1), 0);
	assert_int_equal(upgrade_inherit(&us, &ls), -1);

	/* no description: a normal start */
	assert_int_equal(upgrade_inherit(&us, &ls), 0);
	assert_int_equal(us.us_active, 0);
	close(a);
	close(b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_unknown_keys),
		cmocka_unit_test(test_invalid),
		cmocka_unit_test(test_counts),
		cmocka_unit_test(test_fuzz_negative_pidfd),
		cmocka_unit_test(test_format_round_trip),
		cmocka_unit_test(test_inherit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
