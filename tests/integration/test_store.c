/* The store against a real redis-server: the atomic flush and its read
 * back, offset fencing and duplicate flushes, the item delta merge (two
 * writers sum, one writer stays bit-exact), the update stream and its cap,
 * popularity, the schema check, reconnecting after a Redis restart and the
 * per-user memory budget.  Every test starts its own private server. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "sr_config.h"
#include "sr_err.h"
#include "sr_store.h"
#include "sr_testproc.h"
#include "sr_time.h"

static sr_test_proc_t redis;
static int port;

static void start_redis(void)
{
    cr_assert_eq(sr_test_redis_start(&redis, &port), 0, "redis-server did not start");
}

static void stop_redis(void)
{
    sr_test_stop(&redis, SIGTERM, 5000);
}

TestSuite(store, .init = start_redis, .fini = stop_redis, .timeout = 120);

static sr_store_t *open_store(const char *prefix)
{
    sr_store_opts_t o;
    sr_store_opts_init(&o);
    o.port = port;
    o.prefix = prefix;
    o.timeout_ms = 2000;
    char err[512];
    sr_store_t *s = sr_store_new(&o, err, sizeof(err));
    cr_assert_not_null(s, "sr_store_new: %s", err);
    return s;
}

static sr_store_t *open_store_db(int db, sr_store_flush_mode_t mode)
{
    sr_store_opts_t o;
    sr_store_opts_init(&o);
    o.port = port;
    o.db = db;
    o.timeout_ms = 2000;
    o.flush_mode = mode;
    char err[512];
    sr_store_t *s = sr_store_new(&o, err, sizeof(err));
    cr_assert_not_null(s, "sr_store_new: %s", err);
    return s;
}

/* redis-cli against the private server; returns its stdout (malloc'd). */
static char *cli(const char *a1, const char *a2, const char *a3, const char *a4)
{
    char ports[16];
    snprintf(ports, sizeof(ports), "%d", port);
    char *argv[] = {"redis-cli", "-p", ports, (char *)a1, (char *)a2, (char *)a3, (char *)a4, NULL};
    char *out = NULL;
    int rc = sr_test_run(argv, &out, 10000);
    cr_assert_eq(rc, 0, "redis-cli %s failed", a1);
    return out;
}

#define DIM 8

typedef struct item_val {
    char id[32];
    float vec[DIM];
    float bias;
} item_val_t;

static sr_store_item_t item_of(item_val_t *v)
{
    sr_store_item_t it = {.id = v->id, .id_len = strlen(v->id), .dim = DIM, .vec = v->vec,
                          .bias = v->bias};
    return it;
}

Test(store, flush_then_read_back_users_items_offsets_global)
{
    sr_store_t *s = open_store("sr");
    float uv[DIM], ua[1] = {3.5f};
    for (int j = 0; j < DIM; j++) uv[j] = 0.1f * (float)j;
    sr_store_recent_t rec[3] = {
        {.item_id = "apple", .item_id_len = 5, .ts_ms = 1000, .type = 1},
        {.item_id = "pear", .item_id_len = 4, .ts_ms = 2000, .type = 3},
        {.item_id = "apple", .item_id_len = 5, .ts_ms = 2500, .type = 0},
    };
    sr_store_user_t u = {.id = "alice", .id_len = 5, .dim = DIM, .n_acc = 1, .vec = uv,
                         .acc = ua, .events = 3, .last_ts_ms = 2500, .n_recent = 3,
                         .recent = rec};
    item_val_t a = {.id = "apple", .bias = 0.5f}, p = {.id = "pear", .bias = -1.0f};
    for (int j = 0; j < DIM; j++) a.vec[j] = (float)j, p.vec[j] = -(float)j;
    sr_store_item_t ai = item_of(&a), pi = item_of(&p);
    sr_store_item_write_t w[2] = {{.cur = &ai, .write_pop = 1, .pop_cur = 2.0},
                                  {.cur = &pi, .write_pop = 1, .pop_cur = 1.0}};
    sr_store_offset_t off[2] = {{.topic = "events", .partition = 0, .prev = SR_STORE_OFFSET_NONE,
                                 .next = 10},
                                {.topic = "events", .partition = 3, .prev = SR_STORE_OFFSET_NONE,
                                 .next = 7}};
    sr_store_flush_t f = {.group = "g1", .offsets = off, .n_offsets = 2, .users = &u, .n_users = 1,
                          .items = w, .n_items = 2, .global = "GLOBAL", .global_len = 6};
    sr_store_flush_result_t res;
    cr_assert_eq(sr_store_flush(s, &f, &res), 0, "%s", sr_store_errstr(s));
    cr_assert_eq(res.duplicate, 0);
    cr_assert_eq(res.n_merged, 2);
    cr_assert_eq(res.n_delta_merged, 0);
    cr_assert_eq(memcmp(res.merged[0].vec, a.vec, sizeof(a.vec)), 0);
    cr_assert_eq(res.merged[0].pop, 2.0);

    const char *ids[] = {"alice", "bob"};
    sr_store_user_t out[2];
    cr_assert_eq(sr_store_get_users(s, ids, NULL, 2, out), 1);
    cr_assert_eq(out[0].exists, 1);
    cr_assert_eq(out[1].exists, 0);
    cr_assert_eq(out[0].events, 3);
    cr_assert_eq(out[0].last_ts_ms, 2500);
    cr_assert_eq(out[0].acc[0], 3.5f);
    cr_assert_eq(memcmp(out[0].vec, uv, sizeof(uv)), 0);
    cr_assert_eq(out[0].n_recent, 3);
    cr_assert_eq(out[0].recent[0].num, out[0].recent[2].num, "same item, same number");
    cr_assert_neq(out[0].recent[0].num, out[0].recent[1].num);
    cr_assert_str_eq(out[0].recent[1].item_id, "pear");
    cr_assert_eq(out[0].recent[1].type, 3);
    cr_assert_eq(out[0].recent[1].ts_ms, 2000);

    uint32_t apple_num = out[0].recent[0].num; /* out is valid until the next call */
    const char *iids[] = {"pear", "fig", "apple"};
    sr_store_item_t io[3];
    cr_assert_eq(sr_store_get_items(s, iids, NULL, 3, io), 2);
    cr_assert_eq(io[0].exists, 1);
    cr_assert_eq(io[1].exists, 0);
    cr_assert_eq(io[0].bias, -1.0f);
    cr_assert_eq(memcmp(io[2].vec, a.vec, sizeof(a.vec)), 0);
    cr_assert_eq(io[2].has_pop, 1);
    cr_assert_eq(io[2].pop, 2.0);
    cr_assert_eq(io[2].num, apple_num);

    int32_t parts[3] = {0, 1, 3};
    int64_t offs[3];
    cr_assert_eq(sr_store_get_offsets(s, "g1", "events", parts, 3, offs), 0);
    cr_assert_eq(offs[0], 10);
    cr_assert_eq(offs[1], SR_STORE_OFFSET_NONE);
    cr_assert_eq(offs[2], 7);

    const void *g;
    size_t gl;
    cr_assert_eq(sr_store_get_global(s, &g, &gl), 0);
    cr_assert_eq(gl, 6);
    cr_assert_eq(memcmp(g, "GLOBAL", 6), 0);

    char *meta = cli("HGET", "sr:meta", "schema", NULL);
    cr_assert_eq(strncmp(meta, "1", 1), 0, "sr:meta schema is '%s'", meta);
    free(meta);
    sr_store_destroy(s);
}

/* A one-user, one-item flush of partition 0 of "events" for group g. */
typedef struct small_flush {
    float uv[DIM];
    sr_store_recent_t rec[1];
    sr_store_user_t u;
    item_val_t it;
    sr_store_item_t cur;
    sr_store_item_write_t w;
    sr_store_offset_t off;
    sr_store_flush_t f;
} small_flush_t;

static void small_flush_init(small_flush_t *x, const char *user, const char *item, int64_t prev,
                             int64_t next)
{
    memset(x, 0, sizeof(*x));
    for (int j = 0; j < DIM; j++) x->uv[j] = (float)next + (float)j;
    x->rec[0] = (sr_store_recent_t){.item_id = item, .item_id_len = strlen(item), .ts_ms = next};
    x->u = (sr_store_user_t){.id = user, .id_len = strlen(user), .dim = DIM, .vec = x->uv,
                             .events = (uint64_t)next, .last_ts_ms = next, .n_recent = 1,
                             .recent = x->rec};
    snprintf(x->it.id, sizeof(x->it.id), "%s", item);
    for (int j = 0; j < DIM; j++) x->it.vec[j] = 1.0f;
    x->cur = item_of(&x->it);
    x->w = (sr_store_item_write_t){.cur = &x->cur};
    x->off = (sr_store_offset_t){.topic = "events", .partition = 0, .prev = prev, .next = next};
    x->f = (sr_store_flush_t){.group = "g", .offsets = &x->off, .n_offsets = 1, .users = &x->u,
                              .n_users = 1, .items = &x->w, .n_items = 1};
}

static long long xlen(void)
{
    char *o = cli("XLEN", "{sr}:updates", NULL, NULL);
    long long n = atoll(o);
    free(o);
    return n;
}

Test(store, offsets_are_fenced_and_a_fenced_flush_writes_nothing)
{
    sr_store_t *s = open_store("sr");
    small_flush_t a, b;
    small_flush_init(&a, "u1", "i1", SR_STORE_OFFSET_NONE, 5);
    sr_store_flush_result_t res;
    cr_assert_eq(sr_store_flush(s, &a.f, &res), 0, "%s", sr_store_errstr(s));
    /* A zombie that still believes partition 0 is unstored. */
    small_flush_init(&b, "u2", "i2", SR_STORE_OFFSET_NONE, 9);
    cr_assert_eq(sr_store_flush(s, &b.f, &res), SR_ERR_STATE);
    cr_assert(strstr(sr_store_errstr(s), "FENCED"), "errstr: %s", sr_store_errstr(s));
    cr_assert_not(sr_store_err_retryable(SR_ERR_STATE));
    const char *ids[] = {"u2"};
    sr_store_user_t out[1];
    cr_assert_eq(sr_store_get_users(s, ids, NULL, 1, out), 0, "fenced flush wrote its user");
    const char *iids[] = {"i2"};
    sr_store_item_t io[1];
    cr_assert_eq(sr_store_get_items(s, iids, NULL, 1, io), 0, "fenced flush wrote its item");
    int32_t p0 = 0;
    int64_t off;
    cr_assert_eq(sr_store_get_offsets(s, "g", "events", &p0, 1, &off), 0);
    cr_assert_eq(off, 5);
    /* The rightful owner continues from 5. */
    small_flush_init(&b, "u2", "i2", 5, 9);
    cr_assert_eq(sr_store_flush(s, &b.f, &res), 0, "%s", sr_store_errstr(s));
    cr_assert_eq(sr_store_get_offsets(s, "g", "events", &p0, 1, &off), 0);
    cr_assert_eq(off, 9);
    sr_store_destroy(s);
}

Test(store, a_retried_flush_is_a_duplicate_and_applies_nothing_twice)
{
    sr_store_t *s = open_store("sr");
    small_flush_t a;
    small_flush_init(&a, "u1", "i1", SR_STORE_OFFSET_NONE, 5);
    a.w.write_pop = 1;
    a.w.pop_cur = 1.0;
    sr_store_flush_result_t res;
    cr_assert_eq(sr_store_flush(s, &a.f, &res), 0, "%s", sr_store_errstr(s));
    small_flush_init(&a, "u1", "i1", 5, 8);
    a.it.vec[0] = 3.0f;
    item_val_t base = a.it;
    base.vec[0] = 1.0f;
    sr_store_item_t bi = item_of(&base);
    a.w.base = &bi;
    a.w.write_pop = 1;
    a.w.pop_base = 1.0;
    a.w.pop_cur = 4.0;
    cr_assert_eq(sr_store_flush(s, &a.f, &res), 0, "%s", sr_store_errstr(s));
    cr_assert_eq(res.duplicate, 0);
    long long len = xlen();
    /* The reply was "lost": the trainer sends the same flush again. */
    cr_assert_eq(sr_store_flush(s, &a.f, &res), 0, "%s", sr_store_errstr(s));
    cr_assert_eq(res.duplicate, 1);
    cr_assert_eq(xlen(), len, "a duplicate appended to the update stream");
    const char *iids[] = {"i1"};
    sr_store_item_t io[1];
    cr_assert_eq(sr_store_get_items(s, iids, NULL, 1, io), 1);
    cr_assert_eq(io[0].vec[0], 3.0f, "delta applied twice: %g", io[0].vec[0]);
    cr_assert_eq(io[0].pop, 4.0);
    sr_store_destroy(s);
}

