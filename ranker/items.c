/* Left-right item catalogue (see sr_items.h for why).  Each side is a plain
 * growable table: contiguous matrix and scalars, an id arena, and two
 * open-addressing maps (id -> index, store number -> index).  Only the writer
 * ever touches a side that readers cannot enter, so the side code itself
 * needs no synchronisation; all of it lives in enter/leave/apply. */
#include "sr_items.h"

#include <math.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <time.h>

#include "quant.h"
#include "sr_err.h"

#define ID_LEN_MAX 1024

typedef struct side {
    uint32_t n, cap;
    int dim;
    float *vec;
    int8_t *q8;    /* n x dim int8 copy of vec (quant.h), 64-byte aligned */
    float *qscale; /* n, its per-row scale */
    float *norm;   /* n, the cosine's row norm (sr_items.h) */
    float *bias;
    float *logpop;
    float *count;
    int64_t *num;
    sr_score_nbr_t **nbrs; /* per item, malloc'd, or NULL */
    uint32_t *n_nbrs;
    uint64_t *id_off;
    uint32_t *id_len;
    uint32_t *id_hash;
    char *arena;
    size_t arena_len, arena_cap;
    uint32_t *slots;      /* id map: index + 1, 0 = empty */
    uint32_t nslots;      /* power of two */
    uint32_t *nslots_num; /* number map: index + 1 */
    uint32_t nnum_slots, nnum;
} side_t;

struct sr_items_s {
    side_t side[2];
    _Alignas(64) atomic_int active;
    _Alignas(64) atomic_long readers0;
    _Alignas(64) atomic_long readers1;
    _Alignas(64) pthread_mutex_t wlock;
    int dim;
};

static uint32_t hash_bytes(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    h ^= h >> 29;
    return (uint32_t)(h ^ (h >> 32));
}

static uint32_t hash_num(int64_t num)
{
    uint64_t x = (uint64_t)num * 0x9E3779B97F4A7C15ULL;
    return (uint32_t)(x >> 32);
}

static void side_free(side_t *s)
{
    free(s->vec);
    free(s->q8);
    free(s->qscale);
    free(s->norm);
    free(s->bias);
    free(s->logpop);
    free(s->count);
    free(s->num);
    for (uint32_t i = 0; i < s->n; i++)
        free(s->nbrs[i]);
    free(s->nbrs);
    free(s->n_nbrs);
    free(s->id_off);
    free(s->id_len);
    free(s->id_hash);
    free(s->arena);
    free(s->slots);
    free(s->nslots_num);
    memset(s, 0, sizeof(*s));
}

static int side_grow_rows(side_t *s, uint32_t want)
{
    if (want <= s->cap) return 0;
    uint32_t cap = s->cap ? s->cap : 1024;
    while (cap < want)
        cap *= 2;
    size_t rowb = (size_t)s->dim * sizeof(float);
    /* The matrix must stay 64-byte aligned for vector loads, so it is
     * reallocated by hand rather than with realloc. */
    size_t bytes = ((size_t)cap * rowb + 63) / 64 * 64;
    float *vec = aligned_alloc(64, bytes);
    if (!vec) return SR_ERR_NOMEM;
    if (s->n) memcpy(vec, s->vec, (size_t)s->n * rowb);
    free(s->vec);
    s->vec = vec;
    size_t qbytes = ((size_t)cap * (size_t)s->dim + 63) / 64 * 64;
    int8_t *q8 = aligned_alloc(64, qbytes);
    if (!q8) return SR_ERR_NOMEM;
    if (s->n) memcpy(q8, s->q8, (size_t)s->n * (size_t)s->dim);
    free(s->q8);
    s->q8 = q8;
#define GROW_(field)                                                                               \
    do {                                                                                           \
        void *p_ = realloc(s->field, (size_t)cap * sizeof(*s->field));                             \
        if (!p_) return SR_ERR_NOMEM;                                                              \
        s->field = p_;                                                                             \
    } while (0)
    GROW_(qscale);
    GROW_(norm);
    GROW_(bias);
    GROW_(logpop);
    GROW_(count);
    GROW_(num);
    GROW_(nbrs);
    GROW_(n_nbrs);
    GROW_(id_off);
    GROW_(id_len);
    GROW_(id_hash);
#undef GROW_
    s->cap = cap;
    return 0;
}

static int side_rehash_ids(side_t *s, uint32_t nslots)
{
    uint32_t *slots = calloc(nslots, sizeof(*slots));
    if (!slots) return SR_ERR_NOMEM;
    for (uint32_t i = 0; i < s->n; i++) {
        uint32_t j = s->id_hash[i] & (nslots - 1);
        while (slots[j])
            j = (j + 1) & (nslots - 1);
        slots[j] = i + 1;
    }
    free(s->slots);
    s->slots = slots;
    s->nslots = nslots;
    return 0;
}

