/* The online model: one SGD step per event (DESIGN.md §5).
 *
 * An event first updates the blend (it is scored before it is learned, as
 * the prequential evaluator does), then the factors, then the real-time
 * signals (popularity, co-occurrence, the user's recent items, the sampler
 * ring).  Everything random comes from a generator seeded by the event's
 * id hash and the model seed, so replaying an event after a crash draws the
 * same negatives; nothing depends on wall time or on allocation addresses.
 *
 * Negative sampler: with probability sampler_uniform an item uniformly from
 * all items, otherwise a slot of a ring holding the last SR_SAMPLER_RING
 * positive items, i.e. proportional to recent popularity.  Popularity
 * negatives are the hard ones on shop streams (a popular item the user did
 * not pick says more than a random long-tail item), the uniform share keeps
 * the long tail from never being pushed down.  The ring costs O(1) per draw
 * and per update, unlike a Fenwick tree over decayed counts.
 *
 * A uniform negative updates only the user (its gradient pushes the user
 * away from the item), not the item itself, unless uniform_neg_items is 1:
 * the item update of a random long-tail item is a tiny push that
 * accuracy does not miss (HR@10 within +-0.6 points on the simulated
 * logs, docs/BENCHMARKS.md), but it made every flush of a trainer write a
 * fresh random slice of the catalogue (4 negatives x 2,500 events per
 * 50 ms interval: ~5,900 item keys per flush at 10,000 items, ~2,000
 * without; with a larger catalogue nearly every uniform draw is a new key).
 * Popularity negatives are recent positives, already in the flush. */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_impl.h"
#include "sr_dot.h"
#include "sr_err.h"

/* ---------------------------------------------------------------- params */

void sr_model_params_init(sr_model_params_t *p)
{
    memset(p, 0, sizeof *p);
    p->dim = 32;
    p->negatives = 4;
    p->lr = 0.05f;
    p->l2 = 1e-4f;
    p->clip = 1.0f;
    p->init_std = 0.1f;
    p->seed = 42;
    p->weight[SR_EV_VIEW] = 1.0f;
    p->weight[SR_EV_CLICK] = 2.0f;
    p->weight[SR_EV_CART] = 4.0f;
    p->weight[SR_EV_PURCHASE] = 8.0f;
    p->weight[SR_EV_IMPRESSION] = 0.1f;
    p->weight[SR_EV_RATING] = 1.0f;
    p->recent_max = 20;
    p->recent_half_life_s = 1800.0f;
    p->pop_half_life_s = 21600.0f;
    p->cooc_window = 2;
    p->cooc_max = 256;
    p->blend_lr = 0.05f;
    p->sampler_uniform = 0.7f;
    p->blend_sample = 0.1f;
    p->cooc_backward = 0.5f;
    p->pop_impression = 0.01f;
    p->uniform_neg_items = 0;
}

typedef enum { PT_INT, PT_FLOAT, PT_U64 } ptype_t;

static const struct {
    const char *name;
    ptype_t type;
    size_t off;
    double lo, hi;
} param_table[] = {
#define PF(n, f, lo, hi)                                                                           \
    {                                                                                              \
        n, PT_FLOAT, offsetof(sr_model_params_t, f), lo, hi                                        \
    }
#define PI(n, f, lo, hi)                                                                           \
    {                                                                                              \
        n, PT_INT, offsetof(sr_model_params_t, f), lo, hi                                          \
    }
    PI("dim", dim, 1, 1024),
    PI("negatives", negatives, 0, 64),
    PF("lr", lr, 0, 10),
    PF("l2", l2, 0, 10),
    PF("clip", clip, 1e-6, 1e6),
    PF("init_std", init_std, 0, 10),
    {"seed", PT_U64, offsetof(sr_model_params_t, seed), 0, 0},
    PF("weight.view", weight[SR_EV_VIEW], 0, 1e3),
    PF("weight.click", weight[SR_EV_CLICK], 0, 1e3),
    PF("weight.cart", weight[SR_EV_CART], 0, 1e3),
    PF("weight.purchase", weight[SR_EV_PURCHASE], 0, 1e3),
    PF("weight.impression", weight[SR_EV_IMPRESSION], 0, 1e3),
    PF("weight.rating", weight[SR_EV_RATING], 0, 1e3),
    PI("recent_max", recent_max, 1, SR_RECENT_MAX),
    PF("recent_half_life_s", recent_half_life_s, 1e-3, 1e9),
    PF("pop_half_life_s", pop_half_life_s, 1e-3, 1e9),
    PI("cooc_window", cooc_window, 0, 64),
    PI("cooc_max", cooc_max, 0, SR_COOC_MAX),
    PF("blend_lr", blend_lr, 0, 10),
    PF("sampler_uniform", sampler_uniform, 0, 1),
    PF("blend_sample", blend_sample, 0, 1),
    PF("cooc_backward", cooc_backward, 0, 1),
    PF("pop_impression", pop_impression, 0, 1),
    PI("uniform_neg_items", uniform_neg_items, 0, 1),
#undef PF
#undef PI
};
#define N_PARAMS (sizeof param_table / sizeof param_table[0])

int sr_model_params_set(sr_model_params_t *p, const char *key, const char *value)
{
    if (!p || !key || !value) return SR_ERR_INVAL;
    for (size_t k = 0; k < N_PARAMS; k++) {
        if (strcmp(param_table[k].name, key) != 0) continue;
        char *end = NULL;
        void *dst = (char *)p + param_table[k].off;
        if (param_table[k].type == PT_U64) {
            if (*value == '-' || *value == '\0') return SR_ERR_PARSE;
            unsigned long long v = strtoull(value, &end, 0);
            if (*end) return SR_ERR_PARSE;
            *(uint64_t *)dst = v;
            return 0;
        }
        double v = strtod(value, &end);
        if (end == value || *end || isnan(v)) return SR_ERR_PARSE;
        if (param_table[k].type == PT_INT && v != floor(v)) return SR_ERR_PARSE;
        if (v < param_table[k].lo || v > param_table[k].hi) return SR_ERR_RANGE;
        if (param_table[k].type == PT_INT)
            *(int *)dst = (int)v;
        else
            *(float *)dst = (float)v;
        return 0;
    }
    return SR_ERR_NOTFOUND;
}