/* Stage 1 of the flush hook comes after EXEC's reply: sleep there, so
 * that the rest of sr_store_flush ends well after the write. */
static int slow_after_exec(void *arg, int stage)
{
    (void)arg;
    if (stage == 1) usleep(100 * 1000);
    return 0;
}

/* The trainer's freshness ends when Redis answered the atomic write,
 * whichever way it was written, not when sr_store_flush returns; a
 * duplicate wrote nothing and says 0. */
Test(store, a_flush_reports_when_redis_answered_the_write)
{
    for (int db = 3; db <= 4; db++) {
        sr_store_t *s = open_store_db(db, db == 3 ? SR_STORE_FLUSH_TRANSACTION
                                                  : SR_STORE_FLUSH_SCRIPT);
        if (db == 3) sr_store_set_flush_hook(s, slow_after_exec, NULL);
        small_flush_t a;
        small_flush_init(&a, "u1", "i1", SR_STORE_OFFSET_NONE, 5);
        sr_store_flush_result_t res;
        int64_t before = sr_wall_ms();
        cr_assert_eq(sr_store_flush(s, &a.f, &res), 0, "%s", sr_store_errstr(s));
        int64_t after = sr_wall_ms();
        cr_assert_eq(res.by_script, db == 4);
        cr_assert(res.written_wall_ms >= before && res.written_wall_ms <= after,
                  "written at %lld, flush ran %lld..%lld", (long long)res.written_wall_ms,
                  (long long)before, (long long)after);
        if (db == 3)
            cr_assert_geq(after - res.written_wall_ms, 90, "the write's time, not the return's");
        cr_assert_eq(sr_store_flush(s, &a.f, &res), 0, "%s", sr_store_errstr(s));
        cr_assert_eq(res.duplicate, 1);
        cr_assert_eq(res.written_wall_ms, 0);
        sr_store_destroy(s);
    }
}

Test(store, deltas_from_two_writers_are_summed)
{
    sr_store_t *s = open_store("sr");
    /* Writer A creates the item at v0. */
    item_val_t v0 = {.id = "shared", .bias = 0.25f};
    for (int j = 0; j < DIM; j++) v0.vec[j] = 0.5f * (float)j;
    sr_store_item_t c0 = item_of(&v0);
    sr_store_item_write_t w0 = {.cur = &c0, .write_pop = 1, .pop_cur = 1.0};
    sr_store_flush_t f0 = {.items = &w0, .n_items = 1};
    sr_store_flush_result_t res;
    cr_assert_eq(sr_store_flush(s, &f0, &res), 0, "%s", sr_store_errstr(s));
    /* Both writers start from v0 and change it independently. */
    item_val_t va = v0, vb = v0;
    for (int j = 0; j < DIM; j++) {
        va.vec[j] += 0.125f;
        vb.vec[j] -= 0.0625f * (float)j;
    }
    va.bias += 1.0f;
    vb.bias += 2.0f;
    sr_store_item_t base = item_of(&v0), ca = item_of(&va), cb = item_of(&vb);
    sr_store_item_write_t wa = {.cur = &ca, .base = &base, .write_pop = 1, .pop_base = 1.0,
                                .pop_cur = 3.0};
    sr_store_item_write_t wb = {.cur = &cb, .base = &base, .write_pop = 1, .pop_base = 1.0,
                                .pop_cur = 1.5};
    sr_store_flush_t fa = {.items = &wa, .n_items = 1}, fb = {.items = &wb, .n_items = 1};
    cr_assert_eq(sr_store_flush(s, &fa, &res), 0, "%s", sr_store_errstr(s));
    cr_assert_eq(res.n_delta_merged, 0);
    cr_assert_eq(sr_store_flush(s, &fb, &res), 0, "%s", sr_store_errstr(s));
    cr_assert_eq(res.n_delta_merged, 1, "B's flush should have merged onto A's");
    for (int j = 0; j < DIM; j++) {
        float want = v0.vec[j] + 0.125f - 0.0625f * (float)j;
        cr_assert_float_eq(res.merged[0].vec[j], want, 1e-6, "dim %d: %g vs %g", j,
                           res.merged[0].vec[j], want);
        /* The contract's exact arithmetic: in double, rounded to float32. */
        float exact = (float)((double)va.vec[j] + ((double)vb.vec[j] - (double)v0.vec[j]));
        cr_assert_eq(res.merged[0].vec[j], exact, "dim %d not computed as documented", j);
    }
    cr_assert_float_eq(res.merged[0].bias, 0.25f + 1.0f + 2.0f, 1e-6);
    cr_assert_float_eq(res.merged[0].pop, 3.5, 1e-12);
    /* What B got back is what Redis holds. */
    float merged0 = res.merged[0].vec[3];
    const char *iids[] = {"shared"};
    sr_store_item_t io[1];
    cr_assert_eq(sr_store_get_items(s, iids, NULL, 1, io), 1);
    cr_assert_eq(io[0].vec[3], merged0);
    cr_assert_float_eq(io[0].pop, 3.5, 1e-12);
    sr_store_destroy(s);
}

Test(store, a_single_writer_stays_bit_exact_where_delta_arithmetic_would_not)
{
    sr_store_t *s = open_store("sr");
    /* base + (cur - base) loses cur when the magnitudes differ wildly. */
    volatile float b = 1.0f, c = 1e-30f;
    volatile double d = (double)c - (double)b;
    cr_assert_neq((float)((double)b + d), c, "premise: delta arithmetic is not exact here");

    item_val_t v = {.id = "x", .bias = 1.0f};
    for (int j = 0; j < DIM; j++) v.vec[j] = 1.0f;
    sr_store_item_t cur = item_of(&v);
    sr_store_item_write_t w = {.cur = &cur};
    sr_store_flush_t f = {.items = &w, .n_items = 1};
    sr_store_flush_result_t res;
    cr_assert_eq(sr_store_flush(s, &f, &res), 0, "%s", sr_store_errstr(s));
    item_val_t basev = v;
    srand(7);
    for (int step = 0; step < 50; step++) {
        item_val_t nv = basev;
        for (int j = 0; j < DIM; j++)
            nv.vec[j] = step == 0 ? 1e-30f : nv.vec[j] * (float)(rand() % 1000) / 333.0f + 1e-7f;
        nv.bias = basev.bias / 3.0f;
        sr_store_item_t bi = item_of(&basev), ci = item_of(&nv);
        w = (sr_store_item_write_t){.cur = &ci, .base = &bi};
        cr_assert_eq(sr_store_flush(s, &f, &res), 0, "%s", sr_store_errstr(s));
        cr_assert_eq(res.n_delta_merged, 0);
        cr_assert_eq(memcmp(res.merged[0].vec, nv.vec, sizeof(nv.vec)), 0, "step %d", step);
        basev = nv;
    }
    const char *iids[] = {"x"};
    sr_store_item_t io[1];
    cr_assert_eq(sr_store_get_items(s, iids, NULL, 1, io), 1);
    cr_assert_eq(memcmp(io[0].vec, basev.vec, sizeof(basev.vec)), 0, "stored value drifted");
    cr_assert_eq(io[0].bias, basev.bias);
    sr_store_destroy(s);
}

static void flush_items(sr_store_t *s, int first, int n, double pop)
{
    item_val_t *v = calloc((size_t)n, sizeof(*v));
    sr_store_item_t *c = calloc((size_t)n, sizeof(*c));
    sr_store_item_write_t *w = calloc((size_t)n, sizeof(*w));
    for (int i = 0; i < n; i++) {
        snprintf(v[i].id, sizeof(v[i].id), "item%d", first + i);
        for (int j = 0; j < DIM; j++) v[i].vec[j] = (float)(first + i);
        v[i].bias = (float)(first + i);
        c[i] = item_of(&v[i]);
        w[i] = (sr_store_item_write_t){.cur = &c[i], .write_pop = pop > 0,
                                       .pop_cur = pop > 0 ? pop + first + i : 0};
    }
    sr_store_flush_t f = {.items = w, .n_items = (size_t)n};
    sr_store_flush_result_t res;
    cr_assert_eq(sr_store_flush(s, &f, &res), 0, "%s", sr_store_errstr(s));
    free(v);
    free(c);
    free(w);
}

Test(store, update_stream_is_read_after_a_cursor)
{
    sr_store_t *s = open_store("sr");
    flush_items(s, 0, 3, 0);
    sr_store_cursor_t cur = {0};
    const sr_store_update_t *u;
    int gap;
    long n = sr_store_read_updates(s, &cur, 100, &u, &gap);
    cr_assert_eq(n, 3, "%s", sr_store_errstr(s));
    cr_assert_eq(gap, 0);
    cr_assert_eq(u[0].seq, 1);
    cr_assert_eq(u[2].seq, 3);
    cr_assert_str_eq(u[1].item.id, "item1");
    cr_assert_eq(u[1].item.vec[0], 1.0f);
    cr_assert_gt(u[1].item.num, 0);
    cr_assert_eq(sr_store_read_updates(s, &cur, 100, &u, &gap), 0);
    flush_items(s, 10, 2, 0);
    flush_items(s, 20, 1, 0);
    /* item10 and item11 share one stream entry: the cursor stops inside. */
    n = sr_store_read_updates(s, &cur, 1, &u, &gap);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(u[0].item.id, "item10");
    cr_assert_eq(u[0].seq, 4);
    n = sr_store_read_updates(s, &cur, 10, &u, &gap);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(u[0].item.id, "item11");
    cr_assert_eq(u[0].seq, 5);
    cr_assert_str_eq(u[1].item.id, "item20");
    cr_assert_eq(u[1].seq, 6);
    cr_assert_eq(gap, 0);
    cr_assert_eq(sr_store_read_updates(s, &cur, 10, &u, &gap), 0);
    sr_store_destroy(s);
}

Test(store, update_stream_is_capped_and_a_lagging_reader_sees_the_gap)
{
    sr_store_opts_t o;
    sr_store_opts_init(&o);
    o.port = port;
    o.stream_maxlen = 100;
    char err[256];
    sr_store_t *s = sr_store_new(&o, err, sizeof(err));
    cr_assert_not_null(s, "%s", err);
    /* One item per flush: one entry each; the cap is 100/64 -> 2 entries,
     * which Redis applies at its node granularity (100 entries). */
    for (int k = 0; k < 400; k++) flush_items(s, k, 1, 0);
    long long len = xlen();
    cr_assert_lt(len, 400, "stream not capped: %lld entries", len);
    cr_assert_geq(len, 2);
    sr_store_cursor_t cur = {0};
    const sr_store_update_t *u;
    int gap = 0;
    long n = sr_store_read_updates(s, &cur, 64 * 1000, &u, &gap);
    cr_assert_eq(n, len);
    cr_assert_eq(gap, 1, "trimmed entries were not reported");
    cr_assert_eq(u[n - 1].seq, 400);
    cr_assert_eq(cur.seq, 400);
    /* A big flush packs 64 updates per entry (64, 64, 2).  Entries carry
     * no blobs, so several share a stream node and `MAXLEN ~` keeps whole
     * nodes: at least the last 2 entries (66 updates) are still there. */
    flush_items(s, 1000, 130, 0);
    n = sr_store_read_updates(s, &cur, 64 * 1000, &u, &gap);
    cr_assert_geq(n, 66, "read %ld: %s", n, sr_store_errstr(s));
    cr_assert_leq(n, 130);
    cr_assert_eq(gap, n < 130);
    cr_assert_eq(u[n - 1].seq, 530);
    cr_assert_str_eq(u[n - 1].item.id, "item1129");
    for (long k = 1; k < n; k++) {
        int same_entry = (u[k].seq - 401) / 64 == (u[k - 1].seq - 401) / 64;
        cr_assert_eq(strcmp(u[k].stream_id, u[k - 1].stream_id) == 0, same_entry,
                     "updates %llu and %llu", (unsigned long long)u[k - 1].seq,
                     (unsigned long long)u[k].seq);
    }
    sr_store_destroy(s);
}

