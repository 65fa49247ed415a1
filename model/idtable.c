/* Id table (see sr_idtable.h for the contract).  The design goal is a
 * stream that never stalls: inserts are amortised O(1) and also worst-case
 * bounded, because a resize only allocates the bigger slot array (calloc of
 * fresh pages is lazy) and then migrates MIGRATE_STEP old slots per insert.
 * The old table is read-only while it drains, so a lookup that misses in the
 * new table can still trust it. */
#include <stdlib.h>
#include <string.h>

#include "sr_err.h"
#include "sr_event.h"
#include "sr_idtable.h"

#define MIGRATE_STEP 16
#define MIN_SLOTS 64

typedef struct slot {
    uint32_t idx1; /* dense index + 1; 0 = empty */
    uint32_t tag;  /* high bits of the hash, to skip most byte compares */
} slot_t;

typedef struct tab {
    slot_t *slots;
    uint64_t mask; /* slots - 1 (power of two) */
    uint64_t used;
} tab_t;

struct sr_idtable_s {
    uint64_t seed;
    tab_t cur;        /* inserts go here */
    tab_t old;        /* draining; slots NULL when idle */
    uint64_t migrate; /* next old slot to move */
    /* dense arrays, indexed by dense index */
    uint64_t *hash;
    uint64_t *off; /* arena offset */
    uint8_t *len;
    uint32_t n, cap;
    char *arena;
    size_t arena_used, arena_cap;
};

sr_idtable_t *sr_idtable_new(uint64_t seed)
{
    sr_idtable_t *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->seed = seed;
    t->cur.slots = calloc(MIN_SLOTS, sizeof(slot_t));
    if (!t->cur.slots) {
        free(t);
        return NULL;
    }
    t->cur.mask = MIN_SLOTS - 1;
    return t;
}

void sr_idtable_destroy(sr_idtable_t *t)
{
    if (!t) return;
    free(t->cur.slots);
    free(t->old.slots);
    free(t->hash);
    free(t->off);
    free(t->len);
    free(t->arena);
    free(t);
}

