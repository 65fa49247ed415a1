/* Internals shared by trainer.c (Kafka side) and trainer_state.c (Redis
 * and model side) of the trainer.  Not installed; not for other modules.
 * Everything here runs on the trainer's owner thread; trainer_state.c's
 * flusher thread sees only its own flush job (never the model or this
 * struct). */
#ifndef SR_TRAINER_INT_H
#define SR_TRAINER_INT_H

#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "sr_dedup.h"
#include "sr_metrics_pub.h"
#include "sr_qhist.h"
#include "sr_time.h"
#include "sr_trainer.h"

/* One partition of topic.events as this trainer sees it. */
typedef struct sr_tpart {
    int32_t partition;
    int assigned;
    int seen;           /* a message arrived since assignment */
    int resync;         /* after a seek: ignore prefetched messages until offset == next */
    int64_t next;       /* next offset expected from the fetcher */
    int64_t learned;    /* every offset below this is in the model (or needs
                         * nothing): what a flush snapshot may record */
    int64_t apply_from; /* offsets below this were applied by a flush: replay only */
    int64_t flushed;    /* next offset last written to Redis */
    int64_t hwm;        /* high watermark at the last metrics snapshot */
} sr_tpart_t;

/* The offset a flush records for p: never below what Redis already has. */
static inline int64_t sr_tpart_commit_offset(const sr_tpart_t *p)
{
    return p->learned > p->apply_from ? p->learned : p->apply_from;
}

/* Under backlog, up to this many messages (or one trainer.batch.size
 * when that is larger) are taken in consecutive consume calls and
 * processed as one batch: one warm load from Redis instead of many, each of
 * which may wait for the flush script that is running (64k instead of 16k
 * took the warm-load waits of the throughput benchmark from 0.46 to
 * 0.15 s). */
#define SR_TRAINER_READ_AHEAD 65536

/* One decoded event of the current batch. */
typedef struct sr_trainer_bev {
    sr_event_t ev;
    uint64_t dedup_key;
    int32_t partition;
} sr_trainer_bev_t;

struct sr_trainer_state_s; /* trainer_state.c */

struct sr_trainer_s {
    sr_trainer_opts_t opts;
    char *topic_events, *topic_dlq, *topic_metrics, *group, *instance;
    int64_t flush_interval_ms, metrics_interval_ms, eval_every, eval_max_per_s, min_ts_ms, max_future_ms;
    int64_t dedup_replay;
    int64_t preload_events; /* per partition, of the replay (trainer.preload.events) */
    size_t batch_size;
    size_t batch_cap; /* messages per processed batch (read-ahead included) */
    int eval_k;

    rd_kafka_t *rk, *prod;
    rd_kafka_queue_t *q;
    int closed, fatal, assigned_once;
    int dirty; /* something was learned since the last flush snapshot */
    int need_reseek; /* state was dropped while assigned: seek to Redis again */
    volatile sig_atomic_t *stop;

    sr_model_t *model;
    sr_dedup_t *dedup;
    struct sr_trainer_state_s *st;

    sr_tpart_t *parts; /* indexed by partition number */
    size_t n_parts;
    uint32_t user_gen; /* bumped on every rebalance: users must be reloaded */

    rd_kafka_message_t **msgs; /* batch_cap */
    sr_trainer_bev_t *bev;
    sr_trainer_bev_t *pbev; /* batch_cap: replayed events whose users are preloaded */

    float *scores;
    size_t scores_cap;
    int64_t eval_counter;
    int64_t eval_window_ms, eval_in_window; /* the eval_max_per_s budget's current second */
    int64_t hits;
    double ndcg_sum, loss_sum;

    int64_t *pending_ts; /* event ts of everything applied since the last snapshot */
    size_t n_pending, pending_cap;

    /* current metrics interval */
    int64_t iv_in, iv_learned, iv_evaluated, iv_hits;
    double iv_loss, iv_ndcg;
    sr_qhist_t arrive_all; /* event ts -> consumed, ms: the Kafka part of freshness */
    sr_qhist_t fresh_iv, fresh_all, flush_ms_iv, flush_keys_iv; /* ms, ms, ms, keys */
    sr_metrics_pub_t *pub;

    int64_t first_event_ms, last_data_flush_ms;
    int64_t run_start_ms, last_flush_ms, last_metrics_ms, idle_since, backoff_ms;
    sr_trainer_stats_t stats;
};

sr_tpart_t *sr_trainer_part_(sr_trainer_t *t, int32_t partition, int create);
int sr_trainer_backoff_(sr_trainer_t *t, const char *what);
int sr_trainer_flush_retry_(sr_trainer_t *t);

/* trainer_state.c: Redis and model state. */
int sr_trainer_state_init_(sr_trainer_t *t, const sr_conf_t *conf, char *errstr,
                           size_t errstr_size);
void sr_trainer_state_fini_(sr_trainer_t *t);
/* Start offset of partition p from its stored offset (dedup replay);
 * sets p's bookkeeping as for a fresh assignment. */
int64_t sr_trainer_start_offset_(sr_trainer_t *t, sr_tpart_t *p, int64_t stored);
/* offs[i] = stored next offset of partition ids[i], -1 if none. */
int sr_trainer_load_offsets_(sr_trainer_t *t, const int32_t *ids, size_t n, int64_t *offs);
/* Loads from Redis every user / item of bev[0..n) not loaded since the
 * last rebalance / start, in one batched read.  SR_ERR_UNAVAIL: retry. */
int sr_trainer_warm_load_(sr_trainer_t *t, const sr_trainer_bev_t *bev, size_t n);
/* The start-up load of every item and the global state (which the first
 * warm load otherwise does), done when partitions are assigned: about
 * 100 ms for 20,000 items that the first events would wait for.  Best
 * effort: a failure is left to the warm load, which retries it. */
void sr_trainer_preload_(sr_trainer_t *t);
/* Marks dense user u as current (a user created by learn has nothing in
 * Redis to reload). */
int sr_trainer_mark_user_(sr_trainer_t *t, int32_t u);
/* The flush pipeline: at most one flush in flight, written by a flusher
 * thread with its own Redis connection while this thread goes on learning.
 * begin: snapshot the dirty state + the partition offsets it corresponds
 * to and hand it over (0 when nothing is dirty; SR_ERR_STATE when one is
 * already in flight).  end: apply the in-flight flush's result (merged
 * items, bases, flushed offsets): 0 when applied or none in flight, 1 when
 * !block and it still runs, SR_ERR_UNAVAIL when the attempt failed and the
 * same snapshot must be resubmitted (or the state dropped), another error
 * otherwise.  A fenced flush drops the state itself and returns 0. */
int sr_trainer_flush_busy_(const sr_trainer_t *t);
int sr_trainer_flush_begin_(sr_trainer_t *t);
int sr_trainer_flush_end_(sr_trainer_t *t, int block);
int sr_trainer_flush_resubmit_(sr_trainer_t *t);
/* Stops the flusher thread (after the job it may be writing). */
void sr_trainer_state_stop_(sr_trainer_t *t);
/* Forgets everything not flushed (after waiting for an in-flight flush):
 * the model is rebuilt empty and every partition re-seeks to Redis on its
 * next assignment (as after a crash). */
void sr_trainer_drop_state_(sr_trainer_t *t);

/* trainer_metrics.c */
int sr_trainer_metrics_init_(sr_trainer_t *t, const sr_conf_t *conf, char *errstr,
                             size_t errstr_size);
void sr_trainer_metrics_fini_(sr_trainer_t *t);
void sr_trainer_metrics_publish_(sr_trainer_t *t);

#endif
