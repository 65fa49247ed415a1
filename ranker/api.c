/* Routing, validation, JSON and metrics of the ranker's HTTP API (see
 * sr_api.h).  Every rule a request can break maps to one 4xx with a JSON
 * {"error": "..."} that names the parameter and the limit, so a client can
 * fix its call from the message alone. */
#include "sr_api.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sr_err.h"
#include "sr_log.h"

/* ---- metrics ---- */

enum { R_RECOMMEND, R_RANK, R_SIMILAR, R_POPULAR, R_HEALTHZ, R_METRICS, R_OTHER, R_N };
static const char *const route_name[R_N] = {"recommend", "rank",    "similar", "popular",
                                            "healthz",   "metrics", "other"};
static const int codes[] = {200, 400, 404, 405, 413, 414, 431, 500, 503};
#define N_CODES (sizeof(codes) / sizeof(codes[0]) + 1) /* last: any other */

/* Prometheus buckets (seconds). */
static const double bucket_s[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                  0.01,   0.025,   0.05,   0.1,   0.25,   1.0};
#define N_BUCKETS (sizeof(bucket_s) / sizeof(bucket_s[0]) + 1)

/* Fine log-linear latency histogram for the published quantiles: 8 buckets
 * per power of two of microseconds, up to 2^27 us. */
#define FINE_SUB 8
#define FINE_N (28 * FINE_SUB)

struct sr_api_s {
    sr_ranker_t *r;
    sr_api_limits_t lim;
    atomic_llong count[R_N][N_CODES];
    atomic_llong bucket[R_N][N_BUCKETS];
    atomic_llong sum_ns[R_N];
    atomic_llong fine[FINE_N];
    atomic_llong fine_max_ns;
    long long fine_prev[FINE_N]; /* owned by the sr_api_stats caller */
};

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int fine_index(int64_t ns)
{
    double us = (double)ns / 1000.0;
    if (us < 1) return 0;
    int b = (int)(log2(us) * FINE_SUB);
    return b >= FINE_N ? FINE_N - 1 : b;
}

static double fine_upper_us(int b)
{
    return exp2((double)(b + 1) / FINE_SUB);
}

static int route_of(const char *path)
{
    if (!path) return R_OTHER;
    if (strcmp(path, "/v1/recommend") == 0) return R_RECOMMEND;
    if (strcmp(path, "/v1/rank") == 0) return R_RANK;
    if (strcmp(path, "/v1/similar") == 0) return R_SIMILAR;
    if (strcmp(path, "/v1/popular") == 0) return R_POPULAR;
    if (strcmp(path, "/healthz") == 0) return R_HEALTHZ;
    if (strcmp(path, "/metrics") == 0) return R_METRICS;
    return R_OTHER;
}

static void count(sr_api_t *a, int route, int status, int64_t ns)
{
    size_t c = N_CODES - 1;
    for (size_t i = 0; i < N_CODES - 1; i++)
        if (codes[i] == status) c = i;
    atomic_fetch_add_explicit(&a->count[route][c], 1, memory_order_relaxed);
    double s = (double)ns / 1e9;
    size_t b = 0;
    while (b < N_BUCKETS - 1 && s > bucket_s[b])
        b++;
    atomic_fetch_add_explicit(&a->bucket[route][b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&a->sum_ns[route], ns, memory_order_relaxed);
    if (route != R_METRICS && route != R_HEALTHZ) {
        atomic_fetch_add_explicit(&a->fine[fine_index(ns)], 1, memory_order_relaxed);
        long long m = atomic_load_explicit(&a->fine_max_ns, memory_order_relaxed);
        while (ns > m && !atomic_compare_exchange_weak(&a->fine_max_ns, &m, ns)) {
        }
    }
}

void sr_api_count(sr_api_t *a, const char *path, int status, int64_t took_ns)
{
    count(a, route_of(path), status, took_ns);
}

sr_api_t *sr_api_new(sr_ranker_t *r, const sr_api_limits_t *lim)
{
    if (!r || !lim || lim->k_max < 1 || lim->candidates_max < 1 || lim->id_max < 1 ||
        lim->body_max < 2)
        return NULL;
    sr_api_t *a = calloc(1, sizeof(*a));
    if (!a) return NULL;
    a->r = r;
    a->lim = *lim;
    return a;
}

void sr_api_destroy(sr_api_t *a)
{
    free(a);
}

void sr_api_response_free(sr_api_response_t *resp)
{
    if (!resp) return;
    free(resp->body);
    resp->body = NULL;
    resp->body_len = 0;
}

/* ---- small helpers ---- */

int sr_api_utf8_valid(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        unsigned cp;
        if (c >= 0xC2 && c <= 0xDF) {
            n = 1;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 2;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return 0;
        }
        if (n > len - i - 1) return 0;
        for (size_t j = 1; j <= n; j++) {
            if ((s[i + j] & 0xC0) != 0x80) return 0;
            cp = (cp << 6) | (s[i + j] & 0x3F);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10FFFF ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += n + 1;
    }
    return 1;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decodes in place; returns the decoded length or -1. */
static long pct_decode(char *s, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '%') {
            if (i + 2 >= len) return -1;
            int h = hexval(s[i + 1]), l = hexval(s[i + 2]);
            if (h < 0 || l < 0) return -1;
            s[o++] = (char)(h * 16 + l);
            i += 2;
        } else {
            s[o++] = s[i] == '+' ? ' ' : s[i];
        }
    }
    return (long)o;
}

