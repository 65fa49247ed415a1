/* The trainer's Redis side: stored offsets, batched warm loads of users
 * and items, and the one atomic flush (store/sr_store.h), with the model's
 * state export/import (model/sr_model_state.h) in between.  The flush is
 * written by a flusher thread from a snapshot while the owner thread
 * learns on (see "flush" below); everything else here runs on the owner
 * thread with its own Redis connection.
 *
 * Items are shared by every trainer of the group, so each in-memory item
 * keeps a "base": the value Redis held when this trainer last loaded or
 * flushed it.  A flush sends base and current value; Redis stores the
 * current value bit for bit when it still holds base (one trainer: a crash
 * and reload continue exactly as if nothing happened) and base + delta
 * otherwise (several trainers: both updates survive).  The merged value
 * comes back and becomes the new base, and the model's value plus what it
 * learned since the snapshot.
 *
 * Users are owned by their partition, so a flush simply replaces them; but
 * after any rebalance a user in memory may have been trained elsewhere
 * meanwhile, so every user is reloaded before its next update once the
 * assignment changed (t->user_gen). */
#define _GNU_SOURCE /* pthread_setname_np */
#include <inttypes.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sr_arena.h"
#include "sr_err.h"
#include "sr_log.h"
#include "sr_model_state.h"
#include "sr_store.h"
#include "trainer_int.h"

/* What Redis held for an item when this trainer last loaded or flushed
 * it: the floats the flush script compares bit for bit (extras are last
 * writer wins and not compared, see sr_store_item_write_t). */
typedef struct item_base {
    int exists;
    float bias, bias_acc, acc;
    double pop;
    int has_pop;
    uint32_t num; /* its global item number (docs/REDIS.md), 0 until known */
} item_base_t;

/* An item's encoded extra (see "model state <-> store records") as the
 * last snapshot built it, and the model's sr_model_item_extra_gen then:
 * most items of a flush are sampled negatives whose extra did not change,
 * and building it (an id lookup and copy per neighbour) was most of the
 * snapshot, which the owner thread takes between two batches.  Written
 * only by snapshot(), when no flush is in flight, so the job in flight
 * may point into buf. */
typedef struct item_extra {
    char *buf;
    size_t len, cap;
    uint64_t gen;
    int valid;
} item_extra_t;


/* One flush (see "flush" below): a deep copy of the dirty state, the
 * offsets it corresponds to, and the result. */
enum { JOB_IDLE, JOB_QUEUED, JOB_DONE };