int sr_model_params_check_(const sr_model_params_t *p, char *errstr, size_t errstr_size)
{
    for (size_t k = 0; k < N_PARAMS; k++) {
        const void *src = (const char *)p + param_table[k].off;
        double v;
        if (param_table[k].type == PT_U64) continue;
        v = param_table[k].type == PT_INT ? *(const int *)src : *(const float *)src;
        if (!(v >= param_table[k].lo && v <= param_table[k].hi)) {
            if (errstr && errstr_size)
                snprintf(errstr, errstr_size, "model.%s = %g out of range [%g, %g]",
                         param_table[k].name, v, param_table[k].lo, param_table[k].hi);
            return SR_ERR_RANGE;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- rng */

static inline uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [0, n) without modulo bias worth caring about (Lemire). */
static inline uint32_t below(uint64_t *s, uint32_t n)
{
    return (uint32_t)(((splitmix(s) >> 32) * (uint64_t)n) >> 32);
}

static inline float unit(uint64_t *s)
{
    return (float)(splitmix(s) >> 40) * (1.0f / 16777216.0f);
}

/* ---------------------------------------------------------------- growth */

#define GROW(ptr, n)                                                                               \
    do {                                                                                           \
        void *np_ = realloc((ptr), (size_t)(n) * sizeof *(ptr));                                   \
        if (!np_) return SR_ERR_NOMEM;                                                             \
        (ptr) = np_;                                                                               \
    } while (0)

int sr_model_grow_users_(sr_model_t *m, uint32_t need)
{
    if (need <= m->cap_users) return 0;
    uint32_t nc = m->cap_users ? m->cap_users : 64;
    while (nc < need)
        nc *= 2;
    size_t d = (size_t)m->dim, r = (size_t)m->p.recent_max;
    GROW(m->P, nc * d);
    GROW(m->p_acc, nc);
    GROW(m->u_events, nc);
    GROW(m->u_last, nc);
    GROW(m->rec, nc * r);
    GROW(m->rec_n, nc);
    GROW(m->u_dirty, nc);
    m->cap_users = nc;
    return 0;
}

int sr_model_grow_items_(sr_model_t *m, uint32_t need)
{
    if (need <= m->cap_items) return 0;
    uint32_t nc = m->cap_items ? m->cap_items : 64;
    while (nc < need)
        nc *= 2;
    size_t d = (size_t)m->dim;
    GROW(m->Q, nc * d);
    GROW(m->q_acc, nc);
    GROW(m->b, nc);
    GROW(m->b_acc, nc);
    GROW(m->pop, nc);
    GROW(m->logv, nc);
    GROW(m->cnt, nc);
    GROW(m->nbr_off, nc);
    GROW(m->nbr_n, nc);
    GROW(m->nbr_cap, nc);
    GROW(m->i_dirty, nc);
    GROW(m->xgen, nc);
    GROW(m->mark, nc);
    GROW(m->markpos, nc);
    m->cap_items = nc;
    return 0;
}

static void init_user(sr_model_t *m, uint32_t u)
{
    memset(m->P + (size_t)u * m->dim, 0, (size_t)m->dim * sizeof(float));
    m->p_acc[u] = 0;
    m->u_events[u] = 0;
    m->u_last[u] = 0;
    m->rec_n[u] = 0;
    m->u_dirty[u] = 0;
}

/* An item's initial vector depends only on its id and the seed, not on
 * when it arrived, so trainers that meet items in different orders agree. */
void sr_model_init_item_(sr_model_t *m, uint32_t i)
{
    size_t len;
    const char *id = sr_idtable_id(m->iid, i, &len);
    uint64_t s = sr_hash64(id, len, m->p.seed ^ 0x6974656d766563ull);
    float a = m->p.init_std * 1.7320508f; /* uniform(-a, a) has std init_std */
    float *q = m->Q + (size_t)i * m->dim;
    for (int d = 0; d < m->dim; d++)
        q[d] = (2.0f * unit(&s) - 1.0f) * a;
    m->q_acc[i] = 0;
    m->b[i] = 0;
    m->b_acc[i] = 0;
    m->pop[i] = 0;
    m->logv[i] = -INFINITY;
    m->cnt[i] = 0;
    m->nbr_n[i] = 0;
    m->nbr_cap[i] = 0;
    m->nbr_off[i] = 0;
    m->i_dirty[i] = 0;
    m->xgen[i] = 0;
    m->mark[i] = 0;
    m->markpos[i] = 0;
}

static int32_t user_intern_h(sr_model_t *m, const char *id, size_t len, uint64_t h)
{
    int created = 0;
    if (m->n_users == m->cap_users && sr_model_grow_users_(m, m->n_users + 1)) return SR_ERR_NOMEM;
    int32_t u = sr_idtable_intern_hashed(m->uid, id, len, h, &created);
    if (u >= 0 && created) {
        m->n_users = (uint32_t)u + 1;
        init_user(m, (uint32_t)u);
    }
    return u;
}

static int32_t item_intern_h(sr_model_t *m, const char *id, size_t len, uint64_t h)
{
    int created = 0;
    if (m->n_items == m->cap_items && sr_model_grow_items_(m, m->n_items + 1)) return SR_ERR_NOMEM;
    int32_t i = sr_idtable_intern_hashed(m->iid, id, len, h, &created);
    if (i >= 0 && created) {
        m->n_items = (uint32_t)i + 1;
        sr_model_init_item_(m, (uint32_t)i);
    }
    return i;
}

int32_t sr_model_user_intern(sr_model_t *m, const char *id, size_t len)
{
    if (!id || len == 0 || len > SR_ID_MAX) return SR_ERR_RANGE;
    return user_intern_h(m, id, len, sr_idtable_hash_id(m->uid, id, len));
}

int32_t sr_model_item_intern(sr_model_t *m, const char *id, size_t len)
{
    if (!id || len == 0 || len > SR_ID_MAX) return SR_ERR_RANGE;
    return item_intern_h(m, id, len, sr_idtable_hash_id(m->iid, id, len));
}

static int push_dirty(uint32_t **arr, uint32_t *n, uint32_t *cap, uint32_t x)
{
    if (*n == *cap) {
        uint32_t nc = *cap ? *cap * 2 : 256;
        uint32_t *a = realloc(*arr, (size_t)nc * sizeof *a);
        if (!a) return SR_ERR_NOMEM;
        *arr = a;
        *cap = nc;
    }
    (*arr)[(*n)++] = x;
    return 0;
}

/* A failed push (ENOMEM) leaves the flag clear so a later touch retries. */
void sr_model_mark_user_(sr_model_t *m, uint32_t u)
{
    if (!m->u_dirty[u] && push_dirty(&m->dirty_u, &m->n_dirty_u, &m->cap_dirty_u, u) == 0)
        m->u_dirty[u] = 1;
}

void sr_model_mark_item_(sr_model_t *m, uint32_t i)
{
    if (!m->i_dirty[i] && push_dirty(&m->dirty_i, &m->n_dirty_i, &m->cap_dirty_i, i) == 0)
        m->i_dirty[i] = 1;
}

/* ---------------------------------------------------------------- lifecycle */

sr_model_t *sr_model_new(const sr_model_params_t *p, char *errstr, size_t errstr_size)
{
    if (!p) {
        if (errstr && errstr_size) snprintf(errstr, errstr_size, "no params");
        return NULL;
    }
    if (sr_model_params_check_(p, errstr, errstr_size)) return NULL;
    sr_model_t *m = calloc(1, sizeof *m);
    if (!m) goto nomem;
    m->p = *p;
    m->dim = p->dim;
    for (int k = 0; k < SR_NBR_CLASSES; k++)
        m->pool_free[k] = SR_NBR_NONE;
    m->uid = sr_idtable_new(p->seed ^ 0x75736572ull);
    m->iid = sr_idtable_new(p->seed ^ 0x6974656dull);
    size_t d = (size_t)m->dim;
    m->s = calloc(d, sizeof(float));
    m->uvec = calloc(d, sizeof(float));
    m->gp = calloc(d, sizeof(float));
    m->tmp = calloc(d, sizeof(float));
    m->cap_cand =
        (uint32_t)(1 + p->negatives + p->recent_max +
                   p->cooc_window * (p->cooc_max < SR_BLEND_NBRS ? p->cooc_max : SR_BLEND_NBRS) +
                   SR_SCTX * (p->cooc_max < SR_SCTX_NBRS ? p->cooc_max : SR_SCTX_NBRS));
    m->cand = calloc(m->cap_cand, sizeof *m->cand);
    m->feat = calloc(m->cap_cand, sizeof *m->feat);
    m->zc = calloc(m->cap_cand, sizeof *m->zc);
    m->corr = calloc(m->cap_cand, sizeof *m->corr);
    if (!m->uid || !m->iid || !m->s || !m->uvec || !m->gp || !m->tmp || !m->cand || !m->feat ||
        !m->zc || !m->corr)
        goto nomem;
    sr_score_blend_prior(m->blend);
    return m;
nomem:
    if (errstr && errstr_size) snprintf(errstr, errstr_size, "out of memory");
    sr_model_destroy(m);
    return NULL;
}

void sr_model_destroy(sr_model_t *m)
{
    if (!m) return;
    sr_idtable_destroy(m->uid);
    sr_idtable_destroy(m->iid);
    free(m->P);
    free(m->p_acc);
    free(m->u_events);
    free(m->u_last);
    free(m->rec);
    free(m->rec_n);
    free(m->u_dirty);
    free(m->Q);
    free(m->q_acc);
    free(m->b);
    free(m->b_acc);
    free(m->pop);
    free(m->logv);
    free(m->cnt);
    free(m->pool);
    free(m->pool_fp);
    free(m->nbr_off);
    free(m->nbr_n);
    free(m->nbr_cap);
    free(m->i_dirty);
    free(m->xgen);
    free(m->mark);
    free(m->markpos);
    free(m->dirty_u);
    free(m->dirty_i);
    free(m->s);
    free(m->uvec);
    free(m->gp);
    free(m->tmp);
    free(m->cand);
    free(m->feat);
    free(m->zc);
    free(m->corr);
    free(m);
}

const sr_model_params_t *sr_model_params(const sr_model_t *m)
{
    return &m->p;
}

/* ---------------------------------------------------------------- lookups */

int32_t sr_model_find_user(const sr_model_t *m, const char *id, size_t len)
{
    return sr_idtable_find(m->uid, id, len);
}

int32_t sr_model_find_item(const sr_model_t *m, const char *id, size_t len)
{
    return sr_idtable_find(m->iid, id, len);
}

uint32_t sr_model_n_users(const sr_model_t *m)
{
    return m->n_users;
}

uint32_t sr_model_n_items(const sr_model_t *m)
{
    return m->n_items;
}

const char *sr_model_item_id(const sr_model_t *m, uint32_t item, size_t *len)
{
    return sr_idtable_id(m->iid, item, len);
}

const char *sr_model_user_id(const sr_model_t *m, uint32_t user, size_t *len)
{
    return sr_idtable_id(m->uid, user, len);
}

/* ---------------------------------------------------------------- scoring */

const sr_score_nbr_t *sr_model_nbrs_(const void *opaque, int32_t item, size_t *n)
{
    const sr_model_t *m = opaque;
    if (item < 0 || (uint32_t)item >= m->n_items) {
        *n = 0;
        return NULL;
    }
    *n = m->nbr_n[item];
    return sr_model_nbr_(m, (uint32_t)item);
}

void sr_model_score_items(const sr_model_t *m, sr_score_items_t *it)
{
    it->dim = m->dim;
    it->n_items = m->n_items;
    it->q = m->Q;
    it->bias = m->b;
    it->logpop = m->logv;
    it->count = m->cnt;
    it->nbrs = m->p.cooc_max > 0 ? sr_model_nbrs_ : NULL;
    it->nbrs_opaque = m;
}

static float pop_offset(const sr_model_t *m, int64_t now_ms)
{
    /* logv is log of popularity scaled to pop_ref_ms; decay it to now. */
    double e = (double)(now_ms - m->pop_ref_ms) / (1000.0 * m->p.pop_half_life_s);
    return (float)(-e * 0.69314718055994531);
}

void sr_model_score_conf(const sr_model_t *m, int64_t now_ms, sr_score_conf_t *c)
{
    memcpy(c->blend, m->blend, sizeof c->blend);
    memcpy(c->weight, m->p.weight, sizeof c->weight);
    c->recent_half_life_s = m->p.recent_half_life_s;
    c->cooc_window = m->p.cooc_window;
    c->pop_offset = pop_offset(m, now_ms);
}

static void user_view(const sr_model_t *m, int32_t u, int64_t now_ms, sr_score_user_t *uv)
{
    memset(uv, 0, sizeof *uv);
    uv->now_ms = now_ms;
    if (u < 0 || (uint32_t)u >= m->n_users) return;
    uv->p = m->P + (size_t)u * m->dim;
    uv->recent = m->rec + (size_t)u * (size_t)m->p.recent_max;
    uv->n_recent = m->rec_n[u];
}

void sr_model_score_all(const sr_model_t *m, int32_t user, int64_t now_ms, float *out)
{
    sr_score_items_t it;
    sr_score_conf_t c;
    sr_score_user_t uv;
    sr_model_score_items(m, &it);
    sr_model_score_conf(m, now_ms, &c);
    user_view(m, user, now_ms, &uv);
    /* Scratch on the stack (dim <= 1024), so concurrent readers are safe. */
    float scratch[2 * 1024];
    sr_score_all(&it, &c, &uv, out, scratch);
}

/* ---------------------------------------------------------------- learning */

/* Prefetches of the rows an event is about to touch: each is a likely
 * cache miss (a random row of a large array), and issuing them early lets
 * the misses overlap instead of stalling one after another.  Hints only:
 * they change no value. */
static inline void prefetch_user(const sr_model_t *m, uint32_t u)
{
    sr_model_prefetch_lines_(m->P + (size_t)u * m->dim, (size_t)m->dim * sizeof(float), 1);
    __builtin_prefetch(m->p_acc + u, 1, 3);
    __builtin_prefetch(m->rec_n + u, 1, 3);
    const size_t rmax = (size_t)m->p.recent_max;
    sr_model_prefetch_lines_(m->rec + (size_t)u * rmax, rmax * sizeof *m->rec, 1);
}

static inline void prefetch_item(const sr_model_t *m, uint32_t x)
{
    sr_model_prefetch_lines_(m->Q + (size_t)x * m->dim, (size_t)m->dim * sizeof(float), 1);
    __builtin_prefetch(m->b + x, 1, 3);
    __builtin_prefetch(m->q_acc + x, 1, 3);
    __builtin_prefetch(m->b_acc + x, 1, 3);
    __builtin_prefetch(m->i_dirty + x, 1, 3);
}

static inline float clampf(float x, float c)
{
    return x > c ? c : (x < -c ? -c : x);
}

/* Logistic loss and gradient from one exp: e = exp(-|z|) gives both
 * sigmoid(z) and -log sigmoid(+-z) without overflow. */
static inline void logistic(float z, float y, float *loss, float *sig)
{
    float e = expf(-fabsf(z));
    float inv = 1.0f / (1.0f + e);
    *sig = z >= 0 ? inv : e * inv;
    /* -log sigmoid(s) = max(-s, 0) + log1p(exp(-|s|)), s = z or -z */
    if (!loss) return; /* the caller does not report it: skip the log */
    float s = y > 0 ? z : -z;
    *loss = fmaxf(-s, 0.0f) + logf(1.0f + e); /* e in (0, 1]: log1p's care not needed */
}

/* One logistic step on (user vector uvec, item x) towards label y with
 * weight w; accumulates the user gradient into gp and, when item_too,
 * updates the item (and marks it dirty); returns the loss (0 unless
 * want_loss: the log is skipped when nobody reads it). */
static inline __attribute__((always_inline)) float sgd_item_d(sr_model_t *m, uint32_t x, float y,
                                                              float w, int want_loss, int item_too,
                                                              const int dim)
{
    float *q = m->Q + (size_t)x * dim;
    float z = m->b[x] + sr_dot8_(q, m->uvec, dim);
    float l = 0, sg;
    logistic(z, y, want_loss ? &l : NULL, &sg);
    float loss = w * l;
    float g = w * (sg - y);
    if (!item_too) {
        for (int d = 0; d < dim; d++)
            m->gp[d] += g * q[d];
        return loss;
    }
    const float clip = m->p.clip, l2 = m->p.l2;
    float ss = 0;
    for (int d = 0; d < dim; d++) {
        m->gp[d] += g * q[d];
        float gq = clampf(g * m->uvec[d] + l2 * q[d], clip);
        m->tmp[d] = gq;
        ss += gq * gq;
    }
    m->q_acc[x] += ss / (float)dim;
    float eta = m->p.lr / sqrtf(m->q_acc[x] + SR_ADAGRAD_INIT);
    for (int d = 0; d < dim; d++)
        q[d] -= eta * m->tmp[d];
    float gb = clampf(g + l2 * m->b[x], clip);
    m->b_acc[x] += gb * gb;
    m->b[x] -= m->p.lr / sqrtf(m->b_acc[x] + SR_ADAGRAD_INIT) * gb;
    sr_model_mark_item_(m, x);
    return loss;
}

/* The common dims get their own copy with the loop bounds known (no
 * runtime trip-count and alias versioning).  Checked to give the same bits
 * as the generic copy: the snapshots of a learned stream are identical. */
static float sgd_item(sr_model_t *m, uint32_t x, float y, float w, int want_loss, int item_too)
{
    if (m->dim == 32) return sgd_item_d(m, x, y, w, want_loss, item_too, 32);
    if (m->dim == 64) return sgd_item_d(m, x, y, w, want_loss, item_too, 64);
    return sgd_item_d(m, x, y, w, want_loss, item_too, m->dim);
}

static void sgd_user(sr_model_t *m, uint32_t u)
{
    int dim = m->dim;
    float *p = m->P + (size_t)u * dim;
    float ss = 0;
    for (int d = 0; d < dim; d++) {
        float g = clampf(m->gp[d] + m->p.l2 * p[d], m->p.clip);
        m->tmp[d] = g;
        ss += g * g;
    }
    m->p_acc[u] += ss / (float)dim;
    float eta = m->p.lr / sqrtf(m->p_acc[u] + SR_ADAGRAD_INIT);
    for (int d = 0; d < dim; d++)
        p[d] -= eta * m->tmp[d];
}

static int add_cand(sr_model_t *m, uint32_t *nc, int32_t x, float corr)
{
    if (m->mark[x] == m->stamp) return 1;
    if (*nc >= m->cap_cand) return 0;
    /* its row, bias and popularity are read by the dense pass at the end:
     * start loading them while the sparse features are summed */
    sr_model_prefetch_lines_(m->Q + (size_t)x * m->dim, (size_t)m->dim * sizeof(float), 0);
    __builtin_prefetch(m->b + x, 0, 3);
    __builtin_prefetch(m->logv + x, 0, 3);
    m->mark[x] = m->stamp;
    m->markpos[x] = (int32_t)*nc;
    m->cand[*nc] = x;
    memset(m->feat[*nc], 0, sizeof m->feat[0]);
    m->corr[*nc] = corr;
    (*nc)++;
    return 1;
}

/* One softmax step of the blend weights: the true item against the items
 * the sparse signals promote (the user's recent items and their
 * co-occurrence neighbours: the true item's real competitors for the top
 * slots) and the sampled negatives, each of which stands for
 * (n_items / negatives) items (its logit gets log of that, as in sampled
 * softmax), so the loss approximates a softmax over the whole catalogue.
 * Features are those of sr_score_features, computed in one pass over the
 * recent and neighbour lists instead of once per candidate. */
static void blend_learn(sr_model_t *m, const sr_score_user_t *uv, int32_t item, const int32_t *neg,
                        int nneg)
{
    if (++m->stamp == 0) {
        memset(m->mark, 0, (size_t)m->n_items * sizeof *m->mark);
        m->stamp = 1;
    }
    uint32_t nc = 0;
    add_cand(m, &nc, item, 0.0f);
    sr_score_conf_t c;
    sr_model_score_conf(m, uv->now_ms, &c);
    /* recency */
    int32_t last = -1;
    for (size_t k = 0; k < uv->n_recent; k++) {
        const sr_score_recent_t *e = &uv->recent[k];
        if (e->item < 0 || !add_cand(m, &nc, e->item, 0.0f)) continue;
        int64_t age = uv->now_ms - e->ts_ms;
        float dc =
            age <= 0 ? 1.0f : sr_exp2_neg(-(float)((double)age / (1000.0 * c.recent_half_life_s)));
        float *f = m->feat[m->markpos[e->item]];
        f[SR_F_REC] += c.weight[e->type] * dc;
        f[SR_F_SEEN] = 1.0f;
        last = e->item;
    }
    /* distinct rank, newest first; POS doubles as the "ranked" flag */
    {
        size_t r = 0, n = 0;
        for (size_t k = uv->n_recent; k-- > 0;) {
            int32_t x = uv->recent[k].item;
            if (x < 0 || m->mark[x] != m->stamp) continue;
            n++;
            float *f = m->feat[m->markpos[x]];
            if (f[SR_F_POS] == 0.0f) {
                int rf = sr_score_rank_feature(r);
                if (rf >= 0) f[rf] = 1.0f;
                f[SR_F_POS] = 1.0f / (float)(1 + r++);
            }
        }
        float rep = n ? 1.0f - (float)r / (float)n : 0.0f;
        float pause = 0.0f;
        if (uv->n_recent) {
            int64_t age = uv->now_ms - uv->recent[uv->n_recent - 1].ts_ms;
            pause =
                age <= 0
                    ? 0.0f
                    : 1.0f - sr_exp2_neg(-(float)((double)age / (1000.0 * c.recent_half_life_s)));
        }
        for (size_t k = 0; k < uv->n_recent; k++) {
            int32_t x = uv->recent[k].item;
            if (x >= 0 && m->mark[x] == m->stamp) {
                m->feat[m->markpos[x]][SR_F_REPEAT] = rep;
                m->feat[m->markpos[x]][SR_F_GAP] = pause;
            }
        }
    }
    float corr = logf(fmaxf(1.0f, (float)m->n_items / (float)(nneg > 0 ? nneg : 1)));
    for (int k = 0; k < nneg; k++)
        add_cand(m, &nc, neg[k], corr);
    /* co-occurrence, context items newest first; only the strongest
     * neighbours become candidates, but every candidate's feature sums
     * its full lists, as the scoring kernel does */
    if (m->p.cooc_max > 0) {
        int32_t ctx[64];
        size_t nctx = 0, w = (size_t)m->p.cooc_window;
        for (size_t k = uv->n_recent; k-- > 0 && nctx < w;) {
            int32_t x = uv->recent[k].item;
            int dup = 0;
            for (size_t j = 0; j < nctx; j++)
                dup |= ctx[j] == x;
            if (!dup) ctx[nctx++] = x;
        }
        /* the session mixture's context (SR_F_SCOND): its first items are
         * the co-occurrence context, whose lists are read once for both */
        int32_t sctx[SR_SCTX];
        float sw[SR_SCTX];
        sr_score_items_t its;
        sr_model_score_items(m, &its);
        /* (none without a co-occurrence context, as in sr_score_all) */
        size_t ns = nctx ? sr_score_session_ctx(&its, &c, uv, sctx, sw) : 0, shared = 0;
        while (shared < ns && shared < nctx && sctx[shared] == ctx[shared])
            shared++;
        /* candidates first, so every feature sums whole lists */
        for (size_t k = 0; k < nctx; k++) {
            const sr_score_nbr_t *nb = sr_model_nbr_(m, (uint32_t)ctx[k]);
            for (size_t e = 0; e < m->nbr_n[ctx[k]] && e < SR_BLEND_NBRS; e++)
                if (m->cnt[nb[e].item] > 0) add_cand(m, &nc, nb[e].item, 0.0f);
        }
        for (size_t k = 0; k < ns; k++) {
            const sr_score_nbr_t *nb = sr_model_nbr_(m, (uint32_t)sctx[k]);
            for (size_t e = 0; e < m->nbr_n[sctx[k]] && e < SR_SCTX_NBRS; e++)
                if (m->cnt[nb[e].item] > 0) add_cand(m, &nc, nb[e].item, 0.0f);
        }
        for (size_t k = 0; k < nctx; k++) {
            float nj = m->cnt[ctx[k]];
            if (nj <= 0) continue;
            const sr_score_nbr_t *nb = sr_model_nbr_(m, (uint32_t)ctx[k]);
            float wk = ldexpf(1.0f, -(int)k), a = k < shared ? sw[k] / nj : 0.0f;
            size_t nn = m->nbr_n[ctx[k]];
            for (size_t e = 0; e < nn; e++) {
                int32_t x = nb[e].item;
                if (m->mark[x] != m->stamp || m->cnt[x] <= 0) continue;
                /* a sampled negative that is also a neighbour stands for
                 * itself, not for the rest of the catalogue */
                m->corr[m->markpos[x]] = 0.0f;
                float *f = m->feat[m->markpos[x]];
                if (f[SR_F_SEEN] == 0.0f) {
                    f[SR_F_COOC] += wk * nb[e].count / sqrtf(nj * m->cnt[x]);
                    f[SR_F_COND] += wk * nb[e].count / nj;
                    f[SR_F_SCOND] += a * nb[e].count;
                    if (k == 0) {
                        f[SR_F_LCOND] = log1pf(nb[e].count / nj / SR_LCOND_EPS);
                        f[SR_F_LCOOC] = log1pf(nb[e].count / sqrtf(nj * m->cnt[x]) / SR_LCOND_EPS);
                    }
                } else {
                    f[SR_F_COOC_SEEN] += wk * nb[e].count / sqrtf(nj * m->cnt[x]);
                }
            }
        }
        for (size_t k = shared; k < ns; k++) {
            float nj = m->cnt[sctx[k]];
            if (nj <= 0) continue;
            const sr_score_nbr_t *nb = sr_model_nbr_(m, (uint32_t)sctx[k]);
            float a = sw[k] / nj;
            for (size_t e = 0; e < m->nbr_n[sctx[k]]; e++) {
                int32_t x = nb[e].item;
                if (m->mark[x] != m->stamp || m->cnt[x] <= 0) continue;
                m->corr[m->markpos[x]] = 0.0f;
                float *f = m->feat[m->markpos[x]];
                if (f[SR_F_SEEN] == 0.0f) f[SR_F_SCOND] += a * nb[e].count;
            }
        }
        /* the two-step walk from the last item, for the candidates */
        if (nctx && m->cnt[ctx[0]] > 0) {
            const sr_score_nbr_t *l1 = sr_model_nbr_(m, (uint32_t)ctx[0]);
            float n0 = m->cnt[ctx[0]];
            for (size_t a = 0; a < m->nbr_n[ctx[0]] && a < SR_WALK_N1; a++) {
                int32_t k = l1[a].item;
                if (m->cnt[k] <= 0) continue;
                float p1 = l1[a].count / n0 / m->cnt[k];
                const sr_score_nbr_t *l2 = sr_model_nbr_(m, (uint32_t)k);
                for (size_t e = 0; e < m->nbr_n[k] && e < SR_WALK_N2; e++) {
                    int32_t x = l2[e].item;
                    if (m->mark[x] != m->stamp) continue;
                    float *f = m->feat[m->markpos[x]];
                    if (f[SR_F_SEEN] == 0.0f) f[SR_F_WALK2] += p1 * l2[e].count;
                }
            }
        }
    }
    /* dense features and scores */
    int dim = m->dim;
    float zmax = -INFINITY;
    for (uint32_t j = 0; j < nc; j++) {
        int32_t x = m->cand[j];
        float *f = m->feat[j];
        const float *q = m->Q + (size_t)x * dim;
        f[SR_F_MF] = uv->p ? sr_dot8_(q, uv->p, dim) : 0.0f;
        f[SR_F_SESS] = sr_dot8_(q, m->s, dim);
        f[SR_F_BIAS] = m->b[x];
        f[SR_F_POP] = fmaxf(m->logv[x] + c.pop_offset, SR_POP_FLOOR);
        f[SR_F_REC] = f[SR_F_REC] > 0.0f ? log1pf(f[SR_F_REC]) : 0.0f;
        f[SR_F_LAST] = x == last ? 1.0f : 0.0f;
    }
    /* The logits in a loop of their own: each is a chain of dependent adds,
     * and short iterations let the CPU run several candidates' chains at
     * once (same sums, same order). */
    float bw[SR_BLEND_NFEAT];
    memcpy(bw, m->blend, sizeof bw);
    for (uint32_t j = 0; j < nc; j++) {
        const float *f = m->feat[j];
        float z = m->corr[j];
        for (int k = 0; k < SR_BLEND_NFEAT; k++)
            z += bw[k] * f[k];
        m->zc[j] = z;
        if (z > zmax) zmax = z;
    }
    if (nc < 2 || !isfinite(zmax)) return;
    float zs = 0;
    for (uint32_t j = 0; j < nc; j++) {
        m->zc[j] = expf(m->zc[j] - zmax);
        zs += m->zc[j];
    }
    float g[SR_BLEND_NFEAT];
    for (int k = 0; k < SR_BLEND_NFEAT; k++)
        g[k] = -m->feat[0][k]; /* the true item is candidate 0 */
    for (uint32_t j = 0; j < nc; j++) {
        float pj = m->zc[j] / zs;
        for (int k = 0; k < SR_BLEND_NFEAT; k++)
            g[k] += pj * m->feat[j][k];
    }
    for (int k = 0; k < SR_BLEND_NFEAT; k++) {
        float gk = clampf(g[k], m->p.clip);
        m->blend_acc[k] += gk * gk;
        m->blend[k] -= m->p.blend_lr / sqrtf(m->blend_acc[k] + SR_ADAGRAD_INIT) * gk;
    }
}

int sr_model_nbr_reserve_(sr_model_t *m, uint32_t i, uint32_t n)
{
    if (n <= m->nbr_cap[i]) return 0;
    int cls = 0;
    while ((4u << cls) < n && cls < SR_NBR_CLASSES - 1)
        cls++;
    uint32_t cap = 4u << cls;
    if (cap < n) return SR_ERR_INVAL;
    uint32_t off;
    if (m->pool_free[cls] != SR_NBR_NONE) {
        off = m->pool_free[cls];
        m->pool_free[cls] = (uint32_t)m->pool[off].item;
    } else {
        if ((uint64_t)m->pool_used + cap > UINT32_MAX - 1) return SR_ERR_FULL;
        if (m->pool_used + cap > m->pool_cap) {
            uint64_t nc = m->pool_cap ? (uint64_t)m->pool_cap * 2 : 4096;
            while (nc < (uint64_t)m->pool_used + cap)
                nc *= 2;
            if (nc > UINT32_MAX) nc = UINT32_MAX;
            sr_score_nbr_t *np = realloc(m->pool, (size_t)nc * sizeof *np);
            if (!np) return SR_ERR_NOMEM;
            m->pool = np;
            /* + NBR_FP_PAD: the fingerprint scan reads whole vectors */
            uint8_t *nf = realloc(m->pool_fp, (size_t)nc + NBR_FP_PAD);
            if (!nf) return SR_ERR_NOMEM;
            memset(nf + m->pool_cap, 0, (size_t)(nc - m->pool_cap) + NBR_FP_PAD);
            m->pool_fp = nf;
            m->pool_cap = (uint32_t)nc;
        }
        off = m->pool_used;
        m->pool_used += cap;
    }
    if (m->nbr_cap[i]) {
        memcpy(m->pool + off, m->pool + m->nbr_off[i], m->nbr_n[i] * sizeof *m->pool);
        memcpy(m->pool_fp + off, m->pool_fp + m->nbr_off[i], m->nbr_n[i]);
        int oc = 0;
        while ((4u << oc) < m->nbr_cap[i])
            oc++;
        m->pool[m->nbr_off[i]].item = (int32_t)m->pool_free[oc];
        m->pool_free[oc] = m->nbr_off[i];
    }
    m->nbr_off[i] = off;
    m->nbr_cap[i] = (uint16_t)cap;
    return 0;
}

static inline uint8_t nbr_fp(int32_t b)
{
    return (uint8_t)(((uint32_t)b * 2654435761u) >> 24);
}

void sr_model_nbr_refp_(sr_model_t *m, uint32_t i)
{
    const sr_score_nbr_t *l = sr_model_nbr_(m, i);
    for (uint32_t e = 0; e < m->nbr_n[i]; e++)
        m->pool_fp[m->nbr_off[i] + e] = nbr_fp(l[e].item);
}

typedef uint8_t v32u8_t __attribute__((vector_size(32)));
typedef float v16sf_t __attribute__((vector_size(64)));
/* nbr_place reads 8 list entries as 16 floats, the counts in the odd lanes. */
_Static_assert(sizeof(sr_score_nbr_t) == 8 && offsetof(sr_score_nbr_t, count) == 4,
               "sr_score_nbr_t is {int32 item, float count}");
typedef int32_t v16si_t __attribute__((vector_size(64)));
typedef uint64_t v4u64_t __attribute__((vector_size(32)));

/* Finds b in item a's list.  Most lookups are misses that would read the
 * whole list (2 KB at 256 entries, from a random place in a large pool), so
 * the scan reads a parallel array of one-byte fingerprints, 32 at a time,
 * and touches an entry only on a fingerprint match. */
static int32_t nbr_find(const sr_model_t *m, uint32_t a, int32_t b)
{
    uint32_t n = m->nbr_n[a];
    const uint8_t *fp = m->pool_fp + m->nbr_off[a];
    const sr_score_nbr_t *l = sr_model_nbr_(m, a);
    uint8_t f = nbr_fp(b);
    v32u8_t fv;
    memset(&fv, f, sizeof fv);
    for (uint32_t e0 = 0; e0 < n; e0 += 32) {
        v32u8_t x;
        memcpy(&x, fp + e0, sizeof x); /* may read past n: padded, ignored */
        v32u8_t eq = (v32u8_t)(x == fv);
        v4u64_t w = (v4u64_t)eq;
        if (!(w[0] | w[1] | w[2] | w[3])) continue;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        /* visit only the matching bytes, in ascending order (the first
         * entry holding b, as a plain scan would find) */
        for (uint32_t q = 0; q < 4; q++) {
            uint64_t bits = w[q]; /* a matching byte is 0xff */
            while (bits) {
                unsigned sh = (unsigned)__builtin_ctzll(bits);
                uint32_t e = e0 + 8 * q + sh / 8;
                if (e >= n) return -1;
                if (l[e].item == b) return (int32_t)e;
                bits &= ~(0xffull << sh);
            }
        }
#else
        uint32_t end = e0 + 32 < n ? e0 + 32 : n;
        for (uint32_t e = e0; e < end; e++)
            if (fp[e] == f && l[e].item == b) return (int32_t)e;
#endif
    }
    return -1;
}

/* Lists stay sorted by count, highest first, so the strongest neighbours
 * lead (the blend learner reads a prefix) and the eviction victim is the
 * last entry (a weakest one). */

/* Moves entry e of item a's list (its count just grew) up past the
 * entries with a smaller count, fingerprints along: counts grow by small
 * steps, so this is usually zero or one swap. */
static void nbr_place(sr_model_t *m, uint32_t a, uint32_t e)
{
    sr_score_nbr_t *l = sr_model_nbr_(m, a);
    uint8_t *fp = m->pool_fp + m->nbr_off[a];
    sr_score_nbr_t x = l[e];
    uint8_t xf = fp[e];
    uint32_t p = e;
    if (p == 0 || !(l[p - 1].count < x.count)) return; /* the usual case: in place */
    p--;
    /* A long walk: eight entries (one 64-byte vector) per step; stops at
     * the same entry as the scalar walk below, the nearest one whose count
     * is not below x's. */
    v16sf_t xc;
    for (int k = 0; k < 16; k++)
        xc[k] = x.count;
    while (p >= 8) {
        v16sf_t v;
        memcpy(&v, l + p - 8, sizeof v); /* item, count, item, count, ... */
        v16si_t lt = (v16si_t)(v < xc);
        int hi = -1;
        for (int j = 7; j >= 0 && hi < 0; j--)
            if (!lt[2 * j + 1]) hi = j;
        if (hi >= 0) {
            p = p - 8 + (uint32_t)hi + 1;
            goto found;
        }
        p -= 8;
    }
    while (p > 0 && l[p - 1].count < x.count)
        p--;
found:
    /* A new neighbour passes every weaker entry (often a long run of
     * backward-only pairs): one block move each, not an entry at a time. */
    memmove(l + p + 1, l + p, (e - p) * sizeof *l);
    memmove(fp + p + 1, fp + p, e - p);
    l[p] = x;
    fp[p] = xf;
}

static void cooc_add(sr_model_t *m, uint32_t a, int32_t b, float inc)
{
    if (!(inc > 0.0f)) return; /* cooc_backward 0: forward lists only */
    m->xgen[a]++;
    uint32_t cm = (uint32_t)m->p.cooc_max;
    uint32_t n = m->nbr_n[a];
    int32_t e = n ? nbr_find(m, a, b) : -1;
    if (e >= 0) {
        sr_model_nbr_(m, a)[e].count += inc;
        nbr_place(m, a, (uint32_t)e);
    } else if (n < cm) {
        /* On ENOMEM the pair is dropped: a signal, not a fact. */
        if (sr_model_nbr_reserve_(m, a, n + 1u)) return;
        sr_score_nbr_t *l = sr_model_nbr_(m, a);
        l[n].item = b;
        l[n].count = inc;
        m->pool_fp[m->nbr_off[a] + n] = nbr_fp(b);
        m->nbr_n[a] = (uint16_t)(n + 1);
        nbr_place(m, a, n);
    } else {
        /* Space-saving: the newcomer takes the last slot and inherits its
         * count + inc, so a truly frequent neighbour cannot be starved by
         * churn. */
        sr_score_nbr_t *l = sr_model_nbr_(m, a);
        l[n - 1].item = b;
        l[n - 1].count += inc;
        m->pool_fp[m->nbr_off[a] + n - 1] = nbr_fp(b);
        nbr_place(m, a, n - 1);
    }
    sr_model_mark_item_(m, a);
}

static void pop_add(sr_model_t *m, uint32_t i, int64_t ts, double amount)
{
    double h = 1000.0 * m->p.pop_half_life_s;
    double e = (double)(ts - m->pop_ref_ms) / h;
    if (e > SR_POP_RENORM) {
        /* Move the reference to ts: O(n_items), once per 500 half-lives. */
        double f = exp2(-e);
        for (uint32_t k = 0; k < m->n_items; k++) {
            m->pop[k] *= f;
            m->logv[k] = (float)log(m->pop[k]);
        }
        m->pop_ref_ms = ts;
        m->xgen_all++;
        e = 0;
    }
    m->pop[i] += amount * exp2(e);
    m->logv[i] = (float)log(m->pop[i]);
    m->xgen[i]++;
}

int sr_model_sample_(const sr_model_t *m, uint64_t *rng, int32_t pos, int32_t *out,
                     unsigned char *uniform, int n)
{
    int got = 0;
    if (m->n_items == 0) return 0;
    for (int k = 0; k < n; k++) {
        int32_t x = -1;
        int uni = 0;
        /* One redraw when the draw hits the positive; then give up on this
         * negative rather than loop (a one-item catalogue). */
        for (int tries = 0; tries < 2 && (x < 0 || x == pos); tries++) {
            uni = m->ring_len == 0 || unit(rng) < m->p.sampler_uniform;
            x = uni ? (int32_t)below(rng, m->n_items) : (int32_t)m->ring[below(rng, m->ring_len)];
        }
        if (x == pos) continue;
        if (uniform) uniform[got] = (unsigned char)uni;
        out[got++] = x;
    }
    return got;
}

uint64_t sr_model_event_seed_(const sr_model_t *m, const sr_event_t *ev)
{
    uint64_t h = ev->id_hash;
    if (h == 0) {
        h = sr_hash64(ev->user, ev->user_len, (uint64_t)ev->ts_ms * 8u + (uint64_t)ev->type);
        h = sr_hash64(ev->item, ev->item_len, h);
    }
    uint8_t b[8];
    for (int k = 0; k < 8; k++)
        b[k] = (uint8_t)(h >> (8 * k));
    return sr_hash64(b, 8, m->p.seed);
}

/* The fingerprints of item x's co-occurrence list, which cooc_add scans. */
static inline void prefetch_nbrs(const sr_model_t *m, int32_t x)
{
    if (x >= 0 && (uint32_t)x < m->n_items && m->nbr_n[x])
        sr_model_prefetch_lines_(m->pool_fp + m->nbr_off[x], m->nbr_n[x], 1);
}

int sr_model_learn(sr_model_t *m, const sr_event_t *ev, sr_learn_result_t *res)
{
    if (!m || !ev || (unsigned)ev->type >= SR_EV_NTYPES) return SR_ERR_INVAL;
    if (!ev->user || !ev->item || ev->user_len == 0 || ev->item_len == 0 ||
        ev->user_len > SR_ID_MAX || ev->item_len > SR_ID_MAX)
        return SR_ERR_RANGE;
    uint32_t nu0 = m->n_users, ni0 = m->n_items;
    /* both ids' first slots load while the other id and the event seed
     * are hashed */
    uint64_t hu = sr_idtable_hash_id(m->uid, ev->user, ev->user_len);
    sr_idtable_prefetch(m->uid, hu);
    uint64_t hi = sr_idtable_hash_id(m->iid, ev->item, ev->item_len);
    sr_idtable_prefetch(m->iid, hi);
    uint64_t rng = sr_model_event_seed_(m, ev);
    int32_t u = user_intern_h(m, ev->user, ev->user_len, hu);
    if (u < 0) return u;
    prefetch_user(m, (uint32_t)u);
    int32_t i = item_intern_h(m, ev->item, ev->item_len, hi);
    if (i < 0) return i;
    prefetch_item(m, (uint32_t)i);
    __builtin_prefetch(m->nbr_off + i, 1, 3);
    __builtin_prefetch(m->nbr_n + i, 1, 3);
    __builtin_prefetch(m->cnt + i, 1, 3);
    int64_t ts = ev->ts_ms;
    if (m->events == 0) m->pop_ref_ms = m->clock_ms = ts;
    if (ts > m->clock_ms) m->clock_ms = ts;

    const int dim = m->dim;
    const int positive = ev->type != SR_EV_IMPRESSION;
    const size_t rmax = (size_t)m->p.recent_max;
    sr_score_recent_t *rec = m->rec + (size_t)u * rmax;
    /* The negatives are drawn first (the draws depend on nothing that
     * follows), so their rows load while the short-term vector is built. */
    int32_t neg[64];
    unsigned char neg_uniform[64];
    int nneg = 0;
    if (positive) {
        nneg = sr_model_sample_(m, &rng, i, neg, neg_uniform, m->p.negatives);
        for (int k = 0; k < nneg; k++)
            prefetch_item(m, (uint32_t)neg[k]);
    }
    sr_score_user_t uv;
    user_view(m, u, ts, &uv);
    sr_score_items_t it;
    sr_model_score_items(m, &it);
    sr_score_conf_t conf;
    conf.recent_half_life_s = m->p.recent_half_life_s;
    sr_score_session(&it, &conf, &uv, m->s);
    const float *p = m->P + (size_t)u * dim;
    for (int d = 0; d < dim; d++) {
        m->uvec[d] = p[d] + m->s[d];
        m->gp[d] = 0;
    }

    float loss = 0;
    const float w = m->p.weight[ev->type];
    if (positive) {
        if (m->p.cooc_max > 0) {
            /* the lists co-occurrence upkeep will scan (the last items
             * approximate its context; a hint, exactness not needed) */
            prefetch_nbrs(m, i);
            for (size_t k = uv.n_recent, t = 0; k-- > 0 && t < 2; t++)
                prefetch_nbrs(m, uv.recent[k].item);
        }
        if (m->p.blend_lr > 0 && unit(&rng) < m->p.blend_sample) blend_learn(m, &uv, i, neg, nneg);
        loss += sgd_item(m, (uint32_t)i, 1.0f, w, res != NULL, 1);
        for (int k = 0; k < nneg; k++)
            loss += sgd_item(m, (uint32_t)neg[k], 0.0f, w, res != NULL,
                             !neg_uniform[k] || m->p.uniform_neg_items);
        sgd_user(m, (uint32_t)u);

        pop_add(m, (uint32_t)i, ts, 1.0);
        /* Co-occurrence with the user's last distinct items; consecutive
         * repeats of one item are one occurrence. */
        size_t rn = m->rec_n[u];
        if (rn == 0 || rec[rn - 1].item != i) {
            m->cnt[i] += 1.0f;
            m->xgen[i]++;
            if (m->p.cooc_max > 0) {
                int32_t ctx[64];
                size_t nctx = 0, wnd = (size_t)m->p.cooc_window;
                for (size_t k = rn; k-- > 0 && nctx < wnd;) {
                    int32_t x = rec[k].item;
                    int dup = x == i;
                    for (size_t j = 0; j < nctx; j++)
                        dup |= ctx[j] == x;
                    if (!dup) ctx[nctx++] = x;
                }
                for (size_t k = 0; k < nctx; k++) {
                    cooc_add(m, (uint32_t)i, ctx[k], m->p.cooc_backward);
                    cooc_add(m, (uint32_t)ctx[k], i, 1.0f);
                }
            }
        }
        sr_score_recent_t e = {.item = i, .type = (uint32_t)ev->type, .ts_ms = ts};
        if (rn < rmax) {
            rec[rn] = e;
            m->rec_n[u] = (uint16_t)(rn + 1);
        } else {
            memmove(rec, rec + 1, (rmax - 1) * sizeof *rec);
            rec[rmax - 1] = e;
        }
        m->ring[m->ring_pos] = (uint32_t)i;
        m->ring_pos = (m->ring_pos + 1) % SR_SAMPLER_RING;
        if (m->ring_len < SR_SAMPLER_RING) m->ring_len++;
    } else {
        /* An impression without a click: a weak explicit negative. */
        loss += sgd_item(m, (uint32_t)i, 0.0f, w, res != NULL, 1);
        sgd_user(m, (uint32_t)u);
        pop_add(m, (uint32_t)i, ts, m->p.pop_impression);
    }
    m->u_events[u]++;
    m->u_last[u] = ts;
    m->events++;
    sr_model_mark_user_(m, (uint32_t)u);
    sr_model_mark_item_(m, (uint32_t)i);
    if (res) {
        res->loss = loss;
        res->user = u;
        res->item = i;
        res->new_user = m->n_users > nu0;
        res->new_item = m->n_items > ni0;
    }
    return 0;
}
