/* The prequential (test-then-train) evaluator of DESIGN.md §9 and issue 2
 * (docs/EVALUATION.md is the user-facing description):
 * events are fed one at a time in log order; for an eligible event every
 * model ranks the true item among all items seen so far, then every model
 * learns the event.  It exists so that "the model beats the baselines" is
 * a number measured on the same events in the same pass, not a claim.
 *
 * Models in the same pass:
 *   streamrec  the online model (sr_model.h) with the given params
 *   pop        event count per item
 *   pop-decay  counts decayed with a 24 h half-life of event time
 *   recency    the user's own items: sum over their events of the event-type
 *              weight (the streamrec model's weight[] per type, defaults
 *              unless set) times 2^(-age/24h); every other item scores 0
 *   cooc       co-occurrence within each user's last 5 items (consecutive
 *              repeats collapsed): when an item enters a user's window it
 *              co-occurs once with each distinct other item among the
 *              previous 4; n_i counts the item's window entries; candidate c
 *              scores sum over the distinct items i of the user's current
 *              window of co(i,c)/sqrt(n_i n_c); ties broken by pop count
 *
 * Eligibility: the user has an earlier event; under SR_EVAL_DISCOVERY also
 * the user-item pair is new, and the user's earlier items are excluded from
 * the ranking.  Every `every`-th eligible event is evaluated (the every-th,
 * 2*every-th, ...).  An item never seen before is a miss for every model.
 * Rank (0-based, ties count half):
 *   rank = #(score > s_true) + floor((#(score == s_true) - 1) / 2)
 * over the candidates, the true item included in the equal count.
 *
 * Impressions are shown-not-clicked items, not feedback: an impression event
 * is never evaluated, gives the user no history, creates no user-item pair
 * and is ignored by the baselines; only the streamrec model learns it (as a
 * weak negative), and its item joins the catalogue of "items seen so far".
 *
 * Metrics, per model, over the evaluated events:
 *   hr        share with rank < K
 *   ndcg      mean of 1/log2(rank + 2) when rank < K, else 0
 *   mrr       mean of 1/(rank + 1) (uncut; a miss adds 0)
 *   coverage  distinct items in any top-K list / items seen in the whole log
 *   novelty   mean over all top-K list entries of -log2((n_i + 1) /
 *             (n + N)), n_i the item's non-impression event count so far,
 *             n their total, N the items seen so far (add-one smoothed
 *             popularity share, so a never-interacted item is finite)
 * Top-K lists: best first; ties by the model's tie order, then lower item
 * index (first seen first).
 *
 * Pure C, no I/O.  Memory is the models' state: per item, per user and per
 * distinct user-item pair and co-occurring item pair; nothing per event.
 * Threading: one sr_eval_t per thread.  Errors: 0 / negative SR_ERR_*. */
#ifndef SR_EVAL_H
#define SR_EVAL_H

#include <stddef.h>
#include <stdint.h>

#include "sr_event.h"
#include "sr_model.h"

typedef enum sr_eval_protocol { SR_EVAL_ALL = 0, SR_EVAL_DISCOVERY = 1 } sr_eval_protocol_t;

enum {
    SR_EVAL_STREAMREC = 0,
    SR_EVAL_POP,
    SR_EVAL_POP_DECAY,
    SR_EVAL_RECENCY,
    SR_EVAL_COOC,
    SR_EVAL_NMODELS
};

/* "streamrec", "pop", "pop-decay", "recency", "cooc"; static strings. */
const char *sr_eval_model_name(int model);
/* "all" / "discovery" -> 0, else SR_ERR_PARSE. */
int sr_eval_protocol_parse(const char *s, sr_eval_protocol_t *out);
const char *sr_eval_protocol_name(sr_eval_protocol_t p);

typedef struct sr_eval_params {
    sr_eval_protocol_t protocol;
    uint32_t every;          /* >= 1 */
    uint32_t k;              /* >= 1: the K of HR@K / NDCG@K and the list length */
    uint32_t models;         /* bit (1u << SR_EVAL_*) per model to run */
    sr_model_params_t model; /* the streamrec model; weight[] also weights recency */
} sr_eval_params_t;

/* Defaults: discovery, every 1, k 10, all models, sr_model_params_init. */
void sr_eval_params_init(sr_eval_params_t *p);

typedef struct sr_eval_s sr_eval_t;

/* Params are copied.  NULL with errstr set on invalid params, a model that
 * cannot be created, or ENOMEM. */
sr_eval_t *sr_eval_new(const sr_eval_params_t *p, char *errstr, size_t errstr_size);
/* NULL is a no-op. */
void sr_eval_destroy(sr_eval_t *e);

/* Evaluates (when eligible and picked) then learns one event.  The event is
 * borrowed; ids are copied when kept.  Returns 0, SR_ERR_INVAL (NULL/empty
 * ids) or SR_ERR_NOMEM (the evaluator stays usable; that event is lost).
 * A failure of the streamrec model to learn the event is not an error
 * here: it is counted in sr_eval_report_t.model_errors. */
int sr_eval_feed(sr_eval_t *e, const sr_event_t *ev);

/* What happened to the last fed event (for tests and progress output). */
typedef struct sr_eval_outcome {
    int evaluated;                 /* 1 when it was ranked */
    int64_t rank[SR_EVAL_NMODELS]; /* 0-based; -1 = miss (item unseen) */
} sr_eval_outcome_t;
const sr_eval_outcome_t *sr_eval_last(const sr_eval_t *e);

typedef struct sr_eval_metrics {
    double hr, ndcg, mrr, coverage, novelty;
} sr_eval_metrics_t;

typedef struct sr_eval_report {
    sr_eval_protocol_t protocol;
    uint32_t k, every, models;
    uint64_t events;   /* events fed */
    uint64_t eligible; /* eligible events (before the every-N pick) */
    uint64_t evaluated;
    uint64_t misses;       /* evaluated events whose item was unseen */
    uint64_t model_errors; /* events the streamrec model refused */
    uint32_t users, items;
    sr_eval_metrics_t m[SR_EVAL_NMODELS]; /* zero for models not run */
} sr_eval_report_t;

/* The metrics so far; may be called at any time. */
void sr_eval_report(const sr_eval_t *e, sr_eval_report_t *out);

#endif
