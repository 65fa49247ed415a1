/* The trainer's consumer loop (see sr_trainer.h for the contract).
 *
 * This file owns the Kafka side: the consumer-group member, the rebalance
 * callback, per-partition offset bookkeeping, batch processing (decode,
 * validate, dedup, dead letters, evaluate-then-learn) and the main loop
 * with its flush and metrics timers.  The Redis side (warm loads, the
 * atomic flush, item delta merging) lives in trainer_state.c behind the
 * small internal interface of trainer_int.h, so the exactly-once argument
 * can be read in one place.
 *
 * Exactly-once, in one paragraph: the only durable progress marker is the
 * per-partition "next offset" that each flush writes to Redis atomically
 * with the state it produced.  A flush is a snapshot taken between two
 * batches: the copied state contains exactly the events below the copied
 * offsets, and the flusher thread writes both in one script while this
 * thread learns on; at most one flush is in flight, and the next snapshot
 * (taken after the previous one was applied) names the offsets it wrote as
 * the ones it expects to replace (fencing).  Every assignment seeks to the
 * stored offsets; every message below a partition's next offset is
 * ignored; a rebalance or shutdown first waits for the in-flight flush and
 * then flushes the rest; so state and offsets can never disagree, whatever
 * point a crash hits. */
#include "trainer_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sr_err.h"
#include "sr_event_codec.h"
#include "sr_log.h"

void sr_trainer_opts_init(sr_trainer_opts_t *o)
{
    memset(o, 0, sizeof(*o));
}

/* ---- partitions ------------------------------------------------------ */

sr_tpart_t *sr_trainer_part_(sr_trainer_t *t, int32_t partition, int create)
{
    if (partition < 0) return NULL;
    if ((size_t)partition >= t->n_parts) {
        if (!create) return NULL;
        size_t n = t->n_parts ? t->n_parts : 8;
        while (n <= (size_t)partition) n *= 2;
        sr_tpart_t *p = realloc(t->parts, n * sizeof(*p));
        if (!p) return NULL;
        for (size_t i = t->n_parts; i < n; i++)
            p[i] = (sr_tpart_t){.partition = (int32_t)i, .next = -1, .flushed = -1};
        t->parts = p;
        t->n_parts = n;
    }
    return &t->parts[partition];
}

/* ---- librdkafka callbacks -------------------------------------------- */

/* Runs on librdkafka's internal threads (log_cb is the exception to "all
 * callbacks run inside poll"); sr_log is thread-safe. */
static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    int l = level <= 3 ? SR_LOG_ERROR : level <= 4 ? SR_LOG_WARN : level <= 6 ? SR_LOG_INFO
                                                                                : SR_LOG_DEBUG;
    sr_log(l, "kafka %s: %s", fac, buf);
}

/* Served inside the consume call on the owner thread. */
static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    (void)rk;
    sr_trainer_t *t = opaque;
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char buf[512];
        rd_kafka_fatal_error(t->rk, buf, sizeof(buf));
        sr_log(SR_LOG_ERROR, "trainer: fatal kafka error: %s", buf);
        t->fatal = 1;
        return;
    }
    sr_log(SR_LOG_WARN, "trainer: kafka: %s: %s", rd_kafka_err2name(err), reason);
}

/* DLQ and metrics delivery reports, served by rd_kafka_poll(t->prod) on
 * the owner thread. */
static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    sr_trainer_t *t = opaque;
    if (m->err && m->_private == (void *)1) {
        t->stats.dlq_failed++;
        sr_log(SR_LOG_ERROR, "trainer: dead letter lost: %s", rd_kafka_err2str(m->err));
    }
}

int64_t sr_trainer_start_offset_(sr_trainer_t *t, sr_tpart_t *p, int64_t stored)
{
    int64_t lo = 0, hi = 0;
    int64_t start = stored < 0 ? RD_KAFKA_OFFSET_BEGINNING : stored;
    if (stored > 0 && t->dedup && t->dedup_replay > 0 &&
        rd_kafka_query_watermark_offsets(t->rk, t->topic_events, p->partition, &lo, &hi, 5000) ==
            RD_KAFKA_RESP_ERR_NO_ERROR) {
        int64_t s = stored - t->dedup_replay;
        start = s > lo ? s : lo;
        if (start > stored) start = stored;
    }
    p->assigned = 1;
    p->apply_from = stored < 0 ? 0 : stored;
    p->next = start >= 0 ? start : 0; /* fetch position: replay, then learn */
    p->learned = p->next;
    p->flushed = stored;
    p->seen = 0;
    p->resync = 0;
    return start;
}

/* Sets the start offset of every partition in `parts` from Redis, and
 * remembers where learning resumes.  Messages from `start` up to the
 * stored offset are read again only to refill the dedup window, so a
 * duplicate whose first copy was applied before a crash or a partition
 * move is still recognised. */
