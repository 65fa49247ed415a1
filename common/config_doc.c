/* Renders the property table as docs/CONFIGURATION.md.  Generated, never
 * edited by hand, so the reference cannot disagree with the code; a unit
 * test compares the committed file with this output. */
#include <stdio.h>
#include <string.h>

#include "config_table.h"
#include "sr_config.h"

static const char *type_name(sr_conf_type_t t)
{
    switch (t) {
    case SR_CONF_STR:
        return "string";
    case SR_CONF_INT:
        return "int";
    case SR_CONF_DOUBLE:
        return "double";
    case SR_CONF_BOOL:
        return "bool";
    }
    return "?";
}

/* Table cells may not hold '|' or newlines. */
static void cell(FILE *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '|')
            fputs("\\|", out);
        else if (*s == '\n')
            fputc(' ', out);
        else
            fputc(*s, out);
    }
}

static void num(FILE *out, sr_conf_type_t t, double x)
{
    if (t == SR_CONF_INT)
        fprintf(out, "%.0f", x);
    else
        fprintf(out, "%g", x);
}

void sr_conf_write_markdown(FILE *out)
{
    fputs("# Configuration\n"
          "\n"
          "<!-- Generated from common/config_table.c by `streamrec config --markdown`.\n"
          "     Do not edit: change the table, then run `make docs`. -->\n"
          "\n"
          "Every streamrec command reads the same properties. Each has a default; a\n"
          "value can be set, in rising precedence, by:\n"
          "\n"
          "1. a config file, `-c FILE` or `--config FILE` (may be repeated; later\n"
          "   files win): `key = value` lines, blank lines, and comment lines whose\n"
          "   first non-blank character is `#` (there are no trailing comments: `#`\n"
          "   inside a value is part of it). A value may be wrapped in double quotes\n"
          "   (`metrics.instance = \"\"`). Errors read `FILE:LINE: key: message`;\n"
          "2. the environment: `STREAMREC_` + the key in upper case with dots and\n"
          "   dashes as underscores (`redis.url` is `STREAMREC_REDIS_URL`); see the\n"
          "   Environment column. An unknown `STREAMREC_` variable is an error\n"
          "   (`STREAMREC_BIN` is reserved for the tests and ignored);\n"
          "3. `-X key=value` flags (may be repeated; later flags win).\n"
          "\n"
          "Unknown keys are errors. Values are checked against the type and range\n"
          "below, then properties are checked against each other (the three topics\n"
          "must differ). `streamrec config [-c FILE] [-X key=value]` prints the\n"
          "resulting values in config file syntax; with `--sources` each value that\n"
          "is not the default is preceded by a comment naming where it came from.\n"
          "\n"
          "Types: `int` is a decimal 64-bit integer, `double` a decimal number\n"
          "(`1e-4` allowed; no hex, `inf` or `nan`), `bool` one of `true`/`false`,\n"
          "`1`/`0`, `yes`/`no`, `on`/`off`. Ranges are inclusive.\n"
          "\n"
          "## kafka.*\n"
          "\n"
          "`kafka.<name>` passes the librdkafka property `<name>` through unchecked\n"
          "to every Kafka client streamrec creates (librdkafka checks it when the\n"
          "client starts), e.g. `-X kafka.bootstrap.servers=host:9092` or\n"
          "`kafka.security.protocol = SASL_SSL`. From the environment,\n"
          "`STREAMREC_KAFKA_<X>` sets `kafka.<x in lower case, underscores as dots>`:\n"
          "`STREAMREC_KAFKA_BOOTSTRAP_SERVERS` is `kafka.bootstrap.servers`.\n"
          "\n"
          "`streamrec train` changes two librdkafka consumer defaults, and a\n"
          "`kafka.` property given for them wins: `fetch.wait.max.ms` 10 (an\n"
          "idle fetch would otherwise wait 500 ms, most of the freshness budget)\n"
          "and `queued.min.messages` 500000 (with the default 100000 the\n"
          "consumer stopped fetching for all partitions of a backlog at once and\n"
          "the trainer idled half the time; the larger queue costs up to about\n"
          "100 MB of memory while catching up).\n",
          out);

    const char *section = NULL;
    size_t section_len = 0;
    for (size_t i = 0; i < sr_conf_table_len; i++) {
        const sr_conf_prop_t *p = &sr_conf_table[i];
        const char *dot = strchr(p->name, '.');
        size_t len = dot ? (size_t)(dot - p->name) : strlen(p->name);
        if (!section || len != section_len || strncmp(section, p->name, len) != 0) {
            section = p->name;
            section_len = len;
            fprintf(out,
                    "\n## %.*s\n\n"
                    "| Property | Type | Default | Range | Environment | Description |\n"
                    "|---|---|---|---|---|---|\n",
                    (int)len, p->name);
        }
        char env[256];
        if (sr_conf_env_name(p->name, env, sizeof(env)) < 0) env[0] = '\0';
        fprintf(out, "| `%s` | %s | `%s` | ", p->name, type_name(p->type), p->def);
        if (p->type == SR_CONF_INT || p->type == SR_CONF_DOUBLE) {
            num(out, p->type, p->min);
            fputs(" .. ", out);
            num(out, p->type, p->max);
        }
        fprintf(out, " | `%s` | ", env);
        cell(out, p->desc);
        fputs(" |\n", out);
    }
}
