#define _GNU_SOURCE
/* Partial top-K: order, ties, skips, NaN, k larger than n. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>

#include "sr_model.h"

Test(topk, best_first)
{
    float s[] = {0.1f, 0.9f, 0.5f, 0.7f, 0.3f};
    uint32_t idx[3];
    float sc[3];
    cr_assert_eq(sr_topk(s, 5, 3, NULL, idx, sc), 3);
    cr_assert_eq(idx[0], 1);
    cr_assert_eq(idx[1], 3);
    cr_assert_eq(idx[2], 2);
    cr_assert_float_eq(sc[0], 0.9f, 0);
}

Test(topk, ties_lower_index_first)
{
    float s[] = {1, 2, 2, 2, 1};
    uint32_t idx[4];
    cr_assert_eq(sr_topk(s, 5, 4, NULL, idx, NULL), 4);
    cr_assert_eq(idx[0], 1);
    cr_assert_eq(idx[1], 2);
    cr_assert_eq(idx[2], 3);
    cr_assert_eq(idx[3], 0);
}

Test(topk, skip_and_nan)
{
    float s[] = {5, NAN, 3, 4};
    uint8_t skip[] = {1, 0, 0, 0};
    uint32_t idx[4];
    cr_assert_eq(sr_topk(s, 4, 4, skip, idx, NULL), 2);
    cr_assert_eq(idx[0], 3);
    cr_assert_eq(idx[1], 2);
    cr_assert_eq(sr_topk(s, 4, 0, NULL, idx, NULL), 0);
}

static int cmp_desc(const void *a, const void *b, void *ctx)
{
    const float *s = ctx;
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    if (s[x] != s[y]) return s[x] > s[y] ? -1 : 1;
    return (x > y) - (x < y);
}

Test(topk, matches_full_sort)
{
    enum { N = 5000, K = 37 };
    float *s = malloc(N * sizeof *s);
    uint32_t *all = malloc(N * sizeof *all);
    srand(5);
    for (int i = 0; i < N; i++) {
        s[i] = (float)(rand() % 300); /* many ties */
        all[i] = (uint32_t)i;
    }
    qsort_r(all, N, sizeof *all, cmp_desc, s);
    uint32_t idx[K];
    cr_assert_eq(sr_topk(s, N, K, NULL, idx, NULL), K);
    for (int k = 0; k < K; k++)
        cr_assert_eq(idx[k], all[k], "rank %d", k);
    free(s);
    free(all);
}