typedef struct flush_job {
    sr_arena_t arena; /* every id, float and extra the records point to */
    sr_store_user_t *users;
    size_t n_users, users_cap;
    sr_store_item_t *cur, *base; /* snapshot value and base of each item */
    sr_store_item_write_t *items;
    int32_t *idx; /* dense model index of each item */
    size_t n_items, items_cap;
    sr_store_offset_t *offs;
    size_t n_offs, offs_cap;
    sr_global_state_t gs;
    int64_t *pending_ts; /* event ts of the events this snapshot contains */
    size_t n_pending, pending_cap;
    /* result, written by the flusher thread */
    int rc;
    const sr_store_item_t *merged; /* n_items values Redis holds now (NULL: none) */
    unsigned tx_aborts; /* transactions another writer's flush aborted */
    int by_script;      /* written by the Lua script (after aborts, or configured) */
    int64_t start_ms, done_ms, done_wall_ms;
    int64_t written_wall_ms; /* the atomic write's reply (0: unknown, e.g. a duplicate) */
} flush_job_t;

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
    item_extra_t *ix; /* per dense item index */
    size_t ib_cap;
    int all_items_loaded; /* the start-up load of every item and the global state */

    sr_user_state_t us; /* export/import scratch (large: lists inline) */
    sr_item_state_t is;
    sr_global_state_t gs;
    float *merge_vec; /* dim floats */

    /* warm-load scratch */
    const char **ids;
    size_t *lens;
    size_t n_ids;    /* ids[0..n_ids): one warm-load request, each id once */
    uint32_t *idset; /* 2 x ids_cap slots: hash set over ids (index + 1) */
    size_t idset_mask;
    sr_store_user_t *uout;
    sr_store_item_t *iout;
    size_t ids_cap;

    /* The flusher thread and its one job (see "flush" below). */
    const char *group; /* t->group */
    pthread_t thread;
    int thread_started;
    int in_flight; /* owner thread only: the job is queued, running or done but not applied */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int job_state, quit;    /* under mu */
    rd_kafka_queue_t *wake; /* under mu: yielded when a job is done */
    sr_store_t *fstore;     /* the flusher thread's own connection */
    flush_job_t job;
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
    pthread_mutex_init(&st->mu, NULL);
    pthread_cond_init(&st->cv, NULL);
    /* A snapshot copies megabytes: large chunks, few mallocs. */
    st->job.arena.chunk = (size_t)1 << 20;
    st->group = t->group;
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
    /* The stream cap and flush mode too: the trainer is their writer. */
    sr_store_opts_conf(conf, &st->opts);
    st->opts.prefix = st->prefix;
    st->params = *sr_model_params(t->model);
    st->dim = st->params.dim;
    st->merge_vec = calloc((size_t)st->dim + 1, sizeof(float));
    if (!st->merge_vec) {
        snprintf(errstr, errstr_size, "out of memory");
        return SR_ERR_NOMEM;
    }
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
    sr_trainer_state_stop_(t);
    sr_store_destroy(st->store);
    free(st->prefix);
    free(st->user_gen);
    free(st->ib);
    free(st->ib_vec);
    for (size_t i = 0; st->ix && i < st->ib_cap; i++) free(st->ix[i].buf);
    free(st->ix);
    free(st->ids);
    free(st->idset);
    free(st->lens);
    free(st->uout);
    free(st->iout);
    free(st->merge_vec);
    sr_store_destroy(st->fstore);
    flush_job_t *j = &st->job;
    sr_arena_free(&j->arena);
    free(j->users);
    free(j->cur);
    free(j->base);
    free(j->items);
    free(j->idx);
    free(j->offs);
    free(j->pending_ts);
    pthread_mutex_destroy(&st->mu);
    pthread_cond_destroy(&st->cv);
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
    item_extra_t *ix = realloc(st->ix, cap * sizeof(*ix));
    if (!ix) return SR_ERR_NOMEM;
    memset(ix + st->ib_cap, 0, (cap - st->ib_cap) * sizeof(*ix));
    st->ix = ix;
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
    uint32_t *set = realloc(st->idset, 2 * cap * sizeof(*set));
    if (set) st->idset = set;
    if (!ids || !lens || !u || !it || !set) return SR_ERR_NOMEM;
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
    if (v->num) b->num = v->num;
    float *bv = st->ib_vec + (size_t)i * st->dim;
    if (v->vec && v->dim == st->dim) memcpy(bv, v->vec, (size_t)st->dim * sizeof(float));
    else memset(bv, 0, (size_t)st->dim * sizeof(float));
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

void sr_trainer_preload_(sr_trainer_t *t)
{
    if (t->st->all_items_loaded) return;
    int rc = load_all(t);
    if (rc != 0)
        sr_log(SR_LOG_DEBUG, "trainer: item load at assignment: %s; retried before the first event",
               sr_strerror(rc));
}

/* The ids of one warm-load request, each once, in first-seen order (for
 * items that order sets their dense indices): st->ids[0..n_ids), with a
 * hash set sized for up to n ids (n <= ids_cap).  A batch repeats its
 * users and items (a replayed one at assignment most of them), loading one
 * twice costs bytes and an import, and a sort of a 65,536-event backlog
 * batch cost more than the load itself. */
static void ids_begin(struct sr_trainer_state_s *st, size_t n)
{
    size_t slots = 1;
    while (slots < 2 * n) slots <<= 1;
    memset(st->idset, 0, slots * sizeof(*st->idset));
    st->idset_mask = slots - 1;
    st->n_ids = 0;
}

