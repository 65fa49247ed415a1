/* The streaming trainer (`streamrec train`, DESIGN.md §1 and §6): a Kafka
 * consumer-group member that turns the `events` topic into model state in
 * Redis, exactly once.
 *
 * What one trainer does, in order, for every batch it consumes:
 *   1. decode and validate each message (producers/sr_event_codec.h); a bad
 *      one goes to topic.dlq with the reason in the `sr-error` header and
 *      its original key and payload, and is counted as invalid;
 *   2. drop event ids already seen in the bounded dedup window
 *      (trainer.dedup.window);
 *   3. load the users and items of the batch that this process has not seen
 *      since it started (or since its assignment last changed) from Redis,
 *      in one batched read;
 *   4. every trainer.eval.every-th event, rank the true item before learning
 *      it (live prequential HR@K / NDCG@K, K = trainer.eval.k), then learn.
 * Every trainer.flush.interval.ms it writes, in ONE atomic Redis step
 * (store/sr_store.h), the state touched since the last flush together with
 * the next offset of every partition that state covers.  The write runs on
 * a flusher thread from a snapshot while consuming and learning go on; at
 * most one flush is in flight, and the next one carries everything touched
 * meanwhile (so flushes grow under backlog instead of stalling it).  On every
 * assignment it seeks to the offsets stored in Redis, so a crash at any
 * point neither loses nor double-applies an event: what was not flushed is
 * replayed, what was flushed is skipped.  Kafka's committed offsets are
 * written asynchronously after each flush for monitoring only.
 *
 * Users belong to their partition (Kafka key = user id) and so to one
 * trainer; items are shared by all trainers of the group and are merged in
 * Redis as deltas (push the delta, read back the merged value).
 *
 * The reference loop, as cmd/cmd_train.c uses it:
 *
 *     static volatile sig_atomic_t stop;       // set by SIGINT/SIGTERM
 *     sr_trainer_opts_t o;
 *     sr_trainer_opts_init(&o);                // no idle exit, no snapshot
 *     o.exit_when_idle_ms = 2000;              // tests: end of a full topic
 *     sr_trainer_t *t = sr_trainer_new(conf, &params, &o, errstr, sizeof errstr);
 *     if (!t) { fprintf(stderr, "%s\n", errstr); return 1; }
 *     int rc = sr_trainer_run(t, &stop);       // consume, learn, flush
 *     // run() returned: the last flush is written and the consumer closed
 *     // (it left the group, so its partitions move at once, not after a
 *     // session timeout); the handle can still report and save.
 *     sr_trainer_save_snapshot(t, "model.bin");  // optional
 *     sr_trainer_destroy(t);
 *
 * Threading: one application thread owns a trainer and calls every
 * function below.  librdkafka's rebalance callback runs on that same
 * thread, inside sr_trainer_run (it is served by the consume call), and is
 * where the trainer waits for the in-flight flush and flushes the rest
 * before partitions are revoked.  The trainer starts one internal flusher
 * thread (with its own Redis connection) that only writes snapshots; it
 * never calls back into the application and is joined by
 * sr_trainer_destroy.  Only the `stop` flag may be written from elsewhere
 * (a signal handler).
 *
 * Errors: 0 or a negative SR_ERR_* (common/sr_err.h). */
#ifndef SR_TRAINER_H
#define SR_TRAINER_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "sr_config.h"
#include "sr_model.h"

typedef struct sr_trainer_s sr_trainer_t;

typedef struct sr_trainer_opts {
    /* > 0: once at least one assignment was received, return from
     * sr_trainer_run after this long without a consumed message (tests and
     * benchmarks run a trainer to the end of a pre-filled topic). */
    int64_t exit_when_idle_ms;
    /* > 0: return after this many events were applied (then flush). */
    int64_t max_events;
    /* Label for logs and the metrics key; NULL = metrics.instance, or
     * host:pid when that is empty.  Copied. */
    const char *instance;
} sr_trainer_opts_t;

