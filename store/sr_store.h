/* The Redis layout of streamrec (contract: docs/REDIS.md) and the one
 * reader/writer of it.  Nothing else in streamrec knows a key name or an
 * encoding: the trainer flushes through sr_store_flush, the ranker loads
 * and follows items through sr_store_load_items / sr_store_read_updates,
 * `streamrec inspect` reads through sr_store_get_users / _get_items.
 *
 * Layout in one paragraph (details and byte layouts in docs/REDIS.md):
 * every data key lives under the hash tag `{<prefix>}:` so a flush touches a
 * single Redis Cluster slot; the schema version lives in `<prefix>:meta`.
 * Users and items are one compact binary string each (little-endian
 * float32, a 4-byte header holding version, kind and dim).  Recent items
 * are stored as 4-byte global item numbers that Redis assigns atomically
 * (`{p}:item:num` / `{p}:item:id` hashes), popularity is a sorted set,
 * item updates go to a capped stream, partition offsets to a hash per
 * consumer group.
 *
 * Exactly-once: sr_store_flush checks the caller's expected partition
 * offsets (fencing out zombie trainers and recognising a retried flush),
 * then writes users, merges item deltas, updates popularity, appends to the
 * update stream and stores the next offsets, all or nothing: as an
 * optimistic transaction (WATCH, reads, decisions in C, MULTI/EXEC) or, as
 * its fallback, as ONE Lua script (EVALSHA, NOSCRIPT fallback).  Both give
 * the same Redis state and the same result (docs/REDIS.md).
 *
 * This header has two halves: pure encode/decode functions (no I/O,
 * thread-safe, fuzzable) and the connection handle sr_store_t.
 *
 * Threading: an sr_store_t is one Redis connection and is NOT thread-safe;
 * use one handle per thread (the ranker keeps a small pool).  Distinct
 * handles are independent.
 *
 * Errors: 0 or a negative SR_ERR_* (common/sr_err.h).  Connection-level
 * failures return SR_ERR_UNAVAIL (could not connect, connection lost),
 * SR_ERR_TIMEOUT (no answer within the timeout) or SR_ERR_REDIS (Redis
 * answered with an error); after any of them the handle drops its
 * connection and reconnects on the next call, so callers simply retry
 * (sr_store_err_retryable).  sr_store_errstr() gives the last message. */
#ifndef SR_STORE_H
#define SR_STORE_H

#include <stddef.h>
#include <stdint.h>

/* Version of the key layout and encodings, kept in `<prefix>:meta` field
 * `schema`.  A store refuses to work on a database holding another one. */
#define SR_STORE_SCHEMA 1
/* Version byte at offset 0 of every user/item/global blob. */
#define SR_STORE_BLOB_VERSION 1
/* Decoders refuse larger values (corrupt or hostile input). */
#define SR_STORE_DIM_MAX 1024
#define SR_STORE_RECENT_MAX 4096
#define SR_STORE_EXTRA_MAX (1u << 24)

/* ------------------------------------------------------------------ */
/* Plain records (the store does not depend on the model).             */
/* ------------------------------------------------------------------ */

typedef struct sr_store_recent {
    /* Global item number (>= 1) as assigned in Redis.  When writing, 0 means
     * "look it up / assign it from item_id".  Decoded records carry both
     * when the id is known. */
    uint32_t num;
    const char *item_id; /* NULL when unknown (decoders without a lookup) */
    size_t item_id_len;
    int64_t ts_ms;
    uint8_t type; /* sr_event_type_t value, < 8 */
} sr_store_recent_t;

typedef struct sr_store_user {
    const char *id;
    size_t id_len;
    int exists;       /* reads: 1 when the key was present */
    uint16_t dim;     /* length of vec */
    uint16_t n_acc;   /* length of acc: 0, 1 (row-wise AdaGrad) or dim */
    const float *vec; /* long-term vector p_u */
    const float *acc; /* AdaGrad accumulator(s) of p_u */
    uint64_t events;  /* events of this user applied so far */
    int64_t last_ts_ms; /* time of the last applied event */
    uint32_t n_recent;
    const sr_store_recent_t *recent; /* oldest first */
    const void *extra; /* opaque model-owned bytes (may be NULL) */
    size_t extra_len;
} sr_store_user_t;

