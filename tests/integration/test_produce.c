/* `streamrec broker` as a process, `streamrec produce` a CSV and a JSON
 * lines file into it (with bad lines), then consume the topic and count;
 * `broker --help` states its limits.  Every process is stopped by PID. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "sr_event_codec.h"
#include "sr_testproc.h"

static sr_test_proc_t broker = {.pid = -1, .out_fd = -1};
static char bootstrap[128];

static void start_broker(void)
{
    cr_assert_eq(sr_test_broker_start(&broker, 2, bootstrap, sizeof(bootstrap)), 0);
    cr_assert(strncmp(bootstrap, "127.0.0.1:", 10) == 0, "first line is host:port: '%s'", bootstrap);
}

static void stop_broker(void)
{
    int st = sr_test_stop(&broker, SIGTERM, 5000);
    cr_assert_eq(st, 0, "broker exits 0 on SIGTERM (status %d)", st);
}

static char *write_tmp(const char *text)
{
    static char path[3][64];
    static int k;
    char *p = path[k++ % 3];
    snprintf(p, 64, "/tmp/sr_test_produce_XXXXXX");
    int fd = mkstemp(p);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return p;
}

/* Counts the messages on topic `events` (2 partitions); *valid: those that
 * decode and are keyed by their user. */
static int count_events(int *valid)
{
    rd_kafka_conf_t *kc = rd_kafka_conf_new();
    char err[256];
    rd_kafka_conf_set(kc, "bootstrap.servers", bootstrap, err, sizeof(err));
    rd_kafka_conf_set(kc, "group.id", "it-reader", err, sizeof(err));
    rd_kafka_conf_set(kc, "enable.partition.eof", "true", err, sizeof(err));
    rd_kafka_t *c = rd_kafka_new(RD_KAFKA_CONSUMER, kc, err, sizeof(err));
    cr_assert_not_null(c);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(2);
    for (int p = 0; p < 2; p++) rd_kafka_topic_partition_list_add(l, "events", p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(c, l);
    rd_kafka_topic_partition_list_destroy(l);
    int n = 0, eofs = 0;
    *valid = 0;
    for (int spins = 0; eofs < 2 && spins < 400; spins++) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 50);
        if (!m) continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            eofs++;
        } else if (!m->err) {
            n++;
            sr_event_wire_t w;
            if (sr_event_decode(m->payload, m->len, NULL, 0, &w, NULL, NULL, 0) == 0 &&
                m->key_len == w.ev.user_len && memcmp(m->key, w.ev.user, w.ev.user_len) == 0)
                (*valid)++;
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
    return n;
}

Test(produce, csv_and_jsonl_files_with_bad_lines, .timeout = 120)
{
    start_broker();
    char bs_opt[160];
    snprintf(bs_opt, sizeof(bs_opt), "kafka.bootstrap.servers=%s", bootstrap);

    char *csv = write_tmp("ts_ms,user,item,event\n"
                          "1700000000000,u1,i1,view\n"
                          "1700000000001,u2,i2,click\n"
                          "garbage\n"
                          "1700000000002,u1,i3,purchase\n"
                          "1700000000003,u3,i1,teleport\n");
    char *out = NULL;
    char *argv1[] = {(char *)sr_test_bin(), "produce", "-X", bs_opt, "--in", csv, "--quiet", NULL};
    int rc = sr_test_run(argv1, &out, 60000);
    cr_assert_eq(rc, 0, "produce csv exit %d", rc);
    cr_assert(strstr(out, "sent 3 delivered 3 bad 2 failed 0") != NULL, "summary: %s", out);
    free(out);

    char *jsonl = write_tmp("{\"user\":\"u9\",\"item\":\"i9\",\"event\":\"click\"}\n"
                            "{\"user\":\"u9\",\"item\":\"i8\",\"event\":\"cart\",\"value\":9.5}\n"
                            "{\"user\":\"u9\"}\n"
                            "\n"
                            "{\"user\":7,\"item\":8,\"type\":\"VIEW\",\"ts_ms\":1700000000000}\n");
    char *argv2[] = {(char *)sr_test_bin(), "produce", "-X", bs_opt, "--in", jsonl, "--format", "jsonl",
                     "--quiet", NULL};
    rc = sr_test_run(argv2, &out, 60000);
    cr_assert_eq(rc, 0);
    cr_assert(strstr(out, "sent 3 delivered 3 bad 1 failed 0") != NULL, "summary: %s", out);
    free(out);

    int valid;
    cr_assert_eq(count_events(&valid), 6);
    cr_assert_eq(valid, 6, "every message decodes and is keyed by its user");
    unlink(csv);
    unlink(jsonl);
    stop_broker();
}

/* Bad lines are named by line number on stderr: run through sh to capture it. */
Test(produce, bad_lines_reported_with_line_numbers, .timeout = 120)
{
    start_broker();
    char *csv = write_tmp("ts_ms,user,item,event\n1700000000000,u1,i1,view\nx,y\n");
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "'%s' produce -X kafka.bootstrap.servers=%s --in '%s' --quiet 2>&1 >/dev/null",
             sr_test_bin(), bootstrap, csv);
    char *argv[] = {"sh", "-c", cmd, NULL};
    char *out = NULL;
    cr_assert_eq(sr_test_run(argv, &out, 60000), 0);
    char want[128];
    snprintf(want, sizeof(want), "%s:3: ", csv);
    cr_assert(strstr(out, want) != NULL, "stderr names line 3: %s", out);
    free(out);
    unlink(csv);
    stop_broker();
}

Test(produce, delivery_failure_gives_nonzero_exit, .timeout = 120)
{
    /* Nothing listens on this port: every event times out. */
    int port = sr_test_free_port();
    char bs_opt[160];
    snprintf(bs_opt, sizeof(bs_opt), "kafka.bootstrap.servers=127.0.0.1:%d", port);
    char *csv = write_tmp("1700000000000,u1,i1,view\n");
    char *argv[] = {(char *)sr_test_bin(), "produce", "-X", bs_opt, "-X", "kafka.message.timeout.ms=1000",
                    "--in", csv, "--quiet", NULL};
    char *out = NULL;
    int rc = sr_test_run(argv, &out, 60000);
    cr_assert_eq(rc, 1, "exit %d", rc);
    cr_assert(strstr(out, "failed 1") != NULL, "summary: %s", out);
    free(out);
    unlink(csv);
}

Test(produce, broker_help_states_its_limits)
{
    char *argv[] = {(char *)sr_test_bin(), "broker", "--help", NULL};
    char *out = NULL;
    cr_assert_eq(sr_test_run(argv, &out, 10000), 0);
    cr_assert(strstr(out, "5 MB") != NULL && strstr(out, "100,000") != NULL, "%s", out);
    cr_assert(strstr(out, "disk") != NULL, "%s", out);
    free(out);
}
