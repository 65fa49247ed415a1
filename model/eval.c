/* The prequential evaluator and its baselines (sr_eval.h has the exact
 * definitions).  Built for speed without cleverness: the catalogue has its
 * own dense item index (first seen first), dense models are ranked by two
 * counting passes over a flat float array, sparse models (recency, cooc)
 * only touch their non-zero candidates and count the zero-score rest, and
 * top-K is a partial insertion selection.  Nothing is allocated per event
 * once the tables have grown. */
#include "sr_eval.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval_tab.h"
#include "sr_err.h"

#define DAY_MS 86400000.0
#define COOC_WINDOW 5
#define POPD_RESCALE_DAYS 64.0 /* keep 2^(age/day) far from float overflow */

typedef struct cand {
    uint32_t idx;
    float s;
} cand_t;

typedef struct nbr {
    uint32_t *item, *cnt;
    uint32_t n, cap;
} nbr_t;

struct sr_eval_s {
    sr_eval_params_t p;
    sr_model_t *model;
    ev_strtab_t users, items;

    /* per user */
    uint32_t ucap;
    uint32_t *u_head; /* newest pair + 1; 0 = none */
    uint8_t *u_hist;
    uint32_t *u_win; /* [COOC_WINDOW] per user, oldest first */
    uint8_t *u_win_n;

    /* per item */
    uint32_t icap;
    float *pop, *popd, *score, *acc;
    uint32_t *occ;
    int32_t *i2m;
    uint8_t *mask; /* bit 1: excluded; bit 2: already listed (sparse fill) */
    uint8_t *rec[SR_EVAL_NMODELS];
    nbr_t *nb;
    double popd_t0;
    int popd_init;
    uint64_t pop_total;

    /* per user-item pair */
    ev_map_t pairs;
    uint32_t pcap, npairs;
    uint32_t *pr_item, *pr_next;
    double *pr_acc;
    int64_t *pr_t;

    ev_map_t co; /* (i << 32 | c) -> position in nb[i] */

    /* scratch */
    float *mscore;
    uint32_t mscore_cap;
    uint32_t *excl, excl_n, excl_cap;
    uint32_t *touched, touched_n, touched_cap;
    cand_t *cands;
    uint32_t cands_cap;
    uint32_t *top;
    float *topv;

    /* results */
    uint64_t events, eligible, evaluated, misses, model_errors;
    double hits[SR_EVAL_NMODELS], ndcg[SR_EVAL_NMODELS], rr[SR_EVAL_NMODELS], info[SR_EVAL_NMODELS];
    uint64_t nrec[SR_EVAL_NMODELS], ncov[SR_EVAL_NMODELS];
    sr_eval_outcome_t last;
};

static const char *const model_names[SR_EVAL_NMODELS] = {"streamrec", "pop", "pop-decay", "recency",
                                                         "cooc"};

const char *sr_eval_model_name(int model)
{
    return model >= 0 && model < SR_EVAL_NMODELS ? model_names[model] : "unknown";
}

int sr_eval_protocol_parse(const char *s, sr_eval_protocol_t *out)
{
    if (s && strcmp(s, "all") == 0)
        *out = SR_EVAL_ALL;
    else if (s && strcmp(s, "discovery") == 0)
        *out = SR_EVAL_DISCOVERY;
    else
        return SR_ERR_PARSE;
    return 0;
}

const char *sr_eval_protocol_name(sr_eval_protocol_t p)
{
    return p == SR_EVAL_DISCOVERY ? "discovery" : "all";
}

void sr_eval_params_init(sr_eval_params_t *p)
{
    memset(p, 0, sizeof(*p));
    p->protocol = SR_EVAL_DISCOVERY;
    p->every = 1;
    p->k = 10;
    p->models = (1u << SR_EVAL_NMODELS) - 1;
    sr_model_params_init(&p->model);
}

