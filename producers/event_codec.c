/* Zero-copy encoder and validating decoder for streamrec.v1.Event; see
 * sr_event_codec.h for why this is not protobuf-c's unpack.  The decoder is
 * written for hostile input: every read is bounds-checked against the end
 * of the payload before it happens, and no length from the wire is trusted
 * until compared with what is left. */
#include "sr_event_codec.h"

#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "sr_err.h"

/* Field numbers of events.proto (contract; never renumbered). */
enum {
    F_EVENT_ID = 1,
    F_USER = 2,
    F_ITEM = 3,
    F_TYPE = 4,
    F_TS_MS = 5,
    F_SESSION = 6,
    F_QUERY = 7,
    F_VALUE = 8,
};

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_SGROUP = 3, WT_EGROUP = 4, WT_I32 = 5 };

static const char *const reason_names[] = {
#define SR_EVENT_REASON_NAME_(name, token) token,
    SR_EVENT_REASON_MAP(SR_EVENT_REASON_NAME_)
#undef SR_EVENT_REASON_NAME_
};

const char *sr_event_reason_name(sr_event_reason_t r)
{
    if ((int)r < 0 || r >= SR_EVENT_NREASONS) return "unknown";
    return reason_names[r];
}

int sr_event_type_to_wire(sr_event_type_t t)
{
    /* streamrec.v1.EventType is the model's enum shifted by one, because
     * proto3 reserves 0 for "unspecified". */
    return (int)t + 1;
}

int sr_event_type_from_wire(int64_t wire, sr_event_type_t *out)
{
    if (wire < 1 || wire > (int64_t)SR_EV_NTYPES) return SR_ERR_INVAL;
    *out = (sr_event_type_t)(wire - 1);
    return 0;
}

int sr_utf8_valid(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        unsigned min;
        unsigned cp;
        if ((c & 0xE0) == 0xC0) {
            n = 1, min = 0x80, cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            n = 2, min = 0x800, cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            n = 3, min = 0x10000, cp = c & 0x07;
        } else {
            return 0;
        }
        if (len - i <= n) return 0;
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return 0;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
        i += n + 1;
    }
    return 1;
}

