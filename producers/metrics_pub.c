/* Metrics snapshots to the metrics topic, and the log-linear histogram
 * behind their quantiles; see sr_metrics_pub.h. */
#include "sr_metrics_pub.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "sr_err.h"
#include "sr_kafka_util.h"
#include "sr_log.h"

struct sr_metrics_pub_s {
    rd_kafka_t *rk;  /* borrowed or owned */
    int owns_rk;
    rd_kafka_topic_t *rkt;
    char component[64];
    char instance[192];
    char key[260];
};

void sr_metrics_pub_set_instance(sr_metrics_pub_t *pub, const char *instance)
{
    if (!instance || !*instance) return;
    snprintf(pub->instance, sizeof(pub->instance), "%s", instance);
    snprintf(pub->key, sizeof(pub->key), "%s/%s", pub->component, pub->instance);
}

sr_metrics_pub_t *sr_metrics_pub_new(const sr_conf_t *conf, struct rd_kafka_s *rk,
                                     const char *component, char *errstr, size_t errstr_size)
{
    sr_metrics_pub_t *pub = calloc(1, sizeof(*pub));
    if (!pub) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    snprintf(pub->component, sizeof(pub->component), "%s", component ? component : "unknown");
    const char *inst = sr_conf_str(conf, "metrics.instance");
    if (inst && *inst) {
        snprintf(pub->instance, sizeof(pub->instance), "%s", inst);
    } else {
        char host[128] = "localhost";
        gethostname(host, sizeof(host) - 1);
        host[sizeof(host) - 1] = '\0';
        snprintf(pub->instance, sizeof(pub->instance), "%s:%d", host, (int)getpid());
    }
    snprintf(pub->key, sizeof(pub->key), "%s/%s", pub->component, pub->instance);

    if (rk) {
        pub->rk = rk;
    } else {
        rd_kafka_conf_t *kc = rd_kafka_conf_new();
        rd_kafka_conf_set_log_cb(kc, sr_kafka_log_cb);
        /* Metrics are best effort: never hold a component up for long. */
        if (sr_kafka_conf_set(kc, "linger.ms", "50", errstr, errstr_size) ||
            sr_kafka_conf_set(kc, "message.timeout.ms", "10000", errstr, errstr_size) ||
            sr_kafka_conf_from(conf, kc, errstr, errstr_size)) {
            rd_kafka_conf_destroy(kc);
            free(pub);
            return NULL;
        }
        char why[512];
        pub->rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, why, sizeof(why));
        if (!pub->rk) {
            rd_kafka_conf_destroy(kc);
            snprintf(errstr, errstr_size, "librdkafka: %s", why);
            free(pub);
            return NULL;
        }
        pub->owns_rk = 1;
    }
    pub->rkt = rd_kafka_topic_new(pub->rk, sr_conf_str(conf, "topic.metrics"), NULL);
    if (!pub->rkt) {
        snprintf(errstr, errstr_size, "topic '%s': %s", sr_conf_str(conf, "topic.metrics"),
                 rd_kafka_err2str(rd_kafka_last_error()));
        sr_metrics_pub_destroy(pub);
        return NULL;
    }
    return pub;
}

int sr_metrics_pub_send(sr_metrics_pub_t *pub, Streamrec__V1__MetricsSnapshot *snap)
{
    snap->component = pub->component;
    snap->instance = pub->instance;
    if (snap->ts_ms == 0) snap->ts_ms = sr_kafka_now_ms();
    size_t n = streamrec__v1__metrics_snapshot__get_packed_size(snap);
    uint8_t stackbuf[4096];
    uint8_t *buf = n <= sizeof(stackbuf) ? stackbuf : malloc(n);
    if (!buf) return SR_ERR_NOMEM;
    streamrec__v1__metrics_snapshot__pack(snap, buf);
    int rc = 0;
    if (rd_kafka_produce(pub->rkt, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, buf, n, pub->key,
                         strlen(pub->key), NULL) != 0) {
        rd_kafka_resp_err_t err = rd_kafka_last_error();
        rc = err == RD_KAFKA_RESP_ERR__QUEUE_FULL ? SR_ERR_FULL : SR_ERR_KAFKA;
        sr_log(SR_LOG_DEBUG, "metrics: snapshot dropped: %s", rd_kafka_err2str(err));
    }
    if (buf != stackbuf) free(buf);
    if (pub->owns_rk) rd_kafka_poll(pub->rk, 0);
    return rc;
}

