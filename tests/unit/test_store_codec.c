/* The Redis blob encodings (docs/REDIS.md) without a server: round trips,
 * the exact byte layout (little-endian whatever the host), and rejection
 * of every truncation and of corrupt headers. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "sr_err.h"
#include "sr_store.h"

#define DIM 32

static float vec[DIM], acc1[1];
static sr_store_recent_t recent[20];

static sr_store_user_t make_user(void)
{
    for (int j = 0; j < DIM; j++) vec[j] = (float)j * 0.25f - 3.0f;
    acc1[0] = 17.5f;
    int64_t t = 1700000000000LL;
    for (int i = 0; i < 20; i++) {
        recent[i] = (sr_store_recent_t){.num = (uint32_t)(1000 + i * 7919),
                                        .ts_ms = t - (20 - i) * 61000LL + (i % 3) * 5,
                                        .type = (uint8_t)(i % 6)};
    }
    recent[5].ts_ms = recent[4].ts_ms - 1234; /* out of order is allowed */
    sr_store_user_t u = {.dim = DIM, .n_acc = 1, .vec = vec, .acc = acc1, .events = 123456789,
                         .last_ts_ms = t, .n_recent = 20, .recent = recent,
                         .extra = "xyz", .extra_len = 3};
    return u;
}

static long encode_user(const sr_store_user_t *u, uint8_t **out)
{
    size_t n = sr_store_user_size(u);
    *out = malloc(n);
    long l = sr_store_user_encode(u, *out, n);
    cr_assert_eq(l, (long)n, "encode returned %ld, size said %zu", l, n);
    return l;
}

Test(store_codec, user_round_trip)
{
    sr_store_user_t u = make_user(), d;
    uint8_t *b;
    long l = encode_user(&u, &b);
    size_t m = sr_store_user_mem(b, (size_t)l);
    cr_assert_gt(m, 0);
    void *mem = malloc(m);
    memset(&d, 0, sizeof(d));
    cr_assert_eq(sr_store_user_decode(b, (size_t)l, &d, mem, m), 0);
    cr_assert_eq(d.dim, DIM);
    cr_assert_eq(d.n_acc, 1);
    cr_assert_eq(memcmp(d.vec, vec, sizeof(vec)), 0);
    cr_assert_eq(d.acc[0], 17.5f);
    cr_assert_eq(d.events, 123456789u);
    cr_assert_eq(d.last_ts_ms, u.last_ts_ms);
    cr_assert_eq(d.n_recent, 20);
    for (int i = 0; i < 20; i++) {
        cr_assert_eq(d.recent[i].num, recent[i].num);
        cr_assert_eq(d.recent[i].ts_ms, recent[i].ts_ms, "recent %d ts", i);
        cr_assert_eq(d.recent[i].type, recent[i].type);
        cr_assert_null(d.recent[i].item_id);
    }
    cr_assert_eq(d.extra_len, 3);
    cr_assert_eq(memcmp(d.extra, "xyz", 3), 0);
    free(mem);
    free(b);
}

Test(store_codec, user_blob_fits_memory_budget)
{
    /* k=32, row-wise accumulator, 20 recent items one minute apart: the
     * value must leave room for Redis's per-key overhead under 400 bytes
     * (docs/BENCHMARKS.md "Redis memory" measures the real thing). */
    sr_store_user_t u = make_user();
    u.extra_len = 0;
    u.extra = NULL;
    cr_assert_leq(sr_store_user_size(&u), 300, "user blob is %zu bytes", sr_store_user_size(&u));
}

Test(store_codec, user_header_bytes_are_little_endian)
{
    sr_store_user_t u = make_user();
    uint8_t *b;
    encode_user(&u, &b);
    cr_assert_eq(b[0], SR_STORE_BLOB_VERSION);
    cr_assert_eq(b[1], 'U');
    cr_assert_eq(b[2], DIM); /* dim, u16 LE */
    cr_assert_eq(b[3], 0);
    cr_assert_eq(b[4], 1); /* varint n_acc */
    /* events 123456789 as a varint: 0x95 0x9a 0xef 0x3a */
    cr_assert_eq(b[5], 0x95);
    cr_assert_eq(b[6], 0x9a);
    cr_assert_eq(b[7], 0xef);
    cr_assert_eq(b[8], 0x3a);
    free(b);
}

Test(store_codec, item_layout_is_fixed_little_endian)
{
    float v[4] = {1.0f, -2.0f, 0.5f, 3.0f};
    sr_store_item_t it = {.dim = 4, .n_acc = 0, .bias = 1.0f, .bias_acc = 2.0f, .vec = v};
    uint8_t buf[64];
    long l = sr_store_item_encode(&it, buf, sizeof(buf));
    cr_assert_eq(l, 16 + 16 + 4);
    const uint8_t hdr[16] = {1, 'I', 4, 0, 0, 0, 0, 0, 0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0x40};
    cr_assert_eq(memcmp(buf, hdr, 16), 0);
    const uint8_t minus2[4] = {0x00, 0x00, 0x00, 0xc0};
    cr_assert_eq(memcmp(buf + 20, minus2, 4), 0);
    cr_assert_eq(buf[32] | buf[33] | buf[34] | buf[35], 0); /* extra length 0 */
}

