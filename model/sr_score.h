/* The ranking score, as a stateless kernel over arrays the caller holds.
 *
 * The model (sr_model_score_all) and the ranker (which keeps its own item
 * matrix loaded from Redis) both call these functions, so a ranker fed the
 * same state computes the same score as the model.  Nothing here allocates
 * or keeps state: every function is thread-safe for concurrent callers that
 * do not write the arrays they pass.
 *
 * The score of item i for user u is a blend (DESIGN.md §5):
 *
 *   score = w_mf   * q_i . p_u             long-term taste
 *         + w_sess * q_i . s_u             short-term taste: s_u is the
 *                                          recency-weighted mean of the q of
 *                                          the user's last SR_SESS_LEN items
 *         + w_bias * b_i
 *         + w_pop  * max(logpop_i + pop_offset, SR_POP_FLOOR)
 *                                          log decayed popularity
 *         + w_rec  * log(1 + r_ui)         r_ui = sum over the user's recent
 *                                          events on i of weight[type] *
 *                                          2^(-age / recent_half_life)
 *         + w_last * [i is the user's last item]
 *         + w_seen * [i is in the user's recent list]
 *         + w_pos  * 1 / (1 + r)           r: i's rank among the user's
 *                                          distinct recent items, newest 0
 *         + w_r1 [r == 1] + w_r23 [2 <= r <= 3] + w_r47 [4 <= r <= 7]
 *                                          (a free-form rank curve)
 *         + w_gap  * [i in recent list] * (1 - 2^(-pause / recent_half_life))
 *                                          pause: now - the user's newest
 *                                          event (a new session)
 *         + w_repeat * [i in recent list] * (1 - distinct / n_recent)
 *                                          how much this user repeats
 *         + (i in recent list ? w_cooc_seen : w_cooc)
 *                  * sum_k 2^-k * co(j_k, i) / sqrt(n_j n_i)
 *                                          j_k: the user's k-th most recent
 *                                          distinct item, k < cooc_window,
 *                                          j_k != i
 *         + w_cond * [i not in recent list] * sum_k 2^-k co(j_k, i) / n_j
 *                                          (the conditional P(i | j): a
 *                                          popular neighbour counts more)
 *         + w_lcond * [i not in recent list]
 *                   * log(1 + co(j_0, i) / n_j0 / SR_LCOND_EPS)
 *                                          the last item's conditional on a
 *                                          log scale: with it the blend can
 *                                          put a strong next item above the
 *                                          user's older items
 *         + w_lcooc * [i not in recent list]
 *                   * log(1 + co(j_0, i) / sqrt(n_j0 n_i) / SR_LCOND_EPS)
 *         + w_scond * [i not in recent list]
 *                   * sum_j a_j co(j, i) / n_j / max(sum_j a_j, 1)
 *                                          j: the user's SR_SCTX newest
 *                                          distinct items, a_j =
 *                                          2^(-age_j / recent_half_life):
 *                                          where the whole session, not
 *                                          only its last two items, leads
 *         + w_walk2 * [i not in recent list]
 *                  * sum_k co(j_0, k) / n_j0 * co(k, i) / n_k
 *                                          two co-occurrence steps from the
 *                                          last item j_0 over its strongest
 *                                          SR_WALK_N1 neighbours k (their
 *                                          strongest SR_WALK_N2 each): items
 *                                          of the same kind not yet linked
 *
 * co(j, i) is the weight of i in j's neighbour list: each time i follows j
 * within a user's last cooc_window items it grows by 1, each time i comes
 * before j by cooc_backward (lists lean towards what comes next); n_i counts
 * i's occurrences.
 *
 * Items the user already has and items new to the user are different
 * questions (a repeat view vs a discovery), so the sparse signals are split
 * by `seen` and the blend weighs each side on its own.
 *
 * The blend weights w are learned online by the model (softmax over the true
 * item against the user's recent and co-occurring items and sampled
 * negatives, before the event is learned). */
#ifndef SR_SCORE_H
#define SR_SCORE_H

#include <stddef.h>
#include <stdint.h>

#include "sr_event.h"

