/* Shared fixture of the trainer's integration tests (test_train*.c): a
 * real `streamrec broker` and a real redis-server per test, the binary
 * driven as a process, and the check every test ends with: each user's
 * `events` in Redis equals that user's count in the event log.
 * Header-only (static functions) because each test_*.c is its own
 * executable.  Every process started here is stopped by PID. */
#ifndef TRAIN_HARNESS_H
#define TRAIN_HARNESS_H

#include <criterion/criterion.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sr_event.h"
#include "sr_event_codec.h"
#include "sr_store.h"
#include "sr_testproc.h"

typedef struct th_env {
    sr_test_proc_t broker, redis;
    int redis_port;
    char bootstrap[256];
    char redis_url[64];
    char dir[128];
} th_env_t;

static inline void th_start(th_env_t *e, int partitions)
{
    memset(e, 0, sizeof(*e));
    e->broker.pid = e->redis.pid = -1;
    snprintf(e->dir, sizeof(e->dir), "/tmp/sr_test_train_XXXXXX");
    cr_assert_not_null(mkdtemp(e->dir));
    cr_assert_eq(sr_test_redis_start(&e->redis, &e->redis_port), 0, "redis-server did not start");
    if (sr_test_broker_start(&e->broker, partitions, e->bootstrap, sizeof(e->bootstrap)) != 0) {
        e->broker.pid = -1;
        sr_test_stop(&e->redis, SIGTERM, 5000);
        cr_assert_fail("streamrec broker did not start");
    }
    snprintf(e->redis_url, sizeof(e->redis_url), "redis://127.0.0.1:%d", e->redis_port);
}

/* Stops everything th_start started.  Also the suite's .fini, so a failed
 * assertion (which ends the test function early) leaks no process. */
static inline void th_stop(th_env_t *e)
{
    if (!e->dir[0]) return;
    sr_test_stop(&e->broker, SIGTERM, 5000);
    sr_test_stop(&e->redis, SIGTERM, 5000);
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", e->dir);
    if (system(cmd) != 0) {
    }
    e->dir[0] = 0;
}

/* The env of the running test (one test per process: Criterion forks). */
static th_env_t th_env;
static sr_test_proc_t th_trainers[4] = {{-1, -1}, {-1, -1}, {-1, -1}, {-1, -1}};

static inline void th_fini(void)
{
    for (int i = 0; i < 4; i++)
        if (th_trainers[i].pid > 0) sr_test_stop(&th_trainers[i], SIGKILL, 1000);
    th_stop(&th_env);
}

/* A redis-server on a given port with an append-only file in dir (the
 * restart test stops it and starts it again on the same port and data). */
static inline int th_redis_start_on(sr_test_proc_t *proc, int port, const char *dir)
{
    char ports[16];
    snprintf(ports, sizeof(ports), "%d", port);
    char *argv[] = {"redis-server", "--port", ports, "--bind", "127.0.0.1", "--save", "",
                    "--appendonly", "yes", "--appendfsync", "always", "--dir", (char *)dir,
                    "--loglevel", "warning", "--daemonize", "no", NULL};
    for (int attempt = 0; attempt < 50; attempt++) {
        if (sr_test_spawn(proc, argv, 1) != 0) return -1;
        for (int i = 0; i < 100; i++) {
            char *out = NULL;
            char *ping[] = {"redis-cli", "-p", ports, "ping", NULL};
            int rc = sr_test_run(ping, &out, 2000);
            int ok = rc == 0 && out && strncmp(out, "PONG", 4) == 0;
            free(out);
            if (ok) return 0;
            if (waitpid(proc->pid, NULL, WNOHANG) == proc->pid) break; /* port still busy */
            usleep(20000);
        }
        proc->pid = -1;
        usleep(100000);
    }
    return -1;
}

/* `streamrec simulate` into dir/name; returns the path (static buffer). */
static inline const char *th_simulate(th_env_t *e, const char *name, int users, int items, int events,
                               int seed)
{
    static char path[256];
    snprintf(path, sizeof(path), "%s/%s", e->dir, name);
    char u[16], it[16], ev[16], s[16];
    snprintf(u, sizeof(u), "%d", users);
    snprintf(it, sizeof(it), "%d", items);
    snprintf(ev, sizeof(ev), "%d", events);
    snprintf(s, sizeof(s), "%d", seed);
    char *argv[] = {(char *)sr_test_bin(), "simulate", "--users", u, "--items", it, "--events",
                    ev, "--seed", s, "--out", path, NULL};
    cr_assert_eq(sr_test_run(argv, NULL, 60000), 0, "simulate failed");
    return path;
}

