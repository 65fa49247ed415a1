/* Learn throughput of the online model (issue 2 §8): events/s on one core
 * at k=32 and k=64 with 4 negatives and string ids, against a bare SGD loop
 * of the same shape (integer ids, no id tables, no signals, no blend) run in
 * the same process, so the ratio says what the model's extra work costs on
 * this machine today.  Also times the scoring pass (sr_model_score_all's
 * kernel) against OpenBLAS sgemv over the same item matrix.
 *
 * Usage: bench_learn [events] [reps]   (defaults 300000, 5).  Prints medians. */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sr_model.h"
#include "sr_model_state.h"
#include "sr_score.h"
#include "sr_sim.h"
#include "bench_util.h"

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* The stream, copied out of the simulator so generation is not timed. */
typedef struct stream {
    sr_event_t *ev;
    char *arena;
    uint32_t *uidx, *iidx; /* dense indices for the bare loop */
    uint32_t n_users, n_items;
    size_t n;
} stream_t;

static uint32_t dense(const char *id, size_t len)
{
    /* ids are "u123" / "i456" from the simulator */
    (void)len;
    return (uint32_t)strtoul(id + 1, NULL, 10);
}

static void make_stream(stream_t *s, size_t n)
{
    sr_sim_params_t sp;
    sr_sim_params_init(&sp);
    sp.users = 10000;
    sp.items = 20000;
    sp.events = n;
    sp.seed = 1;
    char err[128];
    sr_sim_t *sim = sr_sim_new(&sp, err, sizeof err);
    if (!sim) {
        fprintf(stderr, "sim: %s\n", err);
        exit(1);
    }
    s->ev = calloc(n, sizeof *s->ev);
    s->arena = malloc(n * 2 * 16);
    s->uidx = malloc(n * sizeof *s->uidx);
    s->iidx = malloc(n * sizeof *s->iidx);
    s->n_users = sp.users;
    s->n_items = sp.items;
    size_t off = 0, k = 0;
    sr_event_t ev;
    while (k < n && sr_sim_next(sim, &ev) == 1) {
        s->ev[k] = ev;
        memcpy(s->arena + off, ev.user, ev.user_len);
        s->ev[k].user = s->arena + off;
        off += 16;
        memcpy(s->arena + off, ev.item, ev.item_len);
        s->ev[k].item = s->arena + off;
        off += 16;
        s->uidx[k] = dense(ev.user, ev.user_len);
        s->iidx[k] = dense(ev.item, ev.item_len);
        k++;
    }
    s->n = k;
    sr_sim_destroy(sim);
}

static double run_model(const stream_t *s, int dim)
{
    sr_model_params_t p;
    sr_model_params_init(&p);
    p.dim = dim;
    p.negatives = 4;
    sr_model_t *m = sr_model_new(&p, NULL, 0);
    double t0 = now_s();
    for (size_t k = 0; k < s->n; k++)
        sr_model_learn(m, &s->ev[k], NULL);
    double t = now_s() - t0;
    sr_model_destroy(m);
    return (double)s->n / t;
}

/* The reference: logistic loss, 4 negatives drawn uniformly, row-wise
 * AdaGrad, L2 and clipping, on integer ids.  Everything the model adds
 * (id tables, the short-term vector, popularity, co-occurrence, the
 * recent list, the blend learner, dirty tracking) is left out. */
static double run_bare(const stream_t *s, int dim)
{
    size_t nu = s->n_users, ni = s->n_items;
    float *P = calloc(nu * dim, sizeof(float)), *Q = malloc(ni * dim * sizeof(float));
    float *pa = calloc(nu, sizeof(float)), *qa = calloc(ni, sizeof(float));
    float *b = calloc(ni, sizeof(float)), *ba = calloc(ni, sizeof(float));
    float *gp = malloc(dim * sizeof(float)), *tmp = malloc(dim * sizeof(float));
    uint64_t r = 88172645463325252ull;
    for (size_t k = 0; k < ni * (size_t)dim; k++) {
        r ^= r << 13, r ^= r >> 7, r ^= r << 17;
        Q[k] = ((float)(r >> 40) / 16777216.0f - 0.5f) * 0.2f;
    }
    const float lr = 0.05f, l2 = 1e-4f, clip = 1.0f;
    volatile float sink = 0;
    double t0 = now_s();
    for (size_t k = 0; k < s->n; k++) {
        uint32_t u = s->uidx[k];
        float *pu = P + (size_t)u * dim;
        memset(gp, 0, dim * sizeof(float));
        for (int j = 0; j < 5; j++) {
            uint32_t x;
            float y;
            if (j == 0) {
                x = s->iidx[k];
                y = 1;
            } else {
                r ^= r << 13, r ^= r >> 7, r ^= r << 17;
                x = (uint32_t)(((r >> 32) * ni) >> 32);
                y = 0;
            }
            float *q = Q + (size_t)x * dim;
            float z = b[x] + sr_dot(q, pu, dim);
            float sg = 1.0f / (1.0f + expf(-z));
            float g = sg - y, ss = 0;
            for (int d = 0; d < dim; d++) {
                gp[d] += g * q[d];
                float v = g * pu[d] + l2 * q[d];
                v = v > clip ? clip : v < -clip ? -clip : v;
                tmp[d] = v;
                ss += v * v;
            }
            qa[x] += ss / dim;
            float eta = lr / sqrtf(qa[x] + 0.01f);
            for (int d = 0; d < dim; d++)
                q[d] -= eta * tmp[d];
            ba[x] += g * g;
            b[x] -= lr / sqrtf(ba[x] + 0.01f) * g;
        }
        float ss = 0;
        for (int d = 0; d < dim; d++) {
            float v = gp[d] + l2 * pu[d];
            v = v > clip ? clip : v < -clip ? -clip : v;
            tmp[d] = v;
            ss += v * v;
        }
        pa[u] += ss / dim;
        float eta = lr / sqrtf(pa[u] + 0.01f);
        for (int d = 0; d < dim; d++)
            pu[d] -= eta * tmp[d];
    }
    double t = now_s() - t0;
    sink = P[0];
    (void)sink;
    free(P), free(Q), free(pa), free(qa), free(b), free(ba), free(gp), free(tmp);
    return (double)s->n / t;
}

