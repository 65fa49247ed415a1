/* Hash tables of the evaluator (eval_tab.h): open addressing, linear
 * probing, power-of-two capacity, full rehash when 3/4 full.  A pause per
 * doubling is fine offline, which is all the evaluator is. */
#include "eval_tab.h"

#include <stdlib.h>
#include <string.h>

#include "sr_err.h"
#include "sr_event.h"

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

int ev_grow(void **arr, uint32_t *cap, uint32_t n, size_t sz)
{
    if (n <= *cap) return 0;
    uint64_t nc = *cap ? *cap : 16;
    while (nc < n)
        nc *= 2;
    if (nc > UINT32_MAX) nc = UINT32_MAX;
    void *p = realloc(*arr, (size_t)nc * sz);
    if (!p) return SR_ERR_NOMEM;
    memset((char *)p + (size_t)*cap * sz, 0, (size_t)(nc - *cap) * sz);
    *arr = p;
    *cap = (uint32_t)nc;
    return 0;
}

void ev_strtab_free(ev_strtab_t *t)
{
    free(t->slots);
    free(t->ent_hash);
    free(t->ent_off);
    free(t->ent_len);
    free(t->arena);
    memset(t, 0, sizeof(*t));
}

static int64_t strtab_probe(const ev_strtab_t *t, const char *s, size_t len, uint64_t h,
                            uint32_t *slot)
{
    uint32_t mask = t->cap - 1, i = (uint32_t)h & mask;
    for (;;) {
        uint32_t e = t->slots[i];
        if (e == 0) {
            *slot = i;
            return -1;
        }
        e--;
        if (t->ent_hash[e] == h && t->ent_len[e] == len &&
            memcmp(t->arena + t->ent_off[e], s, len) == 0) {
            *slot = i;
            return e;
        }
        i = (i + 1) & mask;
    }
}

int64_t ev_strtab_find(const ev_strtab_t *t, const char *s, size_t len)
{
    if (t->cap == 0) return -1;
    uint32_t slot;
    return strtab_probe(t, s, len, sr_hash64(s, len, 0x5eed), &slot);
}

static int strtab_rehash(ev_strtab_t *t, uint32_t cap)
{
    uint32_t *slots = calloc(cap, sizeof(uint32_t));
    if (!slots) return SR_ERR_NOMEM;
    for (uint32_t e = 0; e < t->n; e++) {
        uint32_t i = (uint32_t)t->ent_hash[e] & (cap - 1);
        while (slots[i])
            i = (i + 1) & (cap - 1);
        slots[i] = e + 1;
    }
    free(t->slots);
    t->slots = slots;
    t->cap = cap;
    return 0;
}

int64_t ev_strtab_intern(ev_strtab_t *t, const char *s, size_t len, int *created)
{
    *created = 0;
    if (len > 255) return SR_ERR_INVAL;
    if (t->cap == 0 && strtab_rehash(t, 64)) return SR_ERR_NOMEM;
    uint64_t h = sr_hash64(s, len, 0x5eed);
    uint32_t slot;
    int64_t e = strtab_probe(t, s, len, h, &slot);
    if (e >= 0) return e;
    if (t->n == UINT32_MAX - 1) return SR_ERR_FULL;
    if ((uint64_t)(t->n + 1) * 4 > (uint64_t)t->cap * 3) {
        if (strtab_rehash(t, t->cap * 2)) return SR_ERR_NOMEM;
        strtab_probe(t, s, len, h, &slot);
    }
    if (t->n >= t->ent_cap) {
        uint32_t c1 = t->ent_cap, c2 = t->ent_cap, c3 = t->ent_cap;
        if (ev_grow((void **)&t->ent_hash, &c1, t->n + 1, sizeof(uint64_t)) ||
            ev_grow((void **)&t->ent_off, &c2, t->n + 1, sizeof(uint64_t)) ||
            ev_grow((void **)&t->ent_len, &c3, t->n + 1, sizeof(uint8_t)))
            return SR_ERR_NOMEM;
        t->ent_cap = c1 < c2 ? (c1 < c3 ? c1 : c3) : (c2 < c3 ? c2 : c3);
    }
    if (t->arena_len + len > t->arena_cap) {
        size_t nc = t->arena_cap ? t->arena_cap * 2 : 4096;
        while (nc < t->arena_len + len)
            nc *= 2;
        char *a = realloc(t->arena, nc);
        if (!a) return SR_ERR_NOMEM;
        t->arena = a;
        t->arena_cap = nc;
    }
    memcpy(t->arena + t->arena_len, s, len);
    e = t->n++;
    t->ent_hash[e] = h;
    t->ent_off[e] = t->arena_len;
    t->ent_len[e] = (uint8_t)len;
    t->arena_len += len;
    t->slots[slot] = (uint32_t)e + 1;
    *created = 1;
    return e;
}

void ev_map_free(ev_map_t *m)
{
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof(*m));
}

uint32_t *ev_map_get(const ev_map_t *m, uint64_t key)
{
    if (m->cap == 0) return NULL;
    uint64_t k = key + 1;
    uint32_t mask = m->cap - 1, i = (uint32_t)mix64(key) & mask;
    for (;;) {
        if (m->keys[i] == k) return &m->vals[i];
        if (m->keys[i] == 0) return NULL;
        i = (i + 1) & mask;
    }
}

static int map_rehash(ev_map_t *m, uint32_t cap)
{
    uint64_t *keys = calloc(cap, sizeof(uint64_t));
    uint32_t *vals = calloc(cap, sizeof(uint32_t));
    if (!keys || !vals) {
        free(keys);
        free(vals);
        return SR_ERR_NOMEM;
    }
    for (uint32_t j = 0; j < m->cap; j++) {
        if (!m->keys[j]) continue;
        uint32_t i = (uint32_t)mix64(m->keys[j] - 1) & (cap - 1);
        while (keys[i])
            i = (i + 1) & (cap - 1);
        keys[i] = m->keys[j];
        vals[i] = m->vals[j];
    }
    free(m->keys);
    free(m->vals);
    m->keys = keys;
    m->vals = vals;
    m->cap = cap;
    return 0;
}

uint32_t *ev_map_put(ev_map_t *m, uint64_t key, uint32_t val, int *created)
{
    *created = 0;
    if (m->cap == 0 && map_rehash(m, 64)) return NULL;
    if ((uint64_t)(m->n + 1) * 4 > (uint64_t)m->cap * 3 && map_rehash(m, m->cap * 2)) return NULL;
    uint64_t k = key + 1;
    uint32_t mask = m->cap - 1, i = (uint32_t)mix64(key) & mask;
    for (;;) {
        if (m->keys[i] == k) return &m->vals[i];
        if (m->keys[i] == 0) break;
        i = (i + 1) & mask;
    }
    m->keys[i] = k;
    m->vals[i] = val;
    m->n++;
    *created = 1;
    return &m->vals[i];
}
