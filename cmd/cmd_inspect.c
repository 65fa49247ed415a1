/* `streamrec inspect user ID` / `inspect item ID`: what Redis holds for one
 * user or item, read through store/ (the only module that knows the
 * layout), as JSON for scripts and tests or as readable text.  Operators
 * use it to answer "did my click arrive?" (a user's `events` and recent
 * items) without decoding binary keys by hand. */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd_util.h"
#include "sr_cmd.h"
#include "sr_config.h"
#include "sr_event.h"
#include "sr_store.h"

extern char **environ;

static void usage(FILE *out)
{
    fprintf(out,
            "usage: streamrec inspect [-c FILE] [-X key=value ...] user|item ID [--json]\n"
            "\n"
            "Prints what Redis (redis.url, redis.prefix) holds for one user or item:\n"
            "  user: events applied, last update time, long-term vector, recent items\n"
            "  item: bias, vector, popularity, global item number\n"
            "  --json       one JSON object on stdout\n"
            "  --no-vector  leave the vector out\n"
            "\n"
            "Exit status: 0 found, 1 unknown id or Redis error, 2 usage.\n");
}

static json_t *floats_json(const float *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) json_array_append_new(a, json_real(v ? v[i] : 0.0f));
    return a;
}

static const char *type_name(uint8_t t)
{
    return t < SR_EV_NTYPES ? sr_event_type_name((sr_event_type_t)t) : "unknown";
}

static json_t *user_json(const sr_store_user_t *u, long mem, int with_vec)
{
    json_t *o = json_object();
    json_object_set_new(o, "user", json_stringn(u->id, u->id_len));
    json_object_set_new(o, "events", json_integer((json_int_t)u->events));
    json_object_set_new(o, "last_ts_ms", json_integer(u->last_ts_ms));
    json_object_set_new(o, "dim", json_integer(u->dim));
    if (with_vec) json_object_set_new(o, "vector", floats_json(u->vec, u->dim));
    json_t *r = json_array();
    for (uint32_t i = 0; i < u->n_recent; i++) {
        const sr_store_recent_t *x = &u->recent[i];
        json_t *e = json_object();
        if (x->item_id)
            json_object_set_new(e, "item", json_stringn(x->item_id, x->item_id_len));
        else
            json_object_set_new(e, "item", json_null());
        json_object_set_new(e, "num", json_integer(x->num));
        json_object_set_new(e, "ts_ms", json_integer(x->ts_ms));
        json_object_set_new(e, "type", json_string(type_name(x->type)));
        json_array_append_new(r, e);
    }
    json_object_set_new(o, "recent", r);
    if (mem >= 0) json_object_set_new(o, "redis_bytes", json_integer(mem));
    return o;
}

static json_t *item_json(const sr_store_item_t *it, int with_vec)
{
    json_t *o = json_object();
    json_object_set_new(o, "item", json_stringn(it->id, it->id_len));
    json_object_set_new(o, "num", json_integer(it->num));
    json_object_set_new(o, "dim", json_integer(it->dim));
    json_object_set_new(o, "bias", json_real(it->bias));
    json_object_set_new(o, "popularity", it->has_pop ? json_real(it->pop) : json_null());
    if (with_vec) json_object_set_new(o, "vector", floats_json(it->vec, it->dim));
    return o;
}

static void print_vec(const float *v, size_t n)
{
    printf("  vector       [");
    for (size_t i = 0; i < n; i++) printf("%s%.4f", i ? ", " : "", v ? v[i] : 0.0f);
    printf("]\n");
}

static void user_text(const sr_store_user_t *u, long mem, int with_vec)
{
    printf("user %.*s\n", (int)u->id_len, u->id);
    printf("  events       %" PRIu64 "\n", u->events);
    printf("  last update  %" PRId64 " (event time, ms since the epoch)\n", u->last_ts_ms);
    if (mem >= 0) printf("  redis bytes  %ld\n", mem);
    if (with_vec) print_vec(u->vec, u->dim);
    printf("  recent items (%u, oldest first)\n", u->n_recent);
    for (uint32_t i = 0; i < u->n_recent; i++) {
        const sr_store_recent_t *x = &u->recent[i];
        printf("    %-24.*s %-10s %" PRId64 "\n", x->item_id ? (int)x->item_id_len : 1,
               x->item_id ? x->item_id : "?", type_name(x->type), x->ts_ms);
    }
}

