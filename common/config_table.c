/* The property table: every configurable knob of streamrec in one place, so
 * parsing, range checks, the environment mapping, `streamrec config` and
 * docs/CONFIGURATION.md all come from the same rows and cannot drift apart.
 *
 * The model.* rows mirror sr_model_params_set (model/model.c): same names,
 * same defaults, ranges inside the model's; tests/unit/test_model_params.c
 * fails when they drift apart.
 *
 * Adding a property: add ONE row (one line) in the right section, keep the
 * default inside [min, max], then run `make docs` (a unit test fails while
 * docs/CONFIGURATION.md is stale).  For strings, min/max are ignored; give a
 * validator when not every string is acceptable.  Cross-property rules go in
 * sr_conf_checks at the end. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "config_table.h"
#include "sr_err.h"
#include "sr_log.h"

/* ---- validators: return 0 or an error with the reason in errstr ---- */

static int v_log_level(const char *v, char *errstr, size_t n)
{
    if (sr_log_level_parse(v) >= 0) return 0;
    snprintf(errstr, n, "must be one of error, warn, info, debug");
    return SR_ERR_INVAL;
}

static int v_redis_url(const char *v, char *errstr, size_t n)
{
    sr_redis_url_t u;
    return sr_redis_url_parse(v, &u, errstr, n) == 0 ? 0 : SR_ERR_INVAL;
}

static int v_listen(const char *v, char *errstr, size_t n)
{
    char host[256];
    int port;
    return sr_hostport_parse(v, host, sizeof(host), &port, errstr, n) == 0 ? 0 : SR_ERR_INVAL;
}

/* Kafka's own rule for topic names: 1..249 of [A-Za-z0-9._-]. */
static int v_topic(const char *v, char *errstr, size_t n)
{
    size_t len = strlen(v);
    if (len == 0 || len > 249 || strcmp(v, ".") == 0 || strcmp(v, "..") == 0) {
        snprintf(errstr, n, "a topic name is 1 to 249 characters, not '.' or '..'");
        return SR_ERR_INVAL;
    }
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)v[i]) && v[i] != '.' && v[i] != '_' && v[i] != '-') {
            snprintf(errstr, n, "a topic name may only hold letters, digits, '.', '_', '-'");
            return SR_ERR_INVAL;
        }
    return 0;
}

static int v_flush(const char *v, char *errstr, size_t n)
{
    if (!strcmp(v, "transaction") || !strcmp(v, "script")) return 0;
    snprintf(errstr, n, "must be transaction or script");
    return SR_ERR_INVAL;
}

/* The Redis key prefix goes in front of hash tags, so braces would break the
 * cluster slot layout; blanks would break redis-cli use. */
static int v_prefix(const char *v, char *errstr, size_t n)
{
    size_t len = strlen(v);
    if (len == 0 || len > 64) {
        snprintf(errstr, n, "must be 1 to 64 characters");
        return SR_ERR_INVAL;
    }
    for (size_t i = 0; i < len; i++)
        if (!isgraph((unsigned char)v[i]) || v[i] == '{' || v[i] == '}') {
            snprintf(errstr, n, "may not hold blanks, control characters, '{' or '}'");
            return SR_ERR_INVAL;
        }
    return 0;
}

static int v_nonempty(const char *v, char *errstr, size_t n)
{
    if (*v) return 0;
    snprintf(errstr, n, "may not be empty");
    return SR_ERR_INVAL;
}

/* ---- the table: one row per line ---- */

#define STR SR_CONF_STR
#define INT SR_CONF_INT
#define DBL SR_CONF_DOUBLE
#define BOOL SR_CONF_BOOL
/* 2^53: the largest integer a double (our range type) holds exactly. */
#define I53 9007199254740992.0

