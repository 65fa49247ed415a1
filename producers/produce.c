/* `streamrec produce` and `simulate --kafka` as library code; see
 * sr_produce.h.  The loops pace by an absolute schedule (event i is due at
 * start + i / rate), so sleeping granularity and slow sends do not drift
 * the average rate. */
#include "sr_produce.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "sr_err.h"
#include "sr_event_codec.h"
#include "sr_kafka_util.h"
#include "sr_log.h"

/* ---- producer from a sr_conf_t ---- */

struct kv_build {
    const char **kv;
    size_t n, cap;
};

static int kv_add(const char *key, const char *value, void *opaque)
{
    struct kv_build *b = opaque;
    if (b->n + 3 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 32;
        const char **kv = realloc(b->kv, cap * sizeof(*kv));
        if (!kv) return SR_ERR_NOMEM;
        b->kv = kv, b->cap = cap;
    }
    b->kv[b->n++] = key;
    b->kv[b->n++] = value;
    b->kv[b->n] = NULL;
    return 0;
}

sr_producer_t *sr_producer_new_conf(const sr_conf_t *conf, sr_producer_delivery_cb *cb,
                                    void *opaque, char *errstr, size_t errstr_size)
{
    struct kv_build b = {0};
    if (kv_add("topic.events", sr_conf_str(conf, "topic.events"), &b) ||
        sr_conf_foreach(conf, "kafka.", kv_add, &b)) {
        free(b.kv);
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    sr_producer_t *p = sr_producer_new(b.kv, cb, opaque, errstr, errstr_size);
    free(b.kv);
    return p;
}

int sr_produce_format_parse(const char *s, sr_produce_format_t *out)
{
    if (!strcmp(s, "csv"))
        *out = SR_PRODUCE_CSV;
    else if (!strcmp(s, "jsonl") || !strcmp(s, "json"))
        *out = SR_PRODUCE_JSONL;
    else if (!strcmp(s, "auto"))
        *out = SR_PRODUCE_AUTO;
    else
        return SR_ERR_INVAL;
    return 0;
}

/* ---- line parsing ---- */

static int perr(char *errstr, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int perr(char *errstr, size_t n, const char *fmt, ...)
{
    if (errstr && n) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(errstr, n, fmt, ap);
        va_end(ap);
    }
    return SR_ERR_PARSE;
}

/* A bump allocator over the caller's scratch buffer. */
struct scratch {
    char *p;
    size_t left;
};

static const char *scratch_copy(struct scratch *s, const char *src, size_t n)
{
    if (n + 1 > s->left) return NULL;
    char *d = s->p;
    memcpy(d, src, n);
    d[n] = '\0';
    s->p += n + 1, s->left -= n + 1;
    return d;
}

/* An id field: a string, or a number written as its decimal string
 * (DESIGN.md §4: numeric ids are strings too). */
static int json_id(json_t *o, const char *key, int required, struct scratch *s, const char **out,
                   char *errstr, size_t n)
{
    json_t *v = json_object_get(o, key);
    *out = NULL;
    if (!v || json_is_null(v)) {
        if (required) return perr(errstr, n, "missing \"%s\"", key);
        return 0;
    }
    char num[32];
    const char *str;
    size_t len;
    if (json_is_string(v)) {
        str = json_string_value(v), len = json_string_length(v);
    } else if (json_is_integer(v)) {
        len = (size_t)snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        str = num;
    } else {
        return perr(errstr, n, "\"%s\" must be a string or an integer", key);
    }
    if (memchr(str, '\0', len)) return perr(errstr, n, "\"%s\" contains a NUL character", key);
    if (!(*out = scratch_copy(s, str, len))) return perr(errstr, n, "\"%s\" is too long", key);
    return 0;
}

static int parse_json(char *line, size_t len, sr_producer_event_t *ev, char *scratch,
                      size_t scratch_size, char *errstr, size_t n)
{
    json_error_t jerr;
    json_t *o = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!o) return perr(errstr, n, "invalid JSON: %s (column %d)", jerr.text, jerr.column);
    int rc = 0;
    struct scratch s = {scratch, scratch_size};
    memset(ev, 0, sizeof(*ev));
    if (!json_is_object(o)) {
        rc = perr(errstr, n, "a JSON line must be an object");
        goto out;
    }
    if ((rc = json_id(o, "user", 1, &s, &ev->user, errstr, n)) ||
        (rc = json_id(o, "item", 1, &s, &ev->item, errstr, n)) ||
        (rc = json_id(o, "event_id", 0, &s, &ev->event_id, errstr, n)) ||
        (rc = json_id(o, "session", 0, &s, &ev->session, errstr, n)) ||
        (rc = json_id(o, "query", 0, &s, &ev->query, errstr, n)))
        goto out;
    json_t *t = json_object_get(o, "event");
    if (!t) t = json_object_get(o, "type");
    if (!t || !json_is_string(t)) {
        rc = perr(errstr, n, "missing \"event\" (a name such as \"click\")");
        goto out;
    }
    /* names in any case: "click", "ADD_TO_CART", "Purchase" */
    char lower[32];
    size_t tl = json_string_length(t);
    const char *ts = json_string_value(t);
    for (size_t k = 0; k < tl && k < sizeof(lower); k++) lower[k] = (char)tolower((unsigned char)ts[k]);
    if (tl >= sizeof(lower) || sr_event_type_parse(lower, tl, &ev->type) != 0) {
        rc = perr(errstr, n, "unknown event type \"%.40s\"", ts);
        goto out;
    }
    json_t *tsv = json_object_get(o, "ts_ms");
    if (tsv && !json_is_null(tsv)) {
        if (!json_is_integer(tsv) || json_integer_value(tsv) <= 0) {
            rc = perr(errstr, n, "\"ts_ms\" must be a positive integer (milliseconds since the epoch)");
            goto out;
        }
        ev->ts_ms = json_integer_value(tsv);
    }
    json_t *val = json_object_get(o, "value");
    if (val && !json_is_null(val)) {
        if (!json_is_number(val)) {
            rc = perr(errstr, n, "\"value\" must be a number");
            goto out;
        }
        ev->value = json_number_value(val);
    }
out:
    json_decref(o);
    return rc;
}

