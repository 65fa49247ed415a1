/* `streamrec serve` end to end against a real redis-server holding state
 * written through store/ (the trainer's own flush): answers from the seeded
 * state, a new user's purchases reflected on the next request, a new item
 * recommendable without a restart (update stream), /v1/rank puts items
 * related to a purchase above unrelated ones, keep-alive, metrics, and
 * Redis restarted under the ranker: 503 with a reason, then recovery. */
#include "sr_http_test.h"
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sr_http_test.h"
#include "sr_store.h"
#include "sr_testproc.h"

#define DIM 4

static sr_test_proc_t redis, serve;
static int rport, hport;
static int64_t next_off;

static sr_store_t *store(void)
{
    sr_store_opts_t o;
    sr_store_opts_init(&o);
    o.port = rport;
    char err[512];
    sr_store_t *s = sr_store_new(&o, err, sizeof err);
    cr_assert_not_null(s, "%s", err);
    return s;
}

typedef struct seed_item {
    const char *id;
    float v[DIM];
    float bias;
    double pop;
} seed_item_t;

/* One flush, as a trainer would do it: items then users. */
static void flush(const seed_item_t *items, size_t n_items, const sr_store_user_t *users,
                  size_t n_users)
{
    sr_store_t *s = store();
    sr_store_item_t it[16];
    sr_store_item_write_t w[16];
    cr_assert_leq(n_items, 16);
    for (size_t i = 0; i < n_items; i++) {
        it[i] = (sr_store_item_t){.id = items[i].id,
                                  .id_len = strlen(items[i].id),
                                  .dim = DIM,
                                  .vec = items[i].v,
                                  .bias = items[i].bias};
        w[i] = (sr_store_item_write_t){.cur = &it[i], .write_pop = 1, .pop_cur = items[i].pop};
    }
    sr_store_offset_t off = {.topic = "events",
                             .partition = 0,
                             .prev = next_off ? next_off : SR_STORE_OFFSET_NONE,
                             .next = next_off + 1};
    next_off++;
    sr_store_flush_t f = {.group = "g",
                          .offsets = &off,
                          .n_offsets = 1,
                          .users = users,
                          .n_users = n_users,
                          .items = w,
                          .n_items = n_items};
    sr_store_flush_result_t res;
    cr_assert_eq(sr_store_flush(s, &f, &res), 0, "%s", sr_store_errstr(s));
    sr_store_destroy(s);
}

/* Shoes point one way, books the other; "hat" is the most popular. */
static const seed_item_t catalogue[] = {
    {"shoe1", {3, 0.3f, 0, 0}, 0, 2},     {"shoe2", {2.7f, 0.6f, 0, 0}, 0, 2},
    {"shoe3", {3, -0.3f, 0, 0}, 0, 1},    {"book1", {-3, 0, 0.3f, 0}, 0, 2},
    {"book2", {-2.7f, 0, 0.6f, 0}, 0, 2}, {"hat", {0, 0, 0, 3}, 0, 50},
};

static void user_with(sr_store_user_t *u, const char *id, sr_store_recent_t *rec, size_t n,
                      const float *vec)
{
    *u = (sr_store_user_t){.id = id,
                           .id_len = strlen(id),
                           .dim = DIM,
                           .vec = vec,
                           .events = n,
                           .last_ts_ms = n ? rec[n - 1].ts_ms : 0,
                           .n_recent = (uint32_t)n,
                           .recent = rec};
}

static long long now_ms_wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void setup(void)
{
    next_off = 0;
    cr_assert_eq(sr_test_redis_start(&redis, &rport), 0, "redis-server did not start");
    flush(catalogue, sizeof(catalogue) / sizeof(catalogue[0]), NULL, 0);
    hport = serve_start(&serve, rport, NULL, NULL);
    cr_assert_gt(hport, 0, "streamrec serve did not start");
    cr_assert_eq(serve_wait_healthy(hport, 15000), 0, "serve did not become healthy");
}

static void teardown(void)
{
    if (serve.pid > 0) sr_test_stop(&serve, SIGTERM, 10000);
    if (redis.pid > 0) sr_test_stop(&redis, SIGTERM, 5000);
}

TestSuite(serve, .init = setup, .fini = teardown, .timeout = 90);

