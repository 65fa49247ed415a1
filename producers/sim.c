/* The shop traffic simulator (sr_sim.h).  It generates what real
 * e-commerce logs are dominated by: repeat views of the same item,
 * view -> cart -> purchase funnels on one item, short related sessions and a
 * long tail of items seen once, on top of users' latent category tastes, a
 * stream of arriving users and items, and trending items that rise and
 * fade.  docs/SIMULATOR.md is the prose version of this file; keep them in
 * step.
 *
 * Shape: sessions are planned whole when they start (a short list of
 * (item, type) steps), then their events are interleaved in time through a
 * min-heap of active sessions keyed by their next event time.  Popularity
 * sampling uses Fenwick trees over item weights so that arriving items cost
 * O(log n) and picks stay O(log n). */
#include "sr_sim.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sr_err.h"

#define HIST 8        /* items remembered per user for return visits */
#define RELATED 4     /* fixed "related" neighbours per item */
#define PLAN_MAX 64   /* steps per session, impressions included */
#define TRENDS 8      /* concurrently trending items */
#define POOL_MAX 4096 /* concurrently active sessions */
#define DAY_MS 86400000.0

typedef struct rng {
    uint64_t s[4];
} rng_t;

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

/* xoshiro256**: fast, good quality, and the same on every platform. */
static uint64_t rng_u64(rng_t *r)
{
    uint64_t *s = r->s;
    uint64_t res = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return res;
}

static void rng_seed(rng_t *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&seed);
}

/* Uniform in [0, 1) with 53 bits. */
static double rng_unit(rng_t *r)
{
    return (double)(rng_u64(r) >> 11) * (1.0 / 9007199254740992.0);
}

static uint32_t rng_below(rng_t *r, uint32_t n)
{
    return n ? (uint32_t)(((rng_u64(r) >> 32) * (uint64_t)n) >> 32) : 0;
}

static double rng_exp(rng_t *r, double mean)
{
    return -mean * log(1.0 - rng_unit(r));
}

/* Fenwick tree over double weights; index 0-based, tree 1-based. */
typedef struct fen {
    double *t;
    uint32_t n;
} fen_t;

static void fen_add(fen_t *f, uint32_t i, double w)
{
    for (uint32_t k = i + 1; k <= f->n; k += k & (0u - k))
        f->t[k] += w;
}

static double fen_total(const fen_t *f, uint32_t upto)
{
    double s = 0;
    for (uint32_t k = upto; k > 0; k -= k & (0u - k))
        s += f->t[k];
    return s;
}

/* Index whose cumulative weight range contains target (0 <= target < total). */
static uint32_t fen_find(const fen_t *f, double target)
{
    uint32_t pos = 0, step = 1;
    while (step * 2 <= f->n)
        step *= 2;
    for (; step; step >>= 1) {
        if (pos + step <= f->n && f->t[pos + step] <= target) {
            pos += step;
            target -= f->t[pos];
        }
    }
    return pos < f->n ? pos : f->n - 1;
}

typedef struct trend {
    int32_t item;
    int64_t t0, tpeak, t1;
} trend_t;

typedef struct step {
    int32_t item;
    uint8_t type;
    uint8_t reason; /* reason_t */
} step_t;

/* Why a step was planned (sr_sim_reason); names in reason_names. */
typedef enum {
    R_RETURN = 0,   /* session start: back to an item seen before */
    R_TREND_START,  /* session start: a trending item */
    R_CAT_START,    /* session start: a popularity pick in the intent */
    R_REPEAT,       /* the same item again */
    R_BACK,         /* back to an item viewed earlier in the session */
    R_RELATED,      /* a related item of the current one */
    R_TREND,        /* a trending item */
    R_FRESH,        /* a fresh popularity pick (intent or, explore, any) */
    R_FUNNEL,       /* the extra view before a cart, the cart, the purchase */
    R_SHOWN,        /* an impression */
    R_N
} reason_t;

static const char *const reason_names[R_N] = {
    "return", "trend-start", "category-start", "repeat", "back",
    "related", "trend", "fresh", "funnel", "shown",
};

