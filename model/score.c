/* The scoring kernel shared by the model and the ranker (contract in
 * sr_score.h).  Written for the hot path: the dense part is one streaming
 * pass over the contiguous item matrix with an 8-lane dot product that GCC
 * vectorises at -O3 without -ffast-math (the lanes fix the summation order,
 * so results are reproducible); the sparse signals touch only the few items
 * the user's recent list and its co-occurrence neighbours name.
 *
 * OpenBLAS sgemv was measured against this loop (bench/bench_learn.c prints
 * both): with OpenBLAS 0.3.21 on this machine the plain loop wins, so the
 * kernel does not call BLAS; the matrix layout stays BLAS-ready. */
#include <math.h>
#include <string.h>

#include "sr_dot.h"
#include "sr_score.h"

static const char *const feature_names[SR_BLEND_NFEAT] = {
    "mf",     "sess", "bias", "pop", "rec", "last", "cooc",  "seen",  "cooc_seen", "pos",
    "repeat", "r1",   "r23",  "r47", "gap", "cond", "walk2", "lcond", "lcooc",
    "scond",
};

void sr_score_blend_prior(float *blend)
{
    /* The user's own items strongly, co-occurrence strongly, taste and
     * popularity mildly; the finer seen-item features start at 0.  A prior
     * set to where the learner ends up on simulated logs did worse under
     * `all` on four logs (docs/BENCHMARKS.md): the learner's path from here
     * matters more than the start. */
    static const float prior[SR_BLEND_NFEAT] = {
        [SR_F_MF] = 1.0f,        [SR_F_SESS] = 1.0f, [SR_F_BIAS] = 0.5f,   [SR_F_POP] = 0.5f,
        [SR_F_REC] = 3.0f,       [SR_F_LAST] = 1.0f, [SR_F_COOC] = 3.0f,   [SR_F_SEEN] = 1.0f,
        [SR_F_COOC_SEEN] = 1.0f, [SR_F_POS] = 1.0f,  [SR_F_REPEAT] = 1.0f, [SR_F_WALK2] = 1.0f,
        [SR_F_SCOND] = 3.0f,
    };
    memcpy(blend, prior, sizeof prior);
}

const char *sr_score_feature_name(int f)
{
    return (f >= 0 && f < SR_BLEND_NFEAT) ? feature_names[f] : "unknown";
}

#define dot8 sr_dot8_

typedef float v8sf_t __attribute__((vector_size(32)));
typedef int v8si_t __attribute__((vector_size(32)));

/* Four rows against one vector at a time: four 8-lane accumulators, then
 * one transposing reduction for all four instead of a horizontal sum per
 * row, which is what made the one-row loop lose to sgemv at k=32.  Same
 * lanes as sr_dot8_ (lane j sums coordinates j mod 8), summed in another
 * order, so results match sr_dot8_ to rounding.  dim % 8 == 0. */
static inline void dot4rows(const float *restrict q, const float *restrict v, int dim, float *out)
{
    v8sf_t a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
    for (int d = 0; d < dim; d += 8) {
        v8sf_t x, y0, y1, y2, y3;
        memcpy(&x, v + d, sizeof x);
        memcpy(&y0, q + d, sizeof x);
        memcpy(&y1, q + dim + d, sizeof x);
        memcpy(&y2, q + 2 * dim + d, sizeof x);
        memcpy(&y3, q + 3 * dim + d, sizeof x);
        a0 += y0 * x;
        a1 += y1 * x;
        a2 += y2 * x;
        a3 += y3 * x;
    }
    const v8si_t lo = {0, 8, 1, 9, 2, 10, 3, 11}, hi = {4, 12, 5, 13, 6, 14, 7, 15};
    v8sf_t s01 = __builtin_shuffle(a0, a1, lo) + __builtin_shuffle(a0, a1, hi);
    v8sf_t s23 = __builtin_shuffle(a2, a3, lo) + __builtin_shuffle(a2, a3, hi);
    const v8si_t p = {0, 1, 8, 9, 2, 3, 10, 11}, r = {4, 5, 12, 13, 6, 7, 14, 15};
    v8sf_t t = __builtin_shuffle(s01, s23, p) + __builtin_shuffle(s01, s23, r);
    /* t = (r0, r1, r2, r3, r0, r1, r2, r3) partial sums */
    for (int k = 0; k < 4; k++)
        out[k] = t[k] + t[k + 4];
}

