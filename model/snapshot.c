/* Model snapshots: the whole model as one versioned, checksummed byte
 * stream through caller callbacks (the model does no I/O).
 *
 * Layout: "SRMODEL\0", u32 version, then blocks of
 *   u32 payload length (0 ends the stream), payload, u64 checksum
 * where each checksum is sr_hash64(payload, previous checksum), so a
 * flipped bit, a reordered block or a truncation fails the load.  The
 * payload is the params, the items in dense index order, the users sorted
 * by id (so a snapshot does not depend on the order users were created or
 * imported in), then the global state.  Numbers are little-endian; the
 * format is written and read on little-endian hosts only. */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_impl.h"
#include "sr_err.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "snapshot format assumes a little-endian host"
#endif

#define MAGIC "SRMODEL"
#define VERSION 4u
#define BLOCK (64 * 1024)

/* ---------------------------------------------------------------- writer */

typedef struct wr {
    int (*write)(void *, const void *, size_t);
    void *opaque;
    uint8_t *buf;
    size_t n;
    uint64_t chain;
    int err;
} wr_t;

static void wr_flush(wr_t *w)
{
    if (w->err) return;
    uint32_t len = (uint32_t)w->n;
    uint64_t h = sr_hash64(w->buf, w->n, w->chain);
    if (w->write(w->opaque, &len, 4) || (w->n && w->write(w->opaque, w->buf, w->n)) ||
        w->write(w->opaque, &h, 8))
        w->err = SR_ERR_IO;
    w->chain = h;
    w->n = 0;
}

static void put(wr_t *w, const void *p, size_t len)
{
    const uint8_t *s = p;
    while (len && !w->err) {
        size_t c = BLOCK - w->n < len ? BLOCK - w->n : len;
        memcpy(w->buf + w->n, s, c);
        w->n += c;
        s += c;
        len -= c;
        if (w->n == BLOCK) wr_flush(w);
    }
}

#define PUT(w, v) put((w), &(v), sizeof(v))

static void put_id(wr_t *w, const char *id, size_t len)
{
    uint8_t l = (uint8_t)len;
    PUT(w, l);
    put(w, id, len);
}

static int cmp_user(const void *a, const void *b, void *ctx)
{
    const sr_model_t *m = ctx;
    size_t la, lb;
    const char *ia = sr_idtable_id(m->uid, *(const uint32_t *)a, &la);
    const char *ib = sr_idtable_id(m->uid, *(const uint32_t *)b, &lb);
    int c = memcmp(ia, ib, la < lb ? la : lb);
    return c ? c : (la > lb) - (la < lb);
}

