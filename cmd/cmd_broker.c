/* `streamrec broker`: the embedded development Kafka broker (librdkafka's
 * mock cluster, producers/sr_broker.h).  Options and signals only. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cmd_util.h"
#include "sr_broker.h"
#include "sr_cmd.h"
#include "sr_config.h"
#include "sr_log.h"

extern char **environ;

static volatile sig_atomic_t broker_stop;

static void on_signal(int sig)
{
    (void)sig;
    broker_stop = 1;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: streamrec broker [-c FILE] [-X key=value ...] [--partitions N] [--brokers N]\n"
            "\n"
            "Runs an embedded development Kafka broker (librdkafka's mock cluster) on\n"
            "127.0.0.1 until SIGTERM or Ctrl-C.  Prints its bootstrap address\n"
            "(host:port) as the first line on stdout, and creates the topics\n"
            "topic.events, topic.dlq and topic.metrics (default events, events.dlq,\n"
            "metrics).  Point clients at it with -X kafka.bootstrap.servers=ADDRESS.\n"
            "\n"
            "  --partitions N   partitions per topic (default: broker.partitions = 4)\n"
            "  --brokers N      mock brokers in the cluster (default 1)\n"
            "\n"
            "Limits (librdkafka 2.0.2 mock cluster) - for development and tests only:\n"
            "  - each partition keeps only about 5 MB (5 MiB of record batches) or\n"
            "    100,000 record batches, whichever comes first, and silently drops\n"
            "    older ones: use enough partitions and do not rely on old history;\n"
            "  - a fetch finds its offset by walking the partition's record batches\n"
            "    from the oldest (no index), so the broker's CPU grows with what it\n"
            "    holds: 50,000 events/s in small batches (linger.ms 2, 8 partitions)\n"
            "    took a whole core after about 15 s and consumers fell behind;\n"
            "    restart it between long runs or produce in larger batches;\n"
            "  - nothing is kept on disk: all topics, messages, consumer groups and\n"
            "    committed offsets vanish when it stops;\n"
            "  - the port is chosen by the kernel at every start (the mock cluster\n"
            "    cannot listen on a given port): read it from the first line;\n"
            "  - no TLS, SASL or ACLs.  Use a real Kafka for anything else\n"
            "    (deploy/README.md).\n");
}

int sr_cmd_broker(int argc, char **argv)
{
    char errstr[512];
    int status;
    sr_conf_t *conf = sr_cmd_begin(&argc, argv, usage, &status);
    if (!conf) return status;
    long long partitions = sr_conf_int(conf, "broker.partitions"), brokers = 1;
    for (int i = 1; i < argc; i++) {
        const char *v;
        int m;
        if ((m = sr_cmd_opt(argc, argv, &i, "--partitions", &v)) != 0) {
            if (m < 0 || sr_cmd_opt_int("broker", "--partitions", v, 1, 1024, &partitions) < 0)
                goto usage_error;
        } else if ((m = sr_cmd_opt(argc, argv, &i, "--brokers", &v)) != 0) {
            if (m < 0 || sr_cmd_opt_int("broker", "--brokers", v, 1, 16, &brokers) < 0)
                goto usage_error;
        } else {
            fprintf(stderr, "streamrec broker: unknown option '%s'\n", argv[i]);
            usage(stderr);
            goto usage_error;
        }
    }

    const char *topics[] = {sr_conf_str(conf, "topic.events"), sr_conf_str(conf, "topic.dlq"),
                            sr_conf_str(conf, "topic.metrics")};
    /* Block the stop signals before any librdkafka thread exists (they
     * inherit the mask, so only this thread takes them), then wait in
     * sigsuspend: a SIGTERM arriving right after the address is printed
     * is never lost. */
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigset_t stop, old;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    sigprocmask(SIG_BLOCK, &stop, &old);

    sr_broker_t *b = sr_broker_new((int)brokers, (int)partitions, topics, 3, errstr, sizeof(errstr));
    if (!b) {
        fprintf(stderr, "streamrec broker: %s\n", errstr);
        sr_conf_destroy(conf);
        sigprocmask(SIG_SETMASK, &old, NULL);
        return 1;
    }
    printf("%s\n", sr_broker_bootstraps(b));
    fflush(stdout);
    sr_log(SR_LOG_INFO, "broker: %s, topics %s, %s, %s with %lld partitions (in memory; about 5 MB "
                        "per partition kept)",
           sr_broker_bootstraps(b), topics[0], topics[1], topics[2], partitions);
    while (!broker_stop) sigsuspend(&old);
    sr_log(SR_LOG_INFO, "broker: stopping");
    sr_broker_destroy(b);
    sr_conf_destroy(conf);
    sigprocmask(SIG_SETMASK, &old, NULL);
    return 0;

usage_error:
    sr_conf_destroy(conf);
    return 2;
}
