/* Trainer benchmark (issue 3 targets), end to end with real processes:
 * `streamrec broker` (embedded Kafka), a private redis-server, and
 * `streamrec train` as a child process.
 *
 *   throughput: pre-fill topic.events with a simulated log, run one trainer
 *               (k=32, 4 negatives) to the end of it, report applied events
 *               per second of active time (first event consumed -> last
 *               flush written, so group join and the idle exit wait are not
 *               counted); target >= 500,000 events/s.
 *   freshness:  one trainer running; produce at a steady rate with event
 *               timestamps = send time; the trainer's event-ts -> Redis-write
 *               p50/p99 over the run; target p99 <= 100 ms at 50,000/s.
 *               Also the second half alone (the trainer's per-second metrics
 *               snapshots on topic `metrics`): a trainer that has just
 *               started loads every user it meets from Redis first, which
 *               the whole-run p99 includes.
 *
 * usage: bench_train [--bin PATH] [--events N] [--partitions P] [--reps R]
 *                    [--rate EV_PER_S] [--seconds S]
 *                    [-X key=value ...]  (passed to the trainer)
 * Defaults: 200,000 events, 8 partitions, 3 reps, 50,000 events/s for 5 s.
 * Longer freshness windows measure the embedded broker, not the trainer:
 * its fetches walk every record batch of a partition (no index), so at
 * 50,000 events/s in small batches its CPU climbs from ~10% to ~90% of a
 * core within 10 s and the consumer's arrival latency with it
 * (docs/BENCHMARKS.md, Trainer).
 * Prints one line per run and the medians.  Every process it starts is
 * stopped by PID. */
#include <librdkafka/rdkafka.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "metrics.pb-c.h"
#include "sr_event.h"
#include "sr_event_codec.h"
#include "bench_util.h"

extern char **environ;

static const char *bin = "build/streamrec";
static const char *extra_x[8];
static int n_extra_x;

