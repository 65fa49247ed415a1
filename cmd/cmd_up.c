/* `streamrec up`: the whole pipeline on one machine for a first run
 * (DESIGN.md §8).  It is pure orchestration of other `streamrec` commands:
 * start the embedded broker and a private redis-server on free loopback
 * ports (unless kafka.bootstrap.servers / redis.url name existing ones), a
 * trainer, the ranker and the simulator, print where everything is, show
 * the live metrics view, and on Ctrl-C stop exactly what it started, by
 * PID, in reverse order.
 *
 * Children get their own process group (so the terminal's Ctrl-C reaches
 * only `up`, which then stops them in order: traffic first, the broker
 * last) and PR_SET_PDEATHSIG (so even a SIGKILLed `up` leaves nothing
 * behind).  Their stdout and stderr go to log files in a run directory,
 * because the metrics view owns the terminal. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sr_cmd.h"
#include "sr_time.h"
#include "cmd_util.h"
#include "sr_config.h"
#include "sr_log.h"
#include "sr_net.h"
#include "sr_metrics_view.h"

extern char **environ;

static volatile sig_atomic_t up_stop;

static void on_signal(int sig)
{
    (void)sig;
    up_stop = 1;
}

enum { MAX_CHILDREN = 8, MAX_FWD = 64 };

typedef struct child {
    const char *name;
    pid_t pid;
    char log[600];
} child_t;

typedef struct up {
    char self[PATH_MAX];
    char rundir[512]; /* short enough that every path below it fits */
    child_t kids[MAX_CHILDREN];
    int nkids;
    /* -c / -X arguments of `up`, passed on to every streamrec child so one
     * config file reaches all components. */
    char *fwd[MAX_FWD];
    int nfwd;
} up_t;

static void usage(FILE *out)
{
    fprintf(out,
            "usage: streamrec up [-c FILE] [-X key=value ...] [options]\n"
            "\n"
            "Runs the whole pipeline locally: the embedded broker (`streamrec broker`),\n"
            "a private redis-server (no persistence), a trainer, the ranker and the\n"
            "simulator, then shows the live metrics view.  Ctrl-C stops everything it\n"
            "started.  Given -X kafka.bootstrap.servers=HOST:PORT or -X redis.url=URL\n"
            "(or in -c FILE / STREAMREC_* environment), it uses those instead of\n"
            "starting its own.  -c and -X are passed on to every component.\n"
            "\n"
            "  --rate N         simulator events per second (default 200; 0: no simulator)\n"
            "  --partitions N   partitions per topic of the embedded broker (default:\n"
            "                   broker.partitions)\n"
            "  --no-top         print status lines instead of the live view\n"
            "  --duration S     stop by itself after S seconds (default: until Ctrl-C)\n"
            "  --dir DIR        run directory for logs (default: a new /tmp/streamrec-up.*)\n"
            "\n"
            "The ranker listens on http.listen (default 127.0.0.1:8080).  The embedded\n"
            "broker keeps about 100,000 messages per partition in memory, nothing on disk.\n");
}

/* ---- children ---------------------------------------------------------- */

/* Starts argv with stdout to out_path (NULL: the log) and stderr to the
 * child's log.  Returns 0 or -1 with a message printed. */
static int spawn(up_t *up, const char *name, char *const argv[], const char *out_path)
{
    if (up->nkids == MAX_CHILDREN) return -1;
    child_t *c = &up->kids[up->nkids];
    c->name = name;
    snprintf(c->log, sizeof(c->log), "%s/%s.log", up->rundir, name);
    int logfd = open(c->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int outfd = out_path ? open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644) : -1;
    if (logfd < 0 || (out_path && outfd < 0)) {
        fprintf(stderr, "streamrec up: cannot create %s: %s\n", out_path ? out_path : c->log,
                strerror(errno));
        if (logfd >= 0) close(logfd);
        if (outfd >= 0) close(outfd);
        return -1;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "streamrec up: fork: %s\n", strerror(errno));
        close(logfd);
        if (outfd >= 0) close(outfd);
        return -1;
    }
    if (pid == 0) {
        /* Own process group: a terminal Ctrl-C goes to `up` only.  Dies
         * with `up` even when `up` is SIGKILLed. */
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent) _exit(1);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGPIPE, SIG_DFL);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0) dup2(devnull, STDIN_FILENO);
        dup2(outfd >= 0 ? outfd : logfd, STDOUT_FILENO);
        dup2(logfd, STDERR_FILENO);
        execvp(argv[0], argv);
        dprintf(STDERR_FILENO, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(logfd);
    if (outfd >= 0) close(outfd);
    c->pid = pid;
    up->nkids++;
    return 0;
}

