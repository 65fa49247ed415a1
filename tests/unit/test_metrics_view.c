/* sr_metrics_view: snapshots in, latest-per-instance JSON and rates out. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.pb-c.h"
#include "sr_err.h"
#include "sr_metrics_view.h"

static size_t pack(const char *comp, const char *inst, int64_t ts, int64_t in, int64_t applied,
                   uint8_t *buf, size_t size)
{
    Streamrec__V1__MetricsSnapshot s = STREAMREC__V1__METRICS_SNAPSHOT__INIT;
    Streamrec__V1__PartitionLag l0 = STREAMREC__V1__PARTITION_LAG__INIT;
    Streamrec__V1__PartitionLag l1 = STREAMREC__V1__PARTITION_LAG__INIT;
    Streamrec__V1__PartitionLag *lags[] = {&l0, &l1};
    Streamrec__V1__Quantiles fr = STREAMREC__V1__QUANTILES__INIT;
    s.component = (char *)comp;
    s.instance = (char *)inst;
    s.ts_ms = ts;
    s.events_in = in;
    s.events_applied = applied;
    s.events_duplicate = 2;
    s.events_invalid = 3;
    l0.partition = 0;
    l0.lag = 5;
    l1.partition = 1;
    l1.lag = 7;
    s.n_lag = 2;
    s.lag = lags;
    fr.p50 = 4.5;
    fr.p99 = 30.0;
    fr.count = 10;
    s.freshness_ms = &fr;
    s.flushes = 9;
    cr_assert(streamrec__v1__metrics_snapshot__get_packed_size(&s) <= size);
    return streamrec__v1__metrics_snapshot__pack(&s, buf);
}

static json_t *view_json(sr_metrics_view_t *v)
{
    char *txt = sr_metrics_view_json(v, 100000);
    cr_assert_not_null(txt);
    json_error_t err;
    json_t *j = json_loads(txt, 0, &err);
    cr_assert_not_null(j, "invalid JSON: %s in %s", err.text, txt);
    free(txt);
    return j;
}

static int64_t jint(json_t *o, const char *path1, const char *path2, const char *key)
{
    json_t *x = json_object_get(json_object_get(json_object_get(o, path1), path2), key);
    cr_assert(json_is_integer(x), "%s/%s/%s missing", path1, path2, key);
    return json_integer_value(x);
}

Test(metrics_view, keeps_latest_snapshot_per_instance)
{
    uint8_t buf[512];
    sr_metrics_view_t *v = sr_metrics_view_new();
    cr_assert_eq(sr_metrics_view_add(v, buf, pack("trainer", "h:1", 1000, 10, 8, buf, sizeof buf)), 0);
    cr_assert_eq(sr_metrics_view_add(v, buf, pack("trainer", "h:1", 2000, 30, 28, buf, sizeof buf)), 0);
    cr_assert_eq(sr_metrics_view_add(v, buf, pack("trainer", "h:2", 1500, 1, 1, buf, sizeof buf)), 0);
    cr_assert_eq(sr_metrics_view_count(v), 2);
    json_t *j = view_json(v);
    cr_assert_eq(jint(j, "components", "trainer/h:1", "events_applied"), 28);
    cr_assert_eq(jint(j, "components", "trainer/h:1", "events_duplicate"), 2);
    cr_assert_eq(jint(j, "components", "trainer/h:1", "lag_total"), 12);
    cr_assert_eq(jint(j, "components", "trainer/h:2", "events_in"), 1);
    cr_assert_eq(jint(j, "totals", "trainer", "events_applied"), 29);
    cr_assert_eq(jint(j, "totals", "trainer", "instances"), 2);
    cr_assert_eq(json_integer_value(json_object_get(j, "messages")), 3);
    json_decref(j);
    sr_metrics_view_destroy(v);
}

Test(metrics_view, rate_is_counter_delta_over_time)
{
    uint8_t buf[512];
    sr_metrics_view_t *v = sr_metrics_view_new();
    sr_metrics_view_add(v, buf, pack("trainer", "a", 1000, 100, 100, buf, sizeof buf));
    sr_metrics_view_add(v, buf, pack("trainer", "a", 3000, 500, 300, buf, sizeof buf));
    json_t *j = view_json(v);
    json_t *c = json_object_get(json_object_get(j, "components"), "trainer/a");
    cr_assert_float_eq(json_real_value(json_object_get(c, "rate_in")), 200.0, 1e-9);
    cr_assert_float_eq(json_real_value(json_object_get(c, "rate_applied")), 100.0, 1e-9);
    cr_assert_float_eq(json_real_value(json_object_get(json_object_get(c, "freshness_ms"), "p99")),
                       30.0, 1e-9);
    json_decref(j);
    sr_metrics_view_destroy(v);
}

Test(metrics_view, older_snapshot_does_not_replace_newer)
{
    uint8_t buf[512];
    sr_metrics_view_t *v = sr_metrics_view_new();
    sr_metrics_view_add(v, buf, pack("ranker", "r", 5000, 50, 50, buf, sizeof buf));
    sr_metrics_view_add(v, buf, pack("ranker", "r", 4000, 40, 40, buf, sizeof buf));
    json_t *j = view_json(v);
    cr_assert_eq(jint(j, "components", "ranker/r", "events_in"), 50);
    json_decref(j);
    sr_metrics_view_destroy(v);
}

Test(metrics_view, garbage_is_counted_not_kept)
{
    sr_metrics_view_t *v = sr_metrics_view_new();
    const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 0x01};
    cr_assert_eq(sr_metrics_view_add(v, junk, sizeof junk), SR_ERR_PARSE);
    uint8_t buf[512];
    /* Decodes, but names no component. */
    cr_assert_eq(sr_metrics_view_add(v, buf, pack("", "x", 1, 1, 1, buf, sizeof buf)), SR_ERR_PARSE);
    cr_assert_eq(sr_metrics_view_count(v), 0);
    json_t *j = view_json(v);
    cr_assert_eq(json_integer_value(json_object_get(j, "bad")), 2);
    json_decref(j);
    sr_metrics_view_destroy(v);
}