typedef struct session {
    uint64_t id;
    int64_t next_ts;
    uint32_t user;
    uint8_t n, pos;
    step_t steps[PLAN_MAX];
} session_t;

typedef struct user {
    uint16_t fav[3];
    int16_t last_cat;
    uint8_t hist_n, hist_head;
    int32_t hist[HIST];
} user_t;

struct sr_sim_s {
    sr_sim_params_t p;
    rng_t rng;
    uint64_t count;
    uint64_t horizon; /* events over which arrivals spread */
    double ms_per_event;

    uint32_t n_cat;
    double *cat_w; /* category popularity, for tastes and off-taste picks */
    double cat_w_sum;
    uint32_t *cat_off, *cat_len, *cat_arrived;
    uint32_t *cat_items; /* items of each category, in arrival order */
    fen_t cat_fen_all;   /* one flat array; segment per category */
    double *cat_fen_buf;

    uint16_t *item_cat;
    uint32_t *item_pos; /* position inside its category segment */
    double *item_w;
    int32_t *related; /* [items][RELATED], -1 = none */
    fen_t item_fen;   /* all arrived items, for fallbacks */
    uint32_t items_arrived;

    user_t *users;
    fen_t user_fen; /* activity of arrived users */
    uint32_t users_arrived;

    trend_t trends[TRENDS];

    session_t *pool;
    uint32_t *heap, heap_n;
    uint32_t *free_ids, free_n;
    int64_t next_start_ms;
    int64_t last_ts; /* last emitted event time: times never go back */
    double mean_len; /* running mean of planned session length */
    uint64_t n_sessions;

    char user_buf[24], item_buf[24], session_buf[24];
    uint8_t last_reason;
};

void sr_sim_params_init(sr_sim_params_t *p)
{
    memset(p, 0, sizeof(*p));
    p->users = 10000;
    p->items = 5000;
    p->events = 100000;
    p->seed = 1;
    p->start_ms = 1767225600000LL; /* 2026-01-01T00:00:00Z */
    p->days = 30;
    p->events_per_day = 50000;
    p->categories = 0;
    p->zipf_s = 1.0;
    p->initial_share = 0.3;
    p->impression_rate = 0.1;
    p->repeat = 0.22;
    p->back = 0.10;
    p->related = 0.38;
    p->trend = 0.05;
    p->explore = 0.0;
    p->p_continue = 0.8;
    p->p_return = 0.4;
    p->p_cart = 0.04;
    p->p_buy = 0.45;
    p->click_share = 0.5;
    p->activity_alpha = 1.2;
}

int sr_sim_params_preset(sr_sim_params_t *p, const char *name)
{
    if (!p || !name) return SR_ERR_INVAL;
    if (strcmp(name, "default") == 0) {
        sr_sim_params_t d;
        sr_sim_params_init(&d);
        d.users = p->users;
        d.items = p->items;
        d.events = p->events;
        d.seed = p->seed;
        d.start_ms = p->start_ms;
        *p = d;
        return 0;
    }
    if (strcmp(name, "retail") == 0) {
        /* Real shop logs (RetailRocket-like): almost only views, no
         * impressions or clicks, repeat views dominate, sessions are short,
         * most visitors come once, the long tail is longer, browsing
         * follows fixed related items less and wanders off the category
         * more.  Numbers chosen to make the data harder, not fitted. */
        p->zipf_s = 1.1;
        p->impression_rate = 0.0;
        p->click_share = 0.0;
        p->repeat = 0.40;
        p->back = 0.10;
        p->related = 0.18;
        p->trend = 0.03;
        p->explore = 0.3;
        p->p_continue = 0.65;
        p->p_return = 0.5;
        p->p_cart = 0.012;
        p->p_buy = 0.35;
        p->activity_alpha = 2.0;
        return 0;
    }
    return SR_ERR_NOTFOUND;
}

static void set_err(char *errstr, size_t size, const char *msg)
{
    if (errstr && size) snprintf(errstr, size, "%s", msg);
}

