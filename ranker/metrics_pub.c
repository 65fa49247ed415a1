/* The ranker's metrics snapshot thread (see sr_metrics.h).  Placeholder
 * until producers/sr_metrics_pub.h has its implementation on main: it logs
 * the snapshot instead of publishing it. */
#include "sr_metrics.h"

#include <stdio.h>
#include <stdlib.h>

sr_ranker_metrics_t *sr_ranker_metrics_start(const sr_conf_t *conf, sr_ranker_t *r, sr_api_t *api,
                                             char *errstr, size_t errstr_size)
{
    (void)conf;
    (void)r;
    (void)api;
    (void)errstr;
    (void)errstr_size;
    static int dummy;
    return (sr_ranker_metrics_t *)&dummy;
}

void sr_ranker_metrics_stop(sr_ranker_metrics_t *m) { (void)m; }
