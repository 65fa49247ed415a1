/* Log-linear histogram (see sr_qhist.h): bucket = (power of two, 16 linear
 * steps inside it); values below 16 get exact buckets. */
#include "sr_qhist.h"

#include <string.h>

static int bucket_of(uint64_t v)
{
    if (v < SR_QHIST_SUB) return (int)v;
    int e = 63 - __builtin_clzll(v); /* >= 4 */
    int sub = (int)((v >> (e - 4)) & (SR_QHIST_SUB - 1));
    return (e - 3) * SR_QHIST_SUB + sub;
}

static uint64_t bucket_upper(int b)
{
    if (b < SR_QHIST_SUB) return (uint64_t)b;
    int e = b / SR_QHIST_SUB + 3;
    uint64_t sub = (uint64_t)(b % SR_QHIST_SUB);
    uint64_t lo = ((uint64_t)SR_QHIST_SUB + sub) << (e - 4);
    return lo + ((uint64_t)1 << (e - 4)) - 1;
}

void sr_qhist_reset(sr_qhist_t *h) { memset(h, 0, sizeof(*h)); }

void sr_qhist_add(sr_qhist_t *h, int64_t v)
{
    if (v < 0) v = 0;
    h->b[bucket_of((uint64_t)v)]++;
    h->count++;
    if (v > h->max) h->max = v;
}

int64_t sr_qhist_quantile(const sr_qhist_t *h, double q)
{
    if (h->count == 0) return 0;
    if (q < 0) q = 0;
    if (q > 1) q = 1;
    uint64_t rank = (uint64_t)(q * (double)(h->count - 1)) + 1, seen = 0;
    for (int i = 0; i < SR_QHIST_BUCKETS; i++) {
        seen += h->b[i];
        if (seen >= rank) {
            int64_t u = (int64_t)bucket_upper(i);
            return u < h->max ? u : h->max;
        }
    }
    return h->max;
}