typedef struct sr_store_item {
    const char *id;
    size_t id_len;
    int exists;       /* reads: 1 when the item key was present */
    uint32_t num;     /* global item number, 0 when not assigned */
    uint16_t dim;
    uint16_t n_acc;   /* length of acc: 0, 1 or dim */
    float bias;
    float bias_acc;   /* AdaGrad accumulator of the bias */
    const float *vec;
    const float *acc;
    const void *extra; /* opaque model-owned bytes, last writer wins */
    size_t extra_len;
    int has_pop;      /* reads: 1 when the item is in the popularity set */
    double pop;       /* decayed popularity (units chosen by the trainer) */
} sr_store_item_t;

/* ------------------------------------------------------------------ */
/* Encodings: pure functions, no I/O, thread-safe.                    */
/* ------------------------------------------------------------------ */

/* Exact encoded size of a user / item blob. */
size_t sr_store_user_size(const sr_store_user_t *u);
size_t sr_store_item_size(const sr_store_item_t *it);

/* Encodes into buf[0..cap).  Every recent item must have num >= 1 and
 * type < 8.  Returns the length written, or SR_ERR_FULL when cap is too
 * small, SR_ERR_INVAL on an unencodable record (dim 0 or too large, n_acc
 * not 0/1/dim, num 0, type >= 8, too many recent items). */
long sr_store_user_encode(const sr_store_user_t *u, void *buf, size_t cap);
long sr_store_item_encode(const sr_store_item_t *it, void *buf, size_t cap);

/* Scratch memory a decode needs (floats and recent records), given the
 * blob; 0 when the header is unreadable (decode will then fail). */
size_t sr_store_user_mem(const void *blob, size_t len);
size_t sr_store_item_mem(const void *blob, size_t len);

/* Decodes blob[0..len) into *u.  Floats and recent records are written to
 * mem (at least sr_store_user_mem bytes, any alignment of 8); extra points
 * into blob.  id / exists are left untouched, recent[].item_id is NULL.
 * Returns 0, SR_ERR_VERSION (other blob version), SR_ERR_CORRUPT (wrong
 * kind, truncated, trailing bytes, out-of-range fields) or SR_ERR_FULL
 * (mem too small).  Never reads outside blob. */
int sr_store_user_decode(const void *blob, size_t len, sr_store_user_t *u, void *mem,
                         size_t mem_size);
/* Same for items; num / pop / id / exists are not in the blob and are left
 * untouched. */
int sr_store_item_decode(const void *blob, size_t len, sr_store_item_t *it, void *mem,
                         size_t mem_size);

/* The global blob wraps the model's opaque global state (blend weights,
 * clocks) with a 4-byte header.  encode returns the length or
 * SR_ERR_FULL; decode sets *payload and *payload_len into blob. */
long sr_store_global_encode(const void *payload, size_t len, void *buf, size_t cap);
int sr_store_global_decode(const void *blob, size_t len, const void **payload,
                           size_t *payload_len);

/* ------------------------------------------------------------------ */
/* The connection handle.                                              */
/* ------------------------------------------------------------------ */

typedef struct sr_store_s sr_store_t;

typedef enum sr_store_flush_mode {
    /* Default: an optimistic transaction (WATCH, one round trip of reads,
     * the merge computed here, MULTI/EXEC), retried when another writer
     * got in between; after SR_STORE_TX_ATTEMPTS aborted attempts the Lua
     * script (which cannot be interrupted) writes it. */
    SR_STORE_FLUSH_TRANSACTION = 0,
    /* Always the Lua script (redis.flush = script). */
    SR_STORE_FLUSH_SCRIPT = 1,
} sr_store_flush_mode_t;

/* Aborted transactions (EXEC refused because a watched key changed) before
 * a flush falls back to the script. */
#define SR_STORE_TX_ATTEMPTS 2

typedef struct sr_store_opts {
    const char *host;     /* default "127.0.0.1" */
    int port;             /* default 6379 */
    const char *password; /* NULL or "" for none: AUTH when set */
    int db;               /* SELECT when > 0 */
    const char *prefix;   /* default "sr"; no braces or blanks */
    int timeout_ms;       /* connect and command timeout, default 1000 */
    /* Approximate cap of the update stream in item updates, default
     * 100000: trimmed (XADD MAXLEN ~) to maxlen/64 entries of up to 64
     * updates each. */
    long stream_maxlen;
    /* How sr_store_flush writes (docs/REDIS.md "The atomic flush"). */
    sr_store_flush_mode_t flush_mode;
} sr_store_opts_t;

