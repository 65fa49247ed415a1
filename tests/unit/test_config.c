/* Unit tests of the configuration (common/sr_config.h): types and ranges,
 * the four-level precedence, file/env/flag error reporting, kafka.*
 * passthrough, the address parsers, and freshness of docs/CONFIGURATION.md. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config_table.h"
#include "sr_config.h"
#include "sr_err.h"

static char errstr[1024];

/* Writes text to a fresh temp file; returns its malloc'd path. */
static char *temp_file(const char *text, size_t len)
{
    char *path = strdup("/tmp/sr_test_config_XXXXXX");
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    cr_assert_eq(write(fd, text, len), (ssize_t)len);
    close(fd);
    return path;
}

static char *temp_conf(const char *text)
{
    return temp_file(text, strlen(text));
}

static int set(sr_conf_t *c, const char *k, const char *v)
{
    errstr[0] = '\0';
    return sr_conf_set(c, k, v, errstr, sizeof(errstr));
}

/* ---- defaults ---- */

Test(config, defaults_match_table)
{
    sr_conf_t *c = sr_conf_new();
    cr_assert_str_eq(sr_conf_str(c, "log.level"), "info");
    cr_assert_str_eq(sr_conf_str(c, "redis.url"), "redis://127.0.0.1:6379");
    cr_assert_str_eq(sr_conf_str(c, "redis.prefix"), "sr");
    cr_assert_str_eq(sr_conf_str(c, "topic.events"), "events");
    cr_assert_str_eq(sr_conf_str(c, "topic.dlq"), "events.dlq");
    cr_assert_str_eq(sr_conf_str(c, "topic.metrics"), "metrics");
    cr_assert_str_eq(sr_conf_str(c, "http.listen"), "127.0.0.1:8080");
    cr_assert_str_eq(sr_conf_str(c, "metrics.instance"), "");
    cr_assert_eq(sr_conf_int(c, "model.dim"), 32);
    cr_assert_eq(sr_conf_int(c, "trainer.min.ts.ms"), 946684800000LL);
    cr_assert_float_eq(sr_conf_double(c, "model.lr"), 0.05, 1e-12);
    cr_assert_eq(sr_conf_bool(c, "metrics.enable"), 1);
    sr_conf_destroy(c);
}

Test(config, every_default_is_valid_and_reported_by_foreach)
{
    /* sr_conf_new aborts on a bad default; re-setting each default through
     * the public path must also succeed. */
    sr_conf_t *c = sr_conf_new();
    for (size_t i = 0; i < sr_conf_table_len; i++)
        cr_assert_eq(set(c, sr_conf_table[i].name, sr_conf_table[i].def), 0, "%s: %s",
                     sr_conf_table[i].name, errstr);
    sr_conf_destroy(c);
}

Test(config, destroy_null_is_noop)
{
    sr_conf_destroy(NULL);
}

/* ---- types and ranges ---- */

Test(config, int_parses_and_trims)
{
    sr_conf_t *c = sr_conf_new();
    cr_assert_eq(set(c, "model.dim", " 48 "), 0, "%s", errstr);
    cr_assert_eq(sr_conf_int(c, "model.dim"), 48);
    sr_conf_destroy(c);
}

static int find_value(const char *key, const char *value, void *opaque)
{
    const char **kv = opaque;
    if (strcmp(key, kv[0]) == 0) kv[1] = value;
    return 0;
}

Test(config, int_is_stored_in_one_spelling)
{
    /* "010" must not reach a consumer that reads it as octal. */
    sr_conf_t *c = sr_conf_new();
    cr_assert_eq(set(c, "model.seed", "+010"), 0, "%s", errstr);
    const char *kv[2] = {"model.seed", NULL};
    sr_conf_foreach(c, "model.", find_value, kv);
    cr_assert_str_eq(kv[1], "10");
    sr_conf_destroy(c);
}

