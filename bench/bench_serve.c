/* Helpers for bench/bench_serve.sh (the ranker's latency benchmark):
 *
 *   bench_serve seed --redis-port P [--items 100000] [--users 10000]
 *                    [--dim 32] [--recent 20]
 *       writes a catalogue and users through store/ (the trainer's own
 *       flush), so `streamrec serve` loads exactly what a trainer would
 *       have written;
 *
 *   bench_serve load --port P --rate R --seconds S [--conns C]
 *                    [--kind recommend|rank|similar] [--users U] [--items N]
 *                    [--k 32] [--cands 200]
 *       an open-loop, fixed-rate HTTP load generator (what wrk2 does and
 *       Debian's wrk does not): request i is due at t0 + i/R; latency is
 *       measured from the due time, so a slow server cannot hide queueing
 *       (no coordinated omission).  C keep-alive connections, one thread
 *       each, share the schedule round-robin.  Prints one line:
 *       rate achieved, p50/p90/p99/max in ms, errors.
 *
 * Not run by ctest. */
#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "sr_store.h"
#include "bench_util.h"

static const char *arg(int argc, char **argv, const char *name, const char *def)
{
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0) return argv[i + 1];
    return def;
}

static int seed(int argc, char **argv)
{
    int port = atoi(arg(argc, argv, "--redis-port", "6379"));
    int n_items = atoi(arg(argc, argv, "--items", "100000"));
    int n_users = atoi(arg(argc, argv, "--users", "10000"));
    int dim = atoi(arg(argc, argv, "--dim", "32"));
    int n_recent = atoi(arg(argc, argv, "--recent", "20"));
    sr_store_opts_t o;
    sr_store_opts_init(&o);
    o.port = port;
    o.timeout_ms = 30000;
    char err[512];
    sr_store_t *s = sr_store_new(&o, err, sizeof err);
    if (!s) {
        fprintf(stderr, "seed: %s\n", err);
        return 1;
    }
    enum { B = 2000 };
    char(*ids)[24] = malloc(B * sizeof(*ids));
    float *vecs = malloc((size_t)B * dim * sizeof(float));
    sr_store_item_t *items = calloc(B, sizeof(*items));
    sr_store_item_write_t *w = calloc(B, sizeof(*w));
    sr_store_user_t *users = calloc(B, sizeof(*users));
    sr_store_recent_t *rec = calloc((size_t)B * n_recent, sizeof(*rec));
    char(*rids)[24] = malloc((size_t)B * n_recent * sizeof(*rids));
    int64_t off = SR_STORE_OFFSET_NONE, next = 1;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int base = 0; base < n_items; base += B) {
        int n = n_items - base < B ? n_items - base : B;
        for (int j = 0; j < n; j++) {
            snprintf(ids[j], sizeof ids[j], "item%d", base + j);
            for (int d = 0; d < dim; d++)
                vecs[(size_t)j * dim + d] = 0.3f * nrand();
            items[j] = (sr_store_item_t){.id = ids[j],
                                         .id_len = strlen(ids[j]),
                                         .dim = (uint16_t)dim,
                                         .vec = vecs + (size_t)j * dim,
                                         .bias = 0.1f * nrand()};
            /* Zipf-like popularity, as in a shop */
            w[j] = (sr_store_item_write_t){
                .cur = &items[j], .write_pop = 1, .pop_cur = 1000.0 / (1.0 + base + j)};
        }
        sr_store_offset_t ofs = {.topic = "bench", .partition = 0, .prev = off, .next = next};
        sr_store_flush_t f = {
            .group = "bench", .offsets = &ofs, .n_offsets = 1, .items = w, .n_items = (size_t)n};
        sr_store_flush_result_t res;
        if (sr_store_flush(s, &f, &res) != 0) {
            fprintf(stderr, "seed: items flush: %s\n", sr_store_errstr(s));
            return 1;
        }
        off = next++;
    }
    long long now = (long long)time(NULL) * 1000;
    for (int base = 0; base < n_users; base += B) {
        int n = n_users - base < B ? n_users - base : B;
        for (int j = 0; j < n; j++) {
            snprintf(ids[j], sizeof ids[j], "user%d", base + j);
            for (int d = 0; d < dim; d++)
                vecs[(size_t)j * dim + d] = 0.3f * nrand();
            for (int r = 0; r < n_recent; r++) {
                size_t x = (size_t)j * n_recent + r;
                snprintf(rids[x], sizeof rids[x], "item%d",
                         (int)(pow(urand(), 2.0) * n_items)); /* skewed to popular */
                rec[x] = (sr_store_recent_t){.item_id = rids[x],
                                             .item_id_len = strlen(rids[x]),
                                             .ts_ms = now - (n_recent - r) * 60000LL,
                                             .type = (uint8_t)(r % 7 == 6 ? 3 : r % 3)};
            }
            users[j] = (sr_store_user_t){.id = ids[j],
                                         .id_len = strlen(ids[j]),
                                         .dim = (uint16_t)dim,
                                         .vec = vecs + (size_t)j * dim,
                                         .events = (uint64_t)n_recent,
                                         .last_ts_ms = now,
                                         .n_recent = (uint32_t)n_recent,
                                         .recent = rec + (size_t)j * n_recent};
        }
        sr_store_offset_t ofs = {.topic = "bench", .partition = 0, .prev = off, .next = next};
        sr_store_flush_t f = {.group = "bench",
                              .offsets = &ofs,
                              .n_offsets = 1,
                              .users = users,
                              .n_users = (size_t)n};
        sr_store_flush_result_t res;
        if (sr_store_flush(s, &f, &res) != 0) {
            fprintf(stderr, "seed: users flush: %s\n", sr_store_errstr(s));
            return 1;
        }
        off = next++;
    }
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    fprintf(stderr, "seed: %d items, %d users (dim %d, %d recent) in %.1f s\n", n_items, n_users,
            dim, n_recent, (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
    sr_store_destroy(s);
    free(ids);
    free(vecs);
    free(items);
    free(w);
    free(users);
    free(rec);
    free(rids);
    return 0;
}

/* ---- load ---- */

typedef struct load {
    int port, conns, users, items, k, cands;
    int rank, similar;
    double rate;
    int64_t t0_ns, end_ns;
    uint64_t total;  /* requests scheduled in all */
    double *lat_ms;  /* per request, from the due time */
    double *late_ms; /* per request, due time to send: the generator's own delay */
    double *took_ms; /* per request, the server's took_us (-1 when absent) */
    atomic_long errors;
    atomic_long done;
} load_t;

typedef struct worker {
    load_t *L;
    int id;
} worker_t;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int dial(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

/* The server-side time a response reports ("took_us"), in ms; -1 if none. */
static double took_of(const char *body)
{
    const char *t = strstr(body, "\"took_us\":");
    return t ? atof(t + 10) / 1000.0 : -1;
}

/* Reads one response (headers + Content-Length body, NUL-terminated);
 * returns status or -1. */
static int read_resp(int fd, char *buf, size_t cap)
{
    size_t len = 0;
    long hdr = -1;
    size_t want = 0;
    int status = -1;
    for (;;) {
        if (hdr >= 0 && len >= (size_t)hdr + want) {
            buf[len] = 0;
            return status;
        }
        if (len + 1 >= cap) return -1;
        ssize_t n = recv(fd, buf + len, cap - 1 - len, 0);
        if (n <= 0) return -1;
        len += (size_t)n;
        if (hdr < 0) {
            buf[len < cap ? len : cap - 1] = 0;
            char *e = strstr(buf, "\r\n\r\n");
            if (!e) continue;
            hdr = e - buf + 4;
            sscanf(buf, "HTTP/1.%*d %d", &status);
            char *cl = strstr(buf, "Content-Length:");
            want = cl ? strtoul(cl + 15, NULL, 10) : 0;
        }
    }
}

static void *work(void *arg)
{
    worker_t *w = arg;
    load_t *L = w->L;
    int fd = dial(L->port);
    char *req = malloc(65536), *buf = malloc(1 << 20);
    uint64_t seedv = 0x1234567ULL + (uint64_t)w->id * 7919;
    for (uint64_t i = (uint64_t)w->id; i < L->total; i += (uint64_t)L->conns) {
        int64_t due = L->t0_ns + (int64_t)((double)i * 1e9 / L->rate);
        int64_t t = now_ns();
        if (due > t) {
            struct timespec ts = {(due - t) / 1000000000, (due - t) % 1000000000};
            nanosleep(&ts, NULL);
        }
        seedv ^= seedv << 13;
        seedv ^= seedv >> 7;
        seedv ^= seedv << 17;
        int user = (int)(seedv % (uint64_t)L->users);
        int len;
        if (L->similar) {
            len =
                snprintf(req, 65536, "GET /v1/similar?item=item%d&k=%d HTTP/1.1\r\nHost: b\r\n\r\n",
                         (int)(seedv % (uint64_t)L->items), L->k);
        } else if (!L->rank) {
            len = snprintf(req, 65536,
                           "GET /v1/recommend?user=user%d&k=%d HTTP/1.1\r\nHost: b\r\n\r\n", user,
                           L->k);
        } else {
            char body[16384];
            int bl = snprintf(body, sizeof body, "{\"user\":\"user%d\",\"items\":[", user);
            for (int c = 0; c < L->cands; c++) {
                seedv ^= seedv << 13;
                seedv ^= seedv >> 7;
                seedv ^= seedv << 17;
                bl += snprintf(body + bl, sizeof body - (size_t)bl, "%s\"item%d\"", c ? "," : "",
                               (int)(seedv % (uint64_t)L->items));
            }
            bl += snprintf(body + bl, sizeof body - (size_t)bl, "]}");
            len = snprintf(req, 65536,
                           "POST /v1/rank HTTP/1.1\r\nHost: b\r\nContent-Type: application/json\r\n"
                           "Content-Length: %d\r\n\r\n%s",
                           bl, body);
        }
        int st = -1;
        L->late_ms[i] = (double)(now_ns() - due) / 1e6;
        L->took_ms[i] = -1;
        if (fd >= 0 && send(fd, req, (size_t)len, MSG_NOSIGNAL) == len)
            st = read_resp(fd, buf, 1 << 20);
        if (st == 200) L->took_ms[i] = took_of(buf);
        if (st != 200) {
            atomic_fetch_add(&L->errors, 1);
            if (fd >= 0) close(fd);
            fd = dial(L->port);
        }
        L->lat_ms[i] = (double)(now_ns() - due) / 1e6;
        atomic_fetch_add(&L->done, 1);
    }
    if (fd >= 0) close(fd);
    free(req);
    free(buf);
    return NULL;
}

static int load(int argc, char **argv)
{
    load_t L = {0};
    L.port = atoi(arg(argc, argv, "--port", "8080"));
    L.rate = atof(arg(argc, argv, "--rate", "1000"));
    double secs = atof(arg(argc, argv, "--seconds", "10"));
    L.conns = atoi(arg(argc, argv, "--conns", "16"));
    L.users = atoi(arg(argc, argv, "--users", "10000"));
    L.items = atoi(arg(argc, argv, "--items", "100000"));
    L.k = atoi(arg(argc, argv, "--k", "32"));
    L.cands = atoi(arg(argc, argv, "--cands", "200"));
    const char *kind = arg(argc, argv, "--kind", "recommend");
    L.rank = strcmp(kind, "rank") == 0;
    L.similar = strcmp(kind, "similar") == 0;
    L.total = (uint64_t)(L.rate * secs);
    L.lat_ms = calloc(L.total, sizeof(double));
    L.late_ms = calloc(L.total, sizeof(double));
    L.took_ms = calloc(L.total, sizeof(double));
    atomic_init(&L.errors, 0);
    atomic_init(&L.done, 0);
    L.t0_ns = now_ns() + 50000000;
    pthread_t *th = malloc((size_t)L.conns * sizeof(*th));
    worker_t *ws = malloc((size_t)L.conns * sizeof(*ws));
    for (int c = 0; c < L.conns; c++) {
        ws[c] = (worker_t){&L, c};
        pthread_create(&th[c], NULL, work, &ws[c]);
    }
    for (int c = 0; c < L.conns; c++)
        pthread_join(th[c], NULL);
    double wall = (double)(now_ns() - L.t0_ns) / 1e9;
    qsort(L.lat_ms, L.total, sizeof(double), cmp_d);
    qsort(L.late_ms, L.total, sizeof(double), cmp_d);
    qsort(L.took_ms, L.total, sizeof(double), cmp_d);
    /* responses without took_us sort first (-1) */
    size_t nt = 0;
    while (nt < L.total && L.took_ms[nt] < 0)
        nt++;
    const double *tk = L.took_ms + nt;
    size_t ntk = L.total - nt;
#define Q(a, n, p) ((n) ? (a)[(size_t)((double)((n)-1) * (p))] : -1.0)
    /* server = the ranker's took_us (parse to answer, no socket time);
     * late = due time to send (the load generator's own delay) */
    printf("kind=%s rate=%.0f achieved=%.0f n=%llu p50=%.3f p90=%.3f p99=%.3f max=%.3f ms "
           "errors=%ld server_p50=%.3f server_p99=%.3f server_max=%.3f late_p99=%.3f\n",
           L.rank      ? "rank"
           : L.similar ? "similar"
                       : "recommend",
           L.rate, (double)L.total / wall, (unsigned long long)L.total, Q(L.lat_ms, L.total, 0.5),
           Q(L.lat_ms, L.total, 0.9), Q(L.lat_ms, L.total, 0.99), L.lat_ms[L.total - 1],
           atomic_load(&L.errors), Q(tk, ntk, 0.5), Q(tk, ntk, 0.99), ntk ? tk[ntk - 1] : -1.0,
           Q(L.late_ms, L.total, 0.99));
    free(L.lat_ms);
    free(L.late_ms);
    free(L.took_ms);
    free(th);
    free(ws);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "seed") == 0) return seed(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "load") == 0) return load(argc, argv);
    fprintf(stderr, "usage: bench_serve seed|load [options] (see bench/bench_serve.c)\n");
    return 2;
}
