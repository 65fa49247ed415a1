/* `streamrec <command> [options]`: dispatch only (DESIGN.md §3). */
#include <stdio.h>
#include <string.h>

#include "sr_cmd.h"

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} commands[] = {
#define SR_CMD_ROW_(name, help) {#name, sr_cmd_##name, help},
    SR_CMD_LIST(SR_CMD_ROW_)
#undef SR_CMD_ROW_
};

static void usage(FILE *out)
{
    fprintf(out, "usage: streamrec <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].help);
    fprintf(out, "\nCommon options: -c FILE (config file), -X key=value (any property),\n"
                 "environment STREAMREC_<KEY>; precedence flag > env > file > default.\n"
                 "`streamrec <command> --help` for a command's own options.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("streamrec 0.1.0\n");
        return 0;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(argv[1], commands[i].name) == 0) return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "streamrec: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