Test(config, int_rejects_non_integers)
{
    sr_conf_t *c = sr_conf_new();
    const char *bad[] = {"abc", "12x", "", "1.5", "0x10", " "};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_eq(set(c, "model.dim", bad[i]), SR_ERR_PARSE, "'%s'", bad[i]);
    cr_assert_eq(sr_conf_int(c, "model.dim"), 32, "a failed set keeps the old value");
    sr_conf_destroy(c);
}

Test(config, int_range_is_inclusive)
{
    sr_conf_t *c = sr_conf_new();
    cr_assert_eq(set(c, "model.dim", "1"), 0);
    cr_assert_eq(set(c, "model.dim", "1024"), 0);
    cr_assert_eq(set(c, "model.dim", "0"), SR_ERR_RANGE);
    cr_assert(strstr(errstr, "model.dim") && strstr(errstr, "[1, 1024]"), "%s", errstr);
    cr_assert_eq(set(c, "model.dim", "1025"), SR_ERR_RANGE);
    cr_assert_eq(set(c, "model.dim", "99999999999999999999"), SR_ERR_RANGE);
    cr_assert_eq(sr_conf_int(c, "model.dim"), 1024);
    sr_conf_destroy(c);
}

Test(config, double_parses_decimal_and_exponent)
{
    sr_conf_t *c = sr_conf_new();
    cr_assert_eq(set(c, "model.lr", "1e-3"), 0, "%s", errstr);
    cr_assert_float_eq(sr_conf_double(c, "model.lr"), 1e-3, 1e-15);
    cr_assert_eq(set(c, "model.lr", ".5"), 0, "%s", errstr);
    cr_assert_float_eq(sr_conf_double(c, "model.lr"), 0.5, 1e-15);
    sr_conf_destroy(c);
}