static int on_assign(sr_trainer_t *t, rd_kafka_topic_partition_list_t *parts)
{
    int n = parts->cnt;
    int32_t *ids = malloc((size_t)(n ? n : 1) * sizeof(int32_t));
    int64_t *offs = malloc((size_t)(n ? n : 1) * sizeof(int64_t));
    if (!ids || !offs) {
        free(ids);
        free(offs);
        return SR_ERR_NOMEM;
    }
    for (int i = 0; i < n; i++) ids[i] = parts->elems[i].partition;
    int rc = sr_trainer_load_offsets_(t, ids, (size_t)n, offs);
    if (rc != 0) {
        free(ids);
        free(offs);
        return rc;
    }
    for (int i = 0; i < n; i++) {
        sr_tpart_t *p = sr_trainer_part_(t, ids[i], 1);
        if (!p) {
            rc = SR_ERR_NOMEM;
            break;
        }
        int64_t stored = offs[i]; /* -1: nothing stored, start at the beginning */
        int64_t start = sr_trainer_start_offset_(t, p, stored);
        parts->elems[i].offset = start;
        sr_log(SR_LOG_INFO, "trainer: assigned %s [%" PRId32 "] at offset %" PRId64
               " (stored %" PRId64 ", dedup replay from %" PRId64 ")",
               t->topic_events, ids[i], p->apply_from, stored, start);
    }
    free(ids);
    free(offs);
    if (rc == 0 && n > 0) sr_trainer_preload_(t);
    return rc;
}

/* Served inside rd_kafka_consume_batch_queue / rd_kafka_consumer_close on
 * the owner thread, so it may flush synchronously: librdkafka waits for it
 * before the partitions move, which is what makes "flush before revoke"
 * hold. */
static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    sr_trainer_t *t = opaque;
    int coop = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    t->stats.rebalances++;
    /* Any change of ownership makes in-memory users of other partitions
     * possibly stale: reload every user from Redis before its next update. */
    t->user_gen++;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        int rc;
        /* Users are about to be reloaded from Redis (user_gen): what we
         * learned must be there first.  (An eager assignment follows a
         * revoke that flushed already; a cooperative one may not.) */
        if ((t->dirty || sr_trainer_flush_busy_(t)) && sr_trainer_flush_retry_(t) != 0)
            sr_trainer_drop_state_(t);
        while ((rc = on_assign(t, parts)) != 0) {
            if (rc == SR_ERR_NOMEM || sr_trainer_backoff_(t, "reading stored offsets") != 0) {
                /* Stopping (or out of memory) before we know where to start:
                 * take nothing, so nothing can be applied from a wrong
                 * offset. */
                sr_log(SR_LOG_WARN, "trainer: assignment dropped: %s", sr_strerror(rc));
                if (coop) rd_kafka_incremental_assign(rk, NULL);
                else rd_kafka_assign(rk, NULL);
                return;
            }
        }
        t->assigned_once = 1;
        t->idle_since = sr_mono_ms();
        rd_kafka_error_t *e = NULL;
        rd_kafka_resp_err_t r = RD_KAFKA_RESP_ERR_NO_ERROR;
        if (coop) e = rd_kafka_incremental_assign(rk, parts);
        else r = rd_kafka_assign(rk, parts);
        if (e) {
            sr_log(SR_LOG_ERROR, "trainer: assign: %s", rd_kafka_error_string(e));
            rd_kafka_error_destroy(e);
        } else if (r) {
            sr_log(SR_LOG_ERROR, "trainer: assign: %s", rd_kafka_err2str(r));
        }
        return;
    }
    if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        /* Wait for the in-flight flush, then flush the rest, before giving
         * the partitions away.  A lost assignment (session timed out) may
         * already belong to someone else: our flush could then overwrite
         * their newer offsets, so state from a lost assignment is dropped
         * instead (after the in-flight flush ends, which the fencing makes
         * harmless) and replayed by the owner. */
        if (rd_kafka_assignment_lost(rk)) {
            sr_log(SR_LOG_WARN, "trainer: assignment lost; dropping unflushed state");
            sr_trainer_drop_state_(t);
        } else if (sr_trainer_flush_retry_(t) != 0) {
            sr_trainer_drop_state_(t);
        }
        for (int i = 0; i < parts->cnt; i++) {
            sr_tpart_t *p = sr_trainer_part_(t, parts->elems[i].partition, 0);
            if (p) p->assigned = 0;
        }
        if (coop) rd_kafka_incremental_unassign(rk, parts);
        else rd_kafka_assign(rk, NULL);
        return;
    }
    sr_log(SR_LOG_ERROR, "trainer: rebalance error: %s", rd_kafka_err2str(err));
    rd_kafka_assign(rk, NULL);
}

/* ---- construction ---------------------------------------------------- */

struct kconf_ctx {
    int producer;
    rd_kafka_conf_t *kc;
    char *errstr;
    size_t errstr_size;
};

/* Consumer-only properties that the DLQ/metrics producer would warn about. */
static int consumer_only(const char *name)
{
    static const char *const names[] = {
        "group.", "session.timeout.ms", "heartbeat.interval.ms", "max.poll.interval.ms",
        "auto.offset.reset", "enable.auto.", "auto.commit.", "partition.assignment.strategy",
        "fetch.", "queued.", "isolation.level", "enable.partition.eof", "check.crcs",
        "allow.auto.create.topics", "coordinator.query.interval.ms", NULL};
    for (int i = 0; names[i]; i++)
        if (strncmp(name, names[i], strlen(names[i])) == 0) return 1;
    return 0;
}