/* Weighted pick in category segment c (cumulative search on its Fenwick). */
static int32_t pick_in_cat(sr_sim_t *s, uint32_t c)
{
    if (s->cat_arrived[c] == 0) {
        double tot = fen_total(&s->item_fen, s->item_fen.n);
        if (tot <= 0) return 0;
        return (int32_t)fen_find(&s->item_fen, rng_unit(&s->rng) * tot);
    }
    fen_t f = {s->cat_fen_buf + s->cat_off[c] + c, s->cat_len[c]};
    double tot = fen_total(&f, f.n);
    uint32_t pos = fen_find(&f, rng_unit(&s->rng) * tot);
    if (pos >= s->cat_arrived[c]) pos = s->cat_arrived[c] - 1;
    return (int32_t)s->cat_items[s->cat_off[c] + pos];
}

static uint32_t pick_cat_by_pop(sr_sim_t *s)
{
    double x = rng_unit(&s->rng) * s->cat_w_sum;
    for (uint32_t c = 0; c < s->n_cat; c++) {
        x -= s->cat_w[c];
        if (x < 0) return c;
    }
    return s->n_cat - 1;
}

static void add_item(sr_sim_t *s, uint32_t i)
{
    uint32_t c = s->item_cat[i];
    /* Related neighbours: popular items of the same category at the time
     * the item arrives, some of which link back, so co-viewing is a stable
     * item-item structure every user follows. */
    int32_t *rel = s->related + (size_t)i * RELATED;
    for (int k = 0; k < RELATED; k++) {
        rel[k] = -1;
        if (s->cat_arrived[c] == 0) continue;
        int32_t j = pick_in_cat(s, c);
        if ((uint32_t)j == i || s->item_cat[j] != c) continue;
        rel[k] = j;
        if (rng_unit(&s->rng) < 0.3)
            s->related[(size_t)j * RELATED + rng_below(&s->rng, RELATED)] = (int32_t)i;
    }
    fen_t f = {s->cat_fen_buf + s->cat_off[c] + c, s->cat_len[c]};
    fen_add(&f, s->item_pos[i], s->item_w[i]);
    fen_add(&s->item_fen, i, s->item_w[i]);
    s->cat_arrived[c]++;
    s->items_arrived = i + 1;
}

static void add_user(sr_sim_t *s, uint32_t u)
{
    user_t *us = &s->users[u];
    for (int k = 0; k < 3; k++)
        us->fav[k] = (uint16_t)pick_cat_by_pop(s);
    us->last_cat = -1;
    us->hist_n = us->hist_head = 0;
    /* Pareto activity: a few heavy shoppers, many who come once. */
    double w = pow(1.0 - rng_unit(&s->rng), -1.0 / s->p.activity_alpha);
    if (w > 200) w = 200;
    fen_add(&s->user_fen, u, w);
    s->users_arrived = u + 1;
}

static uint64_t arrival_event(const sr_sim_t *s, uint32_t idx, uint32_t total, uint32_t initial)
{
    if (idx < initial) return 0;
    return (uint64_t)((double)(idx - initial + 1) * (double)s->horizon /
                      (double)(total - initial + 1));
}

static void arrivals(sr_sim_t *s)
{
    uint32_t i0 = (uint32_t)(s->p.initial_share * s->p.items);
    uint32_t u0 = (uint32_t)(s->p.initial_share * s->p.users);
    if (i0 < 1) i0 = 1;
    if (u0 < 1) u0 = 1;
    while (s->items_arrived < s->p.items &&
           arrival_event(s, s->items_arrived, s->p.items, i0) <= s->count)
        add_item(s, s->items_arrived);
    while (s->users_arrived < s->p.users &&
           arrival_event(s, s->users_arrived, s->p.users, u0) <= s->count)
        add_user(s, s->users_arrived);
}

