/* Helpers of the store: the id hash and the item id <-> number cache that
 * lets a flush encode recent items without asking Redis. */
#include <stdlib.h>
#include <string.h>

#include "sr_err.h"
#include "store_int.h"

/* FNV-1a then a murmur finaliser: ids are short, this is plenty. */
uint64_t sr_store_hash(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

static size_t find_slot(const sr_idmap_t *m, const char *id, size_t len, int *found)
{
    size_t mask = m->n_slots - 1;
    size_t i = sr_store_hash(id, len) & mask;
    for (;;) {
        uint32_t e = m->slots[i];
        if (e == 0) {
            *found = 0;
            return i;
        }
        e--;
        if (m->lens[e] == len && memcmp(m->ids[e], id, len) == 0) {
            *found = 1;
            return i;
        }
        i = (i + 1) & mask;
    }
}

uint32_t sr_idmap_num(const sr_idmap_t *m, const char *id, size_t len)
{
    if (!m->n_slots) return 0;
    int found;
    size_t i = find_slot(m, id, len, &found);
    return found ? m->nums[m->slots[i] - 1] : 0;
}

const char *sr_idmap_id(const sr_idmap_t *m, uint32_t num, size_t *len)
{
    if (num >= m->by_num_cap || !m->by_num[num]) return NULL;
    if (len) *len = m->by_num_len[num];
    return m->by_num[num];
}

static int grow_slots(sr_idmap_t *m)
{
    size_t ns = m->n_slots ? m->n_slots * 2 : 1024;
    uint32_t *s = calloc(ns, sizeof(*s));
    if (!s) return SR_ERR_NOMEM;
    free(m->slots);
    m->slots = s;
    m->n_slots = ns;
    for (size_t e = 0; e < m->n; e++) {
        int found;
        size_t i = find_slot(m, m->ids[e], m->lens[e], &found);
        m->slots[i] = (uint32_t)(e + 1);
    }
    return 0;
}

int sr_idmap_put(sr_idmap_t *m, const char *id, size_t len, uint32_t num)
{
    if (num == 0 || len > UINT32_MAX) return SR_ERR_INVAL;
    if ((m->n + 1) * 2 > m->n_slots && grow_slots(m) < 0) return SR_ERR_NOMEM;
    int found;
    size_t i = find_slot(m, id, len, &found);
    if (found) return 0;
    if (m->n == m->cap) {
        size_t nc = m->cap ? m->cap * 2 : 1024;
        const char **ids = realloc(m->ids, nc * sizeof(*ids));
        if (!ids) return SR_ERR_NOMEM;
        m->ids = ids;
        uint32_t *lens = realloc(m->lens, nc * sizeof(*lens));
        if (!lens) return SR_ERR_NOMEM;
        m->lens = lens;
        uint32_t *nums = realloc(m->nums, nc * sizeof(*nums));
        if (!nums) return SR_ERR_NOMEM;
        m->nums = nums;
        m->cap = nc;
    }
    if (num >= m->by_num_cap) {
        size_t nc = m->by_num_cap ? m->by_num_cap : 1024;
        while (nc <= num) nc *= 2;
        const char **b = realloc(m->by_num, nc * sizeof(*b));
        if (!b) return SR_ERR_NOMEM;
        memset(b + m->by_num_cap, 0, (nc - m->by_num_cap) * sizeof(*b));
        m->by_num = b;
        uint32_t *bl = realloc(m->by_num_len, nc * sizeof(*bl));
        if (!bl) return SR_ERR_NOMEM;
        m->by_num_len = bl;
        m->by_num_cap = nc;
    }
    char *copy = sr_arena_strdup(&m->strings, id, len);
    if (!copy) return SR_ERR_NOMEM;
    m->ids[m->n] = copy;
    m->lens[m->n] = (uint32_t)len;
    m->nums[m->n] = num;
    m->slots[i] = (uint32_t)(++m->n);
    m->by_num[num] = copy;
    m->by_num_len[num] = (uint32_t)len;
    return 0;
}

void sr_idmap_free(sr_idmap_t *m)
{
    free(m->slots);
    free(m->ids);
    free(m->lens);
    free(m->nums);
    free(m->by_num);
    free(m->by_num_len);
    sr_arena_free(&m->strings);
    memset(m, 0, sizeof(*m));
}
