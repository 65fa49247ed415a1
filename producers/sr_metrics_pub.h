/* Metrics snapshots to the `metrics` topic (proto/metrics.proto), and the
 * small quantile histogram the snapshots carry.
 *
 * Every long-running component (trainer, ranker, simulator) publishes one
 * streamrec.v1.MetricsSnapshot per interval with Kafka key
 * "<component>/<instance>", so `streamrec top` (or any dashboard) finds the
 * latest snapshot of each component as the last message with that key.
 * This module is the one place that knows that key and the serialization,
 * so every component publishes the same way.
 *
 * sr_hist_t: p50/p99/max of latencies, flush sizes and freshness without
 * keeping the samples: a log-linear histogram (HDR-like: 32 sub-buckets per
 * power of two, relative error below 3.2%) over [1e-3, 2^40], fixed 7 KB, no
 * allocation per sample, mergeable. */
#ifndef SR_METRICS_PUB_H
#define SR_METRICS_PUB_H

#include <stddef.h>
#include <stdint.h>

#include "metrics.pb-c.h"
#include "sr_config.h"

typedef struct sr_metrics_pub_s sr_metrics_pub_t;
struct rd_kafka_s;

/* A publisher for `component` ("trainer", "ranker", ...).  The instance name
 * is conf's metrics.instance, or "<hostname>:<pid>" when that is empty; the
 * topic is conf's topic.metrics.  rk: an existing producer handle to send
 * with (borrowed; must outlive the publisher and be polled by its owner),
 * or NULL to create a private producer from conf's kafka.* properties
 * (served by sr_metrics_pub_send and flushed by destroy).  Returns NULL
 * with errstr on error.  conf is only read during the call. */
sr_metrics_pub_t *sr_metrics_pub_new(const sr_conf_t *conf, struct rd_kafka_s *rk,
                                     const char *component, char *errstr, size_t errstr_size);

/* Replaces the instance name (and so the key) with `instance`, for a
 * component whose instance comes from elsewhere than metrics.instance (the
 * trainer's --instance).  NULL or "" keeps the current name.  Call before
 * the first send, from the thread that sends. */
void sr_metrics_pub_set_instance(sr_metrics_pub_t *pub, const char *instance);

/* Serializes snap and produces it (asynchronously) with key
 * "<component>/<instance>".  Fills snap->component, snap->instance and, when
 * 0, snap->ts_ms (wall clock) before packing; the strings it sets point into
 * pub and stay valid until pub is destroyed.  The caller keeps ownership of
 * snap.  Returns 0, SR_ERR_FULL (local queue full; the snapshot is
 * dropped: metrics are best effort) or SR_ERR_KAFKA.  Not thread-safe for
 * one pub: call from the component's metrics thread/loop. */
int sr_metrics_pub_send(sr_metrics_pub_t *pub, Streamrec__V1__MetricsSnapshot *snap);

/* The Kafka key used ("<component>/<instance>", NUL-terminated; owned by
 * pub). */
const char *sr_metrics_pub_key(const sr_metrics_pub_t *pub);

/* Flushes a private producer for up to 2 s, frees everything.  NULL is a
 * no-op. */
void sr_metrics_pub_destroy(sr_metrics_pub_t *pub);

/* ---- quantile histogram ---- */

typedef struct sr_hist_s sr_hist_t;

/* A new empty histogram; NULL only on ENOMEM.  Not thread-safe: one writer,
 * or the caller locks. */
sr_hist_t *sr_hist_new(void);
void sr_hist_destroy(sr_hist_t *h); /* NULL is a no-op */
/* Records one value (negative and NaN count as 0; above 2^40 as 2^40). */
void sr_hist_add(sr_hist_t *h, double v);
/* Adds every sample of src to dst. */
void sr_hist_merge(sr_hist_t *dst, const sr_hist_t *src);
void sr_hist_reset(sr_hist_t *h);
int64_t sr_hist_count(const sr_hist_t *h);
/* The q-quantile (0 <= q <= 1) as a bucket's representative value, within
 * 3.2% of the true sample quantile; 0 when empty.  max is exact. */
double sr_hist_quantile(const sr_hist_t *h, double q);
double sr_hist_max(const sr_hist_t *h);
/* Fills a metrics.proto Quantiles (p50, p99, max, count); q must have been
 * initialised with STREAMREC__V1__QUANTILES__INIT. */
void sr_hist_to_proto(const sr_hist_t *h, Streamrec__V1__Quantiles *q);

#endif
