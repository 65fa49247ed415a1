/* Store throughput on one connection: the atomic flush (users + items +
 * popularity + update stream + offsets, as a transaction or with
 * --flush script as one Lua script) against, in the
 * same run, plain pipelined SETs of the same bytes (what Redis can take
 * without the script), plus batched warm-load reads and the full item load.
 *
 *   build/bench_store [--port P] [--batch N] [--reps R] [--flush transaction|script]
 *                     [--contend SECONDS]
 *
 * --contend S: afterwards, two writers (own connections, partitions 1 and
 * 2 of group "contend") flush the same N items (with 300 extra bytes each,
 * like the trainer's) back to back for S seconds: flushes per second and,
 * for the transaction, how many were aborted by the other writer or
 * written by the script.
 *
 * Without --port it starts a private redis-server on a free loopback port
 * and stops it (by PID) at the end.  Prints medians over R repetitions. */
#include <arpa/inet.h>
#include <pthread.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "sr_store.h"
#include "bench_util.h"

extern char **environ;

#define K 32
#define NR 20

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_d);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    int port = -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static pid_t start_redis(int port)
{
    char ports[16];
    snprintf(ports, sizeof(ports), "%d", port);
    char *argv[] = {"redis-server", "--port", ports, "--bind", "127.0.0.1", "--save", "",
                    "--appendonly", "no", "--loglevel", "warning", NULL};
    pid_t pid;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    /* Its output must not hold our stdout open (pipes would never close). */
    posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    int rc = posix_spawnp(&pid, "redis-server", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) return -1;
    for (int i = 0; i < 200; i++) {
        redisContext *c = redisConnect("127.0.0.1", port);
        int ok = c && !c->err;
        redisFree(c);
        if (ok) return pid;
        usleep(20000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

typedef struct data {
    int n;
    char (*uid)[24];
    char (*iid)[24];
    float (*uvec)[K];
    float (*ivec)[K];
    float (*ibase)[K];
    float uacc[1];
    sr_store_recent_t (*rec)[NR];
    char (*rid)[NR][24];
    sr_store_user_t *users;
    sr_store_item_t *items, *bases;
    sr_store_item_write_t *w;
} data_t;

static void data_free(data_t *d)
{
    free(d->uid);
    free(d->iid);
    free(d->uvec);
    free(d->ivec);
    free(d->ibase);
    free(d->rec);
    free(d->rid);
    free(d->users);
    free(d->items);
    free(d->bases);
    free(d->w);
}

static void data_init(data_t *d, int n, int round)
{
    d->n = n;
    d->uid = calloc((size_t)n, sizeof(*d->uid));
    d->iid = calloc((size_t)n, sizeof(*d->iid));
    d->uvec = calloc((size_t)n, sizeof(*d->uvec));
    d->ivec = calloc((size_t)n, sizeof(*d->ivec));
    d->ibase = calloc((size_t)n, sizeof(*d->ibase));
    d->rec = calloc((size_t)n, sizeof(*d->rec));
    d->rid = calloc((size_t)n, sizeof(*d->rid));
    d->users = calloc((size_t)n, sizeof(*d->users));
    d->items = calloc((size_t)n, sizeof(*d->items));
    d->bases = calloc((size_t)n, sizeof(*d->bases));
    d->w = calloc((size_t)n, sizeof(*d->w));
    d->uacc[0] = 1.5f;
    for (int i = 0; i < n; i++) {
        snprintf(d->uid[i], 24, "user%07d", round * n + i);
        snprintf(d->iid[i], 24, "item%07d", i);
        for (int j = 0; j < K; j++) {
            d->uvec[i][j] = (float)(i + j) * 1e-3f;
            d->ivec[i][j] = d->ibase[i][j] = (float)(i - j) * 1e-3f;
        }
        int64_t t = 1763900000000LL;
        for (int r = 0; r < NR; r++) {
            snprintf(d->rid[i][r], 24, "item%07d", (i * 31 + r * 7) % n);
            t += 1000 + (i * 7919 + r * 104729) % 300000;
            d->rec[i][r] = (sr_store_recent_t){.item_id = d->rid[i][r],
                                               .item_id_len = strlen(d->rid[i][r]), .ts_ms = t,
                                               .type = (uint8_t)(r % 4)};
        }
        d->users[i] = (sr_store_user_t){.id = d->uid[i], .id_len = strlen(d->uid[i]), .dim = K,
                                        .n_acc = 1, .vec = d->uvec[i], .acc = d->uacc,
                                        .events = 100, .last_ts_ms = t, .n_recent = NR,
                                        .recent = d->rec[i]};
        d->items[i] = (sr_store_item_t){.id = d->iid[i], .id_len = strlen(d->iid[i]), .dim = K,
                                        .n_acc = 1, .vec = d->ivec[i], .acc = d->uacc,
                                        .bias = 0.1f};
        d->bases[i] = d->items[i];
        d->bases[i].vec = d->ibase[i];
        d->w[i] = (sr_store_item_write_t){.cur = &d->items[i], .base = &d->bases[i],
                                          .write_pop = 1, .pop_base = 0, .pop_cur = 1.0 + i};
    }
}

static pid_t redis_pid = -1;

typedef struct contender {
    int port, part, n;
    sr_store_flush_mode_t mode;
    double seconds;
    long flushes, aborts, by_script;
    double busy;
} contender_t;

/* One writer of the --contend phase: flushes all n items from the value
 * its last flush got back, as a trainer does. */
static void *contend(void *arg)
{
    contender_t *c = arg;
    sr_store_opts_t o;
    sr_store_opts_init(&o);
    o.port = c->port;
    o.prefix = "contend";
    o.timeout_ms = 10000;
    o.flush_mode = c->mode;
    char err[256];
    sr_store_t *s = sr_store_new(&o, err, sizeof(err));
    if (!s) {
        fprintf(stderr, "bench_store: contend: %s\n", err);
        return NULL;
    }
    char (*ids)[24] = calloc((size_t)c->n, sizeof(*ids));
    float(*v)[K] = calloc((size_t)c->n, sizeof(*v)), (*b)[K] = calloc((size_t)c->n, sizeof(*b));
    sr_store_item_t *cur = calloc((size_t)c->n, sizeof(*cur)),
                    *base = calloc((size_t)c->n, sizeof(*base));
    sr_store_item_write_t *w = calloc((size_t)c->n, sizeof(*w));
    static const float acc = 1.0f;
    static char extra[300];
    for (int i = 0; i < c->n; i++) {
        snprintf(ids[i], sizeof(ids[i]), "item%07d", i);
        cur[i] = (sr_store_item_t){.id = ids[i], .id_len = strlen(ids[i]), .dim = K, .n_acc = 1,
                                   .vec = v[i], .acc = &acc, .extra = extra,
                                   .extra_len = sizeof(extra)};
        base[i] = cur[i];
        base[i].vec = b[i];
        w[i] = (sr_store_item_write_t){.cur = &cur[i], .base = &base[i], .write_pop = 1};
    }
    sr_store_offset_t off = {.topic = "events", .partition = c->part,
                             .prev = SR_STORE_OFFSET_NONE, .next = 1};
    sr_store_flush_t f = {.group = "contend", .offsets = &off, .n_offsets = 1, .items = w,
                          .n_items = (size_t)c->n};
    double end = now_s() + c->seconds;
    while (now_s() < end) {
        for (int i = 0; i < c->n; i++) v[i][i % K] += 1e-3f;
        sr_store_flush_result_t res;
        double t0 = now_s();
        if (sr_store_flush(s, &f, &res) < 0) {
            fprintf(stderr, "bench_store: contend: %s\n", sr_store_errstr(s));
            break;
        }
        c->busy += now_s() - t0;
        for (int i = 0; i < c->n; i++) {
            memcpy(b[i], res.merged[i].vec, sizeof(b[i]));
            memcpy(v[i], b[i], sizeof(v[i]));
        }
        c->flushes++;
        c->aborts += res.tx_aborts;
        c->by_script += res.by_script;
        off.prev = off.next++;
    }
    sr_store_destroy(s);
    free(ids);
    free(v);
    free(b);
    free(cur);
    free(base);
    free(w);
    return NULL;
}

/* Every exit path stops the private redis-server (by PID). */
static void stop_redis(void)
{
    if (redis_pid > 0) {
        kill(redis_pid, SIGTERM);
        waitpid(redis_pid, NULL, 0);
        redis_pid = -1;
    }
}

int main(int argc, char **argv)
{
    int port = 0, batch = 2000, reps = 7;
    const char *mode = "transaction";
    double contend_s = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--contend")) contend_s = atof(argv[i + 1]);
        if (!strcmp(argv[i], "--flush")) mode = argv[i + 1];
        if (!strcmp(argv[i], "--port")) port = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--batch")) batch = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--reps")) reps = atoi(argv[i + 1]);
    }
    pid_t pid = -1;
    if (!port) {
        port = free_port();
        pid = start_redis(port);
        redis_pid = pid;
        atexit(stop_redis);
        if (pid < 0) {
            fprintf(stderr, "bench_store: cannot start redis-server\n");
            return 1;
        }
    }
    sr_store_opts_t o;
    sr_store_opts_init(&o);
    o.port = port;
    o.prefix = "bench";
    o.timeout_ms = 10000;
    o.flush_mode = strcmp(mode, "script") ? SR_STORE_FLUSH_TRANSACTION : SR_STORE_FLUSH_SCRIPT;
    char err[512];
    sr_store_t *s = sr_store_new(&o, err, sizeof(err));
    if (!s) {
        fprintf(stderr, "bench_store: %s\n", err);
        return 1;
    }
    redisContext *raw = redisConnect("127.0.0.1", port);

    data_t d;
    data_init(&d, batch, 0);
    double *flush_exact = calloc((size_t)reps, sizeof(double));
    double *flush_delta = calloc((size_t)reps, sizeof(double));
    double *raw_set = calloc((size_t)reps, sizeof(double));
    double *users_only = calloc((size_t)reps, sizeof(double));
    double *items_only = calloc((size_t)reps, sizeof(double));
    double *items_neg = calloc((size_t)reps, sizeof(double));
    double *warm = calloc((size_t)reps, sizeof(double));
    double *load = calloc((size_t)reps, sizeof(double));
    sr_store_offset_t off = {.topic = "events", .partition = 0, .prev = SR_STORE_OFFSET_NONE};
    sr_store_flush_t f = {.group = "bench", .offsets = &off, .n_offsets = 1, .users = d.users,
                          .n_users = (size_t)batch, .items = d.w, .n_items = (size_t)batch};
    sr_store_flush_result_t res;
    /* Warm-up: assigns item numbers, creates the keys. */
    off.next = 1;
    if (sr_store_flush(s, &f, &res) < 0) {
        fprintf(stderr, "bench_store: flush: %s\n", sr_store_errstr(s));
        return 1;
    }
    off.prev = 1;
    /* The values Redis holds now are the bases of the next flush. */
    for (int i = 0; i < batch; i++) memcpy(d.ibase[i], d.ivec[i], sizeof(d.ibase[i]));
    int64_t offset = 1;
    size_t ublob = sr_store_user_size(&d.users[0]), iblob = sr_store_item_size(&d.items[0]);
    char *ubuf = malloc(ublob * (size_t)batch), *ibuf = malloc(iblob * (size_t)batch);

    for (int r = 0; r < reps; r++) {
        /* 1. exact path: Redis holds base, so cur is stored as is. */
        for (int i = 0; i < batch; i++) {
            d.ivec[i][0] += 1e-3f;
            d.w[i].pop_base = d.w[i].pop_cur;
            d.w[i].pop_cur += 1.0;
        }
        off.next = ++offset;
        double t0 = now_s();
        if (sr_store_flush(s, &f, &res) < 0) {
            fprintf(stderr, "bench_store: flush: %s\n", sr_store_errstr(s));
            return 1;
        }
        flush_exact[r] = now_s() - t0;
        off.prev = offset;
        for (int i = 0; i < batch; i++) memcpy(d.ibase[i], d.ivec[i], sizeof(d.ibase[i]));

        /* 2. delta path: stale bases (as after another trainer's flush). */
        for (int i = 0; i < batch; i++) d.ibase[i][1] += 1.0f;
        off.next = ++offset;
        t0 = now_s();
        if (sr_store_flush(s, &f, &res) < 0 || res.n_delta_merged != (size_t)batch) {
            fprintf(stderr, "bench_store: delta flush: %s\n", sr_store_errstr(s));
            return 1;
        }
        flush_delta[r] = now_s() - t0;
        off.prev = offset;
        for (int i = 0; i < batch; i++) {
            memcpy(d.ivec[i], res.merged[i].vec, sizeof(d.ivec[i]));
            memcpy(d.ibase[i], res.merged[i].vec, sizeof(d.ibase[i]));
        }

        /* 2b. the two halves alone (where the script's time goes). */
        {
            sr_store_flush_t fu = f, fi = f;
            fu.n_items = 0;
            fi.n_users = 0;
            off.next = ++offset;
            t0 = now_s();
            if (sr_store_flush(s, &fu, &res) < 0) return 1;
            users_only[r] = now_s() - t0;
            off.prev = offset;
            off.next = ++offset;
            for (int i = 0; i < batch; i++) {
                d.w[i].pop_base = d.w[i].pop_cur;
                d.w[i].pop_cur += 1.0;
            }
            t0 = now_s();
            if (sr_store_flush(s, &fi, &res) < 0) return 1;
            items_only[r] = now_s() - t0;
            off.prev = offset;
            /* Trainer-shaped: one positive and four sampled negatives per
             * event, so only 1 item in 5 changes popularity. */
            off.next = ++offset;
            for (int i = 0; i < batch; i++) {
                d.w[i].pop_base = d.w[i].pop_cur;
                if (i % 5 == 0) d.w[i].pop_cur += 1.0;
            }
            t0 = now_s();
            if (sr_store_flush(s, &fi, &res) < 0) return 1;
            items_neg[r] = now_s() - t0;
            off.prev = offset;
        }

        /* 3. reference: the same bytes as pipelined SETs, no script. */
        t0 = now_s();
        for (int i = 0; i < batch; i++) {
            char *ub = ubuf + (size_t)i * ublob, *ib = ibuf + (size_t)i * iblob;
            sr_store_user_t u = d.users[i];
            sr_store_recent_t rr[NR];
            for (int j = 0; j < NR; j++) rr[j] = u.recent[j], rr[j].num = (uint32_t)(j + 1);
            u.recent = rr;
            sr_store_user_encode(&u, ub, ublob);
            sr_store_item_encode(&d.items[i], ib, iblob);
            const char *a1[] = {"SET", d.uid[i], ub};
            size_t l1[] = {3, strlen(d.uid[i]), ublob};
            redisAppendCommandArgv(raw, 3, a1, l1);
            const char *a2[] = {"SET", d.iid[i], ib};
            size_t l2[] = {3, strlen(d.iid[i]), iblob};
            redisAppendCommandArgv(raw, 3, a2, l2);
        }
        for (int i = 0; i < 2 * batch; i++) {
            void *rep;
            if (redisGetReply(raw, &rep) != REDIS_OK) return 1;
            freeReplyObject(rep);
        }
        raw_set[r] = now_s() - t0;

        /* 4. warm load of the batch's users (MGET + id resolution). */
        const char **ids = malloc((size_t)batch * sizeof(*ids));
        for (int i = 0; i < batch; i++) ids[i] = d.uid[i];
        sr_store_user_t *out = malloc((size_t)batch * sizeof(*out));
        t0 = now_s();
        long got = sr_store_get_users(s, ids, NULL, (size_t)batch, out);
        warm[r] = now_s() - t0;
        if (got != batch) {
            fprintf(stderr, "bench_store: get_users %ld: %s\n", got, sr_store_errstr(s));
            return 1;
        }
        free(ids);
        free(out);

        /* 5. full item load (HSCAN + MGET + ZSCORE). */
        sr_store_items_t *items;
        t0 = now_s();
        if (sr_store_load_items(s, &items) < 0) return 1;
        load[r] = now_s() - t0;
        sr_store_items_free(items);
    }
    double uo = median(users_only, reps), io = median(items_only, reps),
           in = median(items_neg, reps);
    double fe = median(flush_exact, reps), fd = median(flush_delta, reps),
           rs = median(raw_set, reps), wl = median(warm, reps), ld = median(load, reps);
    long mem = sr_store_user_memory(s, d.uid[0], strlen(d.uid[0]));
    printf("bench_store: batch %d users + %d items per flush, k=%d, %d recent, %d reps (medians), "
           "flush by %s\n",
           batch, batch, K, NR, reps, o.flush_mode == SR_STORE_FLUSH_SCRIPT ? "script" : "transaction");
    printf("  flush, exact path : %8.2f ms  %9.0f users+items/s\n", fe * 1e3, 2 * batch / fe);
    printf("  flush, delta merge: %8.2f ms  %9.0f users+items/s\n", fd * 1e3, 2 * batch / fd);
    printf("  flush, users only : %8.2f ms  %9.0f users/s\n", uo * 1e3, batch / uo);
    printf("  flush, items only : %8.2f ms  %9.0f items/s\n", io * 1e3, batch / io);
    printf("  items, 1/5 pop    : %8.2f ms  %9.0f items/s (popularity changes on 1 in 5)\n",
           in * 1e3, batch / in);
    printf("  pipelined SETs    : %8.2f ms  %9.0f keys/s (same bytes, no atomicity)\n", rs * 1e3,
           2 * batch / rs);
    printf("  ratio flush/SETs  : %.2f (exact), %.2f (delta)\n", fe / rs, fd / rs);
    printf("  warm load users   : %8.2f ms  %9.0f users/s\n", wl * 1e3, batch / wl);
    printf("  load all items    : %8.2f ms  %9.0f items/s\n", ld * 1e3, batch / ld);
    printf("  user blob %zu bytes, item blob %zu bytes, MEMORY USAGE user %ld bytes\n", ublob,
           iblob, mem);
    sr_store_destroy(s);
    redisFree(raw);
    if (contend_s > 0) {
        contender_t c[2];
        pthread_t th[2];
        for (int i = 0; i < 2; i++) {
            c[i] = (contender_t){.port = port, .part = i + 1, .n = batch, .mode = o.flush_mode,
                                 .seconds = contend_s};
            pthread_create(&th[i], NULL, contend, &c[i]);
        }
        for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
        for (int i = 0; i < 2; i++)
            printf("  contend, writer %d : %8.2f ms  %9.1f flushes/s of %d items (%ld flushes, "
                   "%ld transactions aborted, %ld by script)\n",
                   i + 1, c[i].flushes ? 1e3 * c[i].busy / (double)c[i].flushes : 0.0,
                   (double)c[i].flushes / contend_s, batch, c[i].flushes, c[i].aborts,
                   c[i].by_script);
    }
    data_free(&d);
    free(ubuf);
    free(ibuf);
    free(flush_exact);
    free(flush_delta);
    free(raw_set);
    free(users_only);
    free(items_only);
    free(items_neg);
    free(warm);
    free(load);
    return 0;
}