sr_eval_t *sr_eval_new(const sr_eval_params_t *p, char *errstr, size_t errstr_size)
{
    if (!p || p->every < 1 || p->k < 1 || p->k > 100000 ||
        (p->protocol != SR_EVAL_ALL && p->protocol != SR_EVAL_DISCOVERY) ||
        (p->models & ~((1u << SR_EVAL_NMODELS) - 1)) || p->models == 0) {
        if (errstr && errstr_size)
            snprintf(errstr, errstr_size,
                     "invalid evaluator params (every >= 1, 1 <= k <= 100000, a protocol, models)");
        return NULL;
    }
    sr_eval_t *e = calloc(1, sizeof(*e));
    if (!e) goto nomem;
    e->p = *p;
    e->top = calloc(p->k, sizeof(uint32_t));
    e->topv = calloc(p->k, sizeof(float));
    if (!e->top || !e->topv) goto nomem;
    if (p->models & (1u << SR_EVAL_STREAMREC)) {
        char merr[200] = "";
        e->model = sr_model_new(&p->model, merr, sizeof(merr));
        if (!e->model) {
            if (errstr && errstr_size) snprintf(errstr, errstr_size, "streamrec model: %s", merr);
            sr_eval_destroy(e);
            return NULL;
        }
    }
    return e;
nomem:
    sr_eval_destroy(e);
    if (errstr && errstr_size) snprintf(errstr, errstr_size, "out of memory");
    return NULL;
}

void sr_eval_destroy(sr_eval_t *e)
{
    if (!e) return;
    sr_model_destroy(e->model);
    ev_strtab_free(&e->users);
    ev_strtab_free(&e->items);
    free(e->u_head);
    free(e->u_hist);
    free(e->u_win);
    free(e->u_win_n);
    free(e->pop);
    free(e->popd);
    free(e->score);
    free(e->acc);
    free(e->occ);
    free(e->i2m);
    free(e->mask);
    for (int m = 0; m < SR_EVAL_NMODELS; m++)
        free(e->rec[m]);
    if (e->nb)
        for (uint32_t i = 0; i < e->icap; i++) {
            free(e->nb[i].item);
            free(e->nb[i].cnt);
        }
    free(e->nb);
    ev_map_free(&e->pairs);
    free(e->pr_item);
    free(e->pr_next);
    free(e->pr_acc);
    free(e->pr_t);
    ev_map_free(&e->co);
    free(e->mscore);
    free(e->excl);
    free(e->touched);
    free(e->cands);
    free(e->top);
    free(e->topv);
    free(e);
}

/* ---- growth of the per-user / per-item arrays, all at one capacity ---- */

#define GROW(arr, cap, n)                                                                          \
    do {                                                                                           \
        uint32_t c_ = (cap);                                                                       \
        if (ev_grow((void **)&(arr), &c_, (n), sizeof(*(arr)))) return SR_ERR_NOMEM;               \
    } while (0)

static int grow_users(sr_eval_t *e, uint32_t n)
{
    if (n <= e->ucap) return 0;
    uint32_t c = e->ucap ? e->ucap : 16;
    while (c < n)
        c *= 2;
    GROW(e->u_head, e->ucap, c);
    GROW(e->u_hist, e->ucap, c);
    GROW(e->u_win_n, e->ucap, c);
    uint32_t wc = e->ucap * COOC_WINDOW;
    if (ev_grow((void **)&e->u_win, &wc, c * COOC_WINDOW, sizeof(uint32_t))) return SR_ERR_NOMEM;
    e->ucap = c;
    return 0;
}

static int grow_items(sr_eval_t *e, uint32_t n)
{
    if (n <= e->icap) return 0;
    uint32_t c = e->icap ? e->icap : 64;
    while (c < n)
        c *= 2;
    GROW(e->pop, e->icap, c);
    GROW(e->popd, e->icap, c);
    GROW(e->score, e->icap, c);
    GROW(e->acc, e->icap, c);
    GROW(e->occ, e->icap, c);
    GROW(e->mask, e->icap, c);
    GROW(e->nb, e->icap, c);
    for (int m = 0; m < SR_EVAL_NMODELS; m++)
        GROW(e->rec[m], e->icap, c);
    uint32_t old = e->icap;
    GROW(e->i2m, e->icap, c);
    for (uint32_t i = old; i < c; i++)
        e->i2m[i] = -1;
    e->icap = c;
    return 0;
}

