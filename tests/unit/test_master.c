/*
 * Unit tests for the master's respawn backoff (src/master.c):
 * master_respawn_delay, the wait before a worker that keeps dying soon
 * after its start is started again; and the serving figure /healthz
 * reads while a new generation starts (serving_update, serving_adopt).
 */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hellod.h"
#include "master.h"

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

/* A master just after an upgrade in place: `old` children of the
 * previous image drain, two new workers have not reported yet. */
static struct master *
upgraded(unsigned old)
{
	static struct master	 m;

	memset(&m, 0, sizeof(m));
	m.m_nslots = 2;
	m.m_slots[0].s_pid = 100;
	m.m_slots[1].s_pid = 101;
	m.m_nold = old;
	m.m_announce = 1;
	return &m;
}

/* The previous image's figure stands until the new workers report, then
 * theirs counts. */
static void
test_upgrade_figure_stands(void **state)
{
	struct master	*m = upgraded(3);

	(void)state;
	serving_adopt(m, 2);
	assert_int_equal(serving_update(m), 2);
	m->m_slots[0].s_ready = 1;
	assert_int_equal(serving_update(m), 1);
	m->m_slots[1].s_ready = 1;
	assert_int_equal(serving_update(m), 2);
}

/* Counters that were not handed over hold no figure: while old workers
 * run, the service is still up. */
static void
test_upgrade_figure_lost(void **state)
{
	struct master	*m = upgraded(3);

	(void)state;
	serving_adopt(m, 0);
	assert_int_equal(serving_update(m), 1);
	m->m_nold = 0;		/* they are gone, no new one reported */
	assert_int_equal(serving_update(m), 0);
	m = upgraded(0);
	serving_adopt(m, 0);
	assert_int_equal(serving_update(m), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_first_death),
		cmocka_unit_test(test_doubling),
		cmocka_unit_test(test_cap),
		cmocka_unit_test(test_monotonic),
		cmocka_unit_test(test_upgrade_figure_stands),
		cmocka_unit_test(test_upgrade_figure_lost),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
