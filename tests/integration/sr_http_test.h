/* A tiny blocking HTTP/1.1 client over raw loopback sockets for the ranker's
 * integration tests (test_serve.c, test_serve_fuzz.c): send arbitrary
 * bytes, read one response (status, headers, Content-Length body) with a
 * deadline, optionally keep the connection for the next request.  Header
 * only, static functions: each test executable gets its own copy. */
#ifndef SR_HTTP_TEST_H
#define SR_HTTP_TEST_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strcasestr */
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sr_testproc.h"

typedef struct http_resp {
    int status; /* 0: no (complete) response */
    char *body; /* malloc'd, NUL-terminated */
    size_t body_len;
    char headers[4096];
} http_resp_t;

static void http_resp_free(http_resp_t *r)
{
    free(r->body);
    r->body = NULL;
}

static int http_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

/* Writes all of buf; a peer that closed early is not an error here (the
 * server may answer 413 and close while we are still sending). */
static void http_send_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n <= 0) return;
        p += n;
        len -= (size_t)n;
    }
}

/* Reads one response within timeout_ms.  Returns 0 with r filled, -1 when
 * the connection closed or timed out before a complete response. */
static int http_read_resp(int fd, http_resp_t *r, int timeout_ms)
{
    memset(r, 0, sizeof(*r));
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap + 1);
    long long deadline = sr_test_now_ms() + timeout_ms;
    long hdr_end = -1;
    size_t want = 0;
    for (;;) {
        if (hdr_end >= 0 && len >= (size_t)hdr_end + want) break;
        int left = (int)(deadline - sr_test_now_ms());
        if (left <= 0) goto fail;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, left) <= 0) continue;
        if (len == cap) {
            cap *= 2;
            buf = realloc(buf, cap + 1);
        }
        ssize_t n = recv(fd, buf + len, cap - len, 0);
        if (n <= 0) goto fail;
        len += (size_t)n;
        buf[len] = 0;
        if (hdr_end < 0) {
            char *e = strstr(buf, "\r\n\r\n");
            if (!e) continue;
            hdr_end = e - buf + 4;
            size_t hl =
                (size_t)hdr_end < sizeof(r->headers) - 1 ? (size_t)hdr_end : sizeof(r->headers) - 1;
            memcpy(r->headers, buf, hl);
            r->headers[hl] = 0;
            if (sscanf(buf, "HTTP/1.%*d %d", &r->status) != 1) goto fail;
            char *cl = strcasestr(r->headers, "\r\nContent-Length:");
            want = cl ? strtoul(cl + 17, NULL, 10) : 0;
        }
    }
    r->body_len = want;
    r->body = malloc(want + 1);
    memcpy(r->body, buf + hdr_end, want);
    r->body[want] = 0;
    free(buf);
    return 0;
fail:
    free(buf);
    r->status = 0;
    return -1;
}

/* One request on a fresh connection ("Connection: close").  body may be
 * NULL.  Returns the status (0 when no response). */
static int http_do(int port, const char *method, const char *target, const char *body,
                   http_resp_t *r)
{
    int fd = http_connect(port);
    if (fd < 0) {
        memset(r, 0, sizeof(*r));
        return 0;
    }
    char head[8192];
    size_t bl = body ? strlen(body) : 0;
    int hl = snprintf(head, sizeof(head),
                      "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                      "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                      method, target, bl);
    http_send_all(fd, head, (size_t)hl);
    if (bl) http_send_all(fd, body, bl);
    http_read_resp(fd, r, 10000);
    close(fd);
    return r->status;
}

/* Starts `streamrec serve` on a free port against redis_port; waits for its
 * "listening on" line.  Returns the HTTP port. */
static int serve_start(sr_test_proc_t *p, int redis_port, const char *extra1, const char *extra2)
{
    int hp = sr_test_free_port();
    char url[64], listen[64];
    snprintf(url, sizeof(url), "redis.url=redis://127.0.0.1:%d", redis_port);
    snprintf(listen, sizeof(listen), "http.listen=127.0.0.1:%d", hp);
    char *argv[] = {(char *)sr_test_bin(),
                    "serve",
                    "-X",
                    url,
                    "-X",
                    listen,
                    "-X",
                    "metrics.enable=false",
                    "-X",
                    "model.dim=4",
                    "-X",
                    "log.level=warn",
                    extra1 ? "-X" : NULL,
                    (char *)extra1,
                    extra2 ? "-X" : NULL,
                    (char *)extra2,
                    NULL};
    if (!extra1)
        argv[12] = NULL;
    else if (!extra2)
        argv[14] = NULL;
    if (sr_test_spawn(p, argv, 1) != 0) return -1;
    char line[256];
    if (sr_test_read_line(p, line, sizeof(line), 15000) < 0) return -1;
    if (!strstr(line, "listening on")) return -1;
    return hp;
}

/* Polls GET /healthz until 200 (items loaded, Redis reachable). */
static int serve_wait_healthy(int port, int timeout_ms)
{
    long long t0 = sr_test_now_ms();
    while (sr_test_now_ms() - t0 < timeout_ms) {
        http_resp_t r;
        int st = http_do(port, "GET", "/healthz", NULL, &r);
        http_resp_free(&r);
        if (st == 200) return 0;
        usleep(10000);
    }
    return -1;
}

#endif