static int apply_kafka_prop(const char *key, const char *value, void *opaque)
{
    struct kconf_ctx *c = opaque;
    if (c->producer && consumer_only(key + 6)) return 0;
    if (rd_kafka_conf_set(c->kc, key + 6, value, c->errstr, c->errstr_size) !=
        RD_KAFKA_CONF_OK)
        return -1;
    return 0;
}

static rd_kafka_conf_t *kafka_conf(const sr_conf_t *conf, sr_trainer_t *t, int producer,
                                   char *errstr, size_t errstr_size)
{
    rd_kafka_conf_t *kc = rd_kafka_conf_new();
    struct kconf_ctx c = {producer, kc, errstr, errstr_size};
    rd_kafka_conf_set_log_cb(kc, log_cb);
    rd_kafka_conf_set_error_cb(kc, error_cb);
    rd_kafka_conf_set_opaque(kc, t);
    if (sr_conf_foreach(conf, "kafka.", apply_kafka_prop, &c) != 0) {
        rd_kafka_conf_destroy(kc);
        return NULL;
    }
    return kc;
}

static int set(rd_kafka_conf_t *kc, const char *k, const char *v, char *errstr, size_t n)
{
    return rd_kafka_conf_set(kc, k, v, errstr, n) == RD_KAFKA_CONF_OK ? 0 : -1;
}

sr_trainer_t *sr_trainer_new(const sr_conf_t *conf, const sr_model_params_t *params,
                             const sr_trainer_opts_t *opts, char *errstr, size_t errstr_size)
{
    sr_trainer_t *t = calloc(1, sizeof(*t));
    if (!t) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    sr_trainer_opts_t defaults;
    sr_trainer_opts_init(&defaults);
    t->opts = opts ? *opts : defaults;
    t->topic_events = strdup(sr_conf_str(conf, "topic.events"));
    t->topic_dlq = strdup(sr_conf_str(conf, "topic.dlq"));
    t->topic_metrics = strdup(sr_conf_str(conf, "topic.metrics"));
    t->group = strdup(sr_conf_str(conf, "trainer.group.id"));
    const char *inst = opts && opts->instance ? opts->instance : sr_conf_str(conf, "metrics.instance");
    if (inst && *inst) {
        t->instance = strdup(inst);
    } else {
        char host[128] = "localhost";
        gethostname(host, sizeof(host) - 1);
        char buf[192];
        snprintf(buf, sizeof(buf), "%s:%d", host, (int)getpid());
        t->instance = strdup(buf);
    }
    t->opts.instance = NULL;
    t->flush_interval_ms = sr_conf_int(conf, "trainer.flush.interval.ms");
    t->batch_size = (size_t)sr_conf_int(conf, "trainer.batch.size");
    t->eval_every = sr_conf_int(conf, "trainer.eval.every");
    t->eval_max_per_s = sr_conf_int(conf, "trainer.eval.max_per_s");
    t->eval_k = (int)sr_conf_int(conf, "trainer.eval.k");
    t->min_ts_ms = sr_conf_int(conf, "trainer.min.ts.ms");
    t->max_future_ms = sr_conf_int(conf, "trainer.max.future.ms");
    t->metrics_interval_ms = sr_conf_int(conf, "metrics.interval.ms");
    int64_t window = sr_conf_int(conf, "trainer.dedup.window"); /* 0: no dedup */
    t->dedup_replay = window;
    t->preload_events = sr_conf_int(conf, "trainer.preload.events");
    if (!t->topic_events || !t->topic_dlq || !t->topic_metrics || !t->group || !t->instance) {
        snprintf(errstr, errstr_size, "out of memory");
        goto fail;
    }
    if (t->batch_size < 1) t->batch_size = 1;
    t->dedup = window > 0 ? sr_dedup_new((size_t)window) : NULL;
    t->batch_cap = t->batch_size > SR_TRAINER_READ_AHEAD ? t->batch_size : SR_TRAINER_READ_AHEAD;
    t->batch_cap -= t->batch_cap % t->batch_size; /* whole consume calls */
    t->msgs = calloc(t->batch_cap, sizeof(*t->msgs));
    t->bev = calloc(t->batch_cap, sizeof(*t->bev));
    t->pbev = calloc(t->batch_cap, sizeof(*t->pbev));
    if ((window > 0 && !t->dedup) || !t->msgs || !t->bev || !t->pbev) {
        snprintf(errstr, errstr_size, "out of memory (trainer.dedup.window=%" PRId64 ")", window);
        goto fail;
    }
    t->model = sr_model_new(params, errstr, errstr_size);
    if (!t->model) goto fail;
    if (sr_trainer_state_init_(t, conf, errstr, errstr_size) != 0) goto fail;

    /* Consumer: offsets are ours (Redis), so nothing is committed or stored
     * automatically; Kafka's committed offsets are written after each
     * flush for monitoring. */
    rd_kafka_conf_t *kc = kafka_conf(conf, t, 0, errstr, errstr_size);
    if (!kc) goto fail;
    rd_kafka_conf_set_rebalance_cb(kc, rebalance_cb);
    if (set(kc, "group.id", t->group, errstr, errstr_size) ||
        set(kc, "enable.auto.commit", "false", errstr, errstr_size) ||
        set(kc, "enable.auto.offset.store", "false", errstr, errstr_size) ||
        set(kc, "auto.offset.reset", "earliest", errstr, errstr_size) ||
        set(kc, "client.id", "streamrec-trainer", errstr, errstr_size) ||
        /* Freshness: an idle fetch waits this long for new data (default
         * 500 ms would be most of the event->Redis budget). */
        set(kc, "fetch.wait.max.ms", "10", errstr, errstr_size) ||
        /* Catch-up speed: librdkafka 2.0 compares this per-partition
         * threshold with the group's one shared queue, so with the
         * default 100000 every partition stopped fetching as soon as one
         * fetch round (about 15k messages per partition) was queued, and
         * the broker thread slept until its next wakeup while we drained
         * it: the learning thread idled half the time on a backlog
         * (docs/BENCHMARKS.md, Trainer).  500000 is about a second of
         * the throughput target; it costs up to ~100 MB more while
         * catching up. */
        set(kc, "queued.min.messages", "500000", errstr, errstr_size)) {
        rd_kafka_conf_destroy(kc);
        goto fail;
    }
    /* Re-apply user overrides of the above (e.g. auto.offset.reset). */
    {
        struct kconf_ctx c = {0, kc, errstr, errstr_size};
        if (sr_conf_foreach(conf, "kafka.", apply_kafka_prop, &c) != 0) {
            rd_kafka_conf_destroy(kc);
            goto fail;
        }
    }
    t->rk = rd_kafka_new(RD_KAFKA_CONSUMER, kc, errstr, errstr_size);
    if (!t->rk) {
        rd_kafka_conf_destroy(kc);
        goto fail;
    }
    kc = NULL; /* owned by t->rk now */
    rd_kafka_poll_set_consumer(t->rk);
    t->q = rd_kafka_queue_get_consumer(t->rk);

    /* Producer for dead letters and metrics (consumer-only kafka.*
     * properties filtered out: librdkafka would warn about each). */
    rd_kafka_conf_t *pc = kafka_conf(conf, t, 1, errstr, errstr_size);
    if (!pc) goto fail;
    rd_kafka_conf_set_dr_msg_cb(pc, dr_cb);
    if (set(pc, "linger.ms", "5", errstr, errstr_size) ||
        set(pc, "client.id", "streamrec-trainer-dlq", errstr, errstr_size)) {
        rd_kafka_conf_destroy(pc);
        goto fail;
    }
    t->prod = rd_kafka_new(RD_KAFKA_PRODUCER, pc, errstr, errstr_size);
    if (!t->prod) {
        rd_kafka_conf_destroy(pc);
        goto fail;
    }
    if (sr_trainer_metrics_init_(t, conf, errstr, errstr_size) != 0) goto fail;
    return t;
fail:
    sr_trainer_destroy(t);
    return NULL;
}

