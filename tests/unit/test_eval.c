/* The prequential evaluator on tiny logs whose ranks and metrics are
 * computed by hand in the comments: tie rule, unseen item = miss, every-N
 * sampling, both protocols, each baseline. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "sr_err.h"
#include "sr_eval.h"

#define H (3600 * 1000LL) /* one hour in ms */

static sr_eval_t *make(sr_eval_protocol_t proto, uint32_t every, uint32_t k, uint32_t models)
{
    sr_eval_params_t p;
    sr_eval_params_init(&p);
    p.protocol = proto;
    p.every = every;
    p.k = k;
    p.models = models;
    /* Fixed recency weights, independent of the model's defaults. */
    for (int t = 0; t < SR_EV_NTYPES; t++)
        p.model.weight[t] = 1;
    p.model.weight[SR_EV_CART] = 3;
    char err[256];
    sr_eval_t *e = sr_eval_new(&p, err, sizeof(err));
    cr_assert_not_null(e, "%s", err);
    return e;
}

static const sr_eval_outcome_t *feed_t(sr_eval_t *e, const char *user, const char *item,
                                       sr_event_type_t type, int64_t ts)
{
    sr_event_t ev = {.user = user,
                     .user_len = strlen(user),
                     .item = item,
                     .item_len = strlen(item),
                     .type = type,
                     .ts_ms = ts};
    cr_assert_eq(sr_eval_feed(e, &ev), 0);
    return sr_eval_last(e);
}

static const sr_eval_outcome_t *feed(sr_eval_t *e, const char *user, const char *item)
{
    return feed_t(e, user, item, SR_EV_VIEW, 1000);
}

#define POP (1u << SR_EVAL_POP)
#define POPD (1u << SR_EVAL_POP_DECAY)
#define REC (1u << SR_EVAL_RECENCY)
#define COOC (1u << SR_EVAL_COOC)
#define BASE (POP | POPD | REC | COOC)

Test(eval, names_and_protocols)
{
    cr_assert_str_eq(sr_eval_model_name(SR_EVAL_STREAMREC), "streamrec");
    cr_assert_str_eq(sr_eval_model_name(SR_EVAL_POP_DECAY), "pop-decay");
    sr_eval_protocol_t p;
    cr_assert_eq(sr_eval_protocol_parse("all", &p), 0);
    cr_assert_eq(p, SR_EVAL_ALL);
    cr_assert_eq(sr_eval_protocol_parse("discovery", &p), 0);
    cr_assert_eq(p, SR_EVAL_DISCOVERY);
    cr_assert_eq(sr_eval_protocol_parse("some", &p), SR_ERR_PARSE);
}

Test(eval, bad_params_refused)
{
    sr_eval_params_t p;
    sr_eval_params_init(&p);
    p.every = 0;
    char err[128];
    cr_assert_null(sr_eval_new(&p, err, sizeof(err)));
    sr_eval_params_init(&p);
    p.k = 0;
    cr_assert_null(sr_eval_new(&p, err, sizeof(err)));
    sr_eval_params_init(&p);
    p.models = 0;
    cr_assert_null(sr_eval_new(&p, err, sizeof(err)));
    sr_eval_destroy(NULL);
}

Test(eval, bad_event_refused)
{
    sr_eval_t *e = make(SR_EVAL_ALL, 1, 10, BASE);
    sr_event_t ev = {.user = "u", .user_len = 0, .item = "i", .item_len = 1};
    cr_assert_eq(sr_eval_feed(e, &ev), SR_ERR_INVAL);
    sr_eval_destroy(e);
}