int sr_api_parse_query(char *qs, sr_api_param_t *params, size_t max)
{
    size_t n = 0;
    char *p = qs;
    while (p && *p) {
        char *amp = strchr(p, '&');
        size_t seg = amp ? (size_t)(amp - p) : strlen(p);
        if (seg > 0) {
            if (n == max) return SR_ERR_FULL;
            char *eq = memchr(p, '=', seg);
            size_t klen = eq ? (size_t)(eq - p) : seg;
            char *val = eq ? eq + 1 : p + seg;
            size_t vlen = eq ? seg - klen - 1 : 0;
            long kd = pct_decode(p, klen);
            long vd = pct_decode(val, vlen);
            if (kd < 0 || vd < 0) return SR_ERR_PARSE;
            p[kd] = 0;
            params[n].key = p;
            params[n].value = val;
            params[n].value_len = (size_t)vd;
            n++;
        }
        p = amp ? amp + 1 : NULL;
    }
    return (int)n;
}

/* A response buffer; on ENOMEM the handler answers a static 500. */
typedef struct buf {
    char *p;
    size_t len, cap;
    int oom;
} buf_t;

static void buf_printf(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void buf_printf(buf_t *b, const char *fmt, ...)
{
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = 1;
            return;
        }
        if (b->p && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap * 2 : 4096;
        while (cap < b->len + (size_t)n + 1)
            cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q) {
            b->oom = 1;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
}

static const char oom_body[] = "{\"error\":\"out of memory\"}";

static void set_json(sr_api_response_t *resp, int status, json_t *obj)
{
    resp->status = status;
    resp->content_type = "application/json";
    char *s = obj ? json_dumps(obj, JSON_COMPACT | JSON_REAL_PRECISION(7)) : NULL;
    json_decref(obj);
    if (!s) {
        resp->status = 500;
        resp->body = malloc(sizeof(oom_body));
        if (resp->body) memcpy(resp->body, oom_body, sizeof(oom_body));
        resp->body_len = resp->body ? sizeof(oom_body) - 1 : 0;
        return;
    }
    resp->body = s;
    resp->body_len = strlen(s);
}

static void set_error(sr_api_response_t *resp, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_error(sr_api_response_t *resp, int status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    /* Messages quote client input; make sure what we echo is valid UTF-8 so
     * the error itself is valid JSON. */
    if (!sr_api_utf8_valid(msg, strlen(msg)))
        for (char *c = msg; *c; c++)
            if ((unsigned char)*c >= 0x80) *c = '?';
    set_json(resp, status, json_pack("{s:s}", "error", msg));
}

/* ---- answers written straight into one buffer ----
 *
 * The answers with item lists are written here rather than built as a
 * jansson tree: a tree costs three allocations per item, which was a good
 * part of a 200-candidate /v1/rank.  The bytes are the ones json_dumps
 * gave with JSON_COMPACT | JSON_REAL_PRECISION(7): same key order, same
 * escapes, same number format. */

static int buf_reserve(buf_t *b, size_t n)
{
    if (b->oom) return -1;
    if (b->len + n < b->cap) return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap <= b->len + n)
        cap *= 2;
    char *q = realloc(b->p, cap);
    if (!q) {
        b->oom = 1;
        return -1;
    }
    b->p = q;
    b->cap = cap;
    return 0;
}

static void buf_put(buf_t *b, const char *s, size_t n)
{
    if (buf_reserve(b, n)) return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

#define BUF_LIT(b, lit) buf_put((b), (lit), sizeof(lit) - 1)

/* A JSON string as jansson writes it: '"', '\\' and control characters
 * escaped, UTF-8 as is.  Ids from the request are valid UTF-8; one that
 * is not (only possible from the catalogue) gets '?' for its non-ASCII
 * bytes, where jansson would have refused the whole answer. */
static void buf_json_str(buf_t *b, const char *s, size_t len)
{
    int ok = sr_api_utf8_valid(s, len);
    if (buf_reserve(b, 6 * len + 2)) return;
    char *o = b->p + b->len;
    *o++ = '"';
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            *o++ = '\\';
            *o++ = (char)c;
        } else if (c < 0x20) {
            static const char hex[] = "0123456789ABCDEF";
            *o++ = '\\';
            switch (c) {
            case '\b':
                *o++ = 'b';
                break;
            case '\f':
                *o++ = 'f';
                break;
            case '\n':
                *o++ = 'n';
                break;
            case '\r':
                *o++ = 'r';
                break;
            case '\t':
                *o++ = 't';
                break;
            default:
                memcpy(o, "u00", 3);
                o += 3;
                *o++ = hex[c >> 4];
                *o++ = hex[c & 15];
            }
        } else {
            *o++ = !ok && c >= 0x80 ? '?' : (char)c;
        }
    }
    *o++ = '"';
    b->len = (size_t)(o - b->p);
}

