/* Helpers every command uses, so that all of them read options, the
 * configuration and Kafka settings the same way.  cmd/ only: these print to
 * stderr and touch process-wide state (the log level), which the libraries
 * never do.
 *
 * Threading: call from the main thread during start-up. */
#ifndef SR_CMD_UTIL_H
#define SR_CMD_UTIL_H

#include <stddef.h>
#include <stdio.h>

#include <librdkafka/rdkafka.h>

#include "sr_config.h"
#include "sr_model.h"

/* The standard start of a command: a new conf with -c/-X/environment
 * applied (sr_conf_from_args; argv is compacted, *argc updated) and the
 * process log level set from log.level.  envp is normally `environ`.
 * Returns the conf (caller destroys it) or NULL with errstr set. */
sr_conf_t *sr_cmd_conf(int *argc, char **argv, char *const *envp, char *errstr, size_t errstr_size);

/* The start of most commands: `--help`/`-h` anywhere prints usage(stdout)
 * and returns NULL with *status 0; otherwise sr_cmd_conf, and on its
 * failure "streamrec <argv[0]>: <error>" on stderr, NULL and *status 2.
 * On success returns the conf (caller destroys it); argv is compacted and
 * *argc updated as sr_cmd_conf does. */
sr_conf_t *sr_cmd_begin(int *argc, char **argv, void (*usage)(FILE *), int *status);

/* Fills *p with sr_model_params_init's defaults, then applies every model.*
 * property of conf through sr_model_params_set (the "model." prefix
 * removed).  Returns 0, or the model's error with "model.<key>: ..." in
 * errstr (a table row the model does not know is SR_ERR_NOTFOUND). */
int sr_cmd_model_params(const sr_conf_t *conf, sr_model_params_t *p, char *errstr,
                        size_t errstr_size);

/* Applies every kafka.* property of conf to kc (without the "kafka."
 * prefix) and routes librdkafka's log lines through sr_log.  Returns 0, or
 * SR_ERR_KAFKA with librdkafka's message (naming the property) in errstr.
 * kc stays owned by the caller. */
int sr_cmd_kafka_conf(const sr_conf_t *conf, rd_kafka_conf_t *kc, char *errstr, size_t errstr_size);

/* rd_kafka_conf_set_log_cb callback: librdkafka's syslog levels mapped onto
 * sr_log's.  Runs on librdkafka's internal threads (sr_log is thread-safe). */
void sr_log_rdkafka_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf);

/* `--name VALUE` / `--name=VALUE` matcher for option loops:
 *
 *     for (int i = 1; i < argc; i++) {
 *         const char *v;
 *         int m;
 *         if ((m = sr_cmd_opt(argc, argv, &i, "--data", &v)) > 0) data = v;
 *         else if (m < 0) return 2;
 *         else ...
 *     }
 *
 * Returns 1 and sets *value (advancing *i past a separate VALUE) when
 * argv[*i] is that option, 0 when it is not, -1 after printing
 * "streamrec <argv[0]>: --name needs a value" when the value is missing.
 * *value points into argv. */
int sr_cmd_opt(int argc, char **argv, int *i, const char *name, const char **value);

/* Parses an option's value as an integer in [min, max]; prints
 * "streamrec <cmd>: <name>: ..." and returns -1 when it is not one. */
int sr_cmd_opt_int(const char *cmd, const char *name, const char *value, long long min,
                   long long max, long long *out);

#endif
