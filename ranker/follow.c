/* The Redis backend of the ranker: the initial item load, the follower
 * thread that keeps the catalogue and the blend fresh from the trainer's
 * item-update stream and global state, per-request user reads through a
 * pool of store connections, and health.
 *
 * Nothing here blocks a request on the follower: requests read the
 * catalogue left-right (sr_items.h) and the user through their own pooled
 * connection.  When Redis goes away, user reads fail fast with
 * SR_ERR_UNAVAIL (503 upstream), the follower keeps retrying, and the store
 * handles reconnect by themselves on their next call, so the ranker
 * recovers without a restart.  A trimmed gap in the stream (the follower
 * fell behind, or Redis was restarted empty) triggers a full reload. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ranker_int.h"
#include "sr_err.h"
#include "sr_log.h"
#include "sr_model.h"
#include "sr_model_state.h"
#include "sr_store.h"

#define POOL_MAX 64
#define UPDATES_BATCH 1024
#define GLOBAL_EVERY_MS 200
#define LAG_EVERY_MS 500

struct sr_ranker_backend {
    sr_ranker_t *r;
    sr_store_opts_t so;
    char host[256], password[256], prefix[128];
    sr_model_params_t mp;
    int poll_ms;
    /* request-side connections */
    pthread_mutex_t pool_mu;
    sr_store_t *pool[POOL_MAX];
    int n_pool;
    /* follower */
    pthread_t th;
    int th_started;
    atomic_int stop;
    sr_store_t *fs;
    sr_store_cursor_t cur;
    atomic_ullong cur_seq;
};

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void redis_down(sr_ranker_t *r, const char *what, const char *msg)
{
    char reason[160];
    snprintf(reason, sizeof(reason), "%s: %s", what, msg && msg[0] ? msg : "unreachable");
    if (atomic_exchange(&r->redis_ok, 0)) sr_log(SR_LOG_WARN, "ranker: redis down (%s)", reason);
    sr_ranker_set_reason_(r, reason);
}

static void redis_up(sr_ranker_t *r)
{
    if (!atomic_exchange(&r->redis_ok, 1)) {
        sr_log(SR_LOG_INFO, "ranker: redis reachable again");
        sr_ranker_set_reason_(r, "");
    }
}

/* ---- the trainer's item extra: 'SRX1', index, pop_scaled, count,
 * neighbours (consumers/trainer_state.c writes it) ---- */

#define EXTRA_MAGIC 0x31585253u

typedef struct extra {
    int ok;
    double pop_scaled;
    float count;
    size_t n;
    sr_item_nbr_in_t nbrs[SR_COOC_MAX];
} extra_t;

static void parse_extra(const void *buf, size_t len, extra_t *x)
{
    const char *p = buf, *end = p + len;
    uint32_t magic, index, n;
    x->ok = 0;
    x->n = 0;
    if (!buf || len < 24) return;
    memcpy(&magic, p, 4), p += 4;
    if (magic != EXTRA_MAGIC) return;
    memcpy(&index, p, 4), p += 4;
    memcpy(&x->pop_scaled, p, 8), p += 8;
    memcpy(&x->count, p, 4), p += 4;
    memcpy(&n, p, 4), p += 4;
    if (n > SR_COOC_MAX) return;
    for (uint32_t j = 0; j < n; j++) {
        uint16_t l;
        if (end - p < 2) return;
        memcpy(&l, p, 2), p += 2;
        if ((size_t)(end - p) < (size_t)l + 4) return;
        x->nbrs[j].id = p;
        x->nbrs[j].id_len = l;
        p += l;
        memcpy(&x->nbrs[j].count, p, 4), p += 4;
    }
    x->n = n;
    x->ok = p == end && isfinite(x->pop_scaled) && isfinite(x->count);
}

/* Fills an update from a store item; extra parsed into x (which must
 * outlive the apply). */
