/* The online model: gradients against finite differences, determinism,
 * snapshots (round trip and rejection of bad input), state export/import
 * continuing bit-identically, parameters, and that it learns. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sr_err.h"
#include "sr_model.h"
#include "sr_model_state.h"

/* ------------------------------------------------------------ helpers */

typedef struct buf {
    uint8_t *p;
    size_t n, cap, rd;
} buf_t;

static int buf_write(void *o, const void *d, size_t len)
{
    buf_t *b = o;
    if (b->n + len > b->cap) {
        b->cap = (b->n + len) * 2;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, d, len);
    b->n += len;
    return 0;
}

static int buf_read(void *o, void *d, size_t len)
{
    buf_t *b = o;
    if (b->rd + len > b->n) return -1;
    memcpy(d, b->p + b->rd, len);
    b->rd += len;
    return 0;
}

static buf_t save(const sr_model_t *m)
{
    buf_t b = {0};
    cr_assert_eq(sr_model_save(m, buf_write, &b), 0);
    return b;
}

static sr_model_t *copy(const sr_model_t *m)
{
    buf_t b = save(m);
    char err[128];
    sr_model_t *c = sr_model_load(buf_read, &b, err, sizeof err);
    cr_assert_not_null(c, "%s", err);
    free(b.p);
    return c;
}

typedef struct evs {
    char user[64], item[64];
    sr_event_t ev;
} evs_t;

/* A small shop-like stream: users browse sessions within a category of
 * items, repeat views, then carts and purchases of the same item. */
static void gen(evs_t *e, int k)
{
    uint64_t s = (uint64_t)k * 0x9e3779b97f4a7c15ull + 17;
    s ^= s >> 29;
    s *= 0xbf58476d1ce4e5b9ull;
    s ^= s >> 32;
    int user = (int)(s % 40);
    int cat = (user * 7 + k / 50) % 10;
    int item = cat * 20 + (int)((s >> 20) % 20);
    int t = (int)((s >> 40) % 10);
    sr_event_type_t type = t < 6   ? SR_EV_VIEW
                           : t < 7 ? SR_EV_CLICK
                           : t < 8 ? SR_EV_CART
                           : t < 9 ? SR_EV_PURCHASE
                                   : SR_EV_IMPRESSION;
    snprintf(e->user, sizeof e->user, "user-%d", user);
    snprintf(e->item, sizeof e->item, "item-%d", item);
    e->ev = (sr_event_t){.user = e->user,
                         .user_len = strlen(e->user),
                         .item = e->item,
                         .item_len = strlen(e->item),
                         .type = type,
                         .ts_ms = 1700000000000LL + (int64_t)k * 30000,
                         .id_hash = s | 1};
}

static void run(sr_model_t *m, int from, int to)
{
    for (int k = from; k < to; k++) {
        evs_t e;
        gen(&e, k);
        cr_assert_eq(sr_model_learn(m, &e.ev, NULL), 0);
    }
}

static sr_model_t *fresh(void)
{
    sr_model_params_t p;
    sr_model_params_init(&p);
    p.dim = 16;
    char err[128];
    sr_model_t *m = sr_model_new(&p, err, sizeof err);
    cr_assert_not_null(m, "%s", err);
    return m;
}

static int same(buf_t a, buf_t b)
{
    return a.n == b.n && memcmp(a.p, b.p, a.n) == 0;
}

/* ------------------------------------------------------------ gradients */

static float loss_at(const sr_model_t *m, const sr_user_state_t *us, const sr_event_t *ev)
{
    sr_model_t *c = copy(m);
    cr_assert_geq(sr_model_import_user(c, us), 0);
    sr_learn_result_t r;
    cr_assert_eq(sr_model_learn(c, ev, &r), 0);
    sr_model_destroy(c);
    return r.loss;
}

