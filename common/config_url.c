/* Address parsers: `redis://` URLs and `host:port`.  They live in common/
 * because config validators, the store (connecting) and the ranker
 * (listening) must agree on one grammar.  Pure string work, no I/O. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "sr_config.h"
#include "sr_err.h"

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        if (errstr && errstr_size) snprintf(errstr, errstr_size, __VA_ARGS__);                     \
        return SR_ERR_PARSE;                                                                       \
    } while (0)

/* Digits only, value in [lo, hi]; -1 otherwise. */
static long parse_uint(const char *s, size_t len, long lo, long hi)
{
    if (len == 0 || len > 10) return -1;
    long v = 0;
    for (size_t i = 0; i < len; i++) {
        if (!isdigit((unsigned char)s[i])) return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v < lo || v > hi ? -1 : v;
}

static int host_ok(const char *h, size_t len)
{
    if (len == 0) return 0;
    for (size_t i = 0; i < len; i++)
        if (!isgraph((unsigned char)h[i]) || strchr("/@?#[]", h[i])) return 0;
    return 1;
}

/* Splits s[0..len) into host and optional port.  *port = -1 when absent. */
static int split_hostport(const char *s, size_t len, char *host, size_t host_size, long *port,
                          long port_min, char *errstr, size_t errstr_size)
{
    const char *h = s, *colon;
    size_t hl;
    if (len > 0 && s[0] == '[') {
        const char *rb = memchr(s, ']', len);
        if (!rb) FAIL("missing ']' after IPv6 address");
        h = s + 1;
        hl = (size_t)(rb - h);
        if (hl == 0) FAIL("missing host");
        for (size_t i = 0; i < hl; i++)
            if (!isxdigit((unsigned char)h[i]) && h[i] != ':' && h[i] != '.')
                FAIL("bad IPv6 address");
        colon = rb + 1 < s + len ? rb + 1 : NULL;
        if (colon && *colon != ':') FAIL("expected ':' after ']'");
    } else {
        colon = NULL;
        for (size_t i = 0; i < len; i++)
            if (s[i] == ':') {
                if (colon) FAIL("more than one ':' (write IPv6 addresses in brackets)");
                colon = s + i;
            }
        hl = colon ? (size_t)(colon - s) : len;
        if (hl == 0) FAIL("missing host");
        if (!host_ok(h, hl)) FAIL("bad character in host");
    }
    if (hl >= host_size) FAIL("host longer than %zu bytes", host_size - 1);
    memcpy(host, h, hl);
    host[hl] = '\0';
    *port = -1;
    if (colon) {
        size_t pl = (size_t)(s + len - colon - 1);
        *port = parse_uint(colon + 1, pl, port_min, 65535);
        if (*port < 0) FAIL("port must be a number from %ld to 65535", port_min);
    }
    return 0;
}

int sr_hostport_parse(const char *s, char *host, size_t host_size, int *port, char *errstr,
                      size_t errstr_size)
{
    long p;
    if (!s || !*s) FAIL("expected host:port");
    int rc = split_hostport(s, strlen(s), host, host_size, &p, 0, errstr, errstr_size);
    if (rc < 0) return rc;
    if (p < 0) FAIL("expected host:port (missing port)");
    *port = (int)p;
    return 0;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int sr_redis_url_parse(const char *url, sr_redis_url_t *out, char *errstr, size_t errstr_size)
{
    static const char scheme[] = "redis://";
    if (!url) FAIL("missing URL");
    if (strncmp(url, "rediss://", 9) == 0) FAIL("TLS (rediss://) is not supported");
    if (strncmp(url, scheme, sizeof(scheme) - 1) != 0)
        FAIL("must start with redis:// (redis://[:password@]host[:port][/db])");
    const char *rest = url + sizeof(scheme) - 1;
    sr_redis_url_t u;
    memset(&u, 0, sizeof(u));

    /* The password may hold '/', so the last '@' ends the user info. */
    const char *at = strrchr(rest, '@');
    if (at) {
        if (rest[0] != ':') FAIL("user names are not supported; write redis://:password@host:port");
        size_t o = 0;
        for (const char *p = rest + 1; p < at; p++) {
            int c = (unsigned char)*p;
            if (c == '%') {
                int a = p + 2 < at ? hexval((unsigned char)p[1]) : -1;
                int b = a >= 0 ? hexval((unsigned char)p[2]) : -1;
                if (b < 0) FAIL("bad %%-escape in password");
                c = a * 16 + b;
                p += 2;
            }
            if (c == 0) FAIL("NUL in password");
            if (o + 1 >= sizeof(u.password)) FAIL("password longer than 255 bytes");
            u.password[o++] = (char)c;
        }
        u.password[o] = '\0';
        rest = at + 1;
    }
    if (strpbrk(rest, "?#")) FAIL("query parameters are not supported");
    const char *slash = strchr(rest, '/');
    size_t hpl = slash ? (size_t)(slash - rest) : strlen(rest);
    long port;
    int rc = split_hostport(rest, hpl, u.host, sizeof(u.host), &port, 1, errstr, errstr_size);
    if (rc < 0) return rc;
    u.port = port < 0 ? 6379 : (int)port;
    if (slash && slash[1]) {
        long db = parse_uint(slash + 1, strlen(slash + 1), 0, 2147483647L);
        if (db < 0) FAIL("database must be a number >= 0");
        u.db = (int)db;
    }
    if (out) *out = u;
    return 0;
}