static int parse_csv(char *line, size_t len, sr_producer_event_t *ev, char *scratch,
                     size_t scratch_size, char *errstr, size_t n)
{
    sr_event_t e;
    int rc = sr_csv_parse_line(line, len, &e, errstr, n);
    if (rc != 0) return rc;
    memset(ev, 0, sizeof(*ev));
    /* The CSV parser cuts fields in place (user and item are always
     * followed by a comma, which it overwrites with a NUL); copy only if
     * that ever changes. */
    struct scratch s = {scratch, scratch_size};
    ev->user = e.user[e.user_len] == '\0' ? e.user : scratch_copy(&s, e.user, e.user_len);
    ev->item = e.item[e.item_len] == '\0' ? e.item : scratch_copy(&s, e.item, e.item_len);
    if (!ev->user || !ev->item) return perr(errstr, n, "line too long");
    ev->type = e.type;
    ev->ts_ms = e.ts_ms;
    ev->value = e.value;
    if (ev->ts_ms <= 0) return perr(errstr, n, "timestamp must be positive");
    return 0;
}

int sr_produce_parse_line(sr_produce_format_t fmt, char *line, size_t len,
                          sr_producer_event_t *ev, char *scratch, size_t scratch_size,
                          char *errstr, size_t errstr_size)
{
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
    size_t i = 0;
    while (i < len && isspace((unsigned char)line[i])) i++;
    if (i == len) return SR_ERR_NOTFOUND;
    if (fmt == SR_PRODUCE_JSONL) return parse_json(line, len, ev, scratch, scratch_size, errstr, errstr_size);
    if (fmt == SR_PRODUCE_CSV) return parse_csv(line, len, ev, scratch, scratch_size, errstr, errstr_size);
    return perr(errstr, errstr_size, "format must be csv or jsonl");
}

/* ---- sending loops ---- */

static long long mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

struct run {
    sr_producer_t *p;
    const sr_produce_opts_t *o;
    sr_produce_stats_t *st;
    uint64_t fail_reported;
    long long start_us, next_progress_us, last_progress_us;
    uint64_t last_sent;
};

static void on_delivery(const sr_producer_delivery_t *d, void *opaque)
{
    struct run *r = opaque;
    if (d->err == 0) {
        r->st->delivered++;
        return;
    }
    r->st->failed++;
    if (r->o->report && r->fail_reported++ < 10)
        fprintf(r->o->report, "streamrec: event %s of user %.*s not delivered: %s\n", d->event_id,
                (int)d->user_len, d->user, d->errstr);
}