sr_sim_t *sr_sim_new(const sr_sim_params_t *p, char *errstr, size_t errstr_size)
{
    if (!p || p->users == 0 || p->items == 0) {
        set_err(errstr, errstr_size, "users and items must be > 0");
        return NULL;
    }
    if (!(p->repeat >= 0 && p->back >= 0 && p->related >= 0 && p->trend >= 0 &&
          p->repeat + p->back + p->related + p->trend <= 1.0 + 1e-9) ||
        !(p->explore >= 0 && p->explore <= 1) || !(p->p_continue >= 0 && p->p_continue < 1) ||
        !(p->p_return >= 0 && p->p_return <= 1) || !(p->p_cart >= 0 && p->p_cart <= 1) ||
        !(p->p_buy >= 0 && p->p_buy <= 1) || !(p->click_share >= 0 && p->click_share <= 1) ||
        !(p->activity_alpha > 0 && p->activity_alpha <= 100)) {
        set_err(errstr, errstr_size,
                "repeat, back, related, trend must be >= 0 with a sum <= 1; explore, p_return, "
                "p_cart, p_buy, click_share in [0,1]; p_continue in [0,1); activity_alpha in "
                "(0,100]");
        return NULL;
    }
    if (!(p->initial_share > 0 && p->initial_share <= 1) ||
        !(p->impression_rate >= 0 && p->impression_rate <= 1) ||
        !(p->zipf_s >= 0 && p->zipf_s <= 4) || !(p->days > 0) || !(p->events_per_day > 0)) {
        set_err(errstr, errstr_size,
                "initial_share must be in (0,1], impression_rate in [0,1], zipf_s in [0,4], days "
                "and events_per_day > 0");
        return NULL;
    }
    if (p->categories > 65535) {
        set_err(errstr, errstr_size, "at most 65535 categories");
        return NULL;
    }
    sr_sim_t *s = calloc(1, sizeof(*s));
    if (!s) goto nomem;
    s->p = *p;
    rng_seed(&s->rng, p->seed ^ 0x5EED5EED5EEDULL);
    s->horizon = p->events ? p->events : (uint64_t)(p->events_per_day * 30);
    s->ms_per_event = p->events ? p->days * DAY_MS / (double)p->events : DAY_MS / p->events_per_day;
    uint32_t nc = p->categories ? p->categories : p->items / 250;
    if (nc < 4) nc = 4;
    if (nc > 65535) nc = 65535;
    if (nc > p->items) nc = p->items;
    s->n_cat = nc;
    uint32_t ni = p->items, nu = p->users;

    s->cat_w = calloc(nc, sizeof(double));
    s->cat_off = calloc(nc, sizeof(uint32_t));
    s->cat_len = calloc(nc, sizeof(uint32_t));
    s->cat_arrived = calloc(nc, sizeof(uint32_t));
    s->cat_items = calloc(ni, sizeof(uint32_t));
    s->cat_fen_buf = calloc((size_t)ni + nc + 1, sizeof(double));
    s->item_cat = calloc(ni, sizeof(uint16_t));
    s->item_pos = calloc(ni, sizeof(uint32_t));
    s->item_w = calloc(ni, sizeof(double));
    s->related = calloc((size_t)ni * RELATED, sizeof(int32_t));
    s->item_fen.t = calloc((size_t)ni + 1, sizeof(double));
    s->item_fen.n = ni;
    s->users = calloc(nu, sizeof(user_t));
    s->user_fen.t = calloc((size_t)nu + 1, sizeof(double));
    s->user_fen.n = nu;
    s->pool = calloc(POOL_MAX, sizeof(session_t));
    s->heap = calloc(POOL_MAX, sizeof(uint32_t));
    s->free_ids = calloc(POOL_MAX, sizeof(uint32_t));
    if (!s->cat_w || !s->cat_off || !s->cat_len || !s->cat_arrived || !s->cat_items ||
        !s->cat_fen_buf || !s->item_cat || !s->item_pos || !s->item_w || !s->related ||
        !s->item_fen.t || !s->users || !s->user_fen.t || !s->pool || !s->heap || !s->free_ids)
        goto nomem;

    /* Category sizes and popularity: a milder Zipf (0.7) over categories. */
    for (uint32_t c = 0; c < nc; c++)
        s->cat_w[c] = 1.0 / pow((double)c + 1, 0.7);
    for (uint32_t c = nc - 1; c > 0; c--) { /* shuffle so ids carry no rank */
        uint32_t j = rng_below(&s->rng, c + 1);
        double t = s->cat_w[c];
        s->cat_w[c] = s->cat_w[j];
        s->cat_w[j] = t;
    }
    for (uint32_t c = 0; c < nc; c++)
        s->cat_w_sum += s->cat_w[c];
    /* Every category gets at least one item, the rest by popularity. */
    for (uint32_t i = 0; i < ni; i++)
        s->item_cat[i] = (uint16_t)(i < nc ? i : pick_cat_by_pop(s));
    for (uint32_t i = 0; i < ni; i++)
        s->cat_len[s->item_cat[i]]++;
    for (uint32_t c = 1; c < nc; c++)
        s->cat_off[c] = s->cat_off[c - 1] + s->cat_len[c - 1];
    {
        uint32_t *fill = calloc(nc, sizeof(uint32_t));
        if (!fill) goto nomem;
        for (uint32_t i = 0; i < ni; i++) {
            uint32_t c = s->item_cat[i];
            s->item_pos[i] = fill[c];
            s->cat_items[s->cat_off[c] + fill[c]++] = i;
        }
        free(fill);
    }
    /* Item popularity: Zipf over a random rank, so ids say nothing and the
     * tail is long. */
    for (uint32_t i = 0; i < ni; i++)
        s->item_w[i] = 1.0 / pow((double)i + 1, p->zipf_s);
    for (uint32_t i = ni - 1; i > 0; i--) {
        uint32_t j = rng_below(&s->rng, i + 1);
        double t = s->item_w[i];
        s->item_w[i] = s->item_w[j];
        s->item_w[j] = t;
    }
    for (int k = 0; k < TRENDS; k++)
        s->trends[k].item = -1;
    for (uint32_t k = 0; k < POOL_MAX; k++)
        s->free_ids[k] = POOL_MAX - 1 - k;
    s->free_n = POOL_MAX;
    s->mean_len = 8;
    s->next_start_ms = p->start_ms;
    arrivals(s);
    return s;
nomem:
    sr_sim_destroy(s);
    set_err(errstr, errstr_size, "out of memory");
    return NULL;
}

