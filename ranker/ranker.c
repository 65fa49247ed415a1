/* The ranker's query side: scoring a user against the in-memory catalogue,
 * partial top-K, filters, cold start, candidate re-ranking, similar items
 * and popularity.  Everything here runs on request threads, reads the
 * catalogue through one left-right view per query (sr_items.h) and
 * allocates nothing once the scratch pool is warm, except the result it
 * hands to the caller.
 *
 * Scores come from the model's own kernel (model/sr_score.h) over the
 * ranker's arrays, so a ranker fed the trainer's state ranks exactly as the
 * model does; this file only resolves the user's recent items to catalogue
 * indices, picks cold start, applies filters and selects the top K. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ranker_int.h"
#include "sr_err.h"
#include "sr_log.h"
#include "sr_model.h"

int64_t sr_ranker_wall_ms_(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void sr_ranker_opts_init(sr_ranker_opts_t *o)
{
    memset(o, 0, sizeof(*o));
    o->dim = 32;
    sr_model_params_t p;
    sr_model_params_init(&p);
    o->dim = p.dim;
    /* The model's initial blend (model.c); the trainer's learned weights
     * replace it once a Redis-backed ranker reads the global state. */
    o->score.blend[SR_F_MF] = 1.0f;
    o->score.blend[SR_F_SESS] = 1.0f;
    o->score.blend[SR_F_BIAS] = 0.5f;
    o->score.blend[SR_F_POP] = 0.5f;
    o->score.blend[SR_F_REC] = 3.0f;
    o->score.blend[SR_F_LAST] = 1.0f;
    o->score.blend[SR_F_COOC] = 3.0f;
    o->score.blend[SR_F_SEEN] = 1.0f;
    o->score.blend[SR_F_COOC_SEEN] = 1.0f;
    o->score.blend[SR_F_POS] = 1.0f;
    o->score.blend[SR_F_REPEAT] = 1.0f;
    memcpy(o->score.weight, p.weight, sizeof(o->score.weight));
    o->score.recent_half_life_s = p.recent_half_life_s;
    o->score.cooc_window = p.cooc_window;
    o->score.pop_offset = 0;
    o->prune = 1;
}

sr_ranker_t *sr_ranker_alloc_(const sr_ranker_opts_t *o, char *errstr, size_t errstr_size)
{
    if (!o || o->dim < 1 || o->dim > 1024) {
        snprintf(errstr, errstr_size, "ranker: dim must be in 1..1024");
        return NULL;
    }
    sr_ranker_t *r = calloc(1, sizeof(*r));
    if (!r || !(r->items = sr_items_new(o->dim))) {
        free(r);
        snprintf(errstr, errstr_size, "ranker: out of memory");
        return NULL;
    }
    r->o = *o;
    r->dim = o->dim;
    r->conf = o->score;
    pthread_mutex_init(&r->pool_mu, NULL);
    pthread_mutex_init(&r->reason_mu, NULL);
    pthread_mutex_init(&r->conf_mu, NULL);
    atomic_init(&r->loaded, 0);
    atomic_init(&r->redis_ok, 1);
    atomic_init(&r->stream_lag, 0);
    atomic_init(&r->last_update_ms, 0);
    return r;
}

sr_ranker_t *sr_ranker_new_custom(const sr_ranker_opts_t *opts, char *errstr, size_t errstr_size)
{
    sr_ranker_t *r = sr_ranker_alloc_(opts, errstr, errstr_size);
    if (r) atomic_store(&r->loaded, 1);
    return r;
}

static void scratch_free(sr_scratch_t *s)
{
    free(s->scores);
    free(s->skip);
    free(s->idx);
    free(s->top);
    free(s->uvec);
    free(s->kscratch);
    free(s->vvec);
    free(s->w16);
    free(s->cand);
    free(s->ucand);
    free(s->cs);
    free(s->rows);
    free(s->found);
    free(s->rcand);
    free(s->rcs);
    free(s);
}

void sr_ranker_destroy(sr_ranker_t *r)
{
    if (!r) return;
    if (r->be) sr_ranker_backend_destroy_(r->be);
    while (r->pool) {
        sr_scratch_t *s = r->pool;
        r->pool = s->next;
        scratch_free(s);
    }
    sr_items_destroy(r->items);
    pthread_mutex_destroy(&r->pool_mu);
    pthread_mutex_destroy(&r->reason_mu);
    pthread_mutex_destroy(&r->conf_mu);
    free(r);
}

