/* Exactly-once under failure: trainers killed with SIGKILL at random
 * points and restarted, and a group of two trainers losing one member.
 * Real `streamrec broker`, real redis-server, the real binary. */
#include "train_harness.h"

TestSuite(train_crash, .fini = th_fini);

/* Second redis of the bit-identical comparison (stopped by PID in fini2). */
static sr_test_proc_t redis_b = {-1, -1};

static void fini2(void)
{
    if (redis_b.pid > 0) sr_test_stop(&redis_b, SIGKILL, 1000);
    th_fini();
}

static sr_store_t *store_on(int port)
{
    char err[256];
    sr_store_opts_t o;
    sr_store_opts_init(&o);
    o.port = port;
    o.timeout_ms = 5000;
    sr_store_t *s = sr_store_new(&o, err, sizeof(err));
    cr_assert_not_null(s, "%s", err);
    return s;
}

/* Waits until Redis holds at least one flushed event (or the trainer is
 * gone); returns the stored sum. */
static long wait_progress(th_env_t *e, const th_count_t *c, size_t n, long above, int timeout_ms)
{
    long long deadline = sr_test_now_ms() + timeout_ms;
    long applied = 0;
    while (sr_test_now_ms() < deadline) {
        th_mismatches_q(e, c, n, &applied, 1);
        if (applied > above) break;
        usleep(10000);
    }
    return applied;
}

/* Every field of every user and item, and the global state, must be the
 * same bits in both Redis databases.  (Raw keys cannot be compared: item
 * numbers and the update stream depend on where flushes fell.) */
static void expect_same_state(int port_a, int port_b, const th_count_t *c, size_t nu,
                              const char *log)
{
    sr_store_t *a = store_on(port_a), *b = store_on(port_b);
    enum { B = 128 };
    const char *ids[B];
    sr_store_user_t ua[B], ub[B];
    long diff_users = 0;
    for (size_t i = 0; i < nu; i += B) {
        size_t m = nu - i < B ? nu - i : B;
        for (size_t j = 0; j < m; j++) ids[j] = c[i + j].user;
        cr_assert(sr_store_get_users(a, ids, NULL, m, ua) >= 0);
        /* b's results must survive a's next call: copy what we compare */
        cr_assert(sr_store_get_users(b, ids, NULL, m, ub) >= 0);
        /* a's memory is valid until the next call on a, b's until the next on b */
        for (size_t j = 0; j < m; j++) {
            const sr_store_user_t *x = &ua[j], *y = &ub[j];
            int same = x->exists == y->exists && x->events == y->events &&
                       x->last_ts_ms == y->last_ts_ms && x->dim == y->dim &&
                       x->n_acc == y->n_acc && x->n_recent == y->n_recent &&
                       memcmp(x->vec, y->vec, x->dim * sizeof(float)) == 0 &&
                       memcmp(x->acc, y->acc, x->n_acc * sizeof(float)) == 0;
            for (uint32_t k = 0; same && k < x->n_recent; k++)
                same = x->recent[k].ts_ms == y->recent[k].ts_ms &&
                       x->recent[k].type == y->recent[k].type &&
                       x->recent[k].item_id_len == y->recent[k].item_id_len &&
                       /* NULL: a number Redis cannot name, never right */
                       x->recent[k].item_id && y->recent[k].item_id &&
                       memcmp(x->recent[k].item_id, y->recent[k].item_id,
                              x->recent[k].item_id_len) == 0;
            if (!same) {
                if (diff_users < 3) cr_log_warn("user %s differs", ids[j]);
                diff_users++;
            }
        }
    }
    cr_expect_eq(diff_users, 0, "%ld users differ", diff_users);

    /* items: every distinct item of the log */
    FILE *f = fopen(log, "r");
    cr_assert_not_null(f);
    size_t cap = 1024, ni = 0;
    char **items = malloc(cap * sizeof(char *));
    char *line = NULL;
    size_t lcap = 0;
    ssize_t len;
    while ((len = getline(&line, &lcap, f)) > 0) {
        sr_event_t ev;
        char err[128];
        if (sr_csv_parse_line(line, (size_t)len, &ev, err, sizeof(err)) != 0) continue;
        if (ni == cap) items = realloc(items, (cap *= 2) * sizeof(char *));
        items[ni++] = strndup(ev.item, ev.item_len);
    }
    free(line);
    fclose(f);
    qsort(items, ni, sizeof(char *), th_cmp_str);
    size_t k = 0;
    for (size_t i = 0; i < ni; i++) {
        if (k && strcmp(items[k - 1], items[i]) == 0) {
            free(items[i]);
            continue;
        }
        items[k++] = items[i];
    }
    ni = k;
    long diff_items = 0;
    sr_store_item_t ia[B], ib[B];
    for (size_t i = 0; i < ni; i += B) {
        size_t m = ni - i < B ? ni - i : B;
        for (size_t j = 0; j < m; j++) ids[j] = items[i + j];
        cr_assert(sr_store_get_items(a, ids, NULL, m, ia) >= 0);
        cr_assert(sr_store_get_items(b, ids, NULL, m, ib) >= 0);
        for (size_t j = 0; j < m; j++) {
            const sr_store_item_t *x = &ia[j], *y = &ib[j];
            int same = x->exists == y->exists && x->dim == y->dim && x->n_acc == y->n_acc &&
                       memcmp(&x->bias, &y->bias, sizeof(float)) == 0 &&
                       memcmp(&x->bias_acc, &y->bias_acc, sizeof(float)) == 0 &&
                       x->extra_len == y->extra_len && x->pop == y->pop &&
                       (!x->exists || (memcmp(x->vec, y->vec, x->dim * sizeof(float)) == 0 &&
                                       memcmp(x->acc, y->acc, x->n_acc * sizeof(float)) == 0 &&
                                       memcmp(x->extra, y->extra, x->extra_len) == 0));
            if (!same) {
                if (diff_items < 3)
                    cr_log_warn("item %s differs: exists %d/%d bias %d vec %d acc %d extra %zu/%zu %d "
                                "pop %.17g/%.17g",
                                ids[j], x->exists, y->exists, x->bias == y->bias,
                                x->exists && y->exists &&
                                    !memcmp(x->vec, y->vec, x->dim * sizeof(float)),
                                x->exists && y->exists && x->acc[0] == y->acc[0], x->extra_len,
                                y->extra_len,
                                x->extra_len == y->extra_len &&
                                    !memcmp(x->extra, y->extra, x->extra_len),
                                x->pop, y->pop);
                diff_items++;
            }
        }
    }
    cr_expect_eq(diff_items, 0, "%ld of %zu items differ", diff_items, ni);
    for (size_t i = 0; i < ni; i++) free(items[i]);
    free(items);

    const void *ga, *gb;
    size_t la, lb;
    cr_assert_eq(sr_store_get_global(a, &ga, &la), 0);
    void *copy = malloc(la ? la : 1);
    memcpy(copy, ga, la);
    cr_assert_eq(sr_store_get_global(b, &gb, &lb), 0);
    cr_expect(la == lb && la > 0 && memcmp(copy, gb, la) == 0, "global state differs");
    free(copy);
    sr_store_destroy(a);
    sr_store_destroy(b);
}

