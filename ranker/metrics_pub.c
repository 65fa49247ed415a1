/* The ranker's metrics snapshot thread (see sr_metrics.h): every
 * metrics.interval.ms one MetricsSnapshot (component "ranker": requests,
 * errors, latency p50/p99/max in microseconds over the interval, items,
 * stream lag, RSS) through producers/sr_metrics_pub.h. */
#include "sr_metrics.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "sr_err.h"
#include "sr_log.h"
#include "sr_metrics_pub.h"

/* Weak while producers/ may ship without the publisher: the ranker then
 * serves without snapshots (logged once) instead of failing to link. */
#pragma weak sr_metrics_pub_new
#pragma weak sr_metrics_pub_send
#pragma weak sr_metrics_pub_destroy

struct sr_ranker_metrics_s {
    sr_ranker_t *r;
    sr_api_t *api;
    sr_metrics_pub_t *pub;
    int interval_ms;
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
};

static int64_t rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return 0;
    long long size = 0, res = 0;
    int ok = fscanf(f, "%lld %lld", &size, &res) == 2;
    fclose(f);
    return ok ? res * (int64_t)sysconf(_SC_PAGESIZE) : 0;
}

static void publish(sr_ranker_metrics_t *m)
{
    sr_api_stats_t st;
    sr_api_stats(m->api, &st);
    sr_ranker_health_t h;
    sr_ranker_health(m->r, &h);
    Streamrec__V1__MetricsSnapshot s = STREAMREC__V1__METRICS_SNAPSHOT__INIT;
    Streamrec__V1__Quantiles q = STREAMREC__V1__QUANTILES__INIT;
    q.p50 = st.p50_us;
    q.p99 = st.p99_us;
    q.max = st.max_us;
    q.count = st.interval_count;
    s.interval_s = m->interval_ms / 1000.0;
    s.requests = st.requests;
    s.request_errors = st.errors;
    s.latency_us = &q;
    s.stream_lag = h.stream_lag;
    s.items = h.items;
    s.rss_bytes = rss_bytes();
    int rc = sr_metrics_pub_send(m->pub, &s);
    if (rc < 0) sr_log(SR_LOG_DEBUG, "ranker: metrics snapshot not sent: %s", sr_strerror(rc));
}

static void *loop(void *arg)
{
    sr_ranker_metrics_t *m = arg;
    pthread_mutex_lock(&m->mu);
    while (!m->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += m->interval_ms / 1000;
        ts.tv_nsec += (long)(m->interval_ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&m->cv, &m->mu, &ts);
        pthread_mutex_unlock(&m->mu);
        publish(m);
        pthread_mutex_lock(&m->mu);
    }
    pthread_mutex_unlock(&m->mu);
    return NULL;
}

sr_ranker_metrics_t *sr_ranker_metrics_start(const sr_conf_t *conf, sr_ranker_t *r, sr_api_t *api,
                                             char *errstr, size_t errstr_size)
{
    sr_ranker_metrics_t *m = calloc(1, sizeof(*m));
    if (!m) {
        snprintf(errstr, errstr_size, "metrics: out of memory");
        return NULL;
    }
    m->r = r;
    m->api = api;
    m->interval_ms = (int)sr_conf_int(conf, "metrics.interval.ms");
    if (!sr_metrics_pub_new) {
        sr_log(SR_LOG_WARN, "ranker: this build has no metrics publisher; no snapshots");
        return m;
    }
    m->pub = sr_metrics_pub_new(conf, NULL, "ranker", errstr, errstr_size);
    if (!m->pub) {
        free(m);
        return NULL;
    }
    pthread_mutex_init(&m->mu, NULL);
    pthread_cond_init(&m->cv, NULL);
    if (pthread_create(&m->th, NULL, loop, m) != 0) {
        sr_metrics_pub_destroy(m->pub);
        free(m);
        snprintf(errstr, errstr_size, "metrics: cannot start the thread");
        return NULL;
    }
    return m;
}

void sr_ranker_metrics_stop(sr_ranker_metrics_t *m)
{
    if (!m) return;
    if (m->pub) {
        pthread_mutex_lock(&m->mu);
        m->stop = 1;
        pthread_cond_signal(&m->cv);
        pthread_mutex_unlock(&m->mu);
        pthread_join(m->th, NULL);
        publish(m); /* the last interval */
        sr_metrics_pub_destroy(m->pub);
        pthread_mutex_destroy(&m->mu);
        pthread_cond_destroy(&m->cv);
    }
    free(m);
}
