/* Malformed HTTP thrown at a running `streamrec serve` over raw sockets:
 * garbage, huge headers, truncated bodies, invalid UTF-8, deep JSON, bodies
 * over the limit, random bytes.  Every request that gets an answer gets a
 * 4xx (never 5xx, never a crash), connections cut mid-request do not hurt,
 * and the server keeps answering normal requests afterwards. */
#include "sr_http_test.h"

#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sr_testproc.h"

static sr_test_proc_t redis, serve;
static int rport, hport;

static void setup(void)
{
    cr_assert_eq(sr_test_redis_start(&redis, &rport), 0, "redis-server did not start");
    hport = serve_start(&serve, rport, "ranker.body.max=4096", "ranker.candidates.max=10");
    cr_assert_gt(hport, 0, "streamrec serve did not start");
    cr_assert_eq(serve_wait_healthy(hport, 15000), 0);
}

static void teardown(void)
{
    if (serve.pid > 0) {
        /* Still running: it must not have died on any input. */
        cr_expect_eq(waitpid(serve.pid, NULL, WNOHANG), 0, "serve is still alive");
        sr_test_stop(&serve, SIGTERM, 10000);
    }
    if (redis.pid > 0) sr_test_stop(&redis, SIGTERM, 5000);
}

TestSuite(fuzz, .init = setup, .fini = teardown, .timeout = 120);

/* Sends raw bytes on a fresh connection, half-closes, reads one answer
 * (0 when the server closed or stayed silent for 3 s). */
static int raw(const void *buf, size_t len)
{
    int fd = http_connect(hport);
    cr_assert_geq(fd, 0, "server still accepts connections");
    http_send_all(fd, buf, len);
    shutdown(fd, SHUT_WR);
    http_resp_t r;
    http_read_resp(fd, &r, 3000);
    close(fd);
    int st = r.status;
    http_resp_free(&r);
    return st;
}

static void expect_4xx(const char *what, const void *buf, size_t len)
{
    int st = raw(buf, len);
    cr_expect(st >= 400 && st < 500, "%s: got status %d", what, st);
}

static void still_serving(void)
{
    http_resp_t r;
    cr_assert_eq(http_do(hport, "GET", "/v1/popular?k=1", NULL, &r), 200, "normal request");
    http_resp_free(&r);
}

static void post_body(const char *what, const char *body, size_t len)
{
    char head[256];
    int hl = snprintf(head, sizeof head,
                      "POST /v1/rank HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n\r\n", len);
    char *buf = malloc((size_t)hl + len);
    memcpy(buf, head, (size_t)hl);
    memcpy(buf + hl, body, len);
    expect_4xx(what, buf, (size_t)hl + len);
    free(buf);
}

/* libmicrohttpd drops a connection whose request line it cannot parse at
 * all without answering (there is no request to answer); everything it can
 * parse gets a 4xx, from MHD or from the ranker. */
static void expect_4xx_or_closed(const char *what, const char *buf)
{
    int st = raw(buf, strlen(buf));
    cr_expect(st == 0 || (st >= 400 && st < 500), "%s: got status %d", what, st);
}

