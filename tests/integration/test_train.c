/* `streamrec train` end to end against a real `streamrec broker` and a real
 * redis-server: every event of a log applied exactly once, duplicates and
 * bad messages handled, Redis going away and coming back. */
#include "train_harness.h"
#include "sr_time.h"

TestSuite(train, .fini = th_fini);

/* Runs `streamrec train` with extra arguments (--exit-when-idle among
 * them) until it exits, which must be with 0; returns its stdout. */
static char *train(const char *const *extra)
{
    th_argv_t a;
    char *out = NULL;
    int rc = sr_test_run(th_train_argv(&th_env, &a, extra), &out, 180000);
    cr_assert_eq(rc, 0, "train exited %d", rc);
    return out;
}

/* The basic promise: after training a simulated log to its end, each
 * user's `events` in Redis equals that user's number of events. */
Test(train, counts_exact_after_training_a_log, .timeout = 240)
{
    th_start(&th_env, 4);
    const char *log = th_simulate(&th_env, "log.csv", 300, 400, 12000, 7);
    th_count_t *c;
    long total;
    size_t nu = th_expected(log, &c, &total);
    cr_assert_eq(th_produce_csv(&th_env, log), total);

    const char *extra[] = {"--exit-when-idle", "3000", "--json", NULL};
    char *out = train(extra);
    char want[64];
    snprintf(want, sizeof(want), "\"events_applied\":%ld,", total);
    cr_expect(strstr(out, want), "stats: %s", out);
    /* A lone trainer's flushes are transactions nobody aborts. */
    cr_expect(strstr(out, "\"flush_tx_aborts\":0,\"flushes_by_script\":0,"), "stats: %s", out);
    long applied;
    cr_expect_eq(th_mismatches(&th_env, c, nu, &applied), 0);
    cr_expect_eq(applied, total);
    free(out);

    /* The last metrics snapshot (written on exit) says the same. */
    char boot[300];
    snprintf(boot, sizeof(boot), "kafka.bootstrap.servers=%s", th_env.bootstrap);
    char *top[] = {(char *)sr_test_bin(), "top", "--once", "--json", "-X", boot, NULL};
    char *tj = NULL;
    cr_expect_eq(sr_test_run(top, &tj, 60000), 0);
    cr_expect(tj && strstr(tj, "\"component\":\"trainer\""), "top: %s", tj ? tj : "");
    cr_expect(tj && strstr(tj, want), "top: %s", tj ? tj : "");
    cr_expect(tj && strstr(tj, "\"events_invalid\":0,"), "top: %s", tj ? tj : "");
    free(tj);
    th_free_counts(c, nu);
}

/* A restarted trainer warms up when it gets its partitions, not when the
 * first events arrive (which then waited for it): it loads the catalogue
 * (about 100 ms for 20,000 items) and the users of the replayed tail of
 * each partition (trainer.preload.events), so with no new events at all
 * it has loaded both; with the preload off, no users. */
Test(train, a_restarted_trainer_warms_up_at_assignment, .timeout = 240)
{
    th_start(&th_env, 2);
    const char *log = th_simulate(&th_env, "log.csv", 100, 150, 3000, 3);
    th_count_t *c;
    long total;
    size_t nu = th_expected(log, &c, &total);
    cr_assert_eq(th_produce_csv(&th_env, log), total);
    const char *extra[] = {"--exit-when-idle", "1500", "--json", NULL};
    char *out = train(extra);
    cr_assert_eq(th_json_num(out, "events_applied"), total, "stats: %s", out);
    free(out);
    out = train(extra);
    cr_expect_eq(th_json_num(out, "events_applied"), 0, "stats: %s", out);
    cr_expect_gt(th_json_num(out, "items_loaded"), 100, "stats: %s", out);
    cr_expect_eq(th_json_num(out, "users_loaded"), (double)nu, "all %zu users: %s", nu, out);
    free(out);
    const char *off[] = {"--exit-when-idle", "1500", "--json", "-X", "trainer.preload.events=0",
                         NULL};
    out = train(off);
    cr_expect_eq(th_json_num(out, "users_loaded"), 0, "stats: %s", out);
    free(out);
    th_free_counts(c, nu);
}