/* jansson's jsonp_dtostr at precision 7: "%.7g", ".0" appended when
 * that has no '.' or 'e', no '+' or leading zeros in the exponent. */
static int dtostr7(char *t, size_t size, double v)
{
    int n = snprintf(t, size, "%.7g", v);
    if (n < 0 || (size_t)n >= size - 3) return -1;
    if (!strchr(t, '.') && !strchr(t, 'e')) {
        memcpy(t + n, ".0", 3);
        n += 2;
    }
    char *e = strchr(t, 'e');
    if (e) {
        char *start = e + 1, *end = e + 2;
        if (*start == '-') start++;
        while (*end == '0')
            end++;
        if (end != start) {
            memmove(start, end, (size_t)(t + n + 1 - end));
            n -= (int)(end - start);
        }
    }
    return n;
}

int sr_api_format_score(float v, char *t) { return dtostr7(t, 32, (double)v); }

static void buf_json_real(buf_t *b, float v)
{
    char t[40];
    int n = sr_api_format_score(v, t);
    if (n < 0) {
        b->oom = 1;
        return;
    }
    buf_put(b, t, (size_t)n);
}

static void buf_json_int(buf_t *b, long long v)
{
    char t[24];
    int n = snprintf(t, sizeof t, "%lld", v);
    buf_put(b, t, (size_t)n);
}

/* "items":[...] of a result; with_unknown marks rank's unknown items. */
static void buf_items(buf_t *b, const sr_ranker_result_t *res, int with_unknown)
{
    BUF_LIT(b, "\"items\":[");
    for (size_t i = 0; i < res->n; i++) {
        const sr_ranked_t *it = &res->items[i];
        if (i) BUF_LIT(b, ",");
        BUF_LIT(b, "{\"item\":");
        buf_json_str(b, it->id, it->id_len);
        if (with_unknown && it->unknown) {
            BUF_LIT(b, ",\"unknown\":true}");
        } else if (isfinite(it->score)) {
            BUF_LIT(b, ",\"score\":");
            buf_json_real(b, it->score);
            BUF_LIT(b, "}");
        } else {
            BUF_LIT(b, ",\"score\":null}");
        }
    }
    BUF_LIT(b, "]");
}

/* Hands a written answer to resp (a 500 when writing ran out of memory). */
static void set_buf(sr_api_response_t *resp, buf_t *b)
{
    if (b->oom) {
        free(b->p);
        set_json(resp, 500, NULL);
        return;
    }
    resp->status = 200;
    resp->content_type = "application/json";
    resp->body = b->p;
    resp->body_len = b->len;
    b->p = NULL;
}

/* The answer of recommend, rank, similar and popular: an optional id
 * field (key: "user" or "item"), an optional source, the items, took_us. */
static void set_result(sr_api_response_t *resp, const char *key, const char *id, size_t id_len,
                       const char *source, const sr_ranker_result_t *res, int with_unknown,
                       int64_t took)
{
    buf_t b = {0};
    BUF_LIT(&b, "{");
    if (key) {
        BUF_LIT(&b, "\"");
        buf_put(&b, key, strlen(key));
        BUF_LIT(&b, "\":");
        buf_json_str(&b, id, id_len);
        BUF_LIT(&b, ",");
    }
    if (source) {
        BUF_LIT(&b, "\"source\":\"");
        buf_put(&b, source, strlen(source));
        BUF_LIT(&b, "\",");
    }
    buf_items(&b, res, with_unknown);
    BUF_LIT(&b, ",\"took_us\":");
    buf_json_int(&b, (long long)took);
    BUF_LIT(&b, "}");
    set_buf(resp, &b);
}