/* Ties count half: rank = #greater + floor((#equal - 1) / 2). */
Test(eval, tie_rule)
{
    sr_eval_t *e = make(SR_EVAL_ALL, 1, 10, POP);
    feed(e, "x", "A");
    feed(e, "x", "B");
    /* A and B have pop 1: two tied, rank floor(1/2) = 0. */
    cr_assert_eq(feed(e, "x", "A")->rank[SR_EVAL_POP], 0);
    /* Now A=2, B=1; add C and D with 1 each. */
    feed(e, "y", "C");
    feed(e, "y", "D");
    /* B among B, C, D tied at 1 (A=2 above): 1 + floor(2/2) = 2. */
    cr_assert_eq(feed(e, "y", "B")->rank[SR_EVAL_POP], 2);
    /* A=2, B=2, C=1, D=1; add E=1: C among C, D, E: 2 + floor(2/2) = 3. */
    feed(e, "z", "E");
    cr_assert_eq(feed(e, "z", "C")->rank[SR_EVAL_POP], 3);
    /* A=2, B=2, C=2, D=1, E=1: A among A, B, C: 0 + floor(2/2) = 1. */
    cr_assert_eq(feed(e, "z", "A")->rank[SR_EVAL_POP], 1);
    /* Now A=3, B=2, C=2, D=1, E=1: D among 2 tied, 3 above: 3 + 0 = 3. */
    cr_assert_eq(feed(e, "z", "D")->rank[SR_EVAL_POP], 3);
    sr_eval_destroy(e);
}

Test(eval, unseen_item_is_a_miss_for_every_model)
{
    sr_eval_t *e = make(SR_EVAL_ALL, 1, 10, BASE);
    feed(e, "u", "A");
    const sr_eval_outcome_t *o = feed(e, "u", "NEW");
    cr_assert_eq(o->evaluated, 1);
    for (int m = SR_EVAL_POP; m < SR_EVAL_NMODELS; m++)
        cr_assert_eq(o->rank[m], -1, "%s", sr_eval_model_name(m));
    sr_eval_report_t r;
    sr_eval_report(e, &r);
    cr_assert_eq(r.evaluated, 1);
    cr_assert_eq(r.misses, 1);
    /* The one candidate A is still recommended, but nothing is hit. */
    cr_assert_eq(r.m[SR_EVAL_POP].hr, 0);
    cr_assert_eq(r.m[SR_EVAL_POP].mrr, 0);
    sr_eval_destroy(e);
}

Test(eval, first_event_of_a_user_is_not_eligible)
{
    sr_eval_t *e = make(SR_EVAL_ALL, 1, 10, BASE);
    feed(e, "u", "A");
    cr_assert_eq(feed(e, "v", "A")->evaluated, 0);
    cr_assert_eq(feed(e, "v", "A")->evaluated, 1);
    sr_eval_report_t r;
    sr_eval_report(e, &r);
    cr_assert_eq(r.events, 3);
    cr_assert_eq(r.eligible, 1);
    sr_eval_destroy(e);
}

Test(eval, every_n_th_eligible_event)
{
    sr_eval_t *e = make(SR_EVAL_ALL, 3, 10, POP);
    feed(e, "u", "A"); /* not eligible */
    int flags[10];
    for (int k = 0; k < 10; k++)
        flags[k] = feed(e, "u", "A")->evaluated;
    /* Eligible events 1..10: the 3rd, 6th and 9th are evaluated. */
    int want[10] = {0, 0, 1, 0, 0, 1, 0, 0, 1, 0};
    for (int k = 0; k < 10; k++)
        cr_assert_eq(flags[k], want[k], "eligible event %d", k + 1);
    sr_eval_report_t r;
    sr_eval_report(e, &r);
    cr_assert_eq(r.eligible, 10);
    cr_assert_eq(r.evaluated, 3);
    sr_eval_destroy(e);
}

Test(eval, discovery_only_new_pairs)
{
    sr_eval_t *e = make(SR_EVAL_DISCOVERY, 1, 10, POP);
    feed(e, "u", "A");
    feed(e, "w", "B");
    cr_assert_eq(feed(e, "u", "A")->evaluated, 0, "repeat pair: not eligible");
    cr_assert_eq(feed(e, "u", "B")->evaluated, 1, "new pair: eligible");
    cr_assert_eq(feed(e, "u", "B")->evaluated, 0);
    sr_eval_destroy(e);
}

/* pop A=5 (by u), D=3, C=2, B=1; u's own items are A.  u -> C:
 * discovery excludes A: D above C -> rank 1; all: A and D above -> 2. */