/* ---- ranking helpers ---- */

/* rank = #(s > st) + floor((#(s == st) - 1) / 2); eq includes the true item. */
static int64_t tie_rank(uint64_t gt, uint64_t eq)
{
    return (int64_t)gt + (eq ? (int64_t)(eq - 1) / 2 : 0);
}

/* Partial top-k of s[0..n) skipping mask[i] != 0: best first, ties by
 * lower index.  Returns the count. */
static uint32_t topk_dense(const float *s, uint32_t n, uint32_t k, const uint8_t *mask,
                           uint32_t *idx, float *val)
{
    uint32_t m = 0;
    float thr = -INFINITY;
    for (uint32_t i = 0; i < n; i++) {
        float v = s[i];
        if (m == k && !(v > thr)) continue;
        if (mask[i]) continue;
        uint32_t j = m < k ? m++ : k - 1;
        while (j > 0 && val[j - 1] < v) {
            val[j] = val[j - 1];
            idx[j] = idx[j - 1];
            j--;
        }
        val[j] = v;
        idx[j] = i;
        if (m == k) thr = val[k - 1];
    }
    return m;
}

/* Dense rank of t among s[0..n) minus the excluded items. */
static int64_t rank_dense(const sr_eval_t *e, const float *s, uint32_t n, uint32_t t)
{
    float st = s[t];
    uint64_t gt = 0, eq = 0;
    for (uint32_t i = 0; i < n; i++)
        gt += s[i] > st;
    for (uint32_t i = 0; i < n; i++)
        eq += s[i] == st;
    for (uint32_t k = 0; k < e->excl_n; k++) {
        float v = s[e->excl[k]];
        gt -= v > st;
        eq -= v == st;
    }
    return tie_rank(gt, eq);
}

/* Cooc order: higher score, then higher pop, then lower index. */
static int cooc_better(const sr_eval_t *e, uint32_t a, uint32_t b)
{
    if (e->acc[a] != e->acc[b]) return e->acc[a] > e->acc[b];
    if (e->pop[a] != e->pop[b]) return e->pop[a] > e->pop[b];
    return a < b;
}

static int push_u32(uint32_t **arr, uint32_t *n, uint32_t *cap, uint32_t v)
{
    if (*n >= *cap && ev_grow((void **)arr, cap, *n + 1, sizeof(uint32_t))) return SR_ERR_NOMEM;
    (*arr)[(*n)++] = v;
    return 0;
}

/* ---- the per-model rankers: fill e->top, return the rank (or -1) ---- */

static int64_t eval_dense(sr_eval_t *e, const float *s, uint32_t n, uint32_t t, int item_new,
                          uint32_t *ntop)
{
    *ntop = topk_dense(s, n, e->p.k, e->mask, e->top, e->topv);
    return item_new ? -1 : rank_dense(e, s, n, t);
}

static void gather_model_scores(sr_eval_t *e, const sr_event_t *ev, uint32_t n)
{
    uint32_t mn = sr_model_n_items(e->model);
    if (mn > e->mscore_cap) {
        uint32_t c = e->mscore_cap;
        if (ev_grow((void **)&e->mscore, &c, mn, sizeof(float)) == 0) e->mscore_cap = c;
    }
    if (mn > e->mscore_cap || mn == 0) { /* no room: rank everything equal */
        for (uint32_t i = 0; i < n; i++)
            e->score[i] = 0;
        return;
    }
    int32_t mu = sr_model_find_user(e->model, ev->user, ev->user_len);
    sr_model_score_all(e->model, mu, ev->ts_ms, e->mscore);
    for (uint32_t i = 0; i < n; i++) {
        int32_t mi = e->i2m[i];
        float v = mi >= 0 && (uint32_t)mi < mn ? e->mscore[mi] : -INFINITY;
        e->score[i] = isnan(v) ? -INFINITY : v;
    }
}

