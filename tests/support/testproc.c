/* Process and server helpers for integration tests; see sr_testproc.h. */
#include "sr_testproc.h"

#include "sr_net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

long long sr_test_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int sr_test_free_port(void)
{
    return sr_net_free_port();
}

/* fork + exec rather than posix_spawn, for PR_SET_PDEATHSIG: when ctest's
 * timeout kills a test binary, its servers die with it instead of living on
 * and holding ports and CPU for the tests after it (seen: redis-servers
 * and a broker left behind by a timed-out test).  The signal follows the
 * thread that forked; tests spawn from their main thread. */
int sr_test_spawn(sr_test_proc_t *p, char *const argv[], int capture_stdout)
{
    int fds[2] = {-1, -1};
    if (capture_stdout && pipe(fds) != 0) return -1;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(127); /* the test died before prctl */
        if (capture_stdout) {
            dup2(fds[1], STDOUT_FILENO);
            close(fds[0]);
            close(fds[1]);
        }
        execvp(argv[0], argv);
        _exit(127);
    }
    if (capture_stdout) close(fds[1]);
    if (pid < 0) {
        if (capture_stdout) close(fds[0]);
        p->pid = -1;
        p->out_fd = -1;
        return -1;
    }
    p->pid = pid;
    p->out_fd = capture_stdout ? fds[0] : -1;
    return 0;
}

int sr_test_read_line(sr_test_proc_t *p, char *buf, size_t size, int timeout_ms)
{
    size_t n = 0;
    long long deadline = sr_test_now_ms() + timeout_ms;
    while (n + 1 < size) {
        int left = (int)(deadline - sr_test_now_ms());
        if (left <= 0) return -1;
        struct pollfd pfd = {.fd = p->out_fd, .events = POLLIN};
        if (poll(&pfd, 1, left) <= 0) continue;
        char c;
        ssize_t r = read(p->out_fd, &c, 1);
        if (r <= 0) return -1;
        if (c == '\n') break;
        buf[n++] = c;
    }
    buf[n] = '\0';
    return (int)n;
}

int sr_test_stop(sr_test_proc_t *p, int sig, int timeout_ms)
{
    if (p->pid <= 0) return 0;
    int status = 0;
    kill(p->pid, sig);
    long long deadline = sr_test_now_ms() + timeout_ms;
    int result = -1;
    for (;;) {
        pid_t r = waitpid(p->pid, &status, WNOHANG);
        if (r == p->pid) {
            result = status;
            break;
        }
        if (r < 0 && errno != EINTR) break;
        if (sr_test_now_ms() > deadline) {
            kill(p->pid, SIGKILL);
            waitpid(p->pid, &status, 0);
            break;
        }
        usleep(5000);
    }
    if (p->out_fd >= 0) close(p->out_fd);
    p->out_fd = -1;
    p->pid = -1;
    return result;
}

int sr_test_run(char *const argv[], char **out, int timeout_ms)
{
    sr_test_proc_t p;
    if (sr_test_spawn(&p, argv, 1) != 0) return -1;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    long long deadline = sr_test_now_ms() + timeout_ms;
    int timed_out = 0;
    for (;;) {
        int left = (int)(deadline - sr_test_now_ms());
        if (left <= 0) {
            timed_out = 1;
            break;
        }
        struct pollfd pfd = {.fd = p.out_fd, .events = POLLIN};
        if (poll(&pfd, 1, left) <= 0) continue;
        if (len + 4096 > cap) buf = realloc(buf, cap *= 2);
        ssize_t r = read(p.out_fd, buf + len, cap - len - 1);
        if (r <= 0) break;
        len += (size_t)r;
    }
    buf[len] = '\0';
    int status = sr_test_stop(&p, timed_out ? SIGKILL : 0, timed_out ? 100 : timeout_ms);
    if (out)
        *out = buf;
    else
        free(buf);
    if (timed_out || status < 0) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int sr_test_redis_start(sr_test_proc_t *proc, int *port)
{
    for (int attempt = 0; attempt < 5; attempt++) {
        int pt = sr_test_free_port();
        char ports[16];
        snprintf(ports, sizeof(ports), "%d", pt);
        char *argv[] = {"redis-server", "--port", ports, "--bind", "127.0.0.1",
                        "--save", "", "--appendonly", "no", "--loglevel", "warning",
                        "--daemonize", "no", NULL};
        if (sr_test_spawn(proc, argv, 1) != 0) return -1;
        /* Ready when PING answers. */
        for (int i = 0; i < 200; i++) {
            char *out = NULL;
            char *ping[] = {"redis-cli", "-p", ports, "ping", NULL};
            int rc = sr_test_run(ping, &out, 2000);
            int ok = rc == 0 && out && strncmp(out, "PONG", 4) == 0;
            free(out);
            if (ok) {
                *port = pt;
                return 0;
            }
            if (waitpid(proc->pid, NULL, WNOHANG) == proc->pid) break; /* port taken */
            usleep(20000);
        }
        sr_test_stop(proc, SIGKILL, 100);
    }
    return -1;
}

const char *sr_test_bin(void)
{
    const char *b = getenv("STREAMREC_BIN");
#ifdef SR_BINARY_DIR
    if (!b) b = SR_BINARY_DIR "/streamrec";
#endif
    return b ? b : "streamrec";
}

int sr_test_broker_start(sr_test_proc_t *proc, int partitions, char *bootstrap, size_t size)
{
    char parts[16];
    snprintf(parts, sizeof(parts), "%d", partitions);
    char *argv[] = {(char *)sr_test_bin(), "broker", "--partitions", parts, NULL};
    if (sr_test_spawn(proc, argv, 1) != 0) return -1;
    if (sr_test_read_line(proc, bootstrap, size, 10000) <= 0) {
        sr_test_stop(proc, SIGKILL, 100);
        return -1;
    }
    return 0;
}
