/* The simulator: deterministic for a seed, funnels in order on one item,
 * a long tail, repeat views, arrivals, monotone time, bad params refused. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sr_err.h"
#include "sr_sim.h"

static sr_sim_t *make(uint32_t users, uint32_t items, uint64_t events, uint64_t seed)
{
    sr_sim_params_t p;
    sr_sim_params_init(&p);
    p.users = users;
    p.items = items;
    p.events = events;
    p.seed = seed;
    char err[128];
    sr_sim_t *s = sr_sim_new(&p, err, sizeof(err));
    cr_assert_not_null(s, "%s", err);
    return s;
}

static uint64_t digest(uint64_t seed)
{
    sr_sim_t *s = make(300, 500, 20000, seed);
    sr_event_t ev;
    uint64_t h = 1469598103934665603ULL;
    while (sr_sim_next(s, &ev) == 1) {
        h = (h ^ (uint64_t)ev.ts_ms) * 1099511628211ULL;
        h = (h ^ sr_hash64(ev.user, ev.user_len, 1)) * 1099511628211ULL;
        h = (h ^ sr_hash64(ev.item, ev.item_len, 2)) * 1099511628211ULL;
        h = (h ^ (uint64_t)ev.type) * 1099511628211ULL;
        h = (h ^ ev.id_hash) * 1099511628211ULL;
    }
    sr_sim_destroy(s);
    return h;
}

Test(sim, deterministic_for_a_seed)
{
    cr_assert_eq(digest(7), digest(7));
}

Test(sim, seeds_differ)
{
    cr_assert_neq(digest(7), digest(8));
}

Test(sim, exact_event_count_then_end)
{
    sr_sim_t *s = make(100, 200, 1234, 1);
    sr_event_t ev;
    uint64_t n = 0;
    while (sr_sim_next(s, &ev) == 1)
        n++;
    cr_assert_eq(n, 1234);
    cr_assert_eq(sr_sim_count(s), 1234);
    cr_assert_eq(sr_sim_next(s, &ev), 0, "stays ended");
    sr_sim_destroy(s);
}

Test(sim, time_never_goes_back)
{
    sr_sim_t *s = make(1000, 2000, 50000, 3);
    sr_event_t ev;
    int64_t last = INT64_MIN;
    while (sr_sim_next(s, &ev) == 1) {
        cr_assert_geq(ev.ts_ms, last);
        last = ev.ts_ms;
    }
    sr_sim_destroy(s);
}

/* Per (user, item): purchase only after a cart, cart only after a view or
 * click of the same item by the same user. */
Test(sim, funnel_order_on_one_item)
{
    enum { U = 400, I = 800 };
    uint8_t *state = calloc((size_t)U * I, 1); /* bit 1 viewed, bit 2 carted */
    sr_sim_t *s = make(U, I, 60000, 5);
    sr_event_t ev;
    int carts = 0, buys = 0;
    while (sr_sim_next(s, &ev) == 1) {
        int u = atoi(ev.user + 1), i = atoi(ev.item + 1);
        cr_assert(u >= 0 && u < U && i >= 0 && i < I);
        uint8_t *st = &state[(size_t)u * I + i];
        switch (ev.type) {
        case SR_EV_VIEW:
        case SR_EV_CLICK:
            *st |= 1;
            break;
        case SR_EV_CART:
            cr_assert(*st & 1, "cart of %s by %s before any view", ev.item, ev.user);
            *st |= 2;
            carts++;
            break;
        case SR_EV_PURCHASE:
            cr_assert(*st & 2, "purchase of %s by %s before its cart", ev.item, ev.user);
            buys++;
            break;
        default:
            break;
        }
    }
    cr_assert_gt(carts, 100);
    cr_assert_gt(buys, 50);
    cr_assert_lt(buys, carts);
    sr_sim_destroy(s);
    free(state);
}