static int64_t eval_recency(sr_eval_t *e, uint32_t u, uint32_t t, int item_new, uint32_t n,
                            int64_t now, uint32_t *ntop)
{
    /* The user's non-excluded items with their decayed scores. */
    uint32_t nc = 0;
    float st = 0;
    for (uint32_t p = e->u_head[u]; p; p = e->pr_next[p - 1]) {
        uint32_t x = e->pr_item[p - 1];
        if (e->mask[x] & 1) continue;
        float s = (float)(e->pr_acc[p - 1] * exp2(-(double)(now - e->pr_t[p - 1]) / DAY_MS));
        if (nc >= e->cands_cap) {
            uint32_t c = e->cands_cap;
            if (ev_grow((void **)&e->cands, &c, nc + 1, sizeof(cand_t)))
                break; /* ENOMEM: rank what we have */
            e->cands_cap = c;
        }
        e->cands[nc].idx = x;
        e->cands[nc].s = s;
        nc++;
        if (x == t) st = s;
    }
    int64_t rank = -1;
    if (!item_new) {
        uint64_t gt = 0, eq = 0;
        if (st > 0) {
            for (uint32_t k = 0; k < nc; k++) {
                gt += e->cands[k].s > st;
                eq += e->cands[k].s == st;
            }
        } else {
            for (uint32_t k = 0; k < nc; k++)
                gt += e->cands[k].s > 0;
            eq = (uint64_t)(n - e->excl_n) - gt;
        }
        rank = tie_rank(gt, eq);
    }
    /* Top-K: the positive items by (score desc, index asc), then zeros by index. */
    uint32_t m = 0, k = e->p.k;
    for (uint32_t c = 0; c < nc; c++) {
        float v = e->cands[c].s;
        uint32_t x = e->cands[c].idx;
        if (!(v > 0)) continue;
        if (m == k && !(v > e->topv[k - 1] || (v == e->topv[k - 1] && x < e->top[k - 1]))) continue;
        uint32_t j = m < k ? m++ : k - 1;
        while (j > 0 && (e->topv[j - 1] < v || (e->topv[j - 1] == v && e->top[j - 1] > x))) {
            e->topv[j] = e->topv[j - 1];
            e->top[j] = e->top[j - 1];
            j--;
        }
        e->topv[j] = v;
        e->top[j] = x;
    }
    if (m < k) {
        for (uint32_t c = 0; c < nc; c++)
            if (e->cands[c].s > 0) e->mask[e->cands[c].idx] |= 2;
        for (uint32_t x = 0; x < n && m < k; x++)
            if (!e->mask[x]) e->top[m++] = x;
        for (uint32_t c = 0; c < nc; c++)
            e->mask[e->cands[c].idx] &= (uint8_t)~2u;
    }
    *ntop = m;
    return rank;
}

