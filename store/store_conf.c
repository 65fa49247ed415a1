/* Opening a store from the configuration (redis.url, redis.prefix,
 * redis.timeout.ms, redis.stream.maxlen, redis.flush), so every command
 * connects the same way.  Kept out of store.c so the connection code does not depend on
 * the config table. */
#include <stdio.h>
#include <string.h>

#include "sr_config.h"
#include "sr_store.h"

sr_store_t *sr_store_new_url(const char *url, const char *prefix, int timeout_ms,
                             char *errstr, size_t errstr_size)
{
    sr_redis_url_t u;
    char why[256];
    if (sr_redis_url_parse(url, &u, why, sizeof(why)) < 0) {
        if (errstr && errstr_size) snprintf(errstr, errstr_size, "redis.url: %s", why);
        return NULL;
    }
    sr_store_opts_t o;
    sr_store_opts_init(&o);
    o.host = u.host;
    o.port = u.port;
    o.password = u.password;
    o.db = u.db;
    if (prefix) o.prefix = prefix;
    if (timeout_ms > 0) o.timeout_ms = timeout_ms;
    return sr_store_new(&o, errstr, errstr_size);
}

sr_store_t *sr_store_new_conf(const sr_conf_t *conf, char *errstr, size_t errstr_size)
{
    sr_redis_url_t u;
    char why[256];
    if (sr_redis_url_parse(sr_conf_str(conf, "redis.url"), &u, why, sizeof(why)) < 0) {
        if (errstr && errstr_size) snprintf(errstr, errstr_size, "redis.url: %s", why);
        return NULL;
    }
    sr_store_opts_t o;
    sr_store_opts_init(&o);
    o.host = u.host;
    o.port = u.port;
    o.password = u.password;
    o.db = u.db;
    sr_store_opts_conf(conf, &o);
    return sr_store_new(&o, errstr, errstr_size);
}

void sr_store_opts_conf(const sr_conf_t *conf, sr_store_opts_t *o)
{
    o->prefix = sr_conf_str(conf, "redis.prefix");
    o->timeout_ms = (int)sr_conf_int(conf, "redis.timeout.ms");
    o->stream_maxlen = (long)sr_conf_int(conf, "redis.stream.maxlen");
    o->flush_mode = strcmp(sr_conf_str(conf, "redis.flush"), "script") == 0
                        ? SR_STORE_FLUSH_SCRIPT
                        : SR_STORE_FLUSH_TRANSACTION;
}
