/* The ranker's query side: scoring a user against the in-memory catalogue,
 * partial top-K, filters, cold start, candidate re-ranking, similar items
 * and popularity.  Everything here runs on request threads, reads the
 * catalogue through one left-right view per query (sr_items.h) and
 * allocates nothing once the scratch pool is warm, except the result it
 * hands to the caller.
 *
 * The score is the model's blend (DESIGN.md §5):
 *   s(u,i) = w_bias*b_i + w_mf*q_i.(p_u + w_short*s_u) + w_pop*log1p(pop_i)
 *            + w_recent*r_u(i)
 * where s_u is the recency- and type-weighted mean of the vectors of the
 * user's recent items and r_u(i) the recency weight of item i in the user's
 * own history.  A user with no vector and no usable recent items is cold and
 * gets popularity. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ranker_int.h"
#include "sr_err.h"
#include "sr_log.h"

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
    o->w_mf = 1.0f;
    o->w_bias = 1.0f;
    o->w_pop = 0.1f;
    o->w_recent = 0.5f;
    o->w_short = 1.0f;
    o->recent_half_life_s = 1800.0f;
    o->type_weight[SR_RANKER_VIEW] = 1.0f;
    o->type_weight[SR_RANKER_CLICK] = 2.0f;
    o->type_weight[SR_RANKER_CART] = 4.0f;
    o->type_weight[SR_RANKER_PURCHASE] = 8.0f;
}

sr_ranker_t *sr_ranker_alloc_(const sr_ranker_opts_t *o, char *errstr, size_t errstr_size)
{
    if (!o || o->dim < 1 || o->dim > 1024) {
        snprintf(errstr, errstr_size, "ranker: dim must be in 1..1024");
        return NULL;
    }
    if (!(o->recent_half_life_s > 0)) {
        snprintf(errstr, errstr_size, "ranker: recent_half_life_s must be > 0");
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
    pthread_mutex_init(&r->pool_mu, NULL);
    pthread_mutex_init(&r->reason_mu, NULL);
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

void sr_ranker_destroy(sr_ranker_t *r)
{
    if (!r) return;
    if (r->be) sr_ranker_backend_destroy_(r->be);
    while (r->pool) {
        sr_scratch_t *s = r->pool;
        r->pool = s->next;
        free(s->scores);
        free(s->uvec);
        free(s->svec);
        free(s->user_priv);
        free(s);
    }
    sr_items_destroy(r->items);
    pthread_mutex_destroy(&r->pool_mu);
    pthread_mutex_destroy(&r->reason_mu);
    free(r);
}

void sr_ranker_set_reason_(sr_ranker_t *r, const char *reason)
{
    pthread_mutex_lock(&r->reason_mu);
    snprintf(r->reason, sizeof(r->reason), "%s", reason);
    pthread_mutex_unlock(&r->reason_mu);
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
            ups[i].pop = pop[i];
            ups[i].set_pop = 1;
        }
    }
    int rc = sr_items_apply(r->items, ups, n);
    free(ups);
    if (rc >= 0) atomic_store(&r->last_update_ms, sr_ranker_wall_ms_());
    return rc < 0 ? rc : 0;
}

/* ---- scratch pool ---- */

static sr_scratch_t *scratch_get(sr_ranker_t *r, uint32_t n)
{
    pthread_mutex_lock(&r->pool_mu);
    sr_scratch_t *s = r->pool;
    if (s) r->pool = s->next;
    pthread_mutex_unlock(&r->pool_mu);
    if (!s) {
        s = calloc(1, sizeof(*s));
        if (!s) return NULL;
        s->uvec = malloc((size_t)r->dim * sizeof(float));
        s->svec = malloc((size_t)r->dim * sizeof(float));
        if (!s->uvec || !s->svec) {
            free(s->uvec);
            free(s->svec);
            free(s);
            return NULL;
        }
    }
    if (s->cap < n) {
        uint32_t cap = n + n / 4 + 64;
        float *sc = realloc(s->scores, (size_t)cap * sizeof(float));
        if (!sc) {
            free(s->scores);
            free(s->uvec);
            free(s->svec);
            free(s->user_priv);
            free(s);
            return NULL;
        }
        s->scores = sc;
        s->cap = cap;
    }
    return s;
}

static void scratch_put(sr_ranker_t *r, sr_scratch_t *s)
{
    pthread_mutex_lock(&r->pool_mu);
    s->next = r->pool;
    r->pool = s;
    pthread_mutex_unlock(&r->pool_mu);
}

/* ---- top-K: a bounded min-heap whose root is the worst kept candidate ---- */

typedef struct cand {
    float s;
    uint32_t i;
} cand_t;

/* a ranks below b: lower score, or equal score and later in the catalogue. */
static int worse(cand_t a, cand_t b) { return a.s < b.s || (a.s == b.s && a.i > b.i); }

