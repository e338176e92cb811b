/*
 * Checks shared by the simulator parsers' fuzz harnesses (fuzz_scenario.c, fuzz_simdata.c):
 * a failed parse must say where, and the place it names must exist in the input.
 */
#ifndef MGX_TESTS_SIM_FUZZ_CHECK_H
#define MGX_TESTS_SIM_FUZZ_CHECK_H

#include <stddef.h>
#include <stdint.h>

/* Prints "who: what[: detail]" and aborts, which libFuzzer reports as a crash. */
_Noreturn void sim_fuzz_die(const char *who, const char *what, const char *detail);

/* Lines in the input as an editor counts them (a last line without '\n' counts). */
size_t sim_fuzz_count_lines(const uint8_t *d, size_t n);

/* The failure code must be SIM_E_PARSE or SIM_E_NOMEM and err (512 bytes) must start with name,
 * then ": " or ":N:" with 1 <= N <= lines. */
void sim_fuzz_check_error(const char *who, int rc, const char *err, const char *name,
                          size_t lines);

#endif