void sr_sim_destroy(sr_sim_t *s)
{
    if (!s) return;
    free(s->cat_w);
    free(s->cat_off);
    free(s->cat_len);
    free(s->cat_arrived);
    free(s->cat_items);
    free(s->cat_fen_buf);
    free(s->item_cat);
    free(s->item_pos);
    free(s->item_w);
    free(s->related);
    free(s->item_fen.t);
    free(s->users);
    free(s->user_fen.t);
    free(s->pool);
    free(s->heap);
    free(s->free_ids);
    free(s);
}

/* ---- trends ---- */

static double trend_intensity(const trend_t *t, int64_t now)
{
    if (t->item < 0 || now <= t->t0 || now >= t->t1) return 0;
    if (now <= t->tpeak) return (double)(now - t->t0) / (double)(t->tpeak - t->t0 + 1);
    return (double)(t->t1 - now) / (double)(t->t1 - t->tpeak + 1);
}

/* Replaces finished trends with a fresh one on a recently arrived item. */
static void refresh_trends(sr_sim_t *s, int64_t now)
{
    for (int k = 0; k < TRENDS; k++) {
        trend_t *t = &s->trends[k];
        if (t->item >= 0 && now < t->t1) continue;
        uint32_t n = s->items_arrived, recent = n / 20 + 1;
        if (recent > n) recent = n;
        t->item = (int32_t)(n - 1 - rng_below(&s->rng, recent));
        t->t0 = now + (int64_t)rng_exp(&s->rng, 0.5 * DAY_MS);
        t->tpeak = t->t0 + (int64_t)((0.3 + rng_unit(&s->rng)) * DAY_MS);
        t->t1 = t->tpeak + (int64_t)((1.0 + 2.0 * rng_unit(&s->rng)) * DAY_MS);
    }
}