/* Scoring: the kernel's dense pass vs cblas_sgemv + the same extra terms,
 * over n_items x dim, in items scored per second. */
static void bench_score(int dim, int reps)
{
    const uint32_t n = 50000;
    float *q = malloc((size_t)n * dim * sizeof(float)), *bias = calloc(n, sizeof(float));
    float *lp = calloc(n, sizeof(float)), *out = malloc(n * sizeof(float));
    float *p = malloc(dim * sizeof(float)), *scratch = malloc(2 * dim * sizeof(float));
    for (size_t k = 0; k < (size_t)n * dim; k++)
        q[k] = (float)((k * 2654435761u) % 1000) / 1000.0f - 0.5f;
    for (int d = 0; d < dim; d++)
        p[d] = 0.01f * d;
    sr_score_items_t it = {.dim = dim, .n_items = n, .q = q, .bias = bias, .logpop = lp};
    sr_score_conf_t c = {.recent_half_life_s = 1800};
    for (int k = 0; k < SR_BLEND_NFEAT; k++)
        c.blend[k] = 1;
    sr_score_user_t u = {.p = p};
    double *tk = malloc(reps * sizeof(double)), *tb = malloc(reps * sizeof(double));
    double *tn = malloc(reps * sizeof(double));
    int threads = openblas_get_num_threads();
    for (int r = 0; r < reps; r++) {
        const int loops = 50;
        double t0 = now_s();
        for (int l = 0; l < loops; l++)
            sr_score_all(&it, &c, &u, out, scratch);
        tk[r] = (double)n * loops / (now_s() - t0);
        for (int pass = 0; pass < 2; pass++) {
            openblas_set_num_threads(pass == 0 ? 1 : threads);
            t0 = now_s();
            for (int l = 0; l < loops; l++) {
                for (uint32_t i = 0; i < n; i++)
                    out[i] = bias[i] + fmaxf(lp[i], SR_POP_FLOOR);
                cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)n, dim, 1.0f, q, dim, p, 1, 1.0f, out,
                            1);
            }
            (pass == 0 ? tb : tn)[r] = (double)n * loops / (now_s() - t0);
        }
    }
    double mk = median(tk, reps), mb = median(tb, reps), mn = median(tn, reps);
    printf("score k=%d, %u items: kernel (1 thread) %.0f M items/s; openblas sgemv 1 thread "
           "%.0f M items/s (kernel/sgemv %.2f), %d threads %.0f M items/s (kernel/sgemv %.2f)\n",
           dim, n, mk / 1e6, mb / 1e6, mk / mb, threads, mn / 1e6, mk / mn);
    free(tn);
    free(q), free(bias), free(lp), free(out), free(p), free(scratch), free(tk), free(tb);
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 300000;
    int reps = argc > 2 ? atoi(argv[2]) : 5;
    if (reps < 1) reps = 1;
    stream_t s;
    make_stream(&s, n);
    printf("stream: %zu simulated events (10000 users, 20000 items), %d reps, medians\n", s.n,
           reps);
    int dims[2] = {32, 64};
    for (int di = 0; di < 2; di++) {
        double *a = malloc(reps * sizeof(double)), *b = malloc(reps * sizeof(double));
        for (int r = 0; r < reps; r++) {
            a[r] = run_model(&s, dims[di]);
            b[r] = run_bare(&s, dims[di]);
        }
        double ma = median(a, reps), mb = median(b, reps);
        printf("learn k=%d negatives=4: model %.3f M events/s, bare SGD %.3f M events/s, "
               "model/bare %.2f\n",
               dims[di], ma / 1e6, mb / 1e6, ma / mb);
        free(a), free(b);
    }
    for (int di = 0; di < 2; di++)
        bench_score(dims[di], reps);
    return 0;
}