float sr_dot(const float *a, const float *b, int n)
{
    return dot8(a, b, n);
}

float sr_exp2_neg(float x)
{
    if (!(x <= 0.0f)) return x > 0.0f ? 1.0f : 0.0f; /* NaN -> 0 */
    if (x < -126.0f) return 0.0f;
    float fi = floorf(x);
    float f = x - fi; /* [0, 1) */
    /* Taylor series of e^(f ln 2) to degree 6: relative error < 2e-5. */
    float p =
        1.0f + f * (0.693147182f +
                    f * (0.240226507f +
                         f * (0.0555041087f +
                              f * (0.00961812911f + f * (0.00133335581f + f * 0.000154035304f)))));
    /* 2^fi by building the float's exponent: exact, and no libm call */
    union {
        uint32_t u;
        float f;
    } sc = {.u = (uint32_t)((int)fi + 127) << 23};
    return p * sc.f;
}

static inline float decay(const sr_score_conf_t *c, int64_t now_ms, int64_t ts_ms)
{
    int64_t age = now_ms - ts_ms;
    if (age <= 0 || c->recent_half_life_s <= 0) return 1.0f;
    return sr_exp2_neg(-(float)((double)age / (1000.0 * c->recent_half_life_s)));
}

/* s_u decays with the same half-life as the recency signal. */
static void session(const sr_score_items_t *it, const sr_score_user_t *u, float half_life_s,
                    float *s)
{
    int dim = it->dim;
    memset(s, 0, (size_t)dim * sizeof *s);
    float wsum = 0;
    size_t taken = 0;
    for (size_t k = u->n_recent; k-- > 0 && taken < SR_SESS_LEN;) {
        const sr_score_recent_t *r = &u->recent[k];
        if (r->item < 0 || (uint32_t)r->item >= it->n_items) continue;
        taken++;
        float w = 1.0f;
        int64_t age = u->now_ms - r->ts_ms;
        if (age > 0 && half_life_s > 0)
            w = sr_exp2_neg(-(float)((double)age / (1000.0 * half_life_s)));
        const float *q = it->q + (size_t)r->item * dim;
        for (int d = 0; d < dim; d++)
            s[d] += w * q[d];
        wsum += w;
    }
    /* Divide by max(sum, 1): a fresh session is a mean, an old one fades. */
    if (wsum > 1.0f) {
        float inv = 1.0f / wsum;
        for (int d = 0; d < dim; d++)
            s[d] *= inv;
    }
}

void sr_score_session(const sr_score_items_t *it, const sr_score_conf_t *c,
                      const sr_score_user_t *u, float *s)
{
    session(it, u, c->recent_half_life_s, s);
}

/* Recency sum of item x over the user's recent entries. */
static float recency_of(const sr_score_conf_t *c, const sr_score_user_t *u, int32_t x)
{
    float r = 0;
    for (size_t k = 0; k < u->n_recent; k++) {
        const sr_score_recent_t *e = &u->recent[k];
        if (e->item == x)
            r += c->weight[e->type < SR_EV_NTYPES ? e->type : 0] * decay(c, u->now_ms, e->ts_ms);
    }
    return r;
}

static int in_recent(const sr_score_user_t *u, int32_t x)
{
    for (size_t k = 0; k < u->n_recent; k++)
        if (u->recent[k].item == x) return 1;
    return 0;
}

/* 1 - distinct / entries over the known recent items: 0 for a user who
 * never repeats, towards 1 for one who keeps returning to a few items. */
static float repeat_ratio(const sr_score_items_t *it, const sr_score_user_t *u)
{
    size_t n = 0, distinct = 0;
    for (size_t k = 0; k < u->n_recent; k++) {
        int32_t x = u->recent[k].item;
        if (x < 0 || (uint32_t)x >= it->n_items) continue;
        n++;
        int newer = 0;
        for (size_t j = k + 1; j < u->n_recent && !newer; j++)
            newer = u->recent[j].item == x;
        distinct += !newer;
    }
    return n ? 1.0f - (float)distinct / (float)n : 0.0f;
}

