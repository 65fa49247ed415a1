/* The trainer's Redis side: stored offsets, batched warm loads of users
 * and items, and the one atomic flush (store/sr_store.h), with the model's
 * state export/import (model/sr_model_state.h) in between.
 *
 * Items are shared by every trainer of the group, so each in-memory item
 * keeps a "base": the value Redis held when this trainer last loaded or
 * flushed it.  A flush sends base and current value; Redis stores the
 * current value bit for bit when it still holds base (one trainer: a crash
 * and reload continue exactly as if nothing happened) and base + delta
 * otherwise (several trainers: both updates survive).  The merged value
 * comes back and becomes the model's value and the new base.
 *
 * Users are owned by their partition, so a flush simply replaces them; but
 * after any rebalance a user in memory may have been trained elsewhere
 * meanwhile, so every user is reloaded before its next update once the
 * assignment changed (t->user_gen). */
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sr_err.h"
#include "sr_log.h"
#include "sr_model_state.h"
#include "sr_store.h"
#include "trainer_int.h"

/* What Redis held for an item when this trainer last loaded or flushed
 * it, byte for byte once encoded (the flush script compares blobs). */
typedef struct item_base {
    int exists;
    float bias, bias_acc, acc;
    double pop;
    int has_pop;
    char *extra;
    size_t extra_len, extra_cap;
} item_base_t;

/* A chunked bump allocator for one flush's temporary records: pointers
 * stay valid until the reset (no realloc moves them). */
typedef struct arena_blk {
    struct arena_blk *next;
    size_t used, cap;
    char mem[];
} arena_blk_t;

typedef struct arena {
    arena_blk_t *head, *cur;
} arena_t;

static void *arena_alloc(arena_t *a, size_t n)
{
    n = (n + 7) & ~(size_t)7;
    for (;;) {
        if (a->cur && a->cur->cap - a->cur->used >= n) {
            void *p = a->cur->mem + a->cur->used;
            a->cur->used += n;
            return p;
        }
        if (a->cur && a->cur->next) {
            a->cur = a->cur->next;
            a->cur->used = 0;
            continue;
        }
        size_t cap = n > (1u << 20) ? n : (1u << 20);
        arena_blk_t *b = malloc(sizeof(*b) + cap);
        if (!b) return NULL;
        b->next = NULL;
        b->used = 0;
        b->cap = cap;
        if (a->cur) a->cur->next = b;
        else a->head = b;
        a->cur = b;
    }
}

static void arena_reset(arena_t *a)
{
    a->cur = a->head;
    if (a->cur) a->cur->used = 0;
}

static void arena_free(arena_t *a)
{
    for (arena_blk_t *b = a->head, *n; b; b = n) {
        n = b->next;
        free(b);
    }
    a->head = a->cur = NULL;
}

struct sr_trainer_state_s {
    sr_store_t *store;
    sr_store_opts_t opts;
    sr_redis_url_t url;
    char *prefix;
    int dim;
    sr_model_params_t params;

    uint32_t *user_gen; /* per dense user index: t->user_gen + 1 when loaded */
    size_t user_gen_cap;

    item_base_t *ib; /* per dense item index */
    float *ib_vec;   /* dim floats per item */
    size_t ib_cap;
    int all_items_loaded; /* the start-up load of every item and the global state */

    arena_t arena;
    sr_user_state_t us; /* export/import scratch (large: lists inline) */
    sr_item_state_t is;
    sr_global_state_t gs;

    /* warm-load scratch */
    const char **ids;
    size_t *lens;
    sr_store_user_t *uout;
    sr_store_item_t *iout;
    size_t ids_cap;

    /* flush scratch */
    sr_store_user_t *fu;
    sr_store_item_t *fcur, *fbase;
    sr_store_item_write_t *fi;
    int32_t *fidx;
    size_t fu_cap, fi_cap;
    sr_store_offset_t *fo;
    size_t fo_cap;
};

static int store_connect(sr_trainer_t *t, char *errstr, size_t errstr_size)
{
    struct sr_trainer_state_s *st = t->st;
    if (st->store) return 0;
    st->store = sr_store_new(&st->opts, errstr, errstr_size);
    return st->store ? 0 : SR_ERR_UNAVAIL;
}

/* Every store call goes through here: connect lazily (Redis may be down at
 * start), and map the store's retryable errors onto SR_ERR_UNAVAIL for the
 * callers' retry loops. */
static int ensure_store(sr_trainer_t *t)
{
    char err[256];
    if (store_connect(t, err, sizeof(err)) != 0) {
        sr_log(SR_LOG_WARN, "trainer: redis: %s", err);
        return SR_ERR_UNAVAIL;
    }
    return 0;
}

