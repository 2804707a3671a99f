/*
 * The libFuzzer entry point, shared by the fuzz targets and replay.c.
 * With clang -fsanitize=fuzzer libFuzzer supplies main(); in a plain
 * build replay.c does, and feeds the inputs named on its command line.
 */
#ifndef HELLOD_FUZZ_H
#define HELLOD_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int	 LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#endif /* HELLOD_FUZZ_H */
