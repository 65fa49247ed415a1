/* Garbage in, clean error out: config files made of random bytes, mutated
 * valid files, very long lines, NUL bytes and lines without '=' must give
 * a return code and a one-line printable "FILE:LINE: ..." message, never a
 * crash (run under `make asan` for memory errors). */
#include <criterion/criterion.h>
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sr_config.h"
#include "sr_err.h"

static char path[] = "/tmp/sr_test_config_fuzz_XXXXXX";
static int fd = -1;

static void setup(void)
{
    fd = mkstemp(path);
    cr_assert(fd >= 0);
}

static void teardown(void)
{
    close(fd);
    unlink(path);
}

static void write_file(const void *data, size_t len)
{
    cr_assert_eq(ftruncate(fd, 0), 0);
    cr_assert_eq(pwrite(fd, data, len, 0), (ssize_t)len);
}

/* Loads path into a fresh conf; on error checks the message is clean. */
static int load_checked(void)
{
    char errstr[512];
    memset(errstr, 'Z', sizeof(errstr));
    errstr[sizeof(errstr) - 1] = '\0';
    sr_conf_t *c = sr_conf_new();
    int rc = sr_conf_load_file(c, path, errstr, sizeof(errstr));
    sr_conf_destroy(c);
    if (rc == 0) return 0;
    cr_assert_lt(rc, 0);
    cr_assert(rc == SR_ERR_PARSE || rc == SR_ERR_NOTFOUND || rc == SR_ERR_RANGE ||
                  rc == SR_ERR_INVAL,
              "unexpected rc %d (%s): %s", rc, sr_strerror(rc), errstr);
    size_t pl = strlen(path);
    cr_assert(strncmp(errstr, path, pl) == 0 && errstr[pl] == ':' &&
                  isdigit((unsigned char)errstr[pl + 1]),
              "no FILE:LINE prefix: %s", errstr);
    for (const char *p = errstr; *p; p++)
        cr_assert(isprint((unsigned char)*p), "unprintable byte 0x%02x in message: %s",
                  (unsigned char)*p, errstr);
    return rc;
}

/* xorshift: deterministic, so a failure reproduces. */
static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static uint32_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)rng;
}

TestSuite(config_fuzz, .init = setup, .fini = teardown);

Test(config_fuzz, random_binary_files)
{
    static unsigned char buf[4096];
    for (int iter = 0; iter < 300; iter++) {
        size_t len = next() % sizeof(buf);
        for (size_t i = 0; i < len; i++)
            buf[i] = (unsigned char)next();
        write_file(buf, len);
        load_checked();
    }
}

Test(config_fuzz, mutated_valid_files)
{
    static const char valid[] = "# streamrec\nredis.url = redis://:pw@127.0.0.1:6379/1\n"
                                "model.dim = 16\nmodel.lr = 0.05\nmetrics.enable = yes\n"
                                "kafka.bootstrap.servers = 127.0.0.1:9092\n"
                                "metrics.instance = \"\"\nhttp.listen = [::1]:8080\n";
    char buf[sizeof(valid) + 16];
    int ok = 0;
    for (int iter = 0; iter < 1000; iter++) {
        size_t len = sizeof(valid) - 1;
        memcpy(buf, valid, len);
        for (int m = 0, nm = 1 + next() % 4; m < nm; m++) {
            size_t at = next() % len;
            switch (next() % 3) {
            case 0: /* flip a byte */
                buf[at] = (char)next();
                break;
            case 1: /* delete a byte */
                memmove(buf + at, buf + at + 1, len - at - 1);
                len--;
                break;
            default: /* insert one of the syntax bytes */
                if (len + 1 < sizeof(buf)) {
                    memmove(buf + at + 1, buf + at, len - at);
                    buf[at] = "=#\n\"\0 :@/%"[next() % 10];
                    len++;
                }
            }
        }
        write_file(buf, len);
        ok += load_checked() == 0;
    }
    cr_assert_gt(ok, 0, "some mutations (e.g. in comments) stay valid");
    cr_assert_lt(ok, 1000, "most mutations are caught");
}

