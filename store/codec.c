/* The byte layouts of docs/REDIS.md as pure functions.  Kept apart from the
 * connection code so they can be unit-tested and fuzzed without a server,
 * and so the byte order is explicit (little-endian whatever the host). */
#include <math.h>
#include <string.h>

#include "sr_err.h"
#include "sr_store.h"
#include "store_int.h"

/* ---- little-endian primitives ---- */

void sr_store_put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

void sr_store_put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

uint16_t sr_store_get_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

uint32_t sr_store_get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

void sr_store_put_f32(uint8_t *p, float f)
{
    uint32_t v;
    memcpy(&v, &f, 4);
    sr_store_put_u32(p, v);
}

float sr_store_get_f32(const uint8_t *p)
{
    uint32_t v = sr_store_get_u32(p);
    float f;
    memcpy(&f, &v, 4);
    return f;
}

static size_t varint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static uint8_t *put_varint(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

/* Reads a varint from [*p, end); 0 on success, -1 when truncated or longer
 * than 10 bytes / overflowing 64 bits. */
static int get_varint(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (*p >= end) return -1;
        uint8_t b = *(*p)++;
        if (shift == 63 && (b & 0x7e)) return -1;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return -1;
}

static uint64_t zigzag(int64_t v)
{
    return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static int64_t unzigzag(uint64_t v)
{
    return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

static int acc_ok(uint16_t n_acc, uint16_t dim)
{
    return n_acc == 0 || n_acc == 1 || n_acc == dim;
}

/* ---- users ---- */

/* Recent-item timestamps are stored as deltas from the previous one
 * (starting at last_ts_ms), zigzagged, shifted left 3 with the event type in
 * the low bits: one varint of typically 2-4 bytes instead of 9. */
static int recent_word(int64_t prev, const sr_store_recent_t *r, uint64_t *w)
{
    int64_t d;
    if (__builtin_sub_overflow(r->ts_ms, prev, &d)) return -1;
    uint64_t z = zigzag(d);
    if (z >> 61) return -1;
    *w = (z << 3) | r->type;
    return 0;
}

static int user_check(const sr_store_user_t *u)
{
    if (!u || u->dim == 0 || u->dim > SR_STORE_DIM_MAX || !acc_ok(u->n_acc, u->dim) ||
        !u->vec || (u->n_acc && !u->acc) || u->n_recent > SR_STORE_RECENT_MAX ||
        (u->n_recent && !u->recent) || u->extra_len > SR_STORE_EXTRA_MAX ||
        (u->extra_len && !u->extra))
        return SR_ERR_INVAL;
    int64_t prev = u->last_ts_ms;
    for (uint32_t i = 0; i < u->n_recent; i++) {
        uint64_t w;
        if (u->recent[i].num == 0 || u->recent[i].type >= 8 ||
            recent_word(prev, &u->recent[i], &w) != 0)
            return SR_ERR_INVAL;
        prev = u->recent[i].ts_ms;
    }
    return 0;
}

size_t sr_store_user_size(const sr_store_user_t *u)
{
    size_t n = 4 + varint_size(u->n_acc) + varint_size(u->events) +
               varint_size(zigzag(u->last_ts_ms)) + 4 * ((size_t)u->dim + u->n_acc) +
               varint_size(u->n_recent);
    int64_t prev = u->last_ts_ms;
    for (uint32_t i = 0; i < u->n_recent && u->recent; i++) {
        uint64_t w = 0;
        recent_word(prev, &u->recent[i], &w);
        n += 4 + varint_size(w);
        prev = u->recent[i].ts_ms;
    }
    return n + varint_size(u->extra_len) + u->extra_len;
}

long sr_store_user_encode(const sr_store_user_t *u, void *buf, size_t cap)
{
    int rc = user_check(u);
    if (rc < 0) return rc;
    size_t need = sr_store_user_size(u);
    if (need > cap || !buf) return SR_ERR_FULL;
    uint8_t *p = buf;
    p[0] = SR_STORE_BLOB_VERSION;
    p[1] = SR_STORE_KIND_USER;
    sr_store_put_u16(p + 2, u->dim);
    p += 4;
    p = put_varint(p, u->n_acc);
    p = put_varint(p, u->events);
    p = put_varint(p, zigzag(u->last_ts_ms));
    for (uint16_t j = 0; j < u->dim; j++, p += 4) sr_store_put_f32(p, u->vec[j]);
    for (uint16_t j = 0; j < u->n_acc; j++, p += 4) sr_store_put_f32(p, u->acc[j]);
    p = put_varint(p, u->n_recent);
    int64_t prev = u->last_ts_ms;
    for (uint32_t i = 0; i < u->n_recent; i++) {
        uint64_t w = 0;
        recent_word(prev, &u->recent[i], &w);
        sr_store_put_u32(p, u->recent[i].num);
        p = put_varint(p + 4, w);
        prev = u->recent[i].ts_ms;
    }
    p = put_varint(p, u->extra_len);
    if (u->extra_len) memcpy(p, u->extra, u->extra_len);
    p += u->extra_len;
    return (long)(p - (uint8_t *)buf);
}

/* Parsed user header: everything up to the recent-item count. */
typedef struct user_hdr {
    uint16_t dim, n_acc;
    uint64_t events;
    int64_t last_ts;
    const uint8_t *floats; /* dim + n_acc floats */
    uint64_t n_recent;
    const uint8_t *rest; /* first recent item */
} user_hdr_t;

static int user_header(const uint8_t *p, size_t len, user_hdr_t *h)
{
    const uint8_t *end = p + len;
    /* The kind byte first: garbage is "corrupt", a user blob of another
     * version is "version". */
    if (len < 4 || p[1] != SR_STORE_KIND_USER) return SR_ERR_CORRUPT;
    if (p[0] != SR_STORE_BLOB_VERSION) return SR_ERR_VERSION;
    h->dim = sr_store_get_u16(p + 2);
    if (h->dim == 0 || h->dim > SR_STORE_DIM_MAX) return SR_ERR_CORRUPT;
    p += 4;
    uint64_t n_acc, zts;
    if (get_varint(&p, end, &n_acc) || n_acc > h->dim || !acc_ok((uint16_t)n_acc, h->dim))
        return SR_ERR_CORRUPT;
    h->n_acc = (uint16_t)n_acc;
    if (get_varint(&p, end, &h->events) || get_varint(&p, end, &zts)) return SR_ERR_CORRUPT;
    h->last_ts = unzigzag(zts);
    size_t nf = 4 * ((size_t)h->dim + h->n_acc);
    if ((size_t)(end - p) < nf) return SR_ERR_CORRUPT;
    h->floats = p;
    p += nf;
    if (get_varint(&p, end, &h->n_recent) || h->n_recent > SR_STORE_RECENT_MAX)
        return SR_ERR_CORRUPT;
    /* Each recent item takes at least 5 bytes: cheap early rejection. */
    if (h->n_recent * 5 > (uint64_t)(end - p)) return SR_ERR_CORRUPT;
    h->rest = p;
    return 0;
}

static size_t user_mem_of(const user_hdr_t *h)
{
    size_t f = 4 * ((size_t)h->dim + h->n_acc);
    f = (f + 7) & ~(size_t)7;
    return f + (size_t)h->n_recent * sizeof(sr_store_recent_t);
}

size_t sr_store_user_mem(const void *blob, size_t len)
{
    user_hdr_t h;
    if (!blob || user_header(blob, len, &h) != 0) return 0;
    return user_mem_of(&h);
}

int sr_store_user_decode(const void *blob, size_t len, sr_store_user_t *u, void *mem,
                         size_t mem_size)
{
    user_hdr_t h;
    if (!blob) return SR_ERR_CORRUPT;
    int rc = user_header(blob, len, &h);
    if (rc < 0) return rc;
    if (user_mem_of(&h) > mem_size || (!mem && user_mem_of(&h) > 0)) return SR_ERR_FULL;
    const uint8_t *end = (const uint8_t *)blob + len;
    float *f = mem;
    size_t nf = (size_t)h.dim + h.n_acc;
    for (size_t j = 0; j < nf; j++) f[j] = sr_store_get_f32(h.floats + 4 * j);
    sr_store_recent_t *r = (sr_store_recent_t *)((uint8_t *)mem + ((4 * nf + 7) & ~(size_t)7));
    const uint8_t *p = h.rest;
    int64_t prev = h.last_ts;
    for (uint64_t i = 0; i < h.n_recent; i++) {
        if (end - p < 5) return SR_ERR_CORRUPT;
        uint32_t num = sr_store_get_u32(p);
        p += 4;
        uint64_t w;
        if (num == 0 || get_varint(&p, end, &w)) return SR_ERR_CORRUPT;
        int64_t ts;
        if (__builtin_add_overflow(prev, unzigzag(w >> 3), &ts)) return SR_ERR_CORRUPT;
        r[i] = (sr_store_recent_t){.num = num, .ts_ms = ts, .type = (uint8_t)(w & 7)};
        prev = ts;
    }
    uint64_t xl;
    if (get_varint(&p, end, &xl) || xl != (uint64_t)(end - p) || xl > SR_STORE_EXTRA_MAX)
        return SR_ERR_CORRUPT;
    u->dim = h.dim;
    u->n_acc = h.n_acc;
    u->vec = f;
    u->acc = h.n_acc ? f + h.dim : NULL;
    u->events = h.events;
    u->last_ts_ms = h.last_ts;
    u->n_recent = (uint32_t)h.n_recent;
    u->recent = h.n_recent ? r : NULL;
    u->extra = xl ? p : NULL;
    u->extra_len = (size_t)xl;
    return 0;
}

/* ---- items ---- */

size_t sr_store_item_size(const sr_store_item_t *it)
{
    return SR_STORE_ITEM_HDR + 4 * ((size_t)it->dim + it->n_acc) + 4 + it->extra_len;
}

long sr_store_item_encode(const sr_store_item_t *it, void *buf, size_t cap)
{
    if (!it || it->dim == 0 || it->dim > SR_STORE_DIM_MAX || !acc_ok(it->n_acc, it->dim) ||
        !it->vec || (it->n_acc && !it->acc) || it->extra_len > SR_STORE_EXTRA_MAX ||
        (it->extra_len && !it->extra))
        return SR_ERR_INVAL;
    size_t need = sr_store_item_size(it);
    if (need > cap || !buf) return SR_ERR_FULL;
    uint8_t *p = buf;
    p[0] = SR_STORE_BLOB_VERSION;
    p[1] = SR_STORE_KIND_ITEM;
    sr_store_put_u16(p + 2, it->dim);
    sr_store_put_u16(p + 4, it->n_acc);
    sr_store_put_u16(p + 6, 0);
    sr_store_put_f32(p + 8, it->bias);
    sr_store_put_f32(p + 12, it->bias_acc);
    p += SR_STORE_ITEM_HDR;
    for (uint16_t j = 0; j < it->dim; j++, p += 4) sr_store_put_f32(p, it->vec[j]);
    for (uint16_t j = 0; j < it->n_acc; j++, p += 4) sr_store_put_f32(p, it->acc[j]);
    sr_store_put_u32(p, (uint32_t)it->extra_len);
    p += 4;
    if (it->extra_len) memcpy(p, it->extra, it->extra_len);
    return (long)need;
}

static int item_header(const uint8_t *p, size_t len, uint16_t *dim, uint16_t *n_acc)
{
    if (len < 4 || p[1] != SR_STORE_KIND_ITEM) return SR_ERR_CORRUPT;
    if (p[0] != SR_STORE_BLOB_VERSION) return SR_ERR_VERSION;
    if (len < SR_STORE_ITEM_HDR || sr_store_get_u16(p + 6) != 0) return SR_ERR_CORRUPT;
    *dim = sr_store_get_u16(p + 2);
    *n_acc = sr_store_get_u16(p + 4);
    if (*dim == 0 || *dim > SR_STORE_DIM_MAX || !acc_ok(*n_acc, *dim)) return SR_ERR_CORRUPT;
    size_t fixed = SR_STORE_ITEM_HDR + 4 * ((size_t)*dim + *n_acc) + 4;
    if (len < fixed) return SR_ERR_CORRUPT;
    if (sr_store_get_u32(p + fixed - 4) != len - fixed) return SR_ERR_CORRUPT;
    return 0;
}

size_t sr_store_item_mem(const void *blob, size_t len)
{
    uint16_t dim, n_acc;
    if (!blob || item_header(blob, len, &dim, &n_acc) != 0) return 0;
    return 4 * ((size_t)dim + n_acc);
}

int sr_store_item_decode(const void *blob, size_t len, sr_store_item_t *it, void *mem,
                         size_t mem_size)
{
    uint16_t dim, n_acc;
    if (!blob) return SR_ERR_CORRUPT;
    int rc = item_header(blob, len, &dim, &n_acc);
    if (rc < 0) return rc;
    size_t nf = (size_t)dim + n_acc;
    if (!mem || mem_size < 4 * nf) return SR_ERR_FULL;
    const uint8_t *p = blob;
    float *f = mem;
    for (size_t j = 0; j < nf; j++) f[j] = sr_store_get_f32(p + SR_STORE_ITEM_HDR + 4 * j);
    size_t xl = len - (SR_STORE_ITEM_HDR + 4 * nf + 4);
    it->dim = dim;
    it->n_acc = n_acc;
    it->bias = sr_store_get_f32(p + 8);
    it->bias_acc = sr_store_get_f32(p + 12);
    it->vec = f;
    it->acc = n_acc ? f + dim : NULL;
    it->extra = xl ? p + len - xl : NULL;
    it->extra_len = xl;
    return 0;
}

/* ---- global ---- */

long sr_store_global_encode(const void *payload, size_t len, void *buf, size_t cap)
{
    if (len > SR_STORE_EXTRA_MAX || (len && !payload)) return SR_ERR_INVAL;
    if (!buf || cap < 4 + len) return SR_ERR_FULL;
    uint8_t *p = buf;
    p[0] = SR_STORE_BLOB_VERSION;
    p[1] = SR_STORE_KIND_GLOBAL;
    p[2] = p[3] = 0;
    if (len) memcpy(p + 4, payload, len);
    return (long)(4 + len);
}

int sr_store_global_decode(const void *blob, size_t len, const void **payload,
                           size_t *payload_len)
{
    const uint8_t *p = blob;
    if (!p || len < 4 || p[1] != SR_STORE_KIND_GLOBAL) return SR_ERR_CORRUPT;
    if (p[0] != SR_STORE_BLOB_VERSION) return SR_ERR_VERSION;
    if (p[2] || p[3]) return SR_ERR_CORRUPT;
    *payload = len > 4 ? p + 4 : NULL;
    *payload_len = len - 4;
    return 0;
}