Test(fuzz, garbage_request_lines)
{
    expect_4xx_or_closed("blank lines", "\r\n\r\n");
    expect_4xx_or_closed("one word", "GARBAGE\r\n\r\n");
    expect_4xx_or_closed("method only", "GET\r\n\r\n");
    const char *cases[] = {
        "GET /v1/recommend?user=a HTTP/1.1\r\nno-colon-header\r\n\r\n",
        "GET /v1/recommend?user= HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /v1/recommend?user=a&k=1e9 HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /v1/recommend?user=a&k=-5 HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n",
        "BREW /v1/popular HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /v1/recommend?user=\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /v1/recommend?user=%c3%28 HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /v1/recommend?user=%ed%a0%80 HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /v1/similar?item=nope HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /v1/recommend?a=1&b=2&c=3&d=4&e=5&f=6&g=7&h=8&i=9&j=10&k=11&l=12&m=13&n=14&o=15"
        "&p=16&q=17 HTTP/1.1\r\nHost: x\r\n\r\n",
        "POST /v1/rank HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        expect_4xx(cases[i], cases[i], strlen(cases[i]));
    /* An HTTP version we do not speak is answered 505, as HTTP says. */
    const char *v99 = "GET / HTTP/9.9\r\n\r\n";
    int st = raw(v99, strlen(v99));
    cr_expect(st == 505 || st == 0 || (st >= 400 && st < 500), "HTTP/9.9: %d", st);
    still_serving();
}

Test(fuzz, huge_headers_and_urls)
{
    size_t n = 200000;
    char *big = malloc(n + 256);
    int hl = snprintf(big, 256, "GET /v1/popular HTTP/1.1\r\nHost: x\r\nX-Big: ");
    memset(big + hl, 'a', n);
    memcpy(big + hl + n, "\r\n\r\n", 4);
    expect_4xx("one huge header", big, (size_t)hl + n + 4);
    hl = snprintf(big, 256, "GET /v1/recommend?user=");
    memset(big + hl, 'u', n);
    memcpy(big + hl + n, " HTTP/1.1\r\nHost: x\r\n\r\n", 22);
    expect_4xx("huge URL", big, (size_t)hl + n + 22);
    /* many small headers */
    size_t len = (size_t)snprintf(big, 256, "GET /v1/popular HTTP/1.1\r\n");
    while (len + 16 < n)
        len += (size_t)sprintf(big + len, "X-%05zu: y\r\n", len % 100000);
    memcpy(big + len, "\r\n", 2);
    expect_4xx("thousands of headers", big, len + 2);
    free(big);
    still_serving();
}

Test(fuzz, bodies_truncated_oversize_and_malformed)
{
    /* Content-Length says more than is sent: the server waits, we close. */
    const char *trunc =
        "POST /v1/rank HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"user\":";
    int st = raw(trunc, strlen(trunc));
    cr_expect(st == 0 || (st >= 400 && st < 500), "truncated body: %d", st);
    /* Declared too large: 413 without reading it. */
    const char *big = "POST /v1/rank HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n{";
    cr_expect_eq(raw(big, strlen(big)), 413);
    /* Actually too large, chunked (no Content-Length). */
    size_t n = 20000;
    char *chunked = malloc(n + 256);
    int hl = snprintf(chunked, 256,
                      "POST /v1/rank HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "%zx\r\n",
                      n);
    memset(chunked + hl, ' ', n);
    memcpy(chunked + hl + n, "\r\n0\r\n\r\n", 7);
    cr_expect_eq(raw(chunked, (size_t)hl + n + 7), 413);
    free(chunked);
    post_body("not JSON", "hello", 5);
    post_body("truncated JSON", "{\"user\":\"a\",\"items\":[\"x\"", 24);
    post_body("invalid UTF-8 in a string", "{\"user\":\"\xc3\x28\",\"items\":[]}", 24);
    post_body("overlong UTF-8", "{\"user\":\"\xc0\xaf\",\"items\":[]}", 24);
    post_body("NUL in a string", "{\"user\":\"a\\u0000\",\"items\":[]}", 29);
    post_body("NUL byte in the body", "{\"user\":\"a\"\0,\"items\":[]}", 24);
    post_body("too many candidates",
              "{\"user\":\"a\",\"items\":[\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\",\"9\","
              "\"10\",\"11\"]}",
              strlen("{\"user\":\"a\",\"items\":[\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\","
                     "\"9\",\"10\",\"11\"]}"));
    post_body("wrong types", "{\"user\":[],\"items\":{}}", 22);
    /* deep nesting, within the body limit */
    char deep[4000];
    memset(deep, '[', 2000);
    memset(deep + 2000, ']', 2000);
    post_body("deeply nested arrays", deep, sizeof deep);
    char deepo[4000];
    size_t m = 0;
    while (m + 6 < 2000)
        m += (size_t)sprintf(deepo + m, "{\"a\":");
    size_t open = m / 5;
    for (size_t i = 0; i < open; i++)
        deepo[m++] = '}';
    post_body("deeply nested objects", deepo, m);
    still_serving();
}

Test(fuzz, random_bytes_and_cut_connections)
{
    unsigned seed = 4242;
    char buf[2048];
    for (int round = 0; round < 60; round++) {
        size_t len = 1 + (size_t)(rand_r(&seed) % sizeof buf);
        for (size_t i = 0; i < len; i++)
            buf[i] = (char)(rand_r(&seed) & 0xff);
        if (round % 3 == 0) memcpy(buf, "GET /", 5 < len ? 5 : len);
        if (round % 3 == 1) memcpy(buf, "POST /v1/rank HTTP/1.1\r\n", 24 < len ? 24 : len);
        int st = raw(buf, len);
        cr_expect(st == 0 || (st >= 400 && st < 500), "random round %d: %d", round, st);
    }
    /* connections closed in the middle of a request line / headers */
    for (int i = 0; i < 20; i++) {
        int fd = http_connect(hport);
        cr_assert_geq(fd, 0);
        const char *part = i % 2 ? "GET /v1/reco" : "POST /v1/rank HTTP/1.1\r\nContent-Le";
        http_send_all(fd, part, strlen(part));
        close(fd);
    }
    still_serving();
    http_resp_t r;
    cr_assert_eq(http_do(hport, "GET", "/metrics", NULL, &r), 200);
    cr_expect_null(strstr(r.body, "code=\"500\""), "no 500 at all: %s", r.body);
    http_resp_free(&r);
}