/* clang-format off */
const sr_conf_prop_t sr_conf_table[] = {
    /* name, type, min, max, default, description, validator */
    {"log.level", STR, 0, 0, "info", "Log level: error, warn, info or debug.", v_log_level},

    {"redis.url", STR, 0, 0, "redis://127.0.0.1:6379", "Redis server: `redis://[:password@]host[:port][/db]` (port 6379 and db 0 when omitted; percent-encode `@` in the password).", v_redis_url},
    {"redis.prefix", STR, 0, 0, "sr", "Namespace of every Redis key (`<prefix>:...`, docs/REDIS.md); no blanks or braces.", v_prefix},
    {"redis.timeout.ms", INT, 1, 600000, "1000", "Connect and command timeout for Redis, in milliseconds.", NULL},
    {"redis.flush", STR, 0, 0, "transaction", "How the trainer's atomic flush is written (docs/REDIS.md): `transaction` (WATCH, reads, the merge computed by the trainer, MULTI/EXEC; the Lua script after 2 transactions aborted by other writers) or `script` (always the Lua script, which holds Redis about 6x longer per item).", v_flush},
    {"redis.stream.maxlen", INT, 100, 100000000, "100000", "Approximate cap (XADD MAXLEN ~) of the item update stream `{<prefix>}:updates` that rankers follow; a ranker that falls further behind reloads all items.", NULL},

    {"topic.events", STR, 0, 0, "events", "Kafka topic of the shop events.", v_topic},
    {"topic.dlq", STR, 0, 0, "events.dlq", "Kafka topic that receives events that cannot be decoded or fail validation (dead letters).", v_topic},
    {"topic.metrics", STR, 0, 0, "metrics", "Kafka topic of the components' metrics snapshots.", v_topic},

    {"http.listen", STR, 0, 0, "127.0.0.1:8080", "Address `serve` listens on: `host:port` (`[addr]:port` for IPv6; port 0 picks a free port).", v_listen},

    {"model.dim", INT, 1, 1024, "32", "Latent factors per user and item vector.", NULL},
    {"model.negatives", INT, 0, 64, "4", "Sampled negative items per positive event.", NULL},
    {"model.lr", DBL, 0, 10, "0.05", "AdaGrad base learning rate of the factor model.", NULL},
    {"model.l2", DBL, 0, 10, "0.0001", "L2 regularisation applied to the rows an update touches.", NULL},
    {"model.clip", DBL, 1e-6, 1e6, "1", "Per-coordinate gradient clip.", NULL},
    {"model.init_std", DBL, 0, 10, "0.1", "Standard deviation of new item vectors.", NULL},
    {"model.seed", INT, 0, I53, "42", "Seed of initialisation and negative sampling (same seed and events give identical models).", NULL},
    {"model.weight.view", DBL, 0, 1000, "1", "Loss weight of a view event.", NULL},
    {"model.weight.click", DBL, 0, 1000, "2", "Loss weight of a click event.", NULL},
    {"model.weight.cart", DBL, 0, 1000, "4", "Loss weight of an add-to-cart event.", NULL},
    {"model.weight.purchase", DBL, 0, 1000, "8", "Loss weight of a purchase event.", NULL},
    {"model.weight.impression", DBL, 0, 1000, "0.1", "Loss weight of an impression without click (a weak negative).", NULL},
    {"model.weight.rating", DBL, 0, 1000, "1", "Loss weight of a rating event.", NULL},
    {"model.recent_max", INT, 1, 256, "20", "Recent items kept per user (short-term vector and recency signal).", NULL},
    {"model.recent_half_life_s", DBL, 0.001, 1e9, "1800", "Half-life of a recent item's weight, in seconds of event time.", NULL},
    {"model.pop_half_life_s", DBL, 0.001, 1e9, "21600", "Half-life of decayed item popularity, in seconds of event time.", NULL},
    {"model.cooc_window", INT, 0, 64, "2", "Co-occurrence counts pairs within a user's last N items.", NULL},
    {"model.cooc_max", INT, 0, 256, "256", "Co-occurrence neighbours kept per item.", NULL},
    {"model.blend_lr", DBL, 0, 10, "0.05", "Learning rate of the online blend of the ranking signals.", NULL},
    {"model.sampler_uniform", DBL, 0, 1, "0.7", "Share of negatives drawn uniformly from all items; the rest are drawn in proportion to recent popularity.", NULL},
    {"model.blend_sample", DBL, 0, 1, "0.1", "Share of events the online blend learns from.", NULL},
    {"model.cooc_backward", DBL, 0, 1, "0.5", "Weight of a co-occurring pair in the later item's neighbour list (1 in the earlier item's): lists lean towards what users view next.", NULL},
    {"model.uniform_neg_items", INT, 0, 1, "0", "1: a negative drawn uniformly (model.sampler_uniform) also updates its item's vector and bias; 0: only the user's (popularity-drawn negatives always update both). At 0 a trainer's flush writes the recently active items instead of a random slice of the catalogue every interval (a third of the item keys at 10,000 items; HR@10 within 0.6 points, docs/BENCHMARKS.md).", NULL},
    {"model.pop_impression", DBL, 0, 1, "0.01", "Popularity an impression adds to its item (every other event adds 1): exposure, not interest.", NULL},

    {"trainer.group.id", STR, 0, 0, "streamrec-trainer", "Kafka consumer group of the trainers.", v_nonempty},
    {"trainer.flush.interval.ms", INT, 1, 60000, "50", "Longest time between two flushes of the touched state to Redis, in milliseconds.", NULL},
    {"trainer.batch.size", INT, 1, 1000000, "1000", "Most messages the trainer takes from Kafka per consume call (one warm load from Redis per batch).", NULL},
    {"trainer.dedup.window", INT, 0, 100000000, "1000000", "Recent event ids remembered to drop duplicates (0 disables dedup).", NULL},
    {"trainer.preload.events", INT, 0, 100000000, "10000", "At assignment the trainer reads each partition's last trainer.dedup.window events again to refill the dedup window; the users of the last this-many of them per partition are loaded from Redis right then, in large batches, so that their next events do not wait for a load (0: load every user when its next event comes).", NULL},
    {"trainer.eval.every", INT, 0, 1000000, "100", "Evaluate (test-then-train) every N-th eligible event for the live metrics (0 disables).", NULL},
    {"trainer.eval.max_per_s", INT, 0, 1000000, "200", "At most this many live evaluations per second (0: no cap). Each one scores every item, so on a large catalogue trainer.eval.every alone would spend the learning thread on metrics.", NULL},
    {"trainer.eval.k", INT, 1, 1000, "10", "K of the trainer's live HR@K / NDCG@K.", NULL},
    {"trainer.max.future.ms", INT, 0, 315360000000, "86400000", "Events stamped further than this in the future (vs. the trainer's clock) go to the dead letter topic.", NULL},
    {"trainer.min.ts.ms", INT, 0, 4102444800000, "946684800000", "Events stamped before this (ms since the epoch; default 2000-01-01) go to the dead letter topic.", NULL},

    {"metrics.enable", BOOL, 0, 0, "true", "Publish metrics snapshots to `topic.metrics` (`true`/`false`, also `1`/`0`, `yes`/`no`, `on`/`off`).", NULL},
    {"metrics.interval.ms", INT, 10, 3600000, "1000", "Interval between two metrics snapshots, in milliseconds.", NULL},
    {"metrics.instance", STR, 0, 0, "", "Instance name in metrics snapshots; empty means `host:pid`.", NULL},

    {"ranker.k.max", INT, 1, 100000, "1000", "Largest K a request may ask for.", NULL},
    {"ranker.candidates.max", INT, 1, 1000000, "1000", "Most candidates one re-rank request may carry.", NULL},
    {"ranker.body.max", INT, 1024, 1073741824, "1048576", "Largest accepted HTTP request body, in bytes.", NULL},
    {"ranker.threads", INT, 1, 256, "4", "HTTP worker threads.", NULL},
    {"ranker.id.max", INT, 1, 1024, "128", "Longest user or item id a request may carry, in bytes.", NULL},
    {"ranker.score.prune", BOOL, 0, 0, "true", "Two-stage /v1/recommend and /v1/similar: score all items from an int8 copy of the item matrix with an error bound, then rescore in float only the items that may make the top K (the same answer as the full float pass, bit for bit).", NULL},
    {"ranker.follow.poll.ms", INT, 1, 10000, "5", "How often the ranker polls the item update stream when it has caught up, in milliseconds.", NULL},

    {"broker.partitions", INT, 1, 1024, "4", "Partitions per topic of the embedded development broker.", NULL},
};
/* clang-format on */

