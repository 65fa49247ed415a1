/* One error enum for all of streamrec, built from a single X-macro list so
 * the codes and their strings cannot drift apart (as libuv's uv.h does).
 * Functions return 0 (SR_OK) on success and a negative SR_ERR_* on failure. */
#ifndef SR_ERR_H
#define SR_ERR_H

#define SR_ERRNO_MAP(X)                                                        \
    X(INVAL, "invalid argument")                                               \
    X(NOMEM, "out of memory")                                                  \
    X(IO, "input/output error")                                                \
    X(PARSE, "malformed input")                                                \
    X(RANGE, "value out of range")                                             \
    X(NOTFOUND, "not found")                                                   \
    X(EXISTS, "already exists")                                                \
    X(VERSION, "unsupported version")                                          \
    X(CORRUPT, "corrupt data")                                                 \
    X(FULL, "capacity exceeded")                                               \
    X(KAFKA, "kafka error")                                                    \
    X(REDIS, "redis error")                                                    \
    X(TIMEOUT, "timed out")                                                    \
    X(UNAVAIL, "service unavailable")                                          \
    X(STATE, "invalid state")

typedef enum sr_err {
    SR_OK = 0,
#define SR_ERR_ENUM_(name, msg) SR_ERR_##name,
    SR_ERR_FIRST_ = -64,
    SR_ERRNO_MAP(SR_ERR_ENUM_)
#undef SR_ERR_ENUM_
    SR_ERR_LAST_
} sr_err_t;

/* Static string for an error code (never NULL, never to be freed); safe from
 * any thread. Unknown codes give "unknown error". */
const char *sr_strerror(int err);

#endif
