/* Turns the `metrics` topic back into a picture of the pipeline.  Every
 * component publishes cumulative counters once per interval; the operator
 * wants the latest state of each instance and how fast it is moving.  So
 * the view keeps, per component/instance, the newest decoded snapshot and
 * the counters of the one before it (for rates), and renders them as JSON
 * for scripts and tests (`top --once --json`) or as a text screen.
 *
 * The view does no I/O; sr_metrics_reader_t below is the Kafka half. */
#include "sr_metrics_view.h"

#include <inttypes.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "metrics.pb-c.h"
#include "sr_err.h"
#include "sr_log.h"

typedef Streamrec__V1__MetricsSnapshot snap_t;
typedef Streamrec__V1__Quantiles quant_t;

typedef struct entry {
    char *key; /* "component/instance" */
    snap_t *cur;
    /* The previous snapshot's counters, for rates. */
    int has_prev;
    int64_t prev_ts_ms;
    int64_t prev_in, prev_applied, prev_requests;
} entry_t;

struct sr_metrics_view_s {
    entry_t *entries;
    size_t n, cap;
    int64_t messages, bad, dropped;
};

sr_metrics_view_t *sr_metrics_view_new(void)
{
    return calloc(1, sizeof(sr_metrics_view_t));
}

void sr_metrics_view_destroy(sr_metrics_view_t *view)
{
    if (!view) return;
    for (size_t i = 0; i < view->n; i++) {
        free(view->entries[i].key);
        streamrec__v1__metrics_snapshot__free_unpacked(view->entries[i].cur, NULL);
    }
    free(view->entries);
    free(view);
}

size_t sr_metrics_view_count(const sr_metrics_view_t *view)
{
    return view->n;
}

static int64_t lag_total(const snap_t *s)
{
    int64_t t = 0;
    for (size_t i = 0; i < s->n_lag; i++)
        if (s->lag[i] && s->lag[i]->lag > 0) t += s->lag[i]->lag;
    return t;
}