Test(model, gradient_matches_finite_differences)
{
    sr_model_params_t p;
    sr_model_params_init(&p);
    p.dim = 8;
    p.l2 = 0;
    p.clip = 1e6f;
    p.lr = 0.01f;
    p.blend_lr = 0;
    sr_model_t *m = sr_model_new(&p, NULL, 0);
    run(m, 0, 400);
    evs_t e;
    gen(&e, 400);
    int32_t u = sr_model_find_user(m, e.user, e.ev.user_len);
    cr_assert_geq(u, 0);
    sr_user_state_t *us = malloc(sizeof *us), *after = malloc(sizeof *after);
    float p0[8], v[8];
    sr_model_export_user(m, (uint32_t)u, us);
    memcpy(p0, us->vec, sizeof p0);
    /* Analytic gradient of p_u, recovered from the AdaGrad step. */
    sr_model_t *c = copy(m);
    cr_assert_eq(sr_model_learn(c, &e.ev, NULL), 0);
    /* Snapshots order users by id: look the user up again in the copy. */
    sr_model_export_user(c, (uint32_t)sr_model_find_user(c, e.user, e.ev.user_len), after);
    float scale = sqrtf(after->acc + 0.01f) / p.lr;
    float g[8];
    for (int d = 0; d < 8; d++)
        g[d] = (p0[d] - after->vec[d]) * scale;
    sr_model_destroy(c);
    float gnorm = 0;
    for (int d = 0; d < 8; d++) {
        const float h = 1e-2f;
        memcpy(v, p0, sizeof v);
        us->vec = v;
        v[d] = p0[d] + h;
        float lp = loss_at(m, us, &e.ev);
        v[d] = p0[d] - h;
        float lm = loss_at(m, us, &e.ev);
        float fd = (lp - lm) / (2 * h);
        cr_assert_float_eq(g[d], fd, 2e-3f + 0.02f * fabsf(fd), "dim %d: analytic %g fd %g", d,
                           g[d], fd);
        gnorm += fabsf(g[d]);
    }
    cr_assert_gt(gnorm, 1e-3f, "degenerate test: zero gradient");
    free(us);
    free(after);
    sr_model_destroy(m);
}

static float loss_at_item(const sr_model_t *m, const sr_item_state_t *is, const sr_event_t *ev)
{
    sr_model_t *c = copy(m);
    cr_assert_geq(sr_model_import_item(c, is), 0);
    sr_learn_result_t r;
    cr_assert_eq(sr_model_learn(c, ev, &r), 0);
    sr_model_destroy(c);
    return r.loss;
}

/* The item side: q_i and b_i of the positive item.  The event is chosen so
 * the item is not in the user's recent list (s_u is held fixed by design:
 * it carries no gradient, and a finite difference would see it move). */
Test(model, item_gradient_matches_finite_differences)
{
    sr_model_params_t p;
    sr_model_params_init(&p);
    p.dim = 8;
    p.l2 = 0;
    p.clip = 1e6f;
    p.lr = 0.01f;
    p.blend_lr = 0;
    sr_model_t *m = sr_model_new(&p, NULL, 0);
    run(m, 0, 400);
    evs_t e;
    sr_user_state_t *us = malloc(sizeof *us);
    int k = 400, found = 0;
    for (; k < 1000 && !found; k++) {
        gen(&e, k);
        int32_t u = sr_model_find_user(m, e.user, e.ev.user_len);
        int32_t i = sr_model_find_item(m, e.item, e.ev.item_len);
        if (u < 0 || i < 0 || e.ev.type == SR_EV_IMPRESSION) {
            cr_assert_eq(sr_model_learn(m, &e.ev, NULL), 0);
            continue;
        }
        sr_model_export_user(m, (uint32_t)u, us);
        found = 1;
        for (size_t r = 0; r < us->n_recent; r++)
            if (us->recent[r].item_len == e.ev.item_len &&
                memcmp(us->recent[r].item, e.item, e.ev.item_len) == 0)
                found = 0;
        if (!found) cr_assert_eq(sr_model_learn(m, &e.ev, NULL), 0);
    }
    cr_assert(found, "no suitable event");
    uint32_t i = (uint32_t)sr_model_find_item(m, e.item, e.ev.item_len);
    sr_item_state_t *is = malloc(sizeof *is), *after = malloc(sizeof *after);
    sr_model_export_item(m, i, is);
    float q0[8], v[8], b0 = is->bias;
    memcpy(q0, is->vec, sizeof q0);
    sr_model_t *c = copy(m);
    cr_assert_eq(sr_model_learn(c, &e.ev, NULL), 0);
    sr_model_export_item(c, i, after);
    float scale = sqrtf(after->acc + 0.01f) / p.lr;
    const float h = 1e-2f;
    float gnorm = 0;
    for (int d = 0; d < 8; d++) {
        float g = (q0[d] - after->vec[d]) * scale;
        memcpy(v, q0, sizeof v);
        is->vec = v;
        v[d] = q0[d] + h;
        float lp = loss_at_item(m, is, &e.ev);
        v[d] = q0[d] - h;
        float lm = loss_at_item(m, is, &e.ev);
        float fd = (lp - lm) / (2 * h);
        cr_assert_float_eq(g, fd, 2e-3f + 0.02f * fabsf(fd), "dim %d: analytic %g fd %g", d, g, fd);
        gnorm += fabsf(g);
    }
    cr_assert_gt(gnorm, 1e-3f, "degenerate test: zero gradient");
    /* bias */
    memcpy(v, q0, sizeof v);
    float gb = (b0 - after->bias) * sqrtf(after->bias_acc + 0.01f) / p.lr;
    is->bias = b0 + h;
    float lp = loss_at_item(m, is, &e.ev);
    is->bias = b0 - h;
    float lm = loss_at_item(m, is, &e.ev);
    float fd = (lp - lm) / (2 * h);
    cr_assert_float_eq(gb, fd, 2e-3f + 0.02f * fabsf(fd), "bias: analytic %g fd %g", gb, fd);
    sr_model_destroy(c);
    free(us);
    free(is);
    free(after);
    sr_model_destroy(m);
}