/* trainer.eval.max_per_s caps the live evaluations per second however
 * many trainer.eval.every asks for: with every event eligible and a cap
 * of 5, a run of T seconds evaluates at most 5 per started second. */
Test(train, live_evaluations_stay_within_their_budget_per_second, .timeout = 240)
{
    th_start(&th_env, 2);
    const char *log = th_simulate(&th_env, "log.csv", 200, 300, 6000, 5);
    cr_assert_eq(th_produce_csv(&th_env, log), 6000);

    const char *extra[] = {"--exit-when-idle", "1500", "--json", "-X", "trainer.eval.every=1",
                           "-X", "trainer.eval.max_per_s=5", NULL};
    int64_t t0 = sr_mono_ms();
    char *out = train(extra);
    double wall_s = (double)(sr_mono_ms() - t0) / 1000.0;
    double evaluated = th_json_num(out, "evaluated");
    cr_expect_gt(evaluated, 0, "stats: %s", out);
    /* Without the cap this is nearly all 6000 events. */
    cr_expect_leq(evaluated, 5.0 * (wall_s + 1.0), "%.0f evaluations in %.1f s: %s", evaluated,
                  wall_s, out);
    free(out);
}

/* Reads every message of topic.dlq: reason tokens (sr-error) into
 * reasons[] (comma separated), returns the count. */
