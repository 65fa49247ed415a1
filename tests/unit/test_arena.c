/* The bump allocator (common/sr_arena.h). */
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include "sr_arena.h"

Test(arena, allocations_are_aligned_and_disjoint)
{
    sr_arena_t a = {.chunk = 4096}; /* small chunks: several of them */
    unsigned char *p[200];
    for (size_t n = 0; n < 200; n++) {
        p[n] = sr_arena_alloc(&a, n);
        cr_assert_not_null(p[n]);
        cr_expect_eq((uintptr_t)p[n] % 16, 0, "allocation of %zu bytes is not 16-aligned", n);
        memset(p[n], (int)n, n);
    }
    /* each allocation still holds its own byte: none overlapped another */
    for (size_t n = 1; n < 200; n++)
        for (size_t k = 0; k < n; k++)
            cr_assert_eq(p[n][k], (unsigned char)n, "allocation %zu was overwritten", n);
    sr_arena_free(&a);
}

/* Pointers never move: what was written early is intact after many more
 * allocations, including ones that need new chunks. */
Test(arena, earlier_allocations_survive_later_ones)
{
    sr_arena_t a = {0};
    uint32_t *first[100];
    for (uint32_t i = 0; i < 100; i++) {
        first[i] = sr_arena_alloc(&a, 1000 * sizeof(uint32_t));
        cr_assert_not_null(first[i]);
        for (uint32_t k = 0; k < 1000; k++) first[i][k] = i * 1000 + k;
    }
    for (uint32_t i = 0; i < 100; i++)
        for (uint32_t k = 0; k < 1000; k += 97) cr_assert_eq(first[i][k], i * 1000 + k);
    sr_arena_free(&a);
}

Test(arena, an_allocation_larger_than_a_chunk_works)
{
    sr_arena_t a = {.chunk = 4096};
    unsigned char *p = sr_arena_alloc(&a, 100000);
    cr_assert_not_null(p);
    memset(p, 1, 100000);
    unsigned char *q = sr_arena_alloc(&a, 16);
    cr_assert_not_null(q);
    cr_expect(q + 16 <= p || q >= p + 100000, "a small allocation overlaps the large one");
    sr_arena_free(&a);
}

/* The point of the arena: after a reset the same work reuses the chunks
 * (the first allocation comes back at the same address). */
Test(arena, reset_reuses_the_chunks)
{
    sr_arena_t a = {.chunk = 1 << 16};
    void *p1 = sr_arena_alloc(&a, 1000);
    for (int i = 0; i < 200; i++) cr_assert_not_null(sr_arena_alloc(&a, 1000));
    sr_arena_reset(&a);
    cr_expect_null(a.head, "reset left a current chunk");
    void *p2 = sr_arena_alloc(&a, 1000);
    cr_assert_not_null(p2);
    int reused = 0;
    for (sr_arena_chunk_t *c = a.head; c; c = c->next)
        reused |= (unsigned char *)p1 >= c->data && (unsigned char *)p1 < c->data + c->size;
    cr_expect(reused, "the first allocation after a reset is not in a recycled chunk");
    sr_arena_free(&a);
    cr_expect_null(a.head);
    cr_expect_null(a.free);
}

Test(arena, strdup_copies_and_terminates)
{
    sr_arena_t a = {0};
    char *s = sr_arena_strdup(&a, "user-42xyz", 7);
    cr_assert_not_null(s);
    cr_expect_str_eq(s, "user-42");
    char *e = sr_arena_strdup(&a, NULL, 0);
    cr_assert_not_null(e);
    cr_expect_str_eq(e, "");
    sr_arena_free(&a);
}