/* 1 - 2^(-pause / half_life), pause since the user's newest entry. */
static float pause_of(const sr_score_conf_t *c, const sr_score_user_t *u)
{
    if (u->n_recent == 0) return 0.0f;
    return 1.0f - decay(c, u->now_ms, u->recent[u->n_recent - 1].ts_ms);
}

static int32_t last_item(const sr_score_items_t *it, const sr_score_user_t *u)
{
    for (size_t k = u->n_recent; k-- > 0;) {
        int32_t x = u->recent[k].item;
        if (x >= 0 && (uint32_t)x < it->n_items) return x;
    }
    return -1;
}

/* Calls fn for the user's most recent distinct known items, newest first,
 * at most cooc_window of them; returns how many. */
static size_t context_items(const sr_score_items_t *it, const sr_score_conf_t *c,
                            const sr_score_user_t *u, int32_t *ctx)
{
    size_t n = 0;
    size_t w = c->cooc_window > 0 ? (size_t)c->cooc_window : 0;
    if (w > 64) w = 64;
    for (size_t k = u->n_recent; k-- > 0 && n < w;) {
        int32_t x = u->recent[k].item;
        if (x < 0 || (uint32_t)x >= it->n_items) continue;
        int dup = 0;
        for (size_t j = 0; j < n; j++)
            dup |= ctx[j] == x;
        if (!dup) ctx[n++] = x;
    }
    return n;
}

size_t sr_score_session_ctx(const sr_score_items_t *it, const sr_score_conf_t *c,
                          const sr_score_user_t *u, int32_t *ctx, float *w)
{
    size_t n = 0;
    float sum = 0;
    for (size_t k = u->n_recent; k-- > 0 && n < SR_SCTX;) {
        int32_t x = u->recent[k].item;
        if (x < 0 || (uint32_t)x >= it->n_items) continue;
        int dup = 0;
        for (size_t j = 0; j < n; j++)
            dup |= ctx[j] == x;
        if (dup) continue;
        ctx[n] = x;
        w[n] = decay(c, u->now_ms, u->recent[k].ts_ms);
        sum += w[n++];
    }
    float inv = sum > 1.0f ? 1.0f / sum : 1.0f;
    for (size_t k = 0; k < n; k++)
        w[k] *= inv;
    return n;
}

static inline int cooc_on(const sr_score_items_t *it)
{
    return it->nbrs && it->count;
}

/* v = w_mf p_u + w_sess s_u: the one vector the dense pass dots with. */
static void user_vec(const sr_score_items_t *it, const sr_score_conf_t *c, const sr_score_user_t *u,
                     float *v, float *s)
{
    int dim = it->dim;
    session(it, u, c->recent_half_life_s, s);
    const float wmf = c->blend[SR_F_MF], wsess = c->blend[SR_F_SESS];
    for (int d = 0; d < dim; d++)
        v[d] = (u->p ? wmf * u->p[d] : 0.0f) + wsess * s[d];
}

void sr_score_dense_vec(const sr_score_items_t *it, const sr_score_conf_t *c,
                        const sr_score_user_t *u, float *v, float *scratch)
{
    user_vec(it, c, u, v, scratch);
}

/* The dense part of four rows starting at row i (dot4rows), and of one
 * row (dot8).  Out of line on purpose: the full pass and
 * sr_score_dense_rows call the same machine code, so a row gets the same
 * bits from both whatever the compiler would contract or vectorise in
 * either loop. */
typedef struct dense_k {
    const float *q, *b, *lp, *v;
    int dim;
    float wb, wp, off;
} dense_k_t;

__attribute__((noinline)) static void dense4(const dense_k_t *k, uint32_t i, float *out4)
{
    float d4[4];
    dot4rows(k->q + (size_t)i * k->dim, k->v, k->dim, d4);
    for (int r = 0; r < 4; r++)
        out4[r] = k->wb * k->b[i + r] + k->wp * fmaxf(k->lp[i + r] + k->off, SR_POP_FLOOR) + d4[r];
}

__attribute__((noinline)) static float dense1(const dense_k_t *k, uint32_t i)
{
    return k->wb * k->b[i] + k->wp * fmaxf(k->lp[i] + k->off, SR_POP_FLOOR) +
           dot8(k->q + (size_t)i * k->dim, k->v, k->dim);
}

