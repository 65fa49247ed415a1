/* Internal layout of sr_model_t, shared by the model's own .c files
 * (learning, state export/import, snapshots).  Not a public header.
 *
 * Everything per user or per item lives in dense arrays indexed by the id
 * tables' dense indices, grown by doubling (realloc of large blocks is an
 * mremap on glibc, not a copy), so the item matrix Q is one contiguous
 * n_items x dim row-major block the scoring kernel streams over. */
#ifndef SR_MODEL_IMPL_H
#define SR_MODEL_IMPL_H

#include "sr_idtable.h"
#include "sr_model.h"
#include "sr_model_state.h"
#include "sr_score.h"

/* AdaGrad accumulators start here (the "initial accumulator" of
 * TensorFlow's Adagrad), which bounds the first steps. */
#define SR_ADAGRAD_INIT 0.01f
/* Renormalise scaled popularity after this many half-lives (2^500 is far
 * from double overflow); an O(n_items) step once per 500 half-lives. */
#define SR_POP_RENORM 500.0
/* The blend learner takes the strongest SR_BLEND_NBRS neighbours of each
 * context item as candidates (the lists are sorted by count): they are the
 * competitors that matter for the top of the list, and the cost stays
 * bounded however long the lists are. */
#define SR_BLEND_NBRS 16
/* Neighbour block size classes: 4 << class entries, up to SR_COOC_MAX. */
#define SR_NBR_CLASSES 7
#define SR_NBR_NONE UINT32_MAX

struct sr_model_s {
    sr_model_params_t p;
    int dim;
    sr_idtable_t *uid, *iid;
    uint32_t n_users, cap_users, n_items, cap_items;

    /* users */
    float *P; /* cap_users x dim */
    float *p_acc;
    uint64_t *u_events;
    int64_t *u_last;
    sr_score_recent_t *rec; /* cap_users x recent_max, oldest first */
    uint16_t *rec_n;
    uint8_t *u_dirty;

    /* items */
    float *Q; /* cap_items x dim */
    float *q_acc, *b, *b_acc;
    double *pop; /* scaled decayed popularity */
    float *logv; /* log(pop) (the kernel's logpop) */
    float *cnt;  /* occurrence counts */
    /* Co-occurrence lists live in one pool of blocks whose size doubles
     * (4, 8, ..., 256 entries) as a list fills, so memory follows the
     * actual pairs rather than n_items x cooc_max; freed blocks go to a
     * free list per size class. */
    sr_score_nbr_t *pool;
    uint8_t *pool_fp; /* one-byte fingerprint of each pool entry's item */
    uint32_t pool_used, pool_cap;
    uint32_t pool_free[SR_NBR_CLASSES];
    uint32_t *nbr_off;
    uint16_t *nbr_n, *nbr_cap;
    uint8_t *i_dirty;
    /* sr_model_item_extra_gen: bumped per item when its count, popularity
     * or neighbour list changes, and for all items at once (xgen_all) when
     * every popularity is rescaled or the global state is imported. */
    uint32_t *xgen;
    uint32_t xgen_all;
    uint32_t *mark; /* per-event candidate stamps of the blend learner */
    int32_t *markpos;
    uint32_t stamp;

    uint32_t *dirty_u, n_dirty_u, cap_dirty_u;
    uint32_t *dirty_i, n_dirty_i, cap_dirty_i;

    /* global */
    uint64_t events;
    int64_t clock_ms, pop_ref_ms;
    float blend[SR_BLEND_NFEAT], blend_acc[SR_BLEND_NFEAT];
    uint32_t ring[SR_SAMPLER_RING];
    uint32_t ring_len, ring_pos;

    /* scratch, dim floats each */
    float *s, *uvec, *gp, *tmp;
    /* blend learner scratch */
    int32_t *cand;
    float (*feat)[SR_BLEND_NFEAT];
    float *zc;
    float *corr; /* sampled-softmax logit correction per candidate */
    uint32_t cap_cand;
};

/* Item i's neighbour list (pool memory: valid until the next pool change). */
static inline sr_score_nbr_t *sr_model_nbr_(const sr_model_t *m, uint32_t i)
{
    return m->pool ? m->pool + m->nbr_off[i] : NULL;
}
/* Makes room for at least n entries in item i's list (keeping its
 * contents).  0 or SR_ERR_NOMEM. */
int sr_model_nbr_reserve_(sr_model_t *m, uint32_t i, uint32_t n);
/* Recomputes the fingerprints of item i's list after its entries were
 * written directly (imports, snapshot loads). */
void sr_model_nbr_refp_(sr_model_t *m, uint32_t i);
#define NBR_FP_PAD 64

/* Prefetches the cache lines of [p, p + bytes): a hint, no value changes. */
static inline void sr_model_prefetch_lines_(const void *p, size_t bytes, int write)
{
    for (size_t o = 0; o < bytes; o += 64) {
        if (write)
            __builtin_prefetch((const char *)p + o, 1, 3);
        else
            __builtin_prefetch((const char *)p + o, 0, 3);
    }
}

int sr_model_grow_users_(sr_model_t *m, uint32_t need);
int sr_model_grow_items_(sr_model_t *m, uint32_t need);
void sr_model_init_item_(sr_model_t *m, uint32_t i);
void sr_model_mark_user_(sr_model_t *m, uint32_t u);
void sr_model_mark_item_(sr_model_t *m, uint32_t i);
int sr_model_params_check_(const sr_model_params_t *p, char *errstr, size_t errstr_size);
/* The negative sampler: up to n negatives (never pos) into out from the
 * generator state *rng; returns how many.  uniform (may be NULL) gets 1
 * for a negative drawn uniformly, 0 for one from the popularity ring.
 * Exposed for tests. */
int sr_model_sample_(const sr_model_t *m, uint64_t *rng, int32_t pos, int32_t *out,
                     unsigned char *uniform, int n);
/* The generator seed of an event: sr_hash64 of its id hash and the seed. */
uint64_t sr_model_event_seed_(const sr_model_t *m, const sr_event_t *ev);
const sr_score_nbr_t *sr_model_nbrs_(const void *opaque, int32_t item, size_t *n);

#endif
