/* The wire codec for shop events on the `events` topic (proto/events.proto,
 * streamrec.v1.Event), shared by the producer library and the trainer.
 *
 * Why a hand-written codec and not protobuf-c's unpack: the trainer decodes
 * every event on its hot path (target 500k events/s) and must not allocate
 * per event, and a dead letter needs a precise reason ("truncated protobuf"
 * vs "not a protobuf at all" vs "user id longer than 128 bytes"), while
 * protobuf-c's unpack mallocs a message per call and only says NULL.  The
 * decoder here walks the protobuf wire format of this one message, points
 * into the payload (zero copy) and then validates the fields.  Both
 * directions are tested against the protobuf-c generated code
 * (tests/unit/test_event_codec.c), so the wire format is the schema's.
 *
 * Pure functions: no I/O, no allocation, no global state; every function
 * is thread-safe and safe on arbitrary (fuzzed) input of any length. */
#ifndef SR_EVENT_CODEC_H
#define SR_EVENT_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "sr_event.h"

/* Longest accepted session id or search query, in bytes. */
#define SR_EVENT_TEXT_MAX 1024

/* Upper bound of an encoded event that passes validation: every string
 * field at its maximum plus tags, lengths and scalars.  A buffer of this
 * size always fits sr_event_encode's output for a valid event. */
#define SR_EVENT_ENCODED_MAX (3 * (SR_ID_MAX + 3) + 2 * (SR_EVENT_TEXT_MAX + 3) + 2 * 11 + 9)

/* One event as it travels on the wire.  All pointers are borrowed: after
 * sr_event_decode they point into the payload (not NUL-terminated) and
 * live as long as the payload does; for sr_event_encode the caller owns
 * them.  A NULL pointer with length 0 means "absent". */
typedef struct sr_event_wire {
    sr_event_t ev; /* user, item, type, ts_ms, value; ev.id_hash is
                      sr_hash64(event_id) or 0 without an event id */
    const char *event_id;
    size_t event_id_len;
    const char *session;
    size_t session_len;
    const char *query;
    size_t query_len;
    double value; /* full precision; ev.value is the float copy */
} sr_event_wire_t;

/* Why a payload was rejected.  The names (sr_event_reason_name) are stable
 * tokens for dead-letter headers and metrics; never renumber. */
#define SR_EVENT_REASON_MAP(X)                                                 \
    X(OK, "ok")                                                                \
    X(EMPTY, "empty")                 /* zero-length payload */                \
    X(MALFORMED, "malformed")         /* bytes that are not a protobuf Event */ \
    X(TRUNCATED, "truncated")         /* a protobuf cut short */               \
    X(NO_USER, "no_user")             /* user id absent or empty */            \
    X(NO_ITEM, "no_item")                                                      \
    X(ID_TOO_LONG, "id_too_long")     /* user/item/event id > SR_ID_MAX */     \
    X(TEXT_TOO_LONG, "text_too_long") /* session/query > SR_EVENT_TEXT_MAX */  \
    X(NOT_UTF8, "not_utf8")           /* a string field is not valid UTF-8 */  \
    X(TYPE_UNSPECIFIED, "type_unspecified")                                    \
    X(TYPE_UNKNOWN, "type_unknown")   /* a type number this build lacks */     \
    X(TS_TOO_OLD, "ts_too_old")       /* before limits.min_ts_ms (or 0) */     \
    X(TS_FUTURE, "ts_future")         /* after now + limits.max_future_ms */   \
    X(BAD_VALUE, "bad_value")         /* value is NaN or infinite */           \
    X(BAD_CHAR, "bad_char")           /* a NUL byte inside an id */

typedef enum sr_event_reason {
#define SR_EVENT_REASON_ENUM_(name, token) SR_EVENT_##name,
    SR_EVENT_REASON_MAP(SR_EVENT_REASON_ENUM_)
#undef SR_EVENT_REASON_ENUM_
    SR_EVENT_NREASONS
} sr_event_reason_t;

/* Stable token for a reason ("truncated", ...); static string, never NULL
 * ("unknown" for an out-of-range value). */
const char *sr_event_reason_name(sr_event_reason_t r);

/* What the validator accepts: trainer.min.ts.ms and trainer.max.future.ms. */
typedef struct sr_event_limits {
    int64_t min_ts_ms;     /* events before this are TS_TOO_OLD */
    int64_t max_future_ms; /* events after now_ms + this are TS_FUTURE */
} sr_event_limits_t;

/* Decodes a Kafka message payload and validates it.  On success returns 0
 * with *out filled (pointers into payload).  On failure returns
 * SR_ERR_PARSE (the bytes are not a well-formed Event: EMPTY, MALFORMED,
 * TRUNCATED) or SR_ERR_INVAL (a well-formed Event that fails validation),
 * sets *reason, and writes a one-line human explanation into detail
 * (e.g. "user id is 200 bytes, max 128"; may be NULL/0).  *out is then
 * unspecified.  reason may be NULL.  limits may be NULL: then only
 * ts_ms <= 0 is rejected (as TS_TOO_OLD) and nothing is too far ahead.
 * Unknown fields are skipped (forward compatible); a repeated scalar
 * field keeps the last value, as protobuf does.  Never reads outside
 * payload[0..len). */
int sr_event_decode(const void *payload, size_t len, const sr_event_limits_t *limits,
                    int64_t now_ms, sr_event_wire_t *out, sr_event_reason_t *reason,
                    char *detail, size_t detail_size);

/* The validation half of sr_event_decode, for events that did not come
 * from the wire (the producer checks what it is about to send).  Returns 0
 * or SR_ERR_INVAL with *reason and detail set as above.  Sets
 * ev->ev.id_hash from event_id. */
int sr_event_validate(sr_event_wire_t *ev, const sr_event_limits_t *limits, int64_t now_ms,
                      sr_event_reason_t *reason, char *detail, size_t detail_size);

/* Encodes ev as a streamrec.v1.Event into buf (proto3: absent/zero fields
 * are omitted).  Uses ev->ev.user/item/type/ts_ms and the wire fields
 * (ev->value, not ev->ev.value).  Does not validate (call
 * sr_event_validate first).  Returns the encoded length (> 0 for any
 * event with a user), or SR_ERR_FULL if size is too small (nothing
 * useful in buf then), SR_ERR_INVAL for a type outside sr_event_type_t. */
int sr_event_encode(const sr_event_wire_t *ev, void *buf, size_t size);

/* Model type <-> wire enum number (streamrec.v1.EventType: VIEW = 1 ...).
 * sr_event_type_from_wire returns 0, or SR_ERR_INVAL for 0 (unspecified)
 * or an unknown number. */
int sr_event_type_to_wire(sr_event_type_t t);
int sr_event_type_from_wire(int64_t wire, sr_event_type_t *out);

/* 1 if s[0..len) is valid UTF-8 (no overlongs, no surrogates, <= U+10FFFF). */
int sr_utf8_valid(const char *s, size_t len);

#endif