Test(store, load_items_gives_contiguous_rows_and_a_cursor_to_follow)
{
    sr_store_t *s = open_store("sr");
    flush_items(s, 0, 2500, 1.0);
    sr_store_items_t *it;
    cr_assert_eq(sr_store_load_items(s, &it), 0, "%s", sr_store_errstr(s));
    cr_assert_eq(it->n, 2500);
    cr_assert_eq(it->dim, DIM);
    int seen[2500] = {0};
    for (uint32_t i = 0; i < it->n; i++) {
        int k = atoi(it->id_buf + it->id_off[i] + 4);
        cr_assert(k >= 0 && k < 2500);
        seen[k]++;
        cr_assert_eq(it->vec[(size_t)i * DIM + DIM - 1], (float)k);
        cr_assert_eq(it->bias[i], (float)k);
        cr_assert_eq(it->pop[i], 1.0 + k);
        cr_assert_gt(it->num[i], 0);
        cr_assert_eq(it->id_len[i], strlen(it->id_buf + it->id_off[i]));
    }
    for (int k = 0; k < 2500; k++) cr_assert_eq(seen[k], 1, "item%d seen %d times", k, seen[k]);
    sr_store_cursor_t cur = it->cursor;
    sr_store_items_free(it);
    const sr_store_update_t *u;
    int gap;
    cr_assert_eq(sr_store_read_updates(s, &cur, 100, &u, &gap), 0);
    flush_items(s, 7, 1, 0);
    cr_assert_eq(sr_store_read_updates(s, &cur, 100, &u, &gap), 1);
    cr_assert_eq(gap, 0);
    cr_assert_str_eq(u[0].item.id, "item7");
    sr_store_destroy(s);
}

Test(store, popularity_top_k_is_best_first)
{
    sr_store_t *s = open_store("sr");
    flush_items(s, 0, 20, 100.0);
    const sr_store_pop_t *p;
    long n = sr_store_pop_top(s, 5, &p);
    cr_assert_eq(n, 5, "%s", sr_store_errstr(s));
    for (int i = 0; i < 5; i++) {
        char want[16];
        snprintf(want, sizeof(want), "item%d", 19 - i);
        cr_assert_str_eq(p[i].id, want);
        cr_assert_eq(p[i].score, 100.0 + 19 - i);
    }
    cr_assert_eq(sr_store_pop_top(s, 1000, &p), 20);
    sr_store_destroy(s);
}

Test(store, another_schema_version_is_refused)
{
    free(cli("HSET", "sr:meta", "schema", "2"));
    sr_store_opts_t o;
    sr_store_opts_init(&o);
    o.port = port;
    char err[512] = "";
    cr_assert_null(sr_store_new(&o, err, sizeof(err)));
    cr_assert(strstr(err, "schema 2") && strstr(err, "sr:meta"), "errstr: %s", err);
    /* Another prefix is another namespace. */
    sr_store_t *s = open_store("other");
    char *m = cli("HGET", "other:meta", "schema", NULL);
    cr_assert_eq(m[0], '1');
    free(m);
    sr_store_destroy(s);
}

Test(store, bad_prefix_is_refused)
{
    sr_store_opts_t o;
    sr_store_opts_init(&o);
    o.port = port;
    o.prefix = "a{b}";
    char err[256] = "";
    cr_assert_null(sr_store_new(&o, err, sizeof(err)));
    cr_assert(strstr(err, "prefix"), "%s", err);
}

/* redis-server on a given port (the same one after a restart). */
static void start_redis_on(int p)
{
    char ports[16];
    snprintf(ports, sizeof(ports), "%d", p);
    for (int attempt = 0; attempt < 50; attempt++) {
        char *argv[] = {"redis-server", "--port", ports, "--bind", "127.0.0.1", "--save", "",
                        "--appendonly", "no", "--loglevel", "warning", NULL};
        cr_assert_eq(sr_test_spawn(&redis, argv, 1), 0);
        for (int i = 0; i < 100; i++) {
            char *out = NULL;
            char *ping[] = {"redis-cli", "-p", ports, "ping", NULL};
            int rc = sr_test_run(ping, &out, 2000);
            int ok = rc == 0 && out && !strncmp(out, "PONG", 4);
            free(out);
            if (ok) return;
            usleep(20000);
        }
        sr_test_stop(&redis, SIGKILL, 100); /* port still in TIME_WAIT/bound: retry */
        usleep(100000);
    }
    cr_assert_fail("could not restart redis-server on port %d", p);
}

Test(store, reconnects_after_redis_restarts_on_the_same_port)
{
    sr_store_t *s = open_store("sr");
    small_flush_t a;
    small_flush_init(&a, "u1", "i1", SR_STORE_OFFSET_NONE, 5);
    sr_store_flush_result_t res;
    cr_assert_eq(sr_store_flush(s, &a.f, &res), 0, "%s", sr_store_errstr(s));
    sr_test_stop(&redis, SIGKILL, 5000);
    int32_t p0 = 0;
    int64_t off;
    int rc = sr_store_get_offsets(s, "g", "events", &p0, 1, &off);
    cr_assert_lt(rc, 0);
    cr_assert(sr_store_err_retryable(rc), "rc %d (%s) not retryable", rc, sr_strerror(rc));
    rc = sr_store_get_offsets(s, "g", "events", &p0, 1, &off);
    cr_assert_eq(rc, SR_ERR_UNAVAIL, "rc %d: %s", rc, sr_store_errstr(s));
    start_redis_on(port);
    /* A fresh, empty server: the store reconnects, rewrites the schema and
     * the flush goes through (fencing sees no stored offset). */
    cr_assert_eq(sr_store_flush(s, &a.f, &res), 0, "%s", sr_store_errstr(s));
    cr_assert_eq(sr_store_get_offsets(s, "g", "events", &p0, 1, &off), 0);
    cr_assert_eq(off, 5);
    char *m = cli("HGET", "sr:meta", "schema", NULL);
    cr_assert_eq(m[0], '1');
    free(m);
    sr_store_destroy(s);
}

Test(store, user_memory_at_k32_with_20_recent_items_is_at_most_400_bytes)
{
    sr_store_t *s = open_store("sr");
    enum { NU = 200, K = 32, NR = 20 };
    static float vecs[NU][K], accs[NU][1];
    static sr_store_recent_t rec[NU][NR];
    static char uids[NU][24], iids[NU][NR][24];
    static sr_store_user_t users[NU];
    srand(3);
    for (int i = 0; i < NU; i++) {
        snprintf(uids[i], sizeof(uids[i]), "user%07d", 1000000 + i * 37);
        for (int j = 0; j < K; j++) vecs[i][j] = (float)rand() / (float)RAND_MAX - 0.5f;
        accs[i][0] = (float)rand();
        int64_t t = 1763900000000LL + i * 1000;
        for (int r = 0; r < NR; r++) {
            snprintf(iids[i][r], sizeof(iids[i][r]), "item%07d", rand() % 2000000);
            t += 1000 + rand() % 300000; /* seconds to minutes apart */
            rec[i][r] = (sr_store_recent_t){.item_id = iids[i][r],
                                            .item_id_len = strlen(iids[i][r]), .ts_ms = t,
                                            .type = (uint8_t)(rand() % 4)};
        }
        users[i] = (sr_store_user_t){.id = uids[i], .id_len = strlen(uids[i]), .dim = K,
                                     .n_acc = 1, .vec = vecs[i], .acc = accs[i],
                                     .events = 1000 + (uint64_t)i, .last_ts_ms = t,
                                     .n_recent = NR, .recent = rec[i]};
    }
    sr_store_flush_t f = {.users = users, .n_users = NU};
    sr_store_flush_result_t res;
    cr_assert_eq(sr_store_flush(s, &f, &res), 0, "%s", sr_store_errstr(s));
    long max = 0, sum = 0;
    for (int i = 0; i < NU; i++) {
        long m = sr_store_user_memory(s, uids[i], strlen(uids[i]));
        cr_assert_gt(m, 0, "%s", sr_store_errstr(s));
        sum += m;
        if (m > max) max = m;
    }
    cr_log_info("MEMORY USAGE per user: mean %ld, max %ld bytes (blob %zu bytes)", sum / NU, max,
                sr_store_user_size(&(sr_store_user_t){.dim = K, .n_acc = 1, .n_recent = 0}));
    fprintf(stderr, "store memory: MEMORY USAGE per user mean %ld max %ld bytes\n", sum / NU, max);
    cr_assert_leq(max, 400, "a user takes %ld bytes in Redis", max);
    sr_store_destroy(s);
}

Test(store, url_selects_the_database_and_authenticates)
{
    char url[128], err[512] = "";
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d/3", port);
    sr_store_t *s = sr_store_new_url(url, "sr", 2000, err, sizeof(err));
    cr_assert_not_null(s, "%s", err);
    sr_store_destroy(s);
    char ports[16];
    snprintf(ports, sizeof(ports), "%d", port);
    char *argv[] = {"redis-cli", "-p", ports, "-n", "3", "HGET", "sr:meta", "schema", NULL};
    char *out = NULL;
    cr_assert_eq(sr_test_run(argv, &out, 10000), 0);
    cr_assert_eq(out[0], '1', "schema not written in db 3: '%s'", out);
    free(out);

    free(cli("CONFIG", "SET", "requirepass", "s3cr@t"));
    cr_assert_null(sr_store_new_url(url, "sr", 2000, err, sizeof(err)), "no password accepted");
    snprintf(url, sizeof(url), "redis://:wrong@127.0.0.1:%d", port);
    cr_assert_null(sr_store_new_url(url, "sr", 2000, err, sizeof(err)));
    snprintf(url, sizeof(url), "redis://:s3cr%%40t@127.0.0.1:%d", port);
    s = sr_store_new_url(url, "sr", 2000, err, sizeof(err));
    cr_assert_not_null(s, "%s", err);
    sr_store_destroy(s);
    char *argv2[] = {"redis-cli", "-p", ports, "-a", "s3cr@t", "--no-auth-warning", "CONFIG",
                     "SET", "requirepass", "", NULL};
    cr_assert_eq(sr_test_run(argv2, NULL, 10000), 0);
}

Test(store, bad_url_and_unreachable_server_are_clear_errors)
{
    char err[512] = "";
    cr_assert_null(sr_store_new_url("http://x", NULL, 0, err, sizeof(err)));
    cr_assert(strstr(err, "redis.url"), "%s", err);
    int free_port = sr_test_free_port();
    char url[64];
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d", free_port);
    err[0] = '\0';
    cr_assert_null(sr_store_new_url(url, NULL, 500, err, sizeof(err)));
    cr_assert(strstr(err, "connect"), "%s", err);
}

Test(store, an_item_twice_in_one_flush_or_a_dim_change_is_refused_whole)
{
    sr_store_t *s = open_store("sr");
    item_val_t v = {.id = "dup"};
    sr_store_item_t c = item_of(&v);
    sr_store_item_write_t w[2] = {{.cur = &c}, {.cur = &c}};
    small_flush_t a;
    small_flush_init(&a, "u1", "i1", SR_STORE_OFFSET_NONE, 5);
    a.f.items = w;
    a.f.n_items = 2;
    sr_store_flush_result_t res;
    cr_assert_eq(sr_store_flush(s, &a.f, &res), SR_ERR_INVAL, "%s", sr_store_errstr(s));
    int32_t p0 = 0;
    int64_t off;
    cr_assert_eq(sr_store_get_offsets(s, "g", "events", &p0, 1, &off), 0);
    cr_assert_eq(off, SR_STORE_OFFSET_NONE, "refused flush stored its offset");
    /* Store it at dim 8, then try dim 4 with a stale base: refused. */
    a.f.n_items = 1;
    cr_assert_eq(sr_store_flush(s, &a.f, &res), 0, "%s", sr_store_errstr(s));
    float v4[4] = {1, 2, 3, 4};
    sr_store_item_t c4 = {.id = "dup", .id_len = 3, .dim = 4, .vec = v4};
    sr_store_item_t b4 = c4;
    b4.bias = 9;
    sr_store_item_write_t w4 = {.cur = &c4, .base = &b4};
    sr_store_flush_t f4 = {.items = &w4, .n_items = 1};
    cr_assert_eq(sr_store_flush(s, &f4, &res), SR_ERR_VERSION, "%s", sr_store_errstr(s));
    const char *ids[] = {"dup"};
    sr_store_item_t io[1];
    cr_assert_eq(sr_store_get_items(s, ids, NULL, 1, io), 1);
    cr_assert_eq(io[0].dim, DIM);
    sr_store_destroy(s);
}

Test(store, a_command_timeout_is_reported_and_the_next_call_recovers)
{
    sr_store_opts_t o;
    sr_store_opts_init(&o);
    o.port = port;
    o.timeout_ms = 300;
    char err[256];
    sr_store_t *s = sr_store_new(&o, err, sizeof(err));
    cr_assert_not_null(s, "%s", err);
    free(cli("CLIENT", "PAUSE", "1500", NULL));
    int32_t p0 = 0;
    int64_t off;
    int rc = sr_store_get_offsets(s, "g", "events", &p0, 1, &off);
    cr_assert_eq(rc, SR_ERR_TIMEOUT, "rc %d: %s", rc, sr_store_errstr(s));
    cr_assert(sr_store_err_retryable(rc));
    usleep(1600 * 1000);
    rc = sr_store_get_offsets(s, "g", "events", &p0, 1, &off);
    cr_assert_eq(rc, 0, "rc %d: %s", rc, sr_store_errstr(s));
    sr_store_destroy(s);
}