static int map_err(sr_trainer_t *t, int rc, const char *what)
{
    if (rc >= 0) return rc;
    sr_log(SR_LOG_WARN, "trainer: redis %s: %s (%s)", what, sr_strerror(rc),
           sr_store_errstr(t->st->store));
    return sr_store_err_retryable(rc) ? SR_ERR_UNAVAIL : rc;
}

int sr_trainer_state_init_(sr_trainer_t *t, const sr_conf_t *conf, char *errstr,
                           size_t errstr_size)
{
    struct sr_trainer_state_s *st = calloc(1, sizeof(*st));
    if (!st) return SR_ERR_NOMEM;
    t->st = st;
    if (sr_redis_url_parse(sr_conf_str(conf, "redis.url"), &st->url, errstr, errstr_size) != 0)
        return SR_ERR_INVAL;
    st->prefix = strdup(sr_conf_str(conf, "redis.prefix"));
    if (!st->prefix) {
        snprintf(errstr, errstr_size, "out of memory");
        return SR_ERR_NOMEM;
    }
    sr_store_opts_init(&st->opts);
    st->opts.host = st->url.host;
    st->opts.port = st->url.port;
    st->opts.password = st->url.password;
    st->opts.db = st->url.db;
    st->opts.prefix = st->prefix;
    st->opts.timeout_ms = (int)sr_conf_int(conf, "redis.timeout.ms");
    st->params = *sr_model_params(t->model);
    st->dim = st->params.dim;
    /* A reachable Redis with another schema is a configuration error worth
     * failing on now; an unreachable one is waited for by run. */
    char err[256];
    if (store_connect(t, err, sizeof(err)) != 0) {
        if (strstr(err, "schema")) {
            snprintf(errstr, errstr_size, "%s", err);
            return SR_ERR_VERSION;
        }
        sr_log(SR_LOG_WARN, "trainer: redis not reachable yet (%s); will retry", err);
    }
    return 0;
}

void sr_trainer_state_fini_(sr_trainer_t *t)
{
    struct sr_trainer_state_s *st = t->st;
    if (!st) return;
    sr_store_destroy(st->store);
    free(st->prefix);
    free(st->user_gen);
    for (size_t i = 0; i < st->ib_cap; i++) free(st->ib[i].extra);
    free(st->ib);
    free(st->ib_vec);
    arena_free(&st->arena);
    free(st->ids);
    free(st->lens);
    free(st->uout);
    free(st->iout);
    free(st->fu);
    free(st->fcur);
    free(st->fbase);
    free(st->fi);
    free(st->fidx);
    free(st->fo);
    free(st);
    t->st = NULL;
}

int sr_trainer_load_offsets_(sr_trainer_t *t, const int32_t *ids, size_t n, int64_t *offs)
{
    int rc = ensure_store(t);
    if (rc != 0) return rc;
    if (n == 0) return 0;
    rc = sr_store_get_offsets(t->st->store, t->group, t->topic_events, ids, n, offs);
    if (rc != 0) return map_err(t, rc, "get offsets");
    for (size_t i = 0; i < n; i++)
        if (offs[i] < 0) offs[i] = -1;
    return 0;
}

/* ---- growable per-index arrays ---- */

static int grow_users(struct sr_trainer_state_s *st, size_t n)
{
    if (n <= st->user_gen_cap) return 0;
    size_t cap = st->user_gen_cap ? st->user_gen_cap : 1024;
    while (cap < n) cap *= 2;
    uint32_t *g = realloc(st->user_gen, cap * sizeof(*g));
    if (!g) return SR_ERR_NOMEM;
    memset(g + st->user_gen_cap, 0, (cap - st->user_gen_cap) * sizeof(*g));
    st->user_gen = g;
    st->user_gen_cap = cap;
    return 0;
}

static int grow_items(struct sr_trainer_state_s *st, size_t n)
{
    if (n <= st->ib_cap) return 0;
    size_t cap = st->ib_cap ? st->ib_cap : 1024;
    while (cap < n) cap *= 2;
    item_base_t *ib = realloc(st->ib, cap * sizeof(*ib));
    if (!ib) return SR_ERR_NOMEM;
    memset(ib + st->ib_cap, 0, (cap - st->ib_cap) * sizeof(*ib));
    st->ib = ib;
    float *v = realloc(st->ib_vec, cap * (size_t)st->dim * sizeof(float));
    if (!v) return SR_ERR_NOMEM;
    st->ib_vec = v;
    memset(st->ib_vec + st->ib_cap * st->dim, 0,
           (cap - st->ib_cap) * (size_t)st->dim * sizeof(float));
    st->ib_cap = cap;
    return 0;
}

