/*
 * The libFuzzer entry point shared by the fuzz harness and its replay driver (replay.c), which
 * feeds a corpus to it in the normal test suite with any compiler.
 */
#ifndef MGX_TESTS_FUZZ_H
#define MGX_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* Runs one input; returns 0 and aborts on any violated invariant. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An invariant of a harness: when c is false, says which (file and line) on stderr and aborts,
 * which libFuzzer and the replay driver both report as a crash with the input. */
#define FUZZ_CHECK(c)                                                                          \
    do {                                                                                       \
        if (!(c)) {                                                                            \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c);               \
            abort();                                                                           \
        }                                                                                      \
    } while (0)

#endif
