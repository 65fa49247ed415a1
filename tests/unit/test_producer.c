/* The producer library against an in-process mock cluster: events come
 * back from the topic with the right key, id and fields; ids are generated
 * when absent; invalid events are refused; delivery errors reach the
 * callback (unknown topic, stopped cluster).  Also the produce line
 * parsers, the histogram and the metrics publisher. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "metrics.pb-c.h"
#include "sr_broker.h"
#include "sr_config.h"
#include "sr_err.h"
#include "sr_event_codec.h"
#include "sr_metrics_pub.h"
#include "sr_produce.h"
#include "sr_producer.h"

static sr_broker_t *start(int partitions)
{
    const char *topics[] = {"events", "metrics"};
    char err[256];
    sr_broker_t *b = sr_broker_new(1, partitions, topics, 2, err, sizeof(err));
    cr_assert_not_null(b, "%s", err);
    return b;
}

struct outcomes {
    int ok, failed;
    char last_err[256];
    char ids[64][40];
};

static void on_delivery(const sr_producer_delivery_t *d, void *opaque)
{
    struct outcomes *o = opaque;
    if (d->err) {
        o->failed++;
        snprintf(o->last_err, sizeof(o->last_err), "%s", d->errstr);
        return;
    }
    if (o->ok < 64) snprintf(o->ids[o->ok], sizeof(o->ids[0]), "%s", d->event_id);
    o->ok++;
}

/* A consumed message, copied: librdkafka's rd_kafka_destroy waits until
 * every rd_kafka_message_t of the handle is destroyed, so none may outlive
 * the consumer. */
typedef struct msg {
    void *payload;
    size_t len;
    char *key;
    size_t key_len;
    int32_t partition;
} msg_t;

static void msg_free(msg_t *m)
{
    free(m->payload);
    free(m->key);
}

/* Reads every message of topic from the start of each partition. */
static int consume_all(const char *bs, const char *topic, int partitions, msg_t *out, int max)
{
    rd_kafka_conf_t *kc = rd_kafka_conf_new();
    char err[256];
    rd_kafka_conf_set(kc, "bootstrap.servers", bs, err, sizeof(err));
    rd_kafka_conf_set(kc, "group.id", "test-reader", err, sizeof(err));
    rd_kafka_conf_set(kc, "enable.partition.eof", "true", err, sizeof(err));
    rd_kafka_t *c = rd_kafka_new(RD_KAFKA_CONSUMER, kc, err, sizeof(err));
    cr_assert_not_null(c);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(partitions);
    for (int p = 0; p < partitions; p++)
        rd_kafka_topic_partition_list_add(l, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(c, l);
    rd_kafka_topic_partition_list_destroy(l);
    int n = 0, eofs = 0;
    for (int spins = 0; eofs < partitions && spins < 500; spins++) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 50);
        if (!m) continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            eofs++;
            rd_kafka_message_destroy(m);
        } else if (m->err || n >= max) {
            rd_kafka_message_destroy(m);
        } else {
            msg_t *c = &out[n++];
            c->payload = malloc(m->len + 1);
            memcpy(c->payload, m->payload, m->len);
            c->len = m->len;
            c->key = malloc(m->key_len + 1);
            memcpy(c->key, m->key, m->key_len);
            c->key_len = m->key_len;
            c->partition = m->partition;
            rd_kafka_message_destroy(m);
        }
    }
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
    return n;
}

static sr_producer_t *new_producer(const char *bs, struct outcomes *o, const char *extra_key,
                                   const char *extra_val)
{
    const char *kv[] = {"kafka.bootstrap.servers", bs, "kafka.message.timeout.ms", "3000",
                        extra_key, extra_val, NULL};
    char err[256];
    sr_producer_t *p = sr_producer_new(kv, on_delivery, o, err, sizeof(err));
    cr_assert_not_null(p, "%s", err);
    return p;
}