static int side_rehash_nums(side_t *s, uint32_t nslots)
{
    uint32_t *slots = calloc(nslots, sizeof(*slots));
    if (!slots) return SR_ERR_NOMEM;
    for (uint32_t i = 0; i < s->n; i++) {
        if (s->num[i] < 0) continue;
        uint32_t j = hash_num(s->num[i]) & (nslots - 1);
        while (slots[j])
            j = (j + 1) & (nslots - 1);
        slots[j] = i + 1;
    }
    free(s->nslots_num);
    s->nslots_num = slots;
    s->nnum_slots = nslots;
    return 0;
}

static int32_t side_find(const side_t *s, const char *id, size_t len, uint32_t h)
{
    if (!s->nslots) return -1;
    uint32_t j = h & (s->nslots - 1);
    for (;;) {
        uint32_t e = s->slots[j];
        if (!e) return -1;
        uint32_t i = e - 1;
        if (s->id_hash[i] == h && s->id_len[i] == len &&
            memcmp(s->arena + s->id_off[i], id, len) == 0)
            return (int32_t)i;
        j = (j + 1) & (s->nslots - 1);
    }
}

static int32_t side_find_num(const side_t *s, int64_t num)
{
    if (!s->nnum_slots || num < 0) return -1;
    uint32_t j = hash_num(num) & (s->nnum_slots - 1);
    for (;;) {
        uint32_t e = s->nslots_num[j];
        if (!e) return -1;
        if (s->num[e - 1] == num) return (int32_t)(e - 1);
        j = (j + 1) & (s->nnum_slots - 1);
    }
}

static int side_add_num(side_t *s, uint32_t i)
{
    if ((s->nnum + 1) * 2 > s->nnum_slots) {
        int rc = side_rehash_nums(s, s->nnum_slots ? s->nnum_slots * 2 : 2048);
        if (rc) return rc;
    } else {
        uint32_t j = hash_num(s->num[i]) & (s->nnum_slots - 1);
        while (s->nslots_num[j])
            j = (j + 1) & (s->nnum_slots - 1);
        s->nslots_num[j] = i + 1;
    }
    s->nnum++;
    return 0;
}

/* Replaces item's neighbour list, resolving ids in this side. */
static int side_set_nbrs(side_t *s, const sr_item_update_t *u)
{
    int32_t i = side_find(s, u->id, u->id_len, hash_bytes(u->id, u->id_len));
    if (i < 0) return 0;
    sr_score_nbr_t *l = NULL;
    uint32_t n = 0;
    if (u->n_nbrs) {
        l = malloc(u->n_nbrs * sizeof(*l));
        if (!l) return SR_ERR_NOMEM;
        for (size_t j = 0; j < u->n_nbrs; j++) {
            const sr_item_nbr_in_t *e = &u->nbrs[j];
            int32_t x = side_find(s, e->id, e->id_len, hash_bytes(e->id, e->id_len));
            if (x < 0) continue;
            l[n].item = x;
            l[n].count = e->count;
            n++;
        }
    }
    free(s->nbrs[i]);
    s->nbrs[i] = l;
    s->n_nbrs[i] = n;
    return 0;
}

/* The norm sr_score_similar divides by, with its exact expression: the
 * same function on the same floats gives the same bits. */
static float row_norm(const float *q, int dim)
{
    return sqrtf(sr_dot(q, q, dim)) + 1e-12f;
}

