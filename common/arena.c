/* The bump allocator of sr_arena.h. */
#include <stdlib.h>
#include <string.h>

#include "sr_arena.h"

void *sr_arena_alloc(sr_arena_t *a, size_t size)
{
    size = size ? (size + 15) & ~(size_t)15 : 16;
    sr_arena_chunk_t *c = a->head;
    if (!c || c->size - c->used < size) {
        /* Reuse a freed chunk that is large enough, else make one. */
        sr_arena_chunk_t **pp = &a->free;
        while (*pp && (*pp)->size < size) pp = &(*pp)->next;
        if (*pp) {
            c = *pp;
            *pp = c->next;
        } else {
            size_t min = a->chunk ? a->chunk : 65536;
            size_t sz = size > min ? size : min;
            c = malloc(sizeof(*c) + sz);
            if (!c) return NULL;
            c->size = sz;
        }
        c->used = 0;
        c->next = a->head;
        a->head = c;
    }
    void *p = c->data + c->used;
    c->used += size;
    return p;
}

char *sr_arena_strdup(sr_arena_t *a, const char *s, size_t len)
{
    char *p = sr_arena_alloc(a, len + 1);
    if (!p) return NULL;
    if (len) memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

void sr_arena_reset(sr_arena_t *a)
{
    while (a->head) {
        sr_arena_chunk_t *c = a->head;
        a->head = c->next;
        c->next = a->free;
        a->free = c;
    }
}

void sr_arena_free(sr_arena_t *a)
{
    sr_arena_reset(a);
    while (a->free) {
        sr_arena_chunk_t *c = a->free;
        a->free = c->next;
        free(c);
    }
}
