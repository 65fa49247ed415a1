/* `streamrec top --once --json` against the real embedded broker: it reads
 * the metrics topic from the beginning to the end and reports the latest
 * snapshot of every component, and after a known number of events went
 * through a real trainer it reports exactly those counters. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sr_config.h"
#include "sr_metrics_pub.h"
#include "sr_producer.h"
#include "sr_testproc.h"

/* Every process a test starts, stopped by PID in .fini even when an
 * assertion ended the test early. */
static sr_test_proc_t broker, redis, trainer;

static void stop_all(void)
{
    sr_test_stop(&trainer, SIGTERM, 20000);
    sr_test_stop(&redis, SIGTERM, 5000);
    sr_test_stop(&broker, SIGTERM, 5000);
}

static json_t *top_once(const char *bootstrap)
{
    char xbs[256];
    snprintf(xbs, sizeof xbs, "kafka.bootstrap.servers=%s", bootstrap);
    char *argv[] = {(char *)sr_test_bin(), "top", "--once", "--json", "-X", xbs, NULL};
    char *out = NULL;
    int rc = sr_test_run(argv, &out, 30000);
    cr_assert_eq(rc, 0, "top --once --json exited %d: %s", rc, out ? out : "");
    json_error_t err;
    json_t *j = json_loads(out, 0, &err);
    cr_assert_not_null(j, "top printed no JSON object (%s): %s", err.text, out);
    free(out);
    return j;
}

static json_t *component(json_t *top, const char *key)
{
    return json_object_get(json_object_get(top, "components"), key);
}

static int64_t geti(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    cr_assert(json_is_integer(v), "no integer '%s'", k);
    return json_integer_value(v);
}

Test(top, once_json_reports_latest_snapshot_per_component, .timeout = 90, .fini = stop_all)
{
    char bs[256];
    cr_assert_eq(sr_test_broker_start(&broker, 2, bs, sizeof bs), 0);

    /* Empty topic: one object with no components, at once. */
    json_t *j = top_once(bs);
    cr_expect_eq(json_object_size(json_object_get(j, "components")), 0);
    json_decref(j);

    sr_conf_t *conf = sr_conf_new();
    char err[512];
    cr_assert_eq(sr_conf_set(conf, "kafka.bootstrap.servers", bs, err, sizeof err), 0, "%s", err);
    cr_assert_eq(sr_conf_set(conf, "metrics.instance", "t1", err, sizeof err), 0, "%s", err);
    sr_metrics_pub_t *trainer = sr_metrics_pub_new(conf, NULL, "trainer", err, sizeof err);
    cr_assert_not_null(trainer, "%s", err);
    cr_assert_eq(sr_conf_set(conf, "metrics.instance", "r1", err, sizeof err), 0, "%s", err);
    sr_metrics_pub_t *ranker = sr_metrics_pub_new(conf, NULL, "ranker", err, sizeof err);
    cr_assert_not_null(ranker, "%s", err);

    for (int i = 1; i <= 3; i++) {
        Streamrec__V1__MetricsSnapshot s = STREAMREC__V1__METRICS_SNAPSHOT__INIT;
        s.ts_ms = 1700000000000LL + i * 1000;
        s.events_in = 100 * i;
        s.events_applied = 90 * i;
        s.events_duplicate = i;
        s.events_invalid = 2 * i;
        cr_assert_eq(sr_metrics_pub_send(trainer, &s), 0);
        Streamrec__V1__MetricsSnapshot r = STREAMREC__V1__METRICS_SNAPSHOT__INIT;
        Streamrec__V1__Quantiles lat = STREAMREC__V1__QUANTILES__INIT;
        lat.p50 = 300;
        lat.p99 = 900 + i;
        r.latency_us = &lat;
        r.ts_ms = 1700000000000LL + i * 1000;
        r.requests = 10 * i;
        r.request_errors = i;
        cr_assert_eq(sr_metrics_pub_send(ranker, &r), 0);
    }
    sr_metrics_pub_destroy(trainer); /* flushes */
    sr_metrics_pub_destroy(ranker);
    sr_conf_destroy(conf);

    j = top_once(bs);
    json_t *t = component(j, "trainer/t1");
    json_t *r = component(j, "ranker/r1");
    cr_assert_not_null(t, "no trainer/t1 in top's output");
    cr_assert_not_null(r, "no ranker/r1 in top's output");
    cr_expect_eq(geti(t, "events_in"), 300);
    cr_expect_eq(geti(t, "events_applied"), 270);
    cr_expect_eq(geti(t, "events_duplicate"), 3);
    cr_expect_eq(geti(t, "events_invalid"), 6);
    /* 100 events per 1000 ms between the last two snapshots. */
    cr_expect_float_eq(json_real_value(json_object_get(t, "rate_in")), 100.0, 1e-6);
    cr_expect_eq(geti(r, "requests"), 30);
    cr_expect_eq(geti(r, "request_errors"), 3);
    cr_expect_float_eq(
        json_real_value(json_object_get(json_object_get(r, "latency_us"), "p99")), 903.0, 1e-6);
    cr_expect_eq(geti(j, "messages"), 6);
    json_decref(j);
}