/* One partition: a run killed with SIGKILL at random points four times
 * (each time after it flushed something, at a random delay after that)
 * and restarted ends with exact counts and the same bits in Redis as an
 * uninterrupted run of the same log. */
Test(train_crash, sigkill_restarts_exact_and_bit_identical, .timeout = 400, .fini = fini2)
{
    th_start(&th_env, 1);
    const char *log = th_simulate(&th_env, "log.csv", 200, 300, 30000, 3);
    th_count_t *c;
    long total;
    size_t nu = th_expected(log, &c, &total);
    cr_assert_eq(th_produce_csv(&th_env, log), total);

    /* Uninterrupted reference into a second Redis. */
    int port_b;
    cr_assert_eq(sr_test_redis_start(&redis_b, &port_b), 0);
    int port_a = th_env.redis_port;
    th_env.redis_port = port_b;
    snprintf(th_env.redis_url, sizeof(th_env.redis_url), "redis://127.0.0.1:%d", port_b);
    th_argv_t a;
    const char *batch[] = {"-X", "trainer.batch.size=100", "--exit-when-idle", "2000", NULL};
    cr_assert_eq(sr_test_run(th_train_argv(&th_env, &a, batch), NULL, 120000), 0);
    long applied;
    cr_assert_eq(th_mismatches(&th_env, c, nu, &applied), 0);

    /* Killed run into the fixture's Redis. */
    th_env.redis_port = port_a;
    snprintf(th_env.redis_url, sizeof(th_env.redis_url), "redis://127.0.0.1:%d", port_a);
    srand(12345);
    long before = 0;
    const char *slow[] = {"-X", "trainer.batch.size=100", NULL};
    for (int kill_no = 0; kill_no < 4; kill_no++) {
        cr_assert_eq(sr_test_spawn(&th_trainers[0], th_train_argv(&th_env, &a, slow), 0), 0);
        /* past the previous kill and past k/6 of the log, then a random
         * few milliseconds more: mid-batch, mid-flush, wherever */
        long target = (kill_no + 1) * total / 6;
        long now = wait_progress(&th_env, c, nu, before > target ? before : target, 60000);
        usleep((useconds_t)(rand() % 40) * 1000);
        sr_test_stop(&th_trainers[0], SIGKILL, 1000);
        cr_log_info("kill %d after %ld stored events", kill_no, now);
        before = now;
        if (now >= total) break;
    }
    cr_assert_eq(sr_test_run(th_train_argv(&th_env, &a, batch), NULL, 120000), 0);
    cr_expect_eq(th_mismatches(&th_env, c, nu, &applied), 0);
    cr_expect_eq(applied, total);
    expect_same_state(port_a, port_b, c, nu, log);
    th_free_counts(c, nu);
}