static int grow_ids(struct sr_trainer_state_s *st, size_t n)
{
    if (n <= st->ids_cap) return 0;
    size_t cap = st->ids_cap ? st->ids_cap : 256;
    while (cap < n) cap *= 2;
    const char **ids = realloc(st->ids, cap * sizeof(*ids));
    if (ids) st->ids = ids;
    size_t *lens = realloc(st->lens, cap * sizeof(*lens));
    if (lens) st->lens = lens;
    sr_store_user_t *u = realloc(st->uout, cap * sizeof(*u));
    if (u) st->uout = u;
    sr_store_item_t *it = realloc(st->iout, cap * sizeof(*it));
    if (it) st->iout = it;
    if (!ids || !lens || !u || !it) return SR_ERR_NOMEM;
    st->ids_cap = cap;
    return 0;
}

/* Remembers what Redis holds for item index i (after a load or a flush). */
static int set_base(struct sr_trainer_state_s *st, int32_t i, const sr_store_item_t *v)
{
    item_base_t *b = &st->ib[i];
    b->exists = v->exists;
    b->bias = v->bias;
    b->bias_acc = v->bias_acc;
    b->acc = v->n_acc ? v->acc[0] : 0;
    b->has_pop = v->has_pop;
    b->pop = v->pop;
    float *bv = st->ib_vec + (size_t)i * st->dim;
    if (v->vec && v->dim == st->dim) memcpy(bv, v->vec, (size_t)st->dim * sizeof(float));
    else memset(bv, 0, (size_t)st->dim * sizeof(float));
    if (v->extra_len > b->extra_cap) {
        char *x = realloc(b->extra, v->extra_len);
        if (!x) return SR_ERR_NOMEM;
        b->extra = x;
        b->extra_cap = v->extra_len;
    }
    if (v->extra_len) memcpy(b->extra, v->extra, v->extra_len);
    b->extra_len = v->extra_len;
    return 0;
}

/* ---- model state <-> store records ----
 *
 * The store knows users and items as vectors, accumulators, counters and
 * an opaque `extra` blob; the model's item state has more (exact scaled
 * popularity, co-occurrence count and neighbours, its dense index), which
 * travels in extra:
 *   u32 'SRX1' magic, u32 dense index, f64 pop_scaled, f32 count,
 *   u32 n_nbrs, then per neighbour: u16 id length, id bytes, f32 count.
 * Little-endian (the machine's; x86/arm64).  The dense index lets a
 * restarted trainer recreate items in the original order, which negative
 * sampling depends on (sr_model_state.h, rule 1). */
#define EXTRA_MAGIC 0x31585253u /* "SRX1" */

static int export_user(sr_trainer_t *t, uint32_t u, sr_store_user_t *out)
{
    struct sr_trainer_state_s *st = t->st;
    sr_user_state_t *us = &st->us;
    int rc = sr_model_export_user(t->model, u, us);
    if (rc < 0) return rc;
    float *acc = arena_alloc(&st->arena, sizeof(float));
    sr_store_recent_t *rec =
        us->n_recent ? arena_alloc(&st->arena, us->n_recent * sizeof(*rec)) : NULL;
    if (!acc || (us->n_recent && !rec)) return SR_ERR_NOMEM;
    *acc = us->acc;
    for (size_t j = 0; j < us->n_recent; j++)
        rec[j] = (sr_store_recent_t){.num = 0,
                                     .item_id = us->recent[j].item,
                                     .item_id_len = us->recent[j].item_len,
                                     .ts_ms = us->recent[j].ts_ms,
                                     .type = (uint8_t)us->recent[j].type};
    *out = (sr_store_user_t){.id = us->id,
                             .id_len = us->id_len,
                             .exists = 1,
                             .dim = (uint16_t)us->dim,
                             .n_acc = 1,
                             .vec = us->vec,
                             .acc = acc,
                             .events = us->events,
                             .last_ts_ms = us->last_ts_ms,
                             .n_recent = (uint32_t)us->n_recent,
                             .recent = rec};
    return 0;
}

static int import_user(sr_trainer_t *t, const char *id, size_t len, const sr_store_user_t *in)
{
    sr_user_state_t *us = &t->st->us;
    us->id = id;
    us->id_len = len;
    us->dim = in->dim;
    us->vec = in->vec;
    us->acc = in->n_acc ? in->acc[0] : 0;
    us->events = in->events;
    us->last_ts_ms = in->last_ts_ms;
    us->n_recent = 0;
    for (uint32_t j = 0; j < in->n_recent && us->n_recent < SR_RECENT_MAX; j++) {
        const sr_store_recent_t *r = &in->recent[j];
        if (!r->item_id) continue; /* a number Redis cannot name: corrupt index */
        us->recent[us->n_recent++] = (sr_state_recent_t){
            .item = r->item_id, .item_len = r->item_id_len, .ts_ms = r->ts_ms,
            .type = (sr_event_type_t)r->type};
    }
    return sr_model_import_user(t->model, us);
}

