/* The shop traffic simulator: a pure, deterministic generator of events
 * that look like a real e-commerce log (docs/SIMULATOR.md describes the
 * generative model).  It exists so that `streamrec eval` has realistic data
 * to measure the model on, and so that `streamrec simulate` can feed a live
 * pipeline (CSV file or Kafka) without a shop.
 *
 * No I/O: callers pull events one at a time with sr_sim_next() and write
 * them wherever they like.  The same params (seed included) always give the
 * same event sequence, on every machine.
 *
 * Threading: a sr_sim_t is used by one thread at a time; different
 * simulators are independent.
 * Errors: 0 / negative SR_ERR_* (common/sr_err.h), constructor NULL + errstr. */
#ifndef SR_SIM_H
#define SR_SIM_H

#include <stddef.h>
#include <stdint.h>

#include "sr_event.h"

typedef struct sr_sim_params {
    uint32_t users;  /* users over the whole run (ids "u0".."u<N-1>") */
    uint32_t items;  /* items over the whole run (ids "i0".."i<M-1>") */
    uint64_t events; /* events to generate; 0 = endless */
    uint64_t seed;
    int64_t start_ms;       /* event time of the first event */
    double days;            /* simulated span of `events` (time per event =
                             * days / events); endless mode uses
                             * events_per_day instead */
    double events_per_day;  /* only when events == 0 */
    uint32_t categories;    /* 0 = derive from items (items / 250, >= 4) */
    double zipf_s;          /* item popularity exponent (1.0: long tail) */
    double initial_share;   /* share of users and items present at the
                             * start; the rest arrive evenly over the run */
    double impression_rate; /* chance that a listing click is preceded by
                             * impressions of shown-but-not-clicked items */
    /* Browsing (docs/SIMULATOR.md "Sessions"): each next view is a repeat
     * of the current item, a step back in the session, a related item or a
     * trending item with these probabilities, else a fresh pick in the
     * session's category; their sum must be at most 1. */
    double repeat, back, related, trend;
    double explore;     /* chance that a fresh pick ignores the session's
                         * category (any category by popularity) */
    double p_continue;  /* chance of one more step (session length) */
    double p_return;    /* chance a session starts on an item seen before */
    double p_cart;      /* chance a view goes to the cart (3x when the item
                         * was already viewed in the session, at most 1) */
    double p_buy;       /* chance a carted item is bought */
    double click_share; /* share of listing picks logged as click, not view */
    double activity_alpha; /* Pareto exponent of user activity (larger:
                            * more users who come once) */
} sr_sim_params_t;

/* Applies a named parameter set on top of *p (users, items, events and
 * seed are left alone): "default" (sr_sim_params_init's generative
 * parameters) or "retail" (a harder, RetailRocket-like regime: views
 * only, dominated by repeat views, short sessions, sparse one-visit
 * users, weaker item-item structure; docs/SIMULATOR.md "Presets").
 * Returns 0 or SR_ERR_NOTFOUND. */
int sr_sim_params_preset(sr_sim_params_t *p, const char *name);

/* Fills the defaults: 10000 users, 5000 items, 100000 events, seed 1,
 * start 2026-01-01T00:00:00Z, 30 days, 50000 events/day when endless,
 * categories derived, zipf_s 1.0, initial_share 0.3, impression_rate 0.1,
 * repeat 0.22, back 0.10, related 0.38, trend 0.05, explore 0,
 * p_continue 0.8, p_return 0.4, p_cart 0.04, p_buy 0.45, click_share 0.5,
 * activity_alpha 1.2. */
void sr_sim_params_init(sr_sim_params_t *p);

typedef struct sr_sim_s sr_sim_t;

/* Creates a simulator; params are copied.  Memory is O(users + items).
 * NULL with errstr set on invalid params (users or items 0, out-of-range
 * shares) or ENOMEM. */
sr_sim_t *sr_sim_new(const sr_sim_params_t *p, char *errstr, size_t errstr_size);
/* NULL is a no-op. */
void sr_sim_destroy(sr_sim_t *sim);

/* Writes the next event into *ev and returns 1, or returns 0 when the
 * configured number of events has been produced (never in endless mode).
 * ev->user / ev->item point into the simulator and stay valid until the
 * next call; ev->id_hash is a unique per-event hash (seed, sequence);
 * ev->value is the price of cart/purchase events, else 0.  Event times never
 * decrease.  Allocates nothing after sr_sim_new. */
int sr_sim_next(sr_sim_t *sim, sr_event_t *ev);

/* The shop session id of the event last returned ("s<number>"); valid until
 * the next call.  For producers that fill Event.session. */
const char *sr_sim_session(const sr_sim_t *sim);
/* Why the simulator produced the event last returned (ground truth for
 * analyses, docs/SIMULATOR.md): "return", "trend-start", "category-start"
 * (how a session starts), "repeat", "back", "related", "trend", "fresh"
 * (the browsing steps), "funnel" (a cart, a purchase, the view just before
 * a cart), "shown" (an impression).  Static string. */
const char *sr_sim_reason(const sr_sim_t *sim);
/* Events produced so far. */
uint64_t sr_sim_count(const sr_sim_t *sim);

#endif
