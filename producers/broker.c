/* The embedded development broker on librdkafka's mock cluster; see
 * sr_broker.h for what it is and what it is not.  A mock cluster needs an
 * rd_kafka_t to hang off; a producer handle that never produces is the
 * cheapest one. */
#include "sr_broker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "sr_err.h"
#include "sr_kafka_util.h"

struct sr_broker_s {
    rd_kafka_t *rk;
    rd_kafka_mock_cluster_t *mcluster;
    char *bootstraps;
};

sr_broker_t *sr_broker_new(int brokers, int partitions, const char *const *topics,
                           size_t ntopics, char *errstr, size_t errstr_size)
{
    if (brokers < 1 || brokers > 64 || partitions < 1 || partitions > 100000) {
        snprintf(errstr, errstr_size, "need 1..64 brokers and 1..100000 partitions (got %d, %d)",
                 brokers, partitions);
        return NULL;
    }
    sr_broker_t *b = calloc(1, sizeof(*b));
    if (!b) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    /* test.mock.num.brokers makes rd_kafka_new create the cluster itself
     * (and point the handle's bootstrap.servers at it, so librdkafka does
     * not warn about a handle with no brokers); rd_kafka_destroy destroys
     * it. */
    rd_kafka_conf_t *kc = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(kc, sr_kafka_log_cb);
    char why[256], n[16];
    snprintf(n, sizeof(n), "%d", brokers);
    if (rd_kafka_conf_set(kc, "test.mock.num.brokers", n, why, sizeof(why)) != RD_KAFKA_CONF_OK) {
        rd_kafka_conf_destroy(kc);
        snprintf(errstr, errstr_size, "librdkafka: %s", why);
        free(b);
        return NULL;
    }
    b->rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, why, sizeof(why));
    if (!b->rk) {
        rd_kafka_conf_destroy(kc);
        snprintf(errstr, errstr_size, "librdkafka handle for the mock cluster: %s", why);
        free(b);
        return NULL;
    }
    b->mcluster = rd_kafka_handle_mock_cluster(b->rk);
    if (!b->mcluster) {
        snprintf(errstr, errstr_size, "librdkafka could not create the mock cluster (see log)");
        sr_broker_destroy(b);
        return NULL;
    }
    for (size_t i = 0; i < ntopics; i++) {
        if (sr_broker_topic_create(b, topics[i], partitions) != 0) {
            snprintf(errstr, errstr_size, "could not create topic '%s'", topics[i]);
            sr_broker_destroy(b);
            return NULL;
        }
    }
    b->bootstraps = strdup(rd_kafka_mock_cluster_bootstraps(b->mcluster));
    if (!b->bootstraps) {
        snprintf(errstr, errstr_size, "out of memory");
        sr_broker_destroy(b);
        return NULL;
    }
    return b;
}

int sr_broker_topic_create(sr_broker_t *b, const char *topic, int partitions)
{
    rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(b->mcluster, topic, partitions, 1);
    return err ? SR_ERR_KAFKA : 0;
}

const char *sr_broker_bootstraps(const sr_broker_t *b)
{
    return b->bootstraps;
}

void *sr_broker_mock(sr_broker_t *b)
{
    return b->mcluster;
}

void sr_broker_destroy(sr_broker_t *b)
{
    if (!b) return;
    if (b->rk) rd_kafka_destroy(b->rk); /* and the cluster it created */
    free(b->bootstraps);
    free(b);
}