static int64_t eval_cooc(sr_eval_t *e, uint32_t u, uint32_t t, int item_new, uint32_t n,
                         uint32_t *ntop)
{
    const uint32_t *win = e->u_win + (size_t)u * COOC_WINDOW;
    uint32_t wn = e->u_win_n[u];
    e->touched_n = 0;
    for (uint32_t w = 0; w < wn; w++) {
        uint32_t i = win[w];
        int dup = 0;
        for (uint32_t v = 0; v < w; v++)
            dup |= win[v] == i;
        if (dup || e->occ[i] == 0) continue;
        const nbr_t *nb = &e->nb[i];
        for (uint32_t k = 0; k < nb->n; k++) {
            uint32_t c = nb->item[k];
            if (c >= n) continue;
            float v = (float)((double)nb->cnt[k] / sqrt((double)e->occ[i] * (double)e->occ[c]));
            if (e->acc[c] == 0 && push_u32(&e->touched, &e->touched_n, &e->touched_cap, c))
                continue;
            e->acc[c] += v;
        }
    }
    int64_t rank = -1;
    if (!item_new) {
        float st = e->acc[t], pt = e->pop[t];
        uint64_t gt = 0, eq = 0;
        if (st > 0) {
            for (uint32_t k = 0; k < e->touched_n; k++) {
                uint32_t c = e->touched[k];
                if (e->mask[c] & 1) continue;
                gt += e->acc[c] > st || (e->acc[c] == st && e->pop[c] > pt);
                eq += e->acc[c] == st && e->pop[c] == pt;
            }
        } else {
            /* Zero cooc score: the rest is ordered by popularity. */
            for (uint32_t i = 0; i < n; i++)
                gt += e->pop[i] > pt;
            for (uint32_t i = 0; i < n; i++)
                eq += e->pop[i] == pt;
            uint64_t pos = 0;
            for (uint32_t k = 0; k < e->touched_n; k++) {
                uint32_t c = e->touched[k];
                if (e->mask[c] & 1) continue; /* excluded: removed below */
                gt -= e->pop[c] > pt;
                eq -= e->pop[c] == pt;
                pos++;
            }
            for (uint32_t k = 0; k < e->excl_n; k++) {
                uint32_t c = e->excl[k];
                gt -= e->pop[c] > pt;
                eq -= e->pop[c] == pt;
            }
            gt += pos;
        }
        rank = tie_rank(gt, eq);
    }
    uint32_t m = 0, k = e->p.k;
    for (uint32_t q = 0; q < e->touched_n; q++) {
        uint32_t c = e->touched[q];
        if (e->mask[c] & 1) continue;
        if (m == k && !cooc_better(e, c, e->top[k - 1])) continue;
        uint32_t j = m < k ? m++ : k - 1;
        while (j > 0 && cooc_better(e, c, e->top[j - 1])) {
            e->top[j] = e->top[j - 1];
            j--;
        }
        e->top[j] = c;
    }
    if (m < k) {
        for (uint32_t q = 0; q < e->touched_n; q++)
            e->mask[e->touched[q]] |= 2;
        m += topk_dense(e->pop, n, k - m, e->mask, e->top + m, e->topv + m);
        for (uint32_t q = 0; q < e->touched_n; q++)
            e->mask[e->touched[q]] &= (uint8_t)~2u;
    }
    for (uint32_t q = 0; q < e->touched_n; q++)
        e->acc[e->touched[q]] = 0;
    *ntop = m;
    return rank;
}

static void record(sr_eval_t *e, int model, int64_t rank, uint32_t ntop, uint32_t n)
{
    e->last.rank[model] = rank;
    if (rank >= 0) {
        if (rank < (int64_t)e->p.k) {
            e->hits[model] += 1;
            e->ndcg[model] += 1.0 / log2((double)rank + 2.0);
        }
        e->rr[model] += 1.0 / ((double)rank + 1.0);
    }
    double denom = (double)e->pop_total + (double)n;
    for (uint32_t q = 0; q < ntop; q++) {
        uint32_t x = e->top[q];
        if (!e->rec[model][x]) {
            e->rec[model][x] = 1;
            e->ncov[model]++;
        }
        e->info[model] += -log2(((double)e->pop[x] + 1.0) / denom);
    }
    e->nrec[model] += ntop;
}

static void evaluate(sr_eval_t *e, const sr_event_t *ev, uint32_t u, uint32_t t, int item_new,
                     uint32_t n)
{
    e->evaluated++;
    e->last.evaluated = 1;
    if (item_new) e->misses++;
    e->excl_n = 0;
    if (e->p.protocol == SR_EVAL_DISCOVERY) {
        for (uint32_t p = e->u_head[u]; p; p = e->pr_next[p - 1]) {
            uint32_t x = e->pr_item[p - 1];
            if (push_u32(&e->excl, &e->excl_n, &e->excl_cap, x) == 0) e->mask[x] |= 1;
        }
    }
    for (int m = 0; m < SR_EVAL_NMODELS; m++) {
        if (!(e->p.models & (1u << m))) continue;
        uint32_t ntop = 0;
        int64_t rank = -1;
        switch (m) {
        case SR_EVAL_STREAMREC:
            gather_model_scores(e, ev, n);
            rank = eval_dense(e, e->score, n, t, item_new, &ntop);
            break;
        case SR_EVAL_POP:
            rank = eval_dense(e, e->pop, n, t, item_new, &ntop);
            break;
        case SR_EVAL_POP_DECAY:
            rank = eval_dense(e, e->popd, n, t, item_new, &ntop);
            break;
        case SR_EVAL_RECENCY:
            rank = eval_recency(e, u, t, item_new, n, ev->ts_ms, &ntop);
            break;
        case SR_EVAL_COOC:
            rank = eval_cooc(e, u, t, item_new, n, &ntop);
            break;
        }
        record(e, m, rank, ntop, n);
    }
    for (uint32_t k = 0; k < e->excl_n; k++)
        e->mask[e->excl[k]] = 0;
    e->excl_n = 0;
}

