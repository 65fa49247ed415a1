/* The single log gate; see sr_log.h. */
#include "sr_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int sr_log_level_ = SR_LOG_INFO;

void sr_log_set_level(int level)
{
    sr_log_level_ = level;
}

int sr_log_level_parse(const char *name)
{
    static const struct {
        const char *name;
        int level;
    } names[] = {{"error", SR_LOG_ERROR}, {"warn", SR_LOG_WARN}, {"info", SR_LOG_INFO},
                 {"debug", SR_LOG_DEBUG}};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(name, names[i].name) == 0) return names[i].level;
    return -1;
}

void sr_log_write(int level, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    const char *tag = level <= SR_LOG_ERROR  ? "ERROR"
                      : level <= SR_LOG_WARN ? "WARN"
                      : level <= SR_LOG_INFO ? "INFO"
                                             : "DEBUG";
    /* One fprintf per line so lines from threads do not interleave. */
    fprintf(stderr, "%02d:%02d:%02d.%03ld %-5s %s\n", tm.tm_hour, tm.tm_min, tm.tm_sec,
            ts.tv_nsec / 1000000, tag, msg);
}
