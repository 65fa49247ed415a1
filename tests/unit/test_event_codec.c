/* The event codec: round trips against the protobuf-c generated code, one
 * test per rejection reason, and a fuzz pass over random and mutated
 * payloads (nothing may crash, and whatever we accept protobuf-c accepts
 * with the same fields). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "events.pb-c.h"
#include "sr_err.h"
#include "sr_event_codec.h"

static const sr_event_limits_t LIM = {.min_ts_ms = 946684800000LL, .max_future_ms = 86400000LL};
static const int64_t NOW = 1700000000000LL;

/* Packs a protobuf-c Event into buf; returns its length. */
static size_t pack(const Streamrec__V1__Event *m, uint8_t *buf)
{
    size_t n = streamrec__v1__event__get_packed_size(m);
    cr_assert_lt(n, 8192);
    return streamrec__v1__event__pack(m, buf);
}

static Streamrec__V1__Event good(void)
{
    Streamrec__V1__Event m = STREAMREC__V1__EVENT__INIT;
    m.event_id = "e-1";
    m.user = "u42";
    m.item = "i7";
    m.type = STREAMREC__V1__EVENT_TYPE__ADD_TO_CART;
    m.ts_ms = NOW - 5000;
    m.session = "s1";
    m.query = "red shoes";
    m.value = 19.99;
    return m;
}

static sr_event_reason_t decode_reason(const uint8_t *buf, size_t n, int *rc)
{
    sr_event_wire_t w;
    sr_event_reason_t r = SR_EVENT_OK;
    char why[256];
    *rc = sr_event_decode(buf, n, &LIM, NOW, &w, &r, why, sizeof(why));
    return r;
}

static int streq(const char *p, size_t n, const char *s)
{
    return n == strlen(s) && (n == 0 || memcmp(p, s, n) == 0);
}

Test(event_codec, decodes_protobuf_c_encoding)
{
    Streamrec__V1__Event m = good();
    uint8_t buf[512];
    size_t n = pack(&m, buf);
    sr_event_wire_t w;
    sr_event_reason_t r;
    char why[128];
    cr_assert_eq(sr_event_decode(buf, n, &LIM, NOW, &w, &r, why, sizeof(why)), 0, "%s", why);
    cr_assert_eq(r, SR_EVENT_OK);
    cr_assert(streq(w.event_id, w.event_id_len, "e-1"));
    cr_assert(streq(w.ev.user, w.ev.user_len, "u42"));
    cr_assert(streq(w.ev.item, w.ev.item_len, "i7"));
    cr_assert(streq(w.session, w.session_len, "s1"));
    cr_assert(streq(w.query, w.query_len, "red shoes"));
    cr_assert_eq(w.ev.type, SR_EV_CART);
    cr_assert_eq(w.ev.ts_ms, NOW - 5000);
    cr_assert_eq(w.value, 19.99);
    cr_assert_float_eq(w.ev.value, 19.99f, 1e-6);
    cr_assert_eq(w.ev.id_hash, sr_hash64("e-1", 3, 0));
}

Test(event_codec, encoding_unpacks_with_protobuf_c)
{
    sr_event_wire_t w = {0};
    w.ev.user = "user-ü", w.ev.user_len = strlen("user-ü");
    w.ev.item = "item 9", w.ev.item_len = 6;
    w.ev.type = SR_EV_PURCHASE;
    w.ev.ts_ms = NOW;
    w.event_id = "abc", w.event_id_len = 3;
    w.query = "q", w.query_len = 1;
    w.value = -0.0;
    uint8_t buf[SR_EVENT_ENCODED_MAX];
    int n = sr_event_encode(&w, buf, sizeof(buf));
    cr_assert_gt(n, 0);
    Streamrec__V1__Event *m = streamrec__v1__event__unpack(NULL, (size_t)n, buf);
    cr_assert_not_null(m);
    cr_assert_str_eq(m->user, "user-ü");
    cr_assert_str_eq(m->item, "item 9");
    cr_assert_str_eq(m->event_id, "abc");
    cr_assert_str_eq(m->query, "q");
    cr_assert_str_eq(m->session, "");
    cr_assert_eq(m->type, STREAMREC__V1__EVENT_TYPE__PURCHASE);
    cr_assert_eq(m->ts_ms, NOW);
    cr_assert(signbit(m->value), "-0.0 keeps its sign");
    streamrec__v1__event__free_unpacked(m, NULL);
}

