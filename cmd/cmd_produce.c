/* `streamrec produce`: send an event log (CSV or JSON lines) to the events
 * topic.  Options and signals only; the work is producers/sr_produce.h. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd_util.h"
#include "sr_cmd.h"
#include "sr_config.h"
#include "sr_produce.h"

extern char **environ;

static volatile sig_atomic_t produce_stop;

static void on_signal(int sig)
{
    (void)sig;
    produce_stop = 1;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: streamrec produce [-c FILE] [-X key=value ...] [--in FILE|-]\n"
            "                         [--format csv|jsonl|auto] [--rate N] [--max N]\n"
            "\n"
            "Sends shop events to topic.events on kafka.bootstrap.servers (key = user id,\n"
            "idempotent producer), from an event log CSV (ts_ms,user,item,event) or JSON\n"
            "lines ({\"user\":\"u1\",\"item\":\"i9\",\"event\":\"click\",\"ts_ms\":...,\n"
            "\"event_id\":...,\"session\":...,\"query\":...,\"value\":...}; ts_ms absent =\n"
            "now, event_id absent = a random 128-bit id).  Bad lines are reported on\n"
            "stderr as FILE:LINE: reason and skipped.  Progress goes to stderr every\n"
            "second; a final summary (sent, delivered, bad, failed) at the end.\n"
            "\n"
            "  --in FILE        input file, '-' for stdin (default '-')\n"
            "  --format F       csv, jsonl or auto (default auto: JSON if the first line\n"
            "                   starts with '{')\n"
            "  --rate N         events per second (default 0 = as fast as possible)\n"
            "  --max N          stop after N events (default 0 = the whole input)\n"
            "  --quiet          no progress lines\n"
            "\n"
            "Exit status: 0 when every sent event was delivered; 1 when some were not\n"
            "(or Kafka could not be reached); 2 on usage errors.\n");
}

int sr_cmd_produce(int argc, char **argv)
{
    char errstr[512];
    int status;
    sr_conf_t *conf = sr_cmd_begin(&argc, argv, usage, &status);
    if (!conf) return status;
    sr_produce_opts_t o = {.format = SR_PRODUCE_AUTO, .name = "-", .report = stderr,
                           .progress_ms = 1000, .flush_timeout_ms = 30000, .stop = &produce_stop};
    const char *in_path = "-";
    int rc = 2;
    for (int i = 1; i < argc; i++) {
        const char *v;
        long long n;
        int m;
        if ((m = sr_cmd_opt(argc, argv, &i, "--in", &v)) != 0) {
            if (m < 0) goto out;
            in_path = v;
        } else if ((m = sr_cmd_opt(argc, argv, &i, "--format", &v)) != 0) {
            if (m < 0) goto out;
            if (sr_produce_format_parse(v, &o.format) != 0) {
                fprintf(stderr, "streamrec produce: --format: expected csv, jsonl or auto, got '%s'\n", v);
                goto out;
            }
        } else if ((m = sr_cmd_opt(argc, argv, &i, "--rate", &v)) != 0) {
            if (m < 0 || sr_cmd_opt_int("produce", "--rate", v, 0, 100000000, &n) < 0) goto out;
            o.rate = (double)n;
        } else if ((m = sr_cmd_opt(argc, argv, &i, "--max", &v)) != 0) {
            if (m < 0 || sr_cmd_opt_int("produce", "--max", v, 0, INT64_MAX, &n) < 0) goto out;
            o.max_events = (uint64_t)n;
        } else if (strcmp(argv[i], "--quiet") == 0) {
            o.progress_ms = 0;
        } else {
            fprintf(stderr, "streamrec produce: unknown option '%s'\n", argv[i]);
            usage(stderr);
            goto out;
        }
    }
    FILE *in = stdin;
    if (strcmp(in_path, "-") != 0) {
        in = fopen(in_path, "r");
        if (!in) {
            fprintf(stderr, "streamrec produce: %s: %s\n", in_path, strerror(errno));
            rc = 1;
            goto out;
        }
    }
    o.name = in_path;
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    sr_produce_stats_t st;
    int err = sr_produce_run(conf, in, &o, &st, errstr, sizeof(errstr));
    if (in != stdin) fclose(in);
    printf("sent %" PRIu64 " delivered %" PRIu64 " bad %" PRIu64 " failed %" PRIu64 "\n", st.sent,
           st.delivered, st.bad, st.failed);
    if (err) fprintf(stderr, "streamrec produce: %s\n", errstr);
    rc = err ? 1 : 0;
out:
    sr_conf_destroy(conf);
    return rc;
}
