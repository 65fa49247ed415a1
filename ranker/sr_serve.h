/* `streamrec serve` as a library call: the ranker (Redis-backed), its API,
 * the HTTP server and the metrics publisher wired together from one
 * configuration, so cmd/cmd_serve.c only parses options and waits for a
 * signal, and tests or `streamrec up` can run a server in process.
 *
 * Threading: start/stop from one control thread. */
#ifndef SR_SERVE_H
#define SR_SERVE_H

#include <stddef.h>

#include "sr_config.h"
#include "sr_ranker.h"

typedef struct sr_serve_s sr_serve_t;

/* Builds the ranker from conf (redis.*, ranker.*), starts HTTP on
 * http.listen and, when metrics.enable, a thread publishing a snapshot to
 * topic.metrics every metrics.interval.ms.  NULL with errstr on failure.
 * conf is read during the call only. */
sr_serve_t *sr_serve_start(const sr_conf_t *conf, char *errstr, size_t errstr_size);
/* As sr_serve_start, with a ranker the caller built (borrowed; must outlive
 * the server). */
sr_serve_t *sr_serve_start_with(const sr_conf_t *conf, sr_ranker_t *r, char *errstr,
                                size_t errstr_size);
/* The bound HTTP port. */
int sr_serve_port(const sr_serve_t *s);
/* Stops HTTP (in-flight requests finish), the publisher and the ranker.
 * NULL is a no-op. */
void sr_serve_stop(sr_serve_t *s);

#endif