Test(sim, long_tail_and_a_head)
{
    enum { U = 5000, I = 20000, E = 50000 };
    uint32_t *cnt = calloc(I, sizeof(uint32_t));
    sr_sim_t *s = make(U, I, E, 11);
    sr_event_t ev;
    int views = 0, impressions = 0;
    while (sr_sim_next(s, &ev) == 1) {
        if (ev.type == SR_EV_IMPRESSION) {
            impressions++;
            continue;
        }
        cnt[atoi(ev.item + 1)]++;
        if (ev.type == SR_EV_VIEW || ev.type == SR_EV_CLICK) views++;
    }
    sr_sim_destroy(s);
    uint32_t seen = 0, once = 0, max = 0;
    uint64_t total = 0;
    for (int i = 0; i < I; i++) {
        if (cnt[i]) seen++;
        if (cnt[i] == 1) once++;
        if (cnt[i] > max) max = cnt[i];
        total += cnt[i];
    }
    free(cnt);
    cr_assert_gt(once, seen / 5, "long tail: %u of %u items seen once", once, seen);
    cr_assert_gt(max, 100 * total / seen, "a head: top item %u vs mean %lu", max, total / seen);
    cr_assert_gt(impressions, 0);
    cr_assert_gt(views, E / 2);
}

/* The same user viewing the same item again within a short stretch of
 * their events: a defining feature of real shop logs. */
Test(sim, repeat_views_of_the_same_item)
{
    enum { U = 2000, I = 5000, E = 40000 };
    int32_t *last = malloc(sizeof(int32_t) * U);
    for (int u = 0; u < U; u++)
        last[u] = -1;
    sr_sim_t *s = make(U, I, E, 13);
    sr_event_t ev;
    int n = 0, rep = 0;
    while (sr_sim_next(s, &ev) == 1) {
        if (ev.type != SR_EV_VIEW && ev.type != SR_EV_CLICK) continue;
        int u = atoi(ev.user + 1), i = atoi(ev.item + 1);
        if (last[u] == i) rep++;
        last[u] = i;
        n++;
    }
    sr_sim_destroy(s);
    free(last);
    cr_assert_gt(rep, n / 10, "%d of %d views repeat the user's previous item", rep, n);
}

Test(sim, users_and_items_keep_arriving)
{
    enum { U = 3000, I = 6000, E = 60000 };
    uint8_t *useen = calloc(U, 1), *iseen = calloc(I, 1);
    sr_sim_t *s = make(U, I, E, 17);
    sr_event_t ev;
    int new_users_late = 0, new_items_late = 0, n = 0;
    while (sr_sim_next(s, &ev) == 1) {
        int u = atoi(ev.user + 1), i = atoi(ev.item + 1);
        if (!useen[u] && n > E * 3 / 4) new_users_late++;
        if (!iseen[i] && n > E * 3 / 4) new_items_late++;
        useen[u] = iseen[i] = 1;
        n++;
    }
    sr_sim_destroy(s);
    free(useen);
    free(iseen);
    cr_assert_gt(new_users_late, 50);
    cr_assert_gt(new_items_late, 50);
}

Test(sim, bad_params_refused)
{
    sr_sim_params_t p;
    char err[128];
    sr_sim_params_init(&p);
    p.users = 0;
    cr_assert_null(sr_sim_new(&p, err, sizeof(err)));
    cr_assert(strlen(err) > 0);
    sr_sim_params_init(&p);
    p.initial_share = 0;
    cr_assert_null(sr_sim_new(&p, err, sizeof(err)));
    sr_sim_params_init(&p);
    p.impression_rate = 2;
    cr_assert_null(sr_sim_new(&p, err, sizeof(err)));
    cr_assert_null(sr_sim_new(NULL, err, sizeof(err)));
    sr_sim_destroy(NULL);
}

Test(sim, endless_mode_keeps_going)
{
    sr_sim_params_t p;
    sr_sim_params_init(&p);
    p.users = 100;
    p.items = 100;
    p.events = 0;
    sr_sim_t *s = sr_sim_new(&p, NULL, 0);
    cr_assert_not_null(s);
    sr_event_t ev;
    for (int k = 0; k < 20000; k++)
        cr_assert_eq(sr_sim_next(s, &ev), 1);
    cr_assert(strncmp(sr_sim_session(s), "s", 1) == 0);
    sr_sim_destroy(s);
}

/* Share of interactions repeating the user's previous item, and counts of
 * clicks and impressions, over a run with params p. */
