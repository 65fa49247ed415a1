/* librdkafka glue shared by producers/; see sr_kafka_util.h. */
#include "sr_kafka_util.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "sr_err.h"
#include "sr_log.h"

void sr_kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    /* syslog: 0-3 error, 4 warning, 5-6 notice/info, 7 debug */
    int l = level <= 3 ? SR_LOG_ERROR : level == 4 ? SR_LOG_WARN : level <= 6 ? SR_LOG_INFO : SR_LOG_DEBUG;
    sr_log(l, "kafka %s: %s", fac, buf);
}

int sr_kafka_conf_set(rd_kafka_conf_t *kc, const char *name, const char *value, char *errstr,
                      size_t errstr_size)
{
    char why[256];
    if (rd_kafka_conf_set(kc, name, value, why, sizeof(why)) != RD_KAFKA_CONF_OK) {
        snprintf(errstr, errstr_size, "kafka.%s: %s", name, why);
        return SR_ERR_KAFKA;
    }
    return 0;
}

struct apply_ctx {
    rd_kafka_conf_t *kc;
    char *errstr;
    size_t errstr_size;
};

static int apply_one(const char *key, const char *value, void *opaque)
{
    struct apply_ctx *c = opaque;
    return sr_kafka_conf_set(c->kc, key + strlen("kafka."), value, c->errstr, c->errstr_size);
}

int sr_kafka_conf_from(const sr_conf_t *conf, rd_kafka_conf_t *kc, char *errstr,
                       size_t errstr_size)
{
    struct apply_ctx c = {kc, errstr, errstr_size};
    return sr_conf_foreach(conf, "kafka.", apply_one, &c);
}

long long sr_kafka_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