const size_t sr_conf_table_len = sizeof(sr_conf_table) / sizeof(sr_conf_table[0]);

/* ---- cross-property checks (sr_conf_finalize) ---- */

/* Dead letters or metrics landing on the events topic would be consumed as
 * events again: the feedback loop would eat its own output. */
static int c_topics_differ(const sr_conf_t *conf, char *errstr, size_t n)
{
    static const char *keys[] = {"topic.events", "topic.dlq", "topic.metrics"};
    for (int i = 0; i < 3; i++)
        for (int j = i + 1; j < 3; j++)
            if (strcmp(sr_conf_str(conf, keys[i]), sr_conf_str(conf, keys[j])) == 0) {
                snprintf(errstr, n, "%s and %s must differ (both are '%s')", keys[i], keys[j],
                         sr_conf_str(conf, keys[i]));
                return SR_ERR_INVAL;
            }
    return 0;
}

const sr_conf_check_t sr_conf_checks[] = {c_topics_differ};
const size_t sr_conf_checks_len = sizeof(sr_conf_checks) / sizeof(sr_conf_checks[0]);

int sr_conf_table_find(const char *key)
{
    for (size_t i = 0; i < sr_conf_table_len; i++)
        if (strcmp(sr_conf_table[i].name, key) == 0) return (int)i;
    return -1;
}