/* ---- parameters ---- */

typedef struct qarg {
    const char *name;
    const char *value;
    size_t len;
    int present;
} qarg_t;

/* Matches the request's parameters against the allowed names; 0 or an error
 * response already set. */
static int bind_params(const sr_api_request_t *req, qarg_t *args, size_t nargs,
                       sr_api_response_t *resp)
{
    for (size_t i = 0; i < req->n_params; i++) {
        const sr_api_param_t *p = &req->params[i];
        size_t j = 0;
        while (j < nargs && strcmp(args[j].name, p->key) != 0)
            j++;
        if (j == nargs) {
            char key[64];
            snprintf(key, sizeof(key), "%s", p->key);
            set_error(resp, 400, "unknown parameter '%s'", key);
            return -1;
        }
        if (args[j].present) {
            set_error(resp, 400, "parameter '%s' given twice", args[j].name);
            return -1;
        }
        args[j].present = 1;
        args[j].value = p->value;
        args[j].len = p->value_len;
    }
    return 0;
}

static int check_id(const sr_api_t *a, const char *what, const char *v, size_t len,
                    sr_api_response_t *resp)
{
    if (len == 0) {
        set_error(resp, 400, "'%s' must not be empty", what);
        return -1;
    }
    if (len > (size_t)a->lim.id_max) {
        set_error(resp, 400, "'%s' is longer than %d bytes", what, a->lim.id_max);
        return -1;
    }
    if (memchr(v, 0, len) || !sr_api_utf8_valid(v, len)) {
        set_error(resp, 400, "'%s' is not valid UTF-8", what);
        return -1;
    }
    return 0;
}

static int require_id(const sr_api_t *a, const qarg_t *q, sr_api_response_t *resp)
{
    if (!q->present) {
        set_error(resp, 400, "missing parameter '%s'", q->name);
        return -1;
    }
    return check_id(a, q->name, q->value, q->len, resp);
}

static int parse_k(const sr_api_t *a, const qarg_t *q, size_t *k, sr_api_response_t *resp)
{
    *k = 10;
    if (!q->present) return 0;
    long long v = 0;
    int ok = q->len > 0 && q->len <= 9;
    for (size_t i = 0; ok && i < q->len; i++) {
        if (q->value[i] < '0' || q->value[i] > '9')
            ok = 0;
        else
            v = v * 10 + (q->value[i] - '0');
    }
    if (!ok || v < 1 || v > a->lim.k_max) {
        set_error(resp, 400, "'k' must be an integer from 1 to %d", a->lim.k_max);
        return -1;
    }
    *k = (size_t)v;
    return 0;
}

static int64_t took_us(const sr_api_request_t *req, int64_t t0)
{
    return (mono_ns() - (req->start_ns ? req->start_ns : t0)) / 1000;
}

static const char *source_name(sr_source_t s)
{
    return s == SR_SOURCE_PERSONAL ? "personal" : "popular";
}

/* Maps a ranker error to a response; 0 when rc is not an error. */
static int ranker_error(sr_ranker_t *r, int rc, sr_api_response_t *resp)
{
    if (rc >= 0) return 0;
    if (rc == SR_ERR_UNAVAIL || rc == SR_ERR_REDIS || rc == SR_ERR_TIMEOUT) {
        char why[160];
        sr_ranker_reason(r, why, sizeof(why));
        if (rc == SR_ERR_UNAVAIL && !why[0] && !sr_ranker_loaded(r))
            set_error(resp, 503, "items not loaded yet");
        else
            set_error(resp, 503, "redis unavailable%s%s", why[0] ? ": " : "", why);
    } else if (rc == SR_ERR_NOMEM) {
        set_error(resp, 500, "out of memory");
    } else {
        set_error(resp, 500, "internal error: %s", sr_strerror(rc));
    }
    return -1;
}

/* ---- handlers ---- */

static void h_recommend(sr_api_t *a, const sr_api_request_t *req, sr_api_response_t *resp,
                        int64_t t0)
{
    qarg_t q[] = {{.name = "user"}, {.name = "k"}, {.name = "exclude"}};
    if (bind_params(req, q, 3, resp) || require_id(a, &q[0], resp)) return;
    size_t k;
    if (parse_k(a, &q[1], &k, resp)) return;
    sr_exclude_t ex = SR_EXCLUDE_NONE;
    if (q[2].present) {
        if (q[2].len == 4 && memcmp(q[2].value, "none", 4) == 0)
            ex = SR_EXCLUDE_NONE;
        else if (q[2].len == 9 && memcmp(q[2].value, "purchased", 9) == 0)
            ex = SR_EXCLUDE_PURCHASED;
        else if (q[2].len == 4 && memcmp(q[2].value, "seen", 4) == 0)
            ex = SR_EXCLUDE_SEEN;
        else {
            set_error(resp, 400, "'exclude' must be one of none, purchased, seen");
            return;
        }
    }
    sr_ranker_result_t res;
    int rc = sr_ranker_recommend(a->r, q[0].value, q[0].len, k, ex, &res);
    if (ranker_error(a->r, rc, resp)) return;
    set_result(resp, "user", q[0].value, q[0].len, source_name(res.source), &res, 0,
               took_us(req, t0));
    sr_ranker_result_free(&res);
}