static int64_t pop_rank_for(sr_eval_protocol_t proto)
{
    sr_eval_t *e = make(proto, 1, 10, POP);
    for (int k = 0; k < 5; k++)
        feed(e, "u", "A");
    for (int k = 0; k < 3; k++)
        feed(e, "x", "D");
    for (int k = 0; k < 2; k++)
        feed(e, "y", "C");
    feed(e, "z", "B");
    int64_t r = feed(e, "u", "C")->rank[SR_EVAL_POP];
    sr_eval_destroy(e);
    return r;
}

Test(eval, discovery_excludes_the_users_items)
{
    cr_assert_eq(pop_rank_for(SR_EVAL_DISCOVERY), 1);
    cr_assert_eq(pop_rank_for(SR_EVAL_ALL), 2);
}

/* (u1,A) (u2,A) (u3,C) then (u1,C) evaluated with k=1 under all:
 * candidates A(2) C(1): top-1 = [A], rank of C = 1: no hit, MRR 1/2.
 * Novelty of A: -log2((2+1)/(3+2)) = log2(5/3).  Coverage: {A} / 3 items
 * seen... at the end 2 items (A, C): 1/2. */
Test(eval, pop_metrics_by_hand)
{
    sr_eval_t *e = make(SR_EVAL_ALL, 1, 1, POP);
    feed(e, "u1", "A");
    feed(e, "u2", "A");
    feed(e, "u3", "C");
    cr_assert_eq(feed(e, "u1", "C")->rank[SR_EVAL_POP], 1);
    sr_eval_report_t r;
    sr_eval_report(e, &r);
    cr_assert_eq(r.evaluated, 1);
    cr_assert_float_eq(r.m[SR_EVAL_POP].hr, 0.0, 1e-12);
    cr_assert_float_eq(r.m[SR_EVAL_POP].ndcg, 0.0, 1e-12);
    cr_assert_float_eq(r.m[SR_EVAL_POP].mrr, 0.5, 1e-12);
    cr_assert_float_eq(r.m[SR_EVAL_POP].coverage, 0.5, 1e-12);
    cr_assert_float_eq(r.m[SR_EVAL_POP].novelty, log2(5.0 / 3.0), 1e-9);
    /* Then (u2,C): A(2) C(2) tied: rank 0, a hit; NDCG 1/log2(2) = 1.
     * Over 2 evaluations: HR 1/2, NDCG 1/2, MRR (1/2 + 1)/2 = 3/4. */
    cr_assert_eq(feed(e, "u2", "C")->rank[SR_EVAL_POP], 0);
    sr_eval_report(e, &r);
    cr_assert_float_eq(r.m[SR_EVAL_POP].hr, 0.5, 1e-12);
    cr_assert_float_eq(r.m[SR_EVAL_POP].ndcg, 0.5, 1e-12);
    cr_assert_float_eq(r.m[SR_EVAL_POP].mrr, 0.75, 1e-12);
    sr_eval_destroy(e);
}

/* NDCG at rank 1 (k = 2): 1/log2(3). */
Test(eval, ndcg_below_the_top)
{
    sr_eval_t *e = make(SR_EVAL_ALL, 1, 2, POP);
    feed(e, "a", "A");
    feed(e, "a", "A");
    feed(e, "b", "B");
    cr_assert_eq(feed(e, "b", "B")->rank[SR_EVAL_POP], 1);
    sr_eval_report_t r;
    sr_eval_report(e, &r);
    /* Evaluated: (a,A) rank 0 and (b,B) rank 1 [(b,B)'s first is not]. */
    cr_assert_eq(r.evaluated, 2);
    cr_assert_float_eq(r.m[SR_EVAL_POP].hr, 1.0, 1e-12);
    cr_assert_float_eq(r.m[SR_EVAL_POP].ndcg, (1.0 + 1.0 / log2(3.0)) / 2, 1e-12);
    sr_eval_destroy(e);
}

/* A twice at t=0, B once at t=30h: at 30h pop-decay gives A 2*2^-1.25 =
 * 0.84 < B 1, while pop gives A 2 > B 1.  u asks for A at 30h. */
