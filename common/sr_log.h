/* Logging through one gate (redis serverLog style): the level is checked
 * before anything is formatted.  librdkafka's log_cb is routed here too.
 * Output goes to stderr with a timestamp and level; thread-safe (one
 * fprintf per line).  The level is process-wide: set it once at start. */
#ifndef SR_LOG_H
#define SR_LOG_H

enum { SR_LOG_ERROR = 3, SR_LOG_WARN = 4, SR_LOG_INFO = 6, SR_LOG_DEBUG = 7 };

extern int sr_log_level_;
void sr_log_set_level(int level);
/* Parses "error|warn|info|debug"; returns -1 on anything else. */
int sr_log_level_parse(const char *name);
void sr_log_write(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define sr_log(level, ...)                                                     \
    do {                                                                       \
        if ((level) <= sr_log_level_) sr_log_write((level), __VA_ARGS__);      \
    } while (0)

#endif