/* A three-node Redis Cluster in a temporary directory. */
static sr_test_proc_t cl_nodes[3];
static int cl_ports[3];
static char cl_dir[64];

static void cluster_stop(void)
{
    for (int i = 0; i < 3; i++)
        if (cl_nodes[i].pid > 0) sr_test_stop(&cl_nodes[i], SIGTERM, 5000);
    if (cl_dir[0]) {
        char *rm[] = {"rm", "-rf", cl_dir, NULL};
        sr_test_run(rm, NULL, 10000);
    }
}

static int cluster_ok(int p)
{
    char ports[16];
    snprintf(ports, sizeof(ports), "%d", p);
    char *argv[] = {"redis-cli", "-p", ports, "CLUSTER", "INFO", NULL};
    char *out = NULL;
    int ok = sr_test_run(argv, &out, 5000) == 0 && out && strstr(out, "cluster_state:ok");
    free(out);
    return ok;
}

/* A port p whose cluster bus port p + 10000 is free too. */
static int bindable(int p)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)p)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int ok = fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    if (fd >= 0) close(fd);
    return ok;
}

static int cluster_port(void)
{
    for (int t = 0; t < 1000; t++) {
        int p = sr_test_free_port();
        if (p > 0 && p + 10000 <= 65535 && bindable(p + 10000)) return p;
    }
    return -1;
}

static void cluster_start(void)
{
    snprintf(cl_dir, sizeof(cl_dir), "/tmp/sr-store-cluster-XXXXXX");
    cr_assert_not_null(mkdtemp(cl_dir));
    for (int i = 0; i < 3; i++) {
        cl_ports[i] = cluster_port();
        cr_assert_gt(cl_ports[i], 0, "no free port pair for a cluster node");
        char ports[16], conf[128];
        snprintf(ports, sizeof(ports), "%d", cl_ports[i]);
        snprintf(conf, sizeof(conf), "nodes-%d.conf", cl_ports[i]);
        char *argv[] = {"redis-server", "--port", ports, "--bind", "127.0.0.1", "--save", "",
                        "--appendonly", "no", "--loglevel", "warning", "--dir", cl_dir,
                        "--cluster-enabled", "yes", "--cluster-config-file", conf, NULL};
        cr_assert_eq(sr_test_spawn(&cl_nodes[i], argv, 1), 0);
    }
    for (int i = 0; i < 3; i++) {
        char ports[16];
        snprintf(ports, sizeof(ports), "%d", cl_ports[i]);
        int up = 0;
        for (int t = 0; t < 200 && !up; t++) {
            char *out = NULL;
            char *ping[] = {"redis-cli", "-p", ports, "ping", NULL};
            up = sr_test_run(ping, &out, 2000) == 0 && out && !strncmp(out, "PONG", 4);
            free(out);
            if (!up) usleep(20000);
        }
        cr_assert(up, "cluster node %d did not start", i);
    }
    char a[3][32];
    for (int i = 0; i < 3; i++) snprintf(a[i], sizeof(a[i]), "127.0.0.1:%d", cl_ports[i]);
    char *create[] = {"redis-cli", "--cluster", "create", a[0], a[1], a[2],
                      "--cluster-replicas", "0", "--cluster-yes", NULL};
    char *cout = NULL;
    int crc = sr_test_run(create, &cout, 60000);
    cr_assert_eq(crc, 0, "redis-cli --cluster create failed (%d): %s", crc, cout ? cout : "");
    free(cout);
    int ok = 0;
    for (int t = 0; t < 300 && !ok; t++) {
        ok = cluster_ok(cl_ports[0]) && cluster_ok(cl_ports[1]) && cluster_ok(cl_ports[2]);
        if (!ok) usleep(50000);
    }
    cr_assert(ok, "cluster did not reach state ok");
}

/* Setup runs in the body so that a failure still reaches .fini, which
 * stops every node started so far. */
Test(store_cluster, works_from_any_seed_node_of_a_cluster, .fini = cluster_stop, .timeout = 120)
{
    cluster_start();
    for (int seed = 0; seed < 3; seed++) {
        sr_store_opts_t o;
        sr_store_opts_init(&o);
        o.port = cl_ports[seed];
        char err[512];
        sr_store_t *s = sr_store_new(&o, err, sizeof(err));
        cr_assert_not_null(s, "seed %d: %s", seed, err);
        small_flush_t a;
        int64_t prev = seed == 0 ? SR_STORE_OFFSET_NONE : seed * 10;
        small_flush_init(&a, "u1", "i1", prev, (seed + 1) * 10);
        sr_store_flush_result_t res;
        cr_assert_eq(sr_store_flush(s, &a.f, &res), 0, "seed %d: %s", seed, sr_store_errstr(s));
        const char *ids[] = {"u1"};
        sr_store_user_t out[1];
        cr_assert_eq(sr_store_get_users(s, ids, NULL, 1, out), 1, "%s", sr_store_errstr(s));
        cr_assert_eq(out[0].events, (uint64_t)(seed + 1) * 10);
        sr_store_destroy(s);
    }
    char ports[16];
    snprintf(ports, sizeof(ports), "%d", cl_ports[1]);
    char *argv[] = {"redis-cli", "-c", "-p", ports, "HGET", "sr:meta", "schema", NULL};
    char *out = NULL;
    cr_assert_eq(sr_test_run(argv, &out, 10000), 0);
    cr_assert_eq(out[0], '1', "sr:meta schema '%s'", out);
    free(out);
}

/* Redis before 6.2 has no ZMSCORE: the flush falls back to one ZSCORE per
 * item.  Simulated by disabling the command on a private server. */
static sr_test_proc_t old_redis;

static void old_redis_stop(void)
{
    if (old_redis.pid > 0) sr_test_stop(&old_redis, SIGTERM, 5000);
}

Test(store_compat, flush_without_zmscore_keeps_popularity_exact, .fini = old_redis_stop,
     .timeout = 60)
{
    int p = sr_test_free_port();
    char ports[16];
    snprintf(ports, sizeof(ports), "%d", p);
    char *argv[] = {"redis-server", "--port", ports, "--bind", "127.0.0.1", "--save", "",
                    "--appendonly", "no", "--loglevel", "warning", "--rename-command",
                    "ZMSCORE", "", NULL};
    cr_assert_eq(sr_test_spawn(&old_redis, argv, 1), 0);
    sr_store_opts_t o;
    sr_store_opts_init(&o);
    o.port = p;
    char err[256];
    sr_store_t *s = NULL;
    for (int t = 0; t < 200 && !s; t++) {
        s = sr_store_new(&o, err, sizeof(err));
        if (!s) usleep(20000);
    }
    cr_assert_not_null(s, "%s", err);
    item_val_t v = {.id = "a"};
    sr_store_item_t c = item_of(&v);
    sr_store_item_write_t w = {.cur = &c, .write_pop = 1, .pop_cur = 0.1};
    sr_store_flush_t f = {.items = &w, .n_items = 1};
    sr_store_flush_result_t res;
    cr_assert_eq(sr_store_flush(s, &f, &res), 0, "%s", sr_store_errstr(s));
    w.pop_base = 0.1;
    w.pop_cur = 0.1 + 1e-17 + 0.2; /* exact path: stored as sent */
    cr_assert_eq(sr_store_flush(s, &f, &res), 0, "%s", sr_store_errstr(s));
    cr_assert_eq(res.merged[0].pop, w.pop_cur);
    w.pop_base = 5.0; /* stale base: delta path */
    w.pop_cur = 6.0;
    cr_assert_eq(sr_store_flush(s, &f, &res), 0, "%s", sr_store_errstr(s));
    cr_assert_eq(res.merged[0].pop, (0.1 + 1e-17 + 0.2) + 1.0);
    sr_store_destroy(s);
}

Test(store, corrupt_values_in_redis_are_errors_or_skipped_never_crashes)
{
    sr_store_t *s = open_store("sr");
    flush_items(s, 0, 3, 0);
    /* Someone else wrote garbage into our keys. */
    free(cli("SET", "{sr}:u:mallory", "\x01U garbage", NULL));
    free(cli("SET", "{sr}:i:item1", "not an item blob", NULL));
    free(cli("XADD", "{sr}:updates", "*", "junk")); /* odd field count: refused by Redis */
    char *o = cli("XADD", "{sr}:updates", "*", "s");
    free(o);
    {
        char ports[16];
        snprintf(ports, sizeof(ports), "%d", port);
        char *argv[] = {"redis-cli", "-p", ports, "XADD", "{sr}:updates", "*", "s", "x", "n",
                        "9", "id", "bad", "v", "xx", "p", "", NULL};
        cr_assert_eq(sr_test_run(argv, NULL, 10000), 0);
        /* A well-formed entry whose item blob is garbage: skipped, but its
         * number is consumed (it is the 4th update). */
        char *argv2[] = {"redis-cli", "-p", ports, "XADD", "{sr}:updates", "*", "s", "4", "n",
                         "9", "id", "bad", "v", "xx", "p", "", NULL};
        cr_assert_eq(sr_test_run(argv2, NULL, 10000), 0);
        free(cli("INCR", "{sr}:updates:seq", NULL, NULL));
    }
    const char *ids[] = {"mallory"};
    sr_store_user_t u[1];
    long rc = sr_store_get_users(s, ids, NULL, 1, u);
    cr_assert_eq(rc, SR_ERR_CORRUPT, "rc %ld", rc);
    cr_assert(strstr(sr_store_errstr(s), "mallory"), "%s", sr_store_errstr(s));
    const char *iids[] = {"item1"};
    sr_store_item_t it[1];
    cr_assert_eq(sr_store_get_items(s, iids, NULL, 1, it), SR_ERR_CORRUPT);
    /* The connection is still usable after a decode error. */
    const char *good[] = {"item2"};
    cr_assert_eq(sr_store_get_items(s, good, NULL, 1, it), 1, "%s", sr_store_errstr(s));
    /* The item load skips the corrupt item, keeps the others. */
    sr_store_items_t *all;
    cr_assert_eq(sr_store_load_items(s, &all), 0, "%s", sr_store_errstr(s));
    cr_assert_eq(all->n, 2);
    sr_store_items_free(all);
    /* The follower skips malformed entries and moves past them, and an
     * update whose item key now holds garbage (item1). */
    sr_store_cursor_t cur = {0};
    const sr_store_update_t *up;
    int gap;
    long n = sr_store_read_updates(s, &cur, 6400, &up, &gap);
    cr_assert_eq(n, 2, "read %ld: %s", n, sr_store_errstr(s));
    cr_assert_str_eq(up[0].item.id, "item0");
    cr_assert_str_eq(up[1].item.id, "item2");
    cr_assert_eq(cur.seq, 4);
    flush_items(s, 10, 1, 0);
    n = sr_store_read_updates(s, &cur, 6400, &up, &gap);
    cr_assert_eq(n, 1);
    cr_assert_eq(gap, 0);
    cr_assert_str_eq(up[0].item.id, "item10");
    cr_assert_eq(up[0].seq, 5);
    sr_store_destroy(s);
}

Test(store, a_follower_reading_in_small_steps_sees_every_update_once)
{
    sr_store_t *s = open_store("sr");
    flush_items(s, 0, 150, 0); /* entries of 64, 64, 22 */
    flush_items(s, 500, 3, 0);
    sr_store_cursor_t cur = {0};
    const sr_store_update_t *u;
    int gap, seen[160] = {0}, got = 0;
    for (int call = 0; call < 100; call++) {
        long n = sr_store_read_updates(s, &cur, 7, &u, &gap);
        cr_assert_geq(n, 0, "%s", sr_store_errstr(s));
        cr_assert_eq(gap, 0);
        if (n == 0) break;
        cr_assert_leq(n, 7);
        for (long j = 0; j < n; j++) {
            cr_assert_eq(u[j].seq, (uint64_t)got + 1, "out of order");
            seen[got++]++;
        }
    }
    cr_assert_eq(got, 153);
    cr_assert_eq(cur.seq, 153);
    sr_store_destroy(s);
}

