/* The trainer's metrics snapshot (proto/metrics.proto) on topic.metrics,
 * every metrics.interval.ms, through producers/sr_metrics_pub.h on the
 * trainer's own producer.  Counters are since start; loss, freshness and
 * flush quantiles cover the interval since the previous snapshot; live
 * HR/NDCG are since start (a few hundred evaluations per interval would
 * make an interval value noise). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "sr_err.h"
#include "sr_log.h"
#include "trainer_int.h"

int sr_trainer_metrics_init_(sr_trainer_t *t, const sr_conf_t *conf, char *errstr,
                             size_t errstr_size)
{
    if (!sr_conf_bool(conf, "metrics.enable")) {
        t->metrics_interval_ms = 0;
        return 0;
    }
    t->pub = sr_metrics_pub_new(conf, t->prod, "trainer", errstr, errstr_size);
    if (!t->pub) return SR_ERR_KAFKA;
    sr_metrics_pub_set_instance(t->pub, t->instance); /* --instance wins over the conf */
    return 0;
}

void sr_trainer_metrics_fini_(sr_trainer_t *t)
{
    if (t->pub) sr_metrics_pub_destroy(t->pub);
    t->pub = NULL;
}

static int64_t rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return 0;
    long long size = 0, res = 0;
    int ok = fscanf(f, "%lld %lld", &size, &res) == 2;
    fclose(f);
    return ok ? res * (int64_t)sysconf(_SC_PAGESIZE) : 0;
}

static void to_proto(const sr_qhist_t *h, Streamrec__V1__Quantiles *q)
{
    q->p50 = (double)sr_qhist_quantile(h, 0.5);
    q->p99 = (double)sr_qhist_quantile(h, 0.99);
    q->max = (double)h->max;
    q->count = (int64_t)h->count;
}

void sr_trainer_metrics_publish_(sr_trainer_t *t)
{
    if (!t->pub) return;
    int64_t now = sr_mono_ms();
    Streamrec__V1__MetricsSnapshot s = STREAMREC__V1__METRICS_SNAPSHOT__INIT;
    Streamrec__V1__Quantiles fresh = STREAMREC__V1__QUANTILES__INIT;
    Streamrec__V1__Quantiles fms = STREAMREC__V1__QUANTILES__INIT;
    Streamrec__V1__Quantiles fkeys = STREAMREC__V1__QUANTILES__INIT;
    s.interval_s = (double)(now - t->last_metrics_ms) / 1000.0;
    s.events_in = t->stats.events_in;
    s.events_applied = t->stats.events_applied;
    s.events_duplicate = t->stats.events_duplicate;
    s.events_invalid = t->stats.events_invalid;

    size_t n_assigned = 0;
    for (size_t i = 0; i < t->n_parts; i++) n_assigned += t->parts[i].assigned;
    Streamrec__V1__PartitionLag *lag = calloc(n_assigned ? n_assigned : 1, sizeof(*lag));
    Streamrec__V1__PartitionLag **lagp = calloc(n_assigned ? n_assigned : 1, sizeof(*lagp));
    if (lag && lagp) {
        size_t k = 0;
        for (size_t i = 0; i < t->n_parts; i++) {
            sr_tpart_t *p = &t->parts[i];
            if (!p->assigned) continue;
            streamrec__v1__partition_lag__init(&lag[k]);
            int64_t lo = 0, hi = -1;
            /* Cached by the fetcher: no broker round trip here. */
            if (rd_kafka_get_watermark_offsets(t->rk, t->topic_events, p->partition, &lo, &hi) ==
                    RD_KAFKA_RESP_ERR_NO_ERROR &&
                hi >= 0)
                p->hwm = hi;
            int64_t next = sr_tpart_commit_offset(p);
            lag[k].partition = p->partition;
            lag[k].next_offset = next;
            lag[k].high_watermark = p->hwm;
            lag[k].lag = p->hwm > next ? p->hwm - next : 0;
            lagp[k] = &lag[k];
            k++;
        }
        s.n_lag = k;
        s.lag = lagp;
    }
    s.learn_loss = t->iv_learned ? t->iv_loss / (double)t->iv_learned : 0;
    s.live_hr = t->stats.evaluated ? (double)t->hits / (double)t->stats.evaluated : 0;
    s.live_ndcg = t->stats.evaluated ? t->ndcg_sum / (double)t->stats.evaluated : 0;
    s.live_k = t->eval_k;
    s.live_evaluated = t->stats.evaluated;
    to_proto(&t->fresh_iv, &fresh);
    to_proto(&t->flush_ms_iv, &fms);
    to_proto(&t->flush_keys_iv, &fkeys);
    s.freshness_ms = &fresh;
    s.flush_ms = &fms;
    s.flush_keys = &fkeys;
    s.flushes = t->stats.flushes;
    s.rss_bytes = rss_bytes();
    s.users = sr_model_n_users(t->model);
    s.items = sr_model_n_items(t->model);
    int rc = sr_metrics_pub_send(t->pub, &s);
    if (rc != 0) sr_log(SR_LOG_DEBUG, "trainer: metrics snapshot dropped: %s", sr_strerror(rc));
    free(lag);
    free(lagp);
    sr_qhist_reset(&t->fresh_iv);
    sr_qhist_reset(&t->flush_ms_iv);
    sr_qhist_reset(&t->flush_keys_iv);
    t->iv_in = t->iv_learned = t->iv_evaluated = t->iv_hits = 0;
    t->iv_loss = t->iv_ndcg = 0;
}