static void shape(const sr_sim_params_t *p, double *repeat, uint64_t *clicks, uint64_t *imps)
{
    sr_sim_t *s = sr_sim_new(p, NULL, 0);
    cr_assert_not_null(s);
    static int32_t last[2000];
    for (int k = 0; k < 2000; k++)
        last[k] = -1;
    uint64_t inter = 0, rep = 0;
    *clicks = *imps = 0;
    sr_event_t ev;
    while (sr_sim_next(s, &ev) == 1) {
        *clicks += ev.type == SR_EV_CLICK;
        *imps += ev.type == SR_EV_IMPRESSION;
        if (ev.type == SR_EV_IMPRESSION) continue;
        int u = atoi(ev.user + 1), i = atoi(ev.item + 1);
        inter++;
        rep += last[u] == i;
        last[u] = i;
    }
    *repeat = (double)rep / (double)inter;
    sr_sim_destroy(s);
}

Test(sim, retail_preset_is_views_and_repeats)
{
    sr_sim_params_t p;
    sr_sim_params_init(&p);
    p.users = 2000;
    p.items = 3000;
    p.events = 30000;
    double rep_default, rep_retail;
    uint64_t clicks, imps;
    shape(&p, &rep_default, &clicks, &imps);
    cr_assert_gt(clicks, 0);
    cr_assert_gt(imps, 0);
    cr_assert_eq(sr_sim_params_preset(&p, "retail"), 0);
    cr_assert_eq(p.users, 2000, "a preset keeps the sizes");
    cr_assert_eq(p.events, 30000);
    shape(&p, &rep_retail, &clicks, &imps);
    cr_assert_eq(clicks, 0, "retail logs views, not clicks");
    cr_assert_eq(imps, 0, "retail logs no impressions");
    cr_assert_gt(rep_retail, rep_default + 0.03, "retail %.3f vs default %.3f", rep_retail,
                 rep_default);
    /* "default" undoes it */
    sr_sim_params_t d;
    sr_sim_params_init(&d);
    d.users = 2000;
    d.items = 3000;
    d.events = 30000;
    cr_assert_eq(sr_sim_params_preset(&p, "default"), 0);
    cr_assert_eq(memcmp(&p, &d, sizeof p), 0);
    cr_assert_eq(sr_sim_params_preset(&p, "nope"), SR_ERR_NOTFOUND);
}

Test(sim, bad_browsing_params_refused)
{
    sr_sim_params_t p;
    char err[256];
    sr_sim_params_init(&p);
    p.related = 0.9; /* with repeat 0.22 the mixture exceeds 1 */
    cr_assert_null(sr_sim_new(&p, err, sizeof(err)));
    cr_assert(strstr(err, "sum") != NULL, "%s", err);
    sr_sim_params_init(&p);
    p.p_continue = 1.0; /* endless sessions */
    cr_assert_null(sr_sim_new(&p, err, sizeof(err)));
    sr_sim_params_init(&p);
    p.activity_alpha = 0;
    cr_assert_null(sr_sim_new(&p, err, sizeof(err)));
    sr_sim_params_init(&p);
    p.explore = -0.1;
    cr_assert_null(sr_sim_new(&p, err, sizeof(err)));
}

Test(sim, reasons_name_the_generative_step)
{
    sr_sim_t *s = make(300, 500, 20000, 3);
    sr_event_t ev;
    static const char *const known[] = {"return",  "trend-start", "category-start", "repeat",
                                        "back",    "related",     "trend",          "fresh",
                                        "funnel",  "shown"};
    int seen[10] = {0};
    while (sr_sim_next(s, &ev) == 1) {
        const char *r = sr_sim_reason(s);
        int k = 0;
        while (k < 10 && strcmp(r, known[k]) != 0)
            k++;
        cr_assert_lt(k, 10, "unknown reason '%s'", r);
        seen[k]++;
        if (ev.type == SR_EV_IMPRESSION) cr_assert_str_eq(r, "shown");
        if (ev.type == SR_EV_CART || ev.type == SR_EV_PURCHASE) cr_assert_str_eq(r, "funnel");
        if (!strcmp(r, "shown")) cr_assert_eq(ev.type, SR_EV_IMPRESSION);
    }
    for (int k = 0; k < 10; k++)
        cr_assert_gt(seen[k], 0, "no '%s' step in 20000 events", known[k]);
    sr_sim_destroy(s);
}