static inline void th_produce(th_env_t *e, const char *path)
{
    char boot[300];
    snprintf(boot, sizeof(boot), "kafka.bootstrap.servers=%s", e->bootstrap);
    char *argv[] = {(char *)sr_test_bin(), "produce", "--in", (char *)path, "-X", boot, NULL};
    cr_assert_eq(sr_test_run(argv, NULL, 120000), 0, "produce failed");
}

/* ---- producing in process (no dependency on `streamrec produce`) ---- */

static inline rd_kafka_t *th_producer(th_env_t *e)
{
    char err[256];
    rd_kafka_conf_t *kc = rd_kafka_conf_new();
    cr_assert_eq(rd_kafka_conf_set(kc, "bootstrap.servers", e->bootstrap, err, sizeof(err)),
                 RD_KAFKA_CONF_OK);
    rd_kafka_conf_set(kc, "linger.ms", "5", err, sizeof(err));
    rd_kafka_conf_set(kc, "enable.idempotence", "true", err, sizeof(err));
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, err, sizeof(err));
    cr_assert_not_null(rk, "%s", err);
    return rk;
}

static inline void th_send_raw(rd_kafka_t *rk, const char *key, size_t key_len, const void *val,
                        size_t len)
{
    for (;;) {
        rd_kafka_resp_err_t r = rd_kafka_producev(
            rk, RD_KAFKA_V_TOPIC("events"), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_KEY(key, key_len), RD_KAFKA_V_VALUE((void *)val, len), RD_KAFKA_V_END);
        if (r == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            rd_kafka_poll(rk, 10);
            continue;
        }
        cr_assert_eq(r, RD_KAFKA_RESP_ERR_NO_ERROR, "%s", rd_kafka_err2str(r));
        return;
    }
}

/* Encodes and sends one event with the given id (key = user). */
static inline void th_send_event(rd_kafka_t *rk, const sr_event_t *ev, const char *event_id)
{
    sr_event_wire_t w;
    memset(&w, 0, sizeof(w));
    w.ev = *ev;
    w.event_id = event_id;
    w.event_id_len = strlen(event_id);
    char buf[SR_EVENT_ENCODED_MAX + 512];
    int n = sr_event_encode(&w, buf, sizeof(buf));
    cr_assert(n > 0);
    th_send_raw(rk, ev->user, ev->user_len, buf, (size_t)n);
}

static inline void th_flush(rd_kafka_t *rk)
{
    cr_assert_eq(rd_kafka_flush(rk, 30000), RD_KAFKA_RESP_ERR_NO_ERROR, "produce flush");
}

/* Sends lines [from, to) of a CSV log (event ids "<tag><line>"). */
static inline long th_produce_csv_range(th_env_t *e, const char *path, long from, long to)
{
    rd_kafka_t *rk = th_producer(e);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    char *line = NULL;
    size_t lcap = 0;
    ssize_t len;
    long n = 0, sent = 0;
    while ((len = getline(&line, &lcap, f)) > 0) {
        sr_event_t ev;
        char err[128], id[32];
        if (sr_csv_parse_line(line, (size_t)len, &ev, err, sizeof(err)) != 0) continue;
        if (n >= from && (to < 0 || n < to)) {
            snprintf(id, sizeof(id), "ev%ld", n);
            th_send_event(rk, &ev, id);
            sent++;
        }
        n++;
        rd_kafka_poll(rk, 0);
    }
    free(line);
    fclose(f);
    th_flush(rk);
    rd_kafka_destroy(rk);
    return sent;
}

static inline long th_produce_csv(th_env_t *e, const char *path)
{
    return th_produce_csv_range(e, path, 0, -1);
}

/* argv for `streamrec train` against this env plus up to 8 extra args. */
typedef struct th_argv {
    char boot[300], redis[128];
    char *v[40];
} th_argv_t;

static inline char **th_train_argv(th_env_t *e, th_argv_t *a, const char *const *extra)
{
    snprintf(a->boot, sizeof(a->boot), "kafka.bootstrap.servers=%s", e->bootstrap);
    snprintf(a->redis, sizeof(a->redis), "redis.url=%s", e->redis_url);
    int n = 0;
    a->v[n++] = (char *)sr_test_bin();
    a->v[n++] = "train";
    a->v[n++] = "-X";
    a->v[n++] = a->boot;
    a->v[n++] = "-X";
    a->v[n++] = a->redis;
    /* Fast group membership so a killed member's partitions move soon. */
    a->v[n++] = "-X";
    a->v[n++] = "kafka.session.timeout.ms=6000";
    a->v[n++] = "-X";
    a->v[n++] = "kafka.heartbeat.interval.ms=500";
    a->v[n++] = "-X";
    a->v[n++] = "log.level=warn";
    for (int i = 0; extra && extra[i] && n < 38; i++) a->v[n++] = (char *)extra[i];
    a->v[n] = NULL;
    return a->v;
}

