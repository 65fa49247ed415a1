/* The producer library (sr_producer.h): validate, encode with the shared
 * codec, key by user, hand to an idempotent librdkafka producer, and turn
 * librdkafka's delivery reports into sr_producer_delivery_t.
 *
 * Nothing is allocated per event: the payload is encoded on the stack and
 * copied once by librdkafka (RD_KAFKA_MSG_F_COPY); the delivery report
 * reads the event id back out of the payload instead of carrying a
 * per-message allocation through msg_opaque. */
#include "sr_producer.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "sr_event_codec.h"
#include "sr_kafka_util.h"
#include "sr_log.h"

struct sr_producer_s {
    rd_kafka_t *rk;
    rd_kafka_topic_t *rkt;
    sr_producer_delivery_cb *cb;
    void *opaque;
    /* Event ids: a per-producer random key and a counter; see gen_id. */
    uint64_t id_key[2];
    _Atomic uint64_t id_ctr;
    _Atomic int in_flight;
};

static uint64_t splitmix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

/* 128-bit ids as 32 hex digits.  splitmix64 is a bijection, so the first
 * half never repeats within one producer (2^64 events); the random key from
 * getrandom(2) makes two producers' ids collide with negligible
 * probability.  No lock and no syscall per event. */
static void gen_id(sr_producer_t *p, char out[33])
{
    uint64_t c = atomic_fetch_add_explicit(&p->id_ctr, 1, memory_order_relaxed);
    uint64_t hi = splitmix64(p->id_key[0] ^ c), lo = splitmix64(p->id_key[1] + c);
    snprintf(out, 33, "%016" PRIx64 "%016" PRIx64, hi, lo);
}

static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    sr_producer_t *p = opaque;
    atomic_fetch_sub_explicit(&p->in_flight, 1, memory_order_relaxed);
    if (!p->cb) {
        if (m->err)
            sr_log(SR_LOG_WARN, "producer: event to partition %d not delivered: %s",
                   (int)m->partition, rd_kafka_err2str(m->err));
        return;
    }
    sr_producer_delivery_t d = {
        .err = m->err ? SR_ERR_KAFKA : 0,
        .errstr = m->err ? rd_kafka_err2str(m->err) : "",
        .user = m->key,
        .user_len = m->key_len,
        .partition = m->err ? -1 : m->partition,
        .offset = m->err ? -1 : m->offset,
    };
    /* The id is read back from our own payload (no limits: it was
     * validated before sending).  The decoded pointer is not
     * NUL-terminated, so copy it. */
    char id[SR_ID_MAX + 1] = "";
    sr_event_wire_t w;
    if (sr_event_decode(m->payload, m->len, NULL, 0, &w, NULL, NULL, 0) == 0 && w.event_id_len) {
        memcpy(id, w.event_id, w.event_id_len);
        id[w.event_id_len] = '\0';
        d.event_id_len = w.event_id_len;
    }
    d.event_id = id;
    p->cb(&d, p->opaque);
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    (void)rk;
    (void)opaque;
    /* Transient errors (broker down, ...) are retried by librdkafka; only
     * fatal ones (idempotence broken) make sends fail. */
    sr_log(err == RD_KAFKA_RESP_ERR__FATAL ? SR_LOG_ERROR : SR_LOG_WARN, "producer: %s: %s",
           rd_kafka_err2name(err), reason);
}