/* Resets a user that Redis does not know to the state of a new user. */
static int reset_user(sr_trainer_t *t, const char *id, size_t len)
{
    if (sr_model_find_user(t->model, id, len) < 0) return 0;
    sr_user_state_t *us = &t->st->us;
    static const float zeros[SR_STORE_DIM_MAX];
    memset(us, 0, offsetof(sr_user_state_t, recent));
    us->id = id;
    us->id_len = len;
    us->dim = t->st->dim;
    us->vec = zeros;
    int32_t r = sr_model_import_user(t->model, us);
    return r < 0 ? r : 0;
}

static void put_u32(char *p, uint32_t v) { memcpy(p, &v, 4); }

static int export_item(sr_trainer_t *t, uint32_t i, sr_store_item_t *out)
{
    struct sr_trainer_state_s *st = t->st;
    sr_item_state_t *is = &st->is;
    int rc = sr_model_export_item(t->model, i, is);
    if (rc < 0) return rc;
    size_t xl = 4 + 4 + 8 + 4 + 4;
    for (size_t j = 0; j < is->n_nbrs; j++) xl += 2 + is->nbrs[j].item_len + 4;
    char *x = arena_alloc(&st->arena, xl);
    float *acc = arena_alloc(&st->arena, sizeof(float));
    if (!x || !acc) return SR_ERR_NOMEM;
    *acc = is->acc;
    char *p = x;
    put_u32(p, EXTRA_MAGIC), p += 4;
    put_u32(p, is->index), p += 4;
    memcpy(p, &is->pop_scaled, 8), p += 8;
    memcpy(p, &is->count, 4), p += 4;
    put_u32(p, (uint32_t)is->n_nbrs), p += 4;
    for (size_t j = 0; j < is->n_nbrs; j++) {
        uint16_t l = (uint16_t)is->nbrs[j].item_len;
        memcpy(p, &l, 2), p += 2;
        memcpy(p, is->nbrs[j].item, l), p += l;
        memcpy(p, &is->nbrs[j].count, 4), p += 4;
    }
    *out = (sr_store_item_t){.id = is->id,
                             .id_len = is->id_len,
                             .exists = 1,
                             .dim = (uint16_t)is->dim,
                             .n_acc = 1,
                             .bias = is->bias,
                             .bias_acc = is->bias_acc,
                             .vec = is->vec,
                             .acc = acc,
                             .extra = x,
                             .extra_len = xl,
                             .has_pop = 1,
                             /* scaled to the global reference time, so scores of
                              * items flushed at different times compare (REDIS.md) */
                             .pop = is->pop_scaled};
    return 0;
}

/* Parses extra into st->is (neighbour ids point into it); the dense index
 * it carries into *index.  0 or SR_ERR_CORRUPT. */
static int parse_extra(struct sr_trainer_state_s *st, const sr_store_item_t *in, uint32_t *index)
{
    sr_item_state_t *is = &st->is;
    const char *p = in->extra, *end = p + in->extra_len;
    uint32_t magic, n;
    is->pop_scaled = 0;
    is->count = 0;
    is->n_nbrs = 0;
    *index = UINT32_MAX;
    if (in->extra_len == 0) return 0; /* written by someone else: no extras */
    if (in->extra_len < 24) return SR_ERR_CORRUPT;
    memcpy(&magic, p, 4), p += 4;
    if (magic != EXTRA_MAGIC) return SR_ERR_CORRUPT;
    memcpy(index, p, 4), p += 4;
    memcpy(&is->pop_scaled, p, 8), p += 8;
    memcpy(&is->count, p, 4), p += 4;
    memcpy(&n, p, 4), p += 4;
    if (n > SR_COOC_MAX) return SR_ERR_CORRUPT;
    for (uint32_t j = 0; j < n; j++) {
        uint16_t l;
        if (end - p < 2) return SR_ERR_CORRUPT;
        memcpy(&l, p, 2), p += 2;
        if ((size_t)(end - p) < (size_t)l + 4) return SR_ERR_CORRUPT;
        is->nbrs[j].item = p;
        is->nbrs[j].item_len = l;
        p += l;
        memcpy(&is->nbrs[j].count, p, 4), p += 4;
    }
    is->n_nbrs = n;
    return p == end ? 0 : SR_ERR_CORRUPT;
}