/* ---- the /v1/rank body's fast path (sr_api.h) ---- */

void sr_api_rank_body_free(sr_api_rank_body_t *b)
{
    if (!b) return;
    free(b->ids);
    free(b->lens);
    memset(b, 0, sizeof(*b));
}

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

/* A string without escapes or control characters, valid UTF-8; returns
 * the position after it, or NULL (not for the fast path). */
static const char *plain_string(const char *p, const char *end, const char **s, size_t *len)
{
    if (p == end || *p != '"') return NULL;
    const char *q = ++p;
    while (q < end && *q != '"') {
        if (*q == '\\' || (unsigned char)*q < 0x20) return NULL;
        q++;
    }
    if (q == end || !sr_api_utf8_valid(p, (size_t)(q - p))) return NULL;
    *s = p;
    *len = (size_t)(q - p);
    return q + 1;
}

/* After a list element: 1 at a ',' (skipped, and the space after it), 0
 * at the closing byte (skipped), -1 at anything else. */
static int next_in_list(const char **pp, const char *end, char close)
{
    const char *p = skip_ws(*pp, end);
    if (p < end && *p == ',') {
        *pp = skip_ws(p + 1, end);
        return 1;
    }
    if (p < end && *p == close) {
        *pp = p + 1;
        return 0;
    }
    return -1;
}

static int body_push(sr_api_rank_body_t *b, const char *s, size_t len)
{
    if (b->n == b->cap_) {
        size_t cap = b->cap_ ? 2 * b->cap_ : 256;
        const char **ids = realloc(b->ids, cap * sizeof(*ids));
        if (ids) b->ids = ids;
        size_t *lens = ids ? realloc(b->lens, cap * sizeof(*lens)) : NULL;
        if (!lens) return SR_ERR_NOMEM;
        b->lens = lens;
        b->cap_ = cap;
    }
    b->ids[b->n] = s;
    b->lens[b->n++] = len;
    return 0;
}

int sr_api_parse_rank_body(const char *body, size_t len, sr_api_rank_body_t *out)
{
    enum { MEMBERS_MAX = 16 };
    memset(out, 0, sizeof(*out));
    const char *p = body, *end = body + len;
    const char *keys[MEMBERS_MAX];
    size_t klens[MEMBERS_MAX], nk = 0;
    int have_user = 0, have_items = 0;
    p = skip_ws(p, end);
    if (p == end || *p++ != '{') return 0;
    p = skip_ws(p, end);
    if (p < end && *p == '}') return 0; /* no user: jansson words it */
    for (;;) {
        const char *k;
        size_t kl;
        if (nk == MEMBERS_MAX || !(p = plain_string(p, end, &k, &kl))) goto other;
        for (size_t j = 0; j < nk; j++)
            if (klens[j] == kl && memcmp(keys[j], k, kl) == 0) goto other; /* duplicate */
        keys[nk] = k;
        klens[nk++] = kl;
        int is_user = kl == 4 && memcmp(k, "user", 4) == 0;
        int is_items = kl == 5 && memcmp(k, "items", 5) == 0;
        p = skip_ws(p, end);
        if (p == end || *p++ != ':') goto other;
        p = skip_ws(p, end);
        if (p < end && *p == '"') {
            const char *v;
            size_t vl;
            if (is_items || !(p = plain_string(p, end, &v, &vl))) goto other;
            if (is_user) {
                out->user = v;
                out->user_len = vl;
                have_user = 1;
            }
        } else if (p < end && *p == '[') {
            if (is_user) goto other;
            p = skip_ws(p + 1, end);
            if (p < end && *p == ']') {
                p++;
            } else {
                for (;;) {
                    const char *v;
                    size_t vl;
                    if (!(p = plain_string(p, end, &v, &vl))) goto other;
                    if (is_items && body_push(out, v, vl)) {
                        sr_api_rank_body_free(out);
                        return SR_ERR_NOMEM;
                    }
                    int more = next_in_list(&p, end, ']');
                    if (more < 0) goto other;
                    if (!more) break;
                }
            }
            have_items |= is_items;
        } else {
            goto other;
        }
        int more = next_in_list(&p, end, '}');
        if (more < 0) goto other;
        if (!more) break;
    }
    if (skip_ws(p, end) != end || !have_user || !have_items) goto other;
    return 1;
other:
    sr_api_rank_body_free(out);
    return 0;
}

