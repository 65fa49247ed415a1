/* The ranker's in-memory item catalogue: ids, the contiguous item matrix
 * (n x dim float32, row-major, 64-byte aligned, BLAS-ready) with an int8
 * copy for the ranker's first scoring stage, biases and popularity,
 * updated by one writer (the update-stream follower) while many request
 * threads read it without ever blocking.
 *
 * Why "left-right" and not a fresh copy per update: the update stream
 * delivers a handful of changed items every few milliseconds, and copying a
 * 100k x 32 matrix (12.8 MB) for each batch would burn a core.  Instead two
 * full copies ("sides") are kept.  Readers enter the active side (one atomic
 * increment, one atomic load); the writer applies a batch to the idle side,
 * publishes it with one atomic store, waits until the last reader has left
 * the old side (a grace period that lasts at most one request), then applies
 * the same batch there.  A batch costs O(changed items), readers see either
 * the whole batch or none of it, and memory is 2x the catalogue.
 *
 * Threading: sr_items_enter/leave and everything between them are safe from
 * any number of threads.  sr_items_apply must be called by one thread at a
 * time (it takes an internal lock so misuse is only slow, not wrong).
 * A reader must not call sr_items_apply while inside a view (deadlock). */
#ifndef SR_ITEMS_H
#define SR_ITEMS_H

#include <stddef.h>
#include <stdint.h>

#include "sr_score.h"

typedef struct sr_items_s sr_items_t;

/* One side as readers see it: immutable while entered. */
typedef struct sr_items_view {
    uint32_t n; /* items 0..n-1 */
    int dim;
    const float *vec; /* n x dim, row i at vec + i*dim */
    /* int8 copy of vec, row i ~ qscale[i] * q8[i*dim..] (ranker/quant.h);
     * kept with vec on every update */
    const int8_t *q8;
    const float *qscale;
    /* n, sqrtf(sr_dot(q_i, q_i)) + 1e-12f: the row's norm as
     * sr_score_similar's cosine computes it, to the bit */
    const float *norm;
    const float *bias;   /* n */
    const float *logpop; /* n, log of (scaled) popularity, -inf when none */
    const float *count;  /* n, occurrences (co-occurrence normalisation) */
    const int64_t *num;  /* n, the store's global item number, or -1 */
    const void *priv_;   /* lookup state: use sr_items_find / sr_items_id */
} sr_items_view_t;

/* A co-occurrence neighbour by id (resolved to an index when applied;
 * neighbours not in the catalogue at that time are dropped). */
typedef struct sr_item_nbr_in {
    const char *id;
    size_t id_len;
    float count;
} sr_item_nbr_in_t;

/* One item to insert or overwrite.  vec has dim floats (NULL keeps the old
 * vector, or zeros for a new item); the set_* flags choose which other
 * fields change. */
typedef struct sr_item_update {
    const char *id;
    size_t id_len;
    int64_t num; /* store item number, -1 when unknown */
    const float *vec;
    float bias;
    float logpop;
    float count;
    const sr_item_nbr_in_t *nbrs;
    size_t n_nbrs;
    int set_bias, set_logpop, set_count, set_nbrs;
} sr_item_update_t;

/* The view as the scoring kernel's item side (sr_score.h), neighbour
 * lists included.  Valid while the view is entered. */
void sr_items_score_items(const sr_items_view_t *v, sr_score_items_t *it);

/* An empty catalogue of dimension dim (1..1024).  NULL on ENOMEM/bad dim. */
sr_items_t *sr_items_new(int dim);
/* NULL is a no-op.  No reader may be inside. */
void sr_items_destroy(sr_items_t *it);
int sr_items_dim(const sr_items_t *it);

/* Enters the current side; the view stays valid and unchanged until the
 * matching sr_items_leave(it, token).  Never blocks. */
int sr_items_enter(sr_items_t *it, sr_items_view_t *view);
void sr_items_leave(sr_items_t *it, int token);

/* Dense index of an id in the view, -1 when absent.  O(1). */
int32_t sr_items_find(const sr_items_view_t *v, const char *id, size_t len);
/* sr_items_find for n ids at once into out[n]; faster than n calls for
 * a large catalogue (the lookups' cache misses overlap). */
void sr_items_find_many(const sr_items_view_t *v, const char *const *ids, const size_t *lens,
                        size_t n, int32_t *out);
/* Index of a store item number, -1 when absent.  O(1). */
int32_t sr_items_find_num(const sr_items_view_t *v, int64_t num);
/* The id of index i (not NUL-terminated; *len set).  Valid inside the view. */
const char *sr_items_id(const sr_items_view_t *v, uint32_t i, size_t *len);

/* Applies a batch atomically for readers (all or nothing visible): first
 * every row, then the neighbour lists, so neighbours may name items of the
 * same batch.  Ids longer than 1024 bytes or empty are skipped.  Returns the
 * number applied (>= 0) or SR_ERR_NOMEM (then the prefix applied so far is
 * published, on both sides alike). */
int sr_items_apply(sr_items_t *it, const sr_item_update_t *ups, size_t n);

/* Items in the published side (a relaxed read, for metrics). */
uint32_t sr_items_count(sr_items_t *it);

#endif
