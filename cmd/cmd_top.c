/* `streamrec top`: the live terminal view of the metrics topic, and, with
 * `--once --json`, the latest snapshot of every component as one JSON
 * object for scripts and tests.  Option parsing only: the reading and
 * rendering live in consumers/sr_metrics_view.h. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sr_cmd.h"
#include "sr_time.h"
#include "cmd_util.h"
#include "sr_config.h"
#include "sr_log.h"
#include "sr_metrics_view.h"

extern char **environ;

static volatile sig_atomic_t top_stop;

static void on_signal(int sig)
{
    (void)sig;
    top_stop = 1;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: streamrec top [-c FILE] [-X key=value ...] [--once] [--json]\n"
            "\n"
            "Shows the pipeline's metrics (topic.metrics on kafka.bootstrap.servers):\n"
            "per trainer events in/applied/duplicate/invalid and their rates, consumer\n"
            "lag, live HR@K/NDCG@K, freshness p50/p99, flushes, memory; per ranker\n"
            "requests, errors, latency p50/p99 and stream lag.  Refreshes every second\n"
            "until Ctrl-C.\n"
            "\n"
            "  --once           read the topic from the beginning to its end, print the\n"
            "                   latest snapshot of every component once and exit\n"
            "  --json           print JSON (one object per refresh, one line each)\n"
            "  --interval MS    refresh interval (default 1000)\n"
            "  --timeout MS     --once: give up after MS (default 15000); also how long\n"
            "                   to wait for the topic to exist\n"
            "\n"
            "Exit status: 0, 1 when Kafka or the topic cannot be reached, 2 on usage.\n");
}

int sr_cmd_top(int argc, char **argv)
{
    char errstr[512];
    int status;
    sr_conf_t *conf = sr_cmd_begin(&argc, argv, usage, &status);
    if (!conf) return status;

    enum { O_ONCE = 1, O_JSON, O_INTERVAL, O_TIMEOUT };
    static const struct option opts[] = {
        {"once", no_argument, NULL, O_ONCE},
        {"json", no_argument, NULL, O_JSON},
        {"interval", required_argument, NULL, O_INTERVAL},
        {"timeout", required_argument, NULL, O_TIMEOUT},
        {NULL, 0, NULL, 0},
    };
    int once = 0, json = 0;
    long interval = 1000, timeout = 15000;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        char *end;
        switch (c) {
        case O_ONCE: once = 1; break;
        case O_JSON: json = 1; break;
        case O_INTERVAL:
        case O_TIMEOUT: {
            errno = 0;
            long v = strtol(optarg, &end, 10);
            if (errno || *end || end == optarg || v < 10 || v > 86400000) {
                fprintf(stderr, "streamrec top: --%s: expected milliseconds in [10, 86400000], "
                                "got '%s'\n", c == O_INTERVAL ? "interval" : "timeout", optarg);
                sr_conf_destroy(conf);
                return 2;
            }
            if (c == O_INTERVAL) interval = v; else timeout = v;
            break;
        }
        default:
            usage(stderr);
            sr_conf_destroy(conf);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "streamrec top: unexpected argument '%s'\n", argv[optind]);
        sr_conf_destroy(conf);
        return 2;
    }

    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    int rc = 0;
    sr_metrics_view_t *view = sr_metrics_view_new();
    sr_metrics_reader_t *reader =
        view ? sr_metrics_reader_new(conf, once, 1000, (int)timeout, errstr, sizeof(errstr)) : NULL;
    if (!reader) {
        fprintf(stderr, "streamrec top: %s\n", view ? errstr : "out of memory");
        rc = 1;
        goto out;
    }
    if (once) {
        long long deadline = sr_mono_ms() + timeout;
        while (!top_stop && !sr_metrics_reader_at_end(reader)) {
            if (sr_mono_ms() > deadline) {
                fprintf(stderr, "streamrec top: the end of the topic was not reached within "
                                "%ld ms; printing what was read\n", timeout);
                break;
            }
            if (sr_metrics_reader_poll(reader, view, 100) < 0) {
                rc = 1;
                break;
            }
        }
        if (json) {
            char *s = sr_metrics_view_json(view, sr_wall_ms());
            if (s) printf("%s\n", s);
            free(s);
        } else {
            sr_metrics_view_render(view, stdout, sr_wall_ms());
        }
        goto out;
    }
    int tty = !json && isatty(STDOUT_FILENO);
    long long next = 0;
    while (!top_stop) {
        if (sr_metrics_reader_poll(reader, view, 100) < 0) {
            rc = 1;
            break;
        }
        if (sr_mono_ms() < next) continue;
        next = sr_mono_ms() + interval;
        if (json) {
            char *s = sr_metrics_view_json(view, sr_wall_ms());
            if (s) printf("%s\n", s);
            free(s);
        } else {
            if (tty) fputs("\033[H\033[2J", stdout);
            sr_metrics_view_render(view, stdout, sr_wall_ms());
        }
        fflush(stdout);
    }
out:
    sr_metrics_reader_destroy(reader);
    sr_metrics_view_destroy(view);
    sr_conf_destroy(conf);
    return rc;
}