static int32_t pick_trending(sr_sim_t *s, int64_t now)
{
    double w[TRENDS], sum = 0;
    for (int k = 0; k < TRENDS; k++)
        sum += (w[k] = trend_intensity(&s->trends[k], now));
    if (sum <= 0) return -1;
    double x = rng_unit(&s->rng) * sum;
    for (int k = 0; k < TRENDS; k++) {
        x -= w[k];
        if (x < 0 && w[k] > 0) return s->trends[k].item;
    }
    return -1;
}

/* ---- session planning ---- */

typedef struct plan {
    session_t *ss;
    int32_t carted[8];
    int n_carted;
    int32_t pending_buy[8];
    int n_pending;
    reason_t why; /* of the view being planned */
} plan_t;

static int plan_push(plan_t *pl, int32_t item, sr_event_type_t type)
{
    session_t *ss = pl->ss;
    if (ss->n >= PLAN_MAX) return -1;
    ss->steps[ss->n].item = item;
    ss->steps[ss->n].type = (uint8_t)type;
    ss->steps[ss->n].reason = (uint8_t)(type == SR_EV_IMPRESSION                        ? R_SHOWN
                                        : type == SR_EV_CART || type == SR_EV_PURCHASE ? R_FUNNEL
                                                                                        : pl->why);
    ss->n++;
    return 0;
}

static int was_carted(const plan_t *pl, int32_t item)
{
    for (int k = 0; k < pl->n_carted; k++)
        if (pl->carted[k] == item) return 1;
    return 0;
}

/* One view (or click from a listing, maybe after impressions), then maybe
 * the start of a funnel on the same item. */
static void plan_view(sr_sim_t *s, plan_t *pl, uint32_t cat, int32_t item, int from_listing,
                      int seen_before)
{
    if (from_listing && rng_unit(&s->rng) < s->p.impression_rate) {
        int n = 1 + (int)rng_below(&s->rng, 3);
        for (int k = 0; k < n; k++) {
            int32_t other = pick_in_cat(s, cat);
            if (other != item) plan_push(pl, other, SR_EV_IMPRESSION);
        }
    }
    plan_push(pl, item,
              from_listing && rng_unit(&s->rng) < s->p.click_share ? SR_EV_CLICK : SR_EV_VIEW);
    double p_cart = seen_before ? fmin(1.0, 3.0 * s->p.p_cart) : s->p.p_cart;
    if (!was_carted(pl, item) && pl->n_carted < 8 && rng_unit(&s->rng) < p_cart) {
        if (rng_unit(&s->rng) < 0.5) { /* look again first */
            reason_t why = pl->why;
            pl->why = R_FUNNEL;
            plan_push(pl, item, SR_EV_VIEW);
            pl->why = why;
        }
        if (plan_push(pl, item, SR_EV_CART) == 0) {
            pl->carted[pl->n_carted++] = item;
            if (pl->n_pending < 8 && rng_unit(&s->rng) < s->p.p_buy)
                pl->pending_buy[pl->n_pending++] = item;
        }
    }
    /* A pending purchase happens a few steps after the cart, in order. */
    if (pl->n_pending && rng_unit(&s->rng) < 0.2) {
        if (plan_push(pl, pl->pending_buy[0], SR_EV_PURCHASE) == 0) {
            memmove(pl->pending_buy, pl->pending_buy + 1,
                    sizeof(int32_t) * (size_t)(pl->n_pending - 1));
            pl->n_pending--;
        }
    }
}

static int32_t user_hist_pick(sr_sim_t *s, const user_t *us)
{
    /* Recent items first: geometric over the history ring, newest first. */
    int back = 0;
    while (back + 1 < us->hist_n && rng_unit(&s->rng) < 0.4)
        back++;
    return us->hist[(us->hist_head + HIST - 1 - back) % HIST];
}

static void user_hist_add(user_t *us, int32_t item)
{
    for (int k = 0; k < us->hist_n; k++)
        if (us->hist[(us->hist_head + HIST - 1 - k) % HIST] == item) return;
    us->hist[us->hist_head] = item;
    us->hist_head = (uint8_t)((us->hist_head + 1) % HIST);
    if (us->hist_n < HIST) us->hist_n++;
}