/* ---- expected counts from the log ---- */

typedef struct th_count {
    char *user;
    long n;
} th_count_t;

static inline int th_cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Per-user event counts of a CSV log, sorted by user; returns n users. */
static inline size_t th_expected(const char *path, th_count_t **out, long *total)
{
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    size_t cap = 1024, n = 0;
    char **users = malloc(cap * sizeof(char *));
    char *line = NULL;
    size_t lcap = 0;
    ssize_t len;
    while ((len = getline(&line, &lcap, f)) > 0) {
        sr_event_t ev;
        char err[128];
        if (sr_csv_parse_line(line, (size_t)len, &ev, err, sizeof(err)) != 0) continue;
        if (n == cap) users = realloc(users, (cap *= 2) * sizeof(char *));
        users[n++] = strndup(ev.user, ev.user_len);
    }
    free(line);
    fclose(f);
    *total = (long)n;
    qsort(users, n, sizeof(char *), th_cmp_str);
    th_count_t *c = calloc(n ? n : 1, sizeof(*c));
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (k > 0 && strcmp(c[k - 1].user, users[i]) == 0) {
            c[k - 1].n++;
            free(users[i]);
        } else {
            c[k].user = users[i];
            c[k].n = 1;
            k++;
        }
    }
    free(users);
    *out = c;
    return k;
}

static inline void th_free_counts(th_count_t *c, size_t n)
{
    for (size_t i = 0; i < n; i++) free(c[i].user);
    free(c);
}

/* Reads every expected user's `events` from Redis; returns how many users
 * differ, *applied = sum of stored events. */
static inline long th_mismatches_q(th_env_t *e, const th_count_t *c, size_t n, long *applied, int quiet)
{
    char err[256];
    sr_store_opts_t o;
    sr_store_opts_init(&o);
    o.port = e->redis_port;
    o.timeout_ms = 5000;
    sr_store_t *s = sr_store_new(&o, err, sizeof(err));
    cr_assert_not_null(s, "store: %s", err);
    long bad = 0, sum = 0;
    enum { B = 256 };
    const char *ids[B];
    sr_store_user_t out[B];
    for (size_t i = 0; i < n; i += B) {
        size_t m = n - i < B ? n - i : B;
        for (size_t j = 0; j < m; j++) ids[j] = c[i + j].user;
        long r = sr_store_get_users(s, ids, NULL, m, out);
        cr_assert(r >= 0, "get_users: %s", sr_store_errstr(s));
        for (size_t j = 0; j < m; j++) {
            long got = out[j].exists ? (long)out[j].events : 0;
            sum += got;
            if (got != c[i + j].n) {
                if (bad < 5 && !quiet)
                    cr_log_warn("user %s: %ld events in redis, %ld in the log", c[i + j].user,
                                got, c[i + j].n);
                bad++;
            }
        }
    }
    sr_store_destroy(s);
    *applied = sum;
    return bad;
}

static inline long th_mismatches(th_env_t *e, const th_count_t *c, size_t n, long *applied)
{
    return th_mismatches_q(e, c, n, applied, 0);
}

/* Waits until the stored events sum to `total` (or timeout); returns the
 * last sum. */
static inline long th_wait_applied(th_env_t *e, const th_count_t *c, size_t n, long total, int timeout_ms)
{
    long long deadline = sr_test_now_ms() + timeout_ms;
    long applied = 0;
    for (;;) {
        th_mismatches_q(e, c, n, &applied, 1);
        if (applied >= total || sr_test_now_ms() > deadline) return applied;
        usleep(200000);
    }
}

/* Reads the child's stdout until a line containing "events_applied" (the
 * --json stats line) into buf; its length, or -1 on timeout/EOF. */
static inline int th_read_json(sr_test_proc_t *p, char *buf, size_t size, int timeout_ms)
{
    long long deadline = sr_test_now_ms() + timeout_ms;
    while (sr_test_now_ms() < deadline) {
        int n = sr_test_read_line(p, buf, size, (int)(deadline - sr_test_now_ms()));
        if (n < 0) return -1;
        if (strstr(buf, "events_applied")) return n;
    }
    return -1;
}

/* The number after "key": in a flat JSON object, -1 when absent. */
static inline double th_json_num(const char *json, const char *key)
{
    char k[64];
    snprintf(k, sizeof(k), "\"%s\":", key);
    const char *p = strstr(json, k);
    return p ? atof(p + strlen(k)) : -1;
}

#endif
