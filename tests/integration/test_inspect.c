/* `streamrec inspect` against a real redis-server holding state written
 * through store/ (the same flush the trainer uses): the JSON carries the
 * stored vector, bias, recent items, events and last update time; unknown
 * ids and an unreachable Redis exit 1 with a message; usage errors exit 2. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sr_store.h"
#include "sr_testproc.h"

static sr_test_proc_t redis;
static int port;
static char xurl[64];

#define DIM 4

static void seed_state(void)
{
    sr_store_opts_t o;
    sr_store_opts_init(&o);
    o.port = port;
    o.prefix = "sr";
    char err[512];
    sr_store_t *s = sr_store_new(&o, err, sizeof err);
    cr_assert_not_null(s, "%s", err);
    float uv[DIM] = {0.5f, -0.25f, 1.0f, 0.125f};
    sr_store_recent_t rec[2] = {
        {.item_id = "i7", .item_id_len = 2, .ts_ms = 1700000000000LL, .type = 0},
        {.item_id = "i9", .item_id_len = 2, .ts_ms = 1700000005000LL, .type = 3},
    };
    sr_store_user_t u = {.id = "u1", .id_len = 2, .dim = DIM, .vec = uv, .events = 42,
                         .last_ts_ms = 1700000005000LL, .n_recent = 2, .recent = rec};
    float iv[DIM] = {1.0f, 2.0f, 3.0f, 4.0f};
    sr_store_item_t it = {.id = "i7", .id_len = 2, .dim = DIM, .vec = iv, .bias = 0.75f};
    sr_store_item_write_t w = {.cur = &it, .write_pop = 1, .pop_cur = 3.5};
    sr_store_offset_t off = {.topic = "events", .partition = 0, .prev = SR_STORE_OFFSET_NONE,
                             .next = 43};
    sr_store_flush_t f = {.group = "g", .offsets = &off, .n_offsets = 1, .users = &u,
                          .n_users = 1, .items = &w, .n_items = 1};
    sr_store_flush_result_t res;
    cr_assert_eq(sr_store_flush(s, &f, &res), 0, "%s", sr_store_errstr(s));
    sr_store_destroy(s);
}

static void setup(void)
{
    cr_assert_eq(sr_test_redis_start(&redis, &port), 0, "redis-server did not start");
    snprintf(xurl, sizeof xurl, "redis.url=redis://127.0.0.1:%d", port);
    seed_state();
}

static void teardown(void)
{
    sr_test_stop(&redis, SIGTERM, 5000);
}

TestSuite(inspect, .init = setup, .fini = teardown, .timeout = 60);

static int run(char **out, const char *a1, const char *a2, const char *a3, const char *a4)
{
    char *argv[] = {(char *)sr_test_bin(), "inspect", "-X", xurl, (char *)a1, (char *)a2,
                    (char *)a3, (char *)a4, NULL};
    return sr_test_run(argv, out, 20000);
}

static json_t *parse(const char *s)
{
    json_error_t err;
    json_t *j = json_loads(s, 0, &err);
    cr_assert_not_null(j, "not JSON (%s): %s", err.text, s);
    return j;
}

Test(inspect, user_json_has_stored_state)
{
    char *out = NULL;
    cr_assert_eq(run(&out, "user", "u1", "--json", NULL), 0, "%s", out);
    json_t *j = parse(out);
    free(out);
    cr_expect_str_eq(json_string_value(json_object_get(j, "user")), "u1");
    cr_expect_eq(json_integer_value(json_object_get(j, "events")), 42);
    cr_expect_eq(json_integer_value(json_object_get(j, "last_ts_ms")), 1700000005000LL);
    json_t *v = json_object_get(j, "vector");
    cr_assert_eq(json_array_size(v), DIM);
    cr_expect_float_eq(json_real_value(json_array_get(v, 1)), -0.25, 1e-9);
    json_t *r = json_object_get(j, "recent");
    cr_assert_eq(json_array_size(r), 2);
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(r, 1), "item")), "i9");
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(r, 1), "type")), "purchase");
    cr_expect_eq(json_integer_value(json_object_get(json_array_get(r, 0), "ts_ms")),
                 1700000000000LL);
    json_decref(j);
}

Test(inspect, item_json_has_vector_bias_popularity)
{
    char *out = NULL;
    cr_assert_eq(run(&out, "item", "i7", "--json", NULL), 0, "%s", out);
    json_t *j = parse(out);
    free(out);
    cr_expect_str_eq(json_string_value(json_object_get(j, "item")), "i7");
    cr_expect_float_eq(json_real_value(json_object_get(j, "bias")), 0.75, 1e-9);
    cr_expect_float_eq(json_real_value(json_object_get(j, "popularity")), 3.5, 1e-9);
    json_t *v = json_object_get(j, "vector");
    cr_assert_eq(json_array_size(v), DIM);
    cr_expect_float_eq(json_real_value(json_array_get(v, 3)), 4.0, 1e-9);
    cr_expect_gt(json_integer_value(json_object_get(j, "num")), 0);
    json_decref(j);
}

Test(inspect, text_output_is_readable)
{
    char *out = NULL;
    cr_assert_eq(run(&out, "user", "u1", NULL, NULL), 0);
    cr_expect_not_null(strstr(out, "events       42"), "%s", out);
    cr_expect_not_null(strstr(out, "i9"), "%s", out);
    free(out);
}

Test(inspect, unknown_id_exits_1_and_prints_nothing)
{
    char *out = NULL;
    cr_expect_eq(run(&out, "user", "nobody", "--json", NULL), 1);
    cr_expect_eq(strlen(out), 0, "stdout: %s", out);
    free(out);
    cr_expect_eq(run(NULL, "item", "no-such-item", NULL, NULL), 1);
}

Test(inspect, usage_errors_exit_2)
{
    cr_expect_eq(run(NULL, "shop", "u1", NULL, NULL), 2);
    cr_expect_eq(run(NULL, "user", NULL, NULL, NULL), 2);
    cr_expect_eq(run(NULL, "user", "u1", "--bogus", NULL), 2);
    char big[300];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    cr_expect_eq(run(NULL, "user", big, NULL, NULL), 2);
}

Test(inspect, unreachable_redis_exits_1)
{
    char url[64];
    snprintf(url, sizeof url, "redis.url=redis://127.0.0.1:%d", sr_test_free_port());
    char *argv[] = {(char *)sr_test_bin(), "inspect", "-X", url, "user", "u1", NULL};
    cr_expect_eq(sr_test_run(argv, NULL, 20000), 1);
}