static void rank_answer(sr_api_t *a, const sr_api_request_t *req, sr_api_response_t *resp,
                        int64_t t0, const char *user, size_t user_len, const char **ids,
                        const size_t *lens, size_t n)
{
    sr_ranker_result_t res;
    int rc = sr_ranker_rank(a->r, user, user_len, ids, lens, n, &res);
    if (ranker_error(a->r, rc, resp)) return;
    set_result(resp, "user", user, user_len, source_name(res.source), &res, 1, took_us(req, t0));
    sr_ranker_result_free(&res);
}

static int too_many(const sr_api_t *a, size_t n, sr_api_response_t *resp)
{
    if (n <= (size_t)a->lim.candidates_max) return 0;
    set_error(resp, 400, "too many candidates: %zu (at most %d)", n, a->lim.candidates_max);
    return -1;
}

static int check_item(const sr_api_t *a, size_t i, const char *id, size_t len,
                      sr_api_response_t *resp)
{
    char what[32];
    snprintf(what, sizeof(what), "items[%zu]", i);
    return check_id(a, what, id, len, resp);
}

static void h_rank(sr_api_t *a, const sr_api_request_t *req, sr_api_response_t *resp, int64_t t0)
{
    qarg_t none[1];
    if (bind_params(req, none, 0, resp)) return;
    if (req->body_len == 0) {
        set_error(resp, 400, "missing JSON body {\"user\":...,\"items\":[...]}");
        return;
    }
    /* The common body without a JSON tree (200 strings would be 200
     * allocations); anything else, errors included, goes through jansson
     * below, with the same checks in the same order. */
    sr_api_rank_body_t fb;
    int fast = sr_api_parse_rank_body(req->body, req->body_len, &fb);
    if (fast < 0) {
        set_error(resp, 500, "out of memory");
        return;
    }
    if (fast) {
        int bad = check_id(a, "user", fb.user, fb.user_len, resp) || too_many(a, fb.n, resp);
        for (size_t i = 0; !bad && i < fb.n; i++)
            bad = check_item(a, i, fb.ids[i], fb.lens[i], resp);
        if (!bad) rank_answer(a, req, resp, t0, fb.user, fb.user_len, fb.ids, fb.lens, fb.n);
        sr_api_rank_body_free(&fb);
        return;
    }
    json_error_t jerr;
    json_t *doc = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!doc) {
        set_error(resp, 400, "malformed JSON at line %d column %d: %s", jerr.line, jerr.column,
                  jerr.text);
        return;
    }
    const char **ids = NULL;
    size_t *lens = NULL;
    if (!json_is_object(doc)) {
        set_error(resp, 400, "the body must be a JSON object");
        goto out;
    }
    json_t *user = json_object_get(doc, "user");
    json_t *items = json_object_get(doc, "items");
    if (!user) {
        set_error(resp, 400, "missing field 'user'");
        goto out;
    }
    if (!json_is_string(user)) {
        set_error(resp, 400, "'user' must be a string");
        goto out;
    }
    if (check_id(a, "user", json_string_value(user), json_string_length(user), resp)) goto out;
    if (!items) {
        set_error(resp, 400, "missing field 'items'");
        goto out;
    }
    if (!json_is_array(items)) {
        set_error(resp, 400, "'items' must be an array of strings");
        goto out;
    }
    size_t n = json_array_size(items);
    if (too_many(a, n, resp)) goto out;
    ids = malloc((n ? n : 1) * sizeof(*ids));
    lens = malloc((n ? n : 1) * sizeof(*lens));
    if (!ids || !lens) {
        set_error(resp, 500, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(items, i);
        if (!json_is_string(e)) {
            set_error(resp, 400, "items[%zu] must be a string", i);
            goto out;
        }
        ids[i] = json_string_value(e);
        lens[i] = json_string_length(e);
        if (check_item(a, i, ids[i], lens[i], resp)) goto out;
    }
    rank_answer(a, req, resp, t0, json_string_value(user), json_string_length(user), ids, lens, n);
out:
    free(ids);
    free(lens);
    json_decref(doc);
}