Test(store_codec, item_round_trip_with_accumulators_and_extra)
{
    float v[DIM], a[DIM];
    for (int j = 0; j < DIM; j++) {
        v[j] = (float)j / 3.0f;
        a[j] = (float)j * 11.0f;
    }
    sr_store_item_t it = {.dim = DIM, .n_acc = DIM, .bias = -0.125f, .bias_acc = 9.0f, .vec = v,
                          .acc = a, .extra = "neighbours", .extra_len = 10}, d;
    uint8_t buf[512];
    long l = sr_store_item_encode(&it, buf, sizeof(buf));
    cr_assert_gt(l, 0);
    float mem[2 * DIM];
    cr_assert_eq(sr_store_item_mem(buf, (size_t)l), sizeof(mem));
    cr_assert_eq(sr_store_item_decode(buf, (size_t)l, &d, mem, sizeof(mem)), 0);
    cr_assert_eq(memcmp(d.vec, v, sizeof(v)), 0);
    cr_assert_eq(memcmp(d.acc, a, sizeof(a)), 0);
    cr_assert_eq(d.bias, -0.125f);
    cr_assert_eq(d.bias_acc, 9.0f);
    cr_assert_eq(d.extra_len, 10);
    cr_assert_eq(memcmp(d.extra, "neighbours", 10), 0);
}

Test(store_codec, every_truncated_user_is_rejected)
{
    sr_store_user_t u = make_user(), d;
    uint8_t *b;
    long l = encode_user(&u, &b);
    static char mem[65536];
    for (long cut = 0; cut < l; cut++) {
        uint8_t *t = malloc((size_t)cut + 1); /* exact size so ASan sees overreads */
        memcpy(t, b, (size_t)cut);
        int rc = sr_store_user_decode(t, (size_t)cut, &d, mem, sizeof(mem));
        cr_assert_lt(rc, 0, "prefix of %ld bytes accepted", cut);
        free(t);
    }
    free(b);
}

Test(store_codec, every_truncated_item_is_rejected)
{
    float v[8] = {0};
    sr_store_item_t it = {.dim = 8, .vec = v, .extra = "ab", .extra_len = 2}, d;
    uint8_t buf[128];
    long l = sr_store_item_encode(&it, buf, sizeof(buf));
    float mem[16];
    for (long cut = 0; cut < l; cut++)
        cr_assert_lt(sr_store_item_decode(buf, (size_t)cut, &d, mem, sizeof(mem)), 0,
                     "prefix of %ld bytes accepted", cut);
}

Test(store_codec, trailing_bytes_are_rejected)
{
    sr_store_user_t u = make_user(), d;
    uint8_t *b;
    long l = encode_user(&u, &b);
    uint8_t *t = malloc((size_t)l + 1);
    memcpy(t, b, (size_t)l);
    t[l] = 0;
    static char mem[65536];
    cr_assert_eq(sr_store_user_decode(t, (size_t)l + 1, &d, mem, sizeof(mem)), SR_ERR_CORRUPT);
    free(t);
    free(b);
}

Test(store_codec, other_version_is_refused_as_version)
{
    sr_store_user_t u = make_user(), d;
    uint8_t *b;
    long l = encode_user(&u, &b);
    b[0] = 2;
    static char mem[65536];
    cr_assert_eq(sr_store_user_decode(b, (size_t)l, &d, mem, sizeof(mem)), SR_ERR_VERSION);
    float v[4] = {0};
    sr_store_item_t it = {.dim = 4, .vec = v}, di;
    uint8_t ib[64];
    long il = sr_store_item_encode(&it, ib, sizeof(ib));
    ib[0] = 9;
    cr_assert_eq(sr_store_item_decode(ib, (size_t)il, &di, mem, sizeof(mem)), SR_ERR_VERSION);
    free(b);
}

Test(store_codec, garbage_is_corrupt_not_version)
{
    static char mem[4096];
    sr_store_user_t u;
    sr_store_item_t it;
    cr_assert_eq(sr_store_user_decode("not a user blob", 15, &u, mem, sizeof(mem)),
                 SR_ERR_CORRUPT);
    cr_assert_eq(sr_store_item_decode("not an item blob", 16, &it, mem, sizeof(mem)),
                 SR_ERR_CORRUPT);
}