static void plan_session(sr_sim_t *s, session_t *ss, int64_t now)
{
    uint32_t u = fen_find(&s->user_fen, rng_unit(&s->rng) * fen_total(&s->user_fen, s->user_fen.n));
    if (u >= s->users_arrived) u = s->users_arrived - 1;
    user_t *us = &s->users[u];
    ss->user = u;
    ss->n = ss->pos = 0;
    ss->id = s->n_sessions++;
    plan_t pl = {.ss = ss};

    /* Intent: often the category of the user's last session (short related
     * sessions), else a favourite, sometimes anything. */
    double r = rng_unit(&s->rng);
    uint32_t cat;
    if (us->last_cat >= 0 && r < 0.4)
        cat = (uint32_t)us->last_cat;
    else if (r < 0.9) {
        double f = rng_unit(&s->rng);
        cat = us->fav[f < 0.6 ? 0 : f < 0.85 ? 1 : 2];
    } else
        cat = pick_cat_by_pop(s);

    int32_t cur;
    int seen = 0;
    r = rng_unit(&s->rng);
    const double p_ret = s->p.p_return;
    if (us->hist_n && r < p_ret) { /* come back to an item seen before */
        cur = user_hist_pick(s, us);
        cat = s->item_cat[cur];
        seen = 1;
        pl.why = R_RETURN;
        plan_view(s, &pl, cat, cur, 0, seen);
    } else if (r < p_ret + 0.08 && (cur = pick_trending(s, now)) >= 0) {
        pl.why = R_TREND_START;
        plan_view(s, &pl, cat, cur, 1, 0);
    } else {
        cur = pick_in_cat(s, cat);
        pl.why = R_CAT_START;
        plan_view(s, &pl, cat, cur, 1, 0);
    }
    int32_t viewed[PLAN_MAX];
    int n_viewed = 0;
    viewed[n_viewed++] = cur;
    user_hist_add(us, cur);

    /* Session length: 1 + geometric, mean about 5 views. */
    const double c_rep = s->p.repeat, c_back = c_rep + s->p.back, c_rel = c_back + s->p.related,
                 c_trend = c_rel + s->p.trend;
    while (ss->n < PLAN_MAX - 6 && rng_unit(&s->rng) < s->p.p_continue) {
        r = rng_unit(&s->rng);
        int32_t next = -1, listing = 0;
        if (r < c_rep) {
            next = cur; /* repeat view of the same item */
            pl.why = R_REPEAT;
        } else if (r < c_back) {
            next = viewed[rng_below(&s->rng, (uint32_t)n_viewed)]; /* back to one seen earlier */
            pl.why = R_BACK;
        } else if (r < c_rel) {
            const int32_t *rel = s->related + (size_t)cur * RELATED;
            next = rel[rng_below(&s->rng, RELATED)];
            pl.why = R_RELATED;
        } else if (r < c_trend) {
            next = pick_trending(s, now);
            pl.why = R_TREND;
            listing = 1;
        }
        if (next < 0) {
            /* a fresh pick: the session's category, or (explore) any */
            uint32_t pc = cat;
            if (s->p.explore > 0 && rng_unit(&s->rng) < s->p.explore) pc = pick_cat_by_pop(s);
            next = pick_in_cat(s, pc);
            pl.why = R_FRESH;
            listing = 1;
        }
        int seen_before = 0;
        for (int k = 0; k < n_viewed; k++)
            if (viewed[k] == next) seen_before = 1;
        plan_view(s, &pl, cat, next, listing, seen_before);
        if (!seen_before && n_viewed < PLAN_MAX) viewed[n_viewed++] = next;
        user_hist_add(us, next);
        cur = next;
    }
    for (int k = 0; k < pl.n_pending; k++)
        plan_push(&pl, pl.pending_buy[k], SR_EV_PURCHASE);
    us->last_cat = (int16_t)cat;
    s->mean_len += (ss->n - s->mean_len) * 0.01;
}

/* ---- session heap ---- */

static int heap_less(const sr_sim_t *s, uint32_t a, uint32_t b)
{
    const session_t *x = &s->pool[a], *y = &s->pool[b];
    return x->next_ts < y->next_ts || (x->next_ts == y->next_ts && x->id < y->id);
}