void sr_trainer_opts_init(sr_trainer_opts_t *o);

/* Counters since the trainer was created (the metrics snapshot reports the
 * same). */
typedef struct sr_trainer_stats {
    int64_t events_in;        /* messages consumed past the stored offsets */
    int64_t events_applied;   /* learned */
    int64_t events_duplicate; /* dropped by the dedup window */
    int64_t events_invalid;   /* sent to the DLQ */
    int64_t dlq_failed;       /* DLQ deliveries that failed */
    int64_t flushes;          /* successful atomic flushes */
    int64_t flush_retries;    /* failed flush / load attempts (Redis down) */
    int64_t flush_tx_aborts;  /* flush transactions another trainer's flush aborted
                               * (each retried; docs/REDIS.md "The atomic flush") */
    int64_t flushes_by_script; /* flushes written by the Lua script: redis.flush =
                                * script, or after SR_STORE_TX_ATTEMPTS aborts */
    int64_t users_loaded;     /* warm loads that found state in Redis */
    int64_t items_loaded;
    int64_t items_delta_merged; /* flushed items Redis merged with another writer's delta */
    int64_t evaluated;        /* live prequential evaluations */
    double live_hr, live_ndcg;
    double freshness_p50_ms, freshness_p99_ms; /* event ts -> Redis write */
    double arrival_p50_ms, arrival_p99_ms;     /* event ts -> consumed by the trainer */
    int64_t rebalances;
    double elapsed_s;        /* wall time inside sr_trainer_run */
    double flush_s;          /* time flushes were being written (incl. failed
                              * attempts); they overlap learning */
    double flush_wait_s;     /* time this thread waited for a flush to end
                              * (revoke, shutdown, Redis down) */
    int64_t events_while_flushing; /* events learned while a flush was in flight */
    double load_s;           /* time inside warm loads */
    double active_s;         /* first consumed event -> last flush that wrote events */
} sr_trainer_stats_t;

/* Creates the trainer: a model from params, a consumer for topic.events in
 * group trainer.group.id (every kafka.* property of conf is passed to
 * librdkafka), a producer for topic.dlq / topic.metrics, and a store
 * connection (redis.url, redis.prefix).  conf and params are read during
 * the call only.  Returns NULL with errstr set on bad config, ENOMEM or a
 * Redis schema mismatch; an unreachable Redis is not an error here (run
 * waits for it). */
sr_trainer_t *sr_trainer_new(const sr_conf_t *conf, const sr_model_params_t *params,
                             const sr_trainer_opts_t *opts, char *errstr, size_t errstr_size);

/* Consumes until *stop becomes non-zero, the idle or event limit is hit,
 * or a fatal Kafka error.  Then flushes what is pending and closes the
 * consumer (rd_kafka_consumer_close), which revokes the partitions through
 * the rebalance callback.  Redis down: flushes and warm loads are retried
 * with backoff (50 ms doubling to 2 s) and nothing more is consumed until
 * they succeed; when stop is requested while Redis is still down, the
 * trainer gives up the unflushed state (its events are replayed by the
 * next owner) and returns SR_ERR_UNAVAIL.  Returns 0 after a clean stop.
 * Call once per trainer. */
int sr_trainer_run(sr_trainer_t *t, volatile sig_atomic_t *stop);

/* Copies the counters; valid at any time on the owner thread. */
void sr_trainer_get_stats(const sr_trainer_t *t, sr_trainer_stats_t *out);

/* The in-memory model (read-only; valid until destroy).  For snapshots
 * and tests. */
const sr_model_t *sr_trainer_model(const sr_trainer_t *t);

/* Writes the in-memory model snapshot (sr_model_save) to path (replaced
 * atomically via a temp file).  0 or SR_ERR_IO. */
int sr_trainer_save_snapshot(const sr_trainer_t *t, const char *path);

/* Closes the consumer if run did not, destroys everything.  NULL no-op. */
void sr_trainer_destroy(sr_trainer_t *t);

#endif
