/* `streamrec serve`: the HTTP ranker.  Options and signals only; the server
 * is ranker/sr_serve.h. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cmd_util.h"
#include "sr_cmd.h"
#include "sr_config.h"
#include "sr_log.h"
#include "sr_serve.h"

extern char **environ;

static volatile sig_atomic_t serve_stop;

static void on_signal(int sig)
{
    (void)sig;
    serve_stop = 1;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: streamrec serve [-c FILE] [-X key=value ...]\n"
                 "\n"
                 "HTTP/JSON ranker on http.listen (default 127.0.0.1:8080), reading the model\n"
                 "state from Redis (redis.url, redis.prefix) and following its item update\n"
                 "stream.  Endpoints (docs/API.md):\n"
                 "  GET  /v1/recommend?user=U&k=10&exclude=none|purchased|seen\n"
                 "  POST /v1/rank        {\"user\":\"U\",\"items\":[\"a\",\"b\"]}\n"
                 "  GET  /v1/similar?item=I&k=10\n"
                 "  GET  /v1/popular?k=10\n"
                 "  GET  /healthz        200 when Redis is reachable and items are loaded\n"
                 "  GET  /metrics        Prometheus text\n"
                 "Limits: ranker.k.max, ranker.candidates.max, ranker.body.max, ranker.id.max;\n"
                 "workers: ranker.threads.  Publishes a metrics snapshot (component \"ranker\")\n"
                 "to topic.metrics every metrics.interval.ms unless metrics.enable=false.\n"
                 "Prints \"listening on http://HOST:PORT\" on stdout once ready; stops on\n"
                 "SIGINT/SIGTERM.\n");
}

int sr_cmd_serve(int argc, char **argv)
{
    char err[512];
    sr_conf_t *conf = sr_cmd_conf(&argc, argv, environ, err, sizeof(err));
    if (!conf) {
        fprintf(stderr, "streamrec serve: %s\n", err);
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            sr_conf_destroy(conf);
            return 0;
        }
        fprintf(stderr, "streamrec serve: unknown option '%s'\n", argv[i]);
        usage(stderr);
        sr_conf_destroy(conf);
        return 2;
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    sr_serve_t *s = sr_serve_start(conf, err, sizeof(err));
    if (!s) {
        fprintf(stderr, "streamrec serve: %s\n", err);
        sr_conf_destroy(conf);
        return 1;
    }
    const char *listen = sr_conf_str(conf, "http.listen");
    const char *colon = strrchr(listen, ':');
    printf("listening on http://%.*s:%d\n", (int)(colon - listen), listen, sr_serve_port(s));
    fflush(stdout);
    sr_log(SR_LOG_INFO, "serve: listening on port %d", sr_serve_port(s));
    /* A short sleep, not pause(): a signal landing between the test and
     * pause() would otherwise be lost. */
    while (!serve_stop) {
        struct timespec ts = {0, 100000000};
        nanosleep(&ts, NULL);
    }
    sr_log(SR_LOG_INFO, "serve: stopping");
    sr_serve_stop(s);
    sr_conf_destroy(conf);
    return 0;
}