/* Zeroes *o and fills the defaults above. */
void sr_store_opts_init(sr_store_opts_t *o);

/* Connects, authenticates, selects the db, checks `<prefix>:meta` (writing
 * the schema when absent) and loads the Lua scripts.  opts is copied.
 * Returns NULL with errstr set when Redis is unreachable, refuses AUTH, or
 * holds another schema version ("schema 2 in sr:meta, this build reads
 * 1").  For "wait until Redis is up" loops, call again.  Against a Redis
 * Cluster node it follows MOVED to the node owning the `{prefix}` slot
 * (and again after a resharding), so any node works as the address. */
sr_store_t *sr_store_new(const sr_store_opts_t *opts, char *errstr, size_t errstr_size);
/* Like sr_store_new with host, port, password and db from a
 * `redis://[:password@]host[:port][/db]` URL (sr_redis_url_parse in
 * common/sr_config.h); prefix NULL and timeout_ms <= 0 mean the defaults.
 * A URL that does not parse gives NULL with "redis.url: <reason>". */
sr_store_t *sr_store_new_url(const char *url, const char *prefix, int timeout_ms,
                             char *errstr, size_t errstr_size);
/* The way every command opens its store: redis.url, redis.prefix,
 * redis.timeout.ms, redis.stream.maxlen and redis.flush from conf (read
 * once). */
struct sr_conf_s;
sr_store_t *sr_store_new_conf(const struct sr_conf_s *conf, char *errstr, size_t errstr_size);
/* Sets prefix, timeout_ms, stream_maxlen and flush_mode of *o from conf
 * (for callers that keep their own opts, e.g. to open a store per thread);
 * o->prefix points into conf. */
void sr_store_opts_conf(const struct sr_conf_s *conf, sr_store_opts_t *o);
/* Closes the connection and frees everything, including memory returned by
 * earlier reads.  NULL is a no-op. */
void sr_store_destroy(sr_store_t *s);

/* The last error message of this handle (never NULL; "" after success of
 * the last call).  Valid until the next call on the handle. */
const char *sr_store_errstr(const sr_store_t *s);
/* 1 when err is a transient connection-level failure worth retrying
 * (SR_ERR_UNAVAIL, SR_ERR_TIMEOUT, SR_ERR_REDIS other than fencing). */
int sr_store_err_retryable(int err);
/* The key prefix in use, e.g. "sr" (data keys live under "{sr}:"). */
const char *sr_store_prefix(const sr_store_t *s);

/* ---- the atomic flush (trainer) ---- */

/* Partition offsets: absent in Redis reads as SR_STORE_OFFSET_NONE.  A
 * flush entry with prev == SR_STORE_OFFSET_ANY skips the fencing check. */
#define SR_STORE_OFFSET_NONE (-1)
#define SR_STORE_OFFSET_ANY (-2)

typedef struct sr_store_offset {
    const char *topic;
    int32_t partition;
    /* The offset this trainer believes is stored now (what it loaded with
     * sr_store_get_offsets or wrote in its last flush). */
    int64_t prev;
    /* The next offset to consume after the state of this flush. */
    int64_t next;
} sr_store_offset_t;

typedef struct sr_store_item_write {
    /* The trainer's current value (id, vec, bias, accumulators, extra). */
    const sr_store_item_t *cur;
    /* The value the trainer's changes started from: what it loaded or what
     * its last flush returned as merged.  For an item this trainer created
     * (absent in Redis when it looked), pass the item's initial value: if
     * another trainer created it meanwhile, Redis gets theirs + (cur -
     * initial).  NULL means all zeros (then a concurrent creator's initial
     * vector is counted twice).  When Redis still holds exactly base's
     * bias, vector and accumulators (or nothing), cur is stored bit for
     * bit; otherwise stored + (cur - base).  base->exists and base->extra
     * are ignored (extras are last writer wins; they are not sent). */
    const sr_store_item_t *base;
    /* Popularity: when write_pop, Redis gets pop_cur if it still holds
     * pop_base (0 when absent), else it adds pop_cur - pop_base. */
    int write_pop;
    double pop_base;
    double pop_cur;
} sr_store_item_write_t;