Test(producer, sends_events_that_come_back_keyed_by_user)
{
    sr_broker_t *b = start(4);
    struct outcomes o = {0};
    sr_producer_t *p = new_producer(sr_broker_bootstraps(b), &o, NULL, NULL);
    for (int i = 0; i < 40; i++) {
        char user[16], item[16];
        snprintf(user, sizeof(user), "u%d", i % 7);
        snprintf(item, sizeof(item), "i%d", i);
        sr_producer_event_t ev = {.user = user, .item = item, .type = SR_EV_CLICK,
                                  .ts_ms = 1700000000000LL + i, .session = "s1", .value = i,
                                  .event_id = i == 0 ? "given-id" : NULL};
        cr_assert_eq(sr_producer_send(p, &ev), 0);
    }
    cr_assert_eq(sr_producer_flush(p, 10000), 0);
    cr_assert_eq(o.ok, 40);
    cr_assert_eq(o.failed, 0);
    cr_assert_eq(sr_producer_in_flight(p), 0);
    sr_producer_destroy(p);

    msg_t msgs[64];
    int n = consume_all(sr_broker_bootstraps(b), "events", 4, msgs, 64);
    cr_assert_eq(n, 40);
    int given = 0, partition_of_u3 = -1;
    for (int i = 0; i < n; i++) {
        sr_event_wire_t w;
        char why[128];
        cr_assert_eq(sr_event_decode(msgs[i].payload, msgs[i].len, NULL, 0, &w, NULL, why, sizeof(why)), 0,
                     "%s", why);
        cr_assert_eq(msgs[i].key_len, w.ev.user_len);
        cr_assert(memcmp(msgs[i].key, w.ev.user, w.ev.user_len) == 0, "key = user id");
        cr_assert_eq(w.ev.type, SR_EV_CLICK);
        cr_assert_eq(w.session_len, 2);
        int idx = atoi(w.ev.item + 1);
        cr_assert_eq(w.ev.ts_ms, 1700000000000LL + idx);
        cr_assert_eq(w.value, (double)idx);
        if (w.event_id_len == 8 && memcmp(w.event_id, "given-id", 8) == 0)
            given++;
        else
            cr_assert_eq(w.event_id_len, 32, "generated ids are 128-bit hex");
        if (w.ev.user_len == 2 && memcmp(w.ev.user, "u3", 2) == 0) {
            if (partition_of_u3 < 0) partition_of_u3 = msgs[i].partition;
            cr_assert_eq(msgs[i].partition, partition_of_u3, "one user, one partition");
        }
        msg_free(&msgs[i]);
    }
    cr_assert_eq(given, 1);
    sr_broker_destroy(b);
}

Test(producer, generated_ids_are_unique)
{
    sr_broker_t *b = start(1);
    struct outcomes o = {0};
    sr_producer_t *p = new_producer(sr_broker_bootstraps(b), &o, NULL, NULL);
    for (int i = 0; i < 64; i++) {
        sr_producer_event_t ev = {.user = "u", .item = "i", .type = SR_EV_VIEW};
        cr_assert_eq(sr_producer_send(p, &ev), 0);
    }
    cr_assert_eq(sr_producer_flush(p, 10000), 0);
    cr_assert_eq(o.ok, 64);
    for (int i = 0; i < 64; i++) {
        cr_assert_eq(strlen(o.ids[i]), 32);
        for (int j = 0; j < i; j++) cr_assert_str_neq(o.ids[i], o.ids[j]);
    }
    sr_producer_destroy(p);
    sr_broker_destroy(b);
}

Test(producer, refuses_invalid_events_without_callback)
{
    sr_broker_t *b = start(1);
    struct outcomes o = {0};
    sr_producer_t *p = new_producer(sr_broker_bootstraps(b), &o, NULL, NULL);
    char big[SR_ID_MAX + 2];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    sr_producer_event_t no_user = {.item = "i", .type = SR_EV_VIEW};
    sr_producer_event_t no_item = {.user = "u", .type = SR_EV_VIEW};
    sr_producer_event_t long_user = {.user = big, .item = "i", .type = SR_EV_VIEW};
    sr_producer_event_t bad_utf8 = {.user = "\xff", .item = "i", .type = SR_EV_VIEW};
    sr_producer_event_t bad_type = {.user = "u", .item = "i", .type = SR_EV_NTYPES};
    sr_producer_event_t bad_value = {.user = "u", .item = "i", .type = SR_EV_VIEW, .value = NAN};
    cr_assert_eq(sr_producer_send(p, &no_user), SR_ERR_INVAL);
    cr_assert_eq(sr_producer_send(p, &no_item), SR_ERR_INVAL);
    cr_assert_eq(sr_producer_send(p, &long_user), SR_ERR_INVAL);
    cr_assert_eq(sr_producer_send(p, &bad_utf8), SR_ERR_INVAL);
    cr_assert_eq(sr_producer_send(p, &bad_type), SR_ERR_INVAL);
    cr_assert_eq(sr_producer_send(p, &bad_value), SR_ERR_INVAL);
    cr_assert_eq(sr_producer_flush(p, 1000), 0);
    cr_assert_eq(o.ok + o.failed, 0);
    sr_producer_destroy(p);
    sr_broker_destroy(b);
}

