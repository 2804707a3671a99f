/*
 * Unit tests for the master's respawn backoff (src/master.c):
 * master_respawn_delay, the wait before a worker that keeps dying soon
 * after its start is started again.
 */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "hellod.h"

#define FIRST	0.1	/* s, after the second death in a row */
#define MAX	30.0	/* s, the cap */

/* The first death is answered at once. */
static void
test_first_death(void **state)
{
	(void)state;
	assert_true(master_respawn_delay(0) == 0.);
	assert_true(master_respawn_delay(1) == 0.);
}

/* Then 0.1 s, doubling each time: 0.1, 0.2, 0.4 ... 25.6. */
static void
test_doubling(void **state)
{
	double		 want = FIRST;
	unsigned	 fails;

	(void)state;
	assert_true(master_respawn_delay(2) == 0.1);
	assert_true(master_respawn_delay(3) == 0.2);
	assert_true(master_respawn_delay(4) == 0.4);
	assert_true(master_respawn_delay(5) == 0.8);
	for (fails = 2; fails <= 10; fails++, want *= 2) {
		if (master_respawn_delay(fails) != want)
			fail_msg("%u deaths: %g s, expected %g s", fails,
			    master_respawn_delay(fails), want);
	}
	assert_true(master_respawn_delay(10) == 25.6);
}

/* The next doubling would pass the cap: 30 s from there on. */
static void
test_cap(void **state)
{
	unsigned	 fails;

	(void)state;
	assert_true(master_respawn_delay(11) == MAX);
	assert_true(master_respawn_delay(12) == MAX);
	assert_true(master_respawn_delay(64) == MAX);
	assert_true(master_respawn_delay(1000) == MAX);
	assert_true(master_respawn_delay(UINT_MAX) == MAX);
	for (fails = 11; fails <= 2000; fails++)
		assert_true(master_respawn_delay(fails) == MAX);
}

/* Never shorter for more deaths, never above the cap. */
static void
test_monotonic(void **state)
{
	double		 prev = 0., d;
	unsigned	 fails;

	(void)state;
	for (fails = 0; fails <= 100; fails++) {
		d = master_respawn_delay(fails);
		assert_true(d >= prev);
		assert_true(d <= MAX);
		prev = d;
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_first_death),
		cmocka_unit_test(test_doubling),
		cmocka_unit_test(test_cap),
		cmocka_unit_test(test_monotonic),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
