/* The embedded broker (librdkafka 2.0.2 mock cluster), in process: topics
 * with the asked partition count, the retention limit that sr_broker.h and
 * `streamrec broker --help` promise, and what the trainer relies on:
 * consumer groups with subscribe, rebalance between two members, and
 * committed offsets that a restarted member reads back. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "sr_broker.h"

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static sr_broker_t *start(int partitions)
{
    const char *topics[] = {"events", "events.dlq", "metrics"};
    char err[256];
    sr_broker_t *b = sr_broker_new(1, partitions, topics, 3, err, sizeof(err));
    cr_assert_not_null(b, "%s", err);
    return b;
}

static rd_kafka_t *producer(const char *bootstrap)
{
    rd_kafka_conf_t *kc = rd_kafka_conf_new();
    char err[256];
    cr_assert_eq(rd_kafka_conf_set(kc, "bootstrap.servers", bootstrap, err, sizeof(err)), 0);
    rd_kafka_conf_set(kc, "linger.ms", "20", err, sizeof(err));
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, err, sizeof(err));
    cr_assert_not_null(rk, "%s", err);
    return rk;
}

static void produce_n(const char *bootstrap, const char *topic, int n, size_t size)
{
    rd_kafka_t *p = producer(bootstrap);
    char *buf = malloc(size);
    memset(buf, 'x', size);
    for (int i = 0; i < n; i++) {
        char key[32];
        snprintf(key, sizeof(key), "u%d", i);
        rd_kafka_resp_err_t e;
        while ((e = rd_kafka_producev(p, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, strlen(key)),
                                      RD_KAFKA_V_VALUE(buf, size),
                                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END)) ==
               RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(p, 10);
        cr_assert_eq(e, 0, "%s", rd_kafka_err2str(e));
    }
    cr_assert_eq(rd_kafka_flush(p, 30000), 0);
    free(buf);
    rd_kafka_destroy(p);
}

Test(broker, topics_have_the_asked_partitions)
{
    sr_broker_t *b = start(6);
    cr_assert(strncmp(sr_broker_bootstraps(b), "127.0.0.1:", 10) == 0);
    rd_kafka_t *p = producer(sr_broker_bootstraps(b));
    const struct rd_kafka_metadata *md;
    cr_assert_eq(rd_kafka_metadata(p, 1, NULL, &md, 5000), 0);
    int found = 0;
    for (int i = 0; i < md->topic_cnt; i++) {
        const char *t = md->topics[i].topic;
        if (!strcmp(t, "events") || !strcmp(t, "events.dlq") || !strcmp(t, "metrics")) {
            cr_assert_eq(md->topics[i].partition_cnt, 6, "%s", t);
            found++;
        }
    }
    cr_assert_eq(found, 3);
    rd_kafka_metadata_destroy(md);
    rd_kafka_destroy(p);
    cr_assert_eq(sr_broker_topic_create(b, "extra", 2), 0);
    sr_broker_destroy(b);
    sr_broker_destroy(NULL);
}

Test(broker, rejects_bad_arguments)
{
    char err[128];
    cr_assert_null(sr_broker_new(0, 4, NULL, 0, err, sizeof(err)));
    cr_assert_null(sr_broker_new(1, 0, NULL, 0, err, sizeof(err)));
}

/* The documented retention: about 5 MiB per partition; older batches are
 * dropped and the low watermark moves up. */
Test(broker, keeps_about_5_mb_per_partition)
{
    sr_broker_t *b = start(1);
    produce_n(sr_broker_bootstraps(b), "events", 9000, 1000); /* ~9 MB */
    rd_kafka_t *p = producer(sr_broker_bootstraps(b));
    int64_t lo = -1, hi = -1;
    cr_assert_eq(rd_kafka_query_watermark_offsets(p, "events", 0, &lo, &hi, 5000), 0);
    cr_assert_eq(hi, 9000);
    cr_assert_gt(lo, 0, "old messages were dropped");
    long long kept_bytes = (hi - lo) * 1000LL;
    cr_assert_leq(kept_bytes, 5LL * 1024 * 1024 + 100 * 1000, "kept %lld bytes", kept_bytes);
    cr_assert_geq(kept_bytes, 4LL * 1024 * 1024, "kept %lld bytes", kept_bytes);
    rd_kafka_destroy(p);
    sr_broker_destroy(b);
}

struct member {
    rd_kafka_t *rk;
    int assigned; /* partitions currently assigned */
    int rebalances;
};

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    struct member *m = opaque;
    m->rebalances++;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        rd_kafka_assign(rk, parts);
        m->assigned = parts->cnt;
    } else {
        rd_kafka_assign(rk, NULL);
        m->assigned = 0;
    }
}