Test(producer, rejects_unknown_property)
{
    const char *kv[] = {"bootstrap.servers", "x:1", NULL};
    char err[256];
    cr_assert_null(sr_producer_new(kv, NULL, NULL, err, sizeof(err)));
    cr_assert(strstr(err, "bootstrap.servers") != NULL, "%s", err);
    const char *kv2[] = {"kafka.no.such.property", "1", NULL};
    cr_assert_null(sr_producer_new(kv2, NULL, NULL, err, sizeof(err)));
    cr_assert(strstr(err, "no.such.property") != NULL, "%s", err);
    sr_producer_destroy(NULL);
}

Test(producer, delivery_error_for_unknown_topic)
{
    sr_broker_t *b = start(1);
    struct outcomes o = {0};
    const char *kv[] = {"kafka.bootstrap.servers", sr_broker_bootstraps(b),
                        "kafka.message.timeout.ms", "2000",
                        "kafka.topic.metadata.propagation.max.ms", "300",
                        "topic.events", "no-such-topic", NULL};
    char err[256];
    /* The mock cluster auto-creates any topic a client asks for; make it
     * answer as a broker without the topic does. */
    rd_kafka_mock_topic_set_error(sr_broker_mock(b), "no-such-topic",
                                  RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART);
    sr_producer_t *p = sr_producer_new(kv, on_delivery, &o, err, sizeof(err));
    cr_assert_not_null(p, "%s", err);
    sr_producer_event_t ev = {.user = "u", .item = "i", .type = SR_EV_VIEW};
    cr_assert_eq(sr_producer_send(p, &ev), 0);
    sr_producer_flush(p, 15000);
    cr_assert_eq(o.failed, 1, "ok %d failed %d", o.ok, o.failed);
    cr_assert_eq(o.ok, 0);
    sr_producer_destroy(p);
    sr_broker_destroy(b);
}

Test(producer, delivery_error_when_the_cluster_is_down)
{
    sr_broker_t *b = start(1);
    struct outcomes o = {0};
    sr_producer_t *p = new_producer(sr_broker_bootstraps(b), &o, "kafka.message.timeout.ms", "1500");
    sr_producer_event_t ev = {.user = "u", .item = "i", .type = SR_EV_VIEW};
    cr_assert_eq(sr_producer_send(p, &ev), 0);
    cr_assert_eq(sr_producer_flush(p, 10000), 0);
    cr_assert_eq(o.ok, 1);
    rd_kafka_mock_broker_set_down(sr_broker_mock(b), 1);
    cr_assert_eq(sr_producer_send(p, &ev), 0);
    sr_producer_flush(p, 15000);
    cr_assert_eq(o.failed, 1, "ok %d failed %d", o.ok, o.failed);
    cr_assert(strstr(o.last_err, "timed out") != NULL, "%s", o.last_err);
    sr_producer_destroy(p);
    sr_broker_destroy(b);
}

/* ---- produce line parsing ---- */

static int parse(sr_produce_format_t f, const char *text, sr_producer_event_t *ev, char *err)
{
    static char line[1024], scratch[4096];
    snprintf(line, sizeof(line), "%s", text);
    return sr_produce_parse_line(f, line, strlen(line), ev, scratch, sizeof(scratch), err, 256);
}

Test(produce_parse, csv_lines)
{
    sr_producer_event_t ev;
    char err[256];
    cr_assert_eq(parse(SR_PRODUCE_CSV, "1700000000000,u1,i2,purchase\n", &ev, err), 0, "%s", err);
    cr_assert_str_eq(ev.user, "u1");
    cr_assert_str_eq(ev.item, "i2");
    cr_assert_eq(ev.type, SR_EV_PURCHASE);
    cr_assert_eq(ev.ts_ms, 1700000000000LL);
    cr_assert_eq(parse(SR_PRODUCE_CSV, "ts_ms,user,item,event", &ev, err), SR_ERR_EXISTS);
    cr_assert_eq(parse(SR_PRODUCE_CSV, "  \r\n", &ev, err), SR_ERR_NOTFOUND);
    cr_assert_eq(parse(SR_PRODUCE_CSV, "x,u1,i2,view", &ev, err), SR_ERR_PARSE);
}

