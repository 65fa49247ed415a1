/* The Redis side of the store: one hiredis connection per handle, key
 * names, pipelined batched reads and the atomic flush.  Every public call
 * first makes sure the connection is up (reconnecting after any failure),
 * so a Redis restart costs the caller one failed call and a retry.  Read
 * results live in a per-handle arena that is reset at the start of the
 * next call, which keeps the hot read paths free of per-record malloc. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <hiredis/hiredis.h>

#include "scripts.h"
#include "sr_err.h"
#include "sr_log.h"
#include "sr_store.h"
#include "sr_time.h"
#include "store_int.h"

/* Keys per MGET / fields per HMGET in one command of a pipeline. */
#define BATCH 1000
/* append_raw sends its buffer once it holds this much. */
#define SEND_CHUNK (128 * 1024)

struct sr_store_s {
    char host[256];
    int port;
    char password[256];
    int db;
    char prefix[128];
    char tag[136]; /* "{prefix}" */
    int timeout_ms;
    long stream_maxlen;
    sr_store_flush_mode_t flush_mode;
    int (*flush_hook)(void *, int); /* tests: sr_store_set_flush_hook */
    void *flush_hook_arg;
    /* Items as this handle's last transactions left them (see
     * icache_ent_t), valid while {prefix}:updates:seq == cache_seq. */
    struct icache_ent *icache;
    size_t icache_cap;
    uint32_t cache_gen;
    int64_t cache_seq; /* -1: nothing known */
    char *wbuf;        /* the transaction's writes as RESP (append_raw) */
    size_t wlen, wcap;

    redisContext *c;
    char sha_flush[48];
    char sha_assign[48];
    char err[512];
    int has_zmscore; /* Redis >= 6.2 */
    int cluster;     /* the server runs in Cluster mode */
    int stale;       /* got MOVED/ASK: rediscover the slot owner next call */
    size_t upd_per_entry; /* item updates per stream entry, last read */
    char node[300];  /* host:port actually connected to (after redirects) */

    sr_arena_t res;     /* results of the last call */
    sr_arena_t scratch; /* argument strings of the command being built */
    sr_idmap_t idmap;

    /* argv of the command being built */
    const char **argv;
    size_t *argvlen;
    size_t argc, argcap;
    int argv_oom;
};

static void cache_free(sr_store_t *s);

/* ------------------------------------------------------------------ */
/* errors and connection                                               */
/* ------------------------------------------------------------------ */

static int set_err(sr_store_t *s, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int set_err(sr_store_t *s, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->err, sizeof(s->err), fmt, ap);
    va_end(ap);
    return code;
}

static void disconnect(sr_store_t *s)
{
    if (s->c) redisFree(s->c);
    s->c = NULL;
}

/* The context failed (I/O, EOF, protocol): it cannot be reused. */
static int conn_fail(sr_store_t *s, const char *what)
{
    int code = SR_ERR_UNAVAIL;
    const char *msg = s->c ? s->c->errstr : "no connection";
    if (s->c && s->c->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK))
        code = SR_ERR_TIMEOUT, msg = "timed out";
    set_err(s, code, "redis %s: %s: %s", s->node, what, msg);
    disconnect(s);
    return code;
}

static void args_reset(sr_store_t *s)
{
    s->argc = 0;
    s->argv_oom = 0;
    sr_arena_reset(&s->scratch);
}

static void arg(sr_store_t *s, const void *p, size_t len)
{
    if (s->argc == s->argcap) {
        size_t nc = s->argcap ? s->argcap * 2 : 256;
        const char **a = realloc(s->argv, nc * sizeof(*a));
        size_t *l = a ? realloc(s->argvlen, nc * sizeof(*l)) : NULL;
        if (a) s->argv = a;
        if (l) s->argvlen = l;
        if (!a || !l) {
            s->argv_oom = 1;
            return;
        }
        s->argcap = nc;
    }
    s->argv[s->argc] = p ? p : "";
    s->argvlen[s->argc++] = len;
}

static void arg_str(sr_store_t *s, const char *str)
{
    arg(s, str, strlen(str));
}

static void argf(sr_store_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void argf(sr_store_t *s, const char *fmt, ...)
{
    char tmp[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    char *p = NULL;
    if (n >= 0 && (size_t)n < sizeof(tmp)) p = sr_arena_strdup(&s->scratch, tmp, (size_t)n);
    if (!p) {
        s->argv_oom = 1;
        return;
    }
    arg(s, p, (size_t)n);
}

/* v in decimal at the end of num[24]; returns where the digits start.
 * Without vsnprintf: a flush formats a number per item and two per
 * argument of its RESP. */
static size_t dec(char num[24], uint64_t v)
{
    size_t k = 24;
    do num[--k] = (char)('0' + v % 10);
    while ((v /= 10) > 0);
    return k;
}

static void arg_u32(sr_store_t *s, uint32_t v)
{
    char num[24];
    size_t k = dec(num, v);
    char *p = sr_arena_strdup(&s->scratch, num + k, 24 - k);
    if (!p) {
        s->argv_oom = 1;
        return;
    }
    arg(s, p, 24 - k);
}

/* A key "{prefix}:<kind><id>" built in the scratch arena. */
static void arg_key(sr_store_t *s, const char *kind, const char *id, size_t len)
{
    size_t tl = strlen(s->tag), kl = strlen(kind);
    char *p = sr_arena_alloc(&s->scratch, tl + 1 + kl + len + 1);
    if (!p) {
        s->argv_oom = 1;
        return;
    }
    memcpy(p, s->tag, tl);
    p[tl] = ':';
    memcpy(p + tl + 1, kind, kl);
    if (len) memcpy(p + tl + 1 + kl, id, len);
    arg(s, p, tl + 1 + kl + len);
}

/* Appends the argv built so far as one pipelined command and starts the
 * next one.  The arena is NOT reset: the strings live until the replies
 * are read. */
static int append(sr_store_t *s)
{
    if (s->argv_oom) return set_err(s, SR_ERR_NOMEM, "out of memory building a command");
    if (redisAppendCommandArgv(s->c, (int)s->argc, s->argv, s->argvlen) != REDIS_OK)
        return conn_fail(s, "append");
    s->argc = 0;
    return 0;
}

/* Writes a RESP length line (`*3` or `$12`, then CRLF) at p; returns its end. */
static char *resp_len(char *p, char tag, size_t n)
{
    char num[24];
    size_t k = dec(num, n);
    *p++ = tag;
    memcpy(p, num + k, 24 - k);
    p += 24 - k;
    *p++ = '\r', *p++ = '\n';
    return p;
}

/* Like append, but the RESP is written straight into s->wbuf, which
 * send_raw then writes to the socket.  For the megabytes of a
 * transaction's writes: hiredis's own output buffer grows 1 MB at a time
 * and moves the rest down after every partial write, which cost more than
 * Redis's work on them; and its redisFormatCommandArgv (a sprintf per
 * argument into a fresh buffer, then our copy of it) was 38% of the
 * flusher thread in `perf` at 50,000 events/s (docs/BENCHMARKS.md). */
static int send_raw(sr_store_t *s);

static int append_raw(sr_store_t *s)
{
    if (s->argv_oom) return set_err(s, SR_ERR_NOMEM, "out of memory building a command");
    size_t need = 24;
    for (size_t i = 0; i < s->argc; i++) need += s->argvlen[i] + 24;
    if (s->wlen + need > s->wcap) {
        size_t nc = s->wcap ? s->wcap : 65536;
        while (nc < s->wlen + need) nc *= 2;
        char *b = realloc(s->wbuf, nc);
        if (!b) return set_err(s, SR_ERR_NOMEM, "out of memory building a command");
        s->wbuf = b;
        s->wcap = nc;
    }
    char *p = s->wbuf + s->wlen;
    p = resp_len(p, '*', s->argc);
    for (size_t i = 0; i < s->argc; i++) {
        p = resp_len(p, '$', s->argvlen[i]);
        memcpy(p, s->argv[i], s->argvlen[i]);
        p += s->argvlen[i];
        *p++ = '\r', *p++ = '\n';
    }
    s->wlen = (size_t)(p - s->wbuf);
    s->argc = 0;
    /* Redis parses and queues what it has received while the rest is
     * built, instead of starting on megabytes only after the last byte. */
    return s->wlen >= SEND_CHUNK ? send_raw(s) : 0;
}

/* Writes s->wbuf to the connection (whose hiredis output buffer is empty:
 * every earlier reply was read), then the replies are read as usual. */
static int send_raw(sr_store_t *s)
{
    for (size_t off = 0; off < s->wlen;) {
        ssize_t n = send(s->c->fd, s->wbuf + off, s->wlen - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            int timeout = n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
            set_err(s, timeout ? SR_ERR_TIMEOUT : SR_ERR_UNAVAIL, "redis %s: write: %s", s->node,
                    timeout ? "timed out" : n < 0 ? strerror(errno) : "connection closed");
            disconnect(s);
            return timeout ? SR_ERR_TIMEOUT : SR_ERR_UNAVAIL;
        }
        off += (size_t)n;
    }
    s->wlen = 0;
    return 0;
}

/* Reads one reply.  A Redis error reply is returned in *r (type ERROR)
 * with 0: the caller decides; only connection failures return <0. */
static int reply(sr_store_t *s, redisReply **r)
{
    void *v = NULL;
    if (!s->c) return set_err(s, SR_ERR_UNAVAIL, "redis: not connected");
    if (redisGetReply(s->c, &v) != REDIS_OK || !v) return conn_fail(s, "read");
    *r = v;
    return 0;
}

/* Reads and discards n replies (after an error part-way through a
 * pipeline, to keep the connection in sync). */
static void drain(sr_store_t *s, size_t n)
{
    for (size_t i = 0; i < n && s->c; i++) {
        redisReply *r = NULL;
        if (reply(s, &r) == 0) freeReplyObject(r);
    }
}

static int reply_err(sr_store_t *s, const redisReply *r, const char *what)
{
    int code = SR_ERR_REDIS;
    if (!strncmp(r->str, "FENCED", 6)) code = SR_ERR_STATE;
    else if (!strncmp(r->str, "BADITEM", 7)) code = SR_ERR_VERSION;
    else if (!strncmp(r->str, "DUPITEM", 7)) code = SR_ERR_INVAL;
    else if (!strncmp(r->str, "BADKEY", 6)) code = SR_ERR_CORRUPT;
    else if (!strncmp(r->str, "MOVED", 5) || !strncmp(r->str, "ASK", 3))
        code = SR_ERR_UNAVAIL, s->stale = 1; /* resharded: find the owner again */
    else if (!strncmp(r->str, "LOADING", 7) || !strncmp(r->str, "BUSY", 4) ||
             !strncmp(r->str, "READONLY", 8) || !strncmp(r->str, "MASTERDOWN", 10))
        code = SR_ERR_UNAVAIL;
    return set_err(s, code, "redis %s: %.*s", what, (int)r->len, r->str);
}

/* Runs the command built in argv and returns its reply (errors included,
 * see reply()). */
static int command(sr_store_t *s, redisReply **r)
{
    int rc = append(s);
    if (rc < 0) return rc;
    return reply(s, r);
}

static int simple(sr_store_t *s, const char *what, redisReply **out)
{
    redisReply *r = NULL;
    int rc = command(s, &r);
    if (rc < 0) return rc;
    if (r->type == REDIS_REPLY_ERROR) {
        rc = reply_err(s, r, what);
        freeReplyObject(r);
        return rc;
    }
    if (out)
        *out = r;
    else
        freeReplyObject(r);
    return 0;
}

static int load_script(sr_store_t *s, const char *body, char *sha)
{
    args_reset(s);
    arg_str(s, "SCRIPT");
    arg_str(s, "LOAD");
    arg_str(s, body);
    redisReply *r = NULL;
    int rc = simple(s, "SCRIPT LOAD", &r);
    if (rc < 0) return rc;
    if (r->type != REDIS_REPLY_STRING || r->len >= 48) {
        freeReplyObject(r);
        return set_err(s, SR_ERR_REDIS, "redis SCRIPT LOAD: unexpected reply");
    }
    memcpy(sha, r->str, r->len);
    sha[r->len] = '\0';
    freeReplyObject(r);
    return 0;
}

/* "MOVED <slot> <host>:<port>": 1 and the target when r is a redirection
 * (an empty host means the node we asked). */
static int moved_to(const sr_store_t *s, const redisReply *r, char *host, size_t host_size,
                    int *port)
{
    if (r->type != REDIS_REPLY_ERROR || strncmp(r->str, "MOVED ", 6) != 0) return 0;
    const char *sp = strchr(r->str + 6, ' ');
    const char *colon = sp ? strrchr(sp + 1, ':') : NULL;
    if (!colon || (size_t)(colon - sp - 1) >= host_size) return 0;
    memcpy(host, sp + 1, (size_t)(colon - sp - 1));
    host[colon - sp - 1] = '\0';
    if (!host[0]) snprintf(host, host_size, "%s", s->host);
    *port = atoi(colon + 1);
    return *port > 0;
}

static int open_node(sr_store_t *s, const char *host, int port);

static int check_schema_at(sr_store_t *s, int redirected)
{
    char meta[160];
    snprintf(meta, sizeof(meta), "%s:meta", s->prefix);
    for (int attempt = 0; attempt < 2; attempt++) {
        args_reset(s);
        arg_str(s, "HGET");
        arg_str(s, meta);
        arg_str(s, "schema");
        redisReply *r = NULL;
        int rc = command(s, &r);
        if (rc < 0) return rc;
        char host[256];
        int port;
        if (!redirected && moved_to(s, r, host, sizeof(host), &port)) {
            /* Cluster: meta lives outside the {prefix} slot; read it on its
             * own node over a short-lived second connection. */
            freeReplyObject(r);
            redisContext *data = s->c;
            s->c = NULL;
            rc = open_node(s, host, port);
            if (rc == 0) rc = check_schema_at(s, 1);
            disconnect(s);
            s->c = data;
            return rc;
        }
        if (r->type == REDIS_REPLY_ERROR) {
            rc = reply_err(s, r, "HGET meta");
            freeReplyObject(r);
            return rc;
        }
        if (r->type == REDIS_REPLY_STRING) {
            int ok = r->len == 1 && r->str[0] == '0' + SR_STORE_SCHEMA;
            if (!ok)
                set_err(s, SR_ERR_VERSION,
                        "schema %.*s in %s, this build reads schema %d (docs/REDIS.md): "
                        "use another redis.prefix or database",
                        (int)(r->len > 32 ? 32 : r->len), r->str, meta, SR_STORE_SCHEMA);
            freeReplyObject(r);
            return ok ? 0 : SR_ERR_VERSION;
        }
        freeReplyObject(r);
        /* Absent: claim the namespace (HSETNX: two starting writers agree). */
        args_reset(s);
        arg_str(s, "HSETNX");
        arg_str(s, meta);
        arg_str(s, "schema");
        argf(s, "%d", SR_STORE_SCHEMA);
        rc = simple(s, "HSETNX meta", NULL);
        if (rc < 0) return rc;
        args_reset(s);
        arg_str(s, "HSETNX");
        arg_str(s, meta);
        arg_str(s, "tag");
        arg_str(s, s->tag);
        rc = simple(s, "HSETNX meta", NULL);
        if (rc < 0) return rc;
    }
    return set_err(s, SR_ERR_REDIS, "%s: schema field vanished while connecting", meta);
}

/* Cluster mode and optional commands (ZMSCORE needs Redis 6.2).  A server
 * that hides INFO or COMMAND is treated as standalone and old. */
static int detect_version(sr_store_t *s)
{
    args_reset(s);
    arg_str(s, "INFO");
    redisReply *r = NULL;
    int rc = command(s, &r);
    if (rc < 0) return rc;
    s->has_zmscore = 0;
    s->cluster = 0;
    if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS)
        s->cluster = strstr(r->str, "cluster_enabled:1") != NULL;
    freeReplyObject(r);
    /* Ask for the command itself rather than trusting the version: it may
     * be renamed or disabled (rename-command, ACLs). */
    args_reset(s);
    arg_str(s, "COMMAND");
    arg_str(s, "INFO");
    arg_str(s, "ZMSCORE");
    if ((rc = command(s, &r)) < 0) return rc;
    s->has_zmscore = r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
                     r->element[0]->type == REDIS_REPLY_ARRAY;
    freeReplyObject(r);
    return 0;
}

/* Connects s->c to host:port with the timeouts, AUTH and SELECT. */
static int open_node(sr_store_t *s, const char *host, int port)
{
    struct timeval tv = {s->timeout_ms / 1000, (s->timeout_ms % 1000) * 1000};
    snprintf(s->node, sizeof(s->node), "%s:%d", host, port);
    s->c = redisConnectWithTimeout(host, port, tv);
    if (!s->c) return set_err(s, SR_ERR_NOMEM, "redis: out of memory");
    if (s->c->err) return conn_fail(s, "connect");
    if (redisSetTimeout(s->c, tv) != REDIS_OK) return conn_fail(s, "set timeout");
    int rc;
    if (s->password[0]) {
        args_reset(s);
        arg_str(s, "AUTH");
        arg_str(s, s->password);
        if ((rc = simple(s, "AUTH", NULL)) < 0) goto fail;
    }
    if (s->db > 0) {
        args_reset(s);
        arg_str(s, "SELECT");
        argf(s, "%d", s->db);
        if ((rc = simple(s, "SELECT", NULL)) < 0) goto fail;
    }
    return 0;
fail:
    disconnect(s);
    return rc;
}

/* Cluster: every data key shares the {prefix} slot, so the store talks to
 * the one node that owns it.  Asks with a harmless read and follows MOVED
 * (a few hops at most, e.g. during a resharding). */
static int find_slot_owner(sr_store_t *s)
{
    for (int hop = 0; hop < 5; hop++) {
        args_reset(s);
        arg_str(s, "EXISTS");
        arg_key(s, "pop", "", 0);
        redisReply *r = NULL;
        int rc = command(s, &r);
        if (rc < 0) return rc;
        char host[256];
        int port;
        if (!moved_to(s, r, host, sizeof(host), &port)) {
            rc = r->type == REDIS_REPLY_ERROR ? reply_err(s, r, "EXISTS") : 0;
            freeReplyObject(r);
            return rc;
        }
        freeReplyObject(r);
        disconnect(s);
        if ((rc = open_node(s, host, port)) < 0) return rc;
    }
    return set_err(s, SR_ERR_REDIS, "redis cluster: too many MOVED redirections for %s", s->tag);
}

static int connect_now(sr_store_t *s)
{
    int rc = open_node(s, s->host, s->port);
    if (rc < 0) return rc;
    if ((rc = detect_version(s)) < 0) goto fail;
    if (s->cluster && (rc = find_slot_owner(s)) < 0) goto fail;
    if ((rc = check_schema_at(s, 0)) < 0) goto fail;
    if ((rc = load_script(s, sr_store_lua_flush, s->sha_flush)) < 0) goto fail;
    if ((rc = load_script(s, sr_store_lua_assign, s->sha_assign)) < 0) goto fail;
    return 0;
fail:
    disconnect(s);
    return rc;
}

/* Start of every public call: fresh result arena, live connection. */
static int begin(sr_store_t *s)
{
    s->err[0] = '\0';
    sr_arena_reset(&s->res);
    args_reset(s);
    if (s->stale) {
        disconnect(s);
        s->stale = 0;
    }
    if (s->c) return 0;
    return connect_now(s);
}

void sr_store_opts_init(sr_store_opts_t *o)
{
    memset(o, 0, sizeof(*o));
    o->host = "127.0.0.1";
    o->port = 6379;
    o->prefix = "sr";
    o->timeout_ms = 1000;
    o->stream_maxlen = 100000;
}

static int copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = src ? strlen(src) : 0;
    if (n >= cap) return -1;
    memcpy(dst, src ? src : "", n + 1);
    return 0;
}