static int read_dlq(th_env_t *e, char *reasons, size_t size)
{
    char err[256];
    rd_kafka_conf_t *kc = rd_kafka_conf_new();
    rd_kafka_conf_set(kc, "bootstrap.servers", e->bootstrap, err, sizeof(err));
    rd_kafka_conf_set(kc, "group.id", "dlq-reader", err, sizeof(err));
    rd_kafka_conf_set(kc, "enable.partition.eof", "true", err, sizeof(err));
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, kc, err, sizeof(err));
    cr_assert_not_null(rk);
    const rd_kafka_metadata_t *md;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, "events.dlq", NULL);
    cr_assert_eq(rd_kafka_metadata(rk, 0, rkt, &md, 5000), RD_KAFKA_RESP_ERR_NO_ERROR);
    int np = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(np);
    for (int p = 0; p < np; p++)
        rd_kafka_topic_partition_list_add(l, "events.dlq", p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    int eofs = 0, n = 0;
    reasons[0] = 0;
    long long deadline = sr_test_now_ms() + 20000;
    while (eofs < np && sr_test_now_ms() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (!m) continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            eofs++;
        } else if (!m->err) {
            rd_kafka_headers_t *h = NULL;
            const void *v = NULL;
            size_t vl = 0;
            if (rd_kafka_message_headers(m, &h) == RD_KAFKA_RESP_ERR_NO_ERROR &&
                rd_kafka_header_get_last(h, "sr-error", &v, &vl) == RD_KAFKA_RESP_ERR_NO_ERROR) {
                size_t used = strlen(reasons);
                snprintf(reasons + used, size - used, "%.*s,", (int)vl, (const char *)v);
            }
            n++;
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return n;
}

/* Duplicates count once; every kind of bad message lands in the DLQ with
 * its reason, and the valid events around it are applied. */
Test(train, duplicates_once_and_bad_messages_to_dlq, .timeout = 240)
{
    th_start(&th_env, 2);
    rd_kafka_t *rk = th_producer(&th_env);
    int64_t ts = 1767225600000LL; /* 2026-01-01 */
    sr_event_t ev = {.user = "alice", .user_len = 5, .item = "i1", .item_len = 2,
                     .type = SR_EV_CLICK, .ts_ms = ts};
    th_send_event(rk, &ev, "a1");
    th_send_event(rk, &ev, "a1"); /* producer retry: same id */
    ev.item = "i2";
    ev.ts_ms = ts + 1000;
    th_send_event(rk, &ev, "a2");
    /* garbage bytes */
    th_send_raw(rk, "alice", 5, "\xff\xff\xff\xff garbage", 13);
    /* truncated protobuf: a valid encoding cut in the middle of the user */
    {
        sr_event_wire_t w;
        memset(&w, 0, sizeof(w));
        w.ev = ev;
        w.event_id = "a9";
        w.event_id_len = 2;
        char buf[512];
        int n = sr_event_encode(&w, buf, sizeof(buf));
        cr_assert(n > 8);
        th_send_raw(rk, "alice", 5, buf, 7);
    }
    /* oversize user id (200 bytes) */
    {
        char big[201];
        memset(big, 'u', 200);
        big[200] = 0;
        sr_event_t b = ev;
        b.user = big;
        b.user_len = 200;
        th_send_event(rk, &b, "big1");
    }
    /* wrong type: field 4 = 99, with user/item/ts present */
    {
        const char raw[] = "\x12\x05" "alice" "\x1a\x02" "i3" "\x20\x63" "\x28\x80\xd0\xea\xb6\xb7\x33";
        th_send_raw(rk, "alice", 5, raw, sizeof(raw) - 1);
    }
    ev.item = "i4";
    ev.ts_ms = ts + 2000;
    th_send_event(rk, &ev, "a3");
    sr_event_t bob = {.user = "bob", .user_len = 3, .item = "i1", .item_len = 2,
                      .type = SR_EV_PURCHASE, .ts_ms = ts + 500};
    th_send_event(rk, &bob, "b1");
    th_send_event(rk, &bob, "b1");
    th_send_event(rk, &bob, "b1");
    th_flush(rk);
    rd_kafka_destroy(rk);

    th_argv_t a;
    const char *extra[] = {"--exit-when-idle", "3000", "--json", NULL};
    char *out = NULL;
    int rc = sr_test_run(th_train_argv(&th_env, &a, extra), &out, 120000);
    cr_assert_eq(rc, 0);
    cr_expect(strstr(out, "\"events_applied\":4,"), "%s", out);
    cr_expect(strstr(out, "\"events_duplicate\":3,"), "%s", out);
    cr_expect(strstr(out, "\"events_invalid\":4,"), "%s", out);
    free(out);

    th_count_t want[2] = {{"alice", 3}, {"bob", 1}};
    long applied;
    cr_expect_eq(th_mismatches(&th_env, want, 2, &applied), 0);

    char reasons[1024];
    int n = read_dlq(&th_env, reasons, sizeof(reasons));
    cr_expect_eq(n, 4, "dlq: %s", reasons);
    cr_expect(strstr(reasons, "malformed") || strstr(reasons, "truncated"), "%s", reasons);
    cr_expect(strstr(reasons, "truncated"), "%s", reasons);
    cr_expect(strstr(reasons, "id_too_long"), "%s", reasons);
    cr_expect(strstr(reasons, "type_unknown"), "%s", reasons);

}

/* Redis stops mid-stream and comes back on the same port with its data:
 * the trainer waits, retries, and in the end every event is applied
 * exactly once. */
Test(train, redis_restart_mid_stream_loses_nothing, .timeout = 300)
{
    th_start(&th_env, 4);
    /* Replace the fixture's redis with one that keeps its data on disk. */
    sr_test_stop(&th_env.redis, SIGTERM, 5000);
    int port = th_env.redis_port;
    cr_assert_eq(th_redis_start_on(&th_env.redis, port, th_env.dir), 0);

    const char *log = th_simulate(&th_env, "log.csv", 300, 400, 15000, 11);
    th_count_t *c;
    long total;
    size_t nu = th_expected(log, &c, &total);
    th_produce_csv_range(&th_env, log, 0, total / 3);

    sr_test_proc_t *trp = &th_trainers[0];
    th_argv_t a;
    const char *extra[] = {"--json", NULL};
    cr_assert_eq(sr_test_spawn(trp, th_train_argv(&th_env, &a, extra), 1), 0);
    long applied = th_wait_applied(&th_env, c, nu, total / 3, 60000);
    cr_assert_eq(applied, total / 3, "first third not applied");

    /* Redis away while more events arrive. */
    sr_test_stop(&th_env.redis, SIGTERM, 5000);
    th_produce_csv_range(&th_env, log, total / 3, -1);
    sleep(2);
    cr_assert_eq(th_redis_start_on(&th_env.redis, port, th_env.dir), 0);

    applied = th_wait_applied(&th_env, c, nu, total, 120000);
    int st = sr_test_stop(trp, SIGTERM, 30000);
    cr_expect(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "trainer status %d", st);
    cr_expect_eq(th_mismatches(&th_env, c, nu, &applied), 0);
    cr_expect_eq(applied, total);
    th_free_counts(c, nu);
}
