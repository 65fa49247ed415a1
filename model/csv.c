/* The event log CSV line parser (`ts_ms,user,item,event`, DESIGN.md §4).
 * It does no I/O, as hiredis's reply parser does none: callers (eval,
 * produce) read lines however they like and hand them over one at a time,
 * so the parser can be tested and fuzzed on buffers.  Every rejection says
 * why, because a bad line in a million-line log must be findable. */
#include <stdio.h>
#include <string.h>

#include "sr_err.h"
#include "sr_event.h"

static int fail(char *errstr, size_t size, int rc, const char *fmt, const char *arg, size_t arg_len)
{
    if (errstr && size) {
        /* Quote at most 32 bytes of the offending field. */
        int n = arg_len > 32 ? 32 : (int)arg_len;
        snprintf(errstr, size, fmt, n, arg ? arg : "");
    }
    return rc;
}

/* Splits off the next comma-separated field of [*p, end) and
 * NUL-terminates it when a comma follows; *more says whether one did.
 * Callers only ask for a field after a comma, so *p is never NULL here. */
static void next_field(char **p, char *end, char **f, size_t *flen, int *more)
{
    char *comma = memchr(*p, ',', (size_t)(end - *p));
    *f = *p;
    if (comma) {
        *flen = (size_t)(comma - *p);
        *comma = '\0';
        *p = comma + 1;
        *more = 1;
    } else {
        *flen = (size_t)(end - *p);
        *p = NULL;
        *more = 0;
    }
}

int sr_csv_parse_line(char *line, size_t len, sr_event_t *ev, char *errstr, size_t errstr_size)
{
    if (errstr && errstr_size) errstr[0] = '\0';
    if (!line || !ev) return fail(errstr, errstr_size, SR_ERR_PARSE, "%.*sno line", NULL, 0);
    /* Drop the line end: "\n", "\r\n" or a lone "\r". */
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        len--;
    if (len == 0) return fail(errstr, errstr_size, SR_ERR_PARSE, "%.*sempty line", NULL, 0);
    if (memchr(line, '\0', len))
        return fail(errstr, errstr_size, SR_ERR_PARSE, "%.*sNUL byte in line", NULL, 0);
    char *end = line + len, *p = line, *f;
    size_t flen;
    int more;

    next_field(&p, end, &f, &flen, &more);
    if (flen == 5 && memcmp(f, "ts_ms", 5) == 0) {
        if (errstr && errstr_size) snprintf(errstr, errstr_size, "header line");
        return SR_ERR_EXISTS;
    }
    if (flen == 0) return fail(errstr, errstr_size, SR_ERR_PARSE, "%.*sempty timestamp", NULL, 0);
    int64_t ts = 0;
    for (size_t i = 0; i < flen; i++) {
        unsigned d = (unsigned char)f[i] - '0';
        if (d > 9) return fail(errstr, errstr_size, SR_ERR_PARSE, "bad timestamp '%.*s'", f, flen);
        if (ts > (INT64_MAX - (int64_t)d) / 10)
            return fail(errstr, errstr_size, SR_ERR_PARSE, "timestamp out of range '%.*s'", f,
                        flen);
        ts = ts * 10 + d;
    }
    if (!more) return fail(errstr, errstr_size, SR_ERR_PARSE, "%.*smissing user column", NULL, 0);

    char *user = NULL, *item = NULL, *type = NULL;
    size_t user_len = 0, item_len = 0, type_len = 0;
    next_field(&p, end, &user, &user_len, &more);
    if (user_len == 0) return fail(errstr, errstr_size, SR_ERR_PARSE, "%.*sempty user id", NULL, 0);
    if (user_len > SR_ID_MAX)
        return fail(errstr, errstr_size, SR_ERR_PARSE, "user id longer than 128 bytes '%.*s...'",
                    user, user_len);
    if (!more) return fail(errstr, errstr_size, SR_ERR_PARSE, "%.*smissing item column", NULL, 0);
    next_field(&p, end, &item, &item_len, &more);
    if (item_len == 0) return fail(errstr, errstr_size, SR_ERR_PARSE, "%.*sempty item id", NULL, 0);
    if (item_len > SR_ID_MAX)
        return fail(errstr, errstr_size, SR_ERR_PARSE, "item id longer than 128 bytes '%.*s...'",
                    item, item_len);
    if (!more) return fail(errstr, errstr_size, SR_ERR_PARSE, "%.*smissing event column", NULL, 0);
    next_field(&p, end, &type, &type_len, &more);
    /* Extra columns (more == 1) are ignored by contract. */
    sr_event_type_t t;
    if (type_len == 0)
        return fail(errstr, errstr_size, SR_ERR_PARSE, "%.*sempty event type", NULL, 0);
    if (sr_event_type_parse(type, type_len, &t) != 0)
        return fail(errstr, errstr_size, SR_ERR_PARSE, "unknown event type '%.*s'", type, type_len);

    memset(ev, 0, sizeof(*ev));
    ev->ts_ms = ts;
    ev->user = user;
    ev->user_len = user_len;
    ev->item = item;
    ev->item_len = item_len;
    ev->type = t;
    return 0;
}