/* ------------------------------------------------------------ determinism */

Test(model, same_events_same_snapshot_bytes)
{
    sr_model_t *a = fresh(), *b = fresh();
    run(a, 0, 3000);
    run(b, 0, 3000);
    buf_t sa = save(a), sb = save(b);
    cr_assert(same(sa, sb));
    /* A different seed must change the bytes (the test is not vacuous). */
    sr_model_params_t p = *sr_model_params(a);
    p.seed = 43;
    sr_model_t *c = sr_model_new(&p, NULL, 0);
    run(c, 0, 3000);
    buf_t sc = save(c);
    cr_assert(!same(sa, sc));
    free(sa.p);
    free(sb.p);
    free(sc.p);
    sr_model_destroy(a);
    sr_model_destroy(b);
    sr_model_destroy(c);
}

Test(model, snapshot_round_trip)
{
    sr_model_t *a = fresh();
    run(a, 0, 2000);
    sr_model_t *b = copy(a);
    buf_t sa = save(a), sb = save(b);
    cr_assert(same(sa, sb));
    uint32_t n = sr_model_n_items(a);
    cr_assert_eq(n, sr_model_n_items(b));
    float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
    int32_t u = sr_model_find_user(b, "user-3", 6);
    sr_model_score_all(a, sr_model_find_user(a, "user-3", 6), 1700000000000LL + 60000000, x);
    sr_model_score_all(b, u, 1700000000000LL + 60000000, y);
    cr_assert_eq(memcmp(x, y, n * sizeof *x), 0);
    /* Both continue identically. */
    run(a, 2000, 2500);
    run(b, 2000, 2500);
    free(sa.p);
    free(sb.p);
    sa = save(a);
    sb = save(b);
    cr_assert(same(sa, sb));
    free(sa.p);
    free(sb.p);
    free(x);
    free(y);
    sr_model_destroy(a);
    sr_model_destroy(b);
}

static void expect_reject(buf_t *b, const char *needle)
{
    char err[160] = "";
    b->rd = 0;
    sr_model_t *m = sr_model_load(buf_read, b, err, sizeof err);
    cr_assert_null(m, "loaded a bad snapshot (%s)", needle);
    cr_assert(strstr(err, needle) != NULL, "errstr '%s' lacks '%s'", err, needle);
}

Test(model, corrupt_snapshot_rejected)
{
    sr_model_t *a = fresh();
    run(a, 0, 1000);
    buf_t b = save(a);
    b.p[b.n / 2] ^= 0x10;
    expect_reject(&b, "checksum");
    free(b.p);
    sr_model_destroy(a);
}

Test(model, truncated_snapshot_rejected)
{
    sr_model_t *a = fresh();
    run(a, 0, 1000);
    buf_t b = save(a);
    size_t full = b.n;
    b.n = full - 3;
    expect_reject(&b, "truncated");
    b.n = full / 2;
    expect_reject(&b, "truncated");
    b.n = 10;
    expect_reject(&b, "truncated");
    free(b.p);
    sr_model_destroy(a);
}

Test(model, wrong_version_and_magic_rejected)
{
    sr_model_t *a = fresh();
    run(a, 0, 100);
    buf_t b = save(a);
    b.p[8] = 99;
    expect_reject(&b, "version");
    b.p[8] = 2;
    b.p[0] = 'X';
    expect_reject(&b, "magic");
    free(b.p);
    sr_model_destroy(a);
}

/* Any flipped byte and any truncation of a small snapshot is refused,
 * with a message, and never crashes (this runs under ASan in `make asan`). */