/* ---- learning of the baselines ---- */

static int co_inc(sr_eval_t *e, uint32_t i, uint32_t c)
{
    nbr_t *nb = &e->nb[i];
    /* Room first, so a map entry never points past the list. */
    if (nb->n >= nb->cap) {
        uint32_t c1 = nb->cap, c2 = nb->cap;
        if (ev_grow((void **)&nb->item, &c1, nb->n + 1, sizeof(uint32_t)) ||
            ev_grow((void **)&nb->cnt, &c2, nb->n + 1, sizeof(uint32_t)))
            return SR_ERR_NOMEM;
        nb->cap = c1 < c2 ? c1 : c2;
    }
    int created;
    uint32_t *pos = ev_map_put(&e->co, (uint64_t)i << 32 | c, nb->n, &created);
    if (!pos) return SR_ERR_NOMEM;
    if (created) {
        nb->item[nb->n] = c;
        nb->cnt[nb->n] = 0;
        nb->n++;
    }
    nb->cnt[*pos]++;
    return 0;
}

static int learn_baselines(sr_eval_t *e, const sr_event_t *ev, uint32_t u, uint32_t j)
{
    e->pop[j] += 1;
    e->pop_total++;

    if (!e->popd_init) {
        e->popd_t0 = (double)ev->ts_ms;
        e->popd_init = 1;
    }
    double age = ((double)ev->ts_ms - e->popd_t0) / DAY_MS;
    if (age > POPD_RESCALE_DAYS) {
        float f = (float)exp2(-age);
        for (uint32_t i = 0; i < e->items.n; i++)
            e->popd[i] *= f;
        e->popd_t0 = (double)ev->ts_ms;
        age = 0;
    }
    e->popd[j] += (float)exp2(age);

    int created;
    uint32_t *pp = ev_map_put(&e->pairs, (uint64_t)u << 32 | j, e->npairs, &created);
    if (!pp) return SR_ERR_NOMEM;
    uint32_t p = *pp;
    if (created) {
        if (e->npairs >= e->pcap) {
            uint32_t c = e->pcap ? e->pcap * 2 : 1024;
            GROW(e->pr_item, e->pcap, c);
            GROW(e->pr_next, e->pcap, c);
            GROW(e->pr_acc, e->pcap, c);
            GROW(e->pr_t, e->pcap, c);
            e->pcap = c;
        }
        e->npairs++;
        e->pr_item[p] = j;
        e->pr_acc[p] = 0;
        e->pr_t[p] = ev->ts_ms;
        e->pr_next[p] = e->u_head[u];
        e->u_head[u] = p + 1;
    }
    e->pr_acc[p] = e->pr_acc[p] * exp2(-(double)(ev->ts_ms - e->pr_t[p]) / DAY_MS) +
                   e->p.model.weight[ev->type];
    e->pr_t[p] = ev->ts_ms;
    e->u_hist[u] = 1;

    uint32_t *win = e->u_win + (size_t)u * COOC_WINDOW;
    uint32_t wn = e->u_win_n[u];
    if (wn > 0 && win[wn - 1] == j) return 0; /* consecutive repeat: collapsed */
    e->occ[j]++;
    /* Pairs with the distinct other items among the previous W-1. */
    uint32_t from = wn > COOC_WINDOW - 1 ? wn - (COOC_WINDOW - 1) : 0;
    for (uint32_t w = from; w < wn; w++) {
        uint32_t x = win[w];
        int dup = x == j;
        for (uint32_t v = from; v < w && !dup; v++)
            dup = win[v] == x;
        if (dup) continue;
        if (co_inc(e, j, x) || co_inc(e, x, j)) return SR_ERR_NOMEM;
    }
    if (wn == COOC_WINDOW) {
        memmove(win, win + 1, sizeof(uint32_t) * (COOC_WINDOW - 1));
        wn--;
    }
    win[wn++] = j;
    e->u_win_n[u] = (uint8_t)wn;
    return 0;
}

