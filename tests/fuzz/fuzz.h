/*
 * The libFuzzer entry point, shared by the fuzz targets and replay.c.
 * With clang -fsanitize=fuzzer libFuzzer supplies main(); in a plain
 * build replay.c does, and feeds the inputs named on its command line.
 */
#ifndef HELLOD_FUZZ_H
#define HELLOD_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int	 LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* Set by a target that has more to say when an invariant fails. */
static void	(*fuzz_context)(void) __attribute__((unused));

static inline void fuzz_check_failed(const char *, int, const char *)
    __attribute__((noreturn));

/* A violated invariant: says which and where, then aborts, so that
 * libFuzzer keeps the input and a replay stops at it. */
static inline void
fuzz_check_failed(const char *file, int line, const char *what)
{
	fprintf(stderr, "%s:%d: invariant violated: %s\n", file, line, what);
	if (fuzz_context != NULL)
		fuzz_context();
	fflush(stderr);
	abort();
}

#define CHECK(cond)	do {						\
	if (!(cond))							\
		fuzz_check_failed(__FILE__, __LINE__, #cond);		\
} while (0)

/* A xorshift generator for the targets' splits: the same input always
 * gives the same pieces. */
static inline uint32_t
fuzz_rng_next(uint32_t *s)
{
	uint32_t	 x = *s;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return *s = x;
}

/* The next piece of a split: mostly small, single bytes included,
 * sometimes up to `mid` or `large` bytes; never more than `left`. */
static inline size_t
fuzz_piece_size(uint32_t *s, size_t left, size_t mid, size_t large)
{
	uint32_t	 r = fuzz_rng_next(s);
	size_t		 n;

	switch (r & 3) {
	case 0:
		n = 1;
		break;
	case 1:
		n = 1 + (r >> 2) % 8;
		break;
	case 2:
		n = 1 + (r >> 2) % mid;
		break;
	default:
		n = 1 + (r >> 2) % large;
		break;
	}
	return n < left ? n : left;
}

#endif /* HELLOD_FUZZ_H */
