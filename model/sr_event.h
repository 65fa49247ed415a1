/* The event as the model sees it, and the event log CSV line parser
 * (`ts_ms,user,item,event`, DESIGN.md §4).  Pure C, no I/O: the parser works
 * on one line in a buffer so it is fuzzable and testable without files. */
#ifndef SR_EVENT_H
#define SR_EVENT_H

#include <stddef.h>
#include <stdint.h>

/* Longest accepted user or item id, in bytes (contract: events.proto). */
#define SR_ID_MAX 128

typedef enum sr_event_type {
    SR_EV_VIEW = 0,
    SR_EV_CLICK,
    SR_EV_CART,
    SR_EV_PURCHASE,
    SR_EV_IMPRESSION,
    SR_EV_RATING,
    SR_EV_NTYPES
} sr_event_type_t;

/* An event borrowed from the caller: the model copies what it keeps. */
typedef struct sr_event {
    const char *user;
    size_t user_len;
    const char *item;
    size_t item_len;
    sr_event_type_t type;
    int64_t ts_ms;
    /* Seeds this event's negative sampling, so a replay reproduces it.
     * Producers put a hash of the event id here; 0 means "derive one from
     * user, item, type and ts_ms". */
    uint64_t id_hash;
    float value; /* rating or amount; 0 when absent */
} sr_event_t;

/* "view", "click", "cart", "purchase", "impression", "rating" (also
 * "add_to_cart"/"addtocart", "transaction" as aliases).  Returns 0 and sets
 * *out, or SR_ERR_PARSE. */
int sr_event_type_parse(const char *s, size_t len, sr_event_type_t *out);
/* Canonical CSV name; static string. */
const char *sr_event_type_name(sr_event_type_t t);

/* 64-bit hash (wyhash/xxh-style, stable across builds and machines) used
 * for ids, event-id hashes and per-event RNG seeds. */
uint64_t sr_hash64(const void *data, size_t len, uint64_t seed);

/* Parses one CSV line (without or with its trailing \n / \r\n) in place:
 * the event's id pointers point into `line`.  Extra columns are ignored.
 * Returns 0, or SR_ERR_PARSE with a reason ("missing item column",
 * "bad timestamp", "unknown event type 'x'", "user id longer than 128
 * bytes", ...) in errstr.  A header line returns SR_ERR_EXISTS.
 * Thread-safe; allocates nothing. */
int sr_csv_parse_line(char *line, size_t len, sr_event_t *ev, char *errstr, size_t errstr_size);

#endif