typedef struct sr_store_flush {
    const char *group; /* consumer group whose offsets are written */
    const sr_store_offset_t *offsets;
    size_t n_offsets;
    /* Full user states (owned by this trainer's partitions), replaced.
     * Recent items with num 0 get their number from item_id. */
    const sr_store_user_t *users;
    size_t n_users;
    const sr_store_item_write_t *items;
    size_t n_items;
    const void *global; /* model's global state payload; NULL = unchanged */
    size_t global_len;
} sr_store_flush_t;

typedef struct sr_store_flush_result {
    /* 1 when Redis already held this flush's offsets: a retry of a flush
     * whose reply was lost.  Nothing was written again and merged is
     * empty: re-read the items with sr_store_get_items. */
    int duplicate;
    /* n_items values Redis holds after the flush, in flush order (the
     * merged vectors and popularity to pull back into the model).  An item
     * stored exactly as sent is the caller's cur record (its id, vec, acc
     * and extra point to the caller's memory; num and pop are filled in),
     * so these stay valid only while the flush input does, too. */
    const sr_store_item_t *merged;
    size_t n_merged;
    /* How many items were merged with another writer's delta (stored value
     * differed from base). */
    size_t n_delta_merged;
    /* How it was written: 1 by the Lua script, 0 by a transaction; and how
     * many transactions were aborted first (another writer in between). */
    int by_script;
    unsigned tx_aborts;
    /* Items whose stored value and popularity were read from Redis; the
     * others came from what this handle's own last transactions wrote
     * (valid because no one else wrote an item since: docs/REDIS.md). */
    size_t n_items_read;
    /* Wall clock (ms since the epoch) when the reply to the atomic write
     * (EXEC, or the script) arrived: from then on readers see the flush.
     * The rest of sr_store_flush (reading the reply into merged, the
     * handle's item cache) comes after it.  0 when nothing was written. */
    int64_t written_wall_ms;
} sr_store_flush_result_t;

/* Writes one flush atomically: two round trips (reads under WATCH, then
 * MULTI ... EXEC; a third when another writer wrote items since this
 * handle's last transaction) or one Lua script, see sr_store_flush_mode_t;
 * before them, one extra round trip per 1000 item ids this handle has not
 * seen yet, to get their global numbers.  The handle remembers the header
 * and floats of the items its transactions wrote (about 16 + 4·(dim +
 * n_acc) bytes each) so that it need not read them back next time.
 * Offset fencing: every offset with prev != ANY must be stored as prev
 * (absent = NONE); if ALL of them are already stored as next (and some next
 * != prev), the flush is a duplicate (res->duplicate = 1, returns 0);
 * anything else returns SR_ERR_STATE ("fenced": another trainer owns or
 * moved the partition) and writes nothing.  Returns SR_ERR_INVAL on bad
 * records or an item id twice in one flush (nothing written),
 * SR_ERR_VERSION on a dim mismatch with a stored item, SR_ERR_CORRUPT
 * when one of the shared keys has the wrong type, connection errors as above (then the flush may or may not have
 * been applied: retry it unchanged, the fencing makes that safe).
 * res memory stays valid until the next call on s. */
int sr_store_flush(sr_store_t *s, const sr_store_flush_t *f, sr_store_flush_result_t *res);

/* Tests only: fn(arg, stage) runs in every transaction attempt of
 * sr_store_flush: stage 0 between its read round trip and MULTI (e.g. to
 * write a watched key from another connection and so force an abort),
 * stage 1 after an EXEC that applied, where a nonzero return makes the
 * store act as if that reply was lost (connection dropped,
 * SR_ERR_UNAVAIL).  NULL removes it. */
void sr_store_set_flush_hook(sr_store_t *s, int (*fn)(void *arg, int stage), void *arg);

/* ---- reads (trainer warm load, inspect, ranker) ---- */

/* Stored next offsets of (group, topic, partitions[i]) into offsets[i]
 * (SR_STORE_OFFSET_NONE when absent).  One round trip. */