Test(config, double_rejects_hex_nan_inf_and_junk)
{
    sr_conf_t *c = sr_conf_new();
    const char *bad[] = {"0x10", "nan", "inf", "-inf", "1.0f", "", "1..2", "e"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_eq(set(c, "model.lr", bad[i]), SR_ERR_PARSE, "'%s' -> %s", bad[i], errstr);
    cr_assert_float_eq(sr_conf_double(c, "model.lr"), 0.05, 1e-12);
    sr_conf_destroy(c);
}

Test(config, double_range)
{
    sr_conf_t *c = sr_conf_new();
    cr_assert_eq(set(c, "model.lr", "-0.1"), SR_ERR_RANGE);
    cr_assert_eq(set(c, "model.lr", "10.5"), SR_ERR_RANGE);
    cr_assert_eq(set(c, "model.lr", "1e999"), SR_ERR_RANGE);
    cr_assert(strstr(errstr, "model.lr"), "%s", errstr);
    sr_conf_destroy(c);
}

Test(config, bool_spellings)
{
    sr_conf_t *c = sr_conf_new();
    const char *f[] = {"false", "0", "no", "off", "FALSE", "Off"};
    const char *t[] = {"true", "1", "yes", "on", "TRUE", "Yes"};
    for (size_t i = 0; i < 6; i++) {
        cr_assert_eq(set(c, "metrics.enable", f[i]), 0, "%s", f[i]);
        cr_assert_eq(sr_conf_bool(c, "metrics.enable"), 0, "%s", f[i]);
        cr_assert_eq(set(c, "metrics.enable", t[i]), 0, "%s", t[i]);
        cr_assert_eq(sr_conf_bool(c, "metrics.enable"), 1, "%s", t[i]);
    }
    cr_assert_eq(set(c, "metrics.enable", "maybe"), SR_ERR_PARSE);
    cr_assert_eq(set(c, "metrics.enable", "2"), SR_ERR_PARSE);
    sr_conf_destroy(c);
}

Test(config, string_validators_refuse)
{
    sr_conf_t *c = sr_conf_new();
    cr_assert_eq(set(c, "log.level", "verbose"), SR_ERR_INVAL);
    cr_assert(strstr(errstr, "log.level"), "%s", errstr);
    cr_assert_eq(set(c, "topic.events", "a b"), SR_ERR_INVAL);
    cr_assert_eq(set(c, "topic.events", ""), SR_ERR_INVAL);
    cr_assert_eq(set(c, "http.listen", "nohost"), SR_ERR_INVAL);
    cr_assert_eq(set(c, "redis.url", "http://x:1"), SR_ERR_INVAL);
    cr_assert_eq(set(c, "redis.prefix", "a{b}"), SR_ERR_INVAL);
    cr_assert_eq(set(c, "trainer.group.id", ""), SR_ERR_INVAL);
    cr_assert_eq(set(c, "metrics.instance", "a\nb"), SR_ERR_PARSE);
    cr_assert_eq(set(c, "log.level", "debug"), 0);
    cr_assert_eq(set(c, "http.listen", "[::1]:0"), 0, "%s", errstr);
    cr_assert_eq(set(c, "metrics.instance", ""), 0);
    sr_conf_destroy(c);
}

Test(config, unknown_key_is_an_error_with_a_hint)
{
    sr_conf_t *c = sr_conf_new();
    cr_assert_eq(set(c, "redis.ulr", "x"), SR_ERR_NOTFOUND);
    cr_assert(strstr(errstr, "redis.ulr") && strstr(errstr, "did you mean redis.url"), "%s",
              errstr);
    cr_assert_eq(set(c, "totally.unrelated.thing", "x"), SR_ERR_NOTFOUND);
    cr_assert(strstr(errstr, "unknown property"), "%s", errstr);
    cr_assert_eq(set(c, "kafka.", "x"), SR_ERR_NOTFOUND, "kafka. needs a name");
    sr_conf_destroy(c);
}

Test(config, wrong_type_getter_aborts, .signal = SIGABRT)
{
    sr_conf_t *c = sr_conf_new();
    sr_conf_int(c, "redis.url");
}

Test(config, unknown_key_getter_aborts, .signal = SIGABRT)
{
    sr_conf_t *c = sr_conf_new();
    sr_conf_str(c, "no.such.key");
}

/* ---- kafka.* passthrough ---- */

static int collect(const char *key, const char *value, void *opaque)
{
    char *buf = opaque;
    size_t len = strlen(buf);
    snprintf(buf + len, 1024 - len, "%s=%s;", key, value);
    return 0;
}

Test(config, kafka_keys_pass_through_unchecked_in_insertion_order)
{
    sr_conf_t *c = sr_conf_new();
    cr_assert_eq(set(c, "kafka.bootstrap.servers", "h:1"), 0);
    cr_assert_eq(set(c, "kafka.no.such.librdkafka.prop", "anything at all"), 0);
    cr_assert_eq(set(c, "kafka.bootstrap.servers", "h:2"), 0, "re-set replaces in place");
    cr_assert_str_eq(sr_conf_str(c, "kafka.bootstrap.servers"), "h:2");
    cr_assert_null(sr_conf_str(c, "kafka.acks"));
    char buf[1024] = "";
    sr_conf_foreach(c, "kafka.", collect, buf);
    cr_assert_str_eq(buf, "kafka.bootstrap.servers=h:2;kafka.no.such.librdkafka.prop=anything "
                          "at all;");
    sr_conf_destroy(c);
}

static int stop_at_third(const char *key, const char *value, void *opaque)
{
    (void)key;
    (void)value;
    return ++*(int *)opaque == 3 ? 7 : 0;
}

Test(config, foreach_prefix_and_early_stop)
{
    sr_conf_t *c = sr_conf_new();
    char buf[1024] = "";
    sr_conf_foreach(c, "topic.", collect, buf);
    cr_assert_str_eq(buf, "topic.events=events;topic.dlq=events.dlq;topic.metrics=metrics;");
    int calls = 0;
    cr_assert_eq(sr_conf_foreach(c, "", stop_at_third, &calls), 7);
    cr_assert_eq(calls, 3);
    sr_conf_destroy(c);
}

/* ---- config files ---- */

Test(config, file_comments_blanks_quotes)
{
    char *p = temp_conf("# a comment\n\n   # indented comment\n"
                        "model.dim = 16\n"
                        "  redis.prefix=shop  \r\n"
                        "metrics.instance = \"\"\n"
                        "topic.events = \"clicks\"\n"
                        "kafka.sasl.password = p#ss=word\n"
                        "log.level = warn"); /* no final newline */
    sr_conf_t *c = sr_conf_new();
    cr_assert_eq(sr_conf_load_file(c, p, errstr, sizeof(errstr)), 0, "%s", errstr);
    cr_assert_eq(sr_conf_int(c, "model.dim"), 16);
    cr_assert_str_eq(sr_conf_str(c, "redis.prefix"), "shop");
    cr_assert_str_eq(sr_conf_str(c, "metrics.instance"), "");
    cr_assert_str_eq(sr_conf_str(c, "topic.events"), "clicks");
    cr_assert_str_eq(sr_conf_str(c, "kafka.sasl.password"), "p#ss=word");
    cr_assert_str_eq(sr_conf_str(c, "log.level"), "warn");
    sr_conf_destroy(c);
    unlink(p);
    free(p);
}

static void expect_file_error(const char *text, int want_rc, const char *want_line,
                              const char *want_word)
{
    char *p = temp_conf(text);
    sr_conf_t *c = sr_conf_new();
    int rc = sr_conf_load_file(c, p, errstr, sizeof(errstr));
    cr_assert_eq(rc, want_rc, "rc %d, %s", rc, errstr);
    char prefix[256];
    snprintf(prefix, sizeof(prefix), "%s:%s: ", p, want_line);
    cr_assert_eq(strncmp(errstr, prefix, strlen(prefix)), 0, "want '%s...', got '%s'", prefix,
                 errstr);
    cr_assert(strstr(errstr, want_word), "want '%s' in '%s'", want_word, errstr);
    sr_conf_destroy(c);
    unlink(p);
    free(p);
}

Test(config, file_unknown_key_names_file_line_and_key)
{
    expect_file_error("model.dim = 8\n# c\nmodel.dimm = 8\n", SR_ERR_NOTFOUND, "3", "model.dimm");
}

Test(config, file_bad_value_names_file_line_and_key)
{
    expect_file_error("\nmodel.negatives = many\n", SR_ERR_PARSE, "2", "model.negatives");
}

Test(config, file_range_error_names_file_line_and_key)
{
    expect_file_error("redis.timeout.ms = 0\n", SR_ERR_RANGE, "1", "redis.timeout.ms");
}

Test(config, file_line_without_equals)
{
    expect_file_error("model.dim = 8\nmodel.dim 8\n", SR_ERR_PARSE, "2", "key = value");
}

Test(config, file_missing_key)
{
    expect_file_error(" = 8\n", SR_ERR_PARSE, "1", "missing key");
}

Test(config, file_stops_at_first_error_keeping_earlier_lines)
{
    char *p = temp_conf("model.dim = 8\nbogus = 1\nmodel.negatives = 9\n");
    sr_conf_t *c = sr_conf_new();
    cr_assert_lt(sr_conf_load_file(c, p, errstr, sizeof(errstr)), 0);
    cr_assert_eq(sr_conf_int(c, "model.dim"), 8);
    cr_assert_eq(sr_conf_int(c, "model.negatives"), 4);
    sr_conf_destroy(c);
    unlink(p);
    free(p);
}

Test(config, file_missing_is_io_error_naming_path)
{
    sr_conf_t *c = sr_conf_new();
    cr_assert_eq(sr_conf_load_file(c, "/nonexistent/sr.conf", errstr, sizeof(errstr)), SR_ERR_IO);
    cr_assert(strstr(errstr, "/nonexistent/sr.conf"), "%s", errstr);
    sr_conf_destroy(c);
}

/* ---- environment ---- */

Test(config, env_name_mapping)
{
    char buf[128];
    cr_assert_eq(sr_conf_env_name("redis.url", buf, sizeof(buf)), 0);
    cr_assert_str_eq(buf, "STREAMREC_REDIS_URL");
    cr_assert_eq(sr_conf_env_name("model.recent_half_life_s", buf, sizeof(buf)), 0);
    cr_assert_str_eq(buf, "STREAMREC_MODEL_RECENT_HALF_LIFE_S");
    cr_assert_eq(sr_conf_env_name("a-b.c", buf, sizeof(buf)), 0);
    cr_assert_str_eq(buf, "STREAMREC_A_B_C");
    cr_assert_eq(sr_conf_env_name("redis.url", buf, 8), SR_ERR_RANGE);
}

Test(config, env_names_are_unique_across_the_table)
{
    char a[256], b[256];
    for (size_t i = 0; i < sr_conf_table_len; i++)
        for (size_t j = i + 1; j < sr_conf_table_len; j++) {
            sr_conf_env_name(sr_conf_table[i].name, a, sizeof(a));
            sr_conf_env_name(sr_conf_table[j].name, b, sizeof(b));
            cr_assert_str_neq(a, b, "%s and %s share %s", sr_conf_table[i].name,
                              sr_conf_table[j].name, a);
        }
}

Test(config, env_sets_table_and_kafka_keys)
{
    char *envp[] = {"PATH=/bin",
                    "STREAMREC_REDIS_URL=redis://h:7000/2",
                    "STREAMREC_MODEL_RECENT_HALF_LIFE_S=60",
                    "STREAMREC_KAFKA_BOOTSTRAP_SERVERS=b:9092",
                    "STREAMREC_BIN=/x/streamrec",
                    "streamrec_model_dim=1",
                    NULL};
    sr_conf_t *c = sr_conf_new();
    cr_assert_eq(sr_conf_load_env(c, envp, errstr, sizeof(errstr)), 0, "%s", errstr);
    cr_assert_str_eq(sr_conf_str(c, "redis.url"), "redis://h:7000/2");
    cr_assert_float_eq(sr_conf_double(c, "model.recent_half_life_s"), 60, 1e-12);
    cr_assert_str_eq(sr_conf_str(c, "kafka.bootstrap.servers"), "b:9092");
    cr_assert_eq(sr_conf_int(c, "model.dim"), 32, "lower case is not ours");
    sr_conf_destroy(c);
}

Test(config, env_unknown_variable_is_an_error_naming_it)
{
    char *envp[] = {"STREAMREC_MODEL_DIMM=3", NULL};
    sr_conf_t *c = sr_conf_new();
    cr_assert_eq(sr_conf_load_env(c, envp, errstr, sizeof(errstr)), SR_ERR_NOTFOUND);
    cr_assert(strstr(errstr, "STREAMREC_MODEL_DIMM"), "%s", errstr);
    sr_conf_destroy(c);
}

Test(config, env_bad_value_names_variable_and_key)
{
    char *envp[] = {"STREAMREC_MODEL_DIM=big", NULL};
    sr_conf_t *c = sr_conf_new();
    cr_assert_eq(sr_conf_load_env(c, envp, errstr, sizeof(errstr)), SR_ERR_PARSE);
    cr_assert(strstr(errstr, "STREAMREC_MODEL_DIM") && strstr(errstr, "model.dim"), "%s", errstr);
    sr_conf_destroy(c);
}

/* ---- arguments and precedence ---- */

typedef struct args {
    int argc;
    char *argv[32];
} args_t;

static int from_args(sr_conf_t *c, args_t *a, char **envp)
{
    a->argc = 0;
    while (a->argv[a->argc])
        a->argc++;
    return sr_conf_from_args(c, &a->argc, a->argv, envp, errstr, sizeof(errstr));
}

Test(config, precedence_flag_env_file_default_all_four)
{
    char *p = temp_conf("model.dim = 10\nmodel.negatives = 5\nmodel.cooc_max = 7\n");
    char *envp[] = {"STREAMREC_MODEL_DIM=20", "STREAMREC_MODEL_NEGATIVES=6", NULL};
    args_t a = {0, {"train", "-X", "model.dim=30", "-c", p, NULL}};
    sr_conf_t *c = sr_conf_new();
    cr_assert_eq(from_args(c, &a, envp), 0, "%s", errstr);
    cr_assert_eq(sr_conf_int(c, "model.dim"), 30, "flag beats env and file");
    cr_assert_eq(sr_conf_int(c, "model.negatives"), 6, "env beats file");
    cr_assert_eq(sr_conf_int(c, "model.cooc_max"), 7, "file beats default");
    cr_assert_eq(sr_conf_int(c, "model.recent_max"), 20, "default");
    sr_conf_destroy(c);
    unlink(p);
    free(p);
}

Test(config, source_records_the_winning_layer)
{
    char *p = temp_conf("model.dim = 10\nmodel.negatives = 5\nmodel.cooc_max = 7\n");
    char *envp[] = {"STREAMREC_MODEL_NEGATIVES=6", "STREAMREC_KAFKA_ACKS=all", NULL};
    args_t a = {0, {"train", "-X", "model.dim=30", "-c", p, NULL}};
    sr_conf_t *c = sr_conf_new();
    cr_assert_eq(from_args(c, &a, envp), 0, "%s", errstr);
    cr_assert_eq(sr_conf_source(c, "model.dim"), SR_CONF_SRC_FLAG);
    cr_assert_eq(sr_conf_source(c, "model.negatives"), SR_CONF_SRC_ENV);
    cr_assert_eq(sr_conf_source(c, "kafka.acks"), SR_CONF_SRC_ENV);
    cr_assert_eq(sr_conf_source(c, "model.cooc_max"), SR_CONF_SRC_FILE);
    cr_assert_eq(sr_conf_source(c, "model.recent_max"), SR_CONF_SRC_DEFAULT);
    cr_assert_eq(sr_conf_source(c, "kafka.unset"), SR_CONF_SRC_DEFAULT);
    cr_assert_eq(set(c, "model.recent_max", "3"), 0);
    cr_assert_eq(sr_conf_source(c, "model.recent_max"), SR_CONF_SRC_API);
    cr_assert_str_eq(sr_conf_src_name(SR_CONF_SRC_ENV), "env");
    sr_conf_destroy(c);
    unlink(p);
    free(p);
}

Test(config, precedence_flag_over_env)
{
    char *envp[] = {"STREAMREC_TOPIC_EVENTS=from-env", NULL};
    args_t a = {0, {"x", "-Xtopic.events=from-flag", NULL}};
    sr_conf_t *c = sr_conf_new();
    cr_assert_eq(from_args(c, &a, envp), 0, "%s", errstr);
    cr_assert_str_eq(sr_conf_str(c, "topic.events"), "from-flag");
    sr_conf_destroy(c);
}

Test(config, precedence_flag_over_file)
{
    char *p = temp_conf("topic.events = from-file\n");
    args_t a = {0, {"x", "-X", "topic.events=from-flag", "--config", p, NULL}};
    sr_conf_t *c = sr_conf_new();
    cr_assert_eq(from_args(c, &a, NULL), 0, "%s", errstr);
    cr_assert_str_eq(sr_conf_str(c, "topic.events"), "from-flag");
    sr_conf_destroy(c);
    unlink(p);
    free(p);
}

Test(config, precedence_env_over_file)
{
    char *p = temp_conf("topic.events = from-file\n");
    char *envp[] = {"STREAMREC_TOPIC_EVENTS=from-env", NULL};
    char opt[512];
    snprintf(opt, sizeof(opt), "--config=%s", p);
    args_t a = {0, {"x", opt, NULL}};
    sr_conf_t *c = sr_conf_new();
    cr_assert_eq(from_args(c, &a, envp), 0, "%s", errstr);
    cr_assert_str_eq(sr_conf_str(c, "topic.events"), "from-env");
    sr_conf_destroy(c);
    unlink(p);
    free(p);
}

Test(config, precedence_file_over_default_and_later_file_wins)
{
    char *p1 = temp_conf("topic.events = one\nmodel.dim = 8\n");
    char *p2 = temp_conf("topic.events = two\n");
    args_t a = {0, {"x", "-c", p1, "-c", p2, NULL}};
    sr_conf_t *c = sr_conf_new();
    cr_assert_eq(from_args(c, &a, NULL), 0, "%s", errstr);
    cr_assert_str_eq(sr_conf_str(c, "topic.events"), "two");
    cr_assert_eq(sr_conf_int(c, "model.dim"), 8);
    sr_conf_destroy(c);
    unlink(p1);
    unlink(p2);
    free(p1);
    free(p2);
}

Test(config, later_flag_wins)
{
    args_t a = {0, {"x", "-X", "model.dim=8", "-X", "model.dim=9", NULL}};
    sr_conf_t *c = sr_conf_new();
    cr_assert_eq(from_args(c, &a, NULL), 0, "%s", errstr);
    cr_assert_eq(sr_conf_int(c, "model.dim"), 9);
    sr_conf_destroy(c);
}

Test(config, args_are_compacted_and_double_dash_stops)
{
    args_t a = {0,
                {"eval", "--data", "f.csv", "-X", "model.dim=8", "--k", "10", "--", "-X",
                 "model.dim=9", NULL}};
    sr_conf_t *c = sr_conf_new();
    cr_assert_eq(from_args(c, &a, NULL), 0, "%s", errstr);
    cr_assert_eq(a.argc, 8);
    const char *want[] = {"eval", "--data", "f.csv", "--k", "10", "--", "-X", "model.dim=9"};
    for (int i = 0; i < 8; i++)
        cr_assert_str_eq(a.argv[i], want[i]);
    cr_assert_null(a.argv[8]);
    cr_assert_eq(sr_conf_int(c, "model.dim"), 8);
    sr_conf_destroy(c);
}

Test(config, flag_without_equals_is_an_error)
{
    args_t a = {0, {"x", "-X", "model.dim", NULL}};
    sr_conf_t *c = sr_conf_new();
    cr_assert_eq(from_args(c, &a, NULL), SR_ERR_INVAL);
    cr_assert(strstr(errstr, "key=value"), "%s", errstr);
    sr_conf_destroy(c);
}

Test(config, option_missing_its_value_is_an_error)
{
    args_t a = {0, {"x", "-c", NULL}};
    sr_conf_t *c = sr_conf_new();
    cr_assert_eq(from_args(c, &a, NULL), SR_ERR_INVAL);
    cr_assert(strstr(errstr, "-c"), "%s", errstr);
    sr_conf_destroy(c);
}

Test(config, flag_error_names_key)
{
    args_t a = {0, {"x", "-X", "model.dim=-1", NULL}};
    sr_conf_t *c = sr_conf_new();
    cr_assert_eq(from_args(c, &a, NULL), SR_ERR_RANGE);
    cr_assert(strstr(errstr, "model.dim"), "%s", errstr);
    sr_conf_destroy(c);
}

Test(config, finalize_rejects_same_topic_twice)
{
    args_t a = {0, {"x", "-X", "topic.dlq=events", NULL}};
    sr_conf_t *c = sr_conf_new();
    cr_assert_eq(from_args(c, &a, NULL), SR_ERR_INVAL);
    cr_assert(strstr(errstr, "topic.events") && strstr(errstr, "topic.dlq"), "%s", errstr);
    sr_conf_destroy(c);
}

/* ---- address parsers ---- */

Test(config, redis_url_good)
{
    sr_redis_url_t u;
    cr_assert_eq(sr_redis_url_parse("redis://127.0.0.1:6379", &u, errstr, sizeof(errstr)), 0);
    cr_assert_str_eq(u.host, "127.0.0.1");
    cr_assert_eq(u.port, 6379);
    cr_assert_str_eq(u.password, "");
    cr_assert_eq(u.db, 0);

    cr_assert_eq(
        sr_redis_url_parse("redis://:s3cr%40t/x@cache.local:7000/5", &u, errstr, sizeof(errstr)), 0,
        "%s", errstr);
    cr_assert_str_eq(u.host, "cache.local");
    cr_assert_eq(u.port, 7000);
    cr_assert_str_eq(u.password, "s3cr@t/x");
    cr_assert_eq(u.db, 5);

    cr_assert_eq(sr_redis_url_parse("redis://redis", &u, errstr, sizeof(errstr)), 0);
    cr_assert_str_eq(u.host, "redis");
    cr_assert_eq(u.port, 6379, "default port");

    cr_assert_eq(sr_redis_url_parse("redis://[::1]:6380/", &u, errstr, sizeof(errstr)), 0, "%s",
                 errstr);
    cr_assert_str_eq(u.host, "::1");
    cr_assert_eq(u.port, 6380);
    cr_assert_eq(u.db, 0);
}

Test(config, redis_url_bad)
{
    const char *bad[] = {"",
                         "http://h:1",
                         "rediss://h:1",
                         "redis://",
                         "redis://:6379",
                         "redis://h:0",
                         "redis://h:65536",
                         "redis://h:abc",
                         "redis://h:1/db",
                         "redis://h:1/-1",
                         "redis://user:pw@h:1",
                         "redis://:p%zz@h:1",
                         "redis://h:1?timeout=1",
                         "redis://::1:6379",
                         "redis://[::1:6379",
                         "redis://h h:1"};
    sr_redis_url_t u;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        errstr[0] = '\0';
        cr_assert_eq(sr_redis_url_parse(bad[i], &u, errstr, sizeof(errstr)), SR_ERR_PARSE, "%s",
                     bad[i]);
        cr_assert_neq(errstr[0], '\0', "%s has a reason", bad[i]);
    }
}

