/* `streamrec up` end to end: it starts every component (broker, redis,
 * trainer, ranker, simulator), the ranker answers, events flow into it,
 * and when `up` stops (Ctrl-C or --duration) every process it started is
 * gone. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sr_testproc.h"

typedef struct started {
    char name[32];
    pid_t pid;
} started_t;

typedef struct up_out {
    started_t kids[16];
    int n;
    int http_port;
    int running; /* saw the "running" line */
    char similar[128]; /* path of the printed `similar` example */
} up_out_t;

/* Parses one stdout line of `up`: "  <name> ... pid <N>" rows and the
 * ranker's "http://127.0.0.1:<port>". */
static void parse_line(up_out_t *o, const char *line)
{
    const char *p = strstr(line, " pid ");
    if (p && o->n < 16) {
        started_t *k = &o->kids[o->n];
        if (sscanf(line, " %31s", k->name) == 1) {
            k->pid = (pid_t)atoi(p + 5);
            if (k->pid > 0) o->n++;
        }
    }
    const char *h = strstr(line, "ranker     http://");
    if (h) {
        const char *colon = strrchr(h + strlen("ranker     http://"), ':');
        if (colon) o->http_port = atoi(colon + 1);
    }
    const char *sim = strstr(line, "/v1/similar?");
    if (sim && strlen(sim) < sizeof(o->similar))
        snprintf(o->similar, sizeof(o->similar), "%.*s", (int)strcspn(sim, "'"), sim);
    if (strstr(line, "streamrec up: running")) o->running = 1;
}

static pid_t pid_of(const up_out_t *o, const char *name)
{
    for (int i = 0; i < o->n; i++)
        if (strcmp(o->kids[i].name, name) == 0) return o->kids[i].pid;
    return -1;
}

static int gone(pid_t pid)
{
    return kill(pid, 0) == -1 && errno == ESRCH;
}

/* GET path on 127.0.0.1:port; returns the HTTP status (or -1) and the
 * start of the body in body. */
static int http_get(int port, const char *path, char *body, size_t size)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int status = -1;
    char req[512], buf[65536];
    snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", path);
    size_t len = 0;
    if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        write(fd, req, strlen(req)) == (ssize_t)strlen(req)) {
        long long deadline = sr_test_now_ms() + 5000;
        while (len + 1 < sizeof buf && sr_test_now_ms() < deadline) {
            struct pollfd p = {.fd = fd, .events = POLLIN};
            if (poll(&p, 1, 500) <= 0) continue;
            ssize_t r = read(fd, buf + len, sizeof buf - 1 - len);
            if (r <= 0) break;
            len += (size_t)r;
        }
        buf[len] = '\0';
        if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1) status = -1;
        const char *b = strstr(buf, "\r\n\r\n");
        snprintf(body, size, "%s", b ? b + 4 : "");
    }
    close(fd);
    return status;
}

static void read_until_running(sr_test_proc_t *p, up_out_t *o, int timeout_ms)
{
    char line[1024];
    long long deadline = sr_test_now_ms() + timeout_ms;
    while (!o->running && sr_test_now_ms() < deadline) {
        int left = (int)(deadline - sr_test_now_ms());
        if (sr_test_read_line(p, line, sizeof line, left > 0 ? left : 1) < 0) break;
        parse_line(o, line);
    }
}

static int wait_exit(sr_test_proc_t *p, int timeout_ms)
{
    long long deadline = sr_test_now_ms() + timeout_ms;
    int status;
    while (sr_test_now_ms() < deadline) {
        pid_t r = waitpid(p->pid, &status, WNOHANG);
        if (r == p->pid) {
            p->pid = -1;
            return status;
        }
        usleep(20000);
    }
    return -1;
}

/* `up` itself; its children die with it (PR_SET_PDEATHSIG) if a failed
 * assertion leaves it to .fini's SIGKILL. */
static sr_test_proc_t up;

static void kill_up(void)
{
    sr_test_stop(&up, SIGKILL, 1000);
}

