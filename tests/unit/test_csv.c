/* sr_csv_parse_line: good lines, every rejection reason, header, line ends,
 * extra columns and id length bounds. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sr_err.h"
#include "sr_event.h"

static char buf[1024];
static char err[256];

static int parse(const char *line, sr_event_t *ev)
{
    snprintf(buf, sizeof(buf), "%s", line);
    err[0] = '\0';
    return sr_csv_parse_line(buf, strlen(buf), ev, err, sizeof(err));
}

static void expect_error(const char *line, const char *reason)
{
    sr_event_t ev;
    cr_assert_eq(parse(line, &ev), SR_ERR_PARSE, "line '%s' should fail", line);
    cr_assert(strstr(err, reason) != NULL, "line '%s': error '%s' lacks '%s'", line, err, reason);
}

Test(csv, good_line)
{
    sr_event_t ev;
    cr_assert_eq(parse("1767225600000,u42,i7,purchase\n", &ev), 0, "%s", err);
    cr_assert_eq(ev.ts_ms, 1767225600000LL);
    cr_assert_eq(ev.user_len, 3);
    cr_assert(memcmp(ev.user, "u42", 3) == 0);
    cr_assert_eq(ev.item_len, 2);
    cr_assert(memcmp(ev.item, "i7", 2) == 0);
    cr_assert_eq(ev.type, SR_EV_PURCHASE);
    cr_assert_eq(ev.id_hash, 0);
    cr_assert_eq(ev.value, 0.0f);
}

Test(csv, ids_point_into_the_line)
{
    sr_event_t ev;
    cr_assert_eq(parse("5,user,item,view", &ev), 0);
    cr_assert(ev.user >= buf && ev.user < buf + sizeof(buf));
    cr_assert(ev.item >= buf && ev.item < buf + sizeof(buf));
}

Test(csv, every_event_type_and_aliases)
{
    static const struct {
        const char *name;
        sr_event_type_t t;
    } cases[] = {
        {"view", SR_EV_VIEW},         {"click", SR_EV_CLICK},           {"cart", SR_EV_CART},
        {"purchase", SR_EV_PURCHASE}, {"impression", SR_EV_IMPRESSION}, {"rating", SR_EV_RATING},
        {"addtocart", SR_EV_CART},    {"transaction", SR_EV_PURCHASE}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char line[64];
        sr_event_t ev;
        snprintf(line, sizeof(line), "1,u,i,%s", cases[i].name);
        cr_assert_eq(parse(line, &ev), 0, "%s: %s", cases[i].name, err);
        cr_assert_eq(ev.type, cases[i].t, "%s", cases[i].name);
    }
}

Test(csv, no_line_end)
{
    sr_event_t ev;
    cr_assert_eq(parse("10,a,b,click", &ev), 0);
    cr_assert_eq(ev.type, SR_EV_CLICK);
    cr_assert_eq(ev.ts_ms, 10);
}

Test(csv, crlf_line_end)
{
    sr_event_t ev;
    cr_assert_eq(parse("10,a,b,cart\r\n", &ev), 0, "%s", err);
    cr_assert_eq(ev.type, SR_EV_CART);
    cr_assert_eq(ev.item_len, 1);
}

Test(csv, extra_columns_ignored)
{
    sr_event_t ev;
    cr_assert_eq(parse("10,a,b,view,session-9,42.5,whatever\n", &ev), 0, "%s", err);
    cr_assert_eq(ev.type, SR_EV_VIEW);
    cr_assert_eq(ev.item_len, 1);
    cr_assert_eq(ev.item[0], 'b');
}

Test(csv, header_line)
{
    sr_event_t ev;
    cr_assert_eq(parse("ts_ms,user,item,event\n", &ev), SR_ERR_EXISTS);
    cr_assert_eq(parse("ts_ms,user,item,event\r\n", &ev), SR_ERR_EXISTS);
}

Test(csv, empty_line)
{
    expect_error("\n", "empty line");
}

Test(csv, missing_columns)
{
    expect_error("10", "missing user column");
    expect_error("10,u", "missing item column");
    expect_error("10,u,i", "missing event column");
}

Test(csv, empty_fields)
{
    expect_error(",u,i,view", "empty timestamp");
    expect_error("10,,i,view", "empty user id");
    expect_error("10,u,,view", "empty item id");
    expect_error("10,u,i,", "empty event type");
}

Test(csv, bad_timestamp)
{
    expect_error("abc,u,i,view", "bad timestamp 'abc'");
    expect_error("-5,u,i,view", "bad timestamp");
    expect_error("1.5,u,i,view", "bad timestamp");
    expect_error(" 10,u,i,view", "bad timestamp");
}

Test(csv, timestamp_out_of_range)
{
    expect_error("99999999999999999999,u,i,view", "timestamp out of range");
    sr_event_t ev;
    cr_assert_eq(parse("9223372036854775807,u,i,view", &ev), 0, "%s", err);
    cr_assert_eq(ev.ts_ms, INT64_MAX);
}

Test(csv, unknown_event_type)
{
    expect_error("10,u,i,wishlist", "unknown event type 'wishlist'");
}

Test(csv, oversize_ids)
{
    char id[SR_ID_MAX + 2], line[512];
    memset(id, 'x', SR_ID_MAX);
    id[SR_ID_MAX] = '\0';
    sr_event_t ev;
    snprintf(line, sizeof(line), "1,%s,i,view", id);
    cr_assert_eq(parse(line, &ev), 0, "128 bytes is allowed: %s", err);
    cr_assert_eq(ev.user_len, SR_ID_MAX);
    snprintf(line, sizeof(line), "1,u,%s,view", id);
    cr_assert_eq(parse(line, &ev), 0, "128 bytes is allowed: %s", err);

    id[SR_ID_MAX] = 'x';
    id[SR_ID_MAX + 1] = '\0';
    snprintf(line, sizeof(line), "1,%s,i,view", id);
    expect_error(line, "user id longer than 128 bytes");
    snprintf(line, sizeof(line), "1,u,%s,view", id);
    expect_error(line, "item id longer than 128 bytes");
}

Test(csv, nul_byte_rejected)
{
    char line[] = "1,u\0x,i,view";
    sr_event_t ev;
    cr_assert_eq(sr_csv_parse_line(line, sizeof(line) - 1, &ev, err, sizeof(err)), SR_ERR_PARSE);
    cr_assert(strstr(err, "NUL") != NULL);
}

Test(csv, null_errstr_is_allowed)
{
    char line[] = "x,u,i,view";
    sr_event_t ev;
    cr_assert_eq(sr_csv_parse_line(line, strlen(line), &ev, NULL, 0), SR_ERR_PARSE);
}

/* Garbage never crashes the parser, and what it accepts points inside the
 * line with the lengths it reports (run under ASan by `make asan`). */