static void to_update(const sr_store_item_t *it, int64_t num, const float *vec, extra_t *x,
                      float pop_offset, sr_item_update_t *u)
{
    memset(u, 0, sizeof(*u));
    u->id = it->id;
    u->id_len = it->id_len;
    u->num = num > 0 ? num : -1;
    u->vec = vec;
    u->bias = it->bias;
    u->set_bias = 1;
    parse_extra(it->extra, it->extra_len, x);
    if (x->ok) {
        u->logpop = x->pop_scaled > 0 ? (float)log(x->pop_scaled) : -INFINITY;
        u->set_logpop = 1;
        u->count = x->count;
        u->set_count = 1;
        u->nbrs = x->nbrs;
        u->n_nbrs = x->n;
        u->set_nbrs = 1;
    } else if (it->has_pop) {
        /* Written without the model's extras: its decayed popularity, moved
         * to the model's scale reference so the kernel's offset applies. */
        u->logpop = it->pop > 0 ? (float)log(it->pop) - pop_offset : -INFINITY;
        u->set_logpop = 1;
    }
}

/* ---- global state: blend weights and clocks ---- */

static int refresh_global(sr_ranker_backend_t *be)
{
    const void *g = NULL;
    size_t len = 0;
    int rc = sr_store_get_global(be->fs, &g, &len);
    if (rc < 0) return rc;
    if (!g || len != sizeof(sr_global_state_t)) return 0; /* no trainer yet */
    sr_global_state_t *gs = malloc(sizeof(*gs));
    if (!gs) return SR_ERR_NOMEM;
    memcpy(gs, g, sizeof(*gs));
    sr_score_conf_t c;
    sr_ranker_score_conf(be->r, &c);
    int ok = 1;
    for (int k = 0; k < SR_BLEND_NFEAT; k++)
        ok &= isfinite(gs->blend[k]);
    if (ok && gs->clock_ms > 0) {
        memcpy(c.blend, gs->blend, sizeof(c.blend));
        double e = (double)(gs->clock_ms - gs->pop_ref_ms) / (1000.0 * be->mp.pop_half_life_s);
        c.pop_offset = (float)(-e * 0.69314718055994531);
        sr_ranker_set_conf_(be->r, &c, gs->clock_ms);
    }
    free(gs);
    return 0;
}

/* ---- load and follow ---- */

static int load_all(sr_ranker_backend_t *be)
{
    sr_ranker_t *r = be->r;
    sr_store_items_t *all = NULL;
    int64_t t0 = mono_ms();
    int rc = sr_store_load_items(be->fs, &all);
    if (rc < 0) return rc;
    if (all->n && (int)all->dim != r->dim) {
        sr_log(SR_LOG_ERROR,
               "ranker: items in redis have dim %u, the ranker uses model.dim=%d; none loaded",
               all->dim, r->dim);
        be->cur = all->cursor;
        sr_store_items_free(all);
        return 0;
    }
    sr_score_conf_t c;
    sr_ranker_score_conf(r, &c);
    /* Vectors come contiguous from the load; the model's extras (exact
     * popularity, counts, neighbours) come with the full item records,
     * read in batches. */
    enum { B = 512 };
    sr_item_update_t *ups = malloc(B * sizeof(*ups));
    extra_t *xs = malloc(B * sizeof(*xs));
    const char **ids = malloc(B * sizeof(*ids));
    size_t *lens = malloc(B * sizeof(*lens));
    sr_store_item_t *recs = malloc(B * sizeof(*recs));
    rc = (ups && xs && ids && lens && recs) ? 0 : SR_ERR_NOMEM;
    for (uint32_t off = 0; rc == 0 && off < all->n; off += B) {
        uint32_t n = all->n - off < B ? all->n - off : B;
        for (uint32_t j = 0; j < n; j++) {
            ids[j] = all->id_buf + all->id_off[off + j];
            lens[j] = all->id_len[off + j];
        }
        long got = sr_store_get_items(be->fs, ids, lens, n, recs);
        if (got < 0) {
            rc = (int)got;
            break;
        }
        for (uint32_t j = 0; j < n; j++) {
            uint32_t i = off + j;
            sr_store_item_t base = {.id = ids[j],
                                    .id_len = lens[j],
                                    .bias = all->bias[i],
                                    .has_pop = 1,
                                    .pop = all->pop[i]};
            const sr_store_item_t *src = recs[j].exists ? &recs[j] : &base;
            sr_store_item_t tmp = *src;
            tmp.id = ids[j];
            tmp.id_len = lens[j];
            to_update(&tmp, all->num[i], all->vec + (size_t)i * all->dim, &xs[j], c.pop_offset,
                      &ups[j]);
        }
        int arc = sr_items_apply(r->items, ups, n);
        if (arc < 0) rc = arc;
    }
    if (rc == 0) {
        be->cur = all->cursor;
        atomic_store(&be->cur_seq, be->cur.seq);
        atomic_store(&r->last_update_ms, sr_ranker_wall_ms_());
        sr_log(SR_LOG_INFO, "ranker: loaded %u items (dim %u) in %lld ms", all->n, all->dim,
               (long long)(mono_ms() - t0));
    }
    free(ups);
    free(xs);
    free(ids);
    free(lens);
    free(recs);
    sr_store_items_free(all);
    return rc;
}