Test(metrics_view, instance_count_is_bounded)
{
    uint8_t buf[512];
    char inst[32];
    sr_metrics_view_t *v = sr_metrics_view_new();
    for (int i = 0; i < SR_METRICS_VIEW_MAX; i++) {
        snprintf(inst, sizeof inst, "i%d", i);
        cr_assert_eq(sr_metrics_view_add(v, buf, pack("sim", inst, 1, 1, 1, buf, sizeof buf)), 0);
    }
    cr_assert_eq(sr_metrics_view_add(v, buf, pack("sim", "one-more", 1, 1, 1, buf, sizeof buf)),
                 SR_ERR_FULL);
    cr_assert_eq(sr_metrics_view_count(v), SR_METRICS_VIEW_MAX);
    sr_metrics_view_destroy(v);
}

Test(metrics_view, render_shows_counters)
{
    uint8_t buf[512];
    sr_metrics_view_t *v = sr_metrics_view_new();
    sr_metrics_view_add(v, buf, pack("trainer", "h:1", 1000, 1234, 1200, buf, sizeof buf));
    char *txt = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&txt, &len);
    sr_metrics_view_render(v, f, 2000);
    fclose(f);
    cr_assert_not_null(strstr(txt, "trainer"));
    cr_assert_not_null(strstr(txt, "in 1234"));
    cr_assert_not_null(strstr(txt, "applied 1200"));
    free(txt);
    sr_metrics_view_destroy(v);
}

Test(metrics_view, destroy_null_is_noop)
{
    sr_metrics_view_destroy(NULL);
    sr_metrics_reader_destroy(NULL);
}