Test(model, every_corruption_and_truncation_rejected)
{
    sr_model_t *a = fresh();
    run(a, 0, 60);
    buf_t b = save(a);
    size_t full = b.n;
    for (size_t pos = 0; pos < full; pos += 7) {
        for (int bit = 0; bit < 8; bit += 3) {
            b.p[pos] ^= (uint8_t)(1u << bit);
            char err[160] = "";
            b.rd = 0;
            sr_model_t *m = sr_model_load(buf_read, &b, err, sizeof err);
            cr_assert_null(m, "flip at %zu bit %d loaded", pos, bit);
            cr_assert(strstr(err, "model snapshot: ") == err, "%s", err);
            b.p[pos] ^= (uint8_t)(1u << bit);
        }
    }
    for (size_t n = 0; n < full; n += 5) {
        b.n = n;
        char err[160] = "";
        b.rd = 0;
        cr_assert_null(sr_model_load(buf_read, &b, err, sizeof err), "truncated to %zu loaded", n);
        cr_assert(err[0] != 0);
    }
    b.n = full;
    b.rd = 0;
    sr_model_t *m = sr_model_load(buf_read, &b, NULL, 0);
    cr_assert_not_null(m, "the intact snapshot still loads");
    sr_model_destroy(m);
    free(b.p);
    sr_model_destroy(a);
}

/* ------------------------------------------------------------ state */

/* The trainer's crash recovery: rebuild a model from exported state only,
 * continue it, and compare with the model that never stopped. */
Test(model, state_export_import_continues_identically)
{
    sr_model_t *a = fresh(), *b = fresh();
    run(a, 0, 4000);
    run(b, 0, 2500);
    sr_model_t *c = fresh();
    sr_item_state_t *is = malloc(sizeof *is);
    sr_user_state_t *us = malloc(sizeof *us);
    sr_global_state_t *gs = malloc(sizeof *gs);
    for (uint32_t i = 0; i < sr_model_n_items(b); i++) {
        size_t len;
        const char *id = sr_model_item_id(b, i, &len);
        cr_assert_eq(sr_model_item_intern(c, id, len), (int32_t)i);
    }
    for (uint32_t i = 0; i < sr_model_n_items(b); i++) {
        cr_assert_eq(sr_model_export_item(b, i, is), 0);
        cr_assert_eq(sr_model_import_item(c, is), (int32_t)i);
    }
    sr_model_export_global(b, gs);
    cr_assert_eq(sr_model_import_global(c, gs), 0);
    /* Users in reverse order: their order must not matter. */
    for (uint32_t u = sr_model_n_users(b); u-- > 0;) {
        cr_assert_eq(sr_model_export_user(b, u, us), 0);
        cr_assert_geq(sr_model_import_user(c, us), 0);
    }
    buf_t sb = save(b), sc = save(c);
    cr_assert(same(sb, sc), "imported state differs before continuing");
    run(c, 2500, 4000);
    buf_t sa = save(a);
    free(sc.p);
    sc = save(c);
    cr_assert(same(sa, sc), "continued state differs");
    free(sa.p);
    free(sb.p);
    free(sc.p);
    free(is);
    free(us);
    free(gs);
    sr_model_destroy(a);
    sr_model_destroy(b);
    sr_model_destroy(c);
}

Test(model, dirty_tracking)
{
    sr_model_t *m = fresh();
    run(m, 0, 50);
    sr_model_clear_dirty(m);
    const uint32_t *idx;
    cr_assert_eq(sr_model_dirty_users(m, &idx), 0);
    cr_assert_eq(sr_model_dirty_items(m, &idx), 0);
    evs_t e;
    gen(&e, 50);
    e.ev.type = SR_EV_VIEW;
    sr_learn_result_t r;
    cr_assert_eq(sr_model_learn(m, &e.ev, &r), 0);
    cr_assert_eq(sr_model_dirty_users(m, &idx), 1);
    cr_assert_eq(idx[0], (uint32_t)r.user);
    size_t n = sr_model_dirty_items(m, &idx);
    int found = 0;
    for (size_t k = 0; k < n; k++)
        found |= idx[k] == (uint32_t)r.item;
    cr_assert(found);
    cr_assert_geq(n, 2, "negatives are touched too");
    sr_model_destroy(m);
}

/* What an item's extra is made of (count, pop_scaled, neighbours) as
 * bytes, to compare before and after. */
static size_t extra_bytes(const sr_model_t *m, uint32_t i, sr_item_state_t *is, char *out)
{
    cr_assert_eq(sr_model_export_item(m, i, is), 0);
    size_t n = 0;
    memcpy(out + n, &is->count, 4), n += 4;
    memcpy(out + n, &is->pop_scaled, 8), n += 8;
    for (size_t k = 0; k < is->n_nbrs; k++) {
        memcpy(out + n, is->nbrs[k].item, is->nbrs[k].item_len), n += is->nbrs[k].item_len;
        memcpy(out + n, &is->nbrs[k].count, 4), n += 4;
    }
    return n;
}