void sr_trainer_destroy(sr_trainer_t *t)
{
    if (!t) return;
    /* The flusher thread wakes t->q: stop it before anything goes. */
    sr_trainer_state_stop_(t);
    if (t->rk && !t->closed) {
        rd_kafka_consumer_close(t->rk);
        t->closed = 1;
    }
    if (t->q) rd_kafka_queue_destroy(t->q);
    if (t->rk) rd_kafka_destroy(t->rk);
    sr_trainer_metrics_fini_(t);
    if (t->prod) {
        rd_kafka_flush(t->prod, 5000);
        rd_kafka_destroy(t->prod);
    }
    sr_trainer_state_fini_(t);
    sr_model_destroy(t->model);
    sr_dedup_destroy(t->dedup);
    free(t->msgs);
    free(t->bev);
    free(t->pbev);
    free(t->parts);
    free(t->scores);
    free(t->pending_ts);
    free(t->topic_events);
    free(t->topic_dlq);
    free(t->topic_metrics);
    free(t->group);
    free(t->instance);
    free(t);
}

/* ---- batch processing ------------------------------------------------ */

/* The original key and payload go to topic.dlq unchanged, with the reason
 * token in `sr-error`, the explanation in `sr-error-detail` and where it
 * came from in `sr-source` (topic/partition/offset).  Dead letters are
 * at-least-once: a crash before the next flush sends them again. */
static void dead_letter(sr_trainer_t *t, const rd_kafka_message_t *m, const char *reason,
                        const char *detail)
{
    char src[96];
    snprintf(src, sizeof(src), "%s/%" PRId32 "/%" PRId64, t->topic_events, m->partition,
             m->offset);
    t->stats.events_invalid++;
    for (int attempt = 0; attempt < 100; attempt++) {
        rd_kafka_resp_err_t e = rd_kafka_producev(
            t->prod, RD_KAFKA_V_TOPIC(t->topic_dlq), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_KEY(m->key, m->key_len), RD_KAFKA_V_VALUE(m->payload, m->len),
            RD_KAFKA_V_HEADER("sr-error", reason, -1),
            RD_KAFKA_V_HEADER("sr-error-detail", detail, -1),
            RD_KAFKA_V_HEADER("sr-source", src, -1),
            RD_KAFKA_V_OPAQUE((void *)1), RD_KAFKA_V_END);
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR) return;
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            t->stats.dlq_failed++;
            sr_log(SR_LOG_ERROR, "trainer: dead letter for %s (%s) not sent: %s", src, reason,
                   rd_kafka_err2str(e));
            return;
        }
        rd_kafka_poll(t->prod, 10);
    }
    t->stats.dlq_failed++;
}