Test(event_codec, encode_decode_round_trip_every_type)
{
    for (int t = 0; t < SR_EV_NTYPES; t++) {
        sr_event_wire_t w = {0}, back;
        w.ev.user = "u", w.ev.user_len = 1;
        w.ev.item = "i", w.ev.item_len = 1;
        w.ev.type = (sr_event_type_t)t;
        w.ev.ts_ms = NOW;
        w.value = t * 1.5;
        uint8_t buf[64];
        int n = sr_event_encode(&w, buf, sizeof(buf));
        cr_assert_gt(n, 0);
        cr_assert_eq(sr_event_decode(buf, (size_t)n, &LIM, NOW, &back, NULL, NULL, 0), 0);
        cr_assert_eq(back.ev.type, (sr_event_type_t)t);
        cr_assert_eq(back.value, t * 1.5);
        cr_assert_eq(back.ev.id_hash, 0, "no event id, no hash");
    }
}

Test(event_codec, encode_reports_small_buffer)
{
    sr_event_wire_t w = {0};
    w.ev.user = "user", w.ev.user_len = 4;
    w.ev.item = "item", w.ev.item_len = 4;
    w.ev.type = SR_EV_VIEW;
    w.ev.ts_ms = NOW;
    uint8_t buf[8];
    cr_assert_eq(sr_event_encode(&w, buf, sizeof(buf)), SR_ERR_FULL);
    w.ev.type = SR_EV_NTYPES;
    uint8_t big[64];
    cr_assert_eq(sr_event_encode(&w, big, sizeof(big)), SR_ERR_INVAL);
}

Test(event_codec, max_size_event_fits_encoded_max)
{
    char id[SR_ID_MAX], text[SR_EVENT_TEXT_MAX];
    memset(id, 'x', sizeof(id));
    memset(text, 'y', sizeof(text));
    sr_event_wire_t w = {0};
    w.ev.user = w.ev.item = w.event_id = id;
    w.ev.user_len = w.ev.item_len = w.event_id_len = SR_ID_MAX;
    w.session = w.query = text;
    w.session_len = w.query_len = SR_EVENT_TEXT_MAX;
    w.ev.type = SR_EV_RATING;
    w.ev.ts_ms = INT64_MAX;
    w.value = 1e300;
    uint8_t buf[SR_EVENT_ENCODED_MAX];
    cr_assert_gt(sr_event_encode(&w, buf, sizeof(buf)), 0);
}

Test(event_codec, empty_payload)
{
    int rc;
    cr_assert_eq(decode_reason((const uint8_t *)"", 0, &rc), SR_EVENT_EMPTY);
    cr_assert_eq(rc, SR_ERR_PARSE);
}

