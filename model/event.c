/* Event vocabulary shared by every stage: the event-type names of the CSV
 * log and the protobuf enum, and the one 64-bit hash used for ids, event-id
 * hashes and per-event RNG seeds.  The hash must give the same value on
 * every machine and build, because it seeds negative sampling and a replay
 * after a crash (possibly on another host) must reproduce it; so it reads
 * bytes explicitly little-endian and uses no platform hash. */
#include <string.h>
#include <strings.h>

#include "sr_err.h"
#include "sr_event.h"

/* wyhash-style: 64x64->128 multiply-fold ("mum") over 16-byte stripes. */
static inline uint64_t mum(uint64_t a, uint64_t b)
{
    __uint128_t r = (__uint128_t)a * b;
    return (uint64_t)r ^ (uint64_t)(r >> 64);
}

static inline uint64_t rd64(const uint8_t *p)
{
    return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24 |
           (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48 |
           (uint64_t)p[7] << 56;
}

static inline uint64_t rd32(const uint8_t *p)
{
    return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24;
}

#define P0 0xa0761d6478bd642full
#define P1 0xe7037ed1a0b428dbull
#define P2 0x8ebc6af09c88c6e3ull
#define P3 0x589965cc75374cc3ull

uint64_t sr_hash64(const void *data, size_t len, uint64_t seed)
{
    const uint8_t *p = data;
    uint64_t a, b;
    seed ^= mum(seed ^ P0, P1);
    if (len <= 16) {
        if (len >= 4) {
            a = (rd32(p) << 32) | rd32(p + ((len >> 3) << 2));
            b = (rd32(p + len - 4) << 32) | rd32(p + len - 4 - ((len >> 3) << 2));
        } else if (len > 0) {
            a = ((uint64_t)p[0] << 16) | ((uint64_t)p[len >> 1] << 8) | p[len - 1];
            b = 0;
        } else {
            a = b = 0;
        }
    } else {
        size_t i = len;
        if (i > 48) {
            uint64_t s1 = seed, s2 = seed;
            do {
                seed = mum(rd64(p) ^ P1, rd64(p + 8) ^ seed);
                s1 = mum(rd64(p + 16) ^ P2, rd64(p + 24) ^ s1);
                s2 = mum(rd64(p + 32) ^ P3, rd64(p + 40) ^ s2);
                p += 48;
                i -= 48;
            } while (i > 48);
            seed ^= s1 ^ s2;
        }
        while (i > 16) {
            seed = mum(rd64(p) ^ P1, rd64(p + 8) ^ seed);
            i -= 16;
            p += 16;
        }
        a = rd64(p + i - 16);
        b = rd64(p + i - 8);
    }
    a ^= P1;
    b ^= seed;
    __uint128_t r = (__uint128_t)a * b;
    a = (uint64_t)r;
    b = (uint64_t)(r >> 64);
    return mum(a ^ P0 ^ (uint64_t)len, b ^ P1);
}

static const char *const type_names[SR_EV_NTYPES] = {
    [SR_EV_VIEW] = "view",         [SR_EV_CLICK] = "click",           [SR_EV_CART] = "cart",
    [SR_EV_PURCHASE] = "purchase", [SR_EV_IMPRESSION] = "impression", [SR_EV_RATING] = "rating",
};

static const struct {
    const char *name;
    sr_event_type_t type;
} type_aliases[] = {
    {"add_to_cart", SR_EV_CART},
    {"addtocart", SR_EV_CART},
    {"transaction", SR_EV_PURCHASE},
};

int sr_event_type_parse(const char *s, size_t len, sr_event_type_t *out)
{
    if (!s) return SR_ERR_PARSE;
    for (int t = 0; t < SR_EV_NTYPES; t++) {
        if (strlen(type_names[t]) == len && strncasecmp(s, type_names[t], len) == 0) {
            *out = (sr_event_type_t)t;
            return 0;
        }
    }
    for (size_t i = 0; i < sizeof type_aliases / sizeof type_aliases[0]; i++) {
        if (strlen(type_aliases[i].name) == len && strncasecmp(s, type_aliases[i].name, len) == 0) {
            *out = type_aliases[i].type;
            return 0;
        }
    }
    return SR_ERR_PARSE;
}

const char *sr_event_type_name(sr_event_type_t t)
{
    if ((unsigned)t >= SR_EV_NTYPES) return "unknown";
    return type_names[t];
}
