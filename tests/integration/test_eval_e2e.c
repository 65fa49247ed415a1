/* End to end through the real binary: `streamrec simulate` writes a shop
 * log, `streamrec eval --json` reads it; the JSON has the documented shape,
 * bad lines are skipped and counted, the same log gives the same numbers.
 * The accuracy acceptance test (streamrec ahead of every baseline) is
 * test_eval_accuracy.c. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sr_testproc.h"

static char dir[64];
static char log_path[128];

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/sr_eval_e2e_XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(log_path, sizeof(log_path), "%s/shop.csv", dir);
}

static void teardown(void)
{
    unlink(log_path);
    char p[160];
    snprintf(p, sizeof(p), "%s/bad.csv", dir);
    unlink(p);
    rmdir(dir);
}

static void simulate(void)
{
    char *argv[] = {(char *)sr_test_bin(),
                    "simulate",
                    "--users",
                    "3000",
                    "--items",
                    "8000",
                    "--events",
                    "80000",
                    "--seed",
                    "7",
                    "--out",
                    log_path,
                    NULL};
    cr_assert_eq(sr_test_run(argv, NULL, 60000), 0, "simulate failed");
}

static json_t *eval_json(const char *path, const char *protocol, const char *every)
{
    char *argv[] = {(char *)sr_test_bin(),
                    "eval",
                    "--data",
                    (char *)path,
                    "--protocol",
                    (char *)protocol,
                    "--every",
                    (char *)every,
                    "--k",
                    "10",
                    "--json",
                    NULL};
    char *out = NULL;
    int rc = sr_test_run(argv, &out, 120000);
    cr_assert_eq(rc, 0, "eval exited %d", rc);
    json_error_t err;
    json_t *root = json_loads(out, 0, &err);
    cr_assert_not_null(root, "not one JSON object: %s (%s)", err.text, out);
    free(out);
    return root;
}

static const char *const models[] = {"streamrec", "pop", "pop-decay", "recency", "cooc"};
static const char *const metrics[] = {"hr", "ndcg", "mrr", "coverage", "novelty"};

static void check_shape(json_t *root, const char *protocol, json_int_t events)
{
    cr_assert(json_is_object(root));
    cr_assert_str_eq(json_string_value(json_object_get(root, "protocol")), protocol);
    cr_assert_eq(json_integer_value(json_object_get(root, "events")), events);
    json_int_t evaluated = json_integer_value(json_object_get(root, "evaluated"));
    cr_assert(json_is_integer(json_object_get(root, "evaluated")));
    cr_assert_gt(evaluated, 0);
    cr_assert_eq(json_integer_value(json_object_get(root, "k")), 10);
    cr_assert(json_is_number(json_object_get(root, "seconds")));
    cr_assert_geq(json_number_value(json_object_get(root, "seconds")), 0);
    cr_assert(json_is_integer(json_object_get(root, "bad_lines")));
    json_t *ms = json_object_get(root, "models");
    cr_assert(json_is_object(ms));
    cr_assert_eq(json_object_size(ms), 5);
    for (int m = 0; m < 5; m++) {
        json_t *o = json_object_get(ms, models[m]);
        cr_assert(json_is_object(o), "model %s missing", models[m]);
        for (int k = 0; k < 5; k++) {
            json_t *v = json_object_get(o, metrics[k]);
            cr_assert(json_is_number(v), "%s.%s missing", models[m], metrics[k]);
            double x = json_number_value(v);
            cr_assert_geq(x, 0, "%s.%s = %f", models[m], metrics[k], x);
            if (k < 4) cr_assert_leq(x, 1, "%s.%s = %f", models[m], metrics[k], x);
        }
    }
}

Test(eval_e2e, json_shape_discovery, .init = setup, .fini = teardown, .timeout = 300)
{
    simulate();
    json_t *root = eval_json(log_path, "discovery", "5");
    check_shape(root, "discovery", 80000);
    cr_assert_eq(json_integer_value(json_object_get(root, "bad_lines")), 0);
    json_decref(root);
}

Test(eval_e2e, json_shape_all, .init = setup, .fini = teardown, .timeout = 300)
{
    simulate();
    json_t *root = eval_json(log_path, "all", "5");
    check_shape(root, "all", 80000);
    json_decref(root);
}

Test(eval_e2e, bad_lines_are_skipped_and_counted, .init = setup, .fini = teardown, .timeout = 120)
{
    char bad[160];
    snprintf(bad, sizeof(bad), "%s/bad.csv", dir);
    FILE *f = fopen(bad, "w");
    cr_assert_not_null(f);
    fputs("ts_ms,user,item,event\n"
          "1,u1,i1,view\n"
          "2,u1,i2,view\n"
          "oops,u1,i2,view\n" /* bad timestamp */
          "3,u2,i1,view\r\n"
          "4,u2\n"             /* missing item */
          "5,u2,i2,wishlist\n" /* unknown type */
          "6,u2,i2,view,extra,cols\n",
          f);
    fclose(f);
    json_t *root = eval_json(bad, "all", "1");
    cr_assert_eq(json_integer_value(json_object_get(root, "bad_lines")), 3);
    cr_assert_eq(json_integer_value(json_object_get(root, "events")), 4);
    /* Eligible under all: (u1,i2) and (u2,i2): u2's first is not. */
    cr_assert_eq(json_integer_value(json_object_get(root, "evaluated")), 2);
    json_decref(root);
}