static void ids_add(struct sr_trainer_state_s *st, const char *id, size_t len)
{
    for (size_t h = (size_t)sr_hash64(id, len, 0) & st->idset_mask;;
         h = (h + 1) & st->idset_mask) {
        uint32_t e = st->idset[h];
        if (!e) {
            st->ids[st->n_ids] = id;
            st->lens[st->n_ids] = len;
            st->idset[h] = (uint32_t)++st->n_ids;
            return;
        }
        if (st->lens[e - 1] == len && !memcmp(st->ids[e - 1], id, len)) return;
    }
}

int sr_trainer_warm_load_(sr_trainer_t *t, const sr_trainer_bev_t *bev, size_t n)
{
    struct sr_trainer_state_s *st = t->st;
    int rc;
    if (!st->all_items_loaded && (rc = load_all(t)) != 0) return rc;
    if ((rc = grow_ids(st, n)) != 0) return rc;
    /* Users first (users do not influence each other's state). */
    ids_begin(st, n);
    for (size_t i = 0; i < n; i++)
        if (!user_loaded(t, &bev[i].ev)) ids_add(st, bev[i].ev.user, bev[i].ev.user_len);
    size_t k = st->n_ids;
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
    ids_begin(st, n);
    for (size_t i = 0; i < n; i++) {
        const sr_event_t *ev = &bev[i].ev;
        if (sr_model_find_item(t->model, ev->item, ev->item_len) < 0)
            ids_add(st, ev->item, ev->item_len);
    }
    k = st->n_ids;
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

/* ---- flush ----
 *
 * A flush is a snapshot: a deep copy of every user and item touched since
 * the previous snapshot (with each item's base), the global state, and the
 * next offset of every assigned partition, taken between two batches, so
 * the offsets name exactly the events the copied state contains.  The
 * flusher thread writes it through its own Redis connection (one atomic
 * script, sr_store_flush) while the owner thread keeps consuming and
 * learning.  At most one flush is in flight, and the next snapshot is taken
 * only after the previous one was applied, so it carries everything touched
 * meanwhile: under backlog the flushes grow by themselves.
 *
 * Handoff: job_state goes IDLE -> QUEUED (owner, under mu) -> DONE
 * (flusher, under mu) -> IDLE or QUEUED again for a retry (owner).  The job
 * belongs to whichever side's turn it is and needs no lock of its own; the
 * flusher thread touches nothing but the job, its own store handle and the
 * wake-up queue. */

/* Copies user u into the job's arena (the model moves on meanwhile). */
static int snap_user(sr_trainer_t *t, sr_arena_t *a, uint32_t u, sr_store_user_t *out)
{
    sr_user_state_t *us = &t->st->us;
    int rc = sr_model_export_user(t->model, u, us);
    if (rc < 0) return rc;
    char *id = sr_arena_strdup(a, us->id, us->id_len);
    void *vec;
    float *fl;
    vec = sr_arena_alloc(a, ((size_t)us->dim + 1) * sizeof(float));
    if (vec) memcpy(vec, us->vec, (size_t)us->dim * sizeof(float));
    sr_store_recent_t *rec =
        us->n_recent ? sr_arena_alloc(a, us->n_recent * sizeof(*rec)) : NULL;
    if (!id || !vec || (us->n_recent && !rec)) return SR_ERR_NOMEM;
    fl = vec;
    fl[us->dim] = us->acc;
    for (size_t j = 0; j < us->n_recent; j++) {
        /* The item's number when a load or flush told us (the store then
         * skips the id lookup), else its id for the store to number. */
        uint32_t x = us->recent[j].index;
        uint32_t num = x < t->st->ib_cap ? t->st->ib[x].num : 0;
        char *iid = NULL;
        if (!num && !(iid = sr_arena_strdup(a, us->recent[j].item, us->recent[j].item_len)))
            return SR_ERR_NOMEM;
        rec[j] = (sr_store_recent_t){.num = num,
                                     .item_id = iid,
                                     .item_id_len = num ? 0 : us->recent[j].item_len,
                                     .ts_ms = us->recent[j].ts_ms,
                                     .type = (uint8_t)us->recent[j].type};
    }
    *out = (sr_store_user_t){.id = id,
                             .id_len = us->id_len,
                             .exists = 1,
                             .dim = (uint16_t)us->dim,
                             .n_acc = 1,
                             .vec = fl,
                             .acc = fl + us->dim,
                             .events = us->events,
                             .last_ts_ms = us->last_ts_ms,
                             .n_recent = (uint32_t)us->n_recent,
                             .recent = rec};
    return 0;
}

/* Encodes the extra of the exported item (with its neighbours) into xc. */
static int build_extra(const sr_item_state_t *is, item_extra_t *xc, uint64_t gen)
{
    size_t xl = 4 + 4 + 8 + 4 + 4;
    for (size_t j = 0; j < is->n_nbrs; j++) xl += 2 + is->nbrs[j].item_len + 4;
    if (xl > xc->cap) {
        char *nb = realloc(xc->buf, xl);
        if (!nb) return SR_ERR_NOMEM;
        xc->buf = nb;
        xc->cap = xl;
    }
    char *p = xc->buf;
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
    xc->len = xl;
    xc->gen = gen;
    xc->valid = 1;
    return 0;
}

/* Copies item x (current value, with the model's extras) and its base into
 * the job's arena; the extra stays in st->ix (see item_extra_t). */
static int snap_item(sr_trainer_t *t, sr_arena_t *a, uint32_t x, sr_store_item_t *cur,
                     sr_store_item_t *base, sr_store_item_write_t *w)
{
    struct sr_trainer_state_s *st = t->st;
    sr_item_state_t *is = &st->is;
    item_extra_t *xc = &st->ix[x];
    uint64_t gen = sr_model_item_extra_gen(t->model, x);
    int keep = xc->valid && xc->gen == gen;
    int rc = keep ? sr_model_export_item_vec(t->model, x, is) : sr_model_export_item(t->model, x, is);
    if (rc < 0) return rc;
    size_t dim = (size_t)is->dim;
    if (!keep && (rc = build_extra(is, xc, gen)) < 0) return rc;
    char *id = sr_arena_strdup(a, is->id, is->id_len);
    void *vec, *bvec;
    const item_base_t *b = &st->ib[x];
    vec = sr_arena_alloc(a, (dim + 1) * sizeof(float));
    bvec = sr_arena_alloc(a, (dim + 1) * sizeof(float));
    if (vec) memcpy(vec, is->vec, dim * sizeof(float));
    if (bvec) memcpy(bvec, st->ib_vec + x * dim, dim * sizeof(float));
    if (!id || !vec || !bvec) return SR_ERR_NOMEM;
    float *cf = vec, *bf = bvec;
    cf[dim] = is->acc;
    bf[dim] = b->acc;
    *cur = (sr_store_item_t){.id = id,
                             .id_len = is->id_len,
                             .exists = 1,
                             .dim = (uint16_t)dim,
                             .n_acc = 1,
                             .bias = is->bias,
                             .bias_acc = is->bias_acc,
                             .vec = cf,
                             .acc = cf + dim,
                             .extra = xc->buf,
                             .extra_len = xc->len,
                             .has_pop = 1,
                             /* scaled to the global reference time, so scores of
                              * items flushed at different times compare (REDIS.md) */
                             .pop = is->pop_scaled};
    *base = (sr_store_item_t){.id = id,
                              .id_len = is->id_len,
                              .exists = b->exists,
                              .dim = (uint16_t)dim,
                              .n_acc = 1,
                              .bias = b->bias,
                              .bias_acc = b->bias_acc,
                              .vec = bf,
                              .acc = bf + dim,
                              .extra = NULL, /* not compared */
                              .extra_len = 0};
    *w = (sr_store_item_write_t){.cur = cur,
                                 .base = b->exists ? base : NULL,
                                 .write_pop = 1,
                                 .pop_base = b->has_pop ? b->pop : 0,
                                 .pop_cur = cur->pop};
    return 0;
}

static int grow_job(flush_job_t *j, size_t nu, size_t ni, size_t no)
{
    if (nu > j->users_cap) {
        sr_store_user_t *u = realloc(j->users, nu * sizeof(*u));
        if (!u) return SR_ERR_NOMEM;
        j->users = u;
        j->users_cap = nu;
    }
    if (ni > j->items_cap) {
        sr_store_item_t *c = realloc(j->cur, ni * sizeof(*c));
        if (c) j->cur = c;
        sr_store_item_t *b = realloc(j->base, ni * sizeof(*b));
        if (b) j->base = b;
        sr_store_item_write_t *w = realloc(j->items, ni * sizeof(*w));
        if (w) j->items = w;
        int32_t *x = realloc(j->idx, ni * sizeof(*x));
        if (x) j->idx = x;
        if (!c || !b || !w || !x) return SR_ERR_NOMEM;
        j->items_cap = ni;
    }
    if (no > j->offs_cap) {
        sr_store_offset_t *o = realloc(j->offs, no * sizeof(*o));
        if (!o) return SR_ERR_NOMEM;
        j->offs = o;
        j->offs_cap = no;
    }
    return 0;
}

/* Fills the job with everything dirty and the offsets it corresponds to,
 * then starts the next dirty set (the model's and the pending event
 * timestamps). */
static int snapshot(sr_trainer_t *t, flush_job_t *j)
{
    struct sr_trainer_state_s *st = t->st;
    const uint32_t *du = NULL, *di = NULL;
    size_t nu = sr_model_dirty_users(t->model, &du);
    size_t ni = sr_model_dirty_items(t->model, &di);
    size_t no = 0;
    for (size_t i = 0; i < t->n_parts; i++) no += t->parts[i].assigned != 0;
    int rc = grow_job(j, nu, ni, no);
    if (rc == 0) rc = grow_items(st, sr_model_n_items(t->model));
    if (rc != 0) return rc;
    sr_arena_reset(&j->arena);
    for (size_t i = 0; i < nu; i++)
        if ((rc = snap_user(t, &j->arena, du[i], &j->users[i])) < 0) return rc;
    for (size_t i = 0; i < ni; i++) {
        /* The dirty items are scattered: start the misses a few ahead. */
        if (i + 8 < ni) {
            uint32_t y = di[i + 8];
            sr_model_prefetch_item_state(t->model, y);
            __builtin_prefetch(st->ib + y);
            __builtin_prefetch(st->ix + y);
            for (int d = 0; d < st->dim; d += 16) /* 64-byte lines */
                __builtin_prefetch(st->ib_vec + (size_t)y * st->dim + d);
        }
        if ((rc = snap_item(t, &j->arena, di[i], &j->cur[i], &j->base[i], &j->items[i])) < 0)
            return rc;
        j->idx[i] = (int32_t)di[i];
    }
    no = 0;
    for (size_t i = 0; i < t->n_parts; i++) {
        sr_tpart_t *p = &t->parts[i];
        if (!p->assigned) continue;
        j->offs[no++] = (sr_store_offset_t){
            .topic = t->topic_events,
            .partition = p->partition,
            .prev = p->flushed < 0 ? SR_STORE_OFFSET_NONE : p->flushed,
            .next = sr_tpart_commit_offset(p)};
    }
    j->n_users = nu;
    j->n_items = ni;
    j->n_offs = no;
    sr_model_export_global(t->model, &j->gs);
    /* Sizes are informational and depend on how many users this process
     * happens to hold; keep them out so the blob is a function of the
     * event stream only. */
    j->gs.n_users = 0;
    j->gs.n_items = 0;
    /* The events this snapshot contains, for the freshness statistics. */
    int64_t *ts = j->pending_ts;
    size_t cap = j->pending_cap;
    j->pending_ts = t->pending_ts;
    j->pending_cap = t->pending_cap;
    j->n_pending = t->n_pending;
    t->pending_ts = ts;
    t->pending_cap = cap;
    t->n_pending = 0;
    sr_model_clear_dirty(t->model);
    t->dirty = 0;
    return 0;
}

/* Flusher thread: writes one job.  Touches only the job and st->fstore. */
static void run_job(struct sr_trainer_state_s *st, flush_job_t *j)
{
    int rc;
    j->start_ms = sr_mono_ms();
    j->merged = NULL;
    if (!st->fstore) {
        char err[256];
        st->fstore = sr_store_new(&st->opts, err, sizeof(err));
        if (!st->fstore) {
            sr_log(SR_LOG_WARN, "trainer: redis (flusher): %s", err);
            rc = SR_ERR_UNAVAIL;
            goto out;
        }
    }
    sr_store_flush_t f = {.group = st->group,
                          .offsets = j->offs,
                          .n_offsets = j->n_offs,
                          .users = j->users,
                          .n_users = j->n_users,
                          .items = j->items,
                          .n_items = j->n_items,
                          .global = &j->gs,
                          .global_len = sizeof(j->gs)};
    sr_store_flush_result_t res;
    rc = sr_store_flush(st->fstore, &f, &res);
    j->tx_aborts = res.tx_aborts;
    j->by_script = rc == 0 && res.by_script;
    if (rc == 0 && res.duplicate && j->n_items) {
        /* Our previous attempt was applied but its reply lost: the stored
         * items may include other writers' deltas; re-read them. */
        const char **ids = sr_arena_alloc(&j->arena, j->n_items * sizeof(*ids));
        size_t *lens = sr_arena_alloc(&j->arena, j->n_items * sizeof(*lens));
        sr_store_item_t *out = sr_arena_alloc(&j->arena, j->n_items * sizeof(*out));
        if (!ids || !lens || !out) {
            rc = SR_ERR_NOMEM;
            goto out;
        }
        for (size_t i = 0; i < j->n_items; i++) {
            ids[i] = j->cur[i].id;
            lens[i] = j->cur[i].id_len;
        }
        long r = sr_store_get_items(st->fstore, ids, lens, j->n_items, out);
        if (r < 0) rc = (int)r;
        else j->merged = out;
    } else if (rc == 0) {
        j->merged = res.merged;
    }
    j->written_wall_ms = rc == 0 ? res.written_wall_ms : 0;
    if (rc < 0) {
        sr_log(SR_LOG_WARN, "trainer: redis flush: %s (%s)", sr_strerror(rc),
               sr_store_errstr(st->fstore));
        if (rc != SR_ERR_STATE && sr_store_err_retryable(rc)) rc = SR_ERR_UNAVAIL;
    }
out:
    j->rc = rc;
    j->done_ms = sr_mono_ms();
    j->done_wall_ms = sr_wall_ms();
}

static void *flusher_main(void *arg)
{
    struct sr_trainer_state_s *st = arg;
    pthread_mutex_lock(&st->mu);
    for (;;) {
        while (st->job_state != JOB_QUEUED && !st->quit) pthread_cond_wait(&st->cv, &st->mu);
        if (st->job_state != JOB_QUEUED) break; /* quit, nothing queued */
        pthread_mutex_unlock(&st->mu);
        run_job(st, &st->job);
        pthread_mutex_lock(&st->mu);
        st->job_state = JOB_DONE;
        pthread_cond_broadcast(&st->cv);
        /* Ends the owner's consume wait, so the result is applied now. */
        if (st->wake) rd_kafka_queue_yield(st->wake);
    }
    pthread_mutex_unlock(&st->mu);
    return NULL;
}

static int submit(sr_trainer_t *t)
{
    struct sr_trainer_state_s *st = t->st;
    if (!st->thread_started) {
        if (pthread_create(&st->thread, NULL, flusher_main, st) != 0) return SR_ERR_NOMEM;
        /* For operators (top -H, perf): the flusher's CPU is the flush. */
        pthread_setname_np(st->thread, "sr-flusher");
        st->thread_started = 1;
    }
    pthread_mutex_lock(&st->mu);
    st->wake = t->q;
    st->job_state = JOB_QUEUED;
    pthread_cond_broadcast(&st->cv);
    pthread_mutex_unlock(&st->mu);
    st->in_flight = 1;
    return 0;
}

/* Waits (block) for the flusher thread to finish the job; 1 when !block
 * and it is still running. */
static int wait_done(sr_trainer_t *t, int block)
{
    struct sr_trainer_state_s *st = t->st;
    int rc = 0;
    pthread_mutex_lock(&st->mu);
    if (st->job_state != JOB_DONE) {
        if (!block) {
            rc = 1;
        } else {
            int64_t w0 = sr_mono_ms();
            while (st->job_state != JOB_DONE) pthread_cond_wait(&st->cv, &st->mu);
            t->stats.flush_wait_s += (double)(sr_mono_ms() - w0) / 1000.0;
        }
    }
    pthread_mutex_unlock(&st->mu);
    return rc;
}

static void job_release(struct sr_trainer_state_s *st)
{
    pthread_mutex_lock(&st->mu);
    st->job_state = JOB_IDLE;
    pthread_mutex_unlock(&st->mu);
    st->in_flight = 0;
}

int sr_trainer_flush_busy_(const sr_trainer_t *t)
{
    return t->st->in_flight;
}

int sr_trainer_flush_begin_(sr_trainer_t *t)
{
    struct sr_trainer_state_s *st = t->st;
    if (st->in_flight) return SR_ERR_STATE;
    if (!t->dirty) return 0;
    int rc = snapshot(t, &st->job);
    if (rc != 0) return rc;
    t->last_flush_ms = sr_mono_ms(); /* start to start: a slow flush is not followed by a full idle interval */
    return submit(t);
}

int sr_trainer_flush_resubmit_(sr_trainer_t *t)
{
    return t->st->in_flight ? submit(t) : 0;
}

/* Item x was written as its snapshot value s; Redis now holds m (s itself,
 * or another writer's value + (s - base)).  m becomes the base, and when
 * it differs from s the model takes m plus what it learned since the
 * snapshot: local = m + (local_now - s), float by float. */
static int merge_back(sr_trainer_t *t, int32_t x, const sr_store_item_t *s,
                      const sr_store_item_t *m)
{
    struct sr_trainer_state_s *st = t->st;
    size_t dim = (size_t)st->dim;
    if (m->dim != dim || !m->vec) return SR_ERR_STATE;
    float m_acc = m->n_acc ? m->acc[0] : 0;
    int same = m->bias == s->bias && m->bias_acc == s->bias_acc && m_acc == s->acc[0] &&
               memcmp(m->vec, s->vec, dim * sizeof(float)) == 0;
    if (!same) {
        t->stats.items_delta_merged++;
        sr_item_state_t *is = &st->is;
        int rc = sr_model_export_item(t->model, (uint32_t)x, is);
        if (rc < 0) return rc;
        float *v = st->merge_vec;
        for (size_t k = 0; k < dim; k++) v[k] = m->vec[k] + (is->vec[k] - s->vec[k]);
        is->vec = v;
        is->acc = m_acc + (is->acc - s->acc[0]);
        is->bias = m->bias + (is->bias - s->bias);
        is->bias_acc = m->bias_acc + (is->bias_acc - s->bias_acc);
        int32_t r = sr_model_import_item(t->model, is);
        if (r != x) return r < 0 ? r : SR_ERR_STATE;
    }
    int rc = set_base(st, x, m);
    if (rc != 0) return rc;
    st->ib[x].exists = 1;
    /* Popularity is never pulled back: the model keeps its own value and
     * the next flush sends its change since this one. */
    st->ib[x].pop = s->pop;
    st->ib[x].has_pop = 1;
    return 0;
}

/* Applies a written job: merged items, bases, flushed offsets, statistics. */
static int apply_job(sr_trainer_t *t, flush_job_t *j)
{
    struct sr_trainer_state_s *st = t->st;
    int rc = grow_items(st, sr_model_n_items(t->model));
    if (rc != 0) return rc;
    for (size_t i = 0; i < j->n_items; i++) {
        const sr_store_item_t *m = j->merged ? &j->merged[i] : &j->cur[i];
        if ((rc = merge_back(t, j->idx[i], &j->cur[i], m)) != 0) return rc;
    }
    for (size_t i = 0; i < j->n_pending; i++) {
        int64_t fr = (j->written_wall_ms ? j->written_wall_ms : j->done_wall_ms) - j->pending_ts[i];
        sr_qhist_add(&t->fresh_iv, fr);
        sr_qhist_add(&t->fresh_all, fr);
    }
    if (j->n_pending) t->last_data_flush_ms = j->done_ms;
    j->n_pending = 0;
    sr_qhist_add(&t->flush_ms_iv, j->done_ms - j->start_ms);
    t->stats.flush_s += (double)(j->done_ms - j->start_ms) / 1000.0;
    sr_qhist_add(&t->flush_keys_iv, (int64_t)(j->n_users + j->n_items));
    t->stats.flushes++;
    t->stats.flush_tx_aborts += j->tx_aborts;
    t->stats.flushes_by_script += j->by_script;

    /* Monitoring only: Kafka's committed offsets follow Redis's. */
    rd_kafka_topic_partition_list_t *cl =
        rd_kafka_topic_partition_list_new((int)(j->n_offs ? j->n_offs : 1));
    for (size_t i = 0; i < j->n_offs; i++) {
        sr_tpart_t *p = sr_trainer_part_(t, j->offs[i].partition, 0);
        if (!p || !p->assigned) continue;
        p->flushed = j->offs[i].next;
        rd_kafka_topic_partition_list_add(cl, t->topic_events, p->partition)->offset = p->flushed;
    }
    if (cl->cnt > 0) rd_kafka_commit(t->rk, cl, 1);
    rd_kafka_topic_partition_list_destroy(cl);
    return 0;
}

int sr_trainer_flush_end_(sr_trainer_t *t, int block)
{
    struct sr_trainer_state_s *st = t->st;
    if (!st->in_flight) return 0;
    if (wait_done(t, block)) return 1;
    flush_job_t *j = &st->job;
    if (j->rc == SR_ERR_UNAVAIL) {
        t->stats.flush_s += (double)(j->done_ms - j->start_ms) / 1000.0;
        return SR_ERR_UNAVAIL; /* still in flight: resubmit or drop */
    }
    job_release(st);
    if (j->rc == SR_ERR_STATE) {
        /* Fenced: Redis holds offsets we did not write, so someone else
         * trained our partitions meanwhile (we were a zombie).  Our
         * unflushed state is void; start over from Redis. */
        sr_log(SR_LOG_WARN, "trainer: flush fenced; dropping unflushed state");
        sr_trainer_drop_state_(t);
        return 0;
    }
    if (j->rc != 0) return j->rc;
    return apply_job(t, j);
}

/* Waits for an in-flight flush and forgets its result (Redis has it or
 * not; either way the state is about to be reloaded from Redis). */
static void flush_discard(sr_trainer_t *t)
{
    if (!t->st->in_flight) return;
    wait_done(t, 1);
    job_release(t->st);
}

void sr_trainer_state_stop_(sr_trainer_t *t)
{
    struct sr_trainer_state_s *st = t->st;
    if (!st || !st->thread_started) return;
    pthread_mutex_lock(&st->mu);
    st->quit = 1;
    pthread_cond_broadcast(&st->cv);
    pthread_mutex_unlock(&st->mu);
    pthread_join(st->thread, NULL);
    st->thread_started = 0;
    st->in_flight = 0;
    st->wake = NULL;
}

void sr_trainer_drop_state_(sr_trainer_t *t)
{
    struct sr_trainer_state_s *st = t->st;
    flush_discard(t);
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
    memset(st->ib, 0, st->ib_cap * sizeof(*st->ib));
    for (size_t i = 0; i < st->ib_cap; i++) st->ix[i].valid = 0; /* gens of the old model */
    st->all_items_loaded = 0;
    if (t->dedup) sr_dedup_clear(t->dedup);
    t->n_pending = 0;
    st->job.n_pending = 0;
    t->dirty = 0;
    t->need_reseek = 1;
}
