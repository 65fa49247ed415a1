/* Configuration: one property table (name, type, range, default,
 * description, validator), as librdkafka's rdkafka_conf.c and redis's
 * config.c keep theirs.  The table is common/config_table.c; the generated
 * reference is docs/CONFIGURATION.md (`make docs`).
 *
 * Values come from, in rising precedence: the table default, config files
 * (`-c FILE`, lines `key = value`, `#` comment lines), the environment
 * (`STREAMREC_REDIS_URL` for `redis.url`: upper case, dots and dashes as
 * underscores; `STREAMREC_KAFKA_<X>` for `kafka.<x lower case, underscores
 * as dots>`), and `-X key=value` flags.  A finalize step then checks
 * properties against each other.
 *
 * `kafka.<name>` keys are not in the table: they pass through to librdkafka
 * unchecked (librdkafka checks them when the client is created).  Every
 * other unknown key is an error.
 *
 * Threading: a sr_conf_t is built on one thread, then read-only; concurrent
 * readers are safe once no one writes.  Ownership: strings returned by the
 * getters belong to the conf and live until it is destroyed or the key is
 * set again. */
#ifndef SR_CONFIG_H
#define SR_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct sr_conf_s sr_conf_t;

/* A new configuration holding every table default. NULL only on ENOMEM. */
sr_conf_t *sr_conf_new(void);
/* Frees conf and everything it owns. NULL is a no-op. */
void sr_conf_destroy(sr_conf_t *conf);

/* Sets one property from its string form (leading/trailing blanks are
 * ignored).  Returns 0, or SR_ERR_NOTFOUND (unknown key), SR_ERR_PARSE
 * (not a value of the property's type), SR_ERR_RANGE (outside the table's
 * range) or SR_ERR_INVAL (validator refused), SR_ERR_NOMEM; errstr then
 * reads "key: message".  On error the old value stays. */
int sr_conf_set(sr_conf_t *conf, const char *key, const char *value, char *errstr,
                size_t errstr_size);

/* Reads a config file: `key = value` lines, blank lines, lines whose first
 * non-blank character is `#`.  A value may be wrapped in double quotes
 * (`metrics.instance = ""`).  Lines are limited to 8191 bytes.  On error
 * returns <0 (SR_ERR_IO when the file cannot be read, else as sr_conf_set or
 * SR_ERR_PARSE) and errstr reads "FILE:LINE: message"; properties set by
 * earlier lines stay set, later lines are not applied. */
int sr_conf_load_file(sr_conf_t *conf, const char *path, char *errstr, size_t errstr_size);

/* Applies STREAMREC_* variables from envp (NULL-terminated, like environ).
 * An unknown STREAMREC_ variable is an error naming it, except the names
 * sr_conf_env_reserved() accepts (STREAMREC_BIN, used by the tests). */
int sr_conf_load_env(sr_conf_t *conf, char *const *envp, char *errstr, size_t errstr_size);
/* 1 when name (without "=value") is a STREAMREC_ variable that is not
 * configuration and is ignored by sr_conf_load_env. */
int sr_conf_env_reserved(const char *name);
/* Writes the environment variable name of a property key into buf
 * ("redis.url" -> "STREAMREC_REDIS_URL").  Returns 0 or SR_ERR_RANGE when
 * buf is too small. */
int sr_conf_env_name(const char *key, char *buf, size_t size);

/* Checks properties against each other (e.g. the three topics differ).
 * Returns 0 or SR_ERR_INVAL with errstr naming the keys. */
int sr_conf_finalize(const sr_conf_t *conf, char *errstr, size_t errstr_size);

/* The one option convention of every command: removes `-c FILE`,
 * `--config FILE`, `--config=FILE`, `-X key=value` and `-Xkey=value` from
 * argv (compacting it, updating *argc, keeping argv[0] and argv[*argc] ==
 * NULL; nothing after a `--` is touched) and applies files (in order) <
 * env < flags (in order), then sr_conf_finalize.  envp may be NULL for "no
 * environment".  Returns 0 or <0 with errstr set; on error argv may be
 * partly compacted. */
int sr_conf_from_args(sr_conf_t *conf, int *argc, char **argv, char *const *envp, char *errstr,
                      size_t errstr_size);

/* Where a property's current value came from.  Lets a command tell "the
 * user asked for redis.url X" from "X is the default". */
typedef enum sr_conf_src {
    SR_CONF_SRC_DEFAULT = 0,
    SR_CONF_SRC_FILE,
    SR_CONF_SRC_ENV,
    SR_CONF_SRC_FLAG,
    SR_CONF_SRC_API /* sr_conf_set called directly */
} sr_conf_src_t;
/* The source of key's value; SR_CONF_SRC_DEFAULT also for an unset or
 * unknown key. */
sr_conf_src_t sr_conf_source(const sr_conf_t *conf, const char *key);
/* "default", "file", "env", "flag", "api". */
const char *sr_conf_src_name(sr_conf_src_t src);

/* Typed getters.  Asking for a key that is not in the table, or with the
 * wrong type, is a programming error: it aborts with a message.  The one
 * exception: sr_conf_str("kafka.<name>") returns the passthrough value or
 * NULL when it was not set. */
const char *sr_conf_str(const sr_conf_t *conf, const char *key);
int64_t sr_conf_int(const sr_conf_t *conf, const char *key);
double sr_conf_double(const sr_conf_t *conf, const char *key);
int sr_conf_bool(const sr_conf_t *conf, const char *key);

/* Calls cb for every property (table or passthrough) whose name starts with
 * prefix ("" for all), in table order then insertion order, with the value
 * as a string.  Stops and returns cb's value when cb returns non-zero. */
int sr_conf_foreach(const sr_conf_t *conf, const char *prefix,
                    int (*cb)(const char *key, const char *value, void *opaque), void *opaque);

/* Writes docs/CONFIGURATION.md (the whole table as Markdown) to out.  Depends
 * only on the table, never on a conf or the environment. */
void sr_conf_write_markdown(FILE *out);

/* ---- Address parsers shared with the store and the ranker ---- */

/* A parsed `redis://[:password@]host[:port][/db]` (port defaults to 6379,
 * db to 0).  The password may be percent-encoded (`%40` for `@`); an IPv6
 * host is written in brackets (`redis://[::1]:6379`). */
typedef struct sr_redis_url {
    char host[256];
    int port;           /* 1..65535 */
    char password[256]; /* "" when none */
    int db;             /* >= 0 */
} sr_redis_url_t;

/* Parses url into *out.  Returns 0 or SR_ERR_PARSE with the reason in
 * errstr ("missing host", "port out of range", ...).  No I/O, thread-safe. */
int sr_redis_url_parse(const char *url, sr_redis_url_t *out, char *errstr, size_t errstr_size);

/* Parses "host:port" (IPv6 as "[addr]:port"; port 0..65535, 0 meaning "any
 * free port").  host receives the host without brackets.  Returns 0 or
 * SR_ERR_PARSE with the reason in errstr.  No I/O, thread-safe. */
int sr_hostport_parse(const char *s, char *host, size_t host_size, int *port, char *errstr,
                      size_t errstr_size);

#endif