Test(eval, pop_decay_half_life_24h)
{
    sr_eval_t *e = make(SR_EVAL_ALL, 1, 10, POP | POPD);
    feed_t(e, "x", "A", SR_EV_VIEW, 0);
    feed_t(e, "y", "A", SR_EV_VIEW, 0);
    feed_t(e, "z", "B", SR_EV_VIEW, 30 * H);
    const sr_eval_outcome_t *o = feed_t(e, "z", "A", SR_EV_VIEW, 30 * H);
    cr_assert_eq(o->rank[SR_EVAL_POP], 0);
    cr_assert_eq(o->rank[SR_EVAL_POP_DECAY], 1);
    /* At 24h exactly, A 2*2^-1 = 1 ties with a fresh C (1): rank 0 of 2. */
    sr_eval_t *f = make(SR_EVAL_ALL, 1, 10, POPD);
    feed_t(f, "x", "A", SR_EV_VIEW, 0);
    feed_t(f, "y", "A", SR_EV_VIEW, 0);
    feed_t(f, "z", "C", SR_EV_VIEW, 24 * H);
    cr_assert_eq(feed_t(f, "z", "A", SR_EV_VIEW, 24 * H)->rank[SR_EVAL_POP_DECAY], 0);
    /* A has just gained a fresh event (2 + 1 > 1): C is second. */
    cr_assert_eq(feed_t(f, "x", "C", SR_EV_VIEW, 24 * H)->rank[SR_EVAL_POP_DECAY], 1);
    sr_eval_destroy(e);
    sr_eval_destroy(f);
}

/* u: view A at 0 (w 1), cart B at 12h (w 3).  At 48h: A = 2^-2 = 0.25,
 * B = 3 * 2^-1.5 = 1.06; other items C, D score 0. */
static sr_eval_t *recency_log(sr_eval_protocol_t proto)
{
    sr_eval_t *e = make(proto, 1, 10, REC);
    feed_t(e, "o", "C", SR_EV_VIEW, 0);
    feed_t(e, "o", "D", SR_EV_VIEW, 0);
    feed_t(e, "u", "A", SR_EV_VIEW, 0);
    feed_t(e, "u", "B", SR_EV_CART, 12 * H);
    return e;
}

Test(eval, recency_scores_own_items_by_weight_and_age)
{
    sr_eval_t *e = recency_log(SR_EVAL_ALL);
    cr_assert_eq(feed_t(e, "u", "A", SR_EV_VIEW, 48 * H)->rank[SR_EVAL_RECENCY], 1);
    sr_eval_destroy(e);
    e = recency_log(SR_EVAL_ALL);
    cr_assert_eq(feed_t(e, "u", "B", SR_EV_VIEW, 48 * H)->rank[SR_EVAL_RECENCY], 0);
    sr_eval_destroy(e);
    /* C scores 0: A, B above; C, D tied at 0: 2 + floor(1/2) = 2. */
    e = recency_log(SR_EVAL_ALL);
    cr_assert_eq(feed_t(e, "u", "C", SR_EV_VIEW, 48 * H)->rank[SR_EVAL_RECENCY], 2);
    sr_eval_destroy(e);
    /* Discovery: A and B excluded, C and D tied at 0: rank 0. */
    e = recency_log(SR_EVAL_DISCOVERY);
    cr_assert_eq(feed_t(e, "u", "C", SR_EV_VIEW, 48 * H)->rank[SR_EVAL_RECENCY], 0);
    sr_eval_destroy(e);
}

/* A second cart on B 24h after the first adds up: 3*2^-1 + 3 = 4.5 at
 * 36h, decaying with the pair. Ordering check: a view of A at 36h (1) stays
 * below B. */
Test(eval, recency_accumulates_events_of_a_pair)
{
    sr_eval_t *e = recency_log(SR_EVAL_ALL);
    feed_t(e, "u", "B", SR_EV_CART, 36 * H);
    feed_t(e, "u", "A", SR_EV_VIEW, 36 * H);
    /* A = 2^-1.5 + 1 = 1.35, B = 3*2^-1 + 3 = 4.5: B first. */
    cr_assert_eq(feed_t(e, "u", "A", SR_EV_VIEW, 36 * H)->rank[SR_EVAL_RECENCY], 1);
    sr_eval_destroy(e);
}

