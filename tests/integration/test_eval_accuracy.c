/* Issue 2's accuracy acceptance test, end to end through the real binary:
 * on a simulated shop log, `streamrec eval --json` must show the default
 * streamrec model ahead of every baseline (pop, pop-decay, recency, cooc)
 * on HR@10, under both protocols.  The simulator is built to be hard for a
 * pure factorization model (repeat views, funnels, short related sessions,
 * long tail), so this passes only if the blend uses the strong signals.
 * The same holds on the harder `--preset retail` log (views only, repeat
 * dominated, short sessions, one-visit users; docs/SIMULATOR.md). */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sr_testproc.h"

static char dir[64];
static char log_path[128];

static void simulate(const char *preset)
{
    snprintf(dir, sizeof(dir), "/tmp/sr_eval_acc_XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(log_path, sizeof(log_path), "%s/shop.csv", dir);
    char *argv[] = {(char *)sr_test_bin(),
                    "simulate",
                    "--preset",
                    (char *)preset,
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

static void setup(void)
{
    simulate("default");
}

static void setup_retail(void)
{
    simulate("retail");
}

static void teardown(void)
{
    unlink(log_path);
    rmdir(dir);
}

static const char *const baselines[] = {"pop", "pop-decay", "recency", "cooc"};

static double hr(json_t *root, const char *model)
{
    json_t *v = json_object_get(json_object_get(json_object_get(root, "models"), model), "hr");
    cr_assert(json_is_number(v), "no models.%s.hr", model);
    return json_number_value(v);
}

static void check_ahead(const char *protocol)
{
    char *argv[] = {(char *)sr_test_bin(),
                    "eval",
                    "--data",
                    log_path,
                    "--protocol",
                    (char *)protocol,
                    "--every",
                    "5",
                    "--k",
                    "10",
                    "--json",
                    NULL};
    char *out = NULL;
    cr_assert_eq(sr_test_run(argv, &out, 120000), 0, "eval failed");
    json_error_t err;
    json_t *root = json_loads(out, 0, &err);
    cr_assert_not_null(root, "not JSON: %s", err.text);
    free(out);
    double s = hr(root, "streamrec");
    for (int m = 0; m < 4; m++) {
        double b = hr(root, baselines[m]);
        cr_expect_gt(s, b, "%s: streamrec HR@10 %.4f not ahead of %s %.4f", protocol, s,
                     baselines[m], b);
    }
    json_decref(root);
}

Test(eval_accuracy, streamrec_ahead_discovery, .init = setup, .fini = teardown, .timeout = 300)
{
    check_ahead("discovery");
}

Test(eval_accuracy, streamrec_ahead_all, .init = setup, .fini = teardown, .timeout = 300)
{
    check_ahead("all");
}

Test(eval_accuracy, retail_ahead_discovery, .init = setup_retail, .fini = teardown, .timeout = 300)
{
    check_ahead("discovery");
}

Test(eval_accuracy, retail_ahead_all, .init = setup_retail, .fini = teardown, .timeout = 300)
{
    check_ahead("all");
}
