/* `streamrec config`: shows the configuration a command would run with
 * (after -c, environment and -X), in config file syntax so the output can
 * be saved and edited; `--markdown` prints docs/CONFIGURATION.md. */
#include <stdio.h>
#include <string.h>

#include "cmd_util.h"
#include "sr_cmd.h"

extern char **environ;

static void usage(FILE *out)
{
    fprintf(out, "usage: streamrec config [-c FILE] [-X key=value]... [--sources] [--markdown]\n"
                 "\n"
                 "Prints every property as `key = value` (table order, then kafka.*),\n"
                 "with -c files, STREAMREC_* environment and -X flags applied.\n"
                 "  --sources   precede each value that is not the default with a\n"
                 "              comment naming where it came from (file, env, flag)\n"
                 "  --markdown  print the property reference (docs/CONFIGURATION.md)\n");
}

typedef struct print_ctx {
    const sr_conf_t *conf;
    int sources;
} print_ctx_t;

static int print_kv(const char *key, const char *value, void *opaque)
{
    const print_ctx_t *pc = opaque;
    sr_conf_src_t src = sr_conf_source(pc->conf, key);
    if (pc->sources && src != SR_CONF_SRC_DEFAULT) {
        char env[256];
        if (src == SR_CONF_SRC_ENV && sr_conf_env_name(key, env, sizeof(env)) == 0)
            printf("# from env %s\n", env);
        else
            printf("# from %s\n", sr_conf_src_name(src));
    }
    size_t len = strlen(value);
    /* Quote what a config file would otherwise lose: empty values and
     * blanks at the edges. */
    int quote = len == 0 || value[0] == ' ' || value[0] == '\t' || value[len - 1] == ' ' ||
                value[len - 1] == '\t' || (value[0] == '"' && value[len - 1] == '"');
    printf(quote ? "%s = \"%s\"\n" : "%s = %s\n", key, value);
    return 0;
}

int sr_cmd_config(int argc, char **argv)
{
    int sources = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        }
        /* The reference depends on the table only, never on a config. */
        if (strcmp(argv[i], "--markdown") == 0) {
            sr_conf_write_markdown(stdout);
            return fflush(stdout) == 0 ? 0 : 1;
        }
    }
    char errstr[1024];
    sr_conf_t *conf = sr_cmd_conf(&argc, argv, environ, errstr, sizeof(errstr));
    if (!conf) {
        fprintf(stderr, "streamrec config: %s\n", errstr);
        return 1;
    }
    /* Our own flag goes after sr_cmd_conf so a `-X` value can never be
     * mistaken for it. */
    int out = 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--sources") == 0)
            sources = 1;
        else
            argv[out++] = argv[i];
    }
    argc = out;
    if (argc > 1) {
        fprintf(stderr, "streamrec config: unexpected argument '%s'\n", argv[1]);
        usage(stderr);
        sr_conf_destroy(conf);
        return 2;
    }
    print_ctx_t pc = {conf, sources};
    sr_conf_foreach(conf, "", print_kv, &pc);
    sr_conf_destroy(conf);
    return fflush(stdout) == 0 ? 0 : 1;
}