void sr_ranker_set_reason_(sr_ranker_t *r, const char *reason)
{
    pthread_mutex_lock(&r->reason_mu);
    snprintf(r->reason, sizeof(r->reason), "%s", reason);
    pthread_mutex_unlock(&r->reason_mu);
}

void sr_ranker_reason(sr_ranker_t *r, char *buf, size_t size)
{
    pthread_mutex_lock(&r->reason_mu);
    snprintf(buf, size, "%s", atomic_load(&r->redis_ok) ? "" : r->reason);
    pthread_mutex_unlock(&r->reason_mu);
}

int sr_ranker_loaded(sr_ranker_t *r)
{
    return atomic_load(&r->loaded);
}

void sr_ranker_set_conf_(sr_ranker_t *r, const sr_score_conf_t *c, int64_t clock_ms)
{
    pthread_mutex_lock(&r->conf_mu);
    r->conf = *c;
    r->clock_ms = clock_ms;
    pthread_mutex_unlock(&r->conf_mu);
}

void sr_ranker_score_conf(sr_ranker_t *r, sr_score_conf_t *out)
{
    pthread_mutex_lock(&r->conf_mu);
    *out = r->conf;
    pthread_mutex_unlock(&r->conf_mu);
}

/* The conf and the time a query scores at. */
static int64_t query_conf(sr_ranker_t *r, sr_score_conf_t *c)
{
    int64_t clock;
    pthread_mutex_lock(&r->conf_mu);
    *c = r->conf;
    clock = r->clock_ms;
    pthread_mutex_unlock(&r->conf_mu);
    if (r->o.now_ms) return r->o.now_ms(r->o.opaque);
    return clock ? clock : sr_ranker_wall_ms_();
}

int sr_ranker_upsert_items(sr_ranker_t *r, const char *const *ids, const size_t *lens, size_t n,
                           const float *vecs, const float *bias, const float *pop)
{
    if (!r || (n && (!ids || !lens))) return SR_ERR_INVAL;
    sr_item_update_t *ups = calloc(n ? n : 1, sizeof(*ups));
    if (!ups) return SR_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        ups[i].id = ids[i];
        ups[i].id_len = lens[i];
        ups[i].num = -1;
        ups[i].vec = vecs ? vecs + i * (size_t)r->dim : NULL;
        if (bias) {
            ups[i].bias = bias[i];
            ups[i].set_bias = 1;
        }
        if (pop) {
            ups[i].logpop = pop[i] > 0 ? logf(pop[i]) : -INFINITY;
            ups[i].set_logpop = 1;
        }
    }
    int rc = sr_items_apply(r->items, ups, n);
    free(ups);
    if (rc >= 0) atomic_store(&r->last_update_ms, sr_ranker_wall_ms_());
    return rc < 0 ? rc : 0;
}

/* ---- scratch pool ---- */

static sr_scratch_t *scratch_get(sr_ranker_t *r, uint32_t n, size_t k)
{
    pthread_mutex_lock(&r->pool_mu);
    sr_scratch_t *s = r->pool;
    if (s) r->pool = s->next;
    pthread_mutex_unlock(&r->pool_mu);
    if (!s) {
        s = calloc(1, sizeof(*s));
        if (!s) return NULL;
        s->uvec = malloc((size_t)r->dim * sizeof(float));
        s->kscratch = malloc(2 * (size_t)r->dim * sizeof(float));
        s->vvec = malloc((size_t)r->dim * sizeof(float));
        s->w16 = malloc((size_t)r->dim * sizeof(int16_t));
        if (!s->uvec || !s->kscratch || !s->vvec || !s->w16) {
            scratch_free(s);
            return NULL;
        }
    }
    if (s->cap < n) {
        uint32_t cap = n + n / 4 + 64;
        /* zeroed, not realloc'd: /v1/rank's sparse pass adds to rows it
         * never reads, which must hold some value */
        float *sc = calloc(cap, sizeof(float));
        if (sc) {
            free(s->scores);
            s->scores = sc;
        }
        /* +8: stage one reads the flags eight at a time */
        uint8_t *sk = sc ? calloc((size_t)cap + 8, 1) : NULL;
        if (!sc || !sk) {
            scratch_free(s);
            return NULL;
        }
        free(s->cand);
        free(s->ucand);
        free(s->cs);
        s->cand = malloc((size_t)cap * sizeof(*s->cand));
        s->ucand = malloc((size_t)cap * sizeof(*s->ucand));
        s->cs = malloc((size_t)cap * sizeof(*s->cs));
        if (!s->cand || !s->ucand || !s->cs) {
            free(sk);
            scratch_free(s);
            return NULL;
        }
        free(s->skip);
        s->skip = sk;
        s->cap = cap;
    }
    if (s->kcap < k) {
        uint32_t *idx = realloc(s->idx, k * sizeof(*idx));
        if (idx) s->idx = idx;
        float *top = idx ? realloc(s->top, k * sizeof(*top)) : NULL;
        if (top) s->top = top;
        if (!idx || !top) {
            scratch_free(s);
            return NULL;
        }
        s->kcap = k;
    }
    return s;
}

