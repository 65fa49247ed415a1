/* The trainer's quantile histogram (consumers/sr_qhist.h). */
#include <criterion/criterion.h>

#include "sr_qhist.h"

Test(qhist, empty_is_zero)
{
    sr_qhist_t h;
    sr_qhist_reset(&h);
    cr_expect_eq(sr_qhist_quantile(&h, 0.5), 0);
    cr_expect_eq(sr_qhist_quantile(&h, 0.99), 0);
}

Test(qhist, small_values_are_exact)
{
    sr_qhist_t h;
    sr_qhist_reset(&h);
    for (int v = 0; v < 10; v++) sr_qhist_add(&h, v);
    cr_expect_eq(sr_qhist_quantile(&h, 0.0), 0);
    cr_expect_eq(sr_qhist_quantile(&h, 0.5), 4);
    cr_expect_eq(sr_qhist_quantile(&h, 1.0), 9);
}

/* 1..100000 uniformly: p50 ~ 50000 and p99 ~ 99000 within the bucket
 * resolution (1/16 of a power of two). */
Test(qhist, quantiles_within_bucket_error)
{
    sr_qhist_t h;
    sr_qhist_reset(&h);
    for (int v = 1; v <= 100000; v++) sr_qhist_add(&h, v);
    int64_t p50 = sr_qhist_quantile(&h, 0.5), p99 = sr_qhist_quantile(&h, 0.99);
    cr_expect(p50 >= 50000 && p50 <= 50000 * 1.07, "p50 %lld", (long long)p50);
    cr_expect(p99 >= 99000 && p99 <= 100000, "p99 %lld", (long long)p99);
    cr_expect_eq(h.max, 100000);
}

Test(qhist, negatives_count_as_zero_and_huge_values_fit)
{
    sr_qhist_t h;
    sr_qhist_reset(&h);
    sr_qhist_add(&h, -5);
    sr_qhist_add(&h, INT64_MAX);
    cr_expect_eq(sr_qhist_quantile(&h, 0.0), 0);
    cr_expect_eq(sr_qhist_quantile(&h, 1.0), INT64_MAX);
}