static long long now_ms(int wall)
{
    struct timespec ts;
    clock_gettime(wall ? CLOCK_REALTIME : CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

typedef struct proc {
    pid_t pid;
    int out;
} proc_t;

static int spawn(proc_t *p, char *const argv[], int capture)
{
    int fds[2] = {-1, -1};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (capture) {
        if (pipe(fds) != 0) return -1;
        posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
        posix_spawn_file_actions_addclose(&fa, fds[0]);
    }
    int rc = posix_spawnp(&p->pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (capture) close(fds[1]);
    p->out = capture ? fds[0] : -1;
    return rc == 0 ? 0 : -1;
}

static void stop(proc_t *p, int sig)
{
    if (p->pid <= 0) return;
    kill(p->pid, sig);
    for (int i = 0; i < 3000; i++) {
        if (waitpid(p->pid, NULL, WNOHANG) == p->pid) goto done;
        usleep(10000);
    }
    kill(p->pid, SIGKILL);
    waitpid(p->pid, NULL, 0);
done:
    if (p->out >= 0) close(p->out);
    p->pid = -1;
    p->out = -1;
}

/* Reads all of the child's stdout (until EOF) into buf. */
static void read_all(proc_t *p, char *buf, size_t size)
{
    size_t n = 0;
    ssize_t r;
    while (n + 1 < size && (r = read(p->out, buf + n, size - n - 1)) > 0) n += (size_t)r;
    buf[n] = 0;
}

static int read_line(proc_t *p, char *buf, size_t size)
{
    size_t n = 0;
    char c;
    while (n + 1 < size && read(p->out, &c, 1) == 1 && c != '\n') buf[n++] = c;
    buf[n] = 0;
    return (int)n;
}

static int free_port(void)
{
    return 20000 + (int)(getpid() % 20000);
}

static double jnum(const char *json, const char *key)
{
    char k[64];
    snprintf(k, sizeof(k), "\"%s\":", key);
    const char *p = strstr(json, k);
    return p ? atof(p + strlen(k)) : -1;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(double), cmp_d);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

typedef struct log_s {
    char *buf; /* CSV text, parsed in place */
    sr_event_t *ev;
    size_t n;
} log_t;

static int load_log(const char *path, log_t *lg)
{
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    lg->buf = malloc((size_t)sz + 1);
    if (fread(lg->buf, 1, (size_t)sz, f) != (size_t)sz) return -1;
    lg->buf[sz] = 0;
    fclose(f);
    size_t cap = 1 << 16;
    lg->ev = malloc(cap * sizeof(*lg->ev));
    lg->n = 0;
    for (char *p = lg->buf; *p;) {
        char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        char err[128];
        if (lg->n == cap) lg->ev = realloc(lg->ev, (cap *= 2) * sizeof(*lg->ev));
        if (sr_csv_parse_line(p, len, &lg->ev[lg->n], err, sizeof(err)) == 0) lg->n++;
        if (!e) break;
        p = e + 1;
    }
    return 0;
}

static rd_kafka_t *producer(const char *bootstrap)
{
    char err[256];
    rd_kafka_conf_t *kc = rd_kafka_conf_new();
    rd_kafka_conf_set(kc, "bootstrap.servers", bootstrap, err, sizeof(err));
    rd_kafka_conf_set(kc, "linger.ms", "2", err, sizeof(err));
    rd_kafka_conf_set(kc, "queue.buffering.max.messages", "1000000", err, sizeof(err));
    return rd_kafka_new(RD_KAFKA_PRODUCER, kc, err, sizeof(err));
}

static void send_ev(rd_kafka_t *rk, const sr_event_t *ev, long id, int64_t ts)
{
    sr_event_wire_t w;
    memset(&w, 0, sizeof(w));
    w.ev = *ev;
    if (ts) w.ev.ts_ms = ts;
    char eid[32], buf[SR_EVENT_ENCODED_MAX];
    snprintf(eid, sizeof(eid), "b%ld", id);
    w.event_id = eid;
    w.event_id_len = strlen(eid);
    int n = sr_event_encode(&w, buf, sizeof(buf));
    while (rd_kafka_producev(rk, RD_KAFKA_V_TOPIC("events"),
                             RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                             RD_KAFKA_V_KEY(ev->user, ev->user_len), RD_KAFKA_V_VALUE(buf, (size_t)n),
                             RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
        rd_kafka_poll(rk, 5);
}

/* A consumer of group `group` assigned partitions [0, np) of topic from
 * their beginning (no rebalance to wait for); extra is one more property
 * pair (key, value) or NULL.  NULL when librdkafka refuses. */
static rd_kafka_t *assigned_consumer(const char *bootstrap, const char *group, const char *topic,
                                     int np, const char *const *extra)
{
    char err[256];
    rd_kafka_conf_t *kc = rd_kafka_conf_new();
    rd_kafka_conf_set(kc, "bootstrap.servers", bootstrap, err, sizeof(err));
    rd_kafka_conf_set(kc, "group.id", group, err, sizeof(err));
    for (; extra && extra[0]; extra += 2)
        rd_kafka_conf_set(kc, extra[0], extra[1], err, sizeof(err));
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, kc, err, sizeof(err));
    if (!rk) return NULL;
    if (np < 0) {
        /* the topic's partition count from the broker */
        const rd_kafka_metadata_t *md;
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
        np = 0;
        if (rd_kafka_metadata(rk, 0, rkt, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
            np = md->topics[0].partition_cnt;
            rd_kafka_metadata_destroy(md);
        }
        rd_kafka_topic_destroy(rkt);
    }
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(np > 0 ? np : 1);
    for (int i = 0; i < np; i++)
        rd_kafka_topic_partition_list_add(l, topic, i)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    return rk;
}

/* Freshness of the trainer `instance` per metrics interval (its snapshots
 * on topic `metrics`, each with the quantiles of that interval), for the
 * intervals that ended within [from_ms, to_ms] wall time: the median and the
 * largest interval p99 (the steady state, without the warm-up of a trainer
 * that has just started).  Returns the number of intervals. */
static int steady_freshness(const char *bootstrap, const char *instance, long long from_ms,
                            long long to_ms, double *med_p99, double *max_p99)
{
    static const char *const eof_on[] = {"enable.partition.eof", "true", NULL};
    rd_kafka_t *rk = assigned_consumer(bootstrap, "bench-train-metrics", "metrics", -1, eof_on);
    if (!rk) return 0;
    int np = 0;
    rd_kafka_topic_partition_list_t *asg = NULL;
    if (rd_kafka_assignment(rk, &asg) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        np = asg->cnt;
        rd_kafka_topic_partition_list_destroy(asg);
    }
    double v[4096];
    int n = 0, eof = 0;
    long long deadline = now_ms(0) + 20000;
    while (eof < np && now_ms(0) < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 500);
        if (!m) continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) eof++;
        if (!m->err) {
            Streamrec__V1__MetricsSnapshot *sn =
                streamrec__v1__metrics_snapshot__unpack(NULL, m->len, m->payload);
            if (sn && sn->component && !strcmp(sn->component, "trainer") && sn->instance &&
                !strcmp(sn->instance, instance) && sn->freshness_ms &&
                sn->freshness_ms->count > 0 && sn->ts_ms >= from_ms && sn->ts_ms <= to_ms &&
                n < 4096) {
                v[n++] = sn->freshness_ms->p99;
                const Streamrec__V1__Quantiles *fm = sn->flush_ms, *fk = sn->flush_keys;
                printf("  interval: freshness p50 %.0f p99 %.0f max %.0f ms; flush p50 %.1f p99 "
                       "%.1f max %.1f ms, keys p50 %.0f, flushes %" PRId64 "\n",
                       sn->freshness_ms->p50, sn->freshness_ms->p99, sn->freshness_ms->max,
                       fm ? fm->p50 : -1, fm ? fm->p99 : -1, fm ? fm->max : -1, fk ? fk->p50 : -1,
                       sn->flushes);
            }
            if (sn) streamrec__v1__metrics_snapshot__free_unpacked(sn, NULL);
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    *med_p99 = *max_p99 = -1;
    if (n == 0) return 0;
    *max_p99 = v[0];
    for (int i = 1; i < n; i++)
        if (v[i] > *max_p99) *max_p99 = v[i];
    *med_p99 = median(v, n);
    return n;
}

typedef struct env {
    proc_t broker, redis;
    char bootstrap[256], redis_url[64];
} env_t;

static int env_start(env_t *e, int partitions)
{
    char parts[16], ports[16];
    snprintf(parts, sizeof(parts), "%d", partitions);
    char *bargv[] = {(char *)bin, "broker", "--partitions", parts, NULL};
    if (spawn(&e->broker, bargv, 1) != 0 || read_line(&e->broker, e->bootstrap, sizeof(e->bootstrap)) <= 0)
        return -1;
    int port = free_port();
    snprintf(ports, sizeof(ports), "%d", port);
    char *rargv[] = {"redis-server", "--port", ports, "--bind", "127.0.0.1", "--save", "",
                     "--appendonly", "no", "--loglevel", "warning", NULL};
    if (spawn(&e->redis, rargv, 1) != 0) return -1;
    usleep(300000);
    snprintf(e->redis_url, sizeof(e->redis_url), "redis.url=redis://127.0.0.1:%d", port);
    return 0;
}

static void env_stop(env_t *e)
{
    stop(&e->broker, SIGTERM);
    stop(&e->redis, SIGTERM);
}

static char boot_x[300];

/* The ceiling for the throughput run: one plain consumer (no group, no
 * model, no Redis) reads the same pre-filled topic with the trainer's fetch
 * settings and consume calls, in batches of 1000, and with decode 1 also
 * decodes and validates every event (what the trainer does before
 * learning).  Events per second from the first message to the last. */
static double raw_consume(const char *bootstrap, int partitions, size_t total, int decode)
{
    /* the trainer's fetch settings (consumers/trainer.c) */
    static const char *const fetch[] = {"enable.auto.commit", "false", "fetch.wait.max.ms", "10",
                                        "queued.min.messages", "500000", NULL};
    rd_kafka_t *rk = assigned_consumer(bootstrap, "bench-train-raw", "events", partitions, fetch);
    if (!rk) return -1;
    rd_kafka_queue_t *q = rd_kafka_queue_get_consumer(rk);
    rd_kafka_message_t *msgs[1000];
    size_t got = 0, bad = 0;
    double t0 = 0, t1 = 0;
    long long deadline = now_ms(0) + 60000;
    while (got < total && now_ms(0) < deadline) {
        ssize_t n = rd_kafka_consume_batch_queue(q, 100, msgs, 1000);
        for (ssize_t i = 0; i < n; i++) {
            if (!msgs[i]->err) {
                if (!got) t0 = now_s();
                got++;
                if (decode) {
                    sr_event_wire_t w;
                    if (sr_event_decode(msgs[i]->payload, msgs[i]->len, NULL, 0, &w, NULL, NULL,
                                        0) != 0)
                        bad++;
                }
            }
            rd_kafka_message_destroy(msgs[i]);
        }
        t1 = now_s();
    }
    rd_kafka_queue_destroy(q);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    if (got < total || bad || t1 <= t0) return -1;
    return (double)got / (t1 - t0);
}

static void train_argv(env_t *e, char **v, const char *extra1, const char *extra2,
                       const char *extra3)
{
    snprintf(boot_x, sizeof(boot_x), "kafka.bootstrap.servers=%s", e->bootstrap);
    int n = 0;
    v[n++] = (char *)bin;
    v[n++] = "train";
    v[n++] = "-X";
    v[n++] = boot_x;
    v[n++] = "-X";
    v[n++] = e->redis_url;
    v[n++] = "-X";
    v[n++] = "model.dim=32";
    v[n++] = "-X";
    v[n++] = "model.negatives=4";
    v[n++] = "-X";
    v[n++] = "log.level=warn";
    v[n++] = "-X";
    v[n++] = "kafka.session.timeout.ms=6000";
    v[n++] = "-X";
    v[n++] = "kafka.heartbeat.interval.ms=500";
    v[n++] = "--json";
    for (int i = 0; i < n_extra_x; i++) {
        v[n++] = "-X";
        v[n++] = (char *)extra_x[i];
    }
    if (extra1) v[n++] = (char *)extra1;
    if (extra2) v[n++] = (char *)extra2;
    if (extra3) v[n++] = (char *)extra3;
    v[n] = NULL;
}

int main(int argc, char **argv)
{
    long events = 200000;
    int partitions = 8, reps = 3, seconds = 5;
    double rate = 50000;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--bin")) bin = argv[i + 1];
        else if (!strcmp(argv[i], "--events")) events = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--partitions")) partitions = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--reps")) reps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--rate")) rate = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--seconds")) seconds = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "-X") && n_extra_x < 8) extra_x[n_extra_x++] = argv[i + 1];
    }
    char path[64], evs[32];
    snprintf(path, sizeof(path), "/tmp/bench_train_%d.csv", (int)getpid());
    snprintf(evs, sizeof(evs), "%ld", events);
    proc_t sim;
    char *sargv[] = {(char *)bin, "simulate", "--users", "20000", "--items", "10000",
                     "--events", evs, "--seed", "1", "--out", path, NULL};
    if (spawn(&sim, sargv, 0) != 0) return 1;
    waitpid(sim.pid, NULL, 0);
    log_t lg;
    if (load_log(path, &lg) != 0) return 1;
    unlink(path);
    printf("log: %zu events (20000 users, 10000 items), %d partitions, k=32, 4 negatives\n",
           lg.n, partitions);

    double *tp = calloc((size_t)reps, sizeof(double));
    double *p50 = calloc((size_t)reps, sizeof(double)), *p99 = calloc((size_t)reps, sizeof(double));
    double *sp99m = calloc((size_t)reps, sizeof(double)), *sp99x = calloc((size_t)reps, sizeof(double));
    for (int r = 0; r < reps; r++) {
        env_t e;
        if (env_start(&e, partitions) != 0) {
            fprintf(stderr, "bench_train: cannot start broker/redis\n");
            return 1;
        }
        rd_kafka_t *rk = producer(e.bootstrap);
        for (size_t i = 0; i < lg.n; i++) {
            send_ev(rk, &lg.ev[i], (long)i, 0);
            if (i % 10000 == 0) rd_kafka_poll(rk, 0);
        }
        rd_kafka_flush(rk, 60000);
        double raw = raw_consume(e.bootstrap, partitions, lg.n, 0);
        double rawd = raw_consume(e.bootstrap, partitions, lg.n, 1);
        printf("raw consume run %d: %.0f events/s, with decode %.0f events/s (one consumer, no "
               "model, no Redis)\n",
               r + 1, raw, rawd);
        char *v[48], out[4096];
        train_argv(&e, v, "--exit-when-idle", "2000", NULL);
        proc_t tr;
        spawn(&tr, v, 1);
        read_all(&tr, out, sizeof(out));
        stop(&tr, SIGTERM);
        tp[r] = jnum(out, "events_per_s");
        printf("%s\n", out);
        printf("throughput run %d: %.0f events/s (applied %.0f in %.2f s active)\n", r + 1, tp[r],
               jnum(out, "events_applied"), jnum(out, "active_s"));

        /* Freshness: a fresh topic is not needed; the trainer starts at the
         * stored offsets (the end), and new events carry the send time. */
        char inst[64];
        snprintf(inst, sizeof(inst), "metrics.instance=bench-fresh-%d", r + 1);
        train_argv(&e, v, "-X", inst, NULL);
        spawn(&tr, v, 1);
        sleep(10); /* group join (the previous member's session may have to expire) */
        long long t0 = now_ms(0), sent = 0, total = (long long)(rate * seconds);
        long long t_start = now_ms(1);
        while (sent < total) {
            long long due = (long long)((double)(now_ms(0) - t0) * rate / 1000.0);
            if (due > total) due = total;
            int64_t ts = now_ms(1);
            while (sent < due) {
                send_ev(rk, &lg.ev[(size_t)sent % lg.n], 1000000000L + sent, ts);
                sent++;
            }
            rd_kafka_poll(rk, 0);
            usleep(1000);
        }
        long long t_end = now_ms(1);
        rd_kafka_flush(rk, 10000);
        sleep(1);
        kill(tr.pid, SIGTERM);
        read_all(&tr, out, sizeof(out));
        stop(&tr, SIGTERM);
        printf("%s\n", out);
        p50[r] = jnum(out, "freshness_p50_ms");
        p99[r] = jnum(out, "freshness_p99_ms");
        /* arrival: event timestamp -> taken from the consumer queue, the
         * part of the freshness before the trainer has the event. */
        printf("freshness run %d at %.0f events/s for %d s: p50 %.0f ms, p99 %.0f ms "
               "(applied %.0f; arrival p50 %.0f ms, p99 %.0f ms)\n",
               r + 1, rate, seconds, p50[r], p99[r], jnum(out, "events_applied"),
               jnum(out, "arrival_p50_ms"), jnum(out, "arrival_p99_ms"));
        /* The same run without the first half (the trainer's warm-up: it
         * started with nothing in memory and loads every user it meets). */
        char instance[64];
        snprintf(instance, sizeof(instance), "bench-fresh-%d", r + 1);
        int ni = steady_freshness(e.bootstrap, instance, t_start + (t_end - t_start) / 2,
                                  t_end + 500, &sp99m[r], &sp99x[r]);
        printf("freshness run %d, second half (%d metrics intervals): interval p99 median %.0f "
               "ms, max %.0f ms\n",
               r + 1, ni, sp99m[r], sp99x[r]);
        rd_kafka_destroy(rk);
        env_stop(&e);
    }
    printf("median throughput: %.0f events/s; median freshness at %.0f/s: p50 %.0f ms, p99 %.0f ms"
           "; second half: interval p99 median %.0f ms, max %.0f ms\n",
           median(tp, reps), rate, median(p50, reps), median(p99, reps), median(sp99m, reps),
           median(sp99x, reps));
    return 0;
}
