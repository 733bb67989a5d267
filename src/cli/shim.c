/* `trainyard shim <pod-dir>`: internal, started by the runtime to supervise one pod. */
#include <stdio.h>

#include "cli/cli.h"
#include "runtime/runtime_int.h"

int ty_cli_shim(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: trainyard shim <pod-dir> (internal: started by the runtime)\n");
        return 2;
    }
    return ty_rt_shim_main(argv[1]);
}