Test(produce_parse, json_lines)
{
    sr_producer_event_t ev;
    char err[256];
    cr_assert_eq(parse(SR_PRODUCE_JSONL,
                       "{\"user\":\"u1\",\"item\":42,\"event\":\"ADD_TO_CART\",\"ts_ms\":1700000000000,"
                       "\"event_id\":\"e9\",\"session\":\"s\",\"query\":\"q\",\"value\":2.5,\"x\":1}",
                       &ev, err),
                 0, "%s", err);
    cr_assert_str_eq(ev.user, "u1");
    cr_assert_str_eq(ev.item, "42");
    cr_assert_eq(ev.type, SR_EV_CART);
    cr_assert_str_eq(ev.event_id, "e9");
    cr_assert_str_eq(ev.session, "s");
    cr_assert_str_eq(ev.query, "q");
    cr_assert_eq(ev.value, 2.5);
    cr_assert_eq(parse(SR_PRODUCE_JSONL, "{\"user\":\"u\",\"item\":\"i\",\"type\":\"click\"}", &ev, err), 0);
    cr_assert_eq(ev.ts_ms, 0, "absent ts_ms means now");
    cr_assert_eq(parse(SR_PRODUCE_JSONL, "{\"user\":\"u\",\"event\":\"click\"}", &ev, err), SR_ERR_PARSE);
    cr_assert_str_eq(err, "missing \"item\"");
    cr_assert_eq(parse(SR_PRODUCE_JSONL, "{\"user\":\"u\",\"item\":\"i\",\"event\":\"zap\"}", &ev, err),
                 SR_ERR_PARSE);
    cr_assert_eq(parse(SR_PRODUCE_JSONL, "{\"user\":\"u\",\"item\":\"i\",\"event\":\"view\",\"ts_ms\":\"1\"}",
                       &ev, err),
                 SR_ERR_PARSE);
    cr_assert_eq(parse(SR_PRODUCE_JSONL, "[1,2]", &ev, err), SR_ERR_PARSE);
    cr_assert_eq(parse(SR_PRODUCE_JSONL, "{\"user\":", &ev, err), SR_ERR_PARSE);
    cr_assert_eq(parse(SR_PRODUCE_JSONL, "{\"user\":\"a\\u0000b\",\"item\":\"i\",\"event\":\"view\"}", &ev, err),
                 SR_ERR_PARSE);
}

Test(produce_parse, format_names)
{
    sr_produce_format_t f;
    cr_assert_eq(sr_produce_format_parse("csv", &f), 0);
    cr_assert_eq(f, SR_PRODUCE_CSV);
    cr_assert_eq(sr_produce_format_parse("jsonl", &f), 0);
    cr_assert_eq(f, SR_PRODUCE_JSONL);
    cr_assert_eq(sr_produce_format_parse("xml", &f), SR_ERR_INVAL);
}

/* ---- histogram ---- */

Test(hist, quantiles_within_two_percent)
{
    sr_hist_t *h = sr_hist_new();
    cr_assert_eq(sr_hist_quantile(h, 0.5), 0);
    for (int i = 1; i <= 10000; i++) sr_hist_add(h, i * 0.1); /* 0.1 .. 1000 */
    cr_assert_eq(sr_hist_count(h), 10000);
    cr_assert_float_eq(sr_hist_quantile(h, 0.5), 500.0, 500.0 * 0.02);
    cr_assert_float_eq(sr_hist_quantile(h, 0.99), 990.0, 990.0 * 0.02);
    cr_assert_eq(sr_hist_max(h), 1000.0);
    sr_hist_t *g = sr_hist_new();
    sr_hist_add(g, 5000);
    sr_hist_add(g, -3);
    sr_hist_add(g, NAN);
    sr_hist_merge(h, g);
    cr_assert_eq(sr_hist_count(h), 10003);
    cr_assert_eq(sr_hist_max(h), 5000.0);
    Streamrec__V1__Quantiles q = STREAMREC__V1__QUANTILES__INIT;
    sr_hist_to_proto(h, &q);
    cr_assert_eq(q.count, 10003);
    cr_assert_eq(q.max, 5000.0);
    sr_hist_reset(h);
    cr_assert_eq(sr_hist_count(h), 0);
    sr_hist_destroy(g);
    sr_hist_destroy(h);
    sr_hist_destroy(NULL);
}

