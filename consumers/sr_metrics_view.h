/* The reading side of the `metrics` topic (proto/metrics.proto): what
 * `streamrec top` and `streamrec up` show.  Every component (trainer,
 * ranker, simulator, ...) publishes a MetricsSnapshot per interval keyed by
 * component/instance; a view keeps the latest snapshot of each instance
 * plus enough of the previous one to turn counters into rates.
 *
 * Two halves, so the part that interprets snapshots does no I/O and is
 * testable on bytes alone (hiredis read.h style):
 *   - sr_metrics_view_t: feed it message payloads, read JSON or a text
 *     screen back;
 *   - sr_metrics_reader_t: a Kafka consumer of the metrics topic that feeds
 *     a view, either live or "from the beginning up to the end".
 *
 * Threading: neither handle is thread-safe; use each from one thread. */
#ifndef SR_METRICS_VIEW_H
#define SR_METRICS_VIEW_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "sr_config.h"

typedef struct sr_metrics_view_s sr_metrics_view_t;

/* Most component instances a view tracks; snapshots of further instances
 * are counted as dropped (bounds memory against a topic full of junk). */
#define SR_METRICS_VIEW_MAX 1024

/* A new, empty view.  NULL only on ENOMEM. */
sr_metrics_view_t *sr_metrics_view_new(void);
/* Frees the view and every snapshot it holds.  NULL is a no-op. */
void sr_metrics_view_destroy(sr_metrics_view_t *view);

/* Feeds one message payload (a serialized MetricsSnapshot).  The view
 * copies what it keeps; buf stays the caller's.  A snapshot older than the
 * one held for the same component/instance (by ts_ms) is ignored, so
 * replaying the topic in any partition order ends on the latest.
 * Returns 0, SR_ERR_PARSE (not a MetricsSnapshot, or no component name:
 * counted in "bad"), SR_ERR_FULL (too many instances: counted in
 * "dropped") or SR_ERR_NOMEM. */
int sr_metrics_view_add(sr_metrics_view_t *view, const void *buf, size_t len);

/* Number of component instances held. */
size_t sr_metrics_view_count(const sr_metrics_view_t *view);

/* The whole view as one JSON object, a malloc'd NUL-terminated string the
 * caller frees (NULL on ENOMEM):
 *   {"ts_ms":now,"messages":N,"bad":N,"dropped":N,
 *    "components":{"<component>/<instance>":{...every snapshot field...,
 *        "age_ms":..,"rate_in":..,"rate_applied":..,"rate_requests":..,
 *        "lag_total":..}, ...},
 *    "totals":{"<component>":{"instances":N,"events_in":..,
 *        "events_applied":..,"events_duplicate":..,"events_invalid":..,
 *        "lag_total":..,"requests":..,"request_errors":..}, ...}}
 * Rates are per second between the two latest snapshots of an instance
 * (0 until there are two).  now_ms is wall-clock milliseconds (for age). */
char *sr_metrics_view_json(const sr_metrics_view_t *view, int64_t now_ms);

/* Writes a human-readable screen (one block per component instance) to
 * out.  Writes no terminal control codes; the caller clears the screen. */
void sr_metrics_view_render(const sr_metrics_view_t *view, FILE *out, int64_t now_ms);

typedef struct sr_metrics_reader_s sr_metrics_reader_t;

/* A consumer of conf's `topic.metrics` over the brokers of
 * `kafka.bootstrap.servers` (every `kafka.*` property passes through).
 * It assigns every partition of the topic itself (no group rebalancing,
 * nothing committed).  from_beginning: start at each partition's first
 * offset and remember the end offsets as of now, so
 * sr_metrics_reader_at_end() can tell when the history is read; otherwise
 * start at most `tail` messages before each partition's end.
 * The topic must exist (an embedded broker creates it) or the call fails
 * after timeout_ms.  Returns NULL with a reason in errstr on failure.
 * conf is only read during the call. */
sr_metrics_reader_t *sr_metrics_reader_new(const sr_conf_t *conf, int from_beginning,
                                           int64_t tail, int timeout_ms, char *errstr,
                                           size_t errstr_size);
/* Closes the consumer.  NULL is a no-op. */
void sr_metrics_reader_destroy(sr_metrics_reader_t *reader);

/* Consumes what arrives within timeout_ms (returns early once something
 * did and nothing more is immediately ready) into view.  Returns the number
 * of messages fed (>= 0), or SR_ERR_KAFKA on a fatal consumer error. */
int sr_metrics_reader_poll(sr_metrics_reader_t *reader, sr_metrics_view_t *view, int timeout_ms);

/* 1 once every partition has been read up to the end offset it had when
 * the reader started (always 1 for a reader not made from_beginning). */
int sr_metrics_reader_at_end(const sr_metrics_reader_t *reader);

#endif