/* 1 while the child runs; otherwise reaps it, prints why it ended and
 * returns 0. */
static int child_alive(child_t *c)
{
    if (c->pid <= 0) return 0;
    int status;
    pid_t r = waitpid(c->pid, &status, WNOHANG);
    if (r == 0) return 1;
    if (r == c->pid) {
        if (WIFEXITED(status))
            fprintf(stderr, "streamrec up: %s (pid %d) exited with status %d; log: %s\n", c->name,
                    (int)c->pid, WEXITSTATUS(status), c->log);
        else
            fprintf(stderr, "streamrec up: %s (pid %d) killed by signal %d; log: %s\n", c->name,
                    (int)c->pid, WTERMSIG(status), c->log);
        /* The last lines of its log usually say why. */
        FILE *f = fopen(c->log, "r");
        if (f) {
            char lines[5][512];
            int n = 0;
            while (fgets(lines[n % 5], sizeof(lines[0]), f)) n++;
            for (int i = n > 5 ? n - 5 : 0; i < n; i++) fprintf(stderr, "  | %s", lines[i % 5]);
            fclose(f);
        }
    }
    c->pid = -1;
    return 0;
}

/* SIGTERM, wait up to grace_ms, then SIGKILL; always reaps. */
static void child_stop(child_t *c, int grace_ms)
{
    if (c->pid <= 0) return;
    kill(c->pid, SIGTERM);
    long long deadline = sr_mono_ms() + grace_ms;
    int status;
    for (;;) {
        pid_t r = waitpid(c->pid, &status, WNOHANG);
        if (r == c->pid || (r < 0 && errno != EINTR)) break;
        if (sr_mono_ms() > deadline) {
            fprintf(stderr, "streamrec up: %s (pid %d) ignored SIGTERM for %d ms, killing\n",
                    c->name, (int)c->pid, grace_ms);
            kill(c->pid, SIGKILL);
            waitpid(c->pid, &status, 0);
            break;
        }
        usleep(10000);
    }
    c->pid = -1;
}

static void stop_all(up_t *up)
{
    for (int i = up->nkids - 1; i >= 0; i--) {
        if (up->kids[i].pid > 0) fprintf(stderr, "streamrec up: stopping %s (pid %d)\n",
                                         up->kids[i].name, (int)up->kids[i].pid);
        /* The trainer flushes to Redis on SIGTERM: give it time. */
        child_stop(&up->kids[i], 15000);
    }
}

/* A streamrec child: self, command, forwarded -c/-X, then extra. */
static int spawn_streamrec(up_t *up, const char *name, const char *cmd, char *const extra[],
                           const char *out_path)
{
    char *argv[MAX_FWD + 32];
    int n = 0;
    argv[n++] = up->self;
    argv[n++] = (char *)cmd;
    for (int i = 0; i < up->nfwd; i++) argv[n++] = up->fwd[i];
    for (int i = 0; extra && extra[i] && n < (int)(sizeof(argv) / sizeof(argv[0])) - 1; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    return spawn(up, name, argv, out_path);
}

/* ---- readiness probes --------------------------------------------------- */

/* Sends req to host:port and reads the answer into buf (NUL-terminated):
 * the first bytes only, or with whole set everything until the peer closes
 * (an HTTP/1.0 answer may come in several reads; a Redis PING's peer never
 * closes), the buffer is full or 1 s has passed. */
static int tcp_ask(const char *host, int port, const char *req, int whole, char *buf, size_t size)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &a.sin_addr) != 1) a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int rc = -1;
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        write(fd, req, strlen(req)) == (ssize_t)strlen(req)) {
        size_t n = 0;
        long long deadline = sr_mono_ms() + 1000;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        while (n + 1 < size) {
            int left = (int)(deadline - sr_mono_ms());
            if (left <= 0 || poll(&p, 1, left) != 1) break;
            ssize_t r = read(fd, buf + n, size - 1 - n);
            if (r <= 0) break;
            n += (size_t)r;
            if (!whole) break;
        }
        if (n > 0) {
            buf[n] = '\0';
            rc = 0;
        }
    }
    close(fd);
    return rc;
}

