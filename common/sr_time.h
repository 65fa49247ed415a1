/* Millisecond clocks, defined once so every module measures the same way.
 * sr_mono_ms: CLOCK_MONOTONIC, for intervals and deadlines (never jumps).
 * sr_wall_ms: CLOCK_REALTIME, for event timestamps and freshness.
 * Thread-safe, no allocation, no errors (clock_gettime cannot fail for
 * these clocks). */
#ifndef SR_TIME_H
#define SR_TIME_H

#include <stdint.h>
#include <time.h>

static inline int64_t sr_clock_ms_(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline int64_t sr_mono_ms(void)
{
    return sr_clock_ms_(CLOCK_MONOTONIC);
}

static inline int64_t sr_wall_ms(void)
{
    return sr_clock_ms_(CLOCK_REALTIME);
}

#endif