static json_t *get_json(const char *method, const char *target, const char *body, int *status)
{
    http_resp_t r;
    *status = http_do(hport, method, target, body, &r);
    json_t *j = NULL;
    if (r.body) {
        json_error_t err;
        j = json_loads(r.body, 0, &err);
    }
    http_resp_free(&r);
    return j;
}

static const char *item_at(json_t *j, size_t i)
{
    return json_string_value(
        json_object_get(json_array_get(json_object_get(j, "items"), i), "item"));
}

Test(serve, healthz_and_popular_from_seeded_state)
{
    int st;
    json_t *j = get_json("GET", "/healthz", NULL, &st);
    cr_assert_eq(st, 200);
    cr_assert_eq(json_integer_value(json_object_get(j, "items")), 6);
    cr_assert(json_is_true(json_object_get(j, "redis")));
    json_decref(j);
    j = get_json("GET", "/v1/popular?k=2", NULL, &st);
    cr_assert_eq(st, 200);
    cr_assert_str_eq(item_at(j, 0), "hat");
    cr_assert_eq(json_array_size(json_object_get(j, "items")), 2);
    json_decref(j);
    j = get_json("GET", "/v1/similar?item=shoe1&k=2", NULL, &st);
    cr_assert_eq(st, 200);
    cr_assert(strncmp(item_at(j, 0), "shoe", 4) == 0 && strncmp(item_at(j, 1), "shoe", 4) == 0,
              "shoes are like shoes: %s %s", item_at(j, 0), item_at(j, 1));
    json_decref(j);
}

Test(serve, new_users_purchase_is_reflected_on_the_next_request)
{
    int st;
    json_t *j = get_json("GET", "/v1/recommend?user=newbie&k=3", NULL, &st);
    cr_assert_eq(st, 200);
    cr_assert_str_eq(json_string_value(json_object_get(j, "source")), "popular");
    cr_assert_str_eq(item_at(j, 0), "hat");
    json_decref(j);
    /* The trainer flushes the user's first purchase... */
    sr_store_recent_t rec[1] = {
        {.item_id = "book1", .item_id_len = 5, .ts_ms = now_ms_wall(), .type = 3}};
    float zero[DIM] = {0};
    sr_store_user_t u;
    user_with(&u, "newbie", rec, 1, zero);
    long long t0 = sr_test_now_ms();
    flush(NULL, 0, &u, 1);
    /* ...and the ranker's answer changes within a second (user state is
     * read per request, so the very next request sees it). */
    int changed = 0;
    while (!changed && sr_test_now_ms() - t0 < 1000) {
        j = get_json("GET", "/v1/recommend?user=newbie&k=3&exclude=purchased", NULL, &st);
        cr_assert_eq(st, 200);
        changed = strcmp(json_string_value(json_object_get(j, "source")), "personal") == 0;
        if (changed) {
            cr_assert_str_eq(item_at(j, 0), "book2", "the other book first, got %s", item_at(j, 0));
            for (size_t i = 0; i < 3; i++)
                cr_assert_str_neq(item_at(j, i), "book1");
        }
        json_decref(j);
    }
    cr_assert(changed, "purchase reflected within 1 s (took %lld ms)", sr_test_now_ms() - t0);
}

Test(serve, new_item_becomes_recommendable_without_restart)
{
    int st;
    json_t *j = get_json("GET", "/v1/similar?item=boot9", NULL, &st);
    cr_assert_eq(st, 404);
    json_decref(j);
    seed_item_t boot = {"boot9", {1, 0.05f, 0, 0}, 0.5f, 500};
    flush(&boot, 1, NULL, 0);
    long long t0 = sr_test_now_ms();
    int seen = 0;
    while (!seen && sr_test_now_ms() - t0 < 10000) {
        j = get_json("GET", "/v1/popular?k=1", NULL, &st);
        cr_assert_eq(st, 200);
        seen = strcmp(item_at(j, 0), "boot9") == 0;
        json_decref(j);
        if (!seen) usleep(5000);
    }
    cr_assert(seen, "the new item reached the ranker through the update stream");
    cr_log_info("new item visible after %lld ms", sr_test_now_ms() - t0);
    j = get_json("GET", "/v1/similar?item=boot9&k=1", NULL, &st);
    cr_assert_eq(st, 200);
    cr_assert(strncmp(item_at(j, 0), "shoe", 4) == 0);
    json_decref(j);
    j = get_json("GET", "/healthz", NULL, &st);
    cr_assert_eq(json_integer_value(json_object_get(j, "items")), 7);
    json_decref(j);
}