static void dense_k_init(dense_k_t *k, const sr_score_items_t *it, const sr_score_conf_t *c,
                         const float *v)
{
    k->q = it->q;
    k->b = it->bias;
    k->lp = it->logpop;
    k->v = v;
    k->dim = it->dim;
    k->wb = c->blend[SR_F_BIAS];
    k->wp = c->blend[SR_F_POP];
    k->off = c->pop_offset;
}

/* Rows below this index are scored four at a time by dot4rows, the rest
 * one at a time by dot8 (the two sum in different orders). */
static inline uint32_t n_quad(const sr_score_items_t *it)
{
    return it->dim % 8 == 0 ? it->n_items / 4 * 4 : 0;
}

static void dense_all(const sr_score_items_t *it, const sr_score_conf_t *c, const float *v,
                      float *out)
{
    dense_k_t k;
    dense_k_init(&k, it, c, v);
    uint32_t i = 0, n4 = n_quad(it);
    for (; i < n4; i += 4)
        dense4(&k, i, out + i);
    for (; i < it->n_items; i++)
        out[i] = dense1(&k, i);
}

void sr_score_dense_rows(const sr_score_items_t *it, const sr_score_conf_t *c, const float *v,
                         const uint32_t *rows, size_t n, float *out)
{
    dense_k_t k;
    dense_k_init(&k, it, c, v);
    uint32_t n4 = n_quad(it);
    for (size_t j = 0; j < n; j++) {
        uint32_t i = rows[j];
        if (i >= it->n_items) continue;
        if (i < n4) {
            /* dot4rows gives a row the same value in any group (one row's
             * lanes never mix with another's): score the row's own group
             * of four and keep its lane. */
            float o4[4];
            uint32_t g = i & ~3u;
            dense4(&k, g, o4);
            out[i] = o4[i - g];
        } else {
            out[i] = dense1(&k, i);
        }
    }
}

/* Adds the sparse blend terms to out[x] for the few items x they touch
 * (out may be NULL: only mark), and ORs flag into mark[x] for each such x
 * when mark is not NULL. */
