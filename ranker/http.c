/* libmicrohttpd glue for the ranker (see sr_http.h).  A request's body is
 * collected in a per-request buffer up to the limit; everything else is
 * sr_api_handle's business. */
#include "sr_http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sr_err.h"
#include "sr_log.h"

#define PARAMS_MAX 16

struct sr_http_s {
    struct MHD_Daemon *d;
    sr_api_t *api;
    size_t body_max;
    int port;
};

typedef struct req_ctx {
    int64_t start_ns;
    char *body;
    size_t len, cap;
    int too_large;
    int answered;
} req_ctx_t;

typedef struct param_acc {
    sr_api_param_t p[PARAMS_MAX];
    char *keys[PARAMS_MAX];
    size_t n;
    int overflow;
} param_acc_t;

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static enum MHD_Result collect_param(void *cls, enum MHD_ValueKind kind, const char *key,
                                     size_t key_size, const char *value, size_t value_size)
{
    (void)kind;
    (void)key_size;
    param_acc_t *acc = cls;
    if (acc->n == PARAMS_MAX) {
        acc->overflow = 1;
        return MHD_NO;
    }
    acc->p[acc->n].key = key;
    acc->p[acc->n].value = value ? value : "";
    acc->p[acc->n].value_len = value ? value_size : 0;
    acc->n++;
    return MHD_YES;
}

static enum MHD_Result send_response(struct MHD_Connection *c, sr_api_response_t *resp)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(resp->body_len, resp->body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        sr_api_response_free(resp);
        return MHD_NO;
    }
    resp->body = NULL; /* owned by MHD now */
    if (resp->content_type) MHD_add_response_header(r, "Content-Type", resp->content_type);
    if (resp->allow) MHD_add_response_header(r, "Allow", resp->allow);
    enum MHD_Result ok = MHD_queue_response(c, (unsigned)resp->status, r);
    MHD_destroy_response(r);
    return ok;
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **con_cls)
{
    (void)version;
    sr_http_t *h = cls;
    req_ctx_t *ctx = *con_cls;
    if (!ctx) {
        ctx = calloc(1, sizeof(*ctx));
        if (!ctx) return MHD_NO;
        ctx->start_ns = mono_ns();
        *con_cls = ctx;
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        if (cl) {
            char *end;
            unsigned long long v = strtoull(cl, &end, 10);
            if (*end == 0 && v > h->body_max) ctx->too_large = 1;
        }
        if (!ctx->too_large) return MHD_YES;
    }
    if (ctx->answered) {
        *upload_size = 0;
        return MHD_YES;
    }
    if (*upload_size > 0 && ctx->too_large) {
        /* Over the limit mid-upload (chunked, no Content-Length): MHD only
         * lets us answer once the upload is read, so the rest is read and
         * dropped; the idle timeout bounds a client that never finishes. */
        *upload_size = 0;
        return MHD_YES;
    }
    if (*upload_size > 0) {
        size_t n = *upload_size;
        if (ctx->len + n > h->body_max) {
            ctx->too_large = 1;
            free(ctx->body);
            ctx->body = NULL;
            ctx->len = ctx->cap = 0;
            *upload_size = 0;
            return MHD_YES;
        } else {
            if (ctx->len + n > ctx->cap) {
                size_t cap = ctx->cap ? ctx->cap : 1024;
                while (cap < ctx->len + n)
                    cap *= 2;
                char *b = realloc(ctx->body, cap);
                if (!b) return MHD_NO;
                ctx->body = b;
                ctx->cap = cap;
            }
            memcpy(ctx->body + ctx->len, upload, n);
            ctx->len += n;
            *upload_size = 0;
            return MHD_YES;
        }
    }
    /* The body is complete (upload_size == 0), or Content-Length announced
     * too much on the first call: answer now.  Queueing before the upload
     * starts tells MHD to skip the body and close after the response. */
    *upload_size = 0;
    param_acc_t acc = {.n = 0};
    MHD_get_connection_values_n(c, MHD_GET_ARGUMENT_KIND, collect_param, &acc);
    sr_api_request_t req = {.method = method,
                            .path = url,
                            .params = acc.p,
                            .n_params = acc.n,
                            .body = ctx->body,
                            .body_len = ctx->too_large ? 0 : ctx->len,
                            .body_too_large = ctx->too_large,
                            .start_ns = ctx->start_ns};
    sr_api_response_t resp;
    if (acc.overflow) {
        static const char msg[] = "{\"error\":\"too many query parameters\"}";
        resp = (sr_api_response_t){.status = 400, .content_type = "application/json"};
        resp.body = malloc(sizeof(msg));
        if (!resp.body) return MHD_NO;
        memcpy(resp.body, msg, sizeof(msg));
        resp.body_len = sizeof(msg) - 1;
        sr_api_count(h->api, url, 400, mono_ns() - ctx->start_ns);
    } else {
        sr_api_handle(h->api, &req, &resp);
    }
    ctx->answered = 1;
    return send_response(c, &resp);
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    req_ctx_t *ctx = *con_cls;
    if (!ctx) return;
    free(ctx->body);
    free(ctx);
    *con_cls = NULL;
}

