/* Private to common/config*.c: the shape of one property row and the table
 * itself, so the table file stays a plain list that other modules can add a
 * row to with a one-line edit. */
#ifndef SR_CONFIG_TABLE_H
#define SR_CONFIG_TABLE_H

#include <stddef.h>

#include "sr_config.h"

typedef enum sr_conf_type { SR_CONF_STR, SR_CONF_INT, SR_CONF_DOUBLE, SR_CONF_BOOL } sr_conf_type_t;

/* Returns 0 or a negative SR_ERR_* with the reason (without the key, the
 * caller prefixes it) in errstr. */
typedef int (*sr_conf_validator_t)(const char *value, char *errstr, size_t errstr_size);

typedef struct sr_conf_prop {
    const char *name;
    sr_conf_type_t type;
    double min, max; /* inclusive; used for INT and DOUBLE only */
    const char *def; /* default as it would be written in a config file */
    const char *desc;
    sr_conf_validator_t validate; /* NULL: type and range only */
} sr_conf_prop_t;

extern const sr_conf_prop_t sr_conf_table[];
extern const size_t sr_conf_table_len;

/* Cross-property checks run by sr_conf_finalize, in order. */
typedef int (*sr_conf_check_t)(const sr_conf_t *conf, char *errstr, size_t errstr_size);
extern const sr_conf_check_t sr_conf_checks[];
extern const size_t sr_conf_checks_len;

/* Index of key in sr_conf_table, or -1. */
int sr_conf_table_find(const char *key);

#endif
