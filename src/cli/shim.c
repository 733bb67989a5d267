/* `trainyard shim <pod-dir>`: internal, started by the runtime to supervise one pod. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "runtime/runtime_int.h"

int ty_cli_shim(int argc, char **argv)
{
    const char *usage = "usage: trainyard shim <pod-dir> (internal: started by the runtime)\n";
    if (argc == 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        fputs(usage, stdout);
        return 0;
    }
    if (argc != 2 || argv[1][0] == '-') {
        fputs(usage, stderr);
        return 2;
    }
    return ty_rt_shim_main(argv[1]);
}