/* Entries stay sorted by key so output order is stable across runs. */
static entry_t *find_or_insert(sr_metrics_view_t *view, const char *key, int *full)
{
    size_t lo = 0, hi = view->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(view->entries[mid].key, key);
        if (c == 0) return &view->entries[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (view->n >= SR_METRICS_VIEW_MAX) {
        *full = 1;
        return NULL;
    }
    if (view->n == view->cap) {
        size_t cap = view->cap ? view->cap * 2 : 8;
        entry_t *e = realloc(view->entries, cap * sizeof(*e));
        if (!e) return NULL;
        view->entries = e;
        view->cap = cap;
    }
    char *k = strdup(key);
    if (!k) return NULL;
    memmove(&view->entries[lo + 1], &view->entries[lo], (view->n - lo) * sizeof(entry_t));
    memset(&view->entries[lo], 0, sizeof(entry_t));
    view->entries[lo].key = k;
    view->n++;
    return &view->entries[lo];
}

int sr_metrics_view_add(sr_metrics_view_t *view, const void *buf, size_t len)
{
    view->messages++;
    snap_t *s = streamrec__v1__metrics_snapshot__unpack(NULL, len, buf);
    if (!s || !s->component || !s->component[0]) {
        if (s) streamrec__v1__metrics_snapshot__free_unpacked(s, NULL);
        view->bad++;
        return SR_ERR_PARSE;
    }
    const char *inst = s->instance ? s->instance : "";
    size_t klen = strlen(s->component) + 1 + strlen(inst) + 1;
    char *key = malloc(klen);
    if (!key) {
        streamrec__v1__metrics_snapshot__free_unpacked(s, NULL);
        return SR_ERR_NOMEM;
    }
    snprintf(key, klen, "%s/%s", s->component, inst);
    int full = 0;
    entry_t *e = find_or_insert(view, key, &full);
    free(key);
    if (!e) {
        streamrec__v1__metrics_snapshot__free_unpacked(s, NULL);
        if (full) {
            view->dropped++;
            return SR_ERR_FULL;
        }
        return SR_ERR_NOMEM;
    }
    if (e->cur) {
        if (s->ts_ms < e->cur->ts_ms) { /* replayed out of order: keep the newer */
            streamrec__v1__metrics_snapshot__free_unpacked(s, NULL);
            return 0;
        }
        e->has_prev = 1;
        e->prev_ts_ms = e->cur->ts_ms;
        e->prev_in = e->cur->events_in;
        e->prev_applied = e->cur->events_applied;
        e->prev_requests = e->cur->requests;
        streamrec__v1__metrics_snapshot__free_unpacked(e->cur, NULL);
    }
    e->cur = s;
    return 0;
}

static double rate(const entry_t *e, int64_t now_count, int64_t prev_count)
{
    if (!e->has_prev) return 0.0;
    int64_t dt = e->cur->ts_ms - e->prev_ts_ms;
    if (dt <= 0 || now_count < prev_count) return 0.0; /* restarted instance */
    return (double)(now_count - prev_count) * 1000.0 / (double)dt;
}

/* JSON has no NaN or Infinity; a component that reports one gets null. */
static json_t *jreal(double d)
{
    return isfinite(d) ? json_real(d) : json_null();
}

static json_t *jquant(const quant_t *q)
{
    json_t *o = json_object();
    json_object_set_new(o, "p50", jreal(q ? q->p50 : 0));
    json_object_set_new(o, "p99", jreal(q ? q->p99 : 0));
    json_object_set_new(o, "max", jreal(q ? q->max : 0));
    json_object_set_new(o, "count", json_integer(q ? q->count : 0));
    return o;
}

static json_t *entry_json(const entry_t *e, int64_t now_ms)
{
    const snap_t *s = e->cur;
    json_t *o = json_object();
#define I_(name) json_object_set_new(o, #name, json_integer(s->name))
#define R_(name) json_object_set_new(o, #name, jreal(s->name))
    json_object_set_new(o, "component", json_string(s->component));
    json_object_set_new(o, "instance", json_string(s->instance ? s->instance : ""));
    I_(ts_ms);
    json_object_set_new(o, "age_ms", json_integer(now_ms - s->ts_ms));
    R_(interval_s);
    I_(events_in);
    I_(events_applied);
    I_(events_duplicate);
    I_(events_invalid);
    json_object_set_new(o, "rate_in", jreal(rate(e, s->events_in, e->prev_in)));
    json_object_set_new(o, "rate_applied", jreal(rate(e, s->events_applied, e->prev_applied)));
    json_object_set_new(o, "lag_total", json_integer(lag_total(s)));
    json_t *lags = json_array();
    for (size_t i = 0; i < s->n_lag; i++) {
        const Streamrec__V1__PartitionLag *l = s->lag[i];
        if (!l) continue;
        json_t *lo = json_object();
        json_object_set_new(lo, "partition", json_integer(l->partition));
        json_object_set_new(lo, "next_offset", json_integer(l->next_offset));
        json_object_set_new(lo, "high_watermark", json_integer(l->high_watermark));
        json_object_set_new(lo, "lag", json_integer(l->lag));
        json_array_append_new(lags, lo);
    }
    json_object_set_new(o, "lag", lags);
    R_(learn_loss);
    R_(live_hr);
    R_(live_ndcg);
    I_(live_k);
    I_(live_evaluated);
    json_object_set_new(o, "freshness_ms", jquant(s->freshness_ms));
    json_object_set_new(o, "flush_ms", jquant(s->flush_ms));
    json_object_set_new(o, "flush_keys", jquant(s->flush_keys));
    I_(flushes);
    I_(rss_bytes);
    I_(users);
    I_(items);
    I_(requests);
    I_(request_errors);
    json_object_set_new(o, "rate_requests", jreal(rate(e, s->requests, e->prev_requests)));
    json_object_set_new(o, "latency_us", jquant(s->latency_us));
    I_(stream_lag);
#undef I_
#undef R_
    return o;
}

static void add_int(json_t *o, const char *k, int64_t v)
{
    json_t *old = json_object_get(o, k);
    json_object_set_new(o, k, json_integer((old ? json_integer_value(old) : 0) + v));
}

char *sr_metrics_view_json(const sr_metrics_view_t *view, int64_t now_ms)
{
    json_t *root = json_object();
    if (!root) return NULL;
    json_object_set_new(root, "ts_ms", json_integer(now_ms));
    json_object_set_new(root, "messages", json_integer(view->messages));
    json_object_set_new(root, "bad", json_integer(view->bad));
    json_object_set_new(root, "dropped", json_integer(view->dropped));
    json_t *comps = json_object();
    json_t *totals = json_object();
    for (size_t i = 0; i < view->n; i++) {
        const entry_t *e = &view->entries[i];
        const snap_t *s = e->cur;
        json_object_set_new(comps, e->key, entry_json(e, now_ms));
        json_t *t = json_object_get(totals, s->component);
        if (!t) {
            t = json_object();
            json_object_set_new(totals, s->component, t);
        }
        add_int(t, "instances", 1);
        add_int(t, "events_in", s->events_in);
        add_int(t, "events_applied", s->events_applied);
        add_int(t, "events_duplicate", s->events_duplicate);
        add_int(t, "events_invalid", s->events_invalid);
        add_int(t, "lag_total", lag_total(s));
        add_int(t, "requests", s->requests);
        add_int(t, "request_errors", s->request_errors);
    }
    json_object_set_new(root, "components", comps);
    json_object_set_new(root, "totals", totals);
    char *out = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    return out;
}

static const char *human_bytes(int64_t b, char *buf, size_t size)
{
    if (b >= (int64_t)1 << 30)
        snprintf(buf, size, "%.1f GB", (double)b / (1 << 30));
    else if (b >= (int64_t)1 << 20)
        snprintf(buf, size, "%.1f MB", (double)b / (1 << 20));
    else
        snprintf(buf, size, "%.1f kB", (double)b / 1024);
    return buf;
}

void sr_metrics_view_render(const sr_metrics_view_t *view, FILE *out, int64_t now_ms)
{
    fprintf(out, "streamrec top: %zu component instance%s, %" PRId64 " snapshots read", view->n,
            view->n == 1 ? "" : "s", view->messages);
    if (view->bad) fprintf(out, ", %" PRId64 " undecodable", view->bad);
    fprintf(out, "\n\n");
    if (view->n == 0) fprintf(out, "  (no metrics yet: is a trainer or ranker running?)\n");
    for (size_t i = 0; i < view->n; i++) {
        const entry_t *e = &view->entries[i];
        const snap_t *s = e->cur;
        double age = (double)(now_ms - s->ts_ms) / 1000.0;
        fprintf(out, "%-10s %s  (updated %.1fs ago%s)\n", s->component, s->instance, age,
                age > 5.0 ? ", STALE" : "");
        int is_ranker = strcmp(s->component, "ranker") == 0;
        if (!is_ranker || s->events_in) {
            fprintf(out,
                    "  events    in %" PRId64 " (%.0f/s)  applied %" PRId64 " (%.0f/s)  "
                    "duplicate %" PRId64 "  invalid %" PRId64 "\n",
                    s->events_in, rate(e, s->events_in, e->prev_in), s->events_applied,
                    rate(e, s->events_applied, e->prev_applied), s->events_duplicate,
                    s->events_invalid);
        }
        if (s->n_lag) {
            fprintf(out, "  lag       %" PRId64 " total ", lag_total(s));
            for (size_t p = 0; p < s->n_lag && p < 16; p++)
                if (s->lag[p])
                    fprintf(out, " p%d:%" PRId64, s->lag[p]->partition, s->lag[p]->lag);
            if (s->n_lag > 16) fprintf(out, " ...");
            fprintf(out, "\n");
        }
        if (s->live_evaluated || s->learn_loss != 0.0)
            fprintf(out, "  learning  loss %.4f  HR@%d %.4f  NDCG@%d %.4f  (%" PRId64 " evaluated)\n",
                    s->learn_loss, s->live_k, s->live_hr, s->live_k, s->live_ndcg,
                    s->live_evaluated);
        if (s->flushes) {
            const quant_t *f = s->freshness_ms, *fm = s->flush_ms, *fk = s->flush_keys;
            fprintf(out,
                    "  freshness p50 %.1f ms  p99 %.1f ms   flush p50 %.2f ms  p99 %.2f ms  "
                    "keys p50 %.0f  flushes %" PRId64 "\n",
                    f ? f->p50 : 0, f ? f->p99 : 0, fm ? fm->p50 : 0, fm ? fm->p99 : 0,
                    fk ? fk->p50 : 0, s->flushes);
        }
        if (is_ranker || s->requests) {
            const quant_t *l = s->latency_us;
            fprintf(out,
                    "  requests  %" PRId64 " (%.0f/s)  errors %" PRId64 "  latency p50 %.0f us  "
                    "p99 %.0f us  stream lag %" PRId64 "\n",
                    s->requests, rate(e, s->requests, e->prev_requests), s->request_errors,
                    l ? l->p50 : 0, l ? l->p99 : 0, s->stream_lag);
        }
        char b[32];
        fprintf(out, "  memory    rss %s  users %" PRId64 "  items %" PRId64 "\n\n",
                human_bytes(s->rss_bytes, b, sizeof(b)), s->users, s->items);
    }
}

/* ---- Kafka reader ---------------------------------------------------- */

struct sr_metrics_reader_s {
    rd_kafka_t *rk;
    int nparts;
    int64_t *end; /* end offset at start, or -1: nothing to wait for */
    int64_t *pos; /* next offset to read */
    char *eof;    /* reached the end at least once */
};

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    int l = level <= 3 ? SR_LOG_ERROR : level <= 4 ? SR_LOG_WARN : level <= 6 ? SR_LOG_INFO
                                                                              : SR_LOG_DEBUG;
    sr_log(l, "kafka %s: %s", fac, buf);
}