enum {
    SR_F_MF = 0,
    SR_F_SESS,
    SR_F_BIAS,
    SR_F_POP,
    SR_F_REC,
    SR_F_LAST,
    SR_F_COOC,
    SR_F_SEEN,
    SR_F_COOC_SEEN,
    SR_F_POS,
    SR_F_REPEAT,
    SR_F_R1,    /* distinct rank 1 (rank 0 is `last`) */
    SR_F_R23,   /* distinct rank 2..3 */
    SR_F_R47,   /* distinct rank 4..7 */
    SR_F_GAP,   /* seen item after a pause: [seen] * (1 - 2^(-pause/half_life)) */
    SR_F_COND,  /* unseen: sum_k 2^-k co(j_k, i) / n_j, i.e. P(i | j) */
    SR_F_WALK2, /* unseen: two co-occurrence steps from the last item */
    SR_F_LCOND, /* unseen: log(1 + co(last, i) / n_last / SR_LCOND_EPS) */
    SR_F_LCOOC, /* unseen: log(1 + co(last, i) / sqrt(n_last n_i) / SR_LCOND_EPS) */
    SR_F_SCOND, /* unseen: session mixture of P(i | j) over the recent items */
    SR_BLEND_NFEAT
};

/* The popularity feature is floored here (about 4.5e-5 of one event), so
 * items never seen positively get a finite score. */
#define SR_POP_FLOOR (-10.0f)

/* Writes the blend weights a new model starts from (SR_BLEND_NFEAT
 * floats): a ranker without a trained blend should use these too. */
void sr_score_blend_prior(float *blend);

/* The rank-bucket feature of distinct rank r (SR_F_R1, SR_F_R23,
 * SR_F_R47), or -1 for none. */
static inline int sr_score_rank_feature(size_t r)
{
    return r == 1 ? SR_F_R1 : (r >= 2 && r <= 3) ? SR_F_R23 : (r >= 4 && r <= 7) ? SR_F_R47 : -1;
}

/* Short-term vector s_u: the last SR_SESS_LEN entries of the recent list. */
#define SR_SESS_LEN 8
/* Scale of the log conditional co-occurrence of the last item: P(i | last)
 * at this value counts log 2. */
#define SR_LCOND_EPS 0.01f
/* The two-step walk: the strongest SR_WALK_N1 neighbours of the last item,
 * then the strongest SR_WALK_N2 neighbours of each. */
#define SR_WALK_N1 4
#define SR_WALK_N2 16

/* The session co-occurrence mixture (SR_F_SCOND): the user's SR_SCTX most
 * recent distinct items j, each weighted by 2^(-age_j / recent_half_life)
 * (age of its newest event); the blend learner takes the strongest
 * SR_SCTX_NBRS neighbours of each as candidates. */
#define SR_SCTX 4
#define SR_SCTX_NBRS 4

/* "mf", "sess", "bias", "pop", "rec", "last", "cooc", "seen", "cooc_seen",
 * "pos", "repeat", "r1", "r23", "r47", "gap", "cond", "walk2", "lcond", "lcooc", "scond"; static
 * strings. */
const char *sr_score_feature_name(int f);

/* One entry of a user's recent list, oldest first.  item is the caller's
 * index into its item arrays, or -1 for an item the caller does not know
 * (skipped). */
typedef struct sr_score_recent {
    int32_t item;
    uint32_t type; /* sr_event_type_t */
    int64_t ts_ms;
} sr_score_recent_t;

/* One co-occurrence neighbour: how often `item` occurred near the owner. */
typedef struct sr_score_nbr {
    int32_t item; /* -1 = unknown to the caller (skipped) */
    float count;
} sr_score_nbr_t;

/* The item side, owned by the caller. */
typedef struct sr_score_items {
    int dim;
    uint32_t n_items;
    const float *q;      /* n_items x dim, row-major, contiguous */
    const float *bias;   /* n_items */
    const float *logpop; /* n_items: log decayed popularity (any common offset) */
    const float *count;  /* n_items: occurrence counts n_i for co-occurrence
                            normalisation; NULL disables co-occurrence */
    /* Neighbour list of item (n set), or NULL/n=0.  NULL callback disables
     * co-occurrence.  Must be safe to call from the scoring thread. */
    const sr_score_nbr_t *(*nbrs)(const void *opaque, int32_t item, size_t *n);
    const void *nbrs_opaque;
} sr_score_items_t;

/* Blend weights and the signal parameters (the model's params). */
typedef struct sr_score_conf {
    float blend[SR_BLEND_NFEAT];
    float weight[SR_EV_NTYPES]; /* per-type recency weight */
    float recent_half_life_s;
    int cooc_window;
    float pop_offset; /* added to logpop (the model passes -log of its clock scale) */
} sr_score_conf_t;

/* The user side, owned by the caller. */
typedef struct sr_score_user {
    const float *p;                  /* dim floats, or NULL for an unknown user */
    const sr_score_recent_t *recent; /* oldest first; may be NULL if n_recent 0 */
    size_t n_recent;
    int64_t now_ms; /* the time recency decays to */
} sr_score_user_t;