/* 1 when one more live evaluation fits this second's budget.  One scores
 * every item (~36 us at 10,000 items, ~3.6 ms at 1M here), so 1 in 100 of
 * a fast stream is ~6% of the learning thread on a small catalogue and
 * more than all of it on a large one; a few hundred evaluations a second
 * give the same HR estimate.  The clock is read only when one is due. */
static int eval_budget(sr_trainer_t *t)
{
    if (t->eval_max_per_s <= 0) return 1;
    int64_t now = sr_mono_ms();
    if (now - t->eval_window_ms >= 1000) {
        t->eval_window_ms = now;
        t->eval_in_window = 0;
    }
    if (t->eval_in_window >= t->eval_max_per_s) return 0;
    t->eval_in_window++;
    return 1;
}

/* Rank of the true item among all known items, before learning it.  A
 * user without history or an item never seen cannot be ranked: the former
 * is skipped (cold start is the ranker's popularity fallback), the latter
 * counts as a miss. */
static void evaluate(sr_trainer_t *t, const sr_event_t *ev)
{
    int32_t u = sr_model_find_user(t->model, ev->user, ev->user_len);
    if (u < 0) return;
    uint32_t n = sr_model_n_items(t->model);
    if (n == 0) return;
    int32_t it = sr_model_find_item(t->model, ev->item, ev->item_len);
    t->stats.evaluated++;
    t->iv_evaluated++;
    if (it < 0) return;
    if (n > t->scores_cap) {
        size_t cap = t->scores_cap ? t->scores_cap : 1024;
        while (cap < n) cap *= 2;
        float *s = realloc(t->scores, cap * sizeof(float));
        if (!s) return;
        t->scores = s;
        t->scores_cap = cap;
    }
    sr_model_score_all(t->model, u, ev->ts_ms, t->scores);
    float s = t->scores[it];
    uint32_t rank = 0;
    for (uint32_t i = 0; i < n; i++)
        rank += t->scores[i] > s || (t->scores[i] == s && i < (uint32_t)it);
    if (rank < (uint32_t)t->eval_k) {
        double g = 1.0 / __builtin_log2((double)rank + 2.0);
        t->hits++;
        t->ndcg_sum += g;
        t->iv_hits++;
        t->iv_ndcg += g;
    }
}

static int push_pending_ts(sr_trainer_t *t, int64_t ts)
{
    if (t->n_pending == t->pending_cap) {
        size_t cap = t->pending_cap ? t->pending_cap * 2 : 4096;
        int64_t *p = realloc(t->pending_ts, cap * sizeof(int64_t));
        if (!p) return SR_ERR_NOMEM;
        t->pending_ts = p;
        t->pending_cap = cap;
    }
    t->pending_ts[t->n_pending++] = ts;
    return 0;
}

/* Decodes and validates one message.  On failure *reason is a stable
 * token (sr_event_reason_name, or "key_mismatch") and detail says more. */
static int decode(sr_trainer_t *t, const rd_kafka_message_t *m, sr_trainer_bev_t *b,
                  int64_t now_wall, const char **reason, char *detail, size_t detail_size)
{
    sr_event_wire_t w;
    sr_event_reason_t r = SR_EVENT_OK;
    sr_event_limits_t lim = {.min_ts_ms = t->min_ts_ms, .max_future_ms = t->max_future_ms};
    detail[0] = 0;
    int rc = sr_event_decode(m->payload, m->payload ? m->len : 0, &lim, now_wall, &w, &r, detail,
                             detail_size);
    if (rc != 0) {
        *reason = sr_event_reason_name(r);
        return rc;
    }
    /* Users are owned by partition because the key is the user id; an
     * event keyed otherwise sits in the wrong partition, and applying it
     * would race the user's owner. */
    if (m->key && (m->key_len != w.ev.user_len || memcmp(m->key, w.ev.user, m->key_len) != 0)) {
        *reason = "key_mismatch";
        snprintf(detail, detail_size, "Kafka key is not the event's user id");
        return SR_ERR_INVAL;
    }
    b->ev = w.ev;
    /* Without an event id, the event's content is its identity. */
    if (w.ev.id_hash) {
        b->dedup_key = w.ev.id_hash;
    } else {
        uint64_t h = sr_hash64(w.ev.user, w.ev.user_len, (uint64_t)w.ev.ts_ms);
        h = sr_hash64(w.ev.item, w.ev.item_len, h ^ (uint64_t)w.ev.type);
        b->dedup_key = h;
    }
    return 0;
}

/* Everything fetched so far is in the model (or needed no learning). */
static void learned_all(sr_trainer_t *t)
{
    for (size_t i = 0; i < t->n_parts; i++) t->parts[i].learned = t->parts[i].next;
}

static int flush_collect(sr_trainer_t *t, int block);

/* Applies a finished flush and starts the next one when it is due.
 * Neither waits for Redis: the flusher thread writes while we learn. */
static int flush_point(sr_trainer_t *t, int64_t now)
{
    int rc = flush_collect(t, 0);
    if (rc < 0) return rc;
    if (!sr_trainer_flush_busy_(t) && t->dirty && now - t->last_flush_ms >= t->flush_interval_ms)
        return sr_trainer_flush_begin_(t);
    return 0;
}

