/* The ranker as a C library (DESIGN.md §7): answers "top-K for this user",
 * "re-rank these candidates for this user", "items like this one" and
 * "what is popular", from an in-memory item catalogue that follows the
 * trainer's item-update stream and from the user's state read per request.
 *
 * `streamrec serve` is this library behind HTTP (sr_api.h, sr_http.h); a
 * service that embeds the ranker calls these functions directly.
 *
 * Two ways to make one:
 *  - sr_ranker_new(conf): backed by Redis through store/ (redis.url,
 *    redis.prefix, ranker.*).  Loads all items, then a background thread
 *    follows the update stream; user state is read from Redis per request.
 *  - sr_ranker_new_custom(opts): no Redis; the caller feeds items with
 *    sr_ranker_upsert_items and answers user-state reads through a callback
 *    (embedding into a service with its own storage; unit tests).
 *
 * Threading: every query function (recommend, rank, similar, popular,
 * health, stats) is safe from any number of threads at once and never waits
 * for the update thread: the item catalogue is swapped left-right
 * (sr_items.h).  sr_ranker_upsert_items may run concurrently with queries
 * (one upserting thread at a time).  new/destroy are single-threaded.
 *
 * Errors: 0 or a negative SR_ERR_* (sr_err.h): SR_ERR_INVAL (bad argument),
 * SR_ERR_NOTFOUND (unknown item for similar), SR_ERR_UNAVAIL (Redis
 * unreachable; the ranker reconnects by itself on later calls),
 * SR_ERR_NOMEM. */
#ifndef SR_RANKER_H
#define SR_RANKER_H

#include <stddef.h>
#include <stdint.h>

#include "sr_config.h"
#include "sr_score.h"

typedef struct sr_ranker_s sr_ranker_t;

/* Longest recent-item list a user state may carry. */
#define SR_RANKER_RECENT_MAX 256

/* Event types of recent items; the values of sr_event_type_t. */
enum { SR_RANKER_VIEW = 0, SR_RANKER_CLICK, SR_RANKER_CART, SR_RANKER_PURCHASE };

typedef struct sr_ranker_recent {
    /* Exactly one of the two identifies the item: num >= 0 (the store's
     * global item number), or id/id_len. */
    int64_t num;
    const char *id;
    size_t id_len;
    int64_t ts_ms;
    int type; /* SR_RANKER_* */
} sr_ranker_recent_t;

/* A user's state as the scorer needs it.  The ranker provides vec (dim
 * floats) and recent (SR_RANKER_RECENT_MAX entries) buffers; the source
 * fills them.  Pointers in recent[] must stay valid until the query
 * returns (the source may point into its own per-thread storage). */
typedef struct sr_ranker_user {
    int found;  /* 0: unknown user (cold start) */
    float *vec; /* long-term vector p_u, dim floats */
    int has_vec;
    sr_ranker_recent_t *recent;
    size_t n_recent; /* newest last */
    int64_t events;  /* events applied for this user */
} sr_ranker_user_t;

/* Reads one user's state.  Returns 0 (found or not, see user->found) or a
 * negative SR_ERR_* (SR_ERR_UNAVAIL when the backing store is down).  Called
 * on request threads, concurrently: it must be thread-safe. */
typedef int (*sr_ranker_user_fn)(void *opaque, const char *user, size_t len, sr_ranker_user_t *out);

typedef struct sr_ranker_opts {
    int dim;                    /* latent dimension of item and user vectors */
    sr_ranker_user_fn get_user; /* NULL: every user is unknown */
    void *opaque;
    /* Clock that recency decays to; NULL: the model's clock when known
     * (Redis-backed rankers read it with the blend weights), else wall. */
    int64_t (*now_ms)(void *opaque);
    /* The model's blend (sr_score.h).  Redis-backed rankers replace blend[]
     * and pop_offset with the trainer's learned values as they change. */
    sr_score_conf_t score;
    /* Two-stage recommend and similar (ranker/quant.h): score every item
     * from an int8 copy of the item matrix with an error bound, then only
     * the items that may make the top K in float.  Same answer as the full
     * pass, to the bit; 0 turns it off (ranker.score.prune). */
    int prune;
} sr_ranker_opts_t;

/* dim 32, no user source, and the model's initial blend and default
 * signal parameters (sr_model_params_init). */
void sr_ranker_opts_init(sr_ranker_opts_t *o);

/* Current scoring conf (a copy), e.g. to log the learned blend. */
void sr_ranker_score_conf(sr_ranker_t *r, sr_score_conf_t *out);