static void add_sparse(const sr_score_items_t *it, const sr_score_conf_t *c,
                       const sr_score_user_t *u, float *out, uint8_t *mark, uint8_t flag)
{
    float sink = 0;
#define SLOT_(x) (mark ? (void)(mark[(x)] |= flag) : (void)0, out ? &out[(x)] : &sink)
    /* Recency: once per distinct item, newest first (r = distinct rank). */
    size_t r = 0;
    const float rep =
        c->blend[SR_F_REPEAT] * repeat_ratio(it, u) + c->blend[SR_F_GAP] * pause_of(c, u);
    for (size_t k = u->n_recent; k-- > 0;) {
        int32_t x = u->recent[k].item;
        if (x < 0 || (uint32_t)x >= it->n_items) continue;
        int newer = 0;
        for (size_t j = k + 1; j < u->n_recent && !newer; j++)
            newer = u->recent[j].item == x;
        if (newer) continue;
        *SLOT_(x) += c->blend[SR_F_REC] * log1pf(recency_of(c, u, x)) + c->blend[SR_F_SEEN] +
                     c->blend[SR_F_POS] / (float)(1 + r) + rep;
        int rf = sr_score_rank_feature(r);
        if (rf >= 0) *SLOT_(x) += c->blend[rf];
        r++;
    }
    int32_t last = last_item(it, u);
    if (last >= 0) *SLOT_(last) += c->blend[SR_F_LAST];

    if (!cooc_on(it)) return;
    int32_t ctx[64];
    size_t nctx = context_items(it, c, u, ctx);
    for (size_t k = 0; k < nctx; k++) {
        size_t nn = 0;
        const sr_score_nbr_t *nb = it->nbrs(it->nbrs_opaque, ctx[k], &nn);
        float nj = it->count[ctx[k]];
        if (!nb || nj <= 0) continue;
        float wk = ldexpf(1.0f, -(int)k);
        for (size_t e = 0; e < nn; e++) {
            int32_t x = nb[e].item;
            if (x < 0 || (uint32_t)x >= it->n_items || it->count[x] <= 0) continue;
            if (in_recent(u, x))
                *SLOT_(x) += c->blend[SR_F_COOC_SEEN] * wk * nb[e].count / sqrtf(nj * it->count[x]);
            else
                *SLOT_(x) +=
                    c->blend[SR_F_COOC] * wk * nb[e].count / sqrtf(nj * it->count[x]) +
                    c->blend[SR_F_COND] * wk * nb[e].count / nj +
                    (k == 0 ? c->blend[SR_F_LCOND] * log1pf(nb[e].count / nj / SR_LCOND_EPS) +
                                  c->blend[SR_F_LCOOC] *
                                      log1pf(nb[e].count / sqrtf(nj * it->count[x]) / SR_LCOND_EPS)
                            : 0.0f);
        }
    }
    if (nctx == 0) return;
    /* the session mixture of P(x | j) */
    int32_t sctx[SR_SCTX];
    float sw[SR_SCTX];
    size_t ns = sr_score_session_ctx(it, c, u, sctx, sw);
    for (size_t k = 0; k < ns; k++) {
        size_t nn = 0;
        const sr_score_nbr_t *nb = it->nbrs(it->nbrs_opaque, sctx[k], &nn);
        float nj = it->count[sctx[k]];
        if (!nb || nj <= 0) continue;
        float a = c->blend[SR_F_SCOND] * sw[k] / nj;
        for (size_t e = 0; e < nn; e++) {
            int32_t x = nb[e].item;
            if (x < 0 || (uint32_t)x >= it->n_items || it->count[x] <= 0 || in_recent(u, x))
                continue;
            *SLOT_(x) += a * nb[e].count;
        }
    }
    /* two steps from the last item: P(k | last) P(x | k) */
    size_t n1 = 0;
    const sr_score_nbr_t *l1 = it->nbrs(it->nbrs_opaque, ctx[0], &n1);
    float n0 = it->count[ctx[0]];
    if (!l1 || n0 <= 0) return;
    for (size_t a = 0; a < n1 && a < SR_WALK_N1; a++) {
        int32_t k = l1[a].item;
        if (k < 0 || (uint32_t)k >= it->n_items || it->count[k] <= 0) continue;
        float p1 = c->blend[SR_F_WALK2] * l1[a].count / n0 / it->count[k];
        size_t n2 = 0;
        const sr_score_nbr_t *l2 = it->nbrs(it->nbrs_opaque, k, &n2);
        for (size_t e = 0; l2 && e < n2 && e < SR_WALK_N2; e++) {
            int32_t x = l2[e].item;
            if (x < 0 || (uint32_t)x >= it->n_items || in_recent(u, x)) continue;
            *SLOT_(x) += p1 * l2[e].count;
        }
    }
#undef SLOT_
}

void sr_score_sparse(const sr_score_items_t *it, const sr_score_conf_t *c, const sr_score_user_t *u,
                     float *out, uint8_t *mark, uint8_t flag)
{
    add_sparse(it, c, u, out, mark, flag);
}

void sr_score_all(const sr_score_items_t *it, const sr_score_conf_t *c, const sr_score_user_t *u,
                  float *out, float *scratch)
{
    int dim = it->dim;
    float *s = scratch, *v = scratch + dim;
    user_vec(it, c, u, v, s);
    dense_all(it, c, v, out);
    add_sparse(it, c, u, out, NULL, 0);
}

/* P(k | j) P(x | k) summed over j's strongest neighbours k (the walk the
 * full pass does, for one item). */
static float walk2(const sr_score_items_t *it, int32_t j, int32_t x)
{
    size_t n1 = 0;
    const sr_score_nbr_t *l1 = it->nbrs(it->nbrs_opaque, j, &n1);
    float n0 = it->count[j], w = 0;
    if (!l1 || n0 <= 0) return 0.0f;
    for (size_t a = 0; a < n1 && a < SR_WALK_N1; a++) {
        int32_t k = l1[a].item;
        if (k < 0 || (uint32_t)k >= it->n_items || it->count[k] <= 0) continue;
        size_t n2 = 0;
        const sr_score_nbr_t *l2 = it->nbrs(it->nbrs_opaque, k, &n2);
        for (size_t e = 0; l2 && e < n2 && e < SR_WALK_N2; e++)
            if (l2[e].item == x) w += l1[a].count / n0 / it->count[k] * l2[e].count;
    }
    return w;
}

