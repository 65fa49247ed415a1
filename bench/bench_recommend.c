/* The ranker's recommend and similar paths in process, full float pass vs
 * the two-stage int8 + exact rescore (ranker.score.prune, ranker/quant.h),
 * in one run on the same catalogue and users: per-request time (no Redis,
 * no HTTP), and a check that both answer every request identically (ids
 * and score bits).  similar asks for the items like 1,000 catalogue items
 * spread over the popularity range.
 *
 * The catalogue is bench_serve's: n items of dim 32 with q ~ 0.3 N(0,1),
 * bias 0.1 N(0,1), Zipf popularity 1000 / (1 + j); users 0.3 N(0,1) with 20
 * recent items skewed to popular ones, a minute apart.
 *
 * Usage: bench_recommend [items] [reps] [k]  (defaults 100000, 7, 32).
 * Prints medians over reps of the mean per request, and p50/p99 of single
 * requests over all reps. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sr_ranker.h"
#include "bench_util.h"

#define DIM 32
#define USERS 1000
#define RECENT 20
#define NOW_MS 1700000000000LL

typedef struct user {
    float vec[DIM];
    sr_ranker_recent_t recent[RECENT];
    char ids[RECENT][16];
} user_t;

static user_t *users;

static int get_user(void *opaque, const char *id, size_t len, sr_ranker_user_t *out)
{
    (void)opaque;
    int j = atoi(id);
    (void)len;
    user_t *u = &users[j % USERS];
    out->found = 1;
    out->has_vec = 1;
    memcpy(out->vec, u->vec, sizeof(u->vec));
    memcpy(out->recent, u->recent, sizeof(u->recent));
    out->n_recent = RECENT;
    out->events = RECENT;
    return 0;
}

static int64_t now_ms(void *opaque)
{
    (void)opaque;
    return NOW_MS;
}

static double pct(double *v, size_t n, double p)
{
    qsort(v, n, sizeof(*v), cmp_d);
    return v[(size_t)(p * (double)(n - 1))];
}

/* Request j of a kind: recommend for user j, or similar for item
 * j * n / USERS. */
static int query(int kind, sr_ranker_t *r, uint32_t n, int j, size_t k, sr_ranker_result_t *res)
{
    char id[16];
    if (kind == 0) {
        int l = snprintf(id, sizeof(id), "%d", j);
        return sr_ranker_recommend(r, id, (size_t)l, k, SR_EXCLUDE_PURCHASED, res);
    }
    int l = snprintf(id, sizeof(id), "i%u", (uint32_t)((uint64_t)j * n / USERS));
    return sr_ranker_similar(r, id, (size_t)l, k, res);
}

/* Times one kind on both rankers (rk[0] full, rk[1] two-stage), prints
 * the line, returns how many answers differ. */
static size_t compare(int kind, sr_ranker_t **rk, uint32_t n, int reps, size_t k)
{
    double *mean[2], *single[2];
    for (int m = 0; m < 2; m++) {
        mean[m] = malloc(reps * sizeof(double));
        single[m] = malloc((size_t)reps * USERS * sizeof(double));
    }
    for (int r = 0; r < reps; r++) {
        for (int h = 0; h < 2; h++) {
            int m = (r + h) % 2; /* alternate which goes first */
            double t0 = now_s();
            for (int j = 0; j < USERS; j++) {
                sr_ranker_result_t res;
                double a = now_s();
                if (query(kind, rk[m], n, j, k, &res) != 0) exit(1);
                single[m][(size_t)r * USERS + j] = now_s() - a;
                sr_ranker_result_free(&res);
            }
            mean[m][r] = (now_s() - t0) / USERS;
        }
    }
    size_t mismatches = 0;
    for (int j = 0; j < USERS; j++) {
        sr_ranker_result_t a, b;
        query(kind, rk[0], n, j, k, &a);
        query(kind, rk[1], n, j, k, &b);
        int same = a.n == b.n;
        for (size_t i = 0; same && i < a.n; i++)
            same = strcmp(a.items[i].id, b.items[i].id) == 0 &&
                   memcmp(&a.items[i].score, &b.items[i].score, sizeof(float)) == 0;
        mismatches += !same;
        sr_ranker_result_free(&a);
        sr_ranker_result_free(&b);
    }
    double mf = pct(mean[0], reps, 0.5), mp = pct(mean[1], reps, 0.5);
    size_t ns = (size_t)reps * USERS;
    double f50 = pct(single[0], ns, 0.5), f99 = pct(single[0], ns, 0.99);
    double p50 = pct(single[1], ns, 0.5), p99 = pct(single[1], ns, 0.99);
    printf("%s %u items dim %d k=%zu, %d requests x %d reps (in process, no Redis/HTTP):\n",
           kind ? "similar" : "recommend", n, DIM, k, USERS, reps);
    printf("  full float pass : mean %.1f us  p50 %.1f us  p99 %.1f us\n", mf * 1e6, f50 * 1e6,
           f99 * 1e6);
    printf("  two-stage (int8): mean %.1f us  p50 %.1f us  p99 %.1f us\n", mp * 1e6, p50 * 1e6,
           p99 * 1e6);
    printf("  full/two-stage  : mean %.2fx  p50 %.2fx; answers differing: %zu of %d\n", mf / mp,
           f50 / p50, mismatches, USERS);
    for (int m = 0; m < 2; m++) {
        free(mean[m]);
        free(single[m]);
    }
    return mismatches;
}