static int32_t import_item(sr_trainer_t *t, const char *id, size_t len, const sr_store_item_t *in)
{
    struct sr_trainer_state_s *st = t->st;
    sr_item_state_t *is = &st->is;
    uint32_t index;
    if (parse_extra(st, in, &index) != 0) return SR_ERR_CORRUPT;
    is->id = id;
    is->id_len = len;
    is->dim = in->dim;
    is->vec = in->vec;
    is->acc = in->n_acc ? in->acc[0] : 0;
    is->bias = in->bias;
    is->bias_acc = in->bias_acc;
    int32_t r = sr_model_import_item(t->model, is);
    if (r >= 0) {
        int rc = grow_items(st, (size_t)r + 1);
        if (rc == 0) rc = set_base(st, r, in);
        if (rc != 0) return rc;
        /* Popularity deltas are our model's own change since this point
         * (its value is ours, other trainers add theirs in Redis). */
        if (sr_model_export_item(t->model, (uint32_t)r, is) == 0) {
            st->ib[r].pop = is->pop_scaled;
            st->ib[r].has_pop = 1;
        }
    }
    return r;
}

/* ---- start-up load ----
 *
 * Before the first event, every item in Redis is recreated in the order of
 * the dense index it had in the model that wrote it, then the global state
 * (blend weights, clocks, sampler ring) is imported: with one trainer this
 * restores exactly the model that flushed last (sr_model_state.h rule 1),
 * and with several it gives the sampler and the live evaluation the whole
 * catalogue.  Items written later by other trainers are loaded lazily. */
typedef struct load_ent {
    uint32_t index, pos;
} load_ent_t;

