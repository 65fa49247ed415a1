/* A bounded "have I seen this event id?" window for the trainer: producer
 * retries and at-least-once upstreams deliver the same event twice, and an
 * event must change the model once.  The window remembers the last
 * `capacity` event-id hashes (FIFO eviction), in two preallocated arrays (an
 * open-addressing table at load <= 0.5 and a ring of insertion order), so
 * checking an event allocates nothing and costs O(1) expected.
 *
 * Keys are 64-bit hashes of event ids (sr_hash64); two different ids with
 * the same hash would be taken for duplicates, which at 64 bits and a
 * window of millions is a ~1e-7 chance over the window's lifetime.
 *
 * Threading: none; one owner thread.  Errors: sr_dedup_new returns NULL on
 * ENOMEM or capacity 0. */
#ifndef SR_DEDUP_H
#define SR_DEDUP_H

#include <stddef.h>
#include <stdint.h>

typedef struct sr_dedup_s sr_dedup_t;

/* A window of the last `capacity` keys.  NULL on capacity 0 or ENOMEM. */
sr_dedup_t *sr_dedup_new(size_t capacity);
/* NULL is a no-op. */
void sr_dedup_destroy(sr_dedup_t *d);

/* Returns 1 when key is in the window (a duplicate: nothing changes), else
 * inserts it, evicting the oldest key when the window is full, and
 * returns 0. */
int sr_dedup_check_insert(sr_dedup_t *d, uint64_t key);
/* 1 when key is in the window; no change. */
int sr_dedup_contains(const sr_dedup_t *d, uint64_t key);
/* Keys currently held (<= capacity). */
size_t sr_dedup_size(const sr_dedup_t *d);
/* Forgets everything (keeps the memory). */
void sr_dedup_clear(sr_dedup_t *d);

#endif