struct kconf_ctx {
    rd_kafka_conf_t *kc;
    char *errstr;
    size_t errstr_size;
    int has_bootstrap;
};

static int copy_kafka_prop(const char *key, const char *value, void *opaque)
{
    struct kconf_ctx *c = opaque;
    const char *name = key + strlen("kafka.");
    if (strcmp(name, "bootstrap.servers") == 0 && value[0]) c->has_bootstrap = 1;
    char err[256];
    if (rd_kafka_conf_set(c->kc, name, value, err, sizeof(err)) != RD_KAFKA_CONF_OK) {
        snprintf(c->errstr, c->errstr_size, "%s: %s", key, err);
        return -1;
    }
    return 0;
}

void sr_metrics_reader_destroy(sr_metrics_reader_t *reader)
{
    if (!reader) return;
    if (reader->rk) {
        rd_kafka_consumer_close(reader->rk);
        rd_kafka_destroy(reader->rk);
    }
    free(reader->end);
    free(reader->pos);
    free(reader->eof);
    free(reader);
}

sr_metrics_reader_t *sr_metrics_reader_new(const sr_conf_t *conf, int from_beginning,
                                           int64_t tail, int timeout_ms, char *errstr,
                                           size_t errstr_size)
{
    const char *topic = sr_conf_str(conf, "topic.metrics");
    sr_metrics_reader_t *r = calloc(1, sizeof(*r));
    rd_kafka_conf_t *kc = rd_kafka_conf_new();
    if (!r || !kc) {
        snprintf(errstr, errstr_size, "out of memory");
        goto fail;
    }
    struct kconf_ctx ctx = {kc, errstr, errstr_size, 0};
    if (sr_conf_foreach(conf, "kafka.", copy_kafka_prop, &ctx) != 0) goto fail;
    if (!ctx.has_bootstrap) {
        snprintf(errstr, errstr_size, "kafka.bootstrap.servers is not set");
        goto fail;
    }
    /* A private group id: the reader assigns partitions itself and commits
     * nothing, but librdkafka's assign() wants a group. */
    char gid[64], err[256];
    snprintf(gid, sizeof(gid), "streamrec-top-%ld", (long)getpid());
    if (rd_kafka_conf_set(kc, "group.id", gid, err, sizeof(err)) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(kc, "enable.auto.commit", "false", err, sizeof(err)) !=
            RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(kc, "enable.partition.eof", "true", err, sizeof(err)) !=
            RD_KAFKA_CONF_OK) {
        snprintf(errstr, errstr_size, "kafka config: %s", err);
        goto fail;
    }
    rd_kafka_conf_set_log_cb(kc, log_cb);
    r->rk = rd_kafka_new(RD_KAFKA_CONSUMER, kc, err, sizeof(err));
    if (!r->rk) {
        snprintf(errstr, errstr_size, "kafka consumer: %s", err);
        goto fail;
    }
    kc = NULL; /* owned by rk now */
    rd_kafka_poll_set_consumer(r->rk);

    /* Partition count: retry until the topic shows up or time runs out. */
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(r->rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t merr = RD_KAFKA_RESP_ERR_NO_ERROR;
    int waited = 0;
    for (;;) {
        int step = timeout_ms - waited < 1000 ? timeout_ms - waited : 1000;
        if (step < 100) step = 100;
        merr = rd_kafka_metadata(r->rk, 0, rkt, &md, step);
        if (merr == RD_KAFKA_RESP_ERR_NO_ERROR && md->topic_cnt == 1 && !md->topics[0].err &&
            md->topics[0].partition_cnt > 0)
            break;
        if (merr == RD_KAFKA_RESP_ERR_NO_ERROR && md->topic_cnt == 1)
            merr = md->topics[0].err;
        if (md) rd_kafka_metadata_destroy(md);
        md = NULL;
        waited += step;
        if (waited >= timeout_ms) break;
        if (merr != RD_KAFKA_RESP_ERR__TIMED_OUT) { /* answered "unknown": ask again soon */
            usleep(200000);
            waited += 200;
        }
    }
    rd_kafka_topic_destroy(rkt);
    if (!md) {
        snprintf(errstr, errstr_size, "topic '%s': %s", topic,
                 merr ? rd_kafka_err2str(merr) : "no partitions");
        goto fail;
    }
    r->nparts = md->topics[0].partition_cnt;
    r->end = calloc((size_t)r->nparts, sizeof(int64_t));
    r->pos = calloc((size_t)r->nparts, sizeof(int64_t));
    r->eof = calloc((size_t)r->nparts, 1);
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(r->nparts);
    if (!r->end || !r->pos || !r->eof || !parts) {
        rd_kafka_metadata_destroy(md);
        if (parts) rd_kafka_topic_partition_list_destroy(parts);
        snprintf(errstr, errstr_size, "out of memory");
        goto fail;
    }
    for (int i = 0; i < r->nparts; i++) {
        int32_t p = md->topics[0].partitions[i].id;
        int64_t lo = 0, hi = 0;
        if (p < 0 || p >= r->nparts) { /* ids index the arrays: brokers number 0..n-1 */
            rd_kafka_metadata_destroy(md);
            rd_kafka_topic_partition_list_destroy(parts);
            snprintf(errstr, errstr_size, "topic '%s': unexpected partition id %d", topic, p);
            goto fail;
        }
        rd_kafka_resp_err_t werr =
            rd_kafka_query_watermark_offsets(r->rk, topic, p, &lo, &hi, timeout_ms);
        if (werr) {
            rd_kafka_metadata_destroy(md);
            rd_kafka_topic_partition_list_destroy(parts);
            snprintf(errstr, errstr_size, "topic '%s' [%d] offsets: %s", topic, p,
                     rd_kafka_err2str(werr));
            goto fail;
        }
        int64_t start = from_beginning ? lo : (hi - tail > lo ? hi - tail : lo);
        rd_kafka_topic_partition_list_add(parts, topic, p)->offset = start;
        r->end[p] = from_beginning ? hi : -1;
        r->pos[p] = start;
    }
    rd_kafka_metadata_destroy(md);
    rd_kafka_resp_err_t aerr = rd_kafka_assign(r->rk, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    if (aerr) {
        snprintf(errstr, errstr_size, "assign '%s': %s", topic, rd_kafka_err2str(aerr));
        goto fail;
    }
    return r;
fail:
    if (kc) rd_kafka_conf_destroy(kc);
    sr_metrics_reader_destroy(r);
    return NULL;
}

int sr_metrics_reader_poll(sr_metrics_reader_t *reader, sr_metrics_view_t *view, int timeout_ms)
{
    int fed = 0;
    int wait = timeout_ms;
    /* Bounded per call so a screen refresh never waits on a long backlog. */
    for (int i = 0; i < 100000; i++) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(reader->rk, wait);
        if (!m) break;
        int32_t p = m->partition;
        int known = p >= 0 && p < reader->nparts;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (known) {
                reader->eof[p] = 1;
                if (m->offset > reader->pos[p]) reader->pos[p] = m->offset;
            }
        } else if (m->err) {
            int fatal = m->err == RD_KAFKA_RESP_ERR__FATAL;
            sr_log(fatal ? SR_LOG_ERROR : SR_LOG_WARN, "metrics consumer: %s",
                   rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            if (fatal) return SR_ERR_KAFKA;
            continue;
        } else {
            if (known) reader->pos[p] = m->offset + 1;
            sr_metrics_view_add(view, m->payload, m->len);
            fed++;
        }
        rd_kafka_message_destroy(m);
        wait = 0;
    }
    return fed;
}

int sr_metrics_reader_at_end(const sr_metrics_reader_t *reader)
{
    for (int i = 0; i < reader->nparts; i++)
        if (reader->end[i] >= 0 && !reader->eof[i] && reader->pos[i] < reader->end[i]) return 0;
    return 1;
}