/* Room for n per-candidate rows (/v1/rank); 0 or SR_ERR_NOMEM. */
static int scratch_rows(sr_scratch_t *s, size_t n)
{
    if (s->ncap >= n) return 0;
    size_t cap = n + n / 4 + 16;
    free(s->rows);
    free(s->found);
    free(s->rcand);
    free(s->rcs);
    s->rows = malloc(cap * sizeof(*s->rows));
    s->found = malloc(cap * sizeof(*s->found));
    s->rcand = malloc(cap * sizeof(*s->rcand));
    s->rcs = malloc(cap * sizeof(*s->rcs));
    s->ncap = s->rows && s->found && s->rcand && s->rcs ? cap : 0;
    return s->ncap ? 0 : SR_ERR_NOMEM;
}

static void scratch_put(sr_ranker_t *r, sr_scratch_t *s)
{
    pthread_mutex_lock(&r->pool_mu);
    s->next = r->pool;
    r->pool = s;
    pthread_mutex_unlock(&r->pool_mu);
}

/* ---- results ---- */

void sr_ranker_result_free(sr_ranker_result_t *res)
{
    if (!res) return;
    free(res->items);
    free(res->arena_);
    res->items = NULL;
    res->arena_ = NULL;
    res->n = 0;
}

static int result_from(sr_ranker_result_t *out, const sr_items_view_t *v, const uint32_t *idx,
                       const float *score, size_t n)
{
    size_t bytes = 1;
    for (size_t j = 0; j < n; j++) {
        size_t len;
        sr_items_id(v, idx[j], &len);
        bytes += len + 1;
    }
    out->items = calloc(n ? n : 1, sizeof(*out->items));
    out->arena_ = malloc(bytes);
    if (!out->items || !out->arena_) {
        sr_ranker_result_free(out);
        return SR_ERR_NOMEM;
    }
    char *p = out->arena_;
    for (size_t j = 0; j < n; j++) {
        size_t len;
        const char *id = sr_items_id(v, idx[j], &len);
        memcpy(p, id, len);
        p[len] = 0;
        out->items[j].id = p;
        out->items[j].id_len = len;
        out->items[j].score = score[j];
        p += len + 1;
    }
    out->n = n;
    return 0;
}

/* ---- user state ---- */

typedef struct uctx {
    sr_score_user_t su;
    int personal; /* has a vector or a known recent item */
} uctx_t;

/* Reads the user and resolves the recent items to catalogue indices
 * (sc->srec).  Returns 0 or the source's error. */
static int load_user(sr_ranker_t *r, const sr_items_view_t *v, const char *user, size_t len,
                     int64_t now, sr_scratch_t *sc, uctx_t *uc)
{
    sr_ranker_user_t u = {0};
    u.vec = sc->uvec;
    u.recent = sc->recent;
    memset(uc, 0, sizeof(*uc));
    uc->su.now_ms = now;
    if (r->o.get_user) {
        int rc = r->o.get_user(r->o.opaque, user, len, &u);
        if (rc < 0) return rc;
    }
    if (!u.found) return 0;
    if (u.n_recent > SR_RANKER_RECENT_MAX) u.n_recent = SR_RANKER_RECENT_MAX;
    size_t known = 0;
    for (size_t j = 0; j < u.n_recent; j++) {
        const sr_ranker_recent_t *e = &u.recent[j];
        int32_t i = e->num >= 0 ? sr_items_find_num(v, e->num)
                                : (e->id ? sr_items_find(v, e->id, e->id_len) : -1);
        sc->srec[j].item = i;
        sc->srec[j].type = e->type >= 0 && e->type < SR_EV_NTYPES ? (uint32_t)e->type : 0;
        sc->srec[j].ts_ms = e->ts_ms;
        known += i >= 0;
    }
    uc->su.recent = sc->srec;
    uc->su.n_recent = u.n_recent;
    int nonzero = 0;
    if (u.has_vec)
        for (int d = 0; d < r->dim; d++)
            nonzero |= sc->uvec[d] != 0.0f;
    uc->su.p = nonzero ? sc->uvec : NULL;
    uc->personal = nonzero || known > 0;
    return 0;
}