static void progress(struct run *r, int final)
{
    if (!r->o->report || (!r->o->progress_ms && !final)) return;
    long long now = mono_us();
    if (!final && now < r->next_progress_us) return;
    double dt = (double)(now - r->last_progress_us) / 1e6;
    double rate = dt > 0 ? (double)(r->st->sent - r->last_sent) / dt : 0;
    if (final) {
        double all = (double)(now - r->start_us) / 1e6;
        rate = all > 0 ? (double)r->st->sent / all : 0;
    }
    fprintf(r->o->report, "%s sent %" PRIu64 " (%.0f ev/s), delivered %" PRIu64 ", bad %" PRIu64
                          ", failed %" PRIu64 "\n",
            final ? "done:" : "progress:", r->st->sent, rate, r->st->delivered, r->st->bad,
            r->st->failed);
    r->last_progress_us = now;
    r->last_sent = r->st->sent;
    r->next_progress_us = now + (long long)r->o->progress_ms * 1000;
}

static int stopped(const struct run *r)
{
    return r->o->stop && *r->o->stop;
}

/* Waits until event number `i` is due under the rate limit. */
static void pace(struct run *r, uint64_t i)
{
    if (r->o->rate <= 0) return;
    long long due = r->start_us + (long long)((double)i * 1e6 / r->o->rate);
    for (;;) {
        long long now = mono_us();
        if (now >= due || stopped(r)) return;
        long long wait = due - now;
        if (wait > 100000) wait = 100000; /* serve callbacks and the stop flag */
        sr_producer_poll(r->p, 0);
        struct timespec ts = {wait / 1000000, (wait % 1000000) * 1000};
        nanosleep(&ts, NULL);
    }
}

/* Sends one event, waiting (serving callbacks) while the queue is full.
 * Returns 0, SR_ERR_INVAL (invalid; counted as bad by the caller) or
 * another error. */
static int send_one(struct run *r, const sr_producer_event_t *ev)
{
    for (;;) {
        int rc = sr_producer_send(r->p, ev);
        if (rc == 0) {
            r->st->sent++;
            if ((r->st->sent & 1023) == 0) sr_producer_poll(r->p, 0);
            progress(r, 0);
            return 0;
        }
        if (rc != SR_ERR_FULL || stopped(r)) return rc;
        sr_producer_poll(r->p, 50);
        progress(r, 0);
    }
}

static int start_run(struct run *r, const sr_conf_t *conf, const sr_produce_opts_t *o,
                     sr_produce_stats_t *st, char *errstr, size_t n)
{
    memset(r, 0, sizeof(*r));
    memset(st, 0, sizeof(*st));
    r->o = o, r->st = st;
    r->p = sr_producer_new_conf(conf, on_delivery, r, errstr, n);
    if (!r->p) return SR_ERR_KAFKA;
    r->start_us = r->last_progress_us = mono_us();
    r->next_progress_us = r->start_us + (long long)o->progress_ms * 1000;
    return 0;
}

static int finish_run(struct run *r, int rc, char *errstr, size_t n)
{
    int timeout = r->o->flush_timeout_ms > 0 ? r->o->flush_timeout_ms : 30000;
    if (sr_producer_flush(r->p, timeout) != 0) {
        int left = sr_producer_in_flight(r->p);
        r->st->failed += (uint64_t)left;
        if (r->o->report)
            fprintf(r->o->report, "streamrec: %d event(s) still undelivered after %d ms\n", left, timeout);
    }
    progress(r, 1);
    sr_producer_destroy(r->p);
    if (rc == 0 && r->st->failed) {
        snprintf(errstr, n, "%" PRIu64 " event(s) not delivered", r->st->failed);
        rc = SR_ERR_KAFKA;
    }
    return rc;
}