static void say(char *detail, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void say(char *detail, size_t size, const char *fmt, ...)
{
    if (!detail || size == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, size, fmt, ap);
    va_end(ap);
}

/* Reads a base-128 varint of at most maxb bytes at *p (10 for values, 5
 * for tags and lengths, which are 32-bit, as protobuf-c reads them).
 * Returns 0, -1 when the input ends inside it (truncated), -2 when it is
 * longer than maxb bytes (malformed). */
static int read_varint(const uint8_t **p, const uint8_t *end, int maxb, uint64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0, i = 0; i < maxb; i++, shift += 7) {
        if (*p >= end) return -1;
        uint8_t b = *(*p)++;
        v |= (uint64_t)(b & 0x7F) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return -2;
}

static const char *field_name(uint64_t f)
{
    switch (f) {
    case F_EVENT_ID:
        return "event_id";
    case F_USER:
        return "user";
    case F_ITEM:
        return "item";
    case F_TYPE:
        return "type";
    case F_TS_MS:
        return "ts_ms";
    case F_SESSION:
        return "session";
    case F_QUERY:
        return "query";
    case F_VALUE:
        return "value";
    default:
        return "unknown";
    }
}

static int wire_type_of(uint64_t field)
{
    switch (field) {
    case F_EVENT_ID:
    case F_USER:
    case F_ITEM:
    case F_SESSION:
    case F_QUERY:
        return WT_LEN;
    case F_TYPE:
    case F_TS_MS:
        return WT_VARINT;
    case F_VALUE:
        return WT_I64;
    default:
        return -1;
    }
}

#define FAIL(code, why, ...)                                                   \
    do {                                                                       \
        if (reason) *reason = (why);                                           \
        say(detail, detail_size, __VA_ARGS__);                                 \
        return (code);                                                         \
    } while (0)

int sr_event_decode(const void *payload, size_t len, const sr_event_limits_t *limits,
                    int64_t now_ms, sr_event_wire_t *out, sr_event_reason_t *reason,
                    char *detail, size_t detail_size)
{
    if (reason) *reason = SR_EVENT_OK;
    if (detail && detail_size) detail[0] = '\0';
    memset(out, 0, sizeof(*out));
    if (!payload || len == 0) FAIL(SR_ERR_PARSE, SR_EVENT_EMPTY, "empty payload");

    const uint8_t *p = payload;
    const uint8_t *end = p + len;
    int64_t wire_type_num = 0;
    while (p < end) {
        size_t at = (size_t)(p - (const uint8_t *)payload);
        uint64_t tag;
        int r = read_varint(&p, end, 5, &tag);
        if (r == -1)
            FAIL(SR_ERR_PARSE, SR_EVENT_TRUNCATED, "truncated protobuf: payload ends inside a tag at byte %zu", at);
        if (r == -2) FAIL(SR_ERR_PARSE, SR_EVENT_MALFORMED, "not a protobuf Event: overlong tag at byte %zu", at);
        uint64_t field = tag >> 3;
        int wt = (int)(tag & 7);
        if (field == 0 || tag > 0xFFFFFFFFu)
            FAIL(SR_ERR_PARSE, SR_EVENT_MALFORMED, "not a protobuf Event: field number %llu at byte %zu",
                 (unsigned long long)field, at);
        int want = wire_type_of(field);
        if (want >= 0 && wt != want)
            FAIL(SR_ERR_PARSE, SR_EVENT_MALFORMED,
                 "not a protobuf Event: field %s (%llu) has wire type %d, expected %d at byte %zu",
                 field_name(field), (unsigned long long)field, wt, want, at);
        switch (wt) {
        case WT_VARINT: {
            uint64_t v;
            r = read_varint(&p, end, 10, &v);
            if (r == -1)
                FAIL(SR_ERR_PARSE, SR_EVENT_TRUNCATED, "truncated protobuf: payload ends inside field %s",
                     field_name(field));
            if (r == -2)
                FAIL(SR_ERR_PARSE, SR_EVENT_MALFORMED, "not a protobuf Event: overlong varint in field %s",
                     field_name(field));
            if (field == F_TYPE) wire_type_num = (int64_t)(int32_t)(uint32_t)v; /* enum is int32 */
            if (field == F_TS_MS) out->ev.ts_ms = (int64_t)v;
            break;
        }
        case WT_I64: {
            if ((size_t)(end - p) < 8)
                FAIL(SR_ERR_PARSE, SR_EVENT_TRUNCATED, "truncated protobuf: payload ends inside field %s",
                     field_name(field));
            if (field == F_VALUE) {
                uint64_t bits = 0;
                for (int k = 7; k >= 0; k--) bits = (bits << 8) | p[k];
                memcpy(&out->value, &bits, sizeof(bits));
            }
            p += 8;
            break;
        }
        case WT_I32:
            if ((size_t)(end - p) < 4)
                FAIL(SR_ERR_PARSE, SR_EVENT_TRUNCATED, "truncated protobuf: payload ends inside field %llu",
                     (unsigned long long)field);
            p += 4;
            break;
        case WT_LEN: {
            uint64_t n;
            r = read_varint(&p, end, 5, &n);
            if (r == -1)
                FAIL(SR_ERR_PARSE, SR_EVENT_TRUNCATED, "truncated protobuf: payload ends inside the length of field %s",
                     field_name(field));
            if (r == -2)
                FAIL(SR_ERR_PARSE, SR_EVENT_MALFORMED, "not a protobuf Event: overlong length in field %s",
                     field_name(field));
            if (n > (uint64_t)(end - p))
                FAIL(SR_ERR_PARSE, SR_EVENT_TRUNCATED,
                     "truncated protobuf: field %s declares %llu bytes, %zu left", field_name(field),
                     (unsigned long long)n, (size_t)(end - p));
            const char *s = (const char *)p;
            switch (field) {
            case F_EVENT_ID:
                out->event_id = s, out->event_id_len = n;
                break;
            case F_USER:
                out->ev.user = s, out->ev.user_len = n;
                break;
            case F_ITEM:
                out->ev.item = s, out->ev.item_len = n;
                break;
            case F_SESSION:
                out->session = s, out->session_len = n;
                break;
            case F_QUERY:
                out->query = s, out->query_len = n;
                break;
            default:
                break; /* unknown field: skipped */
            }
            p += n;
            break;
        }
        default: /* groups (deprecated, never in this schema) and 6, 7 */
            FAIL(SR_ERR_PARSE, SR_EVENT_MALFORMED, "not a protobuf Event: wire type %d at byte %zu", wt, at);
        }
    }

    if (wire_type_num == 0)
        FAIL(SR_ERR_INVAL, SR_EVENT_TYPE_UNSPECIFIED, "event type is unspecified (0)");
    if (sr_event_type_from_wire(wire_type_num, &out->ev.type) != 0)
        FAIL(SR_ERR_INVAL, SR_EVENT_TYPE_UNKNOWN, "unknown event type %lld", (long long)wire_type_num);
    return sr_event_validate(out, limits, now_ms, reason, detail, detail_size);
}

static int check_id(const char *what, const char *s, size_t len, int required,
                    sr_event_reason_t missing, sr_event_reason_t *reason, char *detail,
                    size_t detail_size)
{
    if (len == 0 || !s) {
        if (required) FAIL(SR_ERR_INVAL, missing, "%s id is missing", what);
        return 0;
    }
    if (len > SR_ID_MAX)
        FAIL(SR_ERR_INVAL, SR_EVENT_ID_TOO_LONG, "%s id is %zu bytes, max %d", what, len, SR_ID_MAX);
    if (!sr_utf8_valid(s, len)) FAIL(SR_ERR_INVAL, SR_EVENT_NOT_UTF8, "%s id is not valid UTF-8", what);
    /* Valid UTF-8, but every C consumer (Redis keys built with %s, the
     * ranker's JSON) would cut the id there. */
    if (memchr(s, '\0', len)) FAIL(SR_ERR_INVAL, SR_EVENT_BAD_CHAR, "%s id contains a NUL byte", what);
    return 0;
}

static int check_text(const char *what, const char *s, size_t len, sr_event_reason_t *reason,
                      char *detail, size_t detail_size)
{
    if (len == 0 || !s) return 0;
    if (len > SR_EVENT_TEXT_MAX)
        FAIL(SR_ERR_INVAL, SR_EVENT_TEXT_TOO_LONG, "%s is %zu bytes, max %d", what, len, SR_EVENT_TEXT_MAX);
    if (!sr_utf8_valid(s, len)) FAIL(SR_ERR_INVAL, SR_EVENT_NOT_UTF8, "%s is not valid UTF-8", what);
    return 0;
}

int sr_event_validate(sr_event_wire_t *e, const sr_event_limits_t *limits, int64_t now_ms,
                      sr_event_reason_t *reason, char *detail, size_t detail_size)
{
    if (reason) *reason = SR_EVENT_OK;
    int rc;
    if ((rc = check_id("user", e->ev.user, e->ev.user_len, 1, SR_EVENT_NO_USER, reason, detail, detail_size)) ||
        (rc = check_id("item", e->ev.item, e->ev.item_len, 1, SR_EVENT_NO_ITEM, reason, detail, detail_size)) ||
        (rc = check_id("event", e->event_id, e->event_id_len, 0, SR_EVENT_OK, reason, detail, detail_size)) ||
        (rc = check_text("session", e->session, e->session_len, reason, detail, detail_size)) ||
        (rc = check_text("query", e->query, e->query_len, reason, detail, detail_size)))
        return rc;
    if ((int)e->ev.type < 0 || e->ev.type >= SR_EV_NTYPES)
        FAIL(SR_ERR_INVAL, SR_EVENT_TYPE_UNKNOWN, "unknown event type %d", (int)e->ev.type);
    int64_t min_ts = limits ? limits->min_ts_ms : 1;
    if (min_ts < 1) min_ts = 1; /* 0 is proto3's "absent" */
    if (e->ev.ts_ms < min_ts)
        FAIL(SR_ERR_INVAL, SR_EVENT_TS_TOO_OLD, "timestamp %lld ms is before the minimum %lld",
             (long long)e->ev.ts_ms, (long long)min_ts);
    if (limits && limits->max_future_ms >= 0 && now_ms > 0 &&
        e->ev.ts_ms - now_ms > limits->max_future_ms)
        FAIL(SR_ERR_INVAL, SR_EVENT_TS_FUTURE, "timestamp %lld ms is %lld ms in the future, max %lld",
             (long long)e->ev.ts_ms, (long long)(e->ev.ts_ms - now_ms), (long long)limits->max_future_ms);
    if (!isfinite(e->value)) FAIL(SR_ERR_INVAL, SR_EVENT_BAD_VALUE, "value is not a finite number");
    /* Clamped: converting a double beyond float's range is undefined. */
    e->ev.value = e->value > FLT_MAX ? FLT_MAX : e->value < -FLT_MAX ? -FLT_MAX : (float)e->value;
    e->ev.id_hash = e->event_id_len ? sr_hash64(e->event_id, e->event_id_len, 0) : 0;
    return 0;
}

/* ---- encoding ---- */

static size_t put_varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

static size_t varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) v >>= 7, n++;
    return n;
}