/* The context of SR_F_SCOND: the user's up to SR_SCTX newest distinct
 * known items, newest first, into ctx, and their mixture weights
 * a_j / max(sum a, 1) into w; returns how many. */
size_t sr_score_session_ctx(const sr_score_items_t *it, const sr_score_conf_t *c,
                            const sr_score_user_t *u, int32_t *ctx, float *w);

/* Writes the short-term vector s_u (dim floats) into s: the mean of the q
 * of the last SR_SESS_LEN known recent items weighted by
 * 2^(-age / recent_half_life), divided by max(sum of weights, 1) so an old
 * session fades out; zero when the user has no known recent items. */
void sr_score_session(const sr_score_items_t *it, const sr_score_conf_t *c,
                      const sr_score_user_t *u, float *s);

/* Blend score of every item into out[it->n_items].  scratch must hold 2*dim
 * floats.  Dense part is one pass over the item matrix; recency and
 * co-occurrence are added only to the items they touch. */
void sr_score_all(const sr_score_items_t *it, const sr_score_conf_t *c, const sr_score_user_t *u,
                  float *out, float *scratch);

/* sr_score_all in three pieces, for a caller that scores only some rows
 * exactly (the ranker's two-stage recommend).  Each piece does the same
 * arithmetic as the full pass, so a row scored through them gets the bits
 * sr_score_all gives it.
 *
 * sr_score_dense_vec: the vector v (dim floats) the dense pass dots every
 * row with, w_mf p_u + w_sess s_u; scratch holds dim floats.
 *
 * sr_score_dense_rows: for each rows[j] < n_items, out[rows[j]] = the dense
 * part of its score (mf, sess, bias, pop): the value sr_score_all has in
 * out[] before it adds the sparse terms.
 *
 * sr_score_sparse: adds the sparse terms (recency, last, seen, rank,
 * co-occurrence, walk, session mixture) to out[x] for the items x they
 * touch, in sr_score_all's order; with mark, also ORs flag into mark[x] for
 * every such x.  out may be NULL (only mark). */
void sr_score_dense_vec(const sr_score_items_t *it, const sr_score_conf_t *c,
                        const sr_score_user_t *u, float *v, float *scratch);
void sr_score_dense_rows(const sr_score_items_t *it, const sr_score_conf_t *c, const float *v,
                         const uint32_t *rows, size_t n, float *out);
void sr_score_sparse(const sr_score_items_t *it, const sr_score_conf_t *c, const sr_score_user_t *u,
                     float *out, uint8_t *mark, uint8_t flag);

/* The blend features of n candidate items (cand[j] in 0..n_items-1) into
 * feat[j][SR_BLEND_NFEAT].  s is the user's s_u from sr_score_session.  Used
 * by the model's blend learner and the ranker's /v1/rank. */
void sr_score_features(const sr_score_items_t *it, const sr_score_conf_t *c,
                       const sr_score_user_t *u, const float *s, const int32_t *cand, size_t n,
                       float (*feat)[SR_BLEND_NFEAT]);

/* Blend score of n candidates into out[n]: the value sr_score_all gives,
 * up to float rounding (the full pass sums the dot products in another
 * order).  A candidate outside 0..n_items-1 scores -INFINITY.  scratch
 * must hold dim floats.  Cost O(n * (dim + recent + neighbours)). */
void sr_score_candidates(const sr_score_items_t *it, const sr_score_conf_t *c,
                         const sr_score_user_t *u, const int32_t *cand, size_t n, float *out,
                         float *scratch);

/* "Items like this one": out[j] for every item j = cosine(q_i, q_j)
 * + co(i, j) / sqrt(n_i n_j) (the co-occurrence term only for i's
 * neighbours); out[i] = -INFINITY so it is never its own neighbour. */
void sr_score_similar(const sr_score_items_t *it, int32_t item, float *out);

/* Dot product with a fixed summation order (8 lanes), so every caller gets
 * bit-identical results from the same binary. */
float sr_dot(const float *a, const float *b, int n);

/* 2^x for x <= 0 by a fixed polynomial: fast and the same everywhere. */
float sr_exp2_neg(float x);

/* Partial top-K of scores[0..n): up to k indices with the highest scores,
 * best first (ties: lower index first), skipping i where skip && skip[i];
 * NaN scores are skipped.  score_out may be NULL.  Returns the number
 * written.  O(n log k), no allocation: the heap lives in idx_out. */
size_t sr_topk(const float *scores, uint32_t n, size_t k, const uint8_t *skip, uint32_t *idx_out,
               float *score_out);

#endif