sr_store_t *sr_store_new(const sr_store_opts_t *o, char *errstr, size_t errstr_size)
{
    sr_store_opts_t def;
    if (!o) {
        sr_store_opts_init(&def);
        o = &def;
    }
    const char *prefix = o->prefix && *o->prefix ? o->prefix : "sr";
    if (strpbrk(prefix, "{} \t\r\n") || strlen(prefix) > 100) {
        if (errstr && errstr_size)
            snprintf(errstr, errstr_size, "redis.prefix '%s': no braces or blanks, at most 100 bytes",
                     prefix);
        return NULL;
    }
    sr_store_t *s = calloc(1, sizeof(*s));
    if (!s) {
        if (errstr && errstr_size) snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    if (copy_str(s->host, sizeof(s->host), o->host && *o->host ? o->host : "127.0.0.1") ||
        copy_str(s->password, sizeof(s->password), o->password)) {
        if (errstr && errstr_size) snprintf(errstr, errstr_size, "redis host or password too long");
        free(s);
        return NULL;
    }
    s->port = o->port > 0 ? o->port : 6379;
    s->db = o->db;
    snprintf(s->prefix, sizeof(s->prefix), "%s", prefix);
    snprintf(s->tag, sizeof(s->tag), "{%s}", prefix);
    s->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 1000;
    s->stream_maxlen = o->stream_maxlen > 0 ? o->stream_maxlen : 100000;
    s->cache_seq = -1;
    s->flush_mode = o->flush_mode == SR_STORE_FLUSH_SCRIPT ? SR_STORE_FLUSH_SCRIPT
                                                           : SR_STORE_FLUSH_TRANSACTION;
    int rc = begin(s);
    if (rc < 0) {
        if (errstr && errstr_size) snprintf(errstr, errstr_size, "%s", s->err);
        sr_store_destroy(s);
        return NULL;
    }
    return s;
}

void sr_store_destroy(sr_store_t *s)
{
    if (!s) return;
    disconnect(s);
    sr_arena_free(&s->res);
    sr_arena_free(&s->scratch);
    sr_idmap_free(&s->idmap);
    cache_free(s);
    free(s->wbuf);
    free(s->argv);
    free(s->argvlen);
    free(s);
}

const char *sr_store_errstr(const sr_store_t *s)
{
    return s ? s->err : "";
}

int sr_store_err_retryable(int err)
{
    return err == SR_ERR_UNAVAIL || err == SR_ERR_TIMEOUT || err == SR_ERR_REDIS;
}

const char *sr_store_prefix(const sr_store_t *s)
{
    return s->prefix;
}

/* ------------------------------------------------------------------ */
/* helpers for replies                                                  */
/* ------------------------------------------------------------------ */

static int parse_i64(const char *p, size_t len, int64_t *out)
{
    char buf[32];
    if (len == 0 || len >= sizeof(buf)) return -1;
    memcpy(buf, p, len);
    buf[len] = '\0';
    char *end;
    errno = 0;
    long long v = strtoll(buf, &end, 10);
    if (errno || *end) return -1;
    *out = v;
    return 0;
}

static int parse_double(const char *p, size_t len, double *out)
{
    char buf[64];
    if (len == 0 || len >= sizeof(buf)) return -1;
    memcpy(buf, p, len);
    buf[len] = '\0';
    char *end;
    *out = strtod(buf, &end);
    return *end ? -1 : 0;
}

static size_t id_len(const char *const *ids, const size_t *lens, size_t i)
{
    return lens ? lens[i] : strlen(ids[i]);
}

/* Decodes an item blob into arena memory. */
static int decode_item(sr_store_t *s, const char *blob, size_t len, sr_store_item_t *it,
                       const char *what)
{
    size_t m = sr_store_item_mem(blob, len);
    void *mem = m ? sr_arena_alloc(&s->res, m) : NULL;
    /* extra points into the reply, which is freed: copy the blob first. */
    char *copy = sr_arena_strdup(&s->res, blob, len);
    if ((m && !mem) || !copy) return set_err(s, SR_ERR_NOMEM, "out of memory");
    int rc = sr_store_item_decode(copy, len, it, mem, m);
    if (rc < 0) return set_err(s, rc, "%s: item blob: %s", what, sr_strerror(rc));
    return 0;
}

/* Fills the id cache for nums (n <= BATCH).  The reply is matched to the
 * numbers as they were asked, not by re-checking the cache: a number twice
 * in nums is asked twice, and after its first answer the cache would say
 * "known" and shift every later answer onto the wrong number. */
static int resolve_nums(sr_store_t *s, const uint32_t *nums, size_t n)
{
    uint32_t asked[BATCH];
    size_t missing = 0;
    args_reset(s);
    arg_str(s, "HMGET");
    arg_key(s, "item:id", "", 0);
    for (size_t i = 0; i < n && missing < BATCH; i++)
        if (nums[i] && !sr_idmap_id(&s->idmap, nums[i], NULL)) {
            argf(s, "%" PRIu32, nums[i]);
            asked[missing++] = nums[i];
        }
    if (!missing) return 0;
    redisReply *r = NULL;
    int rc = simple(s, "HMGET item:id", &r);
    if (rc < 0) return rc;
    for (size_t k = 0; r->type == REDIS_REPLY_ARRAY && k < r->elements && k < missing; k++) {
        const redisReply *e = r->element[k];
        if (e->type == REDIS_REPLY_STRING && sr_idmap_put(&s->idmap, e->str, e->len, asked[k]) < 0) {
            freeReplyObject(r);
            return set_err(s, SR_ERR_NOMEM, "out of memory");
        }
    }
    freeReplyObject(r);
    return 0;
}

int sr_store_item_ids(sr_store_t *s, const uint32_t *nums, size_t n, const char **ids,
                      size_t *lens)
{
    int rc = begin(s);
    if (rc < 0) return rc;
    for (size_t off = 0; off < n; off += BATCH) {
        size_t m = n - off < BATCH ? n - off : BATCH;
        if ((rc = resolve_nums(s, nums + off, m)) < 0) return rc;
    }
    for (size_t i = 0; i < n; i++) {
        size_t l = 0;
        ids[i] = sr_idmap_id(&s->idmap, nums[i], &l);
        if (lens) lens[i] = l;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* flush                                                                */
/* ------------------------------------------------------------------ */

/* Makes sure every id in ids[] has a number in the cache (one script call
 * for the ones it lacks). */
static int assign_nums(sr_store_t *s, const char **ids, const size_t *lens, size_t n)
{
    args_reset(s);
    arg_str(s, "EVALSHA");
    arg_str(s, s->sha_assign);
    arg_str(s, "3");
    arg_key(s, "item:num", "", 0);
    arg_key(s, "item:id", "", 0);
    arg_key(s, "item:seq", "", 0);
    size_t first = s->argc, missing = 0;
    for (size_t i = 0; i < n; i++)
        if (!sr_idmap_num(&s->idmap, ids[i], lens[i])) {
            arg(s, ids[i], lens[i]);
            missing++;
        }
    if (!missing) return 0;
    redisReply *r = NULL;
    int rc = command(s, &r);
    if (rc < 0) return rc;
    if (r->type == REDIS_REPLY_ERROR && !strncmp(r->str, "NOSCRIPT", 8)) {
        freeReplyObject(r);
        s->argv[0] = "EVAL";
        s->argvlen[0] = 4;
        s->argv[1] = sr_store_lua_assign;
        s->argvlen[1] = strlen(sr_store_lua_assign);
        s->argc = first + missing;
        if ((rc = command(s, &r)) < 0) return rc;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != missing) {
        rc = r->type == REDIS_REPLY_ERROR ? reply_err(s, r, "assign item numbers")
                                          : set_err(s, SR_ERR_REDIS, "assign: bad reply");
        freeReplyObject(r);
        return rc;
    }
    for (size_t k = 0; k < missing; k++) {
        const redisReply *e = r->element[k];
        size_t ai = first + k;
        if (e->type != REDIS_REPLY_INTEGER || e->integer <= 0 || e->integer > UINT32_MAX) {
            freeReplyObject(r);
            return set_err(s, SR_ERR_REDIS, "assign: bad item number");
        }
        if (sr_idmap_put(&s->idmap, s->argv[ai], s->argvlen[ai], (uint32_t)e->integer) < 0) {
            freeReplyObject(r);
            return set_err(s, SR_ERR_NOMEM, "out of memory");
        }
    }
    freeReplyObject(r);
    return 0;
}

static long encode_item_arg(sr_store_t *s, const sr_store_item_t *it, const char **out)
{
    size_t n = sr_store_item_size(it);
    char *buf = sr_arena_alloc(&s->scratch, n);
    if (!buf) return SR_ERR_NOMEM;
    long rc = sr_store_item_encode(it, buf, n);
    *out = buf;
    return rc;
}

/* The flush script's argv (layout in scripts.h), which is also the input
 * of the transaction path. */
typedef struct flush_args {
    const char **v;
    size_t *l;
    size_t argc;
    size_t n_off, n_u, n_i;
    size_t a; /* index of ARGV[1] in v */
    /* Per item, pop_base and pop_cur as numbers.  Their text in v is
     * empty: only the script needs it (flush_script formats it), and
     * formatting and parsing it back was a sixth of the flusher's time. */
    const double *pop_base, *pop_cur;
} flush_args_t;

/* Indexes into v: the five shared keys (off, pop, updates, global, seq),
 * user and item keys, ARGV[k], offset j's (field, prev, next), user i's
 * blob and item j's (id, num, base, cur, write_pop, pop_base, pop_cur). */
#define FA_FIXED(k) (3 + (k))
#define FA_UKEY(a, i) (8 + (i))
#define FA_IKEY(a, j) (8 + (a)->n_u + (j))
#define FA_ARGV(a, k) ((a)->a + (k) - 1)
#define FA_OFF(a, j, q) (FA_ARGV(a, 8) + 3 * (j) + (q))
#define FA_USER(a, i) (FA_ARGV(a, 8) + 3 * (a)->n_off + (i))
#define FA_ITEM(a, j, q) (FA_USER(a, 0) + (a)->n_u + 7 * (j) + (q))

/* A transaction attempt that EXEC refused because a watched key changed
 * (positive: not an SR_ERR_*). */
#define TX_ABORTED 1

static int fa_is(const flush_args_t *a, size_t i, const char *lit)
{
    size_t n = strlen(lit);
    return a->l[i] == n && !memcmp(a->v[i], lit, n);
}

static int fa_eq(const flush_args_t *a, size_t i, size_t k)
{
    return a->l[i] == a->l[k] && !memcmp(a->v[i], a->v[k], a->l[i]);
}

/* The caller's result from what Redis now holds per item: mv[i] the merged
 * blob (NULL or empty when cur was stored as sent), pv[i] the popularity
 * as text (NULL or empty when not written), and pd[i], when pd is not NULL
 * and pd[i] is not NaN, the number that text was formatted from (it
 * round-trips: %.17g), which saves a strtod per written popularity.
 * Shared by both paths so they cannot differ in what the trainer pulls
 * back. */
static int flush_result(sr_store_t *s, const sr_store_flush_t *f, const uint32_t *nums,
                        const char *const *mv, const size_t *mvl, const char *const *pv,
                        const size_t *pvl, const double *pd, sr_store_flush_result_t *res)
{
    sr_store_item_t *merged = NULL;
    if (res && f->n_items) {
        merged = sr_arena_alloc(&s->res, f->n_items * sizeof(*merged));
        if (!merged) return set_err(s, SR_ERR_NOMEM, "out of memory");
    }
    size_t n_delta = 0;
    for (size_t i = 0; i < f->n_items; i++) {
        int is_merged = mv[i] && mvl[i] > 0;
        n_delta += is_merged;
        if (!merged) continue;
        const sr_store_item_t *c = f->items[i].cur;
        sr_store_item_t *m = &merged[i];
        memset(m, 0, sizeof(*m));
        if (is_merged) {
            int rc = decode_item(s, mv[i], mvl[i], m, "flush");
            if (rc < 0) return rc;
        } else {
            /* Stored exactly as sent: cur itself (its memory is the
             * caller's, see sr_store_flush_result_t). */
            *m = *c;
        }
        m->id = c->id;
        m->id_len = c->id_len;
        m->exists = 1;
        m->num = nums[i];
        m->has_pop = 0;
        m->pop = 0;
        if (!pv[i] || pvl[i] == 0) continue;
        if (pd && !isnan(pd[i])) {
            m->pop = pd[i];
            m->has_pop = 1;
        } else if (parse_double(pv[i], pvl[i], &m->pop) == 0) {
            m->has_pop = 1;
        }
    }
    if (res) {
        res->merged = merged;
        res->n_merged = merged ? f->n_items : 0;
        res->n_delta_merged = n_delta;
    }
    return 0;
}

/* The flush as one Lua script call. */
static int flush_script(sr_store_t *s, const sr_store_flush_t *f, const flush_args_t *a,
                        const uint32_t *nums, sr_store_flush_result_t *res)
{
    s->argc = 0;
    for (size_t i = 0; i < a->argc; i++) arg(s, a->v[i], a->l[i]);
    /* The popularity changes as the script's text ("" "" when unchanged). */
    for (size_t j = 0; j < a->n_i && !s->argv_oom; j++) {
        if (!fa_is(a, FA_ITEM(a, j, 4), "1") || a->pop_base[j] == a->pop_cur[j]) continue;
        for (int q = 0; q < 2; q++) {
            char *t = sr_arena_alloc(&s->scratch, 32);
            if (!t) return set_err(s, SR_ERR_NOMEM, "out of memory");
            int tl = snprintf(t, 32, "%.17g", q ? a->pop_cur[j] : a->pop_base[j]);
            s->argv[FA_ITEM(a, j, 5 + q)] = t;
            s->argvlen[FA_ITEM(a, j, 5 + q)] = (size_t)tl;
        }
    }
    if (s->argv_oom) return set_err(s, SR_ERR_NOMEM, "out of memory building a command");
    s->argv[0] = "EVALSHA";
    s->argvlen[0] = 7;
    s->argv[1] = s->sha_flush;
    s->argvlen[1] = strlen(s->sha_flush);
    redisReply *r = NULL;
    size_t argc = s->argc; /* append() clears it; the fallback resends */
    int rc = command(s, &r);
    if (rc < 0) return rc;
    int64_t written_ms = sr_wall_ms();
    if (r->type == REDIS_REPLY_ERROR && !strncmp(r->str, "NOSCRIPT", 8)) {
        freeReplyObject(r);
        /* SCRIPT FLUSH or a failover to a replica without the script:
         * send the body once, and reload it for the next flushes. */
        s->argc = argc;
        s->argv[0] = "EVAL";
        s->argvlen[0] = 4;
        s->argv[1] = sr_store_lua_flush;
        s->argvlen[1] = strlen(sr_store_lua_flush);
        if ((rc = command(s, &r)) < 0) return rc;
        written_ms = sr_wall_ms();
        sr_log(SR_LOG_WARN, "store: flush script was missing in Redis; reloaded");
        s->argc = 0;
        char sha[48];
        if (load_script(s, sr_store_lua_flush, sha) == 0) memcpy(s->sha_flush, sha, sizeof(sha));
        s->err[0] = '\0';
    }
    if (r->type == REDIS_REPLY_ERROR) {
        rc = reply_err(s, r, "flush");
        freeReplyObject(r);
        return rc;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
        r->element[0]->type != REDIS_REPLY_INTEGER) {
        freeReplyObject(r);
        return set_err(s, SR_ERR_REDIS, "flush: unexpected reply");
    }
    if (r->element[0]->integer == 1) {
        freeReplyObject(r);
        if (res) res->duplicate = 1;
        return 0;
    }
    if (r->elements != 1 + 2 * f->n_items) {
        freeReplyObject(r);
        return set_err(s, SR_ERR_REDIS, "flush: reply has the wrong length");
    }
    size_t n = f->n_items + 1;
    const char **mv = sr_arena_alloc(&s->scratch, n * sizeof(*mv));
    const char **pv = sr_arena_alloc(&s->scratch, n * sizeof(*pv));
    size_t *mvl = sr_arena_alloc(&s->scratch, n * sizeof(*mvl));
    size_t *pvl = sr_arena_alloc(&s->scratch, n * sizeof(*pvl));
    if (!mv || !pv || !mvl || !pvl) {
        freeReplyObject(r);
        return set_err(s, SR_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < f->n_items; i++) {
        const redisReply *m = r->element[1 + 2 * i], *p = r->element[2 + 2 * i];
        int ms = m->type == REDIS_REPLY_STRING, ps = p->type == REDIS_REPLY_STRING;
        mv[i] = ms ? m->str : NULL;
        mvl[i] = ms ? m->len : 0;
        pv[i] = ps ? p->str : NULL;
        pvl[i] = ps ? p->len : 0;
    }
    rc = flush_result(s, f, nums, mv, mvl, pv, pvl, NULL, res);
    if (rc == 0 && res) res->written_wall_ms = written_ms;
    freeReplyObject(r);
    return rc;
}

/* Item blob header as the script's hdr() / hdr_base() read it: 0 and the
 * dims when the blob is an item of version 1 long enough for its floats
 * (a base: exactly its floats, no extra), else -1. */
static int item_hdr(const char *p, size_t len, int base, unsigned *d, unsigned *n)
{
    if (len < (base ? 16u : 20u)) return -1;
    const uint8_t *u = (const uint8_t *)p;
    *d = sr_store_get_u16(u + 2);
    *n = sr_store_get_u16(u + 4);
    size_t want = (base ? 16u : 20u) + 4 * ((size_t)*d + *n);
    if (u[0] != 1 || u[1] != SR_STORE_KIND_ITEM) return -1;
    return (base ? len != want : len < want) ? -1 : 0;
}

/* Redis's own rule for an integer value (string2ll): what INCRBY accepts. */
static int redis_int(const char *p, size_t len, int64_t *out)
{
    if (len == 0 || len > 20) return -1;
    size_t i = p[0] == '-';
    if (i == len || (p[i] == '0' && len > i + 1)) return -1;
    for (size_t k = i; k < len; k++)
        if (p[k] < '0' || p[k] > '9') return -1;
    return parse_i64(p, len, out);
}

/* Open-addressing set of the flush's item ids (DUPITEM). */
static int dup_id(const flush_args_t *a, uint32_t *slots, size_t mask, size_t j)
{
    size_t iv = FA_ITEM(a, j, 0);
    for (size_t h = sr_store_hash(a->v[iv], a->l[iv]) & mask;; h = (h + 1) & mask) {
        if (!slots[h]) {
            slots[h] = (uint32_t)j + 1;
            return 0;
        }
        if (fa_eq(a, FA_ITEM(a, slots[h] - 1, 0), iv)) return 1;
    }
}

static void unwatch(sr_store_t *s)
{
    s->argc = 0;
    arg_str(s, "UNWATCH");
    redisReply *r = NULL;
    if (command(s, &r) == 0) freeReplyObject(r);
}

/* ---- what Redis holds for the items this handle wrote ----
 *
 * After a transaction, the writer knows every item of it exactly as Redis
 * now holds it.  As long as {p}:updates:seq still has the value that
 * transaction left, nobody else wrote an item since (docs/REDIS.md, rule
 * for writers of item keys), so the next transaction can take those items
 * from here instead of reading them again; the counter is read under WATCH
 * in the same round trip, so EXEC refuses the transaction if that changes
 * before it applies.  Only the header and floats are kept (what the exact
 * test and the merge read), indexed by global item number; an entry counts
 * only while its gen is the handle's cache_gen (bumped to forget all). */
typedef struct icache_ent {
    uint8_t *floats;  /* header + floats of the stored blob */
    uint32_t n_floats; /* bytes held */
    uint32_t len;      /* length of the whole stored blob */
    uint32_t gen;
    int8_t pop;        /* -1 unknown, 0 not in the set, 1 in the set */
    uint8_t pop_len;
    char pop_str[40];  /* the score as Redis gives it */
    double pop_num;    /* and as a number (a flush result needs both) */
} icache_ent_t;

static void cache_forget(sr_store_t *s)
{
    s->cache_gen++;
    s->cache_seq = -1;
}

static const icache_ent_t *cache_get(const sr_store_t *s, uint32_t num)
{
    if (s->cache_seq < 0 || num >= s->icache_cap || s->icache[num].gen != s->cache_gen) return NULL;
    return &s->icache[num];
}

/* Makes room for item numbers below n.  Called before a transaction takes
 * anything from the cache: its reads point into the entries (pop_str), so
 * the array must not move until the transaction is done.  0 or -1. */
static int cache_reserve(sr_store_t *s, size_t n)
{
    if (n <= s->icache_cap) return 0;
    size_t nc = s->icache_cap ? s->icache_cap : 1024;
    while (nc < n) nc *= 2;
    icache_ent_t *e = realloc(s->icache, nc * sizeof(*e));
    if (!e) return -1;
    memset(e + s->icache_cap, 0, (nc - s->icache_cap) * sizeof(*e));
    s->icache = e;
    s->icache_cap = nc;
    return 0;
}

/* Records what Redis holds for item num after a transaction: blob v (a
 * valid item blob), popularity p (NULL: not in the set; pk 0: unknown; it
 * may be this entry's own pop_str) and its value pn (NaN: parse p).  num
 * must be below the capacity cache_reserve made: the entries do not move
 * here.  0 or -1. */
static int cache_put(sr_store_t *s, uint32_t num, const char *v, size_t vl, int pk,
                     const char *p, size_t pl, double pn)
{
    if (num >= s->icache_cap) return -1;
    icache_ent_t *e = &s->icache[num];
    const uint8_t *u = (const uint8_t *)v;
    size_t nf = SR_STORE_ITEM_HDR + 4 * ((size_t)sr_store_get_u16(u + 2) + sr_store_get_u16(u + 4));
    if (nf > vl) nf = vl;
    if (nf > e->n_floats || !e->floats) {
        uint8_t *b = realloc(e->floats, nf);
        if (!b) return -1;
        e->floats = b;
    }
    memcpy(e->floats, v, nf);
    e->n_floats = (uint32_t)nf;
    e->len = (uint32_t)vl;
    e->pop = pk ? (p != NULL) : -1;
    e->pop_len = 0;
    if (p && pl < sizeof(e->pop_str) && (!isnan(pn) || parse_double(p, pl, &pn) == 0)) {
        memmove(e->pop_str, p, pl);
        e->pop_len = (uint8_t)pl;
        e->pop_num = pn;
    } else if (p) {
        e->pop = -1;
    }
    e->gen = s->cache_gen;
    return 0;
}

static void cache_free(sr_store_t *s)
{
    for (size_t i = 0; i < s->icache_cap; i++) free(s->icache[i].floats);
    free(s->icache);
    s->icache = NULL;
    s->icache_cap = 0;
}

/* The reads of one transaction attempt: per item the stored blob (sv/sl;
 * sv NULL when absent; for a cached item only its header and floats, with
 * the whole length) and the popularity text (pv/pl; NULL when not in the
 * set).  want[j]: 1 when item j still has to be read. */
typedef struct tx_reads {
    const char **sv, **pv;
    size_t *sl, *pl;
    double *pd; /* pv's value when it came from the cache, else NaN */
    unsigned char *want, *pop_known;
    redisReply **keep; /* replies the pointers point into */
    size_t n_keep, cap_keep;
} tx_reads_t;

/* Appends MGET (and ZMSCORE, or ZSCORE per item before Redis 6.2) of the
 * items still wanted; returns the number of commands or <0. */
static long append_item_reads(sr_store_t *s, const flush_args_t *a, const tx_reads_t *t)
{
    long cmds = 0;
    for (int pass = 0; pass < 2; pass++) {
        size_t in_cmd = 0;
        for (size_t j = 0; j < a->n_i; j++) {
            if (!t->want[j]) continue;
            if (pass == 1 && !s->has_zmscore) {
                if (!fa_is(a, FA_ITEM(a, j, 4), "1")) continue;
                arg_str(s, "ZSCORE");
                arg(s, a->v[FA_FIXED(1)], a->l[FA_FIXED(1)]);
                arg(s, a->v[FA_ITEM(a, j, 0)], a->l[FA_ITEM(a, j, 0)]);
                if (append(s) < 0) return SR_ERR_UNAVAIL;
                cmds++;
                continue;
            }
            if (in_cmd == 0) {
                arg_str(s, pass ? "ZMSCORE" : "MGET");
                if (pass) arg(s, a->v[FA_FIXED(1)], a->l[FA_FIXED(1)]);
            }
            if (pass) arg(s, a->v[FA_ITEM(a, j, 0)], a->l[FA_ITEM(a, j, 0)]);
            else arg(s, a->v[FA_IKEY(a, j)], a->l[FA_IKEY(a, j)]);
            if (++in_cmd == BATCH) {
                if (append(s) < 0) return SR_ERR_UNAVAIL;
                cmds++;
                in_cmd = 0;
            }
        }
        if (in_cmd) {
            if (append(s) < 0) return SR_ERR_UNAVAIL;
            cmds++;
        }
    }
    return cmds;
}

/* Reads the replies of append_item_reads into t (and clears want[]).  A
 * Redis error reply is returned as SR_ERR_* with *err_reply set (kept). */
static int read_item_reads(sr_store_t *s, const flush_args_t *a, tx_reads_t *t, long cmds,
                           const redisReply **err_reply)
{
    if (t->n_keep + (size_t)cmds > t->cap_keep) {
        size_t nc = (t->n_keep + (size_t)cmds) * 2;
        redisReply **k = realloc(t->keep, nc * sizeof(*k));
        if (!k) {
            disconnect(s);
            return set_err(s, SR_ERR_NOMEM, "out of memory");
        }
        t->keep = k;
        t->cap_keep = nc;
    }
    size_t first = t->n_keep;
    for (long c = 0; c < cmds; c++) {
        int rc = reply(s, &t->keep[t->n_keep]);
        if (rc < 0) return rc;
        t->n_keep++;
    }
    for (size_t i = first; i < t->n_keep; i++)
        if (t->keep[i]->type == REDIS_REPLY_ERROR) *err_reply = t->keep[i];
    size_t r = first, k = 0;
    for (int pass = 0; pass < 2; pass++) {
        k = 0;
        for (size_t j = 0; j < a->n_i; j++) {
            if (!t->want[j]) continue;
            const redisReply *e = NULL;
            if (pass == 1 && !s->has_zmscore) {
                t->pop_known[j] = fa_is(a, FA_ITEM(a, j, 4), "1");
                if (!t->pop_known[j]) continue;
                e = r < t->n_keep ? t->keep[r++] : NULL;
            } else {
                const redisReply *m = r < t->n_keep ? t->keep[r] : NULL;
                e = m && m->type == REDIS_REPLY_ARRAY && k < m->elements ? m->element[k] : NULL;
                if (++k == BATCH) k = 0, r++;
                if (pass) t->pop_known[j] = 1;
            }
            int str = e && e->type == REDIS_REPLY_STRING;
            if (pass) {
                t->pv[j] = str ? e->str : NULL;
                t->pl[j] = str ? e->len : 0;
            } else {
                t->sv[j] = str ? e->str : NULL;
                t->sl[j] = str ? e->len : 0;
            }
        }
        if (k) r++, k = 0;
    }
    for (size_t j = 0; j < a->n_i; j++) t->want[j] = 0;
    return 0;
}

static void release_reads(redisReply **fixed, size_t n_fixed, tx_reads_t *t)
{
    for (size_t i = 0; i < n_fixed; i++)
        if (fixed[i]) freeReplyObject(fixed[i]);
    for (size_t i = 0; i < t->n_keep; i++) freeReplyObject(t->keep[i]);
    free(t->keep);
    t->keep = NULL;
    t->n_keep = 0;
}

/* One optimistic transaction attempt: the script's pass 1 (fencing, type
 * checks, item validation and the exact-or-delta decisions) done here on
 * values read under WATCH, then its writes in MULTI/EXEC.
 *
 * What is watched: the offsets hash, the popularity set, the stream, the
 * global and the update counter, NOT the item keys (WATCH is linear in the
 * keys a client already watches in Redis 7.0, so 10,000 items cost ~0.5 s).
 * The counter stands in for them: every write of an item blob adds to it
 * in the same atomic unit (both flush paths; docs/REDIS.md), so an
 * unchanged counter at EXEC means every item still holds what was read.
 * Items this handle wrote in its last transactions come from its cache
 * when the counter shows nobody else wrote since (else a second round trip
 * reads them too).
 *
 * Returns 0, TX_ABORTED (nothing written; try again), or an error that the
 * script would have given for the same state, with nothing written. */
static int flush_tx(sr_store_t *s, const sr_store_flush_t *f, const flush_args_t *a,
                    const uint32_t *nums, sr_store_flush_result_t *res)
{
    static const char *const want[5] = {"hash", "zset", "stream", "string", "string"};
    size_t n_i = a->n_i, n = n_i + 1;
    tx_reads_t t = {0};
    t.sv = sr_arena_alloc(&s->scratch, n * sizeof(*t.sv));
    t.pv = sr_arena_alloc(&s->scratch, n * sizeof(*t.pv));
    t.sl = sr_arena_alloc(&s->scratch, n * sizeof(*t.sl));
    t.pl = sr_arena_alloc(&s->scratch, n * sizeof(*t.pl));
    t.pd = sr_arena_alloc(&s->scratch, n * sizeof(*t.pd));
    t.want = sr_arena_alloc(&s->scratch, n);
    t.pop_known = sr_arena_alloc(&s->scratch, n);
    unsigned char *from_cache = sr_arena_alloc(&s->scratch, n);
    redisReply *fixed[8] = {0};
    size_t n_fixed = 0;
    if (!t.sv || !t.pv || !t.sl || !t.pl || !t.pd || !t.want || !t.pop_known || !from_cache)
        return set_err(s, SR_ERR_NOMEM, "out of memory");
    /* Items from the cache, if it is still good (checked below).  Only for
     * a fenced flush: if Redis lost data and the counter came back to the
     * same value with other contents (a restore, then other writers), the
     * offsets went back too, and the fencing refuses the flush. */
    int64_t cached_at = s->cache_seq;
    size_t n_cached = 0;
    int use_cache = 0; /* fenced */
    for (size_t j = 0; j < a->n_off; j++) use_cache |= !fa_is(a, FA_OFF(a, j, 1), "-2");
    uint32_t max_num = 0;
    for (size_t j = 0; j < n_i; j++)
        if (nums[j] > max_num) max_num = nums[j];
    if (cache_reserve(s, (size_t)max_num + 1) != 0) {
        cache_forget(s); /* and cache_put refuses these numbers below */
        use_cache = 0;
    }
    for (size_t j = 0; j < n_i; j++) {
        const icache_ent_t *e = use_cache ? cache_get(s, nums[j]) : NULL;
        int wp = fa_is(a, FA_ITEM(a, j, 4), "1");
        from_cache[j] = e && (!wp || e->pop >= 0);
        t.want[j] = !from_cache[j];
        t.sv[j] = t.pv[j] = NULL;
        t.sl[j] = t.pl[j] = 0;
        t.pd[j] = NAN;
        t.pop_known[j] = 0;
        if (!from_cache[j]) continue;
        n_cached++;
        t.sv[j] = (const char *)e->floats;
        t.sl[j] = e->len;
        t.pop_known[j] = e->pop >= 0;
        t.pv[j] = e->pop > 0 ? e->pop_str : NULL;
        t.pl[j] = e->pop > 0 ? e->pop_len : 0;
        t.pd[j] = e->pop > 0 ? e->pop_num : NAN;
    }

    /* 1. Reads under WATCH, one round trip (two when the cache was stale). */
    size_t i_hm = 1, i_type = i_hm + (a->n_off > 0), i_seq = i_type + 5;
    n_fixed = i_seq + 1;
    s->argc = 0;
    arg_str(s, "WATCH");
    for (int k = 0; k < 5; k++) arg(s, a->v[FA_FIXED(k)], a->l[FA_FIXED(k)]);
    int rc = append(s);
    if (rc == 0 && a->n_off) {
        arg_str(s, "HMGET");
        arg(s, a->v[FA_FIXED(0)], a->l[FA_FIXED(0)]);
        for (size_t j = 0; j < a->n_off; j++) arg(s, a->v[FA_OFF(a, j, 0)], a->l[FA_OFF(a, j, 0)]);
        rc = append(s);
    }
    for (int k = 0; rc == 0 && k < 5; k++) {
        arg_str(s, "TYPE");
        arg(s, a->v[FA_FIXED(k)], a->l[FA_FIXED(k)]);
        rc = append(s);
    }
    if (rc == 0) {
        arg_str(s, "GET");
        arg(s, a->v[FA_FIXED(4)], a->l[FA_FIXED(4)]);
        rc = append(s);
    }
    long cmds = rc == 0 ? append_item_reads(s, a, &t) : rc;
    if (rc < 0 || cmds < 0) {
        disconnect(s); /* commands half appended: the connection is out of step */
        cache_forget(s);
        return rc < 0 ? rc : (int)cmds;
    }
    const redisReply *err_reply = NULL;
    for (size_t i = 0; i < n_fixed; i++)
        if ((rc = reply(s, &fixed[i])) < 0) goto out;
    if ((rc = read_item_reads(s, a, &t, cmds, &err_reply)) < 0) goto out;
    int64_t seq = 0;
    const redisReply *sq = fixed[i_seq];
    int seq_ok = sq->type != REDIS_REPLY_STRING || redis_int(sq->str, sq->len, &seq) == 0;
    if (!seq_ok || seq != cached_at || sq->type == REDIS_REPLY_ERROR) cache_forget(s);
    if (n_cached && s->cache_seq < 0) {
        /* Someone else wrote items since this handle's last transaction:
         * read the cached ones too, still under the same WATCH. */
        for (size_t j = 0; j < n_i; j++) {
            t.want[j] = from_cache[j];
            if (!from_cache[j]) continue;
            from_cache[j] = 0;
            t.sv[j] = t.pv[j] = NULL;
            t.sl[j] = t.pl[j] = 0;
            t.pd[j] = NAN;
            t.pop_known[j] = 0;
        }
        n_cached = 0;
        cmds = append_item_reads(s, a, &t);
        if (cmds < 0) {
            disconnect(s);
            rc = (int)cmds;
            goto out;
        }
        if ((rc = read_item_reads(s, a, &t, cmds, &err_reply)) < 0) goto out;
    }
    if (res) res->n_items_read = n_i - n_cached;
    if (s->flush_hook) s->flush_hook(s->flush_hook_arg, 0);
    if (fixed[0]->type == REDIS_REPLY_ERROR) {
        rc = reply_err(s, fixed[0], "flush WATCH");
        goto unwatch_out;
    }
    /* 2. The script's pass 1, in its order, with its messages. */
    size_t n_prev = 0, n_next = 0;
    for (size_t j = 0; j < a->n_off; j++) {
        size_t fi = FA_OFF(a, j, 0), pi = FA_OFF(a, j, 1), ni = FA_OFF(a, j, 2);
        if (fa_is(a, pi, "-2")) continue;
        const redisReply *hm = fixed[i_hm];
        if (hm->type == REDIS_REPLY_ERROR) {
            rc = reply_err(s, hm, "flush");
            goto unwatch_out;
        }
        const redisReply *e = hm->type == REDIS_REPLY_ARRAY && j < hm->elements ? hm->element[j]
                                                                                 : NULL;
        const char *cur = "-1";
        size_t cl = 2;
        if (e && e->type == REDIS_REPLY_STRING) cur = e->str, cl = e->len;
        int is_prev = cl == a->l[pi] && !memcmp(cur, a->v[pi], cl);
        int is_next = cl == a->l[ni] && !memcmp(cur, a->v[ni], cl);
        if (is_prev && is_next) continue;
        if (is_prev) {
            n_prev++;
        } else if (is_next) {
            n_next++;
        } else {
            rc = set_err(s, SR_ERR_STATE,
                         "redis flush: FENCED partition %.*s is stored at %.*s, this writer "
                         "expected %.*s",
                         (int)a->l[fi], a->v[fi], (int)cl, cur, (int)a->l[pi], a->v[pi]);
            goto unwatch_out;
        }
    }
    if (n_next > 0) {
        if (n_prev > 0) {
            rc = set_err(s, SR_ERR_STATE,
                         "redis flush: FENCED some partitions of this flush were already written");
            goto unwatch_out;
        }
        if (res) res->duplicate = 1;
        rc = 0;
        goto unwatch_out;
    }
    for (int k = 0; k < 5; k++) {
        const redisReply *ty = fixed[i_type + (size_t)k];
        if (ty->type == REDIS_REPLY_ERROR) {
            rc = reply_err(s, ty, "flush TYPE");
            goto unwatch_out;
        }
        const char *ts = ty->str ? ty->str : "";
        if (strcmp(ts, "none") != 0 && strcmp(ts, want[k]) != 0) {
            size_t ki = FA_FIXED(k);
            rc = set_err(s, SR_ERR_CORRUPT, "redis flush: BADKEY %.*s is a %s, not a %s",
                         (int)a->l[ki], a->v[ki], ts, want[k]);
            goto unwatch_out;
        }
    }
    if (sq->type == REDIS_REPLY_ERROR) {
        rc = reply_err(s, sq, "flush");
        goto unwatch_out;
    }
    if (!seq_ok) {
        rc = set_err(s, SR_ERR_CORRUPT, "redis flush: BADKEY %.*s is not a number",
                     (int)a->l[FA_FIXED(4)], a->v[FA_FIXED(4)]);
        goto unwatch_out;
    }
    /* The reads of items and popularity (after the type checks: on a
     * popularity key of the wrong type the script says BADKEY). */
    if (err_reply) {
        rc = reply_err(s, err_reply, "flush");
        goto unwatch_out;
    }
    size_t mask = 1;
    while (mask < 2 * n_i) mask <<= 1;
    uint32_t *slots = sr_arena_alloc(&s->scratch, mask * sizeof(*slots));
    unsigned char *moved = sr_arena_alloc(&s->scratch, n_i + 1);
    if (!slots || !moved) {
        rc = set_err(s, SR_ERR_NOMEM, "out of memory");
        goto unwatch_out;
    }
    memset(slots, 0, mask * sizeof(*slots));
    mask--;
    for (size_t j = 0; j < n_i; j++) {
        size_t ii = FA_ITEM(a, j, 0), bi = FA_ITEM(a, j, 2), ci = FA_ITEM(a, j, 3);
        const char *why = NULL;
        unsigned cd, cn, sd, sn, bd, bn;
        if (dup_id(a, slots, mask, j)) {
            rc = set_err(s, SR_ERR_INVAL, "redis flush: DUPITEM %.*s: twice in one flush",
                         (int)a->l[ii], a->v[ii]);
            goto unwatch_out;
        }
        if (item_hdr(a->v[ci], a->l[ci], 0, &cd, &cn) < 0) why = "bad blob";
        /* A cached blob holds its header and floats only: enough, since a
         * base that is not longer than those matches them or differs in
         * its header already. */
        const char *st = t.sv[j];
        size_t bl = a->l[bi], sl = t.sl[j];
        size_t have = from_cache[j] ? cache_get(s, nums[j])->n_floats : sl;
        moved[j] = st && (bl == 0 || sl < bl || have < bl || memcmp(st, a->v[bi], bl) != 0);
        if (!why && moved[j]) {
            if (item_hdr(st, sl, 0, &sd, &sn) < 0 || sd != cd || sn != cn)
                why = "stored dim/accumulators differ from this writer";
            else if (bl && (item_hdr(a->v[bi], bl, 1, &bd, &bn) < 0 || bd != cd || bn != cn))
                why = "bad base";
        }
        if (why) {
            rc = set_err(s, SR_ERR_VERSION, "redis flush: BADITEM %.*s: %s", (int)a->l[ii],
                         a->v[ii], why);
            goto unwatch_out;
        }
    }

    /* 3. The script's pass 2 as values: merged blobs, popularity. */
    const char **val = sr_arena_alloc(&s->scratch, n * sizeof(*val));
    const char **pop = sr_arena_alloc(&s->scratch, n * sizeof(*pop));
    size_t *vall = sr_arena_alloc(&s->scratch, n * sizeof(*vall));
    size_t *popl = sr_arena_alloc(&s->scratch, n * sizeof(*popl));
    const char **mv = sr_arena_alloc(&s->scratch, n * sizeof(*mv));
    size_t *mvl = sr_arena_alloc(&s->scratch, n * sizeof(*mvl));
    unsigned char *zadd = sr_arena_alloc(&s->scratch, n);
    double *popd = sr_arena_alloc(&s->scratch, n * sizeof(*popd));
    if (!val || !pop || !vall || !popl || !mv || !mvl || !zadd || !popd) {
        rc = set_err(s, SR_ERR_NOMEM, "out of memory");
        goto unwatch_out;
    }
    size_t n_zadd = 0;
    for (size_t j = 0; j < n_i; j++) {
        size_t bi = FA_ITEM(a, j, 2), ci = FA_ITEM(a, j, 3);
        val[j] = a->v[ci];
        vall[j] = a->l[ci];
        mv[j] = NULL;
        mvl[j] = 0;
        if (moved[j]) {
            /* stored + (cur - base) per float in double, rounded to float32,
             * as the script's struct.unpack / struct.pack do; header and
             * extra from cur. */
            const uint8_t *cu = (const uint8_t *)a->v[ci];
            const uint8_t *su = (const uint8_t *)t.sv[j];
            const uint8_t *bu = (const uint8_t *)a->v[bi];
            size_t nf = 2 + (size_t)sr_store_get_u16(cu + 2) + sr_store_get_u16(cu + 4);
            uint8_t *m = sr_arena_alloc(&s->scratch, a->l[ci]);
            if (!m) {
                rc = set_err(s, SR_ERR_NOMEM, "out of memory");
                goto unwatch_out;
            }
            memcpy(m, cu, a->l[ci]);
            for (size_t q = 0; q < nf; q++) {
                size_t o = 8 + 4 * q;
                double sv = sr_store_get_f32(su + o), cv = sr_store_get_f32(cu + o);
                double r = a->l[bi] ? sv + (cv - (double)sr_store_get_f32(bu + o)) : sv + cv;
                sr_store_put_f32(m + o, (float)r);
            }
            val[j] = mv[j] = (const char *)m;
            vall[j] = mvl[j] = a->l[ci];
        }
        pop[j] = "";
        popl[j] = 0;
        popd[j] = NAN;
        zadd[j] = 0;
        if (!fa_is(a, FA_ITEM(a, j, 4), "1")) continue;
        const char *sp = t.pv[j];
        double pbv = a->pop_base[j], pcv = a->pop_cur[j];
        if (pbv == pcv) {
            /* Unchanged by this writer: report what Redis holds. */
            pop[j] = sp ? sp : "0";
            popl[j] = sp ? t.pl[j] : 1;
            popd[j] = sp ? t.pd[j] : 0;
            continue;
        }
        double spv = sp ? t.pd[j] : 0;
        if (isnan(spv) && parse_double(sp, t.pl[j], &spv) < 0) spv = 0;
        zadd[j] = 1;
        n_zadd++;
        /* ZINCRBY's arithmetic: an absent member gets the increment; when
         * Redis holds base, the exact cur. */
        double inc = pcv - pbv, nv = spv == pbv ? pcv : sp ? spv + inc : inc;
        char *t = sr_arena_alloc(&s->scratch, 32);
        if (!t) {
            rc = set_err(s, SR_ERR_NOMEM, "out of memory");
            goto unwatch_out;
        }
        if (isnan(nv)) {
            rc = set_err(s, SR_ERR_CORRUPT, "redis flush: popularity of %.*s would be NaN",
                         (int)a->l[FA_ITEM(a, j, 0)], a->v[FA_ITEM(a, j, 0)]);
            goto unwatch_out;
        }
        /* Redis's own formatting of a score reply (addReplyDouble). */
        int tl = isinf(nv) ? snprintf(t, 32, "%s", nv > 0 ? "inf" : "-inf")
                           : snprintf(t, 32, "%.17g", nv);
        pop[j] = t;
        popl[j] = (size_t)tl;
        popd[j] = nv;
    }

    /* 4. The writes, all or nothing. */
    size_t n_cmd = 0;
    s->wlen = 0;
    arg_str(s, "MULTI");
    if ((rc = append_raw(s)) < 0) goto fail_conn;
    if (a->n_off) {
        arg_str(s, "HSET");
        arg(s, a->v[FA_FIXED(0)], a->l[FA_FIXED(0)]);
        for (size_t j = 0; j < a->n_off; j++) {
            arg(s, a->v[FA_OFF(a, j, 0)], a->l[FA_OFF(a, j, 0)]);
            arg(s, a->v[FA_OFF(a, j, 2)], a->l[FA_OFF(a, j, 2)]);
        }
        if ((rc = append_raw(s)) < 0) goto fail_conn;
        n_cmd++;
    }
    for (size_t off = 0; off < a->n_u + n_i; off += BATCH) {
        arg_str(s, "MSET");
        for (size_t k = off; k < a->n_u + n_i && k < off + BATCH; k++) {
            if (k < a->n_u) {
                arg(s, a->v[FA_UKEY(a, k)], a->l[FA_UKEY(a, k)]);
                arg(s, a->v[FA_USER(a, k)], a->l[FA_USER(a, k)]);
            } else {
                arg(s, a->v[FA_IKEY(a, k - a->n_u)], a->l[FA_IKEY(a, k - a->n_u)]);
                arg(s, val[k - a->n_u], vall[k - a->n_u]);
            }
        }
        if ((rc = append_raw(s)) < 0) goto fail_conn;
        n_cmd++;
    }
    size_t i_incr = n_cmd;
    if (n_i) {
        arg_str(s, "INCRBY");
        arg(s, a->v[FA_FIXED(4)], a->l[FA_FIXED(4)]);
        argf(s, "%zu", n_i);
        if ((rc = append_raw(s)) < 0) goto fail_conn;
        n_cmd++;
    }
    for (size_t j = 0, in_cmd = 0; j < n_i; j++) {
        if (!zadd[j]) continue;
        if (!in_cmd) {
            arg_str(s, "ZADD");
            arg(s, a->v[FA_FIXED(1)], a->l[FA_FIXED(1)]);
        }
        arg(s, pop[j], popl[j]);
        arg(s, a->v[FA_ITEM(a, j, 0)], a->l[FA_ITEM(a, j, 0)]);
        n_zadd--;
        if (++in_cmd == BATCH || n_zadd == 0) {
            if ((rc = append_raw(s)) < 0) goto fail_conn;
            n_cmd++;
            in_cmd = 0;
        }
    }
    for (size_t j = 0; j < n_i; j++) {
        if (j % SR_STORE_STREAM_CHUNK == 0) {
            arg_str(s, "XADD");
            arg(s, a->v[FA_FIXED(2)], a->l[FA_FIXED(2)]);
            arg_str(s, "MAXLEN");
            arg_str(s, "~");
            arg(s, a->v[FA_ARGV(a, 4)], a->l[FA_ARGV(a, 4)]);
            arg_str(s, "*");
            arg_str(s, "q");
            argf(s, "%" PRId64, seq + (int64_t)j + 1);
        }
        /* One pair per item, id -> "<num>[ <pop>]", and no blob: followers
         * read the item's key (docs/REDIS.md).  Redis's cost is per
         * argument, and four pairs per item cost it as much as the MSET. */
        size_t ni = FA_ITEM(a, j, 1), nl = a->l[ni];
        char *nv = sr_arena_alloc(&s->scratch, nl + 1 + popl[j]);
        if (!nv) {
            rc = set_err(s, SR_ERR_NOMEM, "out of memory");
            goto fail_conn;
        }
        memcpy(nv, a->v[ni], nl);
        if (popl[j]) {
            nv[nl] = ' ';
            memcpy(nv + nl + 1, pop[j], popl[j]);
        }
        arg(s, a->v[FA_ITEM(a, j, 0)], a->l[FA_ITEM(a, j, 0)]);
        arg(s, nv, nl + (popl[j] ? 1 + popl[j] : 0));
        if ((j + 1) % SR_STORE_STREAM_CHUNK == 0 || j + 1 == n_i) {
            if ((rc = append_raw(s)) < 0) goto fail_conn;
            n_cmd++;
        }
    }
    if (fa_is(a, FA_ARGV(a, 5), "1")) {
        arg_str(s, "SET");
        arg(s, a->v[FA_FIXED(3)], a->l[FA_FIXED(3)]);
        arg(s, a->v[FA_ARGV(a, 6)], a->l[FA_ARGV(a, 6)]);
        if ((rc = append_raw(s)) < 0) goto fail_conn;
        n_cmd++;
    }
    arg_str(s, "EXEC");
    if ((rc = append_raw(s)) < 0 || (rc = send_raw(s)) < 0) goto fail_conn;

    /* MULTI's OK, one QUEUED (or a refusal, e.g. OOM) per command, EXEC. */
    redisReply *r = NULL;
    char queued_err[256] = "";
    for (size_t i = 0; i < n_cmd + 1; i++) {
        if ((rc = reply(s, &r)) < 0) goto out;
        if (r->type == REDIS_REPLY_ERROR && !queued_err[0])
            snprintf(queued_err, sizeof(queued_err), "%.*s", (int)r->len, r->str);
        freeReplyObject(r);
    }
    if ((rc = reply(s, &r)) < 0) goto out;
    int64_t written_ms = sr_wall_ms();
    if (r->type == REDIS_REPLY_NIL) {
        freeReplyObject(r);
        rc = TX_ABORTED;
        goto out;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        /* EXECABORT: a command was refused while queueing, nothing ran. */
        rc = reply_err(s, r, "flush");
        if (queued_err[0])
            set_err(s, rc, "redis flush: %s (transaction discarded)", queued_err);
        freeReplyObject(r);
        goto out;
    }
    rc = 0;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != n_cmd)
        rc = set_err(s, SR_ERR_REDIS, "flush: unexpected EXEC reply");
    for (size_t i = 0; rc == 0 && i < r->elements; i++)
        if (r->element[i]->type == REDIS_REPLY_ERROR) /* checked above; cannot happen */
            rc = set_err(s, SR_ERR_REDIS, "redis flush: EXEC: %.*s (partly applied)",
                         (int)r->element[i]->len, r->element[i]->str);
    int64_t now_seq = seq;
    if (rc == 0 && n_i) {
        const redisReply *ir = r->element[i_incr];
        now_seq = ir->type == REDIS_REPLY_INTEGER ? ir->integer : -1;
    }
    freeReplyObject(r);
    if (rc == 0 && s->flush_hook && s->flush_hook(s->flush_hook_arg, 1)) {
        disconnect(s);
        rc = set_err(s, SR_ERR_UNAVAIL, "redis %s: read: reply dropped by the test hook", s->node);
    }
    if (rc < 0) goto out;
    /* What Redis holds now, for the next transaction of this handle. */
    if (now_seq >= 0 && now_seq == seq + (int64_t)n_i) {
        int ok = 1;
        for (size_t j = 0; ok && j < n_i; j++) {
            int wp = fa_is(a, FA_ITEM(a, j, 4), "1");
            if (wp && zadd[j])
                ok = cache_put(s, nums[j], val[j], vall[j], 1, pop[j], popl[j], popd[j]) == 0;
            else
                ok = cache_put(s, nums[j], val[j], vall[j], t.pop_known[j], t.pv[j], t.pl[j],
                               t.pd[j]) == 0;
        }
        s->cache_seq = ok ? now_seq : -1;
        if (!ok) cache_forget(s);
    } else {
        cache_forget(s);
    }
    /* pop[] may point into the reads: they are released after this. */
    rc = flush_result(s, f, nums, mv, mvl, pop, popl, popd, res);
    if (rc == 0 && res) res->written_wall_ms = written_ms;
    release_reads(fixed, n_fixed, &t);
    return rc;
out:
    cache_forget(s);
    release_reads(fixed, n_fixed, &t);
    return rc;

unwatch_out:
    cache_forget(s);
    release_reads(fixed, n_fixed, &t);
    {
        char keep[sizeof(s->err)];
        memcpy(keep, s->err, sizeof(keep));
        unwatch(s);
        memcpy(s->err, keep, sizeof(keep));
    }
    return rc;
fail_conn:
    /* Commands half appended: drop the connection (and with it WATCH). */
    cache_forget(s);
    release_reads(fixed, n_fixed, &t);
    disconnect(s);
    return rc;
}

int sr_store_flush(sr_store_t *s, const sr_store_flush_t *f, sr_store_flush_result_t *res)
{
    if (res) memset(res, 0, sizeof(*res));
    if (!s || !f || (f->n_offsets && (!f->offsets || !f->group)) || (f->n_users && !f->users) ||
        (f->n_items && !f->items))
        return SR_ERR_INVAL;
    int rc = begin(s);
    if (rc < 0) return rc;

    /* 1. Global numbers for every item id this flush mentions: items
     * first, then every user's recent items in order.  Looked up once;
     * the ones the cache lacks are assigned by one script call. */
    size_t n_ids = f->n_items;
    for (size_t i = 0; i < f->n_users; i++) n_ids += f->users[i].n_recent;
    uint32_t *nums = sr_arena_alloc(&s->res, (n_ids + 1) * sizeof(*nums));
    const char **miss = sr_arena_alloc(&s->res, (n_ids + 1) * sizeof(*miss));
    size_t *miss_len = sr_arena_alloc(&s->res, (n_ids + 1) * sizeof(*miss_len));
    size_t *miss_at = sr_arena_alloc(&s->res, (n_ids + 1) * sizeof(*miss_at));
    if (!nums || !miss || !miss_len || !miss_at) return set_err(s, SR_ERR_NOMEM, "out of memory");
    size_t k = 0, n_miss = 0;
    for (size_t i = 0; i < f->n_items; i++, k++) {
        const sr_store_item_t *c = f->items[i].cur;
        if (!c || !c->id || !c->id_len)
            return set_err(s, SR_ERR_INVAL, "flush: item %zu has no id or value", i);
        if (!(nums[k] = sr_idmap_num(&s->idmap, c->id, c->id_len))) {
            miss[n_miss] = c->id;
            miss_len[n_miss] = c->id_len;
            miss_at[n_miss++] = k;
        }
    }
    for (size_t i = 0; i < f->n_users; i++) {
        const sr_store_user_t *u = &f->users[i];
        if (!u->id || !u->id_len) return set_err(s, SR_ERR_INVAL, "flush: user %zu has no id", i);
        if (u->n_recent > SR_STORE_RECENT_MAX || (u->n_recent && !u->recent))
            return set_err(s, SR_ERR_INVAL, "flush: user %zu: bad recent items", i);
        for (uint32_t j = 0; j < u->n_recent; j++, k++) {
            const sr_store_recent_t *r = &u->recent[j];
            if ((nums[k] = r->num)) continue;
            if (!r->item_id || !r->item_id_len)
                return set_err(s, SR_ERR_INVAL, "flush: user %zu recent item %u has no id", i, j);
            if (!(nums[k] = sr_idmap_num(&s->idmap, r->item_id, r->item_id_len))) {
                miss[n_miss] = r->item_id;
                miss_len[n_miss] = r->item_id_len;
                miss_at[n_miss++] = k;
            }
        }
    }
    for (size_t off = 0; off < n_miss; off += BATCH) {
        size_t m = n_miss - off < BATCH ? n_miss - off : BATCH;
        if ((rc = assign_nums(s, miss + off, miss_len + off, m)) < 0) return rc;
    }
    for (size_t q = 0; q < n_miss; q++) {
        nums[miss_at[q]] = sr_idmap_num(&s->idmap, miss[q], miss_len[q]);
        if (!nums[miss_at[q]]) return set_err(s, SR_ERR_REDIS, "flush: no number for an item");
    }

    /* 2. The script's argv (scripts.h), which is the transaction's input too. */
    args_reset(s);
    arg_str(s, "EVALSHA");
    arg_str(s, s->sha_flush);
    argf(s, "%zu", 5 + f->n_users + f->n_items);
    arg_key(s, "off:", f->group ? f->group : "", f->group ? strlen(f->group) : 0);
    arg_key(s, "pop", "", 0);
    arg_key(s, "updates", "", 0);
    arg_key(s, "global", "", 0);
    arg_key(s, "updates:seq", "", 0);
    for (size_t i = 0; i < f->n_users; i++) arg_key(s, "u:", f->users[i].id, f->users[i].id_len);
    for (size_t i = 0; i < f->n_items; i++)
        arg_key(s, "i:", f->items[i].cur->id, f->items[i].cur->id_len);
    argf(s, "%zu", f->n_offsets);
    argf(s, "%zu", f->n_users);
    argf(s, "%zu", f->n_items);
    argf(s, "%ld", (s->stream_maxlen + SR_STORE_STREAM_CHUNK - 1) / SR_STORE_STREAM_CHUNK);
    if (f->global) {
        arg_str(s, "1");
        char *g = sr_arena_alloc(&s->scratch, f->global_len + 4);
        if (!g) return set_err(s, SR_ERR_NOMEM, "out of memory");
        long gl = sr_store_global_encode(f->global, f->global_len, g, f->global_len + 4);
        if (gl < 0) return set_err(s, (int)gl, "flush: global state too large");
        arg(s, g, (size_t)gl);
    } else {
        arg_str(s, "0");
        arg_str(s, "");
    }
    arg_str(s, s->has_zmscore ? "1" : "0");
    for (size_t i = 0; i < f->n_offsets; i++) {
        const sr_store_offset_t *o = &f->offsets[i];
        if (!o->topic || strchr(o->topic, ':') || o->partition < 0 || o->next < 0 ||
            o->prev < SR_STORE_OFFSET_ANY)
            return set_err(s, SR_ERR_INVAL, "flush: bad offset entry %zu", i);
        char *field = sr_arena_alloc(&s->scratch, strlen(o->topic) + 16);
        if (!field) return set_err(s, SR_ERR_NOMEM, "out of memory");
        int fl = sprintf(field, "%s:%" PRId32, o->topic, o->partition);
        arg(s, field, (size_t)fl);
        argf(s, "%" PRId64, o->prev);
        argf(s, "%" PRId64, o->next);
    }
    k = f->n_items;
    for (size_t i = 0; i < f->n_users; i++) {
        sr_store_user_t u = f->users[i];
        sr_store_recent_t *rec = u.n_recent ? sr_arena_alloc(&s->scratch, u.n_recent * sizeof(*rec))
                                            : NULL;
        if (u.n_recent && !rec) return set_err(s, SR_ERR_NOMEM, "out of memory");
        for (uint32_t j = 0; j < u.n_recent; j++, k++) {
            rec[j] = u.recent[j];
            rec[j].num = nums[k];
        }
        u.recent = rec;
        size_t n = sr_store_user_size(&u);
        char *buf = sr_arena_alloc(&s->scratch, n);
        if (!buf) return set_err(s, SR_ERR_NOMEM, "out of memory");
        long l = sr_store_user_encode(&u, buf, n);
        if (l < 0)
            return set_err(s, (int)l, "flush: user '%.*s' cannot be encoded (dim, accumulators, "
                                      "recent items or timestamps out of range)",
                           (int)(u.id_len > 64 ? 64 : u.id_len), u.id);
        arg(s, buf, (size_t)l);
    }
    double *pb = sr_arena_alloc(&s->scratch, (f->n_items + 1) * sizeof(*pb));
    double *pc = sr_arena_alloc(&s->scratch, (f->n_items + 1) * sizeof(*pc));
    if (!pb || !pc) return set_err(s, SR_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < f->n_items; i++) {
        const sr_store_item_write_t *w = &f->items[i];
        const char *cur, *base = "";
        long cl = encode_item_arg(s, w->cur, &cur), bl = 0;
        if (cl >= 0 && w->base) {
            /* The base without its extra (the script compares and merges
             * floats only): header, bias, vector, accumulators. */
            sr_store_item_t b = *w->base;
            b.extra = NULL;
            b.extra_len = 0;
            bl = encode_item_arg(s, &b, &base);
            if (bl >= 4) bl -= 4; /* extra_len */
        }
        if (cl < 0 || bl < 0 ||
            (w->base && (w->base->dim != w->cur->dim || w->base->n_acc != w->cur->n_acc)))
            return set_err(s, SR_ERR_INVAL, "flush: item '%.*s' cannot be encoded",
                           (int)(w->cur->id_len > 64 ? 64 : w->cur->id_len), w->cur->id);
        arg(s, w->cur->id, w->cur->id_len);
        arg_u32(s, nums[i]);
        arg(s, base, (size_t)bl);
        arg(s, cur, (size_t)cl);
        if (w->write_pop && (!isfinite(w->pop_base) || !isfinite(w->pop_cur)))
            return set_err(s, SR_ERR_INVAL, "flush: item %zu: popularity not finite", i);
        arg_str(s, w->write_pop ? "1" : "0");
        arg_str(s, ""); /* pop_base, pop_cur: see flush_args_t */
        arg_str(s, "");
        pb[i] = w->pop_base;
        pc[i] = w->pop_cur;
    }

    /* The script's argv is the input of both paths: keep it, the
     * transaction builds its commands in s->argv. */
    flush_args_t a = {.argc = s->argc, .n_off = f->n_offsets, .n_u = f->n_users,
                      .n_i = f->n_items, .a = 8 + f->n_users + f->n_items,
                      .pop_base = pb, .pop_cur = pc};
    if (s->argv_oom) return set_err(s, SR_ERR_NOMEM, "out of memory building a command");
    a.v = sr_arena_alloc(&s->scratch, a.argc * sizeof(*a.v));
    a.l = sr_arena_alloc(&s->scratch, a.argc * sizeof(*a.l));
    if (!a.v || !a.l) return set_err(s, SR_ERR_NOMEM, "out of memory");
    memcpy(a.v, s->argv, a.argc * sizeof(*a.v));
    memcpy(a.l, s->argvlen, a.argc * sizeof(*a.l));
    unsigned aborts = 0;
    if (s->flush_mode == SR_STORE_FLUSH_TRANSACTION) {
        for (; aborts < SR_STORE_TX_ATTEMPTS; aborts++) {
            rc = flush_tx(s, f, &a, nums, res);
            if (rc != TX_ABORTED) {
                if (res) res->tx_aborts = aborts;
                return rc;
            }
        }
        sr_log(SR_LOG_DEBUG, "store: %u flush transactions aborted by other writers; "
                             "writing it with the script", aborts);
    }
    /* The script writes items this handle then does not know exactly. */
    cache_forget(s);
    rc = flush_script(s, f, &a, nums, res);
    if (res) {
        res->n_items_read = f->n_items;
        res->by_script = 1;
        res->tx_aborts = aborts;
    }
    return rc;
}

void sr_store_set_flush_hook(sr_store_t *s, int (*fn)(void *arg, int stage), void *arg)
{
    s->flush_hook = fn;
    s->flush_hook_arg = arg;
}

/* ------------------------------------------------------------------ */
/* reads                                                                */
/* ------------------------------------------------------------------ */

int sr_store_get_offsets(sr_store_t *s, const char *group, const char *topic,
                         const int32_t *partitions, size_t n, int64_t *offsets)
{
    if (!s || !group || !topic || (n && (!partitions || !offsets))) return SR_ERR_INVAL;
    int rc = begin(s);
    if (rc < 0) return rc;
    for (size_t i = 0; i < n; i++) offsets[i] = SR_STORE_OFFSET_NONE;
    if (!n) return 0;
    arg_str(s, "HMGET");
    arg_key(s, "off:", group, strlen(group));
    for (size_t i = 0; i < n; i++) argf(s, "%s:%" PRId32, topic, partitions[i]);
    redisReply *r = NULL;
    if ((rc = simple(s, "HMGET offsets", &r)) < 0) return rc;
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < n && i < r->elements; i++) {
        const redisReply *e = r->element[i];
        if (e->type == REDIS_REPLY_STRING && parse_i64(e->str, e->len, &offsets[i]) < 0) {
            freeReplyObject(r);
            return set_err(s, SR_ERR_CORRUPT, "offsets of group %s: bad value", group);
        }
    }
    freeReplyObject(r);
    return 0;
}

/* Appends MGET commands for keys "<kind><ids[i]>" in batches; returns the
 * number of commands appended or <0. */
static long append_mget(sr_store_t *s, const char *kind, const char *const *ids,
                        const size_t *lens, size_t n)
{
    long cmds = 0;
    for (size_t off = 0; off < n; off += BATCH) {
        size_t m = n - off < BATCH ? n - off : BATCH;
        s->argc = 0;
        arg_str(s, "MGET");
        for (size_t i = off; i < off + m; i++) arg_key(s, kind, ids[i], id_len(ids, lens, i));
        int rc = append(s);
        if (rc < 0) return rc;
        cmds++;
    }
    return cmds;
}

long sr_store_get_users(sr_store_t *s, const char *const *ids, const size_t *lens, size_t n,
                        sr_store_user_t *out)
{
    if (!s || (n && (!ids || !out))) return SR_ERR_INVAL;
    int rc = begin(s);
    if (rc < 0) return rc;
    long cmds = append_mget(s, "u:", ids, lens, n);
    if (cmds < 0) return cmds;
    long found = 0;
    size_t total_recent = 0;
    int err = 0;
    for (long c = 0; c < cmds; c++) {
        redisReply *r = NULL;
        if ((rc = reply(s, &r)) < 0) return rc;
        size_t off = (size_t)c * BATCH;
        for (size_t j = 0; !err && r->type == REDIS_REPLY_ARRAY && j < r->elements; j++) {
            size_t i = off + j;
            const redisReply *e = r->element[j];
            sr_store_user_t *u = &out[i];
            memset(u, 0, sizeof(*u));
            u->id = ids[i];
            u->id_len = id_len(ids, lens, i);
            if (e->type != REDIS_REPLY_STRING) continue;
            char *copy = sr_arena_strdup(&s->res, e->str, e->len);
            size_t m = sr_store_user_mem(e->str, e->len);
            void *mem = sr_arena_alloc(&s->res, m + 8);
            if (!copy || !mem) {
                err = set_err(s, SR_ERR_NOMEM, "out of memory");
                break;
            }
            int drc = sr_store_user_decode(copy, e->len, u, mem, m + 8);
            if (drc < 0) {
                err = set_err(s, drc, "user '%.*s' (%s:u:...): %s",
                              (int)(u->id_len > 64 ? 64 : u->id_len), u->id, s->tag,
                              sr_strerror(drc));
                break;
            }
            u->exists = 1;
            found++;
            total_recent += u->n_recent;
        }
        if (r->type == REDIS_REPLY_ERROR && !err) err = reply_err(s, r, "MGET users");
        freeReplyObject(r);
        if (err) {
            drain(s, (size_t)(cmds - c - 1));
            return err;
        }
    }
    /* Resolve recent item numbers to ids. */
    if (total_recent) {
        uint32_t *nums = sr_arena_alloc(&s->res, total_recent * sizeof(*nums));
        if (!nums) return set_err(s, SR_ERR_NOMEM, "out of memory");
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
            for (uint32_t j = 0; j < out[i].n_recent; j++) nums[k++] = out[i].recent[j].num;
        for (size_t off = 0; off < k; off += BATCH) {
            size_t m = k - off < BATCH ? k - off : BATCH;
            if ((rc = resolve_nums(s, nums + off, m)) < 0) return rc;
        }
        for (size_t i = 0; i < n; i++)
            for (uint32_t j = 0; j < out[i].n_recent; j++) {
                sr_store_recent_t *rr = (sr_store_recent_t *)&out[i].recent[j];
                rr->item_id = sr_idmap_id(&s->idmap, rr->num, &rr->item_id_len);
            }
    }
    return found;
}

long sr_store_get_items(sr_store_t *s, const char *const *ids, const size_t *lens, size_t n,
                        sr_store_item_t *out)
{
    if (!s || (n && (!ids || !out))) return SR_ERR_INVAL;
    int rc = begin(s);
    if (rc < 0) return rc;
    long cmds = append_mget(s, "i:", ids, lens, n);
    if (cmds < 0) return cmds;
    /* numbers and popularity in the same round trip */
    long extra = 0;
    for (size_t off = 0; off < n; off += BATCH) {
        size_t m = n - off < BATCH ? n - off : BATCH;
        s->argc = 0;
        arg_str(s, "HMGET");
        arg_key(s, "item:num", "", 0);
        for (size_t i = off; i < off + m; i++) arg(s, ids[i], id_len(ids, lens, i));
        if ((rc = append(s)) < 0) return rc;
        extra++;
    }
    /* Popularity: one ZMSCORE per BATCH ids (a warm load of 10,000 new
     * items was 10,000 commands), ZSCORE per id before Redis 6.2. */
    size_t n_pop = 0, per = s->has_zmscore ? BATCH : 1;
    for (size_t off = 0; off < n; off += per) {
        size_t m = n - off < per ? n - off : per;
        s->argc = 0;
        arg_str(s, s->has_zmscore ? "ZMSCORE" : "ZSCORE");
        arg_key(s, "pop", "", 0);
        for (size_t i = off; i < off + m; i++) arg(s, ids[i], id_len(ids, lens, i));
        if ((rc = append(s)) < 0) return rc;
        n_pop++;
    }
    size_t pending = (size_t)(cmds + extra) + n_pop;
    long found = 0;
    int err = 0;
    for (long c = 0; c < cmds; c++) {
        redisReply *r = NULL;
        if ((rc = reply(s, &r)) < 0) return rc;
        pending--;
        size_t off = (size_t)c * BATCH;
        for (size_t j = 0; !err && r->type == REDIS_REPLY_ARRAY && j < r->elements; j++) {
            size_t i = off + j;
            sr_store_item_t *it = &out[i];
            memset(it, 0, sizeof(*it));
            it->id = ids[i];
            it->id_len = id_len(ids, lens, i);
            const redisReply *e = r->element[j];
            if (e->type != REDIS_REPLY_STRING) continue;
            char what[96];
            snprintf(what, sizeof(what), "item '%.*s'", (int)(it->id_len > 64 ? 64 : it->id_len),
                     it->id);
            if ((err = decode_item(s, e->str, e->len, it, what)) < 0) break;
            it->exists = 1;
            found++;
        }
        if (r->type == REDIS_REPLY_ERROR && !err) err = reply_err(s, r, "MGET items");
        freeReplyObject(r);
        if (err) {
            drain(s, pending);
            return err;
        }
    }
    for (long c = 0; c < extra; c++) {
        redisReply *r = NULL;
        if ((rc = reply(s, &r)) < 0) return rc;
        pending--;
        size_t off = (size_t)c * BATCH;
        for (size_t j = 0; r->type == REDIS_REPLY_ARRAY && j < r->elements; j++) {
            int64_t v;
            const redisReply *e = r->element[j];
            if (e->type == REDIS_REPLY_STRING && parse_i64(e->str, e->len, &v) == 0 && v > 0 &&
                v <= UINT32_MAX) {
                out[off + j].num = (uint32_t)v;
                sr_idmap_put(&s->idmap, ids[off + j], id_len(ids, lens, off + j), (uint32_t)v);
            }
        }
        freeReplyObject(r);
    }
    for (size_t c = 0; c < n_pop; c++) {
        redisReply *r = NULL;
        if ((rc = reply(s, &r)) < 0) return rc;
        /* command c asked for ids [c * per, c * per + per); an error reply (e.g. the
         * key is not a sorted set) leaves them without popularity */
        size_t off = c * per;
        for (size_t j = 0; j < per && off + j < n; j++) {
            const redisReply *e = !s->has_zmscore ? r
                                  : r->type == REDIS_REPLY_ARRAY && j < r->elements ? r->element[j]
                                                                                     : NULL;
            if (e && e->type == REDIS_REPLY_STRING &&
                parse_double(e->str, e->len, &out[off + j].pop) == 0)
                out[off + j].has_pop = 1;
        }
        freeReplyObject(r);
    }
    return found;
}

int sr_store_get_global(sr_store_t *s, const void **payload, size_t *len)
{
    if (!s || !payload || !len) return SR_ERR_INVAL;
    *payload = NULL;
    *len = 0;
    int rc = begin(s);
    if (rc < 0) return rc;
    arg_str(s, "GET");
    arg_key(s, "global", "", 0);
    redisReply *r = NULL;
    if ((rc = simple(s, "GET global", &r)) < 0) return rc;
    if (r->type == REDIS_REPLY_STRING) {
        char *copy = sr_arena_strdup(&s->res, r->str, r->len);
        if (!copy) rc = set_err(s, SR_ERR_NOMEM, "out of memory");
        else if ((rc = sr_store_global_decode(copy, r->len, payload, len)) < 0)
            set_err(s, rc, "%s:global: %s", s->tag, sr_strerror(rc));
    }
    freeReplyObject(r);
    return rc;
}

long sr_store_pop_top(sr_store_t *s, size_t k, const sr_store_pop_t **out)
{
    if (!s || !out) return SR_ERR_INVAL;
    *out = NULL;
    int rc = begin(s);
    if (rc < 0) return rc;
    if (k == 0) return 0;
    arg_str(s, "ZREVRANGE");
    arg_key(s, "pop", "", 0);
    arg_str(s, "0");
    argf(s, "%zu", k - 1);
    arg_str(s, "WITHSCORES");
    redisReply *r = NULL;
    if ((rc = simple(s, "ZREVRANGE pop", &r)) < 0) return rc;
    size_t n = r->type == REDIS_REPLY_ARRAY ? r->elements / 2 : 0;
    sr_store_pop_t *p = sr_arena_alloc(&s->res, (n + 1) * sizeof(*p));
    if (!p) {
        freeReplyObject(r);
        return set_err(s, SR_ERR_NOMEM, "out of memory");
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        const redisReply *id = r->element[2 * i], *sc = r->element[2 * i + 1];
        if (id->type != REDIS_REPLY_STRING || sc->type != REDIS_REPLY_STRING) continue;
        p[m].id = sr_arena_strdup(&s->res, id->str, id->len);
        p[m].id_len = id->len;
        if (!p[m].id || parse_double(sc->str, sc->len, &p[m].score) < 0) continue;
        m++;
    }
    freeReplyObject(r);
    *out = p;
    return (long)m;
}

long sr_store_user_memory(sr_store_t *s, const char *id, size_t len)
{
    int rc = begin(s);
    if (rc < 0) return rc;
    arg_str(s, "MEMORY");
    arg_str(s, "USAGE");
    arg_key(s, "u:", id, len);
    arg_str(s, "SAMPLES");
    arg_str(s, "0");
    redisReply *r = NULL;
    if ((rc = simple(s, "MEMORY USAGE", &r)) < 0) return rc;
    long v = r->type == REDIS_REPLY_INTEGER ? (long)r->integer
                                            : set_err(s, SR_ERR_NOTFOUND, "no such user");
    freeReplyObject(r);
    return v;
}

/* ------------------------------------------------------------------ */
/* item matrix and update stream                                        */
/* ------------------------------------------------------------------ */

/* The layout of an update entry's field list: its first item's number in
 * *seq, fields per item in *stride (2: `q` entries, id -> "<num>[ <pop>]";
 * 8: `s` entries of writers up to 8632c8f, n/id/v/p), and the number
 * of items, or -1 when it is neither. */
static long entry_layout(const redisReply *fl, int64_t *seq, size_t *stride)
{
    if (fl->type != REDIS_REPLY_ARRAY || fl->elements < 2 ||
        fl->element[0]->type != REDIS_REPLY_STRING || fl->element[0]->len != 1 ||
        fl->element[1]->type != REDIS_REPLY_STRING ||
        parse_i64(fl->element[1]->str, fl->element[1]->len, seq) < 0 || *seq < 1)
        return -1;
    char tag = fl->element[0]->str[0];
    *stride = tag == 'q' ? 2 : tag == 's' ? 8 : 0;
    if (!*stride || (fl->elements - 2) % *stride != 0) return -1;
    return (long)((fl->elements - 2) / *stride);
}

/* "ms-seq" -> "ms-(seq+1)": the first stream id after it (XRANGE's
 * exclusive "(" start needs Redis 6.2; this works on every version). */
static int next_id(const char *id, char *out, size_t size)
{
    unsigned long long ms, seq;
    if (sscanf(id, "%llu-%llu", &ms, &seq) != 2) {
        snprintf(out, size, "%s", id);
        return -1;
    }
    if (seq == UINT64_MAX)
        snprintf(out, size, "%llu-0", ms + 1);
    else
        snprintf(out, size, "%llu-%llu", ms, seq + 1);
    return 0;
}

static int tail_now(sr_store_t *s, sr_store_cursor_t *cur)
{
    memset(cur, 0, sizeof(*cur));
    args_reset(s);
    arg_str(s, "XREVRANGE");
    arg_key(s, "updates", "", 0);
    arg_str(s, "+");
    arg_str(s, "-");
    arg_str(s, "COUNT");
    arg_str(s, "1");
    int rc = append(s);
    if (rc < 0) return rc;
    s->argc = 0;
    arg_str(s, "GET");
    arg_key(s, "updates:seq", "", 0);
    if ((rc = append(s)) < 0) return rc;
    redisReply *r1 = NULL, *r2 = NULL;
    if ((rc = reply(s, &r1)) < 0) return rc;
    if ((rc = reply(s, &r2)) < 0) {
        freeReplyObject(r1);
        return rc;
    }
    int64_t seq = 0;
    if (r2->type == REDIS_REPLY_STRING) parse_i64(r2->str, r2->len, &seq);
    snprintf(cur->id, sizeof(cur->id), "0-0");
    cur->seq = (uint64_t)seq;
    if (r1->type == REDIS_REPLY_ARRAY && r1->elements == 1) {
        const redisReply *e = r1->element[0];
        if (e->type == REDIS_REPLY_ARRAY && e->elements == 2 &&
            e->element[0]->type == REDIS_REPLY_STRING && e->element[0]->len < sizeof(cur->id)) {
            char last[48];
            memcpy(last, e->element[0]->str, e->element[0]->len);
            last[e->element[0]->len] = '\0';
            next_id(last, cur->id, sizeof(cur->id));
            int64_t es;
            size_t stride;
            long k = entry_layout(e->element[1], &es, &stride);
            if (k > 0) cur->seq = (uint64_t)es + (uint64_t)k - 1;
        }
    }
    if (r1->type == REDIS_REPLY_ERROR) rc = reply_err(s, r1, "XREVRANGE updates");
    freeReplyObject(r1);
    freeReplyObject(r2);
    return rc;
}

int sr_store_updates_tail(sr_store_t *s, sr_store_cursor_t *cursor)
{
    if (!s || !cursor) return SR_ERR_INVAL;
    int rc = begin(s);
    if (rc < 0) return rc;
    return tail_now(s, cursor);
}

void sr_store_items_free(sr_store_items_t *it)
{
    if (!it) return;
    free(it->vec);
    free(it->bias);
    free(it->pop);
    free(it->num);
    free(it->id_buf);
    free(it->id_off);
    free(it->id_len);
    free(it);
}

static int items_reserve(sr_store_items_t *it, size_t *cap, size_t want, uint32_t dim)
{
    if (want <= *cap) return 0;
    size_t nc = *cap ? *cap : 1024;
    while (nc < want) nc *= 2;
    float *v = realloc(it->vec, nc * dim * sizeof(float));
    if (!v) return -1;
    it->vec = v;
    float *b = realloc(it->bias, nc * sizeof(float));
    if (!b) return -1;
    it->bias = b;
    double *p = realloc(it->pop, nc * sizeof(double));
    if (!p) return -1;
    it->pop = p;
    uint32_t *n = realloc(it->num, nc * sizeof(uint32_t));
    if (!n) return -1;
    it->num = n;
    uint32_t *o = realloc(it->id_off, nc * sizeof(uint32_t));
    if (!o) return -1;
    it->id_off = o;
    uint32_t *l = realloc(it->id_len, nc * sizeof(uint32_t));
    if (!l) return -1;
    it->id_len = l;
    *cap = nc;
    return 0;
}

int sr_store_load_items(sr_store_t *s, sr_store_items_t **out)
{
    if (!s || !out) return SR_ERR_INVAL;
    *out = NULL;
    int rc = begin(s);
    if (rc < 0) return rc;
    sr_store_items_t *it = calloc(1, sizeof(*it));
    if (!it) return set_err(s, SR_ERR_NOMEM, "out of memory");
    /* The tail first: updates written while we scan are replayed by the
     * follower (they carry full values, so replaying is harmless). */
    if ((rc = tail_now(s, &it->cursor)) < 0) goto fail;
    size_t cap = 0, buf_cap = 0, buf_len = 0;
    char cursor[32] = "0";
    int skipped_dim = 0;
    do {
        args_reset(s);
        arg_str(s, "HSCAN");
        arg_key(s, "item:num", "", 0);
        arg_str(s, cursor);
        arg_str(s, "COUNT");
        arg_str(s, "1000");
        redisReply *r = NULL;
        if ((rc = simple(s, "HSCAN item:num", &r)) < 0) goto fail;
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
            r->element[0]->type != REDIS_REPLY_STRING || r->element[0]->len >= sizeof(cursor) ||
            r->element[1]->type != REDIS_REPLY_ARRAY) {
            freeReplyObject(r);
            rc = set_err(s, SR_ERR_REDIS, "HSCAN: unexpected reply");
            goto fail;
        }
        memcpy(cursor, r->element[0]->str, r->element[0]->len);
        cursor[r->element[0]->len] = '\0';
        const redisReply *kv = r->element[1];
        size_t m = kv->elements / 2;
        if (m) {
            /* MGET the item blobs and ZSCORE their popularity, one round trip. */
            args_reset(s);
            arg_str(s, "MGET");
            for (size_t j = 0; j < m; j++)
                arg_key(s, "i:", kv->element[2 * j]->str, kv->element[2 * j]->len);
            if ((rc = append(s)) < 0) {
                freeReplyObject(r);
                goto fail;
            }
            for (size_t j = 0; j < m; j++) {
                s->argc = 0;
                arg_str(s, "ZSCORE");
                arg_key(s, "pop", "", 0);
                arg(s, kv->element[2 * j]->str, kv->element[2 * j]->len);
                if ((rc = append(s)) < 0) {
                    freeReplyObject(r);
                    goto fail;
                }
            }
            redisReply *mg = NULL;
            if ((rc = reply(s, &mg)) < 0) {
                freeReplyObject(r);
                goto fail;
            }
            for (size_t j = 0; j < m; j++) {
                redisReply *zs = NULL;
                if ((rc = reply(s, &zs)) < 0) {
                    freeReplyObject(mg);
                    freeReplyObject(r);
                    goto fail;
                }
                const redisReply *blob = mg->type == REDIS_REPLY_ARRAY && j < mg->elements
                                             ? mg->element[j]
                                             : NULL;
                const redisReply *idr = kv->element[2 * j], *numr = kv->element[2 * j + 1];
                int64_t num = 0;
                sr_store_item_t item;
                memset(&item, 0, sizeof(item));
                int ok = blob && blob->type == REDIS_REPLY_STRING &&
                         parse_i64(numr->str, numr->len, &num) == 0 && num > 0 &&
                         num <= UINT32_MAX;
                float tmp[2 * SR_STORE_DIM_MAX];
                if (ok && sr_store_item_decode(blob->str, blob->len, &item, tmp, sizeof(tmp)) < 0) {
                    sr_log(SR_LOG_WARN, "store: item '%.*s' has a corrupt blob; skipped",
                           (int)(idr->len > 64 ? 64 : idr->len), idr->str);
                    ok = 0;
                }
                if (ok && it->n == 0 && it->dim == 0) it->dim = item.dim;
                if (ok && item.dim != it->dim) {
                    skipped_dim++;
                    ok = 0;
                }
                if (ok) {
                    if (items_reserve(it, &cap, it->n + 1, it->dim) < 0 ||
                        (buf_len + idr->len + 1 > buf_cap &&
                         !(it->id_buf = realloc(it->id_buf,
                                                buf_cap = (buf_len + idr->len + 1) * 2)))) {
                        freeReplyObject(zs);
                        freeReplyObject(mg);
                        freeReplyObject(r);
                        rc = set_err(s, SR_ERR_NOMEM, "out of memory loading items");
                        goto fail;
                    }
                    uint32_t i = it->n++;
                    memcpy(it->vec + (size_t)i * it->dim, item.vec, it->dim * sizeof(float));
                    it->bias[i] = item.bias;
                    it->num[i] = (uint32_t)num;
                    it->pop[i] = 0;
                    if (zs->type == REDIS_REPLY_STRING) parse_double(zs->str, zs->len, &it->pop[i]);
                    memcpy(it->id_buf + buf_len, idr->str, idr->len);
                    it->id_buf[buf_len + idr->len] = '\0';
                    it->id_off[i] = (uint32_t)buf_len;
                    it->id_len[i] = (uint32_t)idr->len;
                    buf_len += idr->len + 1;
                    sr_idmap_put(&s->idmap, idr->str, idr->len, (uint32_t)num);
                }
                freeReplyObject(zs);
            }
            freeReplyObject(mg);
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    if (skipped_dim)
        sr_log(SR_LOG_WARN, "store: %d items with a dim other than %u skipped", skipped_dim,
               it->dim);
    *out = it;
    return 0;
fail:
    sr_store_items_free(it);
    return rc;
}

/* Fills the updates u[keyed[0..n)] (id, num and pop from their entries)
 * with the item blobs their keys hold now, which may be newer than the
 * entry: a follower then applies the newer value early and the same one
 * again at its own entry.  An update whose key is gone gets exists = 0.
 * 0 or <0 (the connection is then closed or drained). */
static int read_keyed_updates(sr_store_t *s, sr_store_update_t *u, const size_t *keyed, size_t n)
{
    const char **ids = sr_arena_alloc(&s->res, n * sizeof(*ids));
    size_t *lens = sr_arena_alloc(&s->res, n * sizeof(*lens));
    if (!ids || !lens) return set_err(s, SR_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        ids[i] = u[keyed[i]].item.id;
        lens[i] = u[keyed[i]].item.id_len;
    }
    long cmds = append_mget(s, "i:", ids, lens, n);
    if (cmds < 0) {
        disconnect(s); /* commands half appended */
        return (int)cmds;
    }
    int err = 0;
    for (long c = 0; c < cmds; c++) {
        redisReply *r = NULL;
        int rc = reply(s, &r);
        if (rc < 0) return rc;
        if (r->type == REDIS_REPLY_ERROR) err = reply_err(s, r, "MGET updated items");
        for (size_t j = 0; !err && r->type == REDIS_REPLY_ARRAY && j < r->elements; j++) {
            size_t i = (size_t)c * BATCH + j;
            if (i >= n) break;
            /* decode_item sets only the blob's fields: id, num and pop stay. */
            sr_store_item_t *it = &u[keyed[i]].item;
            const redisReply *e = r->element[j];
            it->exists = e->type == REDIS_REPLY_STRING &&
                         decode_item(s, e->str, e->len, it, "updated item") == 0;
            if (!it->exists && e->type == REDIS_REPLY_STRING) {
                sr_log(SR_LOG_WARN, "store: update of %.*s: %s; skipped",
                       (int)(it->id_len > 64 ? 64 : it->id_len), it->id, s->err);
                s->err[0] = '\0';
            }
        }
        freeReplyObject(r);
        if (err) {
            drain(s, (size_t)(cmds - c - 1));
            return err;
        }
    }
    return 0;
}

long sr_store_read_updates(sr_store_t *s, sr_store_cursor_t *cursor, size_t max,
                           const sr_store_update_t **out, int *gap)
{
    if (!s || !cursor || !out || !gap || max == 0) return SR_ERR_INVAL;
    *out = NULL;
    *gap = 0;
    int rc = begin(s);
    if (rc < 0) return rc;
    const sr_store_cursor_t at_start = *cursor;
    /* The cursor names the entry of the last update returned and that
     * update's number: reading from that entry (inclusive) and skipping
     * numbers <= cursor->seq lets a call stop in the middle of an entry, so
     * exactly min(max, available) updates come back.  Entries to ask for:
     * max over the items per entry seen last time, plus the partly read one. */
    size_t per = s->upd_per_entry ? s->upd_per_entry : 8;
    size_t entries = max / per + 2;
    if (entries > 10000) entries = 10000;
    arg_str(s, "XRANGE");
    arg_key(s, "updates", "", 0);
    arg_str(s, cursor->id[0] ? cursor->id : "-");
    arg_str(s, "+");
    arg_str(s, "COUNT");
    argf(s, "%zu", entries);
    redisReply *r = NULL;
    if ((rc = simple(s, "XRANGE updates", &r)) < 0) return rc;
    size_t n = r->type == REDIS_REPLY_ARRAY ? r->elements : 0, total = 0;
    for (size_t i = 0; i < n; i++) {
        const redisReply *e = r->element[i];
        int64_t es;
        size_t stride;
        long k = e->type == REDIS_REPLY_ARRAY && e->elements == 2
                     ? entry_layout(e->element[1], &es, &stride)
                     : -1;
        if (k > 0) total += (size_t)k;
    }
    if (n) s->upd_per_entry = total / n ? total / n : 1;
    size_t cap = max < total ? max : total;
    sr_store_update_t *u = sr_arena_alloc(&s->res, cap * sizeof(*u) + 1);
    /* Updates whose entry has no blob (writers since 2026-12-03): their
     * item is read from its key below. */
    size_t *keyed = sr_arena_alloc(&s->res, cap * sizeof(*keyed) + 1);
    if (!u || !keyed) {
        freeReplyObject(r);
        return set_err(s, SR_ERR_NOMEM, "out of memory");
    }
    size_t m = 0, n_keyed = 0;
    for (size_t i = 0; i < n && m < max; i++) {
        const redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
            e->element[0]->type != REDIS_REPLY_STRING ||
            e->element[0]->len >= sizeof(cursor->id) || e->element[1]->type != REDIS_REPLY_ARRAY)
            continue;
        const redisReply *fl = e->element[1];
        int64_t seq = 0;
        size_t stride = 0;
        long kl = entry_layout(fl, &seq, &stride);
        int bad = kl < 0;
        size_t k = bad ? 0 : (size_t)kl;
        char eid[48];
        memcpy(eid, e->element[0]->str, e->element[0]->len);
        eid[e->element[0]->len] = '\0';
        if (bad || k == 0) {
            /* Malformed: step past it (reading it again cannot help). */
            sr_log(SR_LOG_WARN, "store: malformed update entry %s skipped", eid);
            next_id(eid, cursor->id, sizeof(cursor->id));
            continue;
        }
        uint64_t first = (uint64_t)seq, last = first + k - 1;
        if (last <= cursor->seq) continue; /* the entry we stopped in, fully read */
        if (first > cursor->seq + 1) *gap = 1;
        size_t j0 = first > cursor->seq ? 0 : (size_t)(cursor->seq + 1 - first);
        for (size_t j = j0; j < k && m < max; j++) {
            redisReply *const *g = fl->element + 2 + stride * j;
            /* Inside an entry the cursor names it; after its last update,
             * the first id after it (so it is not fetched again). */
            if (j + 1 < k)
                snprintf(cursor->id, sizeof(cursor->id), "%s", eid);
            else
                next_id(eid, cursor->id, sizeof(cursor->id));
            cursor->seq = first + j;
            int badf = 0;
            for (size_t q = 0; q < stride; q++) badf |= g[q]->type != REDIS_REPLY_STRING;
            if (badf) continue;
            /* The id, the number and the popularity text of either layout;
             * a blob only in the old one. */
            const redisReply *idr = stride == 2 ? g[0] : g[3];
            const char *nt = g[1]->str, *pt = "";
            size_t ntl = g[1]->len, ptl = 0;
            if (stride == 2) {
                const char *sp = memchr(nt, ' ', ntl);
                if (sp) {
                    pt = sp + 1;
                    ptl = ntl - (size_t)(pt - nt);
                    ntl = (size_t)(sp - nt);
                }
            } else {
                pt = g[7]->str;
                ptl = g[7]->len;
            }
            sr_store_update_t *x = &u[m];
            memset(x, 0, sizeof(*x));
            memcpy(x->stream_id, eid, strlen(eid) + 1);
            x->seq = first + j;
            if (stride == 2 || g[5]->len == 0) {
                keyed[n_keyed++] = m;
            } else if (decode_item(s, g[5]->str, g[5]->len, &x->item, "update entry") < 0) {
                sr_log(SR_LOG_WARN, "store: update entry %s: %s; skipped", eid, s->err);
                s->err[0] = '\0';
                continue;
            }
            x->item.id = sr_arena_strdup(&s->res, idr->str, idr->len);
            if (!x->item.id) {
                freeReplyObject(r);
                return set_err(s, SR_ERR_NOMEM, "out of memory");
            }
            x->item.id_len = idr->len;
            x->item.exists = 1;
            int64_t num = 0;
            if (parse_i64(nt, ntl, &num) == 0 && num > 0 && num <= UINT32_MAX) {
                x->item.num = (uint32_t)num;
                sr_idmap_put(&s->idmap, idr->str, idr->len, (uint32_t)num);
            }
            if (ptl && parse_double(pt, ptl, &x->item.pop) == 0) x->item.has_pop = 1;
            m++;
        }
    }
    freeReplyObject(r);
    if (n_keyed && (rc = read_keyed_updates(s, u, keyed, n_keyed)) < 0) {
        *cursor = at_start; /* nothing was returned: read these again */
        return rc;
    }
    /* Drop the updates whose key was gone (deleted by hand). */
    size_t kept = 0;
    for (size_t i = 0; i < m; i++)
        if (u[i].item.exists) u[kept++] = u[i];
    *out = u;
    return (long)kept;
}