/* Applies up to one batch of stream entries; returns how many or <0. */
static long follow_once(sr_ranker_backend_t *be, int *gap)
{
    const sr_store_update_t *ups = NULL;
    long n = sr_store_read_updates(be->fs, &be->cur, UPDATES_BATCH, &ups, gap);
    if (n <= 0) return n;
    sr_score_conf_t c;
    sr_ranker_score_conf(be->r, &c);
    sr_item_update_t *u = malloc((size_t)n * sizeof(*u));
    extra_t *xs = malloc((size_t)n * sizeof(*xs));
    long rc = n;
    if (!u || !xs) {
        rc = SR_ERR_NOMEM;
    } else {
        size_t m = 0;
        for (long j = 0; j < n; j++) {
            const sr_store_item_t *it = &ups[j].item;
            if (it->dim != (uint16_t)be->r->dim || !it->vec) continue;
            to_update(it, it->num, it->vec, &xs[m], c.pop_offset, &u[m]);
            m++;
        }
        int arc = sr_items_apply(be->r->items, u, m);
        if (arc < 0) rc = arc;
        atomic_store(&be->r->last_update_ms, sr_ranker_wall_ms_());
    }
    free(u);
    free(xs);
    atomic_store(&be->cur_seq, be->cur.seq);
    return rc;
}

static void *follower(void *arg)
{
    sr_ranker_backend_t *be = arg;
    sr_ranker_t *r = be->r;
    char err[256];
    int64_t next_global = 0, next_lag = 0;
    int need_load = 1;
    while (!atomic_load(&be->stop)) {
        if (!be->fs) {
            be->fs = sr_store_new(&be->so, err, sizeof(err));
            if (!be->fs) {
                redis_down(r, "connect", err);
                sleep_ms(200);
                continue;
            }
        }
        int64_t now = mono_ms();
        int rc = 0;
        if (now >= next_global) {
            rc = refresh_global(be);
            next_global = now + GLOBAL_EVERY_MS;
        }
        if (rc == 0 && need_load) {
            rc = load_all(be);
            if (rc == 0) {
                need_load = 0;
                atomic_store(&r->loaded, 1);
            }
        }
        long n = 0;
        int gap = 0;
        if (rc == 0) {
            n = follow_once(be, &gap);
            if (n < 0) rc = (int)n;
        }
        if (rc < 0) {
            redis_down(r, "follow", sr_store_errstr(be->fs));
            sleep_ms(100);
            continue;
        }
        redis_up(r);
        if (gap) {
            sr_log(SR_LOG_WARN, "ranker: item update stream has a gap (trimmed or redis "
                                "restarted): reloading all items");
            need_load = 1;
            continue;
        }
        if (n == UPDATES_BATCH || now >= next_lag) {
            sr_store_cursor_t tail;
            if (sr_store_updates_tail(be->fs, &tail) == 0)
                atomic_store(&r->stream_lag,
                             tail.seq > be->cur.seq ? (long long)(tail.seq - be->cur.seq) : 0);
            next_lag = now + LAG_EVERY_MS;
        } else if (n < UPDATES_BATCH) {
            atomic_store(&r->stream_lag, 0);
        }
        if (n < UPDATES_BATCH) sleep_ms(be->poll_ms);
    }
    return NULL;
}