int sr_model_save(const sr_model_t *m, int (*write)(void *opaque, const void *buf, size_t len),
                  void *opaque)
{
    if (!m || !write) return SR_ERR_INVAL;
    wr_t w = {.write = write, .opaque = opaque, .buf = malloc(BLOCK)};
    uint32_t *order = malloc(((size_t)m->n_users + 1) * sizeof *order);
    if (!w.buf || !order) {
        free(w.buf);
        free(order);
        return SR_ERR_NOMEM;
    }
    uint32_t ver = VERSION;
    if (write(opaque, MAGIC, 8) || write(opaque, &ver, 4)) {
        free(w.buf);
        free(order);
        return SR_ERR_IO;
    }
    const sr_model_params_t *p = &m->p;
    PUT(&w, p->dim);
    PUT(&w, p->negatives);
    PUT(&w, p->lr);
    PUT(&w, p->l2);
    PUT(&w, p->clip);
    PUT(&w, p->init_std);
    PUT(&w, p->seed);
    put(&w, p->weight, sizeof p->weight);
    PUT(&w, p->recent_max);
    PUT(&w, p->recent_half_life_s);
    PUT(&w, p->pop_half_life_s);
    PUT(&w, p->cooc_window);
    PUT(&w, p->cooc_max);
    PUT(&w, p->blend_lr);
    PUT(&w, p->sampler_uniform);
    PUT(&w, p->blend_sample);
    PUT(&w, p->cooc_backward);
    PUT(&w, p->pop_impression);
    PUT(&w, p->uniform_neg_items);

    size_t d = (size_t)m->dim, rm = (size_t)p->recent_max;
    PUT(&w, m->n_items);
    for (uint32_t i = 0; i < m->n_items; i++) {
        size_t len;
        const char *id = sr_idtable_id(m->iid, i, &len);
        put_id(&w, id, len);
        put(&w, m->Q + i * d, d * sizeof(float));
        PUT(&w, m->q_acc[i]);
        PUT(&w, m->b[i]);
        PUT(&w, m->b_acc[i]);
        PUT(&w, m->pop[i]);
        PUT(&w, m->cnt[i]);
        PUT(&w, m->nbr_n[i]);
        put(&w, sr_model_nbr_(m, i), m->nbr_n[i] * sizeof(sr_score_nbr_t));
    }
    for (uint32_t u = 0; u < m->n_users; u++)
        order[u] = u;
    qsort_r(order, m->n_users, sizeof *order, cmp_user, (void *)m);
    PUT(&w, m->n_users);
    for (uint32_t k = 0; k < m->n_users; k++) {
        uint32_t u = order[k];
        size_t len;
        const char *id = sr_idtable_id(m->uid, u, &len);
        put_id(&w, id, len);
        put(&w, m->P + u * d, d * sizeof(float));
        PUT(&w, m->p_acc[u]);
        PUT(&w, m->u_events[u]);
        PUT(&w, m->u_last[u]);
        PUT(&w, m->rec_n[u]);
        const sr_score_recent_t *r = m->rec + u * rm;
        for (size_t e = 0; e < m->rec_n[u]; e++) {
            PUT(&w, r[e].item);
            PUT(&w, r[e].type);
            PUT(&w, r[e].ts_ms);
        }
    }
    PUT(&w, m->events);
    PUT(&w, m->clock_ms);
    PUT(&w, m->pop_ref_ms);
    put(&w, m->blend, sizeof m->blend);
    put(&w, m->blend_acc, sizeof m->blend_acc);
    PUT(&w, m->ring_len);
    PUT(&w, m->ring_pos);
    put(&w, m->ring, m->ring_len * sizeof m->ring[0]);
    if (w.n) wr_flush(&w);
    wr_flush(&w); /* the empty end block */
    free(w.buf);
    free(order);
    return w.err;
}

/* ---------------------------------------------------------------- reader */

typedef struct rd {
    int (*read)(void *, void *, size_t);
    void *opaque;
    uint8_t *buf;
    size_t n, pos;
    uint64_t chain;
    int end;
    char *errstr;
    size_t errstr_size;
    int err;
} rd_t;

static void rd_fail(rd_t *r, int err, const char *msg)
{
    if (r->err) return;
    r->err = err;
    if (r->errstr && r->errstr_size) snprintf(r->errstr, r->errstr_size, "model snapshot: %s", msg);
}

static int rd_block(rd_t *r)
{
    uint32_t len;
    uint64_t h;
    if (r->read(r->opaque, &len, 4)) {
        rd_fail(r, SR_ERR_CORRUPT, "truncated (missing block header)");
        return -1;
    }
    if (len > BLOCK) {
        rd_fail(r, SR_ERR_CORRUPT, "corrupt block length");
        return -1;
    }
    if ((len && r->read(r->opaque, r->buf, len)) || r->read(r->opaque, &h, 8)) {
        rd_fail(r, SR_ERR_CORRUPT, "truncated block");
        return -1;
    }
    if (sr_hash64(r->buf, len, r->chain) != h) {
        rd_fail(r, SR_ERR_CORRUPT, "checksum mismatch");
        return -1;
    }
    r->chain = h;
    r->n = len;
    r->pos = 0;
    if (len == 0) r->end = 1;
    return 0;
}