Test(store, unchanged_popularity_is_not_rewritten)
{
    sr_store_t *s = open_store("sr");
    item_val_t v = {.id = "n"};
    sr_store_item_t c = item_of(&v);
    sr_store_item_write_t w = {.cur = &c, .write_pop = 1, .pop_cur = 2.5};
    sr_store_flush_t f = {.items = &w, .n_items = 1};
    sr_store_flush_result_t res;
    cr_assert_eq(sr_store_flush(s, &f, &res), 0, "%s", sr_store_errstr(s));
    /* Another writer moved it to 7.5 meanwhile. */
    free(cli("ZADD", "{sr}:pop", "7.5", "n"));
    /* This writer only touched the vector (a sampled negative). */
    w.pop_base = w.pop_cur = 2.5;
    cr_assert_eq(sr_store_flush(s, &f, &res), 0, "%s", sr_store_errstr(s));
    cr_assert_eq(res.merged[0].pop, 7.5, "got %g", res.merged[0].pop);
    const char *ids[] = {"n"};
    sr_store_item_t io[1];
    cr_assert_eq(sr_store_get_items(s, ids, NULL, 1, io), 1);
    cr_assert_eq(io[0].pop, 7.5);
    /* An item never popular and unchanged stays out of the set. */
    item_val_t z = {.id = "zero"};
    sr_store_item_t cz = item_of(&z);
    sr_store_item_write_t wz = {.cur = &cz, .write_pop = 1};
    sr_store_flush_t fz = {.items = &wz, .n_items = 1};
    cr_assert_eq(sr_store_flush(s, &fz, &res), 0, "%s", sr_store_errstr(s));
    cr_assert_eq(res.merged[0].has_pop, 1);
    cr_assert_eq(res.merged[0].pop, 0.0);
    const sr_store_pop_t *p;
    cr_assert_eq(sr_store_pop_top(s, 10, &p), 1);
    sr_store_destroy(s);
}

Test(store, flush_survives_a_script_flush_on_the_server)
{
    sr_store_t *s = open_store("sr");
    small_flush_t a;
    small_flush_init(&a, "u1", "i1", SR_STORE_OFFSET_NONE, 5);
    sr_store_flush_result_t res;
    cr_assert_eq(sr_store_flush(s, &a.f, &res), 0, "%s", sr_store_errstr(s));
    /* Someone ran SCRIPT FLUSH (or we failed over to a fresh replica):
     * EVALSHA answers NOSCRIPT, the store sends the body instead. */
    free(cli("SCRIPT", "FLUSH", NULL, NULL));
    small_flush_init(&a, "u2", "brand-new-item", 5, 9); /* needs the number script too */
    cr_assert_eq(sr_store_flush(s, &a.f, &res), 0, "%s", sr_store_errstr(s));
    free(cli("SCRIPT", "FLUSH", NULL, NULL));
    small_flush_init(&a, "u3", "another-new-item", 9, 12);
    cr_assert_eq(sr_store_flush(s, &a.f, &res), 0, "%s", sr_store_errstr(s));
    int32_t p0 = 0;
    int64_t off;
    cr_assert_eq(sr_store_get_offsets(s, "g", "events", &p0, 1, &off), 0);
    cr_assert_eq(off, 12);
    const char *ids[] = {"u3"};
    sr_store_user_t u[1];
    cr_assert_eq(sr_store_get_users(s, ids, NULL, 1, u), 1);
    cr_assert_str_eq(u[0].recent[0].item_id, "another-new-item");
    sr_store_destroy(s);
}

Test(store, a_key_of_the_wrong_type_refuses_the_flush_before_any_write)
{
    sr_store_t *s = open_store("sr");
    free(cli("SET", "{sr}:updates", "not a stream", NULL));
    small_flush_t a;
    small_flush_init(&a, "u1", "i1", SR_STORE_OFFSET_NONE, 5);
    sr_store_flush_result_t res;
    cr_assert_eq(sr_store_flush(s, &a.f, &res), SR_ERR_CORRUPT, "%s", sr_store_errstr(s));
    cr_assert(strstr(sr_store_errstr(s), "{sr}:updates"), "%s", sr_store_errstr(s));
    const char *ids[] = {"u1"};
    sr_store_user_t u[1];
    cr_assert_eq(sr_store_get_users(s, ids, NULL, 1, u), 0, "the user was written");
    int32_t p0 = 0;
    int64_t off;
    cr_assert_eq(sr_store_get_offsets(s, "g", "events", &p0, 1, &off), 0);
    cr_assert_eq(off, SR_STORE_OFFSET_NONE);
    sr_store_destroy(s);
}

/* A fresh handle resolves the item numbers of recent items in one HMGET;
 * a number that appears twice (the same item twice in a user's recent
 * items, or in two users' lists) must not shift the answers of the numbers
 * after it. */
Test(store, recent_items_read_back_by_a_fresh_handle_keep_their_ids)
{
    sr_store_t *s = open_store("sr");
    float uv[DIM] = {0}, ua[1] = {1.0f};
    sr_store_recent_t rec[5] = {
        {.item_id = "apple", .item_id_len = 5, .ts_ms = 1000, .type = 1},
        {.item_id = "pear", .item_id_len = 4, .ts_ms = 2000, .type = 1},
        {.item_id = "apple", .item_id_len = 5, .ts_ms = 3000, .type = 1},
        {.item_id = "fig", .item_id_len = 3, .ts_ms = 4000, .type = 1},
        {.item_id = "kiwi", .item_id_len = 4, .ts_ms = 4000, .type = 1},
    };
    sr_store_user_t u[2] = {{.id = "alice", .id_len = 5, .dim = DIM, .n_acc = 1, .vec = uv,
                             .acc = ua, .events = 4, .last_ts_ms = 4000, .n_recent = 4,
                             .recent = rec},
                            {.id = "bob", .id_len = 3, .dim = DIM, .n_acc = 1, .vec = uv,
                             .acc = ua, .events = 1, .last_ts_ms = 4000, .n_recent = 1,
                             .recent = rec + 4}};
    sr_store_flush_t f = {.users = u, .n_users = 2};
    sr_store_flush_result_t res;
    cr_assert_eq(sr_store_flush(s, &f, &res), 0, "%s", sr_store_errstr(s));
    sr_store_destroy(s);

    s = open_store("sr"); /* nothing cached */
    const char *ids[] = {"alice", "bob"};
    sr_store_user_t out[2];
    cr_assert_eq(sr_store_get_users(s, ids, NULL, 2, out), 2, "%s", sr_store_errstr(s));
    const char *want[] = {"apple", "pear", "apple", "fig", "kiwi"};
    cr_assert_eq(out[0].n_recent + out[1].n_recent, 5);
    for (int i = 0; i < 2; i++)
        for (uint32_t k = 0; k < out[i].n_recent; k++) {
            const sr_store_recent_t *r = &out[i].recent[k];
            const char *w = want[k + (i ? 4 : 0)];
            cr_assert_not_null(r->item_id, "user %d recent %u: number %u has no id", i, k, r->num);
            cr_assert(r->item_id_len == strlen(w) && !memcmp(r->item_id, w, r->item_id_len),
                      "user %d recent %u: %.*s, want %s", i, k, (int)r->item_id_len, r->item_id, w);
        }
    sr_store_destroy(s);
}

/* ---- the two flush paths: transaction (default) and Lua script ---- */


static redisContext *raw_db(int db)
{
    redisContext *c = redisConnect("127.0.0.1", port);
    cr_assert(c && !c->err, "hiredis connect");
    redisReply *r = redisCommand(c, "SELECT %d", db);
    cr_assert(r && r->type == REDIS_REPLY_STATUS);
    freeReplyObject(r);
    return c;
}

static void raw(int db, const char *fmt, const char *a1, const char *a2, const char *a3)
{
    redisContext *c = raw_db(db);
    redisReply *r = redisCommand(c, fmt, a1, a2, a3);
    cr_assert_not_null(r);
    cr_assert_neq(r->type, REDIS_REPLY_ERROR, "%s: %s", fmt, r->str);
    freeReplyObject(r);
    redisFree(c);
}

typedef struct buf {
    char *p;
    size_t n, cap;
} buf_t;

