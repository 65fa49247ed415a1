/* Configuration: one property table (name, type, range, default,
 * description, validator), as librdkafka's rdkafka_conf.c and redis's
 * config.c keep theirs.  Values come from, in rising precedence: the table
 * default, a config file (`-c FILE`, lines `key = value`, `#` comments),
 * the environment (`STREAMREC_REDIS_URL` for `redis.url`: upper case, dots
 * as underscores), and `-X key=value` flags.
 *
 * `kafka.<name>` keys are not in the table: they pass through to librdkafka
 * unchecked (librdkafka checks them when the client is created).
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

/* Sets one property from its string form.  Returns 0, or SR_ERR_NOTFOUND
 * (unknown key), SR_ERR_PARSE (wrong type), SR_ERR_RANGE (out of range) /
 * SR_ERR_INVAL (validator refused) with a message in errstr naming the key. */
int sr_conf_set(sr_conf_t *conf, const char *key, const char *value, char *errstr,
                size_t errstr_size);

/* Reads a config file.  On error returns <0 and errstr reads
 * "FILE:LINE: message"; properties set by earlier lines stay set. */
int sr_conf_load_file(sr_conf_t *conf, const char *path, char *errstr, size_t errstr_size);

/* Applies STREAMREC_* variables from envp (NULL-terminated, like environ).
 * An unknown STREAMREC_ variable is an error naming it. */
int sr_conf_load_env(sr_conf_t *conf, char *const *envp, char *errstr, size_t errstr_size);

/* The one option convention of every command: removes `-c FILE` /
 * `--config FILE` and `-X key=value` from argv (compacting it, updating
 * *argc; argv[0] stays) and applies file < env < flags.  envp may be NULL
 * for "no environment".  Returns 0 or <0 with errstr set. */
int sr_conf_from_args(sr_conf_t *conf, int *argc, char **argv, char *const *envp, char *errstr,
                      size_t errstr_size);

/* Typed getters.  Asking for a key that is not in the table, or with the
 * wrong type, is a programming error: it aborts with a message. */
const char *sr_conf_str(const sr_conf_t *conf, const char *key);
int64_t sr_conf_int(const sr_conf_t *conf, const char *key);
double sr_conf_double(const sr_conf_t *conf, const char *key);
int sr_conf_bool(const sr_conf_t *conf, const char *key);

/* Calls cb for every property (table or passthrough) whose name starts with
 * prefix, in table order then insertion order, with the value as a string.
 * Stops and returns cb's value when cb returns non-zero. */
int sr_conf_foreach(const sr_conf_t *conf, const char *prefix,
                    int (*cb)(const char *key, const char *value, void *opaque), void *opaque);

/* Writes docs/CONFIGURATION.md (the whole table as Markdown) to out. */
void sr_conf_write_markdown(FILE *out);

#endif
