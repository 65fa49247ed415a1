/* The ranker's HTTP API as pure functions: a request (method, path, decoded
 * query parameters, body) goes in, a response (status, JSON or Prometheus
 * text) comes out.  No sockets here, so every validation path, every JSON
 * shape and the metrics text are tested without a server (tests/unit/
 * test_ranker.c); sr_http.h only moves bytes between libmicrohttpd and
 * sr_api_handle.  The endpoints and their errors are documented in
 * docs/API.md.
 *
 * Threading: sr_api_handle, sr_api_metrics_text and sr_api_stats are safe
 * from any number of threads (counters are atomics; the ranker is
 * thread-safe).  new/destroy are single-threaded. */
#ifndef SR_API_H
#define SR_API_H

#include <stddef.h>
#include <stdint.h>

#include "sr_ranker.h"

typedef struct sr_api_s sr_api_t;

typedef struct sr_api_limits {
    int k_max;          /* largest k (ranker.k.max) */
    int candidates_max; /* most /v1/rank candidates (ranker.candidates.max) */
    size_t body_max;    /* largest body in bytes (ranker.body.max) */
    int id_max;         /* longest user/item id in bytes (ranker.id.max) */
} sr_api_limits_t;

/* One decoded query parameter; value need not be NUL-terminated. */
typedef struct sr_api_param {
    const char *key;
    const char *value;
    size_t value_len;
} sr_api_param_t;

typedef struct sr_api_request {
    const char *method;           /* "GET", "POST", ... */
    const char *path;             /* without the query string */
    const sr_api_param_t *params; /* decoded query parameters */
    size_t n_params;
    const char *body; /* may be NULL when body_len == 0 */
    size_t body_len;
    int body_too_large; /* the transport stopped reading: 413 */
    int64_t start_ns;   /* monotonic start, 0: "now" */
} sr_api_request_t;

typedef struct sr_api_response {
    int status;
    char *body; /* malloc'd, owned by the response */
    size_t body_len;
    const char *content_type; /* static string */
    const char *allow;        /* static string for 405, else NULL */
} sr_api_response_t;

/* A ranker's API with limits; the ranker is borrowed (must outlive it).
 * NULL on ENOMEM or bad limits. */
sr_api_t *sr_api_new(sr_ranker_t *r, const sr_api_limits_t *lim);
/* NULL is a no-op. */
void sr_api_destroy(sr_api_t *a);

/* Answers one request; always fills resp (on ENOMEM: 500 with a static
 * body).  Free resp with sr_api_response_free. */
void sr_api_handle(sr_api_t *a, const sr_api_request_t *req, sr_api_response_t *resp);
void sr_api_response_free(sr_api_response_t *resp);

/* Splits and %-decodes a query string in place ("a=1&b=x%20y"; '+' is a
 * space).  Returns the number of parameters (<= max) or SR_ERR_PARSE on a
 * bad escape or SR_ERR_FULL when there are more than max. */
int sr_api_parse_query(char *qs, sr_api_param_t *params, size_t max);

/* 1 when s[0..len) is well-formed UTF-8 (no overlongs, no surrogates, <=
 * U+10FFFF), else 0. */
int sr_api_utf8_valid(const char *s, size_t len);

/* A /v1/rank body read without building a JSON tree: pointers into the
 * body (ids not NUL-terminated, no escapes to undo). */
typedef struct sr_api_rank_body {
    const char *user;
    size_t user_len;
    const char **ids; /* n, malloc'd: free with sr_api_rank_body_free */
    size_t *lens;
    size_t n, cap_;
} sr_api_rank_body_t;

/* The fast path for the body every client sends: a JSON object whose
 * members are strings or arrays of strings (no escapes, at most 16
 * members, no duplicate keys), with a string "user" and an array "items".
 * Returns 1 and fills out for such a body, and then a full JSON parser
 * reads the same user and items from it; 0 for anything else (valid or
 * not: the caller parses it with jansson, which also words the error);
 * SR_ERR_NOMEM.  out is freed (and zeroed) on 0 and errors too. */
int sr_api_parse_rank_body(const char *body, size_t len, sr_api_rank_body_t *out);
void sr_api_rank_body_free(sr_api_rank_body_t *b);

/* Writes score as jansson writes a real at precision 7 (json_dumps with
 * JSON_REAL_PRECISION(7): "%.7g", ".0" added to a bare integer, a short
 * exponent) into t (at least 32 bytes, NUL-terminated); returns the
 * length, or -1 on a formatting error. */
int sr_api_format_score(float score, char *t);

/* Records a request answered outside sr_api_handle (the transport's own
 * 4xx, e.g. a header that was too large) in the metrics. */
void sr_api_count(sr_api_t *a, const char *path, int status, int64_t took_ns);

/* Prometheus text exposition of the counters (what GET /metrics returns),
 * malloc'd NUL-terminated; NULL on ENOMEM. */
char *sr_api_metrics_text(sr_api_t *a);

typedef struct sr_api_stats {
    int64_t requests; /* since start */
    int64_t errors;   /* since start: responses >= 400 */
    /* latency over the requests since the previous sr_api_stats call */
    double p50_us, p99_us, max_us;
    int64_t interval_count;
} sr_api_stats_t;

/* Totals plus quantiles of the latency since the previous call (the metrics
 * publisher calls it once per interval; one caller at a time). */
void sr_api_stats(sr_api_t *a, sr_api_stats_t *st);

#endif