static int cmp_load(const void *a, const void *b)
{
    const load_ent_t *x = a, *y = b;
    if (x->index != y->index) return x->index < y->index ? -1 : 1;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

static int load_all(sr_trainer_t *t)
{
    struct sr_trainer_state_s *st = t->st;
    int rc = ensure_store(t);
    if (rc != 0) return rc;
    sr_store_items_t *all = NULL;
    if ((rc = sr_store_load_items(st->store, &all)) != 0) return map_err(t, rc, "load items");
    uint32_t n = all->n;
    load_ent_t *ord = malloc((n ? n : 1) * sizeof(*ord));
    sr_store_item_t *recs = malloc((n ? n : 1) * sizeof(*recs));
    const char **ids = malloc((n ? n : 1) * sizeof(*ids));
    size_t *lens = malloc((n ? n : 1) * sizeof(*lens));
    if (!ord || !recs || !ids || !lens) {
        rc = SR_ERR_NOMEM;
        goto out;
    }
    for (uint32_t i = 0; i < n; i++) {
        ids[i] = all->id_buf + all->id_off[i];
        lens[i] = all->id_len[i];
    }
    long r = n ? sr_store_get_items(st->store, ids, lens, n, recs) : 0;
    if (r < 0) {
        rc = map_err(t, (int)r, "load items");
        goto out;
    }
    for (uint32_t i = 0; i < n; i++) {
        uint32_t index = UINT32_MAX;
        if (recs[i].exists && parse_extra(st, &recs[i], &index) != 0) index = UINT32_MAX;
        ord[i] = (load_ent_t){.index = index, .pos = i};
    }
    qsort(ord, n, sizeof(*ord), cmp_load);
    /* Intern all first: neighbour lists name other items. */
    for (uint32_t k = 0; k < n; k++) {
        uint32_t i = ord[k].pos;
        if (!recs[i].exists) continue;
        int32_t x = sr_model_item_intern(t->model, ids[i], lens[i]);
        if (x < 0) {
            rc = x;
            goto out;
        }
    }
    for (uint32_t k = 0; k < n; k++) {
        uint32_t i = ord[k].pos;
        if (!recs[i].exists) continue;
        int32_t x = import_item(t, ids[i], lens[i], &recs[i]);
        if (x < 0) {
            sr_log(SR_LOG_ERROR, "trainer: item %.*s from redis refused: %s", (int)lens[i],
                   ids[i], sr_strerror(x));
            rc = x;
            goto out;
        }
        t->stats.items_loaded++;
    }
    const void *g = NULL;
    size_t glen = 0;
    if ((rc = sr_store_get_global(st->store, &g, &glen)) != 0) {
        rc = map_err(t, rc, "load global state");
        goto out;
    }
    if (g && glen == sizeof(sr_global_state_t)) {
        memcpy(&st->gs, g, sizeof(st->gs));
        int grc = sr_model_import_global(t->model, &st->gs);
        if (grc != 0)
            sr_log(SR_LOG_WARN, "trainer: global state in redis not imported: %s",
                   sr_strerror(grc));
    } else if (g) {
        sr_log(SR_LOG_WARN, "trainer: global state in redis has %zu bytes, expected %zu; ignored",
               glen, sizeof(sr_global_state_t));
    }
    /* Popularity bases are our model's own values at the reference time
     * the global state just restored: take them now. */
    for (uint32_t x = 0; x < sr_model_n_items(t->model) && x < st->ib_cap; x++)
        if (st->ib[x].exists && sr_model_export_item(t->model, x, &st->is) == 0)
            st->ib[x].pop = st->is.pop_scaled;
    sr_model_clear_dirty(t->model);
    st->all_items_loaded = 1;
    sr_log(SR_LOG_INFO, "trainer: loaded %u items and the global state from redis", n);
out:
    sr_store_items_free(all);
    free(ord);
    free(recs);
    free(ids);
    free(lens);
    return rc;
}

/* ---- warm load ---- */

static int user_loaded(sr_trainer_t *t, const sr_event_t *ev)
{
    int32_t u = sr_model_find_user(t->model, ev->user, ev->user_len);
    return u >= 0 && (size_t)u < t->st->user_gen_cap && t->st->user_gen[u] == t->user_gen + 1;
}

int sr_trainer_mark_user_(sr_trainer_t *t, int32_t u)
{
    if (u < 0) return 0;
    if ((size_t)u >= t->st->user_gen_cap && grow_users(t->st, (size_t)u + 1) != 0)
        return SR_ERR_NOMEM;
    t->st->user_gen[u] = t->user_gen + 1;
    return 0;
}

static int mark_user(sr_trainer_t *t, const char *id, size_t len)
{
    int32_t u = sr_model_find_user(t->model, id, len);
    if (u < 0) return 0; /* absent in Redis and not created yet: learn creates it fresh */
    if (grow_users(t->st, (size_t)u + 1) != 0) return SR_ERR_NOMEM;
    t->st->user_gen[u] = t->user_gen + 1;
    return 0;
}

int sr_trainer_warm_load_(sr_trainer_t *t, const sr_trainer_bev_t *bev, size_t n)
{
    struct sr_trainer_state_s *st = t->st;
    int rc;
    if (!st->all_items_loaded && (rc = load_all(t)) != 0) return rc;
    if ((rc = grow_ids(st, n)) != 0) return rc;
    /* Users first.  Duplicates within the batch are harmless (Redis answers
     * twice, import is idempotent) but cost bytes, so skip adjacent ones. */
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const sr_event_t *ev = &bev[i].ev;
        if (user_loaded(t, ev)) continue;
        int dup = 0;
        for (size_t j = 0; j < k && j < 8; j++)
            if (st->lens[k - 1 - j] == ev->user_len &&
                memcmp(st->ids[k - 1 - j], ev->user, ev->user_len) == 0)
                dup = 1;
        if (dup) continue;
        st->ids[k] = ev->user;
        st->lens[k] = ev->user_len;
        k++;
    }
    if (k > 0) {
        if ((rc = ensure_store(t)) != 0) return rc;
        long r = sr_store_get_users(st->store, st->ids, st->lens, k, st->uout);
        if (r < 0) return map_err(t, (int)r, "load users");
        for (size_t i = 0; i < k; i++) {
            const sr_store_user_t *u = &st->uout[i];
            if (u->exists) {
                rc = import_user(t, st->ids[i], st->lens[i], u);
                if (rc < 0) {
                    sr_log(SR_LOG_ERROR, "trainer: user %.*s from redis refused: %s",
                           (int)st->lens[i], st->ids[i], sr_strerror(rc));
                    return rc;
                }
                t->stats.users_loaded++;
            } else {
                /* Not in Redis: a user we hold in memory from an earlier
                 * assignment was flushed before it moved, so an absent key
                 * means a new user; drop any stale copy. */
                if ((rc = reset_user(t, st->ids[i], st->lens[i])) != 0) return rc;
            }
            if ((rc = mark_user(t, st->ids[i], st->lens[i])) != 0) return rc;
        }
    }
    /* Items: loaded once per process (they are merged on every flush). */
    k = 0;
    for (size_t i = 0; i < n; i++) {
        const sr_event_t *ev = &bev[i].ev;
        if (sr_model_find_item(t->model, ev->item, ev->item_len) >= 0) continue;
        int dup = 0;
        for (size_t j = 0; j < k && j < 8; j++)
            if (st->lens[k - 1 - j] == ev->item_len &&
                memcmp(st->ids[k - 1 - j], ev->item, ev->item_len) == 0)
                dup = 1;
        if (dup) continue;
        st->ids[k] = ev->item;
        st->lens[k] = ev->item_len;
        k++;
    }
    if (k > 0) {
        if ((rc = ensure_store(t)) != 0) return rc;
        long r = sr_store_get_items(st->store, st->ids, st->lens, k, st->iout);
        if (r < 0) return map_err(t, (int)r, "load items");
        for (size_t i = 0; i < k; i++) {
            const sr_store_item_t *it = &st->iout[i];
            if (!it->exists) continue; /* learn creates it; base = absent */
            int32_t idx = import_item(t, st->ids[i], st->lens[i], it);
            if (idx < 0) {
                sr_log(SR_LOG_ERROR, "trainer: item %.*s from redis refused: %s",
                       (int)st->lens[i], st->ids[i], sr_strerror(idx));
                return idx;
            }
            t->stats.items_loaded++;
        }
    }
    return 0;
}