/* Two trainers share a group over 4 partitions; one is killed mid-stream.
 * Its partitions move to the survivor, which replays what the dead one had
 * not flushed: counts stay exact, and the survivor's items started from the
 * other trainer's flushed values (its deltas are added to them). */
Test(train_crash, two_trainers_one_killed, .timeout = 400)
{
    th_start(&th_env, 4);
    const char *log = th_simulate(&th_env, "log.csv", 400, 200, 40000, 5);
    th_count_t *c;
    long total;
    size_t nu = th_expected(log, &c, &total);

    th_argv_t a1, a2;
    const char *x1[] = {"--json", "-X", "trainer.batch.size=100", "--instance", "t1", NULL};
    const char *x2[] = {"-X", "trainer.batch.size=100", "--instance", "t2", NULL};
    /* t2 alone trains the first third, so Redis holds its item updates... */
    cr_assert_eq(th_produce_csv_range(&th_env, log, 0, total / 3), total / 3);
    cr_assert_eq(sr_test_spawn(&th_trainers[1], th_train_argv(&th_env, &a2, x2), 0), 0);
    long applied = th_wait_applied(&th_env, c, nu, total / 3, 120000);
    cr_assert_eq(applied, total / 3);
    /* ...then t1 joins (the group splits the partitions), the rest arrives,
     * and t2 dies mid-stream. */
    cr_assert_eq(sr_test_spawn(&th_trainers[0], th_train_argv(&th_env, &a1, x1), 1), 0);
    sleep(8); /* the group rebalances (t2 must rejoin) */
    th_produce_csv_range(&th_env, log, total / 3, -1);
    applied = wait_progress(&th_env, c, nu, total / 2, 60000);
    sr_test_stop(&th_trainers[1], SIGKILL, 1000);
    cr_log_info("killed t2 at %ld of %ld stored events", applied, total);

    applied = th_wait_applied(&th_env, c, nu, total, 120000);
    kill(th_trainers[0].pid, SIGTERM);
    char json[2048];
    cr_expect(th_read_json(&th_trainers[0], json, sizeof(json), 30000) > 0, "no stats from t1");
    int st = sr_test_stop(&th_trainers[0], SIGTERM, 30000);
    cr_expect(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "t1 status %d", st);

    cr_expect_eq(th_mismatches(&th_env, c, nu, &applied), 0);
    cr_expect_eq(applied, total);
    /* t1 started from t2's item values and merged into them: */
    const char *m = strstr(json, "\"items_loaded\":");
    cr_assert_not_null(m, "%s", json);
    cr_expect(atol(m + 15) > 0, "t1 did not start from t2's items: %s", json);
    m = strstr(json, "\"items_delta_merged\":");
    cr_log_info("t1 merged its deltas into another writer's value %ld times", m ? atol(m + 21) : -1);
    const char *ab = strstr(json, "\"flush_tx_aborts\":"), *bs = strstr(json, "\"flushes_by_script\":");
    const char *fl = strstr(json, "\"flushes\":");
    cr_log_info("t1: %ld flushes, %ld transactions aborted by t2's flushes, %ld written by the script",
                fl ? atol(fl + 10) : -1, ab ? atol(ab + 18) : -1, bs ? atol(bs + 20) : -1);
    const char *rb = strstr(json, "\"rebalances\":");
    cr_expect(rb && atol(rb + 13) >= 2, "t1 saw no rebalance: %s", json);
    th_free_counts(c, nu);
}