static void heap_up(sr_sim_t *s, uint32_t i)
{
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (!heap_less(s, s->heap[i], s->heap[parent])) break;
        uint32_t t = s->heap[i];
        s->heap[i] = s->heap[parent];
        s->heap[parent] = t;
        i = parent;
    }
}

static void heap_down(sr_sim_t *s, uint32_t i)
{
    for (;;) {
        uint32_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < s->heap_n && heap_less(s, s->heap[l], s->heap[m])) m = l;
        if (r < s->heap_n && heap_less(s, s->heap[r], s->heap[m])) m = r;
        if (m == i) return;
        uint32_t t = s->heap[i];
        s->heap[i] = s->heap[m];
        s->heap[m] = t;
        i = m;
    }
}

static void start_session(sr_sim_t *s)
{
    int64_t now = s->next_start_ms > s->last_ts ? s->next_start_ms : s->last_ts;
    uint32_t slot = s->free_ids[--s->free_n];
    session_t *ss = &s->pool[slot];
    refresh_trends(s, now);
    plan_session(s, ss, now);
    ss->next_ts = now;
    s->heap[s->heap_n++] = slot;
    heap_up(s, s->heap_n - 1);
    /* Poisson session starts at the rate that gives the target event rate. */
    double mean_gap = s->ms_per_event * s->mean_len;
    int64_t gap = (int64_t)rng_exp(&s->rng, mean_gap);
    s->next_start_ms = now + (gap > 0 ? gap : 1);
}

int sr_sim_next(sr_sim_t *s, sr_event_t *ev)
{
    if (!s || !ev) return SR_ERR_INVAL;
    if (s->p.events && s->count >= s->p.events) return 0;
    arrivals(s);
    while (s->heap_n == 0 || (s->free_n > 0 && s->next_start_ms <= s->pool[s->heap[0]].next_ts))
        start_session(s);
    uint32_t slot = s->heap[0];
    session_t *ss = &s->pool[slot];
    const step_t *st = &ss->steps[ss->pos++];
    s->last_reason = st->reason;
    memset(ev, 0, sizeof(*ev));
    ev->ts_ms = ss->next_ts;
    s->last_ts = ev->ts_ms;
    ev->type = (sr_event_type_t)st->type;
    ev->user_len = (size_t)snprintf(s->user_buf, sizeof(s->user_buf), "u%u", ss->user);
    ev->item_len = (size_t)snprintf(s->item_buf, sizeof(s->item_buf), "i%d", st->item);
    ev->user = s->user_buf;
    ev->item = s->item_buf;
    snprintf(s->session_buf, sizeof(s->session_buf), "s%llu", (unsigned long long)ss->id);
    uint64_t x = s->p.seed * 0x9E3779B97F4A7C15ULL + s->count;
    ev->id_hash = splitmix64(&x) | 1;
    if (ev->type == SR_EV_CART || ev->type == SR_EV_PURCHASE) {
        uint64_t h = (uint64_t)st->item * 0x9E3779B97F4A7C15ULL;
        ev->value = 5.0f + (float)(splitmix64(&h) % 20000) / 100.0f;
    }
    s->count++;
    if (ss->pos >= ss->n) { /* session over: free the slot */
        s->heap[0] = s->heap[--s->heap_n];
        if (s->heap_n) heap_down(s, 0);
        s->free_ids[s->free_n++] = slot;
    } else { /* next step after a think time (impressions come together) */
        int64_t gap = st->type == SR_EV_IMPRESSION ? 0 : (int64_t)(5000 + rng_exp(&s->rng, 40000));
        ss->next_ts += gap;
        heap_down(s, 0);
    }
    return 1;
}

const char *sr_sim_reason(const sr_sim_t *s)
{
    return s->last_reason < R_N ? reason_names[s->last_reason] : "?";
}

const char *sr_sim_session(const sr_sim_t *s)
{
    return s->session_buf;
}

uint64_t sr_sim_count(const sr_sim_t *s)
{
    return s->count;
}