/* The trainer reuses an item's encoded extra while the generation stays:
 * so an unchanged generation must mean unchanged count, popularity and
 * neighbours, over every kind of event; and sampled negatives must keep
 * theirs, or the reuse never happens. */
Test(model, extra_generation_changes_whenever_the_extra_does)
{
    sr_model_t *m = fresh();
    run(m, 0, 3000); /* every item of the stream is known by then */
    uint32_t n_items = sr_model_n_items(m);
    sr_item_state_t *is = malloc(sizeof *is);
    char(*before)[4096] = malloc(n_items * sizeof *before);
    size_t *len = malloc(n_items * sizeof *len);
    uint64_t *xg = malloc(n_items * sizeof *xg);
    size_t kept = 0;
    for (int k = 3000; k < 3300; k++) {
        for (uint32_t i = 0; i < n_items; i++) {
            len[i] = extra_bytes(m, i, is, before[i]);
            xg[i] = sr_model_item_extra_gen(m, i);
        }
        sr_model_clear_dirty(m);
        evs_t e;
        gen(&e, k);
        cr_assert_eq(sr_model_learn(m, &e.ev, NULL), 0);
        cr_assert_eq(sr_model_n_items(m), n_items, "the stream stays on known items");
        const uint32_t *idx;
        size_t nd = sr_model_dirty_items(m, &idx);
        for (size_t d = 0; d < nd; d++) kept += sr_model_item_extra_gen(m, idx[d]) == xg[idx[d]];
        for (uint32_t i = 0; i < n_items; i++) {
            if (sr_model_item_extra_gen(m, i) != xg[i]) continue;
            char now[4096];
            size_t l = extra_bytes(m, i, is, now);
            cr_assert(l == len[i] && !memcmp(now, before[i], l),
                      "event %d changed item %u's extra but not its generation", k, i);
        }
    }
    cr_assert_gt(kept, 300, "dirty items that kept their extra: %zu", kept);
    /* Importing the global state may move every popularity's reference. */
    sr_global_state_t *gs = malloc(sizeof *gs);
    sr_model_export_global(m, gs);
    uint64_t g0 = sr_model_item_extra_gen(m, 0);
    cr_assert_eq(sr_model_import_global(m, gs), 0);
    cr_assert_neq(sr_model_item_extra_gen(m, 0), g0);
    free(gs);
    free(before);
    free(len);
    free(xg);
    free(is);
    sr_model_destroy(m);
}

/* Exported recent items name their dense index too (the trainer maps it
 * to the item's global number): the index of the item with that id. */
Test(model, exported_recent_items_carry_their_index)
{
    sr_model_t *m = fresh();
    run(m, 0, 500);
    sr_user_state_t *us = malloc(sizeof *us);
    size_t checked = 0;
    for (uint32_t u = 0; u < sr_model_n_users(m); u++) {
        cr_assert_eq(sr_model_export_user(m, u, us), 0);
        for (size_t k = 0; k < us->n_recent; k++, checked++)
            cr_assert_eq(sr_model_find_item(m, us->recent[k].item, us->recent[k].item_len),
                         (int32_t)us->recent[k].index);
    }
    cr_assert_gt(checked, 100);
    free(us);
    sr_model_destroy(m);
}

Test(model, import_rejects_bad_state)
{
    sr_model_t *m = fresh();
    run(m, 0, 100);
    sr_user_state_t *us = malloc(sizeof *us);
    sr_model_export_user(m, 0, us);
    us->dim = 3;
    cr_assert_eq(sr_model_import_user(m, us), SR_ERR_INVAL);
    us->dim = 16;
    float v[16] = {0};
    v[2] = NAN;
    us->vec = v;
    cr_assert_eq(sr_model_import_user(m, us), SR_ERR_INVAL);
    v[2] = 0;
    us->id_len = 0;
    cr_assert_eq(sr_model_import_user(m, us), SR_ERR_RANGE);
    sr_global_state_t *g = malloc(sizeof *g);
    sr_model_export_global(m, g);
    g->ring_len = 1;
    g->ring[0] = 1u << 30;
    cr_assert_eq(sr_model_import_global(m, g), SR_ERR_INVAL);
    free(g);
    free(us);
    sr_model_destroy(m);
}

/* The edges of every parameter range still learn, score and round-trip:
 * no neighbour lists, one recent item, no negatives, one factor, and the
 * largest lists with every event teaching the blend. */
