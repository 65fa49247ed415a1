/* Every example config in deploy/ must load through the real loader: an
 * example that fails is worse than none.  Also checks that the systemd
 * units point at config files that exist. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sr_config.h"

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

Test(deploy, every_example_config_loads)
{
    DIR *d = opendir(SR_SOURCE_DIR "/deploy");
    cr_assert_not_null(d);
    struct dirent *e;
    int loaded = 0;
    while ((e = readdir(d))) {
        if (!ends_with(e->d_name, ".conf")) continue;
        char path[1024], errstr[512] = "";
        snprintf(path, sizeof path, "%s/deploy/%s", SR_SOURCE_DIR, e->d_name);
        sr_conf_t *conf = sr_conf_new();
        cr_assert_not_null(conf);
        int rc = sr_conf_load_file(conf, path, errstr, sizeof errstr);
        cr_expect_eq(rc, 0, "%s: %s", e->d_name, errstr);
        if (rc == 0) {
            cr_expect_eq(sr_conf_finalize(conf, errstr, sizeof errstr), 0, "%s: %s", e->d_name,
                         errstr);
            loaded++;
        }
        sr_conf_destroy(conf);
    }
    closedir(d);
    /* train, serve, produce, simulate, broker, up, top */
    cr_assert_geq(loaded, 7, "only %d example configs loaded", loaded);
}

Test(deploy, example_for_each_command)
{
    static const char *want[] = {"train", "serve", "produce", "simulate", "broker", "up", "top"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/deploy/%s.conf", SR_SOURCE_DIR, want[i]);
        FILE *f = fopen(path, "r");
        cr_expect_not_null(f, "missing %s", path);
        if (f) fclose(f);
    }
}

Test(deploy, systemd_units_use_shipped_configs)
{
    static const char *units[] = {"streamrec-train.service", "streamrec-train@.service",
                                  "streamrec-serve.service"};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        char path[1024], line[1024];
        snprintf(path, sizeof path, "%s/deploy/systemd/%s", SR_SOURCE_DIR, units[i]);
        FILE *f = fopen(path, "r");
        cr_assert_not_null(f, "missing %s", path);
        int found = 0;
        while (fgets(line, sizeof line, f)) {
            const char *c = strstr(line, "/etc/streamrec/");
            if (strncmp(line, "ExecStart=", 10) != 0 || !c) continue;
            char name[128];
            cr_assert_eq(sscanf(c + strlen("/etc/streamrec/"), "%127[^ \n]", name), 1);
            char shipped[1200];
            snprintf(shipped, sizeof shipped, "%s/deploy/%s", SR_SOURCE_DIR, name);
            FILE *g = fopen(shipped, "r");
            cr_expect_not_null(g, "%s uses %s, which deploy/ does not ship", units[i], name);
            if (g) fclose(g);
            found = 1;
        }
        fclose(f);
        cr_expect(found, "%s has no ExecStart with a config file", units[i]);
    }
}

Test(deploy, bad_config_is_reported_with_line)
{
    char path[] = "/tmp/sr-deploy-test-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    FILE *f = fdopen(fd, "w");
    fprintf(f, "# ok\nredis.prefix = sr\nno.such.property = 1\n");
    fclose(f);
    sr_conf_t *conf = sr_conf_new();
    char errstr[512] = "";
    cr_assert_lt(sr_conf_load_file(conf, path, errstr, sizeof errstr), 0);
    cr_expect_not_null(strstr(errstr, ":3:"), "errstr '%s' names no line 3", errstr);
    sr_conf_destroy(conf);
    unlink(path);
}
