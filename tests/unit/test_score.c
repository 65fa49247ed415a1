/* The scoring kernel (sr_score.h): the per-candidate path the ranker uses
 * for /v1/rank agrees with the full pass sr_model_score_all uses, the
 * features add up to the score, and "similar items" puts co-occurring
 * items first and never the item itself. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sr_model.h"
#include "sr_model_state.h"
#include "sr_score.h"

static sr_model_t *trained(void)
{
    sr_model_params_t p;
    sr_model_params_init(&p);
    p.dim = 16;
    sr_model_t *m = sr_model_new(&p, NULL, 0);
    cr_assert_not_null(m);
    char u[32], it[32];
    int64_t ts = 1700000000000LL;
    for (int k = 0; k < 5000; k++) {
        uint64_t s = (uint64_t)k * 0x9e3779b97f4a7c15ull;
        s ^= s >> 31;
        int user = (int)(s % 50), item = (int)((s >> 20) % 40) + (user % 4) * 40;
        snprintf(u, sizeof u, "u%d", user);
        snprintf(it, sizeof it, "i%d", item);
        sr_event_t ev = {.user = u,
                         .user_len = strlen(u),
                         .item = it,
                         .item_len = strlen(it),
                         .type = (sr_event_type_t)((s >> 40) % 4),
                         .ts_ms = ts += 20000};
        cr_assert_eq(sr_model_learn(m, &ev, NULL), 0);
    }
    return m;
}

Test(score, candidates_agree_with_full_pass)
{
    sr_model_t *m = trained();
    uint32_t n = sr_model_n_items(m);
    int64_t now = 1700000000000LL + 5000LL * 20000 + 1000;
    int32_t user = sr_model_find_user(m, "u7", 2);
    cr_assert_geq(user, 0);
    float *all = malloc(n * sizeof *all), *one = malloc(n * sizeof *one);
    int32_t *cand = malloc(n * sizeof *cand);
    sr_model_score_all(m, user, now, all);

    sr_score_items_t it;
    sr_score_conf_t c;
    sr_model_score_items(m, &it);
    sr_model_score_conf(m, now, &c);
    sr_user_state_t *us = malloc(sizeof *us);
    sr_model_export_user(m, (uint32_t)user, us);
    sr_score_recent_t rec[SR_RECENT_MAX];
    for (size_t k = 0; k < us->n_recent; k++) {
        rec[k].item = sr_model_find_item(m, us->recent[k].item, us->recent[k].item_len);
        rec[k].type = us->recent[k].type;
        rec[k].ts_ms = us->recent[k].ts_ms;
    }
    sr_score_user_t su = {.p = us->vec, .recent = rec, .n_recent = us->n_recent, .now_ms = now};
    for (uint32_t i = 0; i < n; i++)
        cand[i] = (int32_t)i;
    float scratch[64];
    sr_score_candidates(&it, &c, &su, cand, n, one, scratch);
    int seen = 0;
    for (uint32_t i = 0; i < n; i++) {
        cr_assert_float_eq(all[i], one[i], 1e-4f * (1.0f + fabsf(all[i])), "item %u: %g vs %g", i,
                           all[i], one[i]);
        seen += all[i] > 2.0f;
    }
    cr_assert_gt(seen, 0, "no item got the recency boost: the test is vacuous");

    /* The features, weighted by the blend, are the score. */
    float feat[1][SR_BLEND_NFEAT], s[16];
    sr_score_session(&it, &c, &su, s);
    sr_score_features(&it, &c, &su, s, &rec[us->n_recent - 1].item, 1, feat);
    float z = 0;
    for (int k = 0; k < SR_BLEND_NFEAT; k++)
        z += c.blend[k] * feat[0][k];
    cr_assert_float_eq(z, all[rec[us->n_recent - 1].item], 1e-4f * (1.0f + fabsf(z)));
    cr_assert_float_eq(feat[0][SR_F_LAST], 1.0f, 0);
    cr_assert_float_eq(feat[0][SR_F_SEEN], 1.0f, 0);
    free(all), free(one), free(cand), free(us);
    sr_model_destroy(m);
}

Test(score, cold_user_is_popularity_and_bias)
{
    sr_model_t *m = trained();
    uint32_t n = sr_model_n_items(m);
    float *a = malloc(n * sizeof *a);
    sr_model_score_all(m, -1, 1700000000000LL + 5000LL * 20000, a);
    sr_score_items_t it;
    sr_score_conf_t c;
    sr_model_score_items(m, &it);
    sr_model_score_conf(m, 1700000000000LL + 5000LL * 20000, &c);
    for (uint32_t i = 0; i < n; i++) {
        float want = c.blend[SR_F_BIAS] * it.bias[i] +
                     c.blend[SR_F_POP] * fmaxf(it.logpop[i] + c.pop_offset, SR_POP_FLOOR);
        cr_assert_float_eq(a[i], want, 1e-4f * (1.0f + fabsf(want)));
    }
    free(a);
    sr_model_destroy(m);
}

