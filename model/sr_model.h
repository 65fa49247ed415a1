/* The online model (DESIGN.md §5): an implicit-feedback factorization model
 * trained one event at a time, with the real-time signals the ranker needs
 * (recent items, decayed popularity, item-item co-occurrence) and a final
 * blend whose weights are learned online from the same stream.
 *
 * Pure C: no Kafka, Redis, HTTP or files.  Snapshots go through read/write
 * callbacks so callers choose the medium.
 *
 * Threading: a sr_model_t is not internally locked.  One thread may call
 * sr_model_learn (and the other functions that change the model); readers
 * (lookups, sr_model_score_all, exports) may run concurrently with each
 * other but not with a writer unless the caller serialises them.
 * Different models are independent.
 *
 * Errors: functions return 0 / an index >= 0 on success, a negative SR_ERR_*
 * (sr_err.h) on failure. */
#ifndef SR_MODEL_H
#define SR_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "sr_event.h"

/* Every field is a config property (model.<name>).  Keep the struct free of
 * padding (an even number of 4-byte fields around the one uint64_t): a test
 * compares params bytewise. */
typedef struct sr_model_params {
    int dim;        /* latent factors k */
    int negatives;  /* sampled negatives per positive */
    float lr;       /* AdaGrad base learning rate */
    float l2;       /* L2 on touched rows */
    float clip;     /* per-coordinate gradient clip */
    float init_std; /* item vector init */
    uint64_t seed;
    float weight[SR_EV_NTYPES]; /* loss weight per event type */
    int recent_max;             /* recent items kept per user */
    float recent_half_life_s;
    float pop_half_life_s;
    int cooc_window;       /* co-occurrence window (user's last N items) */
    int cooc_max;          /* co-occurrence neighbours kept per item */
    float blend_lr;        /* learning rate of the online blend */
    float sampler_uniform; /* share of negatives drawn uniformly (rest:
                              popularity-proportional, from recent positives) */
    float blend_sample;    /* share of events the blend learns from */
    float cooc_backward;   /* a pair counts 1 in the earlier item's neighbour
                              list, this much in the later item's: lists lean
                              towards what comes next */
    float pop_impression;  /* popularity an impression adds (exposure, not
                              interest; other events add 1); > 0 keeps every
                              item's popularity positive */
    int uniform_neg_items; /* 1: a negative drawn uniformly updates its item
                              (vector, bias) as well as the user; 0: only
                              the user (popularity-drawn negatives always
                              update both); see model.c */
} sr_model_params_t;

/* Fills the defaults (the same values as the config table's model.*). */
void sr_model_params_init(sr_model_params_t *p);
/* Sets one parameter by its config name without the "model." prefix, e.g.
 * ("dim", "32"), ("weight.purchase", "4").  Returns 0, SR_ERR_NOTFOUND or
 * SR_ERR_PARSE/SR_ERR_RANGE. */
int sr_model_params_set(sr_model_params_t *p, const char *key, const char *value);

typedef struct sr_model_s sr_model_t;

/* Creates an empty model; the params are copied.  NULL with errstr set on
 * invalid params or ENOMEM. */
sr_model_t *sr_model_new(const sr_model_params_t *p, char *errstr, size_t errstr_size);
/* NULL is a no-op. */
void sr_model_destroy(sr_model_t *m);
const sr_model_params_t *sr_model_params(const sr_model_t *m);

typedef struct sr_learn_result {
    float loss;   /* weighted loss of this event before the update */
    int32_t user; /* dense index of the user */
    int32_t item; /* dense index of the item */
    int new_user; /* 1 when this event created the user */
    int new_item;
} sr_learn_result_t;

/* Learns from one event: ids are interned (copied), the user's recent items,
 * popularity, co-occurrence, factors and blend weights are updated.  res may
 * be NULL.  Deterministic: the same params, seed and event sequence give
 * bit-identical state.  Allocates only when a table grows. */
int sr_model_learn(sr_model_t *m, const sr_event_t *ev, sr_learn_result_t *res);

/* Id lookups: dense index >= 0, or -1 when unknown. */
int32_t sr_model_find_user(const sr_model_t *m, const char *id, size_t len);
int32_t sr_model_find_item(const sr_model_t *m, const char *id, size_t len);
uint32_t sr_model_n_users(const sr_model_t *m);
uint32_t sr_model_n_items(const sr_model_t *m);
/* The id of a dense item index; points into the model, valid until the
 * next learn call. */
const char *sr_model_item_id(const sr_model_t *m, uint32_t item, size_t *len);

/* Final ranking score (the blend) of every item for user, into
 * out[sr_model_n_items(m)].  user == -1 ranks a cold user (popularity).
 * now_ms is the time the recency signals decay to. */
void sr_model_score_all(const sr_model_t *m, int32_t user, int64_t now_ms, float *out);

/* Partial top-K of scores[0..n): writes up to k indices with the highest
 * scores, best first (ties: lower index first), skipping i where
 * skip && skip[i].  Returns the number written.  O(n log k). */
size_t sr_topk(const float *scores, uint32_t n, size_t k, const uint8_t *skip, uint32_t *idx_out,
               float *score_out);

/* Snapshot: a versioned, checksummed binary of the whole model.  write/read
 * return 0 on success.  Load returns NULL with errstr set on a bad magic,
 * version, checksum or truncated input. */
int sr_model_save(const sr_model_t *m, int (*write)(void *opaque, const void *buf, size_t len),
                  void *opaque);
sr_model_t *sr_model_load(int (*read)(void *opaque, void *buf, size_t len), void *opaque,
                          char *errstr, size_t errstr_size);

#endif
