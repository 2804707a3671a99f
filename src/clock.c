/*
 * The monotonic clock, in seconds, for deadlines and durations in every
 * process (master, workers, status server): a step of the wall clock
 * never moves it.
 */
#include <time.h>

#include "hellod.h"

double
now_mono(void)
{
	struct timespec	 ts;

	/* CLOCK_MONOTONIC exists on every Linux and ts is valid: this
	 * cannot fail. */
	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}