static void sift_down(cand_t *h, size_t n, size_t j)
{
    for (;;) {
        size_t l = 2 * j + 1, m = j;
        if (l < n && worse(h[l], h[m])) m = l;
        if (l + 1 < n && worse(h[l + 1], h[m])) m = l + 1;
        if (m == j) return;
        cand_t t = h[j];
        h[j] = h[m];
        h[m] = t;
        j = m;
    }
}

static void sift_up(cand_t *h, size_t j)
{
    while (j > 0) {
        size_t p = (j - 1) / 2;
        if (!worse(h[j], h[p])) return;
        cand_t t = h[j];
        h[j] = h[p];
        h[p] = t;
        j = p;
    }
}

static int cmp_better(const void *a, const void *b)
{
    cand_t x = *(const cand_t *)a, y = *(const cand_t *)b;
    if (worse(y, x)) return -1;
    if (worse(x, y)) return 1;
    return 0;
}

/* Best k of scores[0..n) (NaN never wins), skipping skip[] (sorted list of
 * indices, m entries).  Writes up to k candidates best first into h (k
 * slots); returns how many. */
static size_t topk(const float *scores, uint32_t n, size_t k, const uint32_t *skip, size_t m,
                   cand_t *h)
{
    size_t cnt = 0, si = 0;
    if (k == 0) return 0;
    for (uint32_t i = 0; i < n; i++) {
        if (si < m && skip[si] == i) {
            si++;
            continue;
        }
        float s = scores[i];
        if (s != s) continue;
        cand_t c = {s, i};
        if (cnt < k) {
            h[cnt] = c;
            sift_up(h, cnt++);
        } else if (worse(h[0], c)) {
            h[0] = c;
            sift_down(h, cnt, 0);
        }
    }
    qsort(h, cnt, sizeof(*h), cmp_better);
    return cnt;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
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

static int result_from(sr_ranker_result_t *out, const sr_items_view_t *v, const cand_t *c,
                       size_t n)
{
    size_t bytes = 1;
    for (size_t j = 0; j < n; j++) {
        size_t len;
        sr_items_id(v, c[j].i, &len);
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
        const char *id = sr_items_id(v, c[j].i, &len);
        memcpy(p, id, len);
        p[len] = 0;
        out->items[j].id = p;
        out->items[j].id_len = len;
        out->items[j].score = c[j].s;
        p += len + 1;
    }
    out->n = n;
    return 0;
}

/* ---- user signals ---- */

typedef struct usig {
    int personal;        /* has any usable signal */
    size_t n_recent;     /* resolved recent items (index + weight) */
    uint32_t ridx[SR_RANKER_RECENT_MAX];
    float rw[SR_RANKER_RECENT_MAX];
    int rtype[SR_RANKER_RECENT_MAX];
} usig_t;

static int64_t now_ms(const sr_ranker_t *r)
{
    return r->o.now_ms ? r->o.now_ms(r->o.opaque) : sr_ranker_wall_ms_();
}

/* Reads the user and folds the state into the query vector sc->uvec and the
 * resolved recent list.  Returns 0 or the source's error. */
static int load_user(sr_ranker_t *r, const sr_items_view_t *v, const char *user, size_t len,
                     sr_scratch_t *sc, usig_t *sig)
{
    sr_ranker_user_t u = {0};
    u.vec = sc->uvec;
    u.recent = sc->recent;
    memset(sig, 0, offsetof(usig_t, ridx));
    memset(sc->uvec, 0, (size_t)r->dim * sizeof(float));
    if (r->o.get_user) {
        int rc = r->o.get_user(r->o.opaque, user, len, &u);
        if (rc < 0) return rc;
    }
    if (!u.found) return 0;
    if (!u.has_vec) memset(sc->uvec, 0, (size_t)r->dim * sizeof(float));
    if (u.n_recent > SR_RANKER_RECENT_MAX) u.n_recent = SR_RANKER_RECENT_MAX;
    int64_t now = now_ms(r);
    double hl_ms = (double)r->o.recent_half_life_s * 1000.0;
    float *s = sc->svec;
    memset(s, 0, (size_t)r->dim * sizeof(float));
    double wsum = 0;
    for (size_t j = 0; j < u.n_recent; j++) {
        const sr_ranker_recent_t *e = &u.recent[j];
        int32_t i = e->num >= 0 ? sr_items_find_num(v, e->num)
                                : (e->id ? sr_items_find(v, e->id, e->id_len) : -1);
        if (i < 0) continue;
        int t = e->type >= 0 && e->type < 4 ? e->type : 0;
        double age = (double)(now - e->ts_ms);
        if (age < 0) age = 0;
        float w = (float)(r->o.type_weight[t] * exp2(-age / hl_ms));
        sig->ridx[sig->n_recent] = (uint32_t)i;
        sig->rw[sig->n_recent] = w;
        sig->rtype[sig->n_recent] = e->type;
        sig->n_recent++;
        const float *q = v->vec + (size_t)i * v->dim;
        for (int d = 0; d < r->dim; d++) s[d] += w * q[d];
        wsum += w;
    }
    float *uv = sc->uvec;
    if (wsum > 0) {
        float f = (float)(r->o.w_short / wsum);
        for (int d = 0; d < r->dim; d++) uv[d] += f * s[d];
    }
    int nonzero = 0;
    for (int d = 0; d < r->dim; d++) {
        uv[d] *= r->o.w_mf;
        nonzero |= uv[d] != 0.0f;
    }
    sig->personal = nonzero || sig->n_recent > 0;
    return 0;
}

static inline float score_one(const sr_ranker_t *r, const sr_items_view_t *v, const float *uv,
                              uint32_t i)
{
    const float *q = v->vec + (size_t)i * v->dim;
    float dot = 0;
    for (int d = 0; d < v->dim; d++) dot += q[d] * uv[d];
    return r->o.w_bias * v->bias[i] + dot + r->o.w_pop * v->lpop[i];
}

/* Dense scores of every item into out, then the sparse recency bonus. */
static void score_all(const sr_ranker_t *r, const sr_items_view_t *v, const float *uv,
                      const usig_t *sig, float *out)
{
    const int dim = v->dim;
    const float wb = r->o.w_bias, wp = r->o.w_pop;
    for (uint32_t i = 0; i < v->n; i++) {
        const float *q = v->vec + (size_t)i * dim;
        float dot = 0;
        for (int d = 0; d < dim; d++) dot += q[d] * uv[d];
        out[i] = wb * v->bias[i] + dot + wp * v->lpop[i];
    }
    for (size_t j = 0; j < sig->n_recent; j++) out[sig->ridx[j]] += r->o.w_recent * sig->rw[j];
}

/* Cold start and /v1/popular: the popularity order itself. */
static void score_pop(const sr_items_view_t *v, float *out)
{
    memcpy(out, v->pop, (size_t)v->n * sizeof(float));
}

static int check_id(const char *s, size_t len)
{
    return s && len > 0 && len <= 1024 && memchr(s, 0, len) == NULL;
}

int sr_ranker_recommend(sr_ranker_t *r, const char *user, size_t user_len, size_t k,
                        sr_exclude_t exclude, sr_ranker_result_t *out)
{
    memset(out, 0, sizeof(*out));
    if (!r || !check_id(user, user_len) || k == 0 || k > 1000000) return SR_ERR_INVAL;
    sr_items_view_t v;
    int tok = sr_items_enter(r->items, &v);
    sr_scratch_t *sc = scratch_get(r, v.n);
    int rc = SR_ERR_NOMEM;
    cand_t *h = NULL;
    usig_t *sig = NULL;
    if (!sc) goto done;
    sig = malloc(sizeof(*sig));
    if (!sig) goto done;
    rc = load_user(r, &v, user, user_len, sc, sig);
    if (rc < 0) goto done;
    uint32_t skip[SR_RANKER_RECENT_MAX];
    size_t m = 0;
    if (exclude != SR_EXCLUDE_NONE)
        for (size_t j = 0; j < sig->n_recent; j++)
            if (exclude == SR_EXCLUDE_SEEN || sig->rtype[j] == SR_RANKER_PURCHASE)
                skip[m++] = sig->ridx[j];
    qsort(skip, m, sizeof(skip[0]), cmp_u32);
    size_t mm = 0; /* dedupe */
    for (size_t j = 0; j < m; j++)
        if (mm == 0 || skip[mm - 1] != skip[j]) skip[mm++] = skip[j];
    if (sig->personal) {
        score_all(r, &v, sc->uvec, sig, sc->scores);
        out->source = SR_SOURCE_PERSONAL;
    } else {
        score_pop(&v, sc->scores);
        out->source = SR_SOURCE_POPULAR;
    }
    rc = SR_ERR_NOMEM;
    h = malloc((k < v.n ? k : (v.n ? v.n : 1)) * sizeof(*h));
    if (!h) goto done;
    size_t got = topk(sc->scores, v.n, k < v.n ? k : v.n, skip, mm, h);
    rc = result_from(out, &v, h, got);
done:
    free(h);
    free(sig);
    if (sc) scratch_put(r, sc);
    sr_items_leave(r->items, tok);
    return rc;
}

typedef struct rank_row {
    float s;
    uint32_t pos;
    int known;
} rank_row_t;

static int cmp_rank(const void *a, const void *b)
{
    const rank_row_t *x = a, *y = b;
    if (x->known != y->known) return x->known ? -1 : 1;
    if (x->known && x->s != y->s) return x->s > y->s ? -1 : 1;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

int sr_ranker_rank(sr_ranker_t *r, const char *user, size_t user_len, const char *const *items,
                   const size_t *lens, size_t n, sr_ranker_result_t *out)
{
    memset(out, 0, sizeof(*out));
    if (!r || !check_id(user, user_len) || (n && (!items || !lens))) return SR_ERR_INVAL;
    for (size_t j = 0; j < n; j++)
        if (!check_id(items[j], lens[j])) return SR_ERR_INVAL;
    sr_items_view_t v;
    int tok = sr_items_enter(r->items, &v);
    sr_scratch_t *sc = scratch_get(r, 0);
    usig_t *sig = malloc(sizeof(*sig));
    rank_row_t *rows = malloc((n ? n : 1) * sizeof(*rows));
    int rc = SR_ERR_NOMEM;
    if (!sc || !sig || !rows) goto done;
    rc = load_user(r, &v, user, user_len, sc, sig);
    if (rc < 0) goto done;
    out->source = sig->personal ? SR_SOURCE_PERSONAL : SR_SOURCE_POPULAR;
    for (size_t j = 0; j < n; j++) {
        int32_t i = sr_items_find(&v, items[j], lens[j]);
        rows[j].pos = (uint32_t)j;
        rows[j].known = i >= 0;
        rows[j].s = 0;
        if (i < 0) continue;
        if (sig->personal) {
            float s = score_one(r, &v, sc->uvec, (uint32_t)i);
            for (size_t t = 0; t < sig->n_recent; t++)
                if (sig->ridx[t] == (uint32_t)i) s += r->o.w_recent * sig->rw[t];
            rows[j].s = s;
        } else {
            rows[j].s = v.pop[i];
        }
        if (rows[j].s != rows[j].s) rows[j].s = -INFINITY;
    }
    qsort(rows, n, sizeof(*rows), cmp_rank);
    size_t bytes = 1;
    for (size_t j = 0; j < n; j++) bytes += lens[j] + 1;
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
        out->items[j].unknown = !rows[j].known;
        p += lens[src] + 1;
    }
    out->n = n;
    rc = 0;
done:
    free(rows);
    free(sig);
    if (sc) scratch_put(r, sc);
    sr_items_leave(r->items, tok);
    return rc;
}

int sr_ranker_similar(sr_ranker_t *r, const char *item, size_t len, size_t k,
                      sr_ranker_result_t *out)
{
    memset(out, 0, sizeof(*out));
    if (!r || !check_id(item, len) || k == 0 || k > 1000000) return SR_ERR_INVAL;
    sr_items_view_t v;
    int tok = sr_items_enter(r->items, &v);
    int rc = SR_ERR_NOTFOUND;
    sr_scratch_t *sc = NULL;
    cand_t *h = NULL;
    int32_t x = sr_items_find(&v, item, len);
    if (x < 0) goto done;
    rc = SR_ERR_NOMEM;
    sc = scratch_get(r, v.n);
    if (!sc) goto done;
    const float *qx = v.vec + (size_t)x * v.dim;
    float nx = v.norm[x];
    for (uint32_t i = 0; i < v.n; i++) {
        const float *q = v.vec + (size_t)i * v.dim;
        float dot = 0;
        for (int d = 0; d < v.dim; d++) dot += q[d] * qx[d];
        float den = v.norm[i] * nx;
        /* Items without a learned vector have no similarity: rank them last
         * but still deterministically (by popularity, scaled below -1). */
        sc->scores[i] = den > 0 ? dot / den : -2.0f + v.lpop[i] * 1e-6f;
    }
    uint32_t skip = (uint32_t)x;
    size_t kk = k < v.n - 1 ? k : v.n - 1;
    h = malloc((kk ? kk : 1) * sizeof(*h));
    if (!h) goto done;
    size_t got = topk(sc->scores, v.n, kk, &skip, 1, h);
    rc = result_from(out, &v, h, got);
done:
    free(h);
    if (sc) scratch_put(r, sc);
    sr_items_leave(r->items, tok);
    return rc;
}

int sr_ranker_popular(sr_ranker_t *r, size_t k, sr_ranker_result_t *out)
{
    memset(out, 0, sizeof(*out));
    if (!r || k == 0 || k > 1000000) return SR_ERR_INVAL;
    sr_items_view_t v;
    int tok = sr_items_enter(r->items, &v);
    size_t kk = k < v.n ? k : v.n;
    cand_t *h = malloc((kk ? kk : 1) * sizeof(*h));
    int rc = SR_ERR_NOMEM;
    if (h) {
        size_t got = topk(v.pop, v.n, kk, NULL, 0, h);
        rc = result_from(out, &v, h, got);
        out->source = SR_SOURCE_POPULAR;
    }
    free(h);
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
