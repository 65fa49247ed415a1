/* Unit tests of the ranker library and its HTTP API without sockets or
 * Redis: the left-right catalogue (including readers racing a writer),
 * scoring against a brute-force reference, top-K ties, filters, cold start,
 * re-ranking, similar items, and every validation path and JSON shape of
 * sr_api_handle. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sr_api.h"
#include "sr_err.h"
#include "sr_items.h"
#include "sr_ranker.h"

#define DIM 8
#define NOW_MS 1700000000000LL

/* ---- a fake user source: a few users with vectors and recent items ---- */

typedef struct fake_user {
    const char *id;
    int has_vec;
    float vec[DIM];
    sr_ranker_recent_t recent[8];
    size_t n_recent;
} fake_user_t;

typedef struct fake_src {
    fake_user_t users[8];
    size_t n;
    int fail; /* return SR_ERR_UNAVAIL */
} fake_src_t;

static int fake_get_user(void *opaque, const char *user, size_t len, sr_ranker_user_t *out)
{
    fake_src_t *f = opaque;
    if (f->fail) return SR_ERR_UNAVAIL;
    for (size_t i = 0; i < f->n; i++) {
        fake_user_t *u = &f->users[i];
        if (strlen(u->id) == len && memcmp(u->id, user, len) == 0) {
            out->found = 1;
            out->has_vec = u->has_vec;
            if (u->has_vec) memcpy(out->vec, u->vec, sizeof(u->vec));
            memcpy(out->recent, u->recent, u->n_recent * sizeof(u->recent[0]));
            out->n_recent = u->n_recent;
            out->events = (int64_t)u->n_recent;
            return 0;
        }
    }
    out->found = 0;
    return 0;
}

static int64_t fake_now(void *opaque)
{
    (void)opaque;
    return NOW_MS;
}

static fake_src_t src;

static sr_ranker_opts_t test_opts(void)
{
    sr_ranker_opts_t o;
    sr_ranker_opts_init(&o);
    /* distinct non-zero weights so every feature shows in the reference test */
    for (int f = 0; f < SR_BLEND_NFEAT; f++)
        if (o.score.blend[f] == 0) o.score.blend[f] = 0.25f + 0.125f * (float)f;
    return o;
}

static sr_ranker_t *new_ranker(void)
{
    sr_ranker_opts_t o = test_opts();
    o.dim = DIM;
    o.get_user = fake_get_user;
    o.opaque = &src;
    o.now_ms = fake_now;
    char err[256];
    sr_ranker_t *r = sr_ranker_new_custom(&o, err, sizeof(err));
    cr_assert_not_null(r, "%s", err);
    return r;
}