int sr_store_get_offsets(sr_store_t *s, const char *group, const char *topic,
                         const int32_t *partitions, size_t n, int64_t *offsets);

/* Batched reads (pipelined MGET, one or two round trips whatever n):
 * out[i] describes ids[i] (lens may be NULL for NUL-terminated ids);
 * out[i].exists = 0 when absent.  Users' recent items come with their item
 * ids resolved; items come with num and popularity.  Returns the number
 * found, or <0 on error (SR_ERR_CORRUPT when a stored blob fails to
 * decode: the message names the key).  out memory stays valid until the
 * next call on s. */
long sr_store_get_users(sr_store_t *s, const char *const *ids, const size_t *lens, size_t n,
                        sr_store_user_t *out);
long sr_store_get_items(sr_store_t *s, const char *const *ids, const size_t *lens, size_t n,
                        sr_store_item_t *out);

/* The global payload (*payload NULL, len 0 when absent); valid until the
 * next call on s. */
int sr_store_get_global(sr_store_t *s, const void **payload, size_t *len);

/* Item ids of global item numbers (batched, cached for the handle's life:
 * numbers never change).  ids[i] NULL when nums[i] is unknown. */
int sr_store_item_ids(sr_store_t *s, const uint32_t *nums, size_t n, const char **ids,
                      size_t *lens);

/* ---- popularity ---- */

typedef struct sr_store_pop {
    const char *id;
    size_t id_len;
    double score;
} sr_store_pop_t;

/* Up to k most popular items, best first (ties: Redis order).  *out valid
 * until the next call on s.  Returns the count or <0. */
long sr_store_pop_top(sr_store_t *s, size_t k, const sr_store_pop_t **out);

/* ---- the item matrix and its update stream (ranker) ---- */

/* A position in the item update stream.  Zero-initialise to start at the
 * beginning. */
typedef struct sr_store_cursor {
    char id[48];  /* where reading continues (a stream id), "" = beginning */
    uint64_t seq; /* number of the last update read (numbers are
                   * consecutive over the stream's life, starting at 1) */
} sr_store_cursor_t;

/* All items in contiguous arrays (row i of vec is item i). */
typedef struct sr_store_items {
    uint32_t n;
    uint32_t dim;
    float *vec;        /* n * dim, row-major */
    float *bias;       /* n */
    double *pop;       /* n (0 when not in the popularity set) */
    uint32_t *num;     /* n global item numbers */
    char *id_buf;      /* ids, NUL-terminated, back to back */
    uint32_t *id_off;  /* n: item i's id is id_buf + id_off[i] */
    uint32_t *id_len;  /* n */
    /* Where to follow the update stream from: its tail before the scan
     * started, so nothing written during the load is missed. */
    sr_store_cursor_t cursor;
} sr_store_items_t;

/* Loads every item (HSCAN of the item index, MGET of item keys in
 * batches).  Items of another dim than the first are skipped with a
 * warning.  *out is owned by the caller: sr_store_items_free. */
int sr_store_load_items(sr_store_t *s, sr_store_items_t **out);
/* NULL is a no-op. */
void sr_store_items_free(sr_store_items_t *items);

typedef struct sr_store_update {
    uint64_t seq;
    char stream_id[48];
    sr_store_item_t item; /* merged value; num and pop included */
} sr_store_update_t;

/* Reads the item updates after *cursor and advances it: min(max, what is
 * there), so a return of max means "there may be more" (the cursor can
 * stop inside a stream entry of up to 64 updates).  *gap = 1 when
 * entries between the cursor and the first one returned were trimmed from
 * the capped stream (the follower fell behind: reload with
 * sr_store_load_items).  *out valid until the next call on s.  Returns the
 * count (0 when nothing new) or <0. */
long sr_store_read_updates(sr_store_t *s, sr_store_cursor_t *cursor, size_t max,
                           const sr_store_update_t **out, int *gap);
/* The current tail of the stream (for "follow from now"). */
int sr_store_updates_tail(sr_store_t *s, sr_store_cursor_t *cursor);

/* Redis's own MEMORY USAGE of one user's key, for the memory budget
 * (docs/BENCHMARKS.md).  Returns bytes or <0. */
long sr_store_user_memory(sr_store_t *s, const char *id, size_t len);

#endif
