/* Start-up plumbing shared by the commands (see cmd_util.h): configuration
 * from argv and environment, Kafka properties, librdkafka logging, option
 * matching.  Lives in cmd/ because it prints and sets process-wide state. */
#include "cmd_util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sr_err.h"
#include "sr_log.h"

extern char **environ;

sr_conf_t *sr_cmd_conf(int *argc, char **argv, char *const *envp, char *errstr, size_t errstr_size)
{
    sr_conf_t *conf = sr_conf_new();
    if (!conf) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    if (sr_conf_from_args(conf, argc, argv, envp, errstr, errstr_size) < 0) {
        sr_conf_destroy(conf);
        return NULL;
    }
    /* The table's validator already accepted the name. */
    sr_log_set_level(sr_log_level_parse(sr_conf_str(conf, "log.level")));
    return conf;
}

typedef struct model_apply {
    sr_model_params_t *p;
    char *errstr;
    size_t errstr_size;
} model_apply_t;

static int apply_model(const char *key, const char *value, void *opaque)
{
    model_apply_t *a = opaque;
    int rc = sr_model_params_set(a->p, key + strlen("model."), value);
    if (rc < 0)
        snprintf(a->errstr, a->errstr_size, "%s: the model refused '%s': %s", key, value,
                 sr_strerror(rc));
    return rc;
}

int sr_cmd_model_params(const sr_conf_t *conf, sr_model_params_t *p, char *errstr,
                        size_t errstr_size)
{
    sr_model_params_init(p);
    model_apply_t a = {p, errstr, errstr_size};
    return sr_conf_foreach(conf, "model.", apply_model, &a);
}

typedef struct kafka_apply {
    rd_kafka_conf_t *kc;
    char *errstr;
    size_t errstr_size;
} kafka_apply_t;

static int apply_kafka(const char *key, const char *value, void *opaque)
{
    kafka_apply_t *a = opaque;
    char why[512];
    const char *name = key + strlen("kafka.");
    if (rd_kafka_conf_set(a->kc, name, value, why, sizeof(why)) != RD_KAFKA_CONF_OK) {
        snprintf(a->errstr, a->errstr_size, "%s: %s", key, why);
        return SR_ERR_KAFKA;
    }
    return 0;
}

int sr_cmd_kafka_conf(const sr_conf_t *conf, rd_kafka_conf_t *kc, char *errstr, size_t errstr_size)
{
    rd_kafka_conf_set_log_cb(kc, sr_log_rdkafka_cb);
    kafka_apply_t a = {kc, errstr, errstr_size};
    return sr_conf_foreach(conf, "kafka.", apply_kafka, &a);
}

void sr_log_rdkafka_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    /* librdkafka uses syslog levels; ours are the same numbers, but notice
     * (5) would otherwise fall between warn and info. */
    int l = level <= SR_LOG_ERROR  ? SR_LOG_ERROR
            : level <= SR_LOG_WARN ? SR_LOG_WARN
            : level <= SR_LOG_INFO ? SR_LOG_INFO
                                   : SR_LOG_DEBUG;
    sr_log(l, "rdkafka %s %s: %s", rk ? rd_kafka_name(rk) : "-", fac ? fac : "-", buf);
}

sr_conf_t *sr_cmd_begin(int *argc, char **argv, void (*usage)(FILE *), int *status)
{
    for (int i = 1; i < *argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            *status = 0;
            return NULL;
        }
    char errstr[1024];
    sr_conf_t *conf = sr_cmd_conf(argc, argv, environ, errstr, sizeof(errstr));
    if (!conf) {
        fprintf(stderr, "streamrec %s: %s\n", argv[0], errstr);
        *status = 2;
    }
    return conf;
}

int sr_cmd_opt(int argc, char **argv, int *i, const char *name, const char **value)
{
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (strncmp(a, name, n) != 0) return 0;
    if (a[n] == '=') {
        *value = a + n + 1;
        return 1;
    }
    if (a[n] != '\0') return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "streamrec %s: %s needs a value\n", argv[0], name);
        return -1;
    }
    *value = argv[++*i];
    return 1;
}

int sr_cmd_opt_int(const char *cmd, const char *name, const char *value, long long min,
                   long long max, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(value, &end, 10);
    if (end == value || *end || errno == ERANGE || v < min || v > max) {
        fprintf(stderr, "streamrec %s: %s: expected an integer from %lld to %lld, got '%s'\n", cmd,
                name, min, max, value);
        return -1;
    }
    *out = v;
    return 0;
}
