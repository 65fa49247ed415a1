/* Model state export/import, for the trainer that persists the model in
 * Redis (DESIGN.md §6) and warm-loads it after a restart.
 *
 * "State" is everything that influences future updates: a trainer that
 * crashes and re-imports all state it had exported continues bit-identically
 * to one that never crashed, provided it restores
 *   1. every item, in ascending `index` order, into a fresh model, first
 *      creating them all (sr_model_item_intern in index order) and only then
 *      importing their states (neighbour lists name other items), because
 *      negative sampling picks items by dense index;
 *   2. the global state (sr_model_import_global), after the items;
 *   3. every user it will see again (in any order, any time before the
 *      user's next event: users do not influence each other except
 *      through items and the global state).
 * Snapshots (sr_model_save) write users sorted by id, so they do not depend
 * on the order users were imported in.
 *
 * Dirty tracking: every learn marks the user and the items it changed
 * (the positive, the sampled negatives, the co-occurrence neighbours it
 * updated).  Imports do not mark anything.  The global state changes with
 * every event; export it on every flush.
 *
 * Ownership: export functions fill a caller-owned struct whose pointers
 * point into the model and stay valid until the next call that changes the
 * model (learn, intern, import, clear_dirty).  Import functions copy.
 * Threading: as sr_model.h (no internal locking). */
#ifndef SR_MODEL_STATE_H
#define SR_MODEL_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "sr_model.h"
#include "sr_score.h"

/* Bounds of recent_max and cooc_max (the params are checked against them),
 * so the state structs can hold their lists inline. */
#define SR_RECENT_MAX 256
#define SR_COOC_MAX 256
/* Ring of recent positive items the popularity sampler draws from. */
#define SR_SAMPLER_RING 4096

typedef struct sr_state_recent {
    const char *item; /* id bytes (not NUL-terminated) */
    size_t item_len;
    uint32_t index; /* the item's dense index in this model (export only) */
    int64_t ts_ms;
    sr_event_type_t type;
} sr_state_recent_t;

typedef struct sr_user_state {
    const char *id;
    size_t id_len;
    int dim;
    const float *vec; /* long-term vector p_u, dim floats */
    float acc;        /* its row-wise AdaGrad accumulator */
    uint64_t events;  /* events of this user applied */
    int64_t last_ts_ms;
    size_t n_recent; /* oldest first, at most recent_max */
    sr_state_recent_t recent[SR_RECENT_MAX];
} sr_user_state_t;

typedef struct sr_state_nbr {
    const char *item;
    size_t item_len;
    float count;
} sr_state_nbr_t;

typedef struct sr_item_state {
    const char *id;
    size_t id_len;
    uint32_t index; /* dense index in this model (export only) */
    int dim;
    const float *vec; /* q_i, dim floats */
    float acc;        /* AdaGrad accumulator of q_i */
    float bias;
    float bias_acc;
    /* Decayed popularity: pop_scaled is the exact internal value (scaled by
     * the global clock, see sr_global_state_t); pop is it decayed to the
     * clock, pop_scaled * 2^-((clock_ms - pop_ref_ms) / half_life), which is
     * what a reader (ranker, Redis sorted set) wants.  Import reads
     * pop_scaled only. */
    double pop_scaled;
    double pop;
    float count; /* occurrences, for co-occurrence normalisation */
    size_t n_nbrs;
    sr_state_nbr_t nbrs[SR_COOC_MAX];
} sr_item_state_t;

typedef struct sr_global_state {
    int dim;
    uint32_t n_users, n_items; /* export only: sizes at export time */
    uint64_t events;           /* events applied in total */
    int64_t clock_ms;          /* newest event time seen */
    int64_t pop_ref_ms;        /* popularity scale reference time */
    float blend[SR_BLEND_NFEAT];
    float blend_acc[SR_BLEND_NFEAT];
    /* The sampler ring, as dense item indices (see rule 1 above). */
    uint32_t ring_len, ring_pos;
    uint32_t ring[SR_SAMPLER_RING];
} sr_global_state_t;

/* Dense index of the user/item id, creating it (zero/initial state) when
 * absent.  Negative SR_ERR_RANGE for a bad id, SR_ERR_NOMEM. */
int32_t sr_model_user_intern(sr_model_t *m, const char *id, size_t len);
int32_t sr_model_item_intern(sr_model_t *m, const char *id, size_t len);
const char *sr_model_user_id(const sr_model_t *m, uint32_t user, size_t *len);

/* Users / items changed since the last sr_model_clear_dirty: *idx points to
 * their dense indices (each once, in first-touch order); returns the count. */
size_t sr_model_dirty_users(const sr_model_t *m, const uint32_t **idx);
size_t sr_model_dirty_items(const sr_model_t *m, const uint32_t **idx);
void sr_model_clear_dirty(sr_model_t *m);

/* Exports; SR_ERR_RANGE for an index out of range. */
int sr_model_export_user(const sr_model_t *m, uint32_t user, sr_user_state_t *out);
int sr_model_export_item(const sr_model_t *m, uint32_t item, sr_item_state_t *out);
void sr_model_export_global(const sr_model_t *m, sr_global_state_t *out);

/* For an exporter that keeps what it built from an item's count,
 * pop_scaled and neighbour list (a trainer's encoded extras): a number
 * that changes whenever any of those may have changed (learning, an
 * import of the item or of the global state, a rescale of every
 * popularity).  Two equal numbers from the same model mean those three
 * are unchanged; most items of a flush are sampled negatives, whose only
 * change is their vector.  Numbers of different models (e.g. one rebuilt
 * after sr_model_new) are not comparable.  0 for an index out of range. */
uint64_t sr_model_item_extra_gen(const sr_model_t *m, uint32_t item);
/* sr_model_export_item without the neighbour list (n_nbrs = 0, so the id
 * lookups of the neighbours are skipped); count and pop_scaled are
 * still filled in.  SR_ERR_RANGE as above. */
int sr_model_export_item_vec(const sr_model_t *m, uint32_t item, sr_item_state_t *out);
/* A hint that item will be exported soon: starts loading its rows into
 * the cache (an export of thousands of scattered items is bound by memory
 * latency otherwise).  Changes nothing; no-op for an index out of range. */
void sr_model_prefetch_item_state(const sr_model_t *m, uint32_t item);

/* Imports overwrite the whole state of the id (creating it if absent) and
 * return its dense index, or SR_ERR_INVAL (dim differs from the model's,
 * too many recent/neighbours, bad type, non-finite numbers: nothing is
 * changed then), SR_ERR_RANGE (bad id), SR_ERR_NOMEM.  Recent items and
 * neighbours that name unknown items create them. */
int32_t sr_model_import_user(sr_model_t *m, const sr_user_state_t *st);
int32_t sr_model_import_item(sr_model_t *m, const sr_item_state_t *st);
/* SR_ERR_INVAL for a dim mismatch or a ring index >= n_items. */
int sr_model_import_global(sr_model_t *m, const sr_global_state_t *st);

/* The model's arrays as the scoring kernel's inputs (sr_score.h), for
 * callers that score with their own user state.  Valid until the next
 * call that changes the model. */
void sr_model_score_items(const sr_model_t *m, sr_score_items_t *it);
/* conf for scoring at now_ms (pop_offset set to the clock at now_ms). */
void sr_model_score_conf(const sr_model_t *m, int64_t now_ms, sr_score_conf_t *c);

/* Bytes of heap the model holds (tables, matrices, signals). */
size_t sr_model_memory(const sr_model_t *m);

#endif
