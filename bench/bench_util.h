/*
 * Timing and summary statistics shared by the benchmark programs, so that every bench reads
 * the same clocks and reports the same median.
 */
#ifndef MGX_BENCH_UTIL_H
#define MGX_BENCH_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Seconds on the monotonic clock (wall time that does not jump). */
double bench_now_s(void);
/* CPU seconds used so far by this process, all threads. */
double bench_cpu_s(void);
/* qsort comparison: doubles ascending. */
int bench_cmp_double(const void *a, const void *b);
/* The next value of a SplitMix64 sequence whose state is *s: the benches' own inputs,
 * reproducible from a seed and independent of any library generator. */
uint64_t bench_splitmix(uint64_t *s);
/* The median of n > 0 values (the mean of the middle two when n is even); sorts v in place. */
double bench_median(double *v, size_t n);

#endif