/* Windows: u1 A B, u2 A B, u3 A C, u5 D D D (one window entry), u4 A.
 * n_A = 4, n_B = 2, n_C = 1, n_D = 1; co(A,B) = 2, co(A,C) = 1.
 * u4's window [A]: B = 2/sqrt(8) = 0.71, C = 1/sqrt(4) = 0.5, A = D = 0.
 * pop: A 4, B 2, C 1, D 3. */
static sr_eval_t *cooc_log(sr_eval_protocol_t proto)
{
    sr_eval_t *e = make(proto, 1, 10, COOC);
    feed(e, "u1", "A");
    feed(e, "u1", "B");
    feed(e, "u2", "A");
    feed(e, "u2", "B");
    feed(e, "u3", "A");
    feed(e, "u3", "C");
    feed(e, "u5", "D");
    feed(e, "u5", "D");
    feed(e, "u5", "D");
    feed(e, "u4", "A");
    return e;
}

Test(eval, cooc_ranks_by_normalised_cooccurrence)
{
    const char *target[] = {"B", "C", "D", "A"};
    /* B 0; C 1; D: score 0, B, C above and A by popularity (4 > 3): 3;
     * A: score 0, B, C above, nothing more popular: 2. */
    int64_t want[] = {0, 1, 3, 2};
    for (int k = 0; k < 4; k++) {
        sr_eval_t *e = cooc_log(SR_EVAL_ALL);
        cr_assert_eq(feed(e, "u4", target[k])->rank[SR_EVAL_COOC], want[k], "target %s", target[k]);
        sr_eval_destroy(e);
    }
    /* Discovery excludes A: D has only B, C above: 2. */
    sr_eval_t *e = cooc_log(SR_EVAL_DISCOVERY);
    cr_assert_eq(feed(e, "u4", "D")->rank[SR_EVAL_COOC], 2);
    sr_eval_destroy(e);
}

/* Equal cooc scores are ordered by popularity.  u1 X Y, u2 X Z: co(X,Y)
 * = co(X,Z) = 1.  u9 Z Z (n_Z 2, pop Z 3), u8 Y Y Y (n_Y 2, pop Y 4),
 * u7 X (n_X 3).  u7's window [X]: Y = Z = 1/sqrt(3*2); Y is more popular,
 * so Z is second. */
Test(eval, cooc_ties_broken_by_popularity)
{
    sr_eval_t *e = make(SR_EVAL_ALL, 1, 10, COOC);
    feed(e, "u1", "X");
    feed(e, "u1", "Y");
    feed(e, "u2", "X");
    feed(e, "u2", "Z");
    feed(e, "u9", "Z");
    feed(e, "u9", "Z");
    feed(e, "u8", "Y");
    feed(e, "u8", "Y");
    feed(e, "u8", "Y");
    feed(e, "u7", "X");
    cr_assert_eq(feed(e, "u7", "Z")->rank[SR_EVAL_COOC], 1);
    sr_eval_destroy(e);
}

/* u: P D D D D D Q.  Collapsed, u's window is [P, D, Q], so Q co-occurs
 * with P.  v's window [P] (n_P 2): D = Q = 1/sqrt(2); D is more popular
 * (5 > 1): Q ranks 1.  Without collapsing, Q would not pair with P and
 * would rank 2 (D by score, P by pop 2 > 1). */
Test(eval, cooc_collapses_consecutive_repeats)
{
    sr_eval_t *e = make(SR_EVAL_ALL, 1, 10, COOC);
    feed(e, "u", "P");
    for (int k = 0; k < 5; k++)
        feed(e, "u", "D");
    feed(e, "u", "Q");
    feed(e, "v", "P");
    cr_assert_eq(feed(e, "v", "Q")->rank[SR_EVAL_COOC], 1);
    sr_eval_destroy(e);
}

/* Only the last 5 items (collapsed) count: after u views P then 5 other
 * items, P no longer pairs with what comes next. */
