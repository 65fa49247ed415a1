/* Placeholder until the command lands; replaced by its owner. */
#include <stdio.h>

#include "sr_cmd.h"

int sr_cmd_train(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "streamrec train: not available in this build yet\n");
    return 2;
}