static void h_similar(sr_api_t *a, const sr_api_request_t *req, sr_api_response_t *resp, int64_t t0)
{
    qarg_t q[] = {{.name = "item"}, {.name = "k"}};
    if (bind_params(req, q, 2, resp) || require_id(a, &q[0], resp)) return;
    size_t k;
    if (parse_k(a, &q[1], &k, resp)) return;
    sr_ranker_result_t res;
    int rc = sr_ranker_similar(a->r, q[0].value, q[0].len, k, &res);
    if (rc == SR_ERR_NOTFOUND) {
        char id[160];
        snprintf(id, sizeof(id), "%.*s", (int)(q[0].len < 128 ? q[0].len : 128), q[0].value);
        set_error(resp, 404, "unknown item '%s'", id);
        return;
    }
    if (ranker_error(a->r, rc, resp)) return;
    set_result(resp, "item", q[0].value, q[0].len, NULL, &res, 0, took_us(req, t0));
    sr_ranker_result_free(&res);
}

static void h_popular(sr_api_t *a, const sr_api_request_t *req, sr_api_response_t *resp, int64_t t0)
{
    qarg_t q[] = {{.name = "k"}};
    if (bind_params(req, q, 1, resp)) return;
    size_t k;
    if (parse_k(a, &q[0], &k, resp)) return;
    sr_ranker_result_t res;
    int rc = sr_ranker_popular(a->r, k, &res);
    if (ranker_error(a->r, rc, resp)) return;
    set_result(resp, NULL, NULL, 0, "popular", &res, 0, took_us(req, t0));
    sr_ranker_result_free(&res);
}

static void h_healthz(sr_api_t *a, const sr_api_request_t *req, sr_api_response_t *resp)
{
    qarg_t none[1];
    if (bind_params(req, none, 0, resp)) return;
    sr_ranker_health_t h;
    int rc = sr_ranker_health(a->r, &h);
    json_t *o = json_pack("{s:s,s:b,s:b,s:I,s:I}", "status", rc == 0 ? "ok" : "unhealthy", "redis",
                          h.redis_ok, "loaded", h.loaded, "items", (json_int_t)h.items,
                          "stream_lag", (json_int_t)h.stream_lag);
    if (o && h.reason[0]) json_object_set_new(o, "reason", json_string(h.reason));
    set_json(resp, rc == 0 ? 200 : 503, o);
}

