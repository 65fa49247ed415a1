/* The two-stage recommend and similar (ranker/quant.h) against the plain
 * full pass:
 * two custom rankers fed the same catalogue, one with opts.prune and one
 * without, must answer every request with the same ids and the same score
 * bits.  Random matrices, heavy ties, extreme and non-finite values, zero
 * vectors, co-occurrence and recent items (the sparse terms), excluded
 * items, negative blend weights, several dims (the AVX2 path at dim % 16
 * == 0, the scalar one otherwise), and again after item updates.
 * /v1/similar (cosine plus co-occurrence) is checked on the same
 * catalogues for a sample of items. */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quant.h"
#include "ranker_int.h"
#include "sr_err.h"

#define NOW_MS 1700000000000LL
#define MAXDIM 64

typedef struct user_src {
    int found, has_vec, dim;
    float vec[MAXDIM];
    sr_ranker_recent_t recent[32];
    char ids[32][16];
    size_t n_recent;
} user_src_t;

static user_src_t usr;

static int get_user(void *opaque, const char *user, size_t len, sr_ranker_user_t *out)
{
    (void)opaque;
    (void)user;
    (void)len;
    out->found = usr.found;
    out->has_vec = usr.has_vec;
    memcpy(out->vec, usr.vec,
           (size_t)usr.dim * sizeof(float)); /* the ranker's buffer: dim floats */
    memcpy(out->recent, usr.recent, usr.n_recent * sizeof(usr.recent[0]));
    out->n_recent = usr.n_recent;
    out->events = (int64_t)usr.n_recent;
    return 0;
}

static int64_t fixed_now(void *opaque)
{
    (void)opaque;
    return NOW_MS;
}