Test(event_codec, garbage_bytes_are_malformed)
{
    /* 0xff... is an overlong varint; "\x0c" is field 1 with wire type 4 (end
     * group); JSON text starts with '{' = field 15, wire type 3 (group). */
    const uint8_t ff[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    int rc;
    cr_assert_eq(decode_reason(ff, sizeof(ff), &rc), SR_EVENT_MALFORMED);
    cr_assert_eq(rc, SR_ERR_PARSE);
    cr_assert_eq(decode_reason((const uint8_t *)"\x0c", 1, &rc), SR_EVENT_MALFORMED);
    const char *json = "{\"user\":\"u1\",\"item\":\"i1\"}";
    cr_assert_eq(decode_reason((const uint8_t *)json, strlen(json), &rc), SR_EVENT_MALFORMED);
    /* field 0 is never valid */
    cr_assert_eq(decode_reason((const uint8_t *)"\x00\x01", 2, &rc), SR_EVENT_MALFORMED);
}

Test(event_codec, wrong_wire_type_for_known_field_is_malformed)
{
    /* user (field 2) sent as a varint */
    const uint8_t b[] = {2 << 3 | 0, 5};
    int rc;
    cr_assert_eq(decode_reason(b, sizeof(b), &rc), SR_EVENT_MALFORMED);
}

Test(event_codec, truncated_protobufs)
{
    Streamrec__V1__Event m = good();
    uint8_t buf[512];
    size_t n = pack(&m, buf);
    /* A prefix that ends between two fields is a valid shorter message
     * (protobuf cannot tell); every other prefix must be TRUNCATED, and an
     * accepted one must be what protobuf-c also accepts. */
    for (size_t k = 1; k < n; k++) {
        int rc;
        sr_event_reason_t r = decode_reason(buf, k, &rc);
        Streamrec__V1__Event *pc = streamrec__v1__event__unpack(NULL, k, buf);
        if (pc)
            cr_assert(rc == 0 || rc == SR_ERR_INVAL, "prefix %zu: %s", k, sr_event_reason_name(r));
        else
            cr_assert_eq(r, SR_EVENT_TRUNCATED, "prefix %zu: %s", k, sr_event_reason_name(r));
        streamrec__v1__event__free_unpacked(pc, NULL);
    }
    /* cut inside the user string: a declared length beyond the end */
    int rc;
    cr_assert_eq(decode_reason(buf, 8, &rc), SR_EVENT_TRUNCATED);
    cr_assert_eq(rc, SR_ERR_PARSE);
}

Test(event_codec, missing_user_and_item)
{
    Streamrec__V1__Event m = good();
    uint8_t buf[512];
    int rc;
    m.user = "";
    cr_assert_eq(decode_reason(buf, pack(&m, buf), &rc), SR_EVENT_NO_USER);
    cr_assert_eq(rc, SR_ERR_INVAL);
    m = good();
    m.item = "";
    cr_assert_eq(decode_reason(buf, pack(&m, buf), &rc), SR_EVENT_NO_ITEM);
}

Test(event_codec, oversize_ids)
{
    char big[SR_ID_MAX + 2];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    uint8_t buf[1024];
    int rc;
    Streamrec__V1__Event m = good();
    m.user = big;
    cr_assert_eq(decode_reason(buf, pack(&m, buf), &rc), SR_EVENT_ID_TOO_LONG);
    m = good();
    m.item = big;
    cr_assert_eq(decode_reason(buf, pack(&m, buf), &rc), SR_EVENT_ID_TOO_LONG);
    m = good();
    m.event_id = big;
    cr_assert_eq(decode_reason(buf, pack(&m, buf), &rc), SR_EVENT_ID_TOO_LONG);
    /* exactly SR_ID_MAX is fine */
    big[SR_ID_MAX] = '\0';
    m = good();
    m.user = big;
    cr_assert_eq(decode_reason(buf, pack(&m, buf), &rc), SR_EVENT_OK);
}

Test(event_codec, oversize_text)
{
    static char big[SR_EVENT_TEXT_MAX + 2];
    memset(big, 'q', sizeof(big) - 1);
    uint8_t buf[4096];
    int rc;
    Streamrec__V1__Event m = good();
    m.query = big;
    cr_assert_eq(decode_reason(buf, pack(&m, buf), &rc), SR_EVENT_TEXT_TOO_LONG);
}

Test(event_codec, non_utf8_ids)
{
    /* protobuf-c does not check UTF-8 when packing, so this is what a
     * careless producer sends. */
    const char *bad[] = {"\xff", "a\xc3", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80"};
    uint8_t buf[512];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc;
        Streamrec__V1__Event m = good();
        m.item = (char *)bad[i];
        cr_assert_eq(decode_reason(buf, pack(&m, buf), &rc), SR_EVENT_NOT_UTF8, "case %zu", i);
        cr_assert_eq(rc, SR_ERR_INVAL);
    }
    Streamrec__V1__Event m = good();
    m.user = "a";
    uint8_t b2[512];
    size_t n = pack(&m, b2);
    /* "a" -> "\0": a NUL inside an id breaks every C consumer */
    uint8_t *at = memchr(b2, 'a', n);
    cr_assert_not_null(at);
    *at = 0;
    int rc;
    cr_assert_eq(decode_reason(b2, n, &rc), SR_EVENT_BAD_CHAR);
    cr_assert(sr_utf8_valid("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x9b\x92", 14));
}

Test(event_codec, unspecified_and_unknown_type)
{
    uint8_t buf[512];
    int rc;
    Streamrec__V1__Event m = good();
    m.type = STREAMREC__V1__EVENT_TYPE__EVENT_TYPE_UNSPECIFIED;
    cr_assert_eq(decode_reason(buf, pack(&m, buf), &rc), SR_EVENT_TYPE_UNSPECIFIED);
    m.type = (Streamrec__V1__EventType)99;
    cr_assert_eq(decode_reason(buf, pack(&m, buf), &rc), SR_EVENT_TYPE_UNKNOWN);
    m.type = (Streamrec__V1__EventType)-1;
    cr_assert_eq(decode_reason(buf, pack(&m, buf), &rc), SR_EVENT_TYPE_UNKNOWN);
}

Test(event_codec, timestamps_out_of_bounds)
{
    uint8_t buf[512];
    int rc;
    Streamrec__V1__Event m = good();
    m.ts_ms = 0;
    cr_assert_eq(decode_reason(buf, pack(&m, buf), &rc), SR_EVENT_TS_TOO_OLD);
    m.ts_ms = LIM.min_ts_ms - 1;
    cr_assert_eq(decode_reason(buf, pack(&m, buf), &rc), SR_EVENT_TS_TOO_OLD);
    m.ts_ms = LIM.min_ts_ms;
    cr_assert_eq(decode_reason(buf, pack(&m, buf), &rc), SR_EVENT_OK);
    m.ts_ms = NOW + LIM.max_future_ms;
    cr_assert_eq(decode_reason(buf, pack(&m, buf), &rc), SR_EVENT_OK);
    m.ts_ms = NOW + LIM.max_future_ms + 1;
    cr_assert_eq(decode_reason(buf, pack(&m, buf), &rc), SR_EVENT_TS_FUTURE);
    m.ts_ms = -5;
    cr_assert_eq(decode_reason(buf, pack(&m, buf), &rc), SR_EVENT_TS_TOO_OLD);
}

Test(event_codec, non_finite_value)
{
    uint8_t buf[512];
    int rc;
    Streamrec__V1__Event m = good();
    m.value = NAN;
    cr_assert_eq(decode_reason(buf, pack(&m, buf), &rc), SR_EVENT_BAD_VALUE);
    m.value = INFINITY;
    cr_assert_eq(decode_reason(buf, pack(&m, buf), &rc), SR_EVENT_BAD_VALUE);
}

Test(event_codec, detail_names_the_problem)
{
    char big[200];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    Streamrec__V1__Event m = good();
    m.user = big;
    uint8_t buf[512];
    size_t n = pack(&m, buf);
    sr_event_wire_t w;
    char why[128];
    cr_assert_eq(sr_event_decode(buf, n, &LIM, NOW, &w, NULL, why, sizeof(why)), SR_ERR_INVAL);
    cr_assert_str_eq(why, "user id is 199 bytes, max 128");
}

Test(event_codec, unknown_fields_are_skipped)
{
    Streamrec__V1__Event m = good();
    uint8_t buf[600];
    size_t n = pack(&m, buf);
    /* field 9 as LEN "zz", field 10 varint, field 11 fixed32, field 300
     * (two-byte tag) fixed64 */
    const uint8_t extra[] = {9 << 3 | 2, 2,   'z', 'z', 10 << 3 | 0, 0x96, 0x01, 11 << 3 | 5, 1, 2, 3, 4,
                             0xE1,       0x12, 1,  2,   3,           4,    5,    6,           7, 8};
    memcpy(buf + n, extra, sizeof(extra));
    int rc;
    cr_assert_eq(decode_reason(buf, n + sizeof(extra), &rc), SR_EVENT_OK);
}

Test(event_codec, reason_names_are_stable)
{
    cr_assert_str_eq(sr_event_reason_name(SR_EVENT_TRUNCATED), "truncated");
    cr_assert_str_eq(sr_event_reason_name(SR_EVENT_ID_TOO_LONG), "id_too_long");
    cr_assert_str_eq(sr_event_reason_name((sr_event_reason_t)999), "unknown");
}

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* Whenever we accept a payload, protobuf-c must parse it to the same
 * fields (we are never more lenient than the schema). */
static void check_agrees(const uint8_t *buf, size_t n)
{
    sr_event_wire_t w;
    if (sr_event_decode(buf, n, &LIM, NOW, &w, NULL, NULL, 0) != 0) return;
    Streamrec__V1__Event *m = streamrec__v1__event__unpack(NULL, n, buf);
    cr_assert_not_null(m, "accepted a payload protobuf-c rejects");
    cr_assert(streq(w.ev.user, w.ev.user_len, m->user));
    cr_assert(streq(w.ev.item, w.ev.item_len, m->item));
    cr_assert_eq(w.ev.ts_ms, m->ts_ms);
    cr_assert_eq(sr_event_type_to_wire(w.ev.type), (int)m->type);
    streamrec__v1__event__free_unpacked(m, NULL);
}

Test(event_codec, fuzz_random_and_mutated_payloads)
{
    uint64_t seed = 12345;
    uint8_t buf[256];
    for (int it = 0; it < 200000; it++) {
        size_t n = rng_next(&seed) % sizeof(buf);
        for (size_t k = 0; k < n; k++) buf[k] = (uint8_t)rng_next(&seed);
        check_agrees(buf, n);
    }
    Streamrec__V1__Event m = good();
    uint8_t orig[256];
    size_t n = pack(&m, orig);
    for (int it = 0; it < 200000; it++) {
        memcpy(buf, orig, n);
        int flips = 1 + (int)(rng_next(&seed) % 3);
        for (int f = 0; f < flips; f++) buf[rng_next(&seed) % n] = (uint8_t)rng_next(&seed);
        check_agrees(buf, n - rng_next(&seed) % 4);
    }
}