static void item_text(const sr_store_item_t *it, int with_vec)
{
    printf("item %.*s\n", (int)it->id_len, it->id);
    printf("  number       %u\n", it->num);
    printf("  bias         %.6f\n", it->bias);
    if (it->has_pop)
        printf("  popularity   %.4f\n", it->pop);
    else
        printf("  popularity   (not in the popularity set)\n");
    if (with_vec) print_vec(it->vec, it->dim);
}

int sr_cmd_inspect(int argc, char **argv)
{
    char errstr[512];
    int status;
    sr_conf_t *conf = sr_cmd_begin(&argc, argv, usage, &status);
    if (!conf) return status;
    int json = 0, with_vec = 1;
    const char *pos[2] = {NULL, NULL};
    int npos = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            json = 1;
        } else if (strcmp(argv[i], "--no-vector") == 0) {
            with_vec = 0;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "streamrec inspect: unknown option '%s'\n", argv[i]);
            npos = -1;
            break;
        } else if (npos < 2) {
            pos[npos++] = argv[i];
        } else {
            fprintf(stderr, "streamrec inspect: unexpected argument '%s'\n", argv[i]);
            npos = -1;
            break;
        }
    }
    int is_user = npos == 2 && strcmp(pos[0], "user") == 0;
    int is_item = npos == 2 && strcmp(pos[0], "item") == 0;
    size_t idlen = npos == 2 ? strlen(pos[1]) : 0;
    if (!is_user && !is_item) {
        usage(stderr);
        sr_conf_destroy(conf);
        return 2;
    }
    if (idlen == 0 || idlen > SR_ID_MAX) {
        fprintf(stderr, "streamrec inspect: an id is 1 to %d bytes\n", SR_ID_MAX);
        sr_conf_destroy(conf);
        return 2;
    }

    int rc = 1;
    sr_redis_url_t url;
    sr_store_opts_t so;
    sr_store_t *st = NULL;
    sr_store_opts_init(&so);
    if (sr_redis_url_parse(sr_conf_str(conf, "redis.url"), &url, errstr, sizeof(errstr)) == 0) {
        so.host = url.host;
        so.port = url.port;
        so.password = url.password;
        so.db = url.db;
        so.prefix = sr_conf_str(conf, "redis.prefix");
        so.timeout_ms = (int)sr_conf_int(conf, "redis.timeout.ms");
        st = sr_store_new(&so, errstr, sizeof(errstr));
    }
    if (!st) {
        fprintf(stderr, "streamrec inspect: redis %s: %s\n", sr_conf_str(conf, "redis.url"),
                errstr);
        sr_conf_destroy(conf);
        return 1;
    }
    const char *ids[1] = {pos[1]};
    size_t lens[1] = {idlen};
    json_t *out = NULL;
    if (is_user) {
        sr_store_user_t u;
        memset(&u, 0, sizeof(u));
        long n = sr_store_get_users(st, ids, lens, 1, &u);
        if (n < 0) {
            fprintf(stderr, "streamrec inspect: %s\n", sr_store_errstr(st));
        } else if (n == 0 || !u.exists) {
            fprintf(stderr, "streamrec inspect: user '%s' not found (redis.prefix %s)\n", pos[1],
                    sr_conf_str(conf, "redis.prefix"));
        } else {
            u.id = pos[1];
            u.id_len = idlen;
            /* Copy out what we print before the next call on st reuses
             * the read buffers. */
            if (json) {
                out = user_json(&u, -1, with_vec);
                long mem = sr_store_user_memory(st, pos[1], idlen);
                if (mem >= 0) json_object_set_new(out, "redis_bytes", json_integer(mem));
            } else {
                user_text(&u, -1, with_vec);
                long mem = sr_store_user_memory(st, pos[1], idlen);
                if (mem >= 0) printf("  redis bytes  %ld\n", mem);
            }
            rc = 0;
        }
    } else {
        sr_store_item_t it;
        memset(&it, 0, sizeof(it));
        long n = sr_store_get_items(st, ids, lens, 1, &it);
        if (n < 0) {
            fprintf(stderr, "streamrec inspect: %s\n", sr_store_errstr(st));
        } else if (n == 0 || !it.exists) {
            fprintf(stderr, "streamrec inspect: item '%s' not found (redis.prefix %s)\n", pos[1],
                    sr_conf_str(conf, "redis.prefix"));
        } else {
            it.id = pos[1];
            it.id_len = idlen;
            if (json)
                out = item_json(&it, with_vec);
            else
                item_text(&it, with_vec);
            rc = 0;
        }
    }
    if (out) {
        char *s = json_dumps(out, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (s) printf("%s\n", s);
        free(s);
        json_decref(out);
    }
    sr_store_destroy(st);
    sr_conf_destroy(conf);
    return rc;
}