/* Waits until child c prints its first stdout line into path. */
static int wait_first_line(child_t *c, const char *path, char *line, size_t size,
                           int timeout_ms)
{
    long long deadline = sr_mono_ms() + timeout_ms;
    while (sr_mono_ms() < deadline && !up_stop) {
        FILE *f = fopen(path, "r");
        if (f) {
            char *got = fgets(line, (int)size, f);
            fclose(f);
            if (got && strchr(line, '\n')) {
                line[strcspn(line, "\r\n")] = '\0';
                return 0;
            }
        }
        if (!child_alive(c)) return -1;
        usleep(20000);
    }
    return -1;
}

/* Fills ex with the ids of the first three items of /v1/popular, waiting
 * up to timeout_ms for the ranker to have three; leaves ex as it is when it
 * does not.  Ids are simulator ids (no quotes or escapes to undo); a longer
 * or escaped one is skipped. */
static void example_items(const char *host, int port, char ex[3][64], int timeout_ms)
{
    long long deadline = sr_mono_ms() + timeout_ms;
    char buf[4096];
    while (sr_mono_ms() < deadline && !up_stop) {
        char got[3][64];
        int n = 0;
        if (tcp_ask(host, port, "GET /v1/popular?k=3 HTTP/1.0\r\n\r\n", 1, buf, sizeof(buf)) == 0) {
            const char *p = buf;
            while (n < 3 && (p = strstr(p, "\"item\":\""))) {
                p += 8;
                size_t len = strcspn(p, "\"\\");
                if (p[len] == '"' && len > 0 && len < sizeof(got[0])) {
                    memcpy(got[n], p, len);
                    got[n++][len] = '\0';
                }
                p += len;
            }
        }
        if (n == 3) {
            memcpy(ex, got, sizeof(got));
            return;
        }
        usleep(200000);
    }
}

static int wait_answer(child_t *c, const char *host, int port, const char *req, const char *want,
                       int timeout_ms)
{
    long long deadline = sr_mono_ms() + timeout_ms;
    char buf[256];
    while (sr_mono_ms() < deadline && !up_stop) {
        if (tcp_ask(host, port, req, 0, buf, sizeof(buf)) == 0 && strstr(buf, want)) return 0;
        if (c && !child_alive(c)) return -1;
        usleep(50000);
    }
    return -1;
}

/* ---- options ------------------------------------------------------------ */

/* Copies the -c/-X arguments so they can be forwarded to children; run
 * before sr_conf_from_args removes them from argv. */
static int collect_forward(up_t *up, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) break;
        int with_next = strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0 || strcmp(a, "-X") == 0;
        int joined = strncmp(a, "-X", 2) == 0 || strncmp(a, "--config=", 9) == 0;
        if (!with_next && !joined) continue;
        if (up->nfwd + 2 > MAX_FWD) {
            fprintf(stderr, "streamrec up: too many -c/-X options\n");
            return -1;
        }
        up->fwd[up->nfwd++] = argv[i];
        if (with_next && i + 1 < argc) up->fwd[up->nfwd++] = argv[++i];
    }
    return 0;
}

static int parse_int(const char *opt, const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "streamrec up: %s: expected an integer in [%ld, %ld], got '%s'\n", opt,
                lo, hi, s);
        return -1;
    }
    *out = v;
    return 0;
}