/* Decodes, validates and dedups the batch into t->bev, sends the bad ones
 * to the DLQ, warm-loads what the batch needs, then evaluates and learns
 * in order.  Messages stay alive until the caller destroys them (the
 * events point into their payloads). */
static int process_batch(sr_trainer_t *t, rd_kafka_message_t **msgs, size_t n)
{
    size_t nev = 0, npre = 0;
    int64_t now_wall = sr_wall_ms();
    for (size_t i = 0; i < n; i++) {
        rd_kafka_message_t *m = msgs[i];
        if (m->err) {
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                sr_log(SR_LOG_WARN, "trainer: consume: %s", rd_kafka_message_errstr(m));
            continue;
        }
        sr_tpart_t *p = sr_trainer_part_(t, m->partition, 0);
        /* Not ours any more, or already applied (a replayed fetch after a
         * seek): ignoring these is half of exactly-once. */
        if (!p || !p->assigned || m->offset < p->next) continue;
        if (p->resync) {
            if (m->offset != p->next) continue; /* fetched before the seek */
            p->resync = 0;
        }
        p->seen = 1;
        sr_trainer_bev_t *b = &t->bev[nev];
        const char *reason = NULL;
        char detail[200];
        int rc = decode(t, m, b, now_wall, &reason, detail, sizeof(detail));
        if (m->offset < p->apply_from) {
            /* Dedup replay below the stored offset: remember, never apply. */
            if (rc == 0 && t->dedup) sr_dedup_check_insert(t->dedup, b->dedup_key);
            /* The users active last on this partition are likely the next
             * ones: load them now, batched, not one round trip per live
             * batch behind our flushes (trainer.preload.events). */
            if (rc == 0 && m->offset >= p->apply_from - t->preload_events) t->pbev[npre++] = *b;
            p->next = m->offset + 1;
            continue;
        }
        if (!t->first_event_ms) t->first_event_ms = sr_mono_ms();
        t->stats.events_in++;
        t->iv_in++;
        p->next = m->offset + 1;
        if (rc != 0) {
            dead_letter(t, m, reason, detail);
            continue;
        }
        if (t->dedup && sr_dedup_check_insert(t->dedup, b->dedup_key)) {
            t->stats.events_duplicate++;
            continue;
        }
        b->partition = m->partition;
        sr_qhist_add(&t->arrive_all, now_wall - b->ev.ts_ms);
        nev++;
    }
    int rc;
    int64_t l0 = sr_mono_ms();
    while (npre > 0 && (rc = sr_trainer_warm_load_(t, t->pbev, npre)) != 0) {
        if (rc != SR_ERR_UNAVAIL || sr_trainer_backoff_(t, "loading state") != 0) return rc;
    }
    if (nev == 0) {
        t->stats.load_s += (double)(sr_mono_ms() - l0) / 1000.0;
        learned_all(t);
        return 0;
    }
    while ((rc = sr_trainer_warm_load_(t, t->bev, nev)) != 0) {
        if (rc != SR_ERR_UNAVAIL || sr_trainer_backoff_(t, "loading state") != 0) return rc;
    }
    t->backoff_ms = 0;
    t->stats.load_s += (double)(sr_mono_ms() - l0) / 1000.0;
    /* The warm load ran while Redis was free of our flush script (or
     * waited for it): a good moment to start the next flush, which then
     * overlaps learning this batch.  Its snapshot records `learned`
     * offsets, which do not include this batch yet. */
    if ((rc = flush_point(t, sr_mono_ms())) != 0) return rc;
    /* A fenced flush dropped the state: this batch belongs to the old
     * one; the partitions go back to Redis's offsets (reseek). */
    if (t->need_reseek) return 0;
    int busy = sr_trainer_flush_busy_(t);
    for (size_t i = 0; i < nev; i++) {
        const sr_event_t *ev = &t->bev[i].ev;
        if (t->eval_every > 0 && ++t->eval_counter >= t->eval_every) {
            t->eval_counter = 0;
            if (eval_budget(t)) evaluate(t, ev);
        }
        sr_learn_result_t res;
        rc = sr_model_learn(t->model, ev, &res);
        if (rc != 0) {
            /* The codec accepted it, so this is the model refusing (e.g.
             * out of memory): not the input's fault, and skipping it would
             * lose an event.  Stop without flushing past it. */
            sr_log(SR_LOG_ERROR, "trainer: learn failed: %s", sr_strerror(rc));
            return rc;
        }
        if (res.new_user && sr_trainer_mark_user_(t, res.user) != 0) return SR_ERR_NOMEM;
        if (busy) t->stats.events_while_flushing++;
        t->loss_sum += res.loss;
        t->iv_loss += res.loss;
        t->iv_learned++;
        t->stats.events_applied++;
        if (push_pending_ts(t, ev->ts_ms) != 0) return SR_ERR_NOMEM;
    }
    t->dirty = 1;
    learned_all(t);
    return 0;
}