sr_producer_t *sr_producer_new(const char *const *kv, sr_producer_delivery_cb *delivery_cb,
                               void *opaque, char *errstr, size_t errstr_size)
{
    sr_producer_t *p = calloc(1, sizeof(*p));
    if (!p) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    p->cb = delivery_cb;
    p->opaque = opaque;
    if (getrandom(p->id_key, sizeof(p->id_key), 0) != (ssize_t)sizeof(p->id_key)) {
        /* No entropy syscall: fall back on time and address, still unique
         * per producer in practice. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        p->id_key[0] = splitmix64((uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30));
        p->id_key[1] = splitmix64((uint64_t)(uintptr_t)p ^ p->id_key[0]);
    }

    rd_kafka_conf_t *kc = rd_kafka_conf_new();
    const char *topic = "events";
    if (sr_kafka_conf_set(kc, "enable.idempotence", "true", errstr, errstr_size) ||
        sr_kafka_conf_set(kc, "linger.ms", "5", errstr, errstr_size) ||
        sr_kafka_conf_set(kc, "partitioner", "murmur2_random", errstr, errstr_size))
        goto fail;
    for (size_t i = 0; kv && kv[i]; i += 2) {
        const char *k = kv[i], *v = kv[i + 1];
        if (!v) {
            snprintf(errstr, errstr_size, "%s: no value (the key/value array must be pairs)", k);
            goto fail;
        }
        if (strncmp(k, "kafka.", 6) == 0) {
            if (sr_kafka_conf_set(kc, k + 6, v, errstr, errstr_size)) goto fail;
        } else if (strcmp(k, "topic.events") == 0) {
            if (!*v) {
                snprintf(errstr, errstr_size, "topic.events: empty topic name");
                goto fail;
            }
            topic = v;
        } else {
            snprintf(errstr, errstr_size, "%s: unknown producer property (expected kafka.<name> or "
                                          "topic.events)",
                     k);
            goto fail;
        }
    }
    rd_kafka_conf_set_log_cb(kc, sr_kafka_log_cb);
    rd_kafka_conf_set_error_cb(kc, error_cb);
    rd_kafka_conf_set_dr_msg_cb(kc, dr_msg_cb);
    rd_kafka_conf_set_opaque(kc, p);
    char why[512];
    p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, why, sizeof(why));
    if (!p->rk) {
        snprintf(errstr, errstr_size, "librdkafka: %s", why);
        goto fail;
    }
    kc = NULL; /* owned by rk now */
    p->rkt = rd_kafka_topic_new(p->rk, topic, NULL);
    if (!p->rkt) {
        snprintf(errstr, errstr_size, "topic '%s': %s", topic, rd_kafka_err2str(rd_kafka_last_error()));
        goto fail;
    }
    return p;

fail:
    if (kc) rd_kafka_conf_destroy(kc);
    if (p->rk) rd_kafka_destroy(p->rk);
    free(p);
    return NULL;
}

static size_t slen(const char *s)
{
    return s ? strlen(s) : 0;
}

int sr_producer_send(sr_producer_t *p, const sr_producer_event_t *e)
{
    char id[33];
    sr_event_wire_t w = {0};
    w.ev.user = e->user, w.ev.user_len = slen(e->user);
    w.ev.item = e->item, w.ev.item_len = slen(e->item);
    w.ev.type = e->type;
    w.ev.ts_ms = e->ts_ms ? e->ts_ms : sr_kafka_now_ms();
    w.session = e->session, w.session_len = slen(e->session);
    w.query = e->query, w.query_len = slen(e->query);
    w.value = e->value;
    if (e->event_id && *e->event_id) {
        w.event_id = e->event_id, w.event_id_len = strlen(e->event_id);
    } else {
        gen_id(p, id);
        w.event_id = id, w.event_id_len = 32;
    }
    /* Only what the trainer would reject for sure; timestamps are the
     * trainer's call (its clock and limits), not the producer's. */
    char why[160];
    if (sr_event_validate(&w, NULL, 0, NULL, why, sizeof(why)) != 0) {
        sr_log(SR_LOG_DEBUG, "producer: invalid event: %s", why);
        return SR_ERR_INVAL;
    }
    uint8_t buf[SR_EVENT_ENCODED_MAX];
    int n = sr_event_encode(&w, buf, sizeof(buf));
    if (n < 0) return SR_ERR_INVAL;
    atomic_fetch_add_explicit(&p->in_flight, 1, memory_order_relaxed);
    if (rd_kafka_produce(p->rkt, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, buf, (size_t)n,
                         w.ev.user, w.ev.user_len, NULL) == 0)
        return 0;
    atomic_fetch_sub_explicit(&p->in_flight, 1, memory_order_relaxed);
    rd_kafka_resp_err_t err = rd_kafka_last_error();
    if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) return SR_ERR_FULL;
    sr_log(SR_LOG_WARN, "producer: %s", rd_kafka_err2str(err));
    return SR_ERR_KAFKA;
}

int sr_producer_poll(sr_producer_t *p, int timeout_ms)
{
    return rd_kafka_poll(p->rk, timeout_ms);
}

int sr_producer_flush(sr_producer_t *p, int timeout_ms)
{
    return rd_kafka_flush(p->rk, timeout_ms) == RD_KAFKA_RESP_ERR_NO_ERROR ? 0 : SR_ERR_TIMEOUT;
}

int sr_producer_in_flight(const sr_producer_t *p)
{
    return atomic_load_explicit(&((sr_producer_t *)p)->in_flight, memory_order_relaxed);
}

void sr_producer_destroy(sr_producer_t *p)
{
    if (!p) return;
    if (rd_kafka_flush(p->rk, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR)
        sr_log(SR_LOG_WARN, "producer: %d event(s) still in flight at destroy; dropped",
               rd_kafka_outq_len(p->rk));
    /* Undelivered messages are purged without calling back into the
     * application, which may already be tearing down. */
    p->cb = NULL;
    rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_topic_destroy(p->rkt);
    rd_kafka_destroy(p->rk);
    free(p);
}

struct rd_kafka_s *sr_producer_rk(sr_producer_t *p)
{
    return p->rk;
}
