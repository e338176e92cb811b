/*
 * The libFuzzer entry point shared by the fuzz harness and its replay driver (replay.c), which
 * feeds a corpus to it in the normal test suite with any compiler.
 */
#ifndef MGX_TESTS_FUZZ_H
#define MGX_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>

/* Runs one input; returns 0 and aborts on any violated invariant. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
