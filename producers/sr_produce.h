/* The logic behind `streamrec produce` and `streamrec simulate --kafka`:
 * read an event log (CSV or JSON lines) or pull the simulator, pace it to a
 * rate, send it with the producer library, count what was delivered.  It
 * lives here, not in cmd/, so that the line parsers are unit-testable and
 * cmd/ only parses options.  Internal to streamrec (not installed).
 *
 * Threading: everything runs on the calling thread, including the delivery
 * callbacks (served by sr_producer_poll inside the loops). */
#ifndef SR_PRODUCE_H
#define SR_PRODUCE_H

#include <signal.h>
#include <stdint.h>
#include <stdio.h>

#include "sr_config.h"
#include "sr_producer.h"
#include "sr_sim.h"

/* A producer configured from conf: every kafka.* property and
 * topic.events (sr_producer_new's key/values).  NULL with errstr. */
sr_producer_t *sr_producer_new_conf(const sr_conf_t *conf, sr_producer_delivery_cb *cb,
                                    void *opaque, char *errstr, size_t errstr_size);

typedef enum sr_produce_format {
    SR_PRODUCE_AUTO = 0, /* JSON lines if the first non-blank line starts with '{' */
    SR_PRODUCE_CSV,      /* ts_ms,user,item,event (DESIGN.md §4) */
    SR_PRODUCE_JSONL,    /* {"user":..,"item":..,"event":..,"ts_ms":..,...} */
} sr_produce_format_t;

/* "csv", "jsonl" (or "json"), "auto"; 0 or SR_ERR_INVAL. */
int sr_produce_format_parse(const char *s, sr_produce_format_t *out);

/* Parses one line (its trailing \n / \r\n optional) in place.  CSV: as
 * sr_csv_parse_line; JSON: an object with user, item (strings or
 * numbers), event or type (a name: view, click, cart/add_to_cart, purchase,
 * impression, rating, any case), optional ts_ms (integer; absent = now),
 * event_id, session, query (strings) and value (number); other fields are
 * ignored.  On success the strings in *ev point into line or scratch
 * (scratch_size >= 4 * SR_ID_MAX + 2 * SR_EVENT_TEXT_MAX + 16 is always
 * enough) and live as long as both.  Returns 0, SR_ERR_EXISTS for the CSV
 * header line, SR_ERR_NOTFOUND for a blank line, or SR_ERR_PARSE with the
 * reason in errstr.  fmt must be CSV or JSONL.  No I/O. */
int sr_produce_parse_line(sr_produce_format_t fmt, char *line, size_t len,
                          sr_producer_event_t *ev, char *scratch, size_t scratch_size,
                          char *errstr, size_t errstr_size);

typedef struct sr_produce_stats {
    uint64_t lines;     /* input lines read (produce) */
    uint64_t sent;      /* events accepted by sr_producer_send */
    uint64_t delivered; /* acknowledged by the broker */
    uint64_t bad;       /* lines skipped as unparsable or invalid */
    uint64_t failed;    /* delivery failures (after librdkafka's retries) */
} sr_produce_stats_t;

typedef struct sr_produce_opts {
    sr_produce_format_t format;
    double rate;          /* events per second; 0 = as fast as possible */
    uint64_t max_events;  /* stop after this many (0 = all / endless) */
    const char *name;     /* input name in messages ("-" = stdin) */
    FILE *report;         /* bad lines, failures and progress (stderr), or NULL */
    int progress_ms;      /* progress line interval on report; 0 = none */
    int flush_timeout_ms; /* waiting for deliveries at the end */
    volatile sig_atomic_t *stop; /* set by a signal handler: stop reading, flush */
} sr_produce_opts_t;

/* Sends every line of `in` (streaming: one line in memory).  Bad lines are
 * reported as "NAME:LINE: reason" on opts->report (the first 100, then a
 * count) and skipped.  Ends with a flush.  Returns 0 when every sent event
 * was delivered, SR_ERR_KAFKA when some failed or were still in flight at
 * the end (stats say how many), or another error (producer creation, read
 * error) with errstr. */
int sr_produce_run(const sr_conf_t *conf, FILE *in, const sr_produce_opts_t *opts,
                   sr_produce_stats_t *stats, char *errstr, size_t errstr_size);

/* Sends the simulator's events live: each stamped with the current time,
 * paced at opts->rate, until opts->max_events, the simulator's end or
 * *opts->stop; then flushes.  Returns as sr_produce_run. */
int sr_produce_sim(const sr_conf_t *conf, sr_sim_t *sim, const sr_produce_opts_t *opts,
                   sr_produce_stats_t *stats, char *errstr, size_t errstr_size);

#endif