Test(eval_e2e, same_log_same_numbers, .init = setup, .fini = teardown, .timeout = 300)
{
    char *argv[] = {(char *)sr_test_bin(),
                    "simulate",
                    "--users",
                    "500",
                    "--items",
                    "1000",
                    "--events",
                    "10000",
                    "--seed",
                    "9",
                    "--out",
                    log_path,
                    NULL};
    cr_assert_eq(sr_test_run(argv, NULL, 60000), 0);
    json_t *a = eval_json(log_path, "discovery", "2"), *b = eval_json(log_path, "discovery", "2");
    json_object_del(a, "seconds");
    json_object_del(b, "seconds");
    cr_assert(json_equal(a, b), "two runs on the same log differ");
    json_decref(a);
    json_decref(b);
}

Test(eval_e2e, bad_options_exit_2, .init = setup, .fini = teardown)
{
    char *a1[] = {(char *)sr_test_bin(), "eval",      "--data", "/nonexistent",
                  "--protocol",          "sometimes", NULL};
    cr_assert_eq(sr_test_run(a1, NULL, 10000), 2);
    char *a2[] = {(char *)sr_test_bin(), "eval", "--protocol", "all", NULL};
    cr_assert_eq(sr_test_run(a2, NULL, 10000), 2, "--data is required");
    char *a3[] = {(char *)sr_test_bin(), "eval", "--data", "/nonexistent/x.csv", NULL};
    cr_assert_eq(sr_test_run(a3, NULL, 10000), 1, "missing file");
    char *a4[] = {(char *)sr_test_bin(), "eval", "--data", "x", "--every", "0", NULL};
    cr_assert_eq(sr_test_run(a4, NULL, 10000), 2);
}

Test(eval_e2e, simulate_is_deterministic, .init = setup, .fini = teardown, .timeout = 60)
{
    char *argv[] = {(char *)sr_test_bin(),
                    "simulate",
                    "--users",
                    "200",
                    "--items",
                    "300",
                    "--events",
                    "3000",
                    "--seed",
                    "4",
                    NULL};
    char *a = NULL, *b = NULL;
    cr_assert_eq(sr_test_run(argv, &a, 30000), 0);
    cr_assert_eq(sr_test_run(argv, &b, 30000), 0);
    cr_assert_str_eq(a, b);
    cr_assert(strncmp(a, "ts_ms,user,item,event\n", 22) == 0);
    size_t lines = 0;
    for (const char *p = a; *p; p++)
        lines += *p == '\n';
    cr_assert_eq(lines, 3001);
    free(a);
    free(b);
}

Test(eval_e2e, table_without_json, .init = setup, .fini = teardown, .timeout = 120)
{
    char *sim[] = {(char *)sr_test_bin(),
                   "simulate",
                   "--users",
                   "300",
                   "--items",
                   "500",
                   "--events",
                   "5000",
                   "--seed",
                   "5",
                   "--out",
                   log_path,
                   NULL};
    cr_assert_eq(sr_test_run(sim, NULL, 30000), 0);
    char *argv[] = {
        (char *)sr_test_bin(), "eval", "--data", log_path, "--protocol", "all", "--k", "5", NULL};
    char *out = NULL;
    cr_assert_eq(sr_test_run(argv, &out, 60000), 0);
    cr_assert(strstr(out, "HR@5") && strstr(out, "NDCG@5") && strstr(out, "MRR"), "%s", out);
    for (int m = 0; m < 5; m++) {
        char row[32];
        snprintf(row, sizeof(row), "\n%s ", models[m]);
        cr_assert(strstr(out, row), "no row for %s in:\n%s", models[m], out);
    }
    cr_assert_null(strchr(out, '{'), "no JSON without --json");
    free(out);
}