/* ---- the live view ------------------------------------------------------ */

static void show_status(const up_t *up, sr_metrics_view_t *view, int tty)
{
    if (tty) fputs("\033[H\033[2J", stdout);
    sr_metrics_view_render(view, stdout, sr_wall_ms());
    if (tty) {
        printf("logs: %s   Ctrl-C stops all %d processes\n", up->rundir, up->nkids);
    }
    fflush(stdout);
}

int sr_cmd_up(int argc, char **argv)
{
    static up_t up_s; /* cmd/ may keep process state; large, so not on the stack */
    up_t *up = &up_s;
    memset(up, 0, sizeof(*up));
    int rc = 1;
    sr_conf_t *conf = NULL;
    sr_metrics_reader_t *reader = NULL;
    sr_metrics_view_t *view = NULL;
    char errstr[512];

    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        }
    if (collect_forward(up, argc, argv) != 0) return 2;
    conf = sr_cmd_conf(&argc, argv, environ, errstr, sizeof(errstr));
    if (!conf) {
        fprintf(stderr, "streamrec up: %s\n", errstr);
        return 2;
    }

    enum { O_RATE = 1, O_PARTS, O_NOTOP, O_DURATION, O_DIR };
    static const struct option opts[] = {
        {"rate", required_argument, NULL, O_RATE},     {"partitions", required_argument, NULL, O_PARTS},
        {"no-top", no_argument, NULL, O_NOTOP},        {"duration", required_argument, NULL, O_DURATION},
        {"dir", required_argument, NULL, O_DIR},       {NULL, 0, NULL, 0},
    };
    long rate = 200, partitions = -1, duration = 0;
    int top = 1;
    const char *dir = NULL;
    int c;
    optind = 1;
    opterr = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case O_RATE:
            if (parse_int("--rate", optarg, 0, 10000000, &rate)) goto out_usage;
            break;
        case O_PARTS:
            if (parse_int("--partitions", optarg, 1, 1024, &partitions)) goto out_usage;
            break;
        case O_NOTOP: top = 0; break;
        case O_DURATION:
            if (parse_int("--duration", optarg, 1, 100000000, &duration)) goto out_usage;
            break;
        case O_DIR: dir = optarg; break;
        default: goto out_usage;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "streamrec up: unexpected argument '%s'\n", argv[optind]);
        goto out_usage;
    }

    ssize_t n = readlink("/proc/self/exe", up->self, sizeof(up->self) - 1);
    if (n <= 0) {
        fprintf(stderr, "streamrec up: cannot find my own binary: %s\n", strerror(errno));
        goto out;
    }
    up->self[n] = '\0';
    if (dir) {
        snprintf(up->rundir, sizeof(up->rundir), "%s", dir);
        if (mkdir(up->rundir, 0755) != 0 && errno != EEXIST) {
            fprintf(stderr, "streamrec up: mkdir %s: %s\n", dir, strerror(errno));
            goto out;
        }
    } else {
        const char *tmp = getenv("TMPDIR");
        snprintf(up->rundir, sizeof(up->rundir), "%s/streamrec-up.XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(up->rundir)) {
            fprintf(stderr, "streamrec up: mkdtemp %s: %s\n", up->rundir, strerror(errno));
            goto out;
        }
    }

    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    printf("streamrec up: logs in %s\n", up->rundir);
    fflush(stdout);

    /* 1. Kafka: the given cluster, or the embedded broker. */
    char bootstrap[512];
    const char *given_bs = sr_conf_str(conf, "kafka.bootstrap.servers");
    if (given_bs && *given_bs) {
        snprintf(bootstrap, sizeof(bootstrap), "%s", given_bs);
        printf("  kafka      %s (given)\n", bootstrap);
    } else {
        char out_path[600], parts[64];
        if (snprintf(out_path, sizeof(out_path), "%s/broker.out", up->rundir) >= (int)sizeof(out_path))
            goto out;
        snprintf(parts, sizeof(parts), "broker.partitions=%ld", partitions);
        char *extra[] = {"-X", parts, NULL};
        if (spawn_streamrec(up, "broker", "broker", partitions > 0 ? extra : NULL, out_path)) goto out;
        child_t *b = &up->kids[up->nkids - 1];
        if (wait_first_line(b, out_path, bootstrap, sizeof(bootstrap), 20000) != 0) {
            fprintf(stderr, "streamrec up: the broker did not print its address; log: %s\n", b->log);
            goto out;
        }
        printf("  broker     %s  pid %d\n", bootstrap, (int)b->pid);
    }
    fflush(stdout);

    /* 2. Redis: the given server, or a private one without persistence. */
    char redis_url[600];
    const char *given_redis = sr_conf_str(conf, "redis.url");
    /* Given by the user (file, env or flag), even when equal to the
     * default: then they mean a Redis that already runs there. */
    int redis_given = sr_conf_source(conf, "redis.url") != SR_CONF_SRC_DEFAULT;
    if (redis_given) {
        snprintf(redis_url, sizeof(redis_url), "%s", given_redis);
        printf("  redis      %s (given)\n", redis_url);
    } else {
        int ok = 0;
        for (int attempt = 0; attempt < 5 && !ok && !up_stop; attempt++) {
            int port = sr_net_free_port();
            char ports[16];
            snprintf(ports, sizeof(ports), "%d", port);
            char *argv_r[] = {"redis-server", "--port", ports, "--bind", "127.0.0.1",
                              "--save", "", "--appendonly", "no", "--daemonize", "no",
                              "--protected-mode", "yes", NULL};
            if (spawn(up, "redis", argv_r, NULL)) goto out;
            child_t *r = &up->kids[up->nkids - 1];
            if (wait_answer(r, "127.0.0.1", port, "PING\r\n", "+PONG", 10000) == 0) {
                snprintf(redis_url, sizeof(redis_url), "redis://127.0.0.1:%d", port);
                printf("  redis      %s  pid %d\n", redis_url, (int)r->pid);
                ok = 1;
            } else {
                child_stop(r, 1000); /* port taken meanwhile, or no redis-server */
                up->nkids--;
            }
        }
        if (!ok) {
            fprintf(stderr, "streamrec up: could not start redis-server (installed? "
                            "bash deploy/install-deps.sh); log: %s/redis.log\n", up->rundir);
            goto out;
        }
    }
    fflush(stdout);

    char xbs[600], xredis[700];
    snprintf(xbs, sizeof(xbs), "kafka.bootstrap.servers=%s", bootstrap);
    snprintf(xredis, sizeof(xredis), "redis.url=%s", redis_url);

    /* 3. The trainer. */
    {
        char *extra[] = {"-X", xbs, "-X", xredis, NULL};
        if (spawn_streamrec(up, "trainer", "train", extra, NULL)) goto out;
        printf("  trainer    pid %d\n", (int)up->kids[up->nkids - 1].pid);
    }

    /* 4. The ranker, on http.listen (a free port when that says port 0). */
    char listen_host[256], xlisten[400];
    int listen_port = 0;
    if (sr_hostport_parse(sr_conf_str(conf, "http.listen"), listen_host, sizeof(listen_host),
                          &listen_port, errstr, sizeof(errstr)) != 0) {
        fprintf(stderr, "streamrec up: http.listen: %s\n", errstr);
        goto out;
    }
    if (listen_port == 0) listen_port = sr_net_free_port();
    snprintf(xlisten, sizeof(xlisten), "http.listen=%s:%d", listen_host, listen_port);
    const char *probe_host = strcmp(listen_host, "0.0.0.0") == 0 || !strchr(listen_host, '.')
                                 ? "127.0.0.1"
                                 : listen_host;
    {
        char *extra[] = {"-X", xbs, "-X", xredis, "-X", xlisten, NULL};
        if (spawn_streamrec(up, "ranker", "serve", extra, NULL)) goto out;
        child_t *r = &up->kids[up->nkids - 1];
        if (wait_answer(r, probe_host, listen_port, "GET /healthz HTTP/1.0\r\n\r\n", "HTTP/1.", 20000)) {
            fprintf(stderr, "streamrec up: the ranker does not answer on %s:%d; log: %s\n",
                    probe_host, listen_port, r->log);
            goto out;
        }
        printf("  ranker     http://%s:%d  pid %d\n", probe_host, listen_port, (int)r->pid);
    }

    /* 5. Traffic. */
    if (rate > 0) {
        char rates[32];
        snprintf(rates, sizeof(rates), "%ld", rate);
        char *extra[] = {"--kafka", "--rate", rates, "-X", xbs, NULL};
        if (spawn_streamrec(up, "simulator", "simulate", extra, NULL)) goto out;
        printf("  simulator  %ld events/s  pid %d\n", rate, (int)up->kids[up->nkids - 1].pid);
    }

    /* Example ids that exist: the first popular items, once the trainer has
     * flushed some traffic (a few seconds at most); i1..i3 otherwise. */
    char ex[3][64] = {"i1", "i2", "i3"};
    if (rate > 0) example_items(probe_host, listen_port, ex, 5000);
    printf("\ntry:\n"
           "  curl 'http://%s:%d/v1/recommend?user=u1&k=10'\n"
           "  curl -X POST 'http://%s:%d/v1/rank' -d '{\"user\":\"u1\",\"items\":[\"%s\",\"%s\",\"%s\"]}'\n"
           "  curl 'http://%s:%d/v1/similar?item=%s&k=10'\n"
           "  curl 'http://%s:%d/v1/popular?k=10'\n"
           "  %s inspect -X %s user u1\n"
           "  %s top -X %s\n\n",
           probe_host, listen_port, probe_host, listen_port, ex[2], ex[0], ex[1], probe_host,
           listen_port, ex[0], probe_host, listen_port, up->self, xredis, up->self, xbs);
    printf("streamrec up: running%s; Ctrl-C stops everything\n",
           duration ? " (for --duration)" : "");
    fflush(stdout);

    /* 6. Watch: the metrics view (or nothing) until Ctrl-C, --duration,
     * or a component dies. */
    int tty = top && isatty(STDOUT_FILENO);
    long long end = duration ? sr_mono_ms() + duration * 1000 : 0;
    if (top) {
        sr_conf_t *rconf = sr_conf_new();
        if (rconf && sr_conf_set(rconf, "kafka.bootstrap.servers", bootstrap, errstr, sizeof(errstr)) == 0 &&
            sr_conf_set(rconf, "topic.metrics", sr_conf_str(conf, "topic.metrics"), errstr, sizeof(errstr)) == 0)
            reader = sr_metrics_reader_new(rconf, 0, 1000, 10000, errstr, sizeof(errstr));
        sr_conf_destroy(rconf);
        view = sr_metrics_view_new();
        if (!reader || !view)
            fprintf(stderr, "streamrec up: no metrics view (%s); still running\n", errstr);
    }
    int died = 0;
    long long next_draw = 0;
    while (!up_stop && !died && (!end || sr_mono_ms() < end)) {
        for (int i = 0; i < up->nkids; i++)
            if (!child_alive(&up->kids[i])) died = 1;
        if (died) break;
        if (reader && view) {
            if (sr_metrics_reader_poll(reader, view, 200) < 0) {
                sr_metrics_reader_destroy(reader);
                reader = NULL;
            }
            if (sr_mono_ms() >= next_draw) {
                show_status(up, view, tty);
                next_draw = sr_mono_ms() + 1000;
            }
        } else {
            usleep(200000);
        }
    }
    if (died)
        fprintf(stderr, "streamrec up: a component died; stopping the others\n");
    rc = died ? 1 : 0;
    goto out;

out_usage:
    usage(stderr);
    rc = 2;
out:
    sr_metrics_reader_destroy(reader);
    sr_metrics_view_destroy(view);
    stop_all(up);
    if (up->nkids) fprintf(stderr, "streamrec up: stopped; logs in %s\n", up->rundir);
    sr_conf_destroy(conf);
    return rc;
}
