/* The negative sampler: popularity-proportional over the ring of recent
 * positives mixed with uniform, and seeded per event so a replay draws the
 * same negatives. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "model_impl.h"
#include "sr_model.h"
#include "sr_model_state.h"

static sr_model_t *model_with_ring(float uniform)
{
    sr_model_params_t p;
    sr_model_params_init(&p);
    p.sampler_uniform = uniform;
    sr_model_t *m = sr_model_new(&p, NULL, 0);
    cr_assert_not_null(m);
    char id[16];
    for (int i = 0; i < 10; i++)
        cr_assert_eq(sr_model_item_intern(m, id, (size_t)snprintf(id, sizeof id, "i%d", i)), i);
    /* Ring: item 0 x2000, item 1 x1000, item 2 x500, item 3 x596. */
    sr_global_state_t g;
    sr_model_export_global(m, &g);
    g.ring_len = SR_SAMPLER_RING;
    g.ring_pos = 0;
    for (uint32_t k = 0; k < SR_SAMPLER_RING; k++)
        g.ring[k] = k < 2000 ? 0 : k < 3000 ? 1 : k < 3500 ? 2 : 3;
    cr_assert_eq(sr_model_import_global(m, &g), 0);
    return m;
}

static void histogram(sr_model_t *m, int32_t pos, double *freq, int draws)
{
    uint64_t rng = 12345;
    int32_t out[1];
    memset(freq, 0, 10 * sizeof *freq);
    int got = 0;
    for (int k = 0; k < draws; k++) {
        if (sr_model_sample_(m, &rng, pos, out, NULL, 1) == 1) {
            freq[out[0]] += 1;
            got++;
        }
    }
    for (int i = 0; i < 10; i++)
        freq[i] /= got;
}

Test(sampler, popularity_proportional)
{
    sr_model_t *m = model_with_ring(0.0f);
    double f[10];
    histogram(m, -1, f, 200000);
    cr_assert_float_eq(f[0], 2000.0 / 4096, 0.01);
    cr_assert_float_eq(f[1], 1000.0 / 4096, 0.01);
    cr_assert_float_eq(f[2], 500.0 / 4096, 0.01);
    cr_assert_float_eq(f[3], 596.0 / 4096, 0.01);
    cr_assert_eq(f[9], 0.0);
    sr_model_destroy(m);
}

Test(sampler, uniform_mixture)
{
    sr_model_t *m = model_with_ring(0.5f);
    double f[10];
    histogram(m, -1, f, 200000);
    cr_assert_float_eq(f[0], 0.5 * 2000.0 / 4096 + 0.05, 0.01);
    cr_assert_float_eq(f[9], 0.05, 0.01);
    sr_model_destroy(m);
}

Test(sampler, never_the_positive)
{
    sr_model_t *m = model_with_ring(0.3f);
    double f[10];
    histogram(m, 0, f, 50000);
    cr_assert_eq(f[0], 0.0);
    sr_model_destroy(m);
}

Test(sampler, per_event_seed_reproducible)
{
    sr_model_t *m = model_with_ring(0.5f);
    sr_event_t a = {
        .user = "u", .user_len = 1, .item = "i1", .item_len = 2, .ts_ms = 5, .id_hash = 777};
    sr_event_t b = a;
    b.id_hash = 778;
    uint64_t sa = sr_model_event_seed_(m, &a), sb = sr_model_event_seed_(m, &b);
    cr_assert_eq(sa, sr_model_event_seed_(m, &a));
    cr_assert_neq(sa, sb);
    int32_t n1[8], n2[8], n3[8];
    uint64_t r1 = sa, r2 = sa, r3 = sb;
    cr_assert_eq(sr_model_sample_(m, &r1, 1, n1, NULL, 8), sr_model_sample_(m, &r2, 1, n2, NULL, 8));
    cr_assert_eq(memcmp(n1, n2, sizeof n1), 0);
    sr_model_sample_(m, &r3, 1, n3, NULL, 8);
    cr_assert_neq(memcmp(n1, n3, sizeof n1), 0);
    /* Without an id hash the seed derives from the event's fields. */
    a.id_hash = 0;
    b = a;
    cr_assert_eq(sr_model_event_seed_(m, &a), sr_model_event_seed_(m, &b));
    b.ts_ms = 6;
    cr_assert_neq(sr_model_event_seed_(m, &a), sr_model_event_seed_(m, &b));
    sr_model_destroy(m);
}

/* The sampler says where each negative came from: the learn step leaves
 * the item of a uniform draw alone (model.uniform_neg_items). */
Test(sampler, reports_which_negatives_are_uniform)
{
    for (int all_uniform = 0; all_uniform < 2; all_uniform++) {
        sr_model_t *m = model_with_ring(all_uniform ? 1.0f : 0.0f);
        uint64_t rng = 99;
        int32_t out[64];
        unsigned char uni[64];
        memset(uni, 7, sizeof uni);
        int n = sr_model_sample_(m, &rng, -1, out, uni, 64);
        cr_assert_eq(n, 64);
        for (int k = 0; k < n; k++) cr_assert_eq(uni[k], all_uniform, "negative %d", k);
        sr_model_destroy(m);
    }
    /* Mixed: about the configured share, and ring draws are ring items. */
    sr_model_t *m = model_with_ring(0.5f);
    uint64_t rng = 5;
    int32_t out[64];
    unsigned char uni[64];
    int n_uni = 0, n = 0;
    for (int r = 0; r < 200; r++) {
        int got = sr_model_sample_(m, &rng, -1, out, uni, 64);
        for (int k = 0; k < got; k++) {
            n_uni += uni[k];
            if (!uni[k]) cr_assert_leq(out[k], 3, "a ring draw outside the ring");
        }
        n += got;
    }
    cr_assert_float_eq((double)n_uni / n, 0.5, 0.02);
    sr_model_destroy(m);
}
