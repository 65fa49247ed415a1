/* Internals shared by the ranker's source files (not installed). */
#ifndef SR_RANKER_INT_H
#define SR_RANKER_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "quant.h"
#include "sr_items.h"
#include "sr_ranker.h"

/* One /v1/rank candidate: its score, input position, catalogue index. */
typedef struct sr_rank_row {
    float s;
    uint32_t pos;
    int32_t idx; /* -1: not in the catalogue */
} sr_rank_row_t;

/* Per-request scratch memory, pooled so a request allocates nothing once the
 * pool is warm. */
typedef struct sr_scratch {
    struct sr_scratch *next;
    float *scores; /* cap floats */
    uint8_t *skip; /* cap bytes, all zero between requests */
    uint32_t cap;
    uint32_t *idx; /* kcap top-K indices */
    float *top;    /* kcap top-K scores */
    size_t kcap;
    float *uvec;     /* dim */
    float *kscratch; /* 2 * dim, for the scoring kernel */
    /* two-stage recommend: the dense vector, its int16 copy, the rows
     * stage one keeps and their upper bounds, then their exact scores */
    float *vvec;    /* dim */
    int16_t *w16;   /* dim */
    uint32_t *cand; /* cap */
    float *ucand;   /* cap */
    float *cs;      /* cap */
    /* /v1/rank: per-candidate rows, lookups, known rows and their
     * scores (candidates may repeat, so ncap, not cap) */
    sr_rank_row_t *rows; /* ncap */
    int32_t *found;      /* ncap */
    uint32_t *rcand;     /* ncap */
    float *rcs;          /* ncap */
    size_t ncap;
    sr_ranker_recent_t recent[SR_RANKER_RECENT_MAX];
    sr_score_recent_t srec[SR_RANKER_RECENT_MAX];
} sr_scratch_t;

typedef struct sr_ranker_backend sr_ranker_backend_t; /* Redis side, follow.c */

struct sr_ranker_s {
    sr_ranker_opts_t o;
    int dim;
    sr_items_t *items;
    pthread_mutex_t pool_mu;
    sr_scratch_t *pool;
    sr_ranker_backend_t *be; /* NULL for custom rankers */
    atomic_int loaded;
    atomic_int redis_ok;
    atomic_llong stream_lag;
    atomic_llong last_update_ms;
    pthread_mutex_t reason_mu;
    char reason[160];
    /* Scoring conf and the model clock; the follower replaces them. */
    pthread_mutex_t conf_mu;
    sr_score_conf_t conf;
    int64_t clock_ms; /* 0: unknown */
};

/* Sets the blend and clock (follower thread). */
void sr_ranker_set_conf_(sr_ranker_t *r, const sr_score_conf_t *c, int64_t clock_ms);

/* Shared constructor: validates opts, allocates the catalogue. */
sr_ranker_t *sr_ranker_alloc_(const sr_ranker_opts_t *o, char *errstr, size_t errstr_size);
void sr_ranker_set_reason_(sr_ranker_t *r, const char *reason);

/* follow.c: the Redis backend.  _health pings; _destroy stops the thread. */
int sr_ranker_backend_health_(sr_ranker_t *r, sr_ranker_health_t *h);
void sr_ranker_backend_destroy_(sr_ranker_backend_t *be);

int64_t sr_ranker_wall_ms_(void);

#endif
