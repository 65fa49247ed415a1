/* Internals shared by the store's source files: blob kind bytes, the
 * little-endian helpers and the item number cache.  Not part of the public API. */
#ifndef SR_STORE_INT_H
#define SR_STORE_INT_H

#include <stddef.h>
#include <stdint.h>

#include "sr_arena.h" /* read results and command arguments */

#define SR_STORE_KIND_USER 'U'
#define SR_STORE_KIND_ITEM 'I'
#define SR_STORE_KIND_GLOBAL 'G'
/* Item blob: version, kind, dim, n_acc, reserved, bias, bias_acc. */
#define SR_STORE_ITEM_HDR 16

void sr_store_put_u16(uint8_t *p, uint16_t v);
void sr_store_put_u32(uint8_t *p, uint32_t v);
uint16_t sr_store_get_u16(const uint8_t *p);
uint32_t sr_store_get_u32(const uint8_t *p);
void sr_store_put_f32(uint8_t *p, float f);
float sr_store_get_f32(const uint8_t *p);


/* Item id <-> global number cache.  Numbers never change once Redis has
 * assigned them, so entries are never invalidated. */
typedef struct sr_idmap {
    uint32_t *slots;    /* open addressing: index into ids+1, 0 = empty */
    size_t n_slots;     /* power of two */
    size_t n;           /* entries */
    const char **ids;   /* entry e: id, length, number */
    uint32_t *lens;
    uint32_t *nums;
    size_t cap;
    const char **by_num; /* number -> id (NULL unknown) */
    uint32_t *by_num_len;
    size_t by_num_cap;
    sr_arena_t strings;
} sr_idmap_t;

/* 0 when unknown. */
uint32_t sr_idmap_num(const sr_idmap_t *m, const char *id, size_t len);
/* NULL when unknown. */
const char *sr_idmap_id(const sr_idmap_t *m, uint32_t num, size_t *len);
/* Records id <-> num; returns 0 or SR_ERR_NOMEM. */
int sr_idmap_put(sr_idmap_t *m, const char *id, size_t len, uint32_t num);
void sr_idmap_free(sr_idmap_t *m);

uint64_t sr_store_hash(const void *data, size_t len);

#endif