Test(config_fuzz, very_long_line_is_refused_with_its_line_number)
{
    size_t len = 200000;
    char *buf = malloc(len + 32);
    strcpy(buf, "model.dim = 8\nkafka.x = ");
    size_t o = strlen(buf);
    memset(buf + o, 'a', len);
    strcpy(buf + o + len, "\n");
    write_file(buf, strlen(buf));
    char errstr[512];
    sr_conf_t *c = sr_conf_new();
    cr_assert_eq(sr_conf_load_file(c, path, errstr, sizeof(errstr)), SR_ERR_PARSE);
    cr_assert(strstr(errstr, ":2: line longer than"), "%s", errstr);
    cr_assert_eq(sr_conf_int(c, "model.dim"), 8);
    sr_conf_destroy(c);
    free(buf);
}

Test(config_fuzz, longest_allowed_line_is_accepted)
{
    char buf[8192];
    size_t o = (size_t)snprintf(buf, sizeof(buf), "kafka.x = ");
    memset(buf + o, 'b', 8191 - o);
    buf[8191] = '\n';
    write_file(buf, 8192);
    char errstr[512];
    sr_conf_t *c = sr_conf_new();
    cr_assert_eq(sr_conf_load_file(c, path, errstr, sizeof(errstr)), 0, "%s", errstr);
    cr_assert_eq(strlen(sr_conf_str(c, "kafka.x")), 8191 - o);
    sr_conf_destroy(c);
}

Test(config_fuzz, nul_byte_is_refused)
{
    static const char text[] = "model.dim = 8\nmodel.dim = 1\0002\n";
    write_file(text, sizeof(text) - 1);
    char errstr[512];
    sr_conf_t *c = sr_conf_new();
    cr_assert_eq(sr_conf_load_file(c, path, errstr, sizeof(errstr)), SR_ERR_PARSE);
    cr_assert(strstr(errstr, ":2: NUL byte"), "%s", errstr);
    sr_conf_destroy(c);
}

Test(config_fuzz, lines_without_equals)
{
    const char *texts[] = {"model.dim\n",  "model.dim 8\n", "[section]\n",
                           "\"quoted\"\n", "\xff\xfe\n",    "key: value\n"};
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        write_file(texts[i], strlen(texts[i]));
        cr_assert_eq(load_checked(), SR_ERR_PARSE, "%s", texts[i]);
    }
}

Test(config_fuzz, tiny_or_missing_error_buffers_do_not_crash)
{
    write_file("bogus\n", 6);
    sr_conf_t *c = sr_conf_new();
    char one[1], eight[8];
    cr_assert_eq(sr_conf_load_file(c, path, NULL, 0), SR_ERR_PARSE);
    cr_assert_eq(sr_conf_load_file(c, path, one, sizeof(one)), SR_ERR_PARSE);
    cr_assert_eq(one[0], '\0');
    cr_assert_eq(sr_conf_load_file(c, path, eight, sizeof(eight)), SR_ERR_PARSE);
    cr_assert_eq(strlen(eight), 7);
    cr_assert_eq(sr_conf_set(c, "x", "y", NULL, 0), SR_ERR_NOTFOUND);
    sr_conf_destroy(c);
}

Test(config_fuzz, garbage_env_and_flags)
{
    char longname[600];
    memset(longname, 'A', sizeof(longname));
    memcpy(longname, "STREAMREC_", 10);
    strcpy(longname + 590, "=1");
    char *envp[] = {longname, NULL};
    char errstr[256];
    sr_conf_t *c = sr_conf_new();
    cr_assert_eq(sr_conf_load_env(c, envp, errstr, sizeof(errstr)), SR_ERR_NOTFOUND);
    char *envp2[] = {"STREAMREC_\x01\x02=1", "STREAMREC_=", NULL};
    cr_assert_eq(sr_conf_load_env(c, envp2, errstr, sizeof(errstr)), SR_ERR_NOTFOUND);
    cr_assert(strstr(errstr, "\\x01"), "escaped: %s", errstr);
    char *argv[] = {"x", "-X", "=", "-X", "\xff=\xff", NULL};
    int argc = 5;
    cr_assert_eq(sr_conf_from_args(c, &argc, argv, NULL, errstr, sizeof(errstr)), SR_ERR_INVAL);
    sr_conf_destroy(c);
}