int sr_eval_feed(sr_eval_t *e, const sr_event_t *ev)
{
    if (!e || !ev || !ev->user || !ev->item || ev->user_len == 0 || ev->item_len == 0 ||
        ev->user_len > SR_ID_MAX || ev->item_len > SR_ID_MAX || (unsigned)ev->type >= SR_EV_NTYPES)
        return SR_ERR_INVAL;
    memset(&e->last, 0, sizeof(e->last));
    for (int m = 0; m < SR_EVAL_NMODELS; m++)
        e->last.rank[m] = -1;
    e->events++;

    int item_new, user_new = 0;
    /* Room first, so an interned id always has its per-item state. */
    if (grow_items(e, e->items.n + 1)) return SR_ERR_NOMEM;
    int64_t j = ev_strtab_intern(&e->items, ev->item, ev->item_len, &item_new);
    if (j < 0) return (int)j;
    /* Items seen before this event: the new item (if any) is the last. */
    uint32_t n = item_new ? (uint32_t)j : e->items.n;

    if (ev->type != SR_EV_IMPRESSION) {
        if (grow_users(e, e->users.n + 1)) return SR_ERR_NOMEM;
        int64_t u = ev_strtab_intern(&e->users, ev->user, ev->user_len, &user_new);
        if (u < 0) return (int)u;
        int eligible = e->u_hist[u] != 0;
        if (eligible && e->p.protocol == SR_EVAL_DISCOVERY)
            eligible = item_new || ev_map_get(&e->pairs, (uint64_t)u << 32 | (uint64_t)j) == NULL;
        if (eligible) {
            e->eligible++;
            if (e->eligible % e->p.every == 0)
                evaluate(e, ev, (uint32_t)u, (uint32_t)j, item_new, n);
        }
    }

    int rc = 0;
    if (e->model) {
        sr_learn_result_t res;
        if (sr_model_learn(e->model, ev, &res) == 0) {
            if (res.item >= 0) e->i2m[j] = res.item;
        } else {
            e->model_errors++;
        }
    }
    if (ev->type != SR_EV_IMPRESSION) {
        int64_t u = ev_strtab_find(&e->users, ev->user, ev->user_len);
        rc = learn_baselines(e, ev, (uint32_t)u, (uint32_t)j);
    }
    return rc;
}

const sr_eval_outcome_t *sr_eval_last(const sr_eval_t *e)
{
    return &e->last;
}

void sr_eval_report(const sr_eval_t *e, sr_eval_report_t *out)
{
    memset(out, 0, sizeof(*out));
    out->protocol = e->p.protocol;
    out->k = e->p.k;
    out->every = e->p.every;
    out->models = e->p.models;
    out->events = e->events;
    out->eligible = e->eligible;
    out->evaluated = e->evaluated;
    out->misses = e->misses;
    out->model_errors = e->model_errors;
    out->users = e->users.n;
    out->items = e->items.n;
    for (int m = 0; m < SR_EVAL_NMODELS; m++) {
        if (!(e->p.models & (1u << m))) continue;
        sr_eval_metrics_t *r = &out->m[m];
        if (e->evaluated) {
            r->hr = e->hits[m] / (double)e->evaluated;
            r->ndcg = e->ndcg[m] / (double)e->evaluated;
            r->mrr = e->rr[m] / (double)e->evaluated;
        }
        if (e->items.n) r->coverage = (double)e->ncov[m] / (double)e->items.n;
        if (e->nrec[m]) r->novelty = e->info[m] / (double)e->nrec[m];
    }
}