const char *sr_metrics_pub_key(const sr_metrics_pub_t *pub)
{
    return pub->key;
}

void sr_metrics_pub_destroy(sr_metrics_pub_t *pub)
{
    if (!pub) return;
    if (pub->rkt) rd_kafka_topic_destroy(pub->rkt);
    if (pub->owns_rk) {
        rd_kafka_flush(pub->rk, 2000);
        rd_kafka_destroy(pub->rk);
    }
    free(pub);
}

/* ---- histogram ----
 * Values below 2^-10 share bucket 0; above, a value v = m * 2^e with
 * m in [0.5, 1) goes to row e - E_MIN, column floor((m - 0.5) * 2 * SUB).
 * A bucket is 1/64 wide in m >= 0.5, so its middle is within 1.6% of any
 * value in it. */
enum { SUB = 32, E_MIN = -9, E_MAX = 41, ROWS = E_MAX - E_MIN + 1, NB = 1 + ROWS * SUB };

struct sr_hist_s {
    int64_t count;
    double max;
    uint32_t b[NB];
};

sr_hist_t *sr_hist_new(void)
{
    return calloc(1, sizeof(sr_hist_t));
}

void sr_hist_destroy(sr_hist_t *h)
{
    free(h);
}

static int bucket_of(double v)
{
    if (!(v >= ldexp(1.0, E_MIN - 1))) return 0; /* also NaN, negatives */
    int e;
    double m = frexp(v, &e);
    if (e > E_MAX) return NB - 1;
    int col = (int)((m - 0.5) * 2 * SUB);
    if (col >= SUB) col = SUB - 1;
    return 1 + (e - E_MIN) * SUB + col;
}

/* The middle of a bucket: within half a bucket width of any value in it. */
static double bucket_value(int i)
{
    if (i == 0) return 0;
    int row = (i - 1) / SUB, col = (i - 1) % SUB;
    double m = 0.5 + (col + 0.5) / (2.0 * SUB);
    return ldexp(m, row + E_MIN);
}

void sr_hist_add(sr_hist_t *h, double v)
{
    if (!(v >= 0)) v = 0;
    if (v > 0x1p40) v = 0x1p40;
    h->b[bucket_of(v)]++;
    h->count++;
    if (v > h->max) h->max = v;
}

void sr_hist_merge(sr_hist_t *dst, const sr_hist_t *src)
{
    for (int i = 0; i < NB; i++) dst->b[i] += src->b[i];
    dst->count += src->count;
    if (src->max > dst->max) dst->max = src->max;
}

void sr_hist_reset(sr_hist_t *h)
{
    memset(h, 0, sizeof(*h));
}

int64_t sr_hist_count(const sr_hist_t *h)
{
    return h->count;
}

double sr_hist_quantile(const sr_hist_t *h, double q)
{
    if (h->count == 0) return 0;
    if (q < 0) q = 0;
    if (q > 1) q = 1;
    /* rank of the q-quantile among count samples, 1-based (nearest rank) */
    int64_t rank = (int64_t)ceil(q * (double)h->count);
    if (rank < 1) rank = 1;
    int64_t seen = 0;
    for (int i = 0; i < NB; i++) {
        seen += h->b[i];
        if (seen >= rank) {
            double v = bucket_value(i);
            return v > h->max ? h->max : v;
        }
    }
    return h->max;
}

double sr_hist_max(const sr_hist_t *h)
{
    return h->max;
}

void sr_hist_to_proto(const sr_hist_t *h, Streamrec__V1__Quantiles *q)
{
    q->p50 = sr_hist_quantile(h, 0.5);
    q->p99 = sr_hist_quantile(h, 0.99);
    q->max = h->max;
    q->count = h->count;
}