/* Inserts or overwrites one item in a side no reader can see. */
static int side_apply(side_t *s, const sr_item_update_t *u)
{
    uint32_t h = hash_bytes(u->id, u->id_len);
    int32_t i = side_find(s, u->id, u->id_len, h);
    int fresh = i < 0;
    if (fresh) {
        int rc = side_grow_rows(s, s->n + 1);
        if (rc) return rc;
        if (s->arena_len + u->id_len > s->arena_cap) {
            size_t cap = s->arena_cap ? s->arena_cap : 65536;
            while (cap < s->arena_len + u->id_len)
                cap *= 2;
            char *a = realloc(s->arena, cap);
            if (!a) return SR_ERR_NOMEM;
            s->arena = a;
            s->arena_cap = cap;
        }
        if ((s->n + 1) * 2 > s->nslots) {
            /* Grow the map before the row exists so a failure leaves the
             * side unchanged. */
            uint32_t ns = s->nslots ? s->nslots * 2 : 2048;
            int rc2 = side_rehash_ids(s, ns);
            if (rc2) return rc2;
        }
        i = (int32_t)s->n;
        memcpy(s->arena + s->arena_len, u->id, u->id_len);
        s->id_off[i] = s->arena_len;
        s->id_len[i] = (uint32_t)u->id_len;
        s->id_hash[i] = h;
        s->arena_len += u->id_len;
        memset(s->vec + (size_t)i * s->dim, 0, (size_t)s->dim * sizeof(float));
        memset(s->q8 + (size_t)i * s->dim, 0, (size_t)s->dim);
        s->qscale[i] = 0;
        s->norm[i] = row_norm(s->vec + (size_t)i * s->dim, s->dim);
        s->bias[i] = 0;
        s->logpop[i] = -INFINITY;
        s->count[i] = 0;
        s->nbrs[i] = NULL;
        s->n_nbrs[i] = 0;
        s->num[i] = -1;
        uint32_t j = h & (s->nslots - 1);
        while (s->slots[j])
            j = (j + 1) & (s->nslots - 1);
        s->slots[j] = (uint32_t)i + 1;
        s->n++;
    }
    if (u->vec) {
        memcpy(s->vec + (size_t)i * s->dim, u->vec, (size_t)s->dim * sizeof(float));
        s->qscale[i] = sr_quant_row_(u->vec, s->dim, s->q8 + (size_t)i * s->dim);
        s->norm[i] = row_norm(s->vec + (size_t)i * s->dim, s->dim);
    }
    if (u->set_bias) s->bias[i] = u->bias;
    if (u->set_logpop) s->logpop[i] = u->logpop;
    if (u->set_count) s->count[i] = u->count;
    if (u->num >= 0 && s->num[i] != u->num) {
        /* A number is assigned once per item by the store; an item that
         * changes number keeps its old map entry unreachable but harmless
         * because lookups compare the stored number. */
        s->num[i] = u->num;
        int rc = side_add_num(s, (uint32_t)i);
        if (rc) return rc;
    }
    return 0;
}

sr_items_t *sr_items_new(int dim)
{
    if (dim < 1 || dim > 1024) return NULL;
    sr_items_t *it = calloc(1, sizeof(*it));
    if (!it) return NULL;
    it->dim = dim;
    it->side[0].dim = it->side[1].dim = dim;
    atomic_init(&it->active, 0);
    atomic_init(&it->readers0, 0);
    atomic_init(&it->readers1, 0);
    pthread_mutex_init(&it->wlock, NULL);
    return it;
}

void sr_items_destroy(sr_items_t *it)
{
    if (!it) return;
    side_free(&it->side[0]);
    side_free(&it->side[1]);
    pthread_mutex_destroy(&it->wlock);
    free(it);
}

int sr_items_dim(const sr_items_t *it)
{
    return it->dim;
}

static atomic_long *readers_of(sr_items_t *it, int side)
{
    return side ? &it->readers1 : &it->readers0;
}

int sr_items_enter(sr_items_t *it, sr_items_view_t *v)
{
    int a;
    for (;;) {
        a = atomic_load(&it->active);
        atomic_fetch_add(readers_of(it, a), 1);
        /* The writer may have flipped between our load and our increment
         * and already seen zero readers on this side; re-checking after the
         * increment (seq_cst) closes that window. */
        if (atomic_load(&it->active) == a) break;
        atomic_fetch_sub(readers_of(it, a), 1);
    }
    const side_t *s = &it->side[a];
    v->n = s->n;
    v->dim = s->dim;
    v->vec = s->vec;
    v->q8 = s->q8;
    v->qscale = s->qscale;
    v->norm = s->norm;
    v->bias = s->bias;
    v->logpop = s->logpop;
    v->count = s->count;
    v->num = s->num;
    v->priv_ = s;
    return a;
}

void sr_items_leave(sr_items_t *it, int token)
{
    atomic_fetch_sub_explicit(readers_of(it, token), 1, memory_order_release);
}

int32_t sr_items_find(const sr_items_view_t *v, const char *id, size_t len)
{
    return side_find(v->priv_, id, len, hash_bytes(id, len));
}