Test(model, extreme_params_work)
{
    const char *sets[][2][8] = {
        {{"cooc_max", "recent_max", "negatives", "dim", "cooc_window", "blend_sample", NULL},
         {"0", "1", "0", "1", "0", "1", NULL}},
        {{"cooc_max", "recent_max", "negatives", "dim", "cooc_window", "blend_sample", NULL},
         {"256", "256", "64", "13", "64", "1", NULL}},
    };
    for (size_t k = 0; k < sizeof sets / sizeof sets[0]; k++) {
        sr_model_params_t p;
        sr_model_params_init(&p);
        for (int j = 0; sets[k][0][j]; j++)
            cr_assert_eq(sr_model_params_set(&p, sets[k][0][j], sets[k][1][j]), 0);
        char err[128];
        sr_model_t *m = sr_model_new(&p, err, sizeof err);
        cr_assert_not_null(m, "%s", err);
        run(m, 0, 2000);
        sr_model_t *c = copy(m);
        buf_t a = save(m), b = save(c);
        cr_assert(same(a, b));
        uint32_t n = sr_model_n_items(m);
        float *x = malloc(n * sizeof *x);
        sr_model_score_all(m, 0, 1700000000000LL + 2000LL * 30000, x);
        for (uint32_t i = 0; i < n; i++)
            cr_assert(isfinite(x[i]), "set %zu item %u score %g", k, i, x[i]);
        free(x);
        free(a.p);
        free(b.p);
        sr_model_destroy(c);
        sr_model_destroy(m);
    }
}

/* ------------------------------------------------------------ params */

Test(model, params_set_by_config_name)
{
    sr_model_params_t p;
    sr_model_params_init(&p);
    cr_assert_eq(sr_model_params_set(&p, "dim", "64"), 0);
    cr_assert_eq(p.dim, 64);
    cr_assert_eq(sr_model_params_set(&p, "weight.purchase", "4"), 0);
    cr_assert_float_eq(p.weight[SR_EV_PURCHASE], 4.0f, 0);
    cr_assert_eq(sr_model_params_set(&p, "seed", "18446744073709551615"), 0);
    cr_assert_eq(p.seed, UINT64_MAX);
    cr_assert_eq(sr_model_params_set(&p, "nope", "1"), SR_ERR_NOTFOUND);
    cr_assert_eq(sr_model_params_set(&p, "dim", "abc"), SR_ERR_PARSE);
    cr_assert_eq(sr_model_params_set(&p, "dim", "3.5"), SR_ERR_PARSE);
    cr_assert_eq(sr_model_params_set(&p, "dim", "0"), SR_ERR_RANGE);
    cr_assert_eq(sr_model_params_set(&p, "recent_max", "100000"), SR_ERR_RANGE);
    cr_assert_eq(p.dim, 64, "a failed set leaves the value");
}

Test(model, invalid_params_refused)
{
    sr_model_params_t p;
    sr_model_params_init(&p);
    p.dim = 0;
    char err[128] = "";
    cr_assert_null(sr_model_new(&p, err, sizeof err));
    cr_assert(strstr(err, "dim") != NULL, "%s", err);
    sr_model_destroy(NULL);
}

Test(model, bad_events_refused)
{
    sr_model_t *m = fresh();
    sr_event_t ev = {.user = "u", .user_len = 1, .item = "", .item_len = 0};
    cr_assert_eq(sr_model_learn(m, &ev, NULL), SR_ERR_RANGE);
    ev.item = "i";
    ev.item_len = 1;
    ev.type = (sr_event_type_t)77;
    cr_assert_eq(sr_model_learn(m, &ev, NULL), SR_ERR_INVAL);
    cr_assert_eq(sr_model_n_users(m), 0);
    sr_model_destroy(m);
}

/* ------------------------------------------------------------ learning */

/* Every user who views A next views B: after the stream, a user whose last
 * item is A gets B ranked first among the items they have not seen. */
Test(model, learns_co_occurrence)
{
    sr_model_t *m = fresh();
    char u[32];
    int64_t ts = 1700000000000LL;
    for (int k = 0; k < 300; k++) {
        snprintf(u, sizeof u, "u%d", k);
        const char *seq[3] = {"A", "B", NULL};
        char noise[16];
        snprintf(noise, sizeof noise, "n%d", k % 50);
        seq[2] = noise;
        for (int j = 0; j < 3; j++) {
            sr_event_t ev = {.user = u,
                             .user_len = strlen(u),
                             .item = seq[j],
                             .item_len = strlen(seq[j]),
                             .type = SR_EV_VIEW,
                             .ts_ms = ts += 1000};
            cr_assert_eq(sr_model_learn(m, &ev, NULL), 0);
        }
    }
    sr_event_t ev = {.user = "new",
                     .user_len = 3,
                     .item = "A",
                     .item_len = 1,
                     .type = SR_EV_VIEW,
                     .ts_ms = ts += 1000};
    cr_assert_eq(sr_model_learn(m, &ev, NULL), 0);
    uint32_t n = sr_model_n_items(m);
    float *s = malloc(n * sizeof *s);
    uint8_t *skip = calloc(n, 1);
    skip[sr_model_find_item(m, "A", 1)] = 1;
    sr_model_score_all(m, sr_model_find_user(m, "new", 3), ts, s);
    uint32_t top;
    cr_assert_eq(sr_topk(s, n, 1, skip, &top, NULL), 1);
    cr_assert_eq(top, (uint32_t)sr_model_find_item(m, "B", 1));
    free(s);
    free(skip);
    sr_model_destroy(m);
}