int main(int argc, char **argv)
{
    uint32_t n = argc > 1 ? (uint32_t)strtoul(argv[1], NULL, 10) : 100000;
    int reps = argc > 2 ? atoi(argv[2]) : 7;
    size_t k = argc > 3 ? strtoul(argv[3], NULL, 10) : 32;
    if (reps < 1) reps = 1;
    users = calloc(USERS, sizeof(*users));
    float *vecs = malloc((size_t)n * DIM * sizeof(float)), *bias = malloc(n * sizeof(float)),
          *pop = malloc(n * sizeof(float));
    char **ids = malloc(n * sizeof(char *));
    size_t *lens = malloc(n * sizeof(size_t));
    for (uint32_t j = 0; j < n; j++) {
        for (int d = 0; d < DIM; d++)
            vecs[(size_t)j * DIM + d] = 0.3f * nrand();
        bias[j] = 0.1f * nrand();
        pop[j] = 1000.0f / (1.0f + (float)j);
        ids[j] = malloc(16);
        lens[j] = (size_t)snprintf(ids[j], 16, "i%u", j);
    }
    for (int j = 0; j < USERS; j++) {
        user_t *u = &users[j];
        for (int d = 0; d < DIM; d++)
            u->vec[d] = 0.3f * nrand();
        for (int r = 0; r < RECENT; r++) {
            int x = (int)(pow(urand(), 2.0) * n);
            snprintf(u->ids[r], sizeof(u->ids[r]), "i%d", x);
            u->recent[r] = (sr_ranker_recent_t){.num = -1,
                                                .id = u->ids[r],
                                                .id_len = strlen(u->ids[r]),
                                                .ts_ms = NOW_MS - (RECENT - r) * 60000LL,
                                                .type = r % 4};
        }
    }
    sr_ranker_t *rk[2];
    char err[256];
    for (int m = 0; m < 2; m++) {
        sr_ranker_opts_t o;
        sr_ranker_opts_init(&o);
        o.dim = DIM;
        o.get_user = get_user;
        o.now_ms = now_ms;
        o.prune = m;
        rk[m] = sr_ranker_new_custom(&o, err, sizeof(err));
        if (!rk[m] || sr_ranker_upsert_items(rk[m], (const char *const *)ids, lens, n, vecs, bias,
                                             pop) != 0) {
            fprintf(stderr, "bench_recommend: %s\n", err);
            return 1;
        }
    }
    size_t mismatches = 0;
    for (int kind = 0; kind < 2; kind++)
        mismatches += compare(kind, rk, n, reps, k);
    for (int m = 0; m < 2; m++)
        sr_ranker_destroy(rk[m]);
    for (uint32_t j = 0; j < n; j++)
        free(ids[j]);
    free(ids), free(lens), free(vecs), free(bias), free(pop), free(users);
    return mismatches != 0;
}