/* ---- request-side user reads ---- */

static sr_store_t *pool_get(sr_ranker_backend_t *be, char *err, size_t n)
{
    pthread_mutex_lock(&be->pool_mu);
    sr_store_t *s = be->n_pool ? be->pool[--be->n_pool] : NULL;
    pthread_mutex_unlock(&be->pool_mu);
    if (!s) s = sr_store_new(&be->so, err, n);
    return s;
}

static void pool_put(sr_ranker_backend_t *be, sr_store_t *s)
{
    pthread_mutex_lock(&be->pool_mu);
    if (be->n_pool < POOL_MAX) {
        be->pool[be->n_pool++] = s;
        s = NULL;
    }
    pthread_mutex_unlock(&be->pool_mu);
    sr_store_destroy(s);
}

static int store_get_user(void *opaque, const char *user, size_t len, sr_ranker_user_t *out)
{
    sr_ranker_backend_t *be = opaque;
    char err[256];
    sr_store_t *s = pool_get(be, err, sizeof(err));
    if (!s) {
        redis_down(be->r, "connect", err);
        return SR_ERR_UNAVAIL;
    }
    sr_store_user_t u;
    long rc = sr_store_get_users(s, &user, &len, 1, &u);
    if (rc < 0) {
        redis_down(be->r, "read user", sr_store_errstr(s));
        pool_put(be, s);
        return rc == SR_ERR_CORRUPT ? SR_ERR_CORRUPT : SR_ERR_UNAVAIL;
    }
    redis_up(be->r);
    out->found = u.exists;
    if (u.exists) {
        out->has_vec = u.vec && u.dim == (uint16_t)be->r->dim;
        if (out->has_vec) memcpy(out->vec, u.vec, (size_t)u.dim * sizeof(float));
        /* Keep the newest entries when the list is longer than ours. */
        uint32_t skip = u.n_recent > SR_RANKER_RECENT_MAX ? u.n_recent - SR_RANKER_RECENT_MAX : 0;
        out->n_recent = 0;
        for (uint32_t j = skip; j < u.n_recent; j++)
            out->recent[out->n_recent++] = (sr_ranker_recent_t){
                .num = u.recent[j].num, .ts_ms = u.recent[j].ts_ms, .type = u.recent[j].type};
        out->events = (int64_t)u.events;
    }
    pool_put(be, s);
    return 0;
}

int sr_ranker_backend_health_(sr_ranker_t *r, sr_ranker_health_t *h)
{
    sr_ranker_backend_t *be = r->be;
    char err[256];
    sr_store_t *s = pool_get(be, err, sizeof(err));
    sr_store_cursor_t tail;
    if (!s) {
        redis_down(r, "connect", err);
    } else if (sr_store_updates_tail(s, &tail) < 0) {
        redis_down(r, "ping", sr_store_errstr(s));
    } else {
        redis_up(r);
        uint64_t cur = atomic_load(&be->cur_seq);
        if (atomic_load(&r->loaded)) h->stream_lag = tail.seq > cur ? (int64_t)(tail.seq - cur) : 0;
    }
    if (s) pool_put(be, s);
    h->redis_ok = atomic_load(&r->redis_ok);
    if (!h->redis_ok) {
        pthread_mutex_lock(&r->reason_mu);
        snprintf(h->reason, sizeof(h->reason), "redis unavailable: %.130s", r->reason);
        pthread_mutex_unlock(&r->reason_mu);
        return SR_ERR_UNAVAIL;
    }
    return 0;
}

