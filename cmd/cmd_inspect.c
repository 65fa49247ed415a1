/* Placeholder until the command lands; replaced by its owner. */
#include <stdio.h>

#include "sr_cmd.h"

int sr_cmd_inspect(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "streamrec inspect: not available in this build yet\n");
    return 2;
}