static void put(buf_t *b, const void *p, size_t n)
{
    if (b->n + n + 8 > b->cap) {
        b->cap = (b->n + n + 8) * 2;
        b->p = realloc(b->p, b->cap);
        cr_assert_not_null(b->p);
    }
    uint64_t l = n;
    memcpy(b->p + b->n, &l, 8);
    if (n) memcpy(b->p + b->n + 8, p, n);
    b->n += 8 + n;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Everything database db holds, keys sorted, hash fields sorted, stream
 * entries without their (time-based) ids. */
static buf_t dump_db(int db)
{
    buf_t b = {0};
    redisContext *c = raw_db(db);
    redisReply *keys = redisCommand(c, "KEYS *");
    cr_assert(keys && keys->type == REDIS_REPLY_ARRAY);
    char **k = calloc(keys->elements + 1, sizeof(*k));
    for (size_t i = 0; i < keys->elements; i++) k[i] = keys->element[i]->str;
    qsort(k, keys->elements, sizeof(*k), cmp_str);
    for (size_t i = 0; i < keys->elements; i++) {
        put(&b, k[i], strlen(k[i]));
        redisReply *t = redisCommand(c, "TYPE %s", k[i]), *r = NULL;
        put(&b, t->str, strlen(t->str));
        if (!strcmp(t->str, "string")) {
            r = redisCommand(c, "GET %s", k[i]);
            put(&b, r->str, r->len);
        } else if (!strcmp(t->str, "hash")) {
            r = redisCommand(c, "HGETALL %s", k[i]);
            size_t n = r->elements / 2;
            char **f = calloc(n + 1, sizeof(*f));
            for (size_t j = 0; j < n; j++) f[j] = r->element[2 * j]->str;
            qsort(f, n, sizeof(*f), cmp_str);
            for (size_t j = 0; j < n; j++) {
                redisReply *v = redisCommand(c, "HGET %s %s", k[i], f[j]);
                put(&b, f[j], strlen(f[j]));
                put(&b, v->str, v->len);
                freeReplyObject(v);
            }
            free(f);
        } else if (!strcmp(t->str, "zset")) {
            r = redisCommand(c, "ZRANGE %s 0 -1 WITHSCORES", k[i]);
            for (size_t j = 0; j < r->elements; j++) put(&b, r->element[j]->str, r->element[j]->len);
        } else if (!strcmp(t->str, "stream")) {
            r = redisCommand(c, "XRANGE %s - +", k[i]);
            for (size_t j = 0; j < r->elements; j++) {
                const redisReply *fl = r->element[j]->element[1];
                for (size_t q = 0; q < fl->elements; q++)
                    put(&b, fl->element[q]->str, fl->element[q]->len);
            }
        } else {
            cr_assert_fail("unexpected type %s of %s", t->str, k[i]);
        }
        if (r) freeReplyObject(r);
        freeReplyObject(t);
    }
    free(k);
    freeReplyObject(keys);
    redisFree(c);
    return b;
}

/* An item with accumulators and extra bytes, so every merged field and the
 * bytes carried from cur are covered. */
typedef struct rich {
    char id[16];
    float vec[DIM], acc[DIM];
    float bias, bias_acc;
    char extra[12];
} rich_t;

static sr_store_item_t rich_item(rich_t *r, int with_extra)
{
    return (sr_store_item_t){.id = r->id, .id_len = strlen(r->id), .dim = DIM, .n_acc = DIM,
                             .vec = r->vec, .acc = r->acc, .bias = r->bias,
                             .bias_acc = r->bias_acc, .extra = with_extra ? r->extra : NULL,
                             .extra_len = with_extra ? sizeof(r->extra) : 0};
}

static void rich_init(rich_t *r, const char *id, float scale)
{
    memset(r, 0, sizeof(*r));
    snprintf(r->id, sizeof(r->id), "%s", id);
    for (int j = 0; j < DIM; j++) {
        r->vec[j] = scale * (float)(j + 1) / 7.0f;
        r->acc[j] = scale * 0.5f + (float)j;
    }
    r->bias = scale / 3.0f;
    r->bias_acc = scale;
    snprintf(r->extra, sizeof(r->extra), "x-%s", id);
}

/* Appends what a flush returned (rc, flags, every merged item) to out. */
static void record(buf_t *out, int rc, const sr_store_flush_result_t *res)
{
    put(out, &rc, sizeof(rc));
    if (rc != 0) return;
    put(out, &res->duplicate, sizeof(res->duplicate));
    put(out, &res->n_delta_merged, sizeof(res->n_delta_merged));
    put(out, &res->n_merged, sizeof(res->n_merged));
    for (size_t i = 0; i < res->n_merged; i++) {
        const sr_store_item_t *m = &res->merged[i];
        put(out, m->id, m->id_len);
        put(out, m->vec, m->dim * sizeof(float));
        put(out, m->acc, m->n_acc * sizeof(float));
        put(out, &m->bias, sizeof(m->bias));
        put(out, &m->bias_acc, sizeof(m->bias_acc));
        put(out, m->extra, m->extra_len);
        put(out, &m->num, sizeof(m->num));
        put(out, &m->has_pop, sizeof(m->has_pop));
        put(out, &m->pop, sizeof(m->pop));
    }
}

/* Two writers A and B (partitions 0 and 1 of group g) on database db:
 * new items, exact writes, delta merges onto another writer's change (with
 * and without a base), popularity written exactly, as a delta and
 * unchanged, a retried flush, users and the global state. */
static buf_t scenario(int db, sr_store_flush_mode_t mode)
{
    buf_t out = {0};
    sr_store_t *a = open_store_db(db, mode), *b = open_store_db(db, mode);
    sr_store_flush_result_t res;
    rich_t v1, v2, v3, v4, c1, c2, c3;
    rich_init(&v1, "i1", 1.0f);
    rich_init(&v2, "i2", -2.0f);
    rich_init(&v3, "i3", 3.0f);
    rich_init(&v4, "i4", 0.25f);
    float uv[DIM] = {1, 2, 3, 4, 5, 6, 7, 8}, ua[1] = {0.5f};
    sr_store_recent_t rec[2] = {{.item_id = "i1", .item_id_len = 2, .ts_ms = 100, .type = 1},
                                {.item_id = "i2", .item_id_len = 2, .ts_ms = 150, .type = 0}};
    sr_store_user_t u[2] = {{.id = "u1", .id_len = 2, .dim = DIM, .n_acc = 1, .vec = uv, .acc = ua,
                             .events = 2, .last_ts_ms = 150, .n_recent = 2, .recent = rec},
                            {.id = "u2", .id_len = 2, .dim = DIM, .vec = uv, .events = 1,
                             .last_ts_ms = 90}};
    /* F1, writer A: three new items. */
    sr_store_item_t i1 = rich_item(&v1, 1), i2 = rich_item(&v2, 1), i3 = rich_item(&v3, 0);
    sr_store_item_write_t w1[3] = {{.cur = &i1, .write_pop = 1, .pop_cur = 1.5},
                                   {.cur = &i2, .write_pop = 1, .pop_cur = 0.1 + 0.2},
                                   {.cur = &i3}};
    sr_store_offset_t oa = {.topic = "events", .partition = 0, .prev = SR_STORE_OFFSET_NONE,
                            .next = 10};
    sr_store_flush_t f1 = {.group = "g", .offsets = &oa, .n_offsets = 1, .users = u, .n_users = 2,
                           .items = w1, .n_items = 3, .global = "G1", .global_len = 2};
    int rc = sr_store_flush(a, &f1, &res);
    cr_assert_eq(res.by_script, mode == SR_STORE_FLUSH_SCRIPT);
    record(&out, rc, &res);

    /* F2, writer B: i1 from the value A wrote (exact), i2 from a stale
     * base (delta), i4 new from an initial value. */
    c1 = v1;
    c2 = v2;
    for (int j = 0; j < DIM; j++) {
        c1.vec[j] += 0.01f * (float)j;
        c2.vec[j] = c2.vec[j] * 1.5f + 1e-3f;
        c2.acc[j] += 0.125f;
    }
    c2.bias += 0.75f;
    rich_t stale2 = v2, init4 = v4;
    stale2.vec[0] = 42.0f;
    for (int j = 0; j < DIM; j++) v4.vec[j] += 1.0f;
    sr_store_item_t b1 = rich_item(&v1, 0), k1 = rich_item(&c1, 1), b2 = rich_item(&stale2, 0),
                    k2 = rich_item(&c2, 1), b4 = rich_item(&init4, 0), k4 = rich_item(&v4, 1);
    sr_store_item_write_t w2[3] = {
        {.cur = &k1, .base = &b1, .write_pop = 1, .pop_base = 1.5, .pop_cur = 2.75},
        {.cur = &k2, .base = &b2, .write_pop = 1, .pop_base = 0.05, .pop_cur = 0.3},
        {.cur = &k4, .base = &b4, .write_pop = 1, .pop_base = 0, .pop_cur = 0}};
    sr_store_offset_t ob = {.topic = "events", .partition = 1, .prev = SR_STORE_OFFSET_NONE,
                            .next = 7};
    sr_store_flush_t f2 = {.group = "g", .offsets = &ob, .n_offsets = 1, .items = w2, .n_items = 3};
    record(&out, sr_store_flush(b, &f2, &res), &res);

    /* F3, writer A: i1 from its own (now stale) value, with magnitudes
     * where delta arithmetic is not exact; i2 without a base onto a stored
     * value; i3 exact with a first popularity. */
    c1 = v1;
    c1.vec[0] = 1e-30f;
    c1.vec[1] = 1e30f;
    c1.bias = -7.0f;
    c3 = v3;
    c3.vec[2] = 1e-30f;
    sr_store_item_t k1b = rich_item(&c1, 1), k2b = rich_item(&v2, 1), b3 = rich_item(&v3, 0),
                    k3 = rich_item(&c3, 0);
    sr_store_item_write_t w3[3] = {
        {.cur = &k1b, .base = &b1, .write_pop = 1, .pop_base = 1.5, .pop_cur = 1.0 / 3.0},
        {.cur = &k2b, .write_pop = 1, .pop_base = 0.3, .pop_cur = 0.3},
        {.cur = &k3, .base = &b3, .write_pop = 1, .pop_base = 0, .pop_cur = 5}};
    oa.prev = 10;
    oa.next = 20;
    u[0].events = 3;
    sr_store_flush_t f3 = {.group = "g", .offsets = &oa, .n_offsets = 1, .users = u, .n_users = 1,
                           .items = w3, .n_items = 3, .global = "G3", .global_len = 2};
    record(&out, sr_store_flush(a, &f3, &res), &res);
    /* F3 again (its reply "lost"): a duplicate. */
    record(&out, sr_store_flush(a, &f3, &res), &res);
    cr_assert_eq(res.duplicate, 1);
    /* F4, writer B: a stale offset is fenced. */
    record(&out, sr_store_flush(b, &f2, &res), &res);

    /* F5, F6, writer A alone: F5 adds to what is stored (no bases); F6
     * starts i1 from F5's value although Redis holds more (a delta merge
     * onto what A's own transaction left), i2 exact with an unchanged
     * popularity, i3 from what Redis holds.  The transaction takes F6's
     * items from what F5 wrote instead of reading them. */
    rich_t d1 = v1, d3 = v3;
    for (int j = 0; j < DIM; j++) d1.vec[j] = 0.001f * (float)j, d3.vec[j] = -0.5f;
    sr_store_item_t k1c = rich_item(&d1, 1), k2c = rich_item(&v2, 1), k3c = rich_item(&d3, 0);
    sr_store_item_write_t w5[3] = {{.cur = &k1c, .write_pop = 1, .pop_base = 0, .pop_cur = 7},
                                   {.cur = &k2c, .write_pop = 1, .pop_base = 0.3, .pop_cur = 0.7},
                                   {.cur = &k3c}};
    oa.prev = 20;
    oa.next = 30;
    sr_store_flush_t f5 = {.group = "g", .offsets = &oa, .n_offsets = 1, .items = w5, .n_items = 3};
    rc = sr_store_flush(a, &f5, &res);
    record(&out, rc, &res);
    cr_assert_eq(res.n_items_read, 3);
    rich_t e2, e3; /* what Redis holds for i2 and i3 now */
    cr_assert_eq(rc, 0);
    cr_assert_eq(res.merged[1].n_acc, DIM);
    e2 = v2;
    e3 = v3;
    memcpy(e2.vec, res.merged[1].vec, sizeof(e2.vec));
    memcpy(e2.acc, res.merged[1].acc, sizeof(e2.acc));
    e2.bias = res.merged[1].bias;
    e2.bias_acc = res.merged[1].bias_acc;
    memcpy(e3.vec, res.merged[2].vec, sizeof(e3.vec));
    memcpy(e3.acc, res.merged[2].acc, sizeof(e3.acc));
    e3.bias = res.merged[2].bias;
    e3.bias_acc = res.merged[2].bias_acc;
    rich_t n1 = d1, n2 = e2, n3 = e3;
    n1.vec[3] += 0.25f;
    n2.vec[4] -= 1.0f;
    n3.bias += 1e-3f;
    sr_store_item_t b1c = rich_item(&d1, 0), m1 = rich_item(&n1, 1), b2c = rich_item(&e2, 0),
                    m2 = rich_item(&n2, 1), b3c = rich_item(&e3, 0), m3 = rich_item(&n3, 0);
    sr_store_item_write_t w6[3] = {
        {.cur = &m1, .base = &b1c, .write_pop = 1, .pop_base = 7, .pop_cur = 8},
        {.cur = &m2, .base = &b2c, .write_pop = 1, .pop_base = 0.7, .pop_cur = 0.7},
        {.cur = &m3, .base = &b3c, .write_pop = 1, .pop_base = 0, .pop_cur = 0.125}};
    oa.prev = 30;
    oa.next = 40;
    sr_store_flush_t f6 = {.group = "g", .offsets = &oa, .n_offsets = 1, .items = w6, .n_items = 3};
    rc = sr_store_flush(a, &f6, &res);
    record(&out, rc, &res);
    cr_assert_eq(res.n_delta_merged, 1, "i1 only");
    if (mode == SR_STORE_FLUSH_TRANSACTION)
        cr_assert_eq(res.n_items_read, 0, "F5 left every item of F6 known");
    sr_store_destroy(a);
    sr_store_destroy(b);
    return out;
}

Test(store, transaction_and_script_give_the_same_results_and_redis_state)
{
    buf_t rt = scenario(1, SR_STORE_FLUSH_TRANSACTION), rs = scenario(2, SR_STORE_FLUSH_SCRIPT);
    cr_assert_eq(rt.n, rs.n, "flush results differ in length");
    cr_assert_eq(memcmp(rt.p, rs.p, rt.n), 0, "flush results differ");
    buf_t dt = dump_db(1), ds = dump_db(2);
    cr_assert_gt(dt.n, 1000);
    cr_assert_eq(dt.n, ds.n, "Redis states differ in length: %zu vs %zu", dt.n, ds.n);
    cr_assert_eq(memcmp(dt.p, ds.p, dt.n), 0, "Redis states differ");
    free(rt.p);
    free(rs.p);
    free(dt.p);
    free(ds.p);
}

/* Writer B's flush of item `id` with value v from base, run by the hook of
 * writer A between A's reads and A's MULTI. */
typedef struct racer {
    sr_store_t *s;
    rich_t v, base;
    int calls, max_calls;
} racer_t;

static int race(void *arg, int stage)
{
    racer_t *r = arg;
    if (stage != 0 || r->calls++ >= r->max_calls) return 0;
    r->v.vec[0] += 1.0f; /* a change each time */
    sr_store_item_t c = rich_item(&r->v, 1), b = rich_item(&r->base, 0);
    sr_store_item_write_t w = {.cur = &c, .base = &b, .write_pop = 1, .pop_base = 1.0,
                               .pop_cur = 1.0 + r->calls};
    sr_store_flush_t f = {.items = &w, .n_items = 1};
    sr_store_flush_result_t res;
    cr_assert_eq(sr_store_flush(r->s, &f, &res), 0, "racer: %s", sr_store_errstr(r->s));
    r->base = r->v; /* what Redis holds now */
    return 0;
}

/* A's first attempt reads item x (= v0, its base: an exact write) and
 * would store its own value over B's change; EXEC must refuse it and the
 * retry must merge onto B's value. */
Test(store, a_transaction_aborted_by_another_writer_retries_and_merges)
{
    sr_store_t *a = open_store("sr");
    racer_t r = {.s = open_store("sr"), .max_calls = 1};
    rich_t v0, va;
    rich_init(&v0, "x", 1.0f);
    sr_store_item_t c0 = rich_item(&v0, 1);
    sr_store_item_write_t w0 = {.cur = &c0, .write_pop = 1, .pop_cur = 1.0};
    sr_store_flush_t f0 = {.items = &w0, .n_items = 1};
    sr_store_flush_result_t res;
    cr_assert_eq(sr_store_flush(a, &f0, &res), 0, "%s", sr_store_errstr(a));
    r.v = r.base = v0;
    va = v0;
    for (int j = 0; j < DIM; j++) va.vec[j] += 0.5f;
    sr_store_item_t ca = rich_item(&va, 1), ba = rich_item(&v0, 0);
    sr_store_item_write_t wa = {.cur = &ca, .base = &ba, .write_pop = 1, .pop_base = 1.0,
                                .pop_cur = 4.0};
    sr_store_offset_t off = {.topic = "events", .partition = 0, .prev = SR_STORE_OFFSET_NONE,
                             .next = 3};
    sr_store_flush_t fa = {.group = "g", .offsets = &off, .n_offsets = 1, .items = &wa,
                           .n_items = 1};
    sr_store_set_flush_hook(a, race, &r);
    cr_assert_eq(sr_store_flush(a, &fa, &res), 0, "%s", sr_store_errstr(a));
    cr_assert_eq(r.calls, 2, "the hook runs once per attempt");
    cr_assert_eq(res.tx_aborts, 1);
    cr_assert_eq(res.by_script, 0);
    cr_assert_eq(res.n_delta_merged, 1, "the retry must see B's write");
    for (int j = 0; j < DIM; j++) {
        float want = (float)((double)r.v.vec[j] + ((double)va.vec[j] - (double)v0.vec[j]));
        cr_assert_eq(res.merged[0].vec[j], want, "dim %d: %g, want %g", j, res.merged[0].vec[j],
                     want);
    }
    cr_assert_eq(res.merged[0].pop, 2.0 + 3.0, "B's popularity 2 plus A's change 3");
    float merged[DIM]; /* res is valid until the next call on a */
    memcpy(merged, res.merged[0].vec, sizeof(merged));
    const char *ids[] = {"x"};
    sr_store_item_t io[1];
    cr_assert_eq(sr_store_get_items(a, ids, NULL, 1, io), 1);
    cr_assert_eq(memcmp(io[0].vec, merged, sizeof(merged)), 0);
    cr_assert_eq(io[0].pop, 5.0);
    char *seq = cli("GET", "{sr}:updates:seq", NULL, NULL);
    cr_assert_eq(atoi(seq), 3, "updates: A's first, B's, A's second (%s)", seq);
    free(seq);
    sr_store_destroy(a);
    sr_store_destroy(r.s);
}

/* Under constant interference the flush still gets through: by the script
 * after SR_STORE_TX_ATTEMPTS aborted transactions. */
Test(store, transactions_aborted_every_time_fall_back_to_the_script)
{
    sr_store_t *a = open_store("sr");
    racer_t r = {.s = open_store("sr"), .max_calls = 1000};
    rich_init(&r.v, "y", 2.0f);
    r.base = r.v;
    small_flush_t x;
    small_flush_init(&x, "u1", "i1", SR_STORE_OFFSET_NONE, 5);
    sr_store_set_flush_hook(a, race, &r);
    sr_store_flush_result_t res;
    cr_assert_eq(sr_store_flush(a, &x.f, &res), 0, "%s", sr_store_errstr(a));
    cr_assert_eq(res.tx_aborts, SR_STORE_TX_ATTEMPTS);
    cr_assert_eq(res.by_script, 1);
    cr_assert_eq(r.calls, SR_STORE_TX_ATTEMPTS, "the script path has no hook point");
    const char *ids[] = {"u1"};
    sr_store_user_t out[1];
    cr_assert_eq(sr_store_get_users(a, ids, NULL, 1, out), 1);
    int32_t p0 = 0;
    int64_t o;
    cr_assert_eq(sr_store_get_offsets(a, "g", "events", &p0, 1, &o), 0);
    cr_assert_eq(o, 5);
    sr_store_destroy(a);
    sr_store_destroy(r.s);
}

/* Runs the one-user flush (prev -> next) on database db in the given mode
 * and returns its code (1 for a duplicate); *err gets the message. */
static int try_flush(int db, sr_store_flush_mode_t mode, small_flush_t *x, char **err)
{
    sr_store_t *s = open_store_db(db, mode);
    sr_store_flush_result_t res;
    int rc = sr_store_flush(s, &x->f, &res);
    *err = strdup(sr_store_errstr(s));
    if (rc == 0) rc = res.duplicate ? 1 : 0;
    sr_store_destroy(s);
    return rc;
}

/* The flush x on database 3 by transaction and on database 4 by script
 * (both prepared alike) must give code want and the same message; the
 * transaction must not have written user u1 or item i1 unless it applied. */
static void same_on_both(small_flush_t *x, int want, int compare_msg, int k)
{
    char *et, *es;
    int rt = try_flush(3, SR_STORE_FLUSH_TRANSACTION, x, &et);
    int rs = try_flush(4, SR_STORE_FLUSH_SCRIPT, x, &es);
    cr_assert_eq(rt, want, "case %d: %d (%s)", k, rt, et);
    cr_assert_eq(rs, rt, "case %d: script %d (%s), transaction %d (%s)", k, rs, es, rt, et);
    if (compare_msg) cr_assert_str_eq(et, es, "case %d", k);
    if (want < 0) {
        redisContext *c = raw_db(3);
        redisReply *r = redisCommand(c, "EXISTS {sr}:u:u1");
        cr_assert_eq(r->integer, 0, "case %d: the transaction wrote", k);
        freeReplyObject(r);
        redisFree(c);
    }
    free(et);
    free(es);
}

static void both_dbs(const char *cmd, const char *a1, const char *a2)
{
    for (int db = 3; db <= 4; db++) {
        raw(db, "FLUSHDB", NULL, NULL, NULL);
        if (cmd) raw(db, cmd, a1, a2, NULL);
    }
}

/* Every refusal gives the same code and message on both paths, and the
 * transaction path writes nothing. */
Test(store, refusals_are_the_same_on_both_paths_and_write_nothing)
{
    static const struct {
        const char *cmd, *key, *val;
        int want;
    } bad[] = {
        /* the fencing read itself fails; the script wraps Redis's message */
        {"SET %s %s", "{sr}:off:g", "x", SR_ERR_REDIS},
        {"SET %s %s", "{sr}:pop", "x", SR_ERR_CORRUPT},
        {"SET %s %s", "{sr}:updates", "x", SR_ERR_CORRUPT},
        {"HSET %s f %s", "{sr}:global", "x", SR_ERR_CORRUPT},
        {"HSET %s f %s", "{sr}:updates:seq", "x", SR_ERR_CORRUPT},
        {"SET %s %s", "{sr}:updates:seq", "12abc", SR_ERR_CORRUPT},
        {"HSET %s events:0 %s", "{sr}:off:g", "4", SR_ERR_STATE}, /* fenced: not prev */
    };
    small_flush_t x;
    int n = (int)(sizeof(bad) / sizeof(bad[0]));
    for (int k = 0; k < n; k++) {
        both_dbs(bad[k].cmd, bad[k].key, bad[k].val);
        small_flush_init(&x, "u1", "i1", SR_STORE_OFFSET_NONE, 5);
        same_on_both(&x, bad[k].want, bad[k].want != SR_ERR_REDIS, k);
    }
    /* Fenced because only some partitions were written, then a duplicate. */
    both_dbs("HSET {sr}:off:g events:0 %s", "5", NULL);
    sr_store_offset_t two[2] = {{.topic = "events", .partition = 0, .prev = 1, .next = 5},
                                {.topic = "events", .partition = 1, .prev = SR_STORE_OFFSET_NONE,
                                 .next = 2}};
    small_flush_init(&x, "u1", "i1", 1, 5);
    x.f.offsets = two;
    x.f.n_offsets = 2;
    same_on_both(&x, SR_ERR_STATE, 1, n);
    x.f.n_offsets = 1;
    same_on_both(&x, 1, 1, n + 1);
    /* An item twice. */
    small_flush_init(&x, "u1", "i1", 5, 6);
    sr_store_item_write_t w2[2] = {x.w, x.w};
    x.f.items = w2;
    x.f.n_items = 2;
    same_on_both(&x, SR_ERR_INVAL, 1, n + 2);
    /* i1 stored with dim 4; this writer's i1 has dim 8 and a stale base. */
    float v4[4] = {1, 2, 3, 4};
    sr_store_item_t small = {.id = "i1", .id_len = 2, .dim = 4, .vec = v4};
    sr_store_item_write_t ws = {.cur = &small};
    sr_store_flush_t fs = {.items = &ws, .n_items = 1};
    both_dbs(NULL, NULL, NULL);
    for (int db = 3; db <= 4; db++) {
        sr_store_t *s = open_store_db(db, SR_STORE_FLUSH_SCRIPT);
        sr_store_flush_result_t res;
        cr_assert_eq(sr_store_flush(s, &fs, &res), 0, "%s", sr_store_errstr(s));
        sr_store_destroy(s);
    }
    small_flush_init(&x, "u1", "i1", SR_STORE_OFFSET_NONE, 6);
    item_val_t stale = x.it;
    stale.vec[0] = 9;
    sr_store_item_t sb = item_of(&stale);
    x.w.base = &sb;
    same_on_both(&x, SR_ERR_VERSION, 1, n + 3);
}

/* redis.flush selects the path (the script stays reachable for operators). */
Test(store, redis_flush_property_selects_the_script_or_the_transaction)
{
    char err[256], url[64];
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d", port);
    sr_conf_t *c = sr_conf_new();
    cr_assert_eq(sr_conf_set(c, "redis.url", url, err, sizeof(err)), 0, "%s", err);
    cr_assert_neq(sr_conf_set(c, "redis.flush", "lua", err, sizeof(err)), 0);
    const char *modes[] = {"script", "transaction"};
    for (int m = 0; m < 2; m++) {
        cr_assert_eq(sr_conf_set(c, "redis.flush", modes[m], err, sizeof(err)), 0, "%s", err);
        sr_store_t *s = sr_store_new_conf(c, err, sizeof(err));
        cr_assert_not_null(s, "%s", err);
        small_flush_t x;
        small_flush_init(&x, "u1", "i1", m == 0 ? SR_STORE_OFFSET_NONE : 5, 5 + 5 * m);
        sr_store_flush_result_t res;
        cr_assert_eq(sr_store_flush(s, &x.f, &res), 0, "%s", sr_store_errstr(s));
        cr_assert_eq(res.by_script, m == 0, "%s", modes[m]);
        sr_store_destroy(s);
    }
    sr_conf_destroy(c);
}

/* A writer takes the items its last transaction wrote from memory only
 * while nobody else wrote an item since: here B changes x between two of
 * A's flushes, and A's second flush must read x and merge onto B's value. */
Test(store, a_write_by_another_writer_between_two_flushes_is_read_and_merged)
{
    sr_store_t *a = open_store("sr"), *b = open_store("sr");
    rich_t v0, vb, va;
    rich_init(&v0, "x", 1.0f);
    vb = va = v0;
    for (int j = 0; j < DIM; j++) vb.vec[j] += 2.0f, va.vec[j] += 0.5f;
    sr_store_item_t c0 = rich_item(&v0, 1), cb = rich_item(&vb, 1), ca = rich_item(&va, 1),
                    base = rich_item(&v0, 0);
    sr_store_offset_t off = {.topic = "events", .partition = 0, .prev = SR_STORE_OFFSET_NONE,
                             .next = 1};
    sr_store_item_write_t w = {.cur = &c0};
    sr_store_flush_t f = {.group = "g", .offsets = &off, .n_offsets = 1, .items = &w, .n_items = 1};
    sr_store_flush_result_t res;
    cr_assert_eq(sr_store_flush(a, &f, &res), 0, "%s", sr_store_errstr(a));
    sr_store_item_write_t wb = {.cur = &cb, .base = &base};
    sr_store_flush_t fb = {.items = &wb, .n_items = 1};
    cr_assert_eq(sr_store_flush(b, &fb, &res), 0, "%s", sr_store_errstr(b));
    cr_assert_eq(res.n_delta_merged, 0);
    w = (sr_store_item_write_t){.cur = &ca, .base = &base};
    off.prev = 1;
    off.next = 2;
    cr_assert_eq(sr_store_flush(a, &f, &res), 0, "%s", sr_store_errstr(a));
    cr_assert_eq(res.n_items_read, 1, "A must not trust what it wrote before B");
    cr_assert_eq(res.n_delta_merged, 1);
    for (int j = 0; j < DIM; j++)
        cr_assert_eq(res.merged[0].vec[j],
                     (float)((double)vb.vec[j] + ((double)va.vec[j] - (double)v0.vec[j])));
    /* Alone again: the next flush needs no read. */
    rich_t va2 = va;
    va2.bias = 5.0f;
    sr_store_item_t ca2 = rich_item(&va2, 1), base2 = res.merged[0];
    base2.extra = NULL;
    base2.extra_len = 0;
    rich_t keep; /* base2 points into res, valid until the next call */
    memcpy(keep.vec, base2.vec, sizeof(keep.vec));
    memcpy(keep.acc, base2.acc, sizeof(keep.acc));
    base2.vec = keep.vec;
    base2.acc = keep.acc;
    w = (sr_store_item_write_t){.cur = &ca2, .base = &base2};
    off.prev = 2;
    off.next = 3;
    cr_assert_eq(sr_store_flush(a, &f, &res), 0, "%s", sr_store_errstr(a));
    cr_assert_eq(res.n_items_read, 0);
    cr_assert_eq(res.n_delta_merged, 0, "Redis held exactly A's base");
    sr_store_destroy(a);
    sr_store_destroy(b);
}

static int lose_exec_reply(void *arg, int stage)
{
    int *lost = arg;
    if (stage != 1 || *lost) return 0;
    *lost = 1;
    return 1;
}

/* EXEC applied but its reply never arrived: the trainer sends the same
 * flush again, which must be recognised as a duplicate (nothing applied
 * twice), and the next flush must not trust what the lost one wrote. */
Test(store, a_lost_exec_reply_makes_the_retry_a_duplicate)
{
    sr_store_t *a = open_store("sr");
    int lost = 0;
    rich_t v0, v1;
    rich_init(&v0, "x", 1.0f);
    sr_store_item_t c0 = rich_item(&v0, 1);
    sr_store_item_write_t w = {.cur = &c0, .write_pop = 1, .pop_cur = 2.0};
    sr_store_offset_t off = {.topic = "events", .partition = 0, .prev = SR_STORE_OFFSET_NONE,
                             .next = 4};
    sr_store_flush_t f = {.group = "g", .offsets = &off, .n_offsets = 1, .items = &w, .n_items = 1};
    sr_store_flush_result_t res;
    cr_assert_eq(sr_store_flush(a, &f, &res), 0, "%s", sr_store_errstr(a));
    v1 = v0;
    for (int j = 0; j < DIM; j++) v1.vec[j] += 1.0f;
    sr_store_item_t c1 = rich_item(&v1, 1), b0 = rich_item(&v0, 0);
    w = (sr_store_item_write_t){.cur = &c1, .base = &b0, .write_pop = 1, .pop_base = 2.0,
                                .pop_cur = 3.0};
    off.prev = 4;
    off.next = 9;
    sr_store_set_flush_hook(a, lose_exec_reply, &lost);
    int rc = sr_store_flush(a, &f, &res);
    cr_assert_eq(rc, SR_ERR_UNAVAIL, "%d: %s", rc, sr_store_errstr(a));
    cr_assert(sr_store_err_retryable(rc));
    cr_assert_eq(sr_store_flush(a, &f, &res), 0, "%s", sr_store_errstr(a));
    cr_assert_eq(res.duplicate, 1, "the retry of an applied flush must be a duplicate");
    char *seq = cli("GET", "{sr}:updates:seq", NULL, NULL);
    cr_assert_eq(atoi(seq), 2, "applied once: %s", seq);
    free(seq);
    /* Another writer moves x; this writer's next flush must read it. */
    sr_store_t *b = open_store("sr");
    rich_t vb = v1;
    vb.bias = 9.0f;
    sr_store_item_t cb = rich_item(&vb, 1), b1 = rich_item(&v1, 0);
    sr_store_item_write_t wb = {.cur = &cb, .base = &b1};
    sr_store_flush_t fb = {.items = &wb, .n_items = 1};
    cr_assert_eq(sr_store_flush(b, &fb, &res), 0, "%s", sr_store_errstr(b));
    rich_t v2 = v1;
    v2.vec[0] += 1.0f;
    sr_store_item_t c2 = rich_item(&v2, 1);
    w = (sr_store_item_write_t){.cur = &c2, .base = &b1};
    off.prev = 9;
    off.next = 12;
    cr_assert_eq(sr_store_flush(a, &f, &res), 0, "%s", sr_store_errstr(a));
    cr_assert_eq(res.n_items_read, 1);
    cr_assert_eq(res.n_delta_merged, 1);
    cr_assert_eq(res.merged[0].bias, 9.0f, "B's bias kept");
    cr_assert_eq(res.merged[0].vec[0], (float)((double)v1.vec[0] + 1.0), "A's change added");
    sr_store_destroy(a);
    sr_store_destroy(b);
}

/* A lone writer takes unchanged items from its cache of what it wrote,
 * popularity text included, while the same flush brings enough new items
 * to grow that cache: the cached entries it already took must not move
 * (ASan reported a use after free here; in a plain build the trainer
 * crashed in one benchmark run of ~20). */
Test(store, new_items_that_grow_the_cache_keep_the_cached_items_exact)
{
    enum { OLD = 3, NEW = 1100 };
    sr_store_t *s = open_store("sr");
    item_val_t *v = calloc(OLD + NEW, sizeof(*v));
    sr_store_item_t *c = calloc(OLD + NEW, sizeof(*c));
    sr_store_item_write_t *w = calloc(OLD + NEW, sizeof(*w));
    cr_assert(v && c && w);
    for (int i = 0; i < OLD + NEW; i++) {
        /* New items first, so the cache grows before the old ones come. */
        if (i < NEW) snprintf(v[i].id, sizeof(v[i].id), "new%d", i);
        else snprintf(v[i].id, sizeof(v[i].id), "old%d", i - NEW);
        v[i].bias = (float)i;
        c[i] = item_of(&v[i]);
        double pop = 1.5 + i;
        w[i] = (sr_store_item_write_t){.cur = &c[i], .write_pop = 1, .pop_base = pop,
                                       .pop_cur = pop};
    }
    sr_store_offset_t off = {.topic = "events", .partition = 0, .prev = SR_STORE_OFFSET_NONE,
                             .next = 1};
    sr_store_flush_t f = {.group = "g", .offsets = &off, .n_offsets = 1};
    sr_store_flush_result_t res;
    /* 1: the old items alone (numbers 1..3), popularity new in Redis. */
    for (int i = NEW; i < NEW + OLD; i++) w[i].pop_base = 0;
    f.items = w + NEW;
    f.n_items = OLD;
    cr_assert_eq(sr_store_flush(s, &f, &res), 0, "%s", sr_store_errstr(s));
    for (int i = NEW; i < NEW + OLD; i++) w[i].pop_base = w[i].pop_cur;
    /* 2: 1,100 new items (numbers past the cache's first 1,024), then the
     * old ones unchanged, which come from the cache. */
    off.prev = 1;
    off.next = 2;
    f.items = w;
    f.n_items = OLD + NEW;
    cr_assert_eq(sr_store_flush(s, &f, &res), 0, "%s", sr_store_errstr(s));
    cr_assert_eq(res.n_items_read, NEW, "the old items were read again: no cache path tested");
    for (int i = NEW; i < NEW + OLD; i++) {
        cr_assert_eq(res.merged[i].has_pop, 1);
        cr_assert_eq(res.merged[i].pop, 1.5 + i, "%s: %g", v[i].id, res.merged[i].pop);
    }
    /* 3: the old ones again, all from the cache the last flush left. */
    off.prev = 2;
    off.next = 3;
    f.items = w + NEW;
    f.n_items = OLD;
    cr_assert_eq(sr_store_flush(s, &f, &res), 0, "%s", sr_store_errstr(s));
    cr_assert_eq(res.n_items_read, 0);
    for (int i = 0; i < OLD; i++) cr_assert_eq(res.merged[i].pop, 1.5 + NEW + i);
    char *score = cli("ZSCORE", "{sr}:pop", "old2", NULL);
    cr_assert_eq(atof(score), 1.5 + NEW + 2, "redis holds %s", score);
    free(score);
    free(v);
    free(c);
    free(w);
    sr_store_destroy(s);
}

/* Update entries are one pair per item, id -> "<num>[ <pop>]", without
 * the blob (docs/REDIS.md): the follower reads the item's key, so it may
 * get a newer value than the entry's.  The entries of earlier writers (4
 * pairs per item, the blob in `v` or empty) are still read. */
Test(store, update_entries_of_every_layout_are_read)
{
    sr_store_t *s = open_store("sr");
    item_val_t v = {.id = "a", .bias = 1.0f};
    sr_store_item_t c = item_of(&v);
    sr_store_item_write_t w = {.cur = &c, .write_pop = 1, .pop_cur = 2.5};
    sr_store_flush_t f = {.items = &w, .n_items = 1};
    sr_store_flush_result_t res;
    cr_assert_eq(sr_store_flush(s, &f, &res), 0, "%s", sr_store_errstr(s));
    redisContext *rc = redisConnect("127.0.0.1", port);
    cr_assert(rc && !rc->err);
    redisReply *blob1 = redisCommand(rc, "GET {sr}:i:a");
    cr_assert_eq(blob1->type, REDIS_REPLY_STRING);
    redisReply *x = redisCommand(rc, "XRANGE {sr}:updates - +");
    cr_assert_eq(x->elements, 1);
    const redisReply *fl = x->element[0]->element[1];
    cr_assert_eq(fl->elements, 4);
    const char *want[4] = {"q", "1", "a", "1 2.5"};
    for (int k = 0; k < 4; k++) cr_assert_str_eq(fl->element[k]->str, want[k]);
    freeReplyObject(x);
    /* Again without a base: a delta from zero, so Redis now holds bias 2. */
    w.write_pop = 0;
    cr_assert_eq(sr_store_flush(s, &f, &res), 0, "%s", sr_store_errstr(s));
    x = redisCommand(rc, "XREVRANGE {sr}:updates + - COUNT 1");
    cr_assert_str_eq(x->element[0]->element[1]->element[3]->str, "1", "no popularity written");
    freeReplyObject(x);
    /* Entries as earlier writers made them: without, then with the blob
     * (of bias 1). */
    freeReplyObject(redisCommand(rc, "XADD {sr}:updates * s 3 n 1 id a v %b p %s", "", 0, ""));
    freeReplyObject(redisCommand(rc, "XADD {sr}:updates * s 4 n 1 id a v %b p %s", blob1->str,
                                 blob1->len, "7"));
    freeReplyObject(redisCommand(rc, "INCRBY {sr}:updates:seq 2"));
    freeReplyObject(blob1);
    redisFree(rc);
    sr_store_cursor_t cur = {0};
    const sr_store_update_t *u;
    int gap = 0;
    long n = sr_store_read_updates(s, &cur, 100, &u, &gap);
    cr_assert_eq(n, 4, "read %ld: %s", n, sr_store_errstr(s));
    cr_assert_eq(gap, 0);
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(u[i].seq, (uint64_t)i + 1);
        cr_assert_str_eq(u[i].item.id, "a");
        cr_assert_eq(u[i].item.num, 1);
        cr_assert_eq(u[i].item.dim, DIM);
    }
    cr_assert_eq(u[0].item.bias, 2.0f, "the key's value, newer than the entry");
    cr_assert(u[0].item.has_pop);
    cr_assert_eq(u[0].item.pop, 2.5);
    cr_assert_eq(u[1].item.bias, 2.0f);
    cr_assert_not(u[1].item.has_pop);
    cr_assert_eq(u[2].item.bias, 2.0f, "an old entry without a blob: the key's value");
    cr_assert_not(u[2].item.has_pop);
    cr_assert_eq(u[3].item.bias, 1.0f, "the blob in the old entry");
    cr_assert_eq(u[3].item.pop, 7.0);
    /* The tail of a stream that ends in an old entry: its last number. */
    sr_store_cursor_t tail;
    cr_assert_eq(sr_store_updates_tail(s, &tail), 0, "%s", sr_store_errstr(s));
    cr_assert_eq(tail.seq, 4);
    sr_store_destroy(s);
}