int sr_produce_run(const sr_conf_t *conf, FILE *in, const sr_produce_opts_t *o,
                   sr_produce_stats_t *st, char *errstr, size_t n)
{
    struct run r;
    int rc = start_run(&r, conf, o, st, errstr, n);
    if (rc) return rc;
    sr_produce_format_t fmt = o->format;
    const char *name = o->name ? o->name : "-";
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    char scratch[4 * SR_ID_MAX + 2 * SR_EVENT_TEXT_MAX + 64];
    while (!stopped(&r) && (o->max_events == 0 || st->sent < o->max_events) &&
           (len = getline(&line, &cap, in)) >= 0) {
        st->lines++;
        if (fmt == SR_PRODUCE_AUTO) {
            size_t i = 0;
            while (i < (size_t)len && isspace((unsigned char)line[i])) i++;
            if (i == (size_t)len) continue;
            fmt = line[i] == '{' ? SR_PRODUCE_JSONL : SR_PRODUCE_CSV;
        }
        sr_producer_event_t ev;
        char why[256];
        int prc = sr_produce_parse_line(fmt, line, (size_t)len, &ev, scratch, sizeof(scratch), why, sizeof(why));
        if (prc == SR_ERR_NOTFOUND || prc == SR_ERR_EXISTS) continue;
        if (prc == 0) {
            pace(&r, st->sent);
            prc = send_one(&r, &ev);
            if (prc == SR_ERR_INVAL) {
                /* the producer's validation: say which field */
                sr_event_wire_t w = {0};
                w.ev.user = ev.user, w.ev.user_len = ev.user ? strlen(ev.user) : 0;
                w.ev.item = ev.item, w.ev.item_len = ev.item ? strlen(ev.item) : 0;
                w.ev.type = ev.type, w.ev.ts_ms = ev.ts_ms ? ev.ts_ms : 1;
                w.event_id = ev.event_id, w.event_id_len = ev.event_id ? strlen(ev.event_id) : 0;
                w.session = ev.session, w.session_len = ev.session ? strlen(ev.session) : 0;
                w.query = ev.query, w.query_len = ev.query ? strlen(ev.query) : 0;
                w.value = ev.value;
                if (sr_event_validate(&w, NULL, 0, NULL, why, sizeof(why)) == 0)
                    snprintf(why, sizeof(why), "invalid event");
            } else if (prc != 0) {
                if (stopped(&r)) break;
                snprintf(errstr, n, "send failed: %s", sr_strerror(prc));
                rc = prc;
                break;
            }
        }
        if (prc != 0) {
            st->bad++;
            if (o->report && st->bad <= 100)
                fprintf(o->report, "%s:%" PRIu64 ": %s (line skipped)\n", name, st->lines, why);
            if (o->report && st->bad == 100)
                fprintf(o->report, "%s: more than 100 bad lines; not reporting further ones\n", name);
        }
    }
    if (rc == 0 && ferror(in)) {
        snprintf(errstr, n, "%s: read error: %s", name, strerror(errno));
        rc = SR_ERR_IO;
    }
    free(line);
    return finish_run(&r, rc, errstr, n);
}

int sr_produce_sim(const sr_conf_t *conf, sr_sim_t *sim, const sr_produce_opts_t *o,
                   sr_produce_stats_t *st, char *errstr, size_t n)
{
    struct run r;
    int rc = start_run(&r, conf, o, st, errstr, n);
    if (rc) return rc;
    /* The simulator's ids are short ("u12", "i7"); copies keep them
     * NUL-terminated for the producer event. */
    char user[SR_ID_MAX + 1], item[SR_ID_MAX + 1];
    sr_event_t e;
    while (!stopped(&r) && (o->max_events == 0 || st->sent < o->max_events) && sr_sim_next(sim, &e)) {
        if (e.user_len > SR_ID_MAX || e.item_len > SR_ID_MAX) {
            st->bad++;
            continue;
        }
        memcpy(user, e.user, e.user_len), user[e.user_len] = '\0';
        memcpy(item, e.item, e.item_len), item[e.item_len] = '\0';
        sr_producer_event_t ev = {
            .user = user,
            .item = item,
            .type = e.type,
            .ts_ms = 0, /* now: live traffic */
            .session = sr_sim_session(sim),
            .value = e.value,
        };
        pace(&r, st->sent);
        int prc = send_one(&r, &ev);
        if (prc == SR_ERR_INVAL) {
            st->bad++;
        } else if (prc != 0) {
            if (stopped(&r)) break;
            snprintf(errstr, n, "send failed: %s", sr_strerror(prc));
            rc = prc;
            break;
        }
    }
    return finish_run(&r, rc, errstr, n);
}