Test(serve, rank_puts_items_related_to_a_purchase_first)
{
    sr_store_recent_t rec[1] = {
        {.item_id = "shoe1", .item_id_len = 5, .ts_ms = now_ms_wall(), .type = 3}};
    float zero[DIM] = {0};
    sr_store_user_t u;
    user_with(&u, "runner", rec, 1, zero);
    flush(NULL, 0, &u, 1);
    int st;
    json_t *j = get_json("POST", "/v1/rank",
                         "{\"user\":\"runner\",\"items\":[\"book1\",\"hat\",\"nosuch\",\"shoe3\","
                         "\"book2\",\"shoe2\"]}",
                         &st);
    cr_assert_eq(st, 200);
    cr_assert_str_eq(json_string_value(json_object_get(j, "source")), "personal");
    const char *a = item_at(j, 0), *b = item_at(j, 1);
    cr_assert(strncmp(a, "shoe", 4) == 0 && strncmp(b, "shoe", 4) == 0, "got %s %s", a, b);
    cr_assert_str_eq(item_at(j, 5), "nosuch");
    cr_assert(
        json_is_true(json_object_get(json_array_get(json_object_get(j, "items"), 5), "unknown")));
    json_decref(j);
}

Test(serve, keep_alive_serves_many_requests_on_one_connection)
{
    int fd = http_connect(hport);
    cr_assert_geq(fd, 0);
    for (int i = 0; i < 50; i++) {
        const char *req = "GET /v1/popular?k=3 HTTP/1.1\r\nHost: x\r\n\r\n";
        http_send_all(fd, req, strlen(req));
        http_resp_t r;
        cr_assert_eq(http_read_resp(fd, &r, 10000), 0, "response %d on the same connection", i);
        cr_assert_eq(r.status, 200);
        http_resp_free(&r);
    }
    close(fd);
    http_resp_t r;
    cr_assert_eq(http_do(hport, "GET", "/metrics", NULL, &r), 200);
    cr_assert(strstr(r.body, "streamrec_ranker_requests_total{route=\"popular\",code=\"200\"} 50"),
              "%s", r.body);
    cr_assert(strstr(r.body, "streamrec_ranker_items_loaded 6"));
    http_resp_free(&r);
}

Test(serve, redis_restart_gives_503_then_recovers)
{
    int st;
    json_t *j = get_json("GET", "/v1/recommend?user=x", NULL, &st);
    cr_assert_eq(st, 200);
    json_decref(j);
    sr_test_stop(&redis, SIGTERM, 5000);
    redis.pid = -1;
    j = get_json("GET", "/v1/recommend?user=x", NULL, &st);
    cr_assert_eq(st, 503);
    const char *e = json_string_value(json_object_get(j, "error"));
    cr_assert(e && strstr(e, "redis unavailable"), "%s", e ? e : "(none)");
    json_decref(j);
    j = get_json("GET", "/healthz", NULL, &st);
    cr_assert_eq(st, 503);
    cr_assert_str_eq(json_string_value(json_object_get(j, "status")), "unhealthy");
    cr_assert(json_is_false(json_object_get(j, "redis")));
    json_decref(j);
    /* Items stay in memory: popularity is still served. */
    j = get_json("GET", "/v1/popular?k=1", NULL, &st);
    cr_assert_eq(st, 200);
    json_decref(j);
    /* Same port, empty database: the ranker reconnects by itself. */
    char ports[16];
    snprintf(ports, sizeof ports, "%d", rport);
    char *argv[] = {"redis-server", "--port", ports,        "--bind",  "127.0.0.1", "--save", "",
                    "--appendonly", "no",     "--loglevel", "warning", NULL};
    cr_assert_eq(sr_test_spawn(&redis, argv, 1), 0);
    long long t0 = sr_test_now_ms();
    st = 0;
    while (st != 200 && sr_test_now_ms() - t0 < 20000) {
        j = get_json("GET", "/v1/recommend?user=x", NULL, &st);
        json_decref(j);
        if (st != 200) usleep(50000);
    }
    cr_assert_eq(st, 200, "recovered without a restart");
    j = get_json("GET", "/healthz", NULL, &st);
    cr_assert_eq(st, 200);
    json_decref(j);
    cr_log_info("recovered %lld ms after redis came back", sr_test_now_ms() - t0);
}
