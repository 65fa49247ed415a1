/* Small librdkafka glue shared by the producers/ libraries (producer,
 * broker, metrics publisher).  Libraries cannot use cmd/cmd_util.h, so the
 * log routing lives here too.  Internal: not installed. */
#ifndef SR_KAFKA_UTIL_H
#define SR_KAFKA_UTIL_H

#include <stddef.h>

#include <librdkafka/rdkafka.h>

#include "sr_config.h"

/* rd_kafka_conf_set_log_cb target: librdkafka's syslog levels onto sr_log.
 * Runs on librdkafka's threads; sr_log is thread-safe. */
void sr_kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf);

/* Sets one librdkafka property; on failure writes "kafka.<name>: <why>"
 * into errstr and returns SR_ERR_KAFKA. */
int sr_kafka_conf_set(rd_kafka_conf_t *kc, const char *name, const char *value, char *errstr,
                      size_t errstr_size);

/* Applies every kafka.* property of conf to kc (prefix stripped). */
int sr_kafka_conf_from(const sr_conf_t *conf, rd_kafka_conf_t *kc, char *errstr,
                       size_t errstr_size);

/* Wall clock in milliseconds since the epoch. */
long long sr_kafka_now_ms(void);

#endif
