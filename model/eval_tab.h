/* Internal to the evaluator (eval*.c): the small hash tables it keeps its
 * own dense ids and sparse state in.  Not a public API; the model's id
 * tables (owned by the model) have different goals (incremental growth,
 * expiry), the evaluator only needs simple, fast, deterministic maps. */
#ifndef SR_EVAL_TAB_H
#define SR_EVAL_TAB_H

#include <stddef.h>
#include <stdint.h>

/* Interned strings -> dense index in first-seen order. */
typedef struct ev_strtab {
    uint32_t *slots; /* entry index + 1; 0 = empty */
    uint32_t cap, n, ent_cap;
    uint64_t *ent_hash, *ent_off;
    uint8_t *ent_len;
    char *arena;
    size_t arena_len, arena_cap;
} ev_strtab_t;

void ev_strtab_free(ev_strtab_t *t);
/* Index or -1. */
int64_t ev_strtab_find(const ev_strtab_t *t, const char *s, size_t len);
/* Index (created when new, *created set), or SR_ERR_NOMEM. len <= 255. */
int64_t ev_strtab_intern(ev_strtab_t *t, const char *s, size_t len, int *created);

/* uint64 key -> uint32 value. */
typedef struct ev_map {
    uint64_t *keys; /* key + 1; 0 = empty */
    uint32_t *vals;
    uint32_t cap, n;
} ev_map_t;

void ev_map_free(ev_map_t *m);
/* Pointer to the value or NULL. */
uint32_t *ev_map_get(const ev_map_t *m, uint64_t key);
/* Inserts (key, val) when absent; returns a pointer to the stored value
 * and sets *created, or NULL on ENOMEM.  Pointers die on the next put. */
uint32_t *ev_map_put(ev_map_t *m, uint64_t key, uint32_t val, int *created);

/* Grows a malloc'd array to at least n elements of size sz (doubling).
 * Returns 0 or SR_ERR_NOMEM; new tail bytes are zeroed. */
int ev_grow(void **arr, uint32_t *cap, uint32_t n, size_t sz);

#endif