/* Redis-backed ranker.  Connects, checks the schema, loads every item and
 * starts the update follower.  NULL with errstr set on failure (bad config,
 * Redis unreachable at start, schema mismatch).  conf is read during the call
 * only. */
sr_ranker_t *sr_ranker_new(const sr_conf_t *conf, char *errstr, size_t errstr_size);
/* Ranker without Redis; opts copied.  NULL with errstr on bad opts/ENOMEM. */
sr_ranker_t *sr_ranker_new_custom(const sr_ranker_opts_t *opts, char *errstr, size_t errstr_size);
/* Stops the follower thread and frees everything.  NULL is a no-op.  No query
 * may be running. */
void sr_ranker_destroy(sr_ranker_t *r);

/* Inserts or updates items (custom rankers).  vecs: n x dim floats or NULL
 * (keep/zero); bias and pop (decayed popularity, >= 0) may be NULL (keep).
 * Returns 0 or SR_ERR_NOMEM / SR_ERR_INVAL. */
int sr_ranker_upsert_items(sr_ranker_t *r, const char *const *ids, const size_t *lens, size_t n,
                           const float *vecs, const float *bias, const float *pop);

typedef enum sr_exclude { SR_EXCLUDE_NONE = 0, SR_EXCLUDE_PURCHASED, SR_EXCLUDE_SEEN } sr_exclude_t;
typedef enum sr_source { SR_SOURCE_PERSONAL = 0, SR_SOURCE_POPULAR } sr_source_t;

/* One answer row.  id points into the result's own arena. */
typedef struct sr_ranked {
    const char *id;
    size_t id_len;
    float score;
    int unknown; /* rank only: the candidate is not in the catalogue */
} sr_ranked_t;

/* A query's answer.  Owned by the caller after the call: free it with
 * sr_ranker_result_free (safe on a zeroed or already-freed result). */
typedef struct sr_ranker_result {
    sr_source_t source;
    size_t n;
    sr_ranked_t *items;
    char *arena_;
} sr_ranker_result_t;

void sr_ranker_result_free(sr_ranker_result_t *res);

/* Top-k items for user by the blend score (sr_score_all), best first; ties
 * broken by catalogue order (older items first).  Unknown users (or users
 * without a vector or any known recent item) get decayed popularity with
 * source SR_SOURCE_POPULAR, scores being the decayed popularity.  exclude
 * drops the items of the user's recent history (the trainer keeps the last
 * model.recent.max events) that were purchased, or all of them.
 * SR_ERR_UNAVAIL before the first item load finished. */
int sr_ranker_recommend(sr_ranker_t *r, const char *user, size_t user_len, size_t k,
                        sr_exclude_t exclude, sr_ranker_result_t *out);

/* Re-ranks n candidates for user: known items by score (best first, stable
 * for equal scores), then unknown items in input order, marked unknown.  A
 * known item's score is the one sr_ranker_recommend gives it (the same
 * kernel pieces on the candidates' rows only, so the same bits). */
int sr_ranker_rank(sr_ranker_t *r, const char *user, size_t user_len, const char *const *items,
                   const size_t *lens, size_t n, sr_ranker_result_t *out);

/* The k items most similar to item (sr_score_similar: cosine of item vectors
 * plus normalised co-occurrence), the item itself excluded; in two stages
 * with opts.prune, with the full pass's answer.
 * SR_ERR_NOTFOUND when item is unknown. */
int sr_ranker_similar(sr_ranker_t *r, const char *item, size_t len, size_t k,
                      sr_ranker_result_t *out);

/* The k most popular items; score = decayed popularity. */
int sr_ranker_popular(sr_ranker_t *r, size_t k, sr_ranker_result_t *out);

typedef struct sr_ranker_health {
    int redis_ok; /* 1 when the last Redis call succeeded (custom: 1) */
    int loaded;   /* 1 once the initial item load finished */
    uint32_t items;
    int64_t stream_lag;     /* item updates seen in Redis but not yet applied */
    int64_t last_update_ms; /* wall time the follower last applied a batch */
    char reason[160];       /* why unhealthy, "" when healthy */
} sr_ranker_health_t;

/* Why the last Redis call failed ("" when it succeeded), copied into buf.
 * Does no I/O. */
void sr_ranker_reason(sr_ranker_t *r, char *buf, size_t size);
/* 1 once the initial item load finished (custom rankers: always). */
int sr_ranker_loaded(sr_ranker_t *r);

/* Fills h; returns 0 when healthy, SR_ERR_UNAVAIL when not.  Pings Redis
 * (one round trip) for Redis-backed rankers. */
int sr_ranker_health(sr_ranker_t *r, sr_ranker_health_t *h);

#endif