/* ---- flush ---- */

static int grow_flush(struct sr_trainer_state_s *st, size_t nu, size_t ni, size_t no)
{
    if (nu > st->fu_cap) {
        sr_store_user_t *u = realloc(st->fu, nu * sizeof(*u));
        if (!u) return SR_ERR_NOMEM;
        st->fu = u;
        st->fu_cap = nu;
    }
    if (ni > st->fi_cap) {
        sr_store_item_t *c = realloc(st->fcur, ni * sizeof(*c));
        if (c) st->fcur = c;
        sr_store_item_t *b = realloc(st->fbase, ni * sizeof(*b));
        if (b) st->fbase = b;
        sr_store_item_write_t *w = realloc(st->fi, ni * sizeof(*w));
        if (w) st->fi = w;
        int32_t *x = realloc(st->fidx, ni * sizeof(*x));
        if (x) st->fidx = x;
        if (!c || !b || !w || !x) return SR_ERR_NOMEM;
        st->fi_cap = ni;
    }
    if (no > st->fo_cap) {
        sr_store_offset_t *o = realloc(st->fo, no * sizeof(*o));
        if (!o) return SR_ERR_NOMEM;
        st->fo = o;
        st->fo_cap = no;
    }
    return 0;
}

/* Pulls Redis's merged item values back into the model and makes them
 * the new bases. */
static int apply_merged(sr_trainer_t *t, const sr_store_item_t *merged, size_t n,
                        const int32_t *idx)
{
    struct sr_trainer_state_s *st = t->st;
    for (size_t i = 0; i < n; i++) {
        const sr_store_item_t *m = &merged[i], *c = &st->fcur[i];
        int same = m->dim == c->dim && m->bias == c->bias && m->bias_acc == c->bias_acc &&
                   memcmp(m->vec, c->vec, (size_t)c->dim * sizeof(float)) == 0 &&
                   (!m->n_acc || m->acc[0] == c->acc[0]);
        if (same) {
            /* Stored exactly as we had it: only the base moves. */
            int rc = set_base(st, idx[i], m);
            if (rc != 0) return rc;
            st->ib[idx[i]].pop = c->pop;
            st->ib[idx[i]].has_pop = 1;
            continue;
        }
        t->stats.items_delta_merged++;
        int32_t r = import_item(t, m->id, m->id_len, m);
        if (r < 0) return r;
        if (r != idx[i]) return SR_ERR_STATE;
    }
    return 0;
}