Test(store_codec, wrong_kind_and_bad_header_fields_are_corrupt)
{
    float v[4] = {0};
    sr_store_item_t it = {.dim = 4, .vec = v}, d;
    uint8_t ib[64];
    long il = sr_store_item_encode(&it, ib, sizeof(ib));
    float mem[8];
    ib[1] = 'U';
    cr_assert_eq(sr_store_item_decode(ib, (size_t)il, &d, mem, sizeof(mem)), SR_ERR_CORRUPT);
    ib[1] = 'I';
    ib[4] = 3; /* n_acc 3 with dim 4 */
    cr_assert_eq(sr_store_item_decode(ib, (size_t)il, &d, mem, sizeof(mem)), SR_ERR_CORRUPT);
    ib[4] = 0;
    ib[2] = 0; /* dim 0 */
    cr_assert_eq(sr_store_item_decode(ib, (size_t)il, &d, mem, sizeof(mem)), SR_ERR_CORRUPT);
    ib[2] = 4;
    ib[il - 4 - 0] = 0; /* sanity: still decodes */
    cr_assert_eq(sr_store_item_decode(ib, (size_t)il, &d, mem, sizeof(mem)), 0);
    ib[il - 4] = 7; /* extra length claims 7 bytes that are not there */
    cr_assert_eq(sr_store_item_decode(ib, (size_t)il, &d, mem, sizeof(mem)), SR_ERR_CORRUPT);
}

Test(store_codec, random_bytes_never_crash_the_decoders)
{
    srand(42);
    static char mem[1 << 20];
    uint8_t buf[600];
    for (int iter = 0; iter < 20000; iter++) {
        size_t len = (size_t)(rand() % (int)sizeof(buf));
        for (size_t i = 0; i < len; i++) buf[i] = (uint8_t)rand();
        if (len > 2 && iter % 2) {
            buf[0] = 1;
            buf[1] = iter % 4 == 1 ? 'U' : 'I';
            buf[2] = (uint8_t)(rand() % 40);
            buf[3] = 0;
        }
        sr_store_user_t u;
        sr_store_item_t it;
        size_t m = sr_store_user_mem(buf, len);
        (void)sr_store_user_decode(buf, len, &u, mem, m < sizeof(mem) ? m : sizeof(mem));
        (void)sr_store_item_decode(buf, len, &it, mem, sizeof(mem));
    }
    cr_assert(1);
}

Test(store_codec, small_scratch_memory_is_full_not_overrun)
{
    sr_store_user_t u = make_user(), d;
    uint8_t *b;
    long l = encode_user(&u, &b);
    size_t m = sr_store_user_mem(b, (size_t)l);
    char *mem = malloc(m - 1);
    cr_assert_eq(sr_store_user_decode(b, (size_t)l, &d, mem, m - 1), SR_ERR_FULL);
    free(mem);
    free(b);
}

Test(store_codec, unencodable_users_are_invalid)
{
    sr_store_user_t u = make_user();
    uint8_t buf[1024];
    u.n_acc = 5;
    cr_assert_eq(sr_store_user_encode(&u, buf, sizeof(buf)), SR_ERR_INVAL);
    u = make_user();
    recent[3].num = 0;
    cr_assert_eq(sr_store_user_encode(&u, buf, sizeof(buf)), SR_ERR_INVAL);
    u = make_user();
    recent[3].type = 8;
    cr_assert_eq(sr_store_user_encode(&u, buf, sizeof(buf)), SR_ERR_INVAL);
    u = make_user();
    cr_assert_eq(sr_store_user_encode(&u, buf, 10), SR_ERR_FULL);
}

Test(store_codec, extreme_timestamps_round_trip)
{
    sr_store_user_t u = make_user(), d;
    u.last_ts_ms = -5;
    recent[0].ts_ms = (int64_t)1 << 55;
    recent[1].ts_ms = -((int64_t)1 << 55);
    uint8_t *b;
    long l = encode_user(&u, &b);
    static char mem[65536];
    cr_assert_eq(sr_store_user_decode(b, (size_t)l, &d, mem, sizeof(mem)), 0);
    cr_assert_eq(d.last_ts_ms, -5);
    cr_assert_eq(d.recent[0].ts_ms, (int64_t)1 << 55);
    cr_assert_eq(d.recent[1].ts_ms, -((int64_t)1 << 55));
    free(b);
}

Test(store_codec, global_round_trip_and_rejection)
{
    uint8_t buf[32];
    long l = sr_store_global_encode("blend", 5, buf, sizeof(buf));
    cr_assert_eq(l, 9);
    const void *p;
    size_t pl;
    cr_assert_eq(sr_store_global_decode(buf, (size_t)l, &p, &pl), 0);
    cr_assert_eq(pl, 5);
    cr_assert_eq(memcmp(p, "blend", 5), 0);
    cr_assert_eq(sr_store_global_decode(buf, 3, &p, &pl), SR_ERR_CORRUPT);
    buf[1] = 'U';
    cr_assert_eq(sr_store_global_decode(buf, (size_t)l, &p, &pl), SR_ERR_CORRUPT);
    buf[1] = 'G';
    buf[0] = 7;
    cr_assert_eq(sr_store_global_decode(buf, (size_t)l, &p, &pl), SR_ERR_VERSION);
}