static void view(sr_model_t *m, const char *user, const char *item, int64_t ts)
{
    sr_event_t ev = {.user = user,
                     .user_len = strlen(user),
                     .item = item,
                     .item_len = strlen(item),
                     .type = SR_EV_VIEW,
                     .ts_ms = ts};
    cr_assert_eq(sr_model_learn(m, &ev, NULL), 0);
}

/* The reference for a neighbour list: add inc to x's entry (appended when
 * new) and move it up past the entries with a smaller count, one at a
 * time, so ties keep the entry that reached the count first ahead. */
static void ref_add(int *item, float *cnt, int *n, int x, float inc)
{
    int e = 0;
    while (e < *n && item[e] != x)
        e++;
    if (e == *n) {
        item[e] = x;
        cnt[e] = 0;
        (*n)++;
    }
    cnt[e] += inc;
    while (e > 0 && cnt[e - 1] < cnt[e]) {
        int ti = item[e - 1];
        float tc = cnt[e - 1];
        item[e - 1] = item[e], cnt[e - 1] = cnt[e];
        item[e] = ti, cnt[e] = tc;
        e--;
    }
}

/* A hub item's neighbour list, entry by entry and in order, equals the
 * reference while entries of every count keep moving past each other: a
 * long tail of 0.5 entries (cooc_backward: the neighbour came before the
 * hub) that later pairs lift out of with +1, new entries that pass the
 * whole tail, ties among lifted ones. */
Test(model, neighbour_lists_match_reference)
{
    sr_model_t *m = fresh();
    enum { N = 120 };
    int ref_item[N];
    float ref_cnt[N];
    int nref = 0;
    char u[32], x[32];
    int64_t ts = 1700000000000LL;
    int user = 0;
    for (int r = 0; r < 7; r++) {
        for (int k = 0; k < N; k++) {
            int before = r == 0 || (r == 3 && k % 5 == 0);
            int after = r > 0 && (k * 7 + r * 13) % (r + 2) == 0;
            if (!before && !after) continue;
            snprintf(u, sizeof u, "u%d", user++);
            snprintf(x, sizeof x, "x%d", k);
            if (before) {
                view(m, u, x, ts += 1000);
                view(m, u, "hub", ts += 1000);
                ref_add(ref_item, ref_cnt, &nref, k, 0.5f);
            } else {
                view(m, u, "hub", ts += 1000);
                view(m, u, x, ts += 1000);
                ref_add(ref_item, ref_cnt, &nref, k, 1.0f);
            }
        }
    }
    sr_item_state_t *st = malloc(sizeof *st);
    cr_assert_eq(sr_model_export_item(m, (uint32_t)sr_model_find_item(m, "hub", 3), st), 0);
    cr_assert_eq(st->n_nbrs, (size_t)nref);
    for (size_t e = 0; e < st->n_nbrs; e++) {
        cr_assert_eq(atoi(st->nbrs[e].item + 1), ref_item[e], "entry %zu", e);
        cr_assert_eq(st->nbrs[e].count, ref_cnt[e], "entry %zu", e);
    }
    free(st);
    sr_model_destroy(m);
}

/* A negative drawn uniformly updates the user, not its item (unless
 * model.uniform_neg_items): with only uniform negatives, one event changes
 * the positive's row and no other item's; with the parameter set, the
 * negatives' rows change too. */