void sr_score_features(const sr_score_items_t *it, const sr_score_conf_t *c,
                       const sr_score_user_t *u, const float *s, const int32_t *cand, size_t n,
                       float (*feat)[SR_BLEND_NFEAT])
{
    int dim = it->dim;
    int32_t last = last_item(it, u);
    float rep = repeat_ratio(it, u);
    float pause = pause_of(c, u);
    int32_t ctx[64];
    size_t nctx = cooc_on(it) ? context_items(it, c, u, ctx) : 0;
    int32_t sctx[SR_SCTX];
    float sw[SR_SCTX];
    size_t nsctx = nctx ? sr_score_session_ctx(it, c, u, sctx, sw) : 0;
    const sr_score_nbr_t *lists[64];
    size_t lens[64];
    for (size_t k = 0; k < nctx; k++) {
        lens[k] = 0;
        lists[k] = it->nbrs(it->nbrs_opaque, ctx[k], &lens[k]);
        if (!lists[k] || it->count[ctx[k]] <= 0) lens[k] = 0;
    }
    for (size_t j = 0; j < n; j++) {
        int32_t x = cand[j];
        float *f = feat[j];
        const float *q = it->q + (size_t)x * dim;
        f[SR_F_MF] = u->p ? dot8(q, u->p, dim) : 0.0f;
        f[SR_F_SESS] = dot8(q, s, dim);
        f[SR_F_BIAS] = it->bias[x];
        f[SR_F_POP] = fmaxf(it->logpop[x] + c->pop_offset, SR_POP_FLOOR);
        f[SR_F_REC] = log1pf(recency_of(c, u, x));
        f[SR_F_LAST] = x == last ? 1.0f : 0.0f;
        f[SR_F_SEEN] = (float)in_recent(u, x);
        f[SR_F_POS] = f[SR_F_R1] = f[SR_F_R23] = f[SR_F_R47] = 0;
        f[SR_F_REPEAT] = f[SR_F_SEEN] ? rep : 0.0f;
        f[SR_F_GAP] = f[SR_F_SEEN] ? pause : 0.0f;
        if (f[SR_F_SEEN]) {
            size_t r = 0;
            for (size_t k = u->n_recent; k-- > 0;) {
                int32_t y = u->recent[k].item;
                int newer = 0;
                for (size_t j = k + 1; j < u->n_recent && !newer; j++)
                    newer = u->recent[j].item == y;
                if (newer || y < 0 || (uint32_t)y >= it->n_items) continue;
                if (y == x) {
                    f[SR_F_POS] = 1.0f / (float)(1 + r);
                    int rf = sr_score_rank_feature(r);
                    if (rf >= 0) f[rf] = 1.0f;
                    break;
                }
                r++;
            }
        }
        float co = 0, cond = 0, lcond = 0, lcooc = 0;
        if (nctx && it->count[x] > 0) {
            for (size_t k = 0; k < nctx; k++) {
                for (size_t e = 0; e < lens[k]; e++) {
                    if (lists[k][e].item == x) {
                        co += ldexpf(1.0f, -(int)k) * lists[k][e].count /
                              sqrtf(it->count[ctx[k]] * it->count[x]);
                        cond += ldexpf(1.0f, -(int)k) * lists[k][e].count / it->count[ctx[k]];
                        if (k == 0) {
                            lcond = log1pf(lists[k][e].count / it->count[ctx[k]] / SR_LCOND_EPS);
                            lcooc = log1pf(lists[k][e].count /
                                           sqrtf(it->count[ctx[k]] * it->count[x]) / SR_LCOND_EPS);
                        }
                        break;
                    }
                }
            }
        }
        f[SR_F_COOC] = f[SR_F_SEEN] ? 0.0f : co;
        f[SR_F_COOC_SEEN] = f[SR_F_SEEN] ? co : 0.0f;
        f[SR_F_COND] = f[SR_F_SEEN] ? 0.0f : cond;
        f[SR_F_LCOND] = f[SR_F_SEEN] ? 0.0f : lcond;
        f[SR_F_LCOOC] = f[SR_F_SEEN] ? 0.0f : lcooc;
        f[SR_F_WALK2] = f[SR_F_SEEN] || !nctx ? 0.0f : walk2(it, ctx[0], x);
        float sc = 0;
        for (size_t k = 0; k < nsctx && !f[SR_F_SEEN] && it->count[x] > 0; k++) {
            size_t nn = 0;
            const sr_score_nbr_t *nb = it->nbrs(it->nbrs_opaque, sctx[k], &nn);
            float nj = it->count[sctx[k]];
            if (!nb || nj <= 0) continue;
            for (size_t e = 0; e < nn; e++)
                if (nb[e].item == x) {
                    sc += sw[k] * nb[e].count / nj;
                    break;
                }
        }
        f[SR_F_SCOND] = sc;
    }
}