static int check_id(const char *s, size_t len)
{
    return s && len > 0 && len <= 1024 && memchr(s, 0, len) == NULL;
}

static int not_loaded(sr_ranker_t *r)
{
    if (atomic_load(&r->loaded)) return 0;
    return 1;
}

/* Decayed popularity for display: exp(log pop + offset), 0 for none. */
static void pop_scores(const sr_score_conf_t *c, float *s, size_t n)
{
    for (size_t j = 0; j < n; j++)
        s[j] = isfinite(s[j]) ? expf(s[j] + c->pop_offset) : 0.0f;
}

/* The top kk of the m rows sc->cand[] (increasing) by sc->scores into
 * sc->idx / sc->top: what sr_topk over all rows gives when no other row
 * can make it (ties go to the lower row either way). */
static size_t topk_of_rows(sr_scratch_t *sc, size_t m, size_t kk)
{
    for (size_t j = 0; j < m; j++)
        sc->cs[j] = sc->scores[sc->cand[j]];
    size_t got = sr_topk(sc->cs, (uint32_t)m, kk, NULL, sc->idx, sc->top);
    for (size_t j = 0; j < got; j++)
        sc->idx[j] = sc->cand[sc->idx[j]];
    return got;
}

/* The personal top-k of recommend in two stages (quant.h); the same rows
 * and scores as sr_score_all + sr_topk over sc->skip.  Returns the number
 * written to sc->idx / sc->top, or -1 when it cannot bound the user's
 * vector (not finite): then the caller does the full pass. */
static long recommend_pruned(const sr_items_view_t *v, const sr_score_conf_t *c,
                             const sr_score_user_t *su, sr_scratch_t *sc, size_t kk)
{
    sr_score_items_t it;
    sr_items_score_items(v, &it);
    sr_score_dense_vec(&it, c, su, sc->vvec, sc->kscratch);
    sr_quant_user_t qu;
    if (sr_quant_user_(sc->vvec, v->dim, sc->w16, &qu) < 0) return -1;
    /* bit 1: the rows the sparse terms will change; they are always
     * rescored and never bound the threshold */
    sr_score_sparse(&it, c, su, NULL, sc->skip, 2);
    sr_quant_scan_t a = {
        .n = v->n,
        .dim = v->dim,
        .codes = v->q8,
        .scale = v->qscale,
        .bias = v->bias,
        .logpop = v->logpop,
        .wb = c->blend[SR_F_BIAS],
        .wp = c->blend[SR_F_POP],
        .off = c->pop_offset,
        .pop_floor = SR_POP_FLOOR,
    };
    float tau;
    size_t nc = sr_quant_scan_(&a, &qu, sc->skip, kk, sc->top, sc->cand, sc->ucand, &tau);
    size_t m = 0;
    for (size_t j = 0; j < nc; j++) {
        uint32_t i = sc->cand[j];
        uint8_t f = sc->skip[i];
        sc->skip[i] = f & 1;
        if (f & 1) {
            sc->scores[i] = 0; /* excluded: the sparse pass may still add to it */
            continue;
        }
        if ((f & 2) || !(sc->ucand[j] < tau)) sc->cand[m++] = i;
    }
    sr_score_dense_rows(&it, c, sc->vvec, sc->cand, m, sc->scores);
    sr_score_sparse(&it, c, su, sc->scores, NULL, 0);
    return (long)topk_of_rows(sc, m, kk);
}