void sr_items_find_many(const sr_items_view_t *v, const char *const *ids, const size_t *lens,
                        size_t n, int32_t *out)
{
    const side_t *s = v->priv_;
    enum { CHUNK = 32 };
    uint32_t h[CHUNK];
    if (!s->nslots) {
        for (size_t j = 0; j < n; j++)
            out[j] = -1;
        return;
    }
    /* Each lookup is a chain of dependent cache misses (slot, then the
     * row's hash, length and offset, then the id bytes): walk a chunk of
     * them one step at a time, prefetching the next step of all, so the
     * misses overlap instead of queueing one after another. */
    for (size_t b = 0; b < n; b += CHUNK) {
        size_t m = n - b < CHUNK ? n - b : CHUNK;
        for (size_t j = 0; j < m; j++) {
            h[j] = hash_bytes(ids[b + j], lens[b + j]);
            __builtin_prefetch(&s->slots[h[j] & (s->nslots - 1)]);
        }
        for (size_t j = 0; j < m; j++) {
            uint32_t e = s->slots[h[j] & (s->nslots - 1)];
            if (!e) continue;
            __builtin_prefetch(&s->id_hash[e - 1]);
            __builtin_prefetch(&s->id_len[e - 1]);
            __builtin_prefetch(&s->id_off[e - 1]);
        }
        for (size_t j = 0; j < m; j++) {
            uint32_t e = s->slots[h[j] & (s->nslots - 1)];
            if (e) __builtin_prefetch(s->arena + s->id_off[e - 1]);
        }
        for (size_t j = 0; j < m; j++)
            out[b + j] = side_find(s, ids[b + j], lens[b + j], h[j]);
    }
}

int32_t sr_items_find_num(const sr_items_view_t *v, int64_t num)
{
    return side_find_num(v->priv_, num);
}

const char *sr_items_id(const sr_items_view_t *v, uint32_t i, size_t *len)
{
    const side_t *s = v->priv_;
    *len = s->id_len[i];
    return s->arena + s->id_off[i];
}

static const sr_score_nbr_t *side_nbrs(const void *opaque, int32_t item, size_t *n)
{
    const side_t *s = opaque;
    if (item < 0 || (uint32_t)item >= s->n) {
        *n = 0;
        return NULL;
    }
    *n = s->n_nbrs[item];
    return s->nbrs[item];
}

void sr_items_score_items(const sr_items_view_t *v, sr_score_items_t *it)
{
    it->dim = v->dim;
    it->n_items = v->n;
    it->q = v->vec;
    it->bias = v->bias;
    it->logpop = v->logpop;
    it->count = v->count;
    it->nbrs = side_nbrs;
    it->nbrs_opaque = v->priv_;
}

static void wait_readers(sr_items_t *it, int side)
{
    struct timespec ts = {0, 20000};
    for (int spins = 0; atomic_load_explicit(readers_of(it, side), memory_order_acquire) != 0;
         spins++) {
        if (spins < 64)
            sched_yield();
        else
            nanosleep(&ts, NULL);
    }
}

int sr_items_apply(sr_items_t *it, const sr_item_update_t *ups, size_t n)
{
    pthread_mutex_lock(&it->wlock);
    int a = atomic_load(&it->active);
    int idle = 1 - a;
    size_t done = 0;
    int rc = 0, applied = 0;
    for (; done < n; done++) {
        const sr_item_update_t *u = &ups[done];
        if (!u->id || u->id_len == 0 || u->id_len > ID_LEN_MAX) continue;
        rc = side_apply(&it->side[idle], u);
        if (rc) break;
        applied++;
    }
    for (size_t i = 0; i < done && !rc; i++)
        if (ups[i].set_nbrs && ups[i].id && ups[i].id_len && ups[i].id_len <= ID_LEN_MAX)
            rc = side_set_nbrs(&it->side[idle], &ups[i]);
    /* Publish, let the readers of the old side drain, then bring the old side
     * to the same state.  On ENOMEM the prefix applied so far is published so
     * the two sides never diverge. */
    atomic_store(&it->active, idle);
    wait_readers(it, a);
    for (size_t i = 0; i < done; i++) {
        const sr_item_update_t *u = &ups[i];
        if (!u->id || u->id_len == 0 || u->id_len > ID_LEN_MAX) continue;
        int rc2 = side_apply(&it->side[a], u);
        if (rc2 && !rc) rc = rc2;
    }
    for (size_t i = 0; i < done; i++)
        if (ups[i].set_nbrs && ups[i].id && ups[i].id_len && ups[i].id_len <= ID_LEN_MAX) {
            int rc2 = side_set_nbrs(&it->side[a], &ups[i]);
            if (rc2 && !rc) rc = rc2;
        }
    pthread_mutex_unlock(&it->wlock);
    return rc ? rc : applied;
}

uint32_t sr_items_count(sr_items_t *it)
{
    sr_items_view_t v;
    int t = sr_items_enter(it, &v);
    uint32_t n = v.n;
    sr_items_leave(it, t);
    return n;
}
