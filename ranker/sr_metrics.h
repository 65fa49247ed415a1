/* The ranker's metrics snapshot thread: every metrics.interval.ms it turns
 * the API counters and latency quantiles (sr_api_stats) and the catalogue's
 * health into a MetricsSnapshot (component "ranker") on topic.metrics, so
 * `streamrec top` shows the ranker beside the trainers.  Best effort: a
 * failed send is logged at debug level and the next interval tries again.
 *
 * Threading: start/stop from one control thread; the thread only reads the
 * thread-safe api and ranker. */
#ifndef SR_RANKER_METRICS_H
#define SR_RANKER_METRICS_H

#include <stddef.h>

#include "sr_api.h"
#include "sr_config.h"

typedef struct sr_ranker_metrics_s sr_ranker_metrics_t;

/* NULL with errstr when the Kafka producer cannot be created. */
sr_ranker_metrics_t *sr_ranker_metrics_start(const sr_conf_t *conf, sr_ranker_t *r, sr_api_t *api,
                                             char *errstr, size_t errstr_size);
/* Publishes a last snapshot, stops the thread.  NULL is a no-op. */
void sr_ranker_metrics_stop(sr_ranker_metrics_t *m);

#endif