int sr_trainer_flush_(sr_trainer_t *t)
{
    struct sr_trainer_state_s *st = t->st;
    int rc;
    if (!t->dirty) return 0;
    if ((rc = ensure_store(t)) != 0) return rc;
    int64_t t0 = sr_mono_ms();

    const uint32_t *du = NULL, *di = NULL;
    size_t nu = sr_model_dirty_users(t->model, &du);
    size_t ni = sr_model_dirty_items(t->model, &di);
    size_t no = 0;
    for (size_t i = 0; i < t->n_parts; i++)
        if (t->parts[i].assigned) no++;
    if ((rc = grow_flush(st, nu, ni, no)) != 0) return rc;
    if ((rc = grow_items(st, sr_model_n_items(t->model))) != 0) return rc;

    arena_reset(&st->arena);
    for (size_t i = 0; i < nu; i++)
        if ((rc = export_user(t, du[i], &st->fu[i])) < 0) return rc;
    for (size_t i = 0; i < ni; i++) {
        int32_t x = (int32_t)di[i];
        sr_store_item_t *cur = &st->fcur[i], *base = &st->fbase[i];
        if ((rc = export_item(t, (uint32_t)x, cur)) < 0) return rc;
        const item_base_t *b = &st->ib[x];
        memset(base, 0, sizeof(*base));
        base->id = cur->id;
        base->id_len = cur->id_len;
        base->exists = b->exists;
        base->dim = (uint16_t)st->dim;
        base->n_acc = cur->n_acc;
        base->bias = b->bias;
        base->bias_acc = b->bias_acc;
        base->vec = st->ib_vec + (size_t)x * st->dim;
        base->acc = &b->acc;
        base->extra = b->extra;
        base->extra_len = b->extra_len;
        st->fi[i] = (sr_store_item_write_t){.cur = cur,
                                            .base = b->exists ? base : NULL,
                                            .write_pop = cur->has_pop,
                                            .pop_base = b->has_pop ? b->pop : 0,
                                            .pop_cur = cur->pop};
        st->fidx[i] = x;
    }
    no = 0;
    for (size_t i = 0; i < t->n_parts; i++) {
        sr_tpart_t *p = &t->parts[i];
        if (!p->assigned) continue;
        st->fo[no++] = (sr_store_offset_t){.topic = t->topic_events,
                                           .partition = p->partition,
                                           .prev = p->flushed < 0 ? SR_STORE_OFFSET_NONE
                                                                  : p->flushed,
                                           .next = sr_tpart_commit_offset(p)};
    }
    sr_model_export_global(t->model, &st->gs);
    /* Sizes are informational and depend on how many users this process
     * happens to hold; keep them out so the blob is a function of the
     * event stream only. */
    st->gs.n_users = 0;
    st->gs.n_items = 0;
    const void *g = &st->gs;
    size_t glen = sizeof(st->gs);

    sr_store_flush_t f = {.group = t->group,
                          .offsets = st->fo,
                          .n_offsets = no,
                          .users = st->fu,
                          .n_users = nu,
                          .items = st->fi,
                          .n_items = ni,
                          .global = g,
                          .global_len = glen};
    sr_store_flush_result_t res;
    rc = sr_store_flush(st->store, &f, &res);
    if (rc == SR_ERR_STATE) {
        /* Fenced: Redis holds offsets we did not write, so someone else
         * trained our partitions meanwhile (we were a zombie).  Our
         * unflushed state is void; start over from Redis. */
        sr_log(SR_LOG_WARN, "trainer: flush fenced (%s); dropping unflushed state",
               sr_store_errstr(st->store));
        sr_trainer_drop_state_(t);
        return 0;
    }
    if (rc != 0) return map_err(t, rc, "flush");
    if (res.duplicate) {
        /* Our previous attempt was applied but its reply lost: the stored
         * items may include other writers' deltas; re-read them. */
        if ((rc = grow_ids(st, ni)) != 0) return rc;
        for (size_t i = 0; i < ni; i++) {
            st->ids[i] = st->fcur[i].id;
            st->lens[i] = st->fcur[i].id_len;
        }
        long r = ni ? sr_store_get_items(st->store, st->ids, st->lens, ni, st->iout) : 0;
        if (r < 0) return map_err(t, (int)r, "re-read items");
        if ((rc = apply_merged(t, st->iout, ni, st->fidx)) != 0) return rc;
    } else if ((rc = apply_merged(t, res.merged, res.n_merged, st->fidx)) != 0) {
        return rc;
    }
    sr_model_clear_dirty(t->model);
    int64_t t1 = sr_mono_ms();
    int64_t wall = sr_wall_ms();
    for (size_t i = 0; i < t->n_pending; i++) {
        int64_t fr = wall - t->pending_ts[i];
        sr_qhist_add(&t->fresh_iv, fr);
        sr_qhist_add(&t->fresh_all, fr);
    }
    if (t->n_pending) t->last_data_flush_ms = t1;
    t->n_pending = 0;
    sr_qhist_add(&t->flush_ms_iv, t1 - t0);
    t->stats.flush_s += (double)(t1 - t0) / 1000.0;
    sr_qhist_add(&t->flush_keys_iv, (int64_t)(nu + ni));
    t->stats.flushes++;
    t->dirty = 0;
    t->last_flush_ms = t0; /* the interval is start to start: a slow flush is not followed by a full idle interval */

    /* Monitoring only: Kafka's committed offsets follow Redis's. */
    rd_kafka_topic_partition_list_t *cl = rd_kafka_topic_partition_list_new((int)(no ? no : 1));
    for (size_t i = 0; i < t->n_parts; i++) {
        sr_tpart_t *p = &t->parts[i];
        if (!p->assigned) continue;
        p->flushed = sr_tpart_commit_offset(p);
        rd_kafka_topic_partition_list_add(cl, t->topic_events, p->partition)->offset = p->flushed;
    }
    if (cl->cnt > 0) rd_kafka_commit(t->rk, cl, 1);
    rd_kafka_topic_partition_list_destroy(cl);
    return 0;
}

void sr_trainer_drop_state_(sr_trainer_t *t)
{
    struct sr_trainer_state_s *st = t->st;
    char err[256];
    sr_model_t *m = sr_model_new(&st->params, err, sizeof(err));
    if (!m) {
        sr_log(SR_LOG_ERROR, "trainer: cannot rebuild the model: %s", err);
        t->fatal = 1;
        return;
    }
    sr_model_destroy(t->model);
    t->model = m;
    memset(st->user_gen, 0, st->user_gen_cap * sizeof(*st->user_gen));
    for (size_t i = 0; i < st->ib_cap; i++) free(st->ib[i].extra);
    memset(st->ib, 0, st->ib_cap * sizeof(*st->ib));
    st->all_items_loaded = 0;
    if (t->dedup) sr_dedup_clear(t->dedup);
    t->n_pending = 0;
    t->dirty = 0;
    t->need_reseek = 1;
}
