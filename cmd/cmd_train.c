/* `streamrec train`: option parsing, signals and dispatch to the trainer
 * library (consumers/sr_trainer.h), which holds all the logic. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd_util.h"
#include "sr_cmd.h"
#include "sr_config.h"
#include "sr_err.h"
#include "sr_log.h"
#include "sr_model.h"
#include "sr_trainer.h"

extern char **environ;

/* Set by SIGINT/SIGTERM; the trainer checks it between batches. */
static volatile sig_atomic_t train_stop;

static void on_signal(int sig)
{
    (void)sig;
    train_stop = 1;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: streamrec train [-c FILE] [-X key=value ...] [options]\n"
            "\n"
            "Consumes topic.events as a member of consumer group trainer.group.id,\n"
            "learns every event (evaluate-then-learn), and every\n"
            "trainer.flush.interval.ms writes the touched model state and the\n"
            "partition offsets to Redis (redis.url) in one atomic step.  Bad\n"
            "messages go to topic.dlq with the reason in the `sr-error` header.\n"
            "Start as many as there are partitions; SIGINT/SIGTERM flush and stop.\n"
            "\n"
            "  --exit-when-idle MS  stop after MS without a message (once assigned)\n"
            "  --max-events N       stop after N applied events\n"
            "  --snapshot-out FILE  write the in-memory model snapshot on exit\n"
            "  --instance NAME      instance name for logs and metrics\n"
            "  --json               print the final counters as JSON on stdout\n"
            "\n"
            "Kafka: -X kafka.bootstrap.servers=HOST:PORT (any kafka.* property is\n"
            "passed to librdkafka).  Exit status: 0 clean stop, 1 error, 2 usage.\n");
}

struct mp_ctx {
    sr_model_params_t *p;
    char *errstr;
    size_t errstr_size;
};

static int apply_model_param(const char *key, const char *value, void *opaque)
{
    struct mp_ctx *c = opaque;
    int rc = sr_model_params_set(c->p, key + 6, value);
    if (rc == SR_ERR_NOTFOUND) {
        /* The table spells "init.std", the model may spell "init_std". */
        char alt[128];
        snprintf(alt, sizeof(alt), "%s", key + 6);
        for (char *q = alt; *q; q++)
            if (*q == '.' && strncmp(alt, "weight.", 7) != 0) *q = '_';
        rc = sr_model_params_set(c->p, alt, value);
        if (rc == SR_ERR_NOTFOUND) {
            sr_log(SR_LOG_WARN, "train: %s is not a model parameter of this build; ignored", key);
            return 0;
        }
    }
    if (rc != 0) {
        snprintf(c->errstr, c->errstr_size, "%s=%s: %s", key, value, sr_strerror(rc));
        return -1;
    }
    return 0;
}

int sr_cmd_train(int argc, char **argv)
{
    char errstr[512];
    sr_conf_t *conf = sr_cmd_conf(&argc, argv, environ, errstr, sizeof(errstr));
    if (!conf) {
        fprintf(stderr, "streamrec train: %s\n", errstr);
        return 2;
    }
    sr_trainer_opts_t o;
    sr_trainer_opts_init(&o);
    const char *snapshot = NULL;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        const char *v;
        int m;
        long long n;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            sr_conf_destroy(conf);
            return 0;
        } else if ((m = sr_cmd_opt(argc, argv, &i, "--exit-when-idle", &v)) != 0) {
            if (m < 0 || sr_cmd_opt_int("train", "--exit-when-idle", v, 1, 1LL << 40, &n) < 0)
                goto usage_err;
            o.exit_when_idle_ms = n;
        } else if ((m = sr_cmd_opt(argc, argv, &i, "--max-events", &v)) != 0) {
            if (m < 0 || sr_cmd_opt_int("train", "--max-events", v, 1, 1LL << 62, &n) < 0)
                goto usage_err;
            o.max_events = n;
        } else if ((m = sr_cmd_opt(argc, argv, &i, "--snapshot-out", &v)) != 0) {
            if (m < 0) goto usage_err;
            snapshot = v;
        } else if ((m = sr_cmd_opt(argc, argv, &i, "--instance", &v)) != 0) {
            if (m < 0) goto usage_err;
            o.instance = v;
        } else if (strcmp(argv[i], "--json") == 0) {
            json = 1;
        } else {
            fprintf(stderr, "streamrec train: unknown option '%s'\n", argv[i]);
            goto usage_err;
        }
    }

    sr_model_params_t params;
    sr_model_params_init(&params);
    struct mp_ctx mc = {&params, errstr, sizeof(errstr)};
    if (sr_conf_foreach(conf, "model.", apply_model_param, &mc) != 0) {
        fprintf(stderr, "streamrec train: %s\n", errstr);
        sr_conf_destroy(conf);
        return 2;
    }
    sr_trainer_t *t = sr_trainer_new(conf, &params, &o, errstr, sizeof(errstr));
    sr_conf_destroy(conf);
    if (!t) {
        fprintf(stderr, "streamrec train: %s\n", errstr);
        return 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    int rc = sr_trainer_run(t, &train_stop);
    if (snapshot && sr_trainer_save_snapshot(t, snapshot) != 0) {
        fprintf(stderr, "streamrec train: cannot write snapshot %s\n", snapshot);
        if (rc == 0) rc = SR_ERR_IO;
    }
    sr_trainer_stats_t s;
    sr_trainer_get_stats(t, &s);
    if (json)
        printf("{\"events_in\":%lld,\"events_applied\":%lld,\"events_duplicate\":%lld,"
               "\"events_invalid\":%lld,\"flushes\":%lld,\"flush_retries\":%lld,"
               "\"flush_tx_aborts\":%lld,\"flushes_by_script\":%lld,"
               "\"rebalances\":%lld,\"items_delta_merged\":%lld,\"users_loaded\":%lld,"
               "\"items_loaded\":%lld,\"evaluated\":%lld,\"live_hr\":%.6f,\"live_ndcg\":%.6f,"
               "\"freshness_p50_ms\":%.1f,\"freshness_p99_ms\":%.1f,"
               "\"arrival_p50_ms\":%.1f,\"arrival_p99_ms\":%.1f,\"elapsed_s\":%.3f,"
               "\"flush_s\":%.3f,\"flush_wait_s\":%.3f,\"events_while_flushing\":%lld,"
               "\"load_s\":%.3f,\"active_s\":%.3f,\"events_per_s\":%.1f}\n",
               (long long)s.events_in, (long long)s.events_applied,
               (long long)s.events_duplicate, (long long)s.events_invalid,
               (long long)s.flushes, (long long)s.flush_retries,
               (long long)s.flush_tx_aborts, (long long)s.flushes_by_script,
               (long long)s.rebalances,
               (long long)s.items_delta_merged, (long long)s.users_loaded,
               (long long)s.items_loaded,
               (long long)s.evaluated, s.live_hr, s.live_ndcg, s.freshness_p50_ms,
               s.freshness_p99_ms, s.arrival_p50_ms, s.arrival_p99_ms, s.elapsed_s, s.flush_s, s.flush_wait_s,
               (long long)s.events_while_flushing, s.load_s, s.active_s,
               s.active_s > 0 ? (double)s.events_applied / s.active_s : 0.0);
    sr_trainer_destroy(t);
    if (rc != 0) fprintf(stderr, "streamrec train: %s\n", sr_strerror(rc));
    return rc == 0 ? 0 : 1;

usage_err:
    usage(stderr);
    sr_conf_destroy(conf);
    return 2;
}