Test(eval, cooc_window_is_five_items)
{
    sr_eval_t *e = make(SR_EVAL_ALL, 1, 10, COOC);
    const char *seq[] = {"P", "a", "b", "c", "d", "Q"};
    for (int k = 0; k < 6; k++)
        feed(e, "u", seq[k]);
    /* Q entered with the previous 4 (a..d): co(P,Q) = 0.  v's window [P]:
     * a..d co-occur with P (4 above Q); among the zero-score rest P is
     * more popular (2 > 1): rank = 5. */
    feed(e, "v", "P");
    cr_assert_eq(feed(e, "v", "Q")->rank[SR_EVAL_COOC], 5);
    sr_eval_destroy(e);
}

Test(eval, impressions_are_not_evaluated_and_not_history)
{
    sr_eval_t *e = make(SR_EVAL_ALL, 1, 10, BASE);
    feed(e, "x", "A");
    cr_assert_eq(feed_t(e, "u", "A", SR_EV_IMPRESSION, 1000)->evaluated, 0);
    cr_assert_eq(feed_t(e, "u", "B", SR_EV_IMPRESSION, 1000)->evaluated, 0);
    /* u has no interaction yet: its first click is not eligible. */
    cr_assert_eq(feed_t(e, "u", "A", SR_EV_CLICK, 1000)->evaluated, 0);
    /* B was only shown: it is a known item (not a miss) with pop 0. */
    const sr_eval_outcome_t *o = feed_t(e, "u", "B", SR_EV_CLICK, 1000);
    cr_assert_eq(o->evaluated, 1);
    cr_assert_eq(o->rank[SR_EVAL_POP], 1);
    sr_eval_destroy(e);
}

Test(eval, coverage_and_recommendations_skip_excluded)
{
    /* Discovery, k=1: u owns A (the most popular); its list must be B. */
    sr_eval_t *e = make(SR_EVAL_DISCOVERY, 1, 1, POP);
    for (int k = 0; k < 3; k++)
        feed(e, "u", "A");
    feed(e, "x", "B");
    feed(e, "x", "B");
    feed(e, "y", "C");
    cr_assert_eq(feed(e, "u", "C")->rank[SR_EVAL_POP], 1);
    sr_eval_report_t r;
    sr_eval_report(e, &r);
    /* Evaluated: (x,B)? not new pair; (u,C) only -> list [B]: coverage
     * 1 of 3 items; novelty -log2((2+1)/(6+3)) = log2(3). */
    cr_assert_eq(r.evaluated, 1);
    cr_assert_float_eq(r.m[SR_EVAL_POP].coverage, 1.0 / 3.0, 1e-12);
    cr_assert_float_eq(r.m[SR_EVAL_POP].novelty, log2(3.0), 1e-9);
    sr_eval_destroy(e);
}

/* The streamrec model goes through the same ranking: a seen item gets a
 * rank within the catalogue, an unseen one is a miss, and two evaluators
 * on the same stream agree exactly (the model is deterministic). */
Test(eval, streamrec_model_is_ranked_like_the_baselines)
{
    const uint32_t models = (1u << SR_EVAL_STREAMREC) | POP;
    sr_eval_t *a = make(SR_EVAL_ALL, 1, 10, models), *b = make(SR_EVAL_ALL, 1, 10, models);
    static const char *items[] = {"A", "B", "C", "D", "E", "F", "G"};
    char user[8];
    for (int k = 0; k < 300; k++) {
        snprintf(user, sizeof(user), "u%d", k % 13);
        const char *it = items[(k * 3 + k / 13) % 7];
        const sr_eval_outcome_t *oa = feed_t(a, user, it, SR_EV_VIEW, 1000 + k * 60000LL);
        int64_t ra = oa->rank[SR_EVAL_STREAMREC];
        int evaluated = oa->evaluated;
        const sr_eval_outcome_t *ob = feed_t(b, user, it, SR_EV_VIEW, 1000 + k * 60000LL);
        cr_assert_eq(ob->rank[SR_EVAL_STREAMREC], ra, "event %d", k);
        if (evaluated && k > 20) cr_assert(ra >= 0 && ra < 7, "event %d: rank %ld", k, (long)ra);
    }
    const sr_eval_outcome_t *o = feed(a, "u1", "NEW");
    cr_assert_eq(o->evaluated, 1);
    cr_assert_eq(o->rank[SR_EVAL_STREAMREC], -1);
    sr_eval_report_t r;
    sr_eval_report(a, &r);
    cr_assert_eq(r.model_errors, 0);
    cr_assert_gt(r.m[SR_EVAL_STREAMREC].coverage, 0);
    sr_eval_destroy(a);
    sr_eval_destroy(b);
}

