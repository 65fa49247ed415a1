/* The Redis backend of the ranker: initial item load, the update-stream
 * follower thread, per-request user reads, health.  Placeholder until
 * store/sr_store.h lands on main. */
#include <stdio.h>

#include "ranker_int.h"
#include "sr_err.h"

sr_ranker_t *sr_ranker_new(const sr_conf_t *conf, char *errstr, size_t errstr_size)
{
    (void)conf;
    snprintf(errstr, errstr_size, "ranker: the Redis backend is not built yet (store/)");
    return NULL;
}

int sr_ranker_backend_health_(sr_ranker_t *r, sr_ranker_health_t *h)
{
    (void)r;
    (void)h;
    return 0;
}

void sr_ranker_backend_destroy_(sr_ranker_backend_t *be) { (void)be; }
