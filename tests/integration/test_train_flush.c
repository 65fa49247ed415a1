/* The trainer's flush runs on its own thread while learning goes on: a
 * flush held up in Redis does not stop consuming and learning, and a
 * rebalance that revokes partitions while a flush is held up waits for it
 * and then flushes the rest, losing nothing.  A flush is held up with
 * `CLIENT PAUSE <ms> WRITE`: Redis delays every write (the flush script)
 * but still serves reads (the trainer's warm loads).  Real `streamrec
 * broker`, real redis-server, the real binary. */
#include "train_harness.h"

TestSuite(train_flush, .fini = th_fini);

/* Holds every Redis write back for ms milliseconds (reads go on). */
static void pause_writes(th_env_t *e, int ms)
{
    char port[16], dur[16];
    snprintf(port, sizeof(port), "%d", e->redis_port);
    snprintf(dur, sizeof(dur), "%d", ms);
    char *argv[] = {"redis-cli", "-p", port, "CLIENT", "PAUSE", dur, "WRITE", NULL};
    char *out = NULL;
    cr_assert_eq(sr_test_run(argv, &out, 5000), 0, "redis-cli CLIENT PAUSE failed");
    cr_assert(out && strncmp(out, "OK", 2) == 0, "CLIENT PAUSE: %s", out ? out : "");
    free(out);
}

/* Sum of the partition offsets the default group stored in Redis (a read:
 * served during a write pause): how many events Redis holds. */
static long stored_offsets(th_env_t *e)
{
    char port[16];
    snprintf(port, sizeof(port), "%d", e->redis_port);
    char *argv[] = {"redis-cli", "-p", port, "HVALS", "{sr}:off:streamrec-trainer", NULL};
    char *out = NULL;
    cr_assert_eq(sr_test_run(argv, &out, 5000), 0);
    long sum = 0;
    for (char *p = out; p && *p;) {
        sum += strtol(p, &p, 10);
        while (*p == '\n' || *p == '\r') p++;
    }
    free(out);
    return sum;
}

/* events_applied of the trainer's latest metrics snapshot (topic.metrics,
 * through `streamrec top --once --json`; Redis is not involved). */
static long metrics_applied(th_env_t *e)
{
    char boot[300];
    snprintf(boot, sizeof(boot), "kafka.bootstrap.servers=%s", e->bootstrap);
    char *argv[] = {(char *)sr_test_bin(), "top", "--once", "--json", "-X", boot, NULL};
    char *out = NULL;
    long n = -1;
    if (sr_test_run(argv, &out, 20000) == 0 && out) {
        const char *p = strstr(out, "\"events_applied\":");
        if (p) n = atol(p + 17);
    }
    free(out);
    return n;
}

/* A broker with 4 partitions, a Redis, a simulated log (its path) with the
 * expected per-user counts, and the first half of the log in the topic. */
static const char *start_half(int seed, th_count_t **c, size_t *nu, long *total)
{
    th_start(&th_env, 4);
    const char *log = th_simulate(&th_env, "log.csv", 300, 300, 8000, seed);
    *nu = th_expected(log, c, total);
    cr_assert_eq(th_produce_csv_range(&th_env, log, 0, *total / 2), *total / 2);
    return log;
}

/* The second half of a log arrives while the trainer's flush is held up
 * in Redis: the trainer learns all of it meanwhile (its metrics say so
 * while Redis still holds only the first half), and once Redis takes
 * writes again everything is stored exactly once. */