int sr_ranker_recommend(sr_ranker_t *r, const char *user, size_t user_len, size_t k,
                        sr_exclude_t exclude, sr_ranker_result_t *out)
{
    memset(out, 0, sizeof(*out));
    if (!r || !check_id(user, user_len) || k == 0 || k > 1000000) return SR_ERR_INVAL;
    if (not_loaded(r)) return SR_ERR_UNAVAIL;
    sr_score_conf_t c;
    int64_t now = query_conf(r, &c);
    sr_items_view_t v;
    int tok = sr_items_enter(r->items, &v);
    size_t kk = k < v.n ? k : v.n;
    sr_scratch_t *sc = scratch_get(r, v.n, kk ? kk : 1);
    int rc = SR_ERR_NOMEM;
    if (!sc) goto done;
    uctx_t uc;
    rc = load_user(r, &v, user, user_len, now, sc, &uc);
    if (rc < 0) goto done;
    if (exclude != SR_EXCLUDE_NONE)
        for (size_t j = 0; j < uc.su.n_recent; j++)
            if (sc->srec[j].item >= 0 &&
                (exclude == SR_EXCLUDE_SEEN || sc->srec[j].type == SR_RANKER_PURCHASE))
                sc->skip[sc->srec[j].item] = 1;
    size_t got;
    if (uc.personal) {
        long pg = r->o.prune && kk ? recommend_pruned(&v, &c, &uc.su, sc, kk) : -1;
        if (pg >= 0) {
            got = (size_t)pg;
        } else {
            sr_score_items_t it;
            sr_items_score_items(&v, &it);
            sr_score_all(&it, &c, &uc.su, sc->scores, sc->kscratch);
            got = sr_topk(sc->scores, v.n, kk, sc->skip, sc->idx, sc->top);
        }
        out->source = SR_SOURCE_PERSONAL;
    } else {
        got = sr_topk(v.logpop, v.n, kk, sc->skip, sc->idx, sc->top);
        pop_scores(&c, sc->top, got);
        out->source = SR_SOURCE_POPULAR;
    }
    for (size_t j = 0; j < uc.su.n_recent; j++)
        if (sc->srec[j].item >= 0) sc->skip[sc->srec[j].item] = 0;
    rc = result_from(out, &v, sc->idx, sc->top, got);
done:
    if (sc) scratch_put(r, sc);
    sr_items_leave(r->items, tok);
    return rc;
}

