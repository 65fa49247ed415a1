/* Id table: maps opaque string ids (users, items) to dense indices
 * 0..n-1 in arrival order, so model rows can live in contiguous arrays.
 *
 * Open addressing (linear probing) over 8-byte slots {index+1, hash tag};
 * id bytes live in one arena indexed by dense index (no per-entry malloc).
 * Growth is incremental: when the load passes 1/2 a table twice the size is
 * allocated and every later insert moves a few old slots over, so no single
 * call pays a pause proportional to the table size (as redis dict.c does).
 * During a migration lookups probe the new table, then the old one.
 *
 * Threading: not locked.  Concurrent sr_idtable_find calls are safe while no
 * thread interns.  Errors: negative SR_ERR_* (sr_err.h). */
#ifndef SR_IDTABLE_H
#define SR_IDTABLE_H

#include <stddef.h>
#include <stdint.h>

typedef struct sr_idtable_s sr_idtable_t;

/* An empty table; NULL on ENOMEM.  seed salts the hash. */
sr_idtable_t *sr_idtable_new(uint64_t seed);
/* Frees the table and its arena.  NULL is a no-op. */
void sr_idtable_destroy(sr_idtable_t *t);

/* Dense index of id, or -1 when absent (also for an empty or too long id). */
int32_t sr_idtable_find(const sr_idtable_t *t, const char *id, size_t len);
/* Dense index of id, adding it (copied) when absent; *created (may be NULL)
 * tells which.  SR_ERR_RANGE for an empty id or one longer than SR_ID_MAX,
 * SR_ERR_FULL past 2^31-1 ids, SR_ERR_NOMEM. */
int32_t sr_idtable_intern(sr_idtable_t *t, const char *id, size_t len, int *created);
/* Two-step interning for callers that look up several ids at once: the
 * hash of id (what sr_idtable_intern would compute), a prefetch of the slot
 * it probes first (a hint: changes nothing), and sr_idtable_intern with
 * that hash, which must be sr_idtable_hash_id's for this table and id.
 * Issuing the prefetches of all ids before the first probe overlaps their
 * cache misses. */
uint64_t sr_idtable_hash_id(const sr_idtable_t *t, const char *id, size_t len);
void sr_idtable_prefetch(const sr_idtable_t *t, uint64_t h);
int32_t sr_idtable_intern_hashed(sr_idtable_t *t, const char *id, size_t len, uint64_t h,
                                 int *created);
/* The id of dense index idx (not NUL-terminated; *len set), pointing into
 * the arena: valid until the next intern.  NULL when idx is out of range. */
const char *sr_idtable_id(const sr_idtable_t *t, uint32_t idx, size_t *len);
/* The stored 64-bit hash of index idx (what sr_hash64 gave for the id). */
uint64_t sr_idtable_hash(const sr_idtable_t *t, uint32_t idx);
uint32_t sr_idtable_size(const sr_idtable_t *t);
/* 1 while an incremental rehash is in progress (for tests and metrics). */
int sr_idtable_rehashing(const sr_idtable_t *t);
/* Bytes held (slots, arena, index arrays). */
size_t sr_idtable_memory(const sr_idtable_t *t);

#endif