char *sr_api_metrics_text(sr_api_t *a)
{
    buf_t b = {0};
    buf_printf(&b, "# HELP streamrec_ranker_requests_total HTTP requests by route and status "
                   "code.\n# TYPE streamrec_ranker_requests_total counter\n");
    long long errors_4 = 0, errors_5 = 0;
    for (int r = 0; r < R_N; r++)
        for (size_t c = 0; c < N_CODES; c++) {
            long long v = atomic_load_explicit(&a->count[r][c], memory_order_relaxed);
            int code = c < N_CODES - 1 ? codes[c] : 0;
            if (code >= 400 && code < 500) errors_4 += v;
            if (code >= 500 || code == 0) errors_5 += v;
            if (!v && !(code == 200 && r != R_OTHER)) continue;
            if (code)
                buf_printf(&b, "streamrec_ranker_requests_total{route=\"%s\",code=\"%d\"} %lld\n",
                           route_name[r], code, v);
            else
                buf_printf(&b,
                           "streamrec_ranker_requests_total{route=\"%s\",code=\"other\"} %lld\n",
                           route_name[r], v);
        }
    buf_printf(&b,
               "# HELP streamrec_ranker_errors_total Responses with a 4xx (client) or 5xx "
               "(server) status.\n# TYPE streamrec_ranker_errors_total counter\n"
               "streamrec_ranker_errors_total{kind=\"client\"} %lld\n"
               "streamrec_ranker_errors_total{kind=\"server\"} %lld\n",
               errors_4, errors_5);
    buf_printf(&b, "# HELP streamrec_ranker_request_duration_seconds Time from request to "
                   "response, by route.\n# TYPE streamrec_ranker_request_duration_seconds "
                   "histogram\n");
    for (int r = 0; r < R_N; r++) {
        long long cum = 0;
        for (size_t i = 0; i < N_BUCKETS; i++) {
            cum += atomic_load_explicit(&a->bucket[r][i], memory_order_relaxed);
            if (i < N_BUCKETS - 1)
                buf_printf(&b,
                           "streamrec_ranker_request_duration_seconds_bucket{route=\"%s\","
                           "le=\"%g\"} %lld\n",
                           route_name[r], bucket_s[i], cum);
            else
                buf_printf(&b,
                           "streamrec_ranker_request_duration_seconds_bucket{route=\"%s\","
                           "le=\"+Inf\"} %lld\n",
                           route_name[r], cum);
        }
        buf_printf(&b, "streamrec_ranker_request_duration_seconds_sum{route=\"%s\"} %.9f\n",
                   route_name[r], (double)atomic_load(&a->sum_ns[r]) / 1e9);
        buf_printf(&b, "streamrec_ranker_request_duration_seconds_count{route=\"%s\"} %lld\n",
                   route_name[r], cum);
    }
    sr_ranker_health_t h;
    sr_ranker_health(a->r, &h);
    buf_printf(&b,
               "# HELP streamrec_ranker_items_loaded Items in the in-memory catalogue.\n"
               "# TYPE streamrec_ranker_items_loaded gauge\nstreamrec_ranker_items_loaded %u\n"
               "# HELP streamrec_ranker_stream_lag Item updates in Redis not yet applied.\n"
               "# TYPE streamrec_ranker_stream_lag gauge\nstreamrec_ranker_stream_lag %" PRId64 "\n"
               "# HELP streamrec_ranker_redis_up 1 when the last Redis call succeeded.\n"
               "# TYPE streamrec_ranker_redis_up gauge\nstreamrec_ranker_redis_up %d\n",
               h.items, h.stream_lag, h.redis_ok);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

void sr_api_stats(sr_api_t *a, sr_api_stats_t *st)
{
    memset(st, 0, sizeof(*st));
    for (int r = 0; r < R_N; r++)
        for (size_t c = 0; c < N_CODES; c++) {
            long long v = atomic_load_explicit(&a->count[r][c], memory_order_relaxed);
            st->requests += v;
            if (c == N_CODES - 1 || codes[c] >= 400) st->errors += v;
        }
    long long d[FINE_N], total = 0;
    for (int i = 0; i < FINE_N; i++) {
        long long v = atomic_load_explicit(&a->fine[i], memory_order_relaxed);
        d[i] = v - a->fine_prev[i];
        a->fine_prev[i] = v;
        total += d[i];
    }
    st->interval_count = total;
    st->max_us = (double)atomic_exchange(&a->fine_max_ns, 0) / 1000.0;
    if (!total) return;
    long long c50 = (total + 1) / 2, c99 = total - total / 100, cum = 0;
    for (int i = 0; i < FINE_N; i++) {
        cum += d[i];
        if (!st->p50_us && cum >= c50) st->p50_us = fine_upper_us(i);
        if (!st->p99_us && cum >= c99) {
            st->p99_us = fine_upper_us(i);
            break;
        }
    }
    if (st->max_us && st->p99_us > st->max_us) st->p99_us = st->max_us;
    if (st->max_us && st->p50_us > st->max_us) st->p50_us = st->max_us;
}

/* ---- dispatch ---- */

void sr_api_handle(sr_api_t *a, const sr_api_request_t *req, sr_api_response_t *resp)
{
    int64_t t0 = req->start_ns ? req->start_ns : mono_ns();
    memset(resp, 0, sizeof(*resp));
    int route = route_of(req->path);
    const char *method = req->method ? req->method : "";
    int is_get = strcmp(method, "GET") == 0;
    int is_post = strcmp(method, "POST") == 0;
    if (route == R_OTHER) {
        char path[160];
        snprintf(path, sizeof(path), "%s", req->path ? req->path : "");
        set_error(resp, 404, "no such route '%s'", path);
    } else if (route == R_RANK ? !is_post : !is_get) {
        resp->allow = route == R_RANK ? "POST" : "GET";
        set_error(resp, 405, "method %.16s not allowed on %s; use %s", method, req->path,
                  resp->allow);
    } else if (req->body_too_large) {
        set_error(resp, 413, "body larger than %zu bytes", a->lim.body_max);
    } else if (route != R_RANK && req->body_len > 0) {
        set_error(resp, 400, "%s takes no body", req->path);
    } else {
        switch (route) {
        case R_RECOMMEND:
            h_recommend(a, req, resp, t0);
            break;
        case R_RANK:
            h_rank(a, req, resp, t0);
            break;
        case R_SIMILAR:
            h_similar(a, req, resp, t0);
            break;
        case R_POPULAR:
            h_popular(a, req, resp, t0);
            break;
        case R_HEALTHZ:
            h_healthz(a, req, resp);
            break;
        case R_METRICS: {
            qarg_t none[1];
            if (bind_params(req, none, 0, resp)) break;
            char *t = sr_api_metrics_text(a);
            if (!t) {
                set_error(resp, 500, "out of memory");
                break;
            }
            resp->status = 200;
            resp->content_type = "text/plain; version=0.0.4";
            resp->body = t;
            resp->body_len = strlen(t);
            break;
        }
        default:
            set_error(resp, 404, "no such route");
        }
    }
    count(a, route, resp->status, mono_ns() - t0);
}