void sr_score_candidates(const sr_score_items_t *it, const sr_score_conf_t *c,
                         const sr_score_user_t *u, const int32_t *cand, size_t n, float *out,
                         float *scratch)
{
    session(it, u, c->recent_half_life_s, scratch);
    for (size_t j = 0; j < n; j++) {
        float f[1][SR_BLEND_NFEAT];
        if (cand[j] < 0 || (uint32_t)cand[j] >= it->n_items) {
            out[j] = -INFINITY;
            continue;
        }
        sr_score_features(it, c, u, scratch, &cand[j], 1, f);
        float sc = 0;
        for (int k = 0; k < SR_BLEND_NFEAT; k++)
            sc += c->blend[k] * f[0][k];
        out[j] = sc;
    }
}

void sr_score_similar(const sr_score_items_t *it, int32_t item, float *out)
{
    int dim = it->dim;
    if (item < 0 || (uint32_t)item >= it->n_items) return;
    const float *qi = it->q + (size_t)item * dim;
    float ni = sqrtf(dot8(qi, qi, dim)) + 1e-12f;
    for (uint32_t j = 0; j < it->n_items; j++) {
        const float *qj = it->q + (size_t)j * dim;
        out[j] = dot8(qi, qj, dim) / (ni * (sqrtf(dot8(qj, qj, dim)) + 1e-12f));
    }
    if (cooc_on(it) && it->count[item] > 0) {
        size_t nn = 0;
        const sr_score_nbr_t *nb = it->nbrs(it->nbrs_opaque, item, &nn);
        for (size_t e = 0; nb && e < nn; e++) {
            int32_t x = nb[e].item;
            if (x < 0 || (uint32_t)x >= it->n_items || it->count[x] <= 0) continue;
            out[x] += nb[e].count / sqrtf(it->count[item] * it->count[x]);
        }
    }
    out[item] = -INFINITY;
}

/* Min-heap on "worse": lower score, or equal score and higher index. */
static inline int worse(const float *sc, uint32_t a, uint32_t b)
{
    return sc[a] < sc[b] || (sc[a] == sc[b] && a > b);
}

static void sift_down(const float *sc, uint32_t *h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && worse(sc, h[l], h[m])) m = l;
        if (r < n && worse(sc, h[r], h[m])) m = r;
        if (m == i) return;
        uint32_t t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

size_t sr_topk(const float *scores, uint32_t n, size_t k, const uint8_t *skip, uint32_t *idx_out,
               float *score_out)
{
    if (k == 0 || !scores || !idx_out) return 0;
    size_t m = 0;
    for (uint32_t i = 0; i < n; i++) {
        if ((skip && skip[i]) || isnan(scores[i])) continue;
        if (m < k) {
            /* sift up */
            size_t j = m++;
            idx_out[j] = i;
            while (j > 0) {
                size_t p = (j - 1) / 2;
                if (!worse(scores, idx_out[j], idx_out[p])) break;
                uint32_t t = idx_out[j];
                idx_out[j] = idx_out[p];
                idx_out[p] = t;
                j = p;
            }
        } else if (worse(scores, idx_out[0], i)) {
            idx_out[0] = i;
            sift_down(scores, idx_out, m, 0);
        }
    }
    /* Heap-sort: popping the worst to the end leaves best first. */
    for (size_t end = m; end > 1; end--) {
        uint32_t t = idx_out[0];
        idx_out[0] = idx_out[end - 1];
        idx_out[end - 1] = t;
        sift_down(scores, idx_out, end - 1, 0);
    }
    if (score_out)
        for (size_t j = 0; j < m; j++)
            score_out[j] = scores[idx_out[j]];
    return m;
}
