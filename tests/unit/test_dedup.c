/* The trainer's bounded event-id window (consumers/sr_dedup.h). */
#include <criterion/criterion.h>
#include <stdint.h>

#include "sr_dedup.h"

Test(dedup, second_copy_is_a_duplicate)
{
    sr_dedup_t *d = sr_dedup_new(100);
    cr_assert_not_null(d);
    cr_expect_eq(sr_dedup_check_insert(d, 42), 0);
    cr_expect_eq(sr_dedup_check_insert(d, 42), 1);
    cr_expect_eq(sr_dedup_check_insert(d, 43), 0);
    cr_expect_eq(sr_dedup_size(d), 2);
    sr_dedup_destroy(d);
}

Test(dedup, key_zero_is_a_normal_key)
{
    sr_dedup_t *d = sr_dedup_new(4);
    cr_expect_eq(sr_dedup_check_insert(d, 0), 0);
    cr_expect_eq(sr_dedup_check_insert(d, 0), 1);
    sr_dedup_destroy(d);
}

Test(dedup, window_forgets_oldest_first)
{
    sr_dedup_t *d = sr_dedup_new(3);
    for (uint64_t k = 1; k <= 4; k++) cr_assert_eq(sr_dedup_check_insert(d, k), 0);
    cr_expect_eq(sr_dedup_size(d), 3);
    cr_expect_not(sr_dedup_contains(d, 1), "oldest key must be evicted");
    cr_expect(sr_dedup_contains(d, 2));
    cr_expect(sr_dedup_contains(d, 4));
    sr_dedup_destroy(d);
}

/* Against a naive model: after any insertion sequence with a window of W,
 * exactly the last W distinct inserted keys are present.  Small key space
 * so clusters, wrap-around and backward shifts are exercised. */
Test(dedup, matches_reference_model_under_churn)
{
    enum { W = 50, N = 20000, KEYS = 400 };
    sr_dedup_t *d = sr_dedup_new(W);
    uint64_t ring[W];
    size_t head = 0, count = 0;
    uint64_t x = 12345;
    for (int i = 0; i < N; i++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        uint64_t k = (x >> 33) % KEYS;
        int in_ref = 0;
        for (size_t j = 0; j < count; j++)
            if (ring[(head + j) % W] == k) in_ref = 1;
        cr_assert_eq(sr_dedup_check_insert(d, k), in_ref, "step %d key %llu", i,
                     (unsigned long long)k);
        if (!in_ref) {
            if (count == W) {
                head = (head + 1) % W;
                count--;
            }
            ring[(head + count) % W] = k;
            count++;
        }
    }
    for (uint64_t k = 0; k < KEYS; k++) {
        int in_ref = 0;
        for (size_t j = 0; j < count; j++)
            if (ring[(head + j) % W] == k) in_ref = 1;
        cr_assert_eq(sr_dedup_contains(d, k), in_ref, "key %llu", (unsigned long long)k);
    }
    sr_dedup_destroy(d);
}

Test(dedup, clear_forgets_everything)
{
    sr_dedup_t *d = sr_dedup_new(8);
    sr_dedup_check_insert(d, 7);
    sr_dedup_clear(d);
    cr_expect_eq(sr_dedup_size(d), 0);
    cr_expect_eq(sr_dedup_check_insert(d, 7), 0);
    sr_dedup_destroy(d);
}

Test(dedup, zero_capacity_refused_and_destroy_null_is_noop)
{
    cr_expect_null(sr_dedup_new(0));
    sr_dedup_destroy(NULL);
}