static int cmp_rank(const void *a, const void *b)
{
    const sr_rank_row_t *x = a, *y = b;
    int kx = x->idx >= 0, ky = y->idx >= 0;
    if (kx != ky) return kx ? -1 : 1;
    if (kx && x->s != y->s) return x->s > y->s ? -1 : 1;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

int sr_ranker_rank(sr_ranker_t *r, const char *user, size_t user_len, const char *const *items,
                   const size_t *lens, size_t n, sr_ranker_result_t *out)
{
    memset(out, 0, sizeof(*out));
    if (!r || !check_id(user, user_len) || (n && (!items || !lens))) return SR_ERR_INVAL;
    for (size_t j = 0; j < n; j++)
        if (!check_id(items[j], lens[j])) return SR_ERR_INVAL;
    if (not_loaded(r)) return SR_ERR_UNAVAIL;
    sr_score_conf_t c;
    int64_t now = query_conf(r, &c);
    sr_items_view_t v;
    int tok = sr_items_enter(r->items, &v);
    /* n_items scores: the sparse pass adds to the rows it touches */
    sr_scratch_t *sc = scratch_get(r, v.n, 1);
    int rc = SR_ERR_NOMEM;
    if (!sc || scratch_rows(sc, n)) goto done;
    uctx_t uc;
    rc = load_user(r, &v, user, user_len, now, sc, &uc);
    if (rc < 0) goto done;
    out->source = uc.personal ? SR_SOURCE_PERSONAL : SR_SOURCE_POPULAR;
    sr_items_find_many(&v, items, lens, n, sc->found);
    size_t nk = 0;
    for (size_t j = 0; j < n; j++)
        if (sc->found[j] >= 0) sc->rcand[nk++] = (uint32_t)sc->found[j];
    if (uc.personal) {
        /* The full pass's pieces (sr_score.h) on the candidates' rows only:
         * a candidate gets the bits /v1/recommend gives it, and the sparse
         * terms cost O(recent items), not O(candidates x recent items). */
        sr_score_items_t it;
        sr_items_score_items(&v, &it);
        /* The kernel scores a row within its group of four (sr_score.h):
         * fetch every candidate's group at once, not one miss at a time. */
        for (size_t j = 0; j < nk; j++) {
            const char *g = (const char *)(v.vec + (size_t)(sc->rcand[j] & ~3u) * (size_t)v.dim);
            for (size_t o = 0; o < 4 * (size_t)v.dim * sizeof(float); o += 64)
                __builtin_prefetch(g + o);
        }
        sr_score_dense_vec(&it, &c, &uc.su, sc->vvec, sc->kscratch);
        sr_score_dense_rows(&it, &c, sc->vvec, sc->rcand, nk, sc->scores);
        sr_score_sparse(&it, &c, &uc.su, sc->scores, NULL, 0);
        for (size_t j = 0; j < nk; j++)
            sc->rcs[j] = sc->scores[sc->rcand[j]];
    } else {
        for (size_t j = 0; j < nk; j++)
            sc->rcs[j] = v.logpop[sc->rcand[j]];
        pop_scores(&c, sc->rcs, nk);
    }
    sr_rank_row_t *rows = sc->rows;
    for (size_t j = 0, t = 0; j < n; j++) {
        rows[j].pos = (uint32_t)j;
        rows[j].idx = sc->found[j];
        rows[j].s = 0;
        if (rows[j].idx >= 0) {
            float s = sc->rcs[t++];
            rows[j].s = s == s ? s : -INFINITY;
        }
    }
    qsort(rows, n, sizeof(*rows), cmp_rank);
    size_t bytes = 1;
    for (size_t j = 0; j < n; j++)
        bytes += lens[j] + 1;
    rc = SR_ERR_NOMEM;
    out->items = calloc(n ? n : 1, sizeof(*out->items));
    out->arena_ = malloc(bytes);
    if (!out->items || !out->arena_) {
        sr_ranker_result_free(out);
        goto done;
    }
    char *p = out->arena_;
    for (size_t j = 0; j < n; j++) {
        size_t src = rows[j].pos;
        memcpy(p, items[src], lens[src]);
        p[lens[src]] = 0;
        out->items[j].id = p;
        out->items[j].id_len = lens[src];
        out->items[j].score = rows[j].s;
        out->items[j].unknown = rows[j].idx < 0;
        p += lens[src] + 1;
    }
    out->n = n;
    rc = 0;
done:
    if (sc) scratch_put(r, sc);
    sr_items_leave(r->items, tok);
    return rc;
}

/* sr_score_similar's score of row j for item x from the view: its exact
 * expression, dot8 being sr_dot (sr_score.h), so the same bits. */
static inline float cosine_row(const sr_items_view_t *v, int32_t x, uint32_t j)
{
    const float *qi = v->vec + (size_t)x * v->dim;
    return sr_dot(qi, v->vec + (size_t)j * v->dim, v->dim) / (v->norm[x] * v->norm[j]);
}

/* The top k of /v1/similar in two stages (quant.h, cosine mode): the same
 * rows and score bits as sr_score_similar + sr_topk.  Returns how many,
 * or -1 when the item's vector cannot be bounded (not finite): then the
 * caller does the full pass.  sc->skip is left all zero. */
static long similar_pruned(const sr_items_view_t *v, int32_t x, sr_scratch_t *sc, size_t kk)
{
    sr_quant_user_t qu;
    if (sr_quant_user_(v->vec + (size_t)x * v->dim, v->dim, sc->w16, &qu) < 0) return -1;
    sr_score_items_t it;
    sr_items_score_items(v, &it);
    /* bit 1: the co-occurrence neighbours, whose score gets a second term:
     * always rescored, never bounding the threshold (sr_score_similar adds
     * the term to the neighbours it keeps, in list order) */
    size_t nn = 0;
    const sr_score_nbr_t *nb = NULL;
    if (v->count[x] > 0) nb = it.nbrs(it.nbrs_opaque, x, &nn);
    for (size_t e = 0; nb && e < nn; e++)
        if (nb[e].item >= 0 && (uint32_t)nb[e].item < v->n && v->count[nb[e].item] > 0)
            sc->skip[nb[e].item] |= 2;
    sc->skip[x] |= 1;
    sr_quant_scan_t a = {.n = v->n,
                         .dim = v->dim,
                         .codes = v->q8,
                         .scale = v->qscale,
                         .norm = v->norm,
                         .inv_unorm = 1.0f / v->norm[x]};
    float tau;
    size_t nc = sr_quant_scan_(&a, &qu, sc->skip, kk, sc->top, sc->cand, sc->ucand, &tau);
    size_t m = 0;
    for (size_t j = 0; j < nc; j++) {
        uint32_t i = sc->cand[j];
        uint8_t f = sc->skip[i];
        if (f & 1) continue;
        if ((f & 2) || !(sc->ucand[j] < tau)) {
            sc->cand[m++] = i;
            sc->scores[i] = cosine_row(v, x, i);
        }
    }
    for (size_t e = 0; nb && e < nn; e++) {
        int32_t y = nb[e].item;
        if (y < 0 || (uint32_t)y >= v->n || v->count[y] <= 0) continue;
        sc->skip[y] = 0;
        sc->scores[y] += nb[e].count / sqrtf(v->count[x] * v->count[y]);
    }
    sc->skip[x] = 0;
    return (long)topk_of_rows(sc, m, kk);
}

int sr_ranker_similar(sr_ranker_t *r, const char *item, size_t len, size_t k,
                      sr_ranker_result_t *out)
{
    memset(out, 0, sizeof(*out));
    if (!r || !check_id(item, len) || k == 0 || k > 1000000) return SR_ERR_INVAL;
    if (not_loaded(r)) return SR_ERR_UNAVAIL;
    sr_items_view_t v;
    int tok = sr_items_enter(r->items, &v);
    int rc = SR_ERR_NOTFOUND;
    sr_scratch_t *sc = NULL;
    int32_t x = sr_items_find(&v, item, len);
    if (x < 0) goto done;
    size_t kk = k < v.n - 1 ? k : v.n - 1;
    rc = SR_ERR_NOMEM;
    sc = scratch_get(r, v.n, kk ? kk : 1);
    if (!sc) goto done;
    long pg = r->o.prune && kk ? similar_pruned(&v, x, sc, kk) : -1;
    size_t got;
    if (pg >= 0) {
        got = (size_t)pg;
    } else {
        sr_score_items_t it;
        sr_items_score_items(&v, &it);
        sr_score_similar(&it, x, sc->scores);
        sc->skip[x] = 1;
        got = sr_topk(sc->scores, v.n, kk, sc->skip, sc->idx, sc->top);
        sc->skip[x] = 0;
    }
    rc = result_from(out, &v, sc->idx, sc->top, got);
done:
    if (sc) scratch_put(r, sc);
    sr_items_leave(r->items, tok);
    return rc;
}

int sr_ranker_popular(sr_ranker_t *r, size_t k, sr_ranker_result_t *out)
{
    memset(out, 0, sizeof(*out));
    if (!r || k == 0 || k > 1000000) return SR_ERR_INVAL;
    if (not_loaded(r)) return SR_ERR_UNAVAIL;
    sr_score_conf_t c;
    query_conf(r, &c);
    sr_items_view_t v;
    int tok = sr_items_enter(r->items, &v);
    size_t kk = k < v.n ? k : v.n;
    sr_scratch_t *sc = scratch_get(r, 0, kk ? kk : 1);
    int rc = SR_ERR_NOMEM;
    if (sc) {
        size_t got = sr_topk(v.logpop, v.n, kk, NULL, sc->idx, sc->top);
        pop_scores(&c, sc->top, got);
        rc = result_from(out, &v, sc->idx, sc->top, got);
        out->source = SR_SOURCE_POPULAR;
        scratch_put(r, sc);
    }
    sr_items_leave(r->items, tok);
    return rc;
}

int sr_ranker_health(sr_ranker_t *r, sr_ranker_health_t *h)
{
    memset(h, 0, sizeof(*h));
    h->items = sr_items_count(r->items);
    h->loaded = atomic_load(&r->loaded);
    h->stream_lag = atomic_load(&r->stream_lag);
    h->last_update_ms = atomic_load(&r->last_update_ms);
    h->redis_ok = 1;
    if (r->be) {
        int rc = sr_ranker_backend_health_(r, h);
        if (rc < 0) return rc;
    }
    if (!h->loaded) {
        snprintf(h->reason, sizeof(h->reason), "items not loaded yet");
        return SR_ERR_UNAVAIL;
    }
    return 0;
}