Test(model, uniform_negatives_leave_their_items_alone)
{
    for (int upd = 0; upd < 2; upd++) {
        sr_model_params_t p;
        sr_model_params_init(&p);
        p.dim = 8;
        p.sampler_uniform = 1.0f;
        p.negatives = 8;
        p.cooc_max = 0; /* no neighbour lists: only the factors change items */
        p.uniform_neg_items = upd;
        sr_model_t *m = sr_model_new(&p, NULL, 0);
        cr_assert_not_null(m);
        run(m, 0, 300);
        uint32_t n = sr_model_n_items(m);
        float *before = malloc((size_t)n * 9 * sizeof(float));
        sr_item_state_t *is = malloc(sizeof *is);
        for (uint32_t i = 0; i < n; i++) {
            sr_model_export_item_vec(m, i, is);
            memcpy(before + i * 9, is->vec, 8 * sizeof(float));
            before[i * 9 + 8] = is->bias;
        }
        sr_model_clear_dirty(m);
        evs_t e;
        gen(&e, 300);
        e.ev.type = SR_EV_VIEW;
        sr_learn_result_t r;
        cr_assert_eq(sr_model_learn(m, &e.ev, &r), 0);
        int changed = 0;
        for (uint32_t i = 0; i < n; i++) {
            if (i == (uint32_t)r.item) continue;
            sr_model_export_item_vec(m, i, is);
            changed += memcmp(before + i * 9, is->vec, 8 * sizeof(float)) != 0 ||
                       before[i * 9 + 8] != is->bias;
        }
        const uint32_t *idx;
        size_t nd = sr_model_dirty_items(m, &idx);
        if (upd) {
            cr_expect_gt(changed, 0, "uniform_neg_items=1: no negative's item changed");
            cr_expect_gt(nd, 1);
        } else {
            cr_expect_eq(changed, 0, "%d items other than the positive changed", changed);
            cr_expect_eq(nd, 1, "dirty items besides the positive");
            cr_expect_eq(idx[0], (uint32_t)r.item);
        }
        free(before);
        free(is);
        sr_model_destroy(m);
    }
}

Test(model, uniform_neg_items_survives_a_snapshot)
{
    sr_model_params_t p;
    sr_model_params_init(&p);
    p.dim = 8;
    p.uniform_neg_items = 1;
    sr_model_t *m = sr_model_new(&p, NULL, 0);
    run(m, 0, 100);
    sr_model_t *c = copy(m);
    cr_assert_eq(sr_model_params(c)->uniform_neg_items, 1);
    sr_model_destroy(c);
    sr_model_destroy(m);
}

/* A version-3 snapshot (before model.uniform_neg_items) still loads, as a
 * model whose uniform negatives update their items: made here from a
 * version-4 one by dropping the parameter and re-sealing the blocks. */
Test(model, version_3_snapshot_loads_with_uniform_neg_items_1)
{
    sr_model_params_t p;
    sr_model_params_init(&p);
    p.dim = 4;
    sr_model_t *m = sr_model_new(&p, NULL, 0);
    run(m, 0, 60);
    buf_t b = save(m);
    cr_assert_eq(memcmp(b.p, "SRMODEL", 8), 0);
    uint32_t ver;
    memcpy(&ver, b.p + 8, 4);
    cr_assert_eq(ver, 4);
    /* the payload of every block, in order */
    uint8_t *pay = malloc(b.n);
    size_t np = 0, at = 12;
    for (;;) {
        uint32_t len;
        cr_assert_leq(at + 4, b.n);
        memcpy(&len, b.p + at, 4);
        if (len == 0) break;
        memcpy(pay + np, b.p + at + 4, len);
        np += len;
        at += 4 + len + 8;
    }
    /* the params lead the payload; uniform_neg_items is the last of them */
    size_t off = 6 * 4 + 8 + sizeof p.weight + 10 * 4;
    int32_t v;
    memcpy(&v, pay + off, 4);
    cr_assert_eq(v, 0, "not where the parameter should be");
    memmove(pay + off, pay + off + 4, np - off - 4);
    np -= 4;
    cr_assert_lt(np, 60000, "the test's model must fit one block");
    buf_t old = {0};
    uint32_t v3 = 3, zero = 0, len = (uint32_t)np;
    uint64_t h = sr_hash64(pay, np, 0), end = sr_hash64(pay, 0, h);
    buf_write(&old, "SRMODEL", 8);
    buf_write(&old, &v3, 4);
    buf_write(&old, &len, 4);
    buf_write(&old, pay, np);
    buf_write(&old, &h, 8);
    buf_write(&old, &zero, 4);
    buf_write(&old, &end, 8);
    char err[160] = "";
    sr_model_t *l = sr_model_load(buf_read, &old, err, sizeof err);
    cr_assert_not_null(l, "%s", err);
    cr_expect_eq(sr_model_params(l)->uniform_neg_items, 1);
    cr_expect_eq(sr_model_params(l)->dim, 4);
    cr_expect_eq(sr_model_n_items(l), sr_model_n_items(m));
    sr_model_destroy(l);
    free(old.p);
    free(pay);
    free(b.p);
    sr_model_destroy(m);
}