static inline uint64_t ld64(const char *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline uint32_t ld32(const char *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* Ids are short: word compares beat a memcmp call (and a byte loop).  The
 * tag already matched, so this almost always runs to the end and succeeds.
 * The last word overlaps the one before it instead of reading past len. */
static inline int same_bytes(const char *a, const char *b, size_t len)
{
    if (len >= 8) {
        uint64_t d = 0;
        size_t k = 0;
        for (; k + 8 < len; k += 8)
            d |= ld64(a + k) ^ ld64(b + k);
        return (d | (ld64(a + len - 8) ^ ld64(b + len - 8))) == 0;
    }
    if (len >= 4) return ((ld32(a) ^ ld32(b)) | (ld32(a + len - 4) ^ ld32(b + len - 4))) == 0;
    unsigned char d = 0;
    for (size_t k = 0; k < len; k++)
        d |= (unsigned char)(a[k] ^ b[k]);
    return d == 0;
}

/* The slot tag: the hash's high bits with the id's length in the low
 * byte, so a tag match also means a length match and the verification
 * reads only the id's arena offset and bytes (two dependent cache misses
 * fewer than reading the stored length and full hash first). */
_Static_assert(SR_ID_MAX <= 255, "the slot tag keeps the id length in one byte");

static inline uint32_t slot_tag(uint64_t h, size_t len)
{
    return ((uint32_t)(h >> 32) & ~0xffu) | (uint32_t)len; /* len <= SR_ID_MAX <= 255 */
}

static int32_t probe(const sr_idtable_t *t, const tab_t *tb, uint64_t h, const char *id, size_t len)
{
    uint32_t tag = slot_tag(h, len);
    for (uint64_t i = h & tb->mask;; i = (i + 1) & tb->mask) {
        const slot_t *s = &tb->slots[i];
        if (s->idx1 == 0) return -1;
        if (s->tag == tag) {
            uint32_t x = s->idx1 - 1;
            if (same_bytes(t->arena + t->off[x], id, len)) return (int32_t)x;
        }
    }
}

static int32_t find_h(const sr_idtable_t *t, uint64_t h, const char *id, size_t len)
{
    int32_t x = probe(t, &t->cur, h, id, len);
    if (x < 0 && t->old.slots) x = probe(t, &t->old, h, id, len);
    return x;
}

int32_t sr_idtable_find(const sr_idtable_t *t, const char *id, size_t len)
{
    if (!t || !id || len == 0 || len > SR_ID_MAX) return -1;
    return find_h(t, sr_hash64(id, len, t->seed), id, len);
}

uint64_t sr_idtable_hash_id(const sr_idtable_t *t, const char *id, size_t len)
{
    return sr_hash64(id, len, t->seed);
}

void sr_idtable_prefetch(const sr_idtable_t *t, uint64_t h)
{
    __builtin_prefetch(&t->cur.slots[h & t->cur.mask], 0, 3);
}

static void put(tab_t *tb, uint64_t h, size_t len, uint32_t idx)
{
    uint64_t i = h & tb->mask;
    while (tb->slots[i].idx1)
        i = (i + 1) & tb->mask;
    tb->slots[i].idx1 = idx + 1;
    tb->slots[i].tag = slot_tag(h, len);
    tb->used++;
}

static void migrate_some(sr_idtable_t *t, uint64_t steps)
{
    if (!t->old.slots) return;
    uint64_t end = t->old.mask + 1;
    while (steps-- && t->migrate < end) {
        slot_t s = t->old.slots[t->migrate++];
        if (s.idx1) put(&t->cur, t->hash[s.idx1 - 1], t->len[s.idx1 - 1], s.idx1 - 1);
    }
    if (t->migrate >= end) {
        free(t->old.slots);
        memset(&t->old, 0, sizeof t->old);
        t->migrate = 0;
    }
}

static int grow_dense(sr_idtable_t *t)
{
    uint32_t nc = t->cap ? t->cap * 2 : 64;
    if (nc < t->cap) return SR_ERR_FULL;
    uint64_t *h = realloc(t->hash, (size_t)nc * sizeof *h);
    if (!h) return SR_ERR_NOMEM;
    t->hash = h;
    uint64_t *o = realloc(t->off, (size_t)nc * sizeof *o);
    if (!o) return SR_ERR_NOMEM;
    t->off = o;
    uint8_t *l = realloc(t->len, nc);
    if (!l) return SR_ERR_NOMEM;
    t->len = l;
    t->cap = nc;
    return 0;
}

int32_t sr_idtable_intern(sr_idtable_t *t, const char *id, size_t len, int *created)
{
    if (!id || len == 0 || len > SR_ID_MAX) {
        if (created) *created = 0;
        return SR_ERR_RANGE;
    }
    return sr_idtable_intern_hashed(t, id, len, sr_hash64(id, len, t->seed), created);
}

int32_t sr_idtable_intern_hashed(sr_idtable_t *t, const char *id, size_t len, uint64_t h,
                                 int *created)
{
    if (created) *created = 0;
    if (!id || len == 0 || len > SR_ID_MAX) return SR_ERR_RANGE;
    int32_t x = find_h(t, h, id, len);
    if (x >= 0) return x;
    if (t->n >= INT32_MAX) return SR_ERR_FULL;
    /* Make room first so a failure leaves the table unchanged. */
    if (t->n == t->cap) {
        int rc = grow_dense(t);
        if (rc) return rc;
    }
    if (t->arena_used + len > t->arena_cap) {
        size_t nc = t->arena_cap ? t->arena_cap * 2 : 4096;
        while (nc < t->arena_used + len)
            nc *= 2;
        char *a = realloc(t->arena, nc);
        if (!a) return SR_ERR_NOMEM;
        t->arena = a;
        t->arena_cap = nc;
    }
    /* Start a resize when the current table is half full and no resize is
     * running.  The migration finishes long before the new table (twice
     * the size) reaches half load: it needs (old slots)/MIGRATE_STEP
     * inserts while the new table has room for old slots more. */
    if ((t->cur.used + 1) * 2 > t->cur.mask + 1 && !t->old.slots) {
        uint64_t ns = (t->cur.mask + 1) * 2;
        slot_t *s = calloc(ns, sizeof *s);
        if (!s) return SR_ERR_NOMEM;
        t->old = t->cur;
        t->cur.slots = s;
        t->cur.mask = ns - 1;
        t->cur.used = 0;
        t->migrate = 0;
    }
    uint32_t idx = t->n++;
    t->hash[idx] = h;
    t->off[idx] = t->arena_used;
    t->len[idx] = (uint8_t)len; /* SR_ID_MAX <= 255 */
    memcpy(t->arena + t->arena_used, id, len);
    t->arena_used += len;
    put(&t->cur, h, len, idx);
    migrate_some(t, MIGRATE_STEP);
    if (created) *created = 1;
    return (int32_t)idx;
}

const char *sr_idtable_id(const sr_idtable_t *t, uint32_t idx, size_t *len)
{
    if (!t || idx >= t->n) return NULL;
    if (len) *len = t->len[idx];
    return t->arena + t->off[idx];
}

uint64_t sr_idtable_hash(const sr_idtable_t *t, uint32_t idx)
{
    return idx < t->n ? t->hash[idx] : 0;
}

uint32_t sr_idtable_size(const sr_idtable_t *t)
{
    return t ? t->n : 0;
}

int sr_idtable_rehashing(const sr_idtable_t *t)
{
    return t && t->old.slots != NULL;
}

size_t sr_idtable_memory(const sr_idtable_t *t)
{
    if (!t) return 0;
    return sizeof *t + (t->cur.mask + 1) * sizeof(slot_t) +
           (t->old.slots ? (t->old.mask + 1) * sizeof(slot_t) : 0) +
           (size_t)t->cap * (sizeof(uint64_t) * 2 + 1) + t->arena_cap;
}