/* Sleeps with doubling backoff; 0 to retry, SR_ERR_UNAVAIL when stopping. */
int sr_trainer_backoff_(sr_trainer_t *t, const char *what)
{
    t->stats.flush_retries++;
    if (t->backoff_ms <= 0) t->backoff_ms = 50;
    else if (t->backoff_ms < 2000) t->backoff_ms *= 2;
    if (t->backoff_ms > 2000) t->backoff_ms = 2000;
    sr_log(SR_LOG_WARN, "trainer: redis unavailable while %s; retrying in %" PRId64 " ms", what,
           t->backoff_ms);
    int64_t until = sr_mono_ms() + t->backoff_ms;
    while (sr_mono_ms() < until) {
        if (t->stop && *t->stop) return SR_ERR_UNAVAIL;
        struct timespec ts = {0, 10 * 1000000};
        nanosleep(&ts, NULL);
    }
    return (t->stop && *t->stop) ? SR_ERR_UNAVAIL : 0;
}

/* Completes the in-flight flush, if any: waits for it (block) or returns 1
 * while it still runs.  A failed attempt (Redis down) is retried with the
 * same snapshot after a backoff, and nothing is consumed meanwhile; when
 * stopping, gives up with SR_ERR_UNAVAIL (the caller drops the state). */
static int flush_collect(sr_trainer_t *t, int block)
{
    int rc;
    while ((rc = sr_trainer_flush_end_(t, block)) == SR_ERR_UNAVAIL) {
        if (sr_trainer_backoff_(t, "flushing") != 0) return SR_ERR_UNAVAIL;
        if ((rc = sr_trainer_flush_resubmit_(t)) != 0) return rc;
    }
    if (rc == 0) t->backoff_ms = 0;
    return rc;
}

/* Everything learned so far goes to Redis: waits for the in-flight flush,
 * then flushes the rest and waits for that too. */
int sr_trainer_flush_retry_(sr_trainer_t *t)
{
    int rc = flush_collect(t, 1);
    if (rc != 0 || !t->dirty) return rc;
    if ((rc = sr_trainer_flush_begin_(t)) != 0) return rc;
    return flush_collect(t, 1);
}

/* After sr_trainer_drop_state_ while still assigned (a fenced flush):
 * every assigned partition goes back to its offset in Redis, as after a
 * crash. */
static int reseek(sr_trainer_t *t)
{
    size_t n = 0;
    for (size_t i = 0; i < t->n_parts; i++) n += t->parts[i].assigned;
    t->need_reseek = 0;
    if (n == 0) return 0;
    int32_t *ids = malloc(n * sizeof(int32_t));
    int64_t *offs = malloc(n * sizeof(int64_t));
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)n);
    int rc = ids && offs ? 0 : SR_ERR_NOMEM;
    n = 0;
    for (size_t i = 0; rc == 0 && i < t->n_parts; i++)
        if (t->parts[i].assigned) ids[n++] = t->parts[i].partition;
    while (rc == 0 && (rc = sr_trainer_load_offsets_(t, ids, n, offs)) != 0)
        if (sr_trainer_backoff_(t, "reading stored offsets") != 0) break;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        sr_tpart_t *p = sr_trainer_part_(t, ids[i], 0);
        int64_t start = sr_trainer_start_offset_(t, p, offs[i]);
        p->resync = start >= 0;
        rd_kafka_topic_partition_list_add(l, t->topic_events, ids[i])->offset = start;
    }
    if (rc == 0) {
        rd_kafka_error_t *e = rd_kafka_seek_partitions(t->rk, l, 5000);
        if (e) {
            sr_log(SR_LOG_ERROR, "trainer: seek: %s", rd_kafka_error_string(e));
            rd_kafka_error_destroy(e);
            rc = SR_ERR_KAFKA;
        }
    }
    rd_kafka_topic_partition_list_destroy(l);
    free(ids);
    free(offs);
    return rc;
}

/* ---- the loop -------------------------------------------------------- */