static uint64_t rng = 88172645463325252ULL;
static uint64_t next_u64(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}
static float frand(void) /* [-1, 1) */
{
    return (float)((double)(next_u64() >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}
static uint32_t urand(uint32_t n)
{
    return (uint32_t)(next_u64() % n);
}

typedef struct pair {
    sr_ranker_t *on, *off;
    int dim;
} pair_t;

static pair_t make_pair(int dim, const float *blend)
{
    pair_t p = {.dim = dim};
    char err[256];
    for (int k = 0; k < 2; k++) {
        sr_ranker_opts_t o;
        sr_ranker_opts_init(&o);
        o.dim = dim;
        o.get_user = get_user;
        o.now_ms = fixed_now;
        o.prune = k == 0;
        if (blend) memcpy(o.score.blend, blend, sizeof(o.score.blend));
        sr_ranker_t *r = sr_ranker_new_custom(&o, err, sizeof(err));
        cr_assert_not_null(r, "%s", err);
        if (k == 0)
            p.on = r;
        else
            p.off = r;
    }
    return p;
}

static void free_pair(pair_t *p)
{
    sr_ranker_destroy(p->on);
    sr_ranker_destroy(p->off);
}

/* Applies n items i<first>..: vecs (n x dim), bias, logpop, counts, and
 * random co-occurrence lists of up to 12 neighbours among 0..nbr_range. */
static void apply(pair_t *p, uint32_t first, uint32_t n, const float *vecs, const float *bias,
                  const float *logpop, uint32_t nbr_range)
{
    static char ids[1 << 16][12], nid[1 << 16][12];
    sr_item_update_t *u = calloc(n, sizeof(*u));
    sr_item_nbr_in_t(*nb)[12] = calloc(n, sizeof(*nb));
    cr_assert(u && nb);
    for (uint32_t j = 0; j < n; j++) {
        uint32_t i = first + j;
        snprintf(ids[i], sizeof(ids[i]), "i%u", i);
        u[j].id = ids[i];
        u[j].id_len = strlen(ids[i]);
        u[j].num = -1;
        u[j].vec = vecs ? vecs + (size_t)j * p->dim : NULL;
        u[j].bias = bias ? bias[j] : 0;
        u[j].set_bias = bias != NULL;
        u[j].logpop = logpop ? logpop[j] : 0;
        u[j].set_logpop = logpop != NULL;
        u[j].count = 1.0f + (float)urand(50);
        u[j].set_count = 1;
        if (nbr_range) {
            size_t m = urand(13);
            for (size_t e = 0; e < m; e++) {
                uint32_t x = urand(nbr_range);
                snprintf(nid[x], sizeof(nid[x]), "i%u", x);
                nb[j][e].id = nid[x];
                nb[j][e].id_len = strlen(nid[x]);
                nb[j][e].count = 1.0f + (float)urand(20);
            }
            u[j].nbrs = nb[j];
            u[j].n_nbrs = m;
            u[j].set_nbrs = 1;
        }
    }
    cr_assert_geq(sr_items_apply(p->on->items, u, n), 0);
    cr_assert_geq(sr_items_apply(p->off->items, u, n), 0);
    free(u);
    free(nb);
}

static void random_user(int dim, uint32_t n_items, size_t n_recent, int has_vec, float vscale)
{
    memset(&usr, 0, sizeof(usr));
    usr.found = 1;
    usr.dim = dim;
    usr.has_vec = has_vec;
    for (int d = 0; d < dim; d++)
        usr.vec[d] = frand() * vscale;
    for (size_t j = 0; j < n_recent; j++) {
        uint32_t x = urand(n_items + 3); /* a few unknown */
        snprintf(usr.ids[j], sizeof(usr.ids[j]), "i%u", x);
        usr.recent[j].num = -1;
        usr.recent[j].id = usr.ids[j];
        usr.recent[j].id_len = strlen(usr.ids[j]);
        usr.recent[j].ts_ms = NOW_MS - (int64_t)(n_recent - j) * 60000 - urand(60000);
        usr.recent[j].type = (int)urand(4);
    }
    usr.n_recent = n_recent;
}

static int same_float(float a, float b)
{
    return memcmp(&a, &b, sizeof a) == 0;
}

/* Both rankers, the same request: the same ids and score bits. */
static void expect_same(pair_t *p, size_t k, sr_exclude_t ex, const char *what)
{
    sr_ranker_result_t a, b;
    cr_assert_eq(sr_ranker_recommend(p->on, "u", 1, k, ex, &a), 0);
    cr_assert_eq(sr_ranker_recommend(p->off, "u", 1, k, ex, &b), 0);
    cr_assert_eq(a.source, b.source, "%s", what);
    cr_assert_eq(a.n, b.n, "%s: k=%zu n %zu vs %zu", what, k, a.n, b.n);
    for (size_t j = 0; j < a.n; j++) {
        cr_assert_str_eq(a.items[j].id, b.items[j].id, "%s: k=%zu rank %zu", what, k, j);
        cr_assert(same_float(a.items[j].score, b.items[j].score),
                  "%s: k=%zu rank %zu score %.9g vs %.9g", what, k, j, a.items[j].score,
                  b.items[j].score);
    }
    sr_ranker_result_free(&a);
    sr_ranker_result_free(&b);
}

/* /v1/similar from both rankers for a few items (the first, the last,
 * random ones): the same ids and score bits. */
static void expect_same_similar(pair_t *p, uint32_t n, const char *what)
{
    const size_t ks[] = {1, 3, 10, 32, (size_t)n - 1, (size_t)n + 7};
    for (int t = 0; t < 6; t++) {
        uint32_t x = t == 0 ? 0 : t == 1 ? n - 1 : urand(n);
        char id[16];
        snprintf(id, sizeof(id), "i%u", x);
        for (size_t a = 0; a < sizeof(ks) / sizeof(ks[0]); a++) {
            sr_ranker_result_t r1, r2;
            cr_assert_eq(sr_ranker_similar(p->on, id, strlen(id), ks[a], &r1), 0);
            cr_assert_eq(sr_ranker_similar(p->off, id, strlen(id), ks[a], &r2), 0);
            cr_assert_eq(r1.n, r2.n, "%s: similar %s k=%zu n %zu vs %zu", what, id, ks[a], r1.n,
                         r2.n);
            for (size_t j = 0; j < r1.n; j++) {
                cr_assert_str_eq(r1.items[j].id, r2.items[j].id, "%s: similar %s k=%zu rank %zu",
                                 what, id, ks[a], j);
                cr_assert(same_float(r1.items[j].score, r2.items[j].score),
                          "%s: similar %s k=%zu rank %zu score %.9g vs %.9g", what, id, ks[a], j,
                          r1.items[j].score, r2.items[j].score);
            }
            sr_ranker_result_free(&r1);
            sr_ranker_result_free(&r2);
        }
    }
}

static void expect_same_all_k(pair_t *p, uint32_t n, const char *what)
{
    const size_t ks[] = {1, 2, 10, 32, 100, (size_t)n, (size_t)n + 7};
    const sr_exclude_t ex[] = {SR_EXCLUDE_NONE, SR_EXCLUDE_PURCHASED, SR_EXCLUDE_SEEN};
    for (size_t a = 0; a < sizeof(ks) / sizeof(ks[0]); a++)
        for (size_t e = 0; e < 3; e++)
            expect_same(p, ks[a], ex[e], what);
    expect_same_similar(p, n, what);
}

static void fill_random(float *v, float *b, float *lp, uint32_t n, int dim, float scale)
{
    for (size_t i = 0; i < (size_t)n * dim; i++)
        v[i] = frand() * scale;
    for (uint32_t i = 0; i < n; i++) {
        b[i] = frand() * 0.5f;
        lp[i] = urand(10) == 0 ? -INFINITY : frand() * 8.0f;
    }
}

Test(ranker_prune, equals_full_pass_on_random_matrices)
{
    const int dims[] = {32, 8, 24, 48, 16, 5};
    for (size_t di = 0; di < sizeof(dims) / sizeof(dims[0]); di++) {
        int dim = dims[di];
        uint32_t n = 3001 + (uint32_t)di; /* tails of 8 and 4 */
        pair_t p = make_pair(dim, NULL);
        float *v = malloc((size_t)n * dim * sizeof(float)), *b = malloc(n * sizeof(float)),
              *lp = malloc(n * sizeof(float));
        fill_random(v, b, lp, n, dim, 1.0f);
        apply(&p, 0, n, v, b, lp, n);
        for (int trial = 0; trial < 6; trial++) {
            random_user(dim, n, (size_t)urand(20), trial != 3, trial == 4 ? 1e-3f : 1.0f);
            char what[64];
            snprintf(what, sizeof(what), "dim %d trial %d", dim, trial);
            expect_same_all_k(&p, n, what);
        }
        free(v);
        free(b);
        free(lp);
        free_pair(&p);
    }
}

Test(ranker_prune, equals_full_pass_with_ties)
{
    int dim = 32;
    uint32_t n = 2000;
    pair_t p = make_pair(dim, NULL);
    float *v = malloc((size_t)n * dim * sizeof(float)), *b = malloc(n * sizeof(float)),
          *lp = malloc(n * sizeof(float));
    /* only 7 distinct rows, biases and popularities: every score is tied
     * with hundreds of others, the top K cuts through a tie */
    float proto[7][32];
    for (int r = 0; r < 7; r++)
        for (int d = 0; d < dim; d++)
            proto[r][d] = (float)(urand(5)) - 2.0f;
    for (uint32_t i = 0; i < n; i++) {
        memcpy(v + (size_t)i * dim, proto[i % 7], sizeof(proto[0]));
        b[i] = (float)(i % 3);
        lp[i] = (float)(i % 2);
    }
    apply(&p, 0, n, v, b, lp, 0);
    for (int trial = 0; trial < 5; trial++) {
        random_user(dim, n, trial, 1, 1.0f);
        for (int d = 0; d < dim; d++)
            usr.vec[d] = (float)urand(3) - 1.0f; /* exact small integers: exact ties */
        expect_same_all_k(&p, n, "ties");
    }
    /* all items equal */
    for (uint32_t i = 0; i < n; i++) {
        memcpy(v + (size_t)i * dim, proto[0], sizeof(proto[0]));
        b[i] = 0.5f;
        lp[i] = 1.0f;
    }
    apply(&p, 0, n, v, b, lp, 0);
    random_user(dim, n, 0, 1, 1.0f);
    expect_same_all_k(&p, n, "all equal");
    free(v);
    free(b);
    free(lp);
    free_pair(&p);
}

Test(ranker_prune, equals_full_pass_on_extreme_values)
{
    const int dims[] = {32, 24};
    for (size_t di = 0; di < 2; di++) {
        int dim = dims[di];
        uint32_t n = 1500;
        pair_t p = make_pair(dim, NULL);
        float *v = malloc((size_t)n * dim * sizeof(float)), *b = malloc(n * sizeof(float)),
              *lp = malloc(n * sizeof(float));
        fill_random(v, b, lp, n, dim, 1.0f);
        for (uint32_t i = 0; i < n; i++) {
            float *q = v + (size_t)i * dim;
            switch (urand(12)) {
            case 0:
                memset(q, 0, (size_t)dim * sizeof(float));
                break; /* zero row */
            case 1:
                q[urand((uint32_t)dim)] = 1e30f;
                break;
            case 2:
                q[urand((uint32_t)dim)] = -FLT_MAX;
                break;
            case 3:
                q[urand((uint32_t)dim)] = INFINITY;
                break;
            case 4:
                q[urand((uint32_t)dim)] = NAN;
                break;
            case 5:
                for (int d = 0; d < dim; d++)
                    q[d] = frand() * 1e-40f; /* subnormal */
                break;
            case 6:
                q[0] = 1e-3f, q[1] = 1e3f;
                break; /* tiny next to large */
            case 7:
                b[i] = 1e35f * frand();
                break;
            case 8:
                b[i] = urand(2) ? INFINITY : NAN;
                break;
            case 9:
                lp[i] = 1e30f;
                break;
            default:
                break;
            }
        }
        apply(&p, 0, n, v, b, lp, n);
        const float scales[] = {1.0f, 1e20f, 1e-30f, 3e38f, 0.0f};
        for (size_t si = 0; si < 5; si++) {
            random_user(dim, n, (size_t)urand(10), 1, scales[si]);
            expect_same_all_k(&p, n, "extreme");
        }
        random_user(dim, n, 5, 1, 1.0f);
        usr.vec[1] = INFINITY; /* not finite: the full pass */
        expect_same_all_k(&p, n, "inf user");
        free(v);
        free(b);
        free(lp);
        free_pair(&p);
    }
}

Test(ranker_prune, equals_full_pass_with_negative_weights_and_zero_user)
{
    float blend[SR_BLEND_NFEAT];
    for (int f = 0; f < SR_BLEND_NFEAT; f++)
        blend[f] = (f % 2 ? -1.0f : 1.0f) * (0.25f + 0.5f * (float)f);
    int dim = 32;
    uint32_t n = 4099;
    pair_t p = make_pair(dim, blend);
    float *v = malloc((size_t)n * dim * sizeof(float)), *b = malloc(n * sizeof(float)),
          *lp = malloc(n * sizeof(float));
    fill_random(v, b, lp, n, dim, 2.0f);
    apply(&p, 0, n, v, b, lp, 300); /* dense co-occurrence among the first 300 */
    for (int trial = 0; trial < 6; trial++) {
        /* no vector: the dense part is the session vector only, or zero */
        random_user(dim, n, trial == 0 ? 0 : (size_t)(5 + urand(25)), trial % 2, 1.0f);
        for (size_t j = 0; j < usr.n_recent; j++)
            if (urand(2)) {
                uint32_t x = urand(300);
                snprintf(usr.ids[j], sizeof(usr.ids[j]), "i%u", x);
                usr.recent[j].id_len = strlen(usr.ids[j]);
            }
        expect_same_all_k(&p, n, "negative weights");
    }
    free(v);
    free(b);
    free(lp);
    free_pair(&p);
}

Test(ranker_prune, equals_full_pass_after_item_updates)
{
    int dim = 32;
    uint32_t n = 2500;
    pair_t p = make_pair(dim, NULL);
    float *v = malloc((size_t)(n + 600) * dim * sizeof(float)),
          *b = malloc((n + 600) * sizeof(float)), *lp = malloc((n + 600) * sizeof(float));
    fill_random(v, b, lp, n, dim, 1.0f);
    apply(&p, 0, n, v, b, lp, n);
    random_user(dim, n, 8, 1, 1.0f);
    expect_same_all_k(&p, n, "before updates");
    for (int round = 0; round < 8; round++) {
        /* overwrite a random range (some rows become the user's best, some
         * zero), then append new items */
        uint32_t first = urand(n - 200), m = 200;
        fill_random(v, b, lp, m, dim, round % 2 ? 3.0f : 0.5f);
        for (uint32_t j = 0; j < m; j += 7)
            memset(v + (size_t)j * dim, 0, (size_t)dim * sizeof(float));
        for (uint32_t j = 1; j < m; j += 11)
            for (int d = 0; d < dim; d++)
                v[(size_t)j * dim + d] = usr.vec[d] * 4.0f;
        apply(&p, first, m, v, b, lp, n);
        fill_random(v, b, lp, 75, dim, 1.0f);
        apply(&p, n, 75, v, b, lp, n + 75);
        n += 75;
        /* vector-less updates keep the row (and its int8 copy) */
        apply(&p, urand(n - 10), 10, NULL, NULL, NULL, 0);
        expect_same_all_k(&p, n, "after updates");
    }
    free(v);
    free(b);
    free(lp);
    free_pair(&p);
}

/* The bound itself: every row's exact dense score lies under the upper
 * bound stage one reports (k = n keeps every row). */
Test(ranker_prune, upper_bound_holds_for_every_row)
{
    const int dims[] = {32, 24};
    for (size_t di = 0; di < 2; di++) {
        int dim = dims[di];
        uint32_t n = 2003;
        float *q = malloc((size_t)n * dim * sizeof(float)), *b = malloc(n * sizeof(float)),
              *lp = malloc(n * sizeof(float)), *sc = malloc(n * sizeof(float)),
              *exact = malloc(n * sizeof(float)), *heap = malloc((n + 1) * sizeof(float)),
              *ucand = malloc(n * sizeof(float));
        int8_t *codes = malloc((size_t)n * dim);
        uint32_t *cand = malloc(n * sizeof(uint32_t)), *rows = malloc(n * sizeof(uint32_t));
        uint8_t *flags = calloc(n + 8, 1);
        fill_random(q, b, lp, n, dim, 1.0f);
        for (uint32_t i = 0; i < n; i++) {
            if (i % 5 == 0)
                for (int d = 0; d < dim; d++)
                    q[(size_t)i * dim + d] *= 1000.0f;
            sc[i] = sr_quant_row_(q + (size_t)i * dim, dim, codes + (size_t)i * dim);
            rows[i] = i;
        }
        float v[MAXDIM];
        int16_t w[MAXDIM];
        for (int d = 0; d < dim; d++)
            v[d] = frand() * (d % 3 ? 1.0f : 100.0f);
        sr_quant_user_t qu;
        cr_assert_eq(sr_quant_user_(v, dim, w, &qu), 0);
        sr_score_conf_t c = {.blend = {[SR_F_BIAS] = 0.5f, [SR_F_POP] = 0.25f}};
        sr_score_items_t it = {.dim = dim, .n_items = n, .q = q, .bias = b, .logpop = lp};
        sr_score_dense_rows(&it, &c, v, rows, n, exact);
        sr_quant_scan_t a = {.n = n,
                             .dim = dim,
                             .codes = codes,
                             .scale = sc,
                             .bias = b,
                             .logpop = lp,
                             .wb = 0.5f,
                             .wp = 0.25f,
                             .pop_floor = SR_POP_FLOOR};
        float tau;
        /* k > n: the heap never fills, tau stays -inf, every row comes back */
        size_t nc = sr_quant_scan_(&a, &qu, flags, n + 1, heap, cand, ucand, &tau);
        cr_assert_eq(nc, n);
        cr_assert(isinf(tau) && tau < 0);
        double l1 = 0;
        for (int d = 0; d < dim; d++)
            l1 += fabsf(v[d]);
        for (size_t j = 0; j < nc; j++) {
            cr_assert_eq(cand[j], j);
            cr_assert_geq(ucand[j], exact[j], "row %zu", j);
            /* and not vacuous: about the (s/2) ||v||_1 of int8 rounding */
            if (sc[j] > 0) cr_assert_lt((ucand[j] - exact[j]) / (sc[j] * l1), 1.1, "row %zu", j);
        }
        free(q), free(b), free(lp), free(sc), free(exact), free(heap), free(ucand);
        free(codes), free(cand), free(rows), free(flags);
    }
}

Test(ranker_prune, quantiser_edge_rows)
{
    int8_t c[8];
    float z[8] = {0};
    cr_assert_eq(sr_quant_row_(z, 8, c), 0.0f);
    float inf[8] = {1, INFINITY};
    cr_assert(isinf(sr_quant_row_(inf, 8, c)));
    float nan[8] = {NAN};
    cr_assert(isinf(sr_quant_row_(nan, 8, c)));
    float sub[8] = {1e-45f};
    float s = sr_quant_row_(sub, 8, c);
    cr_assert(s == 0.0f || isinf(s) || s > 0);
    float big[8] = {FLT_MAX, -FLT_MAX, 1};
    s = sr_quant_row_(big, 8, c);
    cr_assert(isfinite(s));
    cr_assert_eq(c[0], 127);
    cr_assert_eq(c[1], -127);
    float u[4] = {1, INFINITY};
    int16_t w[4];
    sr_quant_user_t qu;
    cr_assert_eq(sr_quant_user_(u, 4, w, &qu), -1);
}

/* The cosine bound: every row's exact /v1/similar score (no
 * co-occurrence) lies under the upper bound stage one reports. */
Test(ranker_prune, cosine_upper_bound_holds_for_every_row)
{
    const int dims[] = {32, 24};
    for (size_t di = 0; di < 2; di++) {
        int dim = dims[di];
        uint32_t n = 2003;
        float *q = malloc((size_t)n * dim * sizeof(float)), *b = malloc(n * sizeof(float)),
              *lp = malloc(n * sizeof(float)), *sc = malloc(n * sizeof(float)),
              *exact = malloc(n * sizeof(float)), *heap = malloc((n + 1) * sizeof(float)),
              *ucand = malloc(n * sizeof(float)), *norm = malloc(n * sizeof(float));
        int8_t *codes = malloc((size_t)n * dim);
        uint32_t *cand = malloc(n * sizeof(uint32_t));
        uint8_t *flags = calloc(n + 8, 1);
        fill_random(q, b, lp, n, dim, 1.0f);
        for (uint32_t i = 0; i < n; i++) {
            float *row = q + (size_t)i * dim;
            if (i % 5 == 0)
                for (int d = 0; d < dim; d++)
                    row[d] *= 1000.0f;
            if (i % 7 == 0)
                for (int d = 0; d < dim; d++)
                    row[d] *= 1e-3f;
            if (i % 97 == 0) memset(row, 0, (size_t)dim * sizeof(float));
            sc[i] = sr_quant_row_(row, dim, codes + (size_t)i * dim);
            norm[i] = sqrtf(sr_dot(row, row, dim)) + 1e-12f;
        }
        for (uint32_t x = 1; x < n; x += 500) {
            sr_score_items_t it = {.dim = dim, .n_items = n, .q = q, .bias = b, .logpop = lp};
            sr_score_similar(&it, (int32_t)x, exact);
            int16_t w[MAXDIM];
            sr_quant_user_t qu;
            cr_assert_eq(sr_quant_user_(q + (size_t)x * dim, dim, w, &qu), 0);
            sr_quant_scan_t a = {.n = n,
                                 .dim = dim,
                                 .codes = codes,
                                 .scale = sc,
                                 .norm = norm,
                                 .inv_unorm = 1.0f / norm[x]};
            float tau;
            size_t nc = sr_quant_scan_(&a, &qu, flags, n + 1, heap, cand, ucand, &tau);
            cr_assert_eq(nc, n);
            for (size_t j = 0; j < nc; j++) {
                if (j == x) continue; /* the full pass sets its own -inf */
                cr_assert_geq(ucand[j], exact[j], "item %u row %zu", x, j);
                /* and not vacuous: within a few percent of a unit cosine */
                cr_assert_lt(ucand[j] - exact[j], 0.05f, "item %u row %zu", x, j);
            }
        }
        free(q), free(b), free(lp), free(sc), free(exact), free(heap), free(ucand), free(norm);
        free(codes), free(cand), free(flags);
    }
}
