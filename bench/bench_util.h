/* Small helpers every benchmark uses: a monotonic clock in seconds, a
 * double comparator for qsort (medians, percentiles) and a seeded
 * xorshift generator (the same numbers on every run, so benchmarks compare
 * like with like).  Single-threaded: the generator state is per program. */
#ifndef BENCH_UTIL_H
#define BENCH_UTIL_H

#include <math.h>
#include <stdint.h>
#include <time.h>

static inline double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static uint64_t bench_rng = 0x9E3779B97F4A7C15ULL;

/* Uniform in [0, 1). */
static inline double urand(void)
{
    bench_rng ^= bench_rng << 13;
    bench_rng ^= bench_rng >> 7;
    bench_rng ^= bench_rng << 17;
    return (double)(bench_rng >> 11) / 9007199254740992.0;
}

/* Standard normal (Box-Muller). */
static inline float nrand(void)
{
    double u = urand() + 1e-12, v = urand();
    return (float)(sqrt(-2.0 * log(u)) * cos(2.0 * M_PI * v));
}

#endif