static void mhd_log(void *cls, const char *fm, va_list ap)
{
    (void)cls;
    if (SR_LOG_DEBUG > sr_log_level_) return;
    char msg[512];
    vsnprintf(msg, sizeof(msg), fm, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = 0;
    sr_log(SR_LOG_DEBUG, "http: %s", msg);
}

static int resolve(const char *listen, struct sockaddr_storage *ss, char *errstr, size_t n)
{
    char host[256];
    const char *colon = strrchr(listen, ':');
    if (!colon || colon == listen) {
        snprintf(errstr, n, "http.listen '%s': expected host:port", listen);
        return SR_ERR_INVAL;
    }
    size_t hl = (size_t)(colon - listen);
    const char *hs = listen;
    if (hs[0] == '[' && hl >= 2 && hs[hl - 1] == ']') {
        hs++;
        hl -= 2;
    }
    if (hl >= sizeof(host)) {
        snprintf(errstr, n, "http.listen '%s': host too long", listen);
        return SR_ERR_INVAL;
    }
    memcpy(host, hs, hl);
    host[hl] = 0;
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(hl ? host : NULL, colon + 1, &hints, &res);
    if (rc != 0 || !res) {
        snprintf(errstr, n, "http.listen '%s': %s", listen, gai_strerror(rc));
        return SR_ERR_INVAL;
    }
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    return 0;
}

sr_http_t *sr_http_new(sr_api_t *api, const sr_http_opts_t *o, char *errstr, size_t errstr_size)
{
    struct sockaddr_storage ss = {0};
    if (!api || !o || !o->listen) {
        snprintf(errstr, errstr_size, "http: missing api or listen address");
        return NULL;
    }
    if (resolve(o->listen, &ss, errstr, errstr_size)) return NULL;
    sr_http_t *h = calloc(1, sizeof(*h));
    if (!h) {
        snprintf(errstr, errstr_size, "http: out of memory");
        return NULL;
    }
    h->api = api;
    h->body_max = o->body_max ? o->body_max : 1048576;
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
    if (ss.ss_family == AF_INET6) flags |= MHD_USE_IPv6;
    unsigned threads = o->threads > 0 ? (unsigned)o->threads : 1;
    h->d = MHD_start_daemon(
        flags, 0, NULL, NULL, answer, h, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_CONNECTION_LIMIT,
        o->connections_max ? o->connections_max : 1024u, MHD_OPTION_CONNECTION_TIMEOUT,
        o->idle_timeout_s ? o->idle_timeout_s : 60u, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        o->header_max ? o->header_max : (size_t)65536, MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
        MHD_OPTION_END);
    if (!h->d) {
        snprintf(errstr, errstr_size, "http: cannot listen on %s (address in use or invalid)",
                 o->listen);
        free(h);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : -1;
    return h;
}

int sr_http_port(const sr_http_t *h)
{
    return h->port;
}

void sr_http_destroy(sr_http_t *h)
{
    if (!h) return;
    MHD_stop_daemon(h->d);
    free(h);
}