Test(csv, random_garbage_is_rejected_or_parsed_safely)
{
    uint64_t x = 0x9E3779B97F4A7C15ULL;
    static const char alphabet[] = "0123456789,,,,abcuvi_\r\n\"\t view cart";
    for (int round = 0; round < 20000; round++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        size_t len = (size_t)(x % 300);
        char *line = malloc(len + 1);
        uint64_t y = x;
        for (size_t i = 0; i < len; i++) {
            y = y * 6364136223846793005ULL + 1442695040888963407ULL;
            line[i] = (y >> 60) < 3 ? (char)(y >> 33) : alphabet[(y >> 33) % (sizeof(alphabet) - 1)];
        }
        line[len] = '\0';
        sr_event_t ev;
        int rc = sr_csv_parse_line(line, len, &ev, err, sizeof(err));
        cr_assert(rc == 0 || rc == SR_ERR_PARSE || rc == SR_ERR_EXISTS);
        if (rc == 0) {
            cr_assert(ev.user >= line && ev.user + ev.user_len <= line + len);
            cr_assert(ev.item >= line && ev.item + ev.item_len <= line + len);
            cr_assert(ev.user_len > 0 && ev.user_len <= SR_ID_MAX);
        } else {
            cr_assert(strlen(err) > 0, "an error always says why");
        }
        free(line);
    }
}
