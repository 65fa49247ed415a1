/* A chunked bump allocator for memory that lives until a known point (one
 * request, one flush): allocation is a pointer bump, nothing is freed one
 * by one, and a reset keeps the chunks, so a user that does similar work
 * every time stops calling malloc after the first few rounds.
 *
 * Ownership: the arena owns its chunks; pointers it returns stay valid
 * (they never move) until the next sr_arena_reset or sr_arena_free.
 * Errors: allocation returns NULL when malloc fails (the arena is then
 * unchanged and still usable).
 * Threading: none; one arena is used by one thread at a time. */
#ifndef SR_ARENA_H
#define SR_ARENA_H

#include <stddef.h>

typedef struct sr_arena_chunk {
    struct sr_arena_chunk *next;
    size_t size, used;
    _Alignas(16) unsigned char data[];
} sr_arena_chunk_t;

/* Zero-initialise ({0}); chunk may then be set to the smallest chunk to
 * make (0: 64 KB), e.g. larger for an arena that holds megabytes per
 * round. */
typedef struct sr_arena {
    sr_arena_chunk_t *head; /* current chunk first */
    sr_arena_chunk_t *free; /* chunks released by reset */
    size_t chunk;
} sr_arena_t;

/* size bytes, 16-aligned (size 0 gives a valid distinct pointer); NULL
 * when out of memory. */
void *sr_arena_alloc(sr_arena_t *a, size_t size);
/* A NUL-terminated copy of s[0..len); NULL when out of memory. */
char *sr_arena_strdup(sr_arena_t *a, const char *s, size_t len);
/* Releases every allocation (their memory is reused by the next ones). */
void sr_arena_reset(sr_arena_t *a);
/* Returns every chunk to malloc; the arena is empty and usable again. */
void sr_arena_free(sr_arena_t *a);

#endif