static void member_start(struct member *m, const char *bootstrap)
{
    rd_kafka_conf_t *kc = rd_kafka_conf_new();
    char err[256];
    rd_kafka_conf_set(kc, "bootstrap.servers", bootstrap, err, sizeof(err));
    rd_kafka_conf_set(kc, "group.id", "g1", err, sizeof(err));
    rd_kafka_conf_set(kc, "auto.offset.reset", "earliest", err, sizeof(err));
    rd_kafka_conf_set(kc, "enable.auto.commit", "false", err, sizeof(err));
    rd_kafka_conf_set(kc, "session.timeout.ms", "6000", err, sizeof(err));
    rd_kafka_conf_set(kc, "heartbeat.interval.ms", "200", err, sizeof(err));
    rd_kafka_conf_set_rebalance_cb(kc, rebalance_cb);
    rd_kafka_conf_set_opaque(kc, m);
    m->rk = rd_kafka_new(RD_KAFKA_CONSUMER, kc, err, sizeof(err));
    cr_assert_not_null(m->rk, "%s", err);
    rd_kafka_poll_set_consumer(m->rk);
    rd_kafka_topic_partition_list_t *t = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(t, "events", RD_KAFKA_PARTITION_UA);
    cr_assert_eq(rd_kafka_subscribe(m->rk, t), 0);
    rd_kafka_topic_partition_list_destroy(t);
}

static void member_stop(struct member *m)
{
    rd_kafka_consumer_close(m->rk);
    rd_kafka_destroy(m->rk);
    m->rk = NULL;
}

/* Polls the members until a has want_a and b (if any) want_b partitions,
 * or 30 s pass (a bound, not a timed assertion). */
static int poll_until(struct member *a, int want_a, struct member *b, int want_b)
{
    long long deadline = mono_ms() + 30000;
    while (mono_ms() < deadline) {
        struct member *ms[2] = {a, b};
        for (int i = 0; i < 2; i++) {
            if (!ms[i]) continue;
            rd_kafka_message_t *msg = rd_kafka_consumer_poll(ms[i]->rk, 20);
            if (msg) rd_kafka_message_destroy(msg);
        }
        if (a->assigned == want_a && (!b || b->assigned == want_b)) return 1;
    }
    return 0;
}

Test(broker, consumer_group_rebalances_and_keeps_committed_offsets)
{
    sr_broker_t *b = start(4);
    const char *bs = sr_broker_bootstraps(b);
    produce_n(bs, "events", 400, 50);

    struct member m1 = {0}, m2 = {0}, m3 = {0};
    member_start(&m1, bs);
    cr_assert(poll_until(&m1, 4, NULL, 0), "first member got all 4 partitions");

    /* A second member joins: the group rebalances to 2 + 2. */
    member_start(&m2, bs);
    cr_assert(poll_until(&m1, 2, &m2, 2), "rebalance split the partitions: %d + %d", m1.assigned,
              m2.assigned);
    cr_assert_geq(m1.rebalances, 3, "m1 saw assign, revoke, assign");

    /* Commit offsets for m2's partitions, then m2 leaves: m1 gets all
     * four back. */
    rd_kafka_topic_partition_list_t *cur = NULL;
    cr_assert_eq(rd_kafka_assignment(m2.rk, &cur), 0);
    cr_assert_eq(cur->cnt, 2);
    int parts[2] = {cur->elems[0].partition, cur->elems[1].partition};
    rd_kafka_topic_partition_list_destroy(cur);
    rd_kafka_topic_partition_list_t *off = rd_kafka_topic_partition_list_new(2);
    for (int i = 0; i < 2; i++) rd_kafka_topic_partition_list_add(off, "events", parts[i])->offset = 7 + parts[i];
    cr_assert_eq(rd_kafka_commit(m2.rk, off, 0), 0);
    member_stop(&m2);
    cr_assert(poll_until(&m1, 4, NULL, 0), "m1 took all partitions back");
    member_stop(&m1);

    /* A fresh member of the group reads the committed offsets back. */
    member_start(&m3, bs);
    for (int i = 0; i < 2; i++) off->elems[i].offset = -1;
    cr_assert_eq(rd_kafka_committed(m3.rk, off, 10000), 0);
    for (int i = 0; i < 2; i++)
        cr_assert_eq(off->elems[i].offset, 7 + off->elems[i].partition, "partition %d",
                     off->elems[i].partition);
    rd_kafka_topic_partition_list_destroy(off);
    member_stop(&m3);
    sr_broker_destroy(b);
}