Test(score, similar_items)
{
    sr_model_t *m = trained();
    uint32_t n = sr_model_n_items(m);
    float *s = malloc(n * sizeof *s);
    sr_score_items_t it;
    sr_model_score_items(m, &it);
    int32_t x = sr_model_find_item(m, "i3", 2);
    cr_assert_geq(x, 0);
    sr_score_similar(&it, x, s);
    cr_assert(isinf(s[x]) && s[x] < 0, "an item is not its own neighbour");
    uint32_t top[5];
    cr_assert_eq(sr_topk(s, n, 5, NULL, top, NULL), 5);
    /* i3 lives in the i0..i39 group (users u0, u4, ...): its neighbours too. */
    for (int k = 0; k < 5; k++) {
        size_t len;
        const char *id = sr_model_item_id(m, top[k], &len);
        cr_assert_lt(atoi(id + 1), 40, "neighbour %.*s outside the group", (int)len, id);
    }
    free(s);
    sr_model_destroy(m);
}

Test(score, exp2_and_dot)
{
    for (float x = -30.0f; x <= 0.0f; x += 0.37f)
        cr_assert_float_eq(sr_exp2_neg(x), exp2f(x), 3e-5f * exp2f(x), "x=%g", x);
    cr_assert_eq(sr_exp2_neg(-200.0f), 0.0f);
    cr_assert_eq(sr_exp2_neg(NAN), 0.0f);
    float a[13], b[13];
    double want = 0;
    for (int k = 0; k < 13; k++) {
        a[k] = (float)k * 0.5f;
        b[k] = 1.0f - (float)k * 0.1f;
        want += (double)a[k] * b[k];
    }
    cr_assert_float_eq(sr_dot(a, b, 13), (float)want, 1e-4f);
    cr_assert_str_eq(sr_score_feature_name(SR_F_COOC), "cooc");
    cr_assert_str_eq(sr_score_feature_name(99), "unknown");
}

/* A hand-built catalogue for the session mixture: items 0..5, item 0 (the
 * user's oldest item, outside the two-item co-occurrence window) leads to
 * item 4, nothing leads to item 5. */
static const sr_score_nbr_t *hand_nbrs(const void *opaque, int32_t item, size_t *n)
{
    static const sr_score_nbr_t l0[] = {{4, 3.0f}, {1, 1.0f}};
    static const sr_score_nbr_t l1[] = {{0, 1.0f}};
    (void)opaque;
    *n = item == 0 ? 2 : item == 1 ? 1 : 0;
    return item == 0 ? l0 : item == 1 ? l1 : NULL;
}

Test(score, session_mixture_reaches_past_the_window)
{
    enum { N = 6, DIM = 8 };
    static float q[N * DIM], bias[N], logpop[N], count[N] = {4, 2, 1, 1, 3, 3};
    sr_score_items_t it = {.dim = DIM, .n_items = N, .q = q, .bias = bias, .logpop = logpop,
                           .count = count, .nbrs = hand_nbrs};
    sr_score_conf_t c;
    memset(&c, 0, sizeof c);
    c.blend[SR_F_SCOND] = 1.0f;
    for (int t = 0; t < SR_EV_NTYPES; t++)
        c.weight[t] = 1.0f;
    c.recent_half_life_s = 1800;
    c.cooc_window = 2;
    int64_t now = 1700000000000LL;
    /* oldest first: 0 (30 min ago), 2, 3 (now) */
    sr_score_recent_t rec[] = {{0, SR_EV_VIEW, now - 1800000}, {2, SR_EV_VIEW, now - 60000},
                               {3, SR_EV_VIEW, now}};
    sr_score_user_t u = {.p = NULL, .recent = rec, .n_recent = 3, .now_ms = now};
    float out[N], scratch[2 * DIM];
    sr_score_all(&it, &c, &u, out, scratch);
    /* a = (0.5, ~0.98, 1) / their sum; item 4 gets a_0 * co(0,4) / n_0 */
    float a0 = 0.5f / (0.5f + sr_exp2_neg(-60.0f / 1800.0f) + 1.0f);
    cr_assert_float_eq(out[4], a0 * 3.0f / 4.0f, 1e-4f);
    cr_assert_float_eq(out[5], 0.0f, 0.0f, "an unlinked item gets nothing");
    cr_assert_float_eq(out[0], 0.0f, 0.0f, "a seen item is not in the mixture");
    /* the windowed co-occurrence features do not see item 0's list */
    float feat[1][SR_BLEND_NFEAT], s[DIM];
    int32_t x = 4;
    sr_score_session(&it, &c, &u, s);
    sr_score_features(&it, &c, &u, s, &x, 1, feat);
    cr_assert_float_eq(feat[0][SR_F_SCOND], out[4], 1e-6f);
    cr_assert_float_eq(feat[0][SR_F_COOC], 0.0f, 0.0f);
    cr_assert_float_eq(feat[0][SR_F_COND], 0.0f, 0.0f);
    cr_assert_float_eq(feat[0][SR_F_LCOND], 0.0f, 0.0f);
    cr_assert_str_eq(sr_score_feature_name(SR_F_SCOND), "scond");
}
