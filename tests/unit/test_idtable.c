/* Id tables: dense arrival-order indices, lookups across incremental
 * rehashes, millions of ids, bounded id length. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "sr_err.h"
#include "sr_event.h"
#include "sr_idtable.h"

static size_t key(char *buf, uint32_t k)
{
    return (size_t)snprintf(buf, 32, "item-%u", k);
}

Test(idtable, dense_indices_in_arrival_order)
{
    sr_idtable_t *t = sr_idtable_new(1);
    int created = 0;
    cr_assert_eq(sr_idtable_intern(t, "b", 1, &created), 0);
    cr_assert_eq(created, 1);
    cr_assert_eq(sr_idtable_intern(t, "a", 1, &created), 1);
    cr_assert_eq(sr_idtable_intern(t, "b", 1, &created), 0);
    cr_assert_eq(created, 0);
    size_t len;
    const char *id = sr_idtable_id(t, 1, &len);
    cr_assert_eq(len, 1);
    cr_assert_eq(id[0], 'a');
    cr_assert_eq(sr_idtable_find(t, "c", 1), -1);
    cr_assert_null(sr_idtable_id(t, 2, &len));
    sr_idtable_destroy(t);
    sr_idtable_destroy(NULL);
}

Test(idtable, bounded_length_rejected)
{
    sr_idtable_t *t = sr_idtable_new(1);
    char big[SR_ID_MAX + 1];
    memset(big, 'x', sizeof big);
    cr_assert_eq(sr_idtable_intern(t, big, SR_ID_MAX + 1, NULL), SR_ERR_RANGE);
    cr_assert_eq(sr_idtable_intern(t, big, 0, NULL), SR_ERR_RANGE);
    cr_assert_eq(sr_idtable_find(t, big, SR_ID_MAX + 1), -1);
    cr_assert_eq(sr_idtable_intern(t, big, SR_ID_MAX, NULL), 0);
    cr_assert_eq(sr_idtable_size(t), 1);
    sr_idtable_destroy(t);
}

Test(idtable, every_id_findable_during_rehash)
{
    sr_idtable_t *t = sr_idtable_new(7);
    char buf[32];
    int saw_rehash = 0;
    for (uint32_t k = 0; k < 20000; k++) {
        cr_assert_eq(sr_idtable_intern(t, buf, key(buf, k), NULL), (int32_t)k);
        if (sr_idtable_rehashing(t)) {
            saw_rehash++;
            /* Mid-migration, old and new ids alike must be found. */
            if (saw_rehash % 97 == 0)
                for (uint32_t j = 0; j <= k; j++)
                    cr_assert_eq(sr_idtable_find(t, buf, key(buf, j)), (int32_t)j, "id %u at %u", j,
                                 k);
        }
    }
    cr_assert_gt(saw_rehash, 0);
}

Test(idtable, millions_of_ids, .timeout = 120)
{
    sr_idtable_t *t = sr_idtable_new(3);
    char buf[32];
    const uint32_t n = 2000000;
    for (uint32_t k = 0; k < n; k++)
        cr_assert_eq(sr_idtable_intern(t, buf, key(buf, k), NULL), (int32_t)k);
    cr_assert_eq(sr_idtable_size(t), n);
    for (uint32_t k = 0; k < n; k++) {
        int created = 1;
        cr_assert_eq(sr_idtable_intern(t, buf, key(buf, k), &created), (int32_t)k);
        cr_assert_eq(created, 0);
    }
    cr_assert_eq(sr_idtable_find(t, "item-x", 6), -1);
    size_t len;
    const char *id = sr_idtable_id(t, 1234567, &len);
    cr_assert_eq(len, strlen("item-1234567"));
    cr_assert_eq(memcmp(id, "item-1234567", len), 0);
    sr_idtable_destroy(t);
}

/* The two-step path (hash, prefetch, intern with the hash) is the same
 * table as sr_idtable_intern: same indices, across several resizes, and
 * findable by the plain lookup. */
Test(idtable, hashed_interning_matches_plain)
{
    sr_idtable_t *a = sr_idtable_new(7), *b = sr_idtable_new(7);
    char buf[32];
    for (uint32_t k = 0; k < 5000; k++) {
        size_t len = key(buf, k % 3000); /* repeats: lookups as well as inserts */
        uint64_t h = sr_idtable_hash_id(a, buf, len);
        sr_idtable_prefetch(a, h);
        int ca = -1, cb = -1;
        int32_t xa = sr_idtable_intern_hashed(a, buf, len, h, &ca);
        int32_t xb = sr_idtable_intern(b, buf, len, &cb);
        cr_assert_eq(xa, xb, "id %s", buf);
        cr_assert_eq(ca, cb);
        cr_assert_eq(sr_idtable_hash(a, (uint32_t)xa), h);
    }
    for (uint32_t k = 0; k < 3000; k++) {
        size_t len = key(buf, k);
        cr_assert_eq(sr_idtable_find(a, buf, len), (int32_t)k);
    }
    cr_assert_eq(sr_idtable_intern_hashed(a, "", 0, 0, NULL), SR_ERR_RANGE);
    sr_idtable_destroy(a);
    sr_idtable_destroy(b);
}

/* Ids that are prefixes of each other differ only in length, which the
 * slot tag carries: each keeps its own index. */
Test(idtable, prefix_ids_distinct)
{
    sr_idtable_t *t = sr_idtable_new(3);
    char buf[SR_ID_MAX];
    memset(buf, 'p', sizeof buf);
    for (size_t len = 1; len <= SR_ID_MAX; len++)
        cr_assert_eq(sr_idtable_intern(t, buf, len, NULL), (int32_t)(len - 1));
    for (size_t len = 1; len <= SR_ID_MAX; len++)
        cr_assert_eq(sr_idtable_find(t, buf, len), (int32_t)(len - 1));
    sr_idtable_destroy(t);
}