static uint64_t rng_state = 12345;
static float frand(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((rng_state >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

/* n items "i0".."i{n-1}" with random vectors, biases and popularity. */
static void fill_items(sr_ranker_t *r, size_t n, float *vecs, float *bias, float *pop)
{
    char **ids = malloc(n * sizeof(*ids));
    size_t *lens = malloc(n * sizeof(*lens));
    for (size_t i = 0; i < n; i++) {
        ids[i] = malloc(16);
        lens[i] = (size_t)snprintf(ids[i], 16, "i%zu", i);
        for (int d = 0; d < DIM; d++)
            vecs[i * DIM + d] = frand();
        bias[i] = frand();
        pop[i] = (frand() + 1.0f) * 50.0f;
    }
    cr_assert_eq(sr_ranker_upsert_items(r, (const char *const *)ids, lens, n, vecs, bias, pop), 0);
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
    free(lens);
}

static void reset_src(void)
{
    memset(&src, 0, sizeof(src));
}

/* ---- catalogue ---- */

Test(items, upsert_find_and_overwrite)
{
    sr_items_t *it = sr_items_new(2);
    float v1[2] = {1, 2}, v2[2] = {3, 4};
    sr_item_update_t u[2] = {
        {.id = "a", .id_len = 1, .num = 7, .vec = v1, .bias = 0.5f, .set_bias = 1},
        {.id = "bb", .id_len = 2, .num = -1, .vec = v2}};
    cr_assert_eq(sr_items_apply(it, u, 2), 2);
    sr_items_view_t v;
    int t = sr_items_enter(it, &v);
    cr_assert_eq(v.n, 2);
    cr_assert_eq(sr_items_find(&v, "a", 1), 0);
    cr_assert_eq(sr_items_find(&v, "bb", 2), 1);
    cr_assert_eq(sr_items_find(&v, "b", 1), -1);
    cr_assert_eq(sr_items_find_num(&v, 7), 0);
    cr_assert_eq(sr_items_find_num(&v, 8), -1);
    cr_assert_float_eq(v.vec[2 + 1], 4.0f, 0);
    cr_assert_float_eq(v.bias[0], 0.5f, 0);
    cr_assert(isinf(v.logpop[1]) && v.logpop[1] < 0, "no popularity yet");
    sr_items_leave(it, t);
    /* overwrite keeps the index; the other side catches up too */
    float v3[2] = {9, 9};
    sr_item_update_t w = {.id = "a", .id_len = 1, .num = -1, .vec = v3};
    for (int round = 0; round < 2; round++) {
        cr_assert_eq(sr_items_apply(it, &w, 1), 1);
        t = sr_items_enter(it, &v);
        cr_assert_eq(v.n, 2);
        cr_assert_float_eq(v.vec[0], 9.0f, 0);
        cr_assert_float_eq(v.bias[0], 0.5f, 0, "bias kept when not set");
        sr_items_leave(it, t);
    }
    sr_items_destroy(it);
    sr_items_destroy(NULL);
}

Test(items, grows_past_initial_capacity)
{
    sr_items_t *it = sr_items_new(4);
    enum { N = 5000 };
    static char ids[N][12];
    static sr_item_update_t u[N];
    float vec[4] = {1, 0, 0, 0};
    for (int i = 0; i < N; i++) {
        u[i].id = ids[i];
        u[i].id_len = (size_t)snprintf(ids[i], sizeof(ids[i]), "x%d", i);
        u[i].num = i;
        u[i].vec = vec;
    }
    cr_assert_eq(sr_items_apply(it, u, N), N);
    sr_items_view_t v;
    int t = sr_items_enter(it, &v);
    cr_assert_eq(v.n, N);
    for (int i = 0; i < N; i += 97) {
        cr_assert_eq(sr_items_find(&v, ids[i], strlen(ids[i])), i);
        cr_assert_eq(sr_items_find_num(&v, i), i);
    }
    cr_assert_eq((uintptr_t)v.vec % 64, 0, "matrix is 64-byte aligned");
    sr_items_leave(it, t);
    sr_items_destroy(it);
}

typedef struct race {
    sr_items_t *it;
    atomic_int stop;
    atomic_long torn;
    atomic_long reads;
} race_t;

/* Every row of a batch carries the batch number in all its coordinates, so
 * a reader that sees mixed numbers inside a row, or rows of different
 * batches, saw a half-applied batch. */
static void *reader(void *arg)
{
    race_t *rc = arg;
    while (!atomic_load(&rc->stop)) {
        sr_items_view_t v;
        int t = sr_items_enter(rc->it, &v);
        float first = v.n ? v.vec[0] : 0;
        for (uint32_t i = 0; i < v.n; i++)
            for (int d = 0; d < v.dim; d++)
                if (v.vec[(size_t)i * v.dim + d] != first) atomic_fetch_add(&rc->torn, 1);
        sr_items_leave(rc->it, t);
        atomic_fetch_add(&rc->reads, 1);
    }
    return NULL;
}

Test(items, readers_never_see_a_half_applied_batch)
{
    race_t rc = {.it = sr_items_new(16)};
    atomic_init(&rc.stop, 0);
    atomic_init(&rc.torn, 0);
    atomic_init(&rc.reads, 0);
    enum { N = 64 };
    char ids[N][8];
    sr_item_update_t u[N];
    float vecs[N][16];
    for (int i = 0; i < N; i++) {
        u[i] = (sr_item_update_t){.id = ids[i], .num = -1, .vec = vecs[i]};
        u[i].id_len = (size_t)snprintf(ids[i], sizeof(ids[i]), "r%d", i);
    }
    pthread_t th[3];
    for (int i = 0; i < 3; i++)
        pthread_create(&th[i], NULL, reader, &rc);
    while (atomic_load(&rc.reads) < 3)
        sched_yield();
    long before = atomic_load(&rc.reads);
    for (int batch = 1; batch <= 2000; batch++) {
        for (int i = 0; i < N; i++)
            for (int d = 0; d < 16; d++)
                vecs[i][d] = (float)batch;
        cr_assert_eq(sr_items_apply(rc.it, u, N), N);
    }
    atomic_store(&rc.stop, 1);
    for (int i = 0; i < 3; i++)
        pthread_join(th[i], NULL);
    cr_assert_eq(atomic_load(&rc.torn), 0);
    cr_assert_gt(atomic_load(&rc.reads), before, "readers ran while the writer did");
    sr_items_view_t v;
    int t = sr_items_enter(rc.it, &v);
    cr_assert_float_eq(v.vec[0], 2000.0f, 0);
    sr_items_leave(rc.it, t);
    sr_items_destroy(rc.it);
}

/* ---- scoring ---- */

/* The blend as documented in model/sr_score.h, written out independently
 * (double precision, exp2; no co-occurrence: custom rankers carry none). */
static float ref_score(const sr_score_conf_t *c, const float *vecs, const float *bias,
                       const float *pop, const fake_user_t *u, size_t i)
{
    double sv[DIM] = {0}, wsum = 0, rec = 0, hl = c->recent_half_life_s * 1000.0;
    size_t taken = 0, n = u->n_recent;
    int idx[16];
    for (size_t j = 0; j < n; j++)
        idx[j] = atoi(u->recent[j].id + 1);
    for (size_t j = n; j-- > 0;) {
        double age = (double)(NOW_MS - u->recent[j].ts_ms);
        if (taken < SR_SESS_LEN) {
            double w = exp2(-age / hl);
            for (int d = 0; d < DIM; d++)
                sv[d] += w * vecs[idx[j] * DIM + d];
            wsum += w;
            taken++;
        }
        if ((size_t)idx[j] == i) rec += c->weight[u->recent[j].type] * exp2(-age / hl);
    }
    /* distinct items newest first, and i's rank among them */
    int distinct[16];
    size_t nd = 0;
    int rank = -1;
    for (size_t j = n; j-- > 0;) {
        int dup = 0;
        for (size_t t = 0; t < nd; t++)
            dup |= distinct[t] == idx[j];
        if (dup) continue;
        if ((size_t)idx[j] == i) rank = (int)nd;
        distinct[nd++] = idx[j];
    }
    double mf = 0, sess = 0;
    for (int d = 0; d < DIM; d++) {
        if (u->has_vec) mf += (double)vecs[i * DIM + d] * u->vec[d];
        sess += vecs[i * DIM + d] * (wsum > 1 ? sv[d] / wsum : sv[d]);
    }
    double lp = pop[i] > 0 ? log(pop[i]) : -INFINITY;
    double sc = c->blend[SR_F_MF] * mf + c->blend[SR_F_SESS] * sess +
                c->blend[SR_F_BIAS] * bias[i] +
                c->blend[SR_F_POP] * fmax(lp + c->pop_offset, SR_POP_FLOOR);
    if (rank >= 0) {
        double pause = 1 - exp2(-(double)(NOW_MS - u->recent[n - 1].ts_ms) / hl);
        sc += c->blend[SR_F_REC] * log1p(rec) + c->blend[SR_F_SEEN] +
              c->blend[SR_F_POS] / (1.0 + rank) +
              c->blend[SR_F_REPEAT] * (1.0 - (double)nd / (double)n) + c->blend[SR_F_GAP] * pause;
        if (rank == 0) sc += c->blend[SR_F_LAST];
        if (rank == 1) sc += c->blend[SR_F_R1];
        if (rank >= 2 && rank <= 3) sc += c->blend[SR_F_R23];
        if (rank >= 4 && rank <= 7) sc += c->blend[SR_F_R47];
    }
    return (float)sc;
}

static void add_recent(fake_user_t *u, const char *id, int64_t age_ms, int type)
{
    sr_ranker_recent_t *e = &u->recent[u->n_recent++];
    e->num = -1;
    e->id = id;
    e->id_len = strlen(id);
    e->ts_ms = NOW_MS - age_ms;
    e->type = type;
}

Test(score, recommend_matches_brute_force_reference)
{
    reset_src();
    sr_ranker_t *r = new_ranker();
    enum { N = 500 };
    static float vecs[N * DIM], bias[N], pop[N];
    fill_items(r, N, vecs, bias, pop);
    fake_user_t *u = &src.users[src.n++];
    u->id = "alice";
    u->has_vec = 1;
    for (int d = 0; d < DIM; d++)
        u->vec[d] = frand();
    add_recent(u, "i3", 1000000, SR_RANKER_VIEW);
    add_recent(u, "i42", 600000, SR_RANKER_PURCHASE);
    add_recent(u, "i7", 500000, SR_RANKER_CLICK);
    add_recent(u, "i9", 400000, SR_RANKER_VIEW);
    add_recent(u, "i11", 300000, SR_RANKER_VIEW);
    add_recent(u, "i3", 20000, SR_RANKER_CART);
    sr_ranker_opts_t o = test_opts();
    float ref[N];
    for (size_t i = 0; i < N; i++)
        ref[i] = ref_score(&o.score, vecs, bias, pop, u, i);
    sr_ranker_result_t res;
    cr_assert_eq(sr_ranker_recommend(r, "alice", 5, 20, SR_EXCLUDE_NONE, &res), 0);
    cr_assert_eq(res.source, SR_SOURCE_PERSONAL);
    cr_assert_eq(res.n, 20);
    /* the reference's top 20 */
    int used[N] = {0};
    for (size_t j = 0; j < 20; j++) {
        size_t best = N;
        for (size_t i = 0; i < N; i++)
            if (!used[i] && (best == N || ref[i] > ref[best])) best = i;
        used[best] = 1;
        char want[16];
        snprintf(want, sizeof(want), "i%zu", best);
        cr_assert_str_eq(res.items[j].id, want, "rank %zu", j);
        cr_assert_float_eq(res.items[j].score, ref[best], 1e-3 * (1 + fabsf(ref[best])));
    }
    sr_ranker_result_free(&res);
    sr_ranker_result_free(&res); /* twice is safe */
    sr_ranker_destroy(r);
    sr_ranker_destroy(NULL);
}

Test(score, topk_ties_keep_catalogue_order)
{
    reset_src();
    sr_ranker_t *r = new_ranker();
    const char *ids[] = {"a", "b", "c", "d", "e"};
    size_t lens[] = {1, 1, 1, 1, 1};
    float pop[] = {5, 7, 7, 5, 7};
    cr_assert_eq(sr_ranker_upsert_items(r, ids, lens, 5, NULL, NULL, pop), 0);
    sr_ranker_result_t res;
    cr_assert_eq(sr_ranker_popular(r, 4, &res), 0);
    cr_assert_eq(res.n, 4);
    cr_assert_str_eq(res.items[0].id, "b");
    cr_assert_str_eq(res.items[1].id, "c");
    cr_assert_str_eq(res.items[2].id, "e");
    cr_assert_str_eq(res.items[3].id, "a");
    sr_ranker_result_free(&res);
    /* k larger than the catalogue returns everything */
    cr_assert_eq(sr_ranker_popular(r, 100, &res), 0);
    cr_assert_eq(res.n, 5);
    sr_ranker_result_free(&res);
    sr_ranker_destroy(r);
}

Test(score, unknown_user_gets_popularity)
{
    reset_src();
    sr_ranker_t *r = new_ranker();
    enum { N = 50 };
    static float vecs[N * DIM], bias[N], pop[N];
    fill_items(r, N, vecs, bias, pop);
    sr_ranker_result_t res, popres;
    cr_assert_eq(sr_ranker_recommend(r, "nobody", 6, 10, SR_EXCLUDE_SEEN, &res), 0);
    cr_assert_eq(res.source, SR_SOURCE_POPULAR);
    cr_assert_eq(sr_ranker_popular(r, 10, &popres), 0);
    cr_assert_eq(res.n, popres.n);
    for (size_t j = 0; j < res.n; j++)
        cr_assert_str_eq(res.items[j].id, popres.items[j].id);
    for (size_t j = 1; j < res.n; j++)
        cr_assert_geq(res.items[j - 1].score, res.items[j].score);
    sr_ranker_result_free(&res);
    sr_ranker_result_free(&popres);
    sr_ranker_destroy(r);
}

Test(score, user_with_only_recent_items_gets_short_term_signal)
{
    reset_src();
    sr_ranker_t *r = new_ranker();
    /* "x" and "y" point the same way, "z" the opposite; z is most popular */
    const char *ids[] = {"x", "y", "z"};
    size_t lens[] = {1, 1, 1};
    float vecs[3 * DIM] = {0};
    vecs[0] = 3;
    vecs[DIM] = 3;
    vecs[2 * DIM] = -3;
    float pop[] = {1, 1, 100};
    cr_assert_eq(sr_ranker_upsert_items(r, ids, lens, 3, vecs, NULL, pop), 0);
    fake_user_t *u = &src.users[src.n++];
    u->id = "newbie";
    add_recent(u, "x", 1000, SR_RANKER_VIEW);
    sr_ranker_result_t res;
    cr_assert_eq(sr_ranker_recommend(r, "newbie", 6, 3, SR_EXCLUDE_SEEN, &res), 0);
    cr_assert_eq(res.source, SR_SOURCE_PERSONAL);
    cr_assert_eq(res.n, 2);
    cr_assert_str_eq(res.items[0].id, "y", "the item like the one viewed wins over popularity");
    cr_assert_str_eq(res.items[1].id, "z");
    sr_ranker_result_free(&res);
    sr_ranker_destroy(r);
}

Test(score, exclude_purchased_and_seen)
{
    reset_src();
    sr_ranker_t *r = new_ranker();
    enum { N = 30 };
    static float vecs[N * DIM], bias[N], pop[N];
    fill_items(r, N, vecs, bias, pop);
    fake_user_t *u = &src.users[src.n++];
    u->id = "bob";
    u->has_vec = 1;
    for (int d = 0; d < DIM; d++)
        u->vec[d] = frand();
    add_recent(u, "i1", 10, SR_RANKER_PURCHASE);
    add_recent(u, "i2", 10, SR_RANKER_VIEW);
    add_recent(u, "i1", 5, SR_RANKER_VIEW);
    sr_ranker_result_t all, pur, seen;
    cr_assert_eq(sr_ranker_recommend(r, "bob", 3, N, SR_EXCLUDE_NONE, &all), 0);
    cr_assert_eq(sr_ranker_recommend(r, "bob", 3, N, SR_EXCLUDE_PURCHASED, &pur), 0);
    cr_assert_eq(sr_ranker_recommend(r, "bob", 3, N, SR_EXCLUDE_SEEN, &seen), 0);
    cr_assert_eq(all.n, N);
    cr_assert_eq(pur.n, N - 1);
    cr_assert_eq(seen.n, N - 2);
    for (size_t j = 0; j < pur.n; j++)
        cr_assert_str_neq(pur.items[j].id, "i1");
    for (size_t j = 0; j < seen.n; j++) {
        cr_assert_str_neq(seen.items[j].id, "i1");
        cr_assert_str_neq(seen.items[j].id, "i2");
    }
    sr_ranker_result_free(&all);
    sr_ranker_result_free(&pur);
    sr_ranker_result_free(&seen);
    sr_ranker_destroy(r);
}

Test(score, rank_orders_known_then_unknown_in_input_order)
{
    reset_src();
    sr_ranker_t *r = new_ranker();
    const char *ids[] = {"a", "b", "c"};
    size_t lens[] = {1, 1, 1};
    float pop[] = {1, 3, 2};
    cr_assert_eq(sr_ranker_upsert_items(r, ids, lens, 3, NULL, NULL, pop), 0);
    const char *cand[] = {"zz", "a", "qq", "b", "c", "a"};
    size_t cl[] = {2, 1, 2, 1, 1, 1};
    sr_ranker_result_t res;
    cr_assert_eq(sr_ranker_rank(r, "anon", 4, cand, cl, 6, &res), 0);
    cr_assert_eq(res.n, 6);
    const char *want[] = {"b", "c", "a", "a", "zz", "qq"};
    for (int j = 0; j < 6; j++)
        cr_assert_str_eq(res.items[j].id, want[j], "pos %d", j);
    cr_assert_eq(res.items[3].unknown, 0);
    cr_assert_eq(res.items[4].unknown, 1);
    cr_assert_eq(res.items[5].unknown, 1);
    sr_ranker_result_free(&res);
    sr_ranker_destroy(r);
}

Test(score, rank_scores_equal_recommend_scores)
{
    reset_src();
    sr_ranker_t *r = new_ranker();
    enum { N = 40 };
    static float vecs[N * DIM], bias[N], pop[N];
    fill_items(r, N, vecs, bias, pop);
    fake_user_t *u = &src.users[src.n++];
    u->id = "carol";
    u->has_vec = 1;
    for (int d = 0; d < DIM; d++)
        u->vec[d] = frand();
    add_recent(u, "i7", 9000, SR_RANKER_CLICK);
    add_recent(u, "i3", 5000, SR_RANKER_PURCHASE);
    add_recent(u, "i7", 100, SR_RANKER_VIEW);
    sr_ranker_result_t rec, rk;
    cr_assert_eq(sr_ranker_recommend(r, "carol", 5, N, SR_EXCLUDE_NONE, &rec), 0);
    const char *cand[N];
    size_t cl[N];
    for (int j = 0; j < N; j++) {
        cand[N - 1 - j] = rec.items[j].id; /* reversed */
        cl[N - 1 - j] = rec.items[j].id_len;
    }
    cr_assert_eq(sr_ranker_rank(r, "carol", 5, cand, cl, N, &rk), 0);
    /* the same pieces of the same kernel: the same bits, recent items
     * (sparse terms) included */
    for (int j = 0; j < N; j++) {
        cr_assert_str_eq(rk.items[j].id, rec.items[j].id);
        cr_assert_eq(memcmp(&rk.items[j].score, &rec.items[j].score, sizeof(float)), 0,
                     "%s: %.9g vs %.9g", rk.items[j].id, rk.items[j].score, rec.items[j].score);
    }
    sr_ranker_result_free(&rec);
    sr_ranker_result_free(&rk);
    sr_ranker_destroy(r);
}

Test(score, rank_more_candidates_than_catalogue_items)
{
    reset_src();
    sr_ranker_t *r = new_ranker();
    enum { N = 3, C = 300 };
    static float vecs[N * DIM], bias[N], pop[N];
    fill_items(r, N, vecs, bias, pop);
    fake_user_t *u = &src.users[src.n++];
    u->id = "dave";
    u->has_vec = 1;
    for (int d = 0; d < DIM; d++)
        u->vec[d] = frand();
    add_recent(u, "i1", 100, SR_RANKER_CLICK);
    static const char *cand[C];
    static size_t cl[C];
    for (int j = 0; j < C; j++) {
        cand[j] = j % 4 == 3 ? "nope" : (const char *[]){"i0", "i1", "i2"}[j % 4];
        cl[j] = strlen(cand[j]);
    }
    sr_ranker_result_t rk, rec;
    cr_assert_eq(sr_ranker_rank(r, "dave", 4, cand, cl, C, &rk), 0);
    cr_assert_eq(sr_ranker_recommend(r, "dave", 4, N, SR_EXCLUDE_NONE, &rec), 0);
    cr_assert_eq(rk.n, C);
    /* each known item C/4 times in a row, best first, then the unknown */
    for (int j = 0; j < C; j++) {
        if (j < 3 * C / 4) {
            cr_assert_str_eq(rk.items[j].id, rec.items[j / (C / 4)].id, "pos %d", j);
            cr_assert_eq(rk.items[j].score, rec.items[j / (C / 4)].score);
        } else {
            cr_assert(rk.items[j].unknown, "pos %d", j);
        }
    }
    sr_ranker_result_free(&rec);
    sr_ranker_result_free(&rk);
    sr_ranker_destroy(r);
}

Test(score, similar_by_cosine_excludes_itself)
{
    reset_src();
    sr_ranker_t *r = new_ranker();
    const char *ids[] = {"p", "q", "s", "t"};
    size_t lens[] = {1, 1, 1, 1};
    float vecs[4 * DIM] = {0};
    vecs[0] = 1;                       /* p: +x */
    vecs[DIM] = 10, vecs[DIM + 1] = 1; /* q: almost +x, long */
    vecs[2 * DIM + 1] = 1;             /* s: +y */
    vecs[3 * DIM] = -1;                /* t: -x */
    cr_assert_eq(sr_ranker_upsert_items(r, ids, lens, 4, vecs, NULL, NULL), 0);
    sr_ranker_result_t res;
    cr_assert_eq(sr_ranker_similar(r, "p", 1, 10, &res), 0);
    cr_assert_eq(res.n, 3);
    cr_assert_str_eq(res.items[0].id, "q");
    cr_assert_str_eq(res.items[1].id, "s");
    cr_assert_str_eq(res.items[2].id, "t");
    cr_assert_float_eq(res.items[2].score, -1.0f, 1e-6);
    sr_ranker_result_free(&res);
    cr_assert_eq(sr_ranker_similar(r, "nope", 4, 10, &res), SR_ERR_NOTFOUND);
    sr_ranker_destroy(r);
}

Test(score, source_errors_propagate)
{
    reset_src();
    sr_ranker_t *r = new_ranker();
    src.fail = 1;
    sr_ranker_result_t res;
    cr_assert_eq(sr_ranker_recommend(r, "u", 1, 3, SR_EXCLUDE_NONE, &res), SR_ERR_UNAVAIL);
    cr_assert_eq(res.n, 0);
    cr_assert_eq(sr_ranker_recommend(r, "", 0, 3, SR_EXCLUDE_NONE, &res), SR_ERR_INVAL);
    cr_assert_eq(sr_ranker_recommend(r, "u", 1, 0, SR_EXCLUDE_NONE, &res), SR_ERR_INVAL);
    sr_ranker_destroy(r);
}

/* ---- the HTTP API as pure functions ---- */

static sr_api_t *new_api(sr_ranker_t *r)
{
    sr_api_limits_t lim = {.k_max = 100, .candidates_max = 5, .body_max = 4096, .id_max = 16};
    sr_api_t *a = sr_api_new(r, &lim);
    cr_assert_not_null(a);
    return a;
}

/* Runs "METHOD /path?query" with an optional body; returns the parsed JSON
 * body (NULL for non-JSON) and the status. */
static json_t *call(sr_api_t *a, const char *method, const char *target, const char *body,
                    size_t body_len, int *status)
{
    char buf[8192];
    snprintf(buf, sizeof(buf), "%s", target);
    char *q = strchr(buf, '?');
    sr_api_param_t params[16];
    int np = 0;
    if (q) {
        *q++ = 0;
        np = sr_api_parse_query(q, params, 16);
        cr_assert_geq(np, 0);
    }
    sr_api_request_t req = {.method = method,
                            .path = buf,
                            .params = params,
                            .n_params = (size_t)np,
                            .body = body,
                            .body_len = body_len};
    sr_api_response_t resp;
    sr_api_handle(a, &req, &resp);
    *status = resp.status;
    json_t *j = NULL;
    if (resp.content_type && strcmp(resp.content_type, "application/json") == 0) {
        json_error_t err;
        j = json_loadb(resp.body, resp.body_len, 0, &err);
        cr_assert_not_null(j, "response is JSON: %.*s", (int)resp.body_len, resp.body);
    }
    sr_api_response_free(&resp);
    return j;
}

static void expect_error(sr_api_t *a, const char *method, const char *target, const char *body,
                         int want_status, const char *want_substr)
{
    int st;
    json_t *j = call(a, method, target, body, body ? strlen(body) : 0, &st);
    cr_assert_eq(st, want_status, "%s %s -> %d", method, target, st);
    cr_assert_not_null(j);
    const char *msg = json_string_value(json_object_get(j, "error"));
    cr_assert_not_null(msg, "error field present for %s", target);
    cr_assert(strstr(msg, want_substr) != NULL, "'%s' in '%s'", want_substr, msg);
    cr_assert_eq(json_object_size(j), 1, "only the error field");
    json_decref(j);
}

static sr_api_t *api_with_items(sr_ranker_t **rp)
{
    reset_src();
    sr_ranker_t *r = new_ranker();
    enum { N = 20 };
    static float vecs[N * DIM], bias[N], pop[N];
    fill_items(r, N, vecs, bias, pop);
    fake_user_t *u = &src.users[src.n++];
    u->id = "alice";
    u->has_vec = 1;
    for (int d = 0; d < DIM; d++)
        u->vec[d] = frand();
    add_recent(u, "i1", 10, SR_RANKER_PURCHASE);
    *rp = r;
    return new_api(r);
}

Test(api, route_and_method_errors)
{
    sr_ranker_t *r;
    sr_api_t *a = api_with_items(&r);
    expect_error(a, "GET", "/nope", NULL, 404, "no such route");
    expect_error(a, "GET", "/v1/recommendx?user=a", NULL, 404, "no such route");
    expect_error(a, "POST", "/v1/recommend?user=a", NULL, 405, "not allowed");
    expect_error(a, "GET", "/v1/rank", NULL, 405, "use POST");
    expect_error(a, "DELETE", "/healthz", NULL, 405, "use GET");
    sr_api_destroy(a);
    sr_ranker_destroy(r);
}

Test(api, allow_header_on_405)
{
    sr_ranker_t *r;
    sr_api_t *a = api_with_items(&r);
    sr_api_request_t req = {.method = "PUT", .path = "/v1/rank"};
    sr_api_response_t resp;
    sr_api_handle(a, &req, &resp);
    cr_assert_eq(resp.status, 405);
    cr_assert_str_eq(resp.allow, "POST");
    sr_api_response_free(&resp);
    sr_api_destroy(a);
    sr_ranker_destroy(r);
}

Test(api, recommend_parameter_errors)
{
    sr_ranker_t *r;
    sr_api_t *a = api_with_items(&r);
    expect_error(a, "GET", "/v1/recommend", NULL, 400, "missing parameter 'user'");
    expect_error(a, "GET", "/v1/recommend?k=3", NULL, 400, "missing parameter 'user'");
    expect_error(a, "GET", "/v1/recommend?user=", NULL, 400, "'user' must not be empty");
    expect_error(a, "GET", "/v1/recommend?user=abcdefghijklmnopq", NULL, 400,
                 "longer than 16 bytes");
    expect_error(a, "GET", "/v1/recommend?user=%ff%fe", NULL, 400, "not valid UTF-8");
    expect_error(a, "GET", "/v1/recommend?user=a%00b", NULL, 400, "not valid UTF-8");
    expect_error(a, "GET", "/v1/recommend?user=a&k=0", NULL, 400, "from 1 to 100");
    expect_error(a, "GET", "/v1/recommend?user=a&k=101", NULL, 400, "from 1 to 100");
    expect_error(a, "GET", "/v1/recommend?user=a&k=-1", NULL, 400, "from 1 to 100");
    expect_error(a, "GET", "/v1/recommend?user=a&k=3x", NULL, 400, "from 1 to 100");
    expect_error(a, "GET", "/v1/recommend?user=a&k=", NULL, 400, "from 1 to 100");
    expect_error(a, "GET", "/v1/recommend?user=a&k=99999999999999999999", NULL, 400,
                 "from 1 to 100");
    expect_error(a, "GET", "/v1/recommend?user=a&exclude=all", NULL, 400, "none, purchased, seen");
    expect_error(a, "GET", "/v1/recommend?user=a&colour=red", NULL, 400,
                 "unknown parameter 'colour'");
    expect_error(a, "GET", "/v1/recommend?user=a&user=b", NULL, 400, "given twice");
    expect_error(a, "GET", "/v1/recommend?user=a", "{}", 400, "takes no body");
    sr_api_destroy(a);
    sr_ranker_destroy(r);
}

Test(api, similar_popular_healthz_parameter_errors)
{
    sr_ranker_t *r;
    sr_api_t *a = api_with_items(&r);
    expect_error(a, "GET", "/v1/similar", NULL, 400, "missing parameter 'item'");
    expect_error(a, "GET", "/v1/similar?item=i1&k=0", NULL, 400, "from 1 to 100");
    expect_error(a, "GET", "/v1/similar?item=ghost", NULL, 404, "unknown item 'ghost'");
    expect_error(a, "GET", "/v1/popular?k=1000", NULL, 400, "from 1 to 100");
    expect_error(a, "GET", "/v1/popular?user=a", NULL, 400, "unknown parameter");
    expect_error(a, "GET", "/healthz?x=1", NULL, 400, "unknown parameter");
    sr_api_destroy(a);
    sr_ranker_destroy(r);
}

Test(api, rank_body_errors)
{
    sr_ranker_t *r;
    sr_api_t *a = api_with_items(&r);
    expect_error(a, "POST", "/v1/rank", NULL, 400, "missing JSON body");
    expect_error(a, "POST", "/v1/rank", "{\"user\":", 400, "malformed JSON");
    expect_error(a, "POST", "/v1/rank", "garbage", 400, "malformed JSON");
    expect_error(a, "POST", "/v1/rank", "[1,2]", 400, "must be a JSON object");
    expect_error(a, "POST", "/v1/rank", "{\"items\":[]}", 400, "missing field 'user'");
    expect_error(a, "POST", "/v1/rank", "{\"user\":7,\"items\":[]}", 400,
                 "'user' must be a string");
    expect_error(a, "POST", "/v1/rank", "{\"user\":\"\",\"items\":[]}", 400, "must not be empty");
    expect_error(a, "POST", "/v1/rank", "{\"user\":\"a\"}", 400, "missing field 'items'");
    expect_error(a, "POST", "/v1/rank", "{\"user\":\"a\",\"items\":\"i1\"}", 400,
                 "array of strings");
    expect_error(a, "POST", "/v1/rank", "{\"user\":\"a\",\"items\":[\"i1\",2]}", 400,
                 "items[1] must be a string");
    expect_error(a, "POST", "/v1/rank", "{\"user\":\"a\",\"items\":[\"i1\",\"\"]}", 400,
                 "items[1]' must not be empty");
    expect_error(a, "POST", "/v1/rank",
                 "{\"user\":\"a\",\"items\":[\"abcdefghijklmnopqrstuvwxyz\"]}", 400,
                 "longer than 16");
    expect_error(a, "POST", "/v1/rank",
                 "{\"user\":\"a\",\"items\":[\"1\",\"2\",\"3\",\"4\",\"5\",\"6\"]}", 400,
                 "too many candidates: 6 (at most 5)");
    expect_error(a, "POST", "/v1/rank", "{\"user\":\"a\",\"user\":\"b\",\"items\":[]}", 400,
                 "malformed JSON");
    expect_error(a, "POST", "/v1/rank?k=3", "{\"user\":\"a\",\"items\":[]}", 400,
                 "unknown parameter");
    /* invalid UTF-8 inside a JSON string, and an escaped NUL */
    expect_error(a, "POST", "/v1/rank", "{\"user\":\"\xc3\x28\",\"items\":[]}", 400,
                 "malformed JSON");
    expect_error(a, "POST", "/v1/rank", "{\"user\":\"a\\u0000b\",\"items\":[]}", 400,
                 "malformed JSON");
    /* deeply nested JSON: rejected by the parser's depth limit, no crash */
    size_t depth = 100000;
    char *deep = malloc(2 * depth + 1);
    memset(deep, '[', depth);
    memset(deep + depth, ']', depth);
    deep[2 * depth] = 0;
    expect_error(a, "POST", "/v1/rank", deep, 400, "malformed JSON");
    free(deep);
    sr_api_request_t req = {.method = "POST", .path = "/v1/rank", .body_too_large = 1};
    sr_api_response_t resp;
    sr_api_handle(a, &req, &resp);
    cr_assert_eq(resp.status, 413);
    cr_assert(strstr(resp.body, "larger than 4096 bytes"));
    sr_api_response_free(&resp);
    sr_api_destroy(a);
    sr_ranker_destroy(r);
}

Test(api, redis_down_is_503_with_reason)
{
    sr_ranker_t *r;
    sr_api_t *a = api_with_items(&r);
    src.fail = 1;
    expect_error(a, "GET", "/v1/recommend?user=alice", NULL, 503, "redis unavailable");
    expect_error(a, "POST", "/v1/rank", "{\"user\":\"alice\",\"items\":[\"i1\"]}", 503,
                 "redis unavailable");
    /* popularity and similar items do not need the user: still served */
    int st;
    json_t *j = call(a, "GET", "/v1/popular?k=2", NULL, 0, &st);
    cr_assert_eq(st, 200);
    json_decref(j);
    src.fail = 0;
    j = call(a, "GET", "/v1/recommend?user=alice", NULL, 0, &st);
    cr_assert_eq(st, 200, "recovers as soon as the source answers");
    json_decref(j);
    sr_api_destroy(a);
    sr_ranker_destroy(r);
}

static void check_items_shape(json_t *items, size_t n)
{
    cr_assert(json_is_array(items));
    cr_assert_eq(json_array_size(items), n);
    double prev = INFINITY;
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(items, i);
        cr_assert(json_is_string(json_object_get(e, "item")));
        json_t *s = json_object_get(e, "score");
        cr_assert(json_is_number(s));
        cr_assert_leq(json_number_value(s), prev + 1e-6, "best first");
        prev = json_number_value(s);
    }
}

Test(api, recommend_json_shape)
{
    sr_ranker_t *r;
    sr_api_t *a = api_with_items(&r);
    int st;
    json_t *j = call(a, "GET", "/v1/recommend?user=alice&k=5&exclude=purchased", NULL, 0, &st);
    cr_assert_eq(st, 200);
    cr_assert_str_eq(json_string_value(json_object_get(j, "user")), "alice");
    cr_assert_str_eq(json_string_value(json_object_get(j, "source")), "personal");
    check_items_shape(json_object_get(j, "items"), 5);
    for (size_t i = 0; i < 5; i++)
        cr_assert_str_neq(json_string_value(json_object_get(
                              json_array_get(json_object_get(j, "items"), i), "item")),
                          "i1");
    cr_assert(json_is_integer(json_object_get(j, "took_us")));
    cr_assert_geq(json_integer_value(json_object_get(j, "took_us")), 0);
    cr_assert_eq(json_object_size(j), 4);
    json_decref(j);
    j = call(a, "GET", "/v1/recommend?user=stranger", NULL, 0, &st);
    cr_assert_eq(st, 200);
    cr_assert_str_eq(json_string_value(json_object_get(j, "source")), "popular");
    check_items_shape(json_object_get(j, "items"), 10);
    json_decref(j);
    /* %-encoded ids round-trip */
    j = call(a, "GET", "/v1/recommend?user=caf%C3%A9+au+lait&k=1", NULL, 0, &st);
    cr_assert_eq(st, 200);
    cr_assert_str_eq(json_string_value(json_object_get(j, "user")), "caf\xc3\xa9 au lait");
    json_decref(j);
    sr_api_destroy(a);
    sr_ranker_destroy(r);
}

Test(api, rank_json_shape)
{
    sr_ranker_t *r;
    sr_api_t *a = api_with_items(&r);
    const char *body = "{\"user\":\"alice\",\"items\":[\"new1\",\"i3\",\"i4\"]}";
    int st;
    json_t *j = call(a, "POST", "/v1/rank", body, strlen(body), &st);
    cr_assert_eq(st, 200);
    cr_assert_str_eq(json_string_value(json_object_get(j, "user")), "alice");
    json_t *items = json_object_get(j, "items");
    cr_assert_eq(json_array_size(items), 3);
    json_t *last = json_array_get(items, 2);
    cr_assert_str_eq(json_string_value(json_object_get(last, "item")), "new1");
    cr_assert(json_is_true(json_object_get(last, "unknown")));
    cr_assert_null(json_object_get(last, "score"));
    for (size_t i = 0; i < 2; i++) {
        json_t *e = json_array_get(items, i);
        cr_assert(json_is_number(json_object_get(e, "score")));
        cr_assert_null(json_object_get(e, "unknown"));
    }
    json_decref(j);
    /* an empty candidate list is fine */
    const char *empty = "{\"user\":\"alice\",\"items\":[]}";
    j = call(a, "POST", "/v1/rank", empty, strlen(empty), &st);
    cr_assert_eq(st, 200);
    cr_assert_eq(json_array_size(json_object_get(j, "items")), 0);
    json_decref(j);
    sr_api_destroy(a);
    sr_ranker_destroy(r);
}

Test(api, similar_popular_healthz_json_shape)
{
    sr_ranker_t *r;
    sr_api_t *a = api_with_items(&r);
    int st;
    json_t *j = call(a, "GET", "/v1/similar?item=i2&k=4", NULL, 0, &st);
    cr_assert_eq(st, 200);
    cr_assert_str_eq(json_string_value(json_object_get(j, "item")), "i2");
    check_items_shape(json_object_get(j, "items"), 4);
    json_decref(j);
    j = call(a, "GET", "/v1/popular?k=3", NULL, 0, &st);
    cr_assert_eq(st, 200);
    cr_assert_str_eq(json_string_value(json_object_get(j, "source")), "popular");
    check_items_shape(json_object_get(j, "items"), 3);
    json_decref(j);
    j = call(a, "GET", "/healthz", NULL, 0, &st);
    cr_assert_eq(st, 200);
    cr_assert_str_eq(json_string_value(json_object_get(j, "status")), "ok");
    cr_assert(json_is_true(json_object_get(j, "redis")));
    cr_assert(json_is_true(json_object_get(j, "loaded")));
    cr_assert_eq(json_integer_value(json_object_get(j, "items")), 20);
    cr_assert(json_is_integer(json_object_get(j, "stream_lag")));
    json_decref(j);
    sr_api_destroy(a);
    sr_ranker_destroy(r);
}

Test(api, metrics_text_counts_requests_by_route_and_code)
{
    sr_ranker_t *r;
    sr_api_t *a = api_with_items(&r);
    int st;
    for (int i = 0; i < 3; i++)
        json_decref(call(a, "GET", "/v1/popular", NULL, 0, &st));
    json_decref(call(a, "GET", "/v1/popular?k=0", NULL, 0, &st));
    json_decref(call(a, "GET", "/zzz", NULL, 0, &st));
    sr_api_request_t req = {.method = "GET", .path = "/metrics"};
    sr_api_response_t resp;
    sr_api_handle(a, &req, &resp);
    cr_assert_eq(resp.status, 200);
    cr_assert(strstr(resp.content_type, "text/plain"));
    const char *t = resp.body;
    cr_assert(strstr(t, "streamrec_ranker_requests_total{route=\"popular\",code=\"200\"} 3\n"),
              "%s", t);
    cr_assert(strstr(t, "streamrec_ranker_requests_total{route=\"popular\",code=\"400\"} 1\n"));
    cr_assert(strstr(t, "streamrec_ranker_requests_total{route=\"other\",code=\"404\"} 1\n"));
    cr_assert(strstr(t, "streamrec_ranker_errors_total{kind=\"client\"} 2\n"));
    cr_assert(strstr(t, "streamrec_ranker_request_duration_seconds_bucket{route=\"popular\","
                        "le=\"+Inf\"} 4\n"));
    cr_assert(strstr(t, "streamrec_ranker_request_duration_seconds_count{route=\"popular\"} 4\n"));
    cr_assert(strstr(t, "# TYPE streamrec_ranker_request_duration_seconds histogram\n"));
    cr_assert(strstr(t, "streamrec_ranker_items_loaded 20\n"));
    cr_assert(strstr(t, "streamrec_ranker_stream_lag 0\n"));
    sr_api_response_free(&resp);
    sr_api_stats_t s;
    sr_api_stats(a, &s);
    cr_assert_eq(s.requests, 6, "the /metrics request itself counted too");
    cr_assert_eq(s.errors, 2);
    cr_assert_eq(s.interval_count, 5, "metrics/healthz are not in the latency quantiles");
    cr_assert_gt(s.p99_us, 0);
    cr_assert_geq(s.p99_us, s.p50_us);
    sr_api_stats(a, &s);
    cr_assert_eq(s.interval_count, 0, "quantiles are per interval");
    sr_api_destroy(a);
    sr_ranker_destroy(r);
}

Test(api, parse_query_decodes_and_rejects)
{
    sr_api_param_t p[4];
    char q1[] = "a=1&b=x%20y+z&&c&d=%41";
    cr_assert_eq(sr_api_parse_query(q1, p, 4), 4);
    cr_assert_str_eq(p[0].key, "a");
    cr_assert_eq(p[1].value_len, 5);
    cr_assert(memcmp(p[1].value, "x y z", 5) == 0);
    cr_assert_str_eq(p[2].key, "c");
    cr_assert_eq(p[2].value_len, 0);
    cr_assert(memcmp(p[3].value, "A", 1) == 0);
    char q2[] = "a=%zz";
    cr_assert_eq(sr_api_parse_query(q2, p, 4), SR_ERR_PARSE);
    char q3[] = "a=%4";
    cr_assert_eq(sr_api_parse_query(q3, p, 4), SR_ERR_PARSE);
    char q4[] = "a&b&c&d&e";
    cr_assert_eq(sr_api_parse_query(q4, p, 4), SR_ERR_FULL);
}

Test(api, utf8_validation)
{
    cr_assert(sr_api_utf8_valid("plain", 5));
    cr_assert(sr_api_utf8_valid("caf\xc3\xa9", 5));
    cr_assert(sr_api_utf8_valid("\xf0\x9f\x98\x80", 4));
    cr_assert(!sr_api_utf8_valid("\xc3", 1), "truncated");
    cr_assert(!sr_api_utf8_valid("\xc0\xaf", 2), "overlong");
    cr_assert(!sr_api_utf8_valid("\xe0\x80\xaf", 3), "overlong 3-byte");
    cr_assert(!sr_api_utf8_valid("\xed\xa0\x80", 3), "surrogate");
    cr_assert(!sr_api_utf8_valid("\xf4\x90\x80\x80", 4), "beyond U+10FFFF");
    cr_assert(!sr_api_utf8_valid("\xff", 1));
    cr_assert(!sr_api_utf8_valid("a\x80", 2), "lone continuation");
}

Test(api, bad_limits_refused)
{
    reset_src();
    sr_ranker_t *r = new_ranker();
    sr_api_limits_t lim = {.k_max = 0, .candidates_max = 5, .body_max = 4096, .id_max = 16};
    cr_assert_null(sr_api_new(r, &lim));
    cr_assert_null(sr_api_new(NULL, &lim));
    sr_api_destroy(NULL);
    sr_ranker_destroy(r);
}

Test(items, neighbours_resolve_within_a_batch_and_feed_the_kernel)
{
    sr_items_t *it = sr_items_new(2);
    float v[2] = {1, 0};
    sr_item_nbr_in_t na[2] = {{.id = "b", .id_len = 1, .count = 3},
                              {.id = "ghost", .id_len = 5, .count = 9}};
    sr_item_update_t u[2] = {
        {.id = "a",
         .id_len = 1,
         .num = -1,
         .vec = v,
         .count = 4,
         .set_count = 1,
         .nbrs = na,
         .n_nbrs = 2,
         .set_nbrs = 1},
        {.id = "b", .id_len = 1, .num = -1, .vec = v, .count = 5, .set_count = 1}};
    cr_assert_eq(sr_items_apply(it, u, 2), 2);
    for (int round = 0; round < 2; round++) { /* both sides */
        sr_items_view_t view;
        int t = sr_items_enter(it, &view);
        sr_score_items_t si;
        sr_items_score_items(&view, &si);
        size_t n = 0;
        const sr_score_nbr_t *l = si.nbrs(si.nbrs_opaque, 0, &n);
        cr_assert_eq(n, 1, "the unknown neighbour is dropped");
        cr_assert_eq(l[0].item, 1);
        cr_assert_float_eq(l[0].count, 3.0f, 0);
        cr_assert_float_eq(si.count[1], 5.0f, 0);
        si.nbrs(si.nbrs_opaque, 1, &n);
        cr_assert_eq(n, 0);
        sr_items_leave(it, t);
        sr_item_update_t again = {.id = "b", .id_len = 1, .num = -1, .bias = 1, .set_bias = 1};
        cr_assert_eq(sr_items_apply(it, &again, 1), 1);
    }
    sr_items_destroy(it);
}

/* The answers are written by hand (api.c); they must be the bytes
 * jansson's json_dumps gave: escapes, non-ASCII, number formats. */
Test(api, written_answer_is_what_jansson_would_write)
{
    reset_src();
    sr_ranker_t *r = new_ranker();
    const char *ids[] = {"q\"uo\\te", "tab\there", "ctl\x01\x1f", "caf\xc3\xa9", "big", "zero"};
    size_t lens[6];
    for (int j = 0; j < 6; j++)
        lens[j] = strlen(ids[j]);
    float pop[] = {1.5e-7f, 50.0f, 3.25e12f, 1.0f / 3.0f, 1e30f, 0.0f};
    cr_assert_eq(sr_ranker_upsert_items(r, ids, lens, 6, NULL, NULL, pop), 0);
    sr_api_limits_t lim = {.k_max = 100, .candidates_max = 10, .body_max = 4096, .id_max = 16};
    sr_api_t *a = sr_api_new(r, &lim);
    sr_ranker_result_t res;
    cr_assert_eq(sr_ranker_popular(r, 6, &res), 0);
    json_t *arr = json_array();
    for (size_t i = 0; i < res.n; i++) {
        json_t *s = json_stringn(res.items[i].id, res.items[i].id_len);
        json_array_append_new(
            arr, isfinite(res.items[i].score)
                     ? json_pack("{s:o,s:f}", "item", s, "score", (double)res.items[i].score)
                     : json_pack("{s:o,s:n}", "item", s, "score"));
    }
    sr_ranker_result_free(&res);
    sr_api_param_t p = {.key = "k", .value = "6", .value_len = 1};
    sr_api_request_t req = {.method = "GET", .path = "/v1/popular", .params = &p, .n_params = 1};
    sr_api_response_t resp;
    sr_api_handle(a, &req, &resp);
    cr_assert_eq(resp.status, 200);
    const char *t = strstr(resp.body, ",\"took_us\":");
    cr_assert_not_null(t);
    json_t *want = json_pack("{s:s,s:o,s:I}", "source", "popular", "items", arr, "took_us",
                             (json_int_t)atoll(t + 11));
    char *ws = json_dumps(want, JSON_COMPACT | JSON_REAL_PRECISION(7));
    cr_assert_eq(resp.body_len, strlen(ws));
    cr_assert_eq(memcmp(resp.body, ws, resp.body_len), 0, "%.*s\nvs\n%s", (int)resp.body_len,
                 resp.body, ws);
    free(ws);
    json_decref(want);
    sr_api_response_free(&resp);
    sr_api_destroy(a);
    sr_ranker_destroy(r);
}

/* 1 from the fast path must mean: jansson accepts the same bytes and reads
 * the same user and items from them. */
static void check_fast_agrees(const char *b, size_t len)
{
    sr_api_rank_body_t fb;
    int r = sr_api_parse_rank_body(b, len, &fb);
    cr_assert_geq(r, 0);
    if (r == 0) {
        cr_assert_null(fb.ids);
        return;
    }
    json_error_t err;
    json_t *doc = json_loadb(b, len, JSON_REJECT_DUPLICATES, &err);
    cr_assert_not_null(doc, "fast path took what jansson refuses: %.*s (%s)", (int)len, b,
                       err.text);
    json_t *u = json_object_get(doc, "user"), *items = json_object_get(doc, "items");
    cr_assert(json_is_string(u) && json_is_array(items), "%.*s", (int)len, b);
    cr_assert_eq(json_string_length(u), fb.user_len);
    cr_assert_eq(memcmp(json_string_value(u), fb.user, fb.user_len), 0);
    cr_assert_eq(json_array_size(items), fb.n, "%.*s", (int)len, b);
    for (size_t i = 0; i < fb.n; i++) {
        json_t *e = json_array_get(items, i);
        cr_assert(json_is_string(e));
        cr_assert_eq(json_string_length(e), fb.lens[i]);
        cr_assert_eq(memcmp(json_string_value(e), fb.ids[i], fb.lens[i]), 0);
    }
    json_decref(doc);
    sr_api_rank_body_free(&fb);
}

Test(api, rank_body_fast_path_agrees_with_jansson)
{
    static const char *const plain[] = {
        "{\"user\":\"u1\",\"items\":[\"a\",\"b\",\"caf\xc3\xa9\"]}",
        " {\n\t\"items\" : [ ] , \"user\" : \"x y\" }\r\n",
        "{\"user\":\"u\",\"other\":\"o\",\"items\":[\"a\"],\"more\":[\"p\",\"q\"]}",
    };
    for (size_t c = 0; c < sizeof(plain) / sizeof(plain[0]); c++) {
        sr_api_rank_body_t fb;
        cr_assert_eq(sr_api_parse_rank_body(plain[c], strlen(plain[c]), &fb), 1, "%s", plain[c]);
        sr_api_rank_body_free(&fb);
        check_fast_agrees(plain[c], strlen(plain[c]));
    }
    /* left to jansson: escapes, other types, duplicates, trailing bytes,
     * invalid UTF-8, control characters, a missing field */
    static const char *const other[] = {
        "{\"user\":\"u\\n\",\"items\":[]}",
        "{\"user\":\"u\",\"items\":[1]}",
        "{\"user\":\"u\",\"items\":[],\"user\":\"v\"}",
        "{\"user\":\"u\",\"items\":[]} x",
        "{\"user\":\"\xff\",\"items\":[]}",
        "{\"user\":\"a\x01\",\"items\":[]}",
        "{\"user\":\"u\"}",
        "{\"user\":[\"u\"],\"items\":[]}",
        "{\"user\":\"u\",\"items\":\"a\"}",
        "[]",
        "",
        "{\"user\":\"u\",\"items\":[\"a\",]}",
        "{\"user\":\"u\",\"items\":[\"a\"],}",
    };
    for (size_t c = 0; c < sizeof(other) / sizeof(other[0]); c++) {
        sr_api_rank_body_t fb;
        cr_assert_eq(sr_api_parse_rank_body(other[c], strlen(other[c]), &fb), 0, "%s", other[c]);
    }
    /* mutations of the plain bodies */
    static const char alphabet[] = "\"\\,:[]{} \tauX\x01\x80\xc3\xa9\xff"
                                   "0";
    uint64_t x = 88172645463325252ULL;
    for (int it = 0; it < 30000; it++) {
        char b[128];
        const char *src = plain[it % 3];
        size_t len = strlen(src);
        memcpy(b, src, len);
        for (int m = 0; m < 1 + it % 3; m++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            size_t at = (size_t)(x % len);
            int op = (int)((x >> 32) % 3);
            char ch = alphabet[(x >> 40) % (sizeof(alphabet) - 1)];
            if (op == 0) {
                b[at] = ch;
            } else if (op == 1 && len > 1) {
                memmove(b + at, b + at + 1, len - at - 1);
                len--;
            } else if (len < sizeof(b) - 1) {
                memmove(b + at + 1, b + at, len - at);
                b[at] = ch;
                len++;
            }
        }
        check_fast_agrees(b, len);
    }
}

static void check_score_format(float v)
{
    char got[40];
    int n = sr_api_format_score(v, got);
    json_t *j = json_real((double)v);
    char *want = json_dumps(j, JSON_ENCODE_ANY | JSON_REAL_PRECISION(7));
    cr_assert_not_null(want);
    cr_assert_eq(n, (int)strlen(want), "%.9g: %s vs %s", v, got, want);
    cr_assert_str_eq(got, want, "%.9g", v);
    free(want);
    json_decref(j);
}

/* Scores are written without a jansson tree (api.c): the same bytes as
 * jansson's own number output, for every kind of float. */
Test(api, score_format_is_janssons)
{
    const float edge[] = {1e-4f,
                          nextafterf(1e-4f, 1),
                          0.0001000001f,
                          1e7f,
                          nextafterf(1e7f, 0),
                          9999999.0f,
                          9999999.5f,
                          999999.94f,
                          999999.95f,
                          999999.96f,
                          0.5f,
                          50.0f,
                          1.0f,
                          1234567.0f,
                          0.33333334f,
                          2.70601f,
                          -10.8309f,
                          1e-45f,
                          FLT_MAX,
                          1e30f,
                          0.0f,
                          -0.0f,
                          8388608.0f,
                          16777216.0f,
                          0.00012345675f};
    for (size_t i = 0; i < sizeof(edge) / sizeof(edge[0]); i++) {
        check_score_format(edge[i]);
        check_score_format(-edge[i]);
    }
    uint64_t x = 0x9E3779B97F4A7C15ULL;
    for (int i = 0; i < 400000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        uint32_t bits = (uint32_t)x;
        float v;
        memcpy(&v, &bits, sizeof v);
        if (isfinite(v)) check_score_format(v);
        /* log-uniform over the printf-free range and around it */
        float w = (float)pow(10.0, -5.0 + 13.0 * (double)(x >> 40) / (double)(1ULL << 24));
        check_score_format((x >> 39) & 1 ? -w : w);
    }
}