Test(top, unreachable_kafka_fails_cleanly, .timeout = 60)
{
    int port = sr_test_free_port();
    char xbs[64];
    snprintf(xbs, sizeof xbs, "kafka.bootstrap.servers=127.0.0.1:%d", port);
    char *argv[] = {(char *)sr_test_bin(), "top", "--once", "--json", "--timeout", "1500",
                    "-X", xbs, "-X", "log.level=error", NULL};
    char *out = NULL;
    cr_expect_eq(sr_test_run(argv, &out, 30000), 1);
    cr_expect_eq(out ? strlen(out) : 0, 0, "printed on failure: %s", out);
    free(out);
}

Test(top, usage_errors_exit_2)
{
    char *argv[] = {(char *)sr_test_bin(), "top", "--interval", "abc", NULL};
    cr_expect_eq(sr_test_run(argv, NULL, 10000), 2);
    char *argv2[] = {(char *)sr_test_bin(), "top", "extra-arg", NULL};
    cr_expect_eq(sr_test_run(argv2, NULL, 10000), 2);
}

/* ---- a real trainer's counters ---------------------------------------- */


static int64_t total(json_t *top, const char *comp, const char *k)
{
    json_t *v = json_object_get(json_object_get(json_object_get(top, "totals"), comp), k);
    return json_is_integer(v) ? json_integer_value(v) : -1;
}

Test(top, once_json_reports_a_trainers_counters, .timeout = 180, .fini = stop_all)
{
    enum { USERS = 10, PER_USER = 40, DUPS = 12, JUNK = 3 };
    char bs[256];
    int rport;
    cr_assert_eq(sr_test_broker_start(&broker, 2, bs, sizeof bs), 0);
    cr_assert_eq(sr_test_redis_start(&redis, &rport), 0);

    char kbs[300];
    snprintf(kbs, sizeof kbs, "%s", bs);
    const char *kv[] = {"kafka.bootstrap.servers", kbs, NULL};
    char err[512];
    sr_producer_t *p = sr_producer_new(kv, NULL, NULL, err, sizeof err);
    cr_assert_not_null(p, "%s", err);
    char user[16], item[16], eid[32];
    for (int i = 0; i < USERS * PER_USER + DUPS; i++) {
        /* The last DUPS sends repeat earlier event ids: a producer retry. */
        int k = i < USERS * PER_USER ? i : (i - USERS * PER_USER) * 7;
        snprintf(user, sizeof user, "u%d", k % USERS);
        snprintf(item, sizeof item, "i%d", (k * 13) % 50);
        snprintf(eid, sizeof eid, "ev-%d", k);
        sr_producer_event_t ev = {.event_id = eid, .user = user, .item = item,
                                  .type = k % 5 == 0 ? SR_EV_CART : SR_EV_VIEW};
        int rc;
        while ((rc = sr_producer_send(p, &ev)) == SR_ERR_FULL) sr_producer_poll(p, 10);
        cr_assert_eq(rc, 0);
    }
    /* Bytes that are no Event at all: dead letters, counted invalid. */
    for (int i = 0; i < JUNK; i++)
        cr_assert_eq(rd_kafka_producev(sr_producer_rk(p), RD_KAFKA_V_TOPIC("events"),
                                       RD_KAFKA_V_KEY("u0", 2), RD_KAFKA_V_VALUE("\xff\xfe junk", 7),
                                       RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
                     0);
    cr_assert_eq(sr_producer_flush(p, 20000), 0);
    sr_producer_destroy(p);

    char xbs[300], xurl[64];
    snprintf(xbs, sizeof xbs, "kafka.bootstrap.servers=%s", bs);
    snprintf(xurl, sizeof xurl, "redis.url=redis://127.0.0.1:%d", rport);
    char *targv[] = {(char *)sr_test_bin(), "train", "-X", xbs, "-X", xurl,
                     "-X", "metrics.interval.ms=200", "-X", "metrics.instance=top-test", NULL};
    cr_assert_eq(sr_test_spawn(&trainer, targv, 0), 0);

    /* Counters are cumulative: wait until the trainer reports it applied
     * everything and flushed (a snapshot can fall between the last batch
     * and the end of the flush that writes it), then every other counter
     * must match exactly. */
    json_t *j = NULL;
    long long deadline = sr_test_now_ms() + 90000;
    while (sr_test_now_ms() < deadline) {
        j = top_once(bs);
        json_t *fl = json_object_get(component(j, "trainer/top-test"), "flushes");
        if (total(j, "trainer", "events_applied") == USERS * PER_USER &&
            total(j, "trainer", "events_in") == USERS * PER_USER + DUPS + JUNK &&
            json_is_integer(fl) && json_integer_value(fl) > 0)
            break;
        json_decref(j);
        j = NULL;
        usleep(300000);
    }
    sr_test_stop(&trainer, SIGTERM, 20000);
    cr_assert_not_null(j, "top never showed the trainer's %d applied events", USERS * PER_USER);
    json_t *t = component(j, "trainer/top-test");
    cr_assert_not_null(t, "no trainer/top-test component");
    cr_expect_eq(geti(t, "events_applied"), USERS * PER_USER);
    cr_expect_eq(geti(t, "events_duplicate"), DUPS);
    cr_expect_eq(geti(t, "events_invalid"), JUNK);
    cr_expect_eq(geti(t, "events_in"), USERS * PER_USER + DUPS + JUNK);
    cr_expect_eq(geti(t, "lag_total"), 0);
    cr_expect_gt(geti(t, "flushes"), 0);
    cr_expect_eq(total(j, "trainer", "instances"), 1);
    json_decref(j);
}
