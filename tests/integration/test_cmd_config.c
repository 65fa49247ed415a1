/* `streamrec config` through the real binary: the option convention
 * (-c/-X/STREAMREC_*) every command shares, its exit codes, and that its
 * output is a config file that reads back to the same values. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sr_testproc.h"

static char *run(int *rc, const char *a1, const char *a2, const char *a3, const char *a4)
{
    char *argv[] = {
        (char *)sr_test_bin(), "config", (char *)a1, (char *)a2, (char *)a3, (char *)a4, NULL};
    char *out = NULL;
    *rc = sr_test_run(argv, &out, 10000);
    return out;
}

static char *temp_conf(const char *text)
{
    char *path = strdup("/tmp/sr_test_cmd_config_XXXXXX");
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

Test(cmd_config, precedence_through_the_binary)
{
    char *p = temp_conf("model.dim = 10\nmodel.negatives = 5\nmodel.cooc_max = 7\n");
    setenv("STREAMREC_MODEL_DIM", "20", 1);
    setenv("STREAMREC_MODEL_NEGATIVES", "6", 1);
    int rc;
    char *out = run(&rc, "-c", p, "-X", "model.dim=30");
    unsetenv("STREAMREC_MODEL_DIM");
    unsetenv("STREAMREC_MODEL_NEGATIVES");
    cr_assert_eq(rc, 0);
    cr_assert(strstr(out, "\nmodel.dim = 30\n"), "%s", out);
    cr_assert(strstr(out, "\nmodel.negatives = 6\n"), "%s", out);
    cr_assert(strstr(out, "\nmodel.cooc_max = 7\n"), "%s", out);
    cr_assert(strstr(out, "\nmodel.recent_max = 20\n"), "%s", out);
    free(out);
    unlink(p);
    free(p);
}

Test(cmd_config, output_reads_back_as_a_config_file)
{
    int rc;
    char *first = run(&rc, "-X", "kafka.client.id=a b", "-X", "metrics.instance=");
    cr_assert_eq(rc, 0);
    char *p = temp_conf(first);
    char *second = run(&rc, "-c", p, NULL, NULL);
    cr_assert_eq(rc, 0);
    cr_assert_str_eq(second, first);
    free(first);
    free(second);
    unlink(p);
    free(p);
}

Test(cmd_config, bad_value_exits_1)
{
    int rc;
    char *out = run(&rc, "-X", "model.dim=0", NULL, NULL);
    cr_assert_eq(rc, 1);
    cr_assert_str_eq(out, "");
    free(out);
}

Test(cmd_config, unknown_environment_variable_exits_1)
{
    setenv("STREAMREC_NO_SUCH_THING", "1", 1);
    int rc;
    char *out = run(&rc, NULL, NULL, NULL, NULL);
    unsetenv("STREAMREC_NO_SUCH_THING");
    cr_assert_eq(rc, 1);
    free(out);
}

Test(cmd_config, stray_argument_exits_2)
{
    int rc;
    char *out = run(&rc, "extra", NULL, NULL, NULL);
    cr_assert_eq(rc, 2);
    free(out);
}

Test(cmd_config, markdown_is_the_committed_doc)
{
    int rc;
    char *out = run(&rc, "--markdown", NULL, NULL, NULL);
    cr_assert_eq(rc, 0);
    FILE *f = fopen(SR_SOURCE_DIR "/docs/CONFIGURATION.md", "r");
    cr_assert_not_null(f);
    size_t n = strlen(out);
    char *doc = malloc(n + 2);
    size_t got = fread(doc, 1, n + 1, f);
    fclose(f);
    cr_assert(got == n && memcmp(doc, out, n) == 0,
              "docs/CONFIGURATION.md is stale: run `make docs`");
    free(doc);
    free(out);
}

Test(cmd_config, sources_names_the_layer_of_each_changed_value)
{
    char *p = temp_conf("model.negatives = 5\n");
    setenv("STREAMREC_TOPIC_EVENTS", "clicks", 1);
    int rc;
    char *out = run(&rc, "--sources", "-c", p, "-Xmodel.dim=8");
    unsetenv("STREAMREC_TOPIC_EVENTS");
    cr_assert_eq(rc, 0);
    cr_assert(strstr(out, "# from flag\nmodel.dim = 8\n"), "%s", out);
    cr_assert(strstr(out, "# from file\nmodel.negatives = 5\n"), "%s", out);
    cr_assert(strstr(out, "# from env STREAMREC_TOPIC_EVENTS\ntopic.events = clicks\n"), "%s", out);
    cr_assert(strstr(out, "\nmodel.lr = 0.05\n") && !strstr(out, "# from default"), "%s", out);
    free(out);
    unlink(p);
    free(p);
}