Test(config, hostport)
{
    char host[64];
    int port;
    cr_assert_eq(sr_hostport_parse("0.0.0.0:80", host, sizeof(host), &port, errstr, sizeof(errstr)),
                 0);
    cr_assert_str_eq(host, "0.0.0.0");
    cr_assert_eq(port, 80);
    cr_assert_eq(sr_hostport_parse("[::]:0", host, sizeof(host), &port, errstr, sizeof(errstr)), 0);
    cr_assert_str_eq(host, "::");
    cr_assert_eq(port, 0);
    const char *bad[] = {"", "host", ":80", "h:", "h:65536", "h:8x", "a:b:c", "[::1]", "[::1]x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_eq(sr_hostport_parse(bad[i], host, sizeof(host), &port, errstr, sizeof(errstr)),
                     SR_ERR_PARSE, "%s", bad[i]);
}

/* ---- docs ---- */

Test(config, configuration_md_is_fresh)
{
    char *gen = NULL;
    size_t gen_len = 0;
    FILE *m = open_memstream(&gen, &gen_len);
    sr_conf_write_markdown(m);
    fclose(m);

    FILE *f = fopen(SR_SOURCE_DIR "/docs/CONFIGURATION.md", "r");
    cr_assert_not_null(f, "docs/CONFIGURATION.md is missing: run `make docs`");
    char *cur = malloc(gen_len + 2);
    size_t cur_len = fread(cur, 1, gen_len + 1, f);
    fclose(f);
    cr_assert(cur_len == gen_len && memcmp(cur, gen, gen_len) == 0,
              "docs/CONFIGURATION.md is stale: run `make docs` and commit it");
    free(cur);
    free(gen);
}

Test(config, markdown_lists_every_property)
{
    char *gen = NULL;
    size_t gen_len = 0;
    FILE *m = open_memstream(&gen, &gen_len);
    sr_conf_write_markdown(m);
    fclose(m);
    char want[256];
    for (size_t i = 0; i < sr_conf_table_len; i++) {
        snprintf(want, sizeof(want), "| `%s` |", sr_conf_table[i].name);
        cr_assert(strstr(gen, want), "%s missing", sr_conf_table[i].name);
    }
    free(gen);
}