/* Popularity comes back for each id in order over several batched
 * commands (ZMSCORE per 1,000 ids), absent where the set lacks the id, and
 * a popularity key of the wrong type leaves every id without one. */
Test(store, item_popularity_of_many_ids_reads_in_order)
{
    sr_store_t *s = open_store("pm");
    redisContext *rc = redisConnect("127.0.0.1", port);
    cr_assert(rc && !rc->err);
    enum { N = 2500 };
    static char idb[N][16];
    const char *ids[N];
    for (int i = 0; i < N; i++) {
        snprintf(idb[i], sizeof(idb[i]), "it%d", i);
        ids[i] = idb[i];
        if (i % 3 == 0) redisAppendCommand(rc, "ZADD {pm}:pop %f %s", i + 0.5, idb[i]);
    }
    for (int i = 0; i < N; i += 3) {
        redisReply *r = NULL;
        cr_assert_eq(redisGetReply(rc, (void **)&r), REDIS_OK);
        freeReplyObject(r);
    }
    static sr_store_item_t out[N];
    cr_assert_eq(sr_store_get_items(s, ids, NULL, N, out), 0, "%s", sr_store_errstr(s));
    for (int i = 0; i < N; i++) {
        cr_assert_eq(out[i].has_pop, i % 3 == 0, "%s", ids[i]);
        if (i % 3 == 0) cr_assert_eq(out[i].pop, i + 0.5, "%s: %g", ids[i], out[i].pop);
    }
    sr_store_destroy(s);

    s = open_store("pw");
    redisReply *r = redisCommand(rc, "SET {pw}:pop x");
    freeReplyObject(r);
    cr_assert_eq(sr_store_get_items(s, ids, NULL, N, out), 0, "%s", sr_store_errstr(s));
    for (int i = 0; i < N; i++) cr_assert_eq(out[i].has_pop, 0, "%s", ids[i]);
    sr_store_destroy(s);
    redisFree(rc);
}