static size_t str_len(size_t n)
{
    return n ? 1 + varint_len(n) + n : 0;
}

static size_t put_str(uint8_t *p, int field, const char *s, size_t n)
{
    if (!n) return 0;
    size_t k = put_varint(p, (uint64_t)field << 3 | WT_LEN);
    k += put_varint(p + k, n);
    memcpy(p + k, s, n);
    return k + n;
}

int sr_event_encode(const sr_event_wire_t *e, void *buf, size_t size)
{
    if ((int)e->ev.type < 0 || e->ev.type >= SR_EV_NTYPES) return SR_ERR_INVAL;
    uint64_t type = (uint64_t)sr_event_type_to_wire(e->ev.type);
    uint64_t ts = (uint64_t)e->ev.ts_ms;
    /* proto3 leaves zero scalars out; an explicit -0.0 is kept so the value
     * round-trips bit for bit. */
    uint64_t vbits;
    memcpy(&vbits, &e->value, sizeof(vbits));
    size_t need = str_len(e->event_id_len) + str_len(e->ev.user_len) + str_len(e->ev.item_len) +
                  1 + varint_len(type) + (ts ? 1 + varint_len(ts) : 0) +
                  str_len(e->session_len) + str_len(e->query_len) + (vbits ? 9 : 0);
    if (need > size || need > (size_t)0x7fffffff) return SR_ERR_FULL;
    uint8_t *p = buf;
    size_t k = 0;
    k += put_str(p + k, F_EVENT_ID, e->event_id, e->event_id_len);
    k += put_str(p + k, F_USER, e->ev.user, e->ev.user_len);
    k += put_str(p + k, F_ITEM, e->ev.item, e->ev.item_len);
    k += put_varint(p + k, F_TYPE << 3 | WT_VARINT);
    k += put_varint(p + k, type);
    if (ts) {
        k += put_varint(p + k, F_TS_MS << 3 | WT_VARINT);
        k += put_varint(p + k, ts);
    }
    k += put_str(p + k, F_SESSION, e->session, e->session_len);
    k += put_str(p + k, F_QUERY, e->query, e->query_len);
    if (vbits) {
        p[k++] = F_VALUE << 3 | WT_I64;
        for (int i = 0; i < 8; i++) p[k++] = (uint8_t)(vbits >> (8 * i));
    }
    return (int)k;
}
