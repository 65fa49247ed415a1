/* Bounded event-id window (see sr_dedup.h).  Linear probing with
 * backward-shift deletion, so evicting the oldest key leaves no tombstones
 * and lookups stay short however long the stream runs. */
#include "sr_dedup.h"

#include <stdlib.h>
#include <string.h>

struct sr_dedup_s {
    uint64_t *slots; /* 0 = empty; key 0 is stored as ZERO_KEY */
    size_t mask;
    uint64_t *ring; /* insertion order, capacity entries */
    size_t cap, head, count;
};

/* Key 0 marks an empty slot, so it is stored as an arbitrary constant
 * instead: one more 2^-64 collision, like any two hashes. */
#define ZERO_KEY 0x9e3779b97f4a7c15ULL
static uint64_t fix_key(uint64_t k) { return k ? k : ZERO_KEY; }

/* Keys are hashes already, but a caller may pass sequential numbers: mix
 * once more so probing sees well-spread bits. */
static size_t home(const sr_dedup_t *d, uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    return (size_t)k & d->mask;
}

static void touch(void *p, size_t n)
{
    volatile unsigned char *c = p;
    for (size_t i = 0; i < n; i += 4096) c[i] = 0;
}

sr_dedup_t *sr_dedup_new(size_t capacity)
{
    if (capacity == 0 || capacity > ((size_t)1 << 40)) return NULL;
    size_t n = 16;
    while (n < capacity * 2) n <<= 1;
    sr_dedup_t *d = calloc(1, sizeof(*d));
    if (!d) return NULL;
    d->slots = calloc(n, sizeof(uint64_t));
    d->ring = malloc(capacity * sizeof(uint64_t));
    if (!d->slots || !d->ring) {
        sr_dedup_destroy(d);
        return NULL;
    }
    /* Write to every page now instead of on first use: the window is
     * filled at random, and faulting it in page by page later cost a minor
     * fault plus a TLB shootdown of the trainer's other threads per page,
     * about a third of the learning thread's time on a fresh trainer.
     * (Stores through volatile: a memset after malloc may be turned back
     * into calloc.) */
    touch(d->slots, n * sizeof(uint64_t));
    touch(d->ring, capacity * sizeof(uint64_t));
    d->mask = n - 1;
    d->cap = capacity;
    return d;
}

void sr_dedup_destroy(sr_dedup_t *d)
{
    if (!d) return;
    free(d->slots);
    free(d->ring);
    free(d);
}

int sr_dedup_contains(const sr_dedup_t *d, uint64_t key)
{
    key = fix_key(key);
    for (size_t i = home(d, key);; i = (i + 1) & d->mask) {
        if (d->slots[i] == key) return 1;
        if (d->slots[i] == 0) return 0;
    }
}

static void erase(sr_dedup_t *d, uint64_t key)
{
    size_t i = home(d, key);
    while (d->slots[i] != key) {
        if (d->slots[i] == 0) return; /* not present: cannot happen */
        i = (i + 1) & d->mask;
    }
    /* Backward shift: pull later entries of the cluster into the hole when
     * their home position is not between the hole and themselves. */
    size_t j = i;
    for (;;) {
        d->slots[i] = 0;
        for (;;) {
            j = (j + 1) & d->mask;
            if (d->slots[j] == 0) return;
            size_t h = home(d, d->slots[j]);
            int between = i <= j ? (i < h && h <= j) : (i < h || h <= j);
            if (!between) break;
        }
        d->slots[i] = d->slots[j];
        i = j;
    }
}

int sr_dedup_check_insert(sr_dedup_t *d, uint64_t key)
{
    key = fix_key(key);
    size_t i = home(d, key);
    for (; d->slots[i] != 0; i = (i + 1) & d->mask)
        if (d->slots[i] == key) return 1;
    if (d->count == d->cap) {
        /* The key erased a few inserts from now is known: start loading
         * its slot, a likely cache miss in a window of millions. */
        if (d->cap > 8) __builtin_prefetch(&d->slots[home(d, d->ring[(d->head + 8) % d->cap])]);
        erase(d, d->ring[d->head]);
        d->head = (d->head + 1) % d->cap;
        d->count--;
        /* the erase may have moved entries into our probe path: re-find */
        for (i = home(d, key); d->slots[i] != 0; i = (i + 1) & d->mask)
            ;
    }
    d->slots[i] = key;
    d->ring[(d->head + d->count) % d->cap] = key;
    d->count++;
    return 0;
}

size_t sr_dedup_size(const sr_dedup_t *d) { return d->count; }

void sr_dedup_clear(sr_dedup_t *d)
{
    memset(d->slots, 0, (d->mask + 1) * sizeof(uint64_t));
    d->head = d->count = 0;
}