static void get(rd_t *r, void *p, size_t len)
{
    uint8_t *d = p;
    while (len && !r->err) {
        if (r->pos == r->n) {
            if (r->end) {
                rd_fail(r, SR_ERR_CORRUPT, "payload shorter than its contents");
                break;
            }
            if (rd_block(r)) break;
            continue;
        }
        size_t c = r->n - r->pos < len ? r->n - r->pos : len;
        memcpy(d, r->buf + r->pos, c);
        r->pos += c;
        d += c;
        len -= c;
    }
    if (r->err && len) memset(d, 0, len);
}

#define GET(r, v) get((r), &(v), sizeof(v))

static size_t get_id(rd_t *r, char *id)
{
    uint8_t l = 0;
    GET(r, l);
    if (!r->err && (l == 0 || l > SR_ID_MAX)) {
        rd_fail(r, SR_ERR_CORRUPT, "bad id length");
        return 0;
    }
    get(r, id, l);
    return r->err ? 0 : l;
}

sr_model_t *sr_model_load(int (*read)(void *opaque, void *buf, size_t len), void *opaque,
                          char *errstr, size_t errstr_size)
{
    rd_t r = {.read = read, .opaque = opaque, .errstr = errstr, .errstr_size = errstr_size};
    char magic[8];
    uint32_t ver;
    if (!read || read(opaque, magic, 8) || memcmp(magic, MAGIC, 8) != 0) {
        rd_fail(&r, SR_ERR_CORRUPT, "not a streamrec model (bad magic)");
        return NULL;
    }
    if (read(opaque, &ver, 4)) {
        rd_fail(&r, SR_ERR_CORRUPT, "truncated header");
        return NULL;
    }
    /* Version 3 is version 4 without uniform_neg_items: written by models
     * whose uniform negatives updated their items. */
    if (ver != VERSION && ver != 3u) {
        char msg[96];
        snprintf(msg, sizeof msg, "unsupported version %u (this build reads %u)", ver, VERSION);
        rd_fail(&r, SR_ERR_VERSION, msg);
        return NULL;
    }
    r.buf = malloc(BLOCK);
    if (!r.buf) {
        rd_fail(&r, SR_ERR_NOMEM, "out of memory");
        return NULL;
    }
    sr_model_t *m = NULL;
    sr_model_params_t p;
    sr_model_params_init(&p);
    GET(&r, p.dim);
    GET(&r, p.negatives);
    GET(&r, p.lr);
    GET(&r, p.l2);
    GET(&r, p.clip);
    GET(&r, p.init_std);
    GET(&r, p.seed);
    get(&r, p.weight, sizeof p.weight);
    GET(&r, p.recent_max);
    GET(&r, p.recent_half_life_s);
    GET(&r, p.pop_half_life_s);
    GET(&r, p.cooc_window);
    GET(&r, p.cooc_max);
    GET(&r, p.blend_lr);
    GET(&r, p.sampler_uniform);
    GET(&r, p.blend_sample);
    GET(&r, p.cooc_backward);
    GET(&r, p.pop_impression);
    if (ver >= 4u) GET(&r, p.uniform_neg_items);
    else p.uniform_neg_items = 1;
    if (r.err) goto fail;
    char perr[160];
    m = sr_model_new(&p, perr, sizeof perr);
    if (!m) {
        rd_fail(&r, SR_ERR_CORRUPT, perr);
        goto fail;
    }
    size_t d = (size_t)m->dim, cm = (size_t)p.cooc_max, rm = (size_t)p.recent_max;
    uint32_t ni = 0;
    GET(&r, ni);
    for (uint32_t i = 0; i < ni && !r.err; i++) {
        char id[SR_ID_MAX];
        size_t len = get_id(&r, id);
        if (r.err) break;
        int32_t x = sr_model_item_intern(m, id, len);
        if (x != (int32_t)i) {
            rd_fail(&r, x == SR_ERR_NOMEM ? SR_ERR_NOMEM : SR_ERR_CORRUPT,
                    x == SR_ERR_NOMEM ? "out of memory" : "duplicate item id");
            break;
        }
        get(&r, m->Q + i * d, d * sizeof(float));
        GET(&r, m->q_acc[i]);
        GET(&r, m->b[i]);
        GET(&r, m->b_acc[i]);
        GET(&r, m->pop[i]);
        m->logv[i] = m->pop[i] > 0 ? (float)log(m->pop[i]) : -INFINITY;
        GET(&r, m->cnt[i]);
        uint16_t nn = 0;
        GET(&r, nn);
        if (!r.err && nn > cm) {
            rd_fail(&r, SR_ERR_CORRUPT, "too many neighbours");
            break;
        }
        if (!r.err && sr_model_nbr_reserve_(m, i, nn)) {
            rd_fail(&r, SR_ERR_NOMEM, "out of memory");
            break;
        }
        m->nbr_n[i] = nn;
        get(&r, sr_model_nbr_(m, i), nn * sizeof(sr_score_nbr_t));
        if (nn) sr_model_nbr_refp_(m, i);
    }
    /* Neighbour indices can point forward, so check them once all exist. */
    for (uint32_t i = 0; i < m->n_items && !r.err; i++)
        for (size_t e = 0; e < m->nbr_n[i]; e++)
            if ((uint32_t)sr_model_nbr_(m, i)[e].item >= m->n_items)
                rd_fail(&r, SR_ERR_CORRUPT, "neighbour index out of range");
    uint32_t nu = 0;
    GET(&r, nu);
    for (uint32_t k = 0; k < nu && !r.err; k++) {
        char id[SR_ID_MAX];
        size_t len = get_id(&r, id);
        if (r.err) break;
        int32_t u = sr_model_user_intern(m, id, len);
        if (u != (int32_t)k) {
            rd_fail(&r, u == SR_ERR_NOMEM ? SR_ERR_NOMEM : SR_ERR_CORRUPT,
                    u == SR_ERR_NOMEM ? "out of memory" : "duplicate user id");
            break;
        }
        get(&r, m->P + k * d, d * sizeof(float));
        GET(&r, m->p_acc[k]);
        GET(&r, m->u_events[k]);
        GET(&r, m->u_last[k]);
        GET(&r, m->rec_n[k]);
        if (!r.err && m->rec_n[k] > rm) {
            rd_fail(&r, SR_ERR_CORRUPT, "too many recent items");
            break;
        }
        sr_score_recent_t *re = m->rec + k * rm;
        for (size_t e = 0; e < m->rec_n[k] && !r.err; e++) {
            GET(&r, re[e].item);
            GET(&r, re[e].type);
            GET(&r, re[e].ts_ms);
            if (!r.err && ((uint32_t)re[e].item >= m->n_items || re[e].type >= SR_EV_NTYPES))
                rd_fail(&r, SR_ERR_CORRUPT, "recent item out of range");
        }
    }
    GET(&r, m->events);
    GET(&r, m->clock_ms);
    GET(&r, m->pop_ref_ms);
    get(&r, m->blend, sizeof m->blend);
    get(&r, m->blend_acc, sizeof m->blend_acc);
    GET(&r, m->ring_len);
    GET(&r, m->ring_pos);
    if (!r.err && (m->ring_len > SR_SAMPLER_RING || m->ring_pos >= SR_SAMPLER_RING))
        rd_fail(&r, SR_ERR_CORRUPT, "bad sampler ring");
    if (!r.err) get(&r, m->ring, m->ring_len * sizeof m->ring[0]);
    for (uint32_t k = 0; k < m->ring_len && !r.err; k++)
        if (m->ring[k] >= m->n_items)
            rd_fail(&r, SR_ERR_CORRUPT, "sampler ring index out of range");
    /* Everything read: the next block must be the end marker. */
    if (!r.err && r.pos != r.n) rd_fail(&r, SR_ERR_CORRUPT, "trailing bytes in payload");
    if (!r.err && !r.end) {
        if (rd_block(&r) == 0 && !r.end) rd_fail(&r, SR_ERR_CORRUPT, "trailing blocks");
    }
    if (r.err) goto fail;
    free(r.buf);
    return m;
fail:
    free(r.buf);
    sr_model_destroy(m);
    return NULL;
}
