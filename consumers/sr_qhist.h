/* A fixed-size log-linear histogram for the trainer's own quantiles
 * (freshness, flush time, flush size) and its exit statistics: recording
 * is O(1) with no allocation, so it can sit on the per-event path, and
 * p50/p99 come out within ~6% relative error (16 linear sub-buckets per
 * power of two).  Values are non-negative integers in the caller's unit;
 * negatives count as 0.  Threading: none; one owner.  A plain struct, so
 * it can be embedded and reset with memset. */
#ifndef SR_QHIST_H
#define SR_QHIST_H

#include <stdint.h>

#define SR_QHIST_SUB 16
#define SR_QHIST_BUCKETS (61 * SR_QHIST_SUB)

typedef struct sr_qhist {
    uint64_t count;
    int64_t max;
    uint64_t b[SR_QHIST_BUCKETS];
} sr_qhist_t;

void sr_qhist_reset(sr_qhist_t *h);
void sr_qhist_add(sr_qhist_t *h, int64_t v);
/* The value at quantile q in [0,1]: the upper edge of its bucket, capped
 * at the largest value seen; 0 when empty. */
int64_t sr_qhist_quantile(const sr_qhist_t *h, double q);

#endif