Test(up, starts_all_components_answers_and_sigint_stops_them, .timeout = 180, .fini = kill_up)
{
    int port = sr_test_free_port();
    char listen[64];
    snprintf(listen, sizeof listen, "http.listen=127.0.0.1:%d", port);
    char *argv[] = {(char *)sr_test_bin(), "up", "--no-top", "--rate", "300",
                    "--partitions", "2", "-X", listen, NULL};
    cr_assert_eq(sr_test_spawn(&up, argv, 1), 0);
    up_out_t o = {0};
    read_until_running(&up, &o, 60000);
    cr_assert(o.running, "`up` never reported it was running");

    static const char *names[] = {"broker", "redis", "trainer", "ranker", "simulator"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        pid_t pid = pid_of(&o, names[i]);
        cr_expect_gt(pid, 0, "no pid line for %s", names[i]);
        if (pid > 0) cr_expect(!gone(pid), "%s (pid %d) is not running", names[i], (int)pid);
    }
    cr_expect_eq(o.http_port, port);

    /* The ranker answers, and the simulator's events reach it through the
     * trainer and Redis: /v1/popular becomes non-empty. */
    char body[65536];
    int health = http_get(port, "/healthz", body, sizeof body);
    cr_expect(health == 200 || health == 503, "/healthz answered %d", health);
    int popular_ok = 0;
    long long deadline = sr_test_now_ms() + 45000;
    while (!popular_ok && sr_test_now_ms() < deadline) {
        if (http_get(port, "/v1/popular?k=5", body, sizeof body) == 200 &&
            strstr(body, "\"item\""))
            popular_ok = 1;
        else
            usleep(250000);
    }
    cr_expect(popular_ok, "/v1/popular never listed an item; last body: %s", body);
    int rec = http_get(port, "/v1/recommend?user=u1&k=5", body, sizeof body);
    cr_expect_eq(rec, 200, "/v1/recommend answered %d: %s", rec, body);
    /* The printed examples name items that exist (not a 404 on first use). */
    cr_assert_neq(o.similar[0], '\0', "no /v1/similar example printed");
    int sim = http_get(port, o.similar, body, sizeof body);
    cr_expect_eq(sim, 200, "%s answered %d: %s", o.similar, sim, body);

    cr_assert_eq(kill(up.pid, SIGINT), 0);
    int status = wait_exit(&up, 60000);
    cr_assert_neq(status, -1, "`up` did not exit within 60 s of SIGINT");
    cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "`up` exit status %d", status);
    for (int i = 0; i < o.n; i++)
        cr_expect(gone(o.kids[i].pid), "%s (pid %d) still exists after `up` exited",
                  o.kids[i].name, (int)o.kids[i].pid);
}

Test(up, duration_stops_by_itself_and_leaves_nothing, .timeout = 120)
{
    int port = sr_test_free_port();
    char listen[64];
    snprintf(listen, sizeof listen, "http.listen=127.0.0.1:%d", port);
    char *argv[] = {(char *)sr_test_bin(), "up", "--no-top", "--duration", "3", "--rate", "0",
                    "-X", listen, NULL};
    char *out = NULL;
    int rc = sr_test_run(argv, &out, 90000);
    cr_assert_eq(rc, 0, "`up --duration 3` exited %d; stdout:\n%s", rc, out ? out : "");
    up_out_t o = {0};
    for (char *save = NULL, *l = strtok_r(out, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
        parse_line(&o, l);
    free(out);
    cr_expect(o.running);
    cr_expect_eq(pid_of(&o, "simulator"), -1, "--rate 0 still started a simulator");
    cr_expect_gt(pid_of(&o, "trainer"), 0);
    cr_expect_geq(o.n, 4, "expected broker, redis, trainer, ranker; got %d", o.n);
    for (int i = 0; i < o.n; i++)
        cr_expect(gone(o.kids[i].pid), "%s (pid %d) still exists", o.kids[i].name,
                  (int)o.kids[i].pid);
}

Test(up, bad_option_is_a_usage_error)
{
    char *argv[] = {(char *)sr_test_bin(), "up", "--rate", "lots", NULL};
    cr_expect_eq(sr_test_run(argv, NULL, 10000), 2);
    char *argv2[] = {(char *)sr_test_bin(), "up", "--no-such-option", NULL};
    cr_expect_eq(sr_test_run(argv2, NULL, 10000), 2);
}