void sr_ranker_backend_destroy_(sr_ranker_backend_t *be)
{
    if (!be) return;
    atomic_store(&be->stop, 1);
    if (be->th_started) pthread_join(be->th, NULL);
    sr_store_destroy(be->fs);
    for (int i = 0; i < be->n_pool; i++)
        sr_store_destroy(be->pool[i]);
    pthread_mutex_destroy(&be->pool_mu);
    free(be);
}

static int set_model_param(const char *key, const char *value, void *opaque)
{
    sr_model_params_t *p = opaque;
    sr_model_params_set(p, key + strlen("model."), value);
    return 0;
}

sr_ranker_t *sr_ranker_new(const sr_conf_t *conf, char *errstr, size_t errstr_size)
{
    sr_ranker_backend_t *be = calloc(1, sizeof(*be));
    if (!be) {
        snprintf(errstr, errstr_size, "ranker: out of memory");
        return NULL;
    }
    pthread_mutex_init(&be->pool_mu, NULL);
    atomic_init(&be->stop, 0);
    atomic_init(&be->cur_seq, 0);
    sr_redis_url_t url;
    char uerr[256];
    if (sr_redis_url_parse(sr_conf_str(conf, "redis.url"), &url, uerr, sizeof(uerr)) != 0) {
        snprintf(errstr, errstr_size, "redis.url: %s", uerr);
        sr_ranker_backend_destroy_(be);
        return NULL;
    }
    snprintf(be->host, sizeof(be->host), "%s", url.host);
    snprintf(be->password, sizeof(be->password), "%s", url.password);
    snprintf(be->prefix, sizeof(be->prefix), "%s", sr_conf_str(conf, "redis.prefix"));
    sr_store_opts_init(&be->so);
    be->so.host = be->host;
    be->so.port = url.port;
    be->so.password = be->password[0] ? be->password : NULL;
    be->so.db = url.db;
    be->so.prefix = be->prefix;
    be->so.timeout_ms = (int)sr_conf_int(conf, "redis.timeout.ms");
    be->poll_ms = (int)sr_conf_int(conf, "ranker.follow.poll.ms");
    sr_model_params_init(&be->mp);
    sr_conf_foreach(conf, "model.", set_model_param, &be->mp);

    sr_ranker_opts_t o;
    sr_ranker_opts_init(&o);
    o.dim = be->mp.dim;
    memcpy(o.score.weight, be->mp.weight, sizeof(o.score.weight));
    o.score.recent_half_life_s = be->mp.recent_half_life_s;
    o.score.cooc_window = be->mp.cooc_window;
    o.prune = sr_conf_bool(conf, "ranker.score.prune");
    o.get_user = store_get_user;
    o.opaque = be;
    sr_ranker_t *r = sr_ranker_alloc_(&o, errstr, errstr_size);
    if (!r) {
        sr_ranker_backend_destroy_(be);
        return NULL;
    }
    be->r = r;
    r->be = be;
    /* One synchronous attempt so a wrong address or schema is reported at
     * start; after that the follower keeps retrying on its own. */
    char err[256];
    be->fs = sr_store_new(&be->so, err, sizeof(err));
    if (!be->fs) {
        if (strstr(err, "schema")) {
            snprintf(errstr, errstr_size, "%s", err);
            sr_ranker_destroy(r);
            return NULL;
        }
        sr_log(SR_LOG_WARN, "ranker: %s; retrying in the background", err);
        redis_down(r, "connect", err);
    }
    if (pthread_create(&be->th, NULL, follower, be) != 0) {
        snprintf(errstr, errstr_size, "ranker: cannot start the follower thread");
        sr_ranker_destroy(r);
        return NULL;
    }
    be->th_started = 1;
    return r;
}