Test(hist, tiny_and_huge_values)
{
    sr_hist_t *h = sr_hist_new();
    sr_hist_add(h, 1e-6);
    cr_assert_leq(sr_hist_quantile(h, 0.5), 1e-3);
    sr_hist_reset(h);
    sr_hist_add(h, 1e30);
    cr_assert_eq(sr_hist_max(h), 0x1p40);
    sr_hist_destroy(h);
}

/* ---- metrics publisher ---- */

Test(metrics_pub, set_instance_renames_the_key_and_snapshots)
{
    sr_broker_t *b = start(1);
    sr_conf_t *conf = sr_conf_new();
    char err[256];
    cr_assert_eq(sr_conf_set(conf, "kafka.bootstrap.servers", sr_broker_bootstraps(b), err, sizeof(err)), 0,
                 "%s", err);
    cr_assert_eq(sr_conf_set(conf, "metrics.instance", "from-conf", err, sizeof(err)), 0, "%s", err);
    sr_metrics_pub_t *pub = sr_metrics_pub_new(conf, NULL, "trainer", err, sizeof(err));
    cr_assert_not_null(pub, "%s", err);
    sr_metrics_pub_set_instance(pub, "");
    cr_assert_str_eq(sr_metrics_pub_key(pub), "trainer/from-conf");
    sr_metrics_pub_set_instance(pub, "t7");
    cr_assert_str_eq(sr_metrics_pub_key(pub), "trainer/t7");
    Streamrec__V1__MetricsSnapshot s = STREAMREC__V1__METRICS_SNAPSHOT__INIT;
    cr_assert_eq(sr_metrics_pub_send(pub, &s), 0);
    sr_metrics_pub_destroy(pub);

    msg_t msgs[4];
    int n = consume_all(sr_broker_bootstraps(b), "metrics", 1, msgs, 4);
    cr_assert_eq(n, 1);
    Streamrec__V1__MetricsSnapshot *m =
        streamrec__v1__metrics_snapshot__unpack(NULL, msgs[0].len, msgs[0].payload);
    cr_assert_not_null(m);
    cr_assert_str_eq(m->instance, "t7");
    streamrec__v1__metrics_snapshot__free_unpacked(m, NULL);
    msg_free(&msgs[0]);
    sr_conf_destroy(conf);
    sr_broker_destroy(b);
}

Test(metrics_pub, snapshot_lands_with_component_key)
{
    sr_broker_t *b = start(1);
    sr_conf_t *conf = sr_conf_new();
    char err[256];
    cr_assert_eq(sr_conf_set(conf, "kafka.bootstrap.servers", sr_broker_bootstraps(b), err, sizeof(err)), 0,
                 "%s", err);
    cr_assert_eq(sr_conf_set(conf, "metrics.instance", "t1", err, sizeof(err)), 0, "%s", err);
    sr_metrics_pub_t *pub = sr_metrics_pub_new(conf, NULL, "trainer", err, sizeof(err));
    cr_assert_not_null(pub, "%s", err);
    cr_assert_str_eq(sr_metrics_pub_key(pub), "trainer/t1");
    Streamrec__V1__MetricsSnapshot s = STREAMREC__V1__METRICS_SNAPSHOT__INIT;
    s.events_in = 123;
    cr_assert_eq(sr_metrics_pub_send(pub, &s), 0);
    sr_metrics_pub_destroy(pub); /* flushes */

    msg_t msgs[4];
    int n = consume_all(sr_broker_bootstraps(b), "metrics", 1, msgs, 4);
    cr_assert_eq(n, 1);
    cr_assert_eq(msgs[0].key_len, strlen("trainer/t1"));
    Streamrec__V1__MetricsSnapshot *m =
        streamrec__v1__metrics_snapshot__unpack(NULL, msgs[0].len, msgs[0].payload);
    cr_assert_not_null(m);
    cr_assert_str_eq(m->component, "trainer");
    cr_assert_str_eq(m->instance, "t1");
    cr_assert_eq(m->events_in, 123);
    cr_assert_gt(m->ts_ms, 0);
    streamrec__v1__metrics_snapshot__free_unpacked(m, NULL);
    msg_free(&msgs[0]);
    sr_conf_destroy(conf);
    sr_broker_destroy(b);
}