int sr_trainer_run(sr_trainer_t *t, volatile sig_atomic_t *stop)
{
    static volatile sig_atomic_t never;
    t->stop = stop ? stop : &never;
    rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(sub, t->topic_events, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(t->rk, sub);
    rd_kafka_topic_partition_list_destroy(sub);
    if (e) {
        sr_log(SR_LOG_ERROR, "trainer: subscribe to %s: %s", t->topic_events, rd_kafka_err2str(e));
        return SR_ERR_KAFKA;
    }
    int64_t start = sr_mono_ms();
    t->run_start_ms = start;
    t->last_flush_ms = start;
    t->last_metrics_ms = start;
    t->idle_since = start;
    int rc = 0;
    sr_log(SR_LOG_INFO, "trainer %s: consuming %s in group %s", t->instance, t->topic_events,
           t->group);
    while (!*t->stop && !t->fatal) {
        int64_t now = sr_mono_ms();
        if ((rc = flush_point(t, now)) != 0) break;
        int busy = sr_trainer_flush_busy_(t);
        if (t->need_reseek && (rc = reseek(t)) != 0) break;
        if (t->metrics_interval_ms > 0 && now - t->last_metrics_ms >= t->metrics_interval_ms) {
            sr_trainer_metrics_publish_(t);
            t->last_metrics_ms = now;
        }
        if (t->opts.max_events > 0 && t->stats.events_applied >= t->opts.max_events) break;
        if (t->opts.exit_when_idle_ms > 0 && t->assigned_once &&
            now - t->idle_since >= t->opts.exit_when_idle_ms)
            break;
        /* Wait at most until the next flush is due, so a quiet stream is
         * still flushed on time (freshness).  A flush in flight ends the
         * wait when it is done (the flusher yields the queue). */
        int64_t wait = t->dirty && !busy ? t->last_flush_ms + t->flush_interval_ms - now : 100;
        if (wait > (busy ? 20 : 100)) wait = busy ? 20 : 100;
        if (wait < 0) wait = 0;
        /* Wait for the first message only, then take what is already
         * queued: consume_batch_queue waits for a full batch, so at
         * 50,000 events/s an event sat up to 20 ms in it for 999 others
         * (most of the consumer-side arrival time).  Under load the
         * batches still come full from the queue. */
        ssize_t n = rd_kafka_consume_batch_queue(t->q, (int)wait, t->msgs, 1);
        if (n == 1 && t->batch_size > 1) {
            ssize_t m = rd_kafka_consume_batch_queue(t->q, 0, t->msgs + 1, t->batch_size - 1);
            if (m > 0) n += m;
        }
        /* Backlog (a full batch): take what is already fetched, up to
         * batch_cap messages, without waiting. */
        while (n > 0 && (size_t)n % t->batch_size == 0 && (size_t)n < t->batch_cap) {
            ssize_t m = rd_kafka_consume_batch_queue(t->q, 0, t->msgs + n, t->batch_size);
            if (m <= 0) break;
            n += m;
        }
        if (n < 0) {
            sr_log(SR_LOG_ERROR, "trainer: consume: %s", rd_kafka_err2str(rd_kafka_last_error()));
            rc = SR_ERR_KAFKA;
            break;
        }
        int got = 0;
        for (ssize_t i = 0; i < n; i++)
            if (!t->msgs[i]->err) got = 1;
        if (got) t->idle_since = sr_mono_ms();
        if (n > 0) rc = process_batch(t, t->msgs, (size_t)n);
        for (ssize_t i = 0; i < n; i++) rd_kafka_message_destroy(t->msgs[i]);
        if (rc != 0) break;
        rd_kafka_poll(t->prod, 0);
    }
    /* Graceful end: wait for the in-flight flush and write the rest, then
     * leave the group so our partitions move immediately (the revoke
     * callback flushes again, which is then a no-op). */
    if (rc == 0) rc = sr_trainer_flush_retry_(t);
    if (rc != 0 && rc != SR_ERR_UNAVAIL)
        sr_log(SR_LOG_ERROR, "trainer: stopping on error: %s", sr_strerror(rc));
    if (rc != 0) sr_trainer_drop_state_(t); /* do not flush a possibly partial batch */
    sr_trainer_metrics_publish_(t);
    rd_kafka_consumer_close(t->rk);
    t->closed = 1;
    rd_kafka_flush(t->prod, 5000);
    t->stats.elapsed_s = (double)(sr_mono_ms() - start) / 1000.0;
    sr_log(SR_LOG_INFO,
           "trainer %s: stopped: in %" PRId64 " applied %" PRId64 " duplicate %" PRId64
           " invalid %" PRId64 " flushes %" PRId64,
           t->instance, t->stats.events_in, t->stats.events_applied, t->stats.events_duplicate,
           t->stats.events_invalid, t->stats.flushes);
    if (t->fatal && rc == 0) rc = SR_ERR_KAFKA;
    return rc;
}

void sr_trainer_get_stats(const sr_trainer_t *t, sr_trainer_stats_t *out)
{
    *out = t->stats;
    out->live_hr = t->stats.evaluated ? (double)t->hits / (double)t->stats.evaluated : 0;
    out->live_ndcg = t->stats.evaluated ? t->ndcg_sum / (double)t->stats.evaluated : 0;
    out->freshness_p50_ms = (double)sr_qhist_quantile(&t->fresh_all, 0.5);
    out->freshness_p99_ms = (double)sr_qhist_quantile(&t->fresh_all, 0.99);
    out->arrival_p50_ms = (double)sr_qhist_quantile(&t->arrive_all, 0.5);
    out->arrival_p99_ms = (double)sr_qhist_quantile(&t->arrive_all, 0.99);
    if (t->first_event_ms && t->last_data_flush_ms > t->first_event_ms)
        out->active_s = (double)(t->last_data_flush_ms - t->first_event_ms) / 1000.0;
    if (out->elapsed_s == 0 && t->run_start_ms)
        out->elapsed_s = (double)(sr_mono_ms() - t->run_start_ms) / 1000.0;
}

const sr_model_t *sr_trainer_model(const sr_trainer_t *t) { return t->model; }

static int write_file(void *opaque, const void *buf, size_t len)
{
    return fwrite(buf, 1, len, (FILE *)opaque) == len ? 0 : SR_ERR_IO;
}

int sr_trainer_save_snapshot(const sr_trainer_t *t, const char *path)
{
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) return SR_ERR_IO;
    int rc = sr_model_save(t->model, write_file, f);
    if (fclose(f) != 0 && rc == 0) rc = SR_ERR_IO;
    if (rc == 0 && rename(tmp, path) != 0) rc = SR_ERR_IO;
    if (rc != 0) unlink(tmp);
    return rc;
}