/* Every baseline's metrics on one tiny log, k = 1, both protocols:
 *   (a,A)@0h (b,B)@0h (b,A)@1h (a,B)@2h
 * all: (b,A): pop A1 B1 tie -> 0; pop-decay tie -> 0; recency: b owns B
 *      (>0), A is 0 -> 1; cooc: b's window [B] has no co-occurrence, all
 *      zero, pop tie -> 0.
 *      (a,B): pop A2 > B1 -> 1; pop-decay A > B -> 1; recency: a owns A
 *      -> 1; cooc: a's window [A], co(A,B) = 1 -> B scores 1/sqrt(2) -> 0.
 * discovery: the user's own item is excluded, one candidate left: every
 *      rank is 0. */
Test(eval, every_baseline_metrics_by_hand)
{
    sr_eval_report_t r;
    sr_eval_t *e = make(SR_EVAL_ALL, 1, 1, BASE);
    feed_t(e, "a", "A", SR_EV_VIEW, 0);
    feed_t(e, "b", "B", SR_EV_VIEW, 0);
    feed_t(e, "b", "A", SR_EV_VIEW, 1 * H);
    feed_t(e, "a", "B", SR_EV_VIEW, 2 * H);
    sr_eval_report(e, &r);
    cr_assert_eq(r.evaluated, 2);
    static const struct {
        int m;
        double hr, ndcg, mrr, coverage;
    } want[] = {
        {SR_EVAL_POP, 0.5, 0.5, 0.75, 0.5},
        {SR_EVAL_POP_DECAY, 0.5, 0.5, 0.75, 0.5},
        {SR_EVAL_RECENCY, 0.0, 0.0, 0.5, 1.0},
        {SR_EVAL_COOC, 1.0, 1.0, 1.0, 1.0},
    };
    for (int k = 0; k < 4; k++) {
        const sr_eval_metrics_t *x = &r.m[want[k].m];
        const char *n = sr_eval_model_name(want[k].m);
        cr_assert_float_eq(x->hr, want[k].hr, 1e-12, "%s hr %f", n, x->hr);
        cr_assert_float_eq(x->ndcg, want[k].ndcg, 1e-12, "%s ndcg %f", n, x->ndcg);
        cr_assert_float_eq(x->mrr, want[k].mrr, 1e-12, "%s mrr %f", n, x->mrr);
        cr_assert_float_eq(x->coverage, want[k].coverage, 1e-12, "%s coverage %f", n, x->coverage);
    }
    /* pop's lists: [A] with n_A 1 of 2 events, 2 items: -log2(2/4) = 1;
     * then [A] with n_A 2 of 3: -log2(3/5). */
    cr_assert_float_eq(r.m[SR_EVAL_POP].novelty, (1.0 + log2(5.0 / 3.0)) / 2, 1e-9);
    sr_eval_destroy(e);

    e = make(SR_EVAL_DISCOVERY, 1, 1, BASE);
    feed_t(e, "a", "A", SR_EV_VIEW, 0);
    feed_t(e, "b", "B", SR_EV_VIEW, 0);
    feed_t(e, "b", "A", SR_EV_VIEW, 1 * H);
    feed_t(e, "a", "B", SR_EV_VIEW, 2 * H);
    sr_eval_report(e, &r);
    cr_assert_eq(r.evaluated, 2);
    for (int m = SR_EVAL_POP; m < SR_EVAL_NMODELS; m++) {
        cr_assert_float_eq(r.m[m].hr, 1.0, 1e-12, "%s", sr_eval_model_name(m));
        cr_assert_float_eq(r.m[m].mrr, 1.0, 1e-12, "%s", sr_eval_model_name(m));
        cr_assert_float_eq(r.m[m].coverage, 1.0, 1e-12, "%s", sr_eval_model_name(m));
    }
    sr_eval_destroy(e);
}
