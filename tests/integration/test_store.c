/* The store against a real redis-server: the atomic flush and its read
 * back, offset fencing and duplicate flushes, the item delta merge (two
 * writers sum, one writer stays bit-exact), the update stream and its cap,
 * popularity, the schema check, reconnecting after a Redis restart and the
 * per-user memory budget.  Every test starts its own private server. */
#include <criterion/criterion.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sr_err.h"
#include "sr_store.h"
#include "sr_testproc.h"

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