Test(train_flush, learning_continues_during_a_held_up_flush, .timeout = 300)
{
    th_count_t *c;
    size_t nu;
    long total;
    const char *log = start_half(11, &c, &nu, &total);
    long half = total / 2;

    th_argv_t a;
    /* A long command timeout: the held-up flush stays one flush in flight
     * instead of timing out and being retried. */
    const char *x[] = {"--json", "-X", "trainer.batch.size=100", "-X", "redis.timeout.ms=30000",
                       "-X", "metrics.interval.ms=100", NULL};
    cr_assert_eq(sr_test_spawn(&th_trainers[0], th_train_argv(&th_env, &a, x), 1), 0);
    cr_assert_eq(th_wait_applied(&th_env, c, nu, half, 120000), half);
    cr_assert_eq(stored_offsets(&th_env), half);

    pause_writes(&th_env, 8000);
    long long paused_at = sr_test_now_ms();
    /* A first part, whose flush then hangs in Redis; only what arrives
     * after that flush has started is certain to be learned while it is in
     * flight (a backlog read in one batch is learned before its flush). */
    long part = half + (total - half) / 4;
    cr_assert_eq(th_produce_csv_range(&th_env, log, half, part), part - half);
    long learned = -1;
    while (sr_test_now_ms() - paused_at < 3000 && (learned = metrics_applied(&th_env)) < part)
        usleep(50000);
    cr_assert_eq(learned, part, "the first part was not learned");
    usleep(300000); /* > trainer.flush.interval.ms: its flush is now held up */
    cr_assert_eq(th_produce_csv_range(&th_env, log, part, -1), total - part);
    while (sr_test_now_ms() - paused_at < 6500 && (learned = metrics_applied(&th_env)) < total)
        usleep(100000);
    long stored = stored_offsets(&th_env);
    cr_log_info("%.1f s into the pause: %ld learned, %ld in Redis",
                (double)(sr_test_now_ms() - paused_at) / 1000.0, learned, stored);
    cr_assert(sr_test_now_ms() - paused_at < 7500, "the checks took longer than the pause");
    cr_expect_eq(learned, total, "learning stopped while the flush was held up");
    cr_expect_eq(stored, half, "Redis took a write during the pause");

    long applied = th_wait_applied(&th_env, c, nu, total, 120000);
    cr_expect_eq(applied, total);
    kill(th_trainers[0].pid, SIGTERM);
    char json[2048];
    cr_assert(th_read_json(&th_trainers[0], json, sizeof(json), 30000) > 0, "no stats");
    int st = sr_test_stop(&th_trainers[0], SIGTERM, 30000);
    cr_expect(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "trainer status %d", st);
    /* At least the part produced after the flush hung was learned while it
     * was in flight. */
    cr_expect(th_json_num(json, "events_while_flushing") >= total - part, "%s", json);
    cr_expect_eq(th_mismatches(&th_env, c, nu, &applied), 0);
    cr_expect_eq(applied, total);
    cr_expect_eq(stored_offsets(&th_env), total);
    th_free_counts(c, nu);
}

/* A second trainer joins while the first one's flush is held up: the
 * first one's revoke waits for that flush, flushes what it learned since,
 * and only then gives its partitions away.  Counts stay exact. */
Test(train_flush, revoke_during_a_held_up_flush_loses_nothing, .timeout = 300)
{
    th_count_t *c;
    size_t nu;
    long total;
    const char *log = start_half(13, &c, &nu, &total);
    long half = total / 2;

    th_argv_t a1, a2;
    const char *x1[] = {"--json", "-X", "trainer.batch.size=100", "-X", "redis.timeout.ms=30000",
                        "--instance", "t1", NULL};
    const char *x2[] = {"-X", "trainer.batch.size=100", "--instance", "t2", NULL};
    cr_assert_eq(sr_test_spawn(&th_trainers[0], th_train_argv(&th_env, &a1, x1), 1), 0);
    cr_assert_eq(th_wait_applied(&th_env, c, nu, half, 120000), half);

    pause_writes(&th_env, 6000);
    cr_assert_eq(th_produce_csv_range(&th_env, log, half, total - total / 4), half - total / 4);
    usleep(500000); /* t1 learns some of it; its flush is held up */
    cr_assert_eq(stored_offsets(&th_env), half);
    cr_assert_eq(sr_test_spawn(&th_trainers[1], th_train_argv(&th_env, &a2, x2), 0), 0);
    th_produce_csv_range(&th_env, log, total - total / 4, -1);

    long applied = th_wait_applied(&th_env, c, nu, total, 180000);
    cr_expect_eq(applied, total);
    kill(th_trainers[0].pid, SIGTERM);
    char json[2048];
    cr_assert(th_read_json(&th_trainers[0], json, sizeof(json), 30000) > 0, "no stats from t1");
    sr_test_stop(&th_trainers[0], SIGTERM, 30000);
    sr_test_stop(&th_trainers[1], SIGTERM, 30000);
    cr_log_info("t1: %s", json);
    cr_expect(th_json_num(json, "rebalances") >= 2, "t1 saw no rebalance: %s", json);
    cr_expect(th_json_num(json, "flush_wait_s") > 0.5, "t1 did not wait for the held-up flush: %s",
              json);
    cr_expect_eq(th_mismatches(&th_env, c, nu, &applied), 0);
    cr_expect_eq(applied, total);
    cr_expect_eq(stored_offsets(&th_env), total);
    th_free_counts(c, nu);
}
