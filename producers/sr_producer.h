/* The streamrec producer library: how a shop backend sends click,
 * add-to-cart and purchase events to the `events` topic.
 *
 * It exists so that every producer writes the same wire format
 * (streamrec.v1.Event, proto/events.proto) with the same key (the user id,
 * so one user's events stay ordered in one partition and one trainer owns
 * that user), generates event ids the trainer can deduplicate on, and runs
 * librdkafka with the settings the pipeline relies on (idempotence on, so a
 * retry never duplicates or reorders an event within a partition).
 *
 * Installed as <streamrec/sr_producer.h> with pkg-config name
 * `streamrec-producer`:  cc app.c $(pkg-config --cflags --libs streamrec-producer)
 *
 * Lifecycle:  sr_producer_new -> sr_producer_send ... (call
 * sr_producer_poll regularly) -> sr_producer_flush -> sr_producer_destroy.
 *
 * Threading: sr_producer_send, sr_producer_poll and sr_producer_flush may
 * be called from any number of threads at once.  The delivery callback
 * runs on the thread that is inside sr_producer_poll() or
 * sr_producer_flush() (it is librdkafka's dr_msg_cb, served by those
 * calls), never inside sr_producer_send() and never on a librdkafka
 * thread; if several threads poll at once, callbacks may run concurrently.
 */
#ifndef SR_PRODUCER_H
#define SR_PRODUCER_H

#include <stddef.h>
#include <stdint.h>

#include "sr_err.h"
#include "sr_event.h"

typedef struct sr_producer_s sr_producer_t;

/* One event to send.  Strings are NUL-terminated and borrowed for the
 * duration of sr_producer_send only (it copies what it sends). */
typedef struct sr_producer_event {
    const char *event_id; /* NULL or "": a random 128-bit hex id is generated */
    const char *user;     /* required, 1..SR_ID_MAX bytes of UTF-8; the Kafka key */
    const char *item;     /* required, 1..SR_ID_MAX bytes of UTF-8 */
    sr_event_type_t type;
    int64_t ts_ms;        /* event time; 0 means "now" */
    const char *session;  /* optional (NULL), <= SR_EVENT_TEXT_MAX bytes */
    const char *query;    /* optional (NULL), <= SR_EVENT_TEXT_MAX bytes */
    double value;         /* optional: price, quantity or rating */
} sr_producer_event_t;

/* The outcome of one event.  All pointers are valid only during the
 * callback.  err is 0 when the broker acknowledged the event, else
 * SR_ERR_KAFKA with errstr from librdkafka (e.g. "Local: Message timed
 * out", "Broker: Unknown topic or partition"); partition/offset are -1
 * then. */
typedef struct sr_producer_delivery {
    int err;
    const char *errstr;
    const char *event_id; /* as sent (generated or given), NUL-terminated */
    size_t event_id_len;
    const char *user; /* the key, not NUL-terminated */
    size_t user_len;
    int32_t partition;
    int64_t offset;
} sr_producer_delivery_t;

/* Called once per event that sr_producer_send accepted, with its final
 * outcome (after librdkafka's retries).  Runs inside sr_producer_poll /
 * sr_producer_flush on the calling thread (see the threading note above);
 * it must not call sr_producer_destroy. */
typedef void sr_producer_delivery_cb(const sr_producer_delivery_t *d, void *opaque);

/* Creates a producer from key/value pairs: a NULL-terminated array
 * {key0, value0, key1, value1, ..., NULL}.  Keys:
 *   "kafka.<name>"  any librdkafka property, e.g. "kafka.bootstrap.servers";
 *   "topic.events"  topic to send to (default "events").
 * Defaults applied before the caller's: enable.idempotence=true,
 * linger.ms=5, partitioner=murmur2_random (the Java client's, so producers
 * in other languages put a user on the same partition).  kv may be NULL.
 * delivery_cb may be NULL (outcomes are then only counted in logs).
 * Returns NULL on error with a message in errstr naming the key (unknown
 * key, librdkafka refused a property, ...).  librdkafka's own log lines go
 * through sr_log. */
sr_producer_t *sr_producer_new(const char *const *kv, sr_producer_delivery_cb *delivery_cb,
                               void *opaque, char *errstr, size_t errstr_size);

/* Validates, encodes and enqueues one event; returns without waiting for
 * the broker.  Returns 0 (the delivery callback will report the outcome
 * exactly once), SR_ERR_INVAL (the event is invalid: missing/oversize/
 * non-UTF-8 id, bad type; nothing sent, no callback), SR_ERR_FULL (the
 * local queue is full: call sr_producer_poll and retry; no callback) or
 * SR_ERR_KAFKA (librdkafka refused it, e.g. the producer is fatally
 * failed; no callback).  Thread-safe. */
int sr_producer_send(sr_producer_t *p, const sr_producer_event_t *ev);

/* Serves delivery callbacks, waiting up to timeout_ms for the first one
 * (0: do not wait).  Returns the number of callbacks served. */
int sr_producer_poll(sr_producer_t *p, int timeout_ms);

/* Waits until every accepted event has been delivered or failed (serving
 * their callbacks), at most timeout_ms.  Returns 0, or SR_ERR_TIMEOUT with
 * events still in flight. */
int sr_producer_flush(sr_producer_t *p, int timeout_ms);

/* Events accepted by sr_producer_send whose callback has not run yet. */
int sr_producer_in_flight(const sr_producer_t *p);

/* Flushes for up to 10 s (events still in flight are then dropped and
 * their callbacks do not run), and frees the producer.  NULL is a no-op.
 * No other call may be running on p. */
void sr_producer_destroy(sr_producer_t *p);

/* The underlying librdkafka handle (borrowed; owned by p), for callers that
 * need more, e.g. sr_metrics_pub on the same connection. */
struct rd_kafka_s *sr_producer_rk(sr_producer_t *p);

#endif
