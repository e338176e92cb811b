/*
 * Internal: the wall clock in Unix milliseconds, the one clock read the daemons make. Kept out
 * of interval.h on purpose: interval arithmetic takes time as a parameter and stays pure; the
 * shells read the clock here and hand the value in (through ctl_clock when accelerated).
 */
#ifndef MGX_CTL_WALL_CLOCK_H
#define MGX_CTL_WALL_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t ctl_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#endif
